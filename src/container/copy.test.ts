/**
 * `cp` through the real CLI with the real pieces (overlayfs, runc under conmon): against a
 * hostile running container (the CVE-2018-15664 rename race, both ways); with binds, volumes
 * and the etc files; and the archive operations the Engine API will serve. Where docker.io is
 * installed, the same steps run against a private dockerd and the results are compared.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lb, lbp, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { layerTar } from '../testing/images.js';
import { Readable } from 'node:stream';
import { startDockerd, type PrivateDockerd } from '../testing/dockerd.js';
import { Engine } from '../engine/index.js';
import { EngineError } from '../errors/index.js';
import { TarParser } from '../archive/tar/reader.js';
import { GoMode, goModeHas, type PathStat } from './copy.js';

const t = tempRoot('lb-cp-');
const root = t.root;
const work = mkdtempSync(join(tmpdir(), 'lb-cp-work-'));
const BB = 'bench/busybox:latest';

function ok(args: string[], opts: { input?: string | Buffer } = {}): string {
  const r = lb(root, args, opts);
  assert.equal(r.code, 0, `layerbox ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

before(() => {
  ok(['load', '-q', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
});

/** One private dockerd for the comparisons of this file, started on first use (undefined: not installed). */
let dockerP: Promise<PrivateDockerd | undefined> | undefined;
function docker(): Promise<PrivateDockerd | undefined> {
  return (dockerP ??= (async () => {
    const d = await startDockerd({ prefix: 'lbcp-' });
    if (!d) return undefined;
    const l = d.dockerSync(['load', '-q', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
    if (l.code !== 0) {
      await d.stop();
      throw new Error(`docker load: ${l.stderr}`);
    }
    return d;
  })());
}

after(async () => {
  if (dockerP) await (await dockerP.catch(() => undefined))?.stop();
  const ids = lb(root, ['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean);
  if (ids.length) lb(root, ['rm', '-f', ...ids]);
  t.cleanup();
  rmSync(work, { recursive: true, force: true });
});

/**
 * A container that swaps /d between a directory of its own (/A) and a symlink to a host
 * directory (/B → HOST, an absolute path that only exists on the host), as fast as it can:
 * the reproduction of CVE-2018-15664.
 */
async function racingContainer(host: string): Promise<string> {
  const loop = `mkdir /A && echo container > /A/file && ln -s ${host} /B && touch /ready && while :; do mv /A /d; mv /d /A; mv /B /d; mv /d /B; done`;
  const id = ok(['run', '-d', '--network', 'none', BB, 'sh', '-c', loop]).trim();
  // started: the loop is running once /ready exists in the container
  for (let i = 0; i < 200; i++) {
    if (lb(root, ['cp', `${id}:/ready`, join(work, 'ready')]).code === 0) return id;
    await sleep(25);
  }
  throw new Error('the racing container did not start');
}

const ITERATIONS = 100;

test('CVE-2018-15664: cp host → CONTAINER:/d/… while the container swaps /d for a symlink to a host directory writes nothing on the host (100 ×)', async () => {
  const host = mkdtempSync(join(tmpdir(), 'lb-cp-victim-'));
  try {
    writeFileSync(join(work, 'host.txt'), 'from the host\n');
    const id = await racingContainer(host);
    let copied = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const r = await lbp(root, ['cp', join(work, 'host.txt'), `${id}:/d/pwned-${i}`]);
      if (r.code === 0) copied++;
    }
    const leaked = readdirSync(host);
    ok(['kill', id]);
    // every copy that succeeded is in the container's own directory (/A, or /d while it was /A)
    const upper = JSON.parse(ok(['inspect', id]))[0].GraphDriver.Data.UpperDir as string;
    const inside = spawnSync('find', [upper, '-name', 'pwned-*'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    lb(root, ['rm', '-f', id]);
    process.stdout.write(`# ${copied}/${ITERATIONS} copies succeeded inside the container; ${leaked.length} files reached the host directory\n`);
    assert.deepEqual(leaked, [], 'the host directory is untouched');
    assert.equal(inside.length, copied, 'the copies that succeeded are in the container');
  } finally {
    rmSync(host, { recursive: true, force: true });
  }
});

test('CVE-2018-15664: cp CONTAINER:/d/file → host while the container swaps /d for a symlink to a host directory never returns host content (100 ×)', async () => {
  const host = mkdtempSync(join(tmpdir(), 'lb-cp-victim-'));
  try {
    writeFileSync(join(host, 'file'), 'HOST SECRET\n');
    const id = await racingContainer(host);
    let copied = 0;
    const seen = new Set<string>();
    for (let i = 0; i < ITERATIONS; i++) {
      const out = join(work, `out-${i}`);
      const r = await lbp(root, ['cp', `${id}:/d/file`, out]);
      if (r.code === 0 && existsSync(out)) {
        copied++;
        seen.add(readFileSync(out, 'utf8'));
      }
      rmSync(out, { recursive: true, force: true });
    }
    lb(root, ['rm', '-f', id]);
    process.stdout.write(`# ${copied}/${ITERATIONS} copies succeeded; contents seen: ${JSON.stringify([...seen])}\n`);
    assert.ok(!seen.has('HOST SECRET\n'), 'no host content was read');
    assert.deepEqual(readdirSync(host), ['file']);
  } finally {
    rmSync(host, { recursive: true, force: true });
  }
});


// ------------------------------------------------------------------ cp and mounts, against Docker

interface Cli {
  name: string;
  run(args: string[]): { code: number; stdout: string; stderr: string };
}

/** What a host directory holds: name, type, mode, owner, size, content (files), link target. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const n of readdirSync(join(dir, rel)).sort()) {
      const p = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(dir, p));
      const what = st.isSymbolicLink() ? `-> ${readlinkSync(join(dir, p))}` : st.isFile() ? `${st.size} ${createHash('sha256').update(readFileSync(join(dir, p))).digest('hex').slice(0, 12)} ${Math.floor(st.mtimeMs / 1000)}` : 'dir';
      out.push(`${p} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${what}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk('');
  return out;
}

/**
 * The same steps with either engine's CLI: cp into a bind mount and into volumes (before the
 * first start and while running), into a read-only volume, out of /etc/hosts, a link with and
 * without -L (also a link inside a bind mount, which must resolve in the container's view).
 */
function mountScenario(e: Cli, tag: string, src: { file: string; dir: string }) {
  const step = (args: string[]) => {
    const r = e.run(args);
    assert.equal(r.code, 0, `${e.name} ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const bind = mkdtempSync(join(tmpdir(), `lb-cp-bind-${e.name}-`));
  const out = mkdtempSync(join(tmpdir(), `lb-cp-out-${e.name}-`));
  const name = `lbcp-${tag}`;
  const [vol, ro] = [`lbcpvol-${tag}`, `lbcpro-${tag}`];
  try {
    step(['create', '--name', name, '--network', 'none', '-v', `${bind}:/bind`, '-v', `${vol}:/vol`, '-v', `${ro}:/ro:ro`, BB, 'sleep', '1000']);
    // never started yet: the mounts are there for cp all the same
    step(['cp', src.file, `${name}:/bind/`]);
    step(['cp', src.file, `${name}:/vol/`]);
    step(['cp', src.dir, `${name}:/vol/tree`]);
    step(['start', name]);
    step(['cp', src.file, `${name}:/vol/running.txt`]);
    step(['cp', src.dir, `${name}:/bind/`]);
    const roCp = e.run(['cp', src.file, `${name}:/ro/`]);
    symlinkSync('/etc/hostname', join(bind, 'abs-link'));
    step(['exec', name, 'ln', '-s', '/etc/hosts', '/hostslink']);
    step(['cp', `${name}:/etc/hosts`, join(out, 'hosts')]);
    step(['cp', `${name}:/hostslink`, join(out, 'l1')]);
    step(['cp', '-L', `${name}:/hostslink`, join(out, 'l2')]);
    step(['cp', '-L', `${name}:/bind/abs-link`, join(out, 'hn')]);
    const seenHosts = step(['exec', name, 'cat', '/etc/hosts']);
    const seenHostname = step(['exec', name, 'cat', '/etc/hostname']);
    const vols = step(['exec', name, 'sh', '-c', 'cd /vol && find . | sort | while read f; do stat -c "%n %F %a %u:%g %s" "$f"; done']);
    const diff = step(['diff', name])
      .split('\n')
      .filter((l) => /^[ACD] \/(bind|vol|ro)\//.test(l));
    return {
      bind: listing(bind),
      volume: vols.trim().split('\n'),
      readOnlyVolume: roCp.code !== 0 && /mounted volume is marked read-only/.test(roCp.stderr) ? 'refused: mounted volume is marked read-only' : `code ${roCp.code}: ${roCp.stderr.trim()}`,
      inTheLayer: diff,
      hosts: readFileSync(join(out, 'hosts'), 'utf8') === seenHosts && seenHosts.includes('localhost') ? 'the container\'s /etc/hosts' : readFileSync(join(out, 'hosts'), 'utf8'),
      hostsMode: (statSync(join(out, 'hosts')).mode & 0o7777).toString(8),
      linkWithoutL: lstatSync(join(out, 'l1')).isSymbolicLink() ? `link -> ${readlinkSync(join(out, 'l1'))}` : 'not a link',
      linkWithL: readFileSync(join(out, 'l2'), 'utf8') === seenHosts ? 'the container\'s /etc/hosts' : 'other content',
      linkInBind:
        readFileSync(join(out, 'hn'), 'utf8') === seenHostname ? 'the container\'s /etc/hostname' : readFileSync(join(out, 'hn'), 'utf8') === readFileSync('/etc/hostname', 'utf8') ? 'the HOST\'s /etc/hostname' : 'other content',
    };
  } finally {
    e.run(['rm', '-f', name]);
    e.run(['volume', 'rm', vol, ro]);
    rmSync(bind, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
}

test('cp into a bind mount and into volumes writes into the mount, cp out of /etc/hosts gives the real file, -L follows a link in the container\'s view — as Docker does', async () => {
  const src = { file: join(work, 'host.txt'), dir: join(work, 'srcdir') };
  writeFileSync(src.file, 'from the host\n');
  chmodSync(src.file, 0o640);
  chownSync(src.file, 1234, 1234);
  mkdirSync(join(src.dir, 'sub'), { recursive: true });
  writeFileSync(join(src.dir, 'sub', 'f'), 'nested\n');
  symlinkSync('sub/f', join(src.dir, 'rel-link'));
  const tag = `${process.pid}`;
  const mine = mountScenario({ name: 'layerbox', run: (a) => lb(root, a) }, `lb${tag}`, src);
  // layerbox on its own: the facts the issue asks for
  assert.ok(mine.bind.some((l) => /^host\.txt 640 1234:1234 14 /.test(l)), `the file is in the bind mount's host directory: ${mine.bind.join('\n')}`);
  assert.ok(mine.bind.some((l) => l.startsWith('srcdir/sub/f ')));
  assert.ok(mine.volume.some((l) => l.startsWith('./host.txt regular file 640 1234:1234 14')) && mine.volume.some((l) => l.startsWith('./running.txt ')) && mine.volume.some((l) => l.startsWith('./tree/sub/f ')), mine.volume.join('\n'));
  assert.deepEqual(mine.inTheLayer, [], 'nothing landed hidden in the writable layer');
  assert.equal(mine.readOnlyVolume, 'refused: mounted volume is marked read-only');
  assert.equal(mine.hosts, "the container's /etc/hosts");
  assert.equal(mine.linkWithoutL, 'link -> /etc/hosts');
  assert.equal(mine.linkWithL, "the container's /etc/hosts");
  assert.equal(mine.linkInBind, "the container's /etc/hostname");
  // the same steps with Docker
  const d = await docker();
  if (!d) {
    process.stdout.write('# comparison with Docker skipped: dockerd is not installed\n');
    return;
  }
  const theirs = mountScenario({ name: 'docker', run: (a) => d.dockerSync(a) }, `d${tag}`, src);
  process.stdout.write(`# compared with Docker ${d.dockerSync(['version', '--format', '{{.Server.Version}}']).stdout.trim()}\n`);
  assert.deepEqual(mine, theirs);
});

// ------------------------------------------------------------------ the archive endpoints, against Docker's

const STAT_PATHS = [
  '/t/dir', '/t/dir/', '/t/dir/.', '/t/dir/lnk', '/t/dir/lnk/', '/t/dir/lnk/.', '/t/dangling', '/t/dangling/', '/t/rel', '/t/fifo',
  '/t/dir/sub/a', '/t/dir/sub/a/', '/t/dir/sub/a/x', '/t/nonexist', '/t/nonexist/x', '/bin/sh', 't/dir/../dir/sub',
];
const SETUP = 'mkdir -p /t/dir/sub && echo in > /t/dir/sub/a && ln -s sub /t/dir/lnk && ln -s /nonexist /t/dangling && ln -s ../t/dir/sub/a /t/rel && mkfifo /t/fifo && chmod 4750 /t/dir/sub/a && chmod 1777 /t/dir/sub && touch -d "2020-01-02 03:04:05" /t/dir/sub/a /t/dir/sub /t/dir';

/** A tar stream as comparable entries (times of links and FIFOs are the engine's creation times: left out). */
function entries(tar: Buffer): string[] {
  const out: string[] = [];
  const p = new TarParser({
    onEntry: (h) => out.push(`${h.name} ${h.type} ${h.mode.toString(8)} ${h.uid}:${h.gid} ${h.size} ${h.linkname}${h.type === 'symlink' || h.type === 'fifo' ? '' : ' ' + h.mtime}`),
    onData: () => {},
    onEnd: () => {},
  });
  p.write(tar);
  p.end();
  return out;
}

function comparable(status: number, stat: PathStat | undefined): string {
  if (!stat) return `${status}`;
  const timed = !goModeHas(stat.mode, GoMode.Symlink) && !goModeHas(stat.mode, GoMode.NamedPipe);
  return `${status} ${JSON.stringify({ ...stat, mtime: timed ? stat.mtime : '' })}`;
}

test('stat (X-Docker-Container-Path-Stat) and the archive of a path: Docker\'s JSON, Go FileMode bits, entry names', async () => {
  const name = `lbcp-stat-${process.pid}`;
  ok(['run', '-d', '--name', name, '--network', 'none', BB, 'sleep', '1000']);
  ok(['exec', name, 'sh', '-c', SETUP]);
  const engine = await Engine.open({ root });
  const mine: Record<string, { head: string; tar?: string[] }> = {};
  try {
    const cm = engine.containers;
    for (const p of STAT_PATHS) {
      try {
        const { stat, stream } = await cm.getArchive(name, p);
        const chunks: Buffer[] = [];
        for await (const c of stream) chunks.push(c as Buffer);
        assert.deepEqual(await cm.stat(name, p), stat, 'HEAD and GET agree');
        mine[p] = { head: comparable(200, stat), tar: entries(Buffer.concat(chunks)) };
      } catch (e) {
        assert.ok(e instanceof EngineError, String(e));
        mine[p] = { head: comparable(e.kind === 'not-found' ? 404 : 500, undefined) };
        if (e.kind === 'not-found') assert.equal(e.message, `Could not find the file ${p} in container ${name}`);
      }
    }
    // facts that hold whatever Docker says
    assert.equal(mine['/t/dir']!.head, `200 ${JSON.stringify({ name: 'dir', size: 4096, mode: GoMode.Dir + 0o755, mtime: '2020-01-02T03:04:05Z', linkTarget: '' })}`);
    assert.match(mine['/t/dir/lnk']!.head, /"linkTarget":"\/t\/dir\/sub"/);
    assert.match(mine['/t/dangling']!.head, /"linkTarget":"\/nonexist"/);
    assert.equal(mine['/t/dir/sub/a']!.head, `200 ${JSON.stringify({ name: 'a', size: 3, mode: GoMode.Setuid + 0o750, mtime: '2020-01-02T03:04:05Z', linkTarget: '' })}`);
    assert.deepEqual(mine['/t/dir/.']!.tar!.map((l) => l.split(' ')[0]), ['./', './lnk', './sub/', './sub/a']);
    assert.deepEqual(mine['/t/dir/lnk/']!.tar!.map((l) => l.split(' ')[0]), ['lnk/', 'lnk/a']);
    assert.equal(mine['/t/nonexist']!.head, '404');
  } finally {
    engine.close();
    lb(root, ['rm', '-f', name]);
  }
  const d = await docker();
  if (!d) {
    process.stdout.write('# comparison with Docker skipped: dockerd is not installed\n');
    return;
  }
  const theirs: typeof mine = {};
  assert.equal(d.dockerSync(['run', '-d', '--name', name, '--network', 'none', BB, 'sleep', '1000']).code, 0);
  try {
    assert.equal(d.dockerSync(['exec', name, 'sh', '-c', SETUP]).code, 0);
    const sock = d.env.DOCKER_HOST!.replace(/^unix:\/\//, '');
    for (const p of STAT_PATHS) {
      const url = `http://docker/v1.41/containers/${name}/archive?path=${encodeURIComponent(p)}`;
      const head = spawnSync('curl', ['-s', '-I', '--unix-socket', sock, url], { encoding: 'utf8' }).stdout;
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]);
      const h = /^x-docker-container-path-stat: (\S+)/im.exec(head)?.[1];
      const stat = status === 200 && h ? (JSON.parse(Buffer.from(h, 'base64').toString()) as PathStat) : undefined;
      theirs[p] = { head: comparable(status, stat) };
      if (status === 200) theirs[p]!.tar = entries(spawnSync('curl', ['-s', '--unix-socket', sock, url], { maxBuffer: 64 << 20 }).stdout);
    }
  } finally {
    d.dockerSync(['rm', '-f', name]);
  }
  process.stdout.write(`# compared ${STAT_PATHS.length} paths with Docker's archive endpoint\n`);
  assert.deepEqual(mine, theirs);
});

const PUT_SETUP = 'mkdir -p /p/ok /p/conflict/d /p/conflict2 /p/replace/d && echo x > /p/conflict2/f && echo file > /p/file && ln -s /p/ok /p/linkdir';
const PUT_CASES: { name: string; path: string; tar: Buffer; noOverwriteDirNonDir?: boolean; check?: string }[] = [
  {
    name: 'a tree: modes, owners, links, missing parents, a name through a link of the archive, `.`',
    path: '/p/ok',
    check: '/p/ok',
    tar: layerTar([
      { path: './', type: 'dir', mode: 0o700 },
      { path: 'top/', type: 'dir', mode: 0o750, uid: 1234, gid: 1234 },
      { path: 'top/f', type: 'file', data: 'hello\n', mode: 0o4755, uid: 1234, gid: 99 },
      { path: 'top/rel', type: 'symlink', target: 'f' },
      { path: 'top/hl', type: 'link', target: 'top/f' },
      { path: 'deep/a/b/c.txt', type: 'file', data: 'deep\n' },
      { path: 'lnk', type: 'symlink', target: 'top' },
      { path: 'lnk/through', type: 'file', data: 'via the link\n' },
      { path: 'abs', type: 'symlink', target: '/etc/passwd' },
    ]),
  },
  { name: 'into a link to a directory', path: '/p/linkdir', check: '/p/ok', tar: layerTar([{ path: 'x.txt', type: 'file', data: 'x\n' }]) },
  { name: 'a file over a directory, refused', path: '/p/conflict', noOverwriteDirNonDir: true, tar: layerTar([{ path: 'd', type: 'file', data: 'x' }]) },
  { name: 'a directory over a file, refused', path: '/p/conflict2', noOverwriteDirNonDir: true, tar: layerTar([{ path: 'f/', type: 'dir' }]) },
  { name: 'a file over a directory, allowed', path: '/p/replace', check: '/p/replace', tar: layerTar([{ path: 'd', type: 'file', data: 'now a file\n' }]) },
  { name: 'into a file', path: '/p/file', tar: layerTar([{ path: 'x', type: 'file', data: 'x' }]) },
  { name: 'a relative link out of the directory', path: '/p/ok', tar: layerTar([{ path: 'evil', type: 'symlink', target: '../../../etc' }]) },
  { name: 'a hard link out of the directory', path: '/p/ok', tar: layerTar([{ path: 'evil2', type: 'link', target: '../file' }]) },
  { name: 'into a missing directory', path: '/p/nonexist', tar: layerTar([{ path: 'x', type: 'file', data: 'x' }]) },
];

/** Docker's chrootarchive wraps extraction errors; the message inside is what both say. */
const putOutcome = (ok: boolean, message = '') => (ok ? 'ok' : `error: ${message.replace(/^Error processing tar file\(exit status 1\): /, '').trim()}`);

test('extracting into a container (PUT /containers/{id}/archive): the tree and the errors are Docker\'s', async () => {
  const name = `lbcp-put-${process.pid}`;
  ok(['run', '-d', '--name', name, '--network', 'none', BB, 'sleep', '1000']);
  ok(['exec', name, 'sh', '-c', PUT_SETUP]);
  const engine = await Engine.open({ root });
  const mine: Record<string, { outcome: string; tree?: string[] }> = {};
  try {
    const cm = engine.containers;
    for (const c of PUT_CASES) {
      let outcome: string;
      try {
        await cm.putArchive(name, c.path, Readable.from([c.tar]), { noOverwriteDirNonDir: !!c.noOverwriteDirNonDir });
        outcome = putOutcome(true);
      } catch (e) {
        assert.ok(e instanceof EngineError, String(e));
        outcome = putOutcome(false, e.message);
      }
      mine[c.name] = { outcome };
      if (c.check) {
        const { stream } = await cm.getArchive(name, c.check);
        const chunks: Buffer[] = [];
        for await (const b of stream) chunks.push(b as Buffer);
        mine[c.name]!.tree = entries(Buffer.concat(chunks)).map((l) => l.replace(/^(\S+ dir \S+ \S+ \S+ \S*) \d+$/, '$1'));
      }
    }
    assert.equal(mine[PUT_CASES[0]!.name]!.outcome, 'ok');
    assert.ok(mine[PUT_CASES[0]!.name]!.tree!.includes('ok/top/through file 644 0:0 13  1704067200'), mine[PUT_CASES[0]!.name]!.tree!.join('\n'));
    // the link entry's owner (root) is applied to the inode: its setuid bit goes, as with Docker
    assert.ok(mine[PUT_CASES[0]!.name]!.tree!.includes('ok/top/f file 755 0:0 6  1704067200'));
    assert.equal(mine['into a missing directory']!.outcome, `error: Could not find the file /p/nonexist in container ${name}`);
    assert.equal(mine['into a file']!.outcome, 'error: extraction point is not a directory');
    // a stream that ends inside a file (a client gone): refused, and no half file is left
    await assert.rejects(cm.putArchive(name, '/p/ok', Readable.from([readFileSync(join(FIXTURES, '..', 'test', 'security', 'truncated-file-data.tar'))])), /truncated/);
    await assert.rejects(cm.stat(name, '/p/ok/cut'), /Could not find the file/);
  } finally {
    engine.close();
    lb(root, ['rm', '-f', name]);
  }
  const d = await docker();
  if (!d) {
    process.stdout.write('# comparison with Docker skipped: dockerd is not installed\n');
    return;
  }
  const theirs: typeof mine = {};
  assert.equal(d.dockerSync(['run', '-d', '--name', name, '--network', 'none', BB, 'sleep', '1000']).code, 0);
  try {
    assert.equal(d.dockerSync(['exec', name, 'sh', '-c', PUT_SETUP]).code, 0);
    const sock = d.env.DOCKER_HOST!.replace(/^unix:\/\//, '');
    for (const c of PUT_CASES) {
      const url = `http://docker/v1.41/containers/${name}/archive?path=${encodeURIComponent(c.path)}${c.noOverwriteDirNonDir ? '&noOverwriteDirNonDir=true' : ''}`;
      const r = spawnSync('curl', ['-s', '-w', '\n%{http_code}', '-X', 'PUT', '-H', 'Content-Type: application/x-tar', '--data-binary', '@-', '--unix-socket', sock, url], { input: c.tar, encoding: 'utf8' });
      const lines = r.stdout.trimEnd().split('\n');
      const status = Number(lines.pop());
      theirs[c.name] = { outcome: putOutcome(status === 200, status === 200 ? '' : (JSON.parse(lines.join('\n')) as { message: string }).message) };
      if (c.check) {
        const tar = spawnSync('curl', ['-s', '--unix-socket', sock, `http://docker/v1.41/containers/${name}/archive?path=${encodeURIComponent(c.check)}`], { maxBuffer: 64 << 20 }).stdout;
        theirs[c.name]!.tree = entries(tar).map((l) => l.replace(/^(\S+ dir \S+ \S+ \S+ \S*) \d+$/, '$1'));
      }
    }
  } finally {
    d.dockerSync(['rm', '-f', name]);
  }
  process.stdout.write(`# compared ${PUT_CASES.length} extractions with Docker's archive endpoint\n`);
  assert.deepEqual(mine, theirs);
});

// ------------------------------------------------------------------ hostile archives through cp -

test('hostile archives (the security corpus) extracted into a container by cp - stay in the container or are refused (docs/RELIABILITY.md, items 1–4, 32)', async () => {
  const corpus = join(FIXTURES, '..', 'test', 'security');
  const tars = readdirSync(corpus).filter((n) => n.endsWith('.tar') && !n.endsWith('.oci.tar'));
  const name = `lbcp-hostile-${process.pid}`;
  const id = ok(['run', '-d', '--name', name, '--network', 'none', BB, 'sleep', '1000']).trim();
  const rootfs = join(root, 'containers', id, 'rootfs');
  // victims where `..` from the root file system would lead, and names the archives aim at
  const victims = [join(root, 'containers', id, 'victim'), join(root, 'containers', 'victim'), join(root, 'victim')];
  for (const v of victims) {
    mkdirSync(v, { recursive: true });
    writeFileSync(join(v, 'x'), 'victim\n');
  }
  const watched = ['/', '/etc', '/tmp', root, join(root, 'containers'), join(root, 'containers', id), ...victims];
  // other tests and tools make and remove their own temp entries in /tmp meanwhile: those
  // prefixes are not compared (the corpus aims at layerbox-sec*, layerbox-canary, victim, …)
  const infra = ['lb-', '.', 'layerbox-rt-', 'layerbox-ui-', 'layerbox-tutorial', 'tmp.', 'playwright', 'org.chromium'];
  const snapshot = () => watched.map((d) => `${d}: ${readdirSync(d).filter((n) => !infra.some((p) => n.startsWith(p))).sort().join(' ')}`).concat(victims.map((v) => `${v}/x ${readFileSync(join(v, 'x'), 'utf8')} ${statSync(join(v, 'x')).mode}`), [`/etc/passwd ${createHash('sha256').update(readFileSync('/etc/passwd')).digest('hex')}`]);
  const before = snapshot();
  const engine = await Engine.open({ root });
  const outcomes: string[] = [];
  try {
    const cm = engine.containers;
    for (const [i, t] of tars.entries()) {
      ok(['exec', name, 'mkdir', '-p', `/h/${i}`]);
      try {
        await cm.putArchive(name, `/h/${i}`, Readable.from([readFileSync(join(corpus, t))]));
        outcomes.push(`${t}: contained`);
      } catch (e) {
        assert.ok(e instanceof EngineError, `${t}: ${String(e)}`);
        outcomes.push(`${t}: refused (${e.code})`);
      }
    }
  } finally {
    engine.close();
  }
  // the CLI path too: the write-through-symlink case from stdin
  const r = lb(root, ['cp', '-', `${name}:/h`], { input: readFileSync(join(corpus, 'item2-write-through-symlink.tar')) });
  outcomes.push(`cp - item2-write-through-symlink.tar: ${r.code === 0 ? 'contained' : 'refused: ' + r.stderr.trim()}`);
  assert.ok(existsSync(rootfs));
  const after = snapshot();
  process.stdout.write(`# ${outcomes.join('; ')}\n`);
  // what was extracted can be removed by the engine (no path past PATH_MAX was made)
  ok(['rm', '-f', name]);
  assert.ok(!existsSync(join(root, 'containers', id)));
  assert.deepEqual(after, before, 'nothing outside the container changed');
  for (const v of outcomes) assert.doesNotMatch(v, /PATH_TOO|FS_ERROR.*ENAMETOOLONG/);
  assert.match(outcomes.find((o) => o.startsWith('item7-resolved-path-too-long'))!, /refused \(CP_TOO_DEEP\)/);
  assert.match(outcomes.find((o) => o.startsWith('CVE-2024-28863-deep-via-symlinks'))!, /refused \(CP_TOO_DEEP\)/);
  for (const v of victims.slice(1)) rmSync(v, { recursive: true, force: true });
});
