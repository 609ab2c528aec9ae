/**
 * Layer directories made of other layers' inodes, without copying file data.
 *
 * After a commit a container continues on the committed layer (Snapshotter.setLower): its
 * changes since the image are then two overlay directories, its upper dir over that layer.
 * Docker's `diff` and a second `commit` need them as one (a second commit's layer holds
 * every change since the image), so `mergeLayers` builds that one directory: the layer's
 * tree as hard links, then the upper dir applied over it with overlayfs' rules — a whiteout
 * deletes (and stays only if something below it is hidden), an opaque directory replaces,
 * any other directory merges and takes the upper's attributes, anything else replaces.
 * Every file is a hard link: layers are read-only, so sharing their inodes is safe, and the
 * upper dir's inodes are shared only when nothing writes to it any more (a stopped
 * container that then moves on to the new layer with an empty upper dir).
 */
import { chmodSync, existsSync, lchownSync, linkSync, lutimesSync, mkdirSync, readdirSync, rmSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { internal, throwIfAborted } from '../errors/index.js';
import type { Stack } from './snapshotter.js';
import { isOpaqueDir, isOverlayXattr, isWhiteout, lstatBig, LowerView } from '../archive/overlayfs.js';
import { lgetxattr, llistxattr, lremovexattr, lsetxattr } from '../sys/native.js';

const OPAQUE = 'trusted.overlay.opaque';
const YIELD_EVERY = 2048;

const seconds = (ns: bigint) => Number(ns) / 1e9;

function setTimes(path: string, st: BigIntStats): void {
  lutimesSync(path, seconds(st.atimeNs), seconds(st.mtimeNs));
}

/**
 * Gives the directory `dst` the attributes of `src`: owner, mode, xattrs. Overlay's own
 * xattrs of `dst` are kept (the opacity it has from its layer) and none of `src`'s are
 * taken (a copied-up directory carries origin/impure markers, never an opacity that
 * matters here: opaque upper dirs replace instead of merging). Times are set by the caller,
 * after the children.
 */
function copyDirAttrs(src: string, dst: string, st: BigIntStats): void {
  lchownSync(dst, Number(st.uid), Number(st.gid));
  chmodSync(dst, Number(st.mode & 0o7777n));
  const want = new Map<string, Buffer>();
  for (const n of llistxattr(src)) {
    if (isOverlayXattr(n)) continue;
    const v = lgetxattr(src, n);
    if (v !== null) want.set(n, v);
  }
  for (const n of llistxattr(dst)) if (!isOverlayXattr(n) && !want.has(n)) lremovexattr(dst, n);
  for (const [n, v] of want) lsetxattr(dst, n, v);
}

function copyAllXattrs(src: string, dst: string): void {
  for (const n of llistxattr(src)) {
    const v = lgetxattr(src, n);
    if (v !== null) lsetxattr(dst, n, v);
  }
}

/**
 * Makes `dst` a copy of the tree `src` whose non-directories are hard links to `src`'s.
 * `dst` is absent, or with `into` an empty directory that takes `src`'s attributes.
 */
export async function linkTree(src: string, dst: string, opts: { signal?: AbortSignal; into?: boolean } = {}): Promise<void> {
  let ticks = 0;
  const walk = async (s: string, d: string, st: BigIntStats, top = false): Promise<void> => {
    if (!(top && opts.into)) mkdirSync(d);
    lchownSync(d, Number(st.uid), Number(st.gid));
    chmodSync(d, Number(st.mode & 0o7777n));
    copyAllXattrs(s, d);
    for (const name of readdirSync(s)) {
      if (++ticks % YIELD_EVERY === 0) {
        await new Promise((r) => setImmediate(r));
        throwIfAborted(opts.signal);
      }
      const cs = join(s, name);
      const cst = lstatBig(cs);
      if (!cst) continue;
      if (cst.isDirectory()) await walk(cs, join(d, name), cst);
      else linkSync(cs, join(d, name));
    }
    setTimes(d, st);
  };
  throwIfAborted(opts.signal);
  const st = lstatBig(src);
  if (!st?.isDirectory()) throw internal('NOT_A_DIRECTORY', `${src} is not a directory`, { where: src });
  await walk(src, dst, st, true);
}

/**
 * Writes into `dest` (absent) the single layer that equals `upper` stacked over `base`,
 * both overlay layer directories; `lowers` are the layers below `base` (top-most first),
 * against which whiteouts and opacity are decided.
 */
export async function mergeLayers(base: string, upper: string, dest: string, lowers: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<void> {
  await linkTree(base, dest, { ...opts, into: existsSync(dest) });
  const below = new LowerView(lowers);
  let ticks = 0;
  const apply = async (rel: string): Promise<void> => {
    const u = rel ? join(upper, rel) : upper;
    const d = rel ? join(dest, rel) : dest;
    for (const name of readdirSync(u)) {
      if (++ticks % YIELD_EVERY === 0) {
        await new Promise((r) => setImmediate(r));
        throwIfAborted(opts.signal);
      }
      const crel = rel ? `${rel}/${name}` : name;
      const cu = join(u, name);
      const cd = join(d, name);
      const ust = lstatBig(cu);
      if (!ust) continue;
      const dst = lstatBig(cd);
      if (isWhiteout(ust)) {
        if (dst) rmSync(cd, { recursive: true, force: true });
        // a whiteout stays only where it hides something of the image
        if (below.lookup(crel)) linkSync(cu, cd);
        continue;
      }
      if (ust.isDirectory()) {
        const opaque = isOpaqueDir(cu, undefined, {});
        if (opaque || !dst || !dst.isDirectory()) {
          if (dst) rmSync(cd, { recursive: true, force: true });
          await linkTree(cu, cd, opts);
          // opacity as one upper dir over the image would have it: overlayfs makes a
          // directory created over a whiteout opaque, that is where the image has something
          // at that name; where only `base` had something, a single upper dir has no marker
          const hides = below.lookup(crel) !== undefined;
          if (hides && !opaque && dst) lsetxattr(cd, OPAQUE, Buffer.from('y'));
          if (!hides && opaque) lremovexattr(cd, OPAQUE);
          continue;
        }
        await apply(crel);
        copyDirAttrs(cu, cd, ust);
        setTimes(cd, ust);
        continue;
      }
      if (dst) rmSync(cd, { recursive: true, force: true });
      linkSync(cu, cd);
    }
  };
  await apply('');
  const rst = lstatBig(upper)!;
  copyDirAttrs(upper, dest, rst);
  setTimes(dest, rst);
}

/**
 * Runs `fn` with one directory that holds a container's changes since its image, and the
 * image's layers (`fn(dir, lowers)`): the upper dir itself, or the layer it continues on
 * when the upper dir is empty, or else a merge of both in a temporary directory (hard
 * links, removed afterwards).
 */
export async function withChanges<T>(stack: Stack, tmpDir: string, fn: (dir: string, lowers: string[]) => Promise<T>): Promise<T> {
  if (!stack.lower) return fn(stack.upper, stack.lowers);
  if (readdirSync(stack.upper).length === 0) return fn(stack.lower, stack.lowers);
  const dir = join(tmpDir, `diff-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mergeLayers(stack.lower, stack.upper, dir, stack.lowers);
    return await fn(dir, stack.lowers);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
