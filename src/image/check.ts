/**
 * Store consistency check (`system check`): every blob's bytes match its name, every
 * image's config and layers are present, every layer's snapshot is committed and on disk.
 */
import { createReadStream, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { ContentStore } from '../content/store.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import type { ImageStore } from './images.js';

export interface CheckReport {
  blobs: number;
  images: number;
  layers: number;
  problems: string[];
  /** what `system check --repair` removed */
  repaired: string[];
}

export async function checkStore(content: ContentStore, snaps: Snapshotter, images: ImageStore): Promise<CheckReport> {
  const problems: string[] = [];
  let blobs = 0;
  for await (const b of content.list()) {
    blobs++;
    const h = createHash('sha256');
    for await (const c of createReadStream(content.path(b.digest))) h.update(c as Buffer);
    if ('sha256:' + h.digest('hex') !== b.digest) problems.push(`blob ${b.digest} does not match its name`);
  }
  const layers = images.layers.all();
  for (const l of layers) {
    const s = snaps.stat(l.snapshot);
    if (!s) problems.push(`layer ${l.chainId}: snapshot ${l.snapshot} missing`);
    else if (s.kind !== 'committed') problems.push(`layer ${l.chainId}: snapshot is ${s.kind}, not committed`);
    else if (!existsSync(snaps.fsDir(l.snapshot))) problems.push(`layer ${l.chainId}: snapshot directory missing`);
    if (l.parent && !images.layers.get(l.parent)) problems.push(`layer ${l.chainId}: parent ${l.parent} missing`);
    if (l.tarsplit && !(await content.has(l.tarsplit))) problems.push(`layer ${l.chainId}: tar-split ${l.tarsplit} missing`);
    if (l.blob && !(await content.has(l.blob))) problems.push(`layer ${l.chainId}: blob ${l.blob} missing`);
    if (!l.tarsplit && !l.blob) problems.push(`layer ${l.chainId}: neither tar-split nor blob`);
  }
  const imgs = images.list();
  for (const i of imgs) {
    if (!(await content.has(i.id))) problems.push(`image ${i.id}: config blob missing`);
    for (const c of i.chain) if (!images.layers.get(c)) problems.push(`image ${i.id}: layer ${c} missing`);
    if (i.chain.length && i.topLayer !== i.chain[i.chain.length - 1]) problems.push(`image ${i.id}: top layer mismatch`);
  }
  return { blobs, images: imgs.length, layers: layers.length, problems, repaired: [] };
}
