// The CLI as one CommonJS file (dist/bundle/cli.cjs), started by bin/layerbox.js through
// vm.Script with a V8 code cache: Node then neither resolves ~100 ES modules nor compiles
// them again at every command (`images`: ~95 ms -> ~56 ms here), which matters for a CLI
// that starts for every command. The library (dist/engine, the tests) stays tsc's output; the
// bundle is built from it, so both are the same code. Native modules stay outside.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';

const outdir = new URL('../dist/bundle/', import.meta.url).pathname;
rmSync(outdir, { recursive: true, force: true }); // also drops the code cache of the old bundle
await build({
  entryPoints: [new URL('../dist/bin/layerbox.js', import.meta.url).pathname],
  outfile: `${outdir}cli.cjs`,
  bundle: true,
  format: 'cjs', // vm.Script runs it; it cannot hold ES modules
  platform: 'node',
  target: 'node20',
  // better-sqlite3 loads its .node file; undici is only needed by pull/push/login
  external: ['better-sqlite3', 'undici'],
  // every module using import.meta.url sits two levels below the package root, as this file does
  define: { 'import.meta.url': '__lbModuleUrl' },
  banner: { js: "const __lbModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
  legalComments: 'none',
});
// vm.Script has no loader for import(): nothing may be left to it
const left = readFileSync(`${outdir}cli.cjs`, 'utf8').match(/[^\w$.]import\(\s*["'`]/g);
if (left) throw new Error(`bundle: dynamic import() left in dist/bundle/cli.cjs (${left.length}); import Node's modules statically`);
