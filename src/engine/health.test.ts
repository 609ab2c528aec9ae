/**
 * Healthchecks through the real CLI: the --health-* flags and the image's HEALTHCHECK, the
 * monitor process of each run (it outlives the CLI, ends with the run, and serve gives a
 * running container whose monitor is gone a new one), Docker's state rules (starting,
 * unhealthy after Retries failures, healthy, StartPeriod, the last 5 results, Timeout kills
 * the probe), State.Health, ps STATUS and its health filter, health_status events.
 * Compared in outline with a private dockerd where docker.io is installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { lbp, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { layerTar, writeDockerArchive } from '../testing/images.js';
import { dockerOk, startDockerd } from '../testing/dockerd.js';
import { startServe } from '../testing/serve.js';
import { until } from '../testing/wait.js';
import { Engine } from './index.js';
import { applyProbeResult, goDurationString, mergeHealthcheck, probeCommand, type HealthFile } from '../container/health.js';

const t = tempRoot('lb-health-');
const root = t.root;
const work = mkdtempSync(join(tmpdir(), 'lb-health-work-'));
const BB = 'bench/busybox';
const DOCKER = '/usr/bin/docker';

async function ok(args: string[]): Promise<string> {
  const r = await lbp(root, args);
  assert.equal(r.code, 0, `layerbox ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout.trim();
}


interface Health {
  Status: string;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

const health = async (name: string) => JSON.parse(await ok(['inspect', '-f', '{{json .State.Health}}', name])) as Health | null;

/** The health monitors of this store's container `id` that run. */
function monitorsOf(id: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('health-monitor.js') && cmd.includes(root) && cmd.includes(id)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

before(async () => {
  await ok(['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
});

after(async () => {
  const ids = (await lbp(root, ['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await lbp(root, ['rm', '-f', ...ids]);
  t.cleanup();
  rmSync(work, { recursive: true, force: true });
});

test("Docker's rules for a probe result: retries, start period, the last five results; Go's durations; the image's HEALTHCHECK merged", () => {
  const started = '2024-01-01T00:00:00.000Z';
  const at = (ms: number, code: number) => ({ Start: new Date(Date.parse(started) + ms).toISOString(), End: new Date(Date.parse(started) + ms + 5).toISOString(), ExitCode: code, Output: '' });
  let h: HealthFile = { Status: 'starting', FailingStreak: 0, Log: [], startedAt: started };
  const cfg = { Retries: 2, StartPeriod: 1e9 };
  h = applyProbeResult(h, at(100, 1), cfg, started);
  assert.deepEqual([h.Status, h.FailingStreak], ['starting', 0], 'a failure within the start period does not count');
  h = applyProbeResult(h, at(1500, 1), cfg, started);
  assert.deepEqual([h.Status, h.FailingStreak], ['starting', 1]);
  h = applyProbeResult(h, at(1600, 1), cfg, started);
  assert.deepEqual([h.Status, h.FailingStreak], ['unhealthy', 2]);
  h = applyProbeResult(h, at(1700, 0), cfg, started);
  assert.deepEqual([h.Status, h.FailingStreak], ['healthy', 0]);
  for (let i = 0; i < 4; i++) h = applyProbeResult(h, at(2000 + i, 2), cfg, started);
  assert.deepEqual([h.Status, h.FailingStreak, h.Log.length], ['unhealthy', 4, 5], 'exit codes other than 0 and 1 fail too; five results kept');
  assert.equal(applyProbeResult({ ...h, Status: 'healthy', FailingStreak: 0 }, at(9000, 1), {}, started).Status, 'healthy', 'three retries by default');
  assert.deepEqual(['30s', '1m30s', '500ms', '1.5s', '1h0m0s', '0s'], [30e9, 90e9, 500e6, 1.5e9, 3600e9, 0].map(goDurationString));
  assert.deepEqual(mergeHealthcheck({ Retries: 5 }, { Test: ['CMD', 'x'], Interval: 1e9, Retries: 3 }), { Retries: 5, Test: ['CMD', 'x'], Interval: 1e9 });
  assert.deepEqual(mergeHealthcheck({ Test: ['NONE'] }, { Test: ['CMD', 'x'] }), { Test: ['NONE'] });
  assert.deepEqual(probeCommand({ Healthcheck: { Test: ['CMD-SHELL', 'exit 0'] }, Shell: ['/bin/ash', '-c'] }), ['/bin/ash', '-c', 'exit 0']);
  assert.deepEqual(probeCommand({ Healthcheck: { Test: ['CMD', 'true', '-x'] } }), ['true', '-x']);
  assert.equal(probeCommand({ Healthcheck: { Test: ['NONE'] } }), undefined);
});

test('--health-* flags: starting, unhealthy after the retries, healthy; ps STATUS and its health filter; health_status events; unhealthy once stopped, and the monitor gone', async () => {
  const since = Date.now() / 1000;
  await ok(['run', '-d', '--network', 'none', '--name', 'hc', '--health-cmd', 'test -e /tmp/ok && echo fine', '--health-interval', '300ms', '--health-retries', '2', '--health-timeout', '5s', BB, 'sleep', '1000']);
  const id = await ok(['inspect', '-f', '{{.Id}}', 'hc']);
  assert.deepEqual(JSON.parse(await ok(['inspect', '-f', '{{json .Config.Healthcheck}}', 'hc'])), { Test: ['CMD-SHELL', 'test -e /tmp/ok && echo fine'], Interval: 300e6, Timeout: 5e9, Retries: 2 });
  // the first probe comes after one interval: starting meanwhile
  const first = (await health('hc'))!;
  if (first.Log.length === 0) {
    assert.equal(first.Status, 'starting');
    assert.match(await ok(['ps', '--filter', 'name=hc', '--format', '{{.Status}}']), /^Up .* \(health: starting\)$/);
  }
  assert.ok(monitorsOf(id).length === 1, 'one monitor runs for the run, after the CLI that started it ended');
  await until('unhealthy', async () => (await health('hc'))!.Status === 'unhealthy');
  const bad = (await health('hc'))!;
  assert.ok(bad.FailingStreak >= 2);
  assert.equal(bad.Log[bad.Log.length - 1]!.ExitCode, 1);
  assert.match(await ok(['ps', '--filter', 'name=hc', '--format', '{{.Status}}']), /^Up .* \(unhealthy\)$/);
  assert.equal(await ok(['ps', '-q', '--filter', 'health=unhealthy', '--filter', 'name=hc']), id.slice(0, 12));
  assert.equal(await ok(['ps', '-q', '--filter', 'health=healthy', '--filter', 'name=hc']), '');
  await ok(['exec', 'hc', 'touch', '/tmp/ok']);
  await until('healthy', async () => (await health('hc'))!.Status === 'healthy');
  const good = (await health('hc'))!;
  assert.equal(good.FailingStreak, 0);
  assert.equal(good.Log[good.Log.length - 1]!.Output, 'fine\n');
  assert.match(await ok(['ps', '--filter', 'name=hc', '--format', '{{.Status}}']), /^Up .* \(healthy\)$/);
  await until('five results kept', async () => (await health('hc'))!.Log.length === 5);
  // two more results: still five
  for (let i = 0; i < 2; i++) {
    const last = (await health('hc'))!.Log.at(-1)!.Start;
    await until('a new result', async () => (await health('hc'))!.Log.at(-1)!.Start !== last);
  }
  assert.equal((await health('hc'))!.Log.length, 5);
  const badFilter = await lbp(root, ['ps', '--filter', 'health=sick']);
  assert.equal(badFilter.code, 1);
  assert.match(badFilter.stderr, /Unrecognised filter value for health: sick/);
  await ok(['stop', '-t', '0', 'hc']);
  assert.equal((await health('hc'))!.Status, 'unhealthy', 'as dockerd: unhealthy once the monitor stopped');
  await until('the monitor ended', async () => monitorsOf(id).length === 0);
  const events = await ok(['events', '--since', String(since), '--until', String(Date.now() / 1000), '--filter', 'container=hc', '--filter', 'event=health_status', '--format', '{{.Action}}']);
  assert.deepEqual(events.split('\n'), ['health_status: unhealthy', 'health_status: healthy']);
  // the probes are execs, with their events, as dockerd's
  const execs = await ok(['events', '--since', String(since), '--until', String(Date.now() / 1000), '--filter', 'container=hc', '--filter', 'event=exec_create', '--format', '{{.Action}}']);
  assert.ok(execs.split('\n').every((a) => a === 'exec_create: /bin/sh -c test -e /tmp/ok && echo fine' || a === 'exec_create: touch /tmp/ok'), execs);
});

test('a probe past its timeout is killed and counts as a failure; the start period; paused means unhealthy', async () => {
  await ok(['run', '-d', '--network', 'none', '--name', 'slow', '--health-cmd', 'sleep 30', '--health-interval', '500ms', '--health-timeout', '300ms', '--health-retries', '1', BB, 'sleep', '1000']);
  await until('a timed-out probe', async () => (await health('slow'))!.Log.length >= 1);
  const h = (await health('slow'))!;
  assert.deepEqual([h.Log[0]!.ExitCode, h.Log[0]!.Output], [-1, 'Health check exceeded timeout (300ms)']);
  assert.equal(h.Status, 'unhealthy');
  assert.ok(Date.parse(h.Log[0]!.End) - Date.parse(h.Log[0]!.Start) < 5000, 'the probe did not run its 30 s');
  // the killed probe is gone from the container (the next may be running: at most one)
  const top = await ok(['top', 'slow']);
  assert.ok((top.match(/sleep 30/g) ?? []).length <= 1, top);
  await ok(['rm', '-f', 'slow']);

  await ok(['run', '-d', '--network', 'none', '--name', 'boot', '--health-cmd', 'false', '--health-interval', '200ms', '--health-retries', '1', '--health-start-period', '2s', BB, 'sleep', '1000']);
  await until('a failure in the start period', async () => (await health('boot'))!.Log.length >= 1);
  const early = (await health('boot'))!;
  if (Date.parse(early.Log[0]!.Start) - Date.parse(await ok(['inspect', '-f', '{{.State.StartedAt}}', 'boot'])) < 2000) {
    assert.deepEqual([early.Status, early.FailingStreak], ['starting', 0], 'failures within the start period do not count');
  }
  await until('unhealthy after the start period', async () => (await health('boot'))!.Status === 'unhealthy');
  await ok(['pause', 'boot']);
  assert.equal((await health('boot'))!.Status, 'unhealthy');
  await ok(['unpause', 'boot']);
  await ok(['rm', '-f', 'boot']);
});

test("the image's HEALTHCHECK, --no-healthcheck, and flags merged over the image's; serve gives a running container whose monitor died a new one", async () => {
  const archive = join(work, 'hc.tar');
  const layer = layerTar([{ path: 'marker', type: 'file', data: 'x' }]);
  spawnSync('tar', ['-xf', join(FIXTURES, 'busybox-base.docker.tar'), '-C', work]);
  // the busybox layer (from the fixture) and a HEALTHCHECK in the config, as a build stores it
  const manifest = JSON.parse(readFileSync(join(work, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
  const bbLayer = readFileSync(join(work, manifest[0]!.Layers[0]!));
  writeDockerArchive(archive, [bbLayer, layer], 'hc/image:1', { Cmd: ['sleep', '1000'], Healthcheck: { Test: ['CMD-SHELL', 'test -e /marker'], Interval: 300e6, Retries: 1 } });
  await ok(['load', '-i', archive]);
  await ok(['run', '-d', '--network', 'none', '--name', 'img', 'hc/image:1']);
  await until('healthy from the image', async () => (await health('img'))?.Status === 'healthy');
  await ok(['run', '-d', '--network', 'none', '--name', 'off', '--no-healthcheck', 'hc/image:1']);
  // dockerd merges the image's fields under NONE too
  assert.deepEqual(JSON.parse(await ok(['inspect', '-f', '{{json .Config.Healthcheck}}', 'off'])), { Test: ['NONE'], Interval: 300e6, Retries: 1 });
  assert.equal(await ok(['inspect', '-f', '{{json .State.Health}}', 'off']), 'null');
  assert.match(await ok(['ps', '--filter', 'name=off', '--format', '{{.Status}}']), /^Up [^(]*$/);
  assert.equal(await ok(['ps', '-q', '--filter', 'health=none', '--filter', 'name=off']), (await ok(['inspect', '-f', '{{.Id}}', 'off'])).slice(0, 12));
  await ok(['run', '-d', '--network', 'none', '--name', 'merged', '--health-cmd', 'false', 'hc/image:1']);
  assert.deepEqual(JSON.parse(await ok(['inspect', '-f', '{{json .Config.Healthcheck}}', 'merged'])), { Test: ['CMD-SHELL', 'false'], Interval: 300e6, Retries: 1 });
  await until('unhealthy by the flag', async () => (await health('merged'))?.Status === 'unhealthy');
  // a monitor that dies (killed, as a crash would) leaves the container unprobed …
  const id = await ok(['inspect', '-f', '{{.Id}}', 'img']);
  for (const p of monitorsOf(id)) process.kill(p, 'SIGKILL');
  await until('the monitor gone', async () => monitorsOf(id).length === 0);
  const serve = await startServe({ root });
  try {
    // … until serve starts: it gives it a new one, which goes on probing
    await until('a new monitor', async () => monitorsOf(id).length === 1);
    const n = (await health('img'))!.Log.at(-1)!.End;
    await until('new results', async () => (await health('img'))!.Log.at(-1)!.End !== n);
  } finally {
    await serve.stop();
  }
  await ok(['rm', '-f', 'img', 'off', 'merged']);
  await until('no monitors left', async () => monitorsOf('').length === 0);
});

test('bad healthchecks are refused: the docker CLI\'s words for flags (exit 125), the daemon\'s for a create body', async () => {
  const r = await lbp(root, ['run', '--no-healthcheck', '--health-cmd', 'true', BB]);
  assert.equal(r.code, 125);
  assert.equal(r.stderr.trim(), "layerbox: --no-healthcheck conflicts with --health-* options.\nSee 'layerbox run --help'.");
  const neg = await lbp(root, ['create', '--health-retries', '-1', BB]);
  assert.equal(neg.code, 125);
  assert.equal(neg.stderr.trim(), "layerbox: --health-retries cannot be negative.\nSee 'layerbox create --help'.");
  if (existsSync(DOCKER)) {
    for (const [line, ours] of [
      [['run', '--no-healthcheck', '--health-cmd', 'true', BB], r],
      [['create', '--health-retries', '-1', BB], neg],
    ] as const) {
      const d = spawnSync(DOCKER, line, { env: { ...process.env, DOCKER_HOST: 'unix:///nonexistent.sock' } });
      assert.equal(d.status, ours.code);
      assert.equal(d.stderr.toString().trim().replaceAll('docker', 'layerbox'), ours.stderr.trim());
    }
  }
  const engine = await Engine.open({ root });
  try {
    await assert.rejects(engine.containers.create({ Image: BB, Healthcheck: { Test: ['CMD', 'true'], Interval: 1000 } }), /Interval in Healthcheck cannot be less than 1ms/);
    await assert.rejects(engine.containers.create({ Image: BB, Healthcheck: { Test: ['CMD', 'true'], Retries: -1 } }), /Retries in Healthcheck cannot be negative/);
    await assert.rejects(engine.containers.create({ Image: BB, Healthcheck: { Test: ['PING'] } }), /Unknown healthcheck type 'PING'/);
  } finally {
    engine.close();
  }
});

test('healthchecks in outline against a private dockerd: the same statuses, streaks and events', async () => {
  const d = await startDockerd({ prefix: 'lbhc-' });
  if (!d) {
    console.log('# docker.io is not installed: the comparison with dockerd is left out');
    return;
  }
  try {
    assert.equal((await d.docker(['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')])).code, 0);
    const outline = async (docker: (args: string[]) => Promise<string>) => {
      const since = Date.now() / 1000;
      const h = async () => JSON.parse(await docker(['inspect', '-f', '{{json .State.Health}}', 'cmp'])) as Health;
      await docker(['run', '-d', '--network', 'none', '--name', 'cmp', '--health-cmd', 'test -e /tmp/ok', '--health-interval', '300ms', '--health-retries', '2', BB, 'sleep', '1000']);
      const steps: string[] = [];
      await until('unhealthy', async () => (await h()).Status === 'unhealthy');
      steps.push(`${(await h()).Status}`);
      await docker(['exec', 'cmp', 'touch', '/tmp/ok']);
      await until('healthy', async () => (await h()).Status === 'healthy');
      const good = await h();
      steps.push(`${good.Status} ${good.FailingStreak}`, (await docker(['ps', '--filter', 'name=cmp', '--format', '{{.Status}}'])).replace(/^Up .* \(/, 'Up (').replace(/\d+ seconds?|Less than a second/, ''));
      await docker(['stop', '-t', '0', 'cmp']);
      const stopped = await h();
      steps.push(`${stopped.Status} ${stopped.FailingStreak} ${stopped.Log.length > 0}`);
      const ev = await docker(['events', '--since', String(since), '--until', String(Date.now() / 1000), '--filter', 'container=cmp', '--filter', 'event=health_status', '--format', '{{.Action}}']);
      await docker(['rm', '-f', 'cmp']);
      return { steps, ev };
    };
    const theirs = await outline((args) => dockerOk(d, args));
    const ours = await outline(ok);
    assert.deepEqual(ours, theirs);
  } finally {
    await d.stop();
  }
});
