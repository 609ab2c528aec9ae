/**
 * The event log and engine.events(): Docker's message shape, its filter rules, the since and
 * until windows, the retention bound, and the times the docker CLI computes for --since and
 * --until (compared with what /usr/bin/docker sends to a recording endpoint: a peer that
 * records the request and answers an empty stream; it stands in for no part of layerbox).
 * Live streams across processes: a `layerbox` CLI process appends, an engine in this
 * process streams, and neither blocks the other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, eventFilter, eventTimestamp, type EngineEvent } from './index.js';
import { openDatabase } from '../metadata/db.js';
import { EVENT_RETENTION, EventLog } from '../metadata/events.js';
import { eventStream, parseTimestamp, toEngineEvent } from './events.js';
import { lbp, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';

const DOCKER = '/usr/bin/docker';

function ev(type: string, action: string, id: string, attributes: Record<string, string> = {}): EngineEvent {
  return toEngineEvent({ seq: 1, timeNano: 1_700_000_000_123_456_000n, type, action, actor: id, attributes });
}

test("events carry Docker's fields in Docker's order, with the deprecated ones for containers and images only", () => {
  const c = ev('container', 'die', 'abc', { name: 'x', image: 'busybox', exitCode: '3' });
  assert.deepEqual(Object.keys(c), ['status', 'id', 'from', 'Type', 'Action', 'Actor', 'scope', 'time', 'timeNano']);
  assert.equal(JSON.stringify(c), '{"status":"die","id":"abc","from":"busybox","Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"3","image":"busybox","name":"x"}},"scope":"local","time":1700000000,"timeNano":1700000000123456000}');
  assert.deepEqual(Object.keys(ev('image', 'tag', 'sha256:1', { name: 'a:b' })), ['status', 'id', 'Type', 'Action', 'Actor', 'scope', 'time', 'timeNano']);
  assert.deepEqual(Object.keys(ev('volume', 'create', 'v', { driver: 'local' })), ['Type', 'Action', 'Actor', 'scope', 'time', 'timeNano']);
});

test("the events filter follows dockerd's rules: keys ANDed, values ORed, fuzzy names, image with and without tag, labels all", () => {
  const start = ev('container', 'start', 'aaaa1111', { name: 'web', image: 'busybox:latest', tier: 'front' });
  const execStart = ev('container', 'exec_start: sh -c ls', 'aaaa1111', { name: 'web', image: 'busybox' });
  const health = ev('container', 'health_status: healthy', 'aaaa1111', { name: 'web', image: 'busybox' });
  const pull = ev('image', 'pull', 'busybox:latest', { name: 'busybox' });
  const tag = ev('image', 'tag', 'sha256:feed', { name: 'me/app:1' });
  const vol = ev('volume', 'create', 'data', { driver: 'local' });
  const net = ev('network', 'connect', 'n123', { name: 'front', type: 'bridge', container: 'aaaa1111' });
  const all = [start, execStart, health, pull, tag, vol, net];
  const pick = (f: Record<string, string[]>) => all.filter(eventFilter(f)).map((e) => `${e.Type} ${e.Action}`);
  assert.deepEqual(pick({}), all.map((e) => `${e.Type} ${e.Action}`));
  assert.deepEqual(pick({ type: ['volume', 'network'] }), ['volume create', 'network connect']);
  assert.deepEqual(pick({ event: ['start', 'create'] }), ['container start', 'volume create']);
  // health_status, exec_create and exec_start match as prefixes (moby #25798)
  assert.deepEqual(pick({ event: ['health_status'] }), ['container health_status: healthy']);
  assert.deepEqual(pick({ event: ['exec_start'] }), ['container exec_start: sh -c ls']);
  assert.deepEqual(pick({ action: ['start'] }), ['container start'], 'action: another name of event');
  // a name filter: ID or name, by prefix; it leaves out events of other types
  assert.deepEqual(pick({ container: ['we'] }), ['container start', 'container exec_start: sh -c ls', 'container health_status: healthy']);
  assert.deepEqual(pick({ container: ['aaaa'], type: ['container'], event: ['start'] }), ['container start']);
  assert.deepEqual(pick({ volume: ['data'] }), ['volume create']);
  assert.deepEqual(pick({ network: ['front'] }), ['network connect']);
  // image: the container's image, the image's ID or name, with the tag stripped
  assert.deepEqual(pick({ image: ['busybox'] }), ['container start', 'container exec_start: sh -c ls', 'container health_status: healthy', 'image pull']);
  assert.deepEqual(pick({ image: ['me/app'] }), ['image tag']);
  assert.deepEqual(pick({ image: ['sha256:feed'] }), ['image tag']);
  // labels: every one of them
  assert.deepEqual(pick({ label: ['tier'] }), ['container start']);
  assert.deepEqual(pick({ label: ['tier=front', 'name=web'] }), ['container start']);
  assert.deepEqual(pick({ label: ['tier=back'] }), []);
  assert.deepEqual(pick({ scope: ['swarm'] }), []);
  // keys dockerd does not know are ignored, as dockerd ignores them
  assert.equal(pick({ bogus: ['x'] }).length, all.length);
});

test('since and until: Docker\'s sec.nanos form, the docker CLI\'s durations and dates, and bad values refused', () => {
  assert.equal(parseTimestamp('1704067200'), 1704067200_000000000n);
  assert.equal(parseTimestamp('1704067200.5'), 1704067200_500000000n);
  assert.equal(parseTimestamp('1704067200.000000123'), 1704067200_000000123n);
  assert.throws(() => parseTimestamp('abc'), /invalid timestamp/);
  const now = Date.UTC(2024, 0, 2, 15, 4, 5, 500);
  assert.equal(eventTimestamp('10m', now), String(Math.floor(now / 1000) - 600));
  assert.equal(eventTimestamp('1h30m', now), String(Math.floor(now / 1000) - 5400));
  assert.equal(eventTimestamp('2024-01-02T15:04:05Z'), '1704207845.000000000');
  assert.equal(eventTimestamp('2024-01-02T15:04:05.25+01:00'), '1704204245.250000000');
  assert.equal(eventTimestamp('1704067200.5'), '1704067200.5');
  assert.throws(() => eventTimestamp('yesterday'), /failed to parse value as time or duration: "yesterday"/);
  assert.throws(() => eventTimestamp('2024-13-45T99'), /parsing time/);
});

test('--since and --until become the timestamps the docker CLI sends', async () => {
  const fixed: [string, string][] = [
    ['2024-01-02T15:04:05Z', '1704207845.000000000'],
    ['2024-01-02T15:04:05.123456789Z', '1704207845.123456789'],
    ['2024-01-02T15:04:05+02:00', '1704200645.000000000'],
    ['1704067200.25', '1704067200.25'],
  ];
  for (const [v, want] of fixed) assert.equal(eventTimestamp(v), want, v);
  if (!existsSync(DOCKER)) {
    console.log('# /usr/bin/docker is not installed: checked against the expectations in this file only');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'lb-evts-'));
  const sock = join(dir, 'rec.sock');
  const seen: URL[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://docker');
    if (url.pathname.endsWith('/_ping')) {
      res.writeHead(200, { 'API-Version': '1.41', OSType: 'linux' });
      res.end('OK');
      return;
    }
    seen.push(url);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end();
  });
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const values = ['10m', '90s', '2024-01-02', '2024-01-02T15', '2024-01-02T15:04', '2024-01-02T15:04:05', '2024-01-02T15:04:05Z', '2024-01-02T15:04:05.123456789Z', '2024-01-02T15:04:05+02:00', '2024-01-02T15:04:05.5-03:30', '1704067200', '1704067200.25'];
    for (const v of values) {
      seen.length = 0;
      const before = Date.now();
      const code = await new Promise<number | null>((res) => {
        const c = spawn(DOCKER, ['events', '--since', v, '--until', v], { env: { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: dir }, stdio: 'ignore' });
        c.on('close', res);
      });
      assert.equal(code, 0, `docker events --since ${v}`);
      const u = seen[0]!;
      const ours = eventTimestamp(v, before);
      const theirs = u.searchParams.get('since')!;
      assert.equal(u.searchParams.get('until'), theirs);
      if (/^\d+[ms]$/.test(v)) assert.ok(Math.abs(Number(ours) - Number(theirs)) <= 2, `${v}: ours ${ours}, docker's ${theirs}`);
      else assert.equal(ours, theirs, v);
    }
  } finally {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the log keeps the last 10,000 events; since reaches back that far, until ends the stream, a past until gives only the past', async () => {
  const t = tempRoot('lb-evlog-');
  const db = openDatabase(t.root);
  const log = new EventLog(db);
  try {
    const first = Date.now();
    for (let i = 0; i < EVENT_RETENTION + 200; i++) log.append('container', 'start', `c${i}`, { name: `n${i}` });
    const kept = (db.prepare('SELECT COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM events').get() as { n: number; lo: number; hi: number });
    assert.ok(kept.n >= EVENT_RETENTION && kept.n < EVENT_RETENTION + 64, `${kept.n} events kept`);
    assert.equal(kept.hi, EVENT_RETENTION + 200);
    // a past window: the events in it, then the end
    const past: EngineEvent[] = [];
    for await (const e of eventStream(log, { since: (first - 1000) / 1000, until: Date.now() / 1000, filters: { container: ['c10199'] } })) past.push(e);
    assert.deepEqual(past.map((e) => e.Actor.ID), ['c10199']);
    // since in the past, until just ahead: past events, live ones, then the end at until
    const until = (Date.now() + 600) / 1000;
    const got: string[] = [];
    const s = eventStream(log, { since: (Date.now() - 50) / 1000, until, filters: { container: ['live'] } });
    setTimeout(() => log.append('container', 'die', 'live1', { name: 'live1' }), 100);
    for await (const e of s) got.push(`${e.Action} ${e.Actor.ID}`);
    assert.deepEqual(got, ['die live1']);
    assert.ok(Date.now() >= until * 1000 - 5, 'the stream ended at until');
    assert.throws(() => eventStream(log, { since: '20', until: '10' }), /`since` time \(20\) cannot be after `until` time \(10\)/);
    // an aborted stream ends
    const ac = new AbortController();
    const live = eventStream(log, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    for await (const _ of live) assert.fail('no events');
  } finally {
    log.close();
    db.close();
    t.cleanup();
  }
});

test('a stream in one process sees what CLI processes do, at once, and holds nothing they need', async () => {
  const t = tempRoot('lb-evcli-');
  try {
    const load = await lbp(t.root, ['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
    assert.equal(load.code, 0, load.stderr);
    const engine = await Engine.open({ root: t.root });
    const ac = new AbortController();
    const got: EngineEvent[] = [];
    const done = (async () => {
      for await (const e of engine.events({ signal: ac.signal, filters: { type: ['container'] } })) {
        got.push(e);
        if (e.Action === 'destroy') ac.abort();
      }
    })();
    try {
      const r = await lbp(t.root, ['run', '--rm', '--network', 'none', '--name', 'seen', '-l', 'k=v', 'bench/busybox', 'sh', '-c', 'exit 4']);
      assert.equal(r.code, 4, r.stderr);
      await done;
      assert.deepEqual(got.map((e) => e.Action), ['create', 'attach', 'start', 'die', 'destroy']);
      const die = got[3]!;
      assert.deepEqual(die.Actor.Attributes, { exitCode: '4', image: 'bench/busybox', k: 'v', name: 'seen' });
      assert.equal(die.from, 'bench/busybox');
      assert.equal(die.status, 'die');
      // the times are in order and fit Docker's: time is timeNano's seconds
      for (const e of got) assert.equal(e.time, Math.floor(e.timeNano / 1e9));
      assert.deepEqual([...got].sort((a, b) => a.timeNano - b.timeNano), got);
    } finally {
      ac.abort();
      engine.close();
    }
  } finally {
    t.cleanup();
  }
});
