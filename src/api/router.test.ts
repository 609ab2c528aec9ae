/**
 * The router's request-target parsing: the fast path (no WHATWG URL parse) and the fallback
 * that resolves what it must (dot segments and their escapes, backslashes), so both agree;
 * and a request whose dispatch fails unexpectedly ends with a 500, never the server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Engine } from '../engine/index.js';
import { Router, requestTarget } from './router.js';
import { listen } from './server.js';

test('requestTarget: a plain origin-form target splits without new URL(); one with something to resolve gets the URL parser, and both give what new URL() gives', () => {
  const viaUrl = (raw: string) => {
    const u = new URL(raw, 'http://docker');
    return { path: u.pathname, search: u.search };
  };
  for (const raw of ['/_ping', '/v1.41/containers/json?all=1&filters=%7B%7D', '/v1.41/images/a%2Fb/json', '/containers/x/archive?path=/etc/../hosts', '/v1.41/info?']) {
    const t = requestTarget(raw)!;
    assert.equal(t.url, undefined, `${raw}: fast path`);
    assert.deepEqual({ path: t.path, search: t.search === '?' ? '' : t.search }, viaUrl(raw), raw);
  }
  for (const raw of ['/v1.41/containers/../version', '/v1.41/./info', '/a/%2e%2E/b', '/a\\b', '/v1.41/containers/..', 'x/y']) {
    const t = requestTarget(raw)!;
    assert.ok(t.url, `${raw}: resolved by the URL parser`);
    assert.deepEqual({ path: t.path, search: t.search }, viaUrl(raw), raw);
  }
  assert.equal(requestTarget('/v1.41/containers/../version')!.path, '/v1.41/version');
});

test('listen: a request whose dispatch fails unexpectedly gets a 500 with the message, the fault goes to stderr, and the server keeps serving', async () => {
  // a fault injected with a Router whose dispatch rejects (the real one answers its own
  // errors; this stands for a bug in it)
  class Faulty extends Router {
    override async dispatch(req: IncomingMessage, res: ServerResponse | undefined, socket: Duplex): Promise<void> {
      if (req.url === '/boom') throw new Error('injected fault');
      return super.dispatch(req, res, socket);
    }
  }
  const r = new Faulty({} as Engine);
  r.on('GET', '/_ping', (c) => c.send(200, 'OK'));
  const dir = mkdtempSync(join(tmpdir(), 'lb-router-'));
  const sock = join(dir, 'api.sock');
  const errWrite = process.stderr.write.bind(process.stderr);
  let logged = '';
  process.stderr.write = ((s: string | Uint8Array) => ((logged += String(s)), true)) as typeof process.stderr.write;
  const server = await listen(r, { hosts: [`unix://${sock}`] });
  try {
    const get = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const q = request({ socketPath: sock, path }, (res) => {
          let body = '';
          res.on('data', (b: Buffer) => (body += b.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        q.on('error', reject);
        q.end();
      });
    const boom = await get('/boom');
    assert.equal(boom.status, 500);
    assert.deepEqual(JSON.parse(boom.body), { message: 'internal error: injected fault' });
    assert.match(logged, /^Error: internal error in GET \/boom: Error: injected fault/);
    assert.equal((await get('/_ping')).status, 200);
  } finally {
    process.stderr.write = errWrite;
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
