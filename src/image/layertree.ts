/**
 * A layer as a tree of its entries, read from the layer's tar headers only — from its
 * tar-split record (a stored layer) or from a tar stream or file range (an archive that is
 * not loaded) — never by extracting and never by reading file contents.
 *
 * The tree is what the layer's snapshot holds: the builder follows the layer applier
 * (archive/apply.ts) in overlay mode, where a layer is unpacked into an empty directory:
 * names are cleaned as if the root were `/`; parent components are resolved through the
 * layer's own symbolic links; missing parents become implicit directories; a later entry
 * replaces an earlier one at the same path (a directory keeps its children only when it is
 * replaced by a directory); a whiteout names one path of its own directory and is ignored
 * when the layer itself writes that path; the opaque marker flags its directory; hard links
 * share an inode with an earlier entry of the same layer.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { invalidArgument } from '../errors/index.js';
import { sniffCompression } from '../oci/mediatypes.js';
import { decompressor } from '../archive/compress.js';
import { cleanComponents, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from '../archive/paths.js';
import { scanTarSplit } from '../archive/tarsplit.js';
import { TarParser, type TarHandler } from '../archive/tar/reader.js';
import type { TarHeader } from '../archive/tar/header.js';

export type NodeKind = 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo' | 'whiteout';

/** How a stored entry stops being visible in the merged tree. */
export interface Hidden {
  /** the layer that hides it */
  layer: number;
  /**
   * overwritten: a later layer has an entry at the same path; whiteout: removed by a
   * whiteout (of it or of a directory above it); opaque: a directory above it was made
   * opaque; replaced: a directory above it was replaced by a non-directory.
   */
  how: 'overwritten' | 'whiteout' | 'opaque' | 'replaced';
  /** root-relative path of the entry that hides it (the whiteout's target, the opaque or replacing directory) */
  by: string;
}

/** An inode of a layer named by hard links: a file's bytes stored once, however many names it has (a file without hard links has none). */
export interface Inode {
  size: number;
  nodes: LayerNode[];
}

export interface LayerNode {
  name: string;
  /** root-relative path without a leading slash; '' for the root */
  path: string;
  kind: NodeKind;
  /** file size for regular files and hard links to them, else 0 */
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** symlink target as written; hard link: the root-relative path of the entry it links to */
  link: string;
  devmajor: number;
  devminor: number;
  /** the xattrs as a comparable signature ('' when none) */
  xattrs: string;
  /** a parent directory that the tar did not list (created 0755 by the applier) */
  implicit: boolean;
  /** the directory carries the opaque marker */
  opaque: boolean;
  children: Map<string, LayerNode> | undefined;
  /** shared with the entries that hard-link to it (set only when there are some) */
  inode: Inode | undefined;
  /** index of the layer in the image (set by the analysis) */
  layer: number;
  // ------ filled in by the analysis (analyze.ts) when the layer is merged with those below
  /** added: nothing visible below at this path; modified: replaces a visible entry; removed: a whiteout */
  status?: 'added' | 'modified' | 'removed';
  /** the visible entry of a lower layer this one replaces (modified) or removes (whiteout) */
  replaces?: LayerNode;
  hidden?: Hidden;
  /** bytes below (directories; each inode once) */
  bytes?: number;
  /** this node is where its inode's bytes are counted in the merged tree */
  counted?: boolean;
}

export interface LayerTree {
  root: LayerNode;
  /** entries of the tar (whiteouts and opaque markers included), the root excluded */
  entries: number;
  /** regular-file bytes of the layer, each inode once */
  bytes: number;
  /** uncompressed tar bytes, when the reader saw them */
  tarBytes?: number;
}

const MAX_SYMLINK_HOPS = 255;

function newNode(name: string, path: string, kind: NodeKind, h: TarHeader | undefined, layer: number): LayerNode {
  return {
    name,
    path,
    kind,
    size: 0,
    mode: h ? h.mode : 0o755,
    uid: h ? h.uid : 0,
    gid: h ? h.gid : 0,
    mtime: h ? Math.floor(h.mtime) : 0,
    link: '',
    devmajor: h ? h.devmajor : 0,
    devminor: h ? h.devminor : 0,
    xattrs: h ? xattrSignature(h.xattrs) : '',
    implicit: !h,
    opaque: false,
    children: kind === 'dir' ? new Map() : undefined,
    inode: undefined,
    layer,
  };
}

function xattrSignature(x: Map<string, Buffer> | undefined): string {
  if (!x || x.size === 0) return '';
  const keys = [...x.keys()].filter((k) => !k.startsWith('trusted.overlay.') && !k.startsWith('user.overlay.')).sort();
  return keys.map((k) => `${k}=${x.get(k)!.toString('hex')}`).join('\n');
}

/** Builds a LayerTree from tar headers (a TarHandler: payload bytes are ignored). */
export class LayerTreeBuilder implements TarHandler {
  readonly root: LayerNode;
  private entries = 0;

  constructor(private readonly layer = 0) {
    this.root = newNode('', '', 'dir', undefined, layer);
    this.root.implicit = false;
  }

  onData(): void {}
  onEnd(): void {}

  onEntry(h: TarHeader): void {
    const comps = cleanComponents(h.name);
    if (comps.length === 0) {
      // the root itself: only a directory entry means something (its metadata)
      if (h.type === 'dir') Object.assign(this.root, { mode: h.mode, uid: h.uid, gid: h.gid, mtime: Math.floor(h.mtime), xattrs: xattrSignature(h.xattrs) });
      return;
    }
    this.entries++;
    const base = comps[comps.length - 1]!;
    const parent = this.resolveParent(comps, comps.length - 1, h.name, true)!;
    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.whiteout(parent, base, h);
      return;
    }
    const path = parent.path === '' ? base : parent.path + '/' + base;
    const existing = parent.children!.get(base);
    switch (h.type) {
      case 'dir': {
        if (existing?.kind === 'dir') {
          Object.assign(existing, { mode: h.mode, uid: h.uid, gid: h.gid, mtime: Math.floor(h.mtime), xattrs: xattrSignature(h.xattrs), implicit: false });
          return;
        }
        this.put(parent, newNode(base, path, 'dir', h, this.layer));
        return;
      }
      case 'file': {
        const n = newNode(base, path, 'file', h, this.layer);
        n.size = h.size;
        this.put(parent, n);
        return;
      }
      case 'symlink': {
        const n = newNode(base, path, 'symlink', h, this.layer);
        n.link = h.linkname;
        this.put(parent, n);
        return;
      }
      case 'link': {
        const tcomps = cleanComponents(h.linkname);
        if (tcomps.length === 0) throw invalidArgument('LAYER_BAD_HARDLINK', `invalid layer: hard link ${JSON.stringify(h.name)} points at the root`);
        const tparent = this.resolveParent(tcomps, tcomps.length - 1, h.linkname, false);
        const target = tparent?.children!.get(tcomps[tcomps.length - 1]!);
        if (!target || target.kind === 'whiteout') {
          throw invalidArgument('LAYER_BAD_HARDLINK', `invalid layer: hard link ${JSON.stringify(h.name)} points at ${JSON.stringify(h.linkname)}, which is not in this layer`);
        }
        if (target.kind === 'dir') throw invalidArgument('LAYER_BAD_HARDLINK', `invalid layer: hard link ${JSON.stringify(h.name)} points at a directory`);
        if (target === existing) return; // a link to itself
        const n = newNode(base, path, 'link', h, this.layer);
        const eff = effective(target);
        // a hard link is the same inode: its metadata is the target's
        Object.assign(n, { mode: eff.mode, uid: eff.uid, gid: eff.gid, mtime: eff.mtime, xattrs: eff.xattrs, link: target.path, size: target.size });
        target.inode ??= { size: target.kind === 'file' ? target.size : 0, nodes: [target] };
        n.inode = target.inode;
        this.put(parent, n);
        n.inode.nodes.push(n);
        return;
      }
      default: {
        const n = newNode(base, path, h.type, h, this.layer);
        this.put(parent, n);
      }
    }
  }

  private whiteout(parent: LayerNode, base: string, h: TarHeader): void {
    if (base === WHITEOUT_OPAQUE) {
      parent.opaque = true;
      return;
    }
    if (base.startsWith(WHITEOUT_META_PREFIX)) return; // aufs metadata: skipped, as Docker does
    const target = base.slice(WHITEOUT_PREFIX.length);
    if (target === '' || target === '.' || target === '..' || target.includes('/')) {
      throw invalidArgument('LAYER_BAD_WHITEOUT', `invalid layer: invalid whiteout entry ${JSON.stringify(h.name)}`);
    }
    const existing = parent.children!.get(target);
    if (existing) return; // this layer's own entry wins; a whiteout only hides lower layers
    const n = newNode(target, parent.path === '' ? target : parent.path + '/' + target, 'whiteout', h, this.layer);
    parent.children!.set(target, n);
  }

  /** Sets a child, dropping what it replaces (and that subtree's names from their inodes). */
  private put(parent: LayerNode, n: LayerNode): void {
    const old = parent.children!.get(n.name);
    if (old) forget(old);
    parent.children!.set(n.name, n);
  }

  /**
   * The directory node for parent components comps[0, end), following the layer's own
   * symlinks inside the root (absolute targets re-rooted). Missing directories are created
   * (implicit), or for a hard link's target (`create` false) undefined is returned.
   */
  private resolveParent(comps: string[], end: number, name: string, create: boolean): LayerNode | undefined {
    let cur = this.root;
    let hops = 0;
    let queue: string[] | undefined; // after a symlink: what is left to resolve
    let i = 0;
    for (;;) {
      let c: string;
      if (queue) {
        if (queue.length === 0) break;
        c = queue.shift()!;
      } else {
        if (i >= end) break;
        c = comps[i++]!;
      }
      const child = cur.children!.get(c);
      if (!child || child.kind === 'whiteout') {
        if (!create) return undefined;
        const d = newNode(c, cur.path === '' ? c : cur.path + '/' + c, 'dir', undefined, this.layer);
        cur.children!.set(c, d);
        cur = d;
        continue;
      }
      if (child.kind === 'dir') {
        cur = child;
        continue;
      }
      if (child.kind === 'symlink') {
        if (++hops > MAX_SYMLINK_HOPS) throw invalidArgument('LAYER_SYMLINK_LOOP', `too many levels of symbolic links resolving ${JSON.stringify(name)}`);
        const base = child.link.startsWith('/') ? [] : cur.path === '' ? [] : cur.path.split('/');
        const rest = queue ?? comps.slice(i, end);
        queue = [...cleanComponents([...base, ...child.link.split('/')].join('/')), ...rest];
        cur = this.root;
        continue;
      }
      if (!create) return undefined;
      throw invalidArgument('LAYER_NOT_A_DIRECTORY', `invalid layer: ${JSON.stringify(name)} needs ${JSON.stringify('/' + child.path)} to be a directory, but it is a ${child.kind}`, {
        hint: 'the layer tar is malformed',
      });
    }
    return cur;
  }

  finish(): LayerTree {
    let bytes = 0;
    const seen = new Set<Inode>();
    const walk = (n: LayerNode): number => {
      let b = 0;
      if (n.inode) {
        if (n.inode.size > 0 && !seen.has(n.inode)) {
          seen.add(n.inode);
          b += n.inode.size;
        }
      } else if (n.kind === 'file') b += n.size;
      if (n.children) for (const c of n.children.values()) b += walk(c);
      n.bytes = b;
      return b;
    };
    bytes = walk(this.root);
    return { root: this.root, entries: this.entries, bytes };
  }
}

/** A hard link stands for the entry it links to: compare and read that one. */
export function effective(n: LayerNode): LayerNode {
  if (n.kind !== 'link' || !n.inode) return n;
  return n.inode.nodes.find((x) => x.kind !== 'link') ?? n;
}

/** Drops a replaced subtree's names from their inodes (a hard link elsewhere keeps the bytes). */
function forget(n: LayerNode): void {
  if (n.inode) {
    const i = n.inode.nodes.indexOf(n);
    if (i >= 0) n.inode.nodes.splice(i, 1);
  }
  if (n.children) for (const c of n.children.values()) forget(c);
}

const ZEROS = Buffer.alloc(1 << 16);

/** A stored layer's tree from its tar-split record (headers only: payloads are skipped). */
export async function layerTreeFromTarSplit(path: string, layer: number, opts: { signal?: AbortSignal } = {}): Promise<LayerTree> {
  const b = new LayerTreeBuilder(layer);
  // the record holds headers this engine verified when it unpacked the layer
  const parser = new TarParser(b, { verifyChecksums: false });
  let tarBytes = 0;
  await scanTarSplit(
    path,
    {
      raw: (chunk) => {
        tarBytes += chunk.length;
        parser.write(chunk);
      },
      payload: (size) => {
        tarBytes += size;
        // the parser expects the payload: feed it zeros (it hands them to onData, which ignores them)
        for (let left = size; left > 0; left -= ZEROS.length) parser.write(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left));
      },
    },
    opts,
  );
  parser.end();
  return { ...b.finish(), tarBytes };
}

/** A layer's tree from its (possibly compressed) tar stream. */
export async function layerTreeFromStream(source: AsyncIterable<Buffer> | Readable, layer: number, opts: { signal?: AbortSignal } = {}): Promise<LayerTree> {
  const b = new LayerTreeBuilder(layer);
  const parser = new TarParser(b);
  const src = source instanceof Readable ? source : Readable.from(source, { objectMode: false });
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  const head: Buffer | undefined = first.done ? undefined : (first.value as Buffer);
  const c = head ? sniffCompression(head) : 'none';
  let tarBytes = 0;
  async function* all() {
    if (head) yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value as Buffer;
    }
  }
  const d = decompressor(c);
  const feed = Readable.from(all());
  feed.on('error', (e) => d.destroy(e));
  feed.pipe(d);
  try {
    for await (const chunk of d) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
      tarBytes += (chunk as Buffer).length;
      parser.write(chunk as Buffer);
      if (parser.ended) break;
    }
  } finally {
    d.destroy();
    feed.destroy();
    src.destroy();
  }
  parser.end();
  return { ...b.finish(), tarBytes };
}

/**
 * A layer's tree from an uncompressed tar lying in a file at [offset, offset+size): only
 * the headers are read; payloads are seeked over.
 */
export function layerTreeFromFileRange(path: string, offset: number, size: number, layer: number): LayerTree {
  const b = new LayerTreeBuilder(layer);
  let entered = false;
  const parser = new TarParser({
    onEntry: (h) => {
      entered = true;
      b.onEntry(h);
    },
    onData: () => {},
    onEnd: () => {},
  });
  const fd = openSync(path, 'r');
  const WINDOW = 1 << 16;
  const win = Buffer.allocUnsafe(WINDOW);
  let winStart = -1;
  let winLen = 0;
  const block = (pos: number): Buffer | undefined => {
    if (winStart < 0 || pos < winStart || pos + 512 > winStart + winLen) {
      winStart = pos;
      winLen = readSync(fd, win, 0, Math.min(WINDOW, offset + size - pos), pos);
      if (winLen < 512) return undefined;
    }
    return win.subarray(pos - winStart, pos - winStart + 512);
  };
  try {
    let pos = offset;
    const end = offset + size;
    while (pos + 512 <= end && !parser.ended) {
      const blk = block(pos);
      if (!blk) break;
      pos += 512;
      entered = false;
      parser.write(blk);
      if (entered) pos += parser.skipEntryData();
    }
    if (pos > end) throw invalidArgument('ARCHIVE_TRUNCATED', 'the layer tar in the archive is truncated', { where: path });
  } finally {
    closeSync(fd);
  }
  parser.end();
  return { ...b.finish(), tarBytes: size };
}
