/**
 * Paths inside a container's root file system, resolved the way the container would see them:
 * symlinks (absolute or relative) are followed *within* the rootfs and `..` never climbs out of it
 * (like Go's securejoin). Everything that reads or creates files in a rootfs before start goes through here.
 */
import { constants as C } from 'node:fs';
import { lstat, open, readlink, mkdir } from 'node:fs/promises';
import { posix } from 'node:path';
import { errnoCode, invalidArgument, EngineError } from '../errors/index.js';

const MAX_SYMLINKS = 255;

/** Lexically cleans a container path: absolute, no `.`/`..`/`//` (so `/../../etc` → `/etc`). */
export function cleanContainerPath(p: string): string {
  return posix.normalize(posix.join('/', p)).replace(/\/+$/, '') || '/';
}

/**
 * The host path of `unsafe` inside `root`, with every symlink of its existing prefix resolved inside
 * `root`. Components that do not exist yet are appended as they are (after `..` cleaning).
 */
export async function resolveInRoot(root: string, unsafe: string): Promise<string> {
  const rel = await resolveInRootRel(root, unsafe);
  return rel === '/' ? root : root.replace(/\/+$/, '') + rel;
}

/** Like resolveInRoot, but returns the resolved path as the container sees it (`/etc/passwd`). */
export async function resolveInRootRel(root: string, unsafe: string): Promise<string> {
  const base = root.replace(/\/+$/, '');
  let pending = unsafe.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const candidate = base + '/' + [...done, part].join('/');
    let st;
    try {
      st = await lstat(candidate);
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        done.push(part, ...pending.filter((c) => c !== '.'));
        // the rest does not exist: clean it lexically, never above the root
        return cleanContainerPath(done.join('/'));
      }
      throw e;
    }
    if (!st.isSymbolicLink()) {
      done.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw invalidArgument('ROOTFS_SYMLINK_LOOP', `too many levels of symbolic links resolving ${unsafe} in the container`, { where: candidate });
    }
    const target = await readlink(candidate);
    if (target.startsWith('/')) done.length = 0;
    pending = [...target.split('/').filter((c) => c !== '' && c !== '.'), ...pending];
  }
  return '/' + done.join('/');
}

/** Reads a file of the container (e.g. /etc/passwd) without following any link out of the rootfs; undefined when absent. */
export async function readFileInRoot(root: string, path: string, maxBytes = 4 << 20): Promise<string | undefined> {
  const host = await resolveInRoot(root, path);
  let h;
  try {
    h = await open(host, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined;
    throw e;
  }
  try {
    const st = await h.stat();
    if (!st.isFile()) return undefined;
    if (st.size > maxBytes) {
      throw invalidArgument('ROOTFS_FILE_TOO_LARGE', `${path} in the container is larger than ${maxBytes} bytes`, { where: host });
    }
    return await h.readFile('utf8');
  } finally {
    await h.close();
  }
}

/**
 * Makes sure the container's working directory exists (Docker creates it, owned by root, 0755),
 * resolving it inside the rootfs. Fails when it exists and is not a directory.
 */
export async function ensureDirInRoot(root: string, path: string): Promise<string> {
  const host = await resolveInRoot(root, path);
  try {
    const st = await lstat(host);
    if (!st.isDirectory()) {
      throw new EngineError('failed-precondition', 'WORKDIR_NOT_DIRECTORY', `Cannot mkdir: ${path} is not a directory`, { where: host });
    }
    return host;
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
  await mkdir(host, { recursive: true, mode: 0o755 });
  return host;
}
