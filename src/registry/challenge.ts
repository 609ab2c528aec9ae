/**
 * `WWW-Authenticate` parsing (RFC 9110 §11.6.1): a header may carry several challenges,
 * separated by commas, and parameter values may be quoted strings that contain commas,
 * `=` and escaped quotes, e.g.
 *   Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push", Basic realm="x"
 * The parser never throws: what it cannot read it skips.
 */

export interface Challenge {
  /** lower-cased scheme: `bearer`, `basic`, … */
  scheme: string;
  /** lower-cased parameter names → values */
  params: Record<string, string>;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

class Cursor {
  i = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.i >= this.s.length;
  }
  peek(): string {
    return this.s[this.i] ?? '';
  }
  skipWs(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.i++;
  }
  skipWsAndCommas(): void {
    while (this.peek() === ' ' || this.peek() === '\t' || this.peek() === ',') this.i++;
  }
  token(): string {
    const start = this.i;
    while (!this.done && TCHAR.test(this.peek())) this.i++;
    return this.s.slice(start, this.i);
  }
  quoted(): string {
    // at opening quote
    this.i++;
    let out = '';
    while (!this.done) {
      const c = this.s[this.i++]!;
      if (c === '\\' && !this.done) out += this.s[this.i++]!;
      else if (c === '"') return out;
      else out += c;
    }
    return out; // unterminated: take what there is
  }
}

/** Parses one or more `WWW-Authenticate` header values into challenges, in order. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const v of values) parseInto(v.slice(0, 16384), out);
  return out;
}

function parseInto(s: string, out: Challenge[]): void {
  const c = new Cursor(s);
  let current: Challenge | undefined;
  while (!c.done) {
    c.skipWsAndCommas();
    if (c.done) break;
    const tok = c.token();
    if (!tok) {
      // garbage: skip a stray quoted string whole, else one character
      if (c.peek() === '"') c.quoted();
      else c.i++;
      continue;
    }
    c.skipWs();
    if (c.peek() === '=' && current) {
      // auth-param of the current challenge (`name=value`), unless it is token68 padding
      c.i++;
      c.skipWs();
      let value: string;
      if (c.peek() === '"') value = c.quoted();
      else {
        const vs = c.i;
        while (!c.done && c.peek() !== ',' && c.peek() !== ' ' && c.peek() !== '\t') c.i++;
        value = s.slice(vs, c.i);
      }
      const name = tok.toLowerCase();
      if (!(name in current.params)) current.params[name] = value;
      continue;
    }
    if (c.peek() === '=' && !current) {
      // a parameter before any scheme: skip its value
      c.i++;
      c.skipWs();
      if (c.peek() === '"') c.quoted();
      else while (!c.done && c.peek() !== ',') c.i++;
      continue;
    }
    // a new challenge: `scheme [token68 | params]`
    current = { scheme: tok.toLowerCase(), params: {} };
    out.push(current);
    // token68 (e.g. `Negotiate abc==`): a token followed by '=' padding and then a comma/end
    const save = c.i;
    const t68 = /^[A-Za-z0-9\-._~+/]+=*/.exec(s.slice(c.i));
    if (t68) {
      const after = s.slice(c.i + t68[0].length).trimStart();
      if (t68[0].endsWith('=') ? after === '' || after.startsWith(',') : false) {
        current.params[''] = t68[0];
        c.i += t68[0].length;
        continue;
      }
    }
    c.i = save;
  }
}

/** The first challenge with the given scheme. */
export function findChallenge(chs: readonly Challenge[], scheme: 'bearer' | 'basic'): Challenge | undefined {
  return chs.find((c) => c.scheme === scheme);
}
