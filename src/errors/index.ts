/**
 * One error type for the whole engine. `kind` is closed (the API maps it to an HTTP
 * status, the CLI to an exit code); `code` is a stable machine-readable identifier;
 * the message says what went wrong, `where` says on what, `hint` what to do next.
 */
import { readFileSync, realpathSync, statSync, statfsSync } from 'node:fs';

export type ErrorKind =
  | 'not-found'
  | 'invalid-argument'
  | 'conflict'
  | 'unauthorized'
  | 'forbidden'
  | 'unavailable'
  | 'data-loss'
  | 'resource-exhausted'
  | 'failed-precondition'
  | 'unsupported'
  | 'cancelled'
  | 'internal';

export interface EngineErrorOptions {
  /** the object the error is about: a path, an image reference, a registry URL, a digest */
  where?: string;
  /** what the user can do about it */
  hint?: string;
  cause?: unknown;
}

export class EngineError extends Error {
  override readonly name = 'EngineError';
  readonly kind: ErrorKind;
  readonly code: string;
  readonly where: string | undefined;
  readonly hint: string | undefined;

  constructor(kind: ErrorKind, code: string, message: string, opts: EngineErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.kind = kind;
    this.code = code;
    this.where = opts.where;
    this.hint = opts.hint;
  }

  /** `<what> (<where>): <what to do>` — the line the CLI prints after `Error: `. */
  describe(): string {
    let s = this.message;
    if (this.where && !s.includes(this.where)) s += ` (${this.where})`;
    if (this.hint) s += `: ${this.hint}`;
    return s;
  }
}

export const isEngineError = (e: unknown, kind?: ErrorKind): e is EngineError =>
  e instanceof EngineError && (kind === undefined || e.kind === kind);

export const notFound = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('not-found', code, message, opts);
export const invalidArgument = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('invalid-argument', code, message, opts);
export const conflict = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('conflict', code, message, opts);
export const unavailable = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('unavailable', code, message, opts);
export const dataLoss = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('data-loss', code, message, opts);
export const unsupported = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('unsupported', code, message, opts);
export const internal = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('internal', code, message, opts);

/** Node's system errors carry `code` (ENOENT, EEXIST, ...). */
export function errnoCode(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

/** A fault as a log line wants it, for the operator, not a user: its stack where it has one. */
export function faultText(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

export function abortError(signal?: AbortSignal): EngineError {
  return new EngineError('cancelled', 'CANCELLED', 'operation cancelled', { cause: signal?.reason });
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError(signal);
}

export const failedPrecondition = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('failed-precondition', code, message, opts);

// ------------------------------------------------------------------ storage failures

const STORAGE_ERRNO: Record<string, { text: string; code: string; kind: ErrorKind }> = {
  ENOSPC: { text: 'no space left on device', code: 'NO_SPACE', kind: 'resource-exhausted' },
  EDQUOT: { text: 'disk quota exceeded', code: 'NO_SPACE', kind: 'resource-exhausted' },
  EIO: { text: 'input/output error', code: 'IO_ERROR', kind: 'unavailable' },
  EROFS: { text: 'read-only file system', code: 'READ_ONLY_FS', kind: 'unavailable' },
};

const ext4Reserved = new Map<number, number>();

/**
 * Blocks ext4 keeps back from everybody, root included (`reserved_clusters`, ~2% of a small
 * file system): statfs counts them in f_bfree.
 */
function reservedForFs(path: string, bsize: number): number {
  let dev: number;
  try {
    dev = statSync(path).dev;
  } catch {
    return 0;
  }
  const cached = ext4Reserved.get(dev);
  if (cached !== undefined) return cached;
  let bytes = 0;
  try {
    const major = ((dev >> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
    const minor = (dev & 0xff) | ((dev >> 12) & ~0xff);
    const name = realpathSync(`/sys/dev/block/${major}:${minor}`).split('/').pop()!;
    bytes = Number(readFileSync(`/sys/fs/ext4/${name}/reserved_clusters`, 'utf8').trim()) * bsize;
    if (!Number.isFinite(bytes)) bytes = 0;
  } catch {
    /* not ext4, or no sysfs */
  }
  ext4Reserved.set(dev, bytes);
  return bytes;
}

/**
 * Bytes this process can still write on the file system holding `path` (its nearest
 * existing ancestor): root may use the blocks reserved for root, not those ext4 keeps for
 * itself. undefined when unknown.
 */
export function freeSpaceAt(path: string): number | undefined {
  for (let p = path; p; p = p.slice(0, Math.max(p.lastIndexOf('/'), 0))) {
    try {
      const s = statfsSync(p);
      if (process.getuid?.() !== 0) return Number(s.bavail) * Number(s.bsize);
      return Math.max(0, Number(s.bfree) * Number(s.bsize) - reservedForFs(p, Number(s.bsize)));
    } catch {
      /* try the parent */
    }
    if (p === '/') break;
  }
  return undefined;
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n}B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}

function storageHint(code: string, where: string | undefined, known?: number): string {
  if (code === 'NO_SPACE') {
    const free = known ?? (where ? freeSpaceAt(where) : undefined);
    return `free space on that file system${free !== undefined ? ` (${formatBytes(free)} free now)` : ''} — layerbox rm, rmi, system prune, or delete other files there — and retry`;
  }
  if (code === 'IO_ERROR') return 'the disk or file system failed to read or write: check the device (dmesg), then run layerbox system check';
  return 'remount the file system read-write, or use another --root';
}

/** `<what>: no space left on device (<where>): free space …` (`free`: the free bytes to report, when known better than now). */
export function noSpaceError(what: string, where: string, opts: { cause?: unknown; free?: number } = {}): EngineError {
  return new EngineError('resource-exhausted', 'NO_SPACE', `${what}: no space left on device`, { where, hint: storageHint('NO_SPACE', where, opts.free), cause: opts.cause });
}

/**
 * A failure of the storage itself — a full disk, a quota, an I/O error, a read-only file
 * system — reported by Node (errno), SQLite or a helper program (cp), as an EngineError
 * that says what failed, on which path, and what to do. undefined for any other error.
 * `where` is used when the error does not name a path itself (SQLite's database file).
 */
export function storageError(e: unknown, where?: string, what?: string): EngineError | undefined {
  if (e instanceof EngineError) {
    if (e.code === 'NO_SPACE' || e.code === 'IO_ERROR' || e.code === 'READ_ONLY_FS') return e;
    // a helper program's own words (cp: error writing '…': No space left on device)
    const m = /(No space left on device|Disk quota exceeded|Input\/output error|Read-only file system)/.exec(e.message);
    if (!m) return undefined;
    const errno = { 'No space left on device': 'ENOSPC', 'Disk quota exceeded': 'EDQUOT', 'Input/output error': 'EIO', 'Read-only file system': 'EROFS' }[m[1]!]!;
    const path = /'([^']+)'[^']*$/.exec(e.message.slice(0, m.index))?.[1] ?? where;
    const s = STORAGE_ERRNO[errno]!;
    return new EngineError(s.kind, s.code, `${what ?? e.message.split(':')[0]!.split(' ')[0]}: ${s.text}`, { where: path, hint: storageHint(s.code, path), cause: e });
  }
  const code = errnoCode(e);
  if (!code) return undefined;
  let errno = code;
  if (code.startsWith('SQLITE_')) {
    // SQLite: a write that found no space is SQLITE_FULL; extending the -shm index on a
    // full disk is SQLITE_IOERR_SHMSIZE; other SQLITE_IOERR_* are I/O errors
    if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_SHMSIZE') errno = 'ENOSPC';
    else if (code.startsWith('SQLITE_IOERR')) errno = 'EIO';
    else return undefined;
    what ??= 'cannot write the metadata database';
  }
  const s = STORAGE_ERRNO[errno];
  if (!s) return undefined;
  const err = e as NodeJS.ErrnoException;
  const path = err.path ?? where;
  return new EngineError(s.kind, s.code, `${what ?? err.syscall ?? 'write'}: ${s.text}`, { where: path, hint: storageHint(s.code, path), cause: e });
}
