/**
 * `pull`: resolve the reference to a manifest (an index picks the platform), fetch the
 * config, then every missing layer in one streaming pass each — HTTP body → size and
 * digest check → gunzip/zstd → diffID check → applied into its snapshot — up to
 * `concurrency` at a time. A layer whose chainID is stored is "Already exists" and is not
 * fetched; a layer another process is fetching is waited for, not fetched twice. The
 * image is recorded only when every layer is committed.
 */
import { EngineError, invalidArgument } from '../errors/index.js';
import { parseDigest, shortId, type Digest } from '../oci/digest.js';
import { MediaType, isIndexType, layerCompression } from '../oci/mediatypes.js';
import { parseReference, type ImageRef } from '../oci/reference.js';
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from '../oci/types.js';
import type { RegistryClient } from '../registry/index.js';
import { assertImageConfig, type ImageStore } from './images.js';
import type { LayerStore, LayerEvent } from './layers.js';
import { hostPlatform, platformMatches, platformString } from './platform.js';

export type PullEvent =
  | { type: 'resolving'; ref: string }
  | { type: 'pulling-from'; tag: string; repository: string }
  | { type: 'layer'; id: string; status: 'Pulling fs layer' | 'Waiting' | 'Already exists' | 'Verifying Checksum' | 'Download complete' | 'Pull complete' }
  | { type: 'layer-progress'; id: string; status: 'Downloading' | 'Extracting'; current: number; total: number }
  | { type: 'digest'; digest: Digest }
  | { type: 'status'; message: string };

export interface PullOptions {
  platform?: Platform;
  concurrency?: number;
  maxLayerBytes?: number;
  onEvent?: (e: PullEvent) => void;
  warn?: (m: string) => void;
  signal?: AbortSignal;
}

export interface PullResult {
  id: Digest;
  ref: ImageRef;
  digest: Digest;
  /** true when nothing new was stored */
  upToDate: boolean;
}

export interface PullContext {
  images: ImageStore;
  layers: LayerStore;
  client(domain: string): RegistryClient;
}

const MAX_INDEX_DEPTH = 4;

/** Picks the manifest for a platform from an index (Docker's matcher: os, arch, variant). */
export function pickManifest(index: Index, want: Platform): Descriptor | undefined {
  const candidates = index.manifests.filter((m) => !isIndexType(m.mediaType) && platformMatches(m.platform, want));
  // prefer an exact variant match
  return candidates.find((m) => (m.platform?.variant ?? '') === (want.variant ?? '')) ?? candidates[0];
}

export async function pullImage(ctx: PullContext, name: string, opts: PullOptions = {}): Promise<PullResult> {
  let ref = parseReference(name);
  if (!ref.tag && !ref.digest) ref = ref.withDefaultTag();
  const want = opts.platform ?? hostPlatform();
  const client = ctx.client(ref.domain);
  const repo = ref.path;
  const emit = opts.onEvent ?? (() => {});
  const top = await client.getManifest(repo, ref.digest ?? ref.tag!, { signal: opts.signal });
  // once the registry has the manifest, as dockerd says it (a mirror that fails before has said nothing)
  emit({ type: 'pulling-from', tag: ref.digest ?? ref.tag!, repository: ref.path });
  let manifestResult = top;
  for (let depth = 0; isIndexType(manifestResult.mediaType) || 'manifests' in manifestResult.parsed; depth++) {
    if (depth >= MAX_INDEX_DEPTH) throw invalidArgument('PULL_INDEX_DEPTH', 'image indexes nest too deeply', { where: name });
    const pick = pickManifest(manifestResult.parsed as Index, want);
    if (!pick) {
      const have = (manifestResult.parsed as Index).manifests.map((m) => (m.platform ? platformString(m.platform) : '?')).join(', ');
      throw new EngineError('not-found', 'PLATFORM_NOT_FOUND', `no matching manifest for ${platformString(want)} in the manifest list entries`, {
        where: ref.toString(),
        hint: `the image is available for: ${have || 'no platform'}; choose one with --platform`,
      });
    }
    manifestResult = await client.getManifest(repo, pick.digest, { signal: opts.signal });
  }
  const manifest = manifestResult.parsed as Manifest;
  const where = `${ref.domain}/${repo}`;
  const cfg = await client.getConfig(repo, manifest.config, { signal: opts.signal });
  const config: ImageConfig = assertImageConfig(cfg.parsed, `${where} config ${manifest.config.digest}`);
  const id = parseDigest(manifest.config.digest);
  if (opts.platform && (config.os !== want.os || config.architecture !== want.architecture)) {
    throw new EngineError('not-found', 'PLATFORM_MISMATCH', `image with reference ${ref.familiarString()} was found but does not match the specified platform: wanted ${platformString(want)}, actual: ${config.os}/${config.architecture}`);
  }
  const diffIds = config.rootfs.diff_ids.map((d) => parseDigest(d, where));
  if (diffIds.length !== manifest.layers.length) {
    throw new EngineError('data-loss', 'PULL_LAYER_COUNT', `manifest ${manifestResult.digest} has ${manifest.layers.length} layers but its config lists ${diffIds.length} diff_ids`, { where });
  }
  for (const l of manifest.layers) {
    if (layerCompression(l.mediaType) === undefined) {
      throw new EngineError('unsupported', 'PULL_LAYER_TYPE', `unsupported layer media type ${l.mediaType} in ${manifestResult.digest}`, { where, hint: 'only tar layers (plain, gzip, zstd) can be pulled' });
    }
    if (l.urls?.length && l.mediaType.includes('foreign')) {
      throw new EngineError('unsupported', 'PULL_FOREIGN_LAYER', `layer ${l.digest} is a foreign layer that must be fetched from ${l.urls[0]}; foreign layers are not supported`, { where });
    }
  }
  const existing = ctx.images.get(id);
  const layerId = (i: number) => shortId(manifest.layers[i]!.digest);
  const announced = new Set<number>();
  const onLayer = (e: LayerEvent) => {
    // dockerd: an image whose config is stored is there already; its layers are not mentioned
    if (existing && e.type === 'exists') return;
    const id2 = layerId(e.index);
    switch (e.type) {
      case 'exists':
        emit({ type: 'layer', id: id2, status: 'Already exists' });
        break;
      case 'waiting':
        emit({ type: 'layer', id: id2, status: 'Waiting' });
        break;
      case 'start':
        if (!announced.has(e.index)) emit({ type: 'layer', id: id2, status: 'Pulling fs layer' });
        announced.add(e.index);
        break;
      case 'progress':
        emit({ type: 'layer-progress', id: id2, status: 'Downloading', current: e.current, total: manifest.layers[e.index]!.size });
        break;
      case 'done':
        emit({ type: 'layer', id: id2, status: 'Verifying Checksum' });
        emit({ type: 'layer', id: id2, status: 'Download complete' });
        // unpacked while it streamed: the bar is full at once (dockerd's Extracting always has a bar)
        emit({ type: 'layer-progress', id: id2, status: 'Extracting', current: manifest.layers[e.index]!.size, total: manifest.layers[e.index]!.size });
        emit({ type: 'layer', id: id2, status: 'Pull complete' });
        break;
    }
  };
  const lease = await ctx.layers.ensure(
    diffIds,
    (i) => {
      const desc = manifest.layers[i]!;
      const digest = parseDigest(desc.digest, where);
      return {
        where: `${where} layer ${digest}`,
        compression: layerCompression(desc.mediaType) ?? 'auto',
        digest,
        size: desc.size,
        mediaType: desc.mediaType,
        // the registry client verifies size and digest as the bytes pass, and resumes
        // interrupted downloads with Range requests
        verifiedBySource: true,
        open: async (signal) => client.openBlob(repo, desc, { signal }),
        onUnpacked: () => ctx.images.addBlobSource(diffIds[i]!, digest, desc.mediaType, desc.size, ref.domain, repo),
      };
    },
    { concurrency: opts.concurrency ?? 3, maxLayerBytes: opts.maxLayerBytes, onEvent: onLayer, warn: opts.warn, signal: opts.signal, where: ref.familiarString() },
  );
  try {
    await ctx.images.content.put(cfg.bytes, id);
    await ctx.images.content.put(manifestResult.bytes, manifestResult.digest);
    if (top !== manifestResult) await ctx.images.content.put(top.bytes, top.digest);
    // layers already stored under another source are also in this repository now
    manifest.layers.forEach((l, i) => ctx.images.addBlobSource(diffIds[i]!, l.digest, l.mediaType, l.size, ref.domain, repo));
    const hadTag = ref.tag ? ctx.images.get(id)?.tags.includes(ref.toString()) : true;
    ctx.images.add(id, config, lease.chainIds, {
      tags: ref.tag && !ref.digest ? [ref] : [],
      repoDigests: [{ repo: ref.name, digest: top.digest, manifest: manifestResult.digest }],
    });
    emit({ type: 'digest', digest: top.digest });
    const upToDate = !!existing && !!hadTag;
    return { id, ref, digest: top.digest, upToDate };
  } finally {
    lease.release();
  }
}

export { MediaType };
