/**
 * `-c/--change` instructions of `import` and `commit`: a subset of Dockerfile
 * instructions applied to an image's container config, parsed like Dockerfile lines.
 */
import { invalidArgument } from '../errors/index.js';
import type { ContainerConfig } from '../oci/types.js';

export const CHANGE_INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'USER', 'VOLUME', 'WORKDIR', 'STOPSIGNAL'] as const;

function bad(msg: string, line: string) {
  return invalidArgument('INVALID_CHANGE', msg, { where: line, hint: `allowed instructions: ${CHANGE_INSTRUCTIONS.join(', ')}` });
}

/** JSON array form, or undefined when the text is not a JSON array of strings. */
function jsonArray(s: string): string[] | undefined {
  const t = s.trim();
  if (!t.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(t) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    /* shell form */
  }
  return undefined;
}

/** Splits `k=v k2="v 2"` words honouring double and single quotes and backslashes. */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let q: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q) {
      if (c === q) q = undefined;
      else if (c === '\\' && q === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      q = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (q) throw invalidArgument('INVALID_CHANGE', `unterminated quote in ${JSON.stringify(s)}`);
  if (inWord) out.push(cur);
  return out;
}

function keyValues(rest: string, line: string, instr: string): [string, string][] {
  const words = splitWords(rest);
  if (words.length === 0) throw bad(`${instr} requires at least one argument`, line);
  if (!words[0]!.includes('=')) {
    // legacy form: KEY value...
    const m = /^\s*(\S+)\s+([\s\S]*)$/.exec(rest);
    if (!m) throw bad(`${instr} requires at least two arguments`, line);
    return [[m[1]!, m[2]!.trim()]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw bad(`${instr} names can not be blank`, line);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

/** Applies `changes` to a copy of `cfg` and returns it. */
export function applyChanges(cfg: ContainerConfig, changes: string[]): ContainerConfig {
  const c: ContainerConfig = structuredClone(cfg);
  for (const raw of changes) {
    const line = raw.trim();
    const m = /^(\S+)\s*([\s\S]*)$/.exec(line);
    if (!m) throw bad('empty change', raw);
    const instr = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    if (!(CHANGE_INSTRUCTIONS as readonly string[]).includes(instr)) {
      // (dockerd names the instruction as its Dockerfile parser keeps it: in lower case)
      throw bad(`${m[1]!.toLowerCase()} is not a valid change command`, raw);
    }
    switch (instr) {
      case 'CMD':
      case 'ENTRYPOINT': {
        if (rest === '' && instr === 'CMD') throw bad('CMD requires at least one argument', raw);
        const arr = jsonArray(rest);
        const v = arr ?? (rest === '' ? [] : ['/bin/sh', '-c', rest]);
        if (instr === 'CMD') c.Cmd = v;
        else {
          c.Entrypoint = v.length ? v : null;
          // Docker: setting ENTRYPOINT resets an inherited CMD
          c.Cmd = null;
        }
        break;
      }
      case 'ENV': {
        const env = [...(c.Env ?? [])];
        for (const [k, v] of keyValues(rest, raw, 'ENV')) {
          const i = env.findIndex((e) => e.split('=')[0] === k);
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        c.Env = env;
        break;
      }
      case 'LABEL': {
        const labels = { ...(c.Labels ?? {}) };
        for (const [k, v] of keyValues(rest, raw, 'LABEL')) labels[k] = v;
        c.Labels = labels;
        break;
      }
      case 'EXPOSE': {
        const ports = { ...(c.ExposedPorts ?? {}) };
        const words = splitWords(rest);
        if (words.length === 0) throw bad('EXPOSE requires at least one argument', raw);
        for (const w of words) {
          const pm = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
          if (!pm) throw bad(`invalid containerPort: ${w}`, raw);
          const lo = Number(pm[1]);
          const hi = pm[2] ? Number(pm[2]) : lo;
          if (lo < 1 || hi > 65535 || hi < lo) throw bad(`invalid containerPort: ${w}`, raw);
          const proto = (pm[3] ?? 'tcp').toLowerCase();
          for (let p = lo; p <= hi; p++) ports[`${p}/${proto}`] = {};
        }
        c.ExposedPorts = ports;
        break;
      }
      case 'USER':
        if (!rest) throw bad('USER requires exactly one argument', raw);
        c.User = rest;
        break;
      case 'WORKDIR': {
        if (!rest) throw bad('WORKDIR requires exactly one argument', raw);
        const base = c.WorkingDir || '/';
        c.WorkingDir = rest.startsWith('/') ? rest : base.replace(/\/$/, '') + '/' + rest;
        break;
      }
      case 'VOLUME': {
        const vols = { ...(c.Volumes ?? {}) };
        const list = jsonArray(rest) ?? splitWords(rest);
        if (list.length === 0) throw bad('VOLUME requires at least one argument', raw);
        for (const v of list) {
          if (!v.trim()) throw bad('VOLUME specified can not be an empty string', raw);
          vols[v] = {};
        }
        c.Volumes = vols;
        break;
      }
      case 'STOPSIGNAL':
        if (!rest) throw bad('STOPSIGNAL requires exactly one argument', raw);
        c.StopSignal = rest;
        break;
      case 'ONBUILD': {
        if (!rest) throw bad('ONBUILD requires at least one argument', raw);
        const inner = rest.split(/\s+/)[0]!.toUpperCase();
        if (inner === 'ONBUILD') throw bad('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed', raw);
        if (inner === 'FROM' || inner === 'MAINTAINER') throw bad(`${inner} isn't allowed as an ONBUILD trigger`, raw);
        c.OnBuild = [...(c.OnBuild ?? []), rest];
        break;
      }
    }
  }
  return c;
}
