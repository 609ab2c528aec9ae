/**
 * Image removal as Docker 20.10 does it (issue 10.5): `rmi -f IMAGE_ID` of an image a
 * stopped container uses, and `image prune -a` of images with two tags, or a tag and a
 * repo digest. Each scenario runs against layerbox and — where docker.io is installed — the
 * same steps against a private dockerd loaded with the same fixtures; the outputs must
 * agree (Docker prunes in map order: lines are compared as sets; manifest digests of the
 * two pushes are normalised, image and layer IDs are not).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { lbp, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { dockerdInstalled, startDockerd, type PrivateDockerd } from '../testing/dockerd.js';
import { startRegistry, type TestRegistry } from '../registry/testing/registries.js';

const BASE = join(FIXTURES, 'busybox-base.docker.tar');
const CHANGED = join(FIXTURES, 'busybox-changed.docker.tar');
const BASE_ID = 'sha256:a194d3cfff9c9ed0cf00ec8506efeb7a5a8b230d6454f7514b7bb2dd67540533';

interface Engine {
  name: string;
  run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** bytes the engine keeps for images and containers */
  usage(): number;
}

let dockerd: PrivateDockerd | undefined;
let registry: TestRegistry;

before(async () => {
  registry = await startRegistry({ auth: 'none' });
  dockerd = await startDockerd();
});
after(async () => {
  await dockerd?.stop();
  await registry?.stop();
});

/** Apparent bytes of files under `dirs` (hard links once). */
function du(dirs: string[]): number {
  let n = 0;
  const seen = new Set<string>();
  const walk = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const e of readdirSync(p)) walk(join(p, e));
    } else if (!seen.has(`${st.dev}:${st.ino}`)) {
      seen.add(`${st.dev}:${st.ino}`);
      n += st.size;
    }
  };
  for (const d of dirs) walk(d);
  return n;
}

function layerbox(root: string): Engine {
  return { name: 'layerbox', run: (args) => lbp(root, args), usage: () => du([join(root, 'snapshots'), join(root, 'blobs'), join(root, 'containers')]) };
}

function docker(d: PrivateDockerd): Engine {
  return { name: 'docker', run: (args) => d.docker(args), usage: () => du([join(d.dataRoot, 'overlay2'), join(d.dataRoot, 'image'), join(d.dataRoot, 'containers')]) };
}

async function ok(e: Engine, args: string[]): Promise<string> {
  const r = await e.run(args);
  assert.equal(r.code, 0, `${e.name} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Each engine's transcript of a scenario, step by step: what is compared. */
type Transcript = { step: string; out: string | string[] }[];

/** Lines as a set (Docker's prune goes through its images in map order), digests of pushes normalised. */
const asSet = (s: string) => s.split('\n').filter(Boolean).map((l) => l.replace(/@sha256:[0-9a-f]{64}/, '@<manifest>')).sort();

async function rmiForce(e: Engine): Promise<Transcript> {
  const t: Transcript = [];
  const baseline = e.usage();
  await ok(e, ['load', '-i', BASE]);
  await ok(e, ['create', '--name', 'held', '--network', 'none', 'bench/busybox:latest', 'echo', 'still runs']);
  const soft = await e.run(['rmi', BASE_ID]);
  t.push({ step: 'rmi ID (no -f): refused', out: `${soft.code} ${/conflict: unable to delete [0-9a-f]{12} \(must be forced\) - image is being used by stopped container/.exec(soft.stderr)?.[0]}` });
  t.push({ step: 'rmi -f ID', out: await ok(e, ['rmi', '-f', BASE_ID]) });
  t.push({ step: 'images -a', out: await ok(e, ['images', '-a']) });
  t.push({ step: 'ps: the image ID', out: await ok(e, ['ps', '-a', '--format', '{{.Image}} {{.Names}}']) });
  t.push({ step: 'ps --no-trunc', out: await ok(e, ['ps', '-a', '--no-trunc', '--format', '{{.Image}}']) });
  t.push({ step: 'inspect', out: await ok(e, ['inspect', '--format', '{{.Image}} {{.Config.Image}}', 'held']) });
  t.push({ step: 'the container still starts', out: await ok(e, ['start', '-a', 'held']) });
  const again = await e.run(['rmi', '-f', BASE_ID]);
  t.push({ step: 'rmi -f ID again', out: `${again.code} ${/No such image: sha256:[0-9a-f]{64}/.exec(again.stderr)?.[0]}` });
  t.push({ step: 'image prune -a keeps the held layers', out: await ok(e, ['image', 'prune', '-a', '-f']) });
  assert.ok(e.usage() > baseline, `${e.name}: the container holds the layers`);
  await ok(e, ['rm', 'held']);
  t.push({ step: 'du back to baseline after rm', out: String(e.usage() - baseline) });
  return t;
}

async function pruneAll(e: Engine): Promise<Transcript> {
  const t: Transcript = [];
  const repo = `${registry.host}/prune-${e.name}/changed`;
  await ok(e, ['load', '-i', BASE]);
  await ok(e, ['load', '-i', CHANGED]);
  // the base image under two tags; the changed one under a tag and a repo digest
  await ok(e, ['tag', 'bench/busybox:latest', 'other/bb:1']);
  await ok(e, ['tag', 'bench/busybox:changed', `${repo}:1`]);
  await ok(e, ['push', `${repo}:1`]);
  await ok(e, ['rmi', 'bench/busybox:changed']);
  t.push({ step: 'images --digests', out: asSet((await ok(e, ['images', '--digests', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).replaceAll(`prune-${e.name}`, 'prune')) });
  t.push({ step: 'image prune -a', out: asSet((await ok(e, ['image', 'prune', '-a', '-f'])).replaceAll(`prune-${e.name}`, 'prune')) });
  t.push({ step: 'images -a', out: await ok(e, ['images', '-a']) });

  // an image a container uses, under two tags: the first is untagged, the last stays
  await ok(e, ['load', '-i', BASE]);
  await ok(e, ['tag', 'bench/busybox:latest', 'other/bb:1']);
  await ok(e, ['create', '--name', 'user', '--network', 'none', 'other/bb:1', 'true']);
  t.push({ step: 'image prune -a with a container', out: asSet(await ok(e, ['image', 'prune', '-a', '-f'])) });
  t.push({ step: 'images (the last tag stays)', out: await ok(e, ['images']) });
  await ok(e, ['rm', 'user']);
  t.push({ step: 'image prune -a after rm', out: asSet(await ok(e, ['image', 'prune', '-a', '-f'])) });
  t.push({ step: 'images -a at the end', out: await ok(e, ['images', '-a']) });
  return t;
}

for (const [title, scenario, expect] of [
  [
    'rmi -f IMAGE_ID of an image a stopped container uses: the image is deleted, the container keeps its image ID and runs; its layers go when it goes (du back to baseline)',
    rmiForce,
    (t: Transcript) => {
      const s = Object.fromEntries(t.map((x) => [x.step, x.out]));
      assert.equal(s['rmi -f ID'], `Untagged: bench/busybox:latest\nDeleted: ${BASE_ID}\n`);
      assert.equal(s['ps: the image ID'], 'a194d3cfff9c held\n');
      assert.equal(s['inspect'], `${BASE_ID} bench/busybox:latest\n`);
      assert.equal(s['the container still starts'], 'still runs\n');
      // Docker's CLI: with -f, an image that is not there is reported and the exit code is 0
      assert.equal(s['rmi -f ID again'], `0 No such image: ${BASE_ID}`);
      assert.equal(s['du back to baseline after rm'], '0');
    },
  ],
  [
    'image prune -a removes unused images with two tags, or a tag and a repo digest; an image a container uses loses all tags but its last',
    pruneAll,
    (t: Transcript) => {
      const s = Object.fromEntries(t.map((x) => [x.step, x.out]));
      assert.ok((s['image prune -a'] as string[]).includes('deleted: sha256:2d253da2832fe2a378b23bad83667bddd0fc377cdf6c7653b2a0dfba373294e3'), String(s['image prune -a']));
      assert.ok((s['image prune -a'] as string[]).includes('Total reclaimed space: 1.986MB'), String(s['image prune -a']));
      assert.match(s['images -a'] as string, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n$/);
      assert.match(s['images (the last tag stays)'] as string, /\nother\/bb\s+1\s+a194d3cfff9c/);
    },
  ],
] as const) {
  test(title, async (tc) => {
    const t = tempRoot();
    try {
      const ours = await scenario(layerbox(t.root));
      expect(ours);
      const c = await lbp(t.root, ['system', 'check']);
      assert.equal(c.code, 0, c.stdout + c.stderr);
      if (!dockerd) {
        tc.diagnostic(`docker.io is ${dockerdInstalled() ? 'installed but did not start' : 'not installed'}: no comparison with Docker`);
        return;
      }
      const theirs = await scenario(docker(dockerd));
      for (const [i, step] of theirs.entries()) assert.deepEqual(ours[i], step, `step "${step.step}": layerbox and Docker differ`);
      tc.diagnostic(`compared with dockerd 20.10: ${theirs.length} steps agree`);
    } finally {
      const ids = (await lbp(t.root, ['ps', '-aq'])).stdout.split('\n').filter(Boolean);
      if (ids.length) await lbp(t.root, ['rm', '-f', ...ids]);
      t.cleanup();
    }
  });
}
