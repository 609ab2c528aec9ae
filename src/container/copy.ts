/**
 * `cp` and `export`, done by this process on a container's file system as the container sees
 * it (fsview.ts: root file system, binds, volumes, etc files), through directory fds only:
 * nothing from the container is ever executed (CVE-2019-14271) and no path is used after it
 * was resolved, so a container renaming directories under a copy cannot lead it out
 * (CVE-2018-15664).
 *
 * Three operations shaped like the Engine API's archive endpoints (moby daemon/archive.go):
 * `statPath` (the X-Docker-Container-Path-Stat JSON), `archivePath` (a tar stream of a path)
 * and `extractToDir` (a tar stream into a directory). The CLI's copies between the host and a
 * container (docker/cli cp.go, moby pkg/archive/copy.go: trailing `/`, `/.`, renames, the
 * errors) are built on those three, as Docker's CLI is built on the API.
 */
import { closeSync, fchmodSync, fchownSync, futimesSync, lstatSync, readlinkSync, realpathSync, statSync, writeSync, chmodSync, read, readSync } from 'node:fs';
import { posix } from 'node:path';
import { Readable, Transform, pipeline as streamPipeline, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EngineError, abortError, errnoCode, invalidArgument, notFound } from '../errors/index.js';
import { encodeHeader, paddingFor, END_OF_ARCHIVE } from '../archive/tar/writer.js';
import { TarParser, type TarHandler } from '../archive/tar/reader.js';
import type { TarHeader, EntryType } from '../archive/tar/header.js';
import { cleanComponents } from '../archive/paths.js';
import { decompressor } from '../archive/compress.js';
import { sniffCompression } from '../oci/mediatypes.js';
import {
  fstatat,
  fsetxattr,
  flistxattr,
  fgetxattr,
  readlinkat,
  readdirFd,
  mkdirat,
  mknodat,
  symlinkat,
  linkat,
  fchownat,
  utimensat,
  unlinkat,
  openat2,
  AT_FDCWD,
  AT_EMPTY_PATH,
  AT_SYMLINK_NOFOLLOW,
  S_IFMT,
  S_IFDIR,
  S_IFREG,
  S_IFLNK,
  S_IFCHR,
  S_IFBLK,
  S_IFIFO,
  S_IFSOCK,
  type RawStat,
} from '../sys/native.js';
import { FsView, CONFINED, checkWritable, errnoError, fsError, isDir, isLink, openEntry, reopen, statFd, type Level, type Node, type Resolved } from './fsview.js';

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_NOFOLLOW = 0o400000;
const O_DIRECTORY = 0o200000;

// ------------------------------------------------------------------ stat

/** Docker's types.ContainerPathStat (the X-Docker-Container-Path-Stat header, base64 JSON). */
export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits (ModeDir = 1<<31, ModeSymlink = 1<<27, …) */
  mode: number;
  /** RFC 3339 with nanoseconds, UTC */
  mtime: string;
  /** for a link: the path it resolves to in the container, fully evaluated */
  linkTarget: string;
}

/** Go's os.FileMode bits */
export const GoMode = {
  Dir: 2 ** 31,
  Symlink: 2 ** 27,
  Device: 2 ** 26,
  NamedPipe: 2 ** 25,
  Socket: 2 ** 24,
  Setuid: 2 ** 23,
  Setgid: 2 ** 22,
  CharDevice: 2 ** 21,
  Sticky: 2 ** 20,
  Irregular: 2 ** 19,
} as const;

export const goModeHas = (mode: number, bit: number) => Math.floor(mode / bit) % 2 === 1;

export function goFileMode(st: RawStat): number {
  let m = st.mode & 0o777;
  switch (st.mode & S_IFMT) {
    case S_IFDIR:
      m += GoMode.Dir;
      break;
    case S_IFLNK:
      m += GoMode.Symlink;
      break;
    case S_IFCHR:
      m += GoMode.Device + GoMode.CharDevice;
      break;
    case S_IFBLK:
      m += GoMode.Device;
      break;
    case S_IFIFO:
      m += GoMode.NamedPipe;
      break;
    case S_IFSOCK:
      m += GoMode.Socket;
      break;
  }
  if (st.mode & 0o4000) m += GoMode.Setuid;
  if (st.mode & 0o2000) m += GoMode.Setgid;
  if (st.mode & 0o1000) m += GoMode.Sticky;
  return m;
}

/** Go's time.Time JSON (RFC3339Nano) in UTC. */
export function rfc3339Nano(sec: number, nsec: number): string {
  const iso = new Date(sec * 1000).toISOString().slice(0, 19);
  const frac = nsec ? '.' + String(nsec).padStart(9, '0').replace(/0+$/, '') : '';
  return `${iso}${frac}Z`;
}

// ------------------------------------------------------------------ Go's path rules (pkg/archive)

/** filepath.Clean */
export function goClean(p: string): string {
  if (p === '') return '.';
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.replace(/\/+$/, '') || '/' : n;
}

/** filepath.Base */
export function goBase(p: string): string {
  if (p === '') return '.';
  const s = p.replace(/\/+$/, '');
  if (s === '') return '/';
  return s.slice(s.lastIndexOf('/') + 1);
}

/** filepath.Dir */
export function goDir(p: string): string {
  const i = p.lastIndexOf('/');
  return goClean(p.slice(0, i + 1));
}

const hasTrailingSep = (p: string) => p.endsWith('/');
const specifiesCurrentDir = (p: string) => goBase(p) === '.';
/** the path ends with `/` or `/.`: it must be a directory */
export const assertsDirectory = (p: string) => hasTrailingSep(p) || specifiesCurrentDir(p);

/** archive.PreserveTrailingDotOrSeparator */
export function preserveTrailingDotOrSeparator(cleaned: string, original: string): string {
  let out = cleaned;
  if (!specifiesCurrentDir(out) && specifiesCurrentDir(original)) {
    if (!hasTrailingSep(out)) out += '/';
    out += '.';
  }
  if (!hasTrailingSep(out) && hasTrailingSep(original)) out += '/';
  return out;
}

/** archive.SplitPathDirEntry */
export function splitPathDirEntry(p: string): [string, string] {
  let cleaned = goClean(p);
  if (specifiesCurrentDir(p)) cleaned += '/.';
  return [goDir(cleaned), goBase(cleaned)];
}

/** archive.GetRebaseName */
export function getRebaseName(path: string, resolved: string): [string, string] {
  let r = resolved;
  let rebase = '';
  if (specifiesCurrentDir(path) && !specifiesCurrentDir(r)) r += '/.';
  if (hasTrailingSep(path) && !hasTrailingSep(r)) r += '/';
  if (goBase(path) !== goBase(r)) rebase = goBase(path);
  return [r, rebase];
}

/** The container path as Docker considers it: absolute, cleaned, its trailing `/` or `/.` kept. */
export const containerAbsPath = (p: string) => preserveTrailingDotOrSeparator(goClean('/' + p), p);

// ------------------------------------------------------------------ the three operations

function cannotFind(path: string, container: string): EngineError {
  return notFound('CP_NO_SUCH_PATH', `Could not find the file ${path} in container ${container}`, { where: `${container}:${path}` });
}

/**
 * Resolves a path as Docker's container.ResolvePath does: the directory part fully, the last
 * component not followed, unless the path ends with `/` or `/.`.
 */
export function resolvePath(view: FsView, path: string, container: string): Resolved {
  const abs = containerAbsPath(path);
  let r: Resolved;
  try {
    r = view.resolve(abs, { follow: assertsDirectory(abs) });
  } catch (e) {
    if (e instanceof EngineError && e.code === 'PATH_NOT_FOUND') throw cannotFind(path, container);
    throw e;
  }
  if (!r.node) {
    r.close();
    throw cannotFind(path, container);
  }
  if (assertsDirectory(abs) && !isDir(r.node.st)) {
    r.close();
    throw fsError(errnoError('ENOTDIR', 'not a directory'), abs);
  }
  return r;
}

function pathStatOf(view: FsView, r: Resolved, path: string): PathStat {
  const st = r.node!.st;
  const abs = containerAbsPath(path);
  let linkTarget = '';
  if (isLink(st)) {
    const full = view.resolve(abs, { follow: true, lexical: true });
    linkTarget = full.path;
    full.close();
  }
  return { name: goBase(abs), size: st.size, mode: goFileMode(st), mtime: rfc3339Nano(st.mtimeSec, st.mtimeNsec), linkTarget };
}

/** `HEAD /containers/{id}/archive`: the stat of a path in the container. */
export function statPath(view: FsView, path: string, container: string): PathStat {
  const r = resolvePath(view, path, container);
  try {
    return pathStatOf(view, r, path);
  } finally {
    r.close();
  }
}

/**
 * `GET /containers/{id}/archive`: the stat of the path, and a tar stream of it whose entries
 * start with the path's base name (`.` for `/.`, `/` for the root), as Docker's. The stream
 * holds the view's fds until it ends or is destroyed; `done` runs then (release the view).
 */
export function archivePath(view: FsView, path: string, container: string, opts: { signal?: AbortSignal; done?: () => void } = {}): { stat: PathStat; stream: Readable } {
  let r: Resolved;
  let stat: PathStat;
  try {
    r = resolvePath(view, path, container);
    stat = pathStatOf(view, r, path);
  } catch (e) {
    opts.done?.();
    throw e;
  }
  const top = goBase(containerAbsPath(path));
  const stream = lazyStream(
    () => tarTree(view, r.node!, r.path, top, opts),
    () => {
      r.close();
      opts.done?.();
    },
  );
  return { stat, stream };
}

/**
 * A byte stream from a generator, with `cleanup` run exactly once: when the generator ends or
 * fails, or when the stream is destroyed before it was ever read (a generator that never
 * started has no `finally` to run). While it runs, cleanup waits for it (its fds are in use).
 */
function lazyStream(make: () => AsyncGenerator<Buffer>, cleanup: () => void): Readable {
  let started = false;
  let cleaned = false;
  const once = () => {
    if (cleaned) return;
    cleaned = true;
    cleanup();
  };
  async function* gen(): AsyncGenerator<Buffer> {
    started = true;
    try {
      yield* make();
    } finally {
      once();
    }
  }
  const stream = Readable.from(gen(), { objectMode: false, highWaterMark: 1 << 20 });
  stream.once('close', () => {
    if (!started) once();
  });
  return stream;
}

/** A tar stream of the whole view (`export`): entries relative to `/`, without `/` itself. */
export function exportTree(view: FsView, opts: { signal?: AbortSignal; done?: () => void } = {}): Readable {
  const r = view.resolve('/');
  return lazyStream(
    () => tarTree(view, r.node!, '/', '', opts),
    () => {
      r.close();
      opts.done?.();
    },
  );
}

export interface ExtractOptions {
  /** refuse to replace a directory with a non-directory and the reverse (the CLI sets it) */
  noOverwriteDirNonDir?: boolean;
  /** owners of what is created: the archive's (Docker's), fixed ids, or the caller's (no chown) */
  owner?: 'archive' | 'caller' | { uid: number; gid: number };
  signal?: AbortSignal;
}

/**
 * `PUT /containers/{id}/archive`: extracts a tar stream (plain, gzip or zstd) into the
 * directory `path` of the view (the last component followed: a link to a directory is
 * fine). Everything is created relative to directory fds inside the view.
 */
export async function extractToDir(view: FsView, path: string, source: Readable | AsyncIterable<Buffer>, container: string, opts: ExtractOptions = {}): Promise<void> {
  const abs = containerAbsPath(path);
  let r: Resolved;
  try {
    r = view.resolve(abs, { follow: true });
  } catch (e) {
    if (e instanceof EngineError && e.code === 'PATH_NOT_FOUND') throw cannotFind(path, container);
    throw e;
  }
  try {
    if (!r.node) throw cannotFind(path, container);
    if (!isDir(r.node.st)) throw invalidArgument('CP_EXTRACT_NOT_DIR', 'extraction point is not a directory', { where: `${container}:${path}` });
    checkWritable(r.node.mount);
    const base: Level[] = [...r.stack, { fd: r.node.fd, path: r.path, mount: r.node.mount }];
    const x = new Extractor(view, base, opts);
    try {
      await feedTar(source, new TarParser(x), opts.signal);
      x.finish();
    } finally {
      x.dispose();
    }
  } finally {
    r.close();
  }
}

// ------------------------------------------------------------------ tar out

function entryType(st: RawStat): EntryType | undefined {
  switch (st.mode & S_IFMT) {
    case S_IFREG:
      return 'file';
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'symlink';
    case S_IFCHR:
      return 'char';
    case S_IFBLK:
      return 'block';
    case S_IFIFO:
      return 'fifo';
  }
  return undefined; // sockets are left out, as Docker's tar does
}

function readXattrs(fd: number): Map<string, Buffer> | undefined {
  let out: Map<string, Buffer> | undefined;
  for (const k of flistxattr(fd)) {
    if (k.startsWith('trusted.overlay.') || k.startsWith('user.overlay.')) continue;
    const v = fgetxattr(fd, k);
    if (v) (out ??= new Map()).set(k, v);
  }
  return out;
}

const SYNC_READ_MAX = 64 << 10;

function readAt(fd: number, buf: Buffer, pos: number): Promise<number> {
  return new Promise((res, rej) => read(fd, buf, 0, buf.length, pos, (e, n) => (e ? rej(e) : res(n))));
}

function childName(name: string, child: string): string {
  if (name === '') return child;
  if (name.endsWith('/')) return name + child;
  return `${name}/${child}`;
}

/**
 * Writes `node` (a tree too) as tar: parents before children, names sorted, hard links as
 * links, xattrs kept (overlay's own excluded). A child whose container path is a mount
 * target is taken from the mount's root, as the container sees it. `name` '' leaves the
 * top directory itself out (export).
 */
async function* tarTree(view: FsView, top: Node, topPath: string, name: string, opts: { signal?: AbortSignal }): AsyncGenerator<Buffer> {
  const links = new Map<string, string>();
  async function* entry(node: Node, path: string, name: string): AsyncGenerator<Buffer> {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    const st = node.st;
    const type = entryType(st);
    if (!type) return;
    const h: TarHeader = {
      name,
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: 0,
      mtime: st.mtimeSec,
      linkname: '',
      uname: '',
      gname: '',
      devmajor: type === 'char' || type === 'block' ? st.rdevMajor : 0,
      devminor: type === 'char' || type === 'block' ? st.rdevMinor : 0,
      xattrs: undefined,
    };
    if (type !== 'dir' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first !== undefined) {
        yield encodeHeader({ ...h, type: 'link', linkname: first });
        return;
      }
      links.set(key, name);
    }
    if (type === 'symlink') {
      h.linkname = readlinkat(node.fd, '');
      yield encodeHeader(h);
    } else if (type === 'file') {
      let fd: number;
      try {
        fd = reopen(node.fd, O_RDONLY);
      } catch (e) {
        throw fsError(e, view.show(path), 'open');
      }
      try {
        h.xattrs = readXattrs(fd);
        h.size = st.size;
        yield encodeHeader(h);
        let left = st.size;
        let pos = 0;
        while (left > 0) {
          if (opts.signal?.aborted) throw abortError(opts.signal);
          const buf = Buffer.allocUnsafe(Math.min(1 << 20, left));
          // a small file in one synchronous read (a thread-pool round trip costs more than it)
          const n = buf.length <= SYNC_READ_MAX ? readSync(fd, buf, 0, buf.length, pos) : await readAt(fd, buf, pos);
          if (n <= 0) break;
          yield n === buf.length ? buf : buf.subarray(0, n);
          left -= n;
          pos += n;
        }
        if (left > 0) yield Buffer.alloc(left); // shrank while read: keep the header's size
      } finally {
        closeSync(fd);
      }
      yield paddingFor(st.size);
    } else if (type === 'dir') {
      let names: string[];
      const dfd = reopen(node.fd, O_RDONLY | O_DIRECTORY);
      try {
        h.xattrs = readXattrs(dfd);
        names = readdirFd(dfd).sort();
      } finally {
        closeSync(dfd);
      }
      if (name !== '') yield encodeHeader(h);
      for (const child of names) {
        const childPath = path === '/' ? '/' + child : `${path}/${child}`;
        const m = view.mountAt(childPath);
        let c: Node;
        try {
          if (m) c = view.openMount(m);
          else {
            const fd = openEntry(node.fd, child);
            try {
              c = { fd, st: statFd(fd), mount: node.mount, mountRoot: false };
            } catch (e) {
              closeSync(fd);
              throw e;
            }
          }
        } catch (e) {
          if (errnoCode(e) === 'ENOENT') continue; // removed meanwhile
          throw fsError(e, view.show(childPath));
        }
        try {
          yield* entry(c, childPath, childName(name, child));
        } finally {
          closeSync(c.fd);
        }
      }
    } else {
      yield encodeHeader(h);
    }
  }
  yield* entry(top, topPath, name);
  yield END_OF_ARCHIVE;
}

// ------------------------------------------------------------------ tar in

async function feedTar(source: Readable | AsyncIterable<Buffer>, parser: TarParser, signal?: AbortSignal): Promise<void> {
  const it = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) {
    parser.end();
    return;
  }
  const head = first.value as Buffer;
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value as Buffer;
    }
  }
  const compression = sniffCompression(head);
  const consume = async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) {
      if (signal?.aborted) throw abortError(signal);
      parser.write(c);
    }
  };
  if (compression === 'none') await consume(all());
  else await pipeline(Readable.from(all()), decompressor(compression), consume);
  parser.end();
}

const timesOf = (mtime: number): [number, number] => [Math.floor(mtime), Math.round((mtime - Math.floor(mtime)) * 1e9)];

/** Docker's Unpack (pkg/archive) over the view's fds. */
class Extractor implements TarHandler {
  private file: { fd: number; h: TarHeader; path: string; dirfd: number; name: string } | undefined;
  private readonly dirs: { rel: string; h: TarHeader }[] = [];
  private cached: { key: string; r: Resolved; level: Level } | undefined;
  /** something was removed: the cached parent may be gone (dropped before the next entry) */
  private stale = false;
  private readonly basePath: string;

  constructor(
    private readonly view: FsView,
    private readonly base: Level[],
    private readonly opts: ExtractOptions,
  ) {
    this.basePath = base[base.length - 1]!.path;
  }

  private show(p: string): string {
    return this.view.show(p);
  }

  private join(dir: string, name: string): string {
    return dir === '/' ? '/' + name : `${dir}/${name}`;
  }

  private uncache(): void {
    this.cached?.r.close();
    this.cached = undefined;
  }

  /** The directory holding an entry, its missing parents made (0755, as Docker's MkdirAll). */
  private parentOf(comps: string[]): Level {
    if (comps.length === 0) return this.base[this.base.length - 1]!;
    const key = comps.join('/');
    if (this.stale) {
      this.uncache();
      this.stale = false;
    }
    if (this.cached?.key === key) return this.cached.level;
    this.uncache();
    const r = this.view.resolve(key, { from: this.base, follow: true, create: true });
    if (!r.node || !isDir(r.node.st)) {
      r.close();
      throw fsError(errnoError('ENOTDIR', 'not a directory'), this.show(r.path), 'mkdir');
    }
    const level = { fd: r.node.fd, path: r.path, mount: r.node.mount };
    this.cached = { key, r, level };
    return level;
  }

  private owner(h: TarHeader): [number, number] | undefined {
    const o = this.opts.owner ?? 'archive';
    if (o === 'caller') return undefined;
    if (o === 'archive') return [h.uid, h.gid];
    return [o.uid, o.gid];
  }

  private setXattrs(fd: number, h: TarHeader, path: string): void {
    if (!h.xattrs) return;
    for (const [k, v] of h.xattrs) {
      if (k.startsWith('trusted.overlay.') || k.startsWith('user.overlay.')) continue;
      try {
        fsetxattr(fd, k, v);
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'ENOTSUP' || code === 'EPERM') continue; // as Docker: not every file system takes them
        throw fsError(e, this.show(path), 'setxattr');
      }
    }
  }

  /** owner, mode, xattrs on an fd opened for I/O */
  private applyFd(fd: number, h: TarHeader, path: string): void {
    const own = this.owner(h);
    try {
      if (own) fchownSync(fd, own[0], own[1]);
      fchmodSync(fd, h.mode & 0o7777);
    } catch (e) {
      throw fsError(e, this.show(path), 'chown');
    }
    this.setXattrs(fd, h, path);
  }

  onEntry(h: TarHeader): void {
    if (this.opts.signal?.aborted) throw abortError(this.opts.signal);
    const comps = cleanComponents(h.name);
    if (comps.length === 0) {
      if (h.type === 'dir') return; // `.`: the extraction directory keeps its metadata, as Docker
      throw invalidArgument('CP_OVERWRITE_DIR', `cannot overwrite directory ${JSON.stringify(this.show(this.basePath))} with non-directory ${JSON.stringify(this.show(this.basePath))}`);
    }
    const leaf = comps.pop()!;
    const rel = [...comps, leaf].join('/');
    if (h.type === 'symlink' && !h.linkname.startsWith('/')) {
      // Docker's breakout rule: a relative link may not point above the extraction directory
      const t = posix.normalize(posix.join(comps.join('/') || '.', h.linkname));
      if (t === '..' || t.startsWith('../')) throw invalidArgument('CP_SYMLINK_BREAKOUT', `invalid symlink ${JSON.stringify(this.show(this.join(this.basePath, rel)))} -> ${JSON.stringify(h.linkname)}`);
    }
    const parent = this.parentOf(comps);
    const path = this.join(parent.path, leaf);
    const mnt = this.view.mountAt(path);
    checkWritable(mnt ?? parent.mount);
    if (!mnt) this.view.checkCreatable(parent, leaf);
    let existing: RawStat | null;
    let mountNode: Node | undefined;
    try {
      if (mnt) {
        mountNode = this.view.openMount(mnt);
        existing = mountNode.st;
      } else existing = fstatat(parent.fd, leaf, AT_SYMLINK_NOFOLLOW, true);
    } catch (e) {
      throw fsError(e, this.show(path));
    }
    try {
      if (existing) {
        const exDir = isDir(existing);
        if (this.opts.noOverwriteDirNonDir && exDir && h.type !== 'dir') {
          throw invalidArgument('CP_OVERWRITE_DIR', `cannot overwrite directory ${JSON.stringify(this.show(path))} with non-directory ${JSON.stringify(this.show(this.basePath))}`);
        }
        if (this.opts.noOverwriteDirNonDir && !exDir && h.type === 'dir') {
          throw invalidArgument('CP_OVERWRITE_NON_DIR', `cannot overwrite non-directory ${JSON.stringify(this.show(path))} with directory ${JSON.stringify(this.show(this.basePath))}`);
        }
        if (!(exDir && h.type === 'dir')) {
          this.stale = true;
          this.view.remove(parent, leaf); // a mount point: EBUSY, as the kernel says to Docker
          existing = null;
        }
      }
      if (h.type === 'dir') {
        if (!existing) {
          try {
            mkdirat(parent.fd, leaf, 0o700);
          } catch (e) {
            throw fsError(e, this.show(path), 'mkdir');
          }
        }
        const fd = mountNode ? reopen(mountNode.fd, O_RDONLY | O_DIRECTORY) : this.open(parent.fd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, path);
        try {
          this.applyFd(fd, h, path);
        } finally {
          closeSync(fd);
        }
        this.dirs.push({ rel, h });
        return;
      }
      switch (h.type) {
        case 'file': {
          const fd = this.open(parent.fd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, path, 0o600);
          this.file = { fd, h, path, dirfd: parent.fd, name: leaf };
          return;
        }
        case 'symlink': {
          try {
            symlinkat(h.linkname, parent.fd, leaf);
            const own = this.owner(h);
            if (own) fchownat(parent.fd, leaf, own[0], own[1], AT_SYMLINK_NOFOLLOW);
            utimensat(parent.fd, leaf, timesOf(h.mtime), timesOf(h.mtime), AT_SYMLINK_NOFOLLOW);
          } catch (e) {
            throw fsError(e, this.show(path), 'symlink');
          }
          return;
        }
        case 'link':
          return this.hardlink(h, parent, leaf, path);
        case 'char':
        case 'block':
        case 'fifo':
          return this.node(h, parent, leaf, path);
      }
    } finally {
      if (mountNode) closeSync(mountNode.fd);
    }
  }

  private open(dirfd: number, name: string, flags: number, path: string, mode = 0): number {
    try {
      return openat2(dirfd, name, flags, mode, CONFINED);
    } catch (e) {
      throw fsError(e, this.show(path), 'open');
    }
  }

  private hardlink(h: TarHeader, parent: Level, leaf: string, path: string): void {
    const t = posix.normalize(h.linkname.replace(/^\/+/, ''));
    if (t === '..' || t.startsWith('../') || t === '.' || t === '') {
      throw invalidArgument('CP_HARDLINK_BREAKOUT', `invalid hardlink ${JSON.stringify(this.show(posix.join(this.basePath, h.linkname)))} -> ${JSON.stringify(h.linkname)}`);
    }
    const comps = t.split('/');
    const tleaf = comps.pop()!;
    const r = this.view.resolve(comps.join('/') || '.', { from: this.base, follow: true });
    try {
      if (!r.node || !isDir(r.node.st)) throw fsError(errnoError('ENOENT', 'missing'), this.show(this.join(this.basePath, t)), 'link');
      const tpath = this.join(r.path, tleaf);
      if (r.node.mount !== parent.mount || this.view.mountAt(tpath)) throw fsError(errnoError('EXDEV', 'cross mount'), this.show(path), 'link');
      const st = fstatat(r.node.fd, tleaf, AT_SYMLINK_NOFOLLOW, true);
      if (!st) throw fsError(errnoError('ENOENT', 'missing'), this.show(tpath), 'link');
      if (isDir(st)) throw invalidArgument('CP_HARDLINK_DIR', `invalid hardlink ${JSON.stringify(this.show(path))} -> ${JSON.stringify(h.linkname)}: a directory`);
      linkat(r.node.fd, tleaf, parent.fd, leaf, 0);
      // as Docker's createTarFile: the link entry's owner is applied (to the shared inode,
      // which clears its setuid/setgid bits); its mode is not
      const own = this.owner(h);
      if (own) fchownat(parent.fd, leaf, own[0], own[1], AT_SYMLINK_NOFOLLOW);
    } catch (e) {
      throw fsError(e, this.show(path), 'link');
    } finally {
      r.close();
    }
  }

  private node(h: TarHeader, parent: Level, leaf: string, path: string): void {
    const type = h.type === 'char' ? S_IFCHR : h.type === 'block' ? S_IFBLK : S_IFIFO;
    try {
      mknodat(parent.fd, leaf, type | 0o600, h.devmajor, h.devminor);
      const fd = openEntry(parent.fd, leaf);
      try {
        const st = statFd(fd);
        if ((st.mode & S_IFMT) !== type) throw errnoError('EEXIST', 'replaced');
        const own = this.owner(h);
        if (own) fchownat(fd, '', own[0], own[1], AT_EMPTY_PATH);
        // the very inode, through its fd (chmod has no "don't follow" on a name)
        chmodSync(`/proc/self/fd/${fd}`, h.mode & 0o7777);
        utimensat(AT_FDCWD, `/proc/self/fd/${fd}`, timesOf(h.mtime), timesOf(h.mtime), 0);
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      throw fsError(e, this.show(path), 'mknod');
    }
  }

  onData(chunk: Buffer): void {
    if (!this.file) return;
    let off = 0;
    while (off < chunk.length) {
      try {
        off += writeSync(this.file.fd, chunk, off, chunk.length - off);
      } catch (e) {
        throw fsError(e, this.show(this.file.path), 'write');
      }
    }
  }

  onEnd(): void {
    const f = this.file;
    if (!f) return;
    this.file = undefined;
    try {
      this.applyFd(f.fd, f.h, f.path);
      futimesSync(f.fd, f.h.mtime, f.h.mtime);
    } finally {
      closeSync(f.fd);
    }
  }

  /** Directory times last (what was created in them changed them), deepest first. */
  finish(): void {
    this.uncache();
    for (const { rel, h } of this.dirs.reverse()) {
      let r: Resolved | undefined;
      try {
        r = this.view.resolve(rel, { from: this.base });
        if (r.node && isDir(r.node.st)) {
          const fd = reopen(r.node.fd, O_RDONLY | O_DIRECTORY);
          try {
            futimesSync(fd, h.mtime, h.mtime);
          } finally {
            closeSync(fd);
          }
        }
      } catch {
        /* gone meanwhile: nothing to date */
      } finally {
        r?.close();
      }
    }
  }

  /** After a failure (a truncated stream, a client gone): the file being written is removed, not left half. */
  dispose(): void {
    if (this.file) {
      closeSync(this.file.fd);
      try {
        unlinkat(this.file.dirfd, this.file.name, 0);
      } catch {
        /* already gone */
      }
      this.file = undefined;
    }
    this.uncache();
  }
}

/** archive.RebaseArchiveEntries: the first `from` in each name (and hard link) becomes `to`. */
export function rebaseArchive(source: Readable, from: string, to: string): Readable {
  const old = from === '/' ? '' : from;
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        parser.write(chunk);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb) {
      try {
        parser.end();
        out.push(END_OF_ARCHIVE);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
  let size = 0;
  const parser = new TarParser({
    onEntry(h) {
      const name = h.name.replace(old, to);
      const linkname = h.type === 'link' ? h.linkname.replace(old, to) : h.linkname;
      size = h.size;
      out.push(encodeHeader({ ...h, name, linkname }));
    },
    onData(c) {
      out.push(Buffer.from(c));
    },
    onEnd() {
      if (size) out.push(paddingFor(size));
      size = 0;
    },
  });
  return streamPipeline(source, out, () => {});
}

/**
 * Writes a stream into `out` without ending it (stdout, or the caller's stream): waits for
 * 'drain', and fails when `out` fails or closes early (a closed pipe) instead of waiting.
 */
export async function pump(stream: Readable, out: Writable, signal?: AbortSignal): Promise<void> {
  let failed: Error | undefined;
  const onError = (e: Error) => (failed ??= e);
  const onClose = () => (failed ??= Object.assign(new Error('the output was closed'), { code: 'EPIPE' }));
  out.on('error', onError);
  out.on('close', onClose);
  try {
    for await (const c of stream) {
      if (signal?.aborted) throw abortError(signal);
      if (failed) throw failed;
      if (!out.write(c)) {
        await new Promise<void>((res) => {
          const done = () => {
            out.off('drain', done);
            out.off('error', done);
            out.off('close', done);
            res();
          };
          out.on('drain', done);
          out.on('error', done);
          out.on('close', done);
        });
      }
    }
    if (failed) throw failed;
  } finally {
    out.off('error', onError);
    out.off('close', onClose);
    stream.destroy();
  }
}

// ------------------------------------------------------------------ the CLI's copies

/** What the CLI's copies need of a container: the three archive operations. */
export interface ArchiveEndpoint {
  /** the container as the user named it */
  readonly name: string;
  stat(path: string): Promise<PathStat>;
  getArchive(path: string): Promise<{ stat: PathStat; stream: Readable }>;
  putArchive(path: string, source: Readable, opts: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void>;
}

interface CopyInfo {
  path: string;
  exists: boolean;
  isDir: boolean;
  rebaseName: string;
}

/** A not-found from the endpoint as Docker 20.10's CLI prints it. */
async function orNoSuchPath<T>(p: Promise<T>, ep: ArchiveEndpoint, path: string): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof EngineError && e.code === 'CP_NO_SUCH_PATH') throw notFound('CP_NO_SUCH_PATH', `No such container:path: ${ep.name}:${path}`, { cause: e });
    throw e;
  }
}

function cliError(code: string, message: string): EngineError {
  return invalidArgument(code, message);
}

function resolveLocalPath(p: string): string {
  return preserveTrailingDotOrSeparator(goClean(posix.resolve(p)), p);
}

/** command.ValidateOutputPath */
function validateOutputPath(path: string): void {
  const dir = goDir(goClean(path));
  if (dir !== '' && dir !== '.') {
    try {
      statSync(dir);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw cliError('CP_NO_DEST_DIR', `invalid output path: directory ${JSON.stringify(dir)} does not exist`);
    }
  }
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    if (errnoCode(e) === 'ENOTDIR') throw cliError('CP_BAD_DEST', `stat ${path}: not a directory`);
    throw e;
  }
  if (st.isDirectory() || st.isFile()) return;
  const why = st.isCharacterDevice() || st.isBlockDevice() ? 'got a device' : 'got an irregular file';
  throw cliError('CP_BAD_DEST', `invalid output path: ${JSON.stringify(path)} must be a directory or a regular file: ${why}`);
}

function validateFileMode(mode: number): string | undefined {
  if (goModeHas(mode, GoMode.Device)) return 'got a device';
  if (goModeHas(mode, GoMode.Irregular)) return 'got an irregular file';
  return undefined;
}

/** archive.CopyInfoSourcePath (host side) */
function copyInfoSourcePath(path: string, followLink: boolean): CopyInfo {
  let resolved: string;
  let rebaseName = '';
  const lstatErr = (p: string) => cliError('CP_NO_SOURCE', `lstat ${p}: no such file or directory`);
  const evalLinks = (p: string) => {
    try {
      return realpathSync(p);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw lstatErr(goClean(p));
      if (errnoCode(e) === 'ENOTDIR') throw cliError('CP_NO_SOURCE', `lstat ${goClean(p)}: not a directory`);
      throw e;
    }
  };
  if (followLink) {
    [resolved, rebaseName] = getRebaseName(path, evalLinks(path));
  } else {
    const i = path.lastIndexOf('/');
    const dirPath = path.slice(0, i + 1);
    const basePath = path.slice(i + 1);
    const dir = evalLinks(dirPath || '.');
    resolved = (dir === '/' ? '' : dir) + '/' + basePath;
    if (hasTrailingSep(path) && goBase(path) !== goBase(resolved)) rebaseName = goBase(path);
  }
  let st;
  try {
    st = lstatSync(resolved);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw lstatErr(resolved);
    throw e;
  }
  return { path: resolved, exists: true, isDir: st.isDirectory(), rebaseName };
}

/** archive.CopyInfoDestinationPath (host side) */
function copyInfoDestinationPath(path: string): CopyInfo {
  let p = path;
  let st;
  try {
    st = lstatSync(p);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw cliError('CP_BAD_DEST', `lstat ${p}: ${(e as Error).message}`);
  }
  for (let n = 0; st?.isSymbolicLink(); n++) {
    if (n > 10) throw cliError('CP_DEST_LOOP', `too many symlinks in ${path}`);
    let target = readlinkSync(p);
    if (!target.startsWith('/')) target = posix.join(splitPathDirEntry(p)[0], target);
    p = target;
    try {
      st = lstatSync(p);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      st = undefined;
    }
  }
  if (!st) {
    const [parent] = splitPathDirEntry(p);
    let ps;
    try {
      ps = statSync(parent);
    } catch (e) {
      throw cliError('CP_NO_DEST_DIR', `stat ${parent}: ${errnoCode(e) === 'ENOTDIR' ? 'not a directory' : 'no such file or directory'}`);
    }
    if (!ps.isDirectory()) throw cliError('CP_NOT_DIR', 'not a directory');
    return { path: p, exists: false, isDir: false, rebaseName: '' };
  }
  return { path: p, exists: true, isDir: st.isDirectory(), rebaseName: '' };
}

/** archive.PrepareArchiveCopy: where to extract, and how to rename the archive's top entry. */
function prepareArchiveCopy(src: CopyInfo, dst: CopyInfo): { dir: string; rebase?: [string, string] } {
  const [dstDir, dstBase] = splitPathDirEntry(dst.path);
  const srcBase = src.rebaseName || splitPathDirEntry(src.path)[1];
  if (dst.exists && dst.isDir) return { dir: dst.path };
  if (dst.exists && src.isDir) throw cliError('CP_CANNOT_COPY_DIR', 'cannot copy directory');
  if (dst.exists || src.isDir) return { dir: dstDir, rebase: [srcBase, dstBase] };
  if (assertsDirectory(dst.path)) throw cliError('CP_NO_SUCH_DIR', 'no such directory');
  return { dir: dstDir, rebase: [srcBase, dstBase] };
}

/** A tar stream of a host path, its top entry named `name` (archive.TarResource). */
function hostTar(path: string, name: string, signal?: AbortSignal): Readable {
  const [dir, base] = splitPathDirEntry(path);
  const top = base === '.' || base === '/' ? goClean(path) : dir;
  const view = new FsView(top, { prefix: top });
  let r: Resolved;
  try {
    r = base === '.' || base === '/' ? view.resolve('/') : view.resolve(base);
    if (!r.node) {
      r.close();
      throw cliError('CP_NO_SOURCE', `lstat ${path}: no such file or directory`);
    }
  } catch (e) {
    view.close();
    throw e;
  }
  return lazyStream(
    () => tarTree(view, r.node!, r.path, name, { ...(signal ? { signal } : {}) }),
    () => {
      r.close();
      view.close();
    },
  );
}

/** archive.CopyTo on the host: extracts into a host directory, confined to it, owners not set. */
async function extractOnHost(content: Readable, src: CopyInfo, dstPath: string, signal?: AbortSignal): Promise<void> {
  const dst = copyInfoDestinationPath(dstPath);
  const { dir, rebase } = prepareArchiveCopy(src, dst);
  const view = new FsView(dir, { prefix: dir });
  try {
    const stream = rebase ? rebaseArchive(content, rebase[0], rebase[1]) : content;
    await extractToDir(view, '/', stream, 'host', { noOverwriteDirNonDir: true, owner: 'caller', ...(signal ? { signal } : {}) });
  } catch (e) {
    content.destroy();
    throw e;
  } finally {
    view.close();
  }
}

/** `docker cp CONTAINER:SRC DEST|-` */
export async function copyFromContainer(ep: ArchiveEndpoint, srcPath: string, dstPath: string | Writable, opts: { followLink?: boolean; signal?: AbortSignal } = {}): Promise<void> {
  let dst = typeof dstPath === 'string' ? dstPath : '-';
  if (dst !== '-') {
    dst = resolveLocalPath(dst);
    validateOutputPath(dst);
  }
  let src = srcPath;
  let rebaseName = '';
  if (opts.followLink) {
    const s = await ep.stat(src).catch(() => undefined);
    if (s && goModeHas(s.mode, GoMode.Symlink)) {
      let target = s.linkTarget;
      if (!target.startsWith('/')) target = posix.join(splitPathDirEntry(src)[0], target);
      [src, rebaseName] = getRebaseName(src, target);
    }
  }
  const { stat, stream } = await orNoSuchPath(ep.getArchive(src), ep, src);
  if (typeof dstPath !== 'string' || dst === '-') {
    // the caller's stream (or stdout) is written, not ended
    await pump(stream, typeof dstPath === 'string' ? process.stdout : dstPath, opts.signal);
    return;
  }
  const info: CopyInfo = { path: src, exists: true, isDir: goModeHas(stat.mode, GoMode.Dir), rebaseName };
  const content = rebaseName ? rebaseArchive(stream, splitPathDirEntry(src)[1], rebaseName) : stream;
  await extractOnHost(content, info, dst, opts.signal);
}

/** `docker cp SRC|- CONTAINER:DEST` */
export async function copyToContainer(
  ep: ArchiveEndpoint,
  srcPath: string | Readable,
  dstPath: string,
  opts: { followLink?: boolean; copyUIDGID?: boolean; signal?: AbortSignal } = {},
): Promise<void> {
  const dstInfo: CopyInfo = { path: dstPath, exists: false, isDir: false, rebaseName: '' };
  let dst = await ep.stat(dstPath).catch(() => undefined);
  if (dst) {
    if (goModeHas(dst.mode, GoMode.Symlink)) {
      let target = dst.linkTarget;
      if (!target.startsWith('/')) target = posix.join(splitPathDirEntry(dstPath)[0], target);
      dstInfo.path = target;
      dst = await ep.stat(target).catch(() => undefined);
    }
    if (dst) {
      const bad = validateFileMode(dst.mode);
      if (bad) throw cliError('CP_BAD_DEST', `destination "${ep.name}:${dstPath}" must be a directory or a regular file: ${bad}`);
      dstInfo.exists = true;
      dstInfo.isDir = goModeHas(dst.mode, GoMode.Dir);
    }
  }
  let content: Readable;
  let ours = false;
  let resolvedDst: string;
  if (typeof srcPath !== 'string' || srcPath === '-') {
    if (!dstInfo.isDir) throw cliError('CP_DEST_NOT_DIR', `destination "${ep.name}:${dstPath}" must be a directory`);
    content = typeof srcPath === 'string' ? process.stdin : srcPath;
    resolvedDst = dstInfo.path;
  } else {
    const src = copyInfoSourcePath(resolveLocalPath(srcPath), !!opts.followLink);
    const { dir, rebase } = prepareArchiveCopy(src, dstInfo);
    const name = rebase ? rebase[1] : src.rebaseName || splitPathDirEntry(src.path)[1];
    content = hostTar(src.path, name, opts.signal);
    ours = true;
    resolvedDst = dir;
  }
  try {
    await orNoSuchPath(ep.putArchive(resolvedDst, content, { noOverwriteDirNonDir: true, copyUIDGID: !!opts.copyUIDGID }), ep, resolvedDst);
  } finally {
    if (ours) content.destroy();
  }
}
