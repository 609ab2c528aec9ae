// Extracts one layer tar with the engine's one-pass unpacker (diffID hash, overlay
// whiteouts, tar-split record), as `load` does for each layer. Used by bench/load.mjs.
import { createReadStream, mkdirSync } from 'node:fs';
import { unpackLayer } from '../dist/archive/unpack.js';
const [tar, dir] = process.argv.slice(2);
mkdirSync(dir, { recursive: true });
await unpackLayer({ source: createReadStream(tar, { highWaterMark: 1 << 20 }), compression: 'auto', target: dir, whiteouts: 'overlay', fresh: true, tarsplitPath: dir + '.tarsplit' });
