/**
 * The build cache, following Docker's classic rules: a step's result is found by its parent
 * image and the step's "probe" config (image/cache/compare.go: Cmd — which carries the
 * instruction, the RUN build args and the COPY checksum —, Env, Labels, ExposedPorts,
 * Entrypoint, Volumes, User, Tty, Attach*). The results are images of the store (Docker's
 * intermediate images); this table keys them and counts their use, in the store's database,
 * so the cache survives restarts.
 */
import { createHash } from 'node:crypto';
import { lstatSync, type BigIntStats, type Stats } from 'node:fs';
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

  private readonly uses: [parent: string, key: string, at: string][] = [];

  /** The cached result of a step, if its image is still stored; its use is counted at flushUses(). */
  lookup(parent: string, key: string): string | undefined {
    const r = this.db.prepare('SELECT c.image_id AS id FROM build_cache c JOIN images i ON i.id = c.image_id WHERE c.parent = ? AND c.key = ?').get(parent, key) as { id: string } | undefined;
    if (!r) return undefined;
    this.uses.push([parent, key, now()]);
    return r.id;
  }

  /**
   * Counts the uses lookup() found (last_used, usage_count), all in one transaction: a
   * rebuild's ten hits are one commit (one fsync of the WAL), not ten. Bookkeeping only:
   * nothing the cache answers depends on it.
   */
  flushUses(): void {
    if (this.uses.length === 0) return;
    const upd = this.db.prepare('UPDATE build_cache SET last_used = ?, usage_count = usage_count + 1 WHERE parent = ? AND key = ?');
    const uses = this.uses.splice(0);
    this.db.transaction(() => {
      for (const [parent, key, at] of uses) upd.run(at, parent, key);
    })();
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

/** The memo's key for a file: what any write to it, or a chmod, chown or rename onto it, changes. */
function statKey(rel: string, st: BigIntStats): string {
  return `${rel}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}:${st.uid}:${st.gid}`;
}

/**
 * A memo of the context checksums of a directory context's files (entryHash), so that a
 * rebuild does not read the whole context again when nothing changed. An entry is found by
 * the file's absolute path and answers only while the file's (device, inode, size, mtime and
 * ctime in nanoseconds, mode, owner) and its context path are those it was taken with: a
 * write to the file changes its ctime (which no program can set back), a chmod or chown too,
 * and a file renamed onto the path is another inode. As racy-git does, a file changed less
 * than RACY_NS before it was hashed is not memoised: its ctime could be that of a later write
 * within the same clock tick. A missing or stale entry only means hashing the file again.
 */
export class ChecksumMemo {
  private readonly known = new Map<string, { key: string; sum: string; used?: string }>();
  private readonly fresh = new Map<string, { key: string; sum: string }>();
  private readonly today = new Date().toISOString().slice(0, 10);
  static readonly RACY_NS = 2_000_000_000n;
  static readonly MAX_ROWS = 200_000;

  constructor(
    private readonly db: DB,
    root: string,
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS context_sums (
      path TEXT PRIMARY KEY,
      stat TEXT NOT NULL,
      sum TEXT NOT NULL,
      used TEXT NOT NULL
    )`); // used: the day of the last build that read the entry (the oldest go first)
    // the context's entries in one range query: paths under root/ sort between root/ and root0
    const base = root.endsWith('/') ? root : root + '/';
    const rows = db.prepare('SELECT path, stat, sum, used FROM context_sums WHERE path >= ? AND path < ?').all(base, base.slice(0, -1) + '0') as { path: string; stat: string; sum: string; used: string }[];
    for (const r of rows) this.known.set(r.path, { key: r.stat, sum: r.sum, used: r.used });
  }

  /**
   * The checksum of a regular file: the memo's when the file is unchanged, else `compute()`'s
   * (memoised). `seen`: the walk's lstat, whose mode, owner and size compute() hashes.
   */
  sum(abs: string, rel: string, seen: Stats, compute: () => string): string {
    const st = lstatSync(abs, { bigint: true });
    const key = statKey(rel, st);
    const had = this.known.get(abs);
    if (had && had.key === key) {
      if (had.used !== this.today) this.fresh.set(abs, had); // an unchanged entry is written once a day at most
      return had.sum;
    }
    const sum = compute();
    // lstat again: a file written while it was read is not memoised
    const after = lstatSync(abs, { bigint: true });
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const newest = after.ctimeNs > after.mtimeNs ? after.ctimeNs : after.mtimeNs;
    // the file hashed is the one the walk saw (not one renamed over it since), unchanged while hashed
    const same = Number(after.dev) === seen.dev && Number(after.ino) === seen.ino && Number(after.size) === seen.size && Number(after.mode) === seen.mode && Number(after.uid) === seen.uid && Number(after.gid) === seen.gid;
    if (same && statKey(rel, after) === key && nowNs - newest > ChecksumMemo.RACY_NS) this.fresh.set(abs, { key, sum });
    return sum;
  }

  /** Stores what this build hashed or found, in one transaction; keeps the table bounded. */
  flush(): void {
    if (this.fresh.size === 0) return;
    const at = this.today;
    const put = this.db.prepare('INSERT INTO context_sums (path, stat, sum, used) VALUES (?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET stat = excluded.stat, sum = excluded.sum, used = excluded.used');
    const entries = [...this.fresh];
    this.fresh.clear();
    this.db.transaction(() => {
      for (const [path, { key, sum }] of entries) put.run(path, key, sum, at);
      const n = (this.db.prepare('SELECT count(*) AS n FROM context_sums').get() as { n: number }).n;
      if (n > ChecksumMemo.MAX_ROWS) this.db.prepare('DELETE FROM context_sums WHERE path IN (SELECT path FROM context_sums ORDER BY used LIMIT ?)').run(n - ChecksumMemo.MAX_ROWS);
    })();
  }
}
