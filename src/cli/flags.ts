/**
 * Docker's flag grammar, as spf13/pflag parses it for the docker CLI (cobra):
 *
 * - `--flag=value`, `--flag value`; `-f value`, `-fvalue`, `-f=value`;
 * - booleans as `--rm`, `--rm=true`, `--rm=false` (never `--rm false`), combined short
 *   booleans `-itd`, and a short value flag at the end of a group (`-itp 80`, `-itp80`);
 * - repeated flags accumulate (lists) or the last one wins (scalars);
 * - `--` ends the flags; with `interspersed: false` (run, create, exec) the first positional
 *   ends them too, so `run IMAGE CMD --flag` hands `--flag` to the command;
 * - pflag's messages: `unknown flag: --x`, `unknown shorthand flag: 'x' in -x`,
 *   `flag needs an argument: --x`, `bad flag syntax: ---x`,
 *   `invalid argument "v" for "-m, --memory" flag: …`.
 *
 * Written here rather than taken from a library: commander (used before) stores `-m=x` as
 * "=x", cannot take `--rm=true`, and has no non-interspersed mode with pflag's rules; the
 * npm argument parsers (yargs-parser, minimist, mri, arg) each differ from pflag on one of
 * these points, and the CLI's contract is to parse exactly what `docker` parses.
 */

export type FlagKind = 'bool' | 'string' | 'list' | 'int' | 'uint' | 'float';

export interface FlagSpec<T = unknown> {
  kind: FlagKind;
  name: string;
  short?: string;
  usage: string;
  /** the value type pflag shows in help ("string", "list", "int", "bytes", …); none for bool */
  typeName: string;
  defaultValue: T;
  /** how the default is shown in help (pflag prints `(default …)` when it is not the zero value) */
  defaultText?: string;
  /** converts one occurrence; throws FlagValueError with the reason pflag would give */
  parse?: (raw: string) => unknown;
  hidden?: boolean;
  /** a deprecated flag still parses, with a warning */
  deprecated?: string;
}

/** The reason a value is refused, as the Value's Set would return it. */
export class FlagValueError extends Error {}

/** A flag syntax error: the message is pflag's; the CLI adds "See 'layerbox … --help'." and exits 125. */
export class FlagError extends Error {}

/** `--help` (or the deprecated `-h`) was given where flags are parsed. */
export class HelpRequested extends Error {}

const parseBool = (raw: string): boolean => {
  // strconv.ParseBool
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(raw)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(raw)) return false;
  throw new FlagValueError(`strconv.ParseBool: parsing ${JSON.stringify(raw)}: invalid syntax`);
};

const parseInt64 = (raw: string): number => {
  // strconv.ParseInt(s, 0, 64): decimal, 0x, 0o, 0b, leading sign
  const m = /^([+-])?(0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]+|0[bB][01_]+|[0-9_]+)$/.exec(raw);
  if (!m || raw.includes('__') || /_$/.test(raw)) throw new FlagValueError(`strconv.ParseInt: parsing ${JSON.stringify(raw)}: invalid syntax`);
  let body = m[2]!.replace(/_/g, '');
  if (/^0[oO]/.test(body)) body = '0o' + body.slice(2);
  else if (/^0[0-7]+$/.test(body)) body = '0o' + body.slice(1);
  const n = Number(body);
  if (!Number.isSafeInteger(n)) throw new FlagValueError(`strconv.ParseInt: parsing ${JSON.stringify(raw)}: value out of range`);
  return m[1] === '-' ? -n : n;
};

const parseUint = (raw: string): number => {
  if (raw.startsWith('-') || raw.startsWith('+')) throw new FlagValueError(`strconv.ParseUint: parsing ${JSON.stringify(raw)}: invalid syntax`);
  try {
    return parseInt64(raw);
  } catch {
    throw new FlagValueError(`strconv.ParseUint: parsing ${JSON.stringify(raw)}: invalid syntax`);
  }
};

const parseFloat64 = (raw: string): number => {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new FlagValueError(`strconv.ParseFloat: parsing ${JSON.stringify(raw)}: invalid syntax`);
  return n;
};

function valueFlag<T>(name: string, short: string, usage: string, opts: { default?: T; defaultText?: string; typeName?: string; hidden?: boolean; parse?: (raw: string) => T }): FlagSpec<T | undefined> {
  const shown = opts.defaultText ?? (typeof opts.default === 'string' && opts.default !== '' ? JSON.stringify(opts.default) : undefined);
  return {
    kind: 'string',
    name,
    ...(short ? { short } : {}),
    usage,
    typeName: opts.typeName ?? 'string',
    defaultValue: opts.default,
    ...(shown !== undefined ? { defaultText: shown } : {}),
    ...(opts.hidden ? { hidden: true } : {}),
    ...(opts.parse ? { parse: opts.parse } : {}),
  };
}

function listFlag<T>(name: string, short: string, usage: string, opts: { typeName?: string; parse?: (raw: string) => T; hidden?: boolean; defaultText?: string }): FlagSpec<T[]> {
  return { kind: 'list', name, ...(short ? { short } : {}), usage, typeName: opts.typeName ?? 'list', defaultValue: [], ...(opts.defaultText ? { defaultText: opts.defaultText } : {}), ...(opts.parse ? { parse: opts.parse } : {}), ...(opts.hidden ? { hidden: true } : {}) };
}

/** Flag constructors. `name` is the long name; `short` one letter or ''. */
export const flag = {
  bool(name: string, short: string, usage: string, opts: { hidden?: boolean; deprecated?: string; default?: boolean } = {}): FlagSpec<boolean> {
    return { kind: 'bool', name, ...(short ? { short } : {}), usage, typeName: '', defaultValue: opts.default ?? false, ...(opts.default ? { defaultText: 'true' } : {}), ...(opts.hidden ? { hidden: true } : {}), ...(opts.deprecated ? { deprecated: opts.deprecated } : {}) };
  },
  /** A single value (the last occurrence wins). */
  string(name: string, short: string, usage: string, opts: { default?: string; defaultText?: string; typeName?: string; hidden?: boolean } = {}): FlagSpec<string | undefined> {
    return valueFlag<string>(name, short, usage, opts);
  },
  /** A single value converted by `parse` (sizes, CPUs, policies). */
  value<T>(name: string, short: string, usage: string, opts: { parse: (raw: string) => T; default?: T; defaultText?: string; typeName?: string; hidden?: boolean }): FlagSpec<T | undefined> {
    return valueFlag<T>(name, short, usage, opts);
  },
  /** Docker's opts.ListOpts: every occurrence appended, values taken whole (no comma split). */
  list(name: string, short: string, usage: string, opts: { typeName?: string; hidden?: boolean; defaultText?: string } = {}): FlagSpec<string[]> {
    return listFlag<string>(name, short, usage, opts);
  },
  /** A list whose values are converted by `parse`. */
  values<T>(name: string, short: string, usage: string, opts: { parse: (raw: string) => T; typeName?: string; hidden?: boolean; defaultText?: string }): FlagSpec<T[]> {
    return listFlag<T>(name, short, usage, opts);
  },
  int(name: string, short: string, usage: string, opts: { default?: number; typeName?: string; hidden?: boolean } = {}): FlagSpec<number | undefined> {
    return { kind: 'int', name, ...(short ? { short } : {}), usage, typeName: opts.typeName ?? 'int', defaultValue: opts.default, ...(opts.default !== undefined && opts.default !== 0 ? { defaultText: String(opts.default) } : {}), ...(opts.hidden ? { hidden: true } : {}) };
  },
  uint(name: string, short: string, usage: string, opts: { default?: number; typeName?: string } = {}): FlagSpec<number | undefined> {
    return { kind: 'uint', name, ...(short ? { short } : {}), usage, typeName: opts.typeName ?? 'uint', defaultValue: opts.default, ...(opts.default ? { defaultText: String(opts.default) } : {}) };
  },
  float(name: string, short: string, usage: string, opts: { default?: number; typeName?: string } = {}): FlagSpec<number | undefined> {
    return { kind: 'float', name, ...(short ? { short } : {}), usage, typeName: opts.typeName ?? 'float', defaultValue: opts.default };
  },
};

export type FlagSet = Record<string, FlagSpec>;

/** The parsed values: a key per flag of the set, typed by its spec; `changed` tells which were given. */
export type FlagValues<F extends FlagSet> = { [K in keyof F]: F[K] extends FlagSpec<infer T> ? T : never } & { readonly changed: ReadonlySet<string> };

export interface ParseResult<F extends FlagSet> {
  values: FlagValues<F>;
  args: string[];
  /** deprecation warnings to print */
  warnings: string[];
}

/** pflag's name for a flag in messages: `-m, --memory` or `--rm`. */
export function flagDisplay(s: FlagSpec): string {
  return s.short ? `-${s.short}, --${s.name}` : `--${s.name}`;
}

/**
 * Parses argv against a flag set with pflag's rules. `helpShort` is true when `-h` means
 * help (commands that do not define `-h` themselves), as the docker CLI's cobra setup does.
 */
export function parseFlags<F extends FlagSet>(set: F, argv: string[], opts: { interspersed?: boolean; helpShort?: boolean } = {}): ParseResult<F> {
  const interspersed = opts.interspersed ?? true;
  const byName = new Map<string, [string, FlagSpec]>();
  const byShort = new Map<string, [string, FlagSpec]>();
  for (const [key, s] of Object.entries(set)) {
    byName.set(s.name, [key, s]);
    if (s.short) byShort.set(s.short, [key, s]);
  }
  const values: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(set)) values[key] = s.kind === 'list' ? [] : s.defaultValue;
  const changed = new Set<string>();
  const warnings: string[] = [];
  const args: string[] = [];

  const set1 = (key: string, s: FlagSpec, raw: string) => {
    let v: unknown;
    try {
      switch (s.kind) {
        case 'bool':
          v = parseBool(raw);
          break;
        case 'int':
          v = s.parse ? s.parse(raw) : parseInt64(raw);
          break;
        case 'uint':
          v = s.parse ? s.parse(raw) : parseUint(raw);
          break;
        case 'float':
          v = s.parse ? s.parse(raw) : parseFloat64(raw);
          break;
        default:
          v = s.parse ? s.parse(raw) : raw;
      }
    } catch (e) {
      if (e instanceof FlagValueError) throw new FlagError(`invalid argument ${JSON.stringify(raw)} for ${JSON.stringify(flagDisplay(s))} flag: ${e.message}`);
      throw e;
    }
    if (s.kind === 'list') (values[key] as unknown[]).push(v);
    else values[key] = v;
    changed.add(key);
    if (s.deprecated) warnings.push(`Flag --${s.name} has been deprecated, ${s.deprecated}`);
  };

  let i = 0;
  while (i < argv.length) {
    const a = argv[i++]!;
    if (a.length < 2 || a[0] !== '-') {
      if (!interspersed) {
        args.push(a, ...argv.slice(i));
        break;
      }
      args.push(a);
      continue;
    }
    if (a[1] === '-') {
      if (a.length === 2) {
        args.push(...argv.slice(i));
        break;
      }
      const body = a.slice(2);
      if (body[0] === '-' || body[0] === '=') throw new FlagError(`bad flag syntax: ${a}`);
      const eq = body.indexOf('=');
      const name = eq < 0 ? body : body.slice(0, eq);
      const found = byName.get(name);
      if (!found) {
        if (name === 'help') throw new HelpRequested();
        throw new FlagError(`unknown flag: --${name}`);
      }
      const [key, s] = found;
      if (eq >= 0) set1(key, s, body.slice(eq + 1));
      else if (s.kind === 'bool') set1(key, s, 'true');
      else if (i < argv.length) set1(key, s, argv[i++]!);
      else throw new FlagError(`flag needs an argument: ${a}`);
      continue;
    }
    // a group of shorthands: -itd, -p80, -m=4m
    let shorts = a.slice(1);
    while (shorts.length > 0) {
      const c = shorts[0]!;
      const found = byShort.get(c);
      if (!found) {
        if (c === 'h' && opts.helpShort) throw new HelpRequested('Flag shorthand -h has been deprecated, please use --help');
        throw new FlagError(`unknown shorthand flag: '${c}' in -${shorts}`);
      }
      const [key, s] = found;
      if (shorts.length > 2 && shorts[1] === '=') {
        set1(key, s, shorts.slice(2));
        shorts = '';
      } else if (s.kind === 'bool') {
        set1(key, s, 'true');
        shorts = shorts.slice(1);
      } else if (shorts.length > 1) {
        set1(key, s, shorts.slice(1));
        shorts = '';
      } else if (i < argv.length) {
        set1(key, s, argv[i++]!);
        shorts = '';
      } else throw new FlagError(`flag needs an argument: '${c}' in -${shorts}`);
    }
  }
  Object.defineProperty(values, 'changed', { value: changed, enumerable: false });
  return { values: values as FlagValues<F>, args, warnings };
}

/**
 * pflag's FlagUsagesWrapped(cols): `  -m, --memory bytes   Memory limit`, the usage column
 * 3 spaces after the longest flag, wrapped as pflag wraps, `(default …)` appended when the
 * default is not the zero value. The docker CLI passes the terminal width - 1 (79).
 */
export function flagUsages(set: FlagSet, cols = 79): string {
  const specs = Object.values(set)
    .filter((s) => !s.hidden && !s.deprecated)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const rows = specs.map((s) => {
    let left = s.short ? `  -${s.short}, --${s.name}` : `      --${s.name}`;
    if (s.typeName) left += ` ${s.typeName}`;
    const usage = s.defaultText !== undefined ? `${s.usage} (default ${s.defaultText})` : s.usage;
    return [left, usage] as const;
  });
  const col = Math.max(0, ...rows.map(([l]) => l.length)) + 3;
  return rows.map(([left, usage]) => left.padEnd(col) + pflagWrap(col, cols, usage) + '\n').join('');
}

/** pflag's wrapN: the line up to the last blank before `i`, unless all of it fits in i+slop. */
function wrapN(i: number, slop: number, s: string): [string, string] {
  if (i + slop > s.length) return [s, ''];
  const w = Math.max(s.lastIndexOf(' ', i - 1), s.lastIndexOf('\t', i - 1), s.lastIndexOf('\n', i - 1));
  if (w <= 0) return [s, ''];
  const nl = s.lastIndexOf('\n', i - 1);
  if (nl > 0 && nl < w) return [s.slice(0, nl), s.slice(nl + 1)];
  return [s.slice(0, w), s.slice(w + 1)];
}

/** pflag's wrap(i, w, s): text for a column starting at i in a line of width w. */
function pflagWrap(i: number, w: number, s: string): string {
  let width = w - i;
  let r = '';
  if (width < 24) {
    i = 16;
    width = w - i;
    r += '\n' + ' '.repeat(i);
  }
  const indentNl = (t: string) => t.replace(/\n/g, '\n' + ' '.repeat(i));
  if (width < 24) return s.replace(/\n/g, r);
  const slop = 5;
  width -= slop;
  let [l, rest] = wrapN(width, slop, s);
  r += indentNl(l);
  while (rest !== '') {
    let t: string;
    [t, rest] = wrapN(width, slop, rest);
    r += '\n' + ' '.repeat(i) + indentNl(t);
  }
  return r;
}
