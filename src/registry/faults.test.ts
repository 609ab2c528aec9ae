/**
 * docs/RELIABILITY.md items 10–14 against FaultyRegistry, the fault-injecting test double: the
 * faults here are ones a real registry does not make on request (see registries.test.ts
 * for the real docker-registry).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { RegistryClient, type RegistryClientOptions } from './client.js';
import { CredentialStore } from './credentials.js';
import { FaultyRegistry, type FaultyRegistryOptions } from './testing/faulty-registry.js';
import { collect, descriptor, imageConfig, ociIndex, ociManifest, pseudoRandom, sha256hex, streamOf, tempDir, thrown } from './testing/fixtures.js';
import { MediaType } from '../oci/mediatypes.js';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

const FAST = { retry: { retries: 3, baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 2000 } } as const;
const REPO = 'lies/app';

const servers: FaultyRegistry[] = [];
const clients: RegistryClient[] = [];
async function faulty(o: FaultyRegistryOptions = {}): Promise<FaultyRegistry> {
  const r = await FaultyRegistry.start(o);
  servers.push(r);
  return r;
}
function client(r: FaultyRegistry, o: Partial<RegistryClientOptions> = {}): RegistryClient {
  const c = new RegistryClient({ host: r.host, ...FAST, ...o });
  clients.push(c);
  return c;
}
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.stop()));
});

/** The message names registry, repository and digest. */
function assertNames(e: Error, r: FaultyRegistry, digest?: string): void {
  assert.match(e.message, new RegExp(`registry ${r.host.replace(/\./g, '\\.')}`), e.message);
  assert.ok(e.message.includes(`repository ${REPO}`), e.message);
  if (digest) assert.ok(e.message.includes(digest), e.message);
}

const BLOBS = /\/blobs\/sha256:/;
const MANIFESTS = /\/manifests\//;

const blobGets = (r: FaultyRegistry, digest: string) => r.requests.filter((q) => q.method === 'GET' && q.path.endsWith(`/blobs/${digest}`));

describe('docs/RELIABILITY.md item 10: blobs that do not match their descriptor', () => {
  const data = pseudoRandom(300_000, 7);
  const desc = descriptor(data);

  it('wrong bytes for a digest: data-loss naming registry, repository and digest', async () => {
    const r = await faulty();
    r.addBlob(data);
    r.inject({ method: 'GET', path: BLOBS, fault: { kind: 'wrong-bytes' } });
    const e = await thrown(() => collect(client(r).openBlob(REPO, desc)));
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_DIGEST_MISMATCH');
    assertNames(e, r, desc.digest);
  });

  it('short body with an honest Content-Length: data-loss before streaming', async () => {
    const r = await faulty();
    r.addBlob(data);
    r.inject({ method: 'GET', path: BLOBS, fault: { kind: 'short-body', missing: 100 } });
    const e = await thrown(() => collect(client(r).openBlob(REPO, desc)));
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_BLOB_SHORT');
    assertNames(e, r, desc.digest);
  });

  it('short body without Content-Length (chunked): data-loss after the last byte', async () => {
    const r = await faulty();
    r.addBlob(data);
    r.inject({ method: 'GET', path: BLOBS, fault: { kind: 'short-body', missing: 100, chunked: true } });
    let yielded = 0;
    const e = await thrown(async () => {
      for await (const c of client(r).openBlob(REPO, desc)) yielded += c.length;
    });
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_BLOB_SHORT');
    assert.equal(yielded, data.length - 100);
    assertNames(e, r, desc.digest);
  });

  it('extra bytes (declared): data-loss at once, nothing yielded', async () => {
    const r = await faulty();
    r.addBlob(data);
    r.inject({ method: 'GET', path: BLOBS, fault: { kind: 'extra-bytes', extra: 5 } });
    let yielded = 0;
    const e = await thrown(async () => {
      for await (const c of client(r).openBlob(REPO, desc)) yielded += c.length;
    });
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_BLOB_EXTRA_BYTES');
    assert.match(e.message, /extra bytes/);
    assert.equal(yielded, 0);
    assertNames(e, r, desc.digest);
  });

  it('extra bytes (chunked): data-loss at the first extra byte, never more than the size yielded', async () => {
    const r = await faulty();
    r.addBlob(data);
    r.inject({ method: 'GET', path: BLOBS, fault: { kind: 'extra-bytes', extra: 5, chunked: true } });
    let yielded = 0;
    const e = await thrown(async () => {
      for await (const c of client(r).openBlob(REPO, desc)) yielded += c.length;
    });
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_BLOB_EXTRA_BYTES');
    assert.ok(yielded <= data.length, `yielded ${yielded} > ${data.length}`);
    assertNames(e, r, desc.digest);
  });

  it('a connection reset mid-layer resumes with Range and yields exactly the right bytes', async () => {
    const r = await faulty();
    r.addBlob(data);
    r.inject({ method: 'GET', path: BLOBS, times: 1, fault: { kind: 'reset-after', bytes: 100_000 } });
    const got = await collect(client(r).openBlob(REPO, desc));
    assert.equal(sha256hex(got), desc.digest);
    assert.equal(got.length, data.length);
    const gets = blobGets(r, desc.digest);
    assert.equal(gets.length, 2);
    assert.equal(gets[0]!.range, undefined);
    assert.match(gets[1]!.range ?? '', /^bytes=\d+-$/);
    const from = Number(/bytes=(\d+)-/.exec(gets[1]!.range!)![1]);
    assert.ok(from > 0 && from <= 100_000, `resumed from ${from}`);
    assert.equal(gets[1]!.status, 206);
  });

  it('a resumed request answered 200 (Range ignored) skips what it already has', async () => {
    const r = await faulty();
    r.addBlob(data);
    r.inject({ method: 'GET', path: BLOBS, times: 1, fault: { kind: 'reset-after', bytes: 150_000 } });
    r.inject({ method: 'GET', path: BLOBS, times: 1, fault: { kind: 'ignore-range' } });
    const got = await collect(client(r).openBlob(REPO, desc));
    assert.ok(got.equals(data));
    const gets = blobGets(r, desc.digest);
    assert.equal(gets.length, 2);
    assert.ok(gets[1]!.range);
    assert.equal(gets[1]!.status, 200);
  });

  it('resets on every attempt end in an unavailable error after the resume budget', async () => {
    const r = await faulty();
    r.addBlob(data);
    r.inject({ method: 'GET', path: BLOBS, fault: { kind: 'reset-after', bytes: 0 } });
    const e = await thrown(() => collect(client(r, { maxBlobResumes: 2, retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 2 } }).openBlob(REPO, desc)));
    assert.equal(e.kind, 'unavailable');
    assertNames(e, r, desc.digest);
  });

  it('the verified prefix can be resumed by the caller (startOffset + prefixHash)', async () => {
    const r = await faulty();
    r.addBlob(data);
    const held = 123_457;
    const h = createHash('sha256').update(data.subarray(0, held));
    const rest = await collect(client(r).openBlob(REPO, desc, { startOffset: held, prefixHash: h }));
    assert.ok(rest.equals(data.subarray(held)));
    const gets = blobGets(r, desc.digest);
    assert.equal(gets.length, 1);
    assert.equal(gets[0]!.range, `bytes=${held}-`);
  });

  it('a resumed prefix that was corrupt is caught at the end (data-loss)', async () => {
    const r = await faulty();
    r.addBlob(data);
    const bad = Buffer.from(data.subarray(0, 1000));
    bad[10] ^= 1;
    const e = await thrown(() => collect(client(r).openBlob(REPO, desc, { startOffset: 1000, prefixHash: createHash('sha256').update(bad) })));
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_DIGEST_MISMATCH');
  });

  it('progress is reported and an abort cancels the download', async () => {
    const r = await faulty();
    const big = pseudoRandom(2_000_000, 3);
    r.addBlob(big);
    const ac = new AbortController();
    const seen: number[] = [];
    const e = await thrown(async () => {
      for await (const _ of client(r).openBlob(REPO, descriptor(big), { signal: ac.signal, onProgress: (p) => seen.push(p.offset) })) {
        if (seen.length === 1) ac.abort();
      }
    });
    assert.equal(e.kind, 'cancelled');
    assert.ok(seen.length >= 1 && seen[0]! > 0);
  });
});

describe('docs/RELIABILITY.md item 11: manifests that are not what was asked for', () => {
  const cfg = imageConfig();
  const layer = pseudoRandom(1000, 9);
  const m1 = ociManifest(descriptor(cfg, MediaType.OciConfig), [descriptor(layer)]);
  const m2 = ociManifest(descriptor(cfg, MediaType.OciConfig), [descriptor(pseudoRandom(1000, 10))]);

  it('pull by digest that gets another manifest: refused (data-loss)', async () => {
    const r = await faulty();
    const d1 = r.addManifest(REPO, 'v1', m1, MediaType.OciManifest);
    r.inject({ method: 'GET', path: `/v2/${REPO}/manifests/${d1.digest}`, fault: { kind: 'body', body: m2, contentType: MediaType.OciManifest, headers: { 'docker-content-digest': d1.digest } } });
    const e = await thrown(() => client(r).getManifest(REPO, d1.digest));
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_DIGEST_MISMATCH');
    assertNames(e, r, d1.digest);
    assert.ok(e.message.includes(sha256hex(m2)), e.message);
  });

  it('pull by tag trusts Docker-Content-Digest only after hashing: a wrong header is refused', async () => {
    const r = await faulty();
    r.addManifest(REPO, 'v1', m1, MediaType.OciManifest);
    r.inject({ method: 'GET', path: MANIFESTS, fault: { kind: 'headers', headers: { 'docker-content-digest': sha256hex(m2) } } });
    const e = await thrown(() => client(r).getManifest(REPO, 'v1'));
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_DIGEST_MISMATCH');
    assertNames(e, r, sha256hex(m1));
  });

  it('pull by tag returns the digest computed from the body', async () => {
    const r = await faulty();
    r.addManifest(REPO, 'v1', m1, MediaType.OciManifest);
    r.inject({ method: 'GET', path: MANIFESTS, fault: { kind: 'headers', headers: { 'docker-content-digest': '' } } });
    const got = await client(r).getManifest(REPO, 'v1');
    assert.equal(got.digest, sha256hex(m1));
    assert.ok(got.bytes.equals(m1));
    assert.equal(got.mediaType, MediaType.OciManifest);
  });
});

describe('docs/RELIABILITY.md item 12: size caps and schema 1', () => {
  it('manifest larger than 4 MiB (declared): refused before reading the body', async () => {
    const r = await faulty();
    r.inject({ method: 'GET', path: MANIFESTS, fault: { kind: 'huge', bytes: 64 * 1024 * 1024, contentType: MediaType.OciManifest } });
    const e = await thrown(() => client(r).getManifest(REPO, 'big'));
    assert.equal(e.kind, 'resource-exhausted');
    assert.equal(e.code, 'REGISTRY_MANIFEST_TOO_LARGE');
    assertNames(e, r);
    assert.ok(r.hugeBytesSent < 64 * 1024 * 1024, `server wrote ${r.hugeBytesSent}`);
  });

  it('manifest larger than 4 MiB (chunked, no length): reading stops at the cap', async () => {
    const r = await faulty();
    r.inject({ method: 'GET', path: MANIFESTS, fault: { kind: 'huge', bytes: 64 * 1024 * 1024, chunked: true, contentType: MediaType.OciManifest } });
    const e = await thrown(() => client(r).getManifest(REPO, 'big'));
    assert.equal(e.kind, 'resource-exhausted');
    assert.equal(e.code, 'REGISTRY_MANIFEST_TOO_LARGE');
    await new Promise((res) => setTimeout(res, 100));
    assert.ok(r.hugeBytesSent < 32 * 1024 * 1024, `server wrote ${r.hugeBytesSent}`);
  });

  it('config larger than 4 MiB by descriptor: refused without a request', async () => {
    const r = await faulty();
    const desc = { mediaType: MediaType.OciConfig, digest: sha256hex('x'), size: 5 * 1024 * 1024 };
    const e = await thrown(() => client(r).getConfig(REPO, desc));
    assert.equal(e.kind, 'resource-exhausted');
    assert.equal(e.code, 'REGISTRY_BLOB_TOO_LARGE');
    assertNames(e, r, desc.digest);
    assert.equal(blobGets(r, desc.digest).length, 0);
  });

  it('config whose body is far larger than its descriptor: data-loss at the first extra byte', async () => {
    const r = await faulty();
    const cfg = imageConfig();
    const desc = descriptor(cfg, MediaType.OciConfig);
    r.addBlob(cfg);
    r.inject({ method: 'GET', path: BLOBS, fault: { kind: 'huge', bytes: 64 * 1024 * 1024, chunked: true } });
    const e = await thrown(() => client(r).getConfig(REPO, desc));
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_BLOB_EXTRA_BYTES');
    assertNames(e, r, desc.digest);
    await new Promise((res) => setTimeout(res, 100));
    assert.ok(r.hugeBytesSent < 32 * 1024 * 1024, `server wrote ${r.hugeBytesSent}`);
  });

  it('token response larger than 1 MiB: refused', async () => {
    const r = await faulty({ auth: { kind: 'bearer' } });
    r.inject({ path: '/token', fault: { kind: 'huge', bytes: 8 * 1024 * 1024, chunked: true } });
    const e = await thrown(() => client(r).getManifest(REPO, 'v1'));
    assert.equal(e.kind, 'resource-exhausted');
    assert.equal(e.code, 'REGISTRY_TOKEN_TOO_LARGE');
    assertNames(e, r);
  });

  it('error body larger than 1 MiB: the status still yields a clear error, the body is not buffered', async () => {
    const r = await faulty();
    r.inject({ method: 'GET', path: MANIFESTS, fault: { kind: 'huge', bytes: 64 * 1024 * 1024, status: 404 } });
    const e = await thrown(() => client(r).getManifest(REPO, 'gone'));
    assert.equal(e.kind, 'not-found');
    assert.match(e.message, /manifest tagged by "gone" is not found/);
    assertNames(e, r);
    await new Promise((res) => setTimeout(res, 100));
    assert.ok(r.hugeBytesSent < 32 * 1024 * 1024, `server wrote ${r.hugeBytesSent}`);
  });

  it('schema 1 by Content-Type is refused with a clear message', async () => {
    const r = await faulty();
    r.addManifest(REPO, 'old', { schemaVersion: 1, name: REPO, tag: 'old', fsLayers: [] }, MediaType.DockerManifestV1Signed);
    const e = await thrown(() => client(r).getManifest(REPO, 'old'));
    assert.equal(e.kind, 'unsupported');
    assert.equal(e.code, 'REGISTRY_SCHEMA1');
    assert.match(e.message, /schema 1 manifests are not supported/);
    assertNames(e, r);
  });

  it('schema 1 by schemaVersion (generic Content-Type) is refused too', async () => {
    const r = await faulty();
    r.addManifest(REPO, 'old', { schemaVersion: 1, name: REPO, tag: 'old', fsLayers: [] }, 'application/json');
    const e = await thrown(() => client(r).getManifest(REPO, 'old'));
    assert.equal(e.kind, 'unsupported');
    assert.equal(e.code, 'REGISTRY_SCHEMA1');
  });
});

describe('docs/RELIABILITY.md item 13: media-type confusion (CVE-2021-41190)', () => {
  const cfg = descriptor(imageConfig(), MediaType.OciConfig);
  const layer = descriptor(pseudoRandom(100, 4));

  it('a manifest that carries "manifests" is refused', async () => {
    const r = await faulty();
    const body = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: cfg, layers: [layer], manifests: [cfg] };
    const d = r.addManifest(REPO, 'evil', body, MediaType.OciManifest);
    const e = await thrown(() => client(r).getManifest(REPO, 'evil'));
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_MEDIA_TYPE_CONFUSION');
    assertNames(e, r, d.digest);
  });

  it('an index that carries "layers" is refused', async () => {
    const r = await faulty();
    const body = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ ...cfg, mediaType: MediaType.OciManifest }], layers: [layer] };
    const d = r.addManifest(REPO, 'evil', body, MediaType.OciIndex);
    const e = await thrown(() => client(r).getManifest(REPO, 'evil'));
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_MEDIA_TYPE_CONFUSION');
    assertNames(e, r, d.digest);
  });

  it('a Content-Type that disagrees with the body mediaType is refused', async () => {
    const r = await faulty();
    const body = ociIndex([{ ...cfg, mediaType: MediaType.OciManifest }]);
    r.addManifest(REPO, 'v1', body, MediaType.OciManifest);
    const e = await thrown(() => client(r).getManifest(REPO, 'v1'));
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_MEDIA_TYPE_MISMATCH');
  });

  it('a descriptor with a path-like digest is refused before any URL is built (CVE-2024-3727)', async () => {
    const r = await faulty();
    const body = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: cfg, layers: [{ ...layer, digest: 'sha256:../../x' }] };
    r.addManifest(REPO, 'v1', body, MediaType.OciManifest);
    const e = await thrown(() => client(r).getManifest(REPO, 'v1'));
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_MANIFEST_INVALID');
  });
});

describe('docs/RELIABILITY.md item 14: credentials stay with their host', () => {
  const data = pseudoRandom(200_000, 11);
  const desc = descriptor(data);

  it('CVE-2021-41092: a blob GET redirected to another host carries no Authorization (Bearer)', async () => {
    const a = await faulty({ auth: { kind: 'bearer', user: 'alice', password: 's3cret' } });
    const b = await faulty({ host: '127.0.0.2' });
    b.addBlob(data);
    a.inject({ method: 'GET', path: `/v2/${REPO}/blobs/${desc.digest}`, fault: { kind: 'redirect', to: b.url } });
    const got = await collect(client(a, { credentials: { username: 'alice', password: 's3cret' } }).openBlob(REPO, desc));
    assert.ok(got.equals(data));
    const aGets = blobGets(a, desc.digest);
    assert.equal(aGets.length, 1);
    assert.match(aGets[0]!.authorization ?? '', /^Bearer /);
    const bGets = blobGets(b, desc.digest);
    assert.equal(bGets.length, 1);
    assert.equal(bGets[0]!.authorization, undefined);
    assert.ok(b.requests.every((q) => q.authorization === undefined));
  });

  it('CVE-2021-41092: Basic credentials are not sent to the redirect target, even when it asks for them', async () => {
    const a = await faulty({ auth: { kind: 'basic', user: 'alice', password: 's3cret' } });
    const b = await faulty({ host: '127.0.0.2', auth: { kind: 'basic', user: 'alice', password: 's3cret' } });
    b.addBlob(data);
    a.inject({ method: 'GET', path: `/v2/${REPO}/blobs/${desc.digest}`, fault: { kind: 'redirect', to: b.url } });
    const e = await thrown(() => collect(client(a, { credentials: { username: 'alice', password: 's3cret' } }).openBlob(REPO, desc)));
    assert.equal(e.kind, 'unauthorized');
    assert.equal(e.code, 'REGISTRY_FOREIGN_AUTH');
    assertNames(e, a, desc.digest);
    assert.ok(blobGets(a, desc.digest).every((q) => q.authorization?.startsWith('Basic ')));
    assert.ok(b.requests.length >= 1);
    assert.ok(b.requests.every((q) => q.authorization === undefined));
  });

  it('CVE-2020-15157: credentials stored for one host never go to another', async () => {
    const dir = await tempDir();
    try {
      const store = new CredentialStore({ configPath: join(dir, 'config.json') });
      await store.store('registry.example.com', { username: 'alice', password: 's3cret' });
      const r = await faulty({ auth: { kind: 'basic', user: 'alice', password: 's3cret' } });
      const e = await thrown(() => client(r, { credentials: store }).getManifest(REPO, 'v1'));
      assert.equal(e.kind, 'unauthorized');
      assert.match(e.message, /without credentials/);
      assertNames(e, r);
      assert.ok(r.requests.every((q) => q.authorization === undefined));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('query strings are redacted in errors and logs', async () => {
    const a = await faulty();
    const b = await faulty({ host: '127.0.0.2' });
    a.inject({ method: 'GET', path: BLOBS, fault: { kind: 'redirect', to: `${b.url}/storage?X-Amz-Signature=TOPSECRET&X-Amz-Credential=KEYID&p=` } });
    b.inject({ fault: { kind: 'drop-response' } });
    const lines: string[] = [];
    const e = await thrown(() => collect(client(a, { logger: (l) => lines.push(l), retry: { retries: 1, baseDelayMs: 1, maxDelayMs: 2 }, maxBlobResumes: 0 }).openBlob(REPO, desc)));
    assert.equal(e.kind, 'unavailable');
    assert.ok(!e.message.includes('TOPSECRET') && !e.message.includes('KEYID'), e.message);
    assert.match(e.message, /X-Amz-Signature=REDACTED/);
    assert.ok(lines.length > 0 && lines.every((l) => !l.includes('TOPSECRET') && !l.includes('KEYID')), lines.join('\n'));
  });

  it('a token realm over plain HTTP to a non-loopback host is refused (no request made)', async () => {
    const r = await faulty({ auth: { kind: 'bearer', realm: 'http://auth.example.invalid/token' } });
    const e = await thrown(() => client(r, { credentials: { username: 'alice', password: 's3cret' } }).getManifest(REPO, 'v1'));
    assert.equal(e.kind, 'failed-precondition');
    assert.equal(e.code, 'REGISTRY_INSECURE_REALM');
    assertNames(e, r);
    assert.ok(r.requests.every((q) => q.authorization === undefined));
  });

  it('endless 401s end in one clear unauthorized error, not a loop', async () => {
    const r = await faulty({ auth: { kind: 'bearer' } });
    r.inject({ path: /^\/v2\/lies\//, fault: { kind: 'unauthorized' } });
    const e = await thrown(() => client(r, { credentials: { username: 'alice', password: 's3cret' } }).getManifest(REPO, 'v1'));
    assert.equal(e.kind, 'unauthorized');
    assertNames(e, r);
    assert.match(e.message, /also after authenticating again/);
    assert.equal(r.requests.filter((q) => q.path.startsWith('/v2/lies/')).length, 2);
    assert.equal(r.requests.filter((q) => q.path === '/token').length, 2);
  });
});

describe('retries', () => {
  const m = ociManifest(descriptor(imageConfig(), MediaType.OciConfig), []);

  it('5xx twice then success works', async () => {
    const r = await faulty();
    r.addManifest(REPO, 'v1', m, MediaType.OciManifest);
    r.inject({ method: 'GET', path: `/v2/${REPO}/manifests/v1`, times: 2, fault: { kind: 'status', status: 503 } });
    const got = await client(r).getManifest(REPO, 'v1');
    assert.equal(got.digest, sha256hex(m));
    assert.deepEqual(
      r.requests.filter((q) => q.path.endsWith('/manifests/v1')).map((q) => q.status),
      [503, 503, 200],
    );
  });

  it('500 until the retry limit: unavailable after retries + 1 attempts', async () => {
    const r = await faulty();
    r.inject({ method: 'GET', path: `/v2/${REPO}/manifests/v1`, fault: { kind: 'status', status: 500 } });
    const e = await thrown(() => client(r).getManifest(REPO, 'v1'));
    assert.equal(e.kind, 'unavailable');
    assertNames(e, r);
    assert.equal(r.requests.filter((q) => q.path.endsWith('/manifests/v1')).length, FAST.retry.retries + 1);
  });

  it('429 honours Retry-After', async () => {
    const r = await faulty();
    r.addManifest(REPO, 'v1', m, MediaType.OciManifest);
    r.inject({ method: 'GET', path: `/v2/${REPO}/manifests/v1`, times: 1, fault: { kind: 'status', status: 429, retryAfter: '1' } });
    const t0 = Date.now();
    await client(r).getManifest(REPO, 'v1');
    assert.ok(Date.now() - t0 >= 950, `waited ${Date.now() - t0} ms`);
    assert.equal(r.requests.filter((q) => q.path.endsWith('/manifests/v1')).length, 2);
  });

  it('4xx (other than 401/429) is never retried', async () => {
    const r = await faulty();
    r.inject({ method: 'GET', path: `/v2/${REPO}/manifests/v1`, fault: { kind: 'status', status: 400, body: '{"errors":[{"code":"NAME_INVALID","message":"invalid repository name"}]}' } });
    const e = await thrown(() => client(r).getManifest(REPO, 'v1'));
    assert.equal(e.kind, 'invalid-argument');
    assert.match(e.message, /^invalid repository name: GET manifest failed with HTTP 400/);
    assert.equal(r.requests.filter((q) => q.path.endsWith('/manifests/v1')).length, 1);
  });

  it('a lost PATCH response is realigned through 416 + upload status; a lost final PUT is confirmed by HEAD', async () => {
    const r = await faulty();
    const data = pseudoRandom(300_000, 5);
    r.inject({ method: 'PATCH', times: 1, fault: { kind: 'drop-response' } });
    r.inject({ method: 'PUT', times: 1, fault: { kind: 'drop-response' } });
    const up = await client(r).uploadBlob(REPO, streamOf(data, 10_000), { chunkSize: 100_000 });
    assert.equal(up.digest, sha256hex(data));
    assert.equal(up.size, data.length);
    assert.ok(r.hasBlob(up.digest));
    const seq = r.requests.map((q) => `${q.method} ${q.status}`);
    assert.ok(seq.includes('PATCH 416'), seq.join(', '));
    assert.ok(seq.includes('GET 204'), seq.join(', '));
    assert.ok(seq.includes('HEAD 200'), seq.join(', '));
  });

  it('an upload whose stream does not hash to the promised digest is refused and cancelled', async () => {
    const r = await faulty();
    const data = pseudoRandom(1000, 6);
    const e = await thrown(() => client(r).uploadBlob(REPO, streamOf(data), { digest: sha256hex('other') }));
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'UPLOAD_DIGEST_MISMATCH');
    assert.ok(r.requests.some((q) => q.method === 'DELETE'));
    assert.ok(!r.hasBlob(sha256hex(data)));
  });
});

describe('tag list pagination that lies', () => {
  it('a Link that loops back is followed once, then refused', async () => {
    const r = await faulty();
    r.inject({ method: 'GET', path: `/v2/${REPO}/tags/list`, fault: { kind: 'body', body: '{"name":"lies/app","tags":["a"]}', headers: { link: `</v2/${REPO}/tags/list?n=1>; rel="next"` } } });
    const e = await thrown(() => client(r).listTags(REPO));
    assert.equal(e.kind, 'data-loss');
    assert.equal(e.code, 'REGISTRY_PAGINATION_LOOP');
    assertNames(e, r);
    assert.deepEqual(
      r.requests.filter((q) => q.path.endsWith('/tags/list')).map((q) => q.url),
      [`/v2/${REPO}/tags/list`, `/v2/${REPO}/tags/list?n=1`],
    );
  });

  it('a Link to another host is not followed', async () => {
    const r = await faulty({ auth: { kind: 'basic', user: 'alice', password: 's3cret' } });
    const other = await faulty({ host: '127.0.0.2' });
    r.inject({ method: 'GET', path: `/v2/${REPO}/tags/list`, fault: { kind: 'body', body: '{"name":"lies/app","tags":["a"]}', headers: { link: `<${other.url}/v2/${REPO}/tags/list?last=a>; rel="next"` } } });
    const e = await thrown(() => client(r, { credentials: { username: 'alice', password: 's3cret' } }).listTags(REPO));
    assert.equal(e.kind, 'data-loss');
    assert.match(e.message, /pagination points to another host/);
    assert.equal(other.requests.length, 0);
  });
});

describe('identity tokens', () => {
  it('an identity token is never sent as Basic credentials to the registry', async () => {
    const r = await faulty({ auth: { kind: 'basic', user: 'alice', password: 's3cret' } });
    const e = await thrown(() => client(r, { credentials: { identityToken: 'refresh-abc' } }).getManifest(REPO, 'v1'));
    assert.equal(e.kind, 'unauthorized');
    assert.ok(r.requests.every((q) => !(q.authorization ?? '').includes('refresh-abc')));
  });
});
