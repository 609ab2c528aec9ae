// Issue 2 benchmark: `layerbox load` of a Debian bookworm minbase docker-archive against
// `docker load` and `skopeo copy docker-archive: oci:` + `umoci unpack`; layer extraction
// against `tar -xf` of the same tar (the floor); peak memory.
// The stores and extraction targets live on a fresh journaled ext4 (BENCH_FS=journal, the
// default; see benchFs in lib.mjs), or on the root file system, settled 65 s before each run
// (BENCH_FS=root).
//   node bench/load.mjs            (BENCH_ROUNDS=3, BENCH_FS=journal|root)
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LB, env, have, sh, timed, paired, startDockerd, debianRootfs, report, fmtRow, benchFs } from './lib.mjs';

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const work = mkdtempSync('/var/tmp/lb-bench-load-');
const rootfs = debianRootfs();
const rootTar = join(work, 'rootfs.tar');
sh(`tar --numeric-owner -C ${rootfs} -cf ${rootTar} .`);
// the docker-archive: made by layerbox itself (import + save), the same bytes for every tool
const mk = join(work, 'mk-root');
sh(`${LB} --root ${mk} import ${rootTar} bench/debian:base >/dev/null && ${LB} --root ${mk} save -o ${join(work, 'debian.docker.tar')} bench/debian:base`);
rmSync(mk, { recursive: true, force: true });
const archive = join(work, 'debian.docker.tar');
const fs = benchFs('load');
const stores = fs.dir;
const settleSeconds = fs.journal ? 0 : undefined;

const lbRoot = join(stores, 'lb-root');
const contenders = [
  {
    name: 'layerbox load',
    prepare: () => rmSync(lbRoot, { recursive: true, force: true }),
    run: () => timed(`${LB} --root ${lbRoot} load -q -i ${archive}`),
  },
];
const docker = startDockerd(join(stores, 'docker'));
if (docker) {
  contenders.push({
    name: 'docker load',
    prepare: () => sh('docker rmi -f bench/debian:base >/dev/null 2>&1; true', { env: docker.env }),
    run: () => timed(`docker load -q -i ${archive}`, { env: docker.env }),
  });
}
if (have('skopeo') && have('umoci')) {
  const oci = join(stores, 'oci');
  const bundle = join(stores, 'bundle');
  contenders.push({
    name: 'skopeo copy + umoci unpack',
    prepare: () => rmSync(oci, { recursive: true, force: true }) || rmSync(bundle, { recursive: true, force: true }),
    run: () => timed(`skopeo copy -q docker-archive:${archive} oci:${oci}:base && umoci unpack --image ${oci}:base ${bundle}`),
  });
}
const loadRes = paired(contenders, rounds, { base: docker ? 'docker load' : 'layerbox load', settleSeconds });
docker?.stop();

// extraction alone: the engine's applier against GNU tar on the same uncompressed tar
const x1 = join(stores, 'x-lb');
const x2 = join(stores, 'x-tar');
const extract = paired(
  [
    { name: 'layerbox unpack (apply + diffID + tar-split)', prepare: () => rmSync(x1, { recursive: true, force: true }), run: () => timed(`node ${join(LB, '..', '..', 'bench', 'unpack-one.mjs')} ${rootTar} ${x1}`) },
    { name: 'tar -xf', prepare: () => { rmSync(x2, { recursive: true, force: true }); sh(`mkdir -p ${x2}`); }, run: () => timed(`tar -xf ${rootTar} -C ${x2}`) },
  ],
  rounds,
  { base: 'tar -xf', settleSeconds },
);

const lines = [
  `Debian bookworm minbase: ${sh(`du -sb ${rootTar} | cut -f1`).trim()} byte tar, ${sh(`tar -tf ${rootTar} | wc -l`).trim()} entries. ${rounds} paired rounds; ` + (fs.journal ? 'stores on a fresh journaled ext4 (loop device), disk synced before each run.' : `disk settled (sync + ${process.env.BENCH_SETTLE ?? 65} s) before each run.`),
  '',
  '## load',
  '',
  '| tool | median s | ratio | peak RSS MiB | runs |',
  '|---|---|---|---|---|',
  ...Object.entries(loadRes).map(([k, v]) => fmtRow(k, v)),
  docker ? '' : '\n(docker not measured: no dockerd on this machine)',
  '',
  '## extraction of the same tar',
  '',
  '| tool | median s | ratio to tar | peak RSS MiB | runs |',
  '|---|---|---|---|---|',
  ...Object.entries(extract).map(([k, v]) => fmtRow(k, v)),
];
report('load', 'load and extraction (issue 2)', lines);
rmSync(work, { recursive: true, force: true });
fs.cleanup();
