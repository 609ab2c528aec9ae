/**
 * `push`: every layer is checked on the registry first ("Layer already exists"), mounted
 * from another repository of the same registry when it is known to be there ("Mounted
 * from …"), and otherwise compressed now — gzip by default, zstd when asked — straight
 * from the snapshot (tar-split) into a chunked upload, hashed on the way. The compressed
 * digest is remembered, so the next push (or a pull of the same image) finds the same blobs.
 */
import { Readable } from 'node:stream';
import { EngineError, notFound } from '../errors/index.js';
import { sha256, type Digest } from '../oci/digest.js';
import { MediaType, layerCompression, type Compression } from '../oci/mediatypes.js';
import { parseReference, type ImageRef } from '../oci/reference.js';
import type { Descriptor, Manifest } from '../oci/types.js';
import type { RegistryClient } from '../registry/index.js';
import { compressor } from '../archive/compress.js';
import type { ImageStore, ImageRecord } from './images.js';

export type PushEvent =
  | { type: 'repository'; name: string }
  | { type: 'layer'; id: string; status: 'Preparing' | 'Waiting' | 'Layer already exists' | 'Pushed' | `Mounted from ${string}` }
  | { type: 'layer-progress'; id: string; status: 'Pushing'; current: number; total: number }
  | { type: 'pushed'; tag: string; digest: Digest; size: number };

export interface PushOptions {
  compression?: Exclude<Compression, 'none'>;
  concurrency?: number;
  onEvent?: (e: PushEvent) => void;
  signal?: AbortSignal;
}

export interface PushContext {
  images: ImageStore;
  client(domain: string): RegistryClient;
}

const wantsType = (c: Exclude<Compression, 'none'>, mt: string) => layerCompression(mt) === c;

export async function pushImage(ctx: PushContext, name: string, opts: PushOptions = {}): Promise<{ digest: Digest; size: number; ref: ImageRef }> {
  let ref = parseReference(name);
  if (ref.digest) throw new EngineError('invalid-argument', 'PUSH_BY_DIGEST', 'cannot push a digest reference', { hint: 'push a tag: NAME[:TAG]' });
  ref = ref.withDefaultTag();
  const { image } = ctx.images.resolve(ref.toString());
  if (!image.tags.includes(ref.toString())) {
    throw notFound('PUSH_NO_TAG', `An image does not exist locally with the tag: ${ref.familiarName}`, { hint: `tag it first: layerbox tag IMAGE ${ref.familiarString()}` });
  }
  const emit = opts.onEvent ?? (() => {});
  const client = ctx.client(ref.domain);
  const repo = ref.path;
  const comp = opts.compression ?? 'gzip';
  emit({ type: 'repository', name: `${ref.domain}/${repo}` });
  const config = await ctx.images.configBytes(image.id);

  // a manifest this image was pulled or pushed with, whose blobs the registry already has:
  // pushing those exact bytes keeps the digest everybody else knows
  const reused = await reusableManifest(ctx, client, image, ref, repo, opts);
  const layersTopFirst = image.chain.map((c, i) => ({ c, i })).reverse();
  for (const { c } of layersTopFirst) emit({ type: 'layer', id: short(ctx.images.layers.get(c)!.diffId), status: 'Preparing' });

  let descriptors: Descriptor[];
  let manifestBytes: Buffer;
  let mediaType: string;
  if (reused) {
    for (const { c, i } of layersTopFirst) emit({ type: 'layer', id: short(ctx.images.layers.get(c)!.diffId), status: reused.status[i]! });
    manifestBytes = reused.bytes;
    mediaType = reused.mediaType;
  } else {
    descriptors = new Array(image.chain.length);
    let next = 0;
    const worker = async () => {
      while (next < layersTopFirst.length) {
        const { c, i } = layersTopFirst[next++]!;
        descriptors[i] = await pushLayer(ctx, client, ref, repo, c, comp, emit, opts.signal);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 3, layersTopFirst.length)) }, worker));
    const docker = comp === 'gzip';
    const cfgType = docker ? MediaType.DockerConfig : MediaType.OciConfig;
    const m: Manifest = {
      schemaVersion: 2,
      mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
      config: { mediaType: cfgType, size: config.length, digest: image.id },
      layers: descriptors,
    };
    manifestBytes = Buffer.from(JSON.stringify(m, null, 3));
    mediaType = m.mediaType!;
  }
  if ((await client.blobExists(repo, image.id, { signal: opts.signal })) !== config.length) {
    await client.uploadBlob(repo, [config], { digest: image.id, size: config.length, signal: opts.signal });
  }
  const digest = await client.putManifest(repo, ref.tag!, mediaType, manifestBytes, { signal: opts.signal });
  if (digest !== sha256(manifestBytes)) throw new EngineError('data-loss', 'PUSH_DIGEST', `the registry answered digest ${digest} for a manifest that hashes to ${sha256(manifestBytes)}`);
  await ctx.images.content.put(manifestBytes, digest);
  ctx.images.add(image.id, await ctx.images.config(image.id), image.chain, { repoDigests: [{ repo: ref.name, digest, manifest: digest }] });
  emit({ type: 'pushed', tag: ref.tag!, digest, size: manifestBytes.length });
  return { digest, size: manifestBytes.length, ref };
}

function short(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}

async function pushLayer(
  ctx: PushContext,
  client: RegistryClient,
  ref: ImageRef,
  repo: string,
  chainId: Digest,
  comp: Exclude<Compression, 'none'>,
  emit: (e: PushEvent) => void,
  signal?: AbortSignal,
): Promise<Descriptor> {
  const layer = ctx.images.layers.get(chainId)!;
  const id = short(layer.diffId);
  const known = ctx.images.blobSources(layer.diffId).filter((s) => wantsType(comp, s.mediaType));
  // 1. already in the target repository?
  const tried = new Set<string>();
  for (const s of [...known].sort((a, b) => score(b, ref, repo) - score(a, ref, repo))) {
    if (tried.has(s.digest)) continue;
    tried.add(s.digest);
    const size = await client.blobExists(repo, s.digest, { signal });
    if (size === s.size) {
      emit({ type: 'layer', id, status: 'Layer already exists' });
      ctx.images.addBlobSource(layer.diffId, s.digest, s.mediaType, s.size, ref.domain, repo);
      return { mediaType: s.mediaType, size: s.size, digest: s.digest };
    }
  }
  // 2. in another repository of the same registry: cross-repository mount
  for (const s of known.filter((x) => x.registry === ref.domain && x.repository && x.repository !== repo)) {
    const m = await client.mountBlob(repo, s.digest, s.repository, { signal });
    if (m.mounted) {
      emit({ type: 'layer', id, status: `Mounted from ${s.repository}` });
      ctx.images.addBlobSource(layer.diffId, s.digest, s.mediaType, s.size, ref.domain, repo);
      return { mediaType: s.mediaType, size: s.size, digest: s.digest };
    }
  }
  // 3. compress now, from the snapshot, straight into the upload
  const mediaType = comp === 'gzip' ? MediaType.DockerLayerGzip : MediaType.OciLayerZstd;
  let sent = 0;
  const tar = Readable.from(ctx.images.layers.tar(chainId, { signal }));
  tar.on('data', (c: Buffer) => {
    sent += c.length;
    emit({ type: 'layer-progress', id, status: 'Pushing', current: sent, total: layer.tarSize });
  });
  const compressed = tar.pipe(compressor(comp));
  tar.on('error', (e) => compressed.destroy(e));
  const r = await client.uploadBlob(repo, compressed as AsyncIterable<Uint8Array>, { signal });
  emit({ type: 'layer', id, status: 'Pushed' });
  ctx.images.addBlobSource(layer.diffId, r.digest, mediaType, r.size, ref.domain, repo);
  return { mediaType, size: r.size, digest: r.digest };
}

function score(s: { registry: string; repository: string }, ref: ImageRef, repo: string): number {
  return (s.registry === ref.domain ? 2 : 0) + (s.repository === repo ? 1 : 0);
}

async function reusableManifest(
  ctx: PushContext,
  client: RegistryClient,
  image: ImageRecord,
  ref: ImageRef,
  repo: string,
  opts: PushOptions,
): Promise<{ bytes: Buffer; mediaType: string; status: ('Layer already exists' | `Mounted from ${string}`)[] } | undefined> {
  for (const rd of image.repoDigests) {
    let bytes: Buffer;
    try {
      bytes = await ctx.images.content.readBytes(rd.digest, 4 << 20);
    } catch {
      continue;
    }
    let m: Manifest;
    try {
      m = JSON.parse(bytes.toString('utf8')) as Manifest;
    } catch {
      continue;
    }
    if (!m.layers || !m.config || m.config.digest !== image.id) continue; // an index, or another image
    if (opts.compression && !m.layers.every((l) => wantsType(opts.compression!, l.mediaType))) continue;
    let ok = true;
    const status: ('Layer already exists' | `Mounted from ${string}`)[] = [];
    for (const l of m.layers) {
      if ((await client.blobExists(repo, l.digest, { signal: opts.signal })) === l.size) {
        status.push('Layer already exists');
        continue;
      }
      let mounted = false;
      let fromPath = '';
      try {
        const from = parseReference(rd.repo);
        fromPath = from.path;
        if (from.domain === ref.domain && from.path !== repo) mounted = (await client.mountBlob(repo, l.digest, from.path, { signal: opts.signal })).mounted;
      } catch {
        mounted = false;
      }
      if (!mounted) {
        ok = false;
        break;
      }
      status.push(`Mounted from ${fromPath}`);
    }
    if (ok) return { bytes, mediaType: m.mediaType ?? MediaType.OciManifest, status };
  }
  return undefined;
}
