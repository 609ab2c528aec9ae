/**
 * The real docker CLI (Debian's docker.io 20.10 client, /usr/bin/docker) against
 * `layerbox serve`, for the container commands: run (--rm, -d -p, -it), exec (-it and
 * not), logs -f, attach and detach, cp, commit, inspect, ps with filters and formats,
 * stop / kill / rm, errors on a missing container, volumes and networks, events — and,
 * docker.io being installed, the same steps against a private dockerd loaded with the same
 * busybox fixture: stdout, stderr and exit codes must be equal after normalising what must
 * differ (container and image IDs, times and durations, each engine's subnet and host
 * port, which both engines share one host for).
 *
 * The private dockerd runs without a default bridge (--bridge=none: a second docker0 would
 * collide with the host's), so the steps that need a bridge (-p, network connect) use a
 * user-defined network on both engines.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { FIXTURES } from '../testing/tree.js';
import { startDockerd, dockerdInstalled, type DockerResult, type PrivateDockerd } from '../testing/dockerd.js';
import { startServe, type RunningServe } from '../testing/serve.js';

const BASE = join(FIXTURES, 'busybox-base.docker.tar');
const IMAGE = 'bench/busybox:latest';
const DOCKER = '/usr/bin/docker';
const tag = randomBytes(3).toString('hex');
const octet = 100 + (parseInt(tag.slice(0, 2), 16) % 100);
const NET = `cli${tag}`;
/** the client the tests run (and, where dockerd is installed too, compare) */
const noClient = existsSync(DOCKER) ? false : 'docker.io (/usr/bin/docker) is not installed';
const noTmux = noClient || (spawnSync('sh', ['-c', 'command -v tmux']).status === 0 ? false : 'tmux is not installed');


/** One engine as the docker CLI sees it. */
interface Side {
  name: 'layerbox' | 'docker';
  env: NodeJS.ProcessEnv;
  /** its own user-defined network's subnet prefix (both engines make bridges on this host) */
  subnet: string;
  /** a free host port for -p */
  port: number;
  /** a host directory for cp */
  dir: string;
  docker(args: string[], opts?: { input?: Buffer | string }): Promise<DockerResult>;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

const work = mkdtempSync(join(tmpdir(), 'lb-api-cli-'));

async function side(name: Side['name'], env: NodeJS.ProcessEnv, subnet: string): Promise<Side> {
  const e: NodeJS.ProcessEnv = { ...env, DOCKER_CLI_HINTS: 'false' };
  delete e.DOCKER_API_VERSION;
  delete e.NODE_EXTRA_CA_CERTS;
  const dir = join(work, name);
  mkdirSync(dir);
  return {
    name,
    env: e,
    subnet,
    port: await freePort(),
    dir,
    async docker(args, o = {}) {
      const c = spawn(DOCKER, args, { env: e, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      c.stdout.on('data', (b: Buffer) => out.push(b));
      c.stderr.on('data', (b: Buffer) => err.push(b));
      c.stdin.on('error', () => {});
      c.stdin.end(o.input ?? '');
      const [code] = (await once(c, 'close')) as [number | null];
      const bytes = Buffer.concat(out);
      return { code: code ?? -1, stdout: bytes.toString(), stderr: Buffer.concat(err).toString(), out: bytes };
    },
  };
}

let serve: RunningServe;
let dockerd: PrivateDockerd | undefined;
let lb: Side;
let dk: Side | undefined;

before(async () => {
  if (noClient) return;
  assert.equal(process.getuid?.(), 0, 'these tests need root');
  serve = await startServe();
  lb = await side('layerbox', serve.env, `10.245.${octet}`);
  dockerd = await startDockerd({ prefix: 'lbcli-' });
  if (dockerd) dk = await side('docker', dockerd.env, `10.246.${octet}`);
  for (const s of [lb, dk]) {
    if (!s) continue;
    const l = await s.docker(['load', '-i', BASE]);
    assert.equal(l.code, 0, `${s.name}: ${l.stderr}`);
    const n = await s.docker(['network', 'create', '--subnet', `${s.subnet}.0/24`, NET]);
    assert.equal(n.code, 0, `${s.name}: ${n.stderr}`);
  }
});

after(async () => {
  for (const s of [lb, dk]) {
    if (!s) continue;
    const ids = (await s.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
    if (ids.length) await s.docker(['rm', '-f', ...ids]);
    await s.docker(['network', 'rm', NET]);
    const vols = (await s.docker(['volume', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    if (vols.length) await s.docker(['volume', 'rm', '-f', ...vols]);
  }
  await serve?.stop();
  await dockerd?.stop();
  rmSync(work, { recursive: true, force: true });
});

type Step = { step: string; code: number; out: string };

/**
 * What must differ between the two engines, made equal: IDs (each engine's own random
 * container IDs, image IDs of commits made at different times), times and durations
 * ("Up 2 seconds", "Less than a second ago", timestamps), each engine's subnet and host
 * port, and the work directory's name.
 */
function normalise(s: Side, text: string): string {
  return text
    .replaceAll(s.dir, '<dir>')
    .replaceAll(`${s.subnet}.`, '<subnet>.')
    .replace(new RegExp(`\\b${s.port}\\b`, 'g'), '<port>')
    .replace(/sha256:[0-9a-f]{64}/g, 'sha256:<id>')
    .replace(/\b[0-9a-f]{64}\b/g, '<id>')
    .replace(/\b[0-9a-f]{12}\b/g, '<short-id>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
    .replace(/\b(Less than a second|About an? (minute|hour)|\d+ (second|minute|hour)s?)\b/g, '<duration>');
}

/** A table's columns are as wide as their widest cell, which normalising changed: one gap. */
const sorted = (x: string) => x.split('\n').sort().join('\n');

async function run(s: Side, t: Step[], step: string, args: string[], opts: { input?: Buffer | string; map?: (x: string) => string } = {}): Promise<DockerResult> {
  const r = await s.docker(args, opts);
  let out = normalise(s, r.stdout + r.stderr);
  if (opts.map) out = opts.map(out);
  t.push({ step, code: r.code, out });
  return r;
}

function compare(ours: Step[], theirs: Step[]): void {
  assert.deepEqual(
    ours.map((s) => s.step),
    theirs.map((s) => s.step),
  );
  for (const [i, s] of theirs.entries()) assert.deepEqual(ours[i], s, `step "${s.step}": layerbox and dockerd differ`);
}

async function both(tc: { diagnostic(m: string): void }, scenario: (s: Side) => Promise<Step[]>, check: (t: Record<string, Step>) => void): Promise<void> {
  const ours = await scenario(lb);
  if (dk) {
    const theirs = await scenario(dk);
    compare(ours, theirs);
    tc.diagnostic(`compared with dockerd 20.10: ${theirs.length} steps agree`);
  } else {
    tc.diagnostic(`docker.io is ${dockerdInstalled() ? 'installed but did not start' : 'not installed'}: no comparison with dockerd`);
  }
  // what the steps must say in any case (also without docker.io)
  check(Object.fromEntries(ours.map((s) => [s.step, s])));
}

/** The docker CLI in a real terminal (tmux): what it shows, keys typed into it. */
function terminal(s: Side, name: string, args: string[]) {
  const sock = join(work, `tmux-${s.name}-${name}.sock`);
  const tmux = (...a: string[]) => execFileSync('tmux', ['-S', sock, ...a]).toString();
  const q = (x: string) => `'${x.replaceAll("'", `'\\''`)}'`;
  const env = ['DOCKER_HOST', 'DOCKER_CONFIG', 'DOCKER_CLI_HINTS'].map((k) => `${k}=${q(s.env[k] ?? '')}`).join(' ');
  tmux('new-session', '-d', '-x', '80', '-y', '24', '-s', 't', `env -u NODE_EXTRA_CA_CERTS -u DOCKER_API_VERSION ${env} ${DOCKER} ${args.map(q).join(' ')}; echo "EXITED $?"; sleep 60`);
  const screen = () =>
    tmux('capture-pane', '-p', '-t', 't')
      .split('\n')
      .map((l) => l.trimEnd())
      .join('\n')
      .trimEnd();
  return {
    screen,
    keys: (...k: string[]) => void tmux('send-keys', '-t', 't', ...k),
    async waitFor(re: RegExp, ms = 15_000): Promise<string> {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const x = screen();
        if (re.test(x)) return x;
        await sleep(100);
      }
      throw new Error(`${s.name}: timed out waiting for ${re}:\n${screen()}`);
    },
    close: () => void spawnSync('tmux', ['-S', sock, 'kill-server']),
  };
}

function httpGet(port: number): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path: '/index.html' }, (r) => {
      let body = '';
      r.on('data', (b: Buffer) => (body += b.toString()));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('error', rej);
    req.end();
  });
}

async function until(what: string, f: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await f()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('docker run --rm: output and exit code; -i with input; -e -w -u; run -d -p: busybox httpd answers on 127.0.0.1:PORT', { skip: noClient }, async (tc) => {
  await both(
    tc,
    async (s) => {
      const t: Step[] = [];
      await run(s, t, 'run --rm', ['run', '--rm', IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
      await run(s, t, 'run --rm -i', ['run', '--rm', '-i', IMAGE, 'sh', '-c', 'tr a-z A-Z; exit 5'], { input: 'from stdin\n' });
      await run(s, t, 'run --rm -e -w -u', ['run', '--rm', '-e', 'X=1', '-w', '/tmp', '-u', '65534', IMAGE, 'sh', '-c', 'echo $X $(pwd) $(id -u)']);
      await run(s, t, 'ps -a after --rm', ['ps', '-aq']);
      await run(s, t, 'run -d -p', ['run', '-d', '--name', 'web', '--network', NET, '-p', `${s.port}:80`, IMAGE, 'sh', '-c', 'mkdir /www && echo hello from httpd > /www/index.html && exec httpd -f -p 80 -h /www']);
      let got = { status: 0, body: '' };
      await until(`${s.name}: httpd on ${s.port}`, async () => {
        got = await httpGet(s.port).catch(() => got);
        return got.status === 200;
      });
      t.push({ step: 'GET 127.0.0.1:port', code: got.status, out: got.body });
      await run(s, t, 'inspect ports', ['inspect', '--format', '{{json .HostConfig.PortBindings}} {{json .Config.ExposedPorts}}', 'web']);
      await run(s, t, 'rm -f web', ['rm', '-f', 'web']);
      return t;
    },
    (t) => {
      assert.deepEqual(t['run --rm'], { step: 'run --rm', code: 3, out: 'out\nerr\n' });
      assert.deepEqual(t['run --rm -i'], { step: 'run --rm -i', code: 5, out: 'FROM STDIN\n' });
      assert.equal(t['run --rm -e -w -u']!.out, '1 /tmp 65534\n');
      assert.equal(t['ps -a after --rm']!.out, '');
      assert.deepEqual(t['GET 127.0.0.1:port'], { step: 'GET 127.0.0.1:port', code: 200, out: 'hello from httpd\n' });
      assert.equal(t['inspect ports']!.out, '{"80/tcp":[{"HostIp":"","HostPort":"<port>"}]} {"80/tcp":{}}\n');
    },
  );
});

test('docker run -it and exec -it in a real terminal (tmux): a command and its answer, the exit code docker returns; exec without a tty', { skip: noTmux }, async (tc) => {
  await both(
    tc,
    async (s) => {
      const t: Step[] = [];
      const it = terminal(s, 'run', ['run', '-it', '--name', 'itc', IMAGE, 'sh']);
      try {
        await it.waitFor(/# ?$/m);
        it.keys('echo $((6*7))', 'Enter');
        await it.waitFor(/^42$/m);
        it.keys('exit 5', 'Enter');
        t.push({ step: 'run -it', code: 0, out: await it.waitFor(/EXITED \d+/) });
      } finally {
        it.close();
      }
      await run(s, t, 'ps after run -it', ['ps', '-a', '--filter', 'name=itc', '--format', '{{.Status}}']);
      await run(s, t, 'run -d', ['run', '-d', '--name', 'ex', IMAGE, 'sleep', '300']);
      const ex = terminal(s, 'exec', ['exec', '-it', 'ex', 'sh']);
      try {
        await ex.waitFor(/# ?$/m);
        ex.keys('tty; echo $((2+3))', 'Enter');
        await ex.waitFor(/^5$/m);
        ex.keys('exit 4', 'Enter');
        t.push({ step: 'exec -it', code: 0, out: await ex.waitFor(/EXITED \d+/) });
      } finally {
        ex.close();
      }
      await run(s, t, 'exec (no tty)', ['exec', 'ex', 'sh', '-c', 'echo in exec; echo to stderr >&2; [ -t 0 ] || exit 7']);
      await run(s, t, 'exec -i', ['exec', '-i', 'ex', 'wc', '-c'], { input: 'abc' });
      await run(s, t, 'exec of a missing command', ['exec', 'ex', 'nosuchcommand']);
      await run(s, t, 'exec -it of a missing command (no terminal)', ['exec', '-i', 'ex', '/nope/x']);
      await run(s, t, 'exec -u -w -e', ['exec', '-u', '65534', '-w', '/tmp', '-e', 'Y=2', 'ex', 'sh', '-c', 'echo $Y $(pwd) $(id -u)']);
      await run(s, t, 'exec in a missing container', ['exec', 'nosuch', 'true']);
      await run(s, t, 'exec in a stopped container', ['exec', 'itc', 'true']);
      await run(s, t, 'rm', ['rm', '-f', 'itc', 'ex']);
      return t;
    },
    (t) => {
      assert.match(t['run -it']!.out, /\n\/ # echo \$\(\(6\*7\)\)\n42\n\/ # exit 5\nEXITED 5$/);
      assert.match(t['ps after run -it']!.out, /^Exited \(5\) /);
      assert.match(t['exec -it']!.out, /(^|\n)\/ # tty; echo \$\(\(2\+3\)\)\n\/dev\/pts\/\d+\n5\n\/ # exit 4\nEXITED 4$/);
      assert.deepEqual(t['exec (no tty)'], { step: 'exec (no tty)', code: 7, out: 'in exec\nto stderr\n' });
      assert.equal(t['exec -i']!.out, '3\n');
      assert.deepEqual(t['exec of a missing command'], { step: 'exec of a missing command', code: 126, out: 'OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuchcommand": executable file not found in $PATH: unknown\r\n' });
      assert.equal(t['exec in a missing container']!.code, 1);
      assert.equal(t['exec in a missing container']!.out, 'Error: No such container: nosuch\n');
      assert.equal(t['exec in a stopped container']!.out, 'Error response from daemon: Container <id> is not running\n');
    },
  );
});

test('docker logs -f follows until the container exits; attach, and detach with ctrl-p ctrl-q (tmux)', { skip: noTmux }, async (tc) => {
  await both(
    tc,
    async (s) => {
      const t: Step[] = [];
      await run(s, t, 'run -d', ['run', '-d', '--name', 'lf', IMAGE, 'sh', '-c', 'echo one; echo two >&2; sleep 2; echo three; exit 4']);
      const started = Date.now();
      await run(s, t, 'logs -f', ['logs', '-f', 'lf']);
      const took = Date.now() - started;
      // it returned because the container ended, not before
      t.push({ step: 'logs -f waited for the exit', code: 0, out: String(took > 1000) });
      await run(s, t, 'wait', ['wait', 'lf']);
      await run(s, t, 'logs --tail 1', ['logs', '--tail', '1', 'lf']);
      await run(s, t, 'logs -t', ['logs', '-t', 'lf'], { map: sorted });
      await run(s, t, 'logs of a missing container', ['logs', 'nosuch']);

      await run(s, t, 'run -dit', ['run', '-dit', '--name', 'att', IMAGE, 'sh']);
      const a = terminal(s, 'attach', ['attach', 'att']);
      try {
        await sleep(500);
        a.keys('echo attached $((1+1))', 'Enter');
        await a.waitFor(/^attached 2$/m);
        a.keys('C-p', 'C-q');
        t.push({ step: 'attach, detach', code: 0, out: await a.waitFor(/EXITED \d+/) });
      } finally {
        a.close();
      }
      await run(s, t, 'still running after detach', ['ps', '--filter', 'name=att', '--format', '{{.Names}} {{.Status}}']);
      await run(s, t, 'attach to a stopped container', ['attach', 'lf']);
      await run(s, t, 'rm', ['rm', '-f', 'lf', 'att']);
      return t;
    },
    (t) => {
      // (stdout, then stderr)
      assert.deepEqual(t['logs -f'], { step: 'logs -f', code: 0, out: 'one\nthree\ntwo\n' });
      assert.equal(t['logs -f waited for the exit']!.out, 'true');
      assert.equal(t['wait']!.out, '4\n');
      assert.equal(t['logs --tail 1']!.out, 'three\n');
      assert.match(t['attach, detach']!.out, /attached 2\n[^]*read escape sequence\nEXITED 1$/, 'the 20.10 CLI returns 1 when it detaches');
      assert.match(t['still running after detach']!.out, /^att Up /);
      assert.equal(t['logs of a missing container']!.out, 'Error: No such container: nosuch\n');
    },
  );
});

/** A host tree as text: each path, its kind and content (what cp made). */
function tree(dir: string, base = ''): string {
  return readdirSync(join(dir, base), { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((e) => {
      const p = join(base, e.name);
      if (e.isDirectory()) return `${p}/\n${tree(dir, p)}`;
      if (e.isSymbolicLink()) return `${p} -> link\n`;
      return `${p}: ${readFileSync(join(dir, p), 'utf8')}`;
    })
    .join('');
}

/** The entries of a tar stream (docker cp CONTAINER:PATH -): name, type, mode, owner, content. */
function tarEntries(b: Buffer): string {
  const out: string[] = [];
  for (let off = 0; off + 512 <= b.length; ) {
    const h = b.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const str = (a: number, n: number) => h.subarray(a, a + n).toString().replace(/\0.*$/s, '');
    const size = parseInt(str(124, 12).trim() || '0', 8);
    const name = str(345, 155) ? `${str(345, 155)}/${str(0, 100)}` : str(0, 100);
    // the permission bits (Go's archive/tar also writes the file type bits into the mode field)
    const mode = (parseInt(str(100, 8).trim(), 8) & 0o7777).toString(8);
    const data = b.subarray(off + 512, off + 512 + size).toString();
    out.push(`${name} type=${str(156, 1) || '0'} mode=${mode} uid=${parseInt(str(108, 8).trim(), 8)} gid=${parseInt(str(116, 8).trim(), 8)} ${JSON.stringify(data)}`);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out.join('\n');
}

test('docker cp both ways: a file and a directory into a running container, and out of it; errors', { skip: noClient }, async (tc) => {
  await both(
    tc,
    async (s) => {
      const t: Step[] = [];
      const src = join(s.dir, 'src');
      mkdirSync(join(src, 'dir', 'sub'), { recursive: true });
      writeFileSync(join(src, 'file.txt'), 'a file\n');
      writeFileSync(join(src, 'dir', 'sub', 'deep.txt'), 'deep\n');
      symlinkSync('sub/deep.txt', join(src, 'dir', 'link'));
      await run(s, t, 'run -d', ['run', '-d', '--name', 'cpc', IMAGE, 'sleep', '300']);
      await run(s, t, 'cp a file in', ['cp', join(src, 'file.txt'), 'cpc:/tmp/']);
      await run(s, t, 'cp a file in under a new name', ['cp', join(src, 'file.txt'), 'cpc:/tmp/renamed.txt']);
      await run(s, t, 'cp a directory in', ['cp', join(src, 'dir'), 'cpc:/tmp/dir']);
      await run(s, t, 'cp a directory into an existing one', ['cp', join(src, 'dir'), 'cpc:/tmp/dir']);
      await run(s, t, 'what the container has', ['exec', 'cpc', 'sh', '-c', 'cd /tmp && find . | sort && cat file.txt renamed.txt dir/sub/deep.txt dir/dir/link && readlink dir/link && stat -c "%n %a %u" file.txt dir dir/sub/deep.txt']);
      const back = join(s.dir, 'back');
      mkdirSync(back);
      await run(s, t, 'cp a file out', ['cp', 'cpc:/tmp/file.txt', join(back, 'out.txt')]);
      await run(s, t, 'cp a directory out', ['cp', 'cpc:/tmp/dir', join(back, 'dir')]);
      await run(s, t, 'cp /etc/hostname out', ['cp', 'cpc:/etc/hostname', back]);
      t.push({ step: 'what the host has', code: 0, out: tree(back).replace(/^hostname: [0-9a-f]{12}\n/m, 'hostname: <short-id>\n') });
      const tar = await s.docker(['cp', 'cpc:/tmp/dir', '-']);
      t.push({ step: 'cp out to stdout (a tar)', code: tar.code, out: tarEntries(tar.out) + tar.stderr });
      await run(s, t, 'cp a missing path out', ['cp', 'cpc:/nope', back]);
      await run(s, t, 'cp a missing host path in', ['cp', join(src, 'nope'), 'cpc:/tmp/']);
      await run(s, t, 'cp into a missing container', ['cp', join(src, 'file.txt'), 'nosuch:/tmp/']);
      await run(s, t, 'cp a file onto a directory path that is a file', ['cp', join(src, 'dir'), 'cpc:/tmp/file.txt']);
      await run(s, t, 'rm', ['rm', '-f', 'cpc']);
      return t;
    },
    (t) => {
      assert.match(t['what the container has']!.out, /^\.\n\.\/dir\n\.\/dir\/dir\n[^]*\.\/file\.txt\n\.\/renamed\.txt\na file\na file\ndeep\ndeep\nsub\/deep\.txt\nfile\.txt 644 0\n/);
      assert.match(t['what the host has']!.out, /^dir\/\ndir\/dir\/\ndir\/dir\/link -> link\ndir\/dir\/sub\/\ndir\/dir\/sub\/deep\.txt: deep\ndir\/link -> link\ndir\/sub\/\ndir\/sub\/deep\.txt: deep\nhostname: <short-id>\nout\.txt: a file\n$/);
      assert.match(t['cp out to stdout (a tar)']!.out, /^dir\/ type=5 mode=755 uid=0 gid=0 ""\n/);
      assert.equal(t['cp a missing path out']!.code, 1);
      assert.equal(t['cp a missing path out']!.out, 'Error: No such container:path: cpc:/nope\n');
    },
  );
});

test('docker commit -m -a -c, and inspect --format of the image and of a container', { skip: noClient }, async (tc) => {
  await both(
    tc,
    async (s) => {
      const t: Step[] = [];
      await run(s, t, 'run -d', ['run', '-d', '--name', 'cm', '--label', 'role=commit', '-e', 'A=1', '--hostname', 'box', IMAGE, 'sh', '-c', 'echo made > /made; sleep 300']);
      await until(`${s.name}: /made`, async () => (await s.docker(['exec', 'cm', 'cat', '/made'])).code === 0);
      await run(s, t, 'commit', ['commit', '-m', 'a message', '-a', 'Some One <one@example.com>', '-c', 'CMD ["cat", "/made"]', '-c', 'ENV B=2', 'cm', 'committed:1']);
      await run(s, t, 'inspect the image', ['inspect', '--format', '{{.Comment}}|{{.Author}}|{{json .Config.Cmd}}|{{.Config.Env}}|{{len .RootFS.Layers}}|{{.Parent}}|{{.Container}}', 'committed:1'], { map: (x) => x.replace(/\|<id>\n$/, '|<container>\n') });
      await run(s, t, 'run the committed image', ['run', '--rm', 'committed:1']);
      await run(s, t, 'commit a missing container', ['commit', 'nosuch', 'x:1']);
      await run(s, t, 'commit with a bad change', ['commit', '-c', 'NOPE x', 'cm', 'x:1']);
      await run(s, t, 'inspect the container', ['inspect', '--format', '{{.Name}} {{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{if .State.Pid}}has-a-pid{{end}} {{.Config.Image}} {{json .Config.Cmd}} {{.Config.Hostname}} {{.Config.Labels}} {{.HostConfig.NetworkMode}} {{.RestartCount}} {{.Path}} {{.Args}} {{.Platform}} {{.State.Error}} {{.State.OOMKilled}} {{.HostConfig.AutoRemove}} {{.HostConfig.RestartPolicy.Name}}', 'cm']);
      await run(s, t, 'inspect the env', ['inspect', '--format', '{{range .Config.Env}}{{println .}}{{end}}', 'cm']);
      await run(s, t, 'inspect --type container of an image', ['inspect', '--type', 'container', IMAGE]);
      await run(s, t, 'inspect a missing container', ['container', 'inspect', 'nosuch']);
      await run(s, t, 'inspect a missing object', ['inspect', 'nosuch']);
      await run(s, t, 'rm', ['rm', '-f', 'cm']);
      await run(s, t, 'rmi', ['rmi', 'committed:1']);
      return t;
    },
    (t) => {
      assert.equal(t['commit']!.out, 'sha256:<id>\n');
      assert.equal(t['inspect the image']!.out, 'a message|Some One <one@example.com>|["cat","/made"]|[A=1 PATH=/usr/sbin:/usr/bin:/sbin:/bin B=2]|2|sha256:<id>|<container>\n');
      assert.equal(t['run the committed image']!.out, 'made\n');
      assert.match(t['inspect the container']!.out, /^\/cm running true 0 has-a-pid bench\/busybox:latest \["sh","-c","echo made > \/made; sleep 300"\] box map\[role:commit\] default 0 sh \[-c echo made > \/made; sleep 300\] linux  false false no\n$/);
      assert.equal(t['inspect a missing container']!.code, 1);
      assert.equal(t['inspect a missing container']!.out, '[]\nError: No such container: nosuch\n');
    },
  );
});

test('docker ps with --filter (name, status, label, ancestor, exited) and --format; stop, kill (the exit code in the status), rm, rm -f of a running one; errors on a missing container', { skip: noClient }, async (tc) => {
  await both(
    tc,
    async (s) => {
      const t: Step[] = [];
      await run(s, t, 'run a', ['run', '-d', '--name', 'pa', '--label', 'tier=front', '--label', 'x=1', IMAGE, 'sleep', '300']);
      await run(s, t, 'run b', ['run', '-d', '--name', 'pb', '--label', 'tier=back', IMAGE, 'sh', '-c', 'trap "exit 0" TERM; sleep 300 & wait']);
      await run(s, t, 'run c (exits 3)', ['run', '--name', 'pc', IMAGE, 'sh', '-c', 'exit 3']);
      await run(s, t, 'create d', ['create', '--name', 'pd', 'committed-nothing:1'], { map: (x) => x.replace(/^Error response from daemon: .*\n/m, '<pull fails: no registry>\n') });
      await run(s, t, 'create d', ['create', '--name', 'pd', IMAGE, 'true']);
      const ps = (step: string, ...args: string[]) => run(s, t, step, ['ps', ...args], { map: sorted });
      await ps('ps', '--format', '{{.Names}} {{.Image}} {{.Command}} {{.Status}} {{.Label "tier"}} {{.Networks}} {{.Ports}} {{.Mounts}}');
      await ps('ps -a', '-a', '--format', '{{.Names}}|{{.Status}}|{{.State}}');
      await ps('ps -q', '-q');
      await ps('ps --no-trunc', '--no-trunc', '--format', '{{.ID}} {{.Command}}');
      await ps('filter name', '-a', '--filter', 'name=p[ab]', '--format', '{{.Names}}');
      await ps('filter name (substring)', '-a', '--filter', 'name=b', '--format', '{{.Names}}');
      await ps('filter status=exited', '-a', '--filter', 'status=exited', '--format', '{{.Names}} {{.Status}}');
      await ps('filter status=created', '-a', '--filter', 'status=created', '--format', '{{.Names}} {{.Status}}');
      await ps('filter status=running', '--filter', 'status=running', '--format', '{{.Names}}');
      await ps('filter exited=3', '-a', '--filter', 'exited=3', '--format', '{{.Names}}');
      await ps('filter label key', '-a', '--filter', 'label=tier', '--format', '{{.Names}}');
      await ps('filter label key=value', '-a', '--filter', 'label=tier=back', '--format', '{{.Names}} {{.Label "tier"}}');
      await ps('filter two labels', '-a', '--filter', 'label=tier', '--filter', 'label=x=1', '--format', '{{.Names}}');
      await ps('filter ancestor (tag)', '-a', '--filter', 'ancestor=bench/busybox:latest', '--format', '{{.Names}}');
      await ps('filter ancestor (repository)', '-a', '--filter', 'ancestor=bench/busybox', '--format', '{{.Names}}');
      await ps('filter ancestor (another image)', '-a', '--filter', 'ancestor=nosuch:1', '--format', '{{.Names}}');
      await ps('filter two names', '-a', '--filter', 'name=pa', '--filter', 'name=pc', '--format', '{{.Names}}');
      await ps('filter name and status', '-a', '--filter', 'name=p', '--filter', 'status=running', '--format', '{{.Names}}');
      await ps('a bad filter', '--filter', 'nope=1');
      await ps('a bad status', '--filter', 'status=bogus');
      await ps('-n 1', '-a', '-n', '1', '--format', '{{.Names}}');
      await ps('-l', '-a', '-l', '--format', '{{.Names}}');
      await ps('a table format', '-a', '--format', 'table {{.Names}}\t{{.State}}');
      await ps('a label and the size', '-a', '--filter', 'name=pa', '--format', '{{.Label "x"}} {{.Size}}');
      await run(s, t, 'ps --size', ['ps', '--size', '--filter', 'name=pa', '--format', '{{.Names}} {{.Size}}']);

      await run(s, t, 'stop (SIGTERM, trapped)', ['stop', 'pb']);
      await run(s, t, 'stop -t 1 (SIGKILL after 1s)', ['stop', '-t', '1', 'pa']);
      await ps('after stop', '-a', '--filter', 'name=p[ab]', '--format', '{{.Names}} {{.Status}}');
      await run(s, t, 'stop a stopped container', ['stop', 'pa']);
      await run(s, t, 'start', ['start', 'pa', 'pb']);
      await run(s, t, 'kill', ['kill', 'pa']);
      await run(s, t, 'kill -s TERM (trapped: exits 0)', ['kill', '-s', 'TERM', 'pb']);
      await run(s, t, 'wait', ['wait', 'pa', 'pb']);
      await ps('after kill', '-a', '--filter', 'name=p[ab]', '--format', '{{.Names}} {{.Status}}');
      await run(s, t, 'kill a stopped container', ['kill', 'pa']);
      await run(s, t, 'kill with a bad signal', ['kill', '-s', 'NOPE', 'pa']);
      await run(s, t, 'start pa again', ['start', 'pa']);
      await run(s, t, 'rm of a running container', ['rm', 'pa']);
      await run(s, t, 'rm -f of a running container', ['rm', '-f', 'pa']);
      await run(s, t, 'rm', ['rm', 'pb', 'pc']);
      await run(s, t, 'rm -v', ['rm', '-v', 'pd']);
      await ps('nothing left', '-a');

      for (const args of [['stop', 'nosuch'], ['kill', 'nosuch'], ['rm', 'nosuch'], ['rm', '-f', 'nosuch'], ['start', 'nosuch'], ['restart', 'nosuch'], ['wait', 'nosuch'], ['logs', 'nosuch'], ['port', 'nosuch'], ['top', 'nosuch'], ['pause', 'nosuch'], ['rename', 'nosuch', 'x'], ['attach', 'nosuch'], ['diff', 'nosuch']]) {
        await run(s, t, `${args.join(' ')}`, args);
      }
      return t;
    },
    (t) => {
      assert.equal(t['ps']!.out, `\npa bench/busybox:latest "sleep 300" Up <duration> front bridge  \npb bench/busybox:latest "sh -c 'trap \\"exit 0…" Up <duration> back bridge  `);
      assert.equal(t['filter status=exited']!.out, '\npc Exited (3) <duration> ago');
      assert.equal(t['filter label key=value']!.out, '\npb back');
      assert.equal(t['after kill']!.out, '\npa Exited (137) <duration> ago\npb Exited (0) <duration> ago');
      assert.equal(t['rm of a running container']!.code, 1);
      assert.equal(t['rm of a running container']!.out, 'Error response from daemon: You cannot remove a running container <id>. Stop the container before attempting removal or force remove\n');
      assert.deepEqual(t['kill nosuch'], { step: 'kill nosuch', code: 1, out: 'Error response from daemon: Cannot kill container: nosuch: No such container: nosuch\n' });
      assert.deepEqual(t['rm nosuch'], { step: 'rm nosuch', code: 1, out: 'Error: No such container: nosuch\n' });
    },
  );
});

test('docker volume create and run -v vol:/data; network create, run --network, network connect', { skip: noClient }, async (tc) => {
  await both(
    tc,
    async (s) => {
      const t: Step[] = [];
      await run(s, t, 'volume create', ['volume', 'create', 'data1']);
      await run(s, t, 'run -v (write)', ['run', '--rm', '-v', 'data1:/data', IMAGE, 'sh', '-c', 'echo kept > /data/f; ls -la /data | wc -l']);
      await run(s, t, 'run -v (read)', ['run', '--name', 'vr', '-v', 'data1:/data:ro', IMAGE, 'sh', '-c', 'cat /data/f; touch /data/g']);
      await run(s, t, 'run with binds and volumes', ['run', '--name', 'vm', '-v', 'data1:/a', '-v', `${s.dir}:/b:ro`, '-v', `${s.dir}:/c`, '-v', '/anon', '--mount', 'type=volume,src=data3,dst=/d', IMAGE, 'true']);
      // (dockerd lists the mounts in its map order)
      await run(s, t, 'inspect the mounts', ['inspect', '--format', '{{range .Mounts}}{{.Type}} {{.Destination}} {{.Driver}} {{.RW}} {{.Mode}} {{.Propagation}}{{println}}{{end}}', 'vr', 'vm'], { map: sorted });
      await run(s, t, 'rm -v', ['rm', '-v', 'vm']);
      await run(s, t, 'ps --filter volume', ['ps', '-a', '--filter', 'volume=data1', '--format', '{{.Names}} {{.Mounts}}']);
      await run(s, t, 'volume rm (in use)', ['volume', 'rm', 'data1']);
      await run(s, t, 'rm', ['rm', 'vr']);
      await run(s, t, 'run -v (a new named volume)', ['run', '--rm', '-v', 'data2:/d', IMAGE, 'ls', '/d']);
      await run(s, t, 'volume ls', ['volume', 'ls', '--format', '{{.Name}} {{.Driver}}'], { map: sorted });
      await run(s, t, 'volume rm', ['volume', 'rm', 'data1', 'data2', 'data3']);

      await run(s, t, 'network create (same name again)', ['network', 'create', NET]);
      await run(s, t, 'run --network', ['run', '-d', '--name', 'na', '--network', NET, '--network-alias', 'alpha', IMAGE, 'sleep', '300']);
      await run(s, t, 'run (default network)', ['run', '-d', '--name', 'nb', IMAGE, 'sleep', '300']);
      await run(s, t, 'run --network none', ['run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'ls /sys/class/net']);
      await run(s, t, 'network connect', ['network', 'connect', '--alias', 'beta', NET, 'nb']);
      await run(s, t, 'network connect again', ['network', 'connect', NET, 'nb']);
      await run(s, t, 'network connect a missing container', ['network', 'connect', NET, 'nosuch']);
      await run(s, t, 'network connect to a missing network', ['network', 'connect', 'nosuch', 'nb']);
      // (which free address a container gets differs: dockerd's IPAM takes the lowest,
      // layerbox's host-local leases go round the subnet, after the -p test's container's)
      const host = (x: string) => x.replace(/<subnet>\.(\d+)(?=[ /\n])/g, (m, n: string) => (n === '1' ? m : '<subnet>.<host>'));
      await run(s, t, 'addresses', ['inspect', '--format', `{{.Name}} {{(index .NetworkSettings.Networks "${NET}").IPAddress}} {{(index .NetworkSettings.Networks "${NET}").Gateway}} {{(index .NetworkSettings.Networks "${NET}").IPPrefixLen}}`, 'na', 'nb'], { map: host });
      const ips = await s.docker(['inspect', '--format', `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, 'na', 'nb']);
      const [ipa, ipb] = ips.stdout.trim().split('\n');
      t.push({ step: 'two addresses in the subnet', code: ips.code, out: String(ipa !== ipb && [ipa, ipb].every((ip) => ip?.startsWith(`${s.subnet}.`))) });
      await run(s, t, 'aliases', ['inspect', '--format', `{{.Name}} {{(index .NetworkSettings.Networks "${NET}").Aliases}}`, 'na', 'nb'], { map: (x) => x.replace(/ [0-9a-f]{12}\]/g, ' <short-id>]') });
      await run(s, t, 'networks of nb', ['inspect', '--format', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}', 'nb'], { map: (x) => x.replace('none ', '') });
      await run(s, t, 'network inspect: members', ['network', 'inspect', '--format', '{{range .Containers}}{{.Name}} {{.IPv4Address}}{{println}}{{end}}', NET], { map: (x) => sorted(host(x)) });
      await run(s, t, 'ps --filter network', ['ps', '--filter', `network=${NET}`, '--format', '{{.Names}}'], { map: sorted });
      await run(s, t, 'network rm (in use)', ['network', 'rm', NET]);
      await run(s, t, 'network disconnect', ['network', 'disconnect', NET, 'nb']);
      await run(s, t, 'rm', ['rm', '-f', 'na', 'nb']);
      return t;
    },
    (t) => {
      assert.equal(t['run -v (read)']!.out, 'kept\ntouch: /data/g: Read-only file system\n');
      assert.equal(t['run -v (read)']!.code, 1);
      assert.equal(t['inspect the mounts']!.out, '\n\n\nbind /b  false ro rprivate\nbind /c  true  rprivate\nvolume /a local true z \nvolume /anon local true  \nvolume /d local true z \nvolume /data local false ro ');
      assert.equal(t['addresses']!.out, '/na <subnet>.<host> <subnet>.1 24\n/nb <subnet>.<host> <subnet>.1 24\n');
      assert.equal(t['two addresses in the subnet']!.out, 'true');
      assert.equal(t['network connect again']!.out, `Error response from daemon: endpoint with name nb already exists in network ${NET}\n`);
    },
  );
  // (the private dockerd runs without iptables, so its containers do not reach each other:
  // the path between containers is layerbox's own check)
  const a = await lb.docker(['run', '-d', '--name', 'pinga', '--network', NET, IMAGE, 'sleep', '300']);
  assert.equal(a.code, 0, a.stderr);
  const b = await lb.docker(['run', '-d', '--name', 'pingb', IMAGE, 'sleep', '300']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal((await lb.docker(['network', 'connect', '--alias', 'bee', NET, 'pingb'])).code, 0);
  const p = await lb.docker(['exec', 'pinga', 'ping', '-c', '1', '-W', '2', 'bee']);
  assert.match(p.stdout, new RegExp(`^PING bee \\(${lb.subnet.replaceAll('.', '\\.')}\\.\\d+\\)`), p.stderr);
  assert.equal((await lb.docker(['rm', '-f', 'pinga', 'pingb'])).code, 0);
});

test('docker events --since --until with filters: a container\'s life (create, attach, start, die, destroy) in Docker\'s format', { skip: noClient }, async (tc) => {
  await both(
    tc,
    async (s) => {
      const t: Step[] = [];
      // (from the next whole second: what the tests before did is left out)
      await sleep(1100);
      const since = Math.floor(Date.now() / 1000);
      await run(s, t, 'run', ['run', '--name', 'ev', '--label', 'ev=1', IMAGE, 'sh', '-c', 'exit 2']);
      await run(s, t, 'run -d', ['run', '-d', '--name', 'stopped', IMAGE, 'sleep', '300']);
      await run(s, t, 'stop -t 1', ['stop', '-t', '1', 'stopped']);
      // (one at a time: the CLI removes the containers it is given in parallel)
      await run(s, t, 'rm', ['rm', 'ev']);
      await run(s, t, 'rm stopped', ['rm', 'stopped']);
      await sleep(1100);
      const until = Math.floor(Date.now() / 1000);
      const range = ['--since', String(since), '--until', String(until)];
      await run(s, t, 'events of a container', ['events', ...range, '--filter', 'container=ev']);
      await run(s, t, 'events as json', ['events', ...range, '--filter', 'label=ev=1', '--format', '{{json .}}'], { map: (x) => x.replace(/"time":\d+,"timeNano":\d+/g, '"time":<t>,"timeNano":<t>') });
      await run(s, t, 'die events', ['events', ...range, '--filter', 'type=container', '--filter', 'event=die', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}} {{.Actor.Attributes.image}}']);
      await run(s, t, 'stop and kill events', ['events', ...range, '--filter', 'container=stopped', '--filter', 'event=kill', '--filter', 'event=stop', '--format', '{{.Action}} {{.Actor.Attributes.signal}}']);
      await run(s, t, 'events with a bad filter', ['events', ...range, '--filter', 'nope=1']);
      return t;
    },
    (t) => {
      assert.equal(
        t['events of a container']!.out,
        ['create', 'attach', 'start', 'die', 'destroy']
          .map((a) => `<time> container ${a} <id> (ev=1, ${a === 'die' ? 'exitCode=2, ' : ''}image=bench/busybox:latest, name=ev)\n`)
          .join(''),
      );
      assert.equal(t['die events']!.out, 'container die ev 2 bench/busybox:latest\ncontainer die stopped 137 bench/busybox:latest\n');
    },
  );
});
