// The benchmark images of ANCHORS.md, built with layerbox and cached in $LAYERBOX_CACHE:
//   debian:base  — debootstrap --variant=minbase bookworm, one layer (~204 MB tar)
//   debian:vim   — base + apt-get install --no-install-recommends vim (a commit)
//   many:10      — base + 10 layers of 5 × 1 MiB random data; layer 9 deletes
//                  /etc/issue.net (whiteout), layer 10 replaces /etc/apt/apt.conf.d (opaque)
// Each is kept as a docker-archive (`layerbox save`), so every tool loads the same bytes.
import { existsSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from "node:crypto";
import { LB, CACHE, sh, debianRootfs } from './lib.mjs';
import { layerTar, writeDockerArchive } from '../dist/testing/images.js';

const lb = (root, args) => sh(`${LB} --root ${root} ${args}`);

export function benchImages() {
  const out = {
    base: join(CACHE, 'bench-debian-base.tar'),
    vim: join(CACHE, 'bench-debian-vim.tar'),
    many: join(CACHE, 'bench-many-10.tar'),
  };
  if (existsSync(out.base) && existsSync(out.vim) && existsSync(out.many)) return out;
  const work = mkdtempSync('/var/tmp/lb-bench-img-');
  const root = join(work, 'root');
  try {
    const rootfs = debianRootfs();
    const tar = join(work, 'rootfs.tar');
    sh(`tar --numeric-owner -C ${rootfs} -cf ${tar} .`);
    lb(root, `import ${tar} bench/debian:base`);
    if (!existsSync(out.base)) lb(root, `save -o ${out.base} bench/debian:base`);
    if (!existsSync(out.vim)) {
      lb(root, `run --name vimbuild bench/debian:base sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends vim >/dev/null && rm -rf /var/lib/apt/lists/*'`);
      lb(root, `commit vimbuild bench/debian:vim`);
      lb(root, `rm vimbuild`);
      lb(root, `save -o ${out.vim} bench/debian:vim`);
    }
    if (!existsSync(out.many)) {
      const baseLayer = readFileSync(tar);
      const layers = [baseLayer];
      for (let i = 1; i <= 10; i++) {
        const entries = [{ path: `data${i}/`, type: 'dir' }];
        for (let j = 0; j < 5; j++) entries.push({ path: `data${i}/f${j}`, type: 'file', data: randomBytes(1 << 20) });
        if (i === 9) entries.push({ path: 'etc/', type: 'dir' }, { path: 'etc/.wh.issue.net', type: 'file', data: '' });
        if (i === 10) entries.push({ path: 'etc/', type: 'dir' }, { path: 'etc/apt/', type: 'dir' }, { path: 'etc/apt/apt.conf.d/', type: 'dir' }, { path: 'etc/apt/apt.conf.d/.wh..wh..opq', type: 'file', data: '' }, { path: 'etc/apt/apt.conf.d/99bench', type: 'file', data: 'APT::Sandbox::User "root";\n' });
        layers.push(layerTar(entries));
      }
      writeDockerArchive(out.many, layers, 'bench/many:10');
    }
    return out;
  } finally {
    sh(`${LB} --root ${root} ps -aq | xargs -r ${LB} --root ${root} rm -f`, { allowFail: true });
    rmSync(work, { recursive: true, force: true });
  }
}


if (process.argv[1] && process.argv[1].endsWith('images.mjs')) console.log(benchImages());
