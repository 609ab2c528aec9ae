// Issue 3 benchmark: pull from a local registry (Debian's docker-registry on 127.0.0.1) of
// debian:base (1 layer), debian:vim (2 layers) and many:10 (11 layers), each tool starting
// from an empty local store: layerbox pull vs docker pull, podman pull, skopeo copy (to an
// OCI layout, i.e. without unpacking). Paired rounds. The stores live on a fresh journaled
// ext4 (BENCH_FS=journal, the default; see benchFs) and the disk is synced before each run;
// with BENCH_FS=root they live on the root file system and the disk settles 65 s before each
// run (ext4 without a journal skips recently deleted inodes: ANCHORS.md).
//   node bench/pull.mjs   (BENCH_ROUNDS=3, BENCH_FS=journal|root, BENCH_IMAGES=base,vim,many)
import { mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { LB, sh, have, timed, paired, startDockerd, report, fmtRow, benchFs, podmanAt } from './lib.mjs';
import { benchImages } from './images.mjs';

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const which = (process.env.BENCH_IMAGES ?? 'base,vim,many').split(',');
const imgs = benchImages();
const work = mkdtempSync('/var/tmp/lb-bench-pull-');
const fs = benchFs('pull');
const stores = fs.dir;
const settleSeconds = fs.journal ? 0 : undefined;

// the registry
const port = 5000 + Math.floor(Math.random() * 1000);
mkdirSync(join(work, 'registry'));
writeFileSync(join(work, 'registry.yml'), `version: 0.1\nlog: { level: error, accesslog: { disabled: true } }\nstorage: { filesystem: { rootdirectory: ${work}/registry } }\nhttp: { addr: 127.0.0.1:${port} }\n`);
const reg = spawn('/usr/bin/docker-registry', ['serve', join(work, 'registry.yml')], { stdio: 'ignore' });
sh(`for i in $(seq 50); do curl -fs http://127.0.0.1:${port}/v2/ >/dev/null && exit 0; sleep 0.1; done; exit 1`);
const R = `127.0.0.1:${port}`;

// push the images with layerbox (gzip)
const seed = join(work, 'seed');
const names = { base: 'bench/debian:base', vim: 'bench/debian:vim', many: 'bench/many:10' };
for (const k of which) {
  sh(`${LB} --root ${seed} load -q -i ${imgs[k]}`);
  sh(`${LB} --root ${seed} tag ${names[k]} ${R}/${names[k]} && ${LB} --root ${seed} push -q ${R}/${names[k]}`);
}
rmSync(seed, { recursive: true, force: true });

const docker = startDockerd(join(stores, 'docker'));
const podman = podmanAt(join(stores, 'podman-root'), join(work, 'podman-run'), work);

const lines = [
  `Local registry on ${R}; each tool starts from an empty store; ${rounds} paired rounds; ` +
    (fs.journal ? 'stores on a fresh journaled ext4 (loop device), disk synced before each run.' : `stores on the root file system, disk settled (sync + ${process.env.BENCH_SETTLE ?? 65} s) before each run.`),
  `Ratios are to docker pull (median of per-round ratios). Peak RSS is the largest process of the tool's own command (dockerd not counted).`,
  '',
];
for (const k of which) {
  const ref = `${R}/${names[k]}`;
  const lbRoot = join(stores, 'lb-root');
  const contenders = [
    { name: 'layerbox pull', prepare: () => rmSync(lbRoot, { recursive: true, force: true }), run: () => timed(`${LB} --root ${lbRoot} pull -q ${ref}`) },
  ];
  if (docker) contenders.push({ name: 'docker pull', prepare: () => sh('docker rmi -f $(docker images -qa) >/dev/null 2>&1; true', { env: docker.env }), run: () => timed(`docker pull -q ${ref}`, { env: docker.env }) });
  if (podman) contenders.push({ name: 'podman pull', prepare: () => sh(`${podman.cmd} rmi -af >/dev/null 2>&1; true`, { env: podman.env }), run: () => timed(`${podman.cmd} pull -q --tls-verify=false ${ref}`, { env: podman.env }) });
  if (have('skopeo')) contenders.push({ name: 'skopeo copy → oci (no unpack)', prepare: () => rmSync(join(stores, 'oci'), { recursive: true, force: true }), run: () => timed(`skopeo copy -q --src-tls-verify=false docker://${ref} oci:${stores}/oci:x`) });
  const res = paired(contenders, rounds, { base: docker ? 'docker pull' : 'layerbox pull', settleSeconds });
  lines.push(`## ${names[k]}`, '', '| tool | median s | ratio | peak RSS MiB | runs |', '|---|---|---|---|---|', ...Object.entries(res).map(([n, v]) => fmtRow(n, v)), '');
}
docker?.stop();
reg.kill();
report('pull', 'pull from a local registry (issue 3)', lines);
rmSync(work, { recursive: true, force: true });
fs.cleanup();
