import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineError } from '../errors/index.js';
import type { Digest } from './digest.js';
import {
  imageIdPrefix,
  isFullImageId,
  isImageIdLike,
  isImageRef,
  isLocalhostRegistry,
  isValidTag,
  matchReferenceFilter,
  parseAnyReference,
  parseReference,
  parseRepositoryTag,
  pathMatch,
  registryHost,
} from './reference.js';

const H64 = 'e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582';
const D = `sha256:${H64}`;
const F64 = 'f'.repeat(64);
const DF = `sha256:${F64}`;

/** Asserts `fn` throws EngineError invalid-argument with `code`, exactly `message`, and where = `where`. */
function assertRefError(fn: () => unknown, message: string, where: string, code = 'INVALID_REFERENCE'): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof EngineError, `expected EngineError, got ${String(e)}`);
    assert.equal(e.kind, 'invalid-argument');
    assert.equal(e.code, code);
    assert.equal(e.message, message);
    assert.equal(e.where, where);
    return true;
  });
}

// ---------------------------------------------------------------------------------------
// parseReference: valid inputs
// ---------------------------------------------------------------------------------------

interface Valid {
  input: string;
  /** normalised toString() */
  str: string;
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
  familiarName: string;
  familiarString: string;
}

const hub = (input: string, path: string, familiarName: string, suffix = '', tag?: string, digest?: string): Valid => ({
  input,
  str: `docker.io/${path}${suffix}`,
  domain: 'docker.io',
  path,
  tag,
  digest,
  familiarName,
  familiarString: familiarName + suffix,
});

const other = (input: string, domain: string, path: string, suffix = '', tag?: string, digest?: string): Valid => ({
  input,
  str: `${domain}/${path}${suffix}`,
  domain,
  path,
  tag,
  digest,
  familiarName: `${domain}/${path}`,
  familiarString: `${domain}/${path}${suffix}`,
});

const VALID: Valid[] = [
  // Docker Hub normalisation
  hub('busybox', 'library/busybox', 'busybox'),
  hub('busybox:latest', 'library/busybox', 'busybox', ':latest', 'latest'),
  hub('library/busybox', 'library/busybox', 'busybox'),
  hub('library/busybox:latest', 'library/busybox', 'busybox', ':latest', 'latest'),
  hub('docker.io/busybox', 'library/busybox', 'busybox'),
  hub('docker.io/busybox:latest', 'library/busybox', 'busybox', ':latest', 'latest'),
  hub('docker.io/library/busybox', 'library/busybox', 'busybox'),
  hub('docker.io/library/busybox:1.36', 'library/busybox', 'busybox', ':1.36', '1.36'),
  hub('index.docker.io/busybox', 'library/busybox', 'busybox'),
  hub('index.docker.io/library/debian', 'library/debian', 'debian'),
  hub('index.docker.io/docker/docker', 'docker/docker', 'docker/docker'),
  hub('index.docker.io/fooo/bar', 'fooo/bar', 'fooo/bar'),
  hub('docker.io/fooo/bar', 'fooo/bar', 'fooo/bar'),
  hub('fooo/bar', 'fooo/bar', 'fooo/bar'),
  hub('user/repo', 'user/repo', 'user/repo'),
  hub('dmcgowan/myapp:latest', 'dmcgowan/myapp', 'dmcgowan/myapp', ':latest', 'latest'),
  hub('nonlibrary/ubuntu', 'nonlibrary/ubuntu', 'nonlibrary/ubuntu'),
  hub('other/library', 'other/library', 'other/library'),
  hub('ubuntu-12.04-base', 'library/ubuntu-12.04-base', 'ubuntu-12.04-base'),
  hub('index.docker.io/library/ubuntu-12.04-base', 'library/ubuntu-12.04-base', 'ubuntu-12.04-base'),
  hub('docker.io/foo', 'library/foo', 'foo'),
  // library/ with a nested path is not shortened
  hub('library/foo/bar', 'library/foo/bar', 'library/foo/bar'),
  hub('docker.io/library/foo/bar', 'library/foo/bar', 'library/foo/bar'),
  hub('store/foo/bar', 'store/foo/bar', 'store/foo/bar'),
  hub('docker/migrator', 'docker/migrator', 'docker/migrator'),
  // a first component without "." or ":" that is not "localhost" is a Hub namespace
  hub('test_com/foo', 'test_com/foo', 'test_com/foo'),
  hub('foo/foo_bar.com:8080', 'foo/foo_bar.com', 'foo/foo_bar.com', ':8080', '8080'),
  // a single component is never a domain, whatever it looks like
  hub('localhost', 'library/localhost', 'localhost'),
  hub('localhost:5000', 'library/localhost', 'localhost', ':5000', '5000'),
  hub('test.com:tag', 'library/test.com', 'test.com', ':tag', 'tag'),
  hub('test.com:5000', 'library/test.com', 'test.com', ':5000', '5000'),
  hub('foo_bar.com:8080', 'library/foo_bar.com', 'foo_bar.com', ':8080', '8080'),
  hub('docker.io', 'library/docker.io', 'docker.io'),
  hub('192.168.1.1:5000', 'library/192.168.1.1', '192.168.1.1', ':5000', '5000'),
  // name components
  hub('docker-rules/docker', 'docker-rules/docker', 'docker-rules/docker'),
  hub('docker---rules/docker', 'docker---rules/docker', 'docker---rules/docker'),
  hub('doc/docker', 'doc/docker', 'doc/docker'),
  hub('d/docker', 'd/docker', 'd/docker'),
  hub('jess/t', 'jess/t', 'jess/t'),
  hub('dock__er/docker', 'dock__er/docker', 'dock__er/docker'),
  hub('a_b__c-d--e/f.g', 'a_b__c-d--e/f.g', 'a_b__c-d--e/f.g'),
  hub(
    'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
    'library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
    'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
  ),
  // 64 hex is refused only as the whole input; with a domain (or a tag) it is a name
  hub(`docker.io/${'1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a'}`,
    'library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
    '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a'),
  hub(`${H64}:v1`, `library/${H64}`, H64, ':v1', 'v1'),
  hub(H64.slice(0, 63), `library/${H64.slice(0, 63)}`, H64.slice(0, 63)),
  // "sha256:abc" is the repository "sha256" with tag "abc"
  hub('sha256:abc', 'library/sha256', 'sha256', ':abc', 'abc'),
  hub(`sha256:${H64.toUpperCase()}`, 'library/sha256', 'sha256', `:${H64.toUpperCase()}`, H64.toUpperCase()),
  // tags
  hub('lowercase:Uppercase', 'library/lowercase', 'lowercase', ':Uppercase', 'Uppercase'),
  hub('busybox:_x', 'library/busybox', 'busybox', ':_x', '_x'),
  hub('busybox:1.0-rc_1', 'library/busybox', 'busybox', ':1.0-rc_1', '1.0-rc_1'),
  hub(`busybox:${'t'.repeat(128)}`, 'library/busybox', 'busybox', `:${'t'.repeat(128)}`, 't'.repeat(128)),
  // digests
  hub(`busybox@${D}`, 'library/busybox', 'busybox', `@${D}`, undefined, D),
  hub(`redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c`, 'library/redis', 'redis',
    '@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c', undefined,
    'sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c'),
  hub(`busybox:latest@${D}`, 'library/busybox', 'busybox', `:latest@${D}`, 'latest', D),
  hub(`docker.io/library/busybox:latest@${D}`, 'library/busybox', 'busybox', `:latest@${D}`, 'latest', D),
  hub(`dmcgowan/myapp@${D}`, 'dmcgowan/myapp', 'dmcgowan/myapp', `@${D}`, undefined, D),
  // other registries
  other('localhost/foo', 'localhost', 'foo'),
  other('localhost/foo:1', 'localhost', 'foo', ':1', '1'),
  other('localhost:5000/a/b:1.2', 'localhost:5000', 'a/b', ':1.2', '1.2'),
  other('localhost:5000/a/b', 'localhost:5000', 'a/b'),
  other('gcr.io/library/busybox', 'gcr.io', 'library/busybox'),
  other('test.com/foo', 'test.com', 'foo'),
  other('test.com/repo:tag', 'test.com', 'repo', ':tag', 'tag'),
  other('test:5000/repo', 'test:5000', 'repo'),
  other('test:5000/repo:tag', 'test:5000', 'repo', ':tag', 'tag'),
  other(`test:5000/repo@${DF}`, 'test:5000', 'repo', `@${DF}`, undefined, DF),
  other(`test:5000/repo:tag@${DF}`, 'test:5000', 'repo', `:tag@${DF}`, 'tag', DF),
  other('test.com:8080/foo', 'test.com:8080', 'foo'),
  other('test-com:8080/foo', 'test-com:8080', 'foo'),
  other('xn--n3h.com/foo', 'xn--n3h.com', 'foo'),
  other('xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo'),
  other('xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com', 'myimage', ':xn--n3h.com', 'xn--n3h.com'),
  other('sub-dom1.foo.com/bar/baz/quux', 'sub-dom1.foo.com', 'bar/baz/quux'),
  other('sub-dom1.foo.com/bar/baz/quux:some-long-tag', 'sub-dom1.foo.com', 'bar/baz/quux', ':some-long-tag', 'some-long-tag'),
  other('b.gcr.io/test.example.com/my-app:test.example.com', 'b.gcr.io', 'test.example.com/my-app', ':test.example.com', 'test.example.com'),
  other('127.0.0.1:5000/docker/docker', '127.0.0.1:5000', 'docker/docker'),
  other('127.0.0.1:5000/library/debian', '127.0.0.1:5000', 'library/debian'),
  other('127.0.0.1:8000/private/moonbase', '127.0.0.1:8000', 'private/moonbase'),
  other('127.0.0.1:8000/privatebase', '127.0.0.1:8000', 'privatebase'),
  other('example.com:8000/private/moonbase', 'example.com:8000', 'private/moonbase'),
  other('192.168.1.1/repo', '192.168.1.1', 'repo'),
  other('192.168.1.1:5000/repo:5050', '192.168.1.1:5000', 'repo', ':5050', '5050'),
  // uppercase is allowed in the registry part
  other('HOSTNAME.DOMAIN.COM:443/foo/bar', 'HOSTNAME.DOMAIN.COM:443', 'foo/bar'),
  other('UPPER:5000/x', 'UPPER:5000', 'x'),
  // IPv6 registries (bracketed, no zone)
  other('[::1]:5000/x', '[::1]:5000', 'x'),
  other('[::1]:5000/repo:tag', '[::1]:5000', 'repo', ':tag', 'tag'),
  other('[2001:db8::1]/repo', '[2001:db8::1]', 'repo'),
  other('[2001:db8:1:2:3:4:5:6]/repo:tag', '[2001:db8:1:2:3:4:5:6]', 'repo', ':tag', 'tag'),
  other('[2001:db8::1]:5000/repo', '[2001:db8::1]:5000', 'repo'),
  other(`[2001:db8::1]:5000/repo:tag@${DF}`, '[2001:db8::1]:5000', 'repo', `:tag@${DF}`, 'tag', DF),
  other('[2001:db8::]:5000/repo', '[2001:db8::]:5000', 'repo'),
  other('[2001:0DB8:85A3::8A2E:0370:7334]/repo', '[2001:0DB8:85A3::8A2E:0370:7334]', 'repo'),
  // exactly 255 characters of normalised name
  hub('a'.repeat(255 - 'docker.io/library/'.length), `library/${'a'.repeat(237)}`, 'a'.repeat(237)),
];

for (const c of VALID) {
  test(`parseReference accepts ${JSON.stringify(c.input.length > 80 ? c.input.slice(0, 77) + '...' : c.input)}`, () => {
    const r = parseReference(c.input);
    assert.ok(isImageRef(r));
    assert.equal(r.toString(), c.str);
    assert.equal(String(r), c.str);
    assert.equal(JSON.stringify(r), JSON.stringify(c.str));
    assert.equal(r.domain, c.domain);
    assert.equal(r.path, c.path);
    assert.equal(r.name, `${c.domain}/${c.path}`);
    assert.equal(r.tag, c.tag);
    assert.equal(r.digest, c.digest);
    assert.equal(r.familiarName, c.familiarName);
    assert.equal(r.familiarString(), c.familiarString);
    // normalisation is idempotent, from both the full and the familiar form
    assert.equal(parseReference(r.toString()).toString(), c.str);
    // (except a 64-hex familiar form, which Docker also refuses to read back as a name)
    if (!/^[a-f0-9]{64}$/.test(r.familiarString())) {
      assert.equal(parseReference(r.familiarString()).toString(), c.str);
    }
  });
}

// ---------------------------------------------------------------------------------------
// parseReference: rejections, with Docker's wording
// ---------------------------------------------------------------------------------------

const FORMAT = 'invalid reference format';
const LOWER = 'invalid reference format: repository name must be lowercase';
const TOO_LONG = 'repository name must not be more than 255 characters';

const INVALID: Array<[input: string, message: string]> = [
  ['', FORMAT],
  ['Busybox', LOWER],
  ['BUSYBOX:latest', LOWER],
  ['Uppercase:tag', LOWER],
  ['docker/Docker', LOWER],
  ['docker.io/docker/Docker', LOWER],
  // Docker 20.10 does not take an uppercase first component for a registry
  ['Docker/docker', LOWER],
  ['DOCKER/docker', LOWER],
  ['Uppercase/lowercase:tag', LOWER],
  ['LOCALHOST/foo', LOWER],
  ['localhost:5000/Foo', LOWER],
  ['test:5000/Uppercase/lowercase:tag', LOWER],
  [`busybox@Sha256:${H64}`, LOWER],
  ['https://github.com/docker/docker', FORMAT],
  ['-docker', FORMAT],
  ['-foo', FORMAT],
  ['-docker/docker', FORMAT],
  ['-docker.io/docker/docker', FORMAT],
  ['-index:5000/busybox:test', FORMAT],
  ['-busybox:test', FORMAT],
  ['-test/busybox:test', FORMAT],
  ['docker///docker', FORMAT],
  ['docker.io/docker///docker', FORMAT],
  ['docker-/docker', FORMAT],
  ['-docker-/docker', FORMAT],
  ['____/____', FORMAT],
  ['_docker/_docker', FORMAT],
  ['dock..er/docker', FORMAT],
  ['dock_.er/docker', FORMAT],
  ['dock-.er/docker', FORMAT],
  ['dock___er/docker', FORMAT],
  ['docker/', FORMAT],
  ['/docker', FORMAT],
  ['docker.io/', FORMAT],
  ['localhost:5000/', FORMAT],
  [':justtag', FORMAT],
  [`@${DF}`, FORMAT],
  ['aa/asdf$$^/aa', FORMAT],
  ['busybox tag', FORMAT],
  ['busybox:', FORMAT],
  ['busybox:-tag', FORMAT],
  ['busybox:.tag', FORMAT],
  ['busybox:a/b', FORMAT],
  ['busybox:tag:tag', FORMAT],
  [`busybox:${'t'.repeat(129)}`, FORMAT],
  ['busybox@', FORMAT],
  ['busybox@sha256:abc', FORMAT],
  [`busybox@${D}@${D}`, FORMAT],
  [`busybox@${D}:tag`, FORMAT],
  ['example.com:abc/x', FORMAT],
  ['ex_ample.com:5000/x', FORMAT],
  ['-example.com/x', FORMAT],
  ['example-.com/x', FORMAT],
  ['example..com/x', FORMAT],
  ['ünicode/x', FORMAT],
  // IPv6: brackets required, no zones, a domain needs a path
  ['[2001:db8::1]', FORMAT],
  ['[2001:db8::1]:5000', FORMAT],
  ['[2001:db8::1]:tag', FORMAT],
  ['[fe80::1%eth0]:5000/repo', FORMAT],
  ['[fe80::1%@invalidzone]:5000/repo', FORMAT],
  ['[fc00::192.168.134.145]/repo', FORMAT],
  ['[someinvalidstring]/repo', FORMAT],
  ['::1/repo', FORMAT],
  ['[::1/repo', FORMAT],
  // a host-looking first component that is no valid host (Docker would keep it with an
  // empty domain; layerbox refuses it)
  ['foo_bar.com/x', FORMAT],
  ['foo_bar.com:5000/x', FORMAT],
  ['a.b_c/g', FORMAT],
  // digests: go-digest's wording
  [`busybox@sha256:${'f'.repeat(40)}`, 'invalid checksum digest length'],
  [`repo@sha256:${'f'.repeat(34)}`, 'invalid checksum digest length'],
  [`busybox@sha256:${'f'.repeat(65)}`, 'invalid checksum digest length'],
  [`busybox@sha256:${H64.toUpperCase()}`, 'invalid checksum digest format'],
  // (uppercase before the first ":" is caught by the repository-name check first)
  [`busybox@SHA256:${H64}`, LOWER],
  [`busybox:1@SHA256:${H64}`, 'invalid checksum digest format'],
  [`validname@invaliddigest:${F64}`, 'unsupported digest algorithm'],
  [`busybox@md5:${'f'.repeat(32)}`, 'unsupported digest algorithm'],
  [`busybox@sha512:${'f'.repeat(64)}`, 'invalid checksum digest length'],
  // valid for dockerd, refused by layerbox (sha256 only)
  [`busybox@sha512:${'f'.repeat(128)}`, 'unsupported digest algorithm'],
  [`xn--7o8h.com/myimage:xn--7o8h.com@sha512:${'f'.repeat(128)}`, 'unsupported digest algorithm'],
  // lengths (Docker 20.10 counts the normalised domain/path)
  ['a'.repeat(238), TOO_LONG],
  [`${'a/'.repeat(128)}a:tag`, TOO_LONG],
  [`${'a/'.repeat(127)}a:tag-puts-this-over-max`, TOO_LONG],
  [
    'this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker',
    TOO_LONG,
  ],
  [`example.com/${'b'.repeat(244)}`, TOO_LONG],
  // 64 hex is an ID, not a name
  [H64, `invalid repository name (${H64}), cannot specify 64-byte hexadecimal strings`],
  [
    '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
    'invalid repository name (1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a), cannot specify 64-byte hexadecimal strings',
  ],
];

for (const [input, message] of INVALID) {
  test(`parseReference refuses ${JSON.stringify(input.length > 80 ? input.slice(0, 77) + '...' : input)}`, () => {
    assertRefError(() => parseReference(input), message, input);
  });
}

test('parseReference: errors carry a hint and describe() names the input', () => {
  try {
    parseReference('Busybox');
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof EngineError);
    assert.ok(e.hint && e.hint.length > 0);
    assert.equal(e.describe(), `${LOWER} (Busybox): ${e.hint}`);
  }
});

test('parseReference refuses a non-string', () => {
  assertRefError(() => parseReference(undefined as unknown as string), FORMAT, 'undefined');
});

test('parseReference stays fast on long hostile input', () => {
  const inputs = [
    'a'.repeat(200_000) + '!',
    'a-'.repeat(100_000) + '!',
    'a.'.repeat(100_000) + '/x',
    'a-a.'.repeat(50_000) + ':5000/x!',
    'a'.repeat(100_000) + '/' + 'b_'.repeat(100_000),
    'x@' + 'a.'.repeat(100_000) + 'a:' + 'f'.repeat(100),
  ];
  const start = Date.now();
  for (const s of inputs) assert.throws(() => parseReference(s), EngineError);
  assert.ok(Date.now() - start < 2000, `took ${Date.now() - start} ms`);
});

// ---------------------------------------------------------------------------------------
// ImageRef methods
// ---------------------------------------------------------------------------------------

test('withDefaultTag adds latest only when neither tag nor digest is present (TagNameOnly)', () => {
  assert.equal(parseReference('busybox').withDefaultTag().toString(), 'docker.io/library/busybox:latest');
  assert.equal(parseReference('busybox').withDefaultTag().familiarString(), 'busybox:latest');
  assert.equal(parseReference('busybox:1').withDefaultTag().toString(), 'docker.io/library/busybox:1');
  assert.equal(parseReference(`busybox@${D}`).withDefaultTag().toString(), `docker.io/library/busybox@${D}`);
  assert.equal(parseReference('localhost:5000/a/b').withDefaultTag().familiarString(), 'localhost:5000/a/b:latest');
  const tagged = parseReference('busybox:1');
  assert.equal(tagged.withDefaultTag(), tagged);
});

test('withTag, withDigest, nameOnly, favorDigest, isNameOnly, equals', () => {
  const r = parseReference('user/app');
  assert.ok(r.isNameOnly());
  const t = r.withTag('v1');
  assert.equal(t.familiarString(), 'user/app:v1');
  assert.ok(!t.isNameOnly());
  const td = t.withDigest(D as Digest);
  assert.equal(td.toString(), `docker.io/user/app:v1@${D}`);
  assert.equal(td.withTag('v2').toString(), `docker.io/user/app:v2@${D}`);
  assert.equal(td.favorDigest().toString(), `docker.io/user/app@${D}`);
  assert.equal(t.favorDigest(), t);
  assert.equal(td.nameOnly().toString(), 'docker.io/user/app');
  assert.ok(td.nameOnly().equals(parseReference('index.docker.io/user/app')));
  assert.ok(!t.equals(r));
  assertRefError(() => r.withTag('-x'), 'invalid tag format', '-x');
  assertRefError(() => r.withTag(''), 'invalid tag format', '');
  assert.throws(() => r.withDigest('sha256:abc' as Digest), (e: unknown) => e instanceof EngineError && e.code === 'INVALID_DIGEST');
});

test('isValidTag', () => {
  for (const ok of ['latest', 'v1.0', '_', 'A-b.C_d', 't'.repeat(128)]) assert.ok(isValidTag(ok), ok);
  for (const bad of ['', '-x', '.x', 'a:b', 'a/b', 'a b', 't'.repeat(129), 'é']) assert.ok(!isValidTag(bad), bad);
});

// ---------------------------------------------------------------------------------------
// parseAnyReference and image IDs
// ---------------------------------------------------------------------------------------

test('parseAnyReference: 64 hex and sha256 digests are image IDs', () => {
  assert.deepEqual(parseAnyReference(H64), { kind: 'id', id: D });
  assert.deepEqual(parseAnyReference(D), { kind: 'id', id: D });
});

test('parseAnyReference: everything else is a normalised name', () => {
  const cases: Array<[string, string]> = [
    ['redis', 'docker.io/library/redis'],
    ['redis:latest', 'docker.io/library/redis:latest'],
    ['docker.io/library/redis:latest', 'docker.io/library/redis:latest'],
    [`redis@${D}`, `docker.io/library/redis@${D}`],
    ['dmcgowan/myapp', 'docker.io/dmcgowan/myapp'],
    ['docker.io/mcgowan/myapp:latest', 'docker.io/mcgowan/myapp:latest'],
    [H64.slice(0, 63), `docker.io/library/${H64.slice(0, 63)}`],
    ['dbcc1', 'docker.io/library/dbcc1'],
    ['sha256:dbcc1', 'docker.io/library/sha256:dbcc1'],
    [`sha256:${H64.toUpperCase()}`, `docker.io/library/sha256:${H64.toUpperCase()}`],
  ];
  for (const [input, str] of cases) {
    const r = parseAnyReference(input);
    assert.equal(r.kind, 'name', input);
    if (r.kind === 'name') assert.equal(r.ref.toString(), str);
  }
  assertRefError(() => parseAnyReference('Busybox'), LOWER, 'Busybox');
});

test('imageIdPrefix / isImageIdLike / isFullImageId', () => {
  const prefixes: Array<[string, string | undefined]> = [
    ['d', 'd'],
    ['dbcc1', 'dbcc1'],
    ['sha256:dbcc1', 'dbcc1'],
    [H64, H64],
    [D, H64],
    ['', undefined],
    ['sha256:', undefined],
    ['DBCC1', undefined],
    ['sha256:DBCC1', undefined],
    ['busybox', undefined],
    ['dbcc1g', undefined],
    [H64 + '0', undefined],
    ['sha512:abcd', undefined],
    ['sha256:dbcc1:tag', undefined],
  ];
  for (const [s, want] of prefixes) {
    assert.equal(imageIdPrefix(s), want, s);
    assert.equal(isImageIdLike(s), want !== undefined, s);
  }
  assert.ok(isFullImageId(H64));
  assert.ok(isFullImageId(D));
  assert.ok(!isFullImageId(H64.slice(1)));
  assert.ok(!isFullImageId(`sha256:${H64.toUpperCase()}`));
  assert.ok(!isFullImageId('busybox'));
});

// ---------------------------------------------------------------------------------------
// parseRepositoryTag (targets of tag / commit / import / build -t)
// ---------------------------------------------------------------------------------------

test('parseRepositoryTag applies the default tag and keeps given tags', () => {
  const cases: Array<[string, string | undefined, string, string]> = [
    ['busybox', undefined, 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['foooo:t', undefined, 'docker.io/library/foooo:t', 'foooo:t'],
    ['fooo/bar', undefined, 'docker.io/fooo/bar:latest', 'fooo/bar:latest'],
    ['HOSTNAME.DOMAIN.COM:443/foo/bar', undefined, 'HOSTNAME.DOMAIN.COM:443/foo/bar:latest', 'HOSTNAME.DOMAIN.COM:443/foo/bar:latest'],
    ['localhost:5000/a/b:1.2', undefined, 'localhost:5000/a/b:1.2', 'localhost:5000/a/b:1.2'],
    ['team/sha256:abcd', undefined, 'docker.io/team/sha256:abcd', 'team/sha256:abcd'],
    ['localhost/sha256:x', undefined, 'localhost/sha256:x', 'localhost/sha256:x'],
    // a separate tag argument replaces whatever the repo string carried (WithTag(TrimNamed))
    ['busybox', 'v1', 'docker.io/library/busybox:v1', 'busybox:v1'],
    ['busybox:old', 'v1', 'docker.io/library/busybox:v1', 'busybox:v1'],
    [`busybox@${D}`, 'v1', 'docker.io/library/busybox:v1', 'busybox:v1'],
    ['busybox', '', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ];
  for (const [repo, tag, str, familiar] of cases) {
    const r = parseRepositoryTag(repo, tag);
    assert.equal(r.toString(), str, `${repo} ${tag}`);
    assert.equal(r.familiarString(), familiar);
  }
});

test('parseRepositoryTag refusals', () => {
  const DIGEST_TAG = 'refusing to create a tag with a digest reference';
  const AMBIGUOUS = 'refusing to create an ambiguous tag using digest algorithm as name';
  assertRefError(() => parseRepositoryTag(`busybox@${D}`), DIGEST_TAG, `busybox@${D}`);
  assertRefError(() => parseRepositoryTag(`busybox:1@${D}`), DIGEST_TAG, `busybox:1@${D}`);
  assertRefError(() => parseRepositoryTag('sha256:sometag'), AMBIGUOUS, 'sha256:sometag');
  assertRefError(() => parseRepositoryTag('sha256'), AMBIGUOUS, 'sha256');
  assertRefError(() => parseRepositoryTag('sha256', 'abcd'), AMBIGUOUS, 'sha256');
  assertRefError(() => parseRepositoryTag('docker.io/library/sha256:x'), AMBIGUOUS, 'docker.io/library/sha256:x');
  assertRefError(() => parseRepositoryTag('-busybox:test'), FORMAT, '-busybox:test');
  assertRefError(() => parseRepositoryTag('Busybox'), LOWER, 'Busybox');
  assertRefError(() => parseRepositoryTag(H64), `invalid repository name (${H64}), cannot specify 64-byte hexadecimal strings`, H64);
  assertRefError(() => parseRepositoryTag('busybox', '-bad'), 'invalid tag format', '-bad');
  assertRefError(() => parseRepositoryTag('busybox', 'a:b'), 'invalid tag format', 'a:b');
});

// ---------------------------------------------------------------------------------------
// registries
// ---------------------------------------------------------------------------------------

test('registryHost', () => {
  assert.equal(registryHost('docker.io'), 'registry-1.docker.io');
  assert.equal(registryHost('index.docker.io'), 'registry-1.docker.io');
  assert.equal(registryHost(parseReference('busybox').domain), 'registry-1.docker.io');
  assert.equal(registryHost('localhost:5000'), 'localhost:5000');
  assert.equal(registryHost('[::1]:5000'), '[::1]:5000');
  assert.equal(registryHost('ghcr.io'), 'ghcr.io');
});

test('isLocalhostRegistry', () => {
  const local = [
    'localhost', 'localhost:5000', 'LOCALHOST:5000', '127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', '127.255.255.255',
    '[::1]', '[::1]:5000', '[0:0:0:0:0:0:0:1]:5000', '[0::1]', '[::0:1]:443', '[0000:0000:0000:0000:0000:0000:0000:0001]',
  ];
  const remote = [
    'docker.io', 'registry-1.docker.io', 'example.com:5000', 'localhost.example.com', 'mylocalhost:5000', '128.0.0.1',
    '126.0.0.1:5000', '127.0.0.256', '127.0.0.01', '127.0.0', '[::2]:5000', '[::]:5000', '[1::1]', '[::1::]',
    '[2001:db8::1]:5000', 'localhost:abc',
  ];
  for (const d of local) assert.ok(isLocalhostRegistry(d), d);
  for (const d of remote) assert.ok(!isLocalhostRegistry(d), d);
  assert.ok(isLocalhostRegistry(parseReference('[::1]:5000/x').domain));
  assert.ok(isLocalhostRegistry(parseReference('localhost:5000/a/b:1.2').domain));
});

// ---------------------------------------------------------------------------------------
// Go's path.Match
// ---------------------------------------------------------------------------------------

const MATCH_CASES: Array<[pattern: string, name: string, want: boolean | 'bad']> = [
  ['abc', 'abc', true],
  ['*', 'abc', true],
  ['*c', 'abc', true],
  ['a*', 'a', true],
  ['a*', 'abc', true],
  ['a*', 'ab/c', false],
  ['a*/b', 'abc/b', true],
  ['a*/b', 'a/c/b', false],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true],
  ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[c]', 'abc', true],
  ['ab[b-d]', 'abc', true],
  ['ab[e-g]', 'abc', false],
  ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abc', false],
  ['ab[^e-g]', 'abc', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true],
  ['a[^a]b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['a[^a][^a][^a]b', 'a☺b', false],
  ['[a-ζ]*', 'α', true],
  ['*[a-ζ]', 'A', false],
  ['a?b', 'a/b', false],
  ['a*b', 'a/b', false],
  ['[\\]a]', ']', true],
  ['[\\-]', '-', true],
  ['[x\\-]', 'x', true],
  ['[x\\-]', '-', true],
  ['[x\\-]', 'z', false],
  ['[\\-x]', 'x', true],
  ['[\\-x]', '-', true],
  ['[\\-x]', 'a', false],
  ['[]a]', ']', 'bad'],
  ['[-]', '-', 'bad'],
  ['[x-]', 'x', 'bad'],
  ['[x-]', '-', 'bad'],
  ['[x-]', 'z', 'bad'],
  ['[-x]', 'x', 'bad'],
  ['[-x]', '-', 'bad'],
  ['[-x]', 'a', 'bad'],
  ['\\', 'a', 'bad'],
  ['[a-b-c]', 'a', 'bad'],
  ['[', 'a', 'bad'],
  ['[^', 'a', 'bad'],
  ['[^bc', 'a', 'bad'],
  ['a[', 'a', 'bad'],
  ['a[', 'ab', 'bad'],
  ['a[', 'x', 'bad'],
  ['a/b[', 'x', 'bad'],
  ['*x', 'xxx', true],
  ['', '', true],
  ['', 'a', false],
  ['*', '', true],
  ['**', 'abc', true],
  ['*/*', 'a/b', true],
  ['*/*', 'a/b/c', false],
  ['a*[', 'abc', 'bad'],
];

for (const [pattern, name, want] of MATCH_CASES) {
  test(`pathMatch(${JSON.stringify(pattern)}, ${JSON.stringify(name)}) = ${want}`, () => {
    if (want === 'bad') assertRefError(() => pathMatch(pattern, name), 'syntax error in pattern', pattern, 'INVALID_PATTERN');
    else assert.equal(pathMatch(pattern, name), want);
  });
}

// ---------------------------------------------------------------------------------------
// docker images --filter reference=PATTERN
// ---------------------------------------------------------------------------------------

const FILTER_CASES: Array<[ref: string, pattern: string, want: boolean]> = [
  // distribution's FamiliarMatch cases
  ['foo', 'foo/**/ba[rz]', false],
  ['foo/any/bat', 'foo/**/ba[rz]', false],
  ['foo/a/bar', 'foo/**/ba[rz]', true],
  ['foo/b/baz', 'foo/**/ba[rz]', true],
  ['foo/c/baz:tag', 'foo/**/ba[rz]', true],
  ['foo/c/baz:tag', 'foo/*/baz:tag', true],
  ['foo/c/baz:tag', 'foo/c/baz:tag', true],
  ['example.com/foo/c/baz:tag', '*/foo/c/baz', true],
  ['example.com/foo/c/baz:tag', 'example.com/foo/c/baz', true],
  // the patterns users type
  ['busybox:latest', 'busybox', true],
  ['busybox:latest', 'busybox:latest', true],
  ['busybox:latest', 'busybox:1', false],
  ['busybox:latest', 'busy*', true],
  ['busybox:latest', '*box', true],
  ['busybox:latest', '*:latest', true],
  ['busybox:latest', '*', true],
  ['busybox:latest', 'busybox:*', true],
  // Docker matches the *familiar* forms only
  ['busybox:latest', 'library/busybox', false],
  ['busybox:latest', 'docker.io/library/busybox', false],
  ['busybox:latest', '*/busybox', false],
  ['user/app:v1', 'user/*', true],
  ['user/app:v1', 'user/*:v1', true],
  ['user/app:v1', '*', false],
  ['user/app:v1', '*/*', true],
  ['user/app:v1', 'user/app:v2', false],
  ['localhost:5000/a/b:1.2', 'localhost:5000/a/b', true],
  ['localhost:5000/a/b:1.2', 'localhost:*/a/b', true],
  ['localhost:5000/a/b:1.2', 'a/b', false],
  [`busybox@${D}`, 'busybox', true],
  [`busybox@${D}`, 'busybox@sha256:*', true],
  [`busybox@${D}`, 'busybox@sha256:e66*', true],
  [`busybox@${D}`, 'busybox@sha256:0*', false],
];

for (const [ref, pattern, want] of FILTER_CASES) {
  test(`matchReferenceFilter(${JSON.stringify(pattern)}, ${ref.length > 60 ? ref.slice(0, 57) + '...' : ref}) = ${want}`, () => {
    assert.equal(matchReferenceFilter(pattern, parseReference(ref)), want);
  });
}

test('matchReferenceFilter reports a malformed pattern', () => {
  assertRefError(() => matchReferenceFilter('[-x]', parseReference('foo')), 'syntax error in pattern', '[-x]', 'INVALID_PATTERN');
  assertRefError(() => matchReferenceFilter('busy[', parseReference('busybox')), 'syntax error in pattern', 'busy[', 'INVALID_PATTERN');
});
