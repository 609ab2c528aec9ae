// Issue 12 benchmark: `build` — layerbox vs docker's classic builder (DOCKER_BUILDKIT=0, a
// private dockerd without a bridge: RUN steps use --network none in both) vs buildah (when
// installed), paired, on: a fully cached rebuild of a 10-step Dockerfile; a cold build of it
// (--no-cache); a COPY of a 100 MB context of 5,000 files (--no-cache).
//   node bench/build.mjs   (BENCH_RUNS=5)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { LB, REPO, env, have, sh, timed, paired, report, fmtRow } from './lib.mjs';

const runs = Number(process.env.BENCH_RUNS ?? 5);
const BASE = join(REPO, 'fixtures', 'busybox-base.docker.tar');
const work = mkdtempSync('/var/tmp/lb-bench-build-');
const lbRoot = join(work, 'lb-root');

// the 10-step file: metadata, COPY and RUN steps
const ten = join(work, 'ten');
mkdirSync(ten);
writeFileSync(join(ten, 'a.txt'), 'a\n');
writeFileSync(join(ten, 'b.txt'), 'b\n'.repeat(1000));
writeFileSync(
  join(ten, 'Dockerfile'),
  `FROM bench/busybox:latest
ARG VERSION=1
ENV APP=/app PATH=/app/bin:$PATH
LABEL org.example.version=$VERSION
WORKDIR /app
COPY a.txt ./
RUN mkdir -p bin && echo 'echo hi' > bin/hi && chmod +x bin/hi
COPY b.txt ./data/
RUN wc -l data/b.txt > count.txt
EXPOSE 8080
CMD ["hi"]
`,
);
// 5,000 files of 20 kB (100 MB) in 50 directories
const big = join(work, 'big');
for (let d = 0; d < 50; d++) {
  mkdirSync(join(big, `d${d}`), { recursive: true });
  for (let f = 0; f < 100; f++) writeFileSync(join(big, `d${d}`, `f${f}`), randomBytes(20000));
}
writeFileSync(join(big, 'Dockerfile'), 'FROM bench/busybox:latest\nCOPY . /data/\n');
writeFileSync(join(big, '.dockerignore'), 'Dockerfile\n');

sh(`${LB} --root ${lbRoot} load -q -i ${BASE}`);

function startDockerd() {
  if (!have('dockerd') || !have('docker')) return undefined;
  const root = join(work, 'docker');
  const sock = join(root, 'docker.sock');
  mkdirSync(root, { recursive: true });
  const child = spawn('dockerd', ['--data-root', join(root, 'data'), '--exec-root', join(root, 'exec'), '--pidfile', join(root, 'pid'), '-H', `unix://${sock}`, '--bridge=none', '--iptables=false', '--ip-masq=false', '--storage-driver=overlay2'], { stdio: 'ignore', detached: true });
  const denv = { DOCKER_HOST: `unix://${sock}`, DOCKER_API_VERSION: '1.41', DOCKER_BUILDKIT: '0' };
  for (let i = 0; i < 150; i++) {
    if (spawnSync('docker', ['info'], { env: { ...env, ...denv } }).status === 0) {
      return { env: denv, stop: () => { try { process.kill(child.pid, 'SIGTERM'); } catch {} spawnSync('sleep', ['3']); sh(`grep -o " ${root}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`, { allowFail: true }); } };
    }
    spawnSync('sleep', ['0.2']);
  }
  try { process.kill(child.pid, 'SIGKILL'); } catch {}
  return undefined;
}

const docker = startDockerd();
if (docker) sh(`docker load -q -i ${BASE}`, { env: docker.env });
const buildah = have('buildah') ? `buildah --root ${join(work, 'buildah-root')} --runroot ${join(work, 'buildah-run')} --storage-driver overlay` : undefined;
if (buildah) sh(`${buildah} pull docker-archive:${BASE}`, { allowFail: true });

const lbBuild = (args) => `${LB} --root ${lbRoot} build -q --network none ${args}`;
const dkBuild = (args) => `docker build -q --network none ${args}`;
const bhBuild = (args) => `${buildah} bud --layers --isolation chroot --network none -q ${args}`;

const lines = [`Paired runs: ${runs}. docker: dockerd ${docker ? sh('dockerd --version').trim() : 'not installed'}, classic builder (DOCKER_BUILDKIT=0). buildah: ${buildah ? sh('buildah --version').trim() : 'not installed'}.`, ''];
const table = (title, res) => {
  lines.push(`## ${title}`, '', '| tool | median s | ratio to docker | peak RSS MiB | runs |', '|---|---|---|---|---|');
  for (const [n, r] of Object.entries(res)) lines.push(fmtRow(n, r));
  lines.push('');
};

// warm every cache once
sh(lbBuild(`-t bench/ten ${ten}`));
if (docker) sh(dkBuild(`-t bench/ten ${ten}`), { env: docker.env });
if (buildah) sh(bhBuild(`-t bench/ten ${ten}`), { allowFail: true });

const contenders = (args) => {
  const c = [{ name: 'layerbox', run: () => timed(lbBuild(args)) }];
  if (docker) c.push({ name: 'docker', run: () => timed(dkBuild(args), { env: docker.env }) });
  if (buildah) c.push({ name: 'buildah', run: () => timed(bhBuild(args)) });
  return c;
};
const base = docker ? 'docker' : 'layerbox';
table('Fully cached rebuild, 10 steps', paired(contenders(`-t bench/ten ${ten}`), runs, { base, settleEach: false }));
table('Cold build, 10 steps (--no-cache)', paired(contenders(`--no-cache -t bench/ten-cold ${ten}`), runs, { base, settleEach: false }));
table('COPY of a 100 MB context of 5,000 files (--no-cache)', paired(contenders(`--no-cache -t bench/big ${big}`), runs, { base, settleEach: false }));

report('build', 'build: layerbox vs docker (classic builder) vs buildah', lines);
docker?.stop();
sh(`grep -o " ${work}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`, { allowFail: true });
rmSync(work, { recursive: true, force: true });
