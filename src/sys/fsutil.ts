/** File-system primitives with the durability rules of the store: temp file, fsync, rename, fsync dir. */
import { closeSync, fsyncSync, openSync, constants as C, lstatSync, readdirSync, rmSync, renameSync, type Stats } from 'node:fs';
import { open, readFile, rename, rm, mkdir, realpath } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { errnoCode } from '../errors/index.js';
import { umount2, MNT_DETACH } from './native.js';

export function tempName(target: string): string {
  return join(dirname(target), `.tmp-${basename(target)}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Writes `data` to `target` atomically: temp file in the same directory, fsync, rename, fsync the directory. */
export async function writeFileAtomic(target: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const tmp = tempName(target);
  const h = await open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL, mode);
  try {
    await h.writeFile(data);
    await h.chmod(mode);
    await h.sync();
  } catch (e) {
    await h.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await h.close();
  try {
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dirname(target));
}

export async function mkdirp(p: string, mode = 0o755): Promise<void> {
  await mkdir(p, { recursive: true, mode });
}

export function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** Mount points currently under `prefix` (from /proc/self/mountinfo), deepest first. */
export async function mountsUnder(prefix: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = f[4]!.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp === prefix || mp.startsWith(prefix.endsWith('/') ? prefix : prefix + '/')) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

/**
 * Removes a directory tree that may hold mounts: first unmounts everything beneath it, and
 * refuses to delete anything if a mount cannot be removed (a failed unmount must never lead
 * to a recursive delete of what is still mounted).
 */
export async function removeTree(p: string): Promise<void> {
  // mountinfo lists canonical paths: resolve symlinks above `p` (a store root reached
  // through a symlink) or the mounts beneath would not be found. The last component is
  // kept as is: when `p` itself is a symlink, the link is removed, never its target.
  let parent: string;
  try {
    parent = await realpath(dirname(p));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw e;
  }
  p = join(parent, basename(p));
  const mounts = await mountsUnder(p);
  for (const m of mounts) {
    try {
      umount2(m, 0);
    } catch (e) {
      if (errnoCode(e) === 'EINVAL' || errnoCode(e) === 'ENOENT') continue;
      try {
        umount2(m, MNT_DETACH);
      } catch {
        throw e;
      }
    }
  }
  if ((await mountsUnder(p)).length > 0) {
    throw new Error(`refusing to remove ${p}: mounts remain beneath it`);
  }
  await rm(p, { recursive: true, force: true, maxRetries: 3 });
}

/** Synchronous best-effort removal of a tree that is known to hold no mounts. */
export function removeTreeSync(p: string): void {
  rmSync(p, { recursive: true, force: true });
}

export function renameSyncNoThrow(a: string, b: string): boolean {
  try {
    renameSync(a, b);
    return true;
  } catch {
    return false;
  }
}

export function listDir(p: string): string[] {
  try {
    return readdirSync(p);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
}

/**
 * Removes the temporary files (tempName) that processes killed before their rename left in
 * `dir` (and, with `depth`, in the directories below it): `.tmp-<name>-<pid>-<hex>` of a
 * pid that no longer runs.
 */
export function sweepTempFiles(dir: string, isAlive: (pid: number) => boolean, depth = 0): void {
  for (const name of listDir(dir)) {
    const m = /^\.tmp-.*-(\d+)-[0-9a-f]{8}$/.exec(name);
    if (m) {
      if (!isAlive(Number(m[1]))) rmSync(join(dir, name), { recursive: true, force: true });
      continue;
    }
    if (depth > 0 && lstatOrUndefined(join(dir, name))?.isDirectory()) sweepTempFiles(join(dir, name), isAlive, depth - 1);
  }
}
