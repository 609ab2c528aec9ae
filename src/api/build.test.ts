/**
 * POST /build through the real clients (issue 12, "Through the API"): the docker CLI with
 * the classic builder (DOCKER_BUILDKIT=0), docker-py's client.images.build and
 * docker-compose build (COMPOSE_DOCKER_CLI_BUILD=0) against `layerbox serve` each make the
 * same image as `layerbox build` — the same config, history and file tree; the build cache
 * is one for both fronts. The docker CLI's output, exit codes and failures are compared
 * with a private dockerd's, ids normalised.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { cpSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lbp } from '../testing/cli.js';
import { FIXTURES, REPO_ROOT } from '../testing/tree.js';
import { startDockerd, type PrivateDockerd } from '../testing/dockerd.js';
import { startServe, type RunningServe } from '../testing/serve.js';
import { Engine } from '../engine/index.js';

const BASE = join(FIXTURES, 'busybox-base.docker.tar');
const PY = '/usr/bin/python3';
const SDK = join(REPO_ROOT, 'src', 'api', 'sdk');

let serve: RunningServe;
let dockerd: PrivateDockerd | undefined;
const work = mkdtempSync(join(tmpdir(), 'lb-api-build-'));
const ctx = join(work, 'ctx');

const DOCKERFILE = `FROM bench/busybox:latest
ARG FLAVOUR=plain
ENV GREETING=hi
LABEL org.example.team=images
WORKDIR /app
COPY hello.txt ./
COPY dir/ ./dir/
ADD archive.tar ./unpacked/
RUN echo "built $FLAVOUR" > /app/built.txt && mkdir -p /var/data && chmod 0750 /var/data
USER 1000:1000
EXPOSE 8080/tcp
VOLUME /var/data
HEALTHCHECK --interval=5s CMD ["true"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/hello.txt"]
`;

before(async () => {
  mkdirSync(join(ctx, 'dir', 'sub'), { recursive: true });
  writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE);
  writeFileSync(join(ctx, 'hello.txt'), 'hello\n');
  writeFileSync(join(ctx, 'dir', 'a.txt'), 'a\n');
  writeFileSync(join(ctx, 'dir', 'sub', 'b.txt'), 'b\n');
  writeFileSync(join(ctx, '.dockerignore'), 'ignored.txt\n');
  writeFileSync(join(ctx, 'ignored.txt'), 'never sent\n');
  const { layerTar } = await import('../testing/images.js');
  writeFileSync(join(ctx, 'archive.tar'), layerTar([{ path: 'in-archive/', type: 'dir' }, { path: 'in-archive/x.txt', type: 'file', data: 'from the archive\n' }]));
  serve = await startServe();
  const l = await serve.docker(['load', '-i', BASE]);
  assert.equal(l.code, 0, l.stderr);
  dockerd = await startDockerd({ prefix: 'lbab-' });
  if (dockerd) {
    const r = await dockerd.docker(['load', '-i', BASE]);
    assert.equal(r.code, 0, r.stderr);
  }
});

after(async () => {
  await serve?.stop();
  await dockerd?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string, cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = spawn(cmd, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  c.stdin.on('error', () => {});
  c.stdin.end(input ?? '');
  const [code] = (await once(c, 'close')) as [number | null];
  return { code: code ?? -1, stdout, stderr };
}

const docker20 = (env: NodeJS.ProcessEnv, args: string[], input?: string) => {
  const e: NodeJS.ProcessEnv = { ...env, DOCKER_BUILDKIT: '0' };
  delete e.DOCKER_API_VERSION;
  return run('/usr/bin/docker', args, e, input);
};

type Tree = Map<string, string>;

function walkTree(root: string): Tree {
  const out: Tree = new Map();
  const walk = (rel: string) => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(root, r);
      const st = lstatSync(p);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : 'other';
      let what = '';
      if (st.isFile()) what = createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16) + ` ${st.size}`;
      if (st.isSymbolicLink()) what = '-> ' + readlinkSync(p);
      out.set(r, `${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${what}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/** What makes two builds the same image: config (the parent's ID aside), history, layers, tree. */
async function describe(name: string) {
  await using engine = await Engine.open({ root: serve.root });
  const cfg = await engine.images.config(name);
  const config = { ...(cfg.config ?? {}) } as Record<string, unknown>;
  delete config.Image;
  await using m = await engine.images.mount(name);
  return {
    config,
    history: (cfg.history ?? []).map((h) => ({ created_by: h.created_by ?? '', empty_layer: !!h.empty_layer, comment: h.comment ?? '' })),
    layers: cfg.rootfs.diff_ids.length,
    tree: [...walkTree(m.path)],
  };
}

let reference: Awaited<ReturnType<typeof describe>>;

test('DOCKER_BUILDKIT=0 docker build through layerbox serve makes the same image as layerbox build; one build cache serves both fronts', async () => {
  const api = await serve.docker(['build', '--network', 'none', '--build-arg', 'FLAVOUR=api', '-t', 'api-built:1', ctx]);
  assert.equal(api.code, 0, api.stdout + api.stderr);
  assert.match(api.stdout, /^Sending build context to Docker daemon {2}[\d.]+kB\r*\nStep 1\/15 : FROM bench\/busybox:latest\n ---> a194d3cfff9c\n/);
  const apiId = /\nSuccessfully built ([0-9a-f]{12})\nSuccessfully tagged api-built:1\n$/.exec(api.stdout)?.[1];
  assert.ok(apiId, api.stdout);
  // the CLI's build of the same context hits the cache the API's build filled: the very image
  const cached = await lbp(serve.root, ['build', '--network', 'none', '--build-arg', 'FLAVOUR=api', '-t', 'lb-cached:1', ctx]);
  assert.equal(cached.code, 0, cached.stderr);
  assert.equal((cached.stdout.match(/ ---> Using cache/g) ?? []).length, 14);
  assert.match(cached.stdout, new RegExp(`Successfully built ${apiId}\n`));
  // and built anew by the CLI, the same config, history and tree
  const lb = await lbp(serve.root, ['build', '--no-cache', '--network', 'none', '--build-arg', 'FLAVOUR=api', '-t', 'lb-built:1', ctx]);
  assert.equal(lb.code, 0, lb.stdout + lb.stderr);
  assert.doesNotMatch(lb.stdout, /Using cache/);
  reference = await describe('lb-built:1');
  assert.deepEqual(await describe('api-built:1'), reference);
  assert.ok(reference.tree.some(([p]) => p === 'app/unpacked/in-archive/x.txt'));
  assert.ok(!reference.tree.some(([p]) => p === 'app/ignored.txt'), '.dockerignore applies');
  // no intermediate container is left by either front
  assert.equal((await lbp(serve.root, ['ps', '-aq'])).stdout, '');
});

test("docker-py's client.images.build and docker-compose build (COMPOSE_DOCKER_CLI_BUILD=0) through layerbox serve make the same image", async () => {
  assert.ok(reference, 'the first test ran');
  const py = await run(PY, [join(SDK, 'build.py'), ctx, 'py-built:1', 'api'], serve.env);
  assert.equal(py.code, 0, py.stdout + py.stderr);
  const out = JSON.parse(py.stdout) as { id: string; tags: string[]; log: string };
  assert.deepEqual(out.tags, ['py-built:1']);
  assert.doesNotMatch(out.log, /Using cache/);
  assert.match(out.log, /Step 15\/15 : CMD \["cat \/app\/hello.txt"\]/);
  assert.deepEqual(await describe('py-built:1'), reference);

  const project = join(work, 'compose');
  cpSync(ctx, join(project, 'web'), { recursive: true });
  writeFileSync(join(project, 'docker-compose.yml'), ['version: "3.7"', 'services:', '  web:', '    build:', '      context: ./web', '      network: none', '      args:', '        FLAVOUR: api', '    image: compose-built:1', ''].join('\n'));
  const compose = await run('/usr/bin/docker-compose', ['--no-ansi', 'build', '--no-cache'], { ...serve.env, COMPOSE_DOCKER_CLI_BUILD: '0' }, undefined, project);
  assert.equal(compose.code, 0, compose.stdout + compose.stderr);
  assert.match(compose.stdout + compose.stderr, /Successfully tagged compose-built:1/);
  assert.deepEqual(await describe('compose-built:1'), reference);
});

test('docker build through layerbox serve prints what dockerd prints: the steps, a failing RUN and its exit code, -q, -f -, a Dockerfile on stdin, a syntax error, a missing base image, builder prune', async (tc) => {
  const small = join(work, 'small');
  mkdirSync(small, { recursive: true });
  writeFileSync(join(small, 'Dockerfile'), 'FROM bench/busybox:latest\nENV A=1\nCOPY f.txt /f.txt\nRUN cat /f.txt\nCMD ["sh"]\n');
  writeFileSync(join(small, 'f.txt'), 'file in the context\n');
  const scenario = async (env: NodeJS.ProcessEnv, tag: string) => {
    const t: { step: string; code: number; out: string }[] = [];
    const step = async (name: string, args: string[], input?: string) => {
      const r = await docker20(env, args, input);
      const out = (r.stdout + r.stderr)
        // dockerd's classic builder runs a container even for a metadata-only step (ENV,
        // CMD: " ---> Running in …" then "Removing intermediate container …"); layerbox
        // commits those without one. The container lines are left out on both sides.
        .replace(/^ ---> Running in [0-9a-f]{12}\n/gm, '')
        // (the client's own count; the tar it makes of a context varies by a few bytes)
        .replace(/^Sending build context to Docker daemon [^\n]*\n/m, 'Sending build context\n')
        .replace(/^Removing intermediate container [0-9a-f]{12}\n/gm, '')
        .replace(/ ---> [0-9a-f]{12}\n/g, ' ---> <id>\n')
        .replace(/(Running in|Removing intermediate container|Successfully built) [0-9a-f]{12}/g, '$1 <id>')
        .replace(/sha256:[0-9a-f]{64}/g, '<id>')
        .replace(/\.dockerfile\.[0-9a-f]+/g, '.dockerfile.<r>')
        // the builder's content checksum of a COPY source is its own (not Docker's tarsum)
        .replace(/((?:file|dir|multi):)[0-9a-f]{16}…/g, '$1<sum>…')
        .replaceAll(tag, '<tag>');
      t.push({ step: name, code: r.code, out });
    };
    await step('build', ['build', '--network', 'none', '-t', `${tag}:1`, small]);
    await step('build again (cache)', ['build', '--network', 'none', '-t', `${tag}:1`, small]);
    await step('build -q', ['build', '-q', '--network', 'none', small]);
    await step('build --no-cache -q', ['build', '--no-cache', '-q', '--network', 'none', small]);
    await step('a failing RUN', ['build', '--network', 'none', '-f', '-', small], 'FROM bench/busybox:latest\nRUN echo about to fail && exit 3\n');
    await step('a Dockerfile on stdin, no context', ['build', '--network', 'none', '-'], 'FROM bench/busybox:latest\nLABEL from=stdin\n');
    await step('a syntax error', ['build', '--network', 'none', '-'], 'FROM bench/busybox:latest\nNOPE something\n');
    await step('a missing base image', ['build', '--network', 'none', '-'], 'FROM 127.0.0.1:1/missing/base:1\n');
    await step('a COPY source outside the context', ['build', '--network', 'none', '-f', '-', small], 'FROM bench/busybox:latest\nCOPY ../x /x\n');
    await step('inspect', ['image', 'inspect', '--format', '{{.Config.Cmd}} {{.Config.Env}} {{len .RootFS.Layers}}', `${tag}:1`]);
    await step('history', ['history', '--format', '{{.CreatedBy}} | {{.Size}}', `${tag}:1`]);
    return t;
  };
  const ours = await scenario(serve.env, 'lbsmall');
  const s = Object.fromEntries(ours.map((x) => [x.step, x]));
  assert.equal(s['build']!.code, 0, s['build']!.out);
  assert.match(s['build -q']!.out, /^<id>\n$/);
  assert.equal(s['a failing RUN']!.code, 3);
  assert.match(s['a failing RUN']!.out, /about to fail\n/);
  assert.match(s['a failing RUN']!.out, /The command '\/bin\/sh -c echo about to fail && exit 3' returned a non-zero code: 3\n$/);
  assert.equal(s['a syntax error']!.code, 1);
  assert.equal(s['a missing base image']!.code, 1);
  if (!dockerd) {
    tc.diagnostic('docker.io is not installed: no comparison with dockerd');
    return;
  }
  const theirs = await scenario(dockerd.env, 'dksmall');
  for (const [i, step] of theirs.entries()) {
    const mine = ours[i]!;
    if (step.step === 'a missing base image') {
      // the registry's words differ; the exit code and the first line do not
      assert.equal(mine.code, step.code);
      assert.equal(mine.out.split('\n')[0], step.out.split('\n')[0]);
      continue;
    }
    assert.deepEqual(mine, step, `step "${step.step}": layerbox and dockerd differ`);
  }
  tc.diagnostic(`compared with dockerd 20.10: ${theirs.length} steps`);
});

test('docker builder prune and system df through layerbox serve', async () => {
  const before = await serve.docker(['system', 'df', '--format', '{{.Type}} {{.TotalCount}}']);
  assert.match(before.stdout, /Build Cache [1-9]\d*\n/);
  const p = await serve.docker(['builder', 'prune', '-a', '-f']);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /Total reclaimed space: /);
  const after = await serve.docker(['system', 'df', '--format', '{{.Type}} {{.TotalCount}}']);
  assert.match(after.stdout, /Build Cache 0\n/);
});
