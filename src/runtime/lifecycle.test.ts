/**
 * Container lifecycle under conmon with the real runtime: detached containers outliving the Node process,
 * stop/kill, pause/resume, top, update, logs, attach with stdin, exec, runtime detection.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { makeKit, Sink, TEST_CGROUP_PARENT, type Kit } from './testkit.js';
import { buildSpec, buildExecProcess, type RunOptions } from './spec.js';
import { attachContainer, cleanupContainer, createContainer, startContainer, StartError, type ContainerPaths } from './conmon.js';
import { conmonPid, readExit, stopContainer, waitExit } from './exit.js';
import { execInContainer, readExecExit } from './exec.js';
import { detectRuntime } from './runtime.js';
import { readLogs } from './logs.js';
import type { ContainerConfig } from '../oci/types.js';
import type { Spec } from './types.js';

let kit: Kit;
before(async () => {
  kit = await makeKit();
});
after(async () => {
  await kit.cleanup();
});

interface Started {
  id: string;
  paths: ContainerPaths;
  spec: Spec;
  config: ContainerConfig;
}

/** `docker run -d` */
async function runDetached(image: ContainerConfig, options: RunOptions = {}, conmon: { stdin?: boolean; leaveStdinOpen?: boolean } = {}): Promise<Started> {
  const id = kit.newId('d');
  const { spec, config } = await buildSpec({ rootfs: kit.rootfs, image, options: { cgroupsPath: `/${TEST_CGROUP_PARENT}/${id}`, ...options } });
  const paths = kit.paths(id);
  await createContainer({ id, runtime: kit.runtime, paths, spec, ...conmon });
  await startContainer(kit.runtime, id);
  return { id, paths, spec, config };
}

async function untilLog(paths: ContainerPaths, text: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await readFile(paths.logPath, 'utf8').catch(() => '')).includes(text)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`log never showed ${JSON.stringify(text)}`);
}

function node(script: string, args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const c = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b) => (stdout += b));
    c.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      reject(new Error(`${script} did not exit within ${timeoutMs} ms (something keeps Node alive): ${stderr}`));
    }, timeoutMs);
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

test('a -d container outlives the Node process that started it; another process reads its state and logs', async () => {
  const index = new URL('./index.js', import.meta.url).href;
  const id = kit.newId('surv');
  const paths = kit.paths(id);
  const starter = join(kit.dir, 'starter.mjs');
  await writeFile(
    starter,
    `import { buildSpec, createContainer, startContainer, Runtime } from ${JSON.stringify(index)};
const [rootfs, rtName, rtPath, stateDir, id, paths] = process.argv.slice(2);
const runtime = new Runtime({ name: rtName, path: rtPath, stateDir });
const { spec } = await buildSpec({ rootfs, image: { Cmd: ['sh', '-c', 'echo hello from $HOSTNAME; exec sleep 300'] }, options: { hostname: 'survivor', cgroupsPath: '/${TEST_CGROUP_PARENT}/' + id } });
const c = await createContainer({ id, runtime, paths: JSON.parse(paths), spec });
await startContainer(runtime, id);
console.log(JSON.stringify({ ...c, node: process.pid }));
`,
  );
  const reader = join(kit.dir, 'reader.mjs');
  await writeFile(
    reader,
    `import { readLogs, Runtime } from ${JSON.stringify(index)};
const [rtName, rtPath, stateDir, id, logPath] = process.argv.slice(2);
const runtime = new Runtime({ name: rtName, path: rtPath, stateDir });
const state = await runtime.state(id);
const lines = [];
for await (const l of readLogs(logPath)) lines.push(l.data.toString());
console.log(JSON.stringify({ status: state.status, pid: state.pid, lines }));
`,
  );
  const rt = kit.runtime;
  const s = await node(starter, [kit.rootfs, rt.name, rt.path, rt.stateDir, id, JSON.stringify(paths)]);
  assert.equal(s.code, 0, s.stderr);
  const started = JSON.parse(s.stdout) as { pid: number; conmonPid: number; node: number };
  // the starter is gone; conmon is not its child (it double-forked) and still supervises the container
  assert.equal(existsSync(`/proc/${started.node}`), false);
  assert.equal(conmonPid(paths), started.conmonPid);
  const ppid = Number((await readFile(`/proc/${started.conmonPid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[1]);
  assert.notEqual(ppid, started.node);
  await untilLog(paths, 'hello from survivor');
  const r = await node(reader, [rt.name, rt.path, rt.stateDir, id, paths.logPath]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { status: 'running', pid: started.pid, lines: ['hello from survivor\n'] });
  const st = await stopContainer(rt, paths, id, { timeoutSeconds: 1 });
  assert.equal(st?.exitCode, 137); // sleep as PID 1 ignores SIGTERM
  await rt.delete(id);
});

test('stop: a process that ignores SIGTERM is SIGKILLed after the timeout (exit 137)', async () => {
  const c = await runDetached({ Cmd: ['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.1; done'] }, { init: true });
  await untilLog(c.paths, 'ready');
  const t0 = Date.now();
  const st = await stopContainer(kit.runtime, c.paths, c.id, { timeoutSeconds: 1 });
  const ms = Date.now() - t0;
  assert.equal(st?.exitCode, 137);
  assert.ok(ms >= 1000 && ms < 4000, `stop took ${ms} ms`);
  assert.equal((await kit.runtime.state(c.id))?.status, 'stopped');
  await kit.runtime.delete(c.id);
  assert.equal(await kit.runtime.state(c.id), undefined);
});

test('stop: a process that handles SIGTERM exits at once with its own code; kill -9 from outside gives 137', async () => {
  const c = await runDetached({ Cmd: ['sh', '-c', 'echo ready; exec sleep 300'] }, { init: true });
  await untilLog(c.paths, 'ready'); // before that, PID 1 (tini) may not handle signals yet
  const t0 = Date.now();
  const st = await stopContainer(kit.runtime, c.paths, c.id, { timeoutSeconds: 10 });
  assert.equal(st?.exitCode, 143); // tini forwards SIGTERM; sleep dies of it
  assert.ok(Date.now() - t0 < 3000);
  // stopping again is a no-op that reports the same status
  assert.deepEqual(await stopContainer(kit.runtime, c.paths, c.id), st);
  const k = await runDetached({ Cmd: ['sleep', '300'] });
  await kit.runtime.kill(k.id, 'KILL');
  assert.equal((await waitExit(k.paths, k.id, { timeoutMs: 10_000 }))?.exitCode, 137);
});

test('a stopped container starts again from the same bundle (docker start); its log keeps both runs', async () => {
  const c = await runDetached({ Cmd: ['sh', '-c', 'echo run; [ -e /tmp/second ] && exit 4; touch /tmp/second; exit 3'] });
  assert.equal((await waitExit(c.paths, c.id, { timeoutMs: 10_000 }))?.exitCode, 3);
  await cleanupContainer(kit.runtime, c.paths, c.id);
  assert.equal(await kit.runtime.state(c.id), undefined);
  await createContainer({ id: c.id, runtime: kit.runtime, paths: c.paths });
  assert.equal(await readExit(c.paths, c.id), undefined, 'the previous exit file is gone');
  await startContainer(kit.runtime, c.id);
  assert.equal((await waitExit(c.paths, c.id, { timeoutMs: 10_000 }))?.exitCode, 4);
  const lines: string[] = [];
  for await (const l of readLogs(c.paths.logPath)) lines.push(l.data.toString());
  assert.deepEqual(lines, ['run\n', 'run\n']);
  await cleanupContainer(kit.runtime, c.paths, c.id);
});

test('pause/resume, top, update', async () => {
  const c = await runDetached({ Cmd: ['sh', '-c', 'echo go; exec sleep 300'] }, { memory: 64 << 20 });
  await untilLog(c.paths, 'go');
  await kit.runtime.pause(c.id);
  assert.equal((await kit.runtime.state(c.id))?.status, 'paused');
  await kit.runtime.resume(c.id);
  assert.equal((await kit.runtime.state(c.id))?.status, 'running');
  const top = await kit.runtime.top(c.id);
  assert.ok(top.titles.includes('PID') && top.titles.at(-1) === 'CMD');
  assert.deepEqual(top.processes.map((p) => p.at(-1)), ['sleep 300']);
  await kit.runtime.update(c.id, { memory: { limit: 128 << 20, swap: 256 << 20 }, pids: { limit: 20 } });
  const cg = `/sys/fs/cgroup/memory/${TEST_CGROUP_PARENT}/${c.id}/memory.limit_in_bytes`;
  assert.equal((await readFile(cg, 'utf8')).trim(), String(128 << 20));
  assert.equal((await readFile(`/sys/fs/cgroup/pids/${TEST_CGROUP_PARENT}/${c.id}/pids.max`, 'utf8')).trim(), '20');
  await stopContainer(kit.runtime, c.paths, c.id, { timeoutSeconds: 0 });
  await assert.rejects(kit.runtime.pause(c.id), (e: { kind?: string }) => e.kind === 'conflict');
  await kit.runtime.delete(c.id);
});

test('logs: --tail, --timestamps (UTC), -f until the container exits', async () => {
  const c = await runDetached({ Cmd: ['sh', '-c', 'for i in 1 2 3; do echo line$i; done; sleep 0.3; echo warn >&2; sleep 0.3; printf partial; sleep 0.3; echo " end"; sleep 0.3; echo last'] });
  const followed: string[] = [];
  const t0 = Date.now();
  for await (const l of readLogs(c.paths.logPath, { follow: true, stopWhen: async () => (await readExit(c.paths, c.id)) !== undefined })) {
    followed.push(`${l.stream}:${l.data.toString()}`);
    assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  }
  assert.ok(Date.now() - t0 >= 900, 'follow waited for the output');
  assert.deepEqual(followed, ['stdout:line1\n', 'stdout:line2\n', 'stdout:line3\n', 'stderr:warn\n', 'stdout:partial end\n', 'stdout:last\n']);
  const tail: string[] = [];
  for await (const l of readLogs(c.paths.logPath, { tail: 2 })) tail.push(l.data.toString());
  // like Docker's json-file, --tail counts records: "partial" (no newline) and " end" are two
  assert.deepEqual(tail, [' end\n', 'last\n']);
  const tail3: string[] = [];
  for await (const l of readLogs(c.paths.logPath, { tail: 3 })) tail3.push(`${l.stream}:${l.data.toString()}`);
  assert.deepEqual(tail3, ['stdout:partial end\n', 'stdout:last\n']);
  const tail4: string[] = [];
  for await (const l of readLogs(c.paths.logPath, { tail: 4 })) tail4.push(`${l.stream}:${l.data.toString()}`);
  assert.deepEqual(tail4, ['stderr:warn\n', 'stdout:partial end\n', 'stdout:last\n']);
  const none: string[] = [];
  for await (const l of readLogs(c.paths.logPath, { tail: 0 })) none.push(l.data.toString());
  assert.deepEqual(none, []);
  const all: string[] = [];
  for await (const l of readLogs(c.paths.logPath, { tail: 100 })) all.push(l.data.toString());
  assert.equal(all.length, 6);
  const ts: string[] = [];
  for await (const l of readLogs(c.paths.logPath, { since: Date.now() + 60_000 })) ts.push(l.time);
  assert.deepEqual(ts, []);
  await kit.runtime.delete(c.id);
});

test('attach with stdin (-i): input reaches the process, EOF closes its stdin', async () => {
  const id = kit.newId('i');
  const { spec } = await buildSpec({ rootfs: kit.rootfs, image: { Cmd: ['sh', '-c', 'tr a-z A-Z; echo done'] }, options: { stdin: true, cgroupsPath: `/${TEST_CGROUP_PARENT}/${id}` } });
  const paths = kit.paths(id);
  await createContainer({ id, runtime: kit.runtime, paths, spec, stdin: true });
  const input = new PassThrough();
  const out = new Sink();
  const a = await attachContainer(paths, { stdin: input, stdout: out });
  await startContainer(kit.runtime, id);
  input.write('hello ');
  input.end('world\n');
  const st = await waitExit(paths, id, { timeoutMs: 10_000 });
  await a.done;
  assert.equal(st?.exitCode, 0);
  assert.equal(out.text(), 'HELLO WORLD\ndone\n');
  await kit.runtime.delete(id);
});

test('exec into a running container: env, workdir, user, exit code; -t; detached; a missing binary', async () => {
  const c = await runDetached({ Cmd: ['sleep', '300'], Env: ['IMG=1'] }, { hostname: 'exechost', init: true });
  const proc = await buildExecProcess({ spec: c.spec, config: c.config, rootfs: kit.rootfs }, {
    args: ['sh', '-c', 'echo $FOO $IMG $HOSTNAME $HOME; pwd; id; exit 5'],
    env: ['FOO=bar'],
    workdir: '/tmp',
    user: 'user',
  });
  const out = new Sink();
  const r = await execInContainer({ containerId: c.id, execId: 'e1', runtime: kit.runtime, execDir: join(c.paths.bundleDir, 'exec', 'e1'), process: proc, streams: { stdout: out } });
  assert.equal(r.exitCode, 5);
  assert.deepEqual(out.text().split('\n'), ['bar 1 exechost /home/user', '/tmp', 'uid=1000(user) gid=1000(user) groups=2000(extra),2001(more)', '']);

  const tproc = await buildExecProcess({ spec: c.spec, config: c.config, rootfs: kit.rootfs }, { args: ['sh', '-c', 'tty; stty size; echo $TERM'], tty: true });
  const tout = new Sink();
  const sizes: string[] = [];
  const t = await execInContainer({
    containerId: c.id, execId: 'e2', runtime: kit.runtime, execDir: join(c.paths.bundleDir, 'exec', 'e2'), process: tproc, streams: { stdout: tout },
    onAttached: async (resize) => {
      await resize(33, 111);
      sizes.push('set');
    },
  });
  assert.equal(t.exitCode, 0);
  assert.deepEqual(sizes, ['set']);
  assert.match(tout.text(), /^\/dev\/pts\/\d+\r\n33 111\r\nxterm\r\n$/);

  const dproc = await buildExecProcess({ spec: c.spec, config: c.config, rootfs: kit.rootfs }, { args: ['sh', '-c', 'sleep 0.3; echo made > /tmp/marker; exit 9'] });
  const dDir = join(c.paths.bundleDir, 'exec', 'e3');
  const d = await execInContainer({ containerId: c.id, execId: 'e3', runtime: kit.runtime, execDir: dDir, process: dproc, detach: true });
  assert.ok(d.pid > 0 && d.exitCode === undefined);
  let code: number | undefined;
  for (let i = 0; i < 100 && code === undefined; i++) {
    code = await readExecExit(dDir);
    if (code === undefined) await new Promise((res) => setTimeout(res, 50));
  }
  assert.equal(code, 9);
  const check = new Sink();
  const cat = await buildExecProcess({ spec: c.spec, config: c.config, rootfs: kit.rootfs }, { args: ['cat', '/tmp/marker'] });
  assert.equal((await execInContainer({ containerId: c.id, execId: 'e4', runtime: kit.runtime, execDir: join(c.paths.bundleDir, 'exec', 'e4'), process: cat, streams: { stdout: check } })).exitCode, 0);
  assert.equal(check.text(), 'made\n');

  const bad = await buildExecProcess({ spec: c.spec, config: c.config, rootfs: kit.rootfs }, { args: ['/no/such'] });
  await assert.rejects(
    execInContainer({ containerId: c.id, execId: 'e5', runtime: kit.runtime, execDir: join(c.paths.bundleDir, 'exec', 'e5'), process: bad, streams: { stdout: new Sink() } }),
    (e) => e instanceof StartError && e.exitCode === 127,
  );
  await stopContainer(kit.runtime, c.paths, c.id, { timeoutSeconds: 1 });
  await kit.runtime.delete(c.id);
});

test('detectRuntime runs a real container to choose (crun refuses hybrid cgroups here) and caches the answer', async () => {
  const cacheFile = join(kit.dir, 'runtime.json');
  const stateDir = join(kit.dir, 'state2');
  const t0 = Date.now();
  const a = await detectRuntime({ stateDir, cacheFile });
  const first = Date.now() - t0;
  const t1 = Date.now();
  const b = await detectRuntime({ stateDir, cacheFile });
  assert.equal(a, b);
  assert.ok(Date.now() - t1 < 5);
  const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as { name: string; bootId: string };
  assert.equal(cached.name, a.name);
  const hybrid = existsSync('/sys/fs/cgroup/unified/cgroup.controllers') && existsSync('/sys/fs/cgroup/memory');
  if (hybrid) assert.equal(a.name, 'runc', 'crun 1.8 refuses hybrid cgroup hosts');
  // another process (another memo) reads the cache file instead of probing again
  const c = await detectRuntime({ stateDir: join(kit.dir, 'state3'), cacheFile, prefer: ['crun', 'runc'] });
  assert.equal(c.name, a.name);
  assert.ok(first > 0);
});
