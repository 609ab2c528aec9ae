/**
 * Free space as a limit (docs/RELIABILITY.md items 33, 35): a stream that never ends, or that
 * declares more than the disk holds, is refused while some space is still left — the
 * store stays usable (rm, rmi, prune need a little room), and nothing dies on ENOSPC
 * half-way through a write.
 */
import { statfsSync } from 'node:fs';
import { noSpaceError } from '../errors/index.js';

const MiB = 1024 * 1024;

export interface Space {
  /** bytes an unprivileged writer may still use */
  avail: number;
  /** size of the file system */
  total: number;
}

export function spaceOf(path: string): Space {
  const s = statfsSync(path);
  return { avail: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

/**
 * What a writer must leave free: 5% of the file system, between 1 MiB and 1 GiB. (The
 * commands that free space also have the store's own reserve file, metadata/space.ts.)
 */
export function reserveOf(total: number): number {
  return Math.min(1024 * MiB, Math.max(MiB, Math.floor(total * 0.05)));
}

/**
 * Watches the free space of the file system a stream is written to; `charge(n)` after
 * each n bytes written. The file system is asked again every `every` bytes (other writers
 * share it), and a refusal comes once less than the reserve would be left.
 */
export class SpaceGuard {
  private sinceCheck = 0;
  private readonly every: number;
  /** how many bytes may be written between two looks at the file system */
  get interval(): number {
    return this.every;
  }
  readonly reserve: number;

  constructor(
    private readonly path: string,
    private readonly what: string,
    every?: number,
  ) {
    this.reserve = reserveOf(spaceOf(path).total);
    // ask often enough that one interval cannot overrun the reserve
    this.every = every ?? Math.min(64 * MiB, this.reserve / 2);
    this.check(0);
  }

  charge(n: number): void {
    this.sinceCheck += n;
    if (this.sinceCheck < this.every) return;
    this.sinceCheck = 0;
    this.check(0);
  }

  /** Refuses when writing `more` bytes would leave less than the reserve. */
  check(more: number): void {
    const { avail } = spaceOf(this.path);
    if (avail - more >= this.reserve) return;
    // the same words as a write that hit ENOSPC: the disk is as good as full for a writer
    throw noSpaceError(more > 0 ? `${this.what} needs ${more} bytes, with ${this.reserve} bytes kept free` : `${this.what} stopped, with ${this.reserve} bytes kept free`, this.path, { free: avail });
  }
}
