// Issue 5 benchmark: commit of a Debian container that installed vim (~130 MB / ~2,300
// entries of changes) — layerbox commit vs docker commit vs podman commit; and diff of that
// container vs docker diff / podman diff. A stamp file makes every commit new content.
//   node bench/commit.mjs   (BENCH_RUNS=5)
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LB, sh, timed, paired, startDockerd, report, fmtRow, podmanAt } from './lib.mjs';
import { benchImages } from './images.mjs';

const runs = Number(process.env.BENCH_RUNS ?? 5);
const imgs = benchImages();
const work = mkdtempSync('/var/tmp/lb-bench-commit-');
const lbRoot = join(work, 'lb-root');
const IMG = 'bench/debian:base';
const INSTALL = `sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends vim >/dev/null && rm -rf /var/lib/apt/lists/*'`;
sh(`${LB} --root ${lbRoot} load -q -i ${imgs.base}`);
sh(`${LB} --root ${lbRoot} run --name vimctr ${IMG} ${INSTALL}`);
const upper = JSON.parse(sh(`${LB} --root ${lbRoot} inspect vimctr`))[0].GraphDriver.Data.UpperDir;
const docker = startDockerd();
let dockerUpper;
if (docker) {
  sh(`docker load -q -i ${imgs.base}`, { env: docker.env });
  sh(`docker run --network host --name vimctr ${IMG} ${INSTALL}`, { env: docker.env });
  dockerUpper = JSON.parse(sh('docker inspect vimctr', { env: docker.env }))[0].GraphDriver.Data.UpperDir;
}
const podman = podmanAt(join(work, 'podman-root'), join(work, 'podman-run'), work);
if (podman) {
  sh(`${podman.cmd} load -q -i ${imgs.base}`, { env: podman.env });
  sh(`${podman.cmd} run --network host --name vimctr ${IMG} ${INSTALL}`, { env: podman.env });
  podman.upper = JSON.parse(sh(`${podman.cmd} inspect vimctr`, { env: podman.env }))[0].GraphDriver.Data.UpperDir;
}
const size = sh(`du -sb ${upper} | cut -f1`).trim();
const entries = sh(`find ${upper} | wc -l`).trim();
const lines = [`Container layer: ${size} bytes, ${entries} entries (apt-get install --no-install-recommends vim). ${runs} paired runs.`, ''];
{
  let n = 0;
  const c = [{ name: 'layerbox commit', run: () => { sh(`date +%s%N > ${upper}/commit-stamp`); return timed(`${LB} --root ${lbRoot} commit vimctr bench/commit:lb${n++}`); } }];
  if (docker) c.push({ name: 'docker commit', run: () => { sh(`date +%s%N > ${dockerUpper}/commit-stamp`); return timed(`docker commit vimctr bench/commit:docker${n++}`, { env: docker.env }); } });
  if (podman) c.push({ name: 'podman commit', run: () => { sh(`date +%s%N > ${podman.upper}/commit-stamp`); return timed(`${podman.cmd} commit -q vimctr bench/commit:podman${n++}`, { env: podman.env }); } });
  const res = paired(c, runs, { base: docker ? 'docker commit' : 'layerbox commit', settleEach: false });
  lines.push('## commit (new content each time)', '', '| tool | median s | ratio | peak RSS MiB | runs |', '|---|---|---|---|---|', ...Object.entries(res).map(([k, v]) => fmtRow(k, v)), '');
}
{
  const c = [{ name: 'layerbox diff', run: () => timed(`${LB} --root ${lbRoot} diff vimctr >/dev/null`) }];
  if (docker) c.push({ name: 'docker diff', run: () => timed('docker diff vimctr >/dev/null', { env: docker.env }) });
  if (podman) c.push({ name: 'podman diff', run: () => timed(`${podman.cmd} diff vimctr >/dev/null`, { env: podman.env }) });
  const res = paired(c, Math.max(runs, 10), { base: docker ? 'docker diff' : 'layerbox diff', settleEach: false });
  lines.push('## diff', '', '| tool | median s | ratio | peak RSS MiB | runs |', '|---|---|---|---|---|', ...Object.entries(res).map(([k, v]) => fmtRow(k, v)), '');
}
if (docker) sh('docker rm -f vimctr', { env: docker.env, allowFail: true });
if (podman) sh(`${podman.cmd} rm -f vimctr`, { env: podman.env, allowFail: true });
docker?.stop();
report('commit', 'commit and diff (issue 5)', lines);
sh(`${LB} --root ${lbRoot} rm -f vimctr`, { allowFail: true });
rmSync(work, { recursive: true, force: true });
