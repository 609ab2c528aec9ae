/** Pure protocol pieces: WWW-Authenticate parsing, redaction, host rules, Retry-After, Link, manifest checks. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseChallenges } from './challenge.js';
import { nextLink } from './client.js';
import { parseErrorBody, redactUrl, sanitize, statusError } from './errors.js';
import { httpAllowed, isInsecureHost, isLoopbackHost, parseRetryAfter } from './transport.js';
import { parseManifest } from './verify.js';
import { MediaType } from '../oci/mediatypes.js';
import { descriptor, imageConfig } from './testing/fixtures.js';

describe('WWW-Authenticate', () => {
  it('parses a Bearer challenge with quoted commas in scope', () => {
    const chs = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"');
    assert.deepEqual(chs, [
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' } },
    ]);
  });

  it('parses several challenges in one header and across headers, with escapes and odd spacing', () => {
    const chs = parseChallenges(['Basic realm="a \\"quoted\\" realm", Bearer  realm = "https://x/t" , error="insufficient_scope",scope="repository:a/b:pull"', 'Negotiate abc123==']);
    assert.equal(chs.length, 3);
    assert.deepEqual(chs[0], { scheme: 'basic', params: { realm: 'a "quoted" realm' } });
    assert.deepEqual(chs[1], { scheme: 'bearer', params: { realm: 'https://x/t', error: 'insufficient_scope', scope: 'repository:a/b:pull' } });
    assert.deepEqual(chs[2], { scheme: 'negotiate', params: { '': 'abc123==' } });
  });

  it('never throws on garbage and keeps the first value of a repeated parameter', () => {
    assert.deepEqual(parseChallenges(''), []);
    assert.deepEqual(parseChallenges(undefined), []);
    assert.deepEqual(parseChallenges('=,,="x'), []);
    const chs = parseChallenges('Bearer realm="https://good/t",realm="https://evil/t",service=svc');
    assert.deepEqual(chs[0]!.params, { realm: 'https://good/t', service: 'svc' });
    assert.equal(parseChallenges('Bearer realm="unterminated')[0]!.params.realm, 'unterminated');
  });
});

describe('redaction and sanitizing', () => {
  it('redacts query values (except protocol parameters) and userinfo', () => {
    assert.equal(
      redactUrl('https://user:pw@s3.example/bucket/blob?X-Amz-Signature=abc&X-Amz-Credential=k&digest=sha256:00'),
      'https://s3.example/bucket/blob?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&digest=sha256%3A00',
    );
    assert.equal(redactUrl('http://h:5000/v2/'), 'http://h:5000/v2/');
  });

  it('strips control characters and bounds server-provided text', () => {
    assert.equal(sanitize('a\u001b[31mred\u0007\nb'), 'a [31mred  b');
    assert.equal(sanitize('x'.repeat(400)).length, 301);
  });

  it('turns registry error bodies into kinds and messages', () => {
    assert.deepEqual(parseErrorBody(Buffer.from('{"errors":[{"code":"denied","message":"requested access to the resource is denied"}]}')), [
      { code: 'DENIED', message: 'requested access to the resource is denied', detail: undefined },
    ]);
    assert.deepEqual(parseErrorBody(Buffer.from('<html>502</html>')), []);
    const e = statusError({ status: 403, body: Buffer.from('{"errors":[{"code":"DENIED","message":"no"}]}'), what: 'GET manifest', ctx: { registry: 'r:1', repository: 'a/b' } });
    assert.equal(e.kind, 'forbidden');
    assert.equal(e.message, 'no: GET manifest failed with HTTP 403 (registry r:1, repository a/b)');
    assert.equal(statusError({ status: 502, what: 'GET blob', ctx: { registry: 'r:1' } }).kind, 'unavailable');
    assert.equal(statusError({ status: 429, what: 'GET blob', ctx: { registry: 'r:1' } }).kind, 'resource-exhausted');
  });
});

describe('hosts', () => {
  it('loopback hosts', () => {
    for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.1.2.3:80', '[::1]:5000', '::1', 'foo.localhost:1']) assert.ok(isLoopbackHost(h), h);
    for (const h of ['128.0.0.1', 'example.com', '10.0.0.1:5000', '[::2]:5000', 'localhost.example.com']) assert.ok(!isLoopbackHost(h), h);
  });

  it('insecure-registries: exact host[:port] or CIDR', () => {
    const list = ['myreg:5000', '10.1.0.0/16', 'fd00::/8'];
    assert.ok(isInsecureHost('myreg:5000', list));
    assert.ok(!isInsecureHost('myreg:5001', list));
    assert.ok(!isInsecureHost('myreg', list));
    assert.ok(isInsecureHost('10.1.200.3:5000', list));
    assert.ok(!isInsecureHost('10.2.0.1', list));
    assert.ok(isInsecureHost('[fd12::1]:5000', list));
    assert.ok(httpAllowed('127.0.0.1:5000', []));
    assert.ok(!httpAllowed('registry.example.com', []));
  });

  it('Retry-After: seconds or HTTP-date', () => {
    assert.equal(parseRetryAfter('3'), 3000);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });

  it('Link pagination', () => {
    const base = new URL('https://r.example/v2/a/tags/list?n=2');
    assert.equal(nextLink(['</v2/a/tags/list?last=b&n=2>; rel="next"'], base)?.href, 'https://r.example/v2/a/tags/list?last=b&n=2');
    assert.equal(nextLink(['<https://r.example/x>; rel="prev", </y>; rel=next'], base)?.href, 'https://r.example/y');
    assert.equal(nextLink([], base), undefined);
  });
});

describe('manifest checks', () => {
  const ctx = { registry: 'r:1', repository: 'a/b' };
  const cfg = descriptor(imageConfig(), MediaType.OciConfig);

  it('infers the type of a manifest without mediaType from its fields', () => {
    const m = Buffer.from(JSON.stringify({ schemaVersion: 2, config: cfg, layers: [] }));
    assert.equal(parseManifest(m, 'application/json', ctx).mediaType, MediaType.OciManifest);
    assert.equal(parseManifest(m, MediaType.OciManifest + '; charset=utf-8', ctx).mediaType, MediaType.OciManifest);
  });

  it('refuses non-JSON, wrong schemaVersion, unknown types and bad descriptors', () => {
    const cases: [string, string, string][] = [
      ['not json', MediaType.OciManifest, 'REGISTRY_MANIFEST_INVALID'],
      [JSON.stringify({ schemaVersion: 3, config: cfg, layers: [] }), MediaType.OciManifest, 'REGISTRY_MANIFEST_INVALID'],
      [JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.artifact.manifest.v1+json' }), 'application/vnd.oci.artifact.manifest.v1+json', 'REGISTRY_UNSUPPORTED_MANIFEST'],
      [JSON.stringify({ schemaVersion: 2, config: { ...cfg, size: -1 }, layers: [] }), MediaType.OciManifest, 'REGISTRY_MANIFEST_INVALID'],
      [JSON.stringify({ schemaVersion: 2, config: { ...cfg, digest: 'sha512:' + 'a'.repeat(128) }, layers: [] }), MediaType.OciManifest, 'REGISTRY_UNSUPPORTED_DIGEST'],
      [JSON.stringify({ schemaVersion: 2, config: cfg }), MediaType.OciManifest, 'REGISTRY_MANIFEST_INVALID'],
      [JSON.stringify({ schemaVersion: 2, manifests: [], config: cfg }), MediaType.OciIndex, 'REGISTRY_MEDIA_TYPE_CONFUSION'],
      [JSON.stringify({ schemaVersion: 2, manifests: [], layers: [] }), 'application/json', 'REGISTRY_MANIFEST_INVALID'],
    ];
    for (const [body, ct, code] of cases) {
      assert.throws(() => parseManifest(Buffer.from(body), ct, ctx), (e: { code?: string }) => e.code === code, `${body} → ${code}`);
    }
  });
});
