/**
 * `layerbox serve` as an attack surface (the API is root-equivalent): mutual TLS as dockerd
 * does it (a client without a certificate, or with one signed by another CA, is refused
 * during the handshake; `docker --tlsverify` with the right one is served), the unix socket
 * 0660 with its group, plain TCP beyond loopback refused, and bad input — broken JSON,
 * wrong field types, an oversized body, a too-new API version, a bad X-Registry-Auth,
 * random bytes, and a client that goes away in the middle of a pull (CWE-400: work left
 * running for nobody) — each answered with a 4xx that says what is wrong, nothing left
 * half-done, and the server still serving.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer as createNetServer, connect, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { request as httpsRequest } from 'node:https';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lbp, tempRoot } from '../testing/cli.js';
import { randomLayer, layerTar, writeDockerArchive } from '../testing/images.js';
import { storeOrphans } from '../testing/store.js';
import { startServe, type RunningServe } from '../testing/serve.js';
import { startRegistry, type TestRegistry } from '../registry/testing/registries.js';

const work = mkdtempSync(join(tmpdir(), 'lb-api-sec-'));
const pki = join(work, 'pki');
const f = (n: string) => join(pki, n);

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: pki, stdio: 'ignore' });
}

/** Two CAs; a server certificate for 127.0.0.1 and a client certificate from the first; a client certificate from the second. */
function makePki(): void {
  mkdirSync(pki, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) openssl(['req', '-x509', ...ec, '-keyout', `${ca}-key.pem`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=layerbox test ${ca}`]);
  const sign = (name: string, ca: string, ext: string) => {
    openssl(['req', ...ec, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    writeFileSync(f(`${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
  };
  sign('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  sign('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  sign('intruder', 'other-ca', 'extendedKeyUsage=clientAuth\n');
}


let serve: RunningServe;
let tcpAddr: string;
let registry: TestRegistry;

before(async () => {
  makePki();
  serve = await startServe({ args: ['-H', 'tcp://127.0.0.1:0', '--tlsverify', '--tlscacert', f('ca.pem'), '--tlscert', f('server.pem'), '--tlskey', f('server-key.pem')] });
  const m = /API listen on tcp:\/\/(127\.0\.0\.1:\d+)/.exec(serve.log());
  assert.ok(m, serve.log());
  tcpAddr = m[1]!;
  registry = await startRegistry({ auth: 'none' });
});

after(async () => {
  await serve?.stop();
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function docker(args: string[], env: NodeJS.ProcessEnv = serve.env): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = spawn('/usr/bin/docker', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const [code] = (await once(c, 'close')) as [number | null];
  return { code: code ?? -1, stdout, stderr };
}

const tlsEnv = (): NodeJS.ProcessEnv => {
  const e = { ...serve.env };
  delete e.DOCKER_HOST;
  return e;
};

/** A TLS handshake and one GET /_ping, with or without a client certificate: the status, or the error. */
function tlsPing(opts: { cert?: string; key?: string }): Promise<{ status?: number; error?: string }> {
  const [host, port] = tcpAddr.split(':') as [string, string];
  return new Promise((resolve) => {
    const req = httpsRequest(
      { host, port: Number(port), path: '/_ping', ca: readFileSync(f('ca.pem')), ...(opts.cert ? { cert: readFileSync(opts.cert), key: readFileSync(opts.key!) } : {}), agent: false },
      (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0 });
      },
    );
    req.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
    req.end();
  });
}

test('TLS with --tlsverify (dockerd\'s mutual TLS): no client certificate and one signed by another CA are refused in the handshake; docker --tlsverify with the right one is served', async () => {
  const none = await tlsPing({});
  assert.equal(none.status, undefined, 'a client without a certificate got an answer');
  assert.match(none.error!, /ECONNRESET|CERTIFICATE_REQUIRED|EPROTO|handshake/i);
  const other = await tlsPing({ cert: f('intruder.pem'), key: f('intruder-key.pem') });
  assert.equal(other.status, undefined, 'a certificate from another CA got an answer');
  const good = await tlsPing({ cert: f('client.pem'), key: f('client-key.pem') });
  assert.equal(good.status, 200);

  const base = ['-H', `tcp://${tcpAddr}`, '--tlsverify', '--tlscacert', f('ca.pem')];
  const ok = await docker([...base, '--tlscert', f('client.pem'), '--tlskey', f('client-key.pem'), 'version', '--format', '{{.Server.APIVersion}}'], tlsEnv());
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, '1.41\n');
  const bad = await docker([...base, '--tlscert', f('intruder.pem'), '--tlskey', f('intruder-key.pem'), 'version', '--format', '{{.Server.APIVersion}}'], tlsEnv());
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /tls|certificate/i);
  assert.doesNotMatch(bad.stdout, /1\.41/);
  // the server checks the client; the client checks the server (a CA that did not sign it)
  const wrongCa = await docker(['-H', `tcp://${tcpAddr}`, '--tlsverify', '--tlscacert', f('other-ca.pem'), '--tlscert', f('client.pem'), '--tlskey', f('client-key.pem'), 'version'], tlsEnv());
  assert.equal(wrongCa.code, 1);
  assert.match(wrongCa.stderr, /certificate signed by unknown authority|x509/);
  // plain HTTP on the TLS port gets no API
  const plain = await new Promise<string>((resolve) => {
    const [host, port] = tcpAddr.split(':') as [string, string];
    const s = netConnect(Number(port), host, () => s.write('GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n'));
    let got = '';
    s.on('data', (b) => (got += b.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', () => resolve(got));
  });
  assert.doesNotMatch(plain, /^HTTP\/1\.1 200/);
  // and a TLS client that speaks nothing after the handshake does not hold the server
  const idle = tlsConnect({ host: '127.0.0.1', port: Number(tcpAddr.split(':')[1]), ca: readFileSync(f('ca.pem')), cert: readFileSync(f('client.pem')), key: readFileSync(f('client-key.pem')) });
  await once(idle, 'secureConnect');
  assert.equal((await serve.request('GET', '/_ping')).status, 200);
  idle.destroy();
});

test('the unix socket is 0660, group layerbox where it exists (else root); --group names another; plain TCP beyond loopback is refused without --insecure-tcp', async () => {
  const st = statSync(serve.sock);
  assert.equal(st.mode & 0o777, 0o660);
  let gid = 0;
  try {
    gid = Number(execFileSync('getent', ['group', 'layerbox']).toString().split(':')[2]);
  } catch {
    /* no such group: root's */
  }
  assert.equal(st.gid, gid);
  const adm = Number(execFileSync('getent', ['group', 'adm']).toString().split(':')[2]);
  const s2 = await startServe({ args: ['--group', 'adm'] });
  try {
    assert.equal(statSync(s2.sock).gid, adm);
    assert.equal(statSync(s2.sock).mode & 0o777, 0o660);
  } finally {
    await s2.stop();
  }
  await assert.rejects(startServe({ args: ['--group', 'no-such-group-lb'], timeoutMs: 10_000 }), /group no-such-group-lb does not exist/);
  // a routable address: refused (the API is root-equivalent), accepted only with --insecure-tcp
  const addr = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  if (addr) {
    await assert.rejects(startServe({ args: ['-H', `tcp://${addr}:0`], timeoutMs: 10_000 }), /refusing plain TCP on .*root-equivalent/);
    const open = await startServe({ args: ['-H', `tcp://${addr}:0`, '--insecure-tcp'] });
    try {
      assert.match(open.log(), new RegExp(`API listen on tcp://${addr.replace(/\./g, '\\.')}:\\d+`));
    } finally {
      await open.stop();
    }
  }
});

test('bad input: broken JSON, wrong field types, an oversized body, a too-new API version, bad filters and X-Registry-Auth, random bytes — a 4xx with a clear message each, and the server keeps serving', async () => {
  const json = (b: Buffer) => JSON.parse(b.toString()) as { message: string };
  const cases: [string, string, { body?: string | Buffer; headers?: Record<string, string> }, number, RegExp][] = [
    ['POST', '/v1.41/volumes/create', { body: '{"Name": ', headers: { 'content-type': 'application/json' } }, 400, /^invalid JSON in the request body/],
    ['POST', '/v1.41/volumes/create', { body: '{"Name": 5}', headers: { 'content-type': 'application/json' } }, 400, /^invalid VolumeCreate request: Name must be string/],
    ['POST', '/v1.41/volumes/create', { body: '{"Labels": {"a": 1}}', headers: { 'content-type': 'application/json' } }, 400, /^invalid VolumeCreate request: Labels\.a must be string/],
    ['POST', '/v1.41/volumes/create', { body: '[1,2]', headers: { 'content-type': 'application/json' } }, 400, /^invalid VolumeCreate request: the body must be object/],
    ['POST', '/v1.41/auth', { body: '{"username": ["x"]}', headers: { 'content-type': 'application/json' } }, 400, /^invalid SystemAuth request: username must be string/],
    ['POST', '/v1.41/volumes/create', { body: Buffer.alloc(11 << 20, 0x20), headers: { 'content-type': 'application/json' } }, 413, /^request body too large/],
    ['GET', '/v1.99/version', {}, 400, /^client version 1\.99 is too new\. Maximum supported API version is 1\.41$/],
    ['GET', '/v1.12/version', {}, 400, /^client version 1\.12 is too old\. Minimum supported API version is 1\.24/],
    ['GET', '/v1.41/images/json?filters=%7Bnot-json', {}, 400, /^invalid filter/],
    ['GET', '/v1.41/images/json?filters=%7B%22nope%22%3A%5B%22x%22%5D%7D', {}, 400, /^Invalid filter 'nope'$/],
    ['GET', '/v1.41/volumes?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D', {}, 400, /^Invalid filter 'dangling=maybe'$/],
    ['POST', `/v1.41/images/create?fromImage=${registry.host}/x&tag=1`, { headers: { 'X-Registry-Auth': '%%%not base64 json' } }, 400, /^invalid X-Registry-Auth header/],
    ['POST', '/v1.41/images/create?fromImage=UPPER/case', {}, 400, /^invalid reference format: repository name must be lowercase/],
    ['POST', '/v1.41/images/create', {}, 400, /fromImage or fromSrc is required/],
    ['POST', '/v1.41/images/create?fromSrc=-&repo=x/y:1', { body: 'not a tar archive', headers: { 'content-type': 'application/x-tar' } }, 400, /not a|archive/i],
    ['POST', '/v1.41/images/bench%2Fbusybox/tag?repo=a/b&tag=bad:tag', {}, 404, /No such image/],
    ['GET', '/v1.41/images/search?term=busybox', {}, 501, /^image search is not supported by layerbox/],
    ['POST', '/v1.41/build?version=2', { body: 'FROM scratch\n' }, 501, /BuildKit .* not supported .*DOCKER_BUILDKIT=0/],
    ['POST', '/v1.41/build?buildargs=%5B1%5D', { body: 'FROM scratch\n' }, 400, /^invalid buildargs: a JSON object of strings is expected/],
    ['GET', '/v1.41/no/such/endpoint', {}, 404, /^page not found$/],
    // a path parameter is percent-decoded once, as Docker's router does: %2561 is "%61", not "a"
    ['GET', '/v1.41/containers/no%2Dsuch%2561/json', {}, 404, /^No such container: no-such%61$/],
    // dot segments are resolved before routing
    ['GET', '/v1.41/containers/../volumes/nosuch', {}, 404, /^get nosuch: no such volume$/],
  ];
  for (const [method, path, opts, status, message] of cases) {
    const r = await serve.request(method, path, opts).catch((e: Error) => ({ status: -1, headers: {}, body: Buffer.from(JSON.stringify({ message: e.message })) }));
    assert.equal(r.status, status, `${method} ${path}: ${r.body.toString().slice(0, 300)}`);
    assert.match(json(r.body).message, message, `${method} ${path}`);
    // after every one, the server still answers
    assert.equal((await serve.request('GET', '/_ping')).status, 200);
  }
  // random bytes on the socket: a 400 and the connection closed
  for (const junk of [randomBytes(4096), Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'), Buffer.from('GET / HTTP/9.9\r\n\r\n'), Buffer.from('POST /v1.41/build HTTP/1.1\r\nContent-Length: -5\r\n\r\n')]) {
    const got = await new Promise<string>((resolve) => {
      const s = netConnect(serve.sock, () => s.write(junk));
      let text = '';
      s.on('data', (b) => (text += b.toString('latin1')));
      s.on('close', () => resolve(text));
      s.on('error', () => resolve(text));
    });
    assert.match(got, /^HTTP\/1\.1 400 Bad Request/);
    assert.equal((await serve.request('GET', '/_ping')).status, 200);
  }
  // the docker CLI with a too-new version pinned is told so
  const pinned = await docker(['version'], { ...serve.env, DOCKER_API_VERSION: '1.43' });
  assert.equal(pinned.code, 1);
  assert.match(pinned.stderr, /client version 1\.43 is too new\. Maximum supported API version is 1\.41/);
  // and nothing above left anything in the store
  assert.deepEqual(storeOrphans(serve.root, []), []);
  const images = await docker(['images', '-q']);
  assert.equal(images.stdout, '');
});

/**
 * A TCP forwarder that passes the registry's answers at `bytesPerSecond`: a slow network
 * (a FAULT the real registry will not make on request), so that a pull is still under way
 * when its client goes away.
 */
async function throttledProxy(target: number, bytesPerSecond: number): Promise<{ host: string; close(): Promise<void> }> {
  const conns = new Set<Socket>();
  const server = createNetServer((c) => {
    const up = connect(target, '127.0.0.1');
    conns.add(c).add(up);
    c.pipe(up);
    up.on('data', (chunk: Buffer) => {
      up.pause();
      const wait = Math.ceil((chunk.length / bytesPerSecond) * 1000);
      c.write(chunk, () => setTimeout(() => up.resume(), wait).unref());
    });
    up.on('end', () => c.end());
    const end = () => {
      c.destroy();
      up.destroy();
    };
    c.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${(server.address() as { port: number }).port}`,
    async close() {
      for (const c of conns) c.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test('a docker pull whose client goes away mid-download (CWE-400): the pull is cancelled, nothing is left half-done, and the same pull then succeeds', async () => {
  // an 8 MiB layer of random bytes, pushed to the real registry
  const seed = tempRoot('lb-sec-seed-');
  const archive = join(work, 'big.tar');
  writeDockerArchive(archive, [layerTar(randomLayer('big', 8, 1 << 20))], 'big/image:1');
  try {
    for (const args of [['load', '-i', archive], ['tag', 'big/image:1', `${registry.host}/big/image:1`], ['push', `${registry.host}/big/image:1`]]) {
      const r = await lbp(seed.root, args);
      assert.equal(r.code, 0, r.stderr);
    }
  } finally {
    seed.cleanup();
  }
  const slow = await throttledProxy(Number(registry.host.split(':')[1]), 512 << 10);
  try {
    const ref = `${slow.host}/big/image:1`;
    const c = spawn('/usr/bin/docker', ['pull', ref], { env: serve.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      c.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (/Pulling fs layer/.test(out)) resolve();
      });
      c.on('close', () => reject(new Error(`docker pull ended before the download began: ${out}`)));
    });
    c.kill('SIGKILL');
    await once(c, 'close');
    // the server gives up the download: its temporary snapshot and spooled data go
    const deadline = Date.now() + 20_000;
    let left = storeOrphans(serve.root, []);
    while (Date.now() < deadline && (left.length || tmpEntries(serve.root).length)) {
      await sleep(100);
      left = storeOrphans(serve.root, []);
    }
    assert.deepEqual(left, []);
    assert.deepEqual(tmpEntries(serve.root), []);
    assert.equal((await docker(['images', '-q'])).stdout, '', 'no half-pulled image');
    const check = await lbp(serve.root, ['system', 'check']);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    // the server keeps serving, and the pull works in full
    const again = await docker(['pull', `${registry.host}/big/image:1`]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Downloaded newer image/);
    await docker(['rmi', `${registry.host}/big/image:1`]);
  } finally {
    await slow.close();
  }
});

function tmpEntries(root: string): string[] {
  try {
    return readdirSync(join(root, 'tmp'));
  } catch {
    return [];
  }
}
