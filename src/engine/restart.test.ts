/**
 * Restart policies, daemonless, through the real CLI (conmon's exit hook restarts) and
 * `serve` (which brings containers back when it starts, as dockerd at boot): on-failure's
 * cap, always and unless-stopped, Docker's back-off, RestartCount, the restarting state,
 * manual stop and kill, rm -f of a restarting container, update --restart. Compared in
 * outline (counts and states, not timings) with a private dockerd where docker.io is there.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lbp, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { dockerOk, startDockerd } from '../testing/dockerd.js';
import { startServe } from '../testing/serve.js';
import { until } from '../testing/wait.js';
import { openDatabase } from '../metadata/db.js';
import { BACKOFF_MAX_MS, nextBackoff, policyRestarts } from '../container/restart.js';

const t = tempRoot('lb-restart-');
const root = t.root;
const BB = 'bench/busybox';

async function ok(args: string[]): Promise<string> {
  const r = await lbp(root, args);
  assert.equal(r.code, 0, `layerbox ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout.trim();
}


const state = async (name: string) => JSON.parse((await ok(['inspect', '-f', '{{json .State}}', name])).trim()) as { Status: string; Running: boolean; Restarting: boolean; ExitCode: number };
const restartCount = async (name: string) => Number((await ok(['inspect', '-f', '{{.RestartCount}}', name])).trim());

/** The exit hooks of this store still running (a restart waiter among them). */
function hooksOf(id: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('exit-hook.js') && cmd.includes(root) && cmd.includes(id)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function actions(name: string, since: number): Promise<string[]> {
  const out = await ok(['events', '--since', String(since / 1000), '--until', String(Date.now() / 1000), '--filter', `container=${name}`, '--format', '{{.Action}}']);
  return out.split('\n').filter(Boolean);
}

before(async () => {
  await ok(['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
});

after(async () => {
  const ids = (await lbp(root, ['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await lbp(root, ['rm', '-f', ...ids]);
  t.cleanup();
});

test("Docker's back-off: 100 ms doubling to a minute, back to 100 ms after a 10 s run; the policies' decisions", () => {
  const seq: number[] = [];
  let b = 0;
  for (let i = 0; i < 12; i++) seq.push((b = nextBackoff(b, 50)));
  assert.deepEqual(seq, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]);
  assert.equal(nextBackoff(BACKOFF_MAX_MS, 10_000), 100);
  assert.equal(policyRestarts({ Name: 'always' }, 0, true, 9), true);
  assert.equal(policyRestarts({ Name: 'unless-stopped' }, 0, true, 0), false);
  assert.equal(policyRestarts({ Name: 'unless-stopped' }, 0, false, 0), true);
  assert.equal(policyRestarts({ Name: 'on-failure', MaximumRetryCount: 2 }, 1, false, 1), true);
  assert.equal(policyRestarts({ Name: 'on-failure', MaximumRetryCount: 2 }, 1, false, 2), false);
  assert.equal(policyRestarts({ Name: 'on-failure' }, 0, false, 0), false);
  assert.equal(policyRestarts({ Name: 'on-failure' }, 1, false, 100), true);
  assert.equal(policyRestarts({ Name: 'no' }, 1, false, 0), false);
});

test('on-failure:2 restarts a failing container twice, then leaves it exited; a manual start counts from 0 again', async () => {
  const since = Date.now();
  await ok(['run', '-d', '--network', 'none', '--name', 'onfail', '--restart', 'on-failure:2', BB, 'sh', '-c', 'exit 3']);
  await until('two restarts', async () => (await restartCount('onfail')) === 2 && (await state('onfail')).Status === 'exited' && hooksOf(await ok(['inspect', '-f', '{{.Id}}', 'onfail'])).length === 0);
  const s = await state('onfail');
  assert.equal(s.ExitCode, 3);
  assert.deepEqual(await actions('onfail', since), ['create', 'start', 'die', 'start', 'die', 'start', 'die']);
  // docker start resets the count (ResetRestartManager)
  await ok(['start', 'onfail']);
  await until('two restarts again', async () => (await restartCount('onfail')) === 2 && (await state('onfail')).Status === 'exited');
  // an exit 0 is no failure
  await ok(['run', '-d', '--network', 'none', '--name', 'onok', '--restart', 'on-failure', BB, 'true']);
  await until('exited', async () => (await state('onok')).Status === 'exited');
  assert.equal(await restartCount('onok'), 0);
});

test('always: Restarting in ps and inspect while it waits, a growing back-off, stop ends it and start resets the count', async () => {
  const since = Date.now();
  await ok(['run', '-d', '--network', 'none', '--name', 'alw', '--restart', 'always', BB, 'false']);
  const id = await ok(['inspect', '-f', '{{.Id}}', 'alw']);
  // the restarting state, as Docker shows it
  await until('the restarting state', async () => {
    const s = await state('alw');
    if (!s.Restarting) return false;
    assert.equal(s.Status, 'restarting');
    assert.equal(s.Running, true, 'a restarting container counts as running');
    return true;
  });
  await until('ps shows it restarting', async () => /^Restarting \(1\) /.test(await ok(['ps', '--filter', 'name=alw', '--format', '{{.Status}}'])));
  assert.equal(await ok(['ps', '-q', '--filter', 'status=restarting', '--filter', 'name=alw']), id.slice(0, 12));
  await until('five restarts', async () => (await restartCount('alw')) >= 5, 90_000);
  // the pauses between a die and the next start grow (100, 200, 400, 800 ms …)
  const out = await ok(['events', '--since', String(since / 1000), '--until', String(Date.now() / 1000), '--filter', 'container=alw', '--filter', 'event=die', '--filter', 'event=start', '--format', '{{.Action}} {{.TimeNano}}']);
  const ev = out.split('\n').map((l) => l.split(' ')).map(([a, n]) => ({ a: a!, t: Number(n) / 1e6 }));
  const gaps: number[] = [];
  for (let i = 1; i < ev.length; i++) if (ev[i]!.a === 'start' && ev[i - 1]!.a === 'die') gaps.push(ev[i]!.t - ev[i - 1]!.t);
  assert.ok(gaps.length >= 4, `gaps ${gaps}`);
  assert.ok(gaps[0]! >= 100 && gaps[3]! >= 800 && gaps[3]! > gaps[0]!, `back-off gaps ${gaps.map(Math.round)}`);
  // a manual stop: no restart of that exit (and no waiter left to restart it)
  await ok(['stop', 'alw']);
  assert.equal((await state('alw')).Status, 'exited');
  await until('no waiter', async () => hooksOf(id).length === 0);
  assert.equal((await state('alw')).Status, 'exited');
  const count = await restartCount('alw');
  assert.ok(count >= 5);
  // start resets the count; kill, like stop, ends the restarts
  await ok(['start', 'alw']);
  await until('running again from 0', async () => (await restartCount('alw')) <= 1);
  await until('restarting', async () => (await state('alw')).Restarting);
  await ok(['kill', 'alw']);
  assert.equal((await state('alw')).Status, 'exited');
  await until('no waiter', async () => hooksOf(id).length === 0);
  assert.equal((await state('alw')).Status, 'exited');
});

test('rm -f of a restarting container; rm of one without -f is refused; a foreground run returns its exit code and restarts on', async () => {
  await ok(['run', '-d', '--network', 'none', '--name', 'gone', '--restart', 'always', BB, 'false']);
  const id = await ok(['inspect', '-f', '{{.Id}}', 'gone']);
  await until('restarting', async () => (await state('gone')).Restarting);
  const refused = await lbp(root, ['rm', 'gone']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`You cannot remove a (restarting|running) container ${id}\\. Stop the container before attempting removal or force remove`));
  await ok(['rm', '-f', 'gone']);
  assert.equal((await lbp(root, ['inspect', 'gone'])).code, 1);
  await until('no waiter', async () => hooksOf(id).length === 0);
  // attached: the CLI gives the first exit's code; the exit hook restarts it meanwhile
  const fg = await lbp(root, ['run', '--network', 'none', '--name', 'fg', '--restart', 'on-failure:1', BB, 'sh', '-c', 'exit 7']);
  assert.equal(fg.code, 7, fg.stderr);
  await until('one restart', async () => (await restartCount('fg')) === 1 && (await state('fg')).Status === 'exited');
  const check = await ok(['system', 'check']);
  assert.match(check, /no problems/);
});

test('update --restart: a new policy for the next exits; refused for --rm containers and bad policies', async () => {
  await ok(['create', '--network', 'none', '--name', 'upd', BB, 'sh', '-c', 'exit 1']);
  assert.equal(await ok(['inspect', '-f', '{{.HostConfig.RestartPolicy.Name}}', 'upd']), 'no');
  assert.equal(await ok(['update', '--restart', 'on-failure:1', 'upd']), 'upd');
  assert.equal(await ok(['inspect', '-f', '{{json .HostConfig.RestartPolicy}}', 'upd']), '{"Name":"on-failure","MaximumRetryCount":1}');
  await ok(['start', 'upd']);
  await until('one restart', async () => (await restartCount('upd')) === 1 && (await state('upd')).Status === 'exited');
  const rm = await ok(['create', '--rm', '--network', 'none', BB, 'true']);
  const refused = await lbp(root, ['update', '--restart', 'always', rm]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Restart policy cannot be updated because AutoRemove is enabled for the container/);
  const bad = await lbp(root, ['update', '--restart', 'sometimes', 'upd']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid restart policy 'sometimes'/);
  const none = await lbp(root, ['update', 'upd']);
  assert.equal(none.code, 1);
  assert.equal(none.stderr.trim(), 'you must provide one or more flags when using this command');
  await ok(['rm', rm]);
});

test('serve, when it starts, brings back what dockerd brings back at boot: always, unless-stopped not stopped by hand, on-failure after a failure', async () => {
  const run = (name: string, policy: string) => ok(['run', '-d', '--network', 'none', '--name', name, '--restart', policy, BB, 'sleep', '1000']);
  await run('b-always', 'always');
  await run('b-unless', 'unless-stopped');
  await run('b-unless-stopped', 'unless-stopped');
  await run('b-onfail', 'on-failure');
  await ok(['create', '--network', 'none', '--name', 'b-never-ran', '--restart', 'always', BB, 'sleep', '1000']);
  // stopped by hand: always comes back at boot anyway, unless-stopped does not
  await ok(['stop', '-t', '0', 'b-always', 'b-unless-stopped']);
  // a reboot, for b-unless and b-onfail (a test double of one): every process of their
  // runs killed at once, no exit hook, and their records from a previous boot
  const ids: Record<string, string> = {};
  for (const n of ['b-unless', 'b-onfail']) {
    ids[n] = await ok(['inspect', '-f', '{{.Id}}', n]);
    const st = JSON.parse(await ok(['inspect', '-f', '{{json .State}}', n])) as { Pid: number };
    const conmon = Number(readFileSync(join(root, 'containers', ids[n]!, 'bundle', 'conmon.pid'), 'utf8'));
    process.kill(-conmon, 'SIGKILL');
    process.kill(st.Pid, 'SIGKILL');
  }
  const db = openDatabase(root);
  for (const id of Object.values(ids)) {
    const row = db.prepare('SELECT state FROM containers WHERE id = ?').get(id) as { state: string };
    db.prepare('UPDATE containers SET state = ? WHERE id = ?').run(JSON.stringify({ ...JSON.parse(row.state), BootId: 'a-previous-boot' }), id);
  }
  db.close();
  assert.equal((await state('b-unless')).ExitCode, 255, 'after a reboot a container that ran is exited (255)');
  const serve = await startServe({ root });
  try {
    await until('serve restarted them', async () => {
      const s = await Promise.all(['b-always', 'b-unless', 'b-onfail'].map(state));
      return s.every((x) => x.Status === 'running');
    });
    assert.equal((await state('b-unless-stopped')).Status, 'exited', 'unless-stopped, stopped by hand, stays stopped');
    assert.equal((await state('b-never-ran')).Status, 'created', 'a container that never ran is not started');
    for (const n of ['b-always', 'b-unless', 'b-onfail']) {
      const short = (await ok(['inspect', '-f', '{{.Id}}', n])).slice(0, 12);
      await until(`the log names ${n}`, async () => serve.log().includes(`Restarted container ${short}`));
    }
    assert.ok(!serve.log().includes((await ok(['inspect', '-f', '{{.Id}}', 'b-unless-stopped'])).slice(0, 12)), 'b-unless-stopped stays as it is');
  } finally {
    await serve.stop();
  }
  // the server's end leaves them running, under their conmon
  assert.equal((await state('b-always')).Status, 'running');
  await ok(['rm', '-f', 'b-always', 'b-unless', 'b-unless-stopped', 'b-onfail', 'b-never-ran']);
});

test('restart policies in outline against a private dockerd: the same counts, states and events', async () => {
  const d = await startDockerd({ prefix: 'lbrs-' });
  if (!d) {
    console.log('# docker.io is not installed: the comparison with dockerd is left out');
    return;
  }
  try {
    assert.equal((await d.docker(['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')])).code, 0);
    const outline = async (docker: (args: string[]) => Promise<string>) => {
      const since = Date.now() / 1000;
      await docker(['run', '-d', '--network', 'none', '--name', 'cmp', '--restart', 'on-failure:2', BB, 'sh', '-c', 'exit 5']);
      await until('two restarts', async () => (await docker(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', 'cmp'])) === '2 exited');
      const inspect = await docker(['inspect', '-f', '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}} {{.State.Restarting}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}', 'cmp']);
      // dockerd logs the last die just after it records the state
      const ev = await until('three dies', async () => {
        const out = await docker(['events', '--since', String(since), '--until', String(Date.now() / 1000), '--filter', 'container=cmp', '--format', '{{.Action}} {{.Actor.Attributes.exitCode}}']);
        return (out.match(/die/g) ?? []).length === 3 && out;
      });
      await docker(['rm', '-f', 'cmp']);
      return { inspect, ev };
    };
    const theirs = await outline((args) => dockerOk(d, args));
    const ours = await outline(ok);
    assert.deepEqual(ours, theirs);
  } finally {
    await d.stop();
  }
});
