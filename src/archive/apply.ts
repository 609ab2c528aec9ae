/**
 * Applies a layer tar to a directory, entry by entry, with every rule of
 * docs/RELIABILITY.md items 1–8:
 *  - names are cleaned as if the root were `/` (no `..`, no absolute escape);
 *  - parent directories are resolved inside the root: a symlink met on the way is
 *    followed *within* the root (absolute targets are re-rooted), never out of it;
 *  - nothing is written through a symlink: a non-directory entry replaces whatever is
 *    there, files are created with O_EXCL|O_NOFOLLOW;
 *  - hard links resolve their target's parent inside the root and never follow a final
 *    symlink; metadata calls never follow links (lchown, fchmod on our own fd);
 *  - whiteouts are validated and only ever affect their own directory; in `overlay` mode
 *    they become overlayfs whiteouts (0/0 char device, trusted.overlay.opaque=y), in
 *    `delete` mode (applying onto a full copy) they remove lower content — opaque
 *    markers only hide what this layer did not write, whatever the order in the tar;
 *  - trusted.overlay.* / user.overlay.* xattrs from the archive are dropped;
 *  - device numbers are range-checked;
 *  - runs of zeros become holes, so an 8 GiB file of zeros costs neither memory nor disk.
 *
 * All file-system calls are synchronous: an entry costs a handful of syscalls and no
 * promise round trips. Run it in a worker thread to extract layers in parallel.
 */
import {
  closeSync,
  constants as C,
  fchmodSync,
  fchownSync,
  ftruncateSync,
  futimesSync,
  linkSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmSync,
  chmodSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeSync,
  write,
  type Stats,
} from 'node:fs';
import { EngineError, errnoCode, invalidArgument } from '../errors/index.js';
import { fsetxattr, lsetxattr, mknod, makeWhiteout, S_IFBLK, S_IFCHR, S_IFIFO } from '../sys/native.js';
import type { TarHandler } from './tar/reader.js';
import type { TarHeader } from './tar/header.js';
import { cleanComponents, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from './paths.js';
import type { TarSplitWriter } from './tarsplit.js';
import { MAX_NAME_DEPTH } from './limits.js';

/** `none`: not a layer (`cp -` into a container): `.wh.` names are ordinary files, as in Docker's Untar. */
export type WhiteoutMode = 'overlay' | 'delete' | 'none';

export interface ApplyOptions {
  /** Absolute path of the directory to extract into. */
  root: string;
  whiteouts: WhiteoutMode;
  /** The root starts empty (overlay snapshots): existence checks can use what we created. */
  fresh: boolean;
  /** Apply owners from the archive (needs root). Default: running as root. */
  sameOwner?: boolean;
  tarsplit?: TarSplitWriter;
  /** Called for things skipped with a reason (xattrs the fs refused, aufs metadata). */
  warn?: (msg: string) => void;
}

export interface ApplyStats {
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  devices: number;
  whiteouts: number;
  /** Sum of regular file sizes and symlink lengths, hard links once (Docker's layer size). */
  bytes: number;
}

const MAX_SYMLINK_HOPS = 255;
/** Limits on where a name *resolves* to (symlinks can stack names that each pass the tar limits). */
const MAX_DEPTH = MAX_NAME_DEPTH;
/** the kernel's PATH_MAX */
const MAX_PATH = 4096;
const MAX_MAJOR = 0xfff;
/** Files at least this big are written behind, on the thread pool. */
const WRITE_BEHIND_MIN = 64 * 1024;
const MAX_MINOR = 0xfffff;

function isForbiddenXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

const ZEROS = Buffer.alloc(64 * 1024);

function isAllZero(b: Buffer): boolean {
  // memcmp against a zero buffer, 64 KiB at a time (~60x faster than a BigInt loop in JS)
  for (let off = 0; off < b.length; off += ZEROS.length) {
    const n = Math.min(ZEROS.length, b.length - off);
    if (ZEROS.compare(b, off, off + n, 0, n) !== 0) return false;
  }
  return true;
}

/** pwrite on the thread pool until the whole chunk is written. */
function writeAll(fd: number, buf: Buffer, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (off: number) => {
      write(fd, buf, off, buf.length - off, pos + off, (err, n) => {
        if (err) reject(err);
        else if (off + n < buf.length) step(off + n);
        else resolve();
      });
    };
    step(0);
  });
}

interface PendingDir {
  abs: string;
  mode: number;
  mtime: number;
}

export class LayerApplier implements TarHandler {
  readonly stats: ApplyStats = { entries: 0, files: 0, dirs: 0, symlinks: 0, hardlinks: 0, devices: 0, whiteouts: 0, bytes: 0 };
  private readonly root: string;
  private readonly sameOwner: boolean;
  /** files we create get uid/gid 0 */
  private readonly rootCreator: boolean;
  /** root-relative resolved path -> true for directories known to exist (created or checked). */
  private readonly dirs = new Set<string>(['']);
  /** resolved relative paths this layer wrote (files, links, dirs, devices, whiteouts). */
  private readonly written = new Set<string>();
  private readonly pendingDirs = new Map<string, PendingDir>();
  private readonly opaqueDirs = new Set<string>();
  // current regular file being written
  private fd = -1;
  private pos = 0;
  /** the last chunk of the current file was skipped as a hole */
  private hole = false;
  /** write-behind state: the current file's write chain, files finishing, bytes queued */
  private behind = false;
  private chain: Promise<void> = Promise.resolve();
  private readonly pendingFiles = new Set<Promise<void>>();
  private _backlog = 0;
  private readonly waiters: (() => void)[] = [];
  private failure: unknown;
  private cur: TarHeader | undefined;

  constructor(private readonly opts: ApplyOptions) {
    this.root = opts.root.replace(/\/+$/, '');
    this.sameOwner = opts.sameOwner ?? process.getuid?.() === 0;
    this.rootCreator = process.geteuid?.() === 0 && process.getegid?.() === 0;
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : this.root + '/' + rel;
  }

  onRaw(chunk: Buffer): void {
    this.opts.tarsplit?.raw(chunk);
  }

  onEntry(h: TarHeader): void {
    this.stats.entries++;
    this.cur = h;
    const comps = cleanComponents(h.name);
    if (comps.length === 0) {
      // The root itself: only a directory entry means something (its metadata). Anything
      // else naming the root (a symlink `.` -> `/`, CVE-2021-29136) is ignored.
      if (h.type === 'dir') this.applyDirMeta('', h);
      return;
    }
    const base = comps[comps.length - 1]!;
    const parent = this.resolveParent(comps.slice(0, -1), h.name);

    if (base.startsWith(WHITEOUT_PREFIX) && this.opts.whiteouts !== 'none') {
      this.whiteout(parent, base, h);
      return;
    }
    const rel = parent === '' ? base : parent + '/' + base;
    this.checkResolved(rel, 0, h.name);
    switch (h.type) {
      case 'dir':
        this.makeDir(rel, h);
        break;
      case 'file':
        this.startFile(rel, h);
        break;
      case 'symlink':
        this.replace(rel);
        symlinkSync(h.linkname, this.abs(rel));
        this.written.add(rel);
        this.stats.symlinks++;
        this.stats.bytes += Buffer.byteLength(h.linkname);
        this.ownerAndTimes(rel, h, true);
        this.xattrs(rel, h);
        break;
      case 'link':
        this.hardlink(rel, h);
        break;
      case 'char':
      case 'block':
      case 'fifo':
        this.device(rel, h);
        break;
    }
  }

  onData(chunk: Buffer): void {
    if (this.fd < 0) return; // payload of an entry we do not keep
    if (this.failure) throw this.failure;
    // Holes for zero runs: an all-zero chunk is skipped, whatever its size (the file is new,
    // so what is not written reads as zeros; a decompressor's small chunks between large
    // ones would otherwise allocate a block each).
    if (chunk[0] === 0 && isAllZero(chunk)) {
      this.pos += chunk.length;
      this.hole = true;
      return;
    }
    this.hole = false;
    if (this.behind) {
      // write-behind: the thread pool copies into the page cache while we parse on
      const fd = this.fd;
      const pos = this.pos;
      this.pos += chunk.length;
      this._backlog += chunk.length;
      const next = this.chain.then(
        () => writeAll(fd, chunk, pos),
      ).finally(() => {
        this._backlog -= chunk.length;
        this.wake();
      });
      // the tail of the chain is always observed: a failed write (ENOSPC, EIO) becomes
      // this applier's failure, never an unhandled rejection that kills the process
      next.catch(this.noteFailure);
      this.chain = next;
      return;
    }
    let off = 0;
    while (off < chunk.length) {
      const n = writeSync(this.fd, chunk, off, chunk.length - off, this.pos);
      off += n;
      this.pos += n;
    }
  }

  onEnd(): void {
    const h = this.cur;
    if (this.fd >= 0 && h) {
      const fd = this.fd;
      const hole = this.hole;
      this.fd = -1;
      if (this.behind) {
        // metadata after the last write (a write clears setuid bits and capabilities)
        const done = this.chain.then(() => this.finishFile(fd, h, hole));
        this.chain = Promise.resolve();
        this.behind = false;
        const tracked: Promise<void> = done.catch((e: unknown) => {
          this.failure ??= e;
          try {
            closeSync(fd);
          } catch {
            /* closed */
          }
        }).finally(() => {
          this.pendingFiles.delete(tracked);
          this.wake();
        });
        this.pendingFiles.add(tracked);
      } else {
        try {
          this.finishFile(fd, h, hole);
        } catch (e) {
          try {
            closeSync(fd);
          } catch {
            /* closed */
          }
          throw e;
        }
      }
    }
    this.cur = undefined;
  }

  /** ftruncate for a trailing hole, owner, mode, xattrs, times; closes the fd. */
  private finishFile(fd: number, h: TarHeader, hole: boolean): void {
    // a trailing run of zeros was skipped as a hole: extend the file to its size
    if (hole) ftruncateSync(fd, h.size);
    if (this.needsChown(h)) fchownSync(fd, h.uid, h.gid);
    fchmodSync(fd, h.mode); // after chown: chown clears setuid/setgid
    this.fdXattrs(fd, h);
    futimesSync(fd, h.mtime, h.mtime);
    closeSync(fd);
  }

  /** Bytes handed to the thread pool and not yet written. */
  get backlog(): number {
    return this._backlog;
  }

  /** Resolves when the write-behind backlog is below `limit` (back-pressure for the reader). */
  drain(limit = 0): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this._backlog <= limit && (limit > 0 || this.pendingFiles.size === 0)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push(() => {
        if (this.failure) reject(this.failure);
        else if (this._backlog <= limit && (limit > 0 || this.pendingFiles.size === 0)) resolve();
        else this.drain(limit).then(resolve, reject);
      });
    });
  }

  private wake(): void {
    const w = this.waiters.splice(0);
    for (const f of w) f();
  }

  /** Waits for every write-behind to land (and fails if one failed). */
  async flush(): Promise<void> {
    await this.drain(0);
    while (this.pendingFiles.size) await Promise.all([...this.pendingFiles]);
    if (this.failure) throw this.failure;
  }

  /** Applies deferred work: opaque markers (delete mode), directory modes and mtimes. */
  finish(): void {
    if (this.opts.whiteouts === 'delete') {
      for (const d of this.opaqueDirs) this.clearLower(d);
    }
    // deepest first so a parent's mtime is set after its children changed it
    const dirs = [...this.pendingDirs.values()].sort((a, b) => b.abs.length - a.abs.length);
    for (const d of dirs) {
      // O_NOFOLLOW|O_DIRECTORY: if the name is no longer this layer's directory, leave it alone
      let fd: number;
      try {
        fd = openSync(d.abs, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
      } catch (e) {
        const c = errnoCode(e);
        if (c === 'ELOOP' || c === 'ENOTDIR' || c === 'ENOENT') continue;
        throw e;
      }
      try {
        fchmodSync(fd, d.mode);
        futimesSync(fd, d.mtime, d.mtime);
      } finally {
        closeSync(fd);
      }
    }
    this.pendingDirs.clear();
  }

  private readonly noteFailure = (e: unknown): void => {
    this.failure ??= e;
    this.wake();
  };

  /**
   * Closes a half-written file after an error. A file written behind is closed only once
   * the writes queued for it have run: closing it under them would make them fail with
   * EBADF — or, once the descriptor number is reused by the next open, write this layer's
   * bytes into another file. Await `settle()` before removing what was extracted.
   */
  abort(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    const close = () => {
      try {
        closeSync(fd);
      } catch {
        /* ignore */
      }
    };
    if (!this.behind) {
      close();
      return;
    }
    this.behind = false;
    const tracked: Promise<void> = this.chain
      .catch(() => {})
      .then(close)
      .finally(() => {
        this.pendingFiles.delete(tracked);
        this.wake();
      });
    this.chain = Promise.resolve();
    this.pendingFiles.add(tracked);
  }

  /** Waits until no write is queued and every file written behind is closed; never throws. */
  async settle(): Promise<void> {
    await Promise.allSettled([this.chain]);
    while (this.pendingFiles.size > 0) await Promise.allSettled([...this.pendingFiles]);
  }

  // ---------------------------------------------------------------- path resolution

  private lstat(rel: string): Stats | undefined {
    if (this.opts.fresh && !this.written.has(rel) && !this.dirs.has(rel)) return undefined;
    try {
      return lstatSync(this.abs(rel));
    } catch (e) {
      const c = errnoCode(e);
      if (c === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * Resolves parent components to a real directory inside the root, following symlinks
   * inside the root. Missing directories are created (0755, like Docker) — or, for a hard
   * link's target (`create` false), refused.
   */
  private resolveParent(comps: string[], name: string, create = true): string {
    let cur = '';
    let hops = 0;
    let depth = 0;
    const queue = comps.slice();
    while (queue.length > 0) {
      const c = queue.shift()!;
      const next = cur === '' ? c : cur + '/' + c;
      this.checkResolved(next, ++depth, name);
      if (this.dirs.has(next)) {
        cur = next;
        continue;
      }
      const st = this.lstat(next);
      if (!st && create) {
        mkdirSync(this.abs(next), 0o755);
        this.dirs.add(next);
        this.written.add(next);
        cur = next;
        continue;
      }
      if (st?.isDirectory()) {
        this.dirs.add(next);
        cur = next;
        continue;
      }
      if (st?.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) {
          throw invalidArgument('LAYER_SYMLINK_LOOP', `too many levels of symbolic links resolving ${JSON.stringify(name)}`);
        }
        const target = readlinkSync(this.abs(next));
        // Re-root: an absolute target starts again at the root, a relative one at `cur`.
        const base = target.startsWith('/') ? [] : cur === '' ? [] : cur.split('/');
        queue.unshift(...cleanComponents([...base, ...target.split('/')].join('/')));
        cur = '';
        depth = 0;
        continue;
      }
      if (!create) throw invalidArgument('LAYER_BAD_HARDLINK', `invalid layer: hard link target ${JSON.stringify(name)} does not exist in this layer`);
      throw invalidArgument('LAYER_NOT_A_DIRECTORY', `invalid layer: ${JSON.stringify(name)} needs ${JSON.stringify('/' + next)} to be a directory, but it is a file`, {
        hint: 'the layer tar is malformed',
      });
    }
    return cur;
  }

  /**
   * A name may pass the tar limits and still resolve, through symlinks of the layer, to a
   * path thousands of directories deep (CVE-2024-28863's resource exhaustion) or longer than
   * the kernel takes (ENAMETOOLONG on some later syscall). Refuse both up front.
   */
  private checkResolved(rel: string, depth: number, name: string): void {
    const long = rel.length + this.root.length + 1 >= MAX_PATH / 4 && Buffer.byteLength(rel) + Buffer.byteLength(this.root) + 1 >= MAX_PATH;
    if (depth > MAX_DEPTH || long) {
      throw invalidArgument(
        'LAYER_TOO_DEEP',
        `invalid layer: ${JSON.stringify(name.length > 80 ? name.slice(0, 80) + '…' : name)} resolves to a path ${long ? `longer than ${MAX_PATH} bytes` : `deeper than ${MAX_DEPTH} directories`}`,
        { hint: 'the layer nests directories (through its symbolic links) beyond any real image' },
      );
    }
  }

  /** Removes whatever is at `rel` (for an entry that replaces it). */
  private replace(rel: string, keepDir = false): void {
    const st = this.lstat(rel);
    if (!st) return;
    if (st.isDirectory()) {
      if (keepDir) return;
      this.opts.tarsplit?.invalidate(rel);
      rmSync(this.abs(rel), { recursive: true, force: true });
      this.forget(rel);
      return;
    }
    this.opts.tarsplit?.invalidate(rel);
    unlinkSync(this.abs(rel));
  }

  /**
   * A directory at `rel` was removed: drop what was cached or deferred for it and below
   * it. Deferred work (directory modes and mtimes, opaque clean-ups) must never run on a
   * path that a later entry may have turned into a symlink — it would follow it out of
   * the root.
   */
  private forget(rel: string): void {
    const under = (d: string) => d === rel || d.startsWith(rel + '/');
    for (const d of [...this.dirs]) if (under(d)) this.dirs.delete(d);
    for (const d of [...this.pendingDirs.keys()]) if (under(d)) this.pendingDirs.delete(d);
    for (const d of [...this.opaqueDirs]) if (under(d)) this.opaqueDirs.delete(d);
  }

  // ---------------------------------------------------------------- entry kinds

  private makeDir(rel: string, h: TarHeader): void {
    const st = this.lstat(rel);
    if (st && !st.isDirectory()) this.replace(rel);
    if (!st || !st.isDirectory()) mkdirSync(this.abs(rel), 0o700);
    this.dirs.add(rel);
    this.written.add(rel);
    this.stats.dirs++;
    this.applyDirMeta(rel, h);
  }

  private applyDirMeta(rel: string, h: TarHeader): void {
    const abs = this.abs(rel);
    // the root directory existed before us: its owner is whatever the snapshot made
    if (rel === '' ? this.sameOwner : this.needsChown(h)) lchownSync(abs, h.uid, h.gid);
    this.xattrs(rel, h);
    this.pendingDirs.set(rel, { abs, mode: h.mode, mtime: h.mtime });
  }

  private startFile(rel: string, h: TarHeader): void {
    this.replace(rel);
    const abs = this.abs(rel);
    this.fd = openSync(abs, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    this.pos = 0;
    this.hole = false;
    this.behind = h.size >= WRITE_BEHIND_MIN;
    this.written.add(rel);
    this.stats.files++;
    this.stats.bytes += h.size;
    if (h.size > 0) this.opts.tarsplit?.payload(h.size, rel);
    if (h.size === 0) {
      // no onData will come: metadata is applied in onEnd
    }
  }

  private hardlink(rel: string, h: TarHeader): void {
    const tcomps = cleanComponents(h.linkname);
    if (tcomps.length === 0) {
      throw invalidArgument('LAYER_BAD_HARDLINK', `invalid layer: hard link ${JSON.stringify(h.name)} points at the root`);
    }
    // Parent of the target resolved inside the root; the final component is NOT followed
    // (a hard link to a symlink stays a link to the symlink).
    const tparent = this.resolveParent(tcomps.slice(0, -1), h.linkname, false);
    const trel = tparent === '' ? tcomps[tcomps.length - 1]! : tparent + '/' + tcomps[tcomps.length - 1]!;
    if (trel === rel) return; // a link to itself: nothing to do
    const tst = this.lstat(trel);
    if (!tst) {
      throw invalidArgument('LAYER_BAD_HARDLINK', `invalid layer: hard link ${JSON.stringify(h.name)} points at ${JSON.stringify(h.linkname)}, which is not in this layer`, {
        hint: 'the layer tar is malformed (hard links must point at entries earlier in the same layer)',
      });
    }
    if (tst.isDirectory()) {
      throw invalidArgument('LAYER_BAD_HARDLINK', `invalid layer: hard link ${JSON.stringify(h.name)} points at a directory`);
    }
    this.replace(rel);
    linkSync(this.abs(trel), this.abs(rel));
    this.written.add(rel);
    this.stats.hardlinks++;
  }



  private device(rel: string, h: TarHeader): void {
    let type = S_IFIFO;
    if (h.type !== 'fifo') {
      if (h.devmajor > MAX_MAJOR || h.devminor > MAX_MINOR || h.devmajor < 0 || h.devminor < 0) {
        throw invalidArgument('LAYER_BAD_DEVICE', `invalid layer: device ${JSON.stringify(h.name)} has impossible numbers ${h.devmajor}:${h.devminor}`);
      }
      type = h.type === 'char' ? S_IFCHR : S_IFBLK;
    }
    this.replace(rel);
    try {
      mknod(this.abs(rel), type | (h.mode & 0o777), h.devmajor, h.devminor);
    } catch (e) {
      throw new EngineError('failed-precondition', 'LAYER_MKNOD', `cannot create device ${JSON.stringify('/' + rel)}: ${(e as Error).message}`, {
        cause: e,
        hint: 'extracting device nodes needs root (CAP_MKNOD)',
      });
    }
    this.written.add(rel);
    this.stats.devices++;
    this.ownerAndTimes(rel, h, false);
    chmodSync(this.abs(rel), h.mode); // mknod's mode is masked by the umask
    this.xattrs(rel, h);
  }

  private whiteout(parent: string, base: string, h: TarHeader): void {
    this.stats.whiteouts++;
    if (base === WHITEOUT_OPAQUE) {
      if (this.opts.whiteouts === 'overlay') {
        lsetxattr(this.abs(parent), 'trusted.overlay.opaque', Buffer.from('y'));
      } else {
        this.opaqueDirs.add(parent);
        this.written.add(parent); // an opaque directory belongs to this layer
      }
      return;
    }
    if (base.startsWith(WHITEOUT_META_PREFIX)) {
      // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): Docker skips these.
      this.opts.warn?.(`skipping aufs metadata entry ${JSON.stringify(h.name)}`);
      return;
    }
    const target = base.slice(WHITEOUT_PREFIX.length);
    if (target === '' || target === '.' || target === '..' || target.includes('/')) {
      throw invalidArgument('LAYER_BAD_WHITEOUT', `invalid layer: invalid whiteout entry ${JSON.stringify(h.name)}`, {
        hint: 'a whiteout must name a file in its own directory',
      });
    }
    const rel = parent === '' ? target : parent + '/' + target;
    if (this.written.has(rel)) return; // this layer's own entry wins; the whiteout only hides lower layers
    if (this.opts.whiteouts === 'overlay') {
      this.replace(rel);
      makeWhiteout(this.abs(rel));
      this.written.add(rel);
    } else {
      const st = this.lstat(rel);
      if (st) {
        this.opts.tarsplit?.invalidate(rel);
        rmSync(this.abs(rel), { recursive: true, force: true });
        this.forget(rel);
      }
    }
  }

  /** delete mode: remove everything below `dir` that this layer did not write. */
  private clearLower(dir: string): void {
    const st = this.lstat(dir);
    if (!st?.isDirectory()) return; // replaced since the marker: nothing of the lower layer is left to hide
    const walk = (rel: string): boolean => {
      // returns true when `rel` (a directory) still holds something this layer wrote
      let keep = false;
      for (const name of readdirSync(this.abs(rel))) {
        const child = rel === '' ? name : rel + '/' + name;
        const st = lstatSync(this.abs(child));
        if (st.isDirectory()) {
          const sub = walk(child);
          if (sub || this.written.has(child)) keep = true;
          else rmSync(this.abs(child), { recursive: true, force: true });
        } else if (this.written.has(child)) keep = true;
        else unlinkSync(this.abs(child));
      }
      return keep;
    };
    walk(dir);
  }

  /**
   * In a fresh root, what we create is already owned 0:0 (we run as root, and the
   * directories we made carry no setgid bit until finish): chown only for other owners.
   */
  private needsChown(h: TarHeader): boolean {
    if (!this.sameOwner) return false;
    return !(this.opts.fresh && this.rootCreator && h.uid === 0 && h.gid === 0);
  }

  private ownerAndTimes(rel: string, h: TarHeader, isLink: boolean): void {
    const abs = this.abs(rel);
    if (this.needsChown(h)) lchownSync(abs, h.uid, h.gid);
    if (isLink) lutimesSync(abs, h.mtime, h.mtime);
    else utimesSync(abs, h.mtime, h.mtime);
  }

  private fdXattrs(fd: number, h: TarHeader): void {
    this.setXattrs(h, (k, v) => fsetxattr(fd, k, v));
  }

  private xattrs(rel: string, h: TarHeader): void {
    this.setXattrs(h, (k, v) => lsetxattr(this.abs(rel), k, v));
  }

  /** The entry's xattrs, minus overlay ones (they could forge whiteouts); refusals are warnings. */
  private setXattrs(h: TarHeader, set: (k: string, v: Buffer) => void): void {
    if (!h.xattrs) return;
    for (const [k, v] of h.xattrs) {
      if (isForbiddenXattr(k)) {
        this.opts.warn?.(`dropping xattr ${k} of ${JSON.stringify(h.name)}: overlay xattrs from a layer could forge whiteouts`);
        continue;
      }
      try {
        set(k, v);
      } catch (e) {
        const c = errnoCode(e);
        if (c === 'ENOTSUP' || c === 'EPERM' || c === 'EOPNOTSUPP') {
          this.opts.warn?.(`cannot set xattr ${k} on ${JSON.stringify(h.name)}: ${c}`);
          continue;
        }
        throw e;
      }
    }
  }
}
