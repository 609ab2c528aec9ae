/**
 * Inter-process locks as files created with O_EXCL that record the holder (pid + start
 * time). A lock whose holder is dead is stale and is broken by the next taker. No daemon,
 * no flock (Node has none), safe across `kill -9`.
 */
import { openSync, writeSync, closeSync, readFileSync, unlinkSync, renameSync, constants as C } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, unavailable, abortError } from '../errors/index.js';
import { isAlive, selfId, type ProcId } from './proc.js';
import { tempName } from './fsutil.js';

export interface Lock {
  readonly path: string;
  release(): void;
  [Symbol.dispose](): void;
}

function readHolder(path: string): ProcId | undefined {
  try {
    const [pid, start] = readFileSync(path, 'utf8').trim().split(' ').map(Number);
    if (!pid || start === undefined || !Number.isFinite(start)) return undefined;
    return { pid, start };
  } catch {
    return undefined;
  }
}

/** Tries once. Returns undefined when a live process holds the lock. */
export function tryLock(path: string): Lock | undefined {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600);
      const me = selfId();
      writeSync(fd, `${me.pid} ${me.start}\n`);
      closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        try {
          unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
      return { path, release, [Symbol.dispose]: release };
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    const holder = readHolder(path);
    if (holder && isAlive(holder)) return undefined;
    if (!holder) {
      // Being written right now (created, not yet filled) or garbage. Give the writer a moment.
      const again = readHolder(path);
      if (!again) {
        // Still empty: a holder killed between create and write. Break it by renaming away
        // (rename is atomic: two breakers cannot both succeed on the same file).
        try {
          renameSync(path, tempName(path));
        } catch {
          /* someone else broke it */
        }
        continue;
      }
      if (isAlive(again)) return undefined;
    }
    // Dead holder: break the lock atomically and retry.
    try {
      const grave = tempName(path);
      renameSync(path, grave);
      unlinkSync(grave);
    } catch {
      /* another process broke it first */
    }
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
