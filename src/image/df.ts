/** `system df` accounting for images: each layer counted once, shared vs unique per image. */
import type { ImageRecord, ImageStore } from './images.js';

export interface ImageUsageRow {
  image: ImageRecord;
  size: number;
  shared: number;
  unique: number;
  containers: number;
}

export interface ImagesDf {
  rows: ImageUsageRow[];
  /** bytes of all layers, each once: what the layers really hold on disk */
  total: number;
  /** bytes of layers used by no container */
  reclaimable: number;
  active: number;
}

export function imagesDf(store: ImageStore, containersOf: (id: string) => number): ImagesDf {
  const images = store.list();
  const users = new Map<string, number>();
  for (const img of images) for (const c of img.chain) users.set(c, (users.get(c) ?? 0) + 1);
  const size = (c: string) => store.layers.get(c)?.size ?? 0;
  const rows = images.map((image) => {
    let shared = 0;
    let unique = 0;
    for (const c of image.chain) {
      if ((users.get(c) ?? 0) > 1) shared += size(c);
      else unique += size(c);
    }
    return { image, size: shared + unique, shared, unique, containers: containersOf(image.id) };
  });
  let total = 0;
  for (const l of store.layers.all()) total += l.size;
  const activeLayers = new Set<string>();
  let active = 0;
  for (const r of rows) {
    if (r.containers > 0) {
      active++;
      for (const c of r.image.chain) activeLayers.add(c);
    }
  }
  let used = 0;
  for (const c of activeLayers) used += size(c);
  return { rows, total, reclaimable: total - used, active };
}
