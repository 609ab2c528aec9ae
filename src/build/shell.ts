/**
 * Docker's variable expansion in Dockerfiles (moby/buildkit frontend/dockerfile/shell, lex.go,
 * as Docker 20.10's classic builder uses it): `$V`, `${V}`, `${V:-word}`, `${V:+word}`,
 * `${V?msg}`, `${V:?msg}`, single and double quotes, the escape token. `processWord` gives one
 * word (quotes removed, spaces kept); `processWords` splits on unquoted blanks (EXPOSE).
 */
import { invalidArgument } from '../errors/index.js';

const EOF = -1;

const isLetter = (c: number) => c !== EOF && /\p{L}/u.test(String.fromCodePoint(c));
const isDigit = (c: number) => c !== EOF && /\p{Nd}/u.test(String.fromCodePoint(c));
const isSpecialParam = (c: number) => c !== EOF && '@*#?-$!0'.includes(String.fromCodePoint(c));

/** BuildEnvs: later entries win; an entry without `=` is an empty value. */
export function envMap(env: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env) {
    const i = e.indexOf('=');
    if (i < 0) m.set(e, '');
    else m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

class Words {
  word = '';
  words: string[] = [];
  inWord = false;
  addChar(ch: string): void {
    if (/\s/u.test(ch) && this.inWord) {
      if (this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else if (!/\s/u.test(ch)) this.addRawChar(ch);
  }
  addRawChar(ch: string): void {
    this.word += ch;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  get(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class ShellWord {
  private pos = 0;
  private readonly cps: number[];

  constructor(
    source: string,
    private readonly env: Map<string, string>,
    private readonly escape: number,
  ) {
    this.cps = Array.from(source, (c) => c.codePointAt(0)!);
  }

  private peek(): number {
    return this.pos < this.cps.length ? this.cps[this.pos]! : EOF;
  }

  private next(): number {
    return this.pos < this.cps.length ? this.cps[this.pos++]! : EOF;
  }

  processStopOn(stop: number): [string, string[]] {
    let result = '';
    const words = new Words();
    while (this.peek() !== EOF) {
      let ch = this.peek();
      if (stop !== EOF && ch === stop) {
        this.next();
        return [result, words.get()];
      }
      if (ch === 0x27 /* ' */ || ch === 0x22 /* " */ || ch === 0x24 /* $ */) {
        const tmp = ch === 0x27 ? this.singleQuote() : ch === 0x22 ? this.doubleQuote() : this.dollar();
        result += tmp;
        if (ch === 0x24) words.addString(tmp);
        else words.addRawString(tmp);
      } else {
        ch = this.next();
        if (ch === this.escape) {
          ch = this.next();
          if (ch === EOF) break;
          words.addRawChar(String.fromCodePoint(ch));
        } else words.addChar(String.fromCodePoint(ch));
        result += String.fromCodePoint(ch);
      }
    }
    if (stop !== EOF) throw new Error(`unexpected end of statement while looking for matching ${String.fromCodePoint(stop)}`);
    return [result, words.get()];
  }

  private singleQuote(): string {
    let result = '';
    this.next();
    for (;;) {
      const ch = this.next();
      if (ch === EOF) throw new Error('unexpected end of statement while looking for matching single-quote');
      if (ch === 0x27) return result;
      result += String.fromCodePoint(ch);
    }
  }

  private doubleQuote(): string {
    let result = '';
    this.next();
    for (;;) {
      const p = this.peek();
      if (p === EOF) throw new Error('unexpected end of statement while looking for matching double-quote');
      if (p === 0x22) {
        this.next();
        return result;
      }
      if (p === 0x24) {
        result += this.dollar();
        continue;
      }
      let ch = this.next();
      if (ch === this.escape) {
        const q = this.peek();
        if (q === EOF) continue;
        if (q === 0x22 || q === 0x24 || q === this.escape) ch = this.next();
      }
      result += String.fromCodePoint(ch);
    }
  }

  private getEnv(name: string): string | undefined {
    return this.env.get(name);
  }

  private dollar(): string {
    this.next();
    if (this.peek() !== 0x7b /* { */) {
      const name = this.name();
      if (name === '') return '$';
      return this.getEnv(name) ?? '';
    }
    this.next();
    const p = this.peek();
    if (p === EOF) throw new Error("syntax error: missing '}'");
    if (p === 0x7b || p === 0x7d || p === 0x3a) throw new Error('syntax error: bad substitution');
    const name = this.name();
    const ch = this.next();
    if (ch === 0x7d) return this.getEnv(name) ?? '';
    if (ch === 0x3f /* ? */) {
      const word = this.stopOnBrace();
      const v = this.getEnv(name);
      if (v === undefined) throw new Error(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
      return v;
    }
    if (ch === 0x3a /* : */) {
      const modifier = this.next();
      const word = this.stopOnBrace();
      const v = this.getEnv(name);
      const value = v ?? '';
      switch (modifier) {
        case 0x2b: // +
          return value !== '' ? word : value;
        case 0x2d: // -
          return value === '' ? word : value;
        case 0x3f: // ?
          if (v === undefined) throw new Error(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
          if (value === '') throw new Error(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
          return value;
        default:
          throw new Error(`unsupported modifier (${modifier === EOF ? '' : String.fromCodePoint(modifier)}) in substitution`);
      }
    }
    throw new Error("missing ':' in substitution");
  }

  private stopOnBrace(): string {
    try {
      return this.processStopOn(0x7d)[0];
    } catch (e) {
      if (this.peek() === EOF) throw new Error("syntax error: missing '}'");
      throw e;
    }
  }

  private name(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (name.length === 0 && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek())) name += String.fromCodePoint(this.next());
        return name;
      }
      if (name.length === 0 && isSpecialParam(ch)) return String.fromCodePoint(this.next());
      if (!isLetter(ch) && !isDigit(ch) && ch !== 0x5f) break;
      name += String.fromCodePoint(this.next());
    }
    return name;
  }
}

function run(word: string, env: readonly string[] | Map<string, string>, escape: string): [string, string[]] {
  const sw = new ShellWord(word, env instanceof Map ? env : envMap(env), escape.codePointAt(0)!);
  try {
    return sw.processStopOn(EOF);
  } catch (e) {
    throw invalidArgument('BUILD_EXPANSION', `failed to process ${goQuote(word)}: ${(e as Error).message}`, { hint: 'check the ${...} substitutions and the quotes of that instruction' });
  }
}

export function processWord(word: string, env: readonly string[] | Map<string, string>, escape = '\\'): string {
  return run(word, env, escape)[0];
}

export function processWords(word: string, env: readonly string[] | Map<string, string>, escape = '\\'): string[] {
  return run(word, env, escape)[1];
}

/** Go's strconv.Quote (what `%q` prints for a string). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (c === 7) out += '\\a';
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 10) out += '\\n';
    else if (c === 13) out += '\\r';
    else if (c === 9) out += '\\t';
    else if (c === 11) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (c >= 0x80 && c < 0xa0) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += ch;
  }
  return out + '"';
}

/** Go's `%q` of a []string: `["a" "b"]`. */
export function goQuoteSlice(a: readonly string[] | null | undefined): string {
  return '[' + (a ?? []).map(goQuote).join(' ') + ']';
}

/** Go's `%q` of an int (strconv.QuoteRune). */
export function goQuoteRune(n: number): string {
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 39: "\\'", 92: '\\\\' };
  if (named[n] !== undefined) return `'${named[n]}'`;
  if (n < 0x20 || n === 0x7f) return `'\\x${n.toString(16).padStart(2, '0')}'`;
  if (n < 0x80 || n > 0xa0) return `'${String.fromCodePoint(n)}'`;
  return `'\\u${n.toString(16).padStart(4, '0')}'`;
}
