/**
 * docs/RELIABILITY.md item 37 — limits are the same everywhere: what `commit`, `save` and `push`
 * write, `load` and `pull` accept, and what they would refuse is refused at `commit`
 * (issue 9.7). Path depth (1024 components, src/archive/limits.ts) and the number of
 * layers (499: overlayfs stacks 500 lower layers, a container adds its init layer).
 * Real pieces: runc containers, Debian's docker-registry, skopeo.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lbp, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { layerTar, writeDockerArchive } from '../testing/images.js';
import { startRegistry, type TestRegistry } from '../registry/testing/registries.js';

const execFileP = promisify(execFile);
let registry: TestRegistry;
const work = mkdtempSync(join(tmpdir(), 'lb-limits-'));
const BASE = join(FIXTURES, 'busybox-base.docker.tar');
const BB = 'bench/busybox:latest';

before(async () => {
  registry = await startRegistry({ auth: 'none' });
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function ok(root: string, args: string[], input?: string): Promise<string> {
  const r = await lbp(root, args, input !== undefined ? { input } : {});
  assert.equal(r.code, 0, `layerbox ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** What a refused command must leave: the images listed before, a clean store, an empty tmp/. */
async function assertUnchanged(root: string, images: string): Promise<void> {
  assert.equal(await ok(root, ['images', '-qa', '--no-trunc']), images, 'no image added');
  assert.deepEqual(readdirSync(join(root, 'tmp')), [], 'nothing left in tmp/');
  const c = await lbp(root, ['system', 'check']);
  assert.equal(c.code, 0, c.stdout + c.stderr);
}

/** busybox sh: `depth` nested directories `d`, and a file `f` at the bottom. */
const deepTree = (depth: number) => `i=0; while [ $i -lt ${depth} ]; do mkdir d; cd d; i=$((i+1)); done; echo bottom > f`;

test('docs/RELIABILITY.md item 37: a path 1100 directories deep is refused by commit with a clear error; at the limit (1024) commit, save, load, push and pull all take it', async () => {
  const a = tempRoot();
  const b = tempRoot();
  const c = tempRoot();
  try {
    await ok(a.root, ['load', '-i', BASE]);
    const before = await ok(a.root, ['images', '-qa', '--no-trunc']);

    // too deep: the commit says so and stores nothing
    await ok(a.root, ['run', '--name', 'deep', '--network', 'none', BB, 'sh', '-c', deepTree(1100)]);
    const r = await lbp(a.root, ['commit', 'deep', 'limits/deep:1100']);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /"\/d\/d\/d.*" is 1025 directories deep: a layer holds paths at most 1024 deep \(load and pull refuse deeper ones\), so this container cannot be committed/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    await assertUnchanged(a.root, before);

    // at the limit: the entry d/…/d/f is 1024 components deep
    await ok(a.root, ['run', '--name', 'limit', '--network', 'none', BB, 'sh', '-c', deepTree(1023)]);
    const name = `${registry.host}/limits/deep:1024`;
    await ok(a.root, ['commit', 'limit', name]);
    const archive = join(work, 'deep.tar');
    await ok(a.root, ['save', '-o', archive, name]);
    await ok(a.root, ['push', name]);

    const rel = 'd/'.repeat(1023) + 'f';
    const ways: [string, string[]][] = [
      [b.root, ['load', '-i', archive]],
      [c.root, ['pull', name]],
    ];
    for (const [root, how] of ways) {
      await ok(root, how);
      const m = (await ok(root, ['image', 'mount', name])).trim();
      try {
        assert.equal(statSync(join(m, rel)).size, 'bottom\n'.length, `${how[0]}: the deepest file is there`);
      } finally {
        await ok(root, ['image', 'unmount', name]);
      }
    }
  } finally {
    for (const t of [a, b, c]) {
      const ids = (await lbp(t.root, ['ps', '-aq'])).stdout.split('\n').filter(Boolean);
      if (ids.length) await lbp(t.root, ['rm', '-f', ...ids]);
      t.cleanup();
    }
  }
});

/** A docker-archive of busybox's layer and `n - 1` one-file layers above it. */
function manyLayers(n: number, path: string, tag: string): void {
  const base = execFileSync('tar', ['-xOf', BASE, '4364bfe66eecaafaff2e50e490cf5c376628101fc323cf350069d19010246f09/layer.tar'], { maxBuffer: 64 << 20 });
  const layers: Buffer[] = [base];
  for (let i = 1; i < n; i++) layers.push(layerTar([{ path: `l/${i}`, type: 'file', data: `${i}\n` }]));
  writeDockerArchive(path, layers, tag);
}

test('an image of 601 layers is refused by load and pull with "max depth exceeded" naming the overlayfs limit; 499 layers load and run (500 lower layers with the init layer), and commit refuses to make the 500th', async () => {
  const t = tempRoot();
  try {
    const many = join(work, 'l601.tar');
    manyLayers(601, many, 'limits/many:601');
    const refused = /max depth exceeded: image limits\/many:601 has 601 layers; an image has at most 499 \(overlayfs stacks at most 500 lower layers, and a container adds its init layer\)/;

    const l = await lbp(t.root, ['load', '-i', many]);
    assert.equal(l.code, 1, l.stdout);
    assert.match(l.stderr, refused);
    assert.equal(readdirSync(join(t.root, 'snapshots')).filter((s) => /^\d+$/.test(s)).length, 0, 'no layer was unpacked');
    await assertUnchanged(t.root, '');

    // the same image in a registry (pushed by skopeo): refused before any layer is fetched
    const ref = `${registry.host}/limits/many:601`;
    // not execFileSync: the registry's log pipe is read by this process's event loop
    await execFileP('skopeo', ['copy', '-q', '--dest-tls-verify=false', `docker-archive:${many}`, `docker://${ref}`]);
    const p = await lbp(t.root, ['pull', ref]);
    assert.equal(p.code, 1, p.stdout);
    assert.match(p.stderr, /max depth exceeded: .*limits\/many:601 has 601 layers; an image has at most 499/);
    assert.equal(readdirSync(join(t.root, 'snapshots')).filter((s) => /^\d+$/.test(s)).length, 0, 'no layer was fetched');
    await assertUnchanged(t.root, '');

    // at the limit: the container mounts 500 lower layers, and runs
    const most = join(work, 'l499.tar');
    manyLayers(499, most, 'limits/many:499');
    await ok(t.root, ['load', '-i', most]);
    const out = await ok(t.root, ['run', '--name', 'c499', '--network', 'none', 'limits/many:499', 'sh', '-c', 'ls /l | wc -l; cat /l/498']);
    assert.deepEqual(out.trim().split(/\s+/), ['498', '498']);
    const imgs = await ok(t.root, ['images', '-qa', '--no-trunc']);
    const cm = await lbp(t.root, ['commit', 'c499', 'limits/many:500']);
    assert.equal(cm.code, 1, cm.stdout);
    assert.match(cm.stderr, /max depth exceeded: the image committed from c499 would have 500 layers; an image has at most 499/);
    await assertUnchanged(t.root, imgs);
  } finally {
    const ids = (await lbp(t.root, ['ps', '-aq'])).stdout.split('\n').filter(Boolean);
    if (ids.length) await lbp(t.root, ['rm', '-f', ...ids]);
    t.cleanup();
  }
});
