/**
 * The one door to what Node lacks: mknod, extended attributes on links, mount/umount,
 * overlay via the new mount API, syncfs, renameat2, and the *at calls on directory fds
 * (openat2, fstatat, mkdirat, …) that confined tree walks are built from. Implemented in
 * native/sys.c.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { internal } from '../errors/index.js';

interface NativeSys {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  lgetxattr(path: string, name: string): Buffer | null;
  fsetxattr(fd: number, name: string, value: Buffer): void;
  llistxattr(path: string): string[];
  lremovexattr(path: string, name: string): void;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  mountOverlay(target: string, lowers: string[], upper: string | null, work: string | null, readonly: boolean): boolean;
  syncfs(path: string): void;
  renameat2(oldPath: string, newPath: string, flags: number): void;
  seqpacketConnect(dir: string, name: string): number;
  shutdown(fd: number, how: number): void;
  newNetns(path: string): void;
  openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number;
  fstatat(dirfd: number, path: string, flags: number): RawStat | null;
  mkdirat(dirfd: number, name: string, mode: number): void;
  mknodat(dirfd: number, name: string, mode: number, major: number, minor: number): void;
  symlinkat(target: string, dirfd: number, name: string): void;
  linkat(olddirfd: number, oldname: string, newdirfd: number, newname: string, flags: number): void;
  readlinkat(dirfd: number, name: string): string;
  unlinkat(dirfd: number, name: string, flags: number): void;
  fchownat(dirfd: number, name: string, uid: number, gid: number, flags: number): void;
  utimensat(dirfd: number, name: string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number, flags: number): void;
  readdirFd(fd: number): string[];
  flistxattr(fd: number): string[];
  fgetxattr(fd: number, name: string): Buffer | null;
}

/** stat(2) as fstatat returns it: inode numbers as bigints (overlay's xino uses the high bits). */
export interface RawStat {
  dev: bigint;
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdevMajor: number;
  rdevMinor: number;
  size: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
}

function load(): NativeSys {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/sys -> project root
  const root = join(here, '..', '..');
  const candidates = [join(root, 'build', 'Release', 'layerbox_sys.node'), join(root, 'build', 'Debug', 'layerbox_sys.node')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw internal('NATIVE_MISSING', 'the native module layerbox_sys.node is not built', {
      where: candidates[0],
      hint: 'run `npm install` (it builds native/sys.c with node-gyp)',
    });
  }
  return createRequire(import.meta.url)(found) as NativeSys;
}

let cached: NativeSys | undefined;
export function sys(): NativeSys {
  return (cached ??= load());
}

export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_REMOUNT = 32;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_PRIVATE = 1 << 18;
export const MNT_DETACH = 2;
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

export const S_IFMT = 0o170000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFSOCK = 0o140000;

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;
export const O_PATH = 0o10000000;
/** openat2 resolve flags */
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

export const mknod = (p: string, mode: number, major: number, minor: number) => sys().mknod(p, mode, major, minor);
export const lsetxattr = (p: string, name: string, value: Buffer) => sys().lsetxattr(p, name, value);
export const lgetxattr = (p: string, name: string) => sys().lgetxattr(p, name);
export const fsetxattr = (fd: number, name: string, value: Buffer) => sys().fsetxattr(fd, name, value);
export const llistxattr = (p: string) => sys().llistxattr(p);
export const lremovexattr = (p: string, name: string) => sys().lremovexattr(p, name);
export const syncfs = (p: string) => sys().syncfs(p);
/** A new network namespace pinned by a bind mount on the existing file `path` (like `ip netns add`). */
export const newNetns = (path: string) => sys().newNetns(path);
export const renameat2 = (a: string, b: string, flags: number) => sys().renameat2(a, b, flags);
/** Connects to a SOCK_SEQPACKET unix socket `dir/name`; returns the fd (read/write it with fs). */
export const seqpacketConnect = (dir: string, name: string) => sys().seqpacketConnect(dir, name);
export const shutdownSocket = (fd: number, how: 0 | 1 | 2) => sys().shutdown(fd, how);
export const umount2 = (target: string, flags = 0) => sys().umount2(target, flags);
export const mount = (source: string | null, target: string, fstype: string | null, flags: number, data: string | null) =>
  sys().mount(source, target, fstype, flags, data);

/** openat2(2); O_CLOEXEC is always added. `dirfd` AT_FDCWD for the working directory. */
export const openat2 = (dirfd: number, path: string, flags: number, mode = 0, resolve = 0) => sys().openat2(dirfd, path, flags, mode, resolve);
/** fstatat(2); `optional`: null instead of ENOENT. AT_EMPTY_PATH with '' stats the fd itself. */
export const fstatat = (dirfd: number, path: string, flags: number, optional = false): RawStat | null => sys().fstatat(dirfd, path, (flags | (optional ? 0x80000000 : 0)) >>> 0);
export const mkdirat = (dirfd: number, name: string, mode: number) => sys().mkdirat(dirfd, name, mode);
export const mknodat = (dirfd: number, name: string, mode: number, major: number, minor: number) => sys().mknodat(dirfd, name, mode, major, minor);
export const symlinkat = (target: string, dirfd: number, name: string) => sys().symlinkat(target, dirfd, name);
export const linkat = (olddirfd: number, oldname: string, newdirfd: number, newname: string, flags = 0) => sys().linkat(olddirfd, oldname, newdirfd, newname, flags);
/** readlinkat(2); '' with an O_PATH|O_NOFOLLOW fd of the link reads that very link. */
export const readlinkat = (dirfd: number, name: string) => sys().readlinkat(dirfd, name);
export const unlinkat = (dirfd: number, name: string, flags = 0) => sys().unlinkat(dirfd, name, flags);
export const fchownat = (dirfd: number, name: string, uid: number, gid: number, flags: number) => sys().fchownat(dirfd, name, uid, gid, flags);
export const utimensat = (dirfd: number, name: string, atime: [number, number], mtime: [number, number], flags: number) =>
  sys().utimensat(dirfd, name, atime[0], atime[1], mtime[0], mtime[1], flags);
/** The names in an open directory (not `.`/`..`); the fd stays open. */
export const readdirFd = (fd: number) => sys().readdirFd(fd);
export const flistxattr = (fd: number) => sys().flistxattr(fd);
export const fgetxattr = (fd: number, name: string) => sys().fgetxattr(fd, name);

/** The overlay whiteout: a character device 0/0. */
export const makeWhiteout = (p: string) => sys().mknod(p, S_IFCHR, 0, 0);

/**
 * Mounts an overlay. Lower dirs top-most first. Uses fsopen/fsconfig("lowerdir+") when the
 * kernel has it (no limit from the one-page mount data), else mount(2) with the classic
 * option string (which must then fit in a page).
 */
export function mountOverlay(target: string, lowers: string[], opts: { upper?: string; work?: string; readonly?: boolean } = {}): void {
  if (lowers.length === 0) throw internal('OVERLAY_NO_LOWER', 'overlay mount needs at least one lower directory', { where: target });
  const s = sys();
  if (s.mountOverlay(target, lowers, opts.upper ?? null, opts.work ?? null, !!opts.readonly)) return;
  let data = `lowerdir=${lowers.join(':')}`;
  if (opts.upper) data += `,upperdir=${opts.upper},workdir=${opts.work}`;
  data += ',index=off,redirect_dir=off,metacopy=off';
  s.mount('overlay', target, 'overlay', opts.readonly ? MS_RDONLY : 0, data);
}
