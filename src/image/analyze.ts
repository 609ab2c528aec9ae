/**
 * Image analysis: an image's layers (trees of their entries, layertree.ts) merged bottom-up
 * the way overlayfs merges them, keeping every version of every path — so the analysis can
 * say which layer provides each entry of the merged root file system, which lower entries
 * it shadows and which layer hides each shadowed one, and count the bytes exactly:
 *
 *   sizeBytes   file bytes stored over all layers (regular files, each inode once per layer)
 *   unionBytes  file bytes visible in the merged root fs (an inode is visible while one of
 *               its names is; hard-linked names count once)
 *   wastedBytes file bytes stored in a layer that a later layer overwrites or removes
 *               (a whiteout, an opaque directory, a directory replaced by a file): always
 *               sizeBytes − unionBytes. The copy that stays visible is never counted as
 *               wasted (dive counts it, its issue #684).
 *
 * Everything comes from tar headers (tar-split records of stored layers, or archives):
 * nothing is extracted, no file content is read except for a preview or a content compare.
 */
import { closeSync, constants as C, fstatSync, openSync, readSync } from 'node:fs';
import { errnoCode, invalidArgument, notFound, unsupported } from '../errors/index.js';
import { compareNames } from '../archive/overlayfs.js';
import { effective, LayerTreeBuilder, type Hidden, type LayerNode, type LayerTree } from './layertree.js';

// ------------------------------------------------------------------ public shapes

/** One layer in `image analyze --json`. */
export interface AnalysisLayer {
  index: number;
  diffID: string;
  /** the compressed blob's digest when one is known (pulled, pushed, OCI archives), else null */
  digest: string | null;
  createdBy: string;
  /** file bytes the layer stores (regular files, hard links once) */
  sizeBytes: number;
  /** entries of the layer's tar new at their path (files, directories, links, devices; whiteouts excluded) */
  added: number;
  /** entries that replace a visible entry of a lower layer */
  modified: number;
  /** whiteouts (each removes one path, with what lies below it) */
  removed: number;
  /** directories made opaque (hiding everything lower layers had inside them) */
  opaque: number;
}

export interface WastedFile {
  /** absolute path in the merged tree */
  path: string;
  bytes: number;
  /** the layers holding the hidden copies */
  layers: number[];
}

/** `image analyze --json`, and the engine's analysis call. */
export interface ImageAnalysis {
  image: string;
  id: string;
  sizeBytes: number;
  unionBytes: number;
  wastedBytes: number;
  /** unionBytes / sizeBytes (1 when sizeBytes is 0) */
  efficiency: number;
  layers: AnalysisLayer[];
  /** largest first */
  wasted: WastedFile[];
}

/** What is known of a layer besides its entries. */
export interface LayerInfo {
  diffId: string;
  chainId?: string;
  digest?: string | null;
  createdBy: string;
  created?: string;
  comment?: string;
  /** uncompressed tar size */
  tarBytes?: number;
  /** compressed blob size, when a compressed blob is known */
  compressedBytes?: number | null;
  /** the layer's size in the store (`system df`: file bytes and symlink lengths) */
  storedBytes?: number;
  /** where the layer's files are (a stored layer's snapshot directory) */
  fsDir?: string;
}

export interface LayerDetail extends AnalysisLayer {
  chainID: string | null;
  created: string | null;
  comment: string;
  /** entries of the layer's tar (whiteouts and opaque markers included, the root excluded) */
  entries: number;
  /** uncompressed tar bytes */
  tarBytes: number | null;
  /** compressed blob bytes, when a compressed blob is known */
  compressedBytes: number | null;
  /** the layer's size as `system df` counts it (stored images) */
  storedBytes: number | null;
}

export interface HistoryStep {
  createdBy: string;
  created: string | null;
  comment: string;
  /** the layer this step made, or null for a step that made none (ENV, CMD, …) */
  layer: number | null;
}

export interface ImageDetail extends ImageAnalysis {
  /** how many files are wasted (`wasted` holds the largest DETAIL_WASTED of them) */
  wastedFiles: number;
  tags: string[];
  layerDetails: LayerDetail[];
  history: HistoryStep[];
  /** file bytes of every layer but the first (dive's "user" bytes) */
  userSizeBytes: number;
  /** entries in the merged tree */
  unionEntries: number;
  /** file contents can be previewed (the image is in the store) */
  readable: boolean;
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'whiteout';
export type ModifiedReason = 'type' | 'content' | 'mode' | 'owner' | 'mtime' | 'xattrs';

export interface TreeEntry {
  name: string;
  /** absolute path ('/' for the root) */
  path: string;
  type: EntryType;
  /** regular files: their size; directories: the file bytes below them (each inode once) */
  size: number;
  /** permission bits, octal ("4755") */
  mode: string;
  uid: number;
  gid: number;
  mtime: number;
  /** symlink target as stored; hard link: the absolute path it links to */
  target?: string;
  /** the layer the entry comes from */
  layer: number;
  /** in that layer: added, modified (replaces a visible lower entry) or removed (a whiteout) */
  status?: 'added' | 'modified' | 'removed';
  /** why a modified entry counts as modified (against the entry it replaces) */
  reasons?: ModifiedReason[];
  /** the layer of the entry it replaces (modified) or removes (whiteout) */
  replaces?: number;
  opaque?: true;
  implicit?: true;
  /** merged tree: the lower entries at this path it hides, with how each is hidden */
  shadows?: { layer: number; type: EntryType; size: number; hidden: Hidden & { by: string } }[];
  /** not visible in the merged tree: the layer and entry that hide it */
  hidden?: Hidden;
  /** directories: entries inside (visible ones, in the merged tree) */
  children?: number;
}

export interface TreeQuery {
  /** absolute or root-relative path of a directory ('/' by default) */
  path?: string;
  /** a layer's own tree; the merged tree when absent */
  layer?: number;
  offset?: number;
  limit?: number;
  sort?: 'name' | 'size';
  /** merged tree: also list entries that are no longer visible (removed, replaced) */
  removed?: boolean;
}

export interface TreeListing {
  path: string;
  layer: number | null;
  entry: TreeEntry;
  total: number;
  offset: number;
  entries: TreeEntry[];
}

export interface SearchResult {
  total: number;
  entries: TreeEntry[];
}

export interface FileContent {
  entry: TreeEntry;
  /** the file's size */
  size: number;
  offset: number;
  data: Buffer;
  /** bytes past offset+data.length remain */
  truncated: boolean;
}

export const MAX_PREVIEW = 64 * 1024;
/** The wasted files an explorer's detail lists (the analysis itself lists them all). */
export const DETAIL_WASTED = 2000;
const MAX_LIMIT = 5000;
const MAX_COMPARE = 64 << 20;

// ------------------------------------------------------------------ the merged tree

interface UNode {
  name: string;
  path: string;
  children: Map<string, UNode> | undefined;
  /** every layer's entry at this path, bottom-up; only the last can be visible */
  versions: LayerNode[];
  /** file bytes visible below (directories; each inode once) */
  bytes: number;
  /** visible children */
  visible: number;
}

function unode(name: string, path: string): UNode {
  return { name, path, children: undefined, versions: [], bytes: 0, visible: 0 };
}

/** The visible version of a merged node, if any. */
function top(u: UNode): LayerNode | undefined {
  const v = u.versions[u.versions.length - 1];
  return v && !v.hidden && v.kind !== 'whiteout' ? v : undefined;
}

const abs = (rel: string) => '/' + rel;

/** Splits an API path into components; `..` is refused, never resolved. */
export function pathComponents(p: string): string[] {
  if (typeof p !== 'string' || p.includes('\0')) throw invalidArgument('BAD_PATH', 'invalid path', { hint: 'give an absolute path inside the image, like /etc/passwd' });
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw invalidArgument('BAD_PATH', `invalid path ${JSON.stringify(p)}: ".." is not allowed`, { hint: 'give an absolute path inside the image, like /etc/passwd' });
    out.push(c);
  }
  return out;
}

export class ImageModel {
  readonly root: UNode;
  private readonly stats: { added: number; modified: number; removed: number; opaque: number }[];
  private cachedAnalysis: ImageAnalysis | undefined;
  private unionEntries = 0;

  constructor(
    readonly image: string,
    readonly id: string,
    readonly infos: LayerInfo[],
    readonly trees: LayerTree[],
    readonly extra: { tags?: string[]; history?: HistoryStep[] } = {},
  ) {
    this.root = unode('', '');
    this.stats = trees.map(() => ({ added: 0, modified: 0, removed: 0, opaque: 0 }));
    trees.forEach((t, i) => {
      this.root.versions.push(t.root);
      this.merge(i, t.root, this.root);
    });
    // an image without layers (FROM scratch, config only) has an empty root all the same
    if (trees.length === 0) this.root.versions.push(new LayerTreeBuilder(0).finish().root);
    this.account();
  }

  /** Merges layer L's directory `dir` into the merged directory `u` (preorder: a directory before its children). */
  private merge(L: number, dir: LayerNode, u: UNode): void {
    if (!dir.children || dir.children.size === 0) return;
    u.children ??= new Map();
    const st = this.stats[L]!;
    for (const c of dir.children.values()) {
      let m = u.children.get(c.name);
      if (!m) {
        m = unode(c.name, c.path);
        u.children.set(c.name, m);
      }
      const cur = top(m);
      if (c.kind === 'whiteout') {
        c.status = 'removed';
        st.removed++;
        if (cur) {
          c.replaces = cur;
          hideSubtree(m, { layer: L, how: 'whiteout', by: c.path });
        }
        m.versions.push(c);
        continue;
      }
      if (cur) {
        c.status = 'modified';
        c.replaces = cur;
        if (!c.implicit) st.modified++;
        if (cur.kind === 'dir' && c.kind !== 'dir') {
          // a directory replaced by a non-directory: everything below goes too
          cur.hidden = { layer: L, how: 'overwritten', by: c.path };
          for (const k of m.children?.values() ?? []) hideSubtree(k, { layer: L, how: 'replaced', by: c.path });
        } else {
          cur.hidden = { layer: L, how: 'overwritten', by: c.path };
        }
      } else {
        c.status = 'added';
        if (!c.implicit) st.added++;
      }
      m.versions.push(c);
      if (c.kind === 'dir') {
        if (c.opaque) {
          st.opaque++;
          // at this point m's children hold only lower layers' entries
          for (const k of m.children?.values() ?? []) hideSubtree(k, { layer: L, how: 'opaque', by: c.path });
        }
        this.merge(L, c, m);
      }
    }
  }

  /** Which inodes stay visible; where each is counted; directory totals. */
  private account(): void {
    for (const t of this.trees) {
      const walk = (n: LayerNode) => {
        if (n.inode) {
          if (n.inode.nodes[0] === n) {
            const rep = n.inode.nodes.find((x) => !x.hidden);
            if (rep) rep.counted = true;
          }
        } else if (n.kind === 'file' && !n.hidden) n.counted = true;
        if (n.children) for (const c of n.children.values()) walk(c);
      };
      walk(t.root);
    }
    let entries = 0;
    const sum = (u: UNode): number => {
      const v = top(u);
      let b = v?.counted ? (v.inode ? v.inode.size : v.size) : 0;
      let visible = 0;
      if (u.children && v?.kind === 'dir') {
        for (const k of u.children.values()) {
          b += sum(k);
          if (top(k)) visible++;
        }
      }
      if (v) entries++;
      u.bytes = b;
      u.visible = visible;
      return b;
    };
    sum(this.root);
    this.unionEntries = Math.max(0, entries - 1); // the root
  }

  /** The figures of `image analyze --json`. */
  analysis(): ImageAnalysis {
    if (this.cachedAnalysis) return this.cachedAnalysis;
    let sizeBytes = 0;
    let unionBytes = 0;
    const wasted = new Map<string, WastedFile>();
    this.trees.forEach((t, L) => {
      const walk = (n: LayerNode) => {
        const ino = n.inode;
        // an inode is counted once: at its first name (a file without hard links is its own)
        if (ino ? ino.nodes[0] === n : n.kind === 'file') {
          const bytes = ino ? ino.size : n.size;
          sizeBytes += bytes;
          if (ino ? ino.nodes.some((x) => !x.hidden) : !n.hidden) unionBytes += bytes;
          else if (bytes > 0) {
            const p = abs(n.path);
            const w = wasted.get(p) ?? { path: p, bytes: 0, layers: [] };
            w.bytes += bytes;
            if (!w.layers.includes(L)) w.layers.push(L);
            wasted.set(p, w);
          }
        }
        if (n.children) for (const c of n.children.values()) walk(c);
      };
      walk(t.root);
    });
    const list = [...wasted.values()].sort((a, b) => b.bytes - a.bytes || compareNames(a.path, b.path));
    this.cachedAnalysis = {
      image: this.image,
      id: this.id,
      sizeBytes,
      unionBytes,
      wastedBytes: sizeBytes - unionBytes,
      efficiency: sizeBytes === 0 ? 1 : unionBytes / sizeBytes,
      layers: this.trees.map((t, i) => ({
        index: i,
        diffID: this.infos[i]!.diffId,
        digest: this.infos[i]!.digest ?? null,
        createdBy: this.infos[i]!.createdBy,
        sizeBytes: t.bytes,
        ...this.stats[i]!,
      })),
      wasted: list,
    };
    return this.cachedAnalysis;
  }

  /** The analysis with what an explorer shows besides: per-layer details, history, tags. */
  detail(): ImageDetail {
    const a = this.analysis();
    return {
      ...a,
      wasted: a.wasted.slice(0, DETAIL_WASTED),
      wastedFiles: a.wasted.length,
      tags: this.extra.tags ?? [],
      layerDetails: a.layers.map((l, i) => {
        const info = this.infos[i]!;
        const t = this.trees[i]!;
        return {
          ...l,
          chainID: info.chainId ?? null,
          created: info.created ?? null,
          comment: info.comment ?? '',
          entries: t.entries,
          tarBytes: info.tarBytes ?? t.tarBytes ?? null,
          compressedBytes: info.compressedBytes ?? null,
          storedBytes: info.storedBytes ?? null,
        };
      }),
      history: this.extra.history ?? this.infos.map((l, i) => ({ createdBy: l.createdBy, created: l.created ?? null, comment: l.comment ?? '', layer: i })),
      userSizeBytes: a.layers.slice(1).reduce((s, l) => s + l.sizeBytes, 0),
      unionEntries: this.unionEntries,
      readable: this.infos.length > 0 && this.infos.every((l) => l.fsDir !== undefined),
    };
  }

  private layerIndex(layer: number | undefined): number | undefined {
    if (layer === undefined) return undefined;
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.trees.length) {
      throw invalidArgument('BAD_LAYER', `layer ${layer} does not exist: the image has ${this.trees.length} layer${this.trees.length === 1 ? '' : 's'} (0–${this.trees.length - 1})`);
    }
    return layer;
  }

  private findMerged(comps: string[]): UNode | undefined {
    let u: UNode | undefined = this.root;
    for (const c of comps) {
      u = u?.children?.get(c);
      if (!u) return undefined;
    }
    return u;
  }

  private findInLayer(L: number, comps: string[]): LayerNode | undefined {
    let n: LayerNode | undefined = this.trees[L]!.root;
    for (const c of comps) {
      n = n?.children?.get(c);
      if (!n) return undefined;
    }
    return n;
  }

  private noEntry(p: string, layer: number | undefined): Error {
    return notFound('NO_SUCH_PATH', layer === undefined ? `no ${p} in the image` : `no ${p} in layer ${layer}`, { hint: 'list the parent directory to see what is there' });
  }

  /** A directory's entries, in the merged tree or in one layer's own tree. */
  tree(q: TreeQuery = {}): TreeListing {
    const comps = pathComponents(q.path ?? '/');
    const p = '/' + comps.join('/');
    const L = this.layerIndex(q.layer);
    const offset = Math.max(0, Math.floor(q.offset ?? 0));
    const limit = Math.min(MAX_LIMIT, Math.max(1, Math.floor(q.limit ?? 1000)));
    let entry: TreeEntry;
    let rows: TreeEntry[];
    if (L === undefined) {
      const u = this.findMerged(comps);
      // with `removed`, a directory that is no longer visible can be opened too
      const v = u && (top(u) ?? (q.removed ? [...u.versions].reverse().find((x) => x.kind !== 'whiteout') : undefined));
      if (!u || !v) throw this.noEntry(p, undefined);
      if (v.kind !== 'dir') throw invalidArgument('NOT_A_DIRECTORY', `${p} is not a directory`);
      entry = this.mergedEntry(u, v);
      const kids = [...(u.children?.values() ?? [])];
      rows = [];
      for (const k of kids) {
        const kv = top(k);
        if (kv) rows.push(this.mergedEntry(k, kv));
        else if (q.removed) {
          const last = [...k.versions].reverse().find((x) => x.kind !== 'whiteout');
          if (last) rows.push(this.mergedEntry(k, last));
        }
      }
    } else {
      const n = this.findInLayer(L, comps);
      if (!n) throw this.noEntry(p, L);
      if (n.kind !== 'dir') throw invalidArgument('NOT_A_DIRECTORY', `${p} is not a directory in layer ${L}`);
      entry = layerEntry(n);
      rows = [...(n.children?.values() ?? [])].map(layerEntry);
    }
    sortEntries(rows, q.sort);
    return { path: p, layer: L ?? null, entry, total: rows.length, offset, entries: rows.slice(offset, offset + limit) };
  }

  /** One entry with everything known about it; `compare` also compares contents with the entry it replaces. */
  entry(path: string, opts: { layer?: number } = {}): TreeEntry & { contentChanged?: boolean | null } {
    const comps = pathComponents(path);
    const p = '/' + comps.join('/');
    const L = this.layerIndex(opts.layer);
    if (L === undefined) {
      const u = this.findMerged(comps);
      const v = u && top(u);
      if (!u || !v) throw this.noEntry(p, undefined);
      return { ...this.mergedEntry(u, v), ...this.contentCheck(v) };
    }
    const n = this.findInLayer(L, comps);
    if (!n) throw this.noEntry(p, L);
    return { ...layerEntry(n), ...this.contentCheck(n) };
  }

  /** For a modified regular file of the same size as the one it replaces: are the bytes the same? */
  private contentCheck(n: LayerNode): { contentChanged?: boolean | null } {
    const a = effective(n);
    const b = n.replaces && effective(n.replaces);
    if (n.status !== 'modified' || !b || a.kind !== 'file' || b.kind !== 'file') return {};
    if (a.size !== b.size) return { contentChanged: true };
    const da = this.infos[a.layer]?.fsDir;
    const db = this.infos[b.layer]?.fsDir;
    if (!da || !db || a.size > MAX_COMPARE) return { contentChanged: null };
    try {
      return { contentChanged: !sameContent(da, a.path, db, b.path, a.size) };
    } catch {
      return { contentChanged: null };
    }
  }

  /** Entries of the merged tree (or of a layer) whose path contains `q`, case-insensitively. */
  search(q: string, opts: { layer?: number; limit?: number; sort?: 'size' | 'path' } = {}): SearchResult {
    const needle = String(q ?? '').toLowerCase();
    if (needle === '') throw invalidArgument('BAD_QUERY', 'search needs a non-empty query');
    const L = this.layerIndex(opts.layer);
    const limit = Math.min(MAX_LIMIT, Math.max(1, Math.floor(opts.limit ?? 200)));
    const hits: TreeEntry[] = [];
    if (L === undefined) {
      const walk = (u: UNode) => {
        for (const k of u.children?.values() ?? []) {
          const v = top(k);
          if (!v) continue;
          if (('/' + k.path).toLowerCase().includes(needle)) hits.push(this.mergedEntry(k, v));
          if (v.kind === 'dir') walk(k);
        }
      };
      walk(this.root);
    } else {
      const walk = (n: LayerNode) => {
        for (const c of n.children?.values() ?? []) {
          if (('/' + c.path).toLowerCase().includes(needle)) hits.push(layerEntry(c));
          walk(c);
        }
      };
      walk(this.trees[L]!.root);
    }
    if (opts.sort === 'path') hits.sort((a, b) => compareNames(a.path, b.path));
    else hits.sort((a, b) => b.size - a.size || compareNames(a.path, b.path));
    return { total: hits.length, entries: hits.slice(0, limit) };
  }

  /**
   * Up to MAX_PREVIEW bytes of a regular file from `offset`, read from the snapshot of the
   * layer that holds it (the visible one, or the given layer's). The path is looked up in
   * the analysis, never resolved on disk: every component is opened without following a
   * symbolic link, below the layer's directory.
   */
  read(path: string, opts: { layer?: number; offset?: number; length?: number } = {}): FileContent {
    const comps = pathComponents(path);
    const p = '/' + comps.join('/');
    const L = this.layerIndex(opts.layer);
    let n: LayerNode | undefined;
    let e: TreeEntry;
    if (L === undefined) {
      const u = this.findMerged(comps);
      n = u && top(u);
      if (!u || !n) throw this.noEntry(p, undefined);
      e = this.mergedEntry(u, n);
    } else {
      n = this.findInLayer(L, comps);
      if (!n) throw this.noEntry(p, L);
      e = layerEntry(n);
    }
    const f = effective(n);
    if (f.kind !== 'file') throw invalidArgument('NOT_A_FILE', `${p} is ${articled(e.type)}, not a regular file: it has no content to show`);
    const dir = this.infos[f.layer]?.fsDir;
    if (!dir) throw unsupported('NO_CONTENT', `the files of ${this.image} are not stored here: only its headers were read`, { hint: 'load the image into the store to preview its files' });
    const offset = Math.max(0, Math.floor(opts.offset ?? 0));
    const length = Math.min(MAX_PREVIEW, Math.max(0, Math.floor(opts.length ?? MAX_PREVIEW)));
    const fd = openBeneath(dir, f.path);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw notFound('NO_SUCH_PATH', `${p} is not a regular file on disk (the layer changed?)`);
      const want = Math.max(0, Math.min(length, st.size - offset));
      const data = Buffer.alloc(want);
      let got = 0;
      while (got < want) {
        const r = readSync(fd, data, got, want - got, offset + got);
        if (r <= 0) break;
        got += r;
      }
      return { entry: e, size: st.size, offset, data: data.subarray(0, got), truncated: offset + got < st.size };
    } finally {
      closeSync(fd);
    }
  }

  /** A merged-tree row for `u` with its visible (or, for a removed path, last) version `v`. */
  private mergedEntry(u: UNode, v: LayerNode): TreeEntry {
    const e = layerEntry(v);
    e.path = abs(u.path);
    if (v.kind === 'dir' && top(u) === v) {
      e.size = u.bytes;
      e.children = u.visible;
    }
    const shadows: NonNullable<TreeEntry['shadows']> = [];
    for (const x of u.versions) {
      if (x === v || x.kind === 'whiteout' || !x.hidden) continue;
      shadows.push({ layer: x.layer, type: entryType(x), size: x.kind === 'dir' ? 0 : x.size, hidden: x.hidden });
    }
    if (shadows.length) e.shadows = shadows;
    return e;
  }
}

/** Hides the visible version of `u` and everything visible below it. */
function hideSubtree(u: UNode, why: Hidden): void {
  const v = top(u);
  if (!v) return; // nothing visible here, so nothing visible below
  v.hidden = why;
  if (v.kind === 'dir' && u.children) for (const k of u.children.values()) hideSubtree(k, why);
}

function entryType(n: LayerNode): EntryType {
  return n.kind === 'link' ? 'hardlink' : n.kind;
}

function articled(t: EntryType): string {
  return t === 'dir' ? 'a directory' : t === 'hardlink' ? 'a hard link' : /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

const octal = (m: number) => m.toString(8).padStart(4, '0');

function reasons(n: LayerNode, old: LayerNode): ModifiedReason[] {
  const a = effective(n);
  const b = effective(old);
  const r: ModifiedReason[] = [];
  if (a.kind !== b.kind) r.push('type');
  else if ((a.kind === 'file' && a.size !== b.size) || (a.kind === 'symlink' && a.link !== b.link) || ((a.kind === 'char' || a.kind === 'block') && (a.devmajor !== b.devmajor || a.devminor !== b.devminor))) r.push('content');
  if (a.mode !== b.mode) r.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) r.push('owner');
  if (a.mtime !== b.mtime) r.push('mtime');
  if (a.xattrs !== b.xattrs) r.push('xattrs');
  return r;
}

/** A layer-tree row. */
function layerEntry(n: LayerNode): TreeEntry {
  const e: TreeEntry = {
    name: n.name,
    path: abs(n.path),
    type: entryType(n),
    size: n.kind === 'dir' ? (n.bytes ?? 0) : n.size,
    mode: octal(n.mode),
    uid: n.uid,
    gid: n.gid,
    mtime: n.mtime,
    layer: n.layer,
  };
  if (n.kind === 'symlink') e.target = n.link;
  if (n.kind === 'link') e.target = abs(n.link);
  if (n.status) e.status = n.status;
  if (n.replaces) {
    e.replaces = n.replaces.layer;
    if (n.status === 'modified') e.reasons = reasons(n, n.replaces);
  }
  if (n.opaque) e.opaque = true;
  if (n.implicit) e.implicit = true;
  if (n.hidden) e.hidden = n.hidden;
  if (n.kind === 'dir') e.children = n.children?.size ?? 0;
  return e;
}

function sortEntries(rows: TreeEntry[], sort: 'name' | 'size' | undefined): void {
  if (sort === 'size') rows.sort((a, b) => b.size - a.size || compareNames(a.name, b.name));
  else rows.sort((a, b) => compareNames(a.name, b.name));
}

/**
 * Opens `rel` below the directory `dir` without following any symbolic link on the way:
 * each component is opened through the previous one's descriptor (/proc/self/fd/N/name,
 * O_NOFOLLOW), so nothing outside `dir` can be reached whatever the tree holds.
 */
export function openBeneath(dir: string, rel: string): number {
  const comps = rel.split('/').filter(Boolean);
  if (comps.length === 0 || comps.some((c) => c === '..' || c === '.')) throw invalidArgument('BAD_PATH', `invalid path ${JSON.stringify(rel)}`);
  let fd = openSync(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    for (let i = 0; i < comps.length; i++) {
      const last = i === comps.length - 1;
      const flags = C.O_RDONLY | C.O_NOFOLLOW | (last ? C.O_NONBLOCK : C.O_DIRECTORY);
      let next: number;
      try {
        next = openSync(`/proc/self/fd/${fd}/${comps[i]}`, flags);
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') throw notFound('NO_SUCH_PATH', `/${rel} is not in the layer's files on disk`, { cause: e, hint: 'the image may have been removed; reload the page' });
        throw e;
      }
      closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

function sameContent(dirA: string, relA: string, dirB: string, relB: string, size: number): boolean {
  const fa = openBeneath(dirA, relA);
  try {
    const fb = openBeneath(dirB, relB);
    try {
      const ba = Buffer.allocUnsafe(1 << 16);
      const bb = Buffer.allocUnsafe(1 << 16);
      for (let pos = 0; pos < size; ) {
        const n = readSync(fa, ba, 0, ba.length, pos);
        const m = readSync(fb, bb, 0, n, pos);
        if (n <= 0 || m !== n || ba.compare(bb, 0, n, 0, n) !== 0) return false;
        pos += n;
      }
      return true;
    } finally {
      closeSync(fb);
    }
  } finally {
    closeSync(fa);
  }
}
