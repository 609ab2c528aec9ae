/**
 * Test support for full-disk tests: a small ext4 file system on a loop device (mkfs.ext4 on
 * a file, `losetup -f --show`, mount), filled on demand to leave an exact number of bytes
 * free, and detached with everything on it in cleanup.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeSpaceAt } from '../errors/index.js';

export interface LoopFs {
  /** the mount point */
  mnt: string;
  /** the loop device */
  dev: string;
  /** bytes this (root) process can still write there, as layerbox counts them */
  free(): number;
  /** grows or shrinks a filler file (outside any store) until `leave` bytes are free */
  fill(leave: number): void;
  /** removes the filler */
  unfill(): void;
  cleanup(): void;
}

export function loopFs(sizeMiB: number, prefix = 'lb-loopfs-'): LoopFs {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const image = join(work, 'fs.img');
  const mnt = join(work, 'mnt');
  mkdirSync(mnt);
  execFileSync('truncate', ['-s', `${sizeMiB}M`, image]);
  // the defaults of a small file system: 1 KiB blocks, as the store had
  execFileSync('mkfs.ext4', ['-q', '-F', image]);
  const dev = execFileSync('losetup', ['-f', '--show', image]).toString().trim();
  try {
    execFileSync('mount', [dev, mnt]);
  } catch (e) {
    spawnSync('losetup', ['-d', dev]);
    rmSync(work, { recursive: true, force: true });
    throw e;
  }
  const filler = join(mnt, 'filler');
  const free = () => freeSpaceAt(mnt) ?? 0;
  const size = () => {
    try {
      return statSync(filler).size;
    } catch {
      return 0;
    }
  };
  return {
    mnt,
    dev,
    free,
    fill(leave: number) {
      for (let i = 0; i < 20; i++) {
        const f = free();
        if (f >= leave && f - leave < 4096) return;
        if (f > leave) {
          // fallocate: real blocks at once, nothing written
          const r = spawnSync('fallocate', ['-o', String(size()), '-l', String(f - leave), filler]);
          if (r.status !== 0) {
            // the extent tree itself needed blocks: ask for a little less
            spawnSync('fallocate', ['-o', String(size()), '-l', String(Math.max(1024, f - leave - 65536)), filler]);
          }
        } else {
          const fd = openSync(filler, 'r+');
          try {
            ftruncateSync(fd, Math.max(0, size() - (leave - f) - 1024));
          } finally {
            closeSync(fd);
          }
        }
      }
    },
    unfill() {
      rmSync(filler, { force: true });
    },
    cleanup() {
      spawnSync('sh', ['-c', `grep -o " ${mnt}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
      spawnSync('umount', [mnt]);
      spawnSync('umount', ['-l', mnt]);
      spawnSync('losetup', ['-d', dev]);
      rmSync(work, { recursive: true, force: true });
    },
  };
}
