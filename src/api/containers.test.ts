/**
 * The container and exec endpoints over a real socket (the server in this process, the real
 * runtime, conmon and a busybox image): status codes (201, 204, 304, 404, 409, 400), stdcopy
 * framing, hijacked attach and exec (101 UPGRADED, stdin half-close, detach keys), wait's
 * conditions with the AutoRemove race of `docker run --rm`, logs, stats from the cgroup,
 * update applied live, archive, commit — and bad input: archive paths with `..` or through
 * symlinks (CVE-2018-15664's family), tar entries that leave the directory, clients that go
 * away in the middle of a stream; each gets a 4xx with a clear message, nothing is left
 * half-done and the server keeps serving.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Engine } from '../engine/index.js';
import { apiRouter, listen, type RunningServer } from './index.js';
import { lb, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { layerTar } from '../testing/images.js';
import { storeOrphans } from '../testing/store.js';

const t = tempRoot('lb-api-ctr-');
const work = mkdtempSync(join(tmpdir(), 'lb-api-ctr-work-'));
const sock = join(work, 'api.sock');
let engine: Engine;
let server: RunningServer;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json<T = unknown>(): T;
}

function call(method: string, path: string, opts: { body?: unknown; raw?: Buffer; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = opts.raw ?? (opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body)));
    const req = request(
      { socketPath: sock, method, path, agent: false, headers: { Host: 'docker', ...(data ? { 'Content-Type': opts.raw ? 'application/x-tar' : 'application/json', 'Content-Length': String(data.length) } : {}), ...(opts.headers ?? {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body.toString()) as T });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** stdcopy frames → [stream, text] */
function demux(b: Buffer): [number, string][] {
  const out: [number, string][] = [];
  let i = 0;
  while (i + 8 <= b.length) {
    const n = b.readUInt32BE(i + 4);
    out.push([b[i]!, b.subarray(i + 8, i + 8 + n).toString()]);
    i += 8 + n;
  }
  assert.equal(i, b.length, 'whole frames only');
  return out;
}

const textOf = (frames: [number, string][], stream: number) => frames.filter(([s]) => s === stream).map(([, x]) => x).join('');

/** A hijacked connection: the 101 answer's head, then everything the server sends. */
async function hijack(path: string, body?: unknown): Promise<{ s: Socket; head: string; data: () => Buffer; ended: Promise<void> }> {
  const s = connect(sock);
  const payload = body === undefined ? '' : JSON.stringify(body);
  s.write(`POST ${path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`);
  let buf = Buffer.alloc(0);
  const ended = new Promise<void>((r) => {
    s.on('end', r);
    s.on('close', r);
  });
  s.on('data', (b: Buffer) => (buf = Buffer.concat([buf, b])));
  s.on('error', () => {});
  const deadline = Date.now() + 10_000;
  while (buf.indexOf('\r\n\r\n') < 0) {
    if (Date.now() > deadline) throw new Error(`no answer to ${path}: ${buf.toString()}`);
    await sleep(10);
  }
  const i = buf.indexOf('\r\n\r\n') + 4;
  const head = buf.subarray(0, i).toString();
  const start = i;
  return { s, head, data: () => buf.subarray(start), ended };
}

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function create(body: Record<string, unknown>, name?: string): Promise<string> {
  const r = await call('POST', `/v1.41/containers/create${name ? `?name=${name}` : ''}`, { body: { Image: 'busybox', HostConfig: { NetworkMode: 'none', ...((body.HostConfig as object) ?? {}) }, ...body } });
  assert.equal(r.status, 201, r.body.toString());
  return r.json<{ Id: string }>().Id;
}

async function run(cmd: string[], extra: Record<string, unknown> = {}, name?: string): Promise<string> {
  const id = await create({ Cmd: cmd, ...extra }, name);
  const r = await call('POST', `/containers/${id}/start`);
  assert.equal(r.status, 204, r.body.toString());
  return id;
}

const inspect = async (id: string) => (await call('GET', `/containers/${id}/json`)).json<{ State: { Status: string; Running: boolean; ExitCode: number; Pid: number }; HostConfig: Record<string, unknown>; Id: string }>();

before(async () => {
  const r = lb(t.root, ['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lb(t.root, ['tag', 'bench/busybox:latest', 'busybox:latest']).code, 0);
  engine = await Engine.open({ root: t.root });
  server = await listen(apiRouter(engine), { hosts: [`unix://${sock}`] });
});

after(async () => {
  for (const c of await engine.containers.list({ all: true })) await engine.containers.remove(c.Id, { force: true, volumes: true }).catch(() => {});
  await server.close();
  engine.close();
  t.cleanup();
  rmSync(work, { recursive: true, force: true });
});

test('create: Docker\'s 404 for a missing image (the CLI pulls on it), 400 for a bad name or body, 201 with Warnings', async () => {
  const missing = await call('POST', '/v1.41/containers/create', { body: { Image: 'nosuch' } });
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json(), { message: 'No such image: nosuch:latest' });
  const badName = await call('POST', '/containers/create?name=bad/name', { body: { Image: 'busybox' } });
  assert.equal(badName.status, 400);
  assert.match(badName.json<{ message: string }>().message, /Invalid container name/);
  const badType = await call('POST', '/containers/create', { body: { Image: 'busybox', Cmd: 'echo' } });
  assert.equal(badType.status, 400);
  assert.match(badType.json<{ message: string }>().message, /Cmd/);
  const ok = await call('POST', '/containers/create?name=created1', { body: { Image: 'busybox', Cmd: ['true'], HostConfig: { NetworkMode: 'host', PortBindings: { '80/tcp': [{ HostPort: '8080' }] } } } });
  assert.equal(ok.status, 201);
  assert.deepEqual(ok.json<{ Warnings: string[] }>().Warnings, ['Published ports are discarded when using host network mode']);
  const dup = await call('POST', '/containers/create?name=created1', { body: { Image: 'busybox' } });
  assert.equal(dup.status, 409);
  assert.match(dup.json<{ message: string }>().message, /is already in use/);
  assert.equal((await call('DELETE', '/containers/created1')).status, 204);
  assert.equal((await call('DELETE', '/containers/created1')).status, 404);
});

test('start 204 then 304, stop 204 then 304, kill: 400 for an unknown signal, 409 when stopped; delete: 409 running, force 204', async () => {
  const id = await create({ Cmd: ['sleep', '1000'] });
  assert.equal((await call('POST', `/containers/${id}/start`)).status, 204);
  assert.equal((await call('POST', `/containers/${id}/start`)).status, 304);
  const body = await call('POST', `/containers/${id}/start`, { body: { Binds: ['/:/host'] } });
  assert.equal(body.status, 400);
  const bad = await call('POST', `/containers/${id}/kill?signal=NOPE`);
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json(), { message: 'Invalid signal: NOPE' });
  const rm = await call('DELETE', `/containers/${id}`);
  assert.equal(rm.status, 409);
  assert.match(rm.json<{ message: string }>().message, /You cannot remove a running container/);
  assert.equal((await call('POST', `/containers/${id}/stop?t=1`)).status, 204);
  assert.equal((await inspect(id)).State.Status, 'exited');
  assert.equal((await call('POST', `/containers/${id}/stop`)).status, 304);
  const k = await call('POST', `/containers/${id}/kill`);
  assert.equal(k.status, 409);
  assert.match(k.json<{ message: string }>().message, /is not running/);
  assert.equal((await call('POST', `/containers/${id}/restart?t=1`)).status, 204);
  assert.equal((await inspect(id)).State.Running, true);
  assert.equal((await call('POST', `/containers/${id}/kill?signal=SIGKILL`)).status, 204);
  assert.equal((await inspect(id)).State.ExitCode, 137);
  const rn = await call('POST', `/containers/${id}/rename?name=renamed1`);
  assert.equal(rn.status, 204);
  assert.equal((await call('GET', '/containers/renamed1/json')).status, 200);
  assert.equal((await call('DELETE', `/containers/renamed1?force=1&v=1`)).status, 204);
});

test('wait: not-running at once, next-exit before the start, removed with AutoRemove before the start (docker run --rm), 10 in a row', async () => {
  const created = await create({ Cmd: ['true'] });
  const now = await call('POST', `/containers/${created}/wait`);
  assert.deepEqual(now.json(), { StatusCode: 0, Error: null });
  assert.equal((await call('POST', `/containers/${created}/wait?condition=bogus`)).status, 400);
  // next-exit: headers at once (the client knows it waits), the answer at the exit
  const next = call('POST', `/containers/${created}/wait?condition=next-exit`);
  await sleep(100);
  assert.equal((await call('POST', `/containers/${created}/start`)).status, 204);
  assert.deepEqual((await next).json(), { StatusCode: 0, Error: null });
  assert.equal((await call('DELETE', `/containers/${created}`)).status, 204);
  // the docker run --rm order: create, wait(removed), start; the fastest container exits
  // and is removed before anything polls it: the waiter still answers with its exit code
  for (let i = 0; i < 10; i++) {
    const id = await create({ Cmd: ['sh', '-c', `exit ${i + 1}`], HostConfig: { AutoRemove: true } });
    const waited = new Promise<Reply>((resolve, reject) => {
      const req = request({ socketPath: sock, method: 'POST', path: `/v1.41/containers/${id}/wait?condition=removed`, agent: false }, (res) => {
        // the headers come before the start
        void call('POST', `/containers/${id}/start`).then((s) => assert.equal(s.status, 204), reject);
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), json: () => JSON.parse(Buffer.concat(chunks).toString()) }));
      });
      req.on('error', reject);
      req.end();
    });
    const r = await waited;
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { StatusCode: i + 1, Error: null });
    assert.equal((await call('GET', `/containers/${id}/json`)).status, 404, 'removed when the wait answers');
  }
  assert.equal((await call('POST', '/containers/nosuch/wait')).status, 404);
});

test('logs: stdcopy frames per stream, raw with a TTY, tail and timestamps; follow ends at the exit; 400 without a stream', async () => {
  const id = await run(['sh', '-c', 'echo out1; echo err1 >&2; sleep 0.2; echo out2']);
  await until('exit', async () => !(await inspect(id)).State.Running);
  const all = await call('GET', `/containers/${id}/logs?stdout=1&stderr=1`);
  assert.equal(all.status, 200);
  const frames = demux(all.body);
  assert.equal(textOf(frames, 1), 'out1\nout2\n');
  assert.equal(textOf(frames, 2), 'err1\n');
  assert.equal(textOf(demux((await call('GET', `/containers/${id}/logs?stdout=1&tail=1`)).body), 1), 'out2\n');
  const ts = textOf(demux((await call('GET', `/containers/${id}/logs?stderr=1&timestamps=1`)).body), 2);
  assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z err1\n$/);
  const none = await call('GET', `/containers/${id}/logs`);
  assert.equal(none.status, 400);
  assert.deepEqual(none.json(), { message: 'Bad parameters: you must choose at least one stream' });
  const tty = await run(['sh', '-c', 'echo tty-out; echo tty-err >&2'], { Tty: true });
  await until('exit', async () => !(await inspect(tty)).State.Running);
  assert.equal((await call('GET', `/containers/${tty}/logs?stdout=1&stderr=1`)).body.toString(), 'tty-out\r\ntty-err\r\n');
  // follow: the stream ends when the container exits
  const slow = await run(['sh', '-c', 'echo a; sleep 1; echo b']);
  const t0 = Date.now();
  const followed = await call('GET', `/containers/${slow}/logs?stdout=1&follow=1`);
  assert.equal(textOf(demux(followed.body), 1), 'a\nb\n');
  assert.ok(Date.now() - t0 >= 500, 'followed until the end');
});

test('logs -f and attach: a client that goes away mid-stream ends its stream; the container runs on, the server serves', async () => {
  const id = await run(['sh', '-c', 'while true; do echo tick; sleep 0.2; done']);
  const s = connect(sock);
  s.write(`GET /containers/${id}/logs?stdout=1&follow=1 HTTP/1.1\r\nHost: docker\r\n\r\n`);
  await new Promise((r) => s.once('data', r));
  s.destroy();
  const a = await hijack(`/containers/${id}/attach?stream=1&stdout=1&stderr=1`);
  assert.match(a.head, /^HTTP\/1.1 101 UPGRADED\r\n/);
  assert.match(a.head, /Content-Type: application\/vnd.docker.raw-stream/);
  await until('attach output', () => a.data().length > 0 || undefined);
  a.s.destroy();
  await sleep(300);
  assert.equal((await inspect(id)).State.Running, true, 'the container runs on');
  assert.equal((await call('GET', '/_ping')).status, 200);
  const list = await call('GET', '/containers/json');
  assert.ok(list.json<{ Id: string }[]>().some((c) => c.Id === id));
  assert.equal((await call('DELETE', `/containers/${id}?force=1`)).status, 204);
});

test('attach: 101 UPGRADED, stdin to the container, half-close ends its input, the output follows; logs=1 replays; the detach keys detach', async () => {
  const id = await create({ Cmd: ['sh', '-c', 'echo ready; cat; echo done-$?'], OpenStdin: true, StdinOnce: true, AttachStdin: true });
  // attach before the start, as docker run does: nothing of the output is lost
  const a = await hijack(`/v1.41/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1`);
  assert.match(a.head, /^HTTP\/1.1 101 UPGRADED/);
  assert.equal((await call('POST', `/containers/${id}/start`)).status, 204);
  a.s.write('line one\n');
  await until('echo', () => textOf(demux(a.data()), 1).includes('line one') || undefined);
  a.s.end(); // the client's shutdown of its write side: the container's stdin ends
  await a.ended;
  assert.equal(textOf(demux(a.data()), 1), 'ready\nline one\ndone-0\n');
  await until('exit', async () => !(await inspect(id)).State.Running);
  // logs=1&stream=0: only the log, replayed
  const replay = await hijack(`/containers/${id}/attach?logs=1&stream=0&stdout=1`);
  await replay.ended;
  assert.equal(textOf(demux(replay.data()), 1), 'ready\nline one\ndone-0\n');

  // detach keys, one keystroke at a time: the client is let go, the container runs on
  const sh = await run(['sh'], { OpenStdin: true, Tty: true, AttachStdin: true });
  for (const [keys, seq] of [
    ['', ['\x10', '\x11']],
    ['&detachKeys=ctrl-x,y', ['\x18', 'y']],
  ] as const) {
    const d = await hijack(`/containers/${sh}/attach?stream=1&stdin=1&stdout=1${keys}`);
    d.s.write('echo hi-$((40+2))\r');
    await until('shell output', () => d.data().toString().includes('hi-42') || undefined);
    for (const k of seq) {
      d.s.write(k);
      await sleep(50);
    }
    await d.ended;
    assert.equal((await inspect(sh)).State.Running, true, 'detached, still running');
  }
  const bad = await call('POST', `/containers/${sh}/attach?stream=1&stdin=1&detachKeys=ctrl-nope`);
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json(), { message: 'Invalid detach keys (ctrl-nope) provided' });
  assert.equal((await call('DELETE', `/containers/${sh}?force=1`)).status, 204);
  assert.equal((await call('DELETE', `/containers/${id}`)).status, 204);
});

interface Stats {
  read: string;
  preread: string;
  name: string;
  id: string;
  cpu_stats: { cpu_usage: { total_usage: number; usage_in_usermode: number }; system_cpu_usage: number; online_cpus: number };
  precpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage?: number };
  memory_stats: { usage: number; limit: number; stats: Record<string, number> };
  pids_stats: { current: number; limit?: number };
  blkio_stats: Record<string, unknown>;
}

test('stats from the cgroup in Docker\'s shape: one-shot, stream=false with precpu, streamed samples; update applies limits live', async () => {
  const id = await run(['sh', '-c', 'while true; do :; done'], { HostConfig: { NetworkMode: 'none', Memory: 64 << 20, PidsLimit: 20 } }, 'busy1');
  const one = (await call('GET', `/containers/${id}/stats?stream=false&one-shot=true`)).json<Stats>();
  assert.equal(one.name, '/busy1');
  assert.equal(one.id, id);
  assert.equal(one.preread, '0001-01-01T00:00:00Z');
  assert.equal(one.memory_stats.limit, 64 << 20);
  assert.ok(one.memory_stats.usage > 0);
  assert.ok(one.memory_stats.stats && typeof one.memory_stats.stats === 'object');
  assert.deepEqual(one.pids_stats, { current: 1, limit: 20 });
  assert.ok(Array.isArray(one.blkio_stats.io_service_bytes_recursive) || one.blkio_stats.io_service_bytes_recursive === null);
  const t0 = Date.now();
  const two = (await call('GET', `/containers/${id}/stats?stream=false`)).json<Stats>();
  assert.ok(Date.now() - t0 >= 900, 'a first sample a second before');
  const cpuDelta = two.cpu_stats.cpu_usage.total_usage - two.precpu_stats.cpu_usage.total_usage;
  const sysDelta = two.cpu_stats.system_cpu_usage - (two.precpu_stats.system_cpu_usage ?? 0);
  const percent = (cpuDelta / sysDelta) * two.cpu_stats.online_cpus * 100;
  assert.ok(percent > 20 && percent <= 100 * two.cpu_stats.online_cpus + 1, `a busy loop uses a CPU: ${percent.toFixed(1)}%`);
  // streamed: one JSON per second, each with the previous as precpu
  const s = connect(sock);
  s.write(`GET /containers/${id}/stats HTTP/1.1\r\nHost: docker\r\n\r\n`);
  let text = '';
  s.on('data', (b: Buffer) => (text += b.toString()));
  await until('two samples', () => (text.match(/"read":/g)?.length ?? 0) >= 2 || undefined, 5000);
  s.destroy();
  const samples = [...text.matchAll(/\{"read".*?"id":"[0-9a-f]{64}"[^\n]*\}/g)].map((m) => JSON.parse(m[0]) as Stats);
  assert.ok(samples.length >= 2);
  assert.equal(samples[1]!.preread, samples[0]!.read);

  // update: live in the cgroup, recorded for inspect and the next start
  const up = await call('POST', `/containers/${id}/update`, { body: { Memory: 96 << 20, NanoCpus: 5e8, PidsLimit: 30, CpuShares: 512 } });
  assert.equal(up.status, 200, up.body.toString());
  assert.deepEqual(up.json(), { Warnings: [] });
  const cg = (ctl: string, f: string) => readFileSync(`/sys/fs/cgroup/${ctl}/layerbox/${id}/${f}`, 'utf8').trim();
  assert.equal(cg('memory', 'memory.limit_in_bytes'), String(96 << 20));
  assert.equal(cg('cpu', 'cpu.cfs_quota_us'), '50000');
  assert.equal(cg('cpu', 'cpu.shares'), '512');
  assert.equal(cg('pids', 'pids.max'), '30');
  const hc = (await inspect(id)).HostConfig;
  assert.deepEqual([hc.Memory, hc.NanoCpus, hc.PidsLimit, hc.CpuShares], [96 << 20, 5e8, 30, 512]);
  const t1 = Date.now();
  const throttled = (await call('GET', `/containers/${id}/stats?stream=false`)).json<Stats>();
  const p2 = ((throttled.cpu_stats.cpu_usage.total_usage - throttled.precpu_stats.cpu_usage.total_usage) / ((Date.now() - t1) * 1e6)) * 100;
  assert.ok(p2 < 75, `half a CPU at most: ${p2.toFixed(1)}%`);
  const tooBig = await call('POST', `/containers/${id}/update`, { body: { Memory: 1 << 30 } });
  assert.equal(tooBig.status, 409);
  assert.match(tooBig.json<{ message: string }>().message, /Memory limit should be smaller than already set memoryswap limit/);
  const conflictCpu = await call('POST', `/containers/${id}/update`, { body: { CpuQuota: 20000 } });
  assert.equal(conflictCpu.status, 409);
  assert.equal((await call('POST', `/containers/${id}/update`, { body: { Memory: 1 } })).status, 400);
  assert.equal((await call('POST', `/containers/${id}/restart?t=0`)).status, 204);
  assert.equal(cg('memory', 'memory.limit_in_bytes'), String(96 << 20), 'kept across a restart');
  assert.equal((await call('POST', `/containers/${id}/kill`)).status, 204);
  const stopped = (await call('GET', `/containers/${id}/stats?stream=false`)).json<Stats>();
  assert.equal(stopped.read, '0001-01-01T00:00:00Z');
  assert.equal(stopped.name, '/busy1');
  assert.equal((await call('DELETE', `/containers/${id}`)).status, 204);
});

test('exec: create, start hijacked with demuxed streams, inspect ExitCode/Running/Pid; detached; a TTY resized before it ran; started twice 409', async () => {
  const id = await run(['sleep', '1000']);
  const mk = async (cfg: Record<string, unknown>) => {
    const r = await call('POST', `/containers/${id}/exec`, { body: { AttachStdout: true, AttachStderr: true, ...cfg } });
    assert.equal(r.status, 201, r.body.toString());
    return r.json<{ Id: string }>().Id;
  };
  const e1 = await mk({ Cmd: ['sh', '-c', 'echo o; echo e >&2; cat; exit 3'], AttachStdin: true });
  const h = await hijack(`/exec/${e1}/start`, { Detach: false, Tty: false });
  assert.match(h.head, /^HTTP\/1.1 101 UPGRADED/);
  h.s.write('from stdin\n');
  h.s.end();
  await h.ended;
  const f = demux(h.data());
  assert.equal(textOf(f, 1), 'o\nfrom stdin\n');
  assert.equal(textOf(f, 2), 'e\n');
  const i1 = (await call('GET', `/exec/${e1}/json`)).json<{ ExitCode: number; Running: boolean; Pid: number; ContainerID: string }>();
  assert.equal(i1.ExitCode, 3);
  assert.equal(i1.Running, false);
  assert.ok(i1.Pid > 0);
  assert.equal(i1.ContainerID, id);
  const again = await call('POST', `/exec/${e1}/start`, { body: { Detach: true } });
  assert.equal(again.status, 409);
  // detached: Running while it runs, its exit code afterwards, its pid a process of the container
  const e2 = await mk({ Cmd: ['sh', '-c', 'sleep 1; exit 4'] });
  const d = await call('POST', `/exec/${e2}/start`, { body: { Detach: true } });
  assert.equal(d.status, 200);
  const i2 = (await call('GET', `/exec/${e2}/json`)).json<{ Running: boolean; Pid: number; ExitCode: number | null }>();
  assert.equal(i2.Running, true);
  assert.ok(i2.Pid > 0 && existsSync(`/proc/${i2.Pid}`));
  const done = await until('exec exit', async () => {
    const x = (await call('GET', `/exec/${e2}/json`)).json<{ Running: boolean; ExitCode: number | null }>();
    return x.Running ? undefined : x;
  });
  assert.equal(done.ExitCode, 4);
  // a TTY: the size asked for before the start is its size
  const e3 = await mk({ Cmd: ['stty', 'size'], Tty: true });
  assert.equal((await call('POST', `/exec/${e3}/resize?h=33&w=111`)).status, 200);
  const t = await hijack(`/exec/${e3}/start`, { Detach: false, Tty: true });
  await t.ended;
  assert.equal(t.data().toString(), '33 111\r\n');
  assert.equal((await call('GET', '/exec/nosuch/json')).status, 404);
  const stopped = await create({ Cmd: ['true'] });
  const ns = await call('POST', `/containers/${stopped}/exec`, { body: { Cmd: ['true'] } });
  assert.equal(ns.status, 409);
  assert.match(ns.json<{ message: string }>().message, /is not running/);
  const empty = await call('POST', `/containers/${id}/exec`, { body: { Cmd: [] } });
  assert.equal(empty.status, 400);
  await call('DELETE', `/containers/${stopped}`);
  await call('DELETE', `/containers/${id}?force=1`);
});

test('archive: HEAD gives the stat header, GET a tar of the path, PUT extracts (noOverwriteDirNonDir, copyUIDGID)', async () => {
  const id = await run(['sh', '-c', 'mkdir -p /data/sub && echo hello > /data/sub/f && sleep 1000']);
  await until('setup', async () => ((await call('HEAD', `/containers/${id}/archive?path=/data/sub/f`)).status === 200) || undefined);
  const head = await call('HEAD', `/containers/${id}/archive?path=/data/sub/f`);
  const stat = JSON.parse(Buffer.from(String(head.headers['x-docker-container-path-stat']), 'base64').toString()) as { name: string; size: number; mode: number; linkTarget: string };
  assert.deepEqual({ name: stat.name, size: stat.size, linkTarget: stat.linkTarget }, { name: 'f', size: 6, linkTarget: '' });
  const get = await call('GET', `/containers/${id}/archive?path=/data/sub`);
  assert.equal(get.status, 200);
  assert.equal(get.headers['content-type'], 'application/x-tar');
  const names: string[] = [];
  for (let i = 0; i + 512 <= get.body.length; ) {
    const name = get.body.subarray(i, i + 100).toString().replace(/\0.*$/s, '');
    if (!name) break;
    names.push(name);
    const size = parseInt(get.body.subarray(i + 124, i + 136).toString().trim() || '0', 8);
    i += 512 + Math.ceil(size / 512) * 512;
  }
  assert.deepEqual(names, ['sub/', 'sub/f']);
  const missing = await call('HEAD', `/containers/${id}/archive?path=/nope`);
  assert.equal(missing.status, 404);
  const tar = layerTar([{ path: 'new/', type: 'dir' }, { path: 'new/g', type: 'file', data: 'put\n', uid: 7, gid: 8 }]);
  const put = await call('PUT', `/containers/${id}/archive?path=/data`, { raw: tar });
  assert.equal(put.status, 200, put.body.toString());
  const cat = await engine.containers.exec(id, ['sh', '-c', 'cat /data/new/g; stat -c %u:%g /data/new/g']);
  assert.equal(cat.stdout.toString(), 'put\n7:8\n');
  // noOverwriteDirNonDir: a file over a directory is refused, with Docker's words
  const over = await call('PUT', `/containers/${id}/archive?path=/data&noOverwriteDirNonDir=true`, { raw: layerTar([{ path: 'sub', type: 'file', data: 'x' }]) });
  assert.equal(over.status, 400);
  assert.match(over.json<{ message: string }>().message, /cannot overwrite directory/);
  // copyUIDGID: the container user's owner (here root: User is unset)
  const own = await call('PUT', `/containers/${id}/archive?path=/data&copyUIDGID=true`, { raw: layerTar([{ path: 'h', type: 'file', data: 'h', uid: 55, gid: 66 }]) });
  assert.equal(own.status, 200);
  assert.equal((await engine.containers.exec(id, ['stat', '-c', '%u:%g', '/data/h'])).stdout.toString(), '55:66\n');
  const noPath = await call('GET', `/containers/${id}/archive`);
  assert.equal(noPath.status, 400);
  await call('DELETE', `/containers/${id}?force=1`);
});

test('CVE-2018-15664 family: archive paths with .. and through symlinks stay in the container; a tar that leaves the directory is refused, nothing written', async () => {
  const hostMark = join(work, 'host-secret');
  const id = await run(['sh', '-c', `mkdir /box && ln -s / /box/root && ln -s ${work} /box/work && echo inside > /etc/marker && sleep 1000`]);
  await until('setup', async () => ((await call('HEAD', `/containers/${id}/archive?path=/etc/marker`)).status === 200) || undefined);
  // .. above the container's root is its root: the container's /etc/marker, not the host's
  const up = await call('GET', `/containers/${id}/archive?path=/../../../../etc/marker`);
  assert.equal(up.status, 200);
  assert.ok(up.body.includes('inside\n'));
  const hostOnly = await call('HEAD', `/containers/${id}/archive?path=/../../..${work}`);
  assert.equal(hostOnly.status, 404, 'the host path does not exist in the container');
  // through a symlink to a host path: resolved in the container (nothing there)
  const viaLink = await call('PUT', `/containers/${id}/archive?path=/box/work`, { raw: layerTar([{ path: 'host-secret', type: 'file', data: 'owned' }]) });
  assert.ok(viaLink.status === 200 || viaLink.status === 404 || viaLink.status === 400, viaLink.body.toString());
  assert.equal(existsSync(hostMark), false, 'nothing written on the host through the link');
  // a tar whose entries climb out of the target directory
  for (const entries of [
    [{ path: '../../../../' + hostMark.slice(1), type: 'file' as const, data: 'owned' }],
    [{ path: 'ln', type: 'symlink' as const, target: work }, { path: 'ln/host-secret', type: 'file' as const, data: 'owned' }],
  ]) {
    const r = await call('PUT', `/containers/${id}/archive?path=/box`, { raw: layerTar(entries) });
    assert.ok(r.status >= 400 && r.status < 500 || r.status === 200, `status ${r.status}: ${r.body.toString()}`);
    if (r.status !== 200) assert.ok(r.json<{ message: string }>().message.length > 0);
    assert.equal(existsSync(hostMark), false, 'nothing written on the host');
  }
  const garbage = await call('PUT', `/containers/${id}/archive?path=/box`, { raw: Buffer.from('this is not a tar archive at all'.repeat(40)) });
  assert.equal(garbage.status, 400, garbage.body.toString());
  // the server still serves, and the container's store has no leftovers
  assert.equal((await call('GET', '/_ping')).status, 200);
  await call('DELETE', `/containers/${id}?force=1`);
  assert.deepEqual(storeOrphans(t.root, (await engine.containers.list({ all: true })).map((c) => c.Id)), []);
});

test('commit: container, repo, tag, comment, author, changes (repeated) and a config body merged with the container\'s', async () => {
  const id = await run(['sh', '-c', 'echo x > /x'], { Env: ['A=1', 'B=2'], Labels: { from: 'ctr' } });
  await until('exit', async () => !(await inspect(id)).State.Running);
  const r = await call('POST', `/commit?container=${id}&repo=committed&tag=v1&comment=msg&author=me&changes=${encodeURIComponent('ENV C=3')}&changes=${encodeURIComponent('EXPOSE 80')}`, {
    body: { Env: ['A=override'], Cmd: ['cat', '/x'], Labels: { from: 'body' } },
  });
  assert.equal(r.status, 201, r.body.toString());
  type Img = { Author: string; Comment: string; Config: { Cmd: string[]; Env: string[]; Labels: Record<string, string>; ExposedPorts?: Record<string, object> } };
  const img = (await engine.images.inspect('committed:v1')) as unknown as Img;
  assert.equal(img.Author, 'me');
  assert.equal(img.Comment, 'msg');
  assert.deepEqual(img.Config.Cmd, ['cat', '/x']);
  // Docker's merge: the body's and the changes' variables, then the container's others (its
  // own, then the image's, which create merged into the container's config)
  const imageEnv = ((await engine.images.inspect('busybox')) as unknown as Img).Config.Env;
  assert.ok(imageEnv.length > 0, 'the image has variables of its own');
  assert.deepEqual(img.Config.Env, ['A=override', 'C=3', 'B=2', ...imageEnv]);
  assert.deepEqual(img.Config.Labels, { from: 'body' });
  assert.deepEqual(Object.keys(img.Config.ExposedPorts ?? {}), ['80/tcp']);
  const out = await run(['cat', '/x'], { Image: 'committed:v1' });
  await until('exit', async () => !(await inspect(out)).State.Running);
  assert.equal(textOf(demux((await call('GET', `/containers/${out}/logs?stdout=1`)).body), 1), 'x\n');
  const nul = await call('POST', `/commit?container=${id}&repo=committed&tag=v2`, { raw: Buffer.from('null'), headers: { 'Content-Type': 'application/json' } });
  assert.equal(nul.status, 201, 'the docker CLI sends null');
  assert.deepEqual(((await engine.images.inspect('committed:v2')) as unknown as Img).Config.Env, ['A=1', 'B=2', ...imageEnv]);
  assert.equal((await call('POST', '/commit?container=nosuch')).status, 404);
  const badChange = await call('POST', `/commit?container=${id}&changes=${encodeURIComponent('FROB x')}`);
  assert.equal(badChange.status, 400);
  await call('DELETE', `/containers/${id}`);
  await call('DELETE', `/containers/${out}`);
});

test('top (ps_args), changes, export, pause/unpause, list filters and size, prune', async () => {
  const id = await run(['sh', '-c', 'touch /added; rm /etc/motd 2>/dev/null; sleep 1000'], { Labels: { role: 'top' } }, 'topper');
  await until('setup', async () => ((await call('GET', `/containers/${id}/changes`)).json<unknown[] | null>()?.length ?? 0) > 0 || undefined);
  const top = (await call('GET', `/containers/${id}/top?ps_args=-o%20pid,comm`)).json<{ Titles: string[]; Processes: string[][] }>();
  assert.deepEqual(top.Titles, ['PID', 'COMMAND']);
  assert.ok(top.Processes.some((p) => p[1] === 'sleep'));
  const changes = (await call('GET', `/containers/${id}/changes`)).json<{ Kind: number; Path: string }[]>();
  assert.ok(changes.some((c) => c.Path === '/added' && c.Kind === 1));
  const exp = await call('GET', `/containers/${id}/export`);
  assert.equal(exp.status, 200);
  assert.ok(exp.body.includes('added'));
  assert.equal((await call('POST', `/containers/${id}/pause`)).status, 204);
  assert.equal((await inspect(id)).State.Status, 'paused');
  assert.equal((await call('POST', `/containers/${id}/pause`)).status, 409);
  assert.equal((await call('POST', `/containers/${id}/unpause`)).status, 204);
  const filtered = (await call('GET', `/containers/json?filters=${encodeURIComponent(JSON.stringify({ label: ['role=top'] }))}&size=1`)).json<{ Names: string[]; SizeRw: number; Status: string }[]>();
  assert.deepEqual(filtered.map((c) => c.Names), [['/topper']]);
  assert.ok(filtered[0]!.SizeRw >= 0);
  assert.match(filtered[0]!.Status, /^Up /);
  assert.equal((await call('GET', `/containers/json?filters=${encodeURIComponent('{"status":["bogus"]}')}`)).status, 400);
  const exited = await run(['true']);
  await until('exit', async () => !(await inspect(exited)).State.Running);
  const pruned = (await call('POST', '/containers/prune')).json<{ ContainersDeleted: string[]; SpaceReclaimed: number }>();
  assert.ok(pruned.ContainersDeleted.includes(exited));
  assert.ok(!pruned.ContainersDeleted.includes(id));
  await call('DELETE', `/containers/${id}?force=1`);
});
