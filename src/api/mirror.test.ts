/**
 * Registry mirrors and insecure registries (issue 11, item 5), for `layerbox serve` and for
 * the daemonless CLI, which reads the same daemon.json. There is no Docker Hub here: a pull
 * of `busybox` must be served by a local docker-registry acting as the mirror of
 * docker.io/library/…; with a dead mirror first and a working one second, the pull falls
 * back in order, as dockerd does (checked against a private dockerd with the same mirrors).
 * An insecure registry is reached through a non-loopback address over plain HTTP only when
 * daemon.json lists it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createNetServer, connect, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createHttpServer, type Server } from 'node:http';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { lbp, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { startDockerd } from '../testing/dockerd.js';
import { startServe } from '../testing/serve.js';
import { startRegistry, type TestRegistry } from '../registry/testing/registries.js';

const BASE = join(FIXTURES, 'busybox-base.docker.tar');

let mirror: TestRegistry;
let empty: TestRegistry;
let deadUrl: string;
let failing: Server;
let failingUrl: string;
const work = mkdtempSync(join(tmpdir(), 'lb-api-mirror-'));

/** A port nothing listens on: a mirror that is down. */
async function deadPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

before(async () => {
  // the mirror holds docker.io/library/busybox:latest (pushed by the CLI from the fixture)
  mirror = await startRegistry({ auth: 'none' });
  empty = await startRegistry({ auth: 'none' });
  const t = tempRoot('lb-mirror-seed-');
  try {
    for (const args of [['load', '-i', BASE], ['tag', 'bench/busybox:latest', `${mirror.host}/library/busybox:latest`], ['push', `${mirror.host}/library/busybox:latest`]]) {
      const r = await lbp(t.root, args);
      assert.equal(r.code, 0, r.stderr);
    }
  } finally {
    t.cleanup();
  }
  deadUrl = `http://127.0.0.1:${await deadPort()}`;
  // a mirror that answers, but only with errors
  failing = createHttpServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"UNAVAILABLE","message":"mirror is down for maintenance"}]}');
  });
  await new Promise<void>((r) => failing.listen(0, '127.0.0.1', r));
  failingUrl = `http://127.0.0.1:${(failing.address() as { port: number }).port}`;
});

after(async () => {
  await mirror?.stop();
  await empty?.stop();
  failing?.close();
  rmSync(work, { recursive: true, force: true });
});

/** Debian's docker 20.10 client against a daemon, without blocking (this process serves the failing mirror). */
async function docker20(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const e = { ...env };
  delete e.DOCKER_API_VERSION;
  const c = spawn('/usr/bin/docker', args, { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const [code] = (await once(c, 'close')) as [number | null];
  return { code: code ?? -1, stdout, stderr };
}

const manifestGets = async (r: TestRegistry) => (await r.requests()).filter((q) => q.method === 'GET' && q.path === '/v2/library/busybox/manifests/latest').length;

test('layerbox serve with registry-mirrors in daemon.json: docker pull busybox comes from the mirror, after a dead one, one that fails and one without the image; docker info lists them; the result equals dockerd\'s', async (tc) => {
  const mirrors = [deadUrl, failingUrl, `http://${empty.host}`, `http://${mirror.host}`];
  const before = await manifestGets(mirror);
  const s = await startServe({ config: { 'registry-mirrors': mirrors } });
  try {
    const r = await s.docker(['pull', 'busybox']);
    assert.equal(r.code, 0, r.stderr + s.log());
    assert.match(r.stdout, /^Using default tag: latest\nlatest: Pulling from library\/busybox\n[0-9a-f]{12}: Pulling fs layer\n/);
    assert.match(r.stdout, /Status: Downloaded newer image for busybox:latest\ndocker\.io\/library\/busybox:latest\n$/);
    assert.equal(await manifestGets(mirror), before + 1, 'the working mirror served the manifest');
    assert.ok((await empty.requests()).some((q) => q.path === '/v2/library/busybox/manifests/latest' && q.status === 404), 'the mirror without the image was asked first');
    const img = await s.docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
    assert.equal(img.stdout, 'busybox:latest a194d3cfff9c\n');
    const info = await s.docker(['info', '--format', '{{json .RegistryConfig.Mirrors}} {{json (index .RegistryConfig.IndexConfigs "docker.io").Mirrors}}']);
    const want = JSON.stringify(mirrors.map((m) => m + '/'));
    assert.equal(info.stdout, `${want} ${want}\n`);
    const text = await s.docker(['info']);
    assert.match(text.stdout, new RegExp(` Registry Mirrors:\n${mirrors.map((m) => `  ${m.replace(/\./g, '\\.')}/\n`).join('')}`));
    // a second pull: up to date, still through the mirror
    const again = await s.docker(['pull', 'busybox:latest']);
    assert.match(again.stdout, /Status: Image is up to date for busybox:latest/);

    const d = await startDockerd({ prefix: 'lbm-', args: mirrors.flatMap((m) => ['--registry-mirror', m]) });
    if (!d) {
      tc.diagnostic('docker.io is not installed: no comparison with dockerd');
      return;
    }
    try {
      const theirs = await docker20(d.env, ['pull', 'busybox']);
      assert.equal(theirs.code, 0, theirs.stderr);
      // dockerd's transfer broadcaster keeps only a layer's latest progress for a slow reader,
      // so its "Verifying Checksum" may be coalesced into "Download complete": left out on both sides
      const norm = (x: string) =>
        x
          .replace(/^[0-9a-f]{12}: /gm, '<layer>: ')
          .replace(/^<layer>: Verifying Checksum\n/gm, '')
          .replace(/sha256:[0-9a-f]{64}/g, '<digest>');
      assert.equal(norm(r.stdout), norm(theirs.stdout));
      const theirImages = await docker20(d.env, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
      assert.equal(img.stdout, theirImages.stdout);
      tc.diagnostic('dockerd pulled the same image through the same mirrors, with the same output');
    } finally {
      await d.stop();
    }
  } finally {
    await s.stop();
  }
});

test('--registry-mirror on the command line; a mirror URL dockerd refuses is refused at start', async () => {
  const s = await startServe({ args: ['--registry-mirror', `http://${mirror.host}`] });
  try {
    const r = await s.docker(['pull', 'busybox:latest']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Downloaded newer image for busybox:latest/);
  } finally {
    await s.stop();
  }
  for (const [bad, message] of [
    ['ftp://127.0.0.1:1', /invalid mirror: unsupported scheme "ftp"/],
    [`http://${mirror.host}/some/path`, /invalid mirror: path, query, or fragment at end of the URI/],
    [`http://user:secret@${mirror.host}`, /invalid mirror: username\/password not allowed in URI "http:\/\/user:xxxxx@/],
  ] as const) {
    await assert.rejects(startServe({ config: { 'registry-mirrors': [bad] }, timeoutMs: 10_000 }), message);
  }
  // daemon.json and the flag at once: dockerd's refusal
  await assert.rejects(startServe({ config: { 'registry-mirrors': [`http://${mirror.host}`] }, args: ['--registry-mirror', `http://${mirror.host}`], timeoutMs: 10_000 }), /specified both as a flag and in the configuration file: registry-mirrors/);
});

test('the layerbox CLI reads the same daemon.json ($LAYERBOX_CONFIG_FILE): pull busybox through the mirrors, falling back in order; with only a dead mirror it falls back to Docker Hub itself', async () => {
  const t = tempRoot('lb-mirror-cli-');
  const cfg = join(work, 'cli-daemon.json');
  try {
    writeFileSync(cfg, JSON.stringify({ 'registry-mirrors': [deadUrl, `http://${mirror.host}`] }));
    const r = await lbp(t.root, ['pull', 'busybox'], { env: { LAYERBOX_CONFIG_FILE: cfg } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Downloaded newer image for busybox:latest/);
    const ls = await lbp(t.root, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'], { env: { LAYERBOX_CONFIG_FILE: cfg } });
    assert.equal(ls.stdout, 'busybox:latest a194d3cfff9c\n');
    // the run path pulls through the mirror too (docker run's "Unable to find image")
    writeFileSync(cfg, JSON.stringify({ 'registry-mirrors': [deadUrl] }));
    const hub = await lbp(t.root, ['pull', 'busybox:1.36'], { env: { LAYERBOX_CONFIG_FILE: cfg } });
    assert.equal(hub.code, 1);
    // the last endpoint tried is Docker Hub's, unreachable here
    assert.match(hub.stderr, /registry-1\.docker\.io|docker\.io/);
    assert.doesNotMatch(hub.stderr, new RegExp(deadUrl.replace(/[.:/]/g, '\\$&')));
    // a broken daemon.json is named
    writeFileSync(cfg, '{"registry-mirrors": "not a list"}');
    const broken = await lbp(t.root, ['pull', 'busybox'], { env: { LAYERBOX_CONFIG_FILE: cfg } });
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /wrong type for "registry-mirrors": a list of strings is expected/);
    assert.match(broken.stderr, new RegExp(cfg.replace(/[.]/g, '\\.')));
  } finally {
    t.cleanup();
  }
});

/** The first non-loopback IPv4 address of this host. */
function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

test('insecure-registries in daemon.json: a plain-HTTP registry on a non-loopback address is refused until listed, for the server and the CLI alike', async (tc) => {
  const addr = hostAddress();
  if (!addr) {
    tc.diagnostic('no non-loopback address on this host');
    return;
  }
  // the registry listens on 127.0.0.1; a forwarder gives it a non-loopback address
  const conns = new Set<Socket>();
  const fwd: NetServer = createNetServer((c) => {
    const up = connect(Number(mirror.host.split(':')[1]), '127.0.0.1');
    conns.add(c).add(up);
    c.pipe(up).pipe(c);
    const end = () => {
      c.destroy();
      up.destroy();
    };
    c.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => fwd.listen(0, addr, r));
  const host = `${addr}:${(fwd.address() as { port: number }).port}`;
  const t = tempRoot('lb-insecure-');
  const cfg = join(work, 'insecure.json');
  try {
    writeFileSync(cfg, '{}');
    const refused = await lbp(t.root, ['pull', `${host}/library/busybox:latest`], { env: { LAYERBOX_CONFIG_FILE: cfg } });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /HTTP|TLS|https/i);
    writeFileSync(cfg, JSON.stringify({ 'insecure-registries': [host] }));
    const ok = await lbp(t.root, ['pull', `${host}/library/busybox:latest`], { env: { LAYERBOX_CONFIG_FILE: cfg } });
    assert.equal(ok.code, 0, ok.stderr);

    const s = await startServe({ config: {} });
    try {
      const no = await s.docker(['pull', `${host}/library/busybox:latest`]);
      assert.equal(no.code, 1);
    } finally {
      await s.stop();
    }
    const s2 = await startServe({ config: { 'insecure-registries': [host] } });
    try {
      const yes = await s2.docker(['pull', `${host}/library/busybox:latest`]);
      assert.equal(yes.code, 0, yes.stderr);
      const info = await s2.docker(['info', '--format', `{{(index .RegistryConfig.IndexConfigs "${host}").Secure}}`]);
      assert.equal(info.stdout, 'false\n');
    } finally {
      await s2.stop();
    }
    // a CIDR entry works the same way
    const s3 = await startServe({ config: { 'insecure-registries': [`${addr}/32`] } });
    try {
      const yes = await s3.docker(['pull', `${host}/library/busybox:latest`]);
      assert.equal(yes.code, 0, yes.stderr);
      const info = await s3.docker(['info', '--format', '{{json .RegistryConfig.InsecureRegistryCIDRs}}']);
      assert.equal(info.stdout, `["127.0.0.0/8","${addr}/32"]\n`);
    } finally {
      await s3.stop();
    }
  } finally {
    for (const c of conns) c.destroy();
    await new Promise<void>((r) => fwd.close(() => r()));
    t.cleanup();
  }
});
