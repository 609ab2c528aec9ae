/**
 * The Dockerfile parser of Docker 20.10 (moby/buildkit v0.8 frontend/dockerfile/parser, which
 * the classic builder uses): parser directives (escape, syntax), comments, line continuations
 * (empty lines inside one are skipped with a warning), then per instruction the argument
 * grammar Docker gives it (JSON-or-shell form, name=value pairs, whitespace-split words,
 * ONBUILD's sub-instruction). Line numbers are 1-based, as Docker reports them.
 *
 * BuildKit-only syntax (heredocs) is found with dockerfile-ast, which knows it, so that it
 * gets an error naming it instead of a confusing one from the lines that follow.
 */
import { DockerfileParser } from 'dockerfile-ast';
import { invalidArgument, type EngineError } from '../errors/index.js';

export interface Node {
  /** lower-case instruction name */
  cmd: string;
  flags: string[];
  /** the arguments as Docker's nodeArgs gives them (ONBUILD: the trigger's name, then its arguments) */
  args: string[];
  json: boolean;
  /** the instruction's text, continuations joined */
  original: string;
  startLine: number;
  endLine: number;
  /** ONBUILD's trigger */
  sub?: Node;
}

export interface ParseResult {
  nodes: Node[];
  escape: string;
  warnings: string[];
}

export function parseError(line: number, message: string, hint?: string): EngineError {
  return invalidArgument('DOCKERFILE_PARSE', `dockerfile parse error line ${line}: ${message}`, {
    where: `line ${line}`,
    hint: hint ?? 'see the Dockerfile reference: https://docs.docker.com/engine/reference/builder/',
  });
}

const reWhitespace = /[\t\v\f\r ]+/;
const reDirective = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;

class Directives {
  escape = '\\';
  continuation = /([^\\])\\[ \t]*$|^\\[ \t]*$/;
  done = false;
  seen = new Set<string>();

  setEscape(s: string): void {
    if (s !== '`' && s !== '\\') throw new Error(`invalid escape token '${s}' does not match \` or \\`);
    this.escape = s;
    const e = s === '\\' ? '\\\\' : '`';
    this.continuation = new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
  }

  possible(line: string): void {
    if (this.done) return;
    const m = reDirective.exec(line);
    if (!m) {
      this.done = true;
      return;
    }
    const k = m[1]!.toLowerCase();
    if (k !== 'escape' && k !== 'syntax') {
      this.done = true;
      return;
    }
    if (this.seen.has(k)) throw new Error(`only one ${k} parser directive can be used`);
    this.seen.add(k);
    if (k === 'escape') this.setEscape(m[2]!);
  }
}

const isComment = (line: string) => /^#/.test(line.replace(/^\s+/, ''));

/** parseWords: words split on blanks, quotes kept (the expansion removes them), escapes kept. */
export function parseWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  const chars = Array.from(rest);
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = pos < chars.length ? chars[pos]! : '';
    if (phase === 'spaces') {
      if (pos === chars.length) break;
      if (/\s/u.test(ch)) continue;
      phase = 'word';
    }
    if ((phase === 'word' || phase === 'quote') && pos === chars.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (/\s/u.test(ch)) {
        phase = 'spaces';
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === escape) {
        if (pos + 1 === chars.length) continue;
        word += ch;
        pos++;
        ch = chars[pos]!;
      }
      word += ch;
      continue;
    }
    if (phase === 'quote') {
      if (ch === quote) phase = 'word';
      if (ch === escape && quote !== "'") {
        if (pos + 1 === chars.length) {
          phase = 'word';
          continue;
        }
        pos++;
        word += ch;
        ch = chars[pos]!;
      }
      word += ch;
    }
  }
  return words;
}

/** extractBuilderFlags: leading `--flag[=value]` words; the rest of the line. */
function extractFlags(line: string): { rest: string; flags: string[] } {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    let ch = pos < line.length ? line[pos]! : '';
    if (phase === 'spaces') {
      if (pos === line.length) break;
      if (/\s/.test(ch)) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') return { rest: line.slice(pos), flags: words };
      phase = 'word';
    }
    if ((phase === 'word' || phase === 'quote') && pos === line.length) {
      if (word !== '--' && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (/\s/.test(ch)) {
        phase = 'spaces';
        if (word === '--') return { rest: line.slice(pos), flags: words };
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos]!;
      }
      word += ch;
      continue;
    }
    if (phase === 'quote') {
      if (ch === quote) {
        phase = 'word';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) {
          phase = 'word';
          continue;
        }
        pos++;
        ch = line[pos]!;
      }
      word += ch;
    }
  }
  return { rest: '', flags: words };
}

class LineError extends Error {}

function parseJSON(rest: string): string[] | undefined {
  const r = rest.replace(/^\s+/, '');
  if (!r.startsWith('[')) return undefined;
  let v: unknown;
  try {
    // Go's json.Decoder reads one value and ignores what follows it
    v = JSON.parse(firstJsonValue(r));
  } catch {
    return undefined;
  }
  if (!Array.isArray(v)) return undefined;
  if (!v.every((x) => typeof x === 'string')) throw new LineError('when using JSON array syntax, arrays must be comprised of strings only');
  return v as string[];
}

/** The text of the first JSON array in `s` (brackets balanced outside strings). */
function firstJsonValue(s: string): string {
  let depth = 0;
  let inStr = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === '[') depth++;
    else if (c === ']') {
      depth--;
      if (depth === 0) return s.slice(0, i + 1);
    }
  }
  return s;
}

function splitWhitespace(rest: string): string[] {
  if (rest === '') return [];
  return rest.split(new RegExp(reWhitespace.source, 'g'));
}

function parseNameVal(rest: string, key: string, escape: string): string[] {
  const words = parseWords(rest, escape);
  if (words.length === 0) return [];
  if (!words[0]!.includes('=')) {
    const m = reWhitespace.exec(rest);
    if (!m) throw new LineError(`${key} must have two arguments`);
    return [rest.slice(0, m.index), rest.slice(m.index + m[0].length)];
  }
  const out: string[] = [];
  for (const w of words) {
    const i = w.indexOf('=');
    if (i < 0) throw new LineError(`Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    out.push(w.slice(0, i), w.slice(i + 1));
  }
  return out;
}

function nodeFromLine(line: string, d: Directives, startLine: number, endLine: number): Node {
  const trimmed = line.trim();
  const m = reWhitespace.exec(trimmed);
  const cmd = (m ? trimmed.slice(0, m.index) : trimmed).toLowerCase();
  let flags: string[] = [];
  let rest = '';
  if (m) {
    const x = extractFlags(trimmed.slice(m.index + m[0].length));
    flags = x.flags;
    rest = x.rest.trim();
  }
  const node: Node = { cmd, flags, args: [], json: false, original: line, startLine, endLine };
  const maybeJSON = () => {
    if (rest === '') return;
    const j = parseJSON(rest);
    if (j) {
      node.args = j;
      node.json = true;
    } else node.args = [rest];
  };
  switch (cmd) {
    case 'add':
    case 'copy':
    case 'volume': {
      const j = parseJSON(rest);
      if (j) {
        node.args = j;
        node.json = true;
      } else node.args = splitWhitespace(rest);
      break;
    }
    case 'arg':
      node.args = parseWords(rest, d.escape);
      break;
    case 'cmd':
    case 'entrypoint':
    case 'run':
    case 'shell':
      maybeJSON();
      break;
    case 'env':
      node.args = parseNameVal(rest, 'ENV', d.escape);
      break;
    case 'label':
      node.args = parseNameVal(rest, 'LABEL', d.escape);
      break;
    case 'expose':
    case 'from':
      node.args = splitWhitespace(rest);
      break;
    case 'healthcheck': {
      const sp = /\s/.exec(rest);
      const sep = sp ? sp.index : rest.length;
      if (sep === 0) break;
      const typ = rest.slice(0, sep);
      rest = rest.slice(sep).replace(/^\s+/, '');
      maybeJSON();
      node.args = [typ, ...node.args];
      break;
    }
    case 'maintainer':
    case 'stopsignal':
    case 'user':
    case 'workdir':
      if (rest !== '') node.args = [rest];
      break;
    case 'onbuild':
      if (rest !== '') {
        node.sub = nodeFromLine(rest, d, startLine, endLine);
        node.args = [node.sub.cmd, ...node.sub.args];
      }
      break;
    default:
      break; // unknown: reported by instructions.ts with its line
  }
  return node;
}

/** Heredocs belong to BuildKit's Dockerfile syntax: found with dockerfile-ast, named in the error. */
function checkBuildKitSyntax(text: string): void {
  let df;
  try {
    df = DockerfileParser.parse(text);
  } catch {
    return; // our own parser reports what is wrong
  }
  for (const i of df.getInstructions()) {
    const kw = i.getKeyword();
    const line = i.getRange().start.line + 1;
    const docs = kw === 'RUN' || kw === 'COPY' ? ((i as unknown as { getHeredocs(): { getName(): string }[] }).getHeredocs?.() ?? []) : [];
    const raw = i.getRawArgumentsContent() ?? '';
    const name = docs[0]?.getName() ?? (kw === 'ADD' ? /<<-?\s*["']?([A-Za-z_][A-Za-z0-9_]*)/.exec(raw)?.[1] : undefined);
    if (name !== undefined) {
      throw parseError(line, `heredocs (${kw} <<${name}) are a BuildKit feature; Docker's classic builder, which layerbox follows, does not support them`, 'write the lines as one RUN with && between commands, or put the file in the build context and COPY it');
    }
  }
}

export function parseDockerfile(text: string): ParseResult {
  if (/<</.test(text)) checkBuildKitSyntax(text);
  const d = new Directives();
  const lines = text.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (lines.length && lines[0]!.startsWith('\uFEFF')) lines[0] = lines[0]!.slice(1);
  const nodes: Node[] = [];
  const warnings: string[] = [];
  let current = 0;
  let i = 0;
  const processLine = (raw: string, stripLeft: boolean): string => {
    const token = stripLeft ? raw.replace(/^\s+/, '') : raw;
    try {
      d.possible(token);
    } catch (e) {
      throw parseError(current, (e as Error).message);
    }
    return token.startsWith('#') ? '' : token;
  };
  const trimCont = (line: string): [string, boolean] => {
    if (d.continuation.test(line)) return [line.replace(d.continuation, '$1'), false];
    return [line, true];
  };
  while (i < lines.length) {
    const first = processLine(lines[i++]!, true);
    current++;
    const start = current;
    let [line, end] = trimCont(first);
    if (end && line === '') continue;
    let emptyCont = false;
    while (!end && i < lines.length) {
      const rawNext = lines[i++]!;
      const next = processLine(rawNext, false);
      current++;
      if (isComment(rawNext)) continue;
      if (next.replace(/^\s+/, '') === '') {
        emptyCont = true;
        continue;
      }
      const [c, e] = trimCont(next);
      line += c;
      end = e;
    }
    if (emptyCont) warnings.push('[WARNING]: Empty continuation line found in:\n    ' + line);
    try {
      nodes.push(nodeFromLine(line, d, start, current));
    } catch (e) {
      if (e instanceof LineError) throw parseError(start, e.message);
      throw e;
    }
  }
  if (warnings.length) warnings.push('[WARNING]: Empty continuation lines will become errors in a future release.');
  if (nodes.length === 0) throw parseError(current, 'file with no instructions', 'a Dockerfile needs at least a FROM instruction');
  return { nodes, escape: d.escape, warnings };
}
