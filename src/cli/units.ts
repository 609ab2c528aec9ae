/** Flag value types of the docker CLI: sizes (go-units), CPUs (NanoCPUs), durations (Go), restart policies. */
import { FlagValueError } from './flags.js';

const MULT: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** go-units RAMInBytes (`-m 512m`, `--shm-size 1g`): binary units, an optional i and b. */
export function ramInBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(s);
  if (!m || (m[1]!.split('.').length > 2)) throw new FlagValueError(`invalid size: '${s}'`);
  return Math.trunc(Number(m[1]) * MULT[(m[2] ?? '').toLowerCase()]!);
}

/** go-units FromHumanSize (decimal units): `--max-layer-size 64g` is binary here, as RAMInBytes. */
export const sizeInBytes = ramInBytes;

/** opts.NanoCPUs: a rational number of CPUs → nano CPUs. */
export function nanoCpus(s: string): number {
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(s) && !/^\d+\/\d+$/.test(s)) throw new FlagValueError(`failed to parse ${s} as a rational number`);
  const v = s.includes('/') ? Number(s.split('/')[0]) / Number(s.split('/')[1]) : Number(s);
  const nano = v * 1e9;
  if (!Number.isFinite(nano)) throw new FlagValueError(`failed to parse ${s} as a rational number`);
  if (Math.abs(nano - Math.round(nano)) > 1e-3) throw new FlagValueError('value is too precise');
  return Math.round(nano);
}

const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration → nanoseconds ("1m30s", "500ms", "0"). */
export function goDuration(s: string): number {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let neg = false;
  let rest = s;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    neg = rest[0] === '-';
    rest = rest.slice(1);
  }
  if (rest === '') throw new FlagValueError(`time: invalid duration ${JSON.stringify(s)}`);
  let total = 0;
  let pos = 0;
  re.lastIndex = 0;
  while (pos < rest.length) {
    re.lastIndex = pos;
    const m = re.exec(rest);
    if (!m) {
      if (/^\d+(\.\d*)?$/.test(rest.slice(pos))) throw new FlagValueError(`time: missing unit in duration ${JSON.stringify(s)}`);
      throw new FlagValueError(`time: invalid duration ${JSON.stringify(s)}`);
    }
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    pos = re.lastIndex;
  }
  return neg ? -total : total;
}

/** opts.ParseRestartPolicy: no, always, unless-stopped, on-failure[:N]. */
export function restartPolicy(s: string): { Name: string; MaximumRetryCount: number } {
  if (s === '') return { Name: '', MaximumRetryCount: 0 };
  const parts = s.split(':');
  if (parts.length > 2) throw new FlagValueError('invalid restart policy format');
  const name = parts[0]!;
  let max = 0;
  if (parts.length === 2) {
    if (!/^-?\d+$/.test(parts[1]!)) throw new FlagValueError('maximum retry count must be an integer');
    max = Number(parts[1]);
  }
  return { Name: name, MaximumRetryCount: max };
}
