// Issue 13 benchmark: `image analyze` of the Debian bookworm minbase image (debootstrap,
// cached in $LAYERBOX_CACHE) against a plain walk of the union with `find` (the image
// mounted read-only), and against `dive --ci` where dive is installed. Also: a 3-layer
// variant (a whiteout and an opaque directory on top of the base) and the analysis of the
// image as a docker-archive read in place.
//   node bench/analyze.mjs   (BENCH_RUNS=10)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LB, sh, timed, paired, report, fmtRow, have } from './lib.mjs';
import { debianTar } from '../dist/testing/debian.js';
import { layerTar, writeDockerArchive } from '../dist/testing/images.js';

const runs = Number(process.env.BENCH_RUNS ?? 10);
const work = mkdtempSync('/var/tmp/lb-bench-analyze-');
const root = join(work, 'root');
const lb = (args) => `${LB} --root ${root} ${args}`;
try {
  const tar = debianTar();
  sh(lb(`import ${tar} bench/debian:base`));
  // a 3-layer variant: the base, 5 MiB of files, then a whiteout and an opaque directory
  const archive = join(work, 'layers3.tar');
  writeDockerArchive(archive, [
    readFileSync(tar),
    layerTar([{ path: 'data/', type: 'dir' }, ...Array.from({ length: 5 }, (_, i) => ({ path: `data/f${i}`, type: 'file', data: Buffer.alloc(1 << 20, i) }))]),
    layerTar([
      { path: 'etc/', type: 'dir' },
      { path: 'etc/.wh.issue.net', type: 'file', data: '' },
      { path: 'etc/apt/', type: 'dir' },
      { path: 'etc/apt/apt.conf.d/', type: 'dir' },
      { path: 'etc/apt/apt.conf.d/.wh..wh..opq', type: 'file', data: '' },
      { path: 'data/', type: 'dir' },
      { path: 'data/f0', type: 'file', data: 'rewritten' },
    ]),
  ], 'bench/debian:layers3');
  sh(lb(`load -q -i ${archive}`));
  const a = JSON.parse(sh(lb('image analyze --json bench/debian:base')));
  const entries = Number(sh(`tar -tf ${tar} | wc -l`).trim());
  const mnt = sh(lb('image mount bench/debian:base')).trim();
  const findCount = Number(sh(`find ${mnt} | wc -l`).trim());
  const lines = [
    `Debian bookworm minbase: ${entries} tar entries (${findCount} paths in the union), ${a.sizeBytes} file bytes, 1 layer. ${runs} paired runs, wall seconds (GNU time), whole processes (Node start included).`,
    '',
    '| command | median s | ratio to analyze | peak RSS MiB | runs |',
    '|---|---|---|---|---|',
  ];
  const c = [
    { name: 'layerbox image analyze', run: () => timed(lb('image analyze bench/debian:base > /dev/null')) },
    { name: 'layerbox image analyze --json', run: () => timed(lb('image analyze --json bench/debian:base > /dev/null')) },
    { name: `find (walk of the mounted union, lstat each)`, run: () => timed(`find ${mnt} -printf '%s %p\\n' > /dev/null`) },
  ];
  const dive = have('dive');
  if (dive) {
    // dive reads the image from a docker-archive; .dive-ci-less CI run
    const saved = join(work, 'base.docker.tar');
    sh(lb(`save -o ${saved} bench/debian:base`));
    c.push({ name: 'dive --ci (docker-archive)', run: () => timed(`CI=true dive --ci --source docker-archive ${saved} > /dev/null`, { allowFail: true }) });
  }
  const res = paired(c, runs, { base: 'layerbox image analyze', settleEach: false });
  for (const x of c) lines.push(fmtRow(x.name, res[x.name]));
  lines.push('');
  if (!dive) lines.push('dive: not installed. It is not a Debian package, and no prebuilt binaries (nor the Go module proxy) can be fetched on this machine, so it could not be measured.', '');
  sh(lb('image unmount bench/debian:base'));

  const c3 = [
    { name: 'analyze bench/debian:layers3 (store)', run: () => timed(lb('image analyze --json bench/debian:layers3 > /dev/null')) },
    { name: 'analyze docker-archive: (read in place)', run: () => timed(lb(`image analyze --json docker-archive:${archive} > /dev/null`)) },
  ];
  const r3 = paired(c3, runs, { base: c3[0].name, settleEach: false });
  const a3 = JSON.parse(sh(lb('image analyze --json bench/debian:layers3')));
  lines.push(`3 layers (base + 5 MiB of files + a whiteout, an opaque directory and a rewritten file): wasted ${a3.wastedBytes} bytes, efficiency ${a3.efficiency.toFixed(4)}.`, '', '| command | median s | ratio | peak RSS MiB | runs |', '|---|---|---|---|---|');
  for (const x of c3) lines.push(fmtRow(x.name, r3[x.name]));
  // in-process: the engine call alone (no Node start, no CLI)
  const inproc = join(work, 'inproc.mjs');
  writeFileSync(inproc, `import { Engine } from '${new URL('../dist/engine/index.js', import.meta.url).pathname}';
const e = await Engine.open({ root: ${JSON.stringify(root)} });
const ts = [];
for (let i = 0; i < 10; i++) { const t = performance.now(); await e.analysis.analyze('bench/debian:base'); ts.push(performance.now() - t); }
ts.sort((a, b) => a - b);
console.log(ts[5].toFixed(1));
e.close();
`);
  const ms = sh(`node ${inproc}`).trim();
  lines.push('', `engine.analysis.analyze('bench/debian:base') in-process: ${ms} ms (median of 10).`);
  report('analyze', 'image analyze (issue 13)', lines);
} finally {
  sh(lb('image unmount -f bench/debian:base'), { allowFail: true });
  rmSync(work, { recursive: true, force: true });
}
