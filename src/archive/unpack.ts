/**
 * One streaming pass per layer: blob bytes → size + digest check → decompress → diffID
 * hash → tar parse → apply into the snapshot directory (+ tar-split record). Nothing is
 * buffered whole; nothing is written twice. The caller commits the snapshot only after
 * this resolves (so a lying source never leaves a snapshot that looks whole).
 */
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { once } from 'node:events';
import { dataLoss, EngineError } from '../errors/index.js';
import type { Digest } from '../oci/digest.js';
import { sniffCompression, type Compression } from '../oci/mediatypes.js';
import { decompressor } from './compress.js';
import { LayerApplier, type ApplyStats, type WhiteoutMode } from './apply.js';
import { TarParser } from './tar/reader.js';
import { TarSplitWriter } from './tarsplit.js';
import { SpaceGuard } from './space.js';

export interface UnpackRequest {
  source: AsyncIterable<Buffer> | Readable;
  /** 'auto' sniffs the first bytes. */
  compression: Compression | 'auto';
  /** What the blob as given must be (digest/size of the compressed bytes). */
  expected?: { digest?: Digest; size?: number };
  /** The source verifies `expected` itself (and throws at its end): skip the blob hash. */
  blobVerified?: boolean;
  /** What the uncompressed tar must hash to (config rootfs.diff_ids[i]). */
  expectedDiffId?: Digest;
  target: string;
  whiteouts: WhiteoutMode;
  fresh: boolean;
  /** Apply the archive's owners (default: when running as root). */
  sameOwner?: boolean;
  /** Where to write the tar-split record; none when omitted. */
  tarsplitPath?: string;
  /** Quota on uncompressed bytes (gzip bombs). */
  maxBytes?: number;
  /** Refuse before the target's file system is nearly full (see space.ts). */
  spaceCheck?: boolean;
  /** Where the layer came from, for error messages. */
  where?: string;
  onProgress?: (p: { in: number; out: number }) => void;
  warn?: (msg: string) => void;
  signal?: AbortSignal;
}

export interface UnpackResult {
  digest: Digest;
  size: number;
  compression: Compression;
  diffId: Digest;
  tarSize: number;
  stats: ApplyStats;
  tarsplit?: { digest: Digest; size: number; reproducible: boolean };
}

export const DEFAULT_MAX_LAYER_BYTES = 64 * 1024 ** 3;
/** Write-behind back-pressure: stop reading above HIGH queued bytes, resume below LOW. */
const BACKLOG_HIGH = 64 << 20;
const BACKLOG_LOW = 16 << 20;

export async function unpackLayer(req: UnpackRequest): Promise<UnpackResult> {
  const where = req.where ?? req.target;
  const blobHash = createHash('sha256');
  const tarHash = createHash('sha256');
  let blobBytes = 0;
  let tarBytes = 0;
  const maxBytes = req.maxBytes ?? DEFAULT_MAX_LAYER_BYTES;
  // the disk is a quota too: refused while some space is left, not at ENOSPC (first:
  // nothing is created yet when it refuses at once)
  let space: SpaceGuard | undefined;
  try {
    space = req.spaceCheck ? new SpaceGuard(req.target, `extracting ${where}`) : undefined;
  } catch (e) {
    if (req.source instanceof Readable) req.source.destroy();
    else void (req.source as AsyncGenerator<Buffer>).return?.(undefined);
    throw e;
  }
  const tarsplit = req.tarsplitPath ? new TarSplitWriter(req.tarsplitPath) : undefined;
  // a failed unpack leaves no tar-split file behind (the caller only adopts it on success)
  const discardTarsplit = () => {
    tarsplit?.abort();
    if (req.tarsplitPath) rmSync(req.tarsplitPath, { force: true });
  };
  const applier = new LayerApplier({ root: req.target, whiteouts: req.whiteouts, fresh: req.fresh, tarsplit, warn: req.warn, ...(req.sameOwner !== undefined ? { sameOwner: req.sameOwner } : {}) });
  const tooLarge = (detail: string) =>
    new EngineError('resource-exhausted', 'LAYER_TOO_LARGE', `layer expands beyond the ${maxBytes}-byte quota (a decompression bomb?)${detail}`, {
      where,
      hint: 'raise the quota with --max-layer-size / LAYERBOX_MAX_LAYER_SIZE if the layer is genuine',
    });
  // a file that declares more than the quota is refused at its header, not after reading it
  const parser = new TarParser({
    onEntry: (h) => {
      if (h.size > maxBytes) throw tooLarge(`: ${JSON.stringify(h.name.length > 80 ? h.name.slice(0, 80) + '…' : h.name)} declares ${h.size} bytes`);
      // small files are covered by the periodic check; a big one must fit as declared
      if (space && h.size >= space.interval) space.check(h.size);
      applier.onEntry(h);
    },
    onData: (c) => applier.onData(c),
    onEnd: () => applier.onEnd(),
    onRaw: (c) => applier.onRaw(c),
  });

  let compression: Compression = req.compression === 'auto' ? 'none' : req.compression;

  const src = req.source instanceof Readable ? req.source : Readable.from(req.source, { objectMode: false });
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  // Peek at the first chunk to sniff compression.
  const first = await it.next().catch((e: unknown) => {
    discardTarsplit();
    throw e;
  });
  const firstChunk: Buffer | undefined = first.done ? undefined : (first.value as Buffer);
  if (req.compression === 'auto') compression = firstChunk ? sniffCompression(firstChunk) : 'none';
  const hashBlobSeparately = compression !== 'none' && !(req.blobVerified && req.expected?.digest);
  let lastProgress = 0;

  const onBlob = (chunk: Buffer) => {
    blobBytes += chunk.length;
    if (req.expected?.size !== undefined && blobBytes > req.expected.size) {
      throw dataLoss('BLOB_TOO_LONG', `layer blob is longer than its descriptor says (${req.expected.size} bytes)`, { where });
    }
    if (hashBlobSeparately) blobHash.update(chunk);
  };
  const onTar = (chunk: Buffer) => {
    tarBytes += chunk.length;
    if (tarBytes > maxBytes) throw tooLarge('');
    space?.charge(chunk.length);
    tarHash.update(chunk);
    parser.write(chunk);
    if (req.onProgress && tarBytes - lastProgress >= 1 << 20) {
      lastProgress = tarBytes;
      req.onProgress({ in: blobBytes, out: tarBytes });
    }
  };
  async function* rest(): AsyncGenerator<Buffer> {
    if (firstChunk) yield firstChunk;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value as Buffer;
    }
  }
  try {
    if (compression === 'none') {
      // plain tar: one loop, no stream machinery between the source and the applier
      for await (const c of rest()) {
        if (req.signal?.aborted) throw req.signal.reason ?? new Error('aborted');
        onBlob(c);
        onTar(c);
        if (applier.backlog > BACKLOG_HIGH) await applier.drain(BACKLOG_LOW);
      }
    } else {
      // compressed: the decompressor runs beside us (zlib on the thread pool, zstd in its
      // own process); the producer feeds it, the consumer applies what comes out
      const d = decompressor(compression);
      const producer = (async () => {
        try {
          for await (const c of rest()) {
            onBlob(c);
            if (!d.write(c)) await once(d, 'drain');
          }
          d.end();
        } catch (e) {
          d.destroy(e as Error);
          throw e;
        }
      })();
      producer.catch(() => {});
      try {
        for await (const c of d) {
          if (req.signal?.aborted) throw req.signal.reason ?? new Error('aborted');
          onTar(c as Buffer);
          if (applier.backlog > BACKLOG_HIGH) await applier.drain(BACKLOG_LOW);
        }
      } catch (e) {
        d.destroy();
        src.destroy();
        await producer.catch(() => {});
        throw e;
      }
      await producer;
    }
    parser.end();
    await applier.flush();
    applier.finish();
  } catch (e) {
    applier.abort();
    await applier.settle(); // queued writes land and their files close before the caller cleans up
    discardTarsplit();
    src.destroy();
    throw wrapZlib(e, where);
  }
  const tarDigest = ('sha256:' + tarHash.digest('hex')) as Digest;
  const blobDigest = hashBlobSeparately ? (('sha256:' + blobHash.digest('hex')) as Digest) : compression === 'none' ? tarDigest : req.expected!.digest!;
  req.onProgress?.({ in: blobBytes, out: tarBytes });
  if (req.expected?.size !== undefined && blobBytes !== req.expected.size) {
    discardTarsplit();
    throw dataLoss('BLOB_SIZE_MISMATCH', `layer blob has ${blobBytes} bytes, expected ${req.expected.size}`, { where, hint: 'the source is truncated or corrupt' });
  }
  if (req.expected?.digest && blobDigest !== req.expected.digest) {
    discardTarsplit();
    throw dataLoss('BLOB_DIGEST_MISMATCH', `layer blob digest mismatch: expected ${req.expected.digest}, got ${blobDigest}`, { where, hint: 'the source is corrupt or was tampered with' });
  }
  if (req.expectedDiffId && tarDigest !== req.expectedDiffId) {
    discardTarsplit();
    throw dataLoss('DIFFID_MISMATCH', `layer diffID mismatch: the image config says ${req.expectedDiffId}, the uncompressed layer is ${tarDigest}`, { where, hint: 'the image is corrupt: its config does not describe this layer' });
  }
  const ts = tarsplit ? { ...tarsplit.finish(), reproducible: tarsplit.reproducible } : undefined;
  return { digest: blobDigest, size: blobBytes, compression, diffId: tarDigest, tarSize: tarBytes, stats: applier.stats, ...(ts ? { tarsplit: ts } : {}) };
}

function wrapZlib(e: unknown, where: string): unknown {
  const code = (e as { code?: string }).code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return dataLoss('LAYER_DECOMPRESS', `layer is not valid gzip data: ${(e as Error).message}`, { where, cause: e });
  }
  if (code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return dataLoss('LAYER_TRUNCATED', 'layer stream ended early', { where, cause: e });
  }
  if (e instanceof EngineError && e.where === undefined) {
    // the tar parser and the applier do not know which layer they read: say it
    return new EngineError(e.kind, e.code, e.message, { where, ...(e.hint !== undefined ? { hint: e.hint } : {}), cause: e });
  }
  return e;
}
