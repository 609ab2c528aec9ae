/**
 * Parsed nodes → typed instructions, stages and the ARGs before the first FROM, with the
 * checks and messages of moby/buildkit's instructions package (parse.go, bflag.go) as Docker
 * 20.10 vendors it. Errors name the line: "dockerfile parse error line 3: unknown instruction: FOO".
 */
import type { Node } from './parser.js';
import { parseError } from './parser.js';

export interface HealthConfig {
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

interface Base {
  /** the instruction as written (continuations joined, trimmed): Docker's "Step" text */
  code: string;
  line: number;
}

export type Command = Base &
  (
    | { kind: 'env'; pairs: [string, string][] }
    | { kind: 'label'; pairs: [string, string][]; noExpand?: boolean }
    | { kind: 'maintainer'; value: string }
    | { kind: 'add' | 'copy'; paths: string[]; chown: string; chmod: string; from: string }
    | { kind: 'onbuild'; expression: string }
    | { kind: 'workdir'; path: string }
    | { kind: 'run'; cmdLine: string[]; prependShell: boolean }
    | { kind: 'cmd' | 'entrypoint'; cmdLine: string[] | null; prependShell: boolean }
    | { kind: 'healthcheck'; health: HealthConfig }
    | { kind: 'expose'; ports: string[] }
    | { kind: 'user'; user: string }
    | { kind: 'volume'; volumes: string[] }
    | { kind: 'stopsignal'; signal: string }
    | { kind: 'arg'; args: { key: string; value?: string }[] }
    | { kind: 'shell'; shell: string[] }
  );

export interface Stage {
  baseName: string;
  /** lower-cased `AS` name */
  name: string;
  platform: string;
  code: string;
  line: number;
  commands: Command[];
}

export type ArgCommand = Extract<Command, { kind: 'arg' }>;

class LineError extends Error {}

/** BFlags: `--name=value` string flags. */
function parseFlags(node: Node, allowed: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of node.flags) {
    if (!f.startsWith('--')) throw new LineError(`Arg should start with -- : ${f}`);
    const body = f.slice(2);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    if (!allowed.includes(name)) throw new LineError(`Unknown flag: ${name}`);
    if (out.has(name)) throw new LineError(`Duplicate flag specified: ${name}`);
    if (eq < 0) throw new LineError(`Missing a value on flag: ${name}`);
    out.set(name, body.slice(eq + 1));
  }
  return out;
}

const errAtLeastOne = (c: string) => new LineError(`${c} requires at least one argument`);
const errExactlyOne = (c: string) => new LineError(`${c} requires exactly one argument`);

function handleJSONArgs(node: Node, args: string[]): string[] {
  if (args.length === 0) return [];
  if (node.json) return args;
  return [args.join(' ')];
}

function kvps(args: string[], name: string): [string, string][] {
  if (args.length === 0) throw errAtLeastOne(name);
  if (args.length % 2 !== 0) throw new LineError(`Bad input to ${name}, too many arguments`);
  const out: [string, string][] = [];
  for (let j = 0; j < args.length; j += 2) {
    if (args[j]!.length === 0) throw new LineError(`${name} names can not be blank`);
    out.push([args[j]!, args[j + 1]!]);
  }
  return out;
}

const UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds. */
export function parseGoDuration(s: string): number {
  const orig = s;
  let neg = false;
  if (s[0] === '-' || s[0] === '+') {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new LineError(`time: invalid duration ${JSON.stringify(orig)}`);
  let total = 0;
  while (s !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s)!;
    if (m[0] === '' || m[0] === '.') throw new LineError(`time: invalid duration ${JSON.stringify(orig)}`);
    s = s.slice(m[0].length);
    const u = /^[^\d.]+/.exec(s)?.[0];
    if (!u) throw new LineError(`time: missing unit in duration ${JSON.stringify(orig)}`);
    const unit = UNITS[u];
    if (unit === undefined) throw new LineError(`time: unknown unit ${JSON.stringify(u)} in duration ${JSON.stringify(orig)}`);
    s = s.slice(u.length);
    total += Number(m[1] || '0') * unit + (m[2] ? Math.round(Number('0.' + m[2]) * unit) : 0);
  }
  return neg ? -total : total;
}

function interval(flags: Map<string, string>, name: string): number {
  const v = flags.get(name) ?? '';
  if (v === '') return 0;
  const d = parseGoDuration(v);
  if (d < 1e6) throw new LineError(`Interval ${JSON.stringify(name)} cannot be less than 1ms`);
  return d;
}

function parseHealthcheck(node: Node): HealthConfig {
  if (node.args.length === 0) throw errAtLeastOne('HEALTHCHECK');
  let typ = node.args[0]!.toUpperCase();
  const args = node.args.slice(1);
  if (typ === 'NONE') {
    if (args.length !== 0) throw new LineError('HEALTHCHECK NONE takes no arguments');
    parseFlags(node, []);
    return { Test: ['NONE'] };
  }
  const flags = parseFlags(node, ['interval', 'timeout', 'start-period', 'retries']);
  if (typ !== 'CMD') throw new LineError(`Unknown type ${JSON.stringify(typ)} in HEALTHCHECK (try CMD)`);
  const cmd = handleJSONArgs(node, args);
  if (cmd.length === 0) throw new LineError('Missing command after HEALTHCHECK CMD');
  if (!node.json) typ = 'CMD-SHELL';
  const h: HealthConfig = { Test: [typ, ...cmd] };
  const i = interval(flags, 'interval');
  const t = interval(flags, 'timeout');
  const sp = interval(flags, 'start-period');
  if (i) h.Interval = i;
  if (t) h.Timeout = t;
  if (sp) h.StartPeriod = sp;
  const r = flags.get('retries') ?? '';
  if (r !== '') {
    if (!/^[+-]?\d+$/.test(r)) throw new LineError(`strconv.ParseInt: parsing ${JSON.stringify(r)}: invalid syntax`);
    const n = Number(r);
    if (n < 1) throw new LineError(`--retries must be at least 1 (not ${n})`);
    h.Retries = n;
  }
  return h;
}

function parseCommand(node: Node): Command | Stage {
  const code = node.original.trim();
  const line = node.startLine;
  const base = { code, line };
  const noFlags = () => parseFlags(node, []);
  switch (node.cmd) {
    case 'env':
      noFlags();
      return { ...base, kind: 'env', pairs: kvps(node.args, 'ENV') };
    case 'label':
      noFlags();
      return { ...base, kind: 'label', pairs: kvps(node.args, 'LABEL') };
    case 'maintainer':
      if (node.args.length !== 1) throw errExactlyOne('MAINTAINER');
      noFlags();
      return { ...base, kind: 'maintainer', value: node.args[0]! };
    case 'add':
    case 'copy': {
      const name = node.cmd.toUpperCase();
      if (node.args.length < 2) throw new LineError(`${name} requires at least two arguments, but only one was provided. Destination could not be determined`);
      const f = parseFlags(node, node.cmd === 'copy' ? ['chown', 'from', 'chmod'] : ['chown', 'chmod']);
      return { ...base, kind: node.cmd, paths: [...node.args], chown: f.get('chown') ?? '', chmod: f.get('chmod') ?? '', from: f.get('from') ?? '' };
    }
    case 'from': {
      const args = node.args;
      let name = '';
      if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
        name = args[2]!.toLowerCase();
        if (!/^[a-z][a-z0-9-_.]*$/.test(name)) throw new LineError(`invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`);
      } else if (args.length !== 1) throw new LineError('FROM requires either one or three arguments');
      const f = parseFlags(node, ['platform']);
      return { baseName: args[0]!, name, platform: f.get('platform') ?? '', code, line, commands: [] };
    }
    case 'onbuild': {
      if (node.args.length === 0) throw errAtLeastOne('ONBUILD');
      noFlags();
      const trigger = node.args[0]!.trim().toUpperCase();
      if (trigger === 'ONBUILD') throw new LineError('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (trigger === 'MAINTAINER' || trigger === 'FROM') throw new LineError(`${trigger} isn't allowed as an ONBUILD trigger`);
      return { ...base, kind: 'onbuild', expression: node.original.replace(/^\s*ONBUILD\s*/i, '') };
    }
    case 'workdir':
      if (node.args.length !== 1) throw errExactlyOne('WORKDIR');
      noFlags();
      return { ...base, kind: 'workdir', path: node.args[0]! };
    case 'run': {
      const f = node.flags.map((x) => /^--([^=]*)/.exec(x)?.[1] ?? x);
      const bk = f.find((x) => x === 'mount' || x === 'network' || x === 'security');
      if (bk) {
        throw new LineError(`the --${bk} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled (RUN --${bk} is BuildKit syntax; layerbox builds as Docker's classic builder does)`);
      }
      noFlags();
      return { ...base, kind: 'run', cmdLine: handleJSONArgs(node, node.args), prependShell: !node.json };
    }
    case 'cmd':
      noFlags();
      return { ...base, kind: 'cmd', cmdLine: handleJSONArgs(node, node.args), prependShell: !node.json };
    case 'entrypoint': {
      noFlags();
      const c = handleJSONArgs(node, node.args);
      return { ...base, kind: 'entrypoint', cmdLine: c.length === 0 ? null : c, prependShell: !node.json };
    }
    case 'healthcheck':
      return { ...base, kind: 'healthcheck', health: parseHealthcheck(node) };
    case 'expose':
      if (node.args.length === 0) throw errAtLeastOne('EXPOSE');
      noFlags();
      return { ...base, kind: 'expose', ports: [...node.args].sort() };
    case 'user':
      if (node.args.length !== 1) throw errExactlyOne('USER');
      noFlags();
      return { ...base, kind: 'user', user: node.args[0]! };
    case 'volume': {
      if (node.args.length === 0) throw errAtLeastOne('VOLUME');
      noFlags();
      const volumes = node.args.map((v) => v.trim());
      if (volumes.some((v) => v === '')) throw new LineError('VOLUME specified can not be an empty string');
      return { ...base, kind: 'volume', volumes };
    }
    case 'stopsignal':
      if (node.args.length !== 1) throw errExactlyOne('STOPSIGNAL');
      return { ...base, kind: 'stopsignal', signal: node.args[0]! };
    case 'arg': {
      if (node.args.length < 1) throw errAtLeastOne('ARG');
      const args = node.args.map((a) => {
        const i = a.indexOf('=');
        if (i < 0) return { key: a };
        if (i === 0) throw new LineError('ARG names can not be blank');
        return { key: a.slice(0, i), value: a.slice(i + 1) };
      });
      return { ...base, kind: 'arg', args };
    }
    case 'shell': {
      noFlags();
      const s = handleJSONArgs(node, node.args);
      if (s.length === 0) throw errAtLeastOne('SHELL');
      if (!node.json) throw new LineError(`SHELL requires the arguments to be in JSON form`);
      return { ...base, kind: 'shell', shell: s };
    }
  }
  throw new LineError(`unknown instruction: ${node.cmd.toUpperCase()}`);
}

const KNOWN = ['add', 'arg', 'cmd', 'copy', 'entrypoint', 'env', 'expose', 'from', 'healthcheck', 'label', 'maintainer', 'onbuild', 'run', 'shell', 'stopsignal', 'user', 'volume', 'workdir'];

function unknownHint(cmd: string): string {
  const up = cmd.toUpperCase();
  const near = KNOWN.find((k) => {
    // one edit away, or the same letters
    const a = k;
    const b = cmd;
    if (Math.abs(a.length - b.length) > 1) return false;
    let i = 0;
    let j = 0;
    let edits = 0;
    while (i < a.length && j < b.length) {
      if (a[i] === b[j]) {
        i++;
        j++;
        continue;
      }
      if (++edits > 1) return false;
      if (a.length > b.length) i++;
      else if (b.length > a.length) j++;
      else {
        i++;
        j++;
      }
    }
    return edits + (a.length - i) + (b.length - j) <= 1;
  });
  return near ? `did you mean ${near.toUpperCase()}? ${up} is not a Dockerfile instruction` : `${up} is not a Dockerfile instruction; the instructions are ${KNOWN.map((k) => k.toUpperCase()).join(', ')}`;
}

/** One node → its command (an ONBUILD trigger, a --label LABEL). Throws with the node's line. */
export function parseInstruction(node: Node): Command | Stage {
  try {
    return parseCommand(node);
  } catch (e) {
    if (e instanceof LineError) {
      const unknown = e.message.startsWith('unknown instruction');
      throw parseError(node.startLine, e.message, unknown ? unknownHint(node.cmd) : undefined);
    }
    throw e;
  }
}

/** instructions.Parse: the ARGs before the first FROM, then the stages with their commands. */
export function parseStages(nodes: Node[]): { stages: Stage[]; metaArgs: ArgCommand[] } {
  const stages: Stage[] = [];
  const metaArgs: ArgCommand[] = [];
  for (const n of nodes) {
    const c = parseInstruction(n);
    if ('baseName' in c) {
      stages.push(c);
      continue;
    }
    if (stages.length === 0) {
      if (c.kind === 'arg') {
        metaArgs.push(c);
        continue;
      }
      throw parseError(n.startLine, 'no build stage in current context', `${n.cmd.toUpperCase()} must come after a FROM instruction (only ARG may come before the first FROM)`);
    }
    stages[stages.length - 1]!.commands.push(c);
  }
  return { stages, metaArgs };
}
