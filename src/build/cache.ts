/**
 * The build cache, following Docker's classic rules: a step's result is found by its parent
 * image and the step's "probe" config (image/cache/compare.go: Cmd — which carries the
 * instruction, the RUN build args and the COPY checksum —, Env, Labels, ExposedPorts,
 * Entrypoint, Volumes, User, Tty, Attach*). The results are images of the store (Docker's
 * intermediate images); this table keys them and counts their use, in the store's database,
 * so the cache survives restarts.
 */
import { createHash } from 'node:crypto';
import type { DB } from '../metadata/db.js';
import { now } from '../metadata/db.js';
import type { ContainerConfig } from '../oci/types.js';

const sorted = (o: Record<string, unknown> | null | undefined) => Object.keys(o ?? {}).sort();

/** The fields compare() looks at, canonical. */
export function cacheKey(probe: ContainerConfig): string {
  const labels = probe.Labels ?? {};
  const canon = {
    AttachStdout: !!probe.AttachStdout,
    AttachStderr: !!probe.AttachStderr,
    User: probe.User ?? '',
    Tty: !!probe.Tty,
    Cmd: probe.Cmd ?? [],
    Env: probe.Env ?? [],
    Labels: sorted(labels).map((k) => [k, labels[k]]),
    ExposedPorts: sorted(probe.ExposedPorts),
    Entrypoint: probe.Entrypoint ?? [],
    Volumes: sorted(probe.Volumes),
  };
  return createHash('sha256').update(JSON.stringify(canon)).digest('hex');
}

export interface CacheRow {
  parent: string;
  key: string;
  image_id: string;
  created: string;
  last_used: string | null;
  usage_count: number;
  description: string;
}

export class BuildCacheStore {
  constructor(private readonly db: DB) {
    // created on first use; not a numbered migration, so the table stays the build module's
    db.exec(`CREATE TABLE IF NOT EXISTS build_cache (
      parent TEXT NOT NULL,
      key TEXT NOT NULL,
      image_id TEXT NOT NULL,
      created TEXT NOT NULL,
      last_used TEXT,
      usage_count INTEGER NOT NULL DEFAULT 0,
      description TEXT NOT NULL DEFAULT '',
      PRIMARY KEY (parent, key)
    );
    CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);`);
  }

  /** The cached result of a step, if its image is still stored; counts the use. */
  lookup(parent: string, key: string): string | undefined {
    const r = this.db.prepare('SELECT c.image_id AS id FROM build_cache c JOIN images i ON i.id = c.image_id WHERE c.parent = ? AND c.key = ?').get(parent, key) as { id: string } | undefined;
    if (!r) return undefined;
    this.db.prepare('UPDATE build_cache SET last_used = ?, usage_count = usage_count + 1 WHERE parent = ? AND key = ?').run(now(), parent, key);
    return r.id;
  }

  record(parent: string, key: string, imageId: string, description: string): void {
    this.db
      .prepare(
        'INSERT INTO build_cache (parent, key, image_id, created, last_used, usage_count, description) VALUES (?, ?, ?, ?, NULL, 0, ?) ON CONFLICT(parent, key) DO UPDATE SET image_id = excluded.image_id, created = excluded.created, last_used = NULL, usage_count = 0, description = excluded.description',
      )
      .run(parent, key, imageId, now(), description);
  }

  /** Every entry whose image is stored (rows of removed images are dropped). */
  rows(): CacheRow[] {
    this.db.prepare('DELETE FROM build_cache WHERE image_id NOT IN (SELECT id FROM images)').run();
    return this.db.prepare('SELECT * FROM build_cache ORDER BY created').all() as CacheRow[];
  }

  remove(imageIds: Iterable<string>): void {
    const del = this.db.prepare('DELETE FROM build_cache WHERE image_id = ?');
    this.db.transaction(() => {
      for (const id of imageIds) del.run(id);
    })();
  }

  clear(): void {
    this.db.prepare('DELETE FROM build_cache').run();
  }
}
