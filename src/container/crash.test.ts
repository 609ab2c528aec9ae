/**
 * kill -9 of create, run -d, start and rm at random moments: the next command leaves no
 * orphan (snapshot, mount, directory, network state, conmon), and the store's usage returns
 * to its baseline once everything is removed. system check finds what no record explains
 * (a partial copy, the leftovers of a container without a record) and --repair removes it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { lb, lbAsync, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { conmonsOf, storeOrphans, storeUsage } from '../testing/store.js';

const t = tempRoot('lb-ctrcrash-');
const root = t.root;
const BB = 'bench/busybox:latest';
const TRIALS = 25;

function ok(args: string[]): string {
  const r = lb(root, args);
  assert.equal(r.code, 0, `layerbox ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The next command (`ps -a`): the containers it lists. */
function next(): string[] {
  return ok(['ps', '-aq', '--no-trunc']).split('\n').filter(Boolean);
}

/** Waits until no conmon exit command of this store (engine/exit-hook.js, which holds the container's lock while it cleans up) runs any more. */
async function settle(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    let busy = false;
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (argv.includes(root) && argv.includes('exit-hook.js\0')) busy = true;
      } catch {
        /* gone */
      }
    }
    if (!busy) return;
    await sleep(50);
  }
}

/** After a kill: the next command leaves nothing that no listed container explains. */
async function assertNoOrphans(what: string): Promise<string[]> {
  await settle();
  const ids = next();
  assert.deepEqual(storeOrphans(root, ids), [], `${what}: orphans after the next command`);
  const strays = conmonsOf(root).filter((c) => !ids.includes(c));
  // a conmon whose container was removed ends as soon as its container is gone
  for (let i = 0; i < 100 && conmonsOf(root).some((c) => !ids.includes(c)); i++) await sleep(50);
  assert.deepEqual(conmonsOf(root).filter((c) => !ids.includes(c)), [], `${what}: conmon left (${strays.join(', ')})`);
  return ids;
}

function removeAll(): void {
  const ids = next();
  if (ids.length) ok(['rm', '-f', ...ids]);
}

/** How long `args` takes when not killed (ms): the median of three runs. */
function span(args: () => string[], undo: (out: string) => void): number {
  const d: number[] = [];
  for (let i = 0; i < 3; i++) {
    const a = args();
    const t0 = Date.now();
    const out = ok(a);
    d.push(Date.now() - t0);
    undo(out);
  }
  return d.sort((x, y) => x - y)[1]!;
}

/** Runs `args` and kills it (SIGKILL) after `ms`; whether it was still running then. */
async function killAt(args: string[], ms: number): Promise<boolean> {
  const { child, done } = lbAsync(root, args);
  await sleep(ms);
  const killed = child.kill('SIGKILL');
  const r = await done;
  return killed && r.code !== 0;
}

/** A random moment of a command that takes `d` ms (past most of the CLI's start-up). */
const moment = (d: number) => d * (0.2 + 0.8 * Math.random());

let baseline: ReturnType<typeof storeUsage>;

before(() => {
  // a whole cycle first, so every directory the store makes on first use exists in the baseline
  ok(['load', '-q', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
  const id = ok(['run', '-d', BB, 'sleep', '1000']).trim();
  ok(['rm', '-f', id]);
  ok(['rmi', BB]);
  baseline = storeUsage(root);
  ok(['load', '-q', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
});

after(() => {
  removeAll();
  t.cleanup();
});

/** Every fourth trial on the bridge network (netns, veth, IPAM, iptables), the others without a network. */
const net = (i: number) => (i % 4 === 0 ? [] : ['--network', 'none']);

test(`kill -9 of create at random moments (${TRIALS} trials): the next command removes what it left`, async () => {
  const args = ['create', '--network', 'none', BB, 'true'];
  const d = span(() => args, (id) => ok(['rm', id.trim()]));
  let midway = 0;
  for (let i = 0; i < TRIALS; i++) {
    if (await killAt(args, moment(d))) midway++;
    await assertNoOrphans(`create trial ${i}`);
  }
  removeAll();
  await assertNoOrphans('create: after rm');
  assert.ok(midway >= TRIALS / 2, `only ${midway} kills hit a running create`);
});

test(`kill -9 of run -d at random moments (${TRIALS} trials): no orphan`, async () => {
  const d = span(() => ['run', '-d', BB, 'sleep', '1000'], (id) => ok(['rm', '-f', id.trim()]));
  let midway = 0;
  for (let i = 0; i < TRIALS; i++) {
    if (await killAt(['run', '-d', ...net(i), BB, 'sleep', '1000'], moment(d))) midway++;
    await assertNoOrphans(`run -d trial ${i}`);
    if (i % 5 === 4) {
      removeAll();
      await assertNoOrphans(`run -d trial ${i}: after rm -f`);
    }
  }
  assert.ok(midway >= TRIALS / 2, `only ${midway} kills hit a running run -d`);
});

test(`kill -9 of start at random moments (${TRIALS} trials): no orphan; the container starts again, and rm -f removes everything`, async () => {
  const created = (i: number) => ok(['create', ...net(i), BB, 'sleep', '1000']).trim();
  let probe = '';
  const d = span(
    () => ['start', (probe = created(0))],
    () => ok(['rm', '-f', probe]),
  );
  let midway = 0;
  for (let i = 0; i < TRIALS; i++) {
    const id = created(i);
    if (await killAt(['start', id], moment(d))) midway++;
    const ids = await assertNoOrphans(`start trial ${i}`);
    assert.ok(ids.includes(id), 'a killed start leaves the container');
    if (i % 5 === 4) {
      const s = lb(root, ['start', id]);
      assert.equal(s.code, 0, `start after a killed start: ${s.stderr}`);
      removeAll();
      await assertNoOrphans(`start trial ${i}: after rm -f`);
    }
  }
  assert.ok(midway >= TRIALS / 2, `only ${midway} kills hit a running start`);
});

test(`kill -9 of rm at random moments (${TRIALS} trials): the next command finishes the removal`, async () => {
  const started = (i: number) => ok(['run', '-d', ...net(i), BB, 'sleep', '1000']).trim();
  let probe = '';
  const d = span(
    () => ['rm', '-f', (probe = started(1))],
    () => {},
  );
  void probe;
  let midway = 0;
  for (let i = 0; i < TRIALS; i++) {
    const id = started(i);
    if (await killAt(['rm', '-f', id], moment(d))) midway++;
    await assertNoOrphans(`rm trial ${i}`);
    if (i % 5 === 4) removeAll();
  }
  removeAll();
  await assertNoOrphans('rm: after rm -f');
  assert.ok(midway >= TRIALS / 2, `only ${midway} kills hit a running rm`);
});

test('after all the kills, rm and rmi bring the store back to its baseline', () => {
  removeAll();
  ok(['rmi', BB]);
  try {
    const now = storeUsage(root);
    assert.deepEqual(now.paths, baseline.paths);
    assert.equal(now.bytes, baseline.bytes);
  } finally {
    ok(['load', '-q', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
  }
});

test('system check finds a planted partial copy and the leftovers of a container without a record; system check --repair removes them', () => {
  const before = storeUsage(root);
  const keep = ok(['create', '--network', 'none', BB, 'true']).trim();
  const orphan = ok(['create', '--network', 'none', BB, 'true']).trim();
  const db = new Database(join(root, 'metadata.db'), { timeout: 30000 });
  let snap: number;
  try {
    snap = (db.prepare('SELECT id FROM snapshots WHERE key = ?').get(`ctr-${keep}`) as { id: number }).id;
    // what a killed create of an older version left: snapshot, init layer, directory and a
    // live overlay mount, and no record
    db.prepare('DELETE FROM containers WHERE id = ?').run(orphan);
  } finally {
    db.close();
  }
  // a partial copy of an upper dir (a start that ran out of space in an older version)
  const partial = join(root, 'snapshots', String(snap), 'fs.private');
  mkdirSync(join(partial, 'etc'), { recursive: true });
  writeFileSync(join(partial, 'big'), Buffer.alloc(1 << 20, 1));
  assert.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(join(root, 'containers', orphan, 'rootfs')));

  const found = lb(root, ['system', 'check']);
  assert.equal(found.code, 1, found.stdout + found.stderr);
  assert.match(found.stdout, new RegExp(`${partial}: not part of snapshot ctr-${keep} \\(a partial copy\\)`));
  assert.match(found.stdout, new RegExp(`container ${orphan}: .*directory .*mount .*snapshot ctr-${orphan}.* without a container record`));
  assert.match(found.stdout, /system check --repair/);
  assert.ok(existsSync(partial), 'a plain check removes nothing it cannot explain');

  const repaired = lb(root, ['system', 'check', '--repair']);
  assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
  assert.match(repaired.stdout, new RegExp(`Repaired: removed ${partial}`));
  assert.match(repaired.stdout, new RegExp(`Repaired: removed the leftovers of container ${orphan}`));
  assert.match(repaired.stdout, /no problems/);
  assert.match(ok(['system', 'check']), /no problems/);
  assert.ok(!existsSync(partial));
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(orphan), 'the orphan mount is gone');
  assert.deepEqual(storeOrphans(root, next()), []);
  // the container that was kept is whole
  ok(['start', '-a', keep]);
  ok(['rm', keep]);
  const now = storeUsage(root);
  assert.deepEqual(now.paths, before.paths);
  assert.equal(now.bytes, before.bytes);
});
