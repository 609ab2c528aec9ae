/**
 * A container's file system as the container sees it, walked through directory fds only.
 *
 * The view is the root file system plus the container's mounts (binds, volumes, the etc
 * files of its network): a container path is resolved component by component, each one
 * opened relative to the fd of its parent with O_PATH|O_NOFOLLOW (openat2 with
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS: a single name, never resolved through a link by the
 * kernel). A symbolic link is read from the fd of the link itself and walked again inside
 * the view (an absolute target from the container's `/`), `..` pops the walk's own stack
 * (never the file system's `..`), and a component whose container path is a mount target
 * continues in that mount's root. No path string is used after it was checked: whatever
 * the container renames meanwhile (CVE-2018-15664), every fd stays inside the view.
 */
import { closeSync } from 'node:fs';
import { posix } from 'node:path';
import { EngineError, errnoCode, invalidArgument, notFound } from '../errors/index.js';
import {
  openat2,
  fstatat,
  readlinkat,
  readdirFd,
  unlinkat,
  mkdirat,
  AT_FDCWD,
  AT_EMPTY_PATH,
  AT_SYMLINK_NOFOLLOW,
  AT_REMOVEDIR,
  O_PATH,
  RESOLVE_BENEATH,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  S_IFMT,
  S_IFDIR,
  S_IFLNK,
  type RawStat,
} from '../sys/native.js';

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_NOFOLLOW = 0o400000;
const O_DIRECTORY = 0o200000;
/** one name below a directory fd, no link followed, no magic link, nothing above it */
export const CONFINED = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
/** Linux's limit on links followed in one resolution */
const MAX_LINKS = 40;
const MAX_DEPTH = 1024;
const PATH_MAX = 4096;

export interface ViewMount {
  /** where the container sees it: absolute and clean (resolved like the runtime resolved it) */
  target: string;
  /** the host directory or file mounted there */
  source: string;
  readOnly: boolean;
  kind: 'rootfs' | 'bind' | 'volume' | 'etc';
}

/** A directory on a walk: its fd (O_PATH), its container path and the mount it is in. */
export interface Level {
  fd: number;
  path: string;
  mount: ViewMount;
}

export interface Node {
  /** O_PATH|O_NOFOLLOW fd of the entry itself */
  fd: number;
  st: RawStat;
  mount: ViewMount;
  /** the entry is the root of a mount (`/`, a bind, a volume, an etc file) */
  mountRoot: boolean;
}

/** Where a walk ended. Owns the fds it opened: call close(). */
export interface Resolved {
  /** the resolved container path (for a missing entry: the path it would have) */
  path: string;
  /** the directories from `/` down to the entry's parent (empty for `/`) */
  stack: Level[];
  /** the entry's name in its parent ('' for `/`) */
  name: string;
  /** the entry; undefined when it does not exist (its parent does) */
  node: Node | undefined;
  close(): void;
}

export const isDir = (st: RawStat) => (st.mode & S_IFMT) === S_IFDIR;
export const isLink = (st: RawStat) => (st.mode & S_IFMT) === S_IFLNK;

/** A system error from a walk as an EngineError naming the container path. */
export function fsError(e: unknown, path: string, op = 'lstat'): EngineError {
  if (e instanceof EngineError) return e;
  const code = errnoCode(e);
  const msg = (e as Error)?.message ?? String(e);
  const text: Record<string, string> = {
    ENOENT: 'no such file or directory',
    ENOTDIR: 'not a directory',
    ELOOP: 'too many levels of symbolic links',
    EEXIST: 'file exists',
    EBUSY: 'device or resource busy',
    EXDEV: 'invalid cross-device link',
    EISDIR: 'is a directory',
    ENOTEMPTY: 'directory not empty',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EINVAL: 'invalid argument',
    EPERM: 'operation not permitted',
    EACCES: 'permission denied',
    ENAMETOOLONG: 'file name too long',
  };
  const what = code && text[code] ? text[code] : msg;
  if (code === 'ENOENT') return notFound('PATH_NOT_FOUND', `${op} ${path}: ${what}`, { cause: e });
  if (code === 'ENOSPC' || code === 'EDQUOT') return new EngineError('resource-exhausted', 'NO_SPACE', `${op} ${path}: ${what}`, { cause: e });
  if (code && text[code]) return invalidArgument(`PATH_${code}`, `${op} ${path}: ${what}`, { cause: e });
  return new EngineError('internal', 'FS_ERROR', `${op} ${path}: ${what}`, { cause: e });
}

/** Docker's errors for writes where the container has no write access (ErrRootFSReadOnly, ErrVolumeReadonly). */
export function checkWritable(m: ViewMount): void {
  if (!m.readOnly) return;
  if (m.kind === 'rootfs') throw new EngineError('failed-precondition', 'CP_ROOTFS_READONLY', 'container rootfs is marked read-only');
  throw new EngineError('failed-precondition', 'CP_VOLUME_READONLY', 'mounted volume is marked read-only', { where: m.target });
}

export function errnoError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Opens an entry below a directory fd without following it (also a link: the link itself). */
export function openEntry(dirfd: number, name: string): number {
  return openat2(dirfd, name, O_PATH | O_NOFOLLOW, 0, CONFINED);
}

/** Opens an O_PATH fd again for I/O: the very inode (through /proc/self/fd, not a name). */
export function reopen(fd: number, flags: number): number {
  return openat2(AT_FDCWD, `/proc/self/fd/${fd}`, flags, 0, 0);
}

export const statFd = (fd: number): RawStat => fstatat(fd, '', AT_EMPTY_PATH)!;

function close(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}

export class FsView {
  private readonly mounts = new Map<string, ViewMount>();
  private readonly rootFd: number;
  readonly root: ViewMount;

  /**
   * The root file system at `rootfs` plus `mounts`, mounted in order of depth (as Docker and
   * the runtime do): each target is resolved in the view made so far, so a target under a
   * symbolic link lands where the runtime mounted it. Mounts whose source is missing are left
   * out (the runtime creates them at start).
   */
  /** how paths are shown in messages: as the container sees them, or (`prefix`) as host paths */
  private readonly prefix: string;

  constructor(rootfs: string, opts: { readOnly?: boolean; mounts?: readonly ViewMount[]; createTargets?: boolean; prefix?: string } = {}) {
    this.prefix = (opts.prefix ?? '').replace(/\/+$/, '');
    this.root = { target: '/', source: rootfs, readOnly: !!opts.readOnly, kind: 'rootfs' };
    this.rootFd = openat2(AT_FDCWD, rootfs, O_PATH | O_DIRECTORY, 0, 0);
    const depth = (p: string) => p.split('/').filter(Boolean).length;
    const sorted = [...(opts.mounts ?? [])].filter((m) => m.kind !== 'etc').sort((a, b) => depth(a.target) - depth(b.target));
    for (const m of [...sorted, ...(opts.mounts ?? []).filter((m) => m.kind === 'etc')]) {
      let srcSt: RawStat;
      try {
        const fd = openat2(AT_FDCWD, m.source, O_PATH, 0, 0);
        srcSt = statFd(fd);
        close(fd);
      } catch {
        continue;
      }
      let target: string;
      try {
        const r = this.resolve(m.target, { follow: true, lexical: true });
        target = r.path;
        const missing = !r.node;
        r.close();
        // a mount point the runtime has not made yet (never started): made as Docker's
        // mountVolumes does, in the root file system, for a copy into the container
        if (missing && opts.createTargets && target !== '/') this.makeMountPoint(target, isDir(srcSt));
      } catch {
        continue; // unreachable target (a file on the way): the runtime could not have mounted it either
      }
      if (target === '/' || this.mounts.has(target)) continue;
      this.mounts.set(target, { ...m, target });
    }
  }

  private makeMountPoint(target: string, dir: boolean): void {
    if (dir) {
      this.resolve(target, { create: true }).close();
      return;
    }
    const r = this.resolve(posix.dirname(target), { create: true });
    try {
      close(openat2(r.node!.fd, posix.basename(target), O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY, 0o755, CONFINED));
    } finally {
      r.close();
    }
  }

  close(): void {
    close(this.rootFd);
  }

  /** A path of the view as messages show it. */
  show(path: string): string {
    if (!this.prefix) return path;
    return path === '/' ? this.prefix || '/' : this.prefix + path;
  }

  /** The mounts in the view (besides the root file system), by resolved target. */
  mountList(): ViewMount[] {
    return [...this.mounts.values()];
  }

  mountAt(path: string): ViewMount | undefined {
    return path === '/' ? this.root : this.mounts.get(path);
  }

  /** Whether a mount target is `path` or below it (it cannot be removed or replaced). */
  holdsMount(path: string): boolean {
    if (path === '/') return true;
    for (const t of this.mounts.keys()) if (t === path || t.startsWith(path + '/')) return true;
    return false;
  }

  /**
   * What is created must stay reachable by path for the rest of the engine (removal, commit,
   * another copy): no deeper than 1024 directories and no host path of PATH_MAX or more, as
   * the layer extractor's rule (a tar's links can nest far beyond either).
   */
  checkCreatable(dir: Level, name: string): void {
    const rel = dir.path.slice(dir.mount.target === '/' ? 0 : dir.mount.target.length);
    const host = `${dir.mount.source.replace(/\/+$/, '')}${rel === '/' ? '' : rel}/${name}`;
    const depth = dir.path.split('/').filter(Boolean).length + 1;
    if (depth > MAX_DEPTH || Buffer.byteLength(host) >= PATH_MAX) {
      const shown = this.show(dir.path === '/' ? '/' + name : `${dir.path}/${name}`);
      throw invalidArgument('CP_TOO_DEEP', `${shown.length > 80 ? shown.slice(0, 80) + '…' : shown}: resolves to a path ${depth > MAX_DEPTH ? `deeper than ${MAX_DEPTH} directories` : `longer than ${PATH_MAX} bytes`}`, {
        hint: 'the archive nests directories (through its symbolic links) beyond what a file system path can name',
      });
    }
  }

  /** The level of `/`, borrowed (never closed by a walk). */
  rootLevel(): Level {
    return { fd: this.rootFd, path: '/', mount: this.root };
  }

  /**
   * Resolves a container path. `follow`: a link as the last component is followed too.
   * `from`: start below these levels (borrowed) instead of `/`; relative names are then
   * relative to the last one (`from` starts with the root level). `create`: missing
   * directories are made (0755, the last component too: mkdir -p).
   * `lexical`: a missing directory on the way is not an error (the rest is appended as is).
   */
  resolve(path: string, opts: { follow?: boolean; from?: readonly Level[]; create?: boolean; lexical?: boolean } = {}): Resolved {
    const comps = path.split('/');
    const start = opts.from && !path.startsWith('/') ? [...opts.from] : [this.rootLevel()];
    return this.walk(start, comps, !!opts.follow, !!opts.create, !!opts.lexical);
  }

  private openMountRoot(m: ViewMount): Node {
    const fd = openat2(AT_FDCWD, m.source, O_PATH, 0, 0);
    try {
      return { fd, st: statFd(fd), mount: m, mountRoot: true };
    } catch (e) {
      close(fd);
      throw e;
    }
  }

  /** The root of a mount, opened (O_PATH): the caller closes node.fd. */
  openMount(m: ViewMount): Node {
    return this.openMountRoot(m);
  }

  private walk(stack: Level[], comps: string[], follow: boolean, create: boolean, lexical: boolean): Resolved {
    const owned = new Set<number>();
    const closeAll = () => {
      for (const fd of owned) close(fd);
      owned.clear();
    };
    const pop = () => {
      const l = stack.pop()!;
      if (owned.delete(l.fd)) close(l.fd);
    };
    let pending = comps.filter((c) => c !== '' && c !== '.');
    let links = 0;
    const done = (r: Omit<Resolved, 'close'>): Resolved => ({ ...r, close: closeAll });
    try {
      while (pending.length > 0) {
        const c = pending.shift()!;
        if (c === '..') {
          if (stack.length > 1) pop();
          continue;
        }
        const top = stack[stack.length - 1]!;
        const childPath = top.path === '/' ? '/' + c : `${top.path}/${c}`;
        const last = pending.length === 0;
        let node: Node;
        const m = this.mounts.get(childPath);
        if (m) {
          node = this.openMountRoot(m);
          owned.add(node.fd);
        } else {
          let fd: number | undefined;
          try {
            fd = openEntry(top.fd, c);
          } catch (e) {
            if (errnoCode(e) !== 'ENOENT') throw fsError(e, this.show(childPath));
            if (create) {
              checkWritable(top.mount);
              this.checkCreatable(top, c);
              try {
                mkdirat(top.fd, c, 0o755);
              } catch (e2) {
                if (errnoCode(e2) !== 'EEXIST') throw fsError(e2, this.show(childPath), 'mkdir');
              }
              try {
                fd = openEntry(top.fd, c);
              } catch (e2) {
                throw fsError(e2, this.show(childPath));
              }
            } else if (last || lexical) {
              const rest = pending.filter((x) => x !== '.');
              return done({ path: posix.normalize([childPath, ...rest].join('/')), stack, name: c, node: undefined });
            } else {
              throw fsError(e, this.show(childPath));
            }
          }
          owned.add(fd);
          node = { fd, st: statFd(fd), mount: top.mount, mountRoot: false };
        }
        if (isLink(node.st) && (!last || follow)) {
          if (++links > MAX_LINKS) throw fsError(errnoError('ELOOP', 'too many links'), this.show(childPath));
          const target = readlinkat(node.fd, '');
          owned.delete(node.fd);
          close(node.fd);
          if (target === '') throw fsError(errnoError('ENOENT', 'empty link'), this.show(childPath));
          if (target.startsWith('/')) while (stack.length > 1) pop();
          pending = [...target.split('/').filter((x) => x !== '' && x !== '.'), ...pending];
          continue;
        }
        if (isDir(node.st)) {
          if (last) return done({ path: childPath, stack, name: c, node });
          stack.push({ fd: node.fd, path: childPath, mount: node.mount });
          continue;
        }
        if (!last) throw fsError(errnoError('ENOTDIR', 'not a directory'), this.show(`${childPath}/${pending.join('/')}`));
        return done({ path: childPath, stack, name: c, node });
      }
      // nothing left: the walk ended on a directory of the stack (`/`, `x/..`)
      const top = stack.pop()!;
      const wasOwned = owned.has(top.fd);
      let fd = top.fd;
      if (!wasOwned) {
        fd = openat2(top.fd, '.', O_PATH | O_DIRECTORY, 0, 0);
        owned.add(fd);
      }
      const node: Node = { fd, st: statFd(fd), mount: top.mount, mountRoot: top.path === top.mount.target };
      return done({ path: top.path, stack, name: top.path === '/' ? '' : posix.basename(top.path), node });
    } catch (e) {
      closeAll();
      throw e;
    }
  }

  /**
   * Removes `name` (a tree too) from the directory `dir`, walking fds; refuses a mount point
   * or a directory holding one, as the kernel refuses to remove a mount point.
   */
  remove(dir: Level, name: string): void {
    const path = dir.path === '/' ? '/' + name : `${dir.path}/${name}`;
    if (this.holdsMount(path)) throw fsError(errnoError('EBUSY', 'mount point'), this.show(path), 'unlinkat');
    removeAt(dir.fd, name, this.show(path));
  }
}

function removeAt(dirfd: number, name: string, path: string): void {
  const st = fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW, true);
  if (!st) return;
  try {
    if (isDir(st)) {
      const fd = openat2(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, CONFINED);
      try {
        for (const child of readdirFd(fd)) removeAt(fd, child, `${path}/${child}`);
      } finally {
        close(fd);
      }
      unlinkat(dirfd, name, AT_REMOVEDIR);
    } else {
      unlinkat(dirfd, name, 0);
    }
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw fsError(e, path, 'unlinkat');
  }
}
