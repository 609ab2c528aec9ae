/**
 * Reading overlayfs layer directories as the kernel does: the merged view of a stack of
 * lower directories (top-most first) with their whiteouts (0/0 character devices) and
 * opaque directories (`trusted.overlay.opaque=y`), and the rules shared by the change
 * list (changes.ts) and the layer writer (layerwriter.ts): name order, whiteout tests,
 * overlay-private xattrs, and the upper-dir features a layer cannot express.
 *
 * Everything here is synchronous: a lookup costs one or two syscalls and runs inside
 * walks that would otherwise pay a promise per entry.
 */
import { lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, unsupported } from '../errors/index.js';
import { lgetxattr } from '../sys/native.js';

/** Where overlayfs keeps its own metadata: `trusted.overlay.*`, or `user.overlay.*` with `userxattr`. */
export interface OverlayXattrOptions {
  /** The overlay was mounted with `userxattr` (rootless): its metadata is `user.overlay.*`. */
  userxattr?: boolean;
}

export function overlayPrefix(o: OverlayXattrOptions = {}): string {
  return o.userxattr ? 'user.overlay.' : 'trusted.overlay.';
}

/** xattrs that belong to overlayfs (in either namespace), never to the files. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

export function isWhiteout(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

export function lstatBig(path: string): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true, throwIfNoEntry: false });
  } catch (e) {
    // a component on the way is not a directory: nothing there
    if (errnoCode(e) === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** Linux dev_t → major/minor (glibc's encoding). */
export function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
export function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

/** Whole seconds of a nanosecond timestamp, rounded down (Go's Time.Truncate(time.Second)). */
export function floorSeconds(ns: bigint): number {
  let s = ns / 1_000_000_000n;
  if (ns < 0n && s * 1_000_000_000n !== ns) s -= 1n;
  return Number(s);
}

/**
 * Code-point order, which is the byte order of the UTF-8 names (Go's sort.Strings, so
 * filepath.Walk's order). JavaScript's `<` compares UTF-16 units and disagrees for
 * characters above U+FFFF.
 */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx === sy) return x - y;
    return sx ? 1 : -1; // a surrogate (code point > U+FFFF) sorts after any BMP unit
  }
  return a.length - b.length;
}

/** Docker's `sort.Sort(changesByPath)`: plain byte order of the whole path strings. */
export const comparePaths = compareNames;

/**
 * The names in a directory, in code-point order. A name that is not valid UTF-8 cannot
 * pass through the string-based tar header and tar-split code: refuse it with a clear error
 * instead of silently writing a mangled name.
 */
export function readNames(dir: string, where: string): string[] {
  const names = readdirSync(dir);
  for (const n of names) {
    if (n.includes('\uFFFD')) {
      for (const raw of readdirSync(dir, { encoding: 'buffer' })) {
        if (!Buffer.from(raw.toString('utf8'), 'utf8').equals(raw)) {
          throw unsupported('LAYER_NAME_NOT_UTF8', `file name ${JSON.stringify(raw.toString('latin1'))} in ${JSON.stringify(where || '/')} is not valid UTF-8`, {
            where: join(dir, raw.toString('utf8')),
            hint: 'rename the file inside the container (layer names must be UTF-8) and try again',
          });
        }
      }
      break;
    }
  }
  return names.sort(compareNames);
}

/**
 * Overlay features of an upper directory that no layer tar can express: a renamed lower
 * directory (`redirect`, redirect_dir=on: its merged children come from another lower path)
 * and a metadata-only copy-up (`metacopy`: the data still lives in a lower layer). Docker
 * refuses native diff on such mounts. A change list only needs the first check (a metacopy
 * file's stat is already the merged one).
 */
export function checkExpressible(xattrNames: readonly string[], abs: string, rel: string, o: OverlayXattrOptions & { metacopy: boolean }): void {
  if (xattrNames.length === 0) return;
  const p = overlayPrefix(o);
  for (const n of xattrNames) {
    const redirect = n === p + 'redirect';
    if (redirect || (o.metacopy && n === p + 'metacopy')) {
      const what = redirect ? 'a directory renamed with redirect_dir=on' : 'a metadata-only copy-up (metacopy=on)';
      throw unsupported('OVERLAY_NOT_EXPRESSIBLE', `${JSON.stringify('/' + rel)} in the container layer is ${what}, which a layer cannot express`, {
        where: abs,
        hint: 'mount container overlays with redirect_dir=off,metacopy=off (the kernel defaults) and recreate the container',
      });
    }
  }
}

export function isOpaqueDir(abs: string, names: readonly string[] | undefined, o: OverlayXattrOptions): boolean {
  const key = overlayPrefix(o) + 'opaque';
  if (names && !names.includes(key)) return false;
  const v = lgetxattr(abs, key);
  return v !== null && v.length === 1 && v[0] === 0x79; // 'y'
}

export interface LowerEntry {
  /** Index in `lowers` of the layer the entry comes from (the top-most that has it). */
  layer: number;
  abs: string;
  stat: BigIntStats;
}

interface LowerDir {
  entry: LowerEntry | undefined; // undefined for the root
  /** Layers (top-most first) whose copy of this directory contributes children. */
  layers: number[];
}

/**
 * The merged view of read-only overlay layers, looked up path by path (cached per
 * directory). Follows overlayfs: the top-most layer that has a name decides what it is; a
 * whiteout hides the name below; a directory merges with directories of the same name in
 * lower layers down to (and including) the first opaque one or the first layer where the
 * name is not a directory.
 */
export class LowerView {
  private readonly dirs = new Map<string, LowerDir | null>();

  constructor(
    readonly lowers: readonly string[],
    private readonly o: OverlayXattrOptions = {},
  ) {
    const layers: number[] = [];
    for (let i = 0; i < lowers.length; i++) {
      layers.push(i);
      if (isOpaqueDir(lowers[i]!, undefined, o)) break;
    }
    this.dirs.set('', { entry: undefined, layers });
  }

  /** The merged entry at `rel` (root-relative, no leading slash), or undefined. */
  lookup(rel: string): LowerEntry | undefined {
    const slash = rel.lastIndexOf('/');
    const parent = this.dir(slash < 0 ? '' : rel.slice(0, slash));
    if (!parent) return undefined;
    for (const i of parent.layers) {
      const abs = join(this.lowers[i]!, rel);
      const st = lstatBig(abs);
      if (!st) continue;
      if (isWhiteout(st)) return undefined;
      return { layer: i, abs, stat: st };
    }
    return undefined;
  }

  /** The merged directory at `rel`, or null when there is none (absent, or not a directory). */
  private dir(rel: string): LowerDir | null {
    const cached = this.dirs.get(rel);
    if (cached !== undefined) return cached;
    const slash = rel.lastIndexOf('/');
    const parent = this.dir(slash < 0 ? '' : rel.slice(0, slash));
    let result: LowerDir | null = null;
    if (parent) {
      let entry: LowerEntry | undefined;
      const layers: number[] = [];
      for (const i of parent.layers) {
        const abs = join(this.lowers[i]!, rel);
        const st = lstatBig(abs);
        if (!st) continue;
        if (!st.isDirectory()) break; // a whiteout or a non-directory ends the merge (and hides below)
        entry ??= { layer: i, abs, stat: st };
        layers.push(i);
        if (isOpaqueDir(abs, undefined, this.o)) break;
      }
      if (entry) result = { entry, layers };
    }
    this.dirs.set(rel, result);
    return result;
  }

  /** Names in the merged directory `rel` (whiteouts applied), or [] when it is not a directory. */
  children(rel: string): string[] {
    const d = this.dir(rel);
    if (!d) return [];
    const seen = new Map<string, boolean>(); // name -> present (false: whited out above)
    for (const i of d.layers) {
      const abs = rel === '' ? this.lowers[i]! : join(this.lowers[i]!, rel);
      for (const name of readNames(abs, rel)) {
        if (seen.has(name)) continue;
        const st = lstatBig(join(abs, name));
        if (!st) continue;
        seen.set(name, !isWhiteout(st));
      }
    }
    return [...seen].filter(([, present]) => present).map(([n]) => n).sort(compareNames);
  }

  /** `security.capability` of a merged entry (null when absent). */
  capability(e: LowerEntry): Buffer | null {
    return lgetxattr(e.abs, 'security.capability');
  }
}
