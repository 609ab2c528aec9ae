import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync, lstatSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { FIXTURES, walkTree, readExpected, compareWithExpected } from '../testing/tree.js';
import { lb, tempRoot } from '../testing/cli.js';

const fixture = (n: string) => join(FIXTURES, n);

for (const [label, file] of [
  ['docker-archive', 'busybox-changed.docker.tar'],
  ['OCI layout', 'busybox-changed.oci'],
] as const) {
  test(`load of busybox-changed (${label}): the image mount equals Docker's merged tree`, () => {
    const t = tempRoot();
    try {
      const r = lb(t.root, ['load', '-i', fixture(file)]);
      assert.equal(r.code, 0, r.stderr);
      const id = /Loaded image(?: ID)?: (\S+)/.exec(r.stdout)![1]!;
      const m = lb(t.root, ['image', 'mount', id]);
      assert.equal(m.code, 0, m.stderr);
      const path = m.stdout.trim();
      const expected = readExpected('busybox-changed.expected.json');
      const diffs = compareWithExpected(walkTree(path), expected);
      assert.deepEqual(diffs, []);
      // the layers Docker reported
      const insp = JSON.parse(lb(t.root, ['image', 'inspect', id]).stdout) as { RootFS: { Type: string; Layers: string[] } }[];
      assert.equal(insp[0]!.RootFS.Type, 'layers');
      assert.deepEqual(insp[0]!.RootFS.Layers, expected.image.rootfsLayers);
      // the union is read-only
      assert.throws(() => writeFileSync(join(path, 'x'), 'x'), { code: 'EROFS' });
      assert.equal(lb(t.root, ['image', 'unmount', id]).code, 0);
    } finally {
      t.cleanup();
    }
  });
}

test('loading busybox-base then busybox-changed stores and unpacks the shared layer once; system df -v shows it shared', () => {
  const t = tempRoot();
  try {
    assert.equal(lb(t.root, ['load', '-i', fixture('busybox-base.docker.tar')]).code, 0);
    const snapsAfterBase = readdirSync(join(t.root, 'snapshots')).filter((n) => /^\d+$/.test(n));
    const blobsAfterBase = readdirSync(join(t.root, 'blobs', 'sha256'));
    assert.equal(snapsAfterBase.length, 1);
    const r = lb(t.root, ['load', '-i', fixture('busybox-changed.docker.tar')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /2d253da2832f: Already exists/);
    const snaps = readdirSync(join(t.root, 'snapshots')).filter((n) => /^\d+$/.test(n));
    assert.equal(snaps.length, 2, 'one snapshot per distinct layer');
    const blobs = readdirSync(join(t.root, 'blobs', 'sha256'));
    // new blobs: the changed image's config and its top layer's tar-split — nothing for the shared layer
    assert.equal(blobs.length - blobsAfterBase.length, 2);
    for (const b of blobsAfterBase) assert.ok(blobs.includes(b));
    // the base layer's files exist once on disk: the same inode serves both images
    const m1 = lb(t.root, ['image', 'mount', 'bench/busybox:latest']).stdout.trim();
    const m2 = lb(t.root, ['image', 'mount', 'bench/busybox:changed']).stdout.trim();
    assert.equal(statSync(join(m1, 'bin/busybox')).ino, statSync(join(m2, 'bin/busybox')).ino);
    lb(t.root, ['image', 'unmount', 'bench/busybox:latest']);
    lb(t.root, ['image', 'unmount', 'bench/busybox:changed']);
    const df = lb(t.root, ['system', 'df', '-v']).stdout;
    const row = (tag: string) => df.split('\n').find((l) => l.startsWith('bench/busybox') && l.includes(` ${tag} `))!.trim().split(/\s{2,}/);
    // REPOSITORY TAG IMAGE-ID CREATED SIZE SHARED UNIQUE CONTAINERS
    assert.equal(row('latest')[5], '1.986MB'); // Docker's units.HumanSize: 4 digits
    assert.equal(row('latest')[6], '0B');
    assert.equal(row('changed')[5], '1.986MB');
    assert.equal(row('changed')[6], '227B');
    // the total counts the shared layer once and equals what the snapshot dirs hold
    const total = Number(/each counted once\): .* \((\d+) bytes\)/.exec(df)![1]);
    let onDisk = 0;
    for (const s of snaps) onDisk += apparentSize(join(t.root, 'snapshots', s, 'fs'));
    assert.equal(total, onDisk);
  } finally {
    t.cleanup();
  }
});

/** Regular files and symlinks, hard links once — computed independently of the engine. */
function apparentSize(dir: string): number {
  let n = 0;
  const seen = new Set<number>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if ((st.isFile() || st.isSymbolicLink()) && !seen.has(st.ino)) {
        seen.add(st.ino);
        n += st.size;
      }
    }
  };
  walk(dir);
  return n;
}

test('the copying fallback (vfs) loads and mounts the same tree', () => {
  const t = tempRoot();
  try {
    const r = lb(t.root, ['--storage-driver', 'vfs', 'load', '-i', fixture('busybox-changed.docker.tar')]);
    assert.equal(r.code, 0, r.stderr);
    const path = lb(t.root, ['image', 'mount', 'bench/busybox:changed']).stdout.trim();
    assert.deepEqual(compareWithExpected(walkTree(path), readExpected('busybox-changed.expected.json')), []);
    assert.throws(() => writeFileSync(join(path, 'x'), 'x'), { code: 'EROFS' });
    assert.equal(lb(t.root, ['image', 'unmount', 'bench/busybox:changed']).code, 0);
    assert.match(lb(t.root, ['info']).stdout, /Storage Driver: vfs/);
    // a store keeps its driver
    const other = lb(t.root, ['--storage-driver', 'overlay', 'images']);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /uses the vfs storage driver/);
  } finally {
    t.cleanup();
  }
});

test('progress: per-layer bars on a terminal, plain lines otherwise, nothing with -q', () => {
  const t = tempRoot();
  try {
    const plain = lb(t.root, ['load', '-i', fixture('busybox-base.docker.tar')]);
    // off a terminal no progress bars are drawn, as the docker CLI draws none
    assert.equal(plain.stdout, 'Loaded image: bench/busybox:latest\n');
    lb(t.root, ['rmi', 'bench/busybox']);
    const quiet = lb(t.root, ['load', '-q', '-i', fixture('busybox-base.docker.tar')]);
    assert.equal(quiet.stdout, 'Loaded image: bench/busybox:latest\n');
    lb(t.root, ['rmi', 'bench/busybox']);
    // a real terminal (script(1) gives the command a pty)
    const tty = spawnSync('script', ['-qec', `stty cols 120 rows 40; env LAYERBOX_ROOT=${t.root} ${process.execPath} ${join(FIXTURES, '..', 'bin', 'layerbox.js')} load -i ${fixture('busybox-base.docker.tar')}`, '/dev/null'], { env: { ...process.env, COLUMNS: '120' } });
    const out = tty.stdout.toString();
    assert.match(out, /2d253da2832f: Loading layer \[=+>\s*\]\s+2\.15MB\/2\.15MB/);
  } finally {
    t.cleanup();
  }
});
