/**
 * `docker diff` for an overlay container layer: the changes of the merged container view
 * relative to the merged image view, computed from the upper directory and the lower
 * layers without mounting anything.
 *
 * Docker 20.10's overlay2 `Changes()` is *naive* diff (daemon/graphdriver/overlay2:
 * `return d.naiveDiff.Changes(id, parent)`): it mounts both views and compares them with
 * pkg/archive `ChangesDirs` — a tree walk comparing lstat results. Only the upper directory
 * can make the two views differ, so walking the upper directory and looking every name up
 * in the merged lowers gives the same answer. Docker's rules, reproduced here:
 *
 *  - a name in the container view but not in the image view is `A`, and so is everything
 *    below it;
 *  - a name in both is `C` when `statDifferent`: mode (type included), uid, gid or rdev
 *    differ, or — for anything whose mode lacks the S_IFDIR bit — size or mtime differ
 *    (mtimes equal to the second count as equal when either side has 0 ns); or when
 *    `security.capability` differs. Nothing else counts: not nlink, ctime, inode, other
 *    xattrs, overlay's own `trusted.overlay.*` metadata. So a base file copied up only
 *    because a hard link to it was made (`/etc/group` in the fixture) is not reported;
 *  - a name in the image view but not in the container view is `D`, once per name directly
 *    under a directory that exists in both views as a directory (an opaque directory — and
 *    any directory below one, which overlayfs does not merge either — lists each old child
 *    it lacks, not their contents; a deleted directory is one `D`; a directory that replaced
 *    a file, or a file that replaced a directory, is a `C` with no `D` below it);
 *  - a directory that is neither `A` nor `C` but has changes below it is `C`, listed
 *    before them.
 *
 * Order: Docker lists a directory's change before the changes below it, the children
 * present in the container view first (each followed by its own subtree), then the deleted
 * ones — siblings in Go map order, i.e. random. `order: 'docker'` (the default) gives that
 * structure with siblings in name order; `order: 'path'` sorts by path like Docker's
 * `ExportChanges`.
 */
import { join } from 'node:path';
import type { BigIntStats } from 'node:fs';
import { invalidArgument, throwIfAborted } from '../errors/index.js';
import { lgetxattr, llistxattr } from '../sys/native.js';
import { checkExpressible, compareNames, comparePaths, isOpaqueDir, isWhiteout, lstatBig, LowerView, readNames, type OverlayXattrOptions } from './overlayfs.js';

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  kind: ChangeKind;
  /** Absolute path in the container ("/etc/motd"). */
  path: string;
}

export interface ChangesOptions extends OverlayXattrOptions {
  /** 'docker' (default): Docker's structure, siblings by name. 'path': sorted by path. */
  order?: 'docker' | 'path';
  signal?: AbortSignal;
}

const S_IFDIR = 0o040000n;
const NS = 1_000_000_000n;

function splitNs(ns: bigint): [bigint, bigint] {
  let s = ns / NS;
  if (ns < 0n && s * NS !== ns) s -= 1n;
  return [s, ns - s * NS];
}

/** pkg/archive sameFsTimeSpec. */
function sameFsTime(a: bigint, b: bigint): boolean {
  const [as, an] = splitNs(a);
  const [bs, bn] = splitNs(b);
  return as === bs && (an === bn || an === 0n || bn === 0n);
}

/** pkg/archive statDifferent (Linux). */
export function statDifferent(o: BigIntStats, n: BigIntStats): boolean {
  if (o.mode !== n.mode || o.uid !== n.uid || o.gid !== n.gid || o.rdev !== n.rdev) return true;
  // Docker tests the S_IFDIR *bit*: block devices and sockets carry it too, and so skip this
  if ((o.mode & S_IFDIR) !== S_IFDIR && (!sameFsTime(o.mtimeNs, n.mtimeNs) || o.size !== n.size)) return true;
  return false;
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || a.length === 0) return b === null || b.length === 0;
  return b !== null && a.equals(b);
}

const YIELD_EVERY = 4096;

/**
 * The changes of an overlay container layer. `upper` is the container's upper directory,
 * `lowers` the image's layer directories, top-most first (as in `lowerdir=`).
 */
export async function overlayChanges(upper: string, lowers: string[], opts: ChangesOptions = {}): Promise<Change[]> {
  throwIfAborted(opts.signal);
  const lower = new LowerView(lowers, opts);
  const out: Change[] = [];
  let ticks = 0;
  const tick = async () => {
    if (++ticks % YIELD_EVERY === 0) {
      await new Promise((r) => setImmediate(r));
      throwIfAborted(opts.signal);
    }
  };
  const xattrCheck = { ...opts, metacopy: false };

  /** Everything below the new directory `rel` is new: `A` for each name, depth first. */
  const addAll = async (rel: string): Promise<void> => {
    const abs = join(upper, rel);
    for (const name of readNames(abs, rel)) {
      await tick();
      const crel = rel + '/' + name;
      const cabs = join(abs, name);
      const st = lstatBig(cabs);
      if (!st || isWhiteout(st)) continue;
      checkExpressible(llistxattr(cabs), cabs, crel, xattrCheck);
      out.push({ kind: 'A', path: '/' + crel });
      if (st.isDirectory()) await addAll(crel);
    }
  };

  /**
   * Children of the upper directory `rel`, which exists in the container view. `oldIsDir`:
   * the image view has a directory at `rel` (so its children can be changed or deleted).
   * `upperOnly`: the container view of `rel` holds only what the upper dir holds — `rel` or
   * a directory above it is opaque, so overlayfs merges nothing from the lowers below it.
   */
  const visit = async (rel: string, oldIsDir: boolean, upperOnly: boolean): Promise<void> => {
    const abs = rel === '' ? upper : join(upper, rel);
    const present = new Set<string>();
    const deleted = new Set<string>();
    for (const name of readNames(abs, rel)) {
      await tick();
      const crel = rel === '' ? name : rel + '/' + name;
      const cabs = join(abs, name);
      const st = lstatBig(cabs);
      if (!st) continue; // removed while we walk
      if (isWhiteout(st)) {
        if (oldIsDir && lower.lookup(crel)) deleted.add(name);
        continue;
      }
      present.add(name);
      const xnames = llistxattr(cabs);
      checkExpressible(xnames, cabs, crel, xattrCheck);
      const old = oldIsDir ? lower.lookup(crel) : undefined;
      if (!old) {
        out.push({ kind: 'A', path: '/' + crel });
        if (st.isDirectory()) await addAll(crel);
        continue;
      }
      let changed = statDifferent(old.stat, st);
      if (!changed) {
        const cap = xnames.includes('security.capability') ? lgetxattr(cabs, 'security.capability') : null;
        changed = !sameBytes(cap, lower.capability(old));
      }
      if (changed) out.push({ kind: 'C', path: '/' + crel });
      if (st.isDirectory()) {
        const mark = out.length;
        await visit(crel, old.stat.isDirectory(), upperOnly || isOpaqueDir(cabs, xnames, opts));
        // a directory with changes below it is listed (before them) even if unchanged itself
        if (!changed && out.length > mark) out.splice(mark, 0, { kind: 'C', path: '/' + crel });
      }
    }
    if (upperOnly && oldIsDir) {
      // an opaque directory (or one below it) hides every old child it does not hold itself
      for (const name of lower.children(rel)) if (!present.has(name)) deleted.add(name);
    }
    for (const name of [...deleted].sort(compareNames)) out.push({ kind: 'D', path: '/' + (rel === '' ? name : rel + '/' + name) });
  };

  await visit('', true, isOpaqueDir(upper, undefined, opts));
  if (opts.order === 'path') out.sort((a, b) => comparePaths(a.path, b.path));
  return out;
}

/** `docker diff` output: one `<kind> <path>` line per change. */
export function formatChanges(changes: readonly Change[]): string {
  return changes.map((c) => `${c.kind} ${c.path}\n`).join('');
}

/** Parses `docker diff` output (the inverse of formatChanges). */
export function parseChanges(text: string): Change[] {
  const out: Change[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const kind = line[0];
    if ((kind !== 'A' && kind !== 'C' && kind !== 'D') || line[1] !== ' ') throw invalidArgument('BAD_CHANGE_LINE', `not a docker diff line: ${JSON.stringify(line)}`, { hint: 'each line is `A`, `C` or `D`, a space, and an absolute path' });
    out.push({ kind, path: line.slice(2) });
  }
  return out;
}
