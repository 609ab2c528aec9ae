#!/usr/bin/env node
// The CLI. Runs the bundle (scripts/bundle.mjs: dist/bundle/cli.cjs) when it was built after
// the last tsc run, else the tsc output itself (e.g. right after a bare `tsc`).
//
// The bundle is compiled with V8's code cache (dist/bundle/cli.cjs.v8cache): written after
// the first command that finds none (or finds it rejected: V8 checks it against the source
// and its own version), and once more after the first `run` and the first `build` (which
// compile the most), so later commands skip most parsing and compiling.
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const path = (rel) => fileURLToPath(new URL(rel, import.meta.url));
const mtime = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};
const argv = process.argv.slice(2);
const bundle = path('../dist/bundle/cli.cjs');

if (mtime(bundle) < 0 || mtime(bundle) < mtime(path('../dist/.tsbuildinfo'))) {
  const { main } = await import('../dist/bin/layerbox.js');
  await main(argv);
} else {
  const cacheFile = `${bundle}.v8cache`;
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    /* none yet */
  }
  const script = new vm.Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle, cachedData });
  const module = { exports: {} };
  script.runInThisContext().call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  await module.exports.main(argv);
  // `run` and `build` compile the most of their own (image, container, runtime and network
  // code; the builder, its parser and the layer writer): after the first of each, the cache
  // is made again, holding what the earlier ones compiled too
  const grower = ['run', 'build'].find((c) => argv.includes(c));
  const fullMark = grower && `${cacheFile}.${grower}`;
  const grow = !!fullMark && mtime(fullMark) < 0;
  if (!cachedData || script.cachedDataRejected || grow) {
    // after the command: the functions it ran are compiled and go into the cache too.
    // A cache, not state: renamed into place whole, no fsync (V8 checksums what it reads and
    // rejects a torn or stale cache, which is then written again).
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
      if (fullMark) writeFileSync(fullMark, '');
    } catch {
      rmSync(tmp, { force: true }); // a read-only install: no cache
    }
  }
}
