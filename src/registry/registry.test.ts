/**
 * RegistryClient against the REAL docker-registry (distribution 2.8, Debian's
 * /usr/bin/docker-registry), started per suite by testing/registries.ts: anonymous,
 * htpasswd (Basic), token auth (with the test token server), TLS with certs.d and client
 * certificates.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryClient, type RegistryClientOptions } from './client.js';
import { CredentialStore } from './credentials.js';
import { startRegistry, type TestRegistry } from './testing/registries.js';
import { collect, imageConfig, ociIndex, ociManifest, pseudoRandom, sha256hex, streamOf, tempDir, thrown } from './testing/fixtures.js';
import { MediaType } from '../oci/mediatypes.js';
import type { Manifest } from '../oci/types.js';

const FAST = { retry: { retries: 2, baseDelayMs: 5, maxDelayMs: 20 } } as const;

function mk(reg: TestRegistry, o: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({ host: reg.host, ...FAST, ...o });
}

/** Pushes config + one layer + manifest under `tag`; returns what was pushed. */
async function pushImage(c: RegistryClient, repo: string, tag: string, seed = 1) {
  const layer = pseudoRandom(50_000, seed);
  const cfg = imageConfig([sha256hex(layer)]);
  const l = await c.uploadBlob(repo, streamOf(layer));
  const k = await c.uploadBlob(repo, streamOf(cfg));
  const layerDesc = { mediaType: MediaType.OciLayer, digest: l.digest, size: l.size };
  const cfgDesc = { mediaType: MediaType.OciConfig, digest: k.digest, size: k.size };
  const manifest = ociManifest(cfgDesc, [layerDesc]);
  const digest = await c.putManifest(repo, tag, MediaType.OciManifest, manifest);
  return { layer, cfg, layerDesc, cfgDesc, manifest, digest };
}

describe('docker-registry, anonymous', () => {
  let reg: TestRegistry;
  let c: RegistryClient;
  before(async () => {
    reg = await startRegistry({ auth: 'none' });
    c = mk(reg);
  });
  after(async () => {
    await c.close();
    await reg.stop();
  });

  it('pings /v2/: plain HTTP on loopback after HTTPS fails, no auth', async () => {
    const p = await c.ping();
    assert.deepEqual(p, { url: `http://${reg.host}/`, scheme: 'http', auth: 'none' });
    const log = await reg.requests();
    assert.deepEqual(log.map((r) => `${r.method} ${r.path} ${r.status}`), ['GET /v2/ 200']);
    assert.match(log[0]!.userAgent, /^layerbox\//);
  });

  it('uploads monolithically (POST + PUT), then HEAD finds it', async () => {
    const data = pseudoRandom(10_000, 2);
    const before = (await reg.requests()).length;
    const up = await c.uploadBlob('mono/app', streamOf(data, 1000));
    assert.deepEqual(up, { digest: sha256hex(data), size: data.length });
    const log = (await reg.requests()).slice(before).map((r) => `${r.method} ${r.status}`);
    assert.deepEqual(log, ['POST 202', 'PUT 201']);
    assert.equal(await c.blobExists('mono/app', up.digest), data.length);
    assert.equal(await c.blobExists('mono/app', sha256hex('absent')), undefined);
  });

  it('uploads in chunks (POST, PATCH×n with Content-Range, PUT ?digest=) and reads it back verified', async () => {
    const data = pseudoRandom(2_500_000, 3);
    const before = (await reg.requests()).length;
    const progress: number[] = [];
    const up = await c.uploadBlob('chunked/app', streamOf(data, 70_000), { chunkSize: 1024 * 1024, digest: sha256hex(data), size: data.length, onProgress: (p) => progress.push(p.offset) });
    assert.equal(up.digest, sha256hex(data));
    const log = (await reg.requests()).slice(before).map((r) => `${r.method} ${r.status}`);
    assert.deepEqual(log, ['POST 202', 'PATCH 202', 'PATCH 202', 'PATCH 202', 'PUT 201']);
    assert.deepEqual(progress, [1048576, 2097152, 2500000]);
    const got = await collect(c.openBlob('chunked/app', { mediaType: MediaType.OciLayer, digest: up.digest, size: up.size }));
    assert.ok(got.equals(data));
  });

  it('pushes and pulls a manifest by tag and by digest; the blob is fetched exactly once', async () => {
    const img = await pushImage(c, 'pp/app', 'v1');
    assert.equal(img.digest, sha256hex(img.manifest));
    const byTag = await c.getManifest('pp/app', 'v1');
    assert.equal(byTag.digest, img.digest);
    assert.equal(byTag.mediaType, MediaType.OciManifest);
    assert.ok(byTag.bytes.equals(img.manifest));
    const byDigest = await c.getManifest('pp/app', img.digest);
    assert.equal(byDigest.digest, img.digest);
    const m = byDigest.parsed as Manifest;
    const cfg = await c.getConfig('pp/app', m.config);
    assert.ok(cfg.bytes.equals(img.cfg));
    assert.deepEqual(cfg.parsed.rootfs.diff_ids, [sha256hex(img.layer)]);
    const before = (await reg.requests()).length;
    const layer = await collect(c.openBlob('pp/app', m.layers[0]!));
    assert.ok(layer.equals(img.layer));
    const gets = (await reg.requests()).slice(before).filter((r) => r.method === 'GET' && r.path === `/v2/pp/app/blobs/${img.layerDesc.digest}`);
    assert.equal(gets.length, 1);
    const head = await c.headManifest('pp/app', 'v1');
    assert.deepEqual(head, { digest: img.digest, mediaType: MediaType.OciManifest, size: img.manifest.length });
  });

  it('pushes an index by digest and pulls it', async () => {
    const img = await pushImage(c, 'idx/app', 'base', 4);
    const index = ociIndex([{ mediaType: MediaType.OciManifest, digest: img.digest, size: img.manifest.length, platform: { architecture: 'amd64', os: 'linux' } }]);
    const d = await c.putManifest('idx/app', sha256hex(index), MediaType.OciIndex, index);
    const got = await c.getManifest('idx/app', d);
    assert.equal(got.mediaType, MediaType.OciIndex);
    assert.equal(got.digest, d);
  });

  it('mounts a blob from another repository (201); a blob it does not have starts an upload, which is cancelled', async () => {
    const img = await pushImage(c, 'src/app', 'v1', 5);
    assert.equal(await c.blobExists('dst/app', img.layerDesc.digest), undefined);
    assert.deepEqual(await c.mountBlob('dst/app', img.layerDesc.digest, 'src/app'), { mounted: true });
    assert.equal(await c.blobExists('dst/app', img.layerDesc.digest), img.layer.length);
    const before = (await reg.requests()).length;
    assert.deepEqual(await c.mountBlob('dst/app', sha256hex('not there'), 'src/app'), { mounted: false });
    const log = (await reg.requests()).slice(before).map((r) => `${r.method} ${r.status}`);
    assert.deepEqual(log, ['POST 202', 'DELETE 204']);
  });

  it('a 202 mount can hand its upload session to uploadBlob', async () => {
    const data = pseudoRandom(3000, 6);
    const m = await c.mountBlob('dst2/app', sha256hex(data), 'src/app', { keepUpload: true });
    assert.equal(m.mounted, false);
    assert.ok(!m.mounted && m.session);
    const up = await c.uploadBlob('dst2/app', streamOf(data), { session: m.session });
    assert.equal(up.digest, sha256hex(data));
    assert.equal(await c.blobExists('dst2/app', up.digest), data.length);
  });

  it('lists tags', async () => {
    await pushImage(c, 'tags/app', 'a', 7);
    await pushImage(c, 'tags/app', 'b', 7);
    await pushImage(c, 'tags/app', 'c', 7);
    assert.deepEqual((await c.listTags('tags/app')).sort(), ['a', 'b', 'c']);
    const e = await thrown(() => c.listTags('nope/app'));
    assert.equal(e.kind, 'not-found');
  });

  it('a missing manifest is a clear not-found naming registry and repository', async () => {
    const e = await thrown(() => c.getManifest('a/b', 'x'));
    assert.equal(e.kind, 'not-found');
    assert.equal(e.message, `manifest unknown: manifest tagged by "x" is not found (registry ${reg.host}, repository a/b)`);
    const d = sha256hex('nothing');
    const e2 = await thrown(() => collect(c.openBlob('a/b', { mediaType: MediaType.OciLayer, digest: d, size: 7 })));
    assert.equal(e2.kind, 'not-found');
    assert.equal(e2.message, `blob unknown to registry: blob ${d} is not found (registry ${reg.host}, repository a/b, digest ${d})`);
  });

  it('refuses invalid names before making a request', async () => {
    const before = (await reg.requests()).length;
    for (const bad of ['../etc', 'A/b', 'a//b', 'a/b?x=1', '']) {
      const e = await thrown(() => c.getManifest(bad, 'latest'));
      assert.equal(e.kind, 'invalid-argument', bad);
    }
    const e = await thrown(() => c.getManifest('a/b', 'sha256:../../x'));
    assert.equal(e.kind, 'invalid-argument');
    assert.equal((await reg.requests()).length, before);
  });
});

describe('docker-registry, htpasswd (Basic)', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ auth: 'htpasswd', users: [{ user: 'alice', password: 'wonder land' }] });
  });
  after(async () => reg.stop());

  it('good credentials push and pull', async () => {
    const c = mk(reg, { credentials: { username: 'alice', password: 'wonder land' } });
    try {
      assert.equal((await c.ping()).auth, 'basic');
      const img = await pushImage(c, 'basic/app', 'v1');
      const got = await c.getManifest('basic/app', 'v1');
      assert.equal(got.digest, img.digest);
    } finally {
      await c.close();
    }
  });

  it('bad credentials: a clear unauthorized error, no loop', async () => {
    const c = mk(reg, { credentials: { username: 'alice', password: 'wrong' } });
    try {
      const before = (await reg.requests()).length;
      const e = await thrown(() => c.getManifest('basic/app', 'v1'));
      assert.equal(e.kind, 'unauthorized');
      assert.match(e.message, /was refused with the credentials stored for/);
      assert.ok(e.message.includes(`(registry ${reg.host}, repository basic/app)`), e.message);
      const log = (await reg.requests()).slice(before);
      assert.ok(log.length <= 2, JSON.stringify(log));
      assert.ok(log.every((r) => r.status === 401));
    } finally {
      await c.close();
    }
  });

  it('credentials from a Docker config.json (CredentialStore) reach the registry they were stored for', async () => {
    const dir = await tempDir('layerbox-dockercfg-');
    try {
      const store = new CredentialStore({ configPath: join(dir, 'config.json') });
      await store.store(reg.host, { username: 'alice', password: 'wonder land' });
      const c = mk(reg, { credentials: store });
      try {
        const img = await pushImage(c, 'cfg/app', 'v1', 12);
        assert.equal((await c.getManifest('cfg/app', 'v1')).digest, img.digest);
      } finally {
        await c.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('no credentials: unauthorized, asking to log in', async () => {
    const c = mk(reg);
    try {
      const e = await thrown(() => c.getManifest('basic/app', 'v1'));
      assert.equal(e.kind, 'unauthorized');
      assert.match(e.message, /without credentials/);
      assert.match((e as { hint?: string }).hint ?? '', /layerbox login/);
    } finally {
      await c.close();
    }
  });
});

describe('docker-registry, token auth', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ auth: 'token', users: [{ user: 'bob', password: 'builder' }] });
  });
  after(async () => reg.stop());

  it('gets tokens per scope: pull,push to push, pull to pull, both repositories to mount', async () => {
    const c = mk(reg, { credentials: { username: 'bob', password: 'builder' } });
    const puller = mk(reg, { credentials: { username: 'bob', password: 'builder' } });
    try {
      assert.equal((await c.ping()).auth, 'bearer');
      const ts = reg.tokenServer!;
      ts.requests.length = 0;
      const img = await pushImage(c, 'tok/app', 'v1');
      assert.deepEqual(ts.requests.map((r) => [r.user, r.scopes]), [['bob', ['repository:tok/app:pull,push']]], 'one token, cached, for the whole push');
      ts.requests.length = 0;
      await c.getManifest('tok/app', 'v1');
      assert.equal(ts.requests.length, 0, 'the push token serves pulls of the same repository');
      await puller.getManifest('tok/app', 'v1');
      await collect(puller.openBlob('tok/app', img.layerDesc));
      assert.deepEqual(ts.requests.map((r) => r.scopes), [['repository:tok/app:pull']]);
      ts.requests.length = 0;
      assert.deepEqual(await c.mountBlob('tok/other', img.layerDesc.digest, 'tok/app'), { mounted: true });
      assert.deepEqual(ts.requests.map((r) => r.scopes.sort()), [['repository:tok/app:pull', 'repository:tok/other:pull,push']]);
    } finally {
      await c.close();
      await puller.close();
    }
  });

  it('concurrent pulls share one token request and fetch each blob once', async () => {
    const c = mk(reg, { credentials: { username: 'bob', password: 'builder' } });
    const pusher = mk(reg, { credentials: { username: 'bob', password: 'builder' } });
    try {
      const blobs = [1, 2, 3, 4, 5, 6].map((i) => pseudoRandom(200_000 + i, 100 + i));
      const descs = await Promise.all(blobs.map(async (b) => ({ mediaType: MediaType.OciLayer, ...(await pusher.uploadBlob('conc/app', streamOf(b))) })));
      const ts = reg.tokenServer!;
      ts.requests.length = 0;
      const before = (await reg.requests()).length;
      const got = await Promise.all(descs.map((d) => collect(c.openBlob('conc/app', d))));
      got.forEach((g, i) => assert.ok(g.equals(blobs[i]!)));
      assert.equal(ts.requests.length, 1);
      const gets = (await reg.requests()).slice(before).filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
      assert.equal(gets.length, descs.length);
      assert.ok(gets.every((g) => g.status === 200));
    } finally {
      await c.close();
      await pusher.close();
    }
  });

  it('an aborted upload is cancelled on the registry', async () => {
    const c = mk(reg, { credentials: { username: 'bob', password: 'builder' } });
    try {
      const ac = new AbortController();
      const data = pseudoRandom(3_000_000, 13);
      const before = (await reg.requests()).length;
      const e = await thrown(() =>
        c.uploadBlob('abort/app', streamOf(data, 100_000), {
          chunkSize: 1024 * 1024,
          signal: ac.signal,
          onProgress: () => ac.abort(),
        }),
      );
      assert.equal(e.kind, 'cancelled');
      const log = (await reg.requests()).slice(before).filter((r) => r.path !== '/v2/').map((r) => `${r.method} ${r.status}`);
      // distribution wants `delete` for DELETE: the 401 names that scope, and one re-authentication asks for it
      assert.deepEqual(log, ['POST 202', 'PATCH 202', 'DELETE 401', 'DELETE 204']);
      assert.deepEqual(reg.tokenServer!.requests.at(-1)!.scopes.sort(), ['repository:abort/app:delete', 'repository:abort/app:pull,push']);
      assert.equal(await c.blobExists('abort/app', sha256hex(data)), undefined);
    } finally {
      await c.close();
    }
  });

  it('bad credentials at the token server: unauthorized naming registry and repository', async () => {
    const c = mk(reg, { credentials: { username: 'bob', password: 'nope' } });
    try {
      const e = await thrown(() => c.getManifest('tok/app', 'v1'));
      assert.equal(e.kind, 'unauthorized');
      assert.match(e.message, /token server 127\.0\.0\.1:\d+ refused the credentials/);
      assert.ok(e.message.includes(`(registry ${reg.host}, repository tok/app)`), e.message);
    } finally {
      await c.close();
    }
  });

  it('anonymous gets a token without access: one refresh, then unauthorized', async () => {
    const c = mk(reg);
    try {
      const before = (await reg.requests()).length;
      const e = await thrown(() => c.getManifest('tok/app', 'v1'));
      assert.equal(e.kind, 'unauthorized');
      assert.ok(e.message.includes(`repository tok/app`), e.message);
      const log = (await reg.requests()).slice(before).filter((r) => r.path.includes('/manifests/'));
      assert.deepEqual(log.map((r) => r.status), [401, 401]);
    } finally {
      await c.close();
    }
  });

  it('a token that expired is refreshed before use', async () => {
    const short = await startRegistry({ auth: 'token', users: [{ user: 'bob', password: 'builder' }], tokenExpirySeconds: 2 });
    const pusher = mk(short, { credentials: { username: 'bob', password: 'builder' } });
    const c = mk(short, { credentials: { username: 'bob', password: 'builder' }, minTokenLifetimeSeconds: 0 });
    try {
      await pushImage(pusher, 'exp/app', 'v1');
      await pusher.close();
      const ts = short.tokenServer!;
      ts.requests.length = 0;
      await c.getManifest('exp/app', 'v1');
      await c.getManifest('exp/app', 'v1');
      assert.equal(ts.requests.length, 1, 'cached while valid');
      await new Promise((r) => setTimeout(r, 2100));
      await c.getManifest('exp/app', 'v1');
      assert.equal(ts.requests.length, 2, 'refreshed after expiry');
      const log = (await short.requests()).filter((r) => r.path.includes('/manifests/'));
      assert.ok(log.every((r) => r.status !== 401), 'no request was sent with an expired token');
    } finally {
      await pusher.close();
      await c.close();
      await short.stop();
    }
  });

  it('a token the registry rejects (401) is refreshed once and the request succeeds', async () => {
    const c = mk(reg, { credentials: { username: 'bob', password: 'builder' } });
    try {
      const img = await pushImage(c, 'stale/app', 'v1', 8);
      await c.close();
      const c2 = mk(reg, { credentials: { username: 'bob', password: 'builder' } });
      try {
        reg.tokenServer!.expireNext(1);
        const before = (await reg.requests()).length;
        const got = await c2.getManifest('stale/app', 'v1');
        assert.equal(got.digest, img.digest);
        const log = (await reg.requests()).slice(before).filter((r) => r.path.includes('/manifests/'));
        assert.deepEqual(log.map((r) => r.status), [401, 200]);
      } finally {
        await c2.close();
      }
    } finally {
      await c.close();
    }
  });

  it("an identity token (Docker's refresh token) is exchanged through the OAuth2 POST flow", async () => {
    const ts = reg.tokenServer!;
    const res = await fetch(ts.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=password&username=bob&password=builder&access_type=offline&service=layerbox-test-registry&client_id=test',
    });
    const { refresh_token } = (await res.json()) as { refresh_token: string };
    assert.ok(refresh_token);
    const c = mk(reg, { credentials: { identityToken: refresh_token } });
    try {
      ts.requests.length = 0;
      await pushImage(c, 'oauth/app', 'v1', 9);
      assert.ok(ts.requests.length >= 1);
      assert.ok(ts.requests.every((r) => r.method === 'POST' && r.grantType === 'refresh_token' && r.user === 'bob' && r.status === 200));
    } finally {
      await c.close();
    }
  });
});

describe('docker-registry over TLS', () => {
  let reg: TestRegistry;
  let mtls: TestRegistry;
  let certs: string;
  before(async () => {
    reg = await startRegistry({ tls: true });
    mtls = await startRegistry({ tls: true, clientCerts: true });
    certs = await tempDir('layerbox-certsd-');
  });
  after(async () => {
    await reg.stop();
    await mtls.stop();
    await rm(certs, { recursive: true, force: true });
  });

  it('an unknown CA is a TLS error with a certs.d hint, never a silent fallback to HTTP', async () => {
    const c = mk(reg, { certsDir: join(certs, 'empty') });
    try {
      const e = await thrown(() => c.ping());
      assert.equal(e.kind, 'failed-precondition');
      assert.equal(e.code, 'REGISTRY_TLS');
      assert.match((e as { hint?: string }).hint ?? '', /certs\.d/);
    } finally {
      await c.close();
    }
  });

  it('a CA from certs.d/<host:port>/ca.crt is trusted', async () => {
    await reg.writeCertsDir(certs);
    const c = mk(reg, { certsDir: certs });
    try {
      assert.equal((await c.ping()).scheme, 'https');
      const img = await pushImage(c, 'tls/app', 'v1');
      assert.equal((await c.getManifest('tls/app', 'v1')).digest, img.digest);
    } finally {
      await c.close();
    }
  });

  it('insecure-registries tolerates the TLS error (still HTTPS)', async () => {
    const c = mk(reg, { certsDir: join(certs, 'empty'), insecureRegistries: [reg.host] });
    try {
      assert.deepEqual(await c.ping(), { url: `https://${reg.host}/`, scheme: 'https', auth: 'none' });
    } finally {
      await c.close();
    }
  });

  it('client certificates from certs.d (client.cert + client.key) are presented', async () => {
    const without = mk(mtls, { certsDir: join(certs, 'empty'), insecureRegistries: [mtls.host] });
    try {
      // TLS 1.2 reports the server's alert; with TLS 1.3 the server just closes the connection
      const e = await thrown(() => without.ping());
      assert.ok(e.code === 'REGISTRY_TLS' || e.code === 'REGISTRY_UNREACHABLE', `${e.code}: ${e.message}`);
      assert.match(e.message, /https:\/\//);
      assert.match((e as { hint?: string }).hint ?? '', /client\.cert and client\.key/);
    } finally {
      await without.close();
    }
    await mtls.writeCertsDir(certs);
    const c = mk(mtls, { certsDir: certs });
    try {
      assert.equal((await c.ping()).scheme, 'https');
      await pushImage(c, 'mtls/app', 'v1');
    } finally {
      await c.close();
    }
  });

  it('a certs.d directory with a .cert but no .key is refused clearly', async () => {
    const d = await tempDir('layerbox-certsd-bad-');
    try {
      const { mkdir, writeFile } = await import('node:fs/promises');
      await mkdir(join(d, reg.host));
      await writeFile(join(d, reg.host, 'client.cert'), mtls.tls!.clientCertPem!);
      const c = mk(reg, { certsDir: d });
      try {
        const e = await thrown(() => c.ping());
        assert.equal(e.kind, 'failed-precondition');
        assert.match(e.message, /missing key client\.key for client certificate client\.cert/);
      } finally {
        await c.close();
      }
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});

describe('plain HTTP is only for loopback and insecure hosts', () => {
  it('a non-loopback host is only ever tried over HTTPS', async () => {
    const lines: string[] = [];
    const c = new RegistryClient({ host: 'registry.example.invalid', retry: { retries: 0 }, logger: (l) => lines.push(l) });
    try {
      const e = await thrown(() => c.ping());
      assert.equal(e.kind, 'unavailable');
      assert.match(e.message, /https:\/\/registry\.example\.invalid\/v2\//);
      assert.ok(!e.message.includes('http://'), e.message);
      assert.ok(lines.every((l) => !l.includes('http://')), lines.join('\n'));
    } finally {
      await c.close();
    }
  });

});
