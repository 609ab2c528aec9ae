/**
 * The snapshotter behaviour suite (modelled on containerd's core/snapshots/testsuite), run
 * against every implementation: OverlaySnapshotter and VfsSnapshotter. Layers are made the
 * way the engine makes them — prepare an active snapshot on the parent, mount it, change
 * files through the mount, unmount, commit — and every result is compared with a plain
 * reference directory built with ordinary fs calls. Crash and concurrency behaviours
 * (docs/RELIABILITY.md, items 17, 18, 20, 21) use real child processes (testdata-child.ts) and SIGKILL.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, chmodSync, lchownSync, linkSync, symlinkSync, renameSync,
  statSync, existsSync, readdirSync, openSync, closeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDatabase, type DB } from '../metadata/db.js';
import { OverlaySnapshotter } from './overlay.js';
import { VfsSnapshotter } from './vfs.js';
import type { Snapshotter, Mount } from './snapshotter.js';
import { mountAll, unmount, type StorageDriver } from './mount.js';
import { mount as sysMount, umount2, MNT_DETACH, MS_BIND, MS_RDONLY } from '../sys/native.js';
import { mountsUnder } from '../sys/fsutil.js';
import { walkTree } from '../testing/tree.js';
import { isEngineError } from '../errors/index.js';
import { chainIds, type Digest } from '../oci/digest.js';
import { ContentStore } from '../content/store.js';
import { LayerStore } from '../image/layers.js';

const CHILD = join(fileURLToPath(new URL('.', import.meta.url)), 'testdata-child.js');
const DRIVERS: StorageDriver[] = ['overlay', 'vfs'];

// ---------------------------------------------------------------------------------------------
// harness

interface Env {
  tmp: string;
  root: string;
  work: string;
  db: DB;
  sn: Snapshotter;
  driver: StorageDriver;
}

function makeSnapshotter(db: DB, root: string, driver: StorageDriver): Snapshotter {
  return driver === 'overlay' ? new OverlaySnapshotter(db, root) : new VfsSnapshotter(db, root);
}

async function withEnv(driver: StorageDriver, fn: (e: Env) => Promise<void> | void, prefix = `lb-snap-${driver}-`): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  const root = join(tmp, 'root');
  const work = join(tmp, 'work');
  mkdirSync(root);
  mkdirSync(work);
  const db = openDatabase(root);
  try {
    await fn({ tmp, root, work, db, sn: makeSnapshotter(db, root, driver), driver });
  } finally {
    for (const m of await mountsUnder(tmp)) {
      try {
        umount2(m, MNT_DETACH);
      } catch {
        /* already gone */
      }
    }
    db.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

let mountSeq = 0;
/** Mounts snapshot mounts on a fresh directory under work/; returns it. */
function mountOn(e: Env, mounts: Mount[], name = `m${mountSeq++}`): string {
  const target = join(e.work, name);
  mkdirSync(target, { recursive: true });
  mountAll(mounts, target);
  return target;
}

async function withMount<T>(e: Env, key: string, fn: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = mountOn(e, e.sn.mounts(key));
  try {
    return await fn(dir);
  } finally {
    unmount(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An applier: ordinary fs calls on a directory (the reference dir or a mounted snapshot). */
type Op = (root: string) => void;
type Applier = Op[];
const createFile = (p: string, content: string | Buffer, mode: number): Op => (r) => {
  writeFileSync(join(r, p), content);
  chmodSync(join(r, p), mode);
};
const createDir = (p: string, mode: number): Op => (r) => {
  mkdirSync(join(r, p));
  chmodSync(join(r, p), mode);
};
const removeAll = (p: string): Op => (r) => rmSync(join(r, p), { recursive: true, force: true });
const chown = (p: string, uid: number, gid: number): Op => (r) => lchownSync(join(r, p), uid, gid);
const chmod = (p: string, mode: number): Op => (r) => chmodSync(join(r, p), mode);
const link = (oldp: string, newp: string): Op => (r) => linkSync(join(r, oldp), join(r, newp));
const symlink = (target: string, p: string): Op => (r) => symlinkSync(target, join(r, p));
const rename = (a: string, b: string): Op => (r) => renameSync(join(r, a), join(r, b));
const apply = (a: Applier, root: string) => {
  for (const op of a) op(root);
};

interface Normalized {
  entries: { path: string; type: string; mode: string; uid: number; gid: number; size: number; sha256?: string; linkTarget?: string }[];
  hardlinks: string[][];
}

/** type, mode, uid, gid, size, content hash, link target — and which files share an inode. */
function tree(dir: string): Normalized {
  const raw = walkTree(dir);
  const byIno = new Map<number, string[]>();
  for (const x of raw) if (x.type === 'file') byIno.set(x.ino!, [...(byIno.get(x.ino!) ?? []), x.path]);
  return {
    entries: raw.map(({ path, type, mode, uid, gid, size, sha256, linkTarget }) => ({ path, type, mode, uid, gid, size, ...(sha256 ? { sha256 } : {}), ...(linkTarget !== undefined ? { linkTarget } : {}) })),
    hardlinks: [...byIno.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort(),
  };
}

function assertSameTree(actualDir: string, expectedDir: string, what: string): void {
  assert.deepEqual(tree(actualDir), tree(expectedDir), `${what}: the mounted tree differs from the reference directory`);
}

let layerSeq = 0;
/** Makes a committed layer the engine's way: prepare on the parent, mount, change, unmount, commit. */
async function createLayer(e: Env, parent: string | undefined, a: Applier, labels?: Record<string, string>): Promise<string> {
  const name = `layer-${layerSeq++}`;
  await e.sn.prepare(`${name}-active`, parent);
  await withMount(e, `${name}-active`, (dir) => apply(a, dir));
  e.sn.commit(name, `${name}-active`, labels ? { labels } : {});
  return name;
}

/** Views `name` read-only and compares it with the reference directory. */
async function checkView(e: Env, name: string, flat: string, what: string): Promise<void> {
  const view = `${name}-view-${layerSeq++}`;
  await e.sn.view(view, name);
  await withMount(e, view, (dir) => assertSameTree(dir, flat, what));
  await e.sn.remove(view);
}

/** containerd's checkSnapshots: a chain of layers, each checked against a flat directory. */
async function checkSnapshots(e: Env, ...appliers: Applier[]): Promise<string> {
  const flat = mkdtempSync(join(e.work, 'flat-'));
  let parent: string | undefined;
  for (const [i, a] of appliers.entries()) {
    parent = await createLayer(e, parent, a);
    apply(a, flat);
    await checkView(e, parent, flat, `${e.driver} layer ${i + 1}`);
  }
  return flat;
}

async function rejectsKind(p: Promise<unknown> | (() => unknown), kind: string, code?: string): Promise<void> {
  const check = (err: unknown) => {
    assert.ok(isEngineError(err), `expected an EngineError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    if (code) assert.equal(err.code, code, err.message);
    return true;
  };
  if (typeof p === 'function') assert.throws(p as () => unknown, check);
  else await assert.rejects(p, check);
}

interface Child {
  proc: ChildProcess;
  events: Record<string, unknown>[];
  next(pred: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

function child(cmd: string, args: Record<string, unknown>): Child {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const proc = spawn(process.execPath, [CHILD, cmd, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'pipe'], env });
  const events: Record<string, unknown>[] = [];
  const waiters: { pred: (e: Record<string, unknown>) => boolean; res: (e: Record<string, unknown>) => void }[] = [];
  let buf = '';
  let err = '';
  proc.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  proc.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      const ev = JSON.parse(line) as Record<string, unknown>;
      events.push(ev);
      for (const w of waiters.splice(0)) {
        if (w.pred(ev)) w.res(ev);
        else waiters.push(w);
      }
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => proc.on('exit', (code, signal) => res({ code, signal })));
  return {
    proc,
    events,
    exit,
    stderr: () => err,
    next(pred, timeoutMs = 60000) {
      const found = events.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`child ${cmd}: no matching event within ${timeoutMs} ms; events ${JSON.stringify(events)}; stderr ${err}`)), timeoutMs);
        waiters.push({
          pred,
          res: (ev) => {
            clearTimeout(t);
            res(ev);
          },
        });
        void exit.then(() =>
          setTimeout(() => {
            const f = events.find(pred);
            clearTimeout(t);
            if (f) res(f);
            else rej(new Error(`child ${cmd} exited without a matching event; events ${JSON.stringify(events)}; stderr ${err}`));
          }, 20),
        );
      });
    },
  };
}

async function killHard(c: Child): Promise<void> {
  c.proc.kill('SIGKILL');
  await c.exit; // reaped: the pid is gone, so what it owned is stale
}

const snapshotDirs = (e: Env) => readdirSync(e.sn.dir).sort();
const trashDirs = (e: Env) => readdirSync(e.sn.dir).filter((n) => n.startsWith('.trash-'));

// ---------------------------------------------------------------------------------------------
// docs/RELIABILITY.md item 22 and containerd's basic behaviours, for every snapshotter

for (const driver of DRIVERS) {
  describe(`${driver} snapshotter: basic behaviours (docs/RELIABILITY.md, item 22)`, () => {
    test('basic workflow: prepare, mount, change, commit, prepare on top, view (containerd Basic)', () =>
      withEnv(driver, async (e) => {
        const initial: Applier = [createFile('foo', 'foo\n', 0o777), createDir('a', 0o755), createDir('a/b', 0o755), createDir('a/b/c', 0o755)];
        const diff: Applier = [createFile('bar', 'bar\n', 0o777), createFile('foo', 'bar\n', 0o777), removeAll('a/b')];
        const flat = mkdtempSync(join(e.work, 'flat-'));

        const dir = await e.sn.prepare('preparing', undefined, { labels: { l: 'one' } });
        assert.ok(existsSync(dir));
        const mounts = e.sn.mounts('preparing');
        assert.ok(mounts.length >= 1);
        await withMount(e, 'preparing', (m) => apply(initial, m));
        apply(initial, flat);
        e.sn.commit('committed', 'preparing');
        const si = e.sn.stat('committed')!;
        assert.equal(si.kind, 'committed');
        assert.equal(si.parent, undefined);
        assert.deepEqual(si.labels, { l: 'one' }, 'labels given at prepare survive the commit');
        assert.equal(e.sn.stat('preparing'), undefined, 'the active key is gone after commit');

        await e.sn.prepare('nextlayer', 'committed');
        await withMount(e, 'nextlayer', (m) => {
          assertSameTree(m, flat, 'the new active snapshot shows its parent');
          apply(diff, m);
        });
        const ni = e.sn.stat('nextlayer')!;
        assert.equal(ni.kind, 'active');
        assert.equal(ni.parent, 'committed');
        e.sn.commit('committed-next', 'nextlayer', { labels: { l: 'two' } });
        apply(diff, flat);
        const si2 = e.sn.stat('committed-next')!;
        assert.equal(si2.kind, 'committed');
        assert.equal(si2.parent, 'committed');
        assert.deepEqual(si2.labels, { l: 'two' });
        const walked = new Map(e.sn.walk().map((x) => [x.key, x]));
        assert.deepEqual(walked.get('committed'), si);
        assert.deepEqual(walked.get('committed-next'), si2);

        await e.sn.view('nextnext', 'committed-next');
        await withMount(e, 'nextnext', (m) => assertSameTree(m, flat, 'view of the top'));
        await e.sn.remove('nextnext');
        await rejectsKind(e.sn.remove('committed'), 'failed-precondition', 'SNAPSHOT_HAS_CHILDREN');
        await e.sn.remove('committed-next');
        await e.sn.remove('committed');
        assert.deepEqual(e.sn.walk(), []);
        assert.deepEqual(snapshotDirs(e), [], 'no directory is left behind');
      }));

    test('stat and walk report kinds and parents; a transitive parent is reachable (containerd StatActive/StatCommitted/Transitivity/Walk)', () =>
      withEnv(driver, async (e) => {
        await e.sn.prepare('c1-a', undefined);
        e.sn.commit('c1', 'c1-a');
        await e.sn.prepare('c2-a', 'c1');
        e.sn.commit('c2', 'c2-a');
        await e.sn.prepare('a1', 'c2');
        await e.sn.prepare('a2', undefined);
        await e.sn.view('v1', 'c2');
        const want: Record<string, { kind: string; parent: string | undefined }> = {
          c1: { kind: 'committed', parent: undefined },
          c2: { kind: 'committed', parent: 'c1' },
          a1: { kind: 'active', parent: 'c2' },
          a2: { kind: 'active', parent: undefined },
          v1: { kind: 'view', parent: 'c2' },
        };
        for (const [key, w] of Object.entries(want)) {
          const st = e.sn.stat(key);
          assert.ok(st, key);
          assert.equal(st.kind, w.kind, key);
          assert.equal(st.parent, w.parent, key);
          assert.equal(st.key, key);
        }
        const walked = e.sn.walk();
        assert.deepEqual(walked.map((x) => x.key).sort(), Object.keys(want).sort());
        for (const x of walked) assert.deepEqual(x, e.sn.stat(x.key), 'stat inside walk agrees with walk');
        // transitivity: the parent of the parent
        assert.equal(e.sn.stat(e.sn.stat('a1')!.parent!)!.parent, 'c1');
        assert.equal(e.sn.stat('missing'), undefined);
      }));

    test('reusing a key fails: prepare or view over an active, a view or a committed key (containerd PrepareView)', () =>
      withEnv(driver, async (e) => {
        await e.sn.prepare('preparing', undefined);
        e.sn.commit('snapA', 'preparing');
        await e.sn.prepare('newlayer', 'snapA');
        await rejectsKind(e.sn.view('newlayer', 'snapA'), 'conflict', 'SNAPSHOT_EXISTS');
        await rejectsKind(e.sn.prepare('newlayer', 'snapA'), 'conflict', 'SNAPSHOT_EXISTS');
        await rejectsKind(e.sn.prepare('newlayer', undefined), 'conflict', 'SNAPSHOT_EXISTS');
        await e.sn.view('viewLayer', 'snapA');
        await rejectsKind(e.sn.view('viewLayer', 'snapA'), 'conflict', 'SNAPSHOT_EXISTS');
        await rejectsKind(e.sn.prepare('snapA', undefined), 'conflict', 'SNAPSHOT_EXISTS');
        await e.sn.prepare('other', undefined);
        await rejectsKind(() => e.sn.commit('snapA', 'other'), 'conflict', 'SNAPSHOT_EXISTS');
        // the failed attempts changed nothing
        assert.equal(e.sn.stat('newlayer')!.kind, 'active');
        assert.equal(e.sn.stat('other')!.kind, 'active');
        assert.equal(e.sn.walk().length, 4);
      }));

    test('commit of a key that is not active fails (committed, view, missing)', () =>
      withEnv(driver, async (e) => {
        await e.sn.prepare('a', undefined);
        e.sn.commit('c', 'a');
        await e.sn.view('v', 'c');
        await rejectsKind(() => e.sn.commit('c2', 'c'), 'not-found', 'SNAPSHOT_NOT_ACTIVE');
        await rejectsKind(() => e.sn.commit('c3', 'v'), 'not-found', 'SNAPSHOT_NOT_ACTIVE');
        await rejectsKind(() => e.sn.commit('c4', 'nope'), 'not-found', 'SNAPSHOT_NOT_ACTIVE');
        await rejectsKind(() => e.sn.commit('c5', 'a'), 'not-found', 'SNAPSHOT_NOT_ACTIVE'); // already committed
        assert.deepEqual(e.sn.walk().map((x) => x.key).sort(), ['c', 'v']);
      }));

    test('only a committed snapshot can be a parent (an incomplete one never is)', () =>
      withEnv(driver, async (e) => {
        await e.sn.prepare('active', undefined);
        await rejectsKind(e.sn.prepare('child', 'active'), 'failed-precondition', 'SNAPSHOT_PARENT');
        e.sn.commit('base', 'active');
        await e.sn.view('v', 'base');
        await rejectsKind(e.sn.prepare('child', 'v'), 'failed-precondition', 'SNAPSHOT_PARENT');
        await rejectsKind(e.sn.view('child', 'v'), 'failed-precondition', 'SNAPSHOT_PARENT');
        await rejectsKind(e.sn.prepare('child', 'missing'), 'failed-precondition', 'SNAPSHOT_PARENT');
        await e.sn.prepare('loose', undefined);
        await rejectsKind(() => e.sn.commit('x', 'loose', { parent: 'v' }), 'failed-precondition', 'SNAPSHOT_PARENT');
        assert.equal(e.sn.stat('child'), undefined);
        assert.deepEqual(e.sn.walk().map((x) => x.key).sort(), ['base', 'loose', 'v']);
      }));

    test('removing a snapshot with children fails; top-down removal works (containerd RemoveIntermediateSnapshot, Remove)', () =>
      withEnv(driver, async (e) => {
        await e.sn.prepare('base', undefined);
        e.sn.commit('committed-base', 'base');
        await e.sn.prepare('intermediate', 'committed-base');
        e.sn.commit('committed-inter', 'intermediate');
        await e.sn.prepare('toplayer', 'committed-inter');
        await rejectsKind(e.sn.remove('committed-inter'), 'failed-precondition', 'SNAPSHOT_HAS_CHILDREN');
        await rejectsKind(e.sn.remove('committed-base'), 'failed-precondition', 'SNAPSHOT_HAS_CHILDREN');
        assert.equal(e.sn.stat('committed-inter')!.kind, 'committed', 'a refused removal leaves the snapshot whole');
        await e.sn.view('v', 'committed-inter');
        await e.sn.remove('toplayer');
        await rejectsKind(e.sn.remove('committed-inter'), 'failed-precondition', 'SNAPSHOT_HAS_CHILDREN'); // the view
        await e.sn.remove('v');
        await e.sn.remove('committed-inter');
        await e.sn.remove('committed-base');
        await rejectsKind(e.sn.remove('committed-base'), 'not-found', 'SNAPSHOT_NOT_FOUND');
        // containerd checkRemove: keys are reusable after removal, committed with no children removable
        await e.sn.prepare('committed-a', undefined);
        e.sn.commit('committed-1', 'committed-a');
        await e.sn.prepare('reuse-1', 'committed-1');
        await e.sn.remove('reuse-1');
        await e.sn.view('reuse-1', 'committed-1');
        await e.sn.remove('reuse-1');
        await e.sn.prepare('reuse-1', undefined);
        await e.sn.remove('committed-1');
        e.sn.commit('committed-1', 'reuse-1');
        assert.deepEqual(e.sn.walk().map((x) => [x.key, x.kind]), [['committed-1', 'committed']]);
        assert.equal(snapshotDirs(e).length, 1);
      }));

    test('views (and committed snapshots) are read-only: a write through the mount gets EROFS (containerd ViewReadonly)', () =>
      withEnv(driver, async (e) => {
        const l1 = await createLayer(e, undefined, [createFile('f', 'one', 0o644), createDir('d', 0o755)]);
        const l2 = await createLayer(e, l1, [createFile('g', 'two', 0o644)]);
        for (const [view, parent] of [['v1', l1], ['v2', l2]] as const) {
          await e.sn.view(view, parent);
          await withMount(e, view, (m) => {
            assert.throws(() => writeFileSync(join(m, 'testfile'), 'x'), { code: 'EROFS' }, `${view}: create`);
            assert.throws(() => writeFileSync(join(m, 'f'), 'x'), { code: 'EROFS' }, `${view}: overwrite`);
            assert.throws(() => mkdirSync(join(m, 'd', 'sub')), { code: 'EROFS' }, `${view}: mkdir`);
            assert.throws(() => rmSync(join(m, 'f')), { code: 'EROFS' }, `${view}: unlink`);
            assert.throws(() => chmodSync(join(m, 'f'), 0o777), { code: 'EROFS' }, `${view}: chmod`);
            assert.equal(readFileSync(join(m, 'f'), 'utf8'), 'one');
          });
        }
        await withMount(e, l2, (m) => assert.throws(() => writeFileSync(join(m, 'x'), 'x'), { code: 'EROFS' }, 'committed mount'));
        // nothing leaked into the layers
        for (const l of [l1, l2]) assert.equal(existsSync(join(e.sn.fsDir(l), 'testfile')), false);
        await e.sn.remove('v1');
        await e.sn.remove('v2');
      }));

    test('the root of a new snapshot is 0755 (containerd RootPermission), with and without a parent', () =>
      withEnv(driver, async (e) => {
        const old = process.umask(0o077); // a strict umask does not leak into the snapshot root
        try {
          await e.sn.prepare('p', undefined);
          await withMount(e, 'p', (m) => assert.equal(statSync(m).mode & 0o7777, 0o755));
          e.sn.commit('c', 'p');
          await e.sn.prepare('child', 'c');
          await withMount(e, 'child', (m) => assert.equal(statSync(m).mode & 0o7777, 0o755));
        } finally {
          process.umask(old);
        }
      }));

    test('labels: given at prepare, merged at commit, reported by stat and walk', () =>
      withEnv(driver, async (e) => {
        await e.sn.prepare('a', undefined, { labels: { x: '1', y: '2' } });
        assert.deepEqual(e.sn.stat('a')!.labels, { x: '1', y: '2' });
        e.sn.commit('c', 'a', { labels: { y: '3', z: '4' } });
        assert.deepEqual(e.sn.stat('c')!.labels, { x: '1', y: '3', z: '4' });
        await e.sn.view('v', 'c', { labels: { v: 'yes' } });
        assert.deepEqual(e.sn.walk().map((x) => [x.key, x.labels]), [['c', { x: '1', y: '3', z: '4' }], ['v', { v: 'yes' }]]);
      }));

    test('sweep removes temporary snapshots whose owner died, never committed ones nor a live owner\'s', () =>
      withEnv(driver, async (e) => {
        // a process that commits one snapshot, prepares a temporary one, and dies
        const c = child('prepare-temp', { root: e.root, driver, key: 'tmp-extract', committed: 'from-child' });
        await c.next((ev) => ev.event === 'ready' || ev.event === 'error');
        assert.equal(e.sn.stat('tmp-extract')!.kind, 'active');
        const deadDir = e.sn.fsDir('tmp-extract');
        assert.ok(existsSync(join(deadDir, 'half', 'f0')));
        await killHard(c);
        // our own temporary snapshot: its owner (this process) is alive
        const mine = await e.sn.prepare('mine', 'from-child', { temporary: true });
        writeFileSync(join(mine, 'x'), 'x');
        // a committed snapshot of ours, and one made from a temporary (commit clears the owner)
        await e.sn.prepare('ours-a', undefined, { temporary: true });
        e.sn.commit('ours', 'ours-a');

        await e.sn.sweep();

        assert.equal(e.sn.stat('tmp-extract'), undefined, 'the dead process\'s temporary snapshot is gone');
        assert.equal(existsSync(deadDir), false, 'and so is its directory');
        assert.equal(e.sn.stat('from-child')!.kind, 'committed');
        assert.equal(readFileSync(join(e.sn.fsDir('from-child'), 'committed-file'), 'utf8'), 'kept');
        assert.equal(e.sn.stat('mine')!.kind, 'active');
        assert.ok(existsSync(join(mine, 'x')));
        assert.equal(e.sn.stat('ours')!.kind, 'committed');
        assert.deepEqual(trashDirs(e), []);
        assert.equal(snapshotDirs(e).length, 3);
        // a second sweep changes nothing
        await e.sn.sweep();
        assert.deepEqual(e.sn.walk().map((x) => x.key).sort(), ['from-child', 'mine', 'ours']);
      }));
  });
}

// ---------------------------------------------------------------------------------------------
// docs/RELIABILITY.md item 23: each leaves the mounted tree equal to a plain reference directory

for (const driver of DRIVERS) {
  describe(`${driver} snapshotter: layered trees equal a reference directory (docs/RELIABILITY.md, item 23)`, () => {
    test('update a lower file across several layers (containerd LayerFileUpdate, docker#21555)', () =>
      withEnv(driver, async (e) => {
        const l1: Applier = [createDir('etc', 0o700), createFile('etc/hosts', 'mydomain 10.0.0.1', 0o644), createFile('etc/profile', 'PATH=/usr/bin', 0o644)];
        const l2: Applier = [createFile('etc/hosts', 'mydomain 10.0.0.2', 0o644), createFile('etc/profile', 'PATH=/usr/bin', 0o666), createDir('root', 0o700), createFile('root/.bashrc', 'PATH=/usr/sbin:/usr/bin', 0o644)];
        const l3: Applier = [createFile('etc/hosts', 'mydomain 10.0.0.3 # same size!', 0o600), createFile('etc/profile', 'PATH=/bin', 0o644)];
        const l4: Applier = [createFile('etc/hosts', 'x', 0o644), chown('etc/profile', 7, 7)];
        for (let i = 0; i < 2; i++) await checkSnapshots(e, l1, l2, l3, l4);
      }));

    test('remove a directory from a lower layer and recreate it (containerd RemoveDirectoryInLowerLayer, docker#25244)', () =>
      withEnv(driver, async (e) => {
        await checkSnapshots(
          e,
          [createDir('lib', 0o700), createFile('lib/hidden', '', 0o644), createDir('lib/sub', 0o755), createFile('lib/sub/deep', 'deep', 0o644)],
          [removeAll('lib'), createDir('lib', 0o700), createFile('lib/not-hidden', '', 0o644)],
          [createFile('lib/newfile', '', 0o644)],
          [removeAll('lib')],
        );
      }));

    test('chown nested directories and a file of a lower layer (containerd Chown, docker#20240/#24913/#28391)', () =>
      withEnv(driver, async (e) => {
        await checkSnapshots(
          e,
          [createDir('opt', 0o700), createDir('opt/a', 0o700), createDir('opt/a/b', 0o700), createFile('opt/a/b/file.txt', 'hello', 0o644)],
          [chown('opt', 1, 1), chown('opt/a', 1, 1), chown('opt/a/b', 1, 1), chown('opt/a/b/file.txt', 1, 1)],
          [chown('opt/a', 2, 3), chmod('opt/a/b', 0o750)],
        );
      }));

    test('directory permissions are kept on commit (containerd DirectoryPermissionOnCommit, docker#27298)', () =>
      withEnv(driver, async (e) => {
        await checkSnapshots(
          e,
          [
            createDir('dir1', 0o700), createDir('dir2', 0o700), createDir('dir3', 0o700), createDir('dir4', 0o700),
            createFile('dir4/f1', '...', 0o644), createDir('dir5', 0o700), createFile('dir5/f1', '...', 0o644),
            chown('dir1', 1, 1), chown('dir2', 1, 1), chown('dir3', 1, 1), chown('dir5', 1, 1), chown('dir5/f1', 1, 1),
            createDir('sticky', 0o1777), createDir('setgid', 0o2755),
          ],
          [chown('dir2', 0, 0), removeAll('dir3'), chown('dir4', 1, 1), chown('dir4/f1', 1, 1), chmod('sticky', 0o1770)],
          [createDir('dir3', 0o700), chown('dir3', 1, 1), removeAll('dir5'), createDir('dir5', 0o700), chown('dir5', 1, 1)],
        );
      }));

    test('files deleted in a child stay deleted in its children (containerd DeletedFilesInChildSnapshot)', () =>
      withEnv(driver, async (e) => {
        await checkSnapshots(
          e,
          [createFile('foo', 'foo\n', 0o777), createFile('foobar', 'foobar\n', 0o777), createDir('d', 0o755), createFile('d/x', 'x', 0o644), symlink('foo', 'lnk')],
          [removeAll('foobar'), removeAll('d/x'), removeAll('lnk')],
          [],
          [createFile('foobar', 'back', 0o600)],
        );
      }));

    test('a hard link moved from a lower layer (containerd MoveFileFromLowerLayer), and a link made to a lower file', () =>
      withEnv(driver, async (e) => {
        await checkSnapshots(
          e,
          [createDir('dir1', 0o700), createFile('dir1/f1', 'Hello', 0o644), createDir('dir2', 0o700), createFile('dir2/f2', '...', 0o644), createFile('dir2/keep', 'keep', 0o640)],
          [createDir('dir3', 0o700), createFile('dir3/f1', 'Hello', 0o644), removeAll('dir1'), link('dir2/f2', 'dir3/f2'), removeAll('dir2/f2'), link('dir2/keep', 'dir3/keep')],
          [createFile('dir3/other', 'o', 0o644)],
        );
      }));

    test('renames of lower files (containerd Rename, docker#25409)', () =>
      withEnv(driver, async (e) => {
        const l2: Applier = driver === 'overlay' ? [] : [rename('dir1', 'dir2')]; // overlay without redirect_dir cannot rename lower dirs (EXDEV)
        l2.push(createFile('somefiles/f1-overwrite', 'new content 1', 0o644), rename('somefiles/f1-overwrite', 'somefiles/f1'), rename('somefiles/f2', 'somefiles/f3'));
        await checkSnapshots(e, [createDir('dir1', 0o700), createDir('somefiles', 0o700), createFile('somefiles/f1', 'was here first!', 0o644), createFile('somefiles/f2', 'nothing interesting', 0o644)], l2);
      }));

    test('127 stacked layers of overwrite/add/remove-then-recreate, all mounted at once (containerd 128LayersMount)', () =>
      withEnv(
        driver,
        async (e) => {
          const appliers: Applier[] = [[createFile('bottom', 'way at the bottom\n', 0o777), createFile('overwriteme', 'FIRST!\n', 0o777), createDir('addhere', 0o755), createDir('onlyme', 0o755), createFile('onlyme/bottom', 'bye!\n', 0o777)]];
          for (let i = 1; i <= 127; i++) {
            appliers.push([createFile('overwriteme', `${i} WAS HERE!\n`, 0o777), createFile(`addhere/file-${i}`, 'same\n', 0o755), removeAll('onlyme'), createDir('onlyme', 0o755), createFile(`onlyme/file-${i}`, 'only me!\n', 0o777)]);
          }
          const flat = mkdtempSync(join(e.work, 'flat-'));
          let parent: string | undefined;
          for (const [i, a] of appliers.entries()) {
            const key = `prepare-layer-${i}`;
            await e.sn.prepare(key, parent);
            await withMount(e, key, (m) => {
              assertSameTree(m, flat, `layer ${i} before apply`);
              apply(a, flat);
              apply(a, m);
              assertSameTree(m, flat, `layer ${i} after apply`);
            });
            parent = `committed-${i}`;
            e.sn.commit(parent, key);
          }
          await e.sn.view('fullview', parent!);
          const mounts = e.sn.mounts('fullview');
          if (driver === 'overlay') {
            assert.equal(mounts.length, 1);
            assert.equal(mounts[0]!.type, 'overlay');
            assert.equal(mounts[0]!.lowers!.length, 128, 'every layer is a lower dir of one overlay mount');
            // the classic mount(2) data (one page) could not carry these lower dirs ...
            const classic = `lowerdir=${mounts[0]!.lowers!.join(':')}`;
            const page = Number(spawnSync('getconf', ['PAGESIZE']).stdout.toString().trim()) || 4096;
            assert.ok(classic.length > page, `the option string is ${classic.length} bytes, not more than a ${page}-byte page`);
            const probe = join(e.work, 'classic');
            mkdirSync(probe);
            // control: the same call with two lower dirs works, so what fails below is the length
            sysMount('overlay', probe, 'overlay', MS_RDONLY, `lowerdir=${mounts[0]!.lowers!.slice(0, 2).join(':')}`);
            assert.equal(readFileSync(join(probe, 'overwriteme'), 'utf8'), '127 WAS HERE!\n');
            umount2(probe, 0);
            let classicMounted = false;
            try {
              sysMount('overlay', probe, 'overlay', MS_RDONLY, classic);
              classicMounted = true;
            } catch {
              /* expected: the kernel truncates mount data at one page */
            }
            if (classicMounted) umount2(probe, MNT_DETACH);
            assert.equal(classicMounted, false, 'mount(2) with the classic option string should fail at this depth');
          }
          // ... yet the full stack mounts and equals the reference
          await withMount(e, 'fullview', (m) => {
            assertSameTree(m, flat, 'the 128-layer view');
            assert.equal(readFileSync(join(m, 'overwriteme'), 'utf8'), '127 WAS HERE!\n');
            assert.deepEqual(readdirSync(join(m, 'onlyme')), ['file-127']);
            assert.equal(readdirSync(join(m, 'addhere')).length, 127);
          });
          await e.sn.remove('fullview');
        },
        // a long root path: 128 lower dirs then overflow the classic one-page mount data for sure
        `lb-snap-${driver}-127-layers-with-a-deliberately-long-store-root-path-`,
      ));
  });
}

// ---------------------------------------------------------------------------------------------
// docs/RELIABILITY.md item 21: a failed unmount never leads to a recursive delete of what is still mounted

for (const driver of DRIVERS) {
  describe(`${driver} snapshotter: removal never deletes through a mount (docs/RELIABILITY.md, item 21)`, () => {
    function precious(e: Env): string {
      const p = join(e.tmp, 'precious');
      mkdirSync(join(p, 'sub'), { recursive: true });
      writeFileSync(join(p, 'data'), 'do not delete');
      writeFileSync(join(p, 'sub', 'more'), 'me neither');
      return p;
    }
    const intact = (p: string) => {
      assert.equal(readFileSync(join(p, 'data'), 'utf8'), 'do not delete');
      assert.equal(readFileSync(join(p, 'sub', 'more'), 'utf8'), 'me neither');
    };

    test('a mount under a snapshot that is kept busy: removal unmounts (lazily) and never deletes the mounted content', () =>
      withEnv(driver, async (e) => {
        const p = precious(e);
        const dir = await e.sn.prepare('busy', undefined);
        mkdirSync(join(dir, 'mnt'));
        sysMount(p, join(dir, 'mnt'), null, MS_BIND, null);
        // keep it busy: a process whose cwd is inside, and an open file
        const holder = spawn('sleep', ['30'], { cwd: join(dir, 'mnt', 'sub'), stdio: 'ignore' });
        const fd = openSync(join(dir, 'mnt', 'data'), 'r');
        try {
          assert.throws(() => umount2(join(dir, 'mnt'), 0), { code: 'EBUSY' }, 'the mount is busy');
          await e.sn.remove('busy');
          assert.equal(e.sn.stat('busy'), undefined);
          intact(p);
          assert.deepEqual(await mountsUnder(e.root), []);
          assert.deepEqual(snapshotDirs(e), []);
        } finally {
          closeSync(fd);
          holder.kill('SIGKILL');
        }
      }));

    test('a mount that cannot be unmounted (hidden under another mount): removal refuses and deletes nothing mounted; a later sweep finishes', () =>
      withEnv(driver, async (e) => {
        const p = precious(e);
        const dir = await e.sn.prepare('stuck', undefined);
        writeFileSync(join(dir, 'own-file'), 'x');
        mkdirSync(join(dir, 'a', 'm'), { recursive: true });
        sysMount(p, join(dir, 'a', 'm'), null, MS_BIND, null);
        // a tmpfs over 'a' hides the bind mount: unmounting a/m by path fails until the tmpfs goes
        sysMount('tmpfs', join(dir, 'a'), 'tmpfs', 0, 'size=1m');
        await assert.rejects(e.sn.remove('stuck'), /refusing to remove|mounts remain/);
        intact(p);
        assert.equal(e.sn.stat('stuck'), undefined, 'a half-removed snapshot is not listed as whole');
        // start-up repair: now the mount is reachable, it is unmounted and the rest deleted
        await e.sn.sweep();
        intact(p);
        assert.deepEqual(await mountsUnder(e.root), []);
        assert.deepEqual(snapshotDirs(e), []);
        assert.equal((e.db.prepare('SELECT COUNT(*) AS n FROM snapshots').get() as { n: number }).n, 0);
      }));

    test('a store root reached through a symlink: removal still finds and unmounts the mounts beneath', () =>
      withEnv(driver, async (e) => {
        const p = precious(e);
        const alias = join(e.tmp, 'alias');
        symlinkSync(e.root, alias);
        const sn = makeSnapshotter(e.db, alias, driver);
        const dir = await sn.prepare('via-link', undefined);
        mkdirSync(join(dir, 'mnt'));
        sysMount(p, join(dir, 'mnt'), null, MS_BIND, null);
        const t0 = performance.now();
        await sn.remove('via-link');
        assert.ok(performance.now() - t0 < 5000, 'removal does not spin on EBUSY');
        intact(p);
        assert.equal(sn.stat('via-link'), undefined);
        assert.deepEqual(await mountsUnder(e.root), [], 'the mount beneath was found and unmounted');
        assert.deepEqual(snapshotDirs(e), []);
      }));
  });
}

// ---------------------------------------------------------------------------------------------
// docs/RELIABILITY.md item 20: kill -9 during a remove never leaves half a snapshot that is listed

for (const driver of DRIVERS) {
  test(`${driver}: kill -9 while removing a big snapshot leaves it whole and listed, or gone after the next sweep (docs/RELIABILITY.md, item 20)`, (tc) =>
    withEnv(driver, async (e) => {
      // the big snapshot's content, built once
      const template = join(e.tmp, 'template');
      for (let d = 0; d < 8; d++) {
        mkdirSync(join(template, `d${d}`, 'nested'), { recursive: true });
        for (let f = 0; f < 100; f++) writeFileSync(join(template, `d${d}`, f % 3 ? `f${f}` : `nested/f${f}`), `file ${d}/${f} `.repeat(f === 0 ? 40000 : 20));
      }
      const want = tree(template);
      const build = async (key: string) => {
        const dir = await e.sn.prepare(`${key}-a`, undefined);
        spawnSync('cp', ['-a', template + '/.', dir + '/']);
        e.sn.commit(key, `${key}-a`);
      };
      // calibrate: how long a removal takes here
      await build('calibrate');
      const t0 = performance.now();
      await e.sn.remove('calibrate');
      const span = Math.max(20, performance.now() - t0);

      const trials = 10;
      let wholeAndListed = 0;
      let goneAfterSweep = 0;
      let midway = 0;
      for (let t = 0; t < trials; t++) {
        await build('big');
        const id = e.sn.stat('big')!.id;
        const c = child('remove', { root: e.root, driver, key: 'big' });
        await c.next((ev) => ev.event === 'start');
        await sleep(((t + 0.5) / trials) * span * 1.3);
        await killHard(c);
        const finished = c.events.some((ev) => ev.event === 'removed');
        const st = e.sn.stat('big');
        if (st) {
          // listed: it must be whole
          assert.equal(st.kind, 'committed');
          assert.deepEqual(tree(e.sn.fsDir('big')), want, `trial ${t}: a listed snapshot is not whole`);
          wholeAndListed++;
          await e.sn.remove('big'); // clean up for the next trial
        } else {
          const leftovers = existsSync(join(e.sn.dir, String(id))) || trashDirs(e).length > 0 || !!e.db.prepare('SELECT 1 FROM snapshots WHERE id = ?').get(id);
          if (leftovers && !finished) midway++;
          await e.sn.sweep();
          assert.equal(existsSync(join(e.sn.dir, String(id))), false, `trial ${t}: directory of a removed snapshot survived the sweep`);
          assert.deepEqual(trashDirs(e), [], `trial ${t}: trash survived the sweep`);
          assert.equal(e.db.prepare('SELECT 1 FROM snapshots WHERE id = ?').get(id), undefined);
          goneAfterSweep++;
        }
        assert.deepEqual(e.sn.walk(), []);
        assert.deepEqual(snapshotDirs(e), []);
      }
      tc.diagnostic(`${trials} kills: ${wholeAndListed} left it whole and listed, ${goneAfterSweep} gone after sweep (${midway} of them mid-delete); removal takes ~${Math.round(span)} ms`);
      assert.equal(wholeAndListed + goneAfterSweep, trials);
      assert.ok(midway >= 1, `no kill landed in the middle of a removal (whole ${wholeAndListed}, gone ${goneAfterSweep}); the test proved nothing`);
    }));
}

// ---------------------------------------------------------------------------------------------
// docs/RELIABILITY.md item 17/18: two processes unpacking the same chain; a killed unpack is never used

interface LayerTar {
  tar: string;
  diffId: Digest;
}

/** Two layer tars made with GNU tar from directories built with fs calls; plus the merged reference. */
function makeLayers(base: string): { layers: LayerTar[]; merged: string } {
  const l1 = join(base, 'l1');
  const l2 = join(base, 'l2');
  const merged = join(base, 'merged');
  for (let d = 0; d < 10; d++) {
    mkdirSync(join(l1, `dir${d}`), { recursive: true });
    for (let f = 0; f < 60; f++) writeFileSync(join(l1, `dir${d}`, `file${f}`), `layer one ${d}/${f} `.repeat(150));
  }
  mkdirSync(join(l2, 'dir0'), { recursive: true });
  mkdirSync(join(l2, 'new'), { recursive: true });
  for (let f = 0; f < 10; f++) writeFileSync(join(l2, 'dir0', `file${f}`), `layer two replaces ${f}`);
  for (let f = 0; f < 100; f++) writeFileSync(join(l2, 'new', `n${f}`), `layer two ${f} `.repeat(60));
  chmodSync(join(l2, 'new'), 0o750);
  mkdirSync(merged);
  spawnSync('cp', ['-a', l1 + '/.', merged + '/']);
  spawnSync('cp', ['-a', l2 + '/.', merged + '/']);
  const layers = [l1, l2].map((dir, i) => {
    const tar = join(base, `layer${i + 1}.tar`);
    const names = readdirSync(dir).sort();
    const r = spawnSync('tar', ['--format=ustar', '--numeric-owner', '--owner=0', '--group=0', '--sort=name', '-C', dir, '-cf', tar, ...names]);
    assert.equal(r.status, 0, r.stderr.toString());
    return { tar, diffId: ('sha256:' + createHash('sha256').update(readFileSync(tar)).digest('hex')) as Digest };
  });
  return { layers, merged };
}

/** Polls committed snapshots while `until` runs; records a fingerprint of every one it sees. */
function observe(e: Env, until: Promise<unknown>): Promise<Map<string, Set<string>>> {
  const seen = new Map<string, Set<string>>();
  const fp = (dir: string) => createHash('sha256').update(JSON.stringify(walkTree(dir, { hash: false }).map(({ path, type, mode, size }) => [path, type, mode, size]))).digest('hex');
  let done = false;
  void until.finally(() => (done = true));
  return (async () => {
    while (!done) {
      const rows = e.db.prepare("SELECT key FROM snapshots WHERE kind = 'committed' UNION SELECT snapshot AS key FROM layers").all() as { key: string }[];
      for (const { key } of rows) {
        try {
          const f = fp(e.sn.fsDir(key));
          seen.set(key, (seen.get(key) ?? new Set()).add(f));
        } catch {
          /* removed between the query and the walk */
        }
      }
      await sleep(10);
    }
    return seen;
  })();
}

async function mergedView(e: Env, top: string, fn: (dir: string) => void): Promise<void> {
  await e.sn.view('check-view', top);
  try {
    await withMount(e, 'check-view', fn);
  } finally {
    await e.sn.remove('check-view');
  }
}

for (const driver of DRIVERS) {
  describe(`${driver}: concurrent unpacks of one chain through LayerStore (docs/RELIABILITY.md, items 17, 18)`, () => {
    test('two processes unpack the same chainIDs: one wins, both succeed, nobody sees a half-extracted snapshot', (tc) =>
      withEnv(driver, async (e) => {
        const { layers, merged } = makeLayers(join(e.tmp, 'src'));
        const chain = chainIds(layers.map((l) => l.diffId));
        for (let round = 0; round < 2; round++) {
          const a = child('ensure', { root: e.root, driver, layers, chunkDelayMs: 2 });
          const b = child('ensure', { root: e.root, driver, layers, chunkDelayMs: 2 });
          const both = Promise.all([a, b].map((c) => c.next((ev) => ev.event === 'done' || ev.event === 'error')));
          const seen = await observe(e, Promise.all([a.exit, b.exit]));
          const [ra, rb] = await both;
          assert.equal(ra!.event, 'done', JSON.stringify(ra) + a.stderr());
          assert.equal(rb!.event, 'done', JSON.stringify(rb) + b.stderr());
          assert.deepEqual(ra!.chainIds, chain);
          assert.deepEqual(rb!.chainIds, chain);
          const started = [a, b].map((c) => c.events.filter((ev) => ev.event === 'layer' && ev.type === 'start').length);
          if (round === 0) {
            const loser = [a, b].find((c) => !c.events.some((ev) => ev.event === 'layer' && ev.type === 'start'))!;
            tc.diagnostic(`loser's events: ${loser.events.filter((ev) => ev.event === 'layer').map((ev) => `${ev.type}:${ev.index}`).join(' ')}; observer saw ${[...seen.keys()].length} committed snapshots`);
            assert.deepEqual(started.slice().sort(), [0, 2], `exactly one process unpacks the layers: ${JSON.stringify([a.events, b.events])}`);
          } else {
            assert.deepEqual(started, [0, 0], 'present layers are not unpacked again');
          }
          // exactly one layer record and one committed snapshot per chainID, no leftovers
          const rows = e.db.prepare('SELECT chain_id, snapshot, parent FROM layers ORDER BY chain_id').all() as { chain_id: string; snapshot: string; parent: string | null }[];
          assert.deepEqual(rows.map((r) => r.chain_id).sort(), [...chain].sort());
          assert.deepEqual(e.sn.walk().map((s) => [s.key, s.kind, s.parent]).sort(), [[chain[0], 'committed', undefined], [chain[1], 'committed', chain[0]]].sort());
          assert.equal(snapshotDirs(e).length, 2, `snapshot dirs: ${snapshotDirs(e).join(' ')}`);
          // every state the observer saw of a committed snapshot is its final state
          for (const [key, fps] of seen) {
            assert.ok(chain.includes(key as Digest), `an unexpected snapshot ${key} was committed`);
            assert.equal(fps.size, 1, `snapshot ${key} was seen in ${fps.size} different states`);
          }
          await mergedView(e, chain[1]!, (m) => assertSameTree(m, merged, 'the unpacked chain'));
        }
      }));

    test('two processes import the same tar: both unpack, one records it, the other\'s work is discarded', () =>
      withEnv(driver, async (e) => {
        const { layers } = makeLayers(join(e.tmp, 'src'));
        const a = child('import', { root: e.root, driver, tar: layers[0]!.tar, chunkDelayMs: 5 });
        const b = child('import', { root: e.root, driver, tar: layers[0]!.tar, chunkDelayMs: 5 });
        const both = Promise.all([a, b].map((c) => c.next((ev) => ev.event === 'done' || ev.event === 'error')));
        // both are unpacking at once: two temporary snapshots exist together at some point
        let maxActive = 0;
        const seen = await observe(
          e,
          (async () => {
            const exits = Promise.all([a.exit, b.exit]);
            let over = false;
            void exits.then(() => (over = true));
            while (!over) {
              maxActive = Math.max(maxActive, (e.db.prepare("SELECT COUNT(*) AS n FROM snapshots WHERE kind = 'active'").get() as { n: number }).n);
              await sleep(5);
            }
          })(),
        );
        const [ra, rb] = await both;
        assert.equal(ra!.event, 'done', JSON.stringify(ra) + a.stderr());
        assert.equal(rb!.event, 'done', JSON.stringify(rb) + b.stderr());
        assert.equal(ra!.diffId, layers[0]!.diffId);
        assert.equal(rb!.diffId, layers[0]!.diffId);
        assert.equal(maxActive, 2, 'both processes were unpacking at the same time');
        assert.deepEqual(e.sn.walk().map((s) => [s.key, s.kind]), [[layers[0]!.diffId, 'committed']]);
        assert.equal((e.db.prepare('SELECT COUNT(*) AS n FROM layers').get() as { n: number }).n, 1);
        assert.equal(snapshotDirs(e).length, 1, `snapshot dirs: ${snapshotDirs(e).join(' ')}`);
        for (const [key, fps] of seen) assert.equal(fps.size, 1, `snapshot ${key} was seen in ${fps.size} different states`);
        await mergedView(e, layers[0]!.diffId, (m) => assertSameTree(m, join(e.tmp, 'src', 'l1'), 'the imported layer'));
      }));

    test('an unpack killed midway is never committed nor used as a parent; the next process unpacks it; sweep removes the remains', (tc) =>
      withEnv(driver, async (e) => {
        const { layers, merged } = makeLayers(join(e.tmp, 'src'));
        const chain = chainIds(layers.map((l) => l.diffId));
        const a = child('ensure', { root: e.root, driver, layers, chunkDelayMs: 5 });
        await a.next((ev) => ev.event === 'layer' && ev.type === 'start');
        await sleep(150);
        await killHard(a);
        assert.ok(!a.events.some((ev) => ev.event === 'done'), 'the unpack was killed before it finished');
        assert.equal((e.db.prepare('SELECT COUNT(*) AS n FROM layers').get() as { n: number }).n, 0, 'no layer is recorded');
        const leftovers = e.sn.walk();
        assert.ok(leftovers.length >= 1 && leftovers.every((s) => s.kind === 'active'), `only incomplete (active) snapshots remain: ${JSON.stringify(leftovers)}`);
        // incomplete snapshots cannot be parents
        for (const s of leftovers) await rejectsKind(e.sn.prepare(`on-${s.id}`, s.key), 'failed-precondition', 'SNAPSHOT_PARENT');
        // the next process breaks the dead process's layer locks and unpacks the chain
        const b = child('ensure', { root: e.root, driver, layers, chunkDelayMs: 0 });
        const rb = await b.next((ev) => ev.event === 'done' || ev.event === 'error');
        assert.equal(rb.event, 'done', JSON.stringify(rb) + b.stderr());
        await b.exit;
        // start-up repair removes what the dead process left
        const content = new ContentStore(e.root);
        await content.init();
        await content.sweep();
        await e.sn.sweep();
        await new LayerStore(e.db, content, e.sn, e.root).sweep();
        assert.deepEqual(e.sn.walk().map((s) => [s.key, s.kind]).sort(), [[chain[0], 'committed'], [chain[1], 'committed']].sort());
        tc.diagnostic(`after the sweeps, the layer store's tmp/ still holds: ${readdirSync(join(e.root, 'tmp')).join(' ') || 'nothing'}`);
        assert.equal(snapshotDirs(e).length, 2, `snapshot dirs: ${snapshotDirs(e).join(' ')}`);
        await mergedView(e, chain[1]!, (m) => assertSameTree(m, merged, 'the unpacked chain'));
      }));
  });
}
