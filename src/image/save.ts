/**
 * `save`: images out as a docker-archive (Docker 20.10's legacy layout, what `docker load`
 * reads), an OCI image layout directory, or an oci-archive. Layer tars are regenerated
 * from the snapshots (tar-split) and verified against their diffIDs while they stream;
 * layers shared by several images are written once.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { digestHex, sha256, type Digest } from '../oci/digest.js';
import { MediaType } from '../oci/mediatypes.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../oci/types.js';
import type { ImageRef } from '../oci/reference.js';
import { encodeHeader, paddingFor, END_OF_ARCHIVE } from '../archive/tar/writer.js';
import type { TarHeader } from '../archive/tar/header.js';
import { fsyncDir, tempName } from '../sys/fsutil.js';
import { dockerContainerConfig } from './inspect.js';
import type { ImageRecord, ImageStore } from './images.js';

export type SaveFormat = 'docker-archive' | 'oci-archive' | 'oci-dir';

export interface SaveItem {
  image: ImageRecord;
  /** the names the user asked for (tags to record); empty when saved by ID */
  refs: ImageRef[];
}

export interface SaveOptions {
  format: SaveFormat;
  signal?: AbortSignal;
  onLayer?: (diffId: Digest, bytes: number) => void;
}

/** Sink for archive entries: a tar stream or a directory. */
interface Sink {
  file(name: string, data: Buffer, mtime?: number): Promise<void>;
  dir(name: string, mtime?: number): Promise<void>;
  stream(name: string, size: number, src: AsyncIterable<Buffer>, mtime?: number): Promise<void>;
  close(): Promise<void>;
}

const hdr = (name: string, type: TarHeader['type'], size: number, mtime: number, mode: number): TarHeader => ({
  name,
  type,
  mode,
  uid: 0,
  gid: 0,
  size,
  mtime,
  linkname: '',
  uname: '',
  gname: '',
  devmajor: 0,
  devminor: 0,
  xattrs: undefined,
});

async function write(out: Writable, b: Buffer): Promise<void> {
  if (b.length === 0) return;
  if (!out.write(b)) await once(out, 'drain');
}

function tarSink(out: Writable): Sink {
  return {
    async file(name, data, mtime = 0) {
      await write(out, encodeHeader(hdr(name, 'file', data.length, mtime, 0o644)));
      await write(out, data);
      await write(out, paddingFor(data.length));
    },
    async dir(name, mtime = 0) {
      await write(out, encodeHeader(hdr(name, 'dir', 0, mtime, 0o755)));
    },
    async stream(name, size, src, mtime = 0) {
      await write(out, encodeHeader(hdr(name, 'file', size, mtime, 0o644)));
      let n = 0;
      for await (const c of src) {
        n += c.length;
        await write(out, c);
      }
      if (n !== size) throw new Error(`internal: ${name} produced ${n} bytes, expected ${size}`);
      await write(out, paddingFor(size));
    },
    async close() {
      await write(out, END_OF_ARCHIVE);
      // pad to a 10 KiB record like tar(1) and Go's archive/tar? Not needed: two zero blocks end it.
    },
  };
}

function dirSink(root: string): Sink {
  const atomic = async (name: string, fill: (fh: Awaited<ReturnType<typeof open>>) => Promise<void>) => {
    const target = join(root, name);
    await mkdir(dirname(target), { recursive: true });
    const tmp = tempName(target);
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fill(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  };
  return {
    async file(name, data) {
      await atomic(name, async (fh) => {
        await fh.writeFile(data);
      });
    },
    async dir(name) {
      await mkdir(join(root, name), { recursive: true });
    },
    async stream(name, _size, src) {
      await atomic(name, async (fh) => {
        for await (const c of src) await fh.write(c);
      });
    },
    async close() {
      await fsyncDir(root);
      await fsyncDir(join(root, 'blobs', 'sha256')).catch(() => {});
    },
  };
}

export async function saveImages(store: ImageStore, items: SaveItem[], out: { path?: string; stream?: Writable }, opts: SaveOptions): Promise<void> {
  if (opts.format === 'oci-dir') {
    if (!out.path) throw new Error('oci-dir needs an output directory (-o)');
    await mkdir(out.path, { recursive: true });
    const sink = dirSink(out.path);
    await writeOci(store, items, sink, opts);
    await sink.close();
    return;
  }
  // tar formats: to a file (atomically) or to a stream
  let target: Writable;
  let tmp: string | undefined;
  if (out.path) {
    tmp = tempName(out.path);
    target = createWriteStream(tmp, { mode: 0o600 });
  } else target = out.stream!;
  try {
    const sink = tarSink(target);
    if (opts.format === 'docker-archive') await writeDocker(store, items, sink, opts);
    else await writeOci(store, items, sink, opts);
    await sink.close();
    if (tmp) {
      target.end();
      await once(target, 'close');
      const fh = await open(tmp, 'r+');
      await fh.sync();
      await fh.close();
      await rename(tmp, out.path!);
      await fsyncDir(dirname(out.path!));
    }
  } catch (e) {
    if (tmp) {
      target.destroy();
      await rm(tmp, { force: true });
    }
    throw e;
  }
}

function layerTar(store: ImageStore, chainId: Digest, opts: SaveOptions): AsyncIterable<Buffer> {
  const l = store.layers.get(chainId)!;
  const inner = store.layers.tar(chainId, { signal: opts.signal });
  return (async function* () {
    let n = 0;
    for await (const c of inner) {
      n += c.length;
      yield c;
    }
    opts.onLayer?.(l.diffId, n);
  })();
}

async function writeDocker(store: ImageStore, items: SaveItem[], sink: Sink, opts: SaveOptions): Promise<void> {
  const written = new Set<string>();
  const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const it of items) {
    const cfgBytes = await store.configBytes(it.image.id);
    const cfg = JSON.parse(cfgBytes.toString('utf8')) as ImageConfig;
    const layerPaths: string[] = [];
    let parentV1: string | undefined;
    for (const [i, c] of it.image.chain.entries()) {
      const v1 = digestHex(c); // chainIDs are unique per stack position: good v1 directory names
      const l = store.layers.get(c)!;
      if (!written.has(v1)) {
        written.add(v1);
        const isTop = i === it.image.chain.length - 1;
        const v1json: Record<string, unknown> = { id: v1, ...(parentV1 ? { parent: parentV1 } : {}) };
        if (isTop) {
          Object.assign(v1json, { created: cfg.created ?? '1970-01-01T00:00:00Z', container_config: dockerContainerConfig(cfg.container_config), config: dockerContainerConfig(cfg.config), architecture: cfg.architecture, os: cfg.os });
        } else {
          Object.assign(v1json, { created: '1970-01-01T00:00:00Z', container_config: dockerContainerConfig(undefined) });
        }
        await sink.dir(v1);
        await sink.file(`${v1}/VERSION`, Buffer.from('1.0'));
        await sink.file(`${v1}/json`, Buffer.from(JSON.stringify(v1json)));
        await sink.stream(`${v1}/layer.tar`, l.tarSize, layerTar(store, c, opts));
      }
      layerPaths.push(`${v1}/layer.tar`);
      parentV1 = v1;
    }
    const cfgName = `${digestHex(it.image.id)}.json`;
    if (!written.has(cfgName)) {
      written.add(cfgName);
      await sink.file(cfgName, cfgBytes);
    }
    const tags = it.refs.filter((r) => !r.digest).map((r) => r.withDefaultTag());
    manifest.push({ Config: cfgName, RepoTags: tags.length ? tags.map((t) => t.familiarString()) : null, Layers: layerPaths });
    for (const t of tags) (repositories[t.familiarName] ??= {})[t.tag!] = parentV1 ?? '';
  }
  await sink.file('manifest.json', Buffer.from(JSON.stringify(manifest)));
  if (Object.keys(repositories).length) await sink.file('repositories', Buffer.from(JSON.stringify(repositories)));
}

/** The OCI manifest for an image with uncompressed layers (layer digest = diffID). */
export async function ociManifestFor(store: ImageStore, image: ImageRecord): Promise<{ manifest: Manifest; bytes: Buffer; digest: Digest; configBytes: Buffer }> {
  const configBytes = await store.configBytes(image.id);
  const layers: Descriptor[] = image.chain.map((c) => {
    const l = store.layers.get(c)!;
    return { mediaType: MediaType.OciLayer, digest: l.diffId, size: l.tarSize };
  });
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: image.id, size: configBytes.length },
    layers,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { manifest, bytes, digest: sha256(bytes), configBytes };
}

async function writeOci(store: ImageStore, items: SaveItem[], sink: Sink, opts: SaveOptions): Promise<void> {
  await sink.file('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  await sink.dir('blobs');
  await sink.dir('blobs/sha256');
  const written = new Set<string>();
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
  for (const it of items) {
    const { bytes, digest, configBytes } = await ociManifestFor(store, it.image);
    const cfg = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    for (const c of it.image.chain) {
      const l = store.layers.get(c)!;
      if (written.has(l.diffId)) continue;
      written.add(l.diffId);
      await sink.stream(`blobs/sha256/${digestHex(l.diffId)}`, l.tarSize, layerTar(store, c, opts));
    }
    for (const [d, b] of [
      [it.image.id, configBytes],
      [digest, bytes],
    ] as const) {
      if (written.has(d)) continue;
      written.add(d);
      await sink.file(`blobs/sha256/${digestHex(d)}`, b);
    }
    const desc = (annotations?: Record<string, string>): Descriptor => ({
      mediaType: MediaType.OciManifest,
      digest,
      size: bytes.length,
      ...(annotations ? { annotations } : {}),
      platform: { architecture: cfg.architecture, os: cfg.os, ...(cfg.variant ? { variant: cfg.variant } : {}) },
    });
    const tags = it.refs.filter((r) => !r.digest).map((r) => r.withDefaultTag());
    if (tags.length === 0) index.manifests.push(desc());
    for (const t of tags) index.manifests.push(desc({ 'io.containerd.image.name': t.toString(), 'org.opencontainers.image.ref.name': t.tag! }));
  }
  await sink.file('index.json', Buffer.from(JSON.stringify(index)));
}
