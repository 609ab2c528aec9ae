/**
 * engine.analysis against the real store: the layer trees match what the snapshots hold, the
 * merged tree matches Docker's view of the fixtures, the store view has `system df -v`'s
 * figures, and reads stay inside the snapshots.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../engine/index.js';
import { lgetxattr } from '../sys/native.js';
import { tempRoot } from '../testing/cli.js';
import { FIXTURES, readExpected } from '../testing/tree.js';
import { EXACT, EXACT_TAG, writeExactArchive } from '../testing/analysis.js';
import { layerTar, writeDockerArchive } from '../testing/images.js';

const t = tempRoot('lb-analysis-');
let engine: Engine;

before(async () => {
  engine = await Engine.open({ root: join(t.root, 'store') });
  for (const f of ['busybox-base.docker.tar', 'busybox-changed.docker.tar']) await engine.images.load({ path: join(FIXTURES, f) }).result;
  writeExactArchive(join(t.root, 'exact.tar'));
  await engine.images.load({ path: join(t.root, 'exact.tar') }).result;
});
after(() => {
  engine.close();
  t.cleanup();
});

/** What an overlay layer directory holds, in the layer tree's terms. */
function walkSnapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, p));
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isCharacterDevice() && st.rdev === 0 ? 'whiteout' : 'device';
      const opaque = kind === 'dir' && lgetxattr(join(dir, p), 'trusted.overlay.opaque')?.toString() === 'y';
      out.set(p, `${kind}${kind === 'file' ? ':' + st.size : ''}${opaque ? ':opaque' : ''}`);
      if (kind === 'dir') walk(p);
    }
  };
  walk('');
  return out;
}

test('every layer tree is exactly what its snapshot directory holds (kinds, sizes, whiteouts, opaque dirs)', async () => {
  assert.equal(engine.storageDriver, 'overlay'); // a vfs snapshot is a full copy: nothing to compare a layer with
  for (const name of ['bench/busybox:changed', EXACT_TAG]) {
    const m = await engine.analysis.open(name);
    const inspect = (await engine.images.inspect(name)) as { GraphDriver: { Data: { UpperDir: string; LowerDir?: string } } };
    const dirs = [...(inspect.GraphDriver.Data.LowerDir?.split(':').reverse() ?? []), inspect.GraphDriver.Data.UpperDir];
    for (let L = 0; L < dirs.length; L++) {
      const want = walkSnapshot(dirs[L]!);
      const got = new Map<string, string>();
      const walk = (p: string) => {
        for (const e of m.tree({ path: p, layer: L, limit: 5000 }).entries) {
          const rel = e.path.slice(1);
          const kind = e.type === 'hardlink' ? 'file' : e.type;
          got.set(rel, `${kind}${kind === 'file' ? ':' + e.size : ''}${e.opaque ? ':opaque' : ''}`);
          if (e.type === 'dir') walk(e.path);
        }
      };
      walk('/');
      assert.deepEqual(got, want, `${name} layer ${L}`);
    }
  }
});

test('the merged tree of busybox:changed is Docker\'s (docker export of the fixture), entry by entry', async () => {
  const m = await engine.analysis.open('bench/busybox:changed');
  const expected = readExpected('busybox-changed.expected.json');
  const got = new Map<string, { type: string; mode: string; uid: number; size: number; target?: string }>();
  const walk = (p: string) => {
    for (const e of m.tree({ path: p, limit: 5000 }).entries) {
      got.set(e.path, { type: e.type === 'hardlink' ? 'file' : e.type, mode: e.mode, uid: e.uid, size: e.type === 'dir' ? 0 : e.size, ...(e.target && e.type === 'symlink' ? { target: e.target } : {}) });
      if (e.type === 'dir') walk(e.path);
    }
  };
  walk('/');
  for (const w of expected.entries) {
    if (w.dockerInitLayer) continue;
    const g = got.get(w.path);
    assert.ok(g, `missing ${w.path}`);
    assert.deepEqual(g, { type: w.type, mode: w.mode, uid: w.uid, size: w.size, ...(w.linkTarget !== undefined ? { target: w.linkTarget } : {}) }, w.path);
  }
  // the init layer's directories (/dev, /etc) are the image's too
  const wanted = new Set(expected.entries.filter((e) => !e.dockerInitLayer || e.type === 'dir').map((e) => e.path));
  assert.deepEqual([...got.keys()].filter((p) => !wanted.has(p)), []);
});

test('busybox:changed: providers, shadows, markers and the reasons a file counts as modified', async () => {
  const m = await engine.analysis.open('bench/busybox:changed');
  const app = m.tree({ path: '/opt/app', removed: true });
  assert.equal(app.entry.opaque, true);
  assert.equal(app.entry.layer, 1);
  assert.deepEqual(app.entries.map((e) => [e.name, e.layer, e.hidden?.how ?? 'visible']), [
    ['NEW.txt', 1, 'visible'],
    ['README', 0, 'opaque'],
    ['conf', 0, 'opaque'],
    ['version', 0, 'opaque'],
  ]);
  const motd = m.entry('/etc/motd');
  assert.equal(motd.layer, 1);
  assert.equal(motd.status, 'modified');
  assert.deepEqual(motd.reasons, ['content', 'mtime']);
  assert.deepEqual(motd.shadows, [{ layer: 0, type: 'file', size: 31, hidden: { layer: 1, how: 'overwritten', by: 'etc/motd' } }]);
  // chown of a base file: the whole file copied up, owner changed, same bytes
  const osr = m.entry('/etc/os-release');
  assert.deepEqual(osr.reasons, ['owner']);
  assert.equal(osr.contentChanged, false);
  // a hard link to a base file copies it up unchanged: modified for no reason but the copy
  const group = m.entry('/etc/group');
  assert.deepEqual(group.reasons, []);
  assert.equal(group.contentChanged, false);
  assert.equal(m.entry('/srv/group-hardlink').type, 'hardlink');
  assert.deepEqual(m.entry('/var/tmp').reasons, ['mode']); // chmod changes no mtime
  // the whiteouts, in the layer's own tree
  const cache = m.tree({ path: '/var/cache', layer: 1 });
  assert.deepEqual(cache.entries.map((e) => [e.name, e.type, e.status, e.replaces]), [['old.txt', 'whiteout', 'removed', 0]]);
  const gone = m.tree({ path: '/usr/share/doc', removed: true }).entries.find((e) => e.name === 'busybox')!;
  assert.deepEqual(gone.hidden, { layer: 1, how: 'whiteout', by: 'usr/share/doc/busybox' });
  // the base layer's own view: what a later layer hides
  const base = m.entry('/usr/share/doc/busybox/README', { layer: 0 });
  assert.deepEqual(base.hidden, { layer: 1, how: 'whiteout', by: 'usr/share/doc/busybox' });
  const a = m.analysis();
  assert.equal(a.sizeBytes - a.unionBytes, a.wastedBytes);
  assert.equal(a.wasted.reduce((s, w) => s + w.bytes, 0), a.wastedBytes);
});

test('the hand-built image: a hard link keeps whited-out bytes visible; the merged root sums to unionBytes', async () => {
  const m = await engine.analysis.open(EXACT_TAG);
  const root = m.tree({ path: '/', sort: 'size' });
  assert.equal(root.entry.size, EXACT.unionBytes);
  assert.equal(root.entries[0]!.name, 'data');
  const data = m.tree({ path: '/data', removed: true });
  assert.deepEqual(data.entries.map((e) => [e.name, e.type, e.hidden?.how ?? 'visible']), [
    ['big', 'file', 'whiteout'],
    ['big-link', 'hardlink', 'visible'],
  ]);
  assert.equal(m.read('/data/big-link').data.length, 5000);
  const d = m.detail();
  assert.equal(d.userSizeBytes, EXACT.userSizeBytes);
  assert.deepEqual(d.history.map((h) => h.layer), [0, 1, null, 2, 3]);
  assert.equal(d.readable, true);
  assert.deepEqual(d.layerDetails.map((l) => l.entries), [12, 5, 9, 0]);
});

test('search by path, sort by size', async () => {
  const m = await engine.analysis.open(EXACT_TAG);
  assert.deepEqual(m.search('.so').entries.map((e) => e.path), ['/app/lib/c.so']);
  assert.deepEqual(m.search('.so', { layer: 0, sort: 'path' }).entries.map((e) => e.path), ['/app/lib/a.so', '/app/lib/b.so']);
  assert.deepEqual(m.search('ETC').entries.map((e) => e.path), ['/etc', '/etc/config']);
  assert.throws(() => m.search(''), /non-empty/);
});

test('path traversal: ".." in a path is refused, and a file is only ever read below its layer\'s directory', async () => {
  const m = await engine.analysis.open(EXACT_TAG);
  for (const p of ['/../etc/passwd', '/etc/../../../etc/shadow', '..']) {
    assert.throws(() => m.read(p), (e: Error & { code?: string }) => e.code === 'BAD_PATH' && /"\.\." is not allowed/.test(e.message));
    assert.throws(() => m.tree({ path: p }), (e: Error & { code?: string }) => e.code === 'BAD_PATH');
  }
  assert.throws(() => m.read('/etc'), /is a directory, not a regular file/);
  assert.throws(() => m.read('/nope'), /no \/nope in the image/);
  assert.throws(() => m.tree({ path: '/', layer: 9 }), /layer 9 does not exist: the image has 4 layers/);
  const big = m.read('/data/big-link', { offset: 4990, length: 1 << 30 });
  assert.equal(big.data.length, 10);
  assert.equal(big.truncated, false);
  const first = m.read('/data/big-link', { length: 100 });
  assert.equal(first.data.length, 100);
  assert.equal(first.truncated, true);
});

test('a layer that writes through its own symlinked parent is read as the applier wrote it', async () => {
  const tar = layerTar([
    { path: 'usr/', type: 'dir' },
    { path: 'usr/lib/', type: 'dir' },
    { path: 'lib', type: 'symlink', target: 'usr/lib' },
    { path: 'lib/x.so', type: 'file', data: 'elf' },
    { path: 'abs', type: 'symlink', target: '/usr' },
    { path: 'abs/lib/y.so', type: 'file', data: 'elf2' },
  ]);
  const file = join(t.root, 'symlinked.tar');
  writeDockerArchive(file, [tar], 'test/symlinked:latest');
  await engine.images.load({ path: file }).result;
  const m = await engine.analysis.open('test/symlinked:latest');
  assert.deepEqual(m.tree({ path: '/usr/lib' }).entries.map((e) => e.name), ['x.so', 'y.so']);
  assert.equal(m.read('/usr/lib/y.so').data.toString(), 'elf2');
  assert.equal(m.entry('/lib').type, 'symlink');
  await engine.images.remove('test/symlinked:latest');
});

test('the store view has system df -v\'s figures: sizes, shared and unique bytes; the shared layer and its users', async () => {
  const s = await engine.analysis.store();
  const df = await engine.system.df();
  assert.equal(s.layersSize, df.LayersSize);
  for (const img of df.Images) {
    const v = s.images.find((i) => i.id === img.Id)!;
    assert.equal(v.size, img.Size);
    assert.equal(v.sharedSize, img.SharedSize);
    assert.equal(v.uniqueSize, img.Size - img.SharedSize);
    assert.equal(v.rmiFrees, v.uniqueSize);
  }
  const base = s.layers.find((l) => l.diffID === 'sha256:2d253da2832fe2a378b23bad83667bddd0fc377cdf6c7653b2a0dfba373294e3')!;
  assert.equal(base.refCount, 2);
  const ids = ['bench/busybox:latest', 'bench/busybox:changed'].map((n) => engine.images.resolve(n).id).sort();
  assert.deepEqual([...base.images].sort(), ids);
  const c = await engine.analysis.compare('bench/busybox:latest', 'bench/busybox:changed');
  assert.deepEqual(c.rows.map((r) => r.shared), [true, false]);
  assert.equal(c.sharedLayers, 1);
  assert.equal(c.rows[1]!.a, null);
});

test('a vfs store gives the same analysis and previews', async () => {
  const v = await Engine.open({ root: join(t.root, 'vfs'), storageDriver: 'vfs' });
  try {
    await v.images.load({ path: join(t.root, 'exact.tar') }).result;
    const a = await v.analysis.analyze(EXACT_TAG);
    assert.deepEqual(a, await engine.analysis.analyze(EXACT_TAG));
    const m = await v.analysis.open(EXACT_TAG);
    assert.equal(m.read('/etc/config').data.toString(), 'g'.repeat(120));
    assert.equal(m.read('/etc/config', { layer: 0 }).data.toString(), 'a'.repeat(100));
    assert.equal(m.entry('/etc/config').contentChanged, true);
  } finally {
    v.close();
  }
});

test('a tar-split record reads the same decompressed in one call or streamed, and accounts for every byte of the layer tar', async () => {
  const { scanTarSplit } = await import('../archive/tarsplit.js');
  const { openDatabase } = await import('../metadata/db.js');
  const db = openDatabase(engine.root);
  const rows = db.prepare('SELECT tarsplit, tar_size FROM layers WHERE tarsplit IS NOT NULL').all() as { tarsplit: string; tar_size: number }[];
  db.close();
  assert.ok(rows.length >= 5);
  for (const r of rows) {
    const path = join(engine.root, 'blobs', 'sha256', r.tarsplit.slice(7));
    const read = async (stream: boolean) => {
      // consecutive raw chunks joined: the chunking may differ, the sequence may not
      const seq: (Buffer | string)[] = [];
      let bytes = 0;
      await scanTarSplit(
        path,
        {
          raw: (b) => {
            bytes += b.length;
            const last = seq[seq.length - 1];
            if (Buffer.isBuffer(last)) seq[seq.length - 1] = Buffer.concat([last, b]);
            else seq.push(Buffer.from(b));
          },
          payload: (n, rel) => {
            bytes += n;
            seq.push(`${n}:${rel}`);
          },
        },
        { stream },
      );
      return { seq, bytes };
    };
    const one = await read(false);
    const streamed = await read(true);
    assert.deepEqual(one.seq, streamed.seq);
    assert.equal(one.bytes, r.tar_size);
  }
});

test('archives read in place are held to the applier\'s rules: names re-rooted, a hard link outside its layer refused', async () => {
  const file = join(t.root, 'odd.tar');
  writeDockerArchive(file, [layerTar([{ path: '../../etc/', type: 'dir' }, { path: '/../etc/passwd', type: 'file', data: 'x' }, { path: './a/../b', type: 'file', data: 'yy' }])], 'test/odd:latest');
  const m = await engine.analysis.open(`docker-archive:${file}`);
  assert.deepEqual(m.search('/').entries.map((e) => e.path).sort(), ['/b', '/etc', '/etc/passwd']);
  assert.equal(m.detail().readable, false);
  assert.throws(() => m.read('/etc/passwd'), /are not stored here: only its headers were read/);
  const bad = join(t.root, 'badlink.tar');
  writeDockerArchive(bad, [layerTar([{ path: 'x', type: 'link', target: 'etc/shadow' }])], 'test/badlink:latest');
  await assert.rejects(engine.analysis.analyze(`docker-archive:${bad}`), /hard link "x" points at "etc\/shadow", which is not in this layer/);
  await assert.rejects(engine.analysis.analyze(`oci:${file}`), /is not a directory: oci: names an OCI image layout directory/);
});

test('an image without layers has an empty root and nothing to waste', async () => {
  const { ImageModel } = await import('./analyze.js');
  const m = new ImageModel('scratch', 'sha256:' + '1'.repeat(64), [], []);
  assert.deepEqual(m.analysis(), { image: 'scratch', id: 'sha256:' + '1'.repeat(64), sizeBytes: 0, unionBytes: 0, wastedBytes: 0, efficiency: 1, layers: [], wasted: [] });
  assert.equal(m.tree({ path: '/' }).total, 0);
  assert.equal(m.detail().unionEntries, 0);
});

test('a layer kept as its blob (duplicate entries: no tar-split) is read from the blob, the last entry winning as in the snapshot', async () => {
  const file = join(t.root, 'dup.tar');
  writeDockerArchive(file, [layerTar([{ path: 'a', type: 'file', data: 'first' }, { path: 'a', type: 'file', data: 'second!' }, { path: 'b', type: 'file', data: 'b' }])], 'test/dup:latest');
  await engine.images.load({ path: file }).result;
  const a = await engine.analysis.analyze('test/dup:latest');
  assert.equal(a.sizeBytes, 8); // what the snapshot holds: "second!" and "b"
  assert.equal(a.unionBytes, 8);
  const m = await engine.analysis.open('test/dup:latest');
  assert.equal(m.read('/a').data.toString(), 'second!');
  assert.equal(m.detail().layerDetails[0]!.entries, 3);
  await engine.images.remove('test/dup:latest');
});
