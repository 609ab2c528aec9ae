/**
 * The layer store: read-only layers keyed by chainID, each unpacked once into its own
 * snapshot and shared by every image that has it. `ensure` makes a whole chain present:
 * layers already there are skipped ("Already exists"), missing ones are unpacked — in
 * parallel when the snapshotter allows it — and committed bottom-up.
 *
 * Two mechanisms, kept apart so that no process ever waits for another in a cycle:
 *  - a per-chainID *extraction lock*, held only while a missing layer is unpacked and
 *    committed: a second process that needs it waits, and then finds it present (one
 *    download, one unpack — docs/RELIABILITY.md item 18, 19);
 *  - *leases* (rows in the database, with the holder's pid): a process that is unpacking
 *    or recording an image leases its chain first; collection skips leased layers, so a
 *    layer cannot disappear between "it exists" and "the image that uses it is recorded".
 */
import { mkdirSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { EngineError, dataLoss, internal, storageError, throwIfAborted } from '../errors/index.js';
import { chainIds, digestHex, sha256, type Digest } from '../oci/digest.js';
import { sniffCompression, type Compression } from '../oci/mediatypes.js';
import type { DB } from '../metadata/db.js';
import { now } from '../metadata/db.js';
import type { ContentStore } from '../content/store.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { dirUsage } from '../snapshot/snapshotter.js';
import { OVERLAY_MAX_LOWERS } from '../snapshot/mount.js';
import { tryLock, type Lock } from '../sys/lock.js';
import { isAlive, selfId } from '../sys/proc.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { unpackLayer, type UnpackResult } from '../archive/unpack.js';
import { regenerateTar } from '../archive/tarsplit.js';
import { decompressor } from '../archive/compress.js';
import { createHash } from 'node:crypto';
import { Readable as ReadableStream } from 'node:stream';

/**
 * The most layers an image may have: overlayfs stacks at most OVERLAY_MAX_LOWERS (500)
 * lower directories, and a container's mount adds its init layer to the image's. Docker
 * 20.10's layer store stops at 125 ("max depth exceeded") because its overlay2 driver
 * passes the lower directories in one page of mount options; layerbox mounts with
 * fsconfig("lowerdir+") and has no such page limit, so the kernel's is the one that holds.
 * Applied where a chain is made — load, pull, import, commit — so an image that could
 * not run is never stored.
 */
export const MAX_IMAGE_LAYERS = OVERLAY_MAX_LOWERS - 1;

/** Refuses a chain longer than MAX_IMAGE_LAYERS before any work is done for it. */
export function checkLayerCount(n: number, where: string, verb: 'has' | 'would have' = 'has'): void {
  if (n <= MAX_IMAGE_LAYERS) return;
  throw new EngineError('failed-precondition', 'IMAGE_TOO_MANY_LAYERS', `max depth exceeded: ${where} ${verb} ${n} layers; an image has at most ${MAX_IMAGE_LAYERS} (overlayfs stacks at most ${OVERLAY_MAX_LOWERS} lower layers, and a container adds its init layer)`, {
    where,
    hint: 'flatten the image (run a container of it, `export` it and `import` the tarball), or rebuild it with fewer layers',
  });
}

export interface LayerRecord {
  chainId: Digest;
  diffId: Digest;
  parent: Digest | undefined;
  snapshot: string;
  size: number;
  tarSize: number;
  tarsplit: Digest | undefined;
  blob: Digest | undefined;
  created: string;
}

interface LayerRow {
  chain_id: string;
  diff_id: string;
  parent: string | null;
  snapshot: string;
  size: number;
  tar_size: number;
  tarsplit: string | null;
  blob: string | null;
  created: string;
}

const toRecord = (r: LayerRow): LayerRecord => ({
  chainId: r.chain_id as Digest,
  diffId: r.diff_id as Digest,
  parent: (r.parent ?? undefined) as Digest | undefined,
  snapshot: r.snapshot,
  size: r.size,
  tarSize: r.tar_size,
  tarsplit: (r.tarsplit ?? undefined) as Digest | undefined,
  blob: (r.blob ?? undefined) as Digest | undefined,
  created: r.created,
});

/** Where the bytes of a layer come from (a file range, a registry stream, …). */
export interface LayerSource {
  /** Opens the blob as given (possibly compressed). May be called again to retry or to keep a copy. */
  open(signal?: AbortSignal): Promise<AsyncIterable<Buffer> | Readable>;
  compression: Compression | 'auto';
  /** Digest/size of the blob as given, when known (manifest descriptor). */
  digest?: Digest;
  size?: number;
  mediaType?: string;
  /** For error messages: where the layer comes from. */
  where: string;
  /**
   * The stream itself checks size and digest and throws at its end on a mismatch (the
   * registry client does): the blob is not hashed a second time here.
   */
  verifiedBySource?: boolean;
  /** After a successful unpack: remember which compressed blob holds this diffID. */
  onUnpacked?(r: UnpackResult): void;
  /** Where the blob lies in a file, when it does (readers that seek over payloads use it: image analyze). */
  file?: { path: string; offset: number; size: number };
}

export type LayerEvent =
  | { type: 'exists'; index: number; diffId: Digest; digest?: Digest }
  | { type: 'waiting'; index: number; diffId: Digest }
  | { type: 'start'; index: number; diffId: Digest; digest?: Digest; total?: number }
  | { type: 'progress'; index: number; diffId: Digest; current: number; total?: number; out: number }
  | { type: 'done'; index: number; diffId: Digest; digest: Digest; size: number };

export interface EnsureOptions {
  concurrency?: number;
  maxLayerBytes?: number;
  onEvent?: (e: LayerEvent) => void;
  warn?: (msg: string) => void;
  signal?: AbortSignal;
}

/** A lease on a chain; release after the image that uses it is recorded. */
export interface ChainLease {
  chainIds: Digest[];
  release(): void;
}

export class LayerStore {
  private readonly lockDir: string;
  private readonly tmpDir: string;

  constructor(
    private readonly db: DB,
    private readonly content: ContentStore,
    readonly snapshots: Snapshotter,
    root: string,
  ) {
    this.lockDir = join(root, 'locks');
    this.tmpDir = join(root, 'tmp');
    mkdirSync(this.lockDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  get(chainId: string): LayerRecord | undefined {
    const r = this.db.prepare('SELECT * FROM layers WHERE chain_id = ?').get(chainId) as LayerRow | undefined;
    return r ? toRecord(r) : undefined;
  }

  all(): LayerRecord[] {
    return (this.db.prepare('SELECT * FROM layers').all() as LayerRow[]).map(toRecord);
  }

  private lockPath(chainId: Digest): string {
    return join(this.lockDir, `layer-${digestHex(chainId)}.lock`);
  }

  /**
   * Makes every layer of a chain present. `sources(i)` gives the source of layer i (only
   * called for layers that must be unpacked). Returns the chain IDs and a lease that keeps
   * them from being collected until released.
   */
  async ensure(diffIds: Digest[], sources: (i: number) => LayerSource, opts: EnsureOptions & { where?: string } = {}): Promise<ChainLease> {
    checkLayerCount(diffIds.length, opts.where ?? 'the image');
    const chain = chainIds(diffIds);
    const release = this.lease(chain);
    try {
      const missing: number[] = [];
      for (let i = 0; i < chain.length; i++) {
        if (this.get(chain[i]!)) opts.onEvent?.({ type: 'exists', index: i, diffId: diffIds[i]! });
        else missing.push(i);
      }
      if (missing.length > 0) {
        if (this.snapshots.independentLayers) {
          await this.unpackParallel(diffIds, chain, missing, sources, opts);
        } else {
          for (const i of missing) {
            throwIfAborted(opts.signal);
            await this.unpackOne(i, diffIds, chain, sources, opts);
          }
        }
      }
      return { chainIds: chain, release };
    } catch (e) {
      release();
      throw e;
    }
  }

  /** Leases `chain` for this process; returns the release function. */
  lease(chain: Digest[]): () => void {
    const id = randomBytes(8).toString('hex');
    const me = selfId();
    const ins = this.db.prepare('INSERT INTO leases (id, chain_id, pid, start) VALUES (?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const c of chain) ins.run(id, c, me.pid, me.start);
    }).immediate();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      try {
        this.db.prepare('DELETE FROM leases WHERE id = ?').run(id);
      } catch {
        /* database closed: the lease dies with the process */
      }
    };
  }

  /** Whether a live process leases the layer (dead holders' leases are dropped). */
  private leased(chainId: string): boolean {
    const rows = this.db.prepare('SELECT id, pid, start FROM leases WHERE chain_id = ?').all(chainId) as { id: string; pid: number; start: number }[];
    let live = false;
    for (const r of rows) {
      if (isAlive({ pid: r.pid, start: r.start })) live = true;
      else this.db.prepare('DELETE FROM leases WHERE id = ?').run(r.id);
    }
    return live;
  }

  private async unpackParallel(diffIds: Digest[], chain: Digest[], missing: number[], sources: (i: number) => LayerSource, opts: EnsureOptions): Promise<void> {
    const limit = Math.max(1, opts.concurrency ?? 3);
    // committed[i] resolves when layer i is committed (or was present)
    const committed = new Map<number, { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void }>();
    for (const i of missing) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => {});
      committed.set(i, { promise, resolve, reject });
    }
    const ac = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;
    let next = 0;
    let firstError: unknown;
    const worker = async () => {
      while (next < missing.length) {
        const i = missing[next++]!;
        const slot = committed.get(i)!;
        try {
          const prepared = await this.unpackIndependent(i, diffIds, chain, sources, { ...opts, signal });
          // commit bottom-up: wait for the parent's commit first
          if (i > 0 && committed.has(i - 1)) await committed.get(i - 1)!.promise;
          prepared();
          slot.resolve();
        } catch (e) {
          firstError ??= e;
          ac.abort(e);
          slot.reject(e);
          for (const s of committed.values()) s.reject(e);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, missing.length) }, worker));
    if (firstError) throw firstError;
  }

  /**
   * Unpacks layer i into a fresh temporary snapshot (no parent needed) and returns a
   * function that commits it under its chainID once the parent is committed.
   */
  private async unpackIndependent(i: number, diffIds: Digest[], chain: Digest[], sources: (i: number) => LayerSource, opts: EnsureOptions): Promise<() => void> {
    const chainId = chain[i]!;
    const lock = await this.lockOrExists(i, diffIds, chainId, opts);
    if (!lock) {
      opts.onEvent?.({ type: 'exists', index: i, diffId: diffIds[i]! });
      return () => {};
    }
    const key = `extract-${digestHex(chainId).slice(0, 16)}-${randomBytes(4).toString('hex')}`;
    try {
      const dir = await this.snapshots.prepare(key, undefined, { temporary: true });
      const rec = await this.unpackInto(i, diffIds, dir, key, sources(i), opts, 'overlay', true);
      // committed once the parent is; the extraction lock is held until then
      return () => {
        try {
          this.record(chainId, i > 0 ? chain[i - 1]! : undefined, key, rec);
        } finally {
          lock.release();
        }
      };
    } catch (e) {
      if (this.snapshots.stat(key)) await this.snapshots.remove(key).catch(() => {});
      lock.release();
      throw e;
    }
  }

  private async unpackOne(i: number, diffIds: Digest[], chain: Digest[], sources: (i: number) => LayerSource, opts: EnsureOptions): Promise<void> {
    const chainId = chain[i]!;
    const lock = await this.lockOrExists(i, diffIds, chainId, opts);
    if (!lock) {
      opts.onEvent?.({ type: 'exists', index: i, diffId: diffIds[i]! });
      return;
    }
    const parent = i > 0 ? chain[i - 1]! : undefined;
    const key = `extract-${digestHex(chainId).slice(0, 16)}-${randomBytes(4).toString('hex')}`;
    try {
      const dir = await this.snapshots.prepare(key, parent, { temporary: true });
      const rec = await this.unpackInto(i, diffIds, dir, key, sources(i), opts, 'delete', parent === undefined);
      // a copy of the parent holds the parent's files too: measure what is really there
      rec.size = dirUsage(dir).size;
      this.record(chainId, parent, key, rec);
    } catch (e) {
      if (this.snapshots.stat(key)) await this.snapshots.remove(key).catch(() => {});
      throw e;
    } finally {
      lock.release();
    }
  }

  /**
   * The extraction lock of a missing layer, or undefined once the layer exists (another
   * process committed it while we waited). Never waits on a layer that is present.
   */
  private async lockOrExists(i: number, diffIds: Digest[], chainId: Digest, opts: EnsureOptions): Promise<Lock | undefined> {
    const path = this.lockPath(chainId);
    let delay = 10;
    let announced = false;
    for (;;) {
      if (this.get(chainId)) return undefined;
      const l = tryLock(path);
      if (l) {
        if (this.get(chainId)) {
          l.release();
          return undefined;
        }
        return l;
      }
      if (!announced) {
        // another process is unpacking this very layer: wait for it, then reuse its work
        opts.onEvent?.({ type: 'waiting', index: i, diffId: diffIds[i]! });
        announced = true;
      }
      throwIfAborted(opts.signal);
      await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
  }

  private async unpackInto(
    i: number,
    diffIds: Digest[],
    dir: string,
    key: string,
    src: LayerSource,
    opts: EnsureOptions,
    whiteouts: 'overlay' | 'delete',
    fresh: boolean,
  ): Promise<Omit<LayerRecord, 'chainId' | 'parent' | 'snapshot' | 'created'>> {
    const diffId = diffIds[i]!;
    opts.onEvent?.({ type: 'start', index: i, diffId, ...(src.digest ? { digest: src.digest } : {}), ...(src.size !== undefined ? { total: src.size } : {}) });
    const tarsplitPath = join(this.tmpDir, `${key}.tarsplit`);
    const r = await unpackLayer({
      source: await src.open(opts.signal),
      compression: src.compression,
      expected: { ...(src.digest ? { digest: src.digest } : {}), ...(src.size !== undefined ? { size: src.size } : {}) },
      blobVerified: src.verifiedBySource,
      expectedDiffId: diffId,
      target: dir,
      whiteouts,
      fresh,
      tarsplitPath,
      maxBytes: opts.maxLayerBytes,
      spaceCheck: true,
      where: src.where,
      warn: opts.warn,
      signal: opts.signal,
      onProgress: (p) => opts.onEvent?.({ type: 'progress', index: i, diffId, current: p.in, out: p.out, ...(src.size !== undefined ? { total: src.size } : {}) }),
    }).catch((e: unknown) => {
      // a full disk: say where (a write's errno names no path)
      throw storageError(e, dir, `cannot store layer ${diffId}`) ?? e;
    });
    let tarsplit: Digest | undefined;
    let blob: Digest | undefined;
    if (r.tarsplit?.reproducible) {
      await this.content.adopt(tarsplitPath, r.tarsplit.digest, r.tarsplit.size);
      tarsplit = r.tarsplit.digest;
    } else {
      // The tar cannot be rebuilt from the files (duplicate entries, …): keep the blob itself.
      await rm(tarsplitPath, { force: true });
      blob = await this.keepBlob(src, r, opts.signal);
      opts.warn?.(`layer ${diffId} cannot be rebuilt from its files (duplicate or replaced entries); keeping its ${r.size}-byte blob`);
    }
    src.onUnpacked?.(r);
    opts.onEvent?.({ type: 'done', index: i, diffId, digest: r.digest, size: r.size });
    return { diffId, size: r.stats.bytes, tarSize: r.tarSize, tarsplit, blob };
  }

  private async keepBlob(src: LayerSource, r: UnpackResult, signal?: AbortSignal): Promise<Digest> {
    const w = await this.content.writer(`blob-${r.digest}`, { expected: { digest: r.digest, size: r.size }, wait: true, signal });
    try {
      const s = await src.open(signal);
      for await (const c of s as AsyncIterable<Buffer>) await w.write(c);
      return (await w.commit()).digest;
    } catch (e) {
      await w.abort();
      throw e;
    }
  }

  private record(chainId: Digest, parent: Digest | undefined, key: string, rec: Omit<LayerRecord, 'chainId' | 'parent' | 'snapshot' | 'created'>): void {
    // the snapshot is committed under its chainID and the layer row written in one
    // transaction: a crash leaves either a temporary snapshot (swept) or a whole layer
    this.db.transaction(() => {
      this.snapshots.commit(chainId, key, parent ? { parent } : {});
      this.db
        .prepare('INSERT INTO layers (chain_id, diff_id, parent, snapshot, size, tar_size, tarsplit, blob, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(chainId, rec.diffId, parent ?? null, chainId, rec.size, rec.tarSize, rec.tarsplit ?? null, rec.blob ?? null, now());
    }).immediate();
  }

  /**
   * Unpacks a base layer whose diffID is not known in advance (`import`): into a temporary
   * snapshot first, then committed under its chainID — or dropped when that layer exists.
   */
  async importBase(src: LayerSource, opts: EnsureOptions = {}): Promise<ChainLease & { diffId: Digest }> {
    const key = `import-${randomBytes(8).toString('hex')}`;
    const fresh = this.snapshots.independentLayers;
    const dir = await this.snapshots.prepare(key, undefined, { temporary: true });
    const tarsplitPath = join(this.tmpDir, `${key}.tarsplit`);
    let release: (() => void) | undefined;
    try {
      const r = await unpackLayer({
        source: await src.open(opts.signal),
        compression: src.compression,
        target: dir,
        whiteouts: fresh ? 'overlay' : 'delete',
        fresh: true,
        tarsplitPath,
        maxBytes: opts.maxLayerBytes,
        spaceCheck: true,
        where: src.where,
        warn: opts.warn,
        signal: opts.signal,
        onProgress: (p) => opts.onEvent?.({ type: 'progress', index: 0, diffId: '' as Digest, current: p.in, out: p.out }),
      });
      if (!r.tarsplit?.reproducible) {
        throw dataLoss('IMPORT_NOT_REPRODUCIBLE', 'the tarball has duplicate or replaced entries and cannot be stored as a layer', {
          where: src.where,
          hint: 'rebuild the tarball without duplicate entries',
        });
      }
      const chainId = r.diffId;
      release = this.lease([chainId]);
      const lock = await this.lockOrExists(0, [chainId], chainId, opts);
      if (!lock) {
        // the same layer is already stored: ours was work for nothing
        await this.snapshots.remove(key);
        await rm(tarsplitPath, { force: true });
      } else {
        try {
          await this.content.adopt(tarsplitPath, r.tarsplit.digest, r.tarsplit.size);
          this.record(chainId, undefined, key, { diffId: r.diffId, size: fresh ? r.stats.bytes : dirUsage(dir).size, tarSize: r.tarSize, tarsplit: r.tarsplit.digest, blob: undefined });
        } finally {
          lock.release();
        }
      }
      return { chainIds: [chainId], diffId: r.diffId, release };
    } catch (e) {
      release?.();
      if (this.snapshots.stat(key)) await this.snapshots.remove(key).catch(() => {});
      await rm(tarsplitPath, { force: true });
      throw e;
    }
  }

  /**
   * Records a layer whose files are already in a temporary snapshot `key` (commit: a copy
   * of a container's upper dir) and whose tar-split was written alongside. When the same
   * layer exists already, the snapshot and tar-split are dropped. Returns the chain lease.
   */
  async adoptPrepared(
    parentChain: Digest[],
    key: string,
    rec: { diffId: Digest; size: number; tarSize: number; tarsplit: { path: string; digest: Digest; size: number } },
  ): Promise<ChainLease & { existed: boolean }> {
    checkLayerCount(parentChain.length + 1, 'the committed image', 'would have');
    const parent = parentChain.length ? parentChain[parentChain.length - 1]! : undefined;
    const chainId = (parent ? sha256(`${parent} ${rec.diffId}`) : rec.diffId) as Digest;
    const chain = [...parentChain, chainId];
    const release = this.lease(chain);
    try {
      const lock = await this.lockOrExists(parentChain.length, [...parentChain.map(() => '' as Digest), rec.diffId], chainId, {});
      if (!lock) {
        await this.snapshots.remove(key);
        await rm(rec.tarsplit.path, { force: true });
        return { chainIds: chain, release, existed: true };
      }
      try {
        await this.content.adopt(rec.tarsplit.path, rec.tarsplit.digest, rec.tarsplit.size);
        this.record(chainId, parent, key, { diffId: rec.diffId, size: rec.size, tarSize: rec.tarSize, tarsplit: rec.tarsplit.digest, blob: undefined });
      } finally {
        lock.release();
      }
      return { chainIds: chain, release, existed: false };
    } catch (e) {
      release();
      throw e;
    }
  }

  /** The exact uncompressed tar of a layer, verified against its diffID while it streams. */
  async *tar(chainId: Digest, opts: { signal?: AbortSignal } = {}): AsyncGenerator<Buffer> {
    const l = this.get(chainId);
    if (!l) throw internal('LAYER_MISSING', `layer ${chainId} is not in the store`);
    const h = createHash('sha256');
    let src: AsyncIterable<Buffer>;
    if (l.tarsplit) {
      src = regenerateTar(this.content.path(l.tarsplit), this.snapshots.fsDir(l.snapshot), opts);
    } else if (l.blob) {
      const fh = await open(this.content.path(l.blob), 'r');
      const head = Buffer.alloc(4);
      await fh.read(head, 0, 4, 0).finally(() => fh.close());
      src = ReadableStream.from(this.content.openRead(l.blob, opts)).pipe(decompressor(sniffCompression(head)));
    } else {
      throw dataLoss('LAYER_NO_TAR', `layer ${l.diffId} has neither tar-split nor blob`, { hint: 'remove the image and load or pull it again' });
    }
    for await (const c of src) {
      h.update(c);
      yield c;
    }
    const got = 'sha256:' + h.digest('hex');
    if (got !== l.diffId) {
      throw dataLoss('LAYER_CORRUPT', `layer ${l.diffId} no longer matches its diffID (it hashes to ${got})`, { hint: 'the layer files were changed on disk; remove the image and load or pull it again' });
    }
  }

  /**
   * Removes layers from the top of a chain down while nothing uses them (no image, no
   * child layer, no container snapshot) and no process holds their lock.
   */
  async release(chain: Digest[]): Promise<Digest[]> {
    const removed: Digest[] = [];
    for (let i = chain.length - 1; i >= 0; i--) {
      const c = chain[i]!;
      const lock = tryLock(this.lockPath(c));
      if (!lock) break;
      try {
        const l = this.get(c);
        if (!l) continue;
        const gone = this.db.transaction(() => {
          const used = this.db.prepare('SELECT COUNT(*) AS n FROM image_layers WHERE chain_id = ?').get(c) as { n: number };
          const children = this.db.prepare('SELECT COUNT(*) AS n FROM layers WHERE parent = ?').get(c) as { n: number };
          // a container's init layer sits on it, or a container continues on it (after a commit)
          const snaps = this.db.prepare("SELECT COUNT(*) AS n FROM snapshots WHERE (parent = ? OR lower = ?) AND kind != 'removing'").get(l.snapshot, l.snapshot) as { n: number };
          if (used.n > 0 || children.n > 0 || snaps.n > 0 || this.leased(c)) return false;
          this.db.prepare('DELETE FROM layers WHERE chain_id = ?').run(c);
          this.db.prepare('DELETE FROM blob_sources WHERE diff_id = ? AND NOT EXISTS (SELECT 1 FROM layers WHERE diff_id = ?)').run(l.diffId, l.diffId);
          return true;
        }).immediate();
        if (!gone) break;
        await this.snapshots.remove(l.snapshot);
        if (l.tarsplit && !this.db.prepare('SELECT 1 FROM layers WHERE tarsplit = ?').get(l.tarsplit)) await this.content.delete(l.tarsplit);
        if (l.blob && !this.db.prepare('SELECT 1 FROM layers WHERE blob = ?').get(l.blob)) await this.content.delete(l.blob);
        removed.push(c);
      } finally {
        lock.release();
      }
    }
    return removed;
  }

  /**
   * Layers nothing uses — no image, no child layer, no container, no live lease: what an
   * rmi killed between the image's record and its layers left, or an older version's
   * removal of a container whose image went with rmi -f. (A chain unpacked by a pull that
   * was killed before its image was recorded is one too.) `remove` removes them (rmi,
   * prune, system check --repair); otherwise they are only listed.
   */
  async unused(opts: { remove?: boolean } = {}): Promise<Digest[]> {
    const rows = this.db
      .prepare(
        `SELECT chain_id FROM layers l WHERE NOT EXISTS (SELECT 1 FROM image_layers WHERE chain_id = l.chain_id)
           AND NOT EXISTS (SELECT 1 FROM layers c WHERE c.parent = l.chain_id)
           AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE (s.parent = l.snapshot OR s.lower = l.snapshot) AND s.kind != 'removing')`,
      )
      .all() as { chain_id: string }[];
    const out: Digest[] = [];
    for (const { chain_id } of rows) {
      if (this.leased(chain_id)) continue;
      if (!opts.remove) {
        out.push(chain_id as Digest);
        continue;
      }
      const chain: Digest[] = [];
      for (let c: string | undefined = chain_id; c; c = this.get(c)?.parent) chain.unshift(c as Digest);
      out.push(...(await this.release(chain).catch(() => [] as Digest[])));
    }
    return out;
  }

  /** Start-up repair: committed layer snapshots without a layer row (crash between the two) are removed. */
  async sweep(): Promise<void> {
    await this.sweepSnapshots();
  }

  private async sweepSnapshots(): Promise<void> {
    const rows = this.db
      .prepare("SELECT key FROM snapshots WHERE kind = 'committed' AND key LIKE 'sha256:%' AND key NOT IN (SELECT snapshot FROM layers)")
      .all() as { key: string }[];
    for (const r of rows) {
      const lock = tryLock(this.lockPath(r.key as Digest));
      if (!lock) continue;
      try {
        if (!this.get(r.key)) await this.snapshots.remove(r.key).catch(() => {});
      } finally {
        lock.release();
      }
    }
  }

  /** Total apparent size of a layer's own snapshot. */
  size(chainId: Digest): number {
    return this.get(chainId)?.size ?? 0;
  }
}

export class LayerMissingError extends EngineError {}
