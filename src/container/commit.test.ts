/**
 * diff and commit against Docker's own results (the busybox-changed fixture), through
 * the CLI with the real pieces; interop of committed images with skopeo, umoci and a
 * registry; pause during commit; bad input; kill -9 during commit.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, cliEnv, lb, lbp, lbAsync, tempRoot } from '../testing/cli.js';
import { FIXTURES, walkTree, readExpected, compareWithExpected } from '../testing/tree.js';
import { validateOci } from '../testing/oci-schema.js';
import { startRegistry } from '../registry/testing/registries.js';

const t = tempRoot('lb-commit-');
const root = t.root;
const work = mkdtempSync(join(tmpdir(), 'lb-commit-work-'));
const BB = 'bench/busybox:latest';
const expected = readExpected('busybox-changed.expected.json');

/** The change script Docker ran to make the fixture (from make-fixtures.sh). */
function changeScript(): string {
  const text = readFileSync(join(FIXTURES, 'make-fixtures.sh'), 'utf8');
  const m = /docker run --name "\$ctr_run" --network none "\$BASE_TAG" sh -euc '\n([\s\S]*?)\n'\n/.exec(text);
  assert.ok(m, 'change script found in make-fixtures.sh');
  return m[1]!;
}

function ok(args: string[]): string {
  const r = lb(root, args);
  assert.equal(r.code, 0, `layerbox ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function assertTree(name: string): void {
  const path = ok(['image', 'mount', name]).trim();
  try {
    assert.deepEqual(compareWithExpected(walkTree(path), expected), []);
  } finally {
    ok(['image', 'unmount', name]);
  }
}

before(() => {
  ok(['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
});
after(() => {
  const ids = lb(root, ['ps', '-aq']).stdout.split('\n').filter(Boolean);
  if (ids.length) lb(root, ['rm', '-f', ...ids]);
  t.cleanup();
  rmSync(work, { recursive: true, force: true });
});

test('the fixture changes made in a busybox container: diff prints Docker\'s lines; the committed image is Docker\'s tree', () => {
  ok(['run', '--name', 'fx', '--network', 'none', BB, 'sh', '-euc', changeScript()]);
  const diff = ok(['diff', 'fx']).trim().split('\n').sort();
  const docker = readFileSync(join(FIXTURES, 'busybox-changed.docker-diff.txt'), 'utf8').trim().split('\n').sort();
  assert.deepEqual(diff, docker);
  const id = ok(['commit', '-a', 'fixtures', '-m', 'busybox fixture changes', '-c', 'CMD ["/bin/sh"]', 'fx', 'test/changed:1']).trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  assertTree('test/changed:1');
  const insp = JSON.parse(ok(['image', 'inspect', 'test/changed:1']))[0];
  assert.equal(insp.RootFS.Layers.length, 2);
  assert.equal(insp.RootFS.Layers[0], expected.image.rootfsLayers[0], 'the base layer is the base image\'s');
  assert.equal(insp.Author, 'fixtures');
  assert.equal(insp.Comment, 'busybox fixture changes');
  assert.deepEqual(insp.Config.Cmd, ['/bin/sh']);
  assert.equal(insp.Parent, JSON.parse(ok(['image', 'inspect', BB]))[0].Id);
  // the layer tar lists like Docker's (names, types, modes, owners, link targets; not times)
  const save = join(work, 'changed.tar');
  ok(['save', '-o', save, 'test/changed:1']);
  const x = join(work, 'x');
  execFileSync('mkdir', ['-p', x]);
  execFileSync('tar', ['-xf', save, '-C', x]);
  const m = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8'))[0];
  const ours = execFileSync('tar', ['--numeric-owner', '-tvf', join(x, m.Layers[1])]).toString();
  const theirs = readFileSync(join(FIXTURES, 'busybox-changed.top-layer.tvf.txt'), 'utf8');
  const norm = (s: string) =>
    s
      .trim()
      .split('\n')
      .map((l) => {
        const f = l.split(/\s+/);
        // perms owner size date time name... : keep perms, owner, name and link
        return [f[0], f[1], ...f.slice(5)].join(' ');
      });
  assert.deepEqual(norm(ours), norm(theirs));
  // history shows the author and message; the base row is the base image
  const hist = ok(['history', '--no-trunc', '--format', '{{.ID}}|{{.Comment}}', 'test/changed:1']).trim().split('\n');
  assert.equal(hist[0], `${id}|busybox fixture changes`);
  ok(['rm', 'fx']);
});

test('the committed image: OCI schemas, skopeo inspect, umoci unpack to the same tree, push and pull back intact', async () => {
  const dir = join(work, 'oci');
  ok(['save', '--format', 'oci-dir', '-o', dir, 'test/changed:1']);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  assert.deepEqual(validateOci('image-index-schema', index), []);
  const blob = (d: string) => readFileSync(join(dir, 'blobs', 'sha256', d.slice(7)));
  const manifest = JSON.parse(blob(index.manifests[0].digest).toString());
  assert.deepEqual(validateOci('image-manifest-schema', manifest), []);
  assert.deepEqual(validateOci('config-schema', JSON.parse(blob(manifest.config.digest).toString())), []);
  execFileSync('skopeo', ['inspect', `oci:${dir}:1`]);
  const bundle = join(work, 'bundle');
  execFileSync('umoci', ['unpack', '--image', `${dir}:1`, bundle]);
  assert.deepEqual(compareWithExpected(walkTree(join(bundle, 'rootfs')), expected), []);
  const reg = await startRegistry({ auth: 'none' });
  try {
    const name = `${reg.host}/test/changed:1`;
    assert.equal((await lbp(root, ['tag', 'test/changed:1', name])).code, 0);
    const p = await lbp(root, ['push', name]);
    assert.equal(p.code, 0, p.stderr);
    const t2 = tempRoot();
    try {
      const r = await lbp(t2.root, ['pull', name]);
      assert.equal(r.code, 0, r.stderr);
      const path = (await lbp(t2.root, ['image', 'mount', name])).stdout.trim();
      assert.deepEqual(compareWithExpected(walkTree(path), expected), []);
      await lbp(t2.root, ['image', 'unmount', name]);
    } finally {
      t2.cleanup();
    }
    await lbp(root, ['rmi', name]);
  } finally {
    await reg.stop();
  }
});

test('commit of a running container pauses it (-p): its counter stops during the commit; -c CMD and ENV take effect', async () => {
  const id = ok(['run', '-d', BB, 'sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=400 2>/dev/null; i=0; while :; do i=$((i+1)); echo $i > /counter; done']).trim();
  const upper = JSON.parse(ok(['inspect', id]))[0].GraphDriver.Data.UpperDir as string;
  // wait until the counter runs
  for (let i = 0; i < 100 && !existsSync(join(upper, 'counter')); i++) await sleep(100);
  // the shell truncates and rewrites the file: a read may catch it empty ('' then)
  const raw = () => readFileSync(join(upper, 'counter'), 'utf8').trim();
  const read = (): number => {
    for (let i = 0; i < 1000; i++) {
      const s = raw();
      if (s) return Number(s);
    }
    return NaN;
  };
  const samples: { t: number; v: string; frozen: boolean }[] = [];
  const commit = lbp(root, ['commit', '-c', 'CMD ["echo","hi"]', '-c', 'ENV A=1', id, 'test/running:1']);
  let done = false;
  void commit.then(() => (done = true));
  while (!done) {
    const frozen = readFileSync(`/sys/fs/cgroup/freezer/layerbox/${id}/freezer.state`, 'utf8').trim() === 'FROZEN';
    samples.push({ t: Date.now(), v: raw(), frozen });
    await sleep(2);
  }
  const r = await commit;
  assert.equal(r.code, 0, r.stderr);
  const frozen = samples.filter((s) => s.frozen);
  assert.ok(frozen.length >= 3, `the container was frozen during the commit (${frozen.length} of ${samples.length} samples)`);
  assert.equal(new Set(frozen.map((s) => s.v)).size, 1, 'the counter did not move while frozen');
  // it runs on: the counter moves past the frozen value (give the disk time: the commit just
  // wrote the 400 MB layer, and ext4 flushes a truncated-and-rewritten file on close)
  let after = NaN;
  for (let i = 0; i < 200 && !(after > Number(frozen[0]!.v || 0)); i++) {
    await sleep(50);
    after = read();
  }
  const thawed = readFileSync(`/sys/fs/cgroup/freezer/layerbox/${id}/freezer.state`, 'utf8').trim();
  assert.ok(after > Number(frozen[0]!.v || 0), `and runs on after the commit (counter ${after} after, ${frozen[0]!.v} frozen; freezer ${thawed}; ${JSON.parse(ok(['inspect', id]))[0].State.Status})`);
  // the committed counter is the frozen value: a consistent snapshot
  const committed = ok(['run', '--rm', '--entrypoint', 'cat', 'test/running:1', '/counter']).trim();
  assert.equal(committed, frozen[0]!.v);
  // -c took effect
  assert.equal(ok(['run', '--rm', 'test/running:1']), 'hi\n');
  assert.equal(ok(['run', '--rm', 'test/running:1', 'sh', '-c', 'echo $A']), '1\n');
  const cfg = JSON.parse(ok(['image', 'inspect', 'test/running:1']))[0].Config;
  assert.deepEqual(cfg.Cmd, ['echo', 'hi']);
  assert.ok(cfg.Env.includes('A=1'));
  ok(['rm', '-f', id]);
});

test('commit of a stopped container; bad input leaves no partial image', () => {
  const id = ok(['create', BB, 'sh', '-c', 'echo stopped']).trim();
  ok(['start', '-a', id]);
  const before = ok(['images', '-qa', '--no-trunc']);
  for (const [args, re] of [
    [['commit', 'no-such-container'], /No such container: no-such-container/],
    [['commit', '-c', 'FROM busybox', id], /from is not a valid change command/],
    [['commit', '-c', 'EXPOSE abc', id], /invalid containerPort: abc/],
    [['commit', id, 'Invalid/UPPER:case'], /invalid reference format: repository name must be lowercase/],
  ] as const) {
    const r = lb(root, [...args]);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, re);
  }
  assert.equal(ok(['images', '-qa', '--no-trunc']), before, 'no partial image');
  const img = ok(['commit', id, 'test/stopped']).trim();
  assert.match(img, /^sha256:/);
  assert.equal(ok(['run', '--rm', 'test/stopped']), 'stopped\n');
  ok(['rm', id]);
});

test('kill -9 during commit leaves no half-written image; the retry succeeds', async () => {
  const id = ok(['run', '-d', BB, 'sh', '-c', 'dd if=/dev/urandom of=/big bs=1M count=64 2>/dev/null; mkdir /many; for i in $(seq 300); do echo $i > /many/f$i; done; sleep 1000']).trim();
  await sleep(2500);
  for (let trial = 0; trial < 8; trial++) {
    const { child, done } = lbAsync(root, ['commit', id, `test/killed:${trial}`]);
    await sleep(120 + Math.floor(Math.random() * 250));
    child.kill('SIGKILL');
    await done;
    const c = lb(root, ['system', 'check']);
    assert.equal(c.code, 0, c.stdout + c.stderr);
    // the store stays usable after every kill
    ok(['ps']);
  }
  // a paused leftover from a killed commit is resumed by unpause; then the retry works
  lb(root, ['unpause', id]);
  const img = ok(['commit', id, 'test/killed:final']).trim();
  assert.match(img, /^sha256:/);
  assert.equal(ok(['run', '--rm', 'test/killed:final', 'cat', '/many/f300']), '300\n');
  assert.deepEqual(
    readdirSync(join(root, 'tmp')).filter((n) => n.startsWith('commit-')),
    [],
    'no tar-split of a killed commit survives the repair',
  );
  ok(['rm', '-f', id]);
});

test('a stopped container committed, then started and changed again, leaves the committed layer untouched', () => {
  ok(['run', '--name', 'sharer', BB, 'sh', '-c', 'echo one > /data.txt']);
  const cid = 'sharer';
  ok(['commit', cid, 'test/shared:1']);
  // the container writes again to the file the layer holds (the same inode before unsharing)
  ok(['start', '-a', cid]);
  ok(['cp', join(FIXTURES, 'README.md'), `${cid}:/data.txt`]);
  assert.equal(ok(['run', '--rm', 'test/shared:1', 'cat', '/data.txt']), 'one\n');
  const c = lb(root, ['system', 'check']);
  assert.equal(c.code, 0, c.stdout);
  ok(['rm', cid]);
  assert.equal(ok(['run', '--rm', 'test/shared:1', 'cat', '/data.txt']), 'one\n');
});

test('a container committed twice: the second image has one layer with every change since the image, the same as one commit of the same changes; diff, export, inspect and rmi -f/rm stay Docker-correct', () => {
  // the same changes, made in two steps (committed in between) and in one
  const first = 'echo a > /a; ln /a /alink; mkdir -p /d/x /o /usr/q/r; echo x > /d/x/f; echo 1 > /o/1; echo y >> /etc/passwd; rm /bin/ls; echo 1 > /usr/q/r/1; mkdir /wh; touch /wh/f';
  const second = 'rm /a /alink; echo b > /b; rm -r /d; echo d > /d; echo z >> /o/1; chmod 700 /o; rm /bin/cat; mkdir /bin/cat; rm -r /usr; mkdir -p /usr/q; rm -r /wh; mkdir /wh; rm /etc/group';
  const script = `if [ -e /a ]; then ${second}; else ${first}; fi`;
  const snapshotDirs = () => readdirSync(join(root, 'snapshots')).filter((s) => /^\d+$/.test(s)).sort();
  const before = snapshotDirs();
  ok(['run', '--name', 'twice', '--network', 'none', BB, 'sh', '-c', script]);
  ok(['commit', 'twice', 'test/twice:1']);
  const lowerAfterFirst = JSON.parse(ok(['inspect', 'twice']))[0].GraphDriver.Data.LowerDir as string;
  assert.equal(lowerAfterFirst.split(':').length, 3, 'after a commit the container continues on the committed layer: layer, init, image');
  assert.deepEqual(readdirSync(JSON.parse(ok(['inspect', 'twice']))[0].GraphDriver.Data.UpperDir), [], 'with an empty upper dir');
  ok(['start', '-a', 'twice']);
  ok(['commit', 'twice', 'test/twice:2']);
  ok(['run', '--name', 'once', '--network', 'none', BB, 'sh', '-c', `${first}; ${second}`]);
  ok(['commit', 'once', 'test/once:1']);

  // diff: every change since the image, as for the container that made them in one go
  const sorted = (s: string) => s.trim().split('\n').sort();
  assert.deepEqual(sorted(ok(['diff', 'twice'])), sorted(ok(['diff', 'once'])));
  // the second commit: one layer over the image (Docker's commit holds all changes since the image)
  const layers = (name: string) => JSON.parse(ok(['image', 'inspect', name]))[0].RootFS.Layers as string[];
  assert.equal(layers('test/twice:2').length, 2);
  assert.equal(layers('test/twice:2')[0], layers(BB)[0]);
  // ...with the tar the single commit has (names, types, modes, owners, links; not times)
  const tvf = (name: string) => {
    const save = join(work, `${name.replace(/[/:]/g, '_')}.tar`);
    ok(['save', '-o', save, name]);
    const x = join(work, `x-${name.replace(/[/:]/g, '_')}`);
    execFileSync('mkdir', ['-p', x]);
    execFileSync('tar', ['-xf', save, '-C', x]);
    const m = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8'))[0];
    return execFileSync('tar', ['--numeric-owner', '-tvf', join(x, m.Layers[1])])
      .toString()
      .trim()
      .split('\n')
      .map((l) => {
        const f = l.split(/\s+/);
        return [f[0], f[1], f[2], ...f.slice(5)].join(' ');
      });
  };
  assert.deepEqual(tvf('test/twice:2'), tvf('test/once:1'));
  // export: the same tree
  const names = (c: string) => execFileSync('tar', ['-t'], { input: execFileSync(process.execPath, [BIN, 'export', c], { env: cliEnv(root), maxBuffer: 256 << 20 }) }).toString().split('\n').sort();
  assert.deepEqual(names('twice'), names('once'));
  assert.equal(ok(['run', '--rm', 'test/twice:2', 'busybox', 'cat', '/b', '/o/1']), 'b\n1\nz\n');
  assert.equal(ok(['run', '--rm', 'test/twice:1', 'cat', '/a', '/o/1']), 'a\n1\n');

  // rmi -f of both images: the container keeps the layer it continues on and still runs
  ok(['rmi', '-f', 'test/twice:1', 'test/twice:2']);
  assert.equal(ok(['start', '-a', 'twice']), '');
  assert.match(ok(['system', 'check']), /no problems/);
  ok(['rm', 'twice', 'once']);
  ok(['rmi', 'test/once:1']);
  // everything of the two commits is gone with the containers: the snapshots are those there were before
  assert.deepEqual(snapshotDirs(), before);
});
