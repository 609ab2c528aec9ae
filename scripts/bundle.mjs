// The CLI as one CommonJS file (dist/bundle/cli.cjs), started by bin/layerbox.js through
// vm.Script with a V8 code cache: Node then neither resolves ~100 ES modules nor compiles
// them again at every command (`images`: ~95 ms -> ~56 ms here), which matters for a CLI
// that starts for every command. The library (dist/engine, the tests) stays tsc's output; the
// bundle is built from it, so both are the same code. Native modules stay outside.
import { build } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

// Node's modules that most commands never touch (a cached build, images, ps: no child
// process, no socket, no HTTP, no zlib), yet whose loading at start-up costs ~10 ms
// (child_process alone pulls in net, dgram and their internals): the bundle gets each as a
// proxy that requires it at the first use of one of its members. esbuild reaches a module's
// members through its namespace object (\`(0, import_node_net.connect)(…)\`), never by
// destructuring it at load, so the first call loads it; a module whose top level uses one
// (a class extending its member) just loads it then.
const LAZY = ['node:child_process', 'node:net', 'node:tls', 'node:http', 'node:https', 'node:dgram', 'node:zlib', 'node:readline/promises'];
const LAZY_LOADER = `const __lbLazy = (id) => {
  let m;
  const g = () => (m ??= require(id));
  return new Proxy({}, {
    get: (_, k) => g()[k],
    set: (_, k, v) => ((g()[k] = v), true),
    has: (_, k) => k in g(),
    ownKeys: () => Reflect.ownKeys(g()),
    getOwnPropertyDescriptor: (_, k) => {
      const d = Reflect.getOwnPropertyDescriptor(g(), k);
      return d && { ...d, configurable: true };
    },
  });
};`;

const outdir = new URL('../dist/bundle/', import.meta.url).pathname;
rmSync(outdir, { recursive: true, force: true }); // also drops the code cache of the old bundle
await build({
  entryPoints: [new URL('../dist/bin/layerbox.js', import.meta.url).pathname],
  outfile: `${outdir}cli.cjs`,
  bundle: true,
  format: 'cjs', // vm.Script runs it; it cannot hold ES modules
  platform: 'node',
  target: 'node20',
  // undici is only needed by pull/push/login. better-sqlite3's JavaScript is bundled (14
  // files the module loader found and compiled at every command, ~8 ms): its addon is
  // required by path (metadata/db.ts passes nativeBinding), never through `bindings`
  external: ['undici'],
  // every module using import.meta.url sits two levels below the package root, as this file does
  define: { 'import.meta.url': '__lbModuleUrl' },
  banner: { js: `const __lbModuleUrl = require('node:url').pathToFileURL(__filename).href;\n${LAZY_LOADER}` },
  logLevel: 'warning',
  legalComments: 'none',
});
{
  const file = `${outdir}cli.cjs`;
  let text = readFileSync(file, 'utf8');
  let n = 0;
  for (const id of LAZY) text = text.replaceAll(`require("${id}")`, () => (n++, `__lbLazy("${id}")`));
  if (n === 0) throw new Error('bundle: none of the lazily loaded modules is required: update LAZY');
  // ASCII only: a single non-ASCII character (esbuild keeps some comments, and leaves µ in
  // a regular expression) makes the whole source a two-byte string — reading it 5 ms
  // slower, V8's source checks of the code cache twice the size. \uXXXX means the same in
  // a comment, a string or a regular expression (per UTF-16 unit, as without the u flag).
  text = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  writeFileSync(file, text);
}
// vm.Script has no loader for import(): nothing may be left to it
const left = readFileSync(`${outdir}cli.cjs`, 'utf8').match(/[^\w$.]import\(\s*["'`]/g);
if (left) throw new Error(`bundle: dynamic import() left in dist/bundle/cli.cjs (${left.length}); import Node's modules statically`);
