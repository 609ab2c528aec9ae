#!/usr/bin/env node
// The Engine API (issue 11): the same docker CLI against `layerbox serve` and against a
// private dockerd, paired in one run — `docker run --rm busybox true`, `docker images`,
// `docker ps`, and a loop of 100 `GET /containers/json` (curl over the unix socket) — plus
// the server's idle RSS and its RSS after 1,000 requests (it must not grow).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LB, REPO, env, fmtRow, have, paired, report, sh, startDockerd, timed } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const DOCKER = have('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
const FIXTURE = join(REPO, 'fixtures', 'busybox-base.docker.tar');
const IMG = 'bench/busybox:latest';

const root = mkdtempSync('/var/tmp/lb-bench-api-');
const sock = `${root}.sock`;
const server = spawn(process.execPath, [LB, '--root', root, 'serve', '-H', `unix://${sock}`], { env, stdio: ['ignore', 'ignore', 'pipe'] });
const lbEnv = { DOCKER_HOST: `unix://${sock}`, DOCKER_API_VERSION: '1.41' };
for (let i = 0; i < 100 && spawnSync(DOCKER, ['version'], { env: { ...env, ...lbEnv } }).status !== 0; i++) spawnSync('sleep', ['0.1']);
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

const dockerd = startDockerd('/tmp/layerbox-bench-api-docker');
const dEnv = dockerd?.env;
try {
  sh(`${DOCKER} load -q -i ${FIXTURE}`, { env: lbEnv });
  if (dEnv) sh(`${DOCKER} load -q -i ${FIXTURE}`, { env: dEnv });
  sh(`${DOCKER} run --rm --network none ${IMG} true`, { env: lbEnv }); // warm-up (code cache, runtime detection)
  if (dEnv) sh(`${DOCKER} run --rm --network none ${IMG} true`, { env: dEnv });
  const lines = [`docker CLI ${sh(`${DOCKER} version --format '{{.Client.Version}}'`, { env: lbEnv }).trim()} against each server; ${ROUNDS} paired rounds; medians in seconds.`, ''];
  const cases = [
    ['docker run --rm busybox true (bridge)', `${DOCKER} run --rm ${IMG} true`],
    ['docker run --rm --network none busybox true', `${DOCKER} run --rm --network none ${IMG} true`],
    ['docker images', `${DOCKER} images`],
    ['docker ps', `${DOCKER} ps -a`],
    ['100 × GET /containers/json', `for i in $(seq 100); do curl -s --unix-socket SOCK http://d/v1.41/containers/json >/dev/null; done`],
  ];
  lines.push('| workload | server | median s | ratio to dockerd | peak RSS (CLI) MiB | runs |', '|---|---|---|---|---|---|');
  for (const [name, cmd] of cases) {
    const contenders = [{ name: 'layerbox serve', run: () => timed(cmd.replace('SOCK', sock), { env: lbEnv }) }];
    if (dEnv) contenders.push({ name: 'dockerd', run: () => timed(cmd.replace('SOCK', dEnv.DOCKER_HOST.slice(7)), { env: dEnv }) });
    const r = paired(contenders, ROUNDS, { base: dEnv ? 'dockerd' : 'layerbox serve', settleEach: false });
    for (const c of contenders) lines.push(fmtRow(`${name} | ${c.name}`, r[c.name]));
  }
  const idle = rss();
  sh(`for i in $(seq 1000); do curl -s --unix-socket ${sock} http://d/v1.41/containers/json >/dev/null; done`);
  const after = rss();
  lines.push('', `layerbox serve RSS: idle ${idle.toFixed(1)} MiB, after 1,000 more requests ${after.toFixed(1)} MiB (target: under 80 MiB, not growing).`);
  report('api', 'Engine API: the docker CLI against layerbox serve and dockerd', lines);
} finally {
  server.kill('SIGTERM');
  dockerd?.stop();
  spawnSync('sleep', ['1']);
  sh(`grep -o " ${root}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`, { allowFail: true });
  rmSync(root, { recursive: true, force: true });
}
