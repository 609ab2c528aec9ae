/**
 * engine.analysis: what an image's layers hold and what they cost, computed from the
 * stored layers' tar-split records (or an archive's tar headers) without extracting:
 * `analyze` gives `image analyze --json`; `open` gives the whole model an explorer browses
 * (directories, search, previews); `store` the layers every image shares, with the
 * `system df -v` figures; `compare` two images' layers aligned by chainID.
 */
import { existsSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { dataLoss, invalidArgument } from '../errors/index.js';
import { sniffCompression } from '../oci/mediatypes.js';
import type { ImageConfig } from '../oci/types.js';
import { ImageModel, type HistoryStep, type ImageAnalysis, type LayerInfo } from '../image/analyze.js';
import { layerTreeFromFileRange, layerTreeFromStream, layerTreeFromTarSplit, type LayerTree } from '../image/layertree.js';
import { readArchive, type ArchiveFormat } from '../image/load.js';
import { familiarTag } from '../image/inspect.js';
import type { Core } from './core.js';
import type { LayerComparison, StoreView } from './types.js';

/** An opened image: the merged tree and its queries (see image/analyze.ts). */
export type ImageExplorer = ImageModel;

const ARCHIVE = /^(docker-archive|oci-archive|oci):(.+)$/;

/** History steps, and for each layer the step that made it (non-empty steps map to layers in order). */
function historyOf(config: ImageConfig, layers: number): { steps: HistoryStep[]; perLayer: (HistoryStep | undefined)[] } {
  const steps: HistoryStep[] = [];
  const perLayer: (HistoryStep | undefined)[] = Array.from({ length: layers }, () => undefined);
  let i = 0;
  for (const h of config.history ?? []) {
    const step: HistoryStep = { createdBy: h.created_by ?? '', created: h.created ?? null, comment: h.comment ?? '', layer: null };
    if (!h.empty_layer && i < layers) {
      step.layer = i;
      perLayer[i] = step;
      i++;
    }
    steps.push(step);
  }
  return { steps, perLayer };
}

export class Analysis {
  constructor(private readonly core: Core) {}

  /**
   * `image analyze`: sizes, union bytes, wasted bytes, efficiency, per-layer counts and the
   * wasted files of a stored image, or of `docker-archive:PATH`, `oci:PATH` or
   * `oci-archive:PATH` (read in place, not loaded; `PATH:REF` picks one image of several).
   */
  async analyze(name: string, opts: { signal?: AbortSignal } = {}): Promise<ImageAnalysis> {
    return (await this.open(name, opts)).analysis();
  }

  /** The whole analysis of an image, for browsing (tree, search, file previews). */
  async open(name: string, opts: { signal?: AbortSignal } = {}): Promise<ImageExplorer> {
    const m = ARCHIVE.exec(name);
    if (m) return this.openArchive(name, m[1] as ArchiveFormat, m[2]!, opts);
    const img = this.core.resolveImage(name);
    const config = await this.core.images.config(img.id);
    const { steps, perLayer } = historyOf(config, img.chain.length);
    const records = img.chain.map((c) => {
      const r = this.core.layers.get(c);
      if (!r) throw dataLoss('LAYER_MISSING', `layer ${c} of ${name} is not in the store`, { hint: 'run layerbox system check' });
      return r;
    });
    const infos: LayerInfo[] = records.map((r, i) => {
      const blob = this.core.images.blobSources(r.diffId)[0];
      const h = perLayer[i];
      return {
        diffId: r.diffId,
        chainId: r.chainId,
        digest: blob?.digest ?? null,
        compressedBytes: blob?.size ?? null,
        createdBy: h?.createdBy ?? '',
        ...(h?.created ? { created: h.created } : {}),
        comment: h?.comment ?? '',
        tarBytes: r.tarSize,
        storedBytes: r.size,
        fsDir: this.core.snapshots.fsDir(r.snapshot),
      };
    });
    const trees = await Promise.all(
      records.map(async (r, i): Promise<LayerTree> => {
        if (r.tarsplit) return layerTreeFromTarSplit(this.core.content.path(r.tarsplit), i, opts);
        if (r.blob) return layerTreeFromStream(this.core.content.openRead(r.blob, opts), i, opts);
        throw dataLoss('LAYER_NO_TAR', `layer ${r.diffId} has neither tar-split nor blob`, { hint: 'remove the image and load or pull it again' });
      }),
    );
    return new ImageModel(name, img.id, infos, trees, { tags: img.tags.map(familiarTag), history: steps });
  }

  private async openArchive(name: string, format: ArchiveFormat, rest: string, opts: { signal?: AbortSignal }): Promise<ImageExplorer> {
    let path = rest;
    let ref: string | undefined;
    if (!existsSync(rest)) {
      const at = rest.lastIndexOf(':');
      if (at > 0 && existsSync(rest.slice(0, at))) {
        path = rest.slice(0, at);
        ref = rest.slice(at + 1);
      }
    }
    const a = await readArchive(path, format, this.core.tmpDir, opts);
    try {
      let images = a.images;
      if (ref !== undefined) {
        images = images.filter((i) => i.tags.some((t) => t === ref || t.endsWith(':' + ref) || t.split(':')[0] === ref) || i.id === ref || i.id.slice(7).startsWith(ref));
        if (images.length === 0) throw invalidArgument('ARCHIVE_NO_SUCH_IMAGE', `${path} holds no image ${JSON.stringify(ref)}`, { hint: `it holds: ${a.images.map((i) => i.tags[0] ?? i.id).join(', ') || 'nothing'}` });
      }
      if (images.length === 0) throw invalidArgument('ARCHIVE_EMPTY', `${path} holds no image for this platform`);
      if (images.length > 1) {
        throw invalidArgument('ARCHIVE_AMBIGUOUS', `${path} holds ${images.length} images; name one as ${format}:${path}:REF`, { hint: `it holds: ${images.map((i) => i.tags[0] ?? i.id).join(', ')}` });
      }
      const img = images[0]!;
      const diffIds = img.config.rootfs.diff_ids;
      const { steps, perLayer } = historyOf(img.config, diffIds.length);
      const infos: LayerInfo[] = [];
      const trees: LayerTree[] = [];
      for (let i = 0; i < diffIds.length; i++) {
        const src = img.layer(i);
        const h = perLayer[i];
        let tree: LayerTree | undefined;
        if (src.file && (src.compression === 'none' || src.compression === 'auto') && (await isPlainTar(src))) {
          tree = layerTreeFromFileRange(src.file.path, src.file.offset, src.file.size, i);
        }
        tree ??= await layerTreeFromStream(await src.open(opts.signal), i, opts);
        const compressed = !!src.digest && src.digest !== diffIds[i];
        infos.push({
          diffId: diffIds[i]!,
          digest: src.digest ?? (compressed ? null : diffIds[i]!),
          compressedBytes: compressed ? (src.size ?? null) : null,
          createdBy: h?.createdBy ?? '',
          ...(h?.created ? { created: h.created } : {}),
          comment: h?.comment ?? '',
          ...(tree.tarBytes !== undefined ? { tarBytes: tree.tarBytes } : {}),
        });
        trees.push(tree);
      }
      return new ImageModel(name, img.id, infos, trees, { tags: img.tags, history: steps });
    } finally {
      await a.close();
    }
  }

  /**
   * Every stored image with its layer chain, and every layer with the images that use it:
   * sizes, shared and unique bytes per image are those of `system df -v` (the same
   * accounting); `rmiFrees` is what removing the image would free (its unique layers; 0
   * while a container uses it).
   */
  async store(): Promise<StoreView> {
    const d = this.core.imagesDf();
    const users = new Map<string, string[]>();
    for (const r of d.rows) for (const c of r.image.chain) (users.get(c) ?? users.set(c, []).get(c)!).push(r.image.id);
    const createdBy = new Map<string, string>();
    const images: StoreView['images'] = [];
    for (const r of d.rows) {
      const cfg = await this.core.images.config(r.image.id).catch(() => undefined);
      if (cfg) {
        const { perLayer } = historyOf(cfg, r.image.chain.length);
        r.image.chain.forEach((c, i) => {
          if (!createdBy.has(c) && perLayer[i]) createdBy.set(c, perLayer[i]!.createdBy);
        });
      }
      images.push({
        id: r.image.id,
        tags: r.image.tags.map(familiarTag),
        created: r.image.created ?? null,
        size: r.size,
        sharedSize: r.shared,
        uniqueSize: r.unique,
        containers: r.containers,
        rmiFrees: r.containers > 0 ? 0 : r.unique,
        chain: r.image.chain,
      });
    }
    const layers: StoreView['layers'] = [];
    for (const l of this.core.layers.all()) {
      layers.push({
        chainID: l.chainId,
        diffID: l.diffId,
        parent: l.parent ?? null,
        size: l.size,
        refCount: users.get(l.chainId)?.length ?? 0,
        images: users.get(l.chainId) ?? [],
        createdBy: createdBy.get(l.chainId) ?? '',
      });
    }
    return { layersSize: d.total, images, layers };
  }

  /** Two stored images' layers side by side, aligned by chainID: the shared base first. */
  async compare(a: string, b: string): Promise<LayerComparison> {
    const side = async (name: string) => {
      const img = this.core.resolveImage(name);
      const cfg = await this.core.images.config(img.id);
      const { perLayer } = historyOf(cfg, img.chain.length);
      return {
        image: { id: img.id, tags: img.tags.map(familiarTag) },
        layers: img.chain.map((c, i) => {
          const r = this.core.layers.get(c);
          return { index: i, chainID: c, diffID: r?.diffId ?? '', createdBy: perLayer[i]?.createdBy ?? '', size: r?.size ?? 0 };
        }),
      };
    };
    const A = await side(a);
    const B = await side(b);
    const n = Math.max(A.layers.length, B.layers.length);
    const rows: LayerComparison['rows'] = [];
    let sharedLayers = 0;
    let sharedBytes = 0;
    for (let i = 0; i < n; i++) {
      const x = A.layers[i];
      const y = B.layers[i];
      const shared = !!x && !!y && x.chainID === y.chainID;
      if (shared) {
        sharedLayers++;
        sharedBytes += x.size;
      }
      rows.push({ index: i, a: x ?? null, b: y ?? null, shared });
    }
    return { a: A.image, b: B.image, rows, sharedLayers, sharedBytes };
  }
}

/** Whether a layer blob lying in a file is an uncompressed tar (then its headers are read in place). */
async function isPlainTar(src: { file?: { path: string; offset: number; size: number } }): Promise<boolean> {
  if (!src.file || src.file.size === 0) return !!src.file;
  const fh = await openFile(src.file.path, 'r');
  try {
    const b = Buffer.alloc(8);
    const { bytesRead } = await fh.read(b, 0, Math.min(8, src.file.size), src.file.offset);
    return sniffCompression(b.subarray(0, bytesRead)) === 'none';
  } finally {
    await fh.close();
  }
}
