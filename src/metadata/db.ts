/**
 * The metadata store: one SQLite database (better-sqlite3) in WAL mode with
 * synchronous=FULL, shared by every layerbox process on the same root. Every change that
 * spans rows happens in one transaction, so a crash leaves the old or the new state.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { EngineError } from '../errors/index.js';

export type DB = Database.Database;

/** A migration; `foreignKeysOff` for one that rebuilds a table others reference (SQLite's 12-step ALTER). */
type Migration = string | { sql: string; foreignKeysOff: true };

const MIGRATIONS: Migration[] = [
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
  // 4: a container keeps its image ID when the image is removed (rmi -f, as Docker): no
  // foreign key from containers to images any more. The layers stay, held by the
  // container's snapshots, and are released when the container goes.
  {
    foreignKeysOff: true,
    sql: `
  CREATE TABLE containers_new (
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
  INSERT INTO containers_new (id, name, image_id, image_name, snapshot, created, status, config, host_config, state)
    SELECT id, name, image_id, image_name, snapshot, created, status, config, host_config, state FROM containers;
  DROP TABLE containers;
  ALTER TABLE containers_new RENAME TO containers;
  CREATE INDEX containers_image ON containers(image_id);
  `,
  },
];

export function openDatabase(root: string): DB {
  let db: DB;
  try {
    db = new Database(join(root, 'metadata.db'), { timeout: 30000 });
  } catch (e) {
    throw new EngineError('unavailable', 'DB_OPEN', `cannot open the metadata database: ${(e as Error).message}`, { where: join(root, 'metadata.db'), cause: e });
  }
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
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 30000');
  migrate(db);
  return db;
}

function migrate(db: DB): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current >= MIGRATIONS.length) return;
  // A table rebuild must not cascade (DROP TABLE deletes its rows first, and ON DELETE
  // CASCADE would empty the tables that reference it): foreign keys are off for the
  // migration — the pragma cannot change inside a transaction — and checked before commit.
  const fkOff = MIGRATIONS.slice(current).some((m) => typeof m !== 'string' && m.foreignKeysOff);
  if (fkOff) db.pragma('foreign_keys = OFF');
  try {
    // BEGIN IMMEDIATE: two processes opening a new store do not both migrate
    const run = db.transaction(() => {
      const v = db.pragma('user_version', { simple: true }) as number;
      for (let i = v; i < MIGRATIONS.length; i++) {
        const m = MIGRATIONS[i]!;
        db.exec(typeof m === 'string' ? m : m.sql);
        db.pragma(`user_version = ${i + 1}`);
      }
      const broken = db.pragma('foreign_key_check') as unknown[];
      if (broken.length > 0) throw new EngineError('internal', 'DB_MIGRATION', `metadata migration left ${broken.length} broken references`);
    });
    run.immediate();
  } finally {
    if (fkOff) db.pragma('foreign_keys = ON');
  }
}

export const now = (): string => new Date().toISOString();

export function getSetting(db: DB, key: string): string | undefined {
  return (db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value;
}

export function setSetting(db: DB, key: string, value: string): void {
  db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
}
