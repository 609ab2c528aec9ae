/**
 * Inter-process locks as files that record the holder (pid + start time). A lock file
 * appears whole: the holder is written to a temp file first, then hard-linked to the lock
 * path (link fails with EEXIST when the lock is taken), so nobody ever sees an empty lock.
 * A lock whose holder is dead is stale and is broken by the next taker — by one taker at a
 * time, under a short-lived breaker lock, and only if the file is still the stale one
 * (same inode). No daemon, no flock (Node has none), safe across `kill -9`.
 */
import { openSync, closeSync, readFileSync, unlinkSync, renameSync, linkSync, writeFileSync, statSync, lstatSync, fstatSync, constants as C } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, unavailable, abortError } from '../errors/index.js';
import { isAlive, selfId, type ProcId } from './proc.js';
import { tempName } from './fsutil.js';

export interface Lock {
  readonly path: string;
  release(): void;
  [Symbol.dispose](): void;
}

type Seen = { state: 'missing' } | { state: 'garbage'; ino: number } | { state: 'held'; holder: ProcId; ino: number };

/** Reads a lock file through one descriptor, so holder and inode belong to the same file. */
function inspect(path: string): Seen {
  let fd: number;
  try {
    fd = openSync(path, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return { state: 'missing' };
    throw e;
  }
  try {
    const ino = fstatSync(fd).ino;
    const [pid, start] = readFileSync(fd, 'utf8').trim().split(' ').map(Number);
    if (!pid || start === undefined || !Number.isFinite(start)) return { state: 'garbage', ino };
    return { state: 'held', holder: { pid, start }, ino };
  } finally {
    closeSync(fd);
  }
}

/** Creates the lock file with its content in one step; undefined when it exists. */
function create(path: string): Lock | undefined {
  const me = selfId();
  const tmp = tempName(path);
  writeFileSync(tmp, `${me.pid} ${me.start}\n`, { mode: 0o600, flag: 'wx' });
  let ino: number;
  try {
    ino = statSync(tmp).ino;
    linkSync(tmp, path);
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') return undefined;
    throw e;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      /* gone */
    }
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    try {
      // only our own file: never a lock someone else took after ours was removed
      if (lstatSync(path).ino === ino) unlinkSync(path);
    } catch {
      /* already gone */
    }
  };
  return { path, release, [Symbol.dispose]: release };
}

/** Removes `path` if it is still the file with inode `ino` (a stale breaker). */
function removeStale(path: string, ino: number): void {
  const grave = tempName(path);
  try {
    renameSync(path, grave);
  } catch {
    return; // someone else removed it
  }
  try {
    if (lstatSync(grave).ino !== ino) {
      // a live file replaced the stale one between our look and the rename: put it back
      try {
        linkSync(grave, path);
      } catch {
        /* taken again meanwhile */
      }
    }
  } finally {
    try {
      unlinkSync(grave);
    } catch {
      /* gone */
    }
  }
}

/**
 * Breaks the stale lock `path` (inode `ino`) unless another process is breaking it.
 * Returns false when the caller should give up for now.
 */
function breakStale(path: string, ino: number): boolean {
  const breakerPath = path + '.break';
  const breaker = create(breakerPath);
  if (!breaker) {
    const b = inspect(breakerPath);
    if (b.state === 'missing') return true;
    if (b.state === 'held' && isAlive(b.holder)) return false; // being broken right now
    // a breaker died during its few microseconds of work
    removeStale(breakerPath, b.ino);
    return true;
  }
  try {
    // Under the breaker nobody else removes `path`, and nobody creates it while it exists:
    // if it is still the stale file, it is safe to unlink.
    const again = inspect(path);
    if (again.state !== 'missing' && again.ino === ino && !(again.state === 'held' && isAlive(again.holder))) unlinkSync(path);
    return true;
  } finally {
    breaker.release();
  }
}

/** Tries once. Returns undefined when a live process holds the lock. */
export function tryLock(path: string): Lock | undefined {
  for (let attempt = 0; attempt < 4; attempt++) {
    const l = create(path);
    if (l) return l;
    const seen = inspect(path);
    if (seen.state === 'missing') continue; // released in between
    if (seen.state === 'held' && isAlive(seen.holder)) return undefined;
    // dead holder, or garbage (a lock file always appears whole, so never one being written)
    if (!breakStale(path, seen.ino)) return undefined;
  }
  return undefined;
}

/** Waits (polling) until the lock is free. */
export async function acquireLock(
  path: string,
  opts: { signal?: AbortSignal; timeoutMs?: number; what?: string } = {},
): Promise<Lock> {
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  let delay = 10;
  for (;;) {
    const l = tryLock(path);
    if (l) return l;
    if (opts.signal?.aborted) throw abortError(opts.signal);
    if (Date.now() > deadline) {
      throw unavailable('LOCKED', `${opts.what ?? 'resource'} is locked by another layerbox process`, {
        where: path,
        hint: 'wait for the other command to finish and retry',
      });
    }
    await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : undefined).catch(() => {});
    delay = Math.min(delay * 2, 100);
  }
}
