/**
 * writeLayer against real overlayfs. The fixture change script is replayed through a mount
 * over the busybox base layer; the layer written from the upper dir must list like the
 * commit layer Docker wrote (busybox-changed.top-layer.tvf.txt), apply (with unpackLayer)
 * onto the base to Docker's tree (busybox-changed.expected.json) and to the tree the mount
 * showed, and regenerate byte for byte from its tar-split record.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, lstatSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { EngineError } from '../errors/index.js';
import { lgetxattr, llistxattr, lsetxattr, mountOverlay, umount2 } from '../sys/native.js';
import { run } from '../sys/exec.js';
import { FIXTURES, compareWithExpected, readExpected, walkTree, type TreeEntry } from '../testing/tree.js';
import type { TarHeader } from './tar/header.js';
import { TarParser } from './tar/reader.js';
import { TarSplitWriter, regenerateTar } from './tarsplit.js';
import { unpackLayer } from './unpack.js';
import type { WhiteoutMode } from './apply.js';
import { writeLayer, type WriteLayerOptions, type WriteLayerResult } from './layerwriter.js';
import { OverlayLab, chunks, dockerArchiveLayers, fixtureScript } from './testkit-overlay.js';

const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

async function layerToFile(upper: string, lowers: string[], file: string, opts: WriteLayerOptions = {}): Promise<WriteLayerResult> {
  const fd = openSync(file, 'w');
  try {
    return await writeLayer(upper, lowers, (c) => void writeSync(fd, c), opts);
  } finally {
    closeSync(fd);
  }
}

interface TvfLine {
  type: string;
  mode: string;
  owner: string;
  size: string;
  date: string;
  name: string;
  target: string;
}

/** `tar --numeric-owner -tvf` lines: type, permissions, owner, size, date, name, link target. */
function parseTvf(text: string): TvfLine[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m = /^(.)(\S{9}) (\d+\/\d+)\s+(\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) (.*)$/.exec(l);
      assert.ok(m, `tvf line ${JSON.stringify(l)}`);
      let name = m[6]!;
      let target = '';
      for (const sep of [' -> ', ' link to ']) {
        const i = name.indexOf(sep);
        if (i >= 0) {
          target = name.slice(i + sep.length);
          name = name.slice(0, i);
        }
      }
      return { type: m[1]!, mode: m[2]!, owner: m[3]!, size: m[4]!, date: m[5]!, name, target };
    });
}

async function tvf(file: string): Promise<TvfLine[]> {
  const r = await run('tar', ['--numeric-owner', '-tvf', file], { env: { LC_ALL: 'C.UTF-8', PATH: process.env.PATH } });
  return parseTvf(r.stdout);
}

/** Headers of a tar (PAX records applied). */
function headers(tar: Buffer): TarHeader[] {
  const out: TarHeader[] = [];
  const p = new TarParser({ onEntry: (h) => out.push(h), onData: () => {}, onEnd: () => {} });
  p.write(tar);
  p.end();
  return out;
}

/** Applies layer tars (buffers or files) in order into `dir`. */
async function apply(dir: string, layers: (Buffer | string)[], whiteouts: WhiteoutMode = 'delete'): Promise<void> {
  mkdirSync(dir, { recursive: true });
  let fresh = true;
  for (const l of layers) {
    const source = typeof l === 'string' ? createReadStream(l) : chunks(l);
    await unpackLayer({ source, compression: 'none', target: dir, whiteouts, fresh });
    fresh = false;
  }
}

/** Differences between two walked trees: everything walkTree records, mtimes included; hard links by group. */
function treeDiffs(got: TreeEntry[], want: TreeEntry[]): string[] {
  const diffs: string[] = [];
  const groups = (t: TreeEntry[]) => {
    const byIno = new Map<number, string[]>();
    for (const e of t) if (e.type !== 'dir') byIno.set(e.ino!, [...(byIno.get(e.ino!) ?? []), e.path]);
    return new Map(t.map((e) => [e.path, e.type === 'dir' ? '' : byIno.get(e.ino!)!.sort().join(',')]));
  };
  const g1 = groups(got);
  const g2 = groups(want);
  const a = new Map(got.map((e) => [e.path, e]));
  const b = new Map(want.map((e) => [e.path, e]));
  for (const [p, w] of b) {
    const e = a.get(p);
    if (!e) {
      diffs.push(`missing ${p}`);
      continue;
    }
    for (const k of ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'linkTarget', 'mtime'] as const) {
      if (e[k] !== w[k]) diffs.push(`${p}: ${k} ${JSON.stringify(e[k])}, want ${JSON.stringify(w[k])}`);
    }
    if (g1.get(p) !== g2.get(p)) diffs.push(`${p}: hard links ${g1.get(p)}, want ${g2.get(p)}`);
  }
  for (const p of a.keys()) if (!b.has(p)) diffs.push(`unexpected ${p}`);
  return diffs;
}

describe('writeLayer (real overlayfs)', () => {
  test('the fixture change script: listing, applied tree, tar-split regeneration', async () => {
    const lab = new OverlayLab();
    try {
      const baseTar = dockerArchiveLayers(join(FIXTURES, 'busybox-base.docker.tar'))[0]!;
      const base = await lab.lower(baseTar, 'base');
      lab.mount([base]);
      await lab.sh(fixtureScript());
      const mergedTree = lab.mergedTree();
      lab.unmount();

      // whiteouts are links of one shared inode in the upper dir: not hard links in the layer
      assert.ok(lstatSync(join(lab.upper, 'var/cache/old.txt')).nlink >= 2, 'overlayfs shares whiteout inodes');

      const file = join(lab.root, 'layer.tar');
      const tsPath = join(lab.root, 'layer.tarsplit');
      const ts = new TarSplitWriter(tsPath);
      const sizes: number[] = [];
      const fd = openSync(file, 'w');
      let r: WriteLayerResult;
      try {
        r = await writeLayer(lab.upper, [base], (c) => {
          sizes.push(c.length);
          writeSync(fd, c);
        }, { tarsplit: ts });
      } finally {
        closeSync(fd);
      }
      ts.finish();
      const tar = readFileSync(file);
      assert.equal(r.diffId, sha256(tar));
      assert.equal(r.size, tar.length);
      assert.equal(r.entries, 39);
      assert.equal(tar.length, 28160, 'the same size as the layer Docker wrote');
      assert.ok(sizes.every((s) => s <= 1 << 20));

      // (b) the listing: names, types, modes, owners, sizes, link targets and order as Docker's
      const want = parseTvf(readFileSync(join(FIXTURES, 'busybox-changed.top-layer.tvf.txt'), 'utf8'));
      const got = await tvf(file);
      const strip = (l: TvfLine) => ({ ...l, date: '' });
      assert.deepEqual(got.map(strip), want.map(strip));
      // times: what Docker shows as the epoch (opaque marker) or the base's 2024 (unchanged copies) is the same here
      for (let i = 0; i < want.length; i++) {
        if (want[i]!.date.startsWith('1970') || want[i]!.date.startsWith('2024')) assert.equal(got[i]!.date, want[i]!.date, want[i]!.name);
      }
      const hs = headers(tar);
      assert.ok(!hs.some((h) => h.type === 'link' && h.name.includes('.wh.')), 'no whiteout is a hard link');
      assert.ok(hs.every((h) => h.uname === '' && h.gname === '' && !h.name.startsWith('./')));
      assert.ok(hs.every((h) => !h.xattrs || [...h.xattrs.keys()].every((k) => !k.startsWith('trusted.overlay.'))));
      assert.ok(tar.includes(Buffer.from(' path=srv/name with spaces ü € 日本.txt\n')), 'PAX path record for the non-ASCII name');

      // (c) base + layer applied = Docker's tree, and = the tree the mount showed
      const applied = join(lab.root, 'applied');
      await apply(applied, [baseTar, file]);
      const tree = walkTree(applied);
      assert.deepEqual(compareWithExpected(tree, readExpected('busybox-changed.expected.json')), []);
      assert.deepEqual(treeDiffs(tree, mergedTree), []);

      // (d) the tar regenerated from the tar-split record and the upper dir: same bytes, same diffID
      const h = createHash('sha256');
      const parts: Buffer[] = [];
      for await (const c of regenerateTar(tsPath, lab.upper)) {
        h.update(c);
        parts.push(c);
      }
      assert.equal('sha256:' + h.digest('hex'), r.diffId);
      assert.ok(Buffer.concat(parts).equals(tar));
    } finally {
      lab.cleanup();
    }
  });

  test('xattrs: user.* and security.capability survive write -> apply byte for byte; overlay metadata never', async () => {
    const lab = new OverlayLab();
    try {
      const base = await lab.busyboxBase();
      lab.mount([base]);
      await lab.sh('echo tool > /srv-tool && echo data > /srv-data && mkdir /xdir');
      // cap_net_raw+ep, VFS_CAP_REVISION_2: magic_etc = 0x02000001 (effective), permitted[0] = 1 << 13
      const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
      const userVal = Buffer.from([0, 1, 2, 0xff, 0x0a, 0x3d, 0x20, 0x80]);
      lsetxattr(join(lab.merged, 'srv-tool'), 'security.capability', cap);
      lsetxattr(join(lab.merged, 'srv-data'), 'user.test', userVal);
      lsetxattr(join(lab.merged, 'xdir'), 'user.dir', Buffer.from('d'));
      lsetxattr(join(lab.merged, 'etc/passwd'), 'user.test', Buffer.from('on a base file')); // copy-up
      lab.unmount();
      lsetxattr(join(lab.upper, 'etc'), 'trusted.overlay.impure', Buffer.from('y'));
      assert.ok(llistxattr(join(lab.upper, 'etc')).includes('trusted.overlay.impure'));

      const file = join(lab.root, 'layer.tar');
      await layerToFile(lab.upper, [base], file);
      const byName = new Map(headers(readFileSync(file)).map((h) => [h.name, h]));
      assert.ok(byName.get('srv-tool')!.xattrs!.get('security.capability')!.equals(cap));
      assert.ok(byName.get('srv-data')!.xattrs!.get('user.test')!.equals(userVal));
      assert.equal(byName.get('etc/')!.xattrs, undefined, 'trusted.overlay.impure is not written');
      for (const h of byName.values()) for (const k of h.xattrs?.keys() ?? []) assert.ok(!k.startsWith('trusted.overlay.') && !k.startsWith('user.overlay.'), k);

      const applied = join(lab.root, 'applied');
      await apply(applied, [file], 'overlay');
      assert.ok(lgetxattr(join(applied, 'srv-tool'), 'security.capability')!.equals(cap));
      assert.ok(lgetxattr(join(applied, 'srv-data'), 'user.test')!.equals(userVal));
      assert.ok(lgetxattr(join(applied, 'etc/passwd'), 'user.test')!.equals(Buffer.from('on a base file')));
      assert.ok(lgetxattr(join(applied, 'xdir'), 'user.dir')!.equals(Buffer.from('d')));

      // Docker 20.10 records security.capability only
      const dfile = join(lab.root, 'docker.tar');
      await layerToFile(lab.upper, [base], dfile, { xattrs: 'docker' });
      const dh = new Map(headers(readFileSync(dfile)).map((h) => [h.name, h]));
      assert.ok(dh.get('srv-tool')!.xattrs!.get('security.capability')!.equals(cap));
      assert.equal(dh.get('srv-data')!.xattrs, undefined);
    } finally {
      lab.cleanup();
    }
  });

  test('replacements and opaque directories: file<->dir, rm -rf + mkdir, nested, applied = mounted', async () => {
    const lab = new OverlayLab();
    try {
      const baseTar = dockerArchiveLayers(join(FIXTURES, 'busybox-base.docker.tar'))[0]!;
      const base = await lab.lower(baseTar, 'base');
      lab.mount([base]);
      await lab.sh(`
        rm /etc/motd && mkdir /etc/motd && echo in > /etc/motd/inner      # file replaced by a directory
        rm -rf /opt/app/conf && echo now-a-file > /opt/app/conf           # directory replaced by a file
        rm -rf /usr/share/doc && mkdir /usr/share/doc && echo d > /usr/share/doc/new   # opaque
        rm -rf /var && mkdir -p /var/cache && echo c > /var/cache/new && chmod 1777 /var  # opaque, sticky
        rm -rf /root && mkdir /root && chmod 0700 /root && chown 7:8 /root   # opaque, owner
      `);
      const mergedTree = lab.mergedTree();
      lab.unmount();

      const file = join(lab.root, 'layer.tar');
      await layerToFile(lab.upper, [base], file);
      const names = (await tvf(file)).map((l) => `${l.type}${l.mode} ${l.owner} ${l.name}`);
      const at = (n: string) => names.findIndex((x) => x.endsWith(' ' + n));
      for (const [dir, marker] of [
        ['drwxr-xr-x 0/0 etc/motd/', '-rwxr-xr-x 0/0 etc/motd/.wh..wh..opq'],
        ['drwxr-xr-x 0/0 usr/share/doc/', '-rwxr-xr-x 0/0 usr/share/doc/.wh..wh..opq'],
        ['drwxrwxrwt 0/0 var/', '-rwxrwxrwx 0/0 var/.wh..wh..opq'], // mode & 0777: no sticky bit on the marker
        ['drwx------ 7/8 root/', '-rwx------ 7/8 root/.wh..wh..opq'], // the directory's owner, like Docker
      ] as const) {
        const i = names.indexOf(dir);
        assert.ok(i >= 0, `${dir} in ${names.join('\n')}`);
        assert.equal(names[i + 1], marker, 'the opaque marker right after its directory');
      }
      assert.ok(at('var/cache/') > at('var/.wh..wh..opq'));
      assert.ok(!names.some((n) => n.endsWith('var/cache/.wh..wh..opq')), 'a directory made inside an opaque one is not opaque');
      assert.ok(names.includes('-rw-r--r-- 0/0 opt/app/conf'));
      const hs = headers(readFileSync(file));
      assert.equal(hs.find((h) => h.name === 'etc/motd/.wh..wh..opq')!.mtime, 0);

      // applied over a full copy (delete mode) and as an overlay snapshot (overlay mode, mounted)
      const applied = join(lab.root, 'applied');
      await apply(applied, [baseTar, file]);
      assert.deepEqual(treeDiffs(walkTree(applied), mergedTree), []);
      const snap = join(lab.root, 'snap');
      await apply(snap, [file], 'overlay');
      const view = lab.dir('view');
      mountOverlay(view, [snap, base], { readonly: true });
      try {
        assert.deepEqual(treeDiffs(walkTree(view), mergedTree), []);
      } finally {
        umount2(view, 0);
      }
    } finally {
      lab.cleanup();
    }
  });

  test('devices, FIFOs, sockets, hard-linked symlinks, long names and targets, setuid', async () => {
    const lab = new OverlayLab();
    try {
      const baseTar = dockerArchiveLayers(join(FIXTURES, 'busybox-base.docker.tar'))[0]!;
      const base = await lab.lower(baseTar, 'base');
      lab.mount([base]);
      const long = 'd'.repeat(90) + '/' + 'e'.repeat(90) + '/' + 'f'.repeat(120);
      await lab.sh(`
        mknod /dev/null c 1 3 && mknod /dev/loop9 b 7 9 && mknod /dev/big c 300 70000 && mkfifo /srv-fifo && chmod 0620 /srv-fifo
        ln -s ../bin/busybox /usr/bb && ln /usr/bb /usr/bb-hard
        mkdir -p /${long} && echo long > /${long}/file-with-a-long-path
        ln -s /${long}/file-with-a-long-path /long-target-link
        cp /bin/busybox /usr/bin/suid && chmod 6755 /usr/bin/suid
        chown 70000:2000000 /etc/passwd
      `);
      const mergedTree = lab.mergedTree();
      lab.unmount();
      // a socket (a container's leftover unix socket): skipped, like Docker (Go's tar cannot write one)
      const server = createServer();
      await new Promise<void>((r) => server.listen(join(lab.upper, 'srv.sock'), r));
      const warnings: string[] = [];
      const file = join(lab.root, 'layer.tar');
      try {
        await layerToFile(lab.upper, [base], file, { warn: (m) => warnings.push(m) });
      } finally {
        await new Promise<void>((r) => server.close(() => r()));
      }
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /socket "\/srv.sock"/);
      const hs = new Map(headers(readFileSync(file)).map((h) => [h.name, h]));
      assert.equal(hs.get('dev/null')!.type, 'char');
      assert.deepEqual([hs.get('dev/big')!.devmajor, hs.get('dev/big')!.devminor], [300, 70000]);
      assert.deepEqual([hs.get('dev/loop9')!.type, hs.get('dev/loop9')!.devmajor, hs.get('dev/loop9')!.devminor], ['block', 7, 9]);
      assert.equal(hs.get('srv-fifo')!.type, 'fifo');
      assert.equal(hs.get('srv-fifo')!.mode, 0o620);
      assert.equal(hs.get('usr/bb')!.type, 'symlink');
      assert.deepEqual([hs.get('usr/bb-hard')!.type, hs.get('usr/bb-hard')!.linkname], ['link', 'usr/bb']);
      assert.equal(hs.get('usr/bin/suid')!.mode, 0o6755);
      assert.deepEqual([hs.get('etc/passwd')!.uid, hs.get('etc/passwd')!.gid], [70000, 2000000]);
      assert.equal(hs.get('long-target-link')!.linkname, `/${long}/file-with-a-long-path`);
      assert.ok(hs.has(`${long}/file-with-a-long-path`));

      const applied = join(lab.root, 'applied');
      await apply(applied, [baseTar, file]);
      assert.deepEqual(treeDiffs(walkTree(applied), mergedTree), []);
    } finally {
      lab.cleanup();
    }
  });

  test('streaming: 1 MiB chunks never reused, an async sink is awaited, large files round-trip', async () => {
    const lab = new OverlayLab();
    try {
      mkdirSync(join(lab.upper, 'big'));
      const big = randomBytes(5 * (1 << 20) + 12345);
      writeFileSync(join(lab.upper, 'big/blob'), big);
      for (let i = 0; i < 50; i++) writeFileSync(join(lab.upper, `big/small-${i}`), randomBytes(i * 100));
      symlinkSync('blob', join(lab.upper, 'big/link'));
      const got: Buffer[] = [];
      const seen: string[] = [];
      let inFlight = 0;
      let maxInFlight = 0;
      const r = await writeLayer(lab.upper, [], async (c) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        got.push(c);
        seen.push(sha256(c));
        await new Promise((res) => setTimeout(res, 2));
        inFlight--;
      });
      assert.equal(maxInFlight, 1, 'one chunk at a time');
      assert.ok(got.length >= 6);
      assert.ok(got.every((c) => c.length <= 1 << 20));
      assert.deepEqual(got.map(sha256), seen, 'a chunk handed out is never written again');
      const tar = Buffer.concat(got);
      assert.equal(r.diffId, sha256(tar));
      assert.equal(r.size, tar.length);
      const applied = join(lab.root, 'applied');
      await apply(applied, [tar], 'overlay');
      assert.ok(readFileSync(join(applied, 'big/blob')).equals(big));
      assert.deepEqual(treeDiffs(walkTree(applied), walkTree(lab.upper)), []);
    } finally {
      lab.cleanup();
    }
  });

  test('walk order is Go filepath.Walk order: UTF-8 byte order per directory, a directory before its contents', async () => {
    const lab = new OverlayLab();
    try {
      const names = ['a', 'a-b', 'B', 'é', '\uFFFD-valid', '\uFFFF', '😀', '日本', 'z'];
      mkdirSync(join(lab.upper, 'a'));
      for (const n of names.slice(1)) writeFileSync(join(lab.upper, n), n);
      writeFileSync(join(lab.upper, 'a/x'), 'x');
      const parts: Buffer[] = [];
      await writeLayer(lab.upper, [], (c) => void parts.push(c));
      const order = headers(Buffer.concat(parts)).map((h) => h.name);
      const byBytes = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      assert.deepEqual(byBytes.slice(0, 2), ['B', 'a']);
      const want = byBytes.flatMap((n) => (n === 'a' ? ['a/', 'a/x'] : [n]));
      assert.deepEqual(order, want, '"a/x" comes before "a-b" although "a-b" < "a/x" as strings');
    } finally {
      lab.cleanup();
    }
  });

  test('refusals: a file shrinking while read, a .wh. name, overlay metacopy, abort', async () => {
    const lab = new OverlayLab();
    try {
      writeFileSync(join(lab.upper, 'grow'), randomBytes(3 << 20));
      let calls = 0;
      await assert.rejects(
        writeLayer(lab.upper, [], () => {
          if (calls++ === 0) truncateSync(join(lab.upper, 'grow'), 10);
        }),
        (e: unknown) => e instanceof EngineError && e.code === 'LAYER_FILE_CHANGED' && e.kind === 'data-loss',
      );
      writeFileSync(join(lab.upper, 'grow'), 'ok');
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(writeLayer(lab.upper, [], () => {}, { signal: ac.signal }), (e: unknown) => e instanceof EngineError && e.kind === 'cancelled');

      writeFileSync(join(lab.upper, 'meta'), 'x');
      lsetxattr(join(lab.upper, 'meta'), 'trusted.overlay.metacopy', Buffer.alloc(0));
      await assert.rejects(writeLayer(lab.upper, [], () => {}), (e: unknown) => e instanceof EngineError && e.code === 'OVERLAY_NOT_EXPRESSIBLE');

      rmSync(join(lab.upper, 'meta'));
      writeFileSync(join(lab.upper, '.wh.sneaky'), '');
      await assert.rejects(writeLayer(lab.upper, [], () => {}), (e: unknown) => e instanceof EngineError && e.code === 'LAYER_RESERVED_NAME');
    } finally {
      lab.cleanup();
    }
  });
});
