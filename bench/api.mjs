#!/usr/bin/env node
// The Engine API (issue 11): the same docker CLI against `layerbox serve` and against a
// private dockerd, paired in one run — `docker run --rm busybox true`, `docker images`,
// `docker ps -a`, and 100 `GET /containers/json?all=1` (100 curl processes over the unix
// socket, and one curl sending all 100 on one keep-alive connection: the server's own share)
// — plus each server's RSS idle and after 1,000 more requests (it must not grow).
//
// Times are wall clock around each command (hrtime; /usr/bin/time's %e has 10 ms steps, too
// coarse for a 40 ms `docker images`). The list workloads run with LIST_CONTAINERS created
// (never started) containers in each server, so the container list has something to list.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LB, REPO, env, paired, report, sh, startDockerd } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
// the sub-0.1 s workloads: one run's σ is ~10% of a 40 ms `docker ps` (Go start-up, the
// scheduler), so a ratio near 1 needs ~100 rounds to be told from noise; they cost seconds
const FAST_ROUNDS = 10 * ROUNDS;
const LIST_CONTAINERS = Number(process.env.BENCH_LIST_CONTAINERS ?? 10);
const DOCKER = '/usr/bin/docker';
const FIXTURE = join(REPO, 'fixtures', 'busybox-base.docker.tar');
const IMG = 'bench/busybox:latest';

const root = mkdtempSync('/var/tmp/lb-bench-api-');
const sock = `${root}.sock`;
const dockerConfig = mkdtempSync('/tmp/lb-bench-api-cli-'); // no ~/.docker: the same CLI config for both
const cliEnv = { ...env, DOCKER_CONFIG: dockerConfig };
// the server's output goes to a file: a pipe nobody reads would stall it once full
const log = openSync(`${root}.log`, 'w');
const server = spawn(process.execPath, [LB, '--root', root, 'serve', '-H', `unix://${sock}`], { env, stdio: ['ignore', log, log] });
const lbEnv = { DOCKER_HOST: `unix://${sock}`, DOCKER_API_VERSION: '1.41' };
for (let i = 0; i < 100 && spawnSync(DOCKER, ['version'], { env: { ...cliEnv, ...lbEnv } }).status !== 0; i++) spawnSync('sleep', ['0.1']);
/** RSS and its anonymous part (RssAnon: without the mapped binary and libraries, which other processes share), MiB. */
const rssOf = (pid) => {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(st)?.[1] ?? NaN) / 1024;
  return { rss: kib('VmRSS'), anon: kib('RssAnon') };
};
const fmtRss = (m) => `${m.rss.toFixed(1)} (anon ${m.anon.toFixed(1)})`;

const dockerd = startDockerd('/tmp/layerbox-bench-api-docker');
const dEnv = dockerd?.env;
const dsock = dEnv?.DOCKER_HOST.slice('unix://'.length);

/** Wall seconds of one shell command (hrtime around it), in the shape lib's paired() takes. */
function wall(cmd, extra) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', cmd], { env: { ...cliEnv, ...extra }, encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`failed (${r.status}): ${cmd}\n${r.stderr.slice(-2000)}`);
  return { seconds, rssKiB: NaN };
}
const dk = (cmd, e) => sh(`${DOCKER} ${cmd}`, { env: { ...cliEnv, ...e } });
const requests = (s, n) => `for i in $(seq ${n}); do curl -sf --unix-socket ${s} 'http://d/v1.41/containers/json?all=1' >/dev/null; done`;
const keepAlive = (s, n) => `set -f; curl -sf --unix-socket ${s} $(for i in $(seq ${n}); do printf ' http://d/v1.41/containers/json?all=1'; done) >/dev/null`;
const settleRss = (pid) => {
  spawnSync('sleep', ['1']);
  return rssOf(pid);
};

const servers = [{ name: 'layerbox serve', env: lbEnv, sock, pid: server.pid }];
if (dEnv) servers.push({ name: 'dockerd', env: dEnv, sock: dsock, pid: dockerd.pid });
try {
  const idle = Object.fromEntries(servers.map((s) => [s.name, settleRss(s.pid)])); // after start and `docker version`
  for (const s of servers) {
    dk(`load -q -i ${FIXTURE}`, s.env);
    dk(`run --rm --network none ${IMG} true`, s.env); // warm-up (code cache, runtime detection)
  }
  const lines = [
    `docker CLI ${dk(`version --format '{{.Client.Version}}'`, lbEnv).trim()} (${DOCKER}) against each server` +
      (dEnv ? ` (dockerd ${dk(`version --format '{{.Server.Version}}'`, dEnv).trim()}, overlay2, private data root and socket)` : ' (no dockerd installed: no ratios)') +
      `; paired rounds (the servers alternate, ratios are medians of per-round ratios); median wall seconds.`,
    `The list workloads run with ${LIST_CONTAINERS} created (not started) containers in each server.`,
    '',
  ];
  const cases = [
    ['docker run --rm busybox true (bridge)', ROUNDS, (s) => `${DOCKER} run --rm ${IMG} true`],
    ['docker run --rm --network none busybox true', ROUNDS, (s) => `${DOCKER} run --rm --network none ${IMG} true`],
    ['docker images', FAST_ROUNDS, (s) => `${DOCKER} images`],
    ['docker ps -a', FAST_ROUNDS, (s) => `${DOCKER} ps -a`],
    ['100 × GET /containers/json?all=1 (100 curl processes)', 2 * ROUNDS, (s) => requests(s.sock, 100)],
    ['100 × GET /containers/json?all=1 (one keep-alive connection)', FAST_ROUNDS, (s) => keepAlive(s.sock, 100)],
  ];
  /** The middle half of the per-round ratios: a ratio whose span holds 1 is a tie within the noise. */
  const spread = (rs) => {
    const q = [...rs].sort((a, b) => a - b);
    const at = (f) => q[Math.min(q.length - 1, Math.floor(f * q.length))];
    return `${at(0.25).toFixed(2)}–${at(0.75).toFixed(2)}`;
  };
  lines.push('| workload | layerbox serve s | dockerd s | ratio layerbox/dockerd | ratio quartiles | rounds | layerbox min–max | dockerd min–max |', '|---|---|---|---|---|---|---|---|');
  for (const [name, rounds, cmd] of cases) {
    if (name.startsWith('docker images')) {
      for (const s of servers) for (let i = 0; i < LIST_CONTAINERS; i++) dk(`create --name bench-api-${i} --network none ${IMG} true`, s.env);
    }
    process.stderr.write(`${name}\n`);
    const contenders = servers.map((s) => ({ name: s.name, run: () => wall(cmd(s), s.env) }));
    for (const c of contenders) c.run(); // one unmeasured run each
    const r = paired(contenders, rounds, { base: dEnv ? 'dockerd' : 'layerbox serve', settleEach: false });
    const range = (n) => (r[n] ? `${Math.min(...r[n].runs).toFixed(3)}–${Math.max(...r[n].runs).toFixed(3)}` : '');
    const d = r.dockerd;
    const lb = r['layerbox serve'];
    lines.push(`| ${name} | ${lb.median.toFixed(3)} | ${d ? d.median.toFixed(3) : ''} | ${d ? lb.ratioToBase.toFixed(2) : ''} | ${d ? spread(lb.ratios) : ''} | ${rounds} | ${range('layerbox serve')} | ${range('dockerd')} |`);
  }
  const before = Object.fromEntries(servers.map((s) => [s.name, settleRss(s.pid)]));
  for (const s of servers) sh(keepAlive(s.sock, 1000));
  const after = Object.fromEntries(servers.map((s) => [s.name, settleRss(s.pid)]));
  for (const s of servers) sh(requests(s.sock, 1000));
  const after2 = Object.fromEntries(servers.map((s) => [s.name, settleRss(s.pid)]));
  lines.push(
    '',
    '| server RSS MiB | idle after start | before the 1,000 requests (after the workloads above) | after 1,000 more (one connection) | after 1,000 more (1,000 connections) |',
    '|---|---|---|---|---|',
    ...servers.map((s) => `| ${s.name} | ${fmtRss(idle[s.name])} | ${fmtRss(before[s.name])} | ${fmtRss(after[s.name])} | ${fmtRss(after2[s.name])} |`),
    '',
    `Targets (issue 11): layerbox serve under 80 MiB, not growing. RSS counts the mapped node (or dockerd) binary and libraries; anon is the process's own memory. dockerd's figure is dockerd alone (its containerd is a process of its own).`,
  );
  for (const s of servers) dk(`rm -f ${Array.from({ length: LIST_CONTAINERS }, (_, i) => `bench-api-${i}`).join(' ')}`, s.env);
  report('api', 'Engine API: the docker CLI against layerbox serve and dockerd', lines);
} finally {
  for (const s of servers) sh(`${DOCKER} ps -aq --filter name=bench-api- | xargs -r ${DOCKER} rm -f >/dev/null`, { env: { ...cliEnv, ...s.env }, allowFail: true });
  server.kill('SIGTERM');
  dockerd?.stop();
  spawnSync('sleep', ['1']);
  for (const dir of [root, '/tmp/layerbox-bench-api-docker']) {
    sh(`grep -o " ${dir}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`, { allowFail: true });
  }
  for (const p of [root, `${root}.log`, dockerConfig, '/tmp/layerbox-bench-api-docker', '/tmp/layerbox-bench-api-docker-exec']) rmSync(p, { recursive: true, force: true });
}
