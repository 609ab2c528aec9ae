/** The module tiers of DESIGN.md hold: every import points to the same tier or below. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { REPO_ROOT } from '../testing/tree.js';

const TIER: Record<string, number> = {
  errors: 0,
  oci: 0,
  sys: 1,
  content: 2,
  archive: 2,
  registry: 2,
  metadata: 2,
  snapshot: 3,
  image: 3,
  container: 4,
  runtime: 4,
  network: 4,
  build: 5,
  engine: 6,
  cli: 7,
  api: 7,
  ui: 7,
  // the executable: composes the fronts (the CLI's table with the explorer and the server)
  bin: 8,
};

/**
 * The fronts see the engine's door and the error type, nothing else; what composes several
 * fronts (the executable: the CLI with `explore` and `serve`) lives in bin/, above them.
 */
const FRONTS = new Set(['cli', 'api', 'ui']);
const FRONT_MAY_IMPORT = new Set(['engine/index.js', 'errors/index.js']);

function files(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (n.endsWith('.ts') && !n.endsWith('.test.ts') && !n.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

test('imports point down the tiers (fronts → engine → stores → primitives); fronts import only the engine and errors; test support is used by tests only', () => {
  const src = join(REPO_ROOT, 'src');
  const problems: string[] = [];
  for (const f of files(src)) {
    const mod = relative(src, f).split('/')[0]!;
    if (mod === 'testing') continue;
    const tier = TIER[mod];
    if (tier === undefined) {
      problems.push(`${relative(src, f)}: module ${mod} has no tier`);
      continue;
    }
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const targetPath = relative(src, resolve(dirname(f), m[1]!));
      const target = targetPath.split('/')[0]!;
      if (target === mod) continue;
      if (FRONTS.has(mod) && !FRONT_MAY_IMPORT.has(targetPath)) {
        problems.push(`${relative(src, f)} (a front) imports ${m[1]}: fronts import only engine/index.js and errors/index.js`);
        continue;
      }
      if (target === 'testing' && !/testkit|testing|-child|bench/.test(f)) {
        problems.push(`${relative(src, f)} imports test support (${m[1]})`);
        continue;
      }
      if (target === 'testing') continue;
      const t = TIER[target];
      if (t === undefined) problems.push(`${relative(src, f)} imports unknown module ${target}`);
      else if (t > tier) problems.push(`${relative(src, f)} (${mod}, tier ${tier}) imports ${m[1]} (${target}, tier ${t})`);
    }
  }
  assert.deepEqual(problems, []);
});
