/**
 * `cp` against a hostile running container: the CVE-2018-15664 rename race, both ways,
 * through the real CLI with the real pieces (overlayfs, runc under conmon).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lb, lbp, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';

const t = tempRoot('lb-cp-');
const root = t.root;
const work = mkdtempSync(join(tmpdir(), 'lb-cp-work-'));
const BB = 'bench/busybox:latest';

function ok(args: string[], opts: { input?: string | Buffer } = {}): string {
  const r = lb(root, args, opts);
  assert.equal(r.code, 0, `layerbox ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

before(() => {
  ok(['load', '-q', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
});

after(() => {
  const ids = lb(root, ['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean);
  if (ids.length) lb(root, ['rm', '-f', ...ids]);
  t.cleanup();
  rmSync(work, { recursive: true, force: true });
});

/**
 * A container that swaps /d between a directory of its own (/A) and a symlink to a host
 * directory (/B → HOST, an absolute path that only exists on the host), as fast as it can:
 * the reproduction of CVE-2018-15664.
 */
async function racingContainer(host: string): Promise<string> {
  const loop = `mkdir /A && echo container > /A/file && ln -s ${host} /B && touch /ready && while :; do mv /A /d; mv /d /A; mv /B /d; mv /d /B; done`;
  const id = ok(['run', '-d', '--network', 'none', BB, 'sh', '-c', loop]).trim();
  // started: the loop is running once /ready exists in the container
  for (let i = 0; i < 200; i++) {
    if (lb(root, ['cp', `${id}:/ready`, join(work, 'ready')]).code === 0) return id;
    await sleep(25);
  }
  throw new Error('the racing container did not start');
}

const ITERATIONS = 100;

test('CVE-2018-15664: cp host → CONTAINER:/d/… while the container swaps /d for a symlink to a host directory writes nothing on the host (100 ×)', async () => {
  const host = mkdtempSync(join(tmpdir(), 'lb-cp-victim-'));
  try {
    writeFileSync(join(work, 'host.txt'), 'from the host\n');
    const id = await racingContainer(host);
    let copied = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const r = await lbp(root, ['cp', join(work, 'host.txt'), `${id}:/d/pwned-${i}`]);
      if (r.code === 0) copied++;
    }
    const leaked = readdirSync(host);
    ok(['kill', id]);
    // every copy that succeeded is in the container's own directory (/A, or /d while it was /A)
    const upper = JSON.parse(ok(['inspect', id]))[0].GraphDriver.Data.UpperDir as string;
    const inside = spawnSync('find', [upper, '-name', 'pwned-*'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    lb(root, ['rm', '-f', id]);
    process.stdout.write(`# ${copied}/${ITERATIONS} copies succeeded inside the container; ${leaked.length} files reached the host directory\n`);
    assert.deepEqual(leaked, [], 'the host directory is untouched');
    assert.equal(inside.length, copied, 'the copies that succeeded are in the container');
  } finally {
    rmSync(host, { recursive: true, force: true });
  }
});

test('CVE-2018-15664: cp CONTAINER:/d/file → host while the container swaps /d for a symlink to a host directory never returns host content (100 ×)', async () => {
  const host = mkdtempSync(join(tmpdir(), 'lb-cp-victim-'));
  try {
    writeFileSync(join(host, 'file'), 'HOST SECRET\n');
    const id = await racingContainer(host);
    let copied = 0;
    const seen = new Set<string>();
    for (let i = 0; i < ITERATIONS; i++) {
      const out = join(work, `out-${i}`);
      const r = await lbp(root, ['cp', `${id}:/d/file`, out]);
      if (r.code === 0 && existsSync(out)) {
        copied++;
        seen.add(readFileSync(out, 'utf8'));
      }
      rmSync(out, { recursive: true, force: true });
    }
    lb(root, ['rm', '-f', id]);
    process.stdout.write(`# ${copied}/${ITERATIONS} copies succeeded; contents seen: ${JSON.stringify([...seen])}\n`);
    assert.ok(!seen.has('HOST SECRET\n'), 'no host content was read');
    assert.deepEqual(readdirSync(host), ['file']);
  } finally {
    rmSync(host, { recursive: true, force: true });
  }
});

