/**
 * `cp` and `export`, done by this process with plain file-system calls on the container's
 * mounted root: nothing from the container's file system is ever executed (CVE-2019-14271),
 * and every container-side path is resolved inside the root (symlinks cannot lead out).
 */
import {
  closeSync,
  copyFileSync,
  chmodSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  utimesSync,
  existsSync,
  rmSync,
  constants as C,
  type Stats,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { invalidArgument, notFound } from '../errors/index.js';
import { encodeHeader, paddingFor, END_OF_ARCHIVE } from '../archive/tar/writer.js';
import type { TarHeader, EntryType } from '../archive/tar/header.js';
import { resolveInRoot } from '../runtime/index.js';
import { llistxattr, lgetxattr } from '../sys/native.js';

function typeOf(st: Stats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return undefined; // sockets are skipped, as tar does
}

async function put(out: Writable, b: Buffer): Promise<void> {
  if (b.length && !out.write(b)) await once(out, 'drain');
}

/**
 * Writes `path` (file or tree) as a tar stream: entries named relative to `base`, parents
 * before children, hard links as links, xattrs kept (overlay's own excluded).
 */
export async function writeTree(root: string, rel: string, out: Writable, opts: { name?: string } = {}): Promise<void> {
  const links = new Map<string, string>();
  const buf = Buffer.allocUnsafe(1 << 20);
  const walk = async (abs: string, name: string) => {
    const st = lstatSync(abs);
    const type = typeOf(st);
    if (!type) return;
    let xattrs: Map<string, Buffer> | undefined;
    for (const k of llistxattr(abs)) {
      if (k.startsWith('trusted.overlay.') || k.startsWith('user.overlay.')) continue;
      const v = lgetxattr(abs, k);
      if (v) (xattrs ??= new Map()).set(k, v);
    }
    const h: TarHeader = {
      name: type === 'dir' && name ? name + '/' : name,
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: type === 'file' ? st.size : 0,
      mtime: Math.floor(st.mtimeMs / 1000),
      linkname: type === 'symlink' ? readlinkSync(abs) : '',
      uname: '',
      gname: '',
      devmajor: type === 'char' || type === 'block' ? Math.floor(st.rdev / 256) & 0xfff : 0,
      devminor: type === 'char' || type === 'block' ? (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00) : 0,
      xattrs,
    };
    if (type === 'file' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first) {
        await put(out, encodeHeader({ ...h, type: 'link', size: 0, linkname: first }));
        return;
      }
      links.set(key, name);
    }
    if (name !== '' || type !== 'dir') await put(out, encodeHeader(h));
    if (type === 'file') {
      const fd = openSync(abs, C.O_RDONLY | C.O_NOFOLLOW);
      try {
        let left = st.size;
        let pos = 0;
        while (left > 0) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, left), pos);
          if (n <= 0) break;
          await put(out, Buffer.from(buf.subarray(0, n)));
          left -= n;
          pos += n;
        }
        if (left > 0) await put(out, Buffer.alloc(left)); // shrank while reading: keep the header's size
      } finally {
        closeSync(fd);
      }
      await put(out, paddingFor(st.size));
    } else if (type === 'dir') {
      for (const child of readdirSync(abs).sort()) await walk(join(abs, child), name ? `${name}/${child}` : child);
    }
  };
  const start = rel ? join(root, rel) : root;
  await walk(start, opts.name ?? (rel ? basename(rel) : ''));
  await put(out, END_OF_ARCHIVE);
}

/** Copies a file or tree with its metadata (`-a`: owners too). Symlinks are copied as links. */
export function copyTree(src: string, dst: string, opts: { archive?: boolean } = {}): void {
  const st = lstatSync(src);
  if (st.isDirectory()) {
    // Never descend through a symbolic link at the destination: inside a container it may
    // point anywhere on the host (an absolute target is resolved from our root, not the
    // container's). A link, or a non-directory, is replaced by a real directory, as tar does.
    let existing: ReturnType<typeof lstatSync> | undefined;
    try {
      existing = lstatSync(dst);
    } catch {
      /* absent */
    }
    if (existing && !existing.isDirectory()) rmSync(dst, { force: true });
    if (!existing || !existing.isDirectory()) mkdirSync(dst, { mode: 0o700 });
    for (const name of readdirSync(src)) copyTree(join(src, name), join(dst, name), opts);
    chmodSync(dst, st.mode & 0o7777);
    if (opts.archive) lchownSync(dst, st.uid, st.gid);
    utimesSync(dst, st.atime, st.mtime);
  } else if (st.isSymbolicLink()) {
    rmSync(dst, { force: true });
    symlinkSync(readlinkSync(src), dst);
    if (opts.archive) lchownSync(dst, st.uid, st.gid);
    lutimesSync(dst, st.atime, st.mtime);
  } else if (st.isFile()) {
    // never write through a symlink at the destination
    try {
      if (lstatSync(dst).isSymbolicLink()) rmSync(dst);
    } catch {
      /* absent */
    }
    copyFileSync(src, dst);
    if (opts.archive) lchownSync(dst, st.uid, st.gid);
    chmodSync(dst, st.mode & 0o7777);
    utimesSync(dst, st.atime, st.mtime);
  }
  // devices, FIFOs, sockets: skipped, as docker cp does for non-archive copies
}

/** Resolves a container path inside `rootfs` (symlinks followed inside it). */
export async function containerPath(rootfs: string, p: string): Promise<string> {
  if (!p.startsWith('/')) p = '/' + p;
  return resolveInRoot(rootfs, p);
}

/** `docker cp CONTAINER:SRC DEST` (DEST on the host). */
export async function copyFromContainer(rootfs: string, src: string, dest: string, opts: { archive?: boolean } = {}): Promise<void> {
  const from = await containerPath(rootfs, src);
  if (!existsSync(from) && !isLink(from)) throw notFound('CP_NO_SOURCE', `Could not find the file ${src} in container`);
  let to = dest;
  if (existsSync(dest) && lstatSync(dest).isDirectory() && !src.endsWith('/.')) to = join(dest, basename(src.replace(/\/+$/, '')) || basename(from));
  else if (!existsSync(dirname(dest))) throw invalidArgument('CP_NO_DEST_DIR', `destination directory ${dirname(dest)} does not exist`);
  copyTree(from, to, opts);
}

/** `docker cp SRC CONTAINER:DEST` (SRC on the host). Files land in the container's writable layer. */
export async function copyToContainer(rootfs: string, src: string, dest: string, opts: { archive?: boolean } = {}): Promise<void> {
  if (!existsSync(src) && !isLink(src)) throw notFound('CP_NO_SOURCE', `stat ${src}: no such file or directory`);
  const target = await containerPath(rootfs, dest);
  let to = target;
  if (existsSync(target) && lstatSync(target).isDirectory() && !src.endsWith('/.')) to = join(target, basename(src.replace(/\/+$/, '')));
  else if (!existsSync(dirname(target))) throw invalidArgument('CP_NO_DEST_DIR', `Could not find the file ${dirname(dest)} in container`);
  // the last component is ours to create: re-check it did not resolve out through a link
  const parent = await containerPath(rootfs, dirname(dest.endsWith('/') ? dest + 'x' : dest));
  if (!parent.startsWith(rootfs)) throw invalidArgument('CP_ESCAPE', `destination ${dest} resolves outside the container`);
  // without -a, what we create is owned by root (we are root), as with docker cp
  copyTree(src, to, { archive: !!opts.archive });
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
