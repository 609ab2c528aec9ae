/**
 * dockerode (npm, with docker-modem) against `layerbox serve` (issue 11): a pull from a
 * local registry followed with modem.followProgress (each event and the final list),
 * docker.run and attach with stdout and stderr demultiplexed by modem.demuxStream, exec with
 * its exit code from exec inspect, and getEvents — a stream that sees a container's events
 * while the other requests, the container's own among them, are answered.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { join } from 'node:path';
import Docker from 'dockerode';
import { FIXTURES } from '../testing/tree.js';
import { startServe, type RunningServe } from '../testing/serve.js';
import { startRegistry, type TestRegistry } from '../registry/testing/registries.js';

const BASE = join(FIXTURES, 'busybox-base.docker.tar');
const BASE_ID = 'sha256:a194d3cfff9c9ed0cf00ec8506efeb7a5a8b230d6454f7514b7bb2dd67540533';

let serve: RunningServe;
let registry: TestRegistry;
let docker: Docker;
let image: string;
let layerBlob: string;
let manifestDigest: string;
/** containers the tests made, removed at the end whatever happened */
const made: string[] = [];

before(async () => {
  registry = await startRegistry({ auth: 'none' });
  serve = await startServe();
  image = `${registry.host}/dockerode/busybox:1`;
  for (const args of [['load', '-i', BASE], ['tag', 'bench/busybox:latest', image], ['push', image], ['rmi', 'bench/busybox:latest', image]]) {
    const r = await serve.docker(args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  }
  const m = await fetch(`${registry.url}/v2/dockerode/busybox/manifests/1`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
  manifestDigest = m.headers.get('docker-content-digest') ?? '';
  layerBlob = ((await m.json()) as { layers: { digest: string }[] }).layers[0]!.digest;
  docker = new Docker({ socketPath: serve.sock, version: 'v1.41' });
});

after(async () => {
  for (const id of made) await docker?.getContainer(id).remove({ force: true }).catch(() => {});
  await serve?.stop();
  await registry?.stop();
});

interface Progress {
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
}

/** A stream's text, read to its end. */
function collect(s: PassThrough): Promise<string> {
  let text = '';
  s.on('data', (b: Buffer) => (text += b.toString()));
  return once(s, 'end').then(() => text);
}

test('dockerode pull: followProgress reports each event and finishes with all of them; a missing tag is a 404', async () => {
  const stream = await docker.pull(image);
  const seen: Progress[] = [];
  const output = await new Promise<Progress[]>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, out: Progress[]) => (err ? reject(err) : resolve(out)), (e: Progress) => seen.push(e));
  });
  assert.deepEqual(output, seen, 'the final result is every event onProgress saw, in order');
  const layer = layerBlob.slice(7, 19);
  const steps = output.filter((e, i) => !(e.status === 'Downloading' && output[i + 1]?.status === 'Downloading')).map((e) => [e.id ?? '', e.status]);
  assert.deepEqual(steps, [
    ['1', 'Pulling from dockerode/busybox'],
    [layer, 'Pulling fs layer'],
    [layer, 'Downloading'],
    [layer, 'Verifying Checksum'],
    [layer, 'Download complete'],
    [layer, 'Extracting'],
    [layer, 'Pull complete'],
    ['', `Digest: ${manifestDigest}`],
    ['', `Status: Downloaded newer image for ${image}`],
  ]);
  const downloads = output.filter((e) => e.status === 'Downloading');
  assert.deepEqual(downloads.at(-1)!.progressDetail, { current: 1056940, total: 1056940 });
  const img = await docker.getImage(image).inspect();
  assert.equal(img.Id, BASE_ID);
  assert.deepEqual(img.RepoTags, [image]);
  assert.deepEqual(img.RepoDigests, [`${registry.host}/dockerode/busybox@${manifestDigest}`]);
  // pulled again: up to date
  const again: Progress[] = await new Promise(async (resolve, reject) => docker.modem.followProgress(await docker.pull(image), (err: Error | null, out: Progress[]) => (err ? reject(err) : resolve(out))));
  assert.deepEqual(again.map((e) => e.status), ['Pulling from dockerode/busybox', `Digest: ${manifestDigest}`, `Status: Image is up to date for ${image}`]);
  await assert.rejects(docker.pull(`${registry.host}/dockerode/busybox:nope`), (e: Error & { statusCode?: number }) => {
    assert.equal(e.statusCode, 404);
    assert.match(e.message, /manifest for 127\.0\.0\.1:\d+\/dockerode\/busybox:nope not found: manifest unknown/);
    return true;
  });
});

test('dockerode run: stdout and stderr apart through modem.demuxStream; the exit code from wait', async () => {
  const out = new PassThrough();
  const err = new PassThrough();
  const texts = Promise.all([collect(out), collect(err)]);
  const [data, container] = (await docker.run(image, ['sh', '-c', 'echo one; echo uno >&2; echo two; echo dos >&2; exit 9'], [out, err], { Tty: false, name: 'dode-run', HostConfig: { NetworkMode: 'none' } })) as [{ StatusCode: number }, Docker.Container];
  made.push(container.id);
  assert.deepEqual(data, { StatusCode: 9, Error: null });
  assert.deepEqual(await texts, ['one\ntwo\n', 'uno\ndos\n']);
  const info = await container.inspect();
  assert.equal(info.State.ExitCode, 9);
  assert.equal(info.Name, '/dode-run');
  // attach to a container again (logs replayed), demultiplexed by hand
  const c2 = await docker.createContainer({ Image: image, Cmd: ['sh', '-c', 'echo a; sleep 0.1; echo b >&2; sleep 0.1; echo c'], name: 'dode-attach', HostConfig: { NetworkMode: 'none' } });
  made.push(c2.id);
  const stream = (await c2.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
  const o2 = new PassThrough();
  const e2 = new PassThrough();
  docker.modem.demuxStream(stream, o2, e2);
  stream.on('end', () => {
    o2.end();
    e2.end();
  });
  const t2 = Promise.all([collect(o2), collect(e2)]);
  await c2.start();
  assert.deepEqual(await c2.wait(), { StatusCode: 0, Error: null });
  assert.deepEqual(await t2, ['a\nc\n', 'b\n']);
  // logs, multiplexed: the same frames
  const logs = (await c2.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  const frames: [number, string][] = [];
  for (let i = 0; i < logs.length; ) {
    const n = logs.readUInt32BE(i + 4);
    frames.push([logs[i]!, logs.subarray(i + 8, i + 8 + n).toString()]);
    i += 8 + n;
  }
  assert.deepEqual(frames, [[1, 'a\n'], [2, 'b\n'], [1, 'c\n']]);
});

test('dockerode exec: hijacked start demultiplexed, the exit code from exec inspect; a TTY exec is one stream', async () => {
  const c = await docker.createContainer({ Image: image, Cmd: ['sleep', '300'], name: 'dode-exec', HostConfig: { NetworkMode: 'none' } });
  made.push(c.id);
  await c.start();
  const exec = await c.exec({ Cmd: ['sh', '-c', 'echo "out $X"; echo err >&2; exit 42'], Env: ['X=dockerode'], AttachStdout: true, AttachStderr: true });
  const before = await exec.inspect();
  assert.equal(before.Running, false);
  assert.equal(before.ExitCode, null);
  const stream = await exec.start({ hijack: true, stdin: false });
  const o = new PassThrough();
  const e = new PassThrough();
  docker.modem.demuxStream(stream, o, e);
  stream.on('end', () => {
    o.end();
    e.end();
  });
  assert.deepEqual(await Promise.all([collect(o), collect(e)]), ['out dockerode\n', 'err\n']);
  const after = await exec.inspect();
  assert.equal(after.ExitCode, 42);
  assert.equal(after.Running, false);
  assert.equal(after.ContainerID, c.id);
  // dockerd leaves out an empty user (omitempty)
  assert.deepEqual(after.ProcessConfig, { tty: false, entrypoint: 'sh', arguments: ['-c', 'echo "out $X"; echo err >&2; exit 42'], privileged: false });
  // with a TTY: the bytes as the terminal gives them
  const tty = await c.exec({ Cmd: ['sh', '-c', 'echo t1; echo t2 >&2; exit 3'], AttachStdout: true, AttachStderr: true, Tty: true, User: '1000' });
  const ts = await tty.start({ hijack: true, stdin: false, Tty: true });
  let text = '';
  ts.on('data', (b: Buffer) => (text += b.toString()));
  await once(ts, 'end');
  assert.equal(text, 't1\r\nt2\r\n');
  const ti = await tty.inspect();
  assert.equal(ti.ExitCode, 3);
  assert.deepEqual(ti.ProcessConfig, { tty: true, entrypoint: 'sh', arguments: ['-c', 'echo t1; echo t2 >&2; exit 3'], privileged: false, user: '1000' });
  await c.kill();
  assert.deepEqual(await c.wait(), { StatusCode: 137, Error: null });
});

interface DockerEvent {
  Type: string;
  Action: string;
  status?: string;
  id?: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  time: number;
  timeNano: number;
}

/** Calls `on` with each JSON line of an event stream. */
function eachEvent(s: NodeJS.ReadableStream, on: (e: DockerEvent) => void): void {
  let buf = '';
  s.on('data', (b: Buffer) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line) on(JSON.parse(line) as DockerEvent);
    }
  });
}

test('dockerode getEvents: the stream sees a container from create to destroy while other requests are answered', async () => {
  const name = 'dode-events';
  const events = (await docker.getEvents({ filters: { type: ['container'], container: [name] } })) as NodeJS.ReadableStream & { destroy(): void };
  // a second stream open at the same time, for every event type
  const all = (await docker.getEvents({})) as NodeJS.ReadableStream & { destroy(): void };
  const got: DockerEvent[] = [];
  const everything: DockerEvent[] = [];
  const seen = { one: () => {}, all: () => {} };
  const destroyed = Promise.all([new Promise<void>((resolve) => (seen.one = resolve)), new Promise<void>((resolve) => (seen.all = resolve))]);
  eachEvent(events, (e) => {
    got.push(e);
    if (e.Action === 'destroy') seen.one();
  });
  eachEvent(all, (e) => {
    everything.push(e);
    if (e.Action === 'destroy' && e.Actor.Attributes.name === name) seen.all();
  });
  // and six more, each for this label's start events only
  const starts = await Promise.all(
    Array.from({ length: 6 }, async () => {
      const s = (await docker.getEvents({ filters: { event: ['start'], label: ['test.kind=events'] } })) as NodeJS.ReadableStream & { destroy(): void };
      const list: DockerEvent[] = [];
      eachEvent(s, (e) => list.push(e));
      return { s, list };
    }),
  );
  // the streams are open: other requests go on, promptly
  const t0 = Date.now();
  assert.equal(((await docker.ping()) as Buffer).toString(), 'OK');
  const version = await docker.version();
  assert.equal(version.ApiVersion, '1.41');
  assert.ok(Date.now() - t0 < 5000, `ping and version took ${Date.now() - t0} ms with eight event streams open`);
  const c = await docker.createContainer({ Image: image, Cmd: ['sh', '-c', 'exit 5'], name, Labels: { 'test.kind': 'events' }, HostConfig: { NetworkMode: 'none' } });
  made.push(c.id);
  await c.start();
  assert.deepEqual(await c.wait(), { StatusCode: 5, Error: null });
  assert.equal((await docker.listContainers({ all: true, filters: { name: [name] } })).length, 1);
  await c.remove();
  await Promise.race([destroyed, new Promise((_, rej) => setTimeout(() => rej(new Error(`no destroy event: ${JSON.stringify(got)}`)), 15_000).unref())]);
  events.destroy();
  all.destroy();
  // each label stream got the start (and, filtered, nothing else)
  for (const { s, list } of starts) {
    for (const until = Date.now() + 10_000; list.length === 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    s.destroy();
    assert.deepEqual(list.map((e) => [e.Action, e.Actor.ID]), [['start', c.id]]);
  }
  assert.deepEqual(
    got.map((e) => [e.Type, e.Action, e.Actor.ID, e.Actor.Attributes.name, e.Actor.Attributes.image, e.Actor.Attributes['test.kind'], e.Actor.Attributes.exitCode]),
    [
      ['container', 'create', c.id, name, image, 'events', undefined],
      ['container', 'start', c.id, name, image, 'events', undefined],
      ['container', 'die', c.id, name, image, 'events', '5'],
      ['container', 'destroy', c.id, name, image, 'events', undefined],
    ],
  );
  for (let i = 1; i < got.length; i++) assert.ok(got[i]!.timeNano >= got[i - 1]!.timeNano);
  // the unfiltered stream saw them too (among the rest)
  assert.deepEqual(everything.filter((e) => e.Actor.ID === c.id && e.Type === 'container').map((e) => e.Action), ['create', 'start', 'die', 'destroy']);
  // the server still answers once both streams are gone
  assert.equal((await docker.listContainers({ all: true, filters: { name: [name] } })).length, 0);
});
