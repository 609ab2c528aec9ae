/**
 * Docker's command-line grammar, line by line: each command line parses to the options the
 * docker CLI (20.10, Debian's docker.io) derives from it — compared with what that CLI
 * actually sends to a recording endpoint (a peer that records requests and answers 500; it
 * stands in for no part of layerbox) — or fails with the docker CLI's message and exit code.
 * Where /usr/bin/docker is absent, the lines are checked against the expectations written
 * here (taken from that CLI), and the test says so.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCommand } from './main.js';
import { resolveCommand } from './command.js';
import { toCreateBody } from './runopts.js';
import { commitOptions, execConfig } from './containers.js';
import { ExitError } from './ctx.js';
import { parseFilterArgs } from '../engine/index.js';
import { lb, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';

const DOCKER = '/usr/bin/docker';
const haveDocker = existsSync(DOCKER);
const dir = mkdtempSync(join(tmpdir(), 'lb-grammar-'));
const sock = join(dir, 'rec.sock');
let server: Server;
const recorded: { method: string; url: URL; body: unknown }[] = [];

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://docker');
      if (url.pathname.endsWith('/_ping')) {
        res.writeHead(200, { 'API-Version': '1.41', OSType: 'linux', 'Docker-Experimental': 'false' });
        res.end('OK');
        return;
      }
      const text = Buffer.concat(chunks).toString();
      recorded.push({ method: req.method!, url, body: text ? JSON.parse(text) : undefined });
      // logs and exec look the container up first
      if (/^\/v1\.41\/containers\/[^/]+\/json$/.test(url.pathname)) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ Id: 'a'.repeat(64), Config: { Tty: false }, State: { Running: true, Paused: false, Restarting: false }, HostConfig: {} }));
        return;
      }
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ message: 'recorded' }));
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  if (!haveDocker) console.log('# /usr/bin/docker is not installed: lines are checked against the expectations in this file only');
});

after(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const ENV = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: dir, FROM_ENV: 'from-env-value' };

/** Runs the docker CLI asynchronously (the recording server lives in this process). */
function dockerAsync(args: string[], timeoutMs = 20000): Promise<{ req: (typeof recorded)[number] | undefined; all: typeof recorded; code: number | null; stderr: string }> {
  recorded.length = 0;
  return new Promise((res) => {
    const c = spawn(DOCKER, args, { env: ENV, stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs });
    if (process.env.GRAMMAR_DEBUG) console.log('# docker', args.join(' '));
    let err = '';
    c.stderr!.on('data', (b: Buffer) => (err += b));
    c.on('close', (code) => res({ req: recorded[recorded.length - 1], all: [...recorded], code, stderr: err }));
  });
}

function parse(argv: string[]) {
  process.env.FROM_ENV = 'from-env-value';
  const r = resolveCommand(rootCommand(), argv);
  assert.equal(r.kind, 'run', `${argv.join(' ')} parses to a command`);
  return r as Extract<typeof r, { kind: 'run' }>;
}

const isZero = (v: unknown): boolean =>
  v === undefined || v === null || v === 0 || v === '' || v === false || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every(isZero));

/** Every field either side sets to a non-zero value must be equal on the other side (Go's zero values and absent fields are alike). */
function sameOptions(ours: unknown, theirs: unknown, path = ''): string[] {
  if (isZero(ours) && isZero(theirs)) return [];
  if (Array.isArray(ours) || Array.isArray(theirs)) {
    const a = (ours ?? []) as unknown[];
    const b = (theirs ?? []) as unknown[];
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return [`${path}: ours ${JSON.stringify(ours)}, docker's ${JSON.stringify(theirs)}`];
    return a.flatMap((x, i) => sameOptions(x, b[i], `${path}[${i}]`));
  }
  if (typeof ours === 'object' && ours && typeof theirs === 'object' && theirs) {
    const out: string[] = [];
    for (const k of new Set([...Object.keys(ours), ...Object.keys(theirs)])) out.push(...sameOptions((ours as Record<string, unknown>)[k], (theirs as Record<string, unknown>)[k], `${path}.${k}`));
    return out;
  }
  return ours === theirs ? [] : [`${path}: ours ${JSON.stringify(ours)}, docker's ${JSON.stringify(theirs)}`];
}

function normalizeBody(b: Record<string, unknown>): Record<string, unknown> {
  const hc = (b.HostConfig ?? {}) as Record<string, unknown>;
  // Go map order: the docker CLI emits binds and the environment in a random order
  if (Array.isArray(hc.Binds)) hc.Binds = [...hc.Binds].sort();
  if (Array.isArray(b.Env)) b.Env = [...b.Env].sort();
  return b;
}

// ------------------------------------------------------------------ run / create

const CREATE_LINES: string[][] = [
  // the seeds' habits and Docker's forms of flags
  ['run', '-itd', '--rm=false', '-e=FOO=bar', '-m=8m', '-p', '8080:80', '-v', '/tmp:/data', '-v', '/anon', '--name', 'web', 'busybox', 'sh', '-c', 'echo hi'],
  ['run', '--rm=true', '-d=true', 'busybox', 'true'],
  ['run', '--detach=true', '--interactive=false', 'busybox'],
  ['run', '-h=myhost', '-u=1000:1000', '-w=/tmp', '-v=/tmp:/x:ro', '-p=9000:90/udp', 'busybox'],
  ['run', '-m64m', '-uroot', '-eA=1', 'busybox'],
  ['run', '-e', 'A=1', '-e', 'B=2', '-e', 'FROM_ENV', '-e', 'UNSET_IN_ENV', '-e', 'A=3', '-l', 'a=b', '--label', 'c', '--label=d=e=f', 'busybox'],
  // flags stop at the image: the rest is the command's
  ['run', 'busybox', 'ls', '--color', '-la', '--rm'],
  ['run', '--', 'busybox', 'echo', '--'],
  ['run', '-d', '-i', '-t', 'busybox', 'sh'],
  ['run', '-tid', 'busybox'],
  ['run', '-t', 'busybox', 'sh'],
  ['run', '-i', 'busybox', 'cat'],
  ['create', '-it', '--cpus', '1.5', '--pids-limit', '100', '--shm-size', '128m', '--restart', 'on-failure:3', 'busybox'],
  ['create', '--restart=always', '--memory=1g', '--cpus=0.5', 'busybox'],
  ['run', '--mount', 'type=bind,source=/tmp,target=/mnt,readonly', '--mount', 'type=tmpfs,dst=/cache,tmpfs-size=64m,tmpfs-mode=1770', '--tmpfs', '/run:rw,size=64m', '--tmpfs', '/scratch', 'busybox'],
  ['run', '--mount', 'source=vol1,target=/v', 'busybox'],
  ['run', '-P', '--expose', '7000-7002', '--expose=53/udp', '-p', '127.0.0.1:8081:81', '-p', '8000-8001:80-81', '-p', '90', 'busybox'],
  ['run', '--entrypoint=', 'busybox'],
  ['run', '--entrypoint', '/bin/sh', 'busybox', '-c', 'true'],
  ['run', '-a', 'stdout', '-a', 'STDERR', 'busybox'],
  ['run', '-a', 'stdin', '-i', 'busybox'],
  ['run', '--network', 'none', '--dns', '1.1.1.1', '--dns-search', 'example.com', '--dns-option', 'ndots:2', '--add-host', 'h:1.2.3.4', '--add-host=g:::1', 'busybox'],
  // user-defined networks: the aliases and the address go to the network's endpoint
  ['run', '--network', 'mynet', 'busybox'],
  ['run', '--network=mynet', '--network-alias', 'web', '--network-alias=w2', '--ip', '10.5.0.9', 'busybox'],
  ['create', '--net', 'proj_default', '--net-alias', 'db', 'busybox'],
  ['run', '--ip', '10.5.0.9', 'busybox'],
  ['run', '--network-alias', 'x', 'busybox'],
  ['run', '--network', 'bridge', '--ip', '10.77.0.9', 'busybox'],
  ['run', '--net=host', '--cap-add', 'NET_ADMIN', '--cap-add=SYS_TIME', '--cap-drop', 'MKNOD', '--security-opt', 'no-new-privileges', '--read-only', '--init', '--privileged=false', 'busybox'],
  ['run', '--init=false', '--ulimit', 'nofile=1024:2048', '--ulimit', 'nproc=100', '--sysctl', 'net.ipv4.ip_forward=1', '--group-add', '10', '--group-add=audio', '--stop-signal', 'SIGINT', '--stop-timeout', '5', 'busybox'],
  ['run', '--hostname', 'h1', '--domainname', 'example.org', '--user', 'nobody', '--workdir', '/w', 'busybox'],
  // healthchecks: Config.Healthcheck (durations in nanoseconds)
  ['run', '-d', '--health-cmd', 'wget -q -O- localhost || exit 1', '--health-interval', '1m30s', '--health-timeout=500ms', '--health-retries', '5', '--health-start-period', '2s', 'busybox'],
  ['create', '--health-interval=10s', 'busybox'],
  ['create', '--health-cmd=true', '--restart', 'unless-stopped', 'busybox'],
  ['run', '--no-healthcheck', '--restart=on-failure', 'busybox'],
];

test('run and create lines parse to the create body the docker CLI sends', async () => {
  const problems: string[] = [];
  for (const line of CREATE_LINES) {
    const r = parse(line);
    const [image, ...cmd] = r.args;
    const ours = normalizeBody(JSON.parse(JSON.stringify(toCreateBody(image!, cmd, r.values as never))));
    if (!haveDocker) {
      assert.equal(ours.Image, 'busybox', line.join(' '));
      continue;
    }
    const d = await dockerAsync(line);
    assert.ok(d.req && d.req.url.pathname === '/v1.41/containers/create', `${line.join(' ')}: docker sent ${d.req?.url} (${d.stderr})`);
    const theirs = normalizeBody(d.req!.body as Record<string, unknown>);
    for (const p of sameOptions(ours, theirs)) problems.push(`${line.join(' ')}: ${p}`);
    const name = d.req!.url.searchParams.get('name') ?? '';
    if ((r.values.name ?? '') !== name) problems.push(`${line.join(' ')}: name ours ${r.values.name}, docker's ${name}`);
  }
  assert.deepEqual(problems, []);
});

// ------------------------------------------------------------------ other commands

test('ps, images, logs, exec and commit lines parse to the request the docker CLI makes', async () => {
  const problems: string[] = [];
  const check = (what: string, ours: unknown, theirs: unknown) => {
    for (const p of sameOptions(ours, theirs)) problems.push(`${what}: ${p}`);
  };
  const filtersOf = (u: URL) => {
    const f = JSON.parse(u.searchParams.get('filters') ?? '{}') as Record<string, Record<string, boolean>>;
    return Object.fromEntries(Object.entries(f).map(([k, v]) => [k, Object.keys(v).sort()]));
  };
  const sorted = (f: Record<string, string[]>) => Object.fromEntries(Object.entries(f).map(([k, v]) => [k, [...v].sort()]));

  for (const line of [
    ['ps', '-a', '-n', '3', '--filter', 'status=exited', '-f', 'name=x', '-f', 'status=created'],
    ['ps', '-l', '-s', '--no-trunc'],
    ['ps', '-aq', '--filter=label=a=b'],
    ['ps', '--last=2', '-qs'],
  ]) {
    const r = parse(line);
    const o = r.values as unknown as { all: boolean; last: number; latest: boolean; size: boolean; filter: string[] };
    const limit = o.latest ? 1 : o.last > 0 ? o.last : 0;
    const ours = { all: o.all ? '1' : '', limit: limit ? String(limit) : '', size: o.size ? '1' : '', filters: sorted(parseFilterArgs(o.filter)) };
    if (!haveDocker) continue;
    const d = await dockerAsync(line);
    const u = d.req!.url;
    check(line.join(' '), ours, { all: u.searchParams.get('all') ?? '', limit: u.searchParams.get('limit') ?? '', size: u.searchParams.get('size') ?? '', filters: filtersOf(u) });
  }

  for (const line of [
    ['images', '-a', '--filter', 'dangling=true', 'busybox'],
    ['images', '-qa', '--filter=reference=bench/*'],
    ['image', 'ls', '--all=true'],
  ]) {
    const r = parse(line);
    const o = r.values as unknown as { all: boolean; filter: string[] };
    const f = parseFilterArgs(o.filter);
    if (r.args[0]) (f.reference ??= []).push(r.args[0]);
    const ours = { all: o.all ? '1' : '', filters: sorted(f) };
    if (!haveDocker) continue;
    const d = await dockerAsync(line);
    const u = d.req!.url;
    check(line.join(' '), ours, { all: u.searchParams.get('all') ?? '', filters: filtersOf(u) });
  }

  for (const line of [
    ['logs', '-f', '--tail=10', '-t', 'web'],
    ['logs', '-n', '5', '--timestamps=false', 'web'],
    ['container', 'logs', '--follow', 'web'],
  ]) {
    const r = parse(line);
    const o = r.values as unknown as { follow: boolean; tail: string; timestamps: boolean };
    const ours = { follow: o.follow ? '1' : '', tail: o.tail, timestamps: o.timestamps ? '1' : '', stdout: '1', stderr: '1' };
    if (!haveDocker) continue;
    const d = await dockerAsync(line);
    const u = d.req!.url;
    assert.match(u.pathname, /^\/v1\.41\/containers\/a{64}\/logs$/, 'the logs of the container looked up');
    check(line.join(' '), ours, { follow: u.searchParams.get('follow') ?? '', tail: u.searchParams.get('tail') ?? '', timestamps: u.searchParams.get('timestamps') ?? '', stdout: u.searchParams.get('stdout') ?? '', stderr: u.searchParams.get('stderr') ?? '' });
  }

  for (const line of [
    ['exec', '-i', '-e=A=1', '-u=root', '-w=/tmp', 'web', 'sh', '-c', 'ls', '--flag'],
    ['exec', '-d', 'web', 'true'],
    ['exec', '--env', 'FROM_ENV', '-e', 'B', '--privileged', 'web', 'env'],
  ]) {
    const r = parse(line);
    const [, ...cmd] = r.args;
    const ours = execConfig(cmd, r.values as never);
    if (!haveDocker) continue;
    const d = await dockerAsync(line);
    const req = d.all.find((x) => x.url.pathname.endsWith('/exec'));
    assert.ok(req, `${line.join(' ')}: docker made no exec request (${d.stderr})`);
    check(line.join(' '), JSON.parse(JSON.stringify(ours)), req!.body);
  }

  for (const line of [
    ['commit', '-m="提交的描述信息"', '-a="作者"', 'web', 'img:tag'],
    ['commit', '-m=提交的描述信息', '-a=作者', 'web', 'img:tag'],
    ['commit', '--message', 'msg', '--author=me', '-c', 'CMD ["sh"]', '--change=ENV A=1', '-p=false', 'web', 'repo'],
    ['commit', '-mhello', 'web'],
  ]) {
    const r = parse(line);
    const [ctr, ref] = r.args;
    const c = commitOptions(ref, r.values as never);
    const ours = { container: ctr, repo: c.repo ?? '', tag: c.tag ?? '', comment: c.comment, author: c.author, pause: c.pause ? '' : '0', changes: c.changes };
    if (!haveDocker) continue;
    const d = await dockerAsync(line);
    const u = d.req!.url;
    check(line.join(' '), ours, {
      container: u.searchParams.get('container'),
      repo: u.searchParams.get('repo') ?? '',
      tag: u.searchParams.get('tag') ?? '',
      comment: u.searchParams.get('comment') ?? '',
      author: u.searchParams.get('author') ?? '',
      pause: u.searchParams.get('pause') === '0' ? '0' : '',
      changes: u.searchParams.getAll('changes'),
    });
  }
  assert.deepEqual(problems, []);
});

// ------------------------------------------------------------------ errors

/** Lines the docker CLI refuses before it talks to a daemon, with the code and message it gives. */
const REFUSED: [string[], number, string][] = [
  [['run', '--x'], 125, "unknown flag: --x\nSee 'docker run --help'."],
  [['run', '-x', 'busybox'], 125, "unknown shorthand flag: 'x' in -x\nSee 'docker run --help'."],
  [['run', '-itx', 'busybox'], 125, "unknown shorthand flag: 'x' in -x\nSee 'docker run --help'."],
  [['run'], 1, '"docker run" requires at least 1 argument.\nSee \'docker run --help\'.\n\nUsage:  docker run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun a command in a new container'],
  [['commit'], 1, '"docker commit" requires at least 1 and at most 2 arguments.\nSee \'docker commit --help\'.\n\nUsage:  docker commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]\n\nCreate a new image from a container\'s changes'],
  [['run', '-m', '1x', 'busybox'], 125, 'invalid argument "1x" for "-m, --memory" flag: invalid size: \'1x\'\nSee \'docker run --help\'.'],
  [['run', '--pids-limit', 'abc', 'busybox'], 125, 'invalid argument "abc" for "--pids-limit" flag: strconv.ParseInt: parsing "abc": invalid syntax\nSee \'docker run --help\'.'],
  [['run', '--cpus', 'abc', 'busybox'], 125, 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number\nSee \'docker run --help\'.'],
  [['run', '-d=maybe', 'busybox'], 125, 'invalid argument "maybe" for "-d, --detach" flag: strconv.ParseBool: parsing "maybe": invalid syntax\nSee \'docker run --help\'.'],
  [['run', '--rm=maybe', 'busybox'], 125, 'invalid argument "maybe" for "--rm" flag: strconv.ParseBool: parsing "maybe": invalid syntax\nSee \'docker run --help\'.'],
  [['run', '-m'], 125, "flag needs an argument: 'm' in -m\nSee 'docker run --help'."],
  [['run', '---x'], 125, "bad flag syntax: ---x\nSee 'docker run --help'."],
  [['run', '--=x'], 125, "bad flag syntax: --=x\nSee 'docker run --help'."],
  [['ps', '--format'], 125, "flag needs an argument: --format\nSee 'docker ps --help'."],
  [['ps', 'x'], 1, '"docker ps" accepts no arguments.\nSee \'docker ps --help\'.\n\nUsage:  docker ps [OPTIONS]\n\nList containers'],
  [['images', 'a', 'b'], 1, '"docker images" requires at most 1 argument.\nSee \'docker images --help\'.\n\nUsage:  docker images [OPTIONS] [REPOSITORY[:TAG]]\n\nList images'],
  [['logs'], 1, '"docker logs" requires exactly 1 argument.\nSee \'docker logs --help\'.\n\nUsage:  docker logs [OPTIONS] CONTAINER\n\nFetch the logs of a container'],
  [['exec', 'c'], 1, '"docker exec" requires at least 2 arguments.\nSee \'docker exec --help\'.\n\nUsage:  docker exec [OPTIONS] CONTAINER COMMAND [ARG...]\n\nRun a command in a running container'],
  [['stop', '-t', 'soon', 'c'], 125, 'invalid argument "soon" for "-t, --time" flag: strconv.ParseInt: parsing "soon": invalid syntax\nSee \'docker stop --help\'.'],
  [['container', 'ls', '--bogus'], 125, "unknown flag: --bogus\nSee 'docker container ls --help'."],
  [['rm'], 1, '"docker rm" requires at least 1 argument.\nSee \'docker rm --help\'.\n\nUsage:  docker rm [OPTIONS] CONTAINER [CONTAINER...]\n\nRemove one or more containers'],
  [['nosuchcommand'], 1, "docker: 'nosuchcommand' is not a docker command.\nSee 'docker --help'"],
];

test("refused lines: the docker CLI's message and exit code", async () => {
  const problems: string[] = [];
  for (const [line, code, message] of REFUSED) {
    let got: { code: number; message: string };
    try {
      resolveCommand(rootCommand(), line);
      got = { code: 0, message: '' };
    } catch (e) {
      assert.ok(e instanceof ExitError, `${line.join(' ')}: ${e}`);
      got = { code: e.code, message: e.message };
    }
    const want = message.replaceAll('docker', 'layerbox');
    if (got.code !== code || got.message !== want) problems.push(`${line.join(' ')}: ${got.code} ${JSON.stringify(got.message)} instead of ${code} ${JSON.stringify(want)}`);
    if (haveDocker) {
      const d = await dockerAsync(line);
      const theirs = d.stderr.trim();
      if (d.code !== code || theirs !== message) problems.push(`(this file's expectation is stale) docker ${line.join(' ')}: ${d.code} ${JSON.stringify(theirs)}`);
    }
  }
  assert.deepEqual(problems, []);
});

test('the seeds\' commit line stores the comment and author without the "="', () => {
  const t = tempRoot();
  try {
    const ok = (args: string[]) => {
      const r = lb(t.root, args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    ok(['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
    ok(['create', '--name', 'seed', 'bench/busybox:latest', 'true']);
    // exactly as a shell hands the seeds' line over: docker commit -m="提交的描述信息" -a="作者" 容器ID 镜像名:标签
    ok(['commit', '-m=提交的描述信息', '-a=作者', 'seed', 'seed/image:tag']);
    assert.equal(ok(['image', 'inspect', '-f', '{{.Comment}}|{{.Author}}', 'seed/image:tag']).trim(), '提交的描述信息|作者');
    assert.equal(ok(['history', '--format', '{{.Comment}}', 'seed/image:tag']).split('\n')[0], '提交的描述信息');
  } finally {
    t.cleanup();
  }
});

test('engine-side refusals of run exit 125 with the daemon\'s words', () => {
  const t = tempRoot();
  try {
    assert.equal(lb(t.root, ['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]).code, 0);
    const r = lb(t.root, ['run', '-m', '4m', 'bench/busybox', 'true']);
    assert.equal(r.code, 125);
    assert.equal(r.stderr, "layerbox: Error response from daemon: Minimum memory limit allowed is 6MB.\nSee 'layerbox run --help'.\n");
    const net = lb(t.root, ['run', '--network', 'nosuchnet', 'bench/busybox', 'true']);
    assert.equal(net.code, 125);
    assert.match(net.stderr, /network nosuchnet not found/);
    assert.equal(lb(t.root, ['ps', '-aq']).stdout, '', 'nothing was created');
  } finally {
    t.cleanup();
  }
});

test('-itd without a terminal starts detached (Docker checks the TTY only when it attaches)', () => {
  const t = tempRoot();
  try {
    assert.equal(lb(t.root, ['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]).code, 0);
    const r = lb(t.root, ['run', '-itd', '--network', 'none', 'bench/busybox', 'sh']);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(lb(t.root, ['inspect', '-f', '{{.State.Running}} {{.Config.Tty}} {{.Config.OpenStdin}}', id]).stdout.trim(), 'true true true');
    const it = lb(t.root, ['run', '-it', '--rm', '--network', 'none', 'bench/busybox', 'true']);
    assert.equal(it.code, 1);
    assert.equal(it.stderr, 'the input device is not a TTY\n');
    assert.equal(lb(t.root, ['rm', '-f', id]).code, 0);
  } finally {
    t.cleanup();
  }
});

test('help: Docker\'s usage line and flag table; -h is help where a command does not define it', async () => {
  const r = resolveCommand(rootCommand(), ['ps', '-h']);
  assert.equal(r.kind, 'help');
  const run = lb('/nonexistent-root', ['run', '--help']);
  assert.equal(run.code, 0);
  assert.match(run.stdout, /^\nUsage:  layerbox run \[OPTIONS\] IMAGE \[COMMAND\] \[ARG\.\.\.\]\n\nRun a command in a new container\n\nOptions:\n/);
  assert.match(run.stdout, /\n  -h, --hostname string +Container host name\n/);
  assert.match(run.stdout, /\n      --help +Print usage\n/);
  if (haveDocker) {
    // the ps flag table is word for word the docker CLI's
    const ours = lb('/nonexistent-root', ['ps', '--help']).stdout;
    // (the docker CLI pings the daemon to decide which flags to show: run it asynchronously)
    const theirs = await new Promise<string>((res) => {
      const c = spawn(DOCKER, ['ps', '--help'], { env: ENV });
      let out = '';
      c.stdout.on('data', (b: Buffer) => (out += b));
      c.on('close', () => res(out));
    });
    assert.equal(ours, theirs.replaceAll('docker', 'layerbox'));
  }
});

test('completion scripts come from the command table: bash and zsh parse them', () => {
  for (const shell of ['bash', 'zsh'] as const) {
    const r = lb('/nonexistent-root', ['completion', shell]);
    assert.equal(r.code, 0, r.stderr);
    for (const word of ['container', 'commit', '--rm', '--publish', 'prune']) assert.ok(r.stdout.includes(word), `${shell} completion knows ${word}`);
    const syntax = spawnSync(shell, ['-n'], { input: r.stdout, encoding: 'utf8' });
    assert.equal(syntax.status, 0, `${shell} -n: ${syntax.stderr}`);
  }
  // bash completes a subcommand and a flag of it
  const script = lb('/nonexistent-root', ['completion', 'bash']).stdout;
  const probe = (words: string) =>
    spawnSync('bash', ['-c', `${script}\nCOMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _layerbox; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' }).stdout.trim();
  assert.ok(probe('layerbox container pr').split(' ').includes('prune'));
  assert.ok(probe('layerbox run --pu').split(' ').includes('--publish-all'));
});
