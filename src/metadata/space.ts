/**
 * Space safety of the store's file system. A full disk must not stop the commands that free
 * space (rm, rmi, prune, system check --repair, a container's cleanup) nor the ones that only
 * read (ps, images, inspect): they all write the database, and SQLite needs room for that —
 * its WAL, and the shared-memory index (`metadata.db-shm`) that every first connection
 * recreates and *maps*. On a file system with blocks smaller than a page (mkfs.ext4 gives
 * 1 KiB blocks to small file systems) SQLite's one-byte-per-page extension of the -shm file
 * leaves holes, and the first store into a hole of a mapped page faults for a block: with
 * none left, the process dies of SIGBUS.
 *
 * So the store keeps a *reserve*: a file of RESERVE_BYTES of incompressible data
 * (`space-reserve` in the root). When the file system is nearly full the reserve is deleted
 * — at open if the database could not even be opened safely, and by the commands that free
 * space before they start — and it is made again once there is room. Commands that use
 * space refuse to start (a clear ENOSPC error) when the reserve had to be released at open,
 * so they never eat it. When even the reserve is gone and less than SHM_ROOM is free, the
 * database is opened with its index in heap memory (locking_mode=EXCLUSIVE): nothing is
 * mapped, reads work, writes fail with SQLITE_FULL — a clean error, never a SIGBUS.
 */
import { closeSync, ftruncateSync, openSync, renameSync, statSync, unlinkSync, writeSync, constants as C } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { join } from 'node:path';
import { errnoCode, freeSpaceAt, noSpaceError } from '../errors/index.js';

/** Size of the reserve file. */
export const RESERVE_BYTES = 4 << 20;
/** Below this much free space the database cannot be trusted to open and write: the reserve goes at open. */
export const OPEN_MIN_BYTES = 256 << 10;
/** Commands that free space release the reserve when less than this is free. */
export const FREEING_MIN_BYTES = 2 << 20;
/** Room the -shm file (32 KiB per region) and the first WAL frames need; below it the index lives in heap memory. */
export const SHM_ROOM_BYTES = 96 << 10;

/** What a restored reserve leaves free at least; a reserve smaller than RESERVE_MIN_BYTES is not made. */
export const RESTORE_SLACK_BYTES = 64 << 10;
export const RESERVE_MIN_BYTES = 512 << 10;

export const RESERVE_NAME = 'space-reserve';

/** Bytes this process can still write where `path` is (see freeSpaceAt). */
export function freeBytes(path: string): number {
  return freeSpaceAt(path) ?? Number.MAX_SAFE_INTEGER;
}

export class StoreSpace {
  readonly reservePath: string;
  /** The file system was nearly full at open (the reserve was, or would have been, needed). */
  low = false;
  /** The database must keep its index in heap memory (no room for the -shm file). */
  heapIndex = false;

  constructor(readonly root: string) {
    this.reservePath = join(root, RESERVE_NAME);
  }

  free(): number {
    return freeBytes(this.root);
  }

  hasReserve(): boolean {
    try {
      return statSync(this.reservePath).size >= RESERVE_BYTES;
    } catch {
      return false;
    }
  }

  /** Deletes the reserve; returns whether there was one. */
  release(): boolean {
    try {
      unlinkSync(this.reservePath);
      return true;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false;
      throw e;
    }
  }

  /** Free bytes when the store was opened, before any reserve was released. */
  freeAtOpen = 0;

  /** Before the database is opened: make sure it can be, releasing the reserve if needed. */
  beforeOpen(): void {
    let free = this.free();
    this.freeAtOpen = free;
    if (free < OPEN_MIN_BYTES) {
      this.low = true;
      if (this.release()) free = this.free();
    }
    this.heapIndex = free < SHM_ROOM_BYTES;
  }

  /** A command that frees space is about to start: give it room for its database writes. */
  forFreeing(): void {
    if (this.free() < FREEING_MIN_BYTES) this.release();
  }

  /**
   * A command that uses space is about to start. Refused when the reserve had to be released
   * to open the store (it would eat the room the freeing commands need) or nothing is free.
   */
  require(what: string): void {
    const free = this.free();
    if (this.low || this.heapIndex || free < SHM_ROOM_BYTES) {
      // the room the reserve made is not this command's to use: report what was free before
      throw noSpaceError(what, this.root, { free: this.low ? this.freeAtOpen : free });
    }
  }

  /**
   * Makes the reserve again, as much of it as there is room for (end of a command). A
   * partial reserve is still one: only the room beyond it is there for commands to use.
   * Never throws.
   */
  restore(): void {
    try {
      let have = 0;
      try {
        have = statSync(this.reservePath).size;
      } catch {
        /* none */
      }
      if (have >= RESERVE_BYTES) return;
      const target = Math.min(RESERVE_BYTES, have + this.free() - RESTORE_SLACK_BYTES);
      if (target < RESERVE_MIN_BYTES || target <= have) return;
      // one fixed temp name: a killed restore leaves nothing that accumulates
      const tmp = `${this.reservePath}.tmp`;
      const fd = openSync(tmp, C.O_WRONLY | C.O_CREAT, 0o600);
      try {
        // random bytes: a compressing or deduplicating file system stores zeros in no space
        const buf = randomFillSync(Buffer.allocUnsafe(1 << 20));
        for (let off = 0; off < target; off += buf.length) writeSync(fd, buf, 0, Math.min(buf.length, target - off), off);
        ftruncateSync(fd, target);
        closeSync(fd);
        renameSync(tmp, this.reservePath);
      } catch {
        try {
          closeSync(fd);
        } catch {
          /* closed */
        }
        try {
          unlinkSync(tmp);
        } catch {
          /* gone */
        }
      }
    } catch {
      /* no reserve this time: the next command tries again */
    }
  }
}
