/**
 * `image mount` / `image unmount`: the image's union, read-only, at a stable path under
 * the store, reference-counted across commands like `podman image mount`.
 */
import { mkdirSync, rmdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DB } from '../metadata/db.js';
import { failedPrecondition } from '../errors/index.js';
import { digestHex } from '../oci/digest.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { mountAll, unmount } from '../snapshot/mount.js';
import type { ImageRecord } from './images.js';

interface Row {
  image_id: string;
  snapshot: string;
  path: string;
  count: number;
}

export async function isMountPoint(path: string): Promise<boolean> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[4] === path);
}

export class ImageMounts {
  constructor(
    private readonly db: DB,
    private readonly snaps: Snapshotter,
    private readonly dir: string,
  ) {}

  async mount(img: ImageRecord, layerSnapshot: (chainId: string) => string): Promise<string> {
    if (!img.topLayer) throw failedPrecondition('IMAGE_NO_LAYERS', `image ${img.id} has no layers to mount`);
    const row = this.db.prepare('SELECT * FROM image_mounts WHERE image_id = ?').get(img.id) as Row | undefined;
    if (row && (await isMountPoint(row.path))) {
      this.db.prepare('UPDATE image_mounts SET count = count + 1 WHERE image_id = ?').run(img.id);
      return row.path;
    }
    const key = `mount-${digestHex(img.id)}`;
    const path = join(this.dir, digestHex(img.id).slice(0, 16), 'merged');
    if (!this.snaps.stat(key)) await this.snaps.view(key, layerSnapshot(img.topLayer));
    mkdirSync(path, { recursive: true, mode: 0o755 });
    mountAll(this.snaps.mounts(key), path);
    this.db
      .prepare('INSERT INTO image_mounts (image_id, snapshot, path, count) VALUES (?, ?, ?, 1) ON CONFLICT(image_id) DO UPDATE SET count = 1, path = excluded.path')
      .run(img.id, key, path);
    return path;
  }

  /** Returns true when the image was mounted. With `force`, unmounts whatever the count. */
  async unmount(img: ImageRecord, force = false): Promise<boolean> {
    const row = this.db.prepare('SELECT * FROM image_mounts WHERE image_id = ?').get(img.id) as Row | undefined;
    if (!row) return false;
    if (row.count > 1 && !force) {
      this.db.prepare('UPDATE image_mounts SET count = count - 1 WHERE image_id = ?').run(img.id);
      return true;
    }
    unmount(row.path);
    try {
      rmdirSync(row.path);
      rmdirSync(join(row.path, '..'));
    } catch {
      /* not empty or gone */
    }
    this.db.prepare('DELETE FROM image_mounts WHERE image_id = ?').run(img.id);
    if (this.snaps.stat(row.snapshot)) await this.snaps.remove(row.snapshot);
    return true;
  }

  list(): { imageId: string; path: string; count: number }[] {
    return (this.db.prepare('SELECT * FROM image_mounts').all() as Row[]).map((r) => ({ imageId: r.image_id, path: r.path, count: r.count }));
  }
}
