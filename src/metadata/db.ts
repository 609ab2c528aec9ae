/**
 * The metadata store: one SQLite database (better-sqlite3) in WAL mode with
 * synchronous=FULL, shared by every layerbox process on the same root. Every change that
 * spans rows happens in one transaction, so a crash leaves the old or the new state.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { EngineError, storageError } from '../errors/index.js';

export type DB = Database.Database;

export const MIGRATIONS: readonly string[] = [
  // 1: the layered image store
  `
  CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    parent TEXT REFERENCES snapshots(key),
    kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed', 'removing')),
    owner_pid INTEGER,
    owner_start INTEGER,
    labels TEXT NOT NULL DEFAULT '{}',
    created TEXT NOT NULL
  );
  CREATE INDEX snapshots_parent ON snapshots(parent);

  CREATE TABLE layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT REFERENCES layers(chain_id),
    snapshot TEXT NOT NULL REFERENCES snapshots(key),
    size INTEGER NOT NULL,
    tar_size INTEGER NOT NULL,
    tarsplit TEXT,
    blob TEXT,
    created TEXT NOT NULL
  );
  CREATE INDEX layers_parent ON layers(parent);

  CREATE TABLE images (
    id TEXT PRIMARY KEY,
    top_layer TEXT REFERENCES layers(chain_id),
    parent TEXT,
    created TEXT,
    stored TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    chain_id TEXT NOT NULL REFERENCES layers(chain_id),
    PRIMARY KEY (image_id, idx)
  );
  CREATE INDEX image_layers_chain ON image_layers(chain_id);

  CREATE TABLE tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id),
    created TEXT NOT NULL
  );
  CREATE INDEX tags_image ON tags(image_id);

  -- manifests known for an image (pulled, pushed, loaded from OCI), by repository
  CREATE TABLE repo_digests (
    repo TEXT NOT NULL,
    digest TEXT NOT NULL,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    manifest TEXT,
    created TEXT NOT NULL,
    PRIMARY KEY (repo, digest)
  );
  CREATE INDEX repo_digests_image ON repo_digests(image_id);

  -- compressed blobs known to hold a layer (from a pull, a push or an OCI load)
  CREATE TABLE blob_sources (
    diff_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    registry TEXT NOT NULL DEFAULT '',
    repository TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (diff_id, digest, registry, repository)
  );
  CREATE INDEX blob_sources_digest ON blob_sources(digest);

  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );

  -- mounts made by 'image mount' that outlive the command
  CREATE TABLE image_mounts (
    image_id TEXT PRIMARY KEY REFERENCES images(id),
    snapshot TEXT NOT NULL,
    path TEXT NOT NULL,
    count INTEGER NOT NULL
  );
  `,
  // 2: leases — a process using a layer (unpacking an image that has it, recording an
  // image on it) protects it from collection without blocking anybody else
  `
  CREATE TABLE leases (
    id TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    pid INTEGER NOT NULL,
    start INTEGER NOT NULL
  );
  CREATE INDEX leases_chain ON leases(chain_id);
  CREATE INDEX leases_id ON leases(id);
  `,
  // 3: containers and volumes
  `
  CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL REFERENCES images(id),
    image_name TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    created TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    host_config TEXT NOT NULL,
    state TEXT NOT NULL
  );
  CREATE INDEX containers_image ON containers(image_id);

  CREATE TABLE volumes (
    name TEXT PRIMARY KEY,
    driver TEXT NOT NULL DEFAULT 'local',
    created TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    anonymous INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE container_volumes (
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    volume TEXT NOT NULL REFERENCES volumes(name),
    destination TEXT NOT NULL,
    PRIMARY KEY (container_id, destination)
  );
  `,
  // 4: a container outlives its image (rmi -f of the image of a stopped container, as
  // Docker: the container keeps the layers alive), so containers.image_id is no foreign
  // key any more; an active snapshot may continue on a committed layer besides its parent
  // chain (snapshots.lower: the layer a commit made of the container's changes)
  `
  ALTER TABLE snapshots ADD COLUMN lower TEXT;
  CREATE INDEX snapshots_lower ON snapshots(lower);

  CREATE TABLE containers_v4 (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    image_name TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    created TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    host_config TEXT NOT NULL,
    state TEXT NOT NULL
  );
  INSERT INTO containers_v4 SELECT id, name, image_id, image_name, snapshot, created, status, config, host_config, state FROM containers;
  DROP TABLE containers;
  ALTER TABLE containers_v4 RENAME TO containers;
  CREATE INDEX containers_image ON containers(image_id);
  CREATE INDEX containers_status ON containers(status);
  `,
  // 5: the event log (docker events): every process appends, readers tail it by seq; the
  // writers keep its last EVENT_RETENTION rows (events.ts)
  `
  CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_nano INTEGER NOT NULL,
    type TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX events_time ON events(time_nano);
  `,
];

export interface OpenOptions {
  /**
   * Keep the WAL index in heap memory instead of the mapped -shm file (locking_mode=
   * EXCLUSIVE: one process at a time). For a file system too full to extend the -shm file
   * safely; see space.ts.
   */
  heapIndex?: boolean;
}

/**
 * better-sqlite3's addon, named by its path: without it the `bindings` package finds it by
 * probing a dozen paths after walking a stack trace for the caller's package (~3 ms of every
 * command) — and from the CLI's bundle, which holds better-sqlite3's JavaScript, it would look
 * in this package instead of better-sqlite3's. These are the places node-gyp builds it.
 */
let addonPath: string | null | undefined;
function nativeBinding(): string | undefined {
  if (addonPath === undefined) {
    addonPath = null;
    try {
      const pkg = dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json'));
      for (const d of ['build/Release', 'build/Debug', 'build', 'out/Release', 'out/Debug', 'Release', 'Debug']) {
        const p = join(pkg, d, 'better_sqlite3.node');
        if (existsSync(p)) {
          addonPath = p;
          break;
        }
      }
    } catch {
      /* better-sqlite3's own search */
    }
  }
  return addonPath ?? undefined;
}

export function openDatabase(root: string, opts: OpenOptions = {}): DB {
  const path = join(root, 'metadata.db');
  let db: DB;
  try {
    const addon = nativeBinding();
    db = new Database(path, { timeout: 30000, ...(addon ? { nativeBinding: addon } : {}) });
  } catch (e) {
    throw storageError(e, path) ?? new EngineError('unavailable', 'DB_OPEN', `cannot open the metadata database: ${(e as Error).message}`, { where: path, cause: e });
  }
  try {
    // nothing of the database file is mapped: a mapped page whose file is truncated, or
    // whose read fails (EIO), kills the process with SIGBUS instead of returning an error
    db.pragma('mmap_size = 0');
    if (opts.heapIndex) db.pragma('locking_mode = EXCLUSIVE');
    // Switching a new database to WAL takes an exclusive lock that does not wait for the
    // busy timeout: two processes opening a fresh store at once retry instead of failing.
    for (let attempt = 0; ; attempt++) {
      try {
        if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
        break;
      } catch (e) {
        if ((e as { code?: string }).code !== 'SQLITE_BUSY' || attempt > 200) throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10 + Math.floor(Math.random() * 20));
      }
    }
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 30000');
    // migrations rebuild tables: foreign keys are off while they run (a DROP TABLE would
    // otherwise cascade), and checked before they commit
    db.pragma('foreign_keys = OFF');
    migrate(db);
    db.pragma('foreign_keys = ON');
  } catch (e) {
    db.close();
    throw storageError(e, path) ?? e;
  }
  cacheStatements(db);
  return db;
}

/**
 * db.prepare(sql) answers the statement it compiled before for the same text. The code
 * prepares at each call (its SQL is static text); compiling was a third of the CPU of a
 * `GET /containers/json` in `layerbox serve`. Safe for better-sqlite3's statements: `all`,
 * `get` and `run` finish before they return (nothing here holds an `iterate` open), each
 * SQL text is used in one mode (only the events' use `safeIntegers(true)`, always), and
 * SQLite recompiles a statement itself after a schema change. Bounded: emptied at 512.
 */
function cacheStatements(db: DB): void {
  const compile = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let st = cache.get(sql);
    if (!st) {
      if (cache.size >= 512) cache.clear();
      st = compile(sql);
      cache.set(sql, st);
    }
    return st;
  }) as DB['prepare'];
}

function migrate(db: DB): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current >= MIGRATIONS.length) return;
  // BEGIN IMMEDIATE: two processes opening a new store do not both migrate
  const run = db.transaction(() => {
    const v = db.pragma('user_version', { simple: true }) as number;
    for (let i = v; i < MIGRATIONS.length; i++) {
      db.exec(MIGRATIONS[i]!);
      db.pragma(`user_version = ${i + 1}`);
    }
    const bad = db.pragma('foreign_key_check(container_volumes)') as unknown[];
    if (bad.length) throw new EngineError('data-loss', 'DB_MIGRATION', `the metadata database has ${bad.length} dangling reference(s) after migration`, { hint: 'restore the store from a backup, or start a new one' });
  });
  run.immediate();
}

export const now = (): string => new Date().toISOString();

export function getSetting(db: DB, key: string): string | undefined {
  return (db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value;
}

export function setSetting(db: DB, key: string, value: string): void {
  db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
}
