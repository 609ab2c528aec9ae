#!/usr/bin/env node
// The CLI: the bundle (scripts/bundle.mjs, faster to load) when it was built after the last
// tsc run, else the tsc output itself (e.g. right after a bare `tsc`).
import { statSync } from 'node:fs';

const mtime = (rel) => {
  try {
    return statSync(new URL(rel, import.meta.url)).mtimeMs;
  } catch {
    return -1;
  }
};
const entry = mtime('../dist/bundle/main.js') >= mtime('../dist/.tsbuildinfo') ? '../dist/bundle/main.js' : '../dist/cli/main.js';
import(entry).then((m) => m.main(process.argv.slice(2)));
