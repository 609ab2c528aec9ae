/**
 * Concurrency through `layerbox serve`: 50 `docker run --rm busybox true` (Debian's
 * docker.io 20.10 client), 5 at a time, through one server, while the layerbox CLI runs
 * and removes containers on the same store. Every run succeeds, `layerbox system check`
 * finds nothing wrong afterwards, and no conmon process or overlay mount of that store is
 * left behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lbp, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { startServe, type RunningServe } from '../testing/serve.js';

const IMAGE = 'bench/busybox:latest';
const DOCKER = '/usr/bin/docker';
const RUNS = 50;
const AT_ONCE = 5;

const store = tempRoot('lb-conc-');
let serve: RunningServe;

before(async () => {
  assert.equal(process.getuid?.(), 0, 'these tests need root');
  serve = await startServe({ root: store.root });
  const l = await lbp(store.root, ['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
  assert.equal(l.code, 0, l.stderr);
});

after(async () => {
  if (serve) {
    const ids = (await lbp(store.root, ['ps', '-aq'])).stdout.split('\n').filter(Boolean);
    if (ids.length) await lbp(store.root, ['rm', '-f', ...ids]);
    await serve.stop();
  }
  store.cleanup();
});

/** conmon processes whose command line names the store. */
function conmons(root: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.endsWith('conmon') && cmd.some((a) => a.includes(root))) out.push(`${pid} ${cmd.join(' ')}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Mounts (overlay or any other) at or under the store. */
const mountsOf = (root: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(root));

test(`${RUNS} docker run --rm through one server, ${AT_ONCE} at a time, while the layerbox CLI runs and removes containers on the same store`, async (t) => {
  if (!existsSync(DOCKER)) {
    t.skip('docker.io is not installed');
    return;
  }
  const results: { code: number; stdout: string; stderr: string }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < RUNS) {
      next++;
      results.push(await serve.docker(['run', '--rm', IMAGE, 'true'], { bin: DOCKER }));
    }
  };
  // the layerbox CLI meanwhile: runs (one attached, one detached and then removed by force)
  let cliDone = false;
  const cliResults: { what: string; code: number; stderr: string }[] = [];
  const cli = (async () => {
    for (let i = 0; !cliDone || i < 3; i++) {
      const fg = await lbp(store.root, ['run', '--rm', IMAGE, 'sh', '-c', `echo cli ${i}`]);
      cliResults.push({ what: `run --rm ${i}: ${fg.stdout.trim()}`, code: fg.code, stderr: fg.stderr });
      const bg = await lbp(store.root, ['run', '-d', '--name', `cli${i}`, IMAGE, 'sleep', '60']);
      cliResults.push({ what: `run -d ${i}`, code: bg.code, stderr: bg.stderr });
      const rm = await lbp(store.root, ['rm', '-f', `cli${i}`]);
      cliResults.push({ what: `rm -f ${i}: ${rm.stdout.trim()}`, code: rm.code, stderr: rm.stderr });
    }
  })();
  await Promise.all(Array.from({ length: AT_ONCE }, worker));
  cliDone = true;
  await cli;

  assert.equal(results.length, RUNS);
  for (const [i, r] of results.entries()) assert.deepEqual({ code: r.code, stdout: r.stdout, stderr: r.stderr }, { code: 0, stdout: '', stderr: '' }, `docker run ${i}`);
  assert.ok(cliResults.length >= 9);
  for (const r of cliResults) {
    assert.equal(r.code, 0, `layerbox ${r.what}: ${r.stderr}`);
    assert.doesNotMatch(r.what, /^run --rm (\d+): (?!cli \1$)/, 'the attached run printed its own line');
  }
  t.diagnostic(`${RUNS} docker runs and ${cliResults.length} layerbox CLI commands succeeded`);

  // every --rm container is gone (the last removals finish right after the CLI returns)
  const deadline = Date.now() + 20_000;
  let left = '';
  while (Date.now() < deadline) {
    left = (await serve.docker(['ps', '-aq'], { bin: DOCKER })).stdout;
    if (left === '' && conmons(store.root).length === 0 && mountsOf(store.root).length === 0) break;
    await sleep(200);
  }
  assert.equal(left, '', 'no container is left');
  assert.deepEqual(conmons(store.root), [], 'no conmon of the store is left');
  assert.deepEqual(mountsOf(store.root), [], 'no mount of the store is left');
  const check = await lbp(store.root, ['system', 'check']);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /no problems/);
  // the server still answers
  assert.equal((await serve.docker(['run', '--rm', IMAGE, 'echo', 'still here'], { bin: DOCKER })).stdout, 'still here\n');
});
