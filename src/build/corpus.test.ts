/**
 * The Dockerfile corpus (testdata/corpus): layerbox builds each one, and — docker.io being
 * installed — a private dockerd builds it with the classic builder (DOCKER_BUILDKIT=0); the
 * image configs, the histories and the merged trees must be equal entry by entry, apart from
 * IDs and times.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { cpSync, chmodSync, linkSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { lbp, tempRoot } from '../testing/cli.js';
import { REPO_ROOT } from '../testing/tree.js';
import { startDockerd, type PrivateDockerd } from '../testing/dockerd.js';
import { layerTar } from '../testing/images.js';
import { Engine } from '../engine/index.js';

const CORPUS = join(REPO_ROOT, 'src', 'build', 'testdata', 'corpus');
const BASE = join(REPO_ROOT, 'fixtures', 'busybox-base.docker.tar');

let store: { root: string; cleanup(): void };
let docker: PrivateDockerd | undefined;
let server: Server;
let port = 0;
const work = mkdtempSync(join(tmpdir(), 'lb-corpus-'));

before(async () => {
  store = tempRoot('lb-build-corpus-');
  const l = await lbp(store.root, ['load', '-i', BASE]);
  assert.equal(l.code, 0, l.stderr);
  const tgz = gzipSync(layerTar([{ path: 'r/', type: 'dir' }, { path: 'r/in-remote.txt', type: 'file', data: 'remote archive\n' }]));
  server = createServer((req, res) => {
    if (req.url === '/remote.txt') {
      res.writeHead(200, { 'content-type': 'text/plain', 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' });
      res.end('downloaded\n');
    } else if (req.url === '/remote.tar.gz') {
      res.writeHead(200, { 'content-type': 'application/gzip' });
      res.end(tgz);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
  docker = await startDockerd({ prefix: 'lbb-' });
  if (docker) {
    const r = await docker.docker(['load', '-i', BASE]);
    assert.equal(r.code, 0, r.stderr);
  }
});

after(async () => {
  await docker?.stop();
  server?.close();
  store?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

/** What git cannot keep (modes, hard links, archives) is made here. */
const SETUP: Record<string, (dir: string) => void> = {
  copyforms(dir) {
    chmodSync(join(dir, 'dir/sub'), 0o750);
    chmodSync(join(dir, 'dir/x'), 0o600);
    rmSync(join(dir, 'dir/xhard'), { force: true });
    linkSync(join(dir, 'dir/x'), join(dir, 'dir/xhard'));
  },
  addtar(dir) {
    const tar = layerTar([
      { path: 'top/', type: 'dir', mode: 0o750, uid: 7, gid: 8 },
      { path: 'top/file.txt', type: 'file', data: 'in the archive\n', mode: 0o640, uid: 7, gid: 8 },
      { path: 'top/link', type: 'symlink', target: 'file.txt' },
    ]);
    writeFileSync(join(dir, 'archive.tar.gz'), gzipSync(tar));
  },
};

interface Case {
  name: string;
  dir: string;
  args?: string[];
  before?: { file: string; tag: string };
}

const CASES: Case[] = [
  { name: 'basic', dir: 'basic' },
  { name: 'multistage', dir: 'multistage' },
  { name: 'multistage-target', dir: 'multistage', args: ['--target', 'second'] },
  { name: 'args', dir: 'args', args: ['--build-arg', 'FROMCLI=cli-value', '--build-arg', 'TOP=top-cli', '--build-arg', 'UNUSED=x'] },
  { name: 'dockerignore', dir: 'dockerignore' },
  { name: 'userworkdir', dir: 'userworkdir' },
  { name: 'addtar', dir: 'addtar', args: ['--build-arg', 'PORT'] },
  { name: 'onbuild', dir: 'onbuild', before: { file: 'Dockerfile.parent', tag: 'onbuild-parent' } },
  { name: 'healthshell', dir: 'healthshell' },
  { name: 'directives', dir: 'directives' },
  { name: 'copyforms', dir: 'copyforms' },
];

type Tree = Map<string, string>;

function walkTree(root: string): Tree {
  const out: Tree = new Map();
  const walk = (rel: string) => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(root, r);
      const st = lstatSync(p);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : 'other';
      let what = '';
      if (st.isFile()) what = createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16) + ` ${st.size}`;
      if (st.isSymbolicLink()) what = '-> ' + readlinkSync(p);
      out.set(r, `${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${what}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

const norm = (s: string) => s.replace(/((?:file|dir|multi):)?[0-9a-f]{64}/g, '$1HASH');

async function describe(engine: Engine, name: string) {
  const cfg = await engine.images.config(name);
  const config = { ...(cfg.config ?? {}) } as Record<string, unknown>;
  delete config.Image;
  await using m = await engine.images.mount(name);
  return {
    config,
    history: (cfg.history ?? []).map((h) => ({ created_by: norm(h.created_by ?? ''), empty_layer: !!h.empty_layer, author: h.author ?? '' })),
    layers: cfg.rootfs.diff_ids.length,
    os: cfg.os,
    architecture: cfg.architecture,
    tree: walkTree(m.path),
  };
}

for (const c of CASES) {
  test(`corpus ${c.name}: layerbox builds it${' '}and Docker's classic builder makes the same config, history and tree`, async () => {
    const ctx = join(work, c.name);
    cpSync(join(CORPUS, c.dir), ctx, { recursive: true, verbatimSymlinks: true });
    SETUP[c.dir]?.(ctx);
    const args = [...(c.args ?? [])];
    const env = { PORT: String(port) };
    if (c.before) {
      const p = await lbp(store.root, ['build', '-q', '--network', 'none', '-f', join(ctx, c.before.file), '-t', c.before.tag, ctx]);
      assert.equal(p.code, 0, p.stderr);
    }
    const r = await lbp(store.root, ['build', '--network', 'none', ...args, '-t', `lb/${c.name}`, ctx], { env });
    assert.equal(r.code, 0, `layerbox build failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /Successfully built [0-9a-f]{12}\n/);
    assert.match(r.stdout, new RegExp(`Successfully tagged lb/${c.name}:latest\n`));
    if (c.name === 'args') assert.match(r.stdout, /\[Warning\] One or more build-args \[UNUSED\] were not consumed/);
    const ps = await lbp(store.root, ['ps', '-aq']);
    assert.equal(ps.stdout, '', 'no intermediate container is left');
    if (!docker) return;
    if (c.before) {
      const p = await docker.docker(['build', '-q', '--network', 'none', '-f', join(ctx, c.before.file), '-t', c.before.tag, ctx]);
      assert.equal(p.code, 0, p.stderr);
    }
    const d = await docker.docker(['build', '--network', 'none', ...args, '-t', `dk/${c.name}`, ctx], { env });
    assert.equal(d.code, 0, `docker build failed:\n${d.stdout}\n${d.stderr}`);
    const saved = await docker.docker(['save', `dk/${c.name}`]);
    assert.equal(saved.code, 0, saved.stderr);
    const l = await lbp(store.root, ['load'], { input: saved.out });
    assert.equal(l.code, 0, l.stderr);
    await using engine = await Engine.open({ root: store.root });
    const mine = await describe(engine, `lb/${c.name}`);
    const theirs = await describe(engine, `dk/${c.name}`);
    assert.deepEqual(mine.config, theirs.config, 'image config');
    assert.deepEqual(mine.history, theirs.history, 'history');
    assert.equal(mine.layers, theirs.layers, 'number of layers');
    assert.equal(mine.os + '/' + mine.architecture, theirs.os + '/' + theirs.architecture);
    const only = (a: Tree, b: Tree) => [...a.keys()].filter((k) => !b.has(k));
    assert.deepEqual(only(mine.tree, theirs.tree), [], 'entries only in layerbox\'s image');
    assert.deepEqual(only(theirs.tree, mine.tree), [], 'entries only in Docker\'s image');
    const diff = [...mine.tree].filter(([k, v]) => theirs.tree.get(k) !== v).map(([k, v]) => `${k}: layerbox ${v} / docker ${theirs.tree.get(k)}`);
    assert.deepEqual(diff, [], 'entries that differ');
  });
}
