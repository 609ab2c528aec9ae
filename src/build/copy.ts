/**
 * COPY and ADD as Docker's classic builder performs them (builder/dockerfile/copy.go,
 * copy_unix.go, internals.go): which files a source names (wildcards with Go's
 * filepath.Match, a directory copies its contents), the cache checksum of what is copied,
 * and the copy itself into a root file system — owners set to root or to --chown (names
 * looked up in the image's /etc/passwd and /etc/group), kept for COPY --from; parents made
 * 0755; an existing directory at the destination receives the files; ADD extracts a local
 * archive (with the layer extractor's confinement) and keeps its owners.
 *
 * The destination is resolved inside the root file system (symlinks followed but clamped to
 * it); every entry is created by name under an ancestor that was just checked to be a real
 * directory, and an existing non-directory in the way is removed first, so nothing is ever
 * written through a link.
 */
import { chmodSync, closeSync, copyFileSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readlinkSync, readSync, rmSync, symlinkSync, utimesSync, type Stats } from 'node:fs';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join, posix } from 'node:path';
import { invalidArgument, notFound, unsupported } from '../errors/index.js';
import { unpackLayer } from '../archive/unpack.js';
import { readFileInRoot, resolveInRoot } from '../runtime/index.js';
import { type BuildContext, cleanRel, hashStrings } from './context.js';

export interface CopyInfo {
  ctx: BuildContext;
  /** the source path as named (relative to the context) */
  rel: string;
  /** resolved (symlinks followed inside the context) */
  resolved: string;
  hash: string;
  /** data downloaded by ADD is never extracted */
  noDecompress?: boolean;
}

export interface Identity {
  uid: number;
  gid: number;
}

/** Go's filepath.Match as a regular expression over a whole relative path. */
export function matchPattern(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let cls = pattern.slice(i + 1, end);
      i = end;
      const neg = cls.startsWith('^');
      if (neg) cls = cls.slice(1);
      re += '[' + (neg ? '^/' : '') + cls.replace(/\\(.)/g, '\\$1').replace(/([\]^])/g, '\\$1') + ']';
    } else re += escapeRe(c);
  }
  return new RegExp(re + '$', 's');
}

const escapeRe = (c: string) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

export function containsWildcards(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const ch = name[i];
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}

function notInContext(orig: string, fromImage: boolean): never {
  if (fromImage) throw notFound('BUILD_COPY_SOURCE', `${orig}: no such file or directory`, { hint: 'the path is not in the image or stage COPY --from names' });
  throw notFound('BUILD_COPY_SOURCE', `file not found in build context or excluded by .dockerignore: stat ${orig}: file does not exist`, {
    hint: 'the path is relative to the build context; check the spelling, the .dockerignore, and that no symbolic link on the way points outside the context',
  });
}

function infoFor(ctx: BuildContext, rel: string, orig: string, fromImage: boolean): CopyInfo {
  const resolved = ctx.resolve(rel);
  if (resolved === undefined) notInContext(orig, fromImage);
  const st = ctx.lstat(resolved);
  if (!st) notInContext(orig, fromImage);
  if (!st.isDirectory()) return { ctx, rel, resolved, hash: 'file:' + ctx.entryHash(resolved, st) };
  const subs: string[] = [];
  ctx.walk(resolved, (r, s) => subs.push(ctx.entryHash(r, s)));
  subs.sort();
  return { ctx, rel, resolved, hash: hashStrings('dir', subs) };
}

/** The copy infos of the sources of one COPY/ADD (calcCopyInfo), with their checksums. */
export function sourceInfos(ctx: BuildContext, sources: string[], opts: { fromImage: boolean }): CopyInfo[] {
  const infos: CopyInfo[] = [];
  for (const orig of sources) {
    const rel = cleanRel(orig.replace(/^\.\//, ''));
    if (rel === undefined) {
      throw invalidArgument('BUILD_COPY_OUTSIDE', `forbidden path outside the build context: ${orig} ()`, { hint: 'COPY and ADD read only inside the build context; move the file into it' });
    }
    if (containsWildcards(rel)) {
      const re = matchPattern(rel);
      ctx.walk('', (r) => {
        if (re.test(r)) infos.push(infoFor(ctx, r, r, opts.fromImage));
      });
      continue;
    }
    infos.push(infoFor(ctx, rel, orig, opts.fromImage));
  }
  if (infos.length === 0) throw invalidArgument('BUILD_COPY_SOURCE', 'no source files were specified', { hint: 'no file of the context matches the pattern' });
  return infos;
}

export function sourcesHash(infos: CopyInfo[]): string {
  if (infos.length === 1) return infos[0]!.hash;
  return hashStrings('multi', infos.map((i) => i.hash));
}

/** normalizeDest: a relative destination is under the working directory; a trailing / is kept. */
export function normalizeDest(workdir: string, dest: string): string {
  if (dest.startsWith('/')) return dest;
  let d = posix.join('/', workdir, dest);
  if (dest.endsWith('/') && !d.endsWith('/')) d += '/';
  return d;
}

function parseIds(text: string | undefined, name: string, idField: number): number | undefined {
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length > idField) return Number(f[idField]);
  }
  return undefined;
}

/** --chown=user[:group], names looked up in the root file system's /etc/passwd and /etc/group. */
export async function parseChown(rootfs: string, chown: string): Promise<Identity> {
  const parts = chown.split(':');
  if (parts.length > 2) throw invalidArgument('BUILD_CHOWN', `invalid chown string format: ${chown}`);
  const [u, g] = parts.length === 1 ? [parts[0]!, parts[0]!] : [parts[0]!, parts[1]!];
  const lookup = async (s: string, file: string, what: string): Promise<number> => {
    if (/^\d+$/.test(s)) return Number(s);
    const id = parseIds(await readFileInRoot(rootfs, file), s, 2);
    if (id === undefined || !Number.isInteger(id)) {
      throw invalidArgument('BUILD_CHOWN', `unable to convert uid/gid chown string to host mapping: can't find ${what} for ${what === 'uid' ? 'user' : 'group'} ${s}: no such ${what === 'uid' ? 'user' : 'group'}: ${s}`);
    }
    return id;
  };
  return { uid: await lookup(u, '/etc/passwd', 'uid'), gid: await lookup(g, '/etc/group', 'gid') };
}

function lstatOr(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** Makes the missing directories of `host` (a path already resolved in the root): 0755, owned by `id`. */
function mkdirAll(host: string, id: Identity): void {
  const missing: string[] = [];
  let p = host;
  while (!lstatOr(p)) {
    missing.unshift(p);
    const parent = posix.dirname(p);
    if (parent === p) break;
    p = parent;
  }
  const top = lstatOr(p);
  if (top && !top.isDirectory()) throw invalidArgument('BUILD_COPY_DEST', `cannot create directory ${host}: a parent is not a directory`);
  for (const d of missing) {
    mkdirSync(d, { mode: 0o755 });
    chmodSync(d, 0o755);
    lchownSync(d, id.uid, id.gid);
  }
}

/** Removes what is in the way of a new entry (a non-directory, or anything when a non-directory comes). */
function clearFor(host: string, isDir: boolean): Stats | undefined {
  const st = lstatOr(host);
  if (!st) return undefined;
  if (st.isDirectory() && isDir) return st;
  rmSync(host, { recursive: true, force: true });
  return undefined;
}

export interface CopyOptions {
  /** undefined: keep the source owners (COPY --from without --chown) */
  identity: Identity | undefined;
  /** --chmod */
  chmod?: number;
  /** ADD: extract a local archive */
  decompress: boolean;
  signal?: AbortSignal;
}

const MAGIC: [number[], number][] = [
  [[0x1f, 0x8b], 0],
  [[0x42, 0x5a, 0x68], 0],
  [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 0],
  [[0x28, 0xb5, 0x2f, 0xfd], 0],
];

/** isArchivePath: a (compressed) tar whose first header reads. */
function isArchive(abs: string): boolean {
  const fd = openSync(abs, 'r');
  try {
    const b = Buffer.alloc(512);
    const n = readSync(fd, b, 0, 512, 0);
    if (n >= 4 && MAGIC.some(([m]) => m.every((x, i) => b[i] === x))) return true;
    if (n < 512) return false;
    // a tar header: its checksum field matches
    const sum = Number.parseInt(b.subarray(148, 156).toString('latin1').replace(/\0.*$/, '').trim(), 8);
    if (!Number.isFinite(sum)) return false;
    let s = 0;
    for (let i = 0; i < 512; i++) s += i >= 148 && i < 156 ? 32 : b[i]!;
    return s === sum;
  } finally {
    closeSync(fd);
  }
}

/**
 * Copies one entry to `dst`. `fresh`: dst's parent is a directory this copy made, so nothing
 * is in the way (no lstat of a path that cannot exist). Returns whether a directory was made.
 */
function copyEntry(src: string, st: Stats, dst: string, id: Identity | undefined, chmod: number | undefined, links: Map<string, string>, fresh = false): boolean {
  const mode = chmod ?? st.mode & 0o7777;
  const uid = id ? id.uid : st.uid;
  const gid = id ? id.gid : st.gid;
  if (st.isDirectory()) {
    const made = fresh || !clearFor(dst, true);
    if (made) mkdirSync(dst, { mode: 0o700 });
    chmodSync(dst, mode);
    lchownSync(dst, uid, gid);
    return made;
  }
  if (!fresh) clearFor(dst, false);
  if (st.nlink > 1 && !st.isDirectory()) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first) {
      linkSync(first, dst);
      return false;
    }
    links.set(key, dst);
  }
  if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(src), dst);
    lchownSync(dst, uid, gid);
    lutimesSync(dst, st.atime, st.mtime);
    return false;
  }
  if (!st.isFile()) throw unsupported('BUILD_COPY_TYPE', `cannot copy ${src}: only files, directories and symbolic links can be copied`);
  copyFileSync(src, dst);
  lchownSync(dst, uid, gid);
  chmodSync(dst, mode);
  utimesSync(dst, st.atime, st.mtime);
  return false;
}

/**
 * A regular file with one link, copied on libuv's threads: creating files on the overlay
 * mount is most of a large COPY's time, and several can be under way at once. The copy
 * (copyfile) already gives the file the source's permission bits; a chmod follows only for
 * --chmod or the set-id and sticky bits (which the chown clears).
 */
async function copyFileAsync(src: string, st: Stats, dst: string, id: Identity | undefined, chmod: number | undefined, fresh: boolean): Promise<void> {
  const mode = chmod ?? st.mode & 0o7777;
  if (!fresh) clearFor(dst, false);
  await fsp.copyFile(src, dst);
  await fsp.lchown(dst, id ? id.uid : st.uid, id ? id.gid : st.gid);
  if (chmod !== undefined || (mode & 0o7000) !== 0) await fsp.chmod(dst, mode);
  await fsp.utimes(dst, st.atime, st.mtime);
}

/** Runs queued tasks, `width` at a time; drain() waits for every started one before it reports the first failure. */
class TaskPool {
  private readonly queue: (() => Promise<void>)[] = [];
  private readonly running = new Set<Promise<void>>();
  private failure: { e: unknown } | undefined;
  constructor(
    private readonly width: number,
    private readonly signal?: AbortSignal,
  ) {}

  add(task: () => Promise<void>): void {
    this.queue.push(task);
    this.pump();
  }

  private pump(): void {
    while (!this.failure && this.running.size < this.width && this.queue.length) {
      if (this.signal?.aborted) {
        this.failure = { e: this.signal.reason ?? new Error('aborted') };
        break;
      }
      const task = this.queue.shift()!;
      const p: Promise<void> = task()
        .catch((e: unknown) => {
          this.failure ??= { e };
        })
        .finally(() => {
          this.running.delete(p);
          this.pump();
        });
      this.running.add(p);
    }
  }

  async drain(): Promise<void> {
    while (this.running.size) await Promise.all([...this.running]);
    if (this.failure) throw this.failure.e;
  }
}

/** performCopyForInfo: one source into `dest` (a container path) of the root file system `rootfs`. */
export async function performCopy(rootfs: string, info: CopyInfo, dest: string, o: CopyOptions): Promise<void> {
  const src = info.ctx.abs(info.resolved);
  const st = lstatSync(src);
  const destHost = await resolveInRoot(rootfs, dest);
  const root = o.identity ?? { uid: 0, gid: 0 };
  if (st.isDirectory()) {
    // copyDirectory: the contents of the directory; the destination made (root, 0755) if missing
    const existed = lstatOr(destHost)?.isDirectory() ?? false;
    if (!existed) {
      clearFor(destHost, true);
      mkdirAll(destHost, { uid: 0, gid: 0 });
      if (o.identity) lchownSync(destHost, o.identity.uid, o.identity.gid);
    }
    const links = new Map<string, string>();
    const dirTimes: [string, Stats][] = [];
    // directories this copy made: what is in them is only what it puts there
    const fresh = new Set<string>(existed ? [] : [destHost]);
    // the walk makes the directories (in order, parents first) and the other entries; the
    // regular files go to the pool, whose tasks run once their directories are there
    const pool = new TaskPool(8, o.signal);
    try {
      info.ctx.walk(info.resolved, (r, s) => {
        if (r === info.resolved) return;
        const target = join(destHost, r.slice(info.resolved === '' ? 0 : info.resolved.length + 1));
        const inFresh = fresh.has(posix.dirname(target));
        const from = info.ctx.abs(r);
        if (s.isFile() && s.nlink === 1) {
          pool.add(() => copyFileAsync(from, s, target, o.identity, o.chmod, inFresh));
          return;
        }
        if (copyEntry(from, s, target, o.identity, o.chmod, links, inFresh)) fresh.add(target);
        if (s.isDirectory()) dirTimes.push([target, s]);
      });
    } finally {
      await pool.drain();
    }
    for (const [d, s] of dirTimes.reverse()) utimesSync(d, s.atime, s.mtime);
    return;
  }
  if (o.decompress && !info.noDecompress && isArchive(src)) {
    const existed = lstatOr(destHost)?.isDirectory() ?? false;
    if (!existed) {
      clearFor(destHost, true);
      mkdirAll(destHost, { uid: 0, gid: 0 });
    }
    await unpackLayer({ source: createReadStream(src), compression: 'auto', target: destHost, whiteouts: 'none', fresh: false, sameOwner: true, where: info.rel, ...(o.signal ? { signal: o.signal } : {}) });
    return;
  }
  let target = destHost;
  const d = lstatOr(destHost);
  if (dest.endsWith('/') || d?.isDirectory()) target = join(destHost, posix.basename(info.rel));
  mkdirAll(posix.dirname(target), root);
  // the source itself may be a link (followed inside the context): its target is copied
  copyEntry(src, st, target, o.identity, o.chmod, new Map());
}
