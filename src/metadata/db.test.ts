/** The metadata database: migration 4 on a store made by an older version; the heap-index open mode for full disks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, openDatabase } from './db.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'lb-db-'));
}

test('migration 4 keeps the containers and their volumes of a version-3 store; a container then outlives its image (rmi -f)', () => {
  const root = tmp();
  try {
    const old = new Database(join(root, 'metadata.db'));
    old.pragma('journal_mode = WAL');
    old.pragma('foreign_keys = ON');
    for (let i = 0; i < 3; i++) old.exec(MIGRATIONS[i]!);
    old.pragma('user_version = 3');
    old.prepare("INSERT INTO images (id, stored) VALUES ('sha256:img', 'now')").run();
    old.prepare("INSERT INTO containers VALUES ('c1', 'one', 'sha256:img', 'busybox', 'ctr-c1', 'now', 'exited', '{}', '{}', '{\"Status\":\"exited\"}')").run();
    old.prepare("INSERT INTO volumes (name, created) VALUES ('v1', 'now')").run();
    old.prepare("INSERT INTO container_volumes VALUES ('c1', 'v1', '/data')").run();
    assert.throws(() => old.prepare("DELETE FROM images WHERE id = 'sha256:img'").run(), /FOREIGN KEY/);
    old.close();

    const db = openDatabase(root);
    try {
      assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
      assert.deepEqual(db.prepare('SELECT id, name, image_id, status FROM containers').all(), [{ id: 'c1', name: 'one', image_id: 'sha256:img', status: 'exited' }]);
      assert.deepEqual(db.prepare('SELECT * FROM container_volumes').all(), [{ container_id: 'c1', volume: 'v1', destination: '/data' }]);
      // the image may go while the container stays (Docker's rmi -f)
      db.prepare("DELETE FROM images WHERE id = 'sha256:img'").run();
      assert.equal((db.prepare('SELECT COUNT(*) AS n FROM containers').get() as { n: number }).n, 1);
      // the other references still hold
      assert.throws(() => db.prepare("INSERT INTO container_volumes VALUES ('nope', 'v1', '/x')").run(), /FOREIGN KEY/);
      db.prepare("DELETE FROM containers WHERE id = 'c1'").run();
      assert.equal((db.prepare('SELECT COUNT(*) AS n FROM container_volumes').get() as { n: number }).n, 0, 'ON DELETE CASCADE kept');
      // snapshots got their column for the layer a container continues on
      assert.ok((db.prepare('PRAGMA table_info(snapshots)').all() as { name: string }[]).some((c) => c.name === 'lower'));
      assert.equal(db.pragma('mmap_size', { simple: true }), 0, 'nothing of the database is mapped');
    } finally {
      db.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the heap-index mode (a disk too full for the -shm file) reads and writes without mapping an index file', () => {
  const root = tmp();
  try {
    openDatabase(root).close();
    const db = openDatabase(root, { heapIndex: true });
    try {
      db.prepare("INSERT INTO settings (key, value) VALUES ('k', 'v')").run();
      assert.equal((db.prepare("SELECT value FROM settings WHERE key = 'k'").get() as { value: string }).value, 'v');
      assert.equal(existsSync(join(root, 'metadata.db-shm')), false, 'no -shm file');
    } finally {
      db.close();
    }
    const again = openDatabase(root);
    assert.equal((again.prepare("SELECT value FROM settings WHERE key = 'k'").get() as { value: string }).value, 'v');
    again.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
