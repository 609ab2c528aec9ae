import { readFileSync } from 'node:fs';

/**
 * A process identity that survives pid reuse: pid plus its start time (field 22 of
 * /proc/<pid>/stat, in clock ticks since boot). Used by locks and leases.
 */
export interface ProcId {
  pid: number;
  start: number;
}

/**
 * The start time of a live process, or undefined when there is none. A zombie (state Z or X)
 * counts as gone: it has exited and holds nothing, and whether it is ever reaped is up to a
 * parent — on hosts whose init does not reap orphans, a killed process's zombie stays.
 */
export function procStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // comm (field 2) may contain spaces and parens: split after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
    // rest[0] is field 3 (state); starttime is field 22 -> rest[19]
    const v = Number(rest[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

let self: ProcId | undefined;
export function selfId(): ProcId {
  return (self ??= { pid: process.pid, start: procStart(process.pid) ?? 0 });
}

export function isAlive(id: ProcId): boolean {
  if (id.pid === process.pid) return id.start === selfId().start;
  const s = procStart(id.pid);
  return s !== undefined && s === id.start;
}

/** Boot id: a container recorded as running under another boot is stopped. */
export function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}
