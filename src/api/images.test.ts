/**
 * The real docker CLI (Debian's docker.io 20.10 client, /usr/bin/docker) against
 * `layerbox serve`: version, info, images, pull from a local registry, push, tag, history,
 * inspect, save | load, rmi, image prune, import, system df, volumes — and, docker.io being
 * installed, the same steps against a private dockerd: the outputs and exit codes must be
 * equal, after normalising what must differ (each engine pushes to its own repository;
 * manifest digests and compressed-layer IDs depend on each engine's gzip; volume paths and
 * container IDs are each engine's own). The newer client (/usr/local/bin/docker) negotiates
 * API 1.41 with both.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lbp } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { startDockerd, dockerdInstalled, type DockerResult, type PrivateDockerd } from '../testing/dockerd.js';
import { runDocker, startServe, type RunningServe } from '../testing/serve.js';
import { startRegistry, type TestRegistry } from '../registry/testing/registries.js';
import { layerTar } from '../testing/images.js';

const BASE = join(FIXTURES, 'busybox-base.docker.tar');
const CHANGED = join(FIXTURES, 'busybox-changed.docker.tar');
const DOCKER_20 = '/usr/bin/docker';
const DOCKER_NEW = '/usr/local/bin/docker';


/** One engine as the docker CLI sees it: a DOCKER_HOST and a name (its own repository path). */
interface Side {
  name: 'layerbox' | 'docker';
  env: NodeJS.ProcessEnv;
  docker(args: string[], opts?: { input?: Buffer | string; bin?: string }): Promise<DockerResult>;
}

function side(name: Side['name'], env: NodeJS.ProcessEnv): Side {
  const e: NodeJS.ProcessEnv = { ...env, DOCKER_CLI_HINTS: 'false', DOCKER_BUILDKIT: '0' };
  delete e.DOCKER_API_VERSION;
  return {
    name,
    env: e,
    docker: (args, o = {}) => runDocker(o.bin ?? DOCKER_20, args, e, o.input),
  };
}

let registry: TestRegistry;
let serve: RunningServe;
let dockerd: PrivateDockerd | undefined;
let lb: Side;
let dk: Side | undefined;
const work = mkdtempSync(join(tmpdir(), 'lb-api-images-'));

before(async () => {
  registry = await startRegistry({ auth: 'none' });
  serve = await startServe();
  lb = side('layerbox', serve.env);
  dockerd = await startDockerd({ prefix: 'lbai-' });
  if (dockerd) dk = side('docker', dockerd.env);
});

after(async () => {
  await serve?.stop();
  await dockerd?.stop();
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

type Step = { step: string; code: number; out: string };

/**
 * Lines as a set: images created at the same second (the fixtures) come in dockerd's map
 * order, which varies from run to run (`docker images` sorts by creation time only).
 */
const sorted = (x: string) => x.split('\n').sort().join('\n');

/** What must differ between the two engines, made equal. */
function normalise(s: Side, text: string): string {
  return text
    .replaceAll(`/${s.name}/`, '/ENGINE/')
    .replaceAll(` ${s.name}/`, ' ENGINE/')
    .replaceAll(`/${s.name}:`, '/ENGINE:')
    .replace(/(digest: |Digest: |@)sha256:[0-9a-f]{64}/g, '$1<manifest>')
    .replace(/size: \d+/g, 'size: <n>')
    .replace(/^[0-9a-f]{12}: (Pulling fs layer|Waiting|Downloading|Verifying Checksum|Download complete|Extracting|Pull complete|Already exists)/gm, '<layer>: $1');
}

async function run(s: Side, t: Step[], step: string, args: string[], opts: { input?: Buffer | string; bin?: string; stderr?: boolean; map?: (x: string) => string } = {}): Promise<DockerResult> {
  const r = await s.docker(args, opts);
  let out = r.stdout + (opts.stderr === false ? '' : r.stderr);
  out = normalise(s, out);
  if (opts.map) out = opts.map(out);
  t.push({ step, code: r.code, out });
  return r;
}

/** Compares two transcripts step by step (layerbox's first). */
function compare(ours: Step[], theirs: Step[]): void {
  assert.equal(ours.length, theirs.length);
  for (const [i, s] of theirs.entries()) assert.deepEqual(ours[i], s, `step "${s.step}": layerbox and dockerd differ`);
}

async function both(tc: { diagnostic(m: string): void }, scenario: (s: Side) => Promise<Step[]>, check: (t: Step[]) => void): Promise<void> {
  const ours = await scenario(lb);
  check(ours);
  if (!dk) {
    tc.diagnostic(`docker.io is ${dockerdInstalled() ? 'installed but did not start' : 'not installed'}: no comparison with dockerd`);
    return;
  }
  const theirs = await scenario(dk);
  compare(ours, theirs);
  tc.diagnostic(`compared with dockerd 20.10: ${theirs.length} steps agree`);
}

const byStep = (t: Step[]) => Object.fromEntries(t.map((s) => [s.step, s]));

test('docker version and info through layerbox serve: API 1.41, the host as dockerd reports it, no warnings; the newer client negotiates 1.41', async (tc) => {
  await both(
    tc,
    async (s) => {
      const t: Step[] = [];
      // (the oldest API version differs: dockerd 20.10 serves 1.12 on, layerbox 1.24 on)
      await run(s, t, 'version', ['version', '--format', '{{.Server.APIVersion}} {{.Server.Os}} {{.Server.Arch}} {{.Client.APIVersion}}']);
      if (existsSync(DOCKER_NEW)) await run(s, t, 'version (newer client)', ['version', '--format', '{{.Server.APIVersion}} {{.Client.APIVersion}}'], { bin: DOCKER_NEW });
      await run(s, t, 'info fields', ['info', '--format', '{{.OSType}} {{.Architecture}} {{.NCPU}} {{.MemTotal}} {{.OperatingSystem}} {{.OSVersion}} {{.KernelVersion}} {{.IndexServerAddress}} {{.RegistryConfig.InsecureRegistryCIDRs}} {{.CgroupVersion}} {{.CgroupDriver}} {{.Name}}']);
      const info = await s.docker(['info']);
      t.push({ step: 'info: exit code and warnings', code: info.code, out: info.stderr.split('\n').filter((l) => l.startsWith('WARNING')).join('\n') });
      return t;
    },
    (t) => {
      const s = byStep(t);
      assert.equal(s['version']!.out, '1.41 linux amd64 1.41\n');
      if (s['version (newer client)']) assert.equal(s['version (newer client)']!.out, '1.41 1.41\n');
      assert.equal(s['info: exit code and warnings']!.code, 0);
    },
  );
});

test('docker load, images, tag, push, rmi, pull (already there, new layers, a missing tag), history, inspect, images --digests', async (tc) => {
  // an image only the registry has: every engine downloads its new layer
  {
    const l = await lb.docker(['load', '-i', CHANGED]);
    assert.equal(l.code, 0, l.stderr);
    await lb.docker(['tag', 'bench/busybox:changed', `${registry.host}/src/changed:1`]);
    const p = await lb.docker(['push', `${registry.host}/src/changed:1`]);
    assert.equal(p.code, 0, p.stderr);
    await lb.docker(['rmi', 'bench/busybox:changed', `${registry.host}/src/changed:1`]);
  }
  await both(
    tc,
    async (s) => {
      const t: Step[] = [];
      const repo = `${registry.host}/${s.name}/bb`;
      await run(s, t, 'load', ['load', '-i', BASE]);
      await run(s, t, 'images', ['images']);
      await run(s, t, 'tag', ['tag', 'bench/busybox:latest', `${repo}:1`]);
      await run(s, t, 'push', ['push', `${repo}:1`]);
      await run(s, t, 'push again', ['push', `${repo}:1`]);
      await run(s, t, 'rmi the tag', ['rmi', `${repo}:1`]);
      await run(s, t, 'pull (layers already there)', ['pull', `${repo}:1`]);
      await run(s, t, 'pull a missing tag', ['pull', `${repo}:nope`]);
      await run(s, t, 'pull a missing repository', ['pull', `${registry.host}/${s.name}/nothing`]);
      // dockerd knows a layer by the digest of its compressed blob, and layerbox pushed it
      // with its own gzip: it downloads the base layer it has too; layerbox knows the layers
      // by the config's diff IDs. The layer lines are compared by layerbox's own check below.
      const fresh = await run(s, t, 'pull (a new layer)', ['pull', `${registry.host}/src/changed:1`], { map: (x) => x.replace(/^<layer>: .*\n/gm, '') });
      if (s.name === 'layerbox') {
        assert.match(normalise(s, fresh.stdout), /^1: Pulling from src\/changed\n<layer>: Already exists\n<layer>: Pulling fs layer\n<layer>: Verifying Checksum\n<layer>: Download complete\n<layer>: Pull complete\nDigest: <manifest>\nStatus: Downloaded newer image for /);
      }
      await run(s, t, 'pull -q (up to date)', ['pull', '-q', `${registry.host}/src/changed:1`]);
      await run(s, t, 'images --digests', ['images', '--digests', '--format', '{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}} {{.Size}}'], { map: (x) => sorted(x.replace(/ENGINE\/bb 1 sha256:[0-9a-f]{64}/, 'ENGINE/bb 1 <manifest>')) });
      await run(s, t, 'images -q', ['images', '-q', '--no-trunc'], { map: sorted });
      await run(s, t, 'images filtered', ['images', '--filter', 'reference=*/*/bb', '--format', '{{.Repository}}:{{.Tag}}'], { map: sorted });
      await run(s, t, 'images with a bad filter', ['images', '--filter', 'nope=1']);
      await run(s, t, 'history', ['history', `${registry.host}/src/changed:1`]);
      await run(s, t, 'history --no-trunc -q', ['history', '-q', '--no-trunc', `${registry.host}/src/changed:1`]);
      await run(s, t, 'inspect', ['image', 'inspect', '--format', '{{.Id}} {{.RepoTags}} {{.Config.Cmd}} {{.RootFS.Layers}} {{.Os}} {{.Architecture}} {{.Size}} {{.Comment}}', `${registry.host}/src/changed:1`]);
      await run(s, t, 'inspect a missing image', ['image', 'inspect', 'nope:1']);
      await run(s, t, 'tag a missing image', ['tag', 'nope:1', 'x:y']);
      await run(s, t, 'push an image that is not there', ['push', `${repo}:2`]);
      await run(s, t, 'rmi', ['rmi', `${registry.host}/src/changed:1`]);
      await run(s, t, 'rmi a missing image', ['rmi', 'nope:1']);
      await run(s, t, 'rmi of an image with two tags without -f', ['rmi', 'a194d3cfff9c']);
      await run(s, t, 'rmi -f of an image with two tags', ['rmi', '-f', 'a194d3cfff9c']);
      await run(s, t, 'images at the end', ['images', '-a']);
      return t;
    },
    (t) => {
      const s = byStep(t);
      assert.equal(s['load']!.out, 'Loaded image: bench/busybox:latest\n');
      assert.match(s['push']!.out, /Pushed\n1: digest: <manifest> size: <n>\n$/);
      assert.equal(s['pull a missing tag']!.code, 1);
      assert.match(s['pull a missing tag']!.out, /manifest for 127\.0\.0\.1:\d+\/ENGINE\/bb:nope not found: manifest unknown: manifest unknown/);
      assert.equal(s['rmi a missing image']!.code, 1);
      assert.match(s['images at the end']!.out, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n$/);
    },
  );
});

test('docker save | docker load, and docker import from the body, as dockerd; archives cross between the engines', async (tc) => {
  const rootfs = join(work, 'rootfs.tar');
  writeFileSync(rootfs, layerTar([{ path: 'etc/', type: 'dir' }, { path: 'etc/hello', type: 'file', data: 'imported\n' }]));
  const saved: Partial<Record<Side['name'], Buffer>> = {};
  await both(
    tc,
    async (s) => {
      const t: Step[] = [];
      await run(s, t, 'load', ['load', '-i', BASE]);
      await run(s, t, 'load (again)', ['load', '-i', CHANGED]);
      const sv = await s.docker(['save', 'bench/busybox:latest', 'bench/busybox:changed']);
      t.push({ step: 'save', code: sv.code, out: sv.stderr });
      saved[s.name] = sv.out;
      await run(s, t, 'save a missing image', ['save', 'nope:1'], { stderr: true, map: (x) => x });
      await run(s, t, 'rmi', ['rmi', 'bench/busybox:latest', 'bench/busybox:changed']);
      // (dockerd writes the images of an archive in its map order too)
      await run(s, t, 'load from stdin', ['load'], { input: sv.out, map: sorted });
      await run(s, t, 'load -q', ['load', '-q'], { input: sv.out, map: sorted });
      // (each engine words what is wrong with it in its own way)
      const garbage = await run(s, t, 'load of garbage', ['load'], { input: Buffer.from('not an archive at all'), map: () => '' });
      if (s.name === 'layerbox') assert.match(garbage.stderr, /not a valid image archive/);
      await run(s, t, 'images', ['images'], { map: sorted });
      await run(s, t, 'import from stdin', ['import', '-m', 'from a tar', '-c', 'CMD ["/bin/sh"]', '-', `imported/${s.name}:1`], { input: readFileSync(rootfs), map: (x) => x.replace(/sha256:[0-9a-f]{64}/, '<id>') });
      await run(s, t, 'imported image', ['image', 'inspect', '--format', '{{.RepoTags}} {{.Config.Cmd}} {{.Comment}} {{len .RootFS.Layers}} {{.Size}}', `imported/${s.name}:1`]);
      await run(s, t, 'rmi imported', ['rmi', `imported/${s.name}:1`], { map: (x) => x.replace(/sha256:[0-9a-f]{64}/g, '<id>') });
      return t;
    },
    (t) => {
      const s = byStep(t);
      assert.equal(s['save']!.code, 0);
      assert.equal(s['load from stdin']!.out, '\nLoaded image: bench/busybox:changed\nLoaded image: bench/busybox:latest');
      assert.notEqual(s['load of garbage']!.code, 0);
    },
  );
  if (saved.docker && saved.layerbox) {
    // what dockerd saved loads into layerbox, and the other way round: the same image IDs
    const a = await lb.docker(['load'], { input: saved.docker });
    assert.equal(a.code, 0, a.stderr);
    const b = await dk!.docker(['load'], { input: saved.layerbox });
    assert.equal(b.code, 0, b.stderr);
    const ids = async (s: Side) => (await s.docker(['images', '-q', '--no-trunc'])).stdout.split('\n').sort().join(' ');
    assert.equal(await ids(lb), await ids(dk!));
    for (const s of [lb, dk!]) await s.docker(['rmi', 'bench/busybox:latest', 'bench/busybox:changed']);
  }
});

test('docker image prune, system df, and volumes (create, ls with filters, inspect, rm, in use, prune) as dockerd', async (tc) => {
  await both(
    tc,
    async (s) => {
      const t: Step[] = [];
      await run(s, t, 'load', ['load', '-i', BASE]);
      await run(s, t, 'load changed', ['load', '-i', CHANGED]);
      await run(s, t, 'untag changed (dangling)', ['tag', 'bench/busybox:changed', 'keep/changed:1']);
      await run(s, t, 'rmi -f base tag', ['rmi', 'bench/busybox:changed']);
      await run(s, t, 'system df', ['system', 'df']);
      await run(s, t, 'volume create', ['volume', 'create', 'v1']);
      await run(s, t, 'volume create --label', ['volume', 'create', '--label', 'team=a', 'v2']);
      await run(s, t, 'volume create anonymous', ['volume', 'create'], { map: (x) => x.replace(/^[0-9a-f]{64}$/m, '<anon>') });
      await run(s, t, 'volume ls', ['volume', 'ls', '--format', '{{.Driver}} {{.Name}} {{.Labels}}'], { map: (x) => x.replace(/^local [0-9a-f]{64} $/m, 'local <anon> ').split('\n').sort().join('\n') });
      await run(s, t, 'volume ls -f label', ['volume', 'ls', '-q', '-f', 'label=team=a']);
      await run(s, t, 'volume ls -f name', ['volume', 'ls', '-q', '-f', 'name=v1']);
      await run(s, t, 'volume ls -f bad', ['volume', 'ls', '-f', 'nope=1']);
      await run(s, t, 'volume inspect', ['volume', 'inspect', '--format', '{{.Name}} {{.Driver}} {{.Labels}} {{.Scope}} {{.Options}}', 'v2']);
      await run(s, t, 'volume inspect missing', ['volume', 'inspect', 'nope']);
      await run(s, t, 'volume create (same name again)', ['volume', 'create', 'v1']);
      await run(s, t, 'volume create bad name', ['volume', 'create', 'a/b']);
      await run(s, t, 'system df with volumes', ['system', 'df']);
      await run(s, t, 'volume rm', ['volume', 'rm', 'v1']);
      await run(s, t, 'volume rm missing', ['volume', 'rm', 'v1']);
      await run(s, t, 'volume rm -f missing', ['volume', 'rm', '-f', 'v1']);
      await run(s, t, 'volume prune (API 1.41: every unused volume)', ['volume', 'prune', '-f'], { map: (x) => x.replace(/^[0-9a-f]{64}$/m, '<anon>').split('\n').sort().join('\n') });
      await run(s, t, 'image prune', ['image', 'prune', '-f']);
      await run(s, t, 'image prune -a', ['image', 'prune', '-a', '-f'], { map: (x) => x.split('\n').sort().join('\n') });
      await run(s, t, 'system df at the end', ['system', 'df']);
      return t;
    },
    (t) => {
      const s = byStep(t);
      assert.match(s['system df']!.out, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\nImages\s+2\s+0\s+1\.986MB/);
      assert.equal(s['volume ls -f label']!.out, 'v2\n');
      assert.equal(s['volume rm missing']!.code, 1);
      assert.equal(s['volume rm -f missing']!.code, 0);
      assert.match(s['volume prune (API 1.41: every unused volume)']!.out, /v2/);
    },
  );
});

test('docker volume rm of a volume a container uses: 409 with dockerd\'s message; -f does not remove it either', async () => {
  // the layerbox CLI works on the server's store at the same time
  assert.equal((await lb.docker(['load', '-i', BASE])).code, 0);
  const created = await lbp(serve.root, ['run', '-d', '--network', 'none', '-v', 'held:/data', 'bench/busybox:latest', 'true']);
  assert.equal(created.code, 0, created.stderr);
  const id = created.stdout.trim();
  try {
    const r = await lb.docker(['volume', 'rm', 'held']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `Error response from daemon: remove held: volume is in use - [${id}]\n`);
    const raw = await serve.request('DELETE', '/v1.41/volumes/held?force=1');
    assert.equal(raw.status, 409);
    assert.deepEqual(JSON.parse(raw.body.toString()), { message: `remove held: volume is in use - [${id}]` });
    assert.equal((await lb.docker(['volume', 'ls', '-q'])).stdout, 'held\n');
  } finally {
    await lbp(serve.root, ['rm', '-f', id]);
    await lb.docker(['volume', 'rm', 'held']);
    await lb.docker(['rmi', 'bench/busybox:latest']);
  }
});

test('POST /images/load whose client is still sending the padding after the archive\'s end blocks: the rest is read off and the answer is "Loaded image", never a connection reset', async () => {
  // The docker CLI streams `docker load`'s archive; Go's archive/tar pads it to 10 KiB
  // records. The server used to destroy the request stream as soon as it had parsed the
  // end-of-archive blocks, resetting a client that was still sending the padding (the
  // flake "read: connection reset by peer" under load). Here the padding comes 300 ms
  // late, so the race is lost every time.
  const archive = readFileSync(BASE);
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const q = httpRequest({ socketPath: serve.sock, method: 'POST', path: '/v1.41/images/load?quiet=1', headers: { 'Content-Type': 'application/x-tar' } }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    q.on('error', reject);
    q.write(archive);
    setTimeout(() => {
      q.write(Buffer.alloc(8192));
      q.end();
    }, 300);
  });
  assert.equal(answer.status, 200);
  assert.match(answer.body, /"stream":"Loaded image: bench\/busybox:latest\\n"/);
  assert.equal((await lb.docker(['rmi', 'bench/busybox:latest'])).code, 0);
});
