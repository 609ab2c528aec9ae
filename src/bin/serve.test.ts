/**
 * `layerbox serve` mounts the layer explorer under /ui beside the Engine API: one server,
 * one engine. The explorer's pages and JSON API answer there; every other path is still the
 * API's; and on a TCP listener the explorer keeps its own guards (a foreign Host is refused:
 * DNS rebinding), while the API answers as dockerd's does.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT as REPO } from '../testing/tree.js';
import { startServe, type RunningServe } from '../testing/serve.js';

let s: RunningServe;
let port: number;
const IMG = 'bench/busybox:changed';

/** a free loopback port (bound and let go) for the TCP listener */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const p = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return p;
}

function tcp(path: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  port = await freePort();
  s = await startServe({ args: ['-H', `tcp://127.0.0.1:${port}`] });
  const r = await s.request('POST', '/images/load?quiet=1', { body: readFileSync(join(REPO, 'fixtures', 'busybox-changed.docker.tar')), headers: { 'Content-Type': 'application/x-tar' } });
  assert.equal(r.status, 200, r.body.toString());
});

after(async () => {
  await s?.stop();
});

test('serve: /ui is the explorer (its page, and its JSON API agreeing with the Engine API), every other path the API', async () => {
  const redirect = await s.request('GET', '/ui');
  assert.equal(redirect.status, 308);
  assert.equal(redirect.headers.location, '/ui/');
  const page = await s.request('GET', '/ui/');
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.match(page.body.toString(), /<script type="module"/);

  const inspect = await s.request('GET', `/v1.41/images/${IMG}/json`);
  assert.equal(inspect.status, 200);
  const layers = (JSON.parse(inspect.body.toString()) as { RootFS: { Layers: string[] } }).RootFS.Layers;
  const image = await s.request('GET', `/ui/api/image?ref=${encodeURIComponent(IMG)}`);
  assert.equal(image.status, 200, image.body.toString());
  const detail = JSON.parse(image.body.toString()) as { layers: { diffId?: string }[] };
  assert.equal(detail.layers.length, layers.length);
  const store = JSON.parse((await s.request('GET', '/ui/api/store')).body.toString()) as { images: unknown[] };
  assert.equal(store.images.length, 1);

  // the explorer only reads; the API next to it is not the explorer's
  assert.equal((await s.request('POST', '/ui/api/store')).status, 405);
  assert.equal((await s.request('GET', '/_ping')).body.toString(), 'OK');
  const uix = await s.request('GET', '/uix');
  assert.equal(uix.status, 404);
  assert.equal((JSON.parse(uix.body.toString()) as { message: string }).message, 'page not found');
});

test('serve over TCP: the explorer refuses a foreign Host (DNS rebinding) and a cross-site Origin; the API beside it answers', async () => {
  assert.equal((await tcp('/ui/api/store', { Host: `127.0.0.1:${port}` })).status, 200);
  assert.equal((await tcp('/ui/api/store', { Host: `localhost:${port}` })).status, 200);
  const foreign = await tcp('/ui/api/store', { Host: `evil.example:${port}` });
  assert.equal(foreign.status, 421);
  assert.match(foreign.body, /does not answer for host/);
  assert.equal((await tcp('/ui/api/store', { Host: `127.0.0.1:${port}`, Origin: 'http://evil.example' })).status, 403);
  // dockerd's API does not look at Host: neither does serve's
  const ping = await tcp('/_ping', { Host: `evil.example:${port}` });
  assert.equal(ping.status, 200);
  assert.equal(ping.body, 'OK');
});
