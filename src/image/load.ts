/**
 * `load`: docker-archive (what `docker save` writes), OCI image layout directories and
 * oci-archive tarballs; plain, gzip- or zstd-compressed; from a file or stdin.
 *
 * An uncompressed archive file is indexed (headers only) and each layer is read straight
 * from its byte range — layers unpack in parallel and a layer already stored is never
 * read. A compressed archive or a pipe is first spooled to a temporary file in the store
 * (Docker does the same with stdin), because its manifest comes last.
 */
import { createReadStream } from 'node:fs';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable, pipeline as pipeStreams } from 'node:stream';
import { drainRest } from '../sys/drain.js';
import { dataLoss, EngineError, invalidArgument, throwIfAborted } from '../errors/index.js';
import { parseDigest, sha256, digestHex, type Digest } from '../oci/digest.js';
import { MediaType, layerCompression, sniffCompression, isIndexType } from '../oci/mediatypes.js';
import { parseManifestBytes } from '../oci/manifest.js';
import { parseReference, type ImageRef } from '../oci/reference.js';
import type { Descriptor, ImageConfig, Manifest } from '../oci/types.js';
import { TarIndex } from '../archive/tarindex.js';
import { decompressor } from '../archive/compress.js';
import { TarParser } from '../archive/tar/reader.js';
import { DEFAULT_MAX_LAYER_BYTES } from '../archive/unpack.js';
import { reserveOf, spaceOf } from '../archive/space.js';
import { assertImageConfig, type ImageStore } from './images.js';
import { checkLayerCount, type LayerEvent, type LayerSource, type LayerStore } from './layers.js';
import { hostPlatform, platformMatches } from './platform.js';

const MAX_JSON = 4 << 20;

export interface LoadContext {
  images: ImageStore;
  layers: LayerStore;
  tmpDir: string;
}

export type LoadEvent = LayerEvent & { image: number };

export interface LoadOptions {
  onEvent?: (e: LoadEvent) => void;
  warn?: (msg: string) => void;
  maxLayerBytes?: number;
  concurrency?: number;
  signal?: AbortSignal;
}

export interface LoadedImage {
  id: Digest;
  tags: string[];
  /** previous image of a tag that moved (Docker prints "The image … already exists, renaming the old one …") */
  moved: { tag: string; from: string }[];
}

/** One image found in an archive, with how to read each of its layers. */
interface Candidate {
  configBytes: Buffer;
  config: ImageConfig;
  id: Digest;
  tags: ImageRef[];
  layer: (i: number) => LayerSource;
  manifest?: { bytes: Buffer; digest: Digest; mediaType: string; descriptors: Descriptor[] };
}

export async function loadImages(ctx: LoadContext, input: { path?: string; stream?: Readable }, opts: LoadOptions = {}): Promise<LoadedImage[]> {
  let spooled: string | undefined;
  const spoolOpts = (where: string) => ({ maxEntryBytes: opts.maxLayerBytes ?? DEFAULT_MAX_LAYER_BYTES, where, ...(opts.signal ? { signal: opts.signal } : {}) });
  try {
    let path = input.path;
    if (path) {
      const st = await stat(path).catch((e) => {
        throw invalidArgument('LOAD_NO_INPUT', `open ${path}: no such file or directory`, { cause: e, hint: 'give an archive made by `save` or `docker save`, or an OCI layout directory' });
      });
      if (st.isDirectory()) return await loadCandidates(ctx, await ociLayoutDir(path), opts);
      // a pipe or a device (`-i /dev/stdin`, `-i <(…)`) is read like stdin; a compressed file is decompressed into the spool
      if (!st.isFile() || sniffCompression(await readHead(path)) !== 'none') {
        spooled = await spool(ctx.tmpDir, createReadStream(path, { highWaterMark: 1 << 20 }), spoolOpts(path));
        path = spooled;
      }
    } else if (input.stream) {
      spooled = await spool(ctx.tmpDir, input.stream, spoolOpts('stdin'));
      path = spooled;
    } else {
      throw invalidArgument('LOAD_NO_INPUT', 'requested load from stdin, but stdin is empty', { hint: 'pipe an archive in, or use -i FILE' });
    }
    const st = await stat(path);
    if (st.size === 0) throw invalidArgument('LOAD_EMPTY', 'requested load from stdin, but stdin is empty', { hint: 'pipe an archive in, or use -i FILE' });
    let index: TarIndex;
    try {
      index = await TarIndex.build(path);
    } catch (e) {
      throw wrapArchive(e, input.path ?? 'stdin');
    }
    if (index.has('manifest.json')) return await loadCandidates(ctx, await dockerArchive(index, input.path ?? 'stdin'), opts);
    if (index.has('index.json') && index.has('oci-layout')) return await loadCandidates(ctx, await ociLayout(archiveReader(index), input.path ?? 'stdin'), opts);
    throw invalidArgument('LOAD_UNKNOWN_FORMAT', 'the archive is neither a docker-archive (no manifest.json) nor an OCI layout (no index.json and oci-layout)', {
      where: input.path ?? 'stdin',
      hint: 'give an archive made by `save` / `docker save`, or an OCI image layout',
    });
  } finally {
    if (spooled) await rm(spooled, { force: true });
  }
}

function wrapArchive(e: unknown, where: string): unknown {
  if (e instanceof EngineError && (e.code.startsWith('TAR_') || e.code.startsWith('ARCHIVE_'))) {
    return invalidArgument('LOAD_BAD_ARCHIVE', `the input is not a valid image archive: ${e.message}`, { where, cause: e, hint: 'give an archive made by `save` / `docker save`' });
  }
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return invalidArgument('LOAD_BAD_ARCHIVE', `the input is not a valid image archive: it starts like gzip but does not decompress (${(e as Error).message})`, { where, cause: e, hint: 'give an archive made by `save` / `docker save`' });
  }
  return e;
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(8);
    const { bytesRead } = await fh.read(b, 0, 8, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** What a source may send after its archive's end before it is cut off (bytes, ms). */
const REST_LIMIT = 1 << 20;
const REST_WAIT_MS = 10_000;

/**
 * Copies (and decompresses) a stream into a temporary tar file under the store, reading it
 * as a tar as it passes (docs/RELIABILITY.md item 35):
 *  - what is not a tar archive is refused at its first header (a bad checksum: random
 *    bytes, text), and the copy ends at the end-of-archive marker (/dev/zero is an empty
 *    archive, then zeros without end);
 *  - an entry that declares more than --max-layer-size, or more than the space the spool
 *    may take, is refused at its header, before its bytes are read;
 *  - the spool takes at most half of what is free on the store's file system, minus a
 *    reserve: the layers it holds are unpacked beside it next. A stream of small entries
 *    that never ends stops there.
 */
async function spool(tmpDir: string, src: Readable, opts: { maxEntryBytes: number; where: string; signal?: AbortSignal }): Promise<string> {
  const file = join(tmpDir, `load-${process.pid}-${randomBytes(6).toString('hex')}.tar`);
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  const head: Buffer = first.done ? Buffer.alloc(0) : (first.value as Buffer);
  const c = sniffCompression(head);
  async function* all() {
    if (head.length) yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value as Buffer;
    }
  }
  const { avail, total } = spaceOf(tmpDir);
  const reserve = reserveOf(total);
  const budget = Math.max(0, Math.floor((avail - reserve) / 2));
  const tooLarge = (msg: string) =>
    new EngineError('resource-exhausted', 'LOAD_TOO_LARGE', msg, {
      where: opts.where,
      hint: 'free some space, or load from a file (`load -i FILE`: an uncompressed archive is read in place, not copied)',
    });
  let written = 0;
  const overBudget = () =>
    tooLarge(`the archive is larger than the ${budget} bytes the store can take for it (${avail} bytes were free in ${tmpDir}, half of it kept for unpacking, ${reserve} kept free): an endless stream?`);
  const parser = new TarParser({
    onEntry: (h) => {
      if (h.size > opts.maxEntryBytes) {
        throw new EngineError('resource-exhausted', 'LOAD_ENTRY_TOO_LARGE', `the archive's entry ${JSON.stringify(h.name.slice(0, 200))} declares ${h.size} bytes, more than the ${opts.maxEntryBytes}-byte layer quota`, {
          where: opts.where,
          hint: 'raise the quota with --max-layer-size / LAYERBOX_MAX_LAYER_SIZE if the archive is genuine',
        });
      }
      if (h.size > budget) {
        throw tooLarge(`the archive's entry ${JSON.stringify(h.name.slice(0, 200))} declares ${h.size} bytes, more than the ${budget} bytes the store can take for it (${avail} bytes free in ${tmpDir}, half of it kept for unpacking, ${reserve} kept free)`);
      }
      if (written + h.size > budget) throw overBudget();
    },
    onData: () => {},
    onEnd: () => {},
  });
  const fh = await open(file, 'wx', 0o600);
  try {
    let input: Readable = Readable.from(all());
    if (c !== 'none') {
      const d = decompressor(c);
      pipeStreams(input, d, () => {}); // an error on either side ends the loop below with it
      input = d;
    }
    try {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        throwIfAborted(opts.signal);
        parser.write(chunk); // validates; throws on what is not a tar
        written += chunk.length;
        if (written > budget) throw overBudget();
        await fh.write(chunk, 0, chunk.length);
        if (parser.ended) break; // the rest is padding, or never ends
      }
      if (!parser.ended) parser.end(); // a truncated archive
    } finally {
      input.destroy();
      // What the source still sends (a tar's padding to its record size: Go's archive/tar,
      // and so `docker save`, pads to 10 KiB) is read off: destroying an HTTP request's
      // stream while its client still sends resets the connection (sys/drain.ts).
      if ((await drainRest(it, { limitBytes: REST_LIMIT, waitMs: REST_WAIT_MS, signal: opts.signal })) === 'cut') src.destroy();
    }
    if (parser.entryCount === 0 && written > 0) {
      throw invalidArgument('LOAD_EMPTY_ARCHIVE', 'the input is an empty tar archive (or only zeros): it holds no image', { where: opts.where, hint: 'give an archive made by `save` / `docker save`' });
    }
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(file, { force: true });
    throw wrapArchive(e, opts.where);
  }
  await fh.close();
  return file;
}

// ------------------------------------------------------------------ docker-archive

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function dockerArchive(index: TarIndex, where: string): Promise<Candidate[]> {
  let entries: DockerManifestEntry[];
  try {
    entries = JSON.parse((await index.read('manifest.json', MAX_JSON)).toString('utf8')) as DockerManifestEntry[];
  } catch (e) {
    if (e instanceof EngineError) throw e;
    throw invalidArgument('LOAD_BAD_MANIFEST', `manifest.json in the archive is not valid JSON: ${(e as Error).message}`, { where });
  }
  if (!Array.isArray(entries)) throw invalidArgument('LOAD_BAD_MANIFEST', 'manifest.json in the archive is not a list', { where });
  const out: Candidate[] = [];
  for (const [n, m] of entries.entries()) {
    if (!m || typeof m.Config !== 'string' || !Array.isArray(m.Layers)) {
      throw invalidArgument('LOAD_BAD_MANIFEST', `manifest.json entry ${n} lacks Config or Layers`, { where });
    }
    const configBytes = await index.read(m.Config, MAX_JSON);
    const id = sha256(configBytes);
    const config = assertImageConfig(JSON.parse(configBytes.toString('utf8')), `${where}: ${m.Config}`);
    if (config.rootfs.diff_ids.length !== m.Layers.length) {
      throw dataLoss('LOAD_LAYER_COUNT', `image ${m.Config} lists ${m.Layers.length} layers but its config has ${config.rootfs.diff_ids.length} diff_ids`, { where });
    }
    const tags = (m.RepoTags ?? []).map((t) => parseReference(t).withDefaultTag());
    out.push({
      configBytes,
      config,
      id,
      tags,
      layer: (i) => {
        const name = m.Layers[i]!;
        const e = index.resolve(name);
        const size = e.header.size;
        return {
          where: `${where}: ${name}`,
          compression: 'auto',
          size,
          file: { path: index.path, offset: e.offset, size },
          open: async (signal) => index.stream(name, signal).stream,
        };
      },
    });
  }
  return out;
}

// ------------------------------------------------------------------ OCI layout

interface LayoutReader {
  readBlob(d: Digest, max: number): Promise<Buffer>;
  openBlob(d: Digest, signal?: AbortSignal): Readable;
  /** where a blob lies in a file */
  blobFile(d: Digest): { path: string; offset: number; size: number } | undefined;
  blobSize(d: Digest): Promise<number>;
  readFile(name: string, max: number): Promise<Buffer>;
  where: string;
  /** an OCI layout directory (blobs are files in it) */
  dir?: string;
}

function archiveReader(index: TarIndex): LayoutReader {
  return {
    where: index.path,
    readBlob: (d, max) => index.read(`blobs/sha256/${digestHex(d)}`, max),
    openBlob: (d, signal) => index.stream(`blobs/sha256/${digestHex(d)}`, signal).stream,
    blobSize: async (d) => index.resolve(`blobs/sha256/${digestHex(d)}`).header.size,
    blobFile: (d) => {
      const e = index.resolve(`blobs/sha256/${digestHex(d)}`);
      return { path: index.path, offset: e.offset, size: e.header.size };
    },
    readFile: (name, max) => index.read(name, max),
  };
}

async function ociLayoutDir(dir: string): Promise<Candidate[]> {
  const r: LayoutReader = {
    where: dir,
    dir,
    readBlob: async (d, max) => {
      const p = join(dir, 'blobs', 'sha256', digestHex(d));
      const st = await stat(p).catch(() => {
        throw dataLoss('LOAD_BLOB_MISSING', `the OCI layout has no blob ${d}`, { where: dir });
      });
      if (st.size > max) throw invalidArgument('LOAD_BLOB_TOO_LARGE', `blob ${d} is ${st.size} bytes, over the ${max}-byte limit`, { where: dir });
      return readFile(p);
    },
    openBlob: (d, signal) => createReadStream(join(dir, 'blobs', 'sha256', digestHex(d)), { highWaterMark: 1 << 17, signal }),
    blobSize: async (d) => (await stat(join(dir, 'blobs', 'sha256', digestHex(d)))).size,
    blobFile: () => undefined, // set per layer from the descriptor's size (ociManifest)
    readFile: async (name, max) => {
      const p = join(dir, name);
      const st = await stat(p).catch(() => {
        throw invalidArgument('LOAD_NOT_OCI', `${name} is missing: ${dir} is not an OCI image layout`, { where: dir, hint: 'give an OCI layout directory (oci-layout, index.json, blobs/)' });
      });
      if (st.size > max) throw invalidArgument('LOAD_BLOB_TOO_LARGE', `${name} is over the ${max}-byte limit`, { where: dir });
      return readFile(p);
    },
  };
  return ociLayout(r, dir);
}

async function ociLayout(r: LayoutReader, where: string): Promise<Candidate[]> {
  const layout = JSON.parse((await r.readFile('oci-layout', 4096)).toString('utf8')) as { imageLayoutVersion?: string };
  if (layout.imageLayoutVersion !== '1.0.0') {
    throw invalidArgument('LOAD_OCI_VERSION', `unsupported OCI layout version ${JSON.stringify(layout.imageLayoutVersion)}`, { where });
  }
  const idx = parseManifestBytes(await r.readFile('index.json', MAX_JSON), MediaType.OciIndex, `${where}: index.json`);
  if (idx.kind !== 'index') throw invalidArgument('LOAD_BAD_INDEX', 'index.json is not an image index', { where });
  const out: Candidate[] = [];
  for (const d of idx.index.manifests) {
    const names = refNames(d);
    const c = await ociManifest(r, d, where, names, 0);
    if (c) out.push(c);
  }
  return out;
}

function refNames(d: Descriptor): ImageRef[] {
  const a = d.annotations ?? {};
  const full = a['io.containerd.image.name'];
  if (full) {
    try {
      return [parseReference(full).withDefaultTag()];
    } catch {
      /* ignore a bad annotation */
    }
  }
  const ref = a['org.opencontainers.image.ref.name'];
  // a bare tag ("latest") names no repository: the image is loaded untagged, as Docker does
  if (ref && /[/:]/.test(ref)) {
    try {
      return [parseReference(ref).withDefaultTag()];
    } catch {
      /* not a full reference */
    }
  }
  return [];
}

async function verifiedBlob(r: LayoutReader, d: Descriptor, max: number, where: string): Promise<Buffer> {
  const digest = parseDigest(d.digest, where);
  const b = await r.readBlob(digest, max);
  if (b.length !== d.size) throw dataLoss('LOAD_BLOB_SIZE', `blob ${d.digest} has ${b.length} bytes, its descriptor says ${d.size}`, { where });
  if (sha256(b) !== digest) throw dataLoss('LOAD_BLOB_DIGEST', `blob ${d.digest} does not match its digest (it hashes to ${sha256(b)})`, { where });
  return b;
}

async function ociManifest(r: LayoutReader, d: Descriptor, where: string, names: ImageRef[], depth: number): Promise<Candidate | undefined> {
  if (depth > 4) throw invalidArgument('LOAD_INDEX_DEPTH', 'nested image indexes are too deep', { where });
  const bytes = await verifiedBlob(r, d, MAX_JSON, where);
  const p = parseManifestBytes(bytes, d.mediaType, `${where}: ${d.digest}`);
  if (p.kind === 'index') {
    const want = hostPlatform();
    const pick = p.index.manifests.find((m) => !isIndexType(m.mediaType) && platformMatches(m.platform, want)) ?? (p.index.manifests.length === 1 ? p.index.manifests[0] : undefined);
    if (!pick) return undefined;
    return ociManifest(r, pick, where, names, depth + 1);
  }
  const m: Manifest = p.manifest;
  const configBytes = await verifiedBlob(r, m.config, MAX_JSON, where);
  const config = assertImageConfig(JSON.parse(configBytes.toString('utf8')), `${where}: ${m.config.digest}`);
  if (config.rootfs.diff_ids.length !== m.layers.length) {
    throw dataLoss('LOAD_LAYER_COUNT', `manifest ${d.digest} lists ${m.layers.length} layers but its config has ${config.rootfs.diff_ids.length} diff_ids`, { where });
  }
  for (const l of m.layers) {
    if (layerCompression(l.mediaType) === undefined) {
      throw invalidArgument('LOAD_LAYER_TYPE', `unsupported layer media type ${l.mediaType}`, { where, hint: 'only OCI and Docker tar layers (plain, gzip, zstd) can be loaded' });
    }
  }
  return {
    configBytes,
    config,
    id: sha256(configBytes),
    tags: names,
    manifest: { bytes, digest: parseDigest(d.digest), mediaType: p.mediaType, descriptors: m.layers },
    layer: (i) => {
      const l = m.layers[i]!;
      const digest = parseDigest(l.digest, where);
      return {
        where: `${where}: blob ${l.digest}`,
        compression: layerCompression(l.mediaType) ?? 'auto',
        digest,
        size: l.size,
        mediaType: l.mediaType,
        open: async (signal) => r.openBlob(digest, signal),
        file: r.blobFile(digest) ?? (r.dir ? { path: join(r.dir, 'blobs', 'sha256', digestHex(digest)), offset: 0, size: l.size } : undefined),
      };
    },
  };
}

// ------------------------------------------------------------------ common

async function loadCandidates(ctx: LoadContext, cands: Candidate[], opts: LoadOptions): Promise<LoadedImage[]> {
  if (cands.length === 0) throw invalidArgument('LOAD_NO_IMAGES', 'the archive holds no image for this platform', { hint: 'check the archive with `tar -tf`' });
  // every image of the archive is checked before any is stored
  const label = (c: Candidate) => (c.tags.length ? `image ${c.tags[0]!.familiarString()}` : `image ${c.id}`);
  for (const c of cands) checkLayerCount(c.config.rootfs.diff_ids.length, label(c));
  const out: LoadedImage[] = [];
  for (const [n, c] of cands.entries()) {
    const diffIds = c.config.rootfs.diff_ids.map((d) => parseDigest(d));
    const lease = await ctx.layers.ensure(diffIds, c.layer, {
      where: label(c),
      concurrency: opts.concurrency,
      maxLayerBytes: opts.maxLayerBytes,
      warn: opts.warn,
      signal: opts.signal,
      onEvent: (e) => opts.onEvent?.({ ...e, image: n }),
    });
    try {
      await ctx.images.content.put(c.configBytes, c.id);
      if (c.manifest) {
        await ctx.images.content.put(c.manifest.bytes, c.manifest.digest);
        // remember which compressed blobs hold which diffIDs: saves re-compressing on push
        c.manifest.descriptors.forEach((l, i) => ctx.images.addBlobSource(diffIds[i]!, l.digest, l.mediaType, l.size));
      }
      const { previous } = ctx.images.add(c.id, c.config, lease.chainIds, { tags: c.tags });
      out.push({ id: c.id, tags: c.tags.map((t) => t.familiarString()), moved: [...previous].map(([tag, from]) => ({ tag, from })) });
    } finally {
      lease.release();
    }
  }
  return out;
}

/** An image of an archive or OCI layout, as read without loading it. */
export interface ArchiveImage {
  id: Digest;
  config: ImageConfig;
  tags: string[];
  /** how to read layer i (its blob, and where the blob lies in a file) */
  layer(i: number): LayerSource;
}

export type ArchiveFormat = 'docker-archive' | 'oci' | 'oci-archive';

/**
 * The images of a docker-archive, OCI layout directory or oci-archive, without loading
 * them (`image analyze docker-archive:PATH`). A compressed archive is spooled to `tmpDir`
 * first, as `load` does; `close` removes the spool.
 */
export async function readArchive(path: string, format: ArchiveFormat, tmpDir: string, opts: { signal?: AbortSignal } = {}): Promise<{ images: ArchiveImage[]; close(): Promise<void> }> {
  const st = await stat(path).catch((e) => {
    throw invalidArgument('ARCHIVE_NO_INPUT', `open ${path}: no such file or directory`, { cause: e });
  });
  const wrap = (cands: Candidate[]): ArchiveImage[] => cands.map((c) => ({ id: c.id, config: c.config, tags: c.tags.map((t) => t.familiarString()), layer: c.layer }));
  if (format === 'oci') {
    if (!st.isDirectory()) throw invalidArgument('ARCHIVE_NOT_OCI_DIR', `${path} is not a directory: oci: names an OCI image layout directory`, { hint: 'use oci-archive: for a tarball' });
    return { images: wrap(await ociLayoutDir(path)), close: async () => {} };
  }
  if (st.isDirectory()) throw invalidArgument('ARCHIVE_IS_DIR', `${path} is a directory, not a ${format} tarball`, { hint: 'use oci:PATH for an OCI layout directory' });
  let spooled: string | undefined;
  let file = path;
  if (sniffCompression(await readHead(path)) !== 'none') {
    spooled = await spool(tmpDir, createReadStream(path), { maxEntryBytes: DEFAULT_MAX_LAYER_BYTES, where: path, ...(opts.signal ? { signal: opts.signal } : {}) });
    file = spooled;
  }
  const close = async () => {
    if (spooled) await rm(spooled, { force: true });
  };
  try {
    let index: TarIndex;
    try {
      index = await TarIndex.build(file);
    } catch (e) {
      throw wrapArchive(e, path);
    }
    if (format === 'docker-archive') {
      if (!index.has('manifest.json')) throw invalidArgument('ARCHIVE_NOT_DOCKER', `${path} is not a docker-archive: it has no manifest.json`, { hint: 'use oci-archive: for an OCI tarball' });
      return { images: wrap(await dockerArchive(index, path)), close };
    }
    if (!index.has('index.json') || !index.has('oci-layout')) throw invalidArgument('ARCHIVE_NOT_OCI', `${path} is not an oci-archive: it has no index.json and oci-layout`, { hint: 'use docker-archive: for a docker save archive' });
    return { images: wrap(await ociLayout(archiveReader(index), path)), close };
  } catch (e) {
    await close();
    throw e;
  }
}

export const _test = { spool };
