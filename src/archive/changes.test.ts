/**
 * overlayChanges against real overlayfs: the fixture's change script replayed through a
 * mount over the busybox base layer must give Docker's `docker diff`; more scenarios are
 * checked against a reference implementation of Docker's naive diff (pkg/archive
 * ChangesDirs, which is what Docker 20.10's overlay2 Changes() runs) walking the two mounted
 * views — the container's and the image's.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../errors/index.js';
import { lgetxattr, lsetxattr, mknod, mountOverlay, umount2 } from '../sys/native.js';
import { FIXTURES } from '../testing/tree.js';
import { layerTar } from '../testing/images.js';
import { overlayChanges, parseChanges, formatChanges, statDifferent, type Change } from './changes.js';
import { OverlayLab, fixtureScript } from './testkit-overlay.js';

const key = (c: Change) => `${c.kind} ${c.path}`;
const asSet = (cs: Change[]) => new Set(cs.map(key));

/**
 * Docker's order, structurally: every change below a directory comes right after that
 * directory's own change, in one block; among the changes directly under a directory,
 * deletions come after the others. (Sibling order itself is Go map order: random.)
 */
function dockerOrderProblems(cs: Change[]): string[] {
  const problems: string[] = [];
  const parent = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/';
  const index = new Map(cs.map((c, i) => [c.path, i]));
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i]!;
    const par = parent(c.path);
    if (par !== '/') {
      const pi = index.get(par);
      if (pi === undefined) problems.push(`${key(c)}: parent ${par} not listed`);
      else {
        // everything between the parent and this change is inside the parent
        for (let j = pi + 1; j < i; j++) if (!cs[j]!.path.startsWith(par + '/')) problems.push(`${key(c)}: separated from ${par} by ${key(cs[j]!)}`);
      }
    }
    if (c.kind === 'D') {
      for (let j = i + 1; j < cs.length; j++) {
        const o = cs[j]!;
        if (parent(o.path) === par && o.kind !== 'D') problems.push(`${key(o)} comes after the deletion ${key(c)}`);
      }
    }
  }
  return problems;
}

// ------------------------------------------------------------ reference: Docker's naive diff

interface Node {
  st: Stats;
  cap: Buffer | null;
  children: Map<string, Node>;
}

function collect(dir: string): Map<string, Node> {
  const m = new Map<string, Node>();
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    m.set(name, { st, cap: lgetxattr(p, 'security.capability'), children: st.isDirectory() ? collect(p) : new Map() });
  }
  return m;
}

function statDiff(o: Stats, n: Stats): boolean {
  if (o.mode !== n.mode || o.uid !== n.uid || o.gid !== n.gid || o.rdev !== n.rdev) return true;
  // through an overlay mount both sides come from the same layer files, so whole ns are equal
  return (o.mode & 0o040000) !== 0o040000 && (o.mtimeMs !== n.mtimeMs || o.size !== n.size);
}

/** pkg/archive (*FileInfo).addChanges over two walked trees (as a set: Docker's order is random). */
function naiveChanges(newDir: string, oldDir: string): Change[] {
  const out: Change[] = [];
  const add = (path: string, nw: Node, old: Node | undefined, added: boolean) => {
    const start = out.length;
    if (!old) {
      out.push({ kind: 'A', path });
      added = true;
    }
    const oldChildren = new Map(old && nw.st.isDirectory() ? old.children : []);
    for (const [name, child] of nw.children) {
      const oc = oldChildren.get(name);
      const cp = (path === '/' ? '' : path) + '/' + name;
      let childAdded = false;
      if (oc) {
        const capSame = (oc.cap === null && child.cap === null) || (oc.cap !== null && child.cap !== null && oc.cap.equals(child.cap));
        if (statDiff(oc.st, child.st) || !capSame) {
          out.push({ kind: 'C', path: cp });
          childAdded = true;
        }
        oldChildren.delete(name);
      }
      add(cp, child, oc, childAdded);
    }
    for (const name of oldChildren.keys()) out.push({ kind: 'D', path: (path === '/' ? '' : path) + '/' + name });
    if (out.length > start && nw.st.isDirectory() && !added && path !== '/') out.splice(start, 0, { kind: 'C', path });
  };
  const root = (d: string): Node => ({ st: lstatSync(d), cap: null, children: collect(d) });
  add('/', root(newDir), root(oldDir), false);
  return out;
}

/** Runs `script` through an overlay over `lowers`, returns Docker's answer (naive diff of the two views). */
async function replay(lab: OverlayLab, lowers: string[], script: string): Promise<Change[]> {
  lab.mount(lowers);
  await lab.sh(script);
  // the image view: the lowers alone, read-only (an empty extra lower: overlayfs wants two without an upper)
  const image = lab.dir('image-view');
  mountOverlay(image, [...lowers, lab.dir('empty-lower')], { readonly: true });
  try {
    return naiveChanges(lab.merged, image);
  } finally {
    umount2(image, 0);
    lab.unmount();
  }
}

// ------------------------------------------------------------------------------ tests

describe('overlayChanges (real overlayfs)', () => {
  test('the fixture change script gives docker diff (busybox-changed.docker-diff.txt)', async () => {
    const lab = new OverlayLab();
    try {
      const base = await lab.busyboxBase();
      lab.mount([base]);
      await lab.sh(fixtureScript());
      lab.unmount();
      const want = parseChanges(readFileSync(join(FIXTURES, 'busybox-changed.docker-diff.txt'), 'utf8'));
      assert.equal(want.length, 40);
      const got = await overlayChanges(lab.upper, [base]);
      assert.deepEqual([...asSet(got)].sort(), [...asSet(want)].sort());
      assert.equal(got.length, want.length, 'no duplicates');
      // the two places where docker diff and the layer disagree
      assert.ok(!got.some((c) => c.path === '/etc/group'), '/etc/group copied up for a hard link is not a change');
      assert.deepEqual(
        got.filter((c) => c.path.startsWith('/opt/app/') && c.kind === 'D').map((c) => c.path),
        ['/opt/app/README', '/opt/app/conf', '/opt/app/version'],
        'one D per old child of the opaque directory, not their contents (conf/app.conf)',
      );
      // Docker's order: structure holds for the fixture itself and for ours
      assert.deepEqual(dockerOrderProblems(want), []);
      assert.deepEqual(dockerOrderProblems(got), []);
      // path order
      const sorted = await overlayChanges(lab.upper, [base], { order: 'path' });
      assert.deepEqual(sorted.map(key), got.map(key).sort((a, b) => (a.slice(2) < b.slice(2) ? -1 : 1)));
      assert.equal(formatChanges(got).split('\n').length, 41);
    } finally {
      lab.cleanup();
    }
  });

  test('the fixture script agrees with a reference naive diff of the two mounted views', async () => {
    const lab = new OverlayLab();
    try {
      const base = await lab.busyboxBase();
      const docker = await replay(lab, [base], fixtureScript());
      const got = await overlayChanges(lab.upper, [base]);
      assert.deepEqual([...asSet(got)].sort(), [...asSet(docker)].sort());
      assert.deepEqual(
        [...asSet(docker)].sort(),
        [...asSet(parseChanges(readFileSync(join(FIXTURES, 'busybox-changed.docker-diff.txt'), 'utf8')))].sort(),
        'the reference reproduces Docker',
      );
    } finally {
      lab.cleanup();
    }
  });

  test('metadata rules: chmod/chown/touch of files, chmod vs touch of dirs, capabilities vs other xattrs', async () => {
    const lab = new OverlayLab();
    try {
      const base = await lab.busyboxBase();
      lab.mount([base]);
      await lab.sh(`
        chmod 0600 /etc/passwd                  # mode of a file: C
        touch -d '2030-01-01 00:00:00' /etc/motd  # mtime of a file: C
        touch -d '2030-01-01 00:00:00' /home      # mtime of a dir: ignored by Docker
        chmod 0711 /root                        # mode of a dir: C
        chown 5:5 /usr/sbin                     # owner of a dir: C (and nothing below)
        read x < /opt/app/version               # read only: no copy-up
      `);
      // xattrs set through the mount: a capability counts, a user xattr does not (Docker compares only security.capability)
      lsetxattr(join(lab.merged, 'opt/app/README'), 'security.capability', Buffer.from('0100000200200000000000000000000000000000', 'hex'));
      lsetxattr(join(lab.merged, 'var/cache/old.txt'), 'user.note', Buffer.from('x'));
      lab.unmount();
      const got = await overlayChanges(lab.upper, [base], { order: 'path' });
      assert.deepEqual(got.map(key), [
        'C /etc',
        'C /etc/motd',
        'C /etc/passwd',
        'C /opt',
        'C /opt/app',
        'C /opt/app/README',
        'C /root',
        'C /usr',
        'C /usr/sbin',
      ]);
      // the copied-up but unchanged ones are in the upper dir all the same
      assert.ok(lstatSync(join(lab.upper, 'home')).isDirectory());
      assert.ok(lstatSync(join(lab.upper, 'var/cache/old.txt')).isFile());
    } finally {
      lab.cleanup();
    }
  });

  test('many kinds of change agree with the reference naive diff (file<->dir, opaque, nested, links, devices)', async () => {
    const lab = new OverlayLab();
    try {
      const base = await lab.busyboxBase();
      const script = `
        rm /etc/motd && mkdir /etc/motd && echo in > /etc/motd/inner    # file replaced by a directory
        rm -rf /opt/app/conf && echo now-a-file > /opt/app/conf         # directory replaced by a file
        rm -rf /usr/share && mkdir -p /usr/share/doc/busybox && echo n > /usr/share/doc/busybox/README  # opaque, recreated names
        mkdir -p /a/b/c && echo deep > /a/b/c/d && rm -rf /a/b            # created then removed below
        touch /tmp/t && rm /tmp/t                                        # created and removed: nothing
        ln -s /bin/busybox /usr/local-link && ln /bin/busybox /bin/busybox-hardlink
        mknod /dev/null2 c 1 3 && mknod /dev/loop9 b 7 9 && mkfifo /srv-fifo
        chmod u+s /bin/busybox                                           # setuid on a base file
        rm /bin/ls && ln -s busybox /bin/ls                              # symlink target changed
        mv /var/cache/old.txt /var/cache/renamed.txt                     # rename of a file: D + A
        rm -rf /root && echo r > /root                                   # dir replaced by file (0700 dir)
      `;
      const docker = await replay(lab, [base], script);
      const got = await overlayChanges(lab.upper, [base]);
      assert.deepEqual([...asSet(got)].sort(), [...asSet(docker)].sort());
      assert.deepEqual(dockerOrderProblems(got), []);
      const s = asSet(got);
      for (const c of ['C /etc/motd', 'A /etc/motd/inner', 'C /opt/app/conf', 'C /usr/share', 'C /usr/share/doc', 'C /usr/share/doc/busybox', 'C /usr/share/doc/busybox/README', 'D /usr/share/doc/busybox/copyright', 'C /root', 'D /var/cache/old.txt', 'A /var/cache/renamed.txt', 'C /bin/ls', 'C /bin/busybox']) {
        assert.ok(s.has(c), `${c} in ${[...s].join(', ')}`);
      }
      for (const absent of ['D /opt/app/conf/app.conf', 'A /tmp/t', 'A /a/b']) assert.ok(!s.has(absent), absent);
    } finally {
      lab.cleanup();
    }
  });

  test('several lowers: whiteouts and opaque directories of the image layers are honoured', async () => {
    const lab = new OverlayLab();
    try {
      const bottom = await lab.lower(
        layerTar([
          { path: 'd/', type: 'dir' },
          { path: 'd/x', type: 'file', data: 'x' },
          { path: 'd/y/', type: 'dir' },
          { path: 'd/y/z', type: 'file', data: 'z' },
          { path: 'e/', type: 'dir' },
          { path: 'e/old', type: 'file', data: 'old' },
          { path: 'f', type: 'file', data: 'f' },
        ]),
      );
      const middle = await lab.lower(
        layerTar([
          { path: 'd/', type: 'dir' },
          { path: 'd/.wh.x', type: 'file', data: '' }, // hides d/x
          { path: 'd/w', type: 'file', data: 'w' },
          { path: 'e/', type: 'dir', mode: 0o750 },
          { path: 'e/.wh..wh..opq', type: 'file', data: '' }, // hides e/old
          { path: 'e/new', type: 'file', data: 'new' },
          { path: '.wh.f', type: 'file', data: '' },
        ]),
      );
      const lowers = [middle, bottom];
      // busybox is not in these layers: make the changes through the mount with fs calls
      lab.mount(lowers);
      const m = lab.merged;
      rmSync(join(m, 'd'), { recursive: true });
      mkdirSync(join(m, 'd'));
      writeFileSync(join(m, 'd/new'), 'n');
      rmSync(join(m, 'e/new'));
      writeFileSync(join(m, 'f'), 'f');
      writeFileSync(join(m, 'e/old'), 'again');
      lab.unmount();
      const got = await overlayChanges(lab.upper, lowers, { order: 'path' });
      assert.deepEqual(got.map(key), [
        'C /d',
        'A /d/new',
        'D /d/w', // d/x was already hidden by the middle layer; d/y is one D, not d/y/z
        'D /d/y',
        'C /e',
        'D /e/new',
        'A /e/old', // hidden by the middle layer's opaque e/, so new to the image view
        'A /f', // whited out in the middle layer
      ]);
    } finally {
      lab.cleanup();
    }
  });

  test('overlay metadata in the upper dir is not a change; a redirect is refused', async () => {
    const lab = new OverlayLab();
    try {
      const base = await lab.busyboxBase();
      lab.mount([base]);
      await lab.sh('echo x >> /etc/motd');
      lab.unmount();
      const before = (await overlayChanges(lab.upper, [base])).map(key);
      lsetxattr(join(lab.upper, 'etc'), 'trusted.overlay.impure', Buffer.from('y'));
      lsetxattr(join(lab.upper, 'etc/motd'), 'trusted.overlay.origin', Buffer.from([0, 0xfb, 1, 2, 3]));
      assert.deepEqual((await overlayChanges(lab.upper, [base])).map(key), before);
      assert.deepEqual(before, ['C /etc', 'C /etc/motd']);
      lsetxattr(join(lab.upper, 'etc'), 'trusted.overlay.redirect', Buffer.from('/opt'));
      await assert.rejects(overlayChanges(lab.upper, [base]), (e: unknown) => e instanceof EngineError && e.code === 'OVERLAY_NOT_EXPRESSIBLE' && e.kind === 'unsupported');
    } finally {
      lab.cleanup();
    }
  });

  test('a whiteout over nothing is no change; a non-UTF-8 name is refused clearly; abort works', async () => {
    const lab = new OverlayLab();
    try {
      const base = await lab.busyboxBase();
      mkdirSync(join(lab.upper, 'srv'));
      mknod(join(lab.upper, 'srv/ghost'), 0o020000, 0, 0);
      mknod(join(lab.upper, 'ghost2'), 0o020000, 0, 0);
      assert.deepEqual((await overlayChanges(lab.upper, [base])).map(key), ['A /srv']);
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(overlayChanges(lab.upper, [base], { signal: ac.signal }), (e: unknown) => e instanceof EngineError && e.kind === 'cancelled');
      writeFileSync(Buffer.from(join(lab.upper, 'srv') + '/bad-\xff-name', 'latin1'), 'x');
      await assert.rejects(overlayChanges(lab.upper, [base]), (e: unknown) => e instanceof EngineError && e.code === 'LAYER_NAME_NOT_UTF8');
    } finally {
      lab.cleanup();
    }
  });

  test('statDifferent follows pkg/archive: dirs ignore mtime and size, sub-second zero matches', () => {
    const st = (o: Partial<Record<'mode' | 'uid' | 'gid' | 'rdev' | 'size' | 'mtimeNs', bigint>>) =>
      ({ mode: 0o100644n, uid: 0n, gid: 0n, rdev: 0n, size: 1n, mtimeNs: 1_700_000_000_500_000_000n, ...o }) as unknown as import('node:fs').BigIntStats;
    assert.equal(statDifferent(st({}), st({})), false);
    assert.equal(statDifferent(st({}), st({ mtimeNs: 1_700_000_000_000_000_000n })), false, 'same second, one side 0 ns');
    assert.equal(statDifferent(st({}), st({ mtimeNs: 1_700_000_000_400_000_000n })), true);
    assert.equal(statDifferent(st({}), st({ size: 2n })), true);
    assert.equal(statDifferent(st({ mode: 0o040755n }), st({ mode: 0o040755n, size: 9n, mtimeNs: 1n })), false);
    assert.equal(statDifferent(st({ mode: 0o060600n }), st({ mode: 0o060600n, mtimeNs: 1n })), false, 'block devices carry the S_IFDIR bit');
    assert.equal(statDifferent(st({}), st({ mode: 0o040644n })), true);
    assert.equal(statDifferent(st({}), st({ uid: 1n })), true);
  });
});
