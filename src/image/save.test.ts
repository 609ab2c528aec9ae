import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, walkTree, readExpected, compareWithExpected } from '../testing/tree.js';
import { lb, tempRoot } from '../testing/cli.js';
import { validateOci } from '../testing/oci-schema.js';

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

function withLoaded(fn: (root: string, work: string) => void): void {
  const t = tempRoot();
  const work = mkdtempSync(join(tmpdir(), 'lb-save-'));
  try {
    const r = lb(t.root, ['load', '-i', join(FIXTURES, 'busybox-changed.docker.tar')]);
    assert.equal(r.code, 0, r.stderr);
    fn(t.root, work);
  } finally {
    t.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}

test('save writes a docker-archive that skopeo reads, whose layers hash to the same diffIDs', () => {
  withLoaded((root, work) => {
    const out = join(work, 'img.tar');
    const r = lb(root, ['save', '-o', out, 'bench/busybox:changed']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${out}`]).toString()) as { Layers: string[]; Architecture: string };
    assert.equal(info.Layers.length, 2);
    const x = join(work, 'x');
    execFileSync('mkdir', ['-p', x]);
    execFileSync('tar', ['-xf', out, '-C', x]);
    const manifest = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8')) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    assert.deepEqual(manifest[0]!.RepoTags, ['bench/busybox:changed']);
    const expected = readExpected('busybox-changed.expected.json');
    // the bytes of each layer survive load -> save unchanged
    assert.deepEqual(manifest[0]!.Layers.map((l) => sha(readFileSync(join(x, l)))), expected.image.rootfsLayers);
    // the config is byte-identical: same image ID
    assert.equal(sha(readFileSync(join(x, manifest[0]!.Config))), expected.image.id);
    // and it loads again into a fresh store as the same image
    const t2 = tempRoot();
    try {
      const l = lb(t2.root, ['load', '-i', out]);
      assert.equal(l.code, 0, l.stderr);
      assert.match(l.stdout, /Loaded image: bench\/busybox:changed/);
      assert.equal(JSON.parse(lb(t2.root, ['image', 'inspect', 'bench/busybox:changed']).stdout)[0].Id, expected.image.id);
    } finally {
      t2.cleanup();
    }
  });
});

test('save --format oci-dir: skopeo inspects it, umoci unpacks it to the same tree, every document validates', () => {
  withLoaded((root, work) => {
    const dir = join(work, 'oci');
    const r = lb(root, ['save', '--format', 'oci-dir', '-o', dir, 'bench/busybox:changed']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${dir}:changed`]).toString()) as { Layers: string[] };
    assert.equal(info.Layers.length, 2);
    // schemas
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    assert.deepEqual(validateOci('image-index-schema', index), []);
    assert.deepEqual(validateOci('image-layout-schema', JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8'))), []);
    const blob = (d: string) => readFileSync(join(dir, 'blobs', 'sha256', d.slice(7)));
    const manifest = JSON.parse(blob(index.manifests[0].digest).toString());
    assert.deepEqual(validateOci('image-manifest-schema', manifest), []);
    assert.deepEqual(validateOci('config-schema', JSON.parse(blob(manifest.config.digest).toString())), []);
    // every blob is named by its digest
    for (const n of readdirSync(join(dir, 'blobs', 'sha256'))) assert.equal(sha(readFileSync(join(dir, 'blobs', 'sha256', n))), 'sha256:' + n);
    // umoci unpacks it to the tree Docker showed
    const bundle = join(work, 'bundle');
    const u = spawnSync('umoci', ['unpack', '--image', `${dir}:changed`, bundle]);
    assert.equal(u.status, 0, u.stderr.toString());
    assert.deepEqual(compareWithExpected(walkTree(join(bundle, 'rootfs')), readExpected('busybox-changed.expected.json')), []);
  });
});

test('save --format oci-archive is read by skopeo, and loads back', () => {
  withLoaded((root, work) => {
    const out = join(work, 'img.oci.tar');
    assert.equal(lb(root, ['save', '--format', 'oci-archive', '-o', out, 'bench/busybox:changed']).code, 0);
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${out}:changed`]).toString()) as { Layers: string[] };
    assert.equal(info.Layers.length, 2);
    assert.ok(statSync(out).size > 2_000_000);
    const t2 = tempRoot();
    try {
      const l = lb(t2.root, ['load', '-i', out]);
      assert.equal(l.code, 0, l.stderr);
      assert.match(l.stdout, /Loaded image: bench\/busybox:changed/);
    } finally {
      t2.cleanup();
    }
  });
});

test('save to a terminal-less stdout streams the archive; save of an unknown image fails cleanly', () => {
  withLoaded((root, work) => {
    const r = spawnSync(process.execPath, [join(FIXTURES, '..', 'bin', 'layerbox.js'), 'save', 'bench/busybox:changed'], { env: { ...process.env, LAYERBOX_ROOT: root }, maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.ok(r.stdout.length > 2_000_000);
    const bad = lb(root, ['save', '-o', join(work, 'nope.tar'), 'does-not-exist']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /No such image: does-not-exist/);
    assert.throws(() => statSync(join(work, 'nope.tar')));
  });
});
