/** Docker's config.json: lookup keys, file modes, atomic writes through symlinks, credential helpers (docs/RELIABILITY.md, item 15). */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CredentialStore, credentialKey, defaultConfigPath, DOCKER_HUB_KEY } from './credentials.js';
import { tempDir, thrown } from './testing/fixtures.js';

let root = '';
before(async () => {
  root = await tempDir('layerbox-creds-');
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
let n = 0;
const fresh = async () => {
  const d = join(root, `case-${++n}`);
  await mkdir(d);
  return d;
};
const mode = async (p: string) => (await stat(p)).mode & 0o777;

describe('lookup keys', () => {
  it('Docker Hub names map to https://index.docker.io/v1/, others to host[:port]', () => {
    for (const h of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/']) assert.equal(credentialKey(h), DOCKER_HUB_KEY);
    assert.equal(credentialKey('Registry.Example.com:5000'), 'registry.example.com:5000');
    assert.equal(credentialKey('https://registry.example.com:5000/v2/'), 'registry.example.com:5000');
  });

  it('$DOCKER_CONFIG is honoured, else ~/.docker/config.json', () => {
    assert.equal(defaultConfigPath({ DOCKER_CONFIG: '/x/y', HOME: '/home/u' }), '/x/y/config.json');
    assert.equal(defaultConfigPath({ HOME: '/home/u' }), '/home/u/.docker/config.json');
  });

  it('finds entries stored with a scheme or a path, and nothing for other hosts', async () => {
    const d = await fresh();
    const auth = Buffer.from('alice:pa:ss').toString('base64');
    await writeFile(
      join(d, 'config.json'),
      JSON.stringify({ auths: { 'https://reg.example:5000/v2/': { auth }, [DOCKER_HUB_KEY]: { auth: Buffer.from('hub:pw').toString('base64') }, 'tok.example': { identitytoken: 'rt-1' } } }),
    );
    const s = new CredentialStore({ configPath: join(d, 'config.json') });
    assert.deepEqual(await s.get('reg.example:5000'), { username: 'alice', password: 'pa:ss' });
    assert.deepEqual(await s.get('docker.io'), { username: 'hub', password: 'pw' });
    assert.deepEqual(await s.get('tok.example'), { identityToken: 'rt-1' });
    assert.equal(await s.get('reg.example:5001'), undefined);
    assert.equal(await s.get('reg.example'), undefined);
    assert.equal(await s.get('evil.example'), undefined);
  });

  it('a missing file means no credentials; a corrupt one is a clear error', async () => {
    const d = await fresh();
    const s = new CredentialStore({ configPath: join(d, 'config.json') });
    assert.equal(await s.get('reg.example'), undefined);
    await writeFile(join(d, 'config.json'), '{"auths": ');
    const e = await thrown(() => s.get('reg.example'));
    assert.equal(e.kind, 'failed-precondition');
    assert.match(e.message, /config\.json is not valid JSON/);
  });
});

describe('writes (docs/RELIABILITY.md, item 15)', () => {
  it('creates the directory 0700 and the file 0600, keeps unknown keys, leaves no temp files', async () => {
    const d = await fresh();
    const dir = join(d, 'dot-docker');
    const s = new CredentialStore({ env: { DOCKER_CONFIG: dir } });
    assert.equal(s.configPath, join(dir, 'config.json'));
    await s.store('reg.example:5000', { username: 'alice', password: 'secret' });
    assert.equal(await mode(dir), 0o700);
    assert.equal(await mode(s.configPath), 0o600);
    const j = JSON.parse(await readFile(s.configPath, 'utf8'));
    assert.deepEqual(j.auths['reg.example:5000'], { auth: Buffer.from('alice:secret').toString('base64') });
    // unknown keys survive a rewrite, and an existing 0644 file becomes 0600
    j.psFormat = 'table {{.ID}}';
    await writeFile(s.configPath, JSON.stringify(j));
    await chmod(s.configPath, 0o644);
    await s.store('docker.io', { username: 'hub', password: 'pw' });
    const j2 = JSON.parse(await readFile(s.configPath, 'utf8'));
    assert.equal(j2.psFormat, 'table {{.ID}}');
    assert.ok(j2.auths[DOCKER_HUB_KEY]);
    assert.ok(j2.auths['reg.example:5000']);
    assert.equal(await mode(s.configPath), 0o600);
    assert.deepEqual(await readdir(dir), ['config.json']);
  });

  it('a symlinked config.json is followed (its target is written), not replaced', async () => {
    const d = await fresh();
    await mkdir(join(d, 'real'), { mode: 0o700 });
    await mkdir(join(d, 'home'), { mode: 0o700 });
    await writeFile(join(d, 'real', 'config.json'), JSON.stringify({ auths: {}, credsStore: '' }), { mode: 0o600 });
    await symlink('../real/config.json', join(d, 'home', 'config.json'));
    const s = new CredentialStore({ configPath: join(d, 'home', 'config.json') });
    await s.store('reg.example', { username: 'u', password: 'p' });
    assert.ok((await lstat(join(d, 'home', 'config.json'))).isSymbolicLink());
    assert.equal(await readlink(join(d, 'home', 'config.json')), '../real/config.json');
    const target = JSON.parse(await readFile(join(d, 'real', 'config.json'), 'utf8'));
    assert.ok(target.auths['reg.example']);
    assert.equal(await mode(join(d, 'real', 'config.json')), 0o600);
    assert.deepEqual(await s.get('reg.example'), { username: 'u', password: 'p' });
    assert.deepEqual((await readdir(join(d, 'real'))).sort(), ['config.json']);
  });

  it('erase removes the entry (also one stored with a scheme)', async () => {
    const d = await fresh();
    const p = join(d, 'config.json');
    await writeFile(p, JSON.stringify({ auths: { 'https://reg.example/v1/': { auth: Buffer.from('a:b').toString('base64') }, 'keep.example': { auth: Buffer.from('c:d').toString('base64') } } }));
    const s = new CredentialStore({ configPath: p });
    await s.erase('reg.example');
    assert.equal(await s.get('reg.example'), undefined);
    assert.deepEqual(await s.get('keep.example'), { username: 'c', password: 'd' });
  });
});

describe('credential helpers', () => {
  /** A docker-credential-test helper that keeps secrets in files beside itself and logs its calls. */
  async function helperDir(): Promise<string> {
    const d = await fresh();
    const script = `#!/bin/sh
here="$(dirname "$0")"
input="$(cat)"
printf '%s %s\\n' "$1" "$input" >> "$here/calls.log"
case "$1" in
  store) printf '%s' "$input" > "$here/secret.json" ;;
  get) if [ -f "$here/secret.json" ] && grep -q "\\"ServerURL\\":\\"$input\\"" "$here/secret.json"; then cat "$here/secret.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) rm -f "$here/secret.json" ;;
  *) exit 2 ;;
esac
`;
    await writeFile(join(d, 'docker-credential-test'), script, { mode: 0o755 });
    return d;
  }

  it('credHelpers: store/get/erase go through docker-credential-<name> with the JSON protocol', async () => {
    const bin = await helperDir();
    const d = await fresh();
    const p = join(d, 'config.json');
    await writeFile(p, JSON.stringify({ credHelpers: { 'reg.example:5000': 'test' } }));
    const s = new CredentialStore({ configPath: p, env: { PATH: `${bin}:/usr/bin:/bin` } });
    await s.store('reg.example:5000', { username: 'alice', password: 'from-helper' });
    const cfg = JSON.parse(await readFile(p, 'utf8'));
    assert.deepEqual(cfg.auths['reg.example:5000'], {}, 'no secret in the file');
    assert.deepEqual(JSON.parse(await readFile(join(bin, 'secret.json'), 'utf8')), { ServerURL: 'reg.example:5000', Username: 'alice', Secret: 'from-helper' });
    assert.deepEqual(await s.get('reg.example:5000'), { username: 'alice', password: 'from-helper' });
    await s.erase('reg.example:5000');
    assert.equal(await s.get('reg.example:5000'), undefined);
    const calls = (await readFile(join(bin, 'calls.log'), 'utf8')).trim().split('\n');
    assert.deepEqual(calls.map((l) => l.split(' ')[0]), ['store', 'get', 'erase', 'get']);
    assert.equal(calls[1], 'get reg.example:5000');
    // other hosts do not use that helper, and get nothing
    assert.equal(await s.get('other.example'), undefined);
  });

  it('credsStore applies to every host; an identity token is stored as <token>', async () => {
    const bin = await helperDir();
    const d = await fresh();
    const p = join(d, 'config.json');
    await writeFile(p, JSON.stringify({ credsStore: 'test' }));
    const s = new CredentialStore({ configPath: p, env: { PATH: `${bin}:/usr/bin:/bin` } });
    await s.store('docker.io', { identityToken: 'refresh-123' });
    assert.deepEqual(JSON.parse(await readFile(join(bin, 'secret.json'), 'utf8')), { ServerURL: DOCKER_HUB_KEY, Username: '<token>', Secret: 'refresh-123' });
    assert.deepEqual(await s.get('index.docker.io'), { identityToken: 'refresh-123' });
  });

  it('a missing helper is a clear error', async () => {
    const d = await fresh();
    const p = join(d, 'config.json');
    await writeFile(p, JSON.stringify({ credsStore: 'nonexistent' }));
    const s = new CredentialStore({ configPath: p, env: { PATH: d } });
    const e = await thrown(() => s.get('reg.example'));
    assert.equal(e.kind, 'failed-precondition');
    assert.match(e.message, /docker-credential-nonexistent not found on PATH/);
  });

  it('a helper name with a path in it is refused', async () => {
    const d = await fresh();
    const p = join(d, 'config.json');
    await writeFile(p, JSON.stringify({ credsStore: '../../bin/sh' }));
    const e = await thrown(() => new CredentialStore({ configPath: p }).get('reg.example'));
    assert.equal(e.kind, 'failed-precondition');
    assert.match(e.message, /invalid credential helper name/);
  });
});
