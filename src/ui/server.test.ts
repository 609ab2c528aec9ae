/**
 * The explorer's HTTP side against hostile input: foreign Host and Origin headers (DNS
 * rebinding, cross-site reads), path traversal, unknown images, huge previews, methods
 * that write; the JSON API and the mountable handler; `explore` on 127.0.0.1.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Engine } from '../engine/index.js';
import { createExplorer, listenExplorer, type ExplorerServer } from './index.js';
import { lbAsync, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { layerTar, writeDockerArchive } from '../testing/images.js';

const t = tempRoot('lb-ui-server-');
let engine: Engine;
let srv: ExplorerServer;
let port = 0;
const HUGE = 10 << 20;

before(async () => {
  engine = await Engine.open({ root: join(t.root, 'store') });
  await engine.images.load({ path: join(FIXTURES, 'busybox-changed.docker.tar') }).result;
  const file = join(t.root, 'hostile.tar');
  writeDockerArchive(
    file,
    [
      layerTar([
        { path: 'etc/', type: 'dir' },
        { path: 'etc/shadow-link', type: 'symlink', target: '/etc/shadow' },
        { path: 'escape', type: 'symlink', target: '/' },
        { path: 'big.bin', type: 'file', data: Buffer.alloc(HUGE, 0x41) },
      ]),
    ],
    'test/hostile:latest',
  );
  await engine.images.load({ path: file }).result;
  srv = await listenExplorer(engine, { port: 0 });
  port = (srv.server.address() as AddressInfo).port;
});
after(async () => {
  await srv.close();
  engine.close();
  t.cleanup();
});

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(path: string, headers: Record<string, string> = {}, method = 'GET', p = port): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: p, path, method, headers: { Host: `127.0.0.1:${p}`, ...headers } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

const api = async (route: string, q: Record<string, string>, headers: Record<string, string> = {}) => {
  const r = await get(`/ui/api/${route}?${new URLSearchParams(q)}`, headers);
  return { ...r, json: JSON.parse(r.body) };
};

test('the explorer listens on 127.0.0.1 unless told otherwise, and serves its page and the vendored library', async () => {
  assert.equal((srv.server.address() as AddressInfo).address, '127.0.0.1');
  assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/ui\/$/);
  const page = await get('/ui/');
  assert.equal(page.status, 200);
  assert.match(page.body, /<script type="importmap">/);
  assert.doesNotMatch(page.body, /https?:\/\//); // nothing from elsewhere
  assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self' 'sha256-/);
  const preact = await get('/ui/vendor/preact.mjs');
  assert.equal(preact.status, 200);
  assert.match(String(preact.headers['content-type']), /javascript/);
  assert.equal((await get('/ui')).status, 308);
  assert.equal((await get('/')).status, 302);
});

test('DNS rebinding: a request whose Host is another name (or another port) is refused', async () => {
  for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${port + 1}`, `rebind.127.0.0.1.nip.io:${port}`]) {
    const r = await get('/ui/api/store', { Host: host });
    assert.equal(r.status, 421, host);
    assert.match(JSON.parse(r.body).message, /does not answer for host/);
  }
  assert.equal((await get('/ui/api/store', { Host: `localhost:${port}` })).status, 200);
  assert.equal((await get('/ui/', { Host: 'evil.example' })).status, 421);
});

test('a cross-site read: an Origin that is not the listener is refused', async () => {
  const r = await get('/ui/api/store', { Origin: 'http://evil.example' });
  assert.equal(r.status, 403);
  assert.match(JSON.parse(r.body).message, /origin "http:\/\/evil.example" are refused/);
  assert.equal((await get('/ui/api/store', { Origin: `http://127.0.0.1:${port}` })).status, 200);
  assert.equal((await get('/ui/api/store', { Origin: 'null' })).status, 403);
});

test('only reads: POST, PUT and DELETE are refused', async () => {
  for (const m of ['POST', 'PUT', 'DELETE']) {
    const r = await get('/ui/api/store', {}, m);
    assert.equal(r.status, 405, m);
    assert.equal(r.headers.allow, 'GET, HEAD');
  }
});

test('path traversal (CWE-22): ".." in an API path or in the URL is refused; nothing outside the snapshots is served', async () => {
  const ref = 'bench/busybox:changed';
  for (const p of ['/../../../../etc/passwd', '/etc/../../etc/shadow', '..']) {
    for (const route of ['file', 'tree', 'entry']) {
      const r = await api(route, { ref, path: p });
      assert.equal(r.status, 400, `${route} ${p}`);
      assert.match(r.json.message, /"\.\." is not allowed/);
    }
  }
  for (const raw of ['/ui/static/../../../package.json', '/ui/static/%2e%2e/%2e%2e/package.json', '/ui/vendor/..%2f..%2fpackage.json']) {
    const r = await get(raw);
    assert.equal(r.status, 400, raw);
  }
  // the image's own symlinks lead nowhere outside: they are not files, and nothing is read through them
  const link = await api('file', { ref: 'test/hostile:latest', path: '/etc/shadow-link' });
  assert.equal(link.status, 400);
  assert.match(link.json.message, /is a symlink, not a regular file/);
  const through = await api('file', { ref: 'test/hostile:latest', path: '/escape/etc/passwd' });
  assert.equal(through.status, 404);
  assert.match(through.json.message, /no \/escape\/etc\/passwd in the image/);
  const ok = await api('file', { ref, path: '/etc/passwd' });
  assert.equal(ok.status, 200);
  assert.match(ok.json.text, /^root:x:0:0:/);
});

test('an unknown image, path or layer gets a clear 404 / 400', async () => {
  const r = await api('image', { ref: 'no/such:image' });
  assert.equal(r.status, 404);
  assert.equal(r.json.message, 'No such image: no/such:image');
  assert.equal((await api('tree', { ref: 'sha256:' + '0'.repeat(64) })).status, 404);
  const p = await api('tree', { ref: 'bench/busybox:changed', path: '/nope' });
  assert.equal(p.status, 404);
  assert.equal(p.json.message, 'no /nope in the image');
  const l = await api('tree', { ref: 'bench/busybox:changed', layer: '7' });
  assert.equal(l.status, 400);
  assert.match(l.json.message, /layer 7 does not exist/);
  assert.equal((await api('tree', { ref: 'bench/busybox:changed', layer: '-1' })).status, 400);
  assert.equal((await api('nope', {})).status, 404);
  assert.equal((await api('tree', {})).status, 400);
});

test('a huge file preview is bounded: 64 KiB a request, with the size and a way on', async () => {
  const r = await api('file', { ref: 'test/hostile:latest', path: '/big.bin', length: String(1 << 30) });
  assert.equal(r.status, 200);
  assert.equal(r.json.size, HUGE);
  assert.equal(r.json.length, 65536);
  assert.equal(r.json.truncated, true);
  assert.equal(r.body.length < 200_000, true);
  const tail = await api('file', { ref: 'test/hostile:latest', path: '/big.bin', offset: String(HUGE - 10) });
  assert.equal(tail.json.length, 10);
  assert.equal(tail.json.truncated, false);
  assert.equal(tail.json.text, 'AAAAAAAAAA');
});

test('the JSON API: image, tree, entry, search, store, compare', async () => {
  const ref = 'bench/busybox:changed';
  const img = await api('image', { ref });
  assert.equal(img.status, 200);
  assert.equal(img.json.wastedBytes, img.json.sizeBytes - img.json.unionBytes);
  assert.equal(img.json.wastedFiles, img.json.wasted.length);
  assert.equal(img.json.layerDetails.length, 2);
  const tree = await api('tree', { ref, path: '/opt/app', removed: '1' });
  assert.equal(tree.json.entry.opaque, true);
  assert.deepEqual(tree.json.entries.map((e: { name: string }) => e.name), ['NEW.txt', 'README', 'conf', 'version']);
  const page = await api('tree', { ref, path: '/bin', limit: '10', offset: '5' });
  assert.equal(page.json.entries.length, 10);
  assert.ok(page.json.total > 15, String(page.json.total));
  const motd = await api('entry', { ref, path: '/etc/motd' });
  assert.deepEqual(motd.json.reasons, ['content', 'mtime']);
  const s = await api('search', { ref, q: 'hardlink' });
  assert.deepEqual(s.json.entries.map((e: { path: string }) => e.path).sort(), ['/srv/added-hardlink.txt', '/srv/group-hardlink']);
  const store = await api('store', {});
  assert.equal(store.json.images.length, 2);
  const cmp = await api('compare', { a: ref, b: 'test/hostile:latest' });
  assert.equal(cmp.json.sharedLayers, 0);
});

test('the handler mounts under a prefix of another server and leaves other paths alone', async () => {
  const ex = createExplorer(engine, { prefix: '/ui' });
  const other = createServer((req, res) => {
    void ex.handle(req, res).then((handled) => {
      if (handled) return;
      res.statusCode = 200;
      res.end('api');
    });
  });
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
  const p = (other.address() as AddressInfo).port;
  try {
    assert.equal((await get('/_ping', {}, 'GET', p)).body, 'api');
    assert.equal((await get('/uix', {}, 'GET', p)).body, 'api');
    const r = await get('/ui/api/image?ref=bench/busybox:changed', {}, 'GET', p);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).layers.length, 2);
    assert.equal((await get('/ui/api/store', { Host: 'evil.example' }, 'GET', p)).status, 421);
  } finally {
    other.closeAllConnections();
    await new Promise((r) => other.close(r));
  }
});

test('explore prints a 127.0.0.1 URL (the image page with an IMAGE), serves it, and stops on SIGTERM', async () => {
  const { child, done } = lbAsync(join(t.root, 'store'), ['explore', '--port', '0', 'bench/busybox:changed']);
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve(line!);
    });
    child.once('exit', () => reject(new Error('explore exited: ' + out)));
  });
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/ui\/#\/image\/sha256%3A8964ac8a062e/);
  const p = Number(/:(\d+)\//.exec(url)![1]);
  const r = await get('/ui/api/image?ref=' + encodeURIComponent('bench/busybox:changed'), {}, 'GET', p);
  assert.equal(r.status, 200);
  child.kill('SIGTERM');
  const res = await done;
  assert.equal(res.code, 0, res.stderr);
  const bad = lbAsync(join(t.root, 'store'), ['explore', 'no/such:image']);
  const br = await bad.done;
  assert.equal(br.code, 1);
  assert.match(br.stderr, /No such image: no\/such:image/);
});
