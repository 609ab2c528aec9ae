// Issue 4 benchmark: `run --rm IMAGE true` latency — layerbox vs docker vs podman vs the bare
// runtime (`runc run` of a prepared bundle: the floor), with the default bridge network and
// with --network none; the `run -d` + `stop` cycle; memory per running container.
//   node bench/run.mjs   (BENCH_RUNS=10)
import { mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LB, sh, timed, paired, startDockerd, report, fmtRow, podmanAt } from './lib.mjs';
import { benchImages } from './images.mjs';

const runs = Number(process.env.BENCH_RUNS ?? 10);
const imgs = benchImages();
const work = mkdtempSync('/var/tmp/lb-bench-run-');
const lbRoot = join(work, 'lb-root');
const IMG = 'bench/debian:base';
sh(`${LB} --root ${lbRoot} load -q -i ${imgs.base}`);
const docker = startDockerd();
if (docker) sh(`docker load -q -i ${imgs.base}`, { env: docker.env });
const podman = podmanAt(join(work, 'podman-root'), join(work, 'podman-run'), work);
if (podman) {
  sh(`${podman.cmd} load -q -i ${imgs.base}`, { env: podman.env });
}
// the floor: runc run of a bundle whose rootfs is the unpacked image
const bundle = join(work, 'bundle');
mkdirSync(join(bundle, 'rootfs'), { recursive: true });
sh(`tar -C ${bundle}/rootfs -xf ${imgs.base} --wildcards '*/layer.tar' -O | tar -C ${bundle}/rootfs -xf -`);
sh(`cd ${bundle} && runc spec`);
const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
spec.process.args = ['/bin/true'];
spec.process.terminal = false;
spec.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }];
writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));

const lines = [`${runs} paired runs, median wall time of the whole command. Ratios to docker.`, ''];
for (const net of ['bridge', 'none']) {
  const c = [
    { name: `layerbox run --rm (${net})`, run: () => timed(`${LB} --root ${lbRoot} run --rm --network ${net} ${IMG} true`) },
  ];
  if (docker) c.push({ name: `docker run --rm (${net})`, run: () => timed(`docker run --rm --network ${net} ${IMG} true`, { env: docker.env }) });
  if (podman) c.push({ name: `podman run --rm (${net})`, run: () => timed(`${podman.cmd} run --rm --network ${net} ${IMG} true`, { env: podman.env }) });
  if (net === 'none') c.push({ name: 'runc run (bare runtime, floor)', run: () => timed(`cd ${bundle} && runc run bench-floor-$$`) });
  const res = paired(c, runs, { base: docker ? `docker run --rm (${net})` : c[0].name, settleEach: false });
  lines.push(`## run --rm true, network ${net}`, '', '| tool | median s | ratio | peak RSS MiB | runs |', '|---|---|---|---|---|', ...Object.entries(res).map(([n, v]) => fmtRow(n, v)), '');
}
// run -d + stop cycle
{
  const c = [{ name: 'layerbox run -d + stop + rm', run: () => timed(`id=$(${LB} --root ${lbRoot} run -d ${IMG} sleep 100) && ${LB} --root ${lbRoot} stop -t 1 $id >/dev/null && ${LB} --root ${lbRoot} rm $id >/dev/null`) }];
  if (docker) c.push({ name: 'docker run -d + stop + rm', run: () => timed(`id=$(docker run -d ${IMG} sleep 100) && docker stop -t 1 $id >/dev/null && docker rm $id >/dev/null`, { env: docker.env }) });
  const res = paired(c, Math.max(3, Math.floor(runs / 2)), { base: docker ? 'docker run -d + stop + rm' : c[0].name, settleEach: false });
  lines.push('## run -d, stop (sleep ignores SIGTERM: stop -t 1 kills after 1 s), rm', '', '| tool | median s | ratio | peak RSS MiB | runs |', '|---|---|---|---|---|', ...Object.entries(res).map(([n, v]) => fmtRow(n, v)), '');
}
// memory per running container: what stays on the host per container
{
  const N = 5;
  const ids = [];
  for (let i = 0; i < N; i++) ids.push(sh(`${LB} --root ${lbRoot} run -d ${IMG} sleep 1000`).trim());
  const rss = (pattern) => Number(sh(`ps -eo rss,args | grep -E '${pattern}' | grep -v grep | awk '{s+=$1} END {print s+0}'`).trim());
  const ours = rss('^ *[0-9]+ /usr/bin/conmon');
  lines.push(`## memory per running container (${N} detached containers)`, '', `- layerbox: no Node process stays; conmon per container: ${(ours / N / 1024).toFixed(1)} MiB RSS`);
  sh(`${LB} --root ${lbRoot} rm -f ${ids.join(' ')}`);
  if (docker) {
    const dids = [];
    for (let i = 0; i < N; i++) dids.push(sh(`docker run -d ${IMG} sleep 1000`, { env: docker.env }).trim());
    const shim = rss('containerd-shim');
    lines.push(`- docker: containerd-shim per container: ${(shim / N / 1024).toFixed(1)} MiB RSS (plus dockerd and containerd)`);
    sh(`docker rm -f ${dids.join(' ')}`, { env: docker.env });
  }
  lines.push('');
}
docker?.stop();
report('run', 'container start latency (issue 4)', lines);
sh(`${LB} --root ${lbRoot} ps -aq | xargs -r ${LB} --root ${lbRoot} rm -f`, { allowFail: true });
rmSync(work, { recursive: true, force: true });
