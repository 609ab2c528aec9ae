/** kill -9 during load never corrupts the store; concurrent loads share layers and both succeed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lb, lbAsync, tempRoot } from '../testing/cli.js';
import { layerTar, randomLayer, writeDockerArchive } from '../testing/images.js';
import { FIXTURES } from '../testing/tree.js';

function check(root: string): string {
  const r = lb(root, ['system', 'check']);
  assert.equal(r.code, 0, `store inconsistent:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

test('kill -9 of load at random moments (25 trials) never leaves a corrupt store; the next load succeeds', async () => {
  const work = mkdtempSync(join(tmpdir(), 'lb-crash-'));
  const t = tempRoot();
  try {
    // 4 layers, ~48 MB: long enough to be killed in every phase
    const layers = [0, 1, 2, 3].map((i) => layerTar(randomLayer(`d${i}`, 60, 200_000)));
    const archive = join(work, 'big.tar');
    const id = writeDockerArchive(archive, layers, 'crash/test:latest');
    // how long a whole load takes here: kill at a uniformly random moment within it
    const t0 = Date.now();
    assert.equal(lb(t.root, ['load', '-q', '-i', archive]).code, 0);
    const span = Date.now() - t0;
    let killedDuring = 0;
    for (let trial = 0; trial < 25; trial++) {
      // start from a store without the image, so every phase (spool, unpack, commit, record) can be hit
      if (lb(t.root, ['images', '-q', 'crash/test']).stdout.trim()) assert.equal(lb(t.root, ['rmi', 'crash/test']).code, 0);
      const { child, done } = lbAsync(t.root, ['load', '-q', '-i', archive]);
      await sleep(10 + Math.floor(Math.random() * span));
      const killed = child.kill('SIGKILL');
      const r = await done;
      if (killed && r.code !== 0) killedDuring++;
      // listing is consistent at every moment: an image is listed only whole
      const ls = lb(t.root, ['images', '--format', '{{.ID}} {{.Repository}}']);
      assert.equal(ls.code, 0, ls.stderr);
      if (ls.stdout.includes('crash/test')) {
        const insp = lb(t.root, ['image', 'inspect', 'crash/test']);
        assert.equal(insp.code, 0);
        assert.equal(JSON.parse(insp.stdout)[0].Id, id);
      }
      check(t.root);
    }
    assert.ok(killedDuring >= 10, `only ${killedDuring} trials were killed mid-load`);
    const r = lb(t.root, ['load', '-i', archive]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Loaded image: crash\/test:latest/);
    check(t.root);
    // no temporary snapshot or spool file survives a clean run
    const snaps = readdirSync(join(t.root, 'snapshots'));
    assert.equal(snaps.filter((s) => s.startsWith('.trash')).length, 0);
    assert.deepEqual(readdirSync(join(t.root, 'tmp')), []);
  } finally {
    t.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
});

test('two loads started together of images that share a layer store it once and both succeed', async () => {
  const t = tempRoot();
  try {
    for (let round = 0; round < 3; round++) {
      const a = lbAsync(t.root, ['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
      const b = lbAsync(t.root, ['load', '-i', join(FIXTURES, 'busybox-changed.docker.tar')]);
      const [ra, rb] = await Promise.all([a.done, b.done]);
      assert.equal(ra.code, 0, ra.stderr);
      assert.equal(rb.code, 0, rb.stderr);
      const snaps = readdirSync(join(t.root, 'snapshots')).filter((s) => /^\d+$/.test(s));
      assert.equal(snaps.length, 2, `snapshots: ${snaps.join(',')}`);
      const ls = lb(t.root, ['images', '--format', '{{.Repository}}:{{.Tag}}']).stdout.trim().split('\n').sort();
      assert.deepEqual(ls, ['bench/busybox:changed', 'bench/busybox:latest']);
      check(t.root);
      assert.equal(lb(t.root, ['rmi', 'bench/busybox:latest', 'bench/busybox:changed']).code, 0);
      assert.deepEqual(readdirSync(join(t.root, 'snapshots')).filter((s) => /^\d+$/.test(s)), []);
    }
  } finally {
    t.cleanup();
  }
});
