/**
 * docker-compose (Debian's 1.29.2, through docker-py) against `layerbox serve`: a project of
 * two services — `web`, busybox httpd with a published port and a named volume, and
 * `client`, which fetches the page from `web` by its service name — brought up with
 * `up -d`, looked at with `ps` and `logs`, and taken down with `down -v`, which must leave
 * no container, network or volume behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { lbp } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { startServe, type RunningServe } from '../testing/serve.js';

const COMPOSE = '/usr/bin/docker-compose';
const haveCompose = spawnSync('sh', ['-c', `test -x ${COMPOSE}`]).status === 0;
const project = `lbc${randomBytes(3).toString('hex')}`;
let srv: RunningServe;
let dir: string;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '0.0.0.0', () => r()));
  const p = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function compose(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...srv.env, COMPOSE_INTERACTIVE_NO_CLI: '1', COMPOSE_PROJECT_NAME: project };
  const c = spawn(COMPOSE, ['--no-ansi', '-f', join(dir, 'docker-compose.yml'), ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  c.stdout.on('data', (b: Buffer) => out.push(b));
  c.stderr.on('data', (b: Buffer) => err.push(b));
  const [code] = (await once(c, 'close')) as [number | null];
  return { code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

async function lb(args: string[]): Promise<string> {
  const r = await lbp(srv.root, args);
  assert.equal(r.code, 0, `layerbox ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  assert.equal(process.getuid?.(), 0, 'these tests need root');
  if (!haveCompose) return;
  srv = await startServe();
  await lb(['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
  dir = mkdtempSync(join(tmpdir(), 'lb-compose-'));
});

after(async () => {
  if (!srv) return;
  await compose(['down', '-v', '-t', '1']).catch(() => undefined);
  // whatever a failed run left: containers, networks, volumes of the project
  const ids = (await lbp(srv.root, ['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await lbp(srv.root, ['rm', '-f', '-v', ...ids]);
  const nets = (await lbp(srv.root, ['network', 'ls', '-q', '--filter', 'type=custom'])).stdout.split('\n').filter(Boolean);
  if (nets.length) await lbp(srv.root, ['network', 'rm', ...nets]);
  await srv.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('docker-compose up -d, ps, logs, down -v of a web server and a client that reaches it by its service name', async (t) => {
  if (!haveCompose) {
    t.diagnostic('docker-compose is not installed');
    assert.ok(!haveCompose);
    return;
  }
  const port = await freePort();
  writeFileSync(
    join(dir, 'docker-compose.yml'),
    [
      'version: "3.7"',
      'services:',
      '  web:',
      '    image: bench/busybox:latest',
      `    command: ["sh", "-c", "echo hello from web > /www/index.html && exec httpd -f -p 80 -h /www"]`,
      '    ports:',
      `      - "${port}:80"`,
      '    volumes:',
      '      - www:/www',
      '  client:',
      '    image: bench/busybox:latest',
      '    depends_on: [web]',
      // busybox wget: no -T (Debian's busybox-static segfaults with it); retried until web listens
      `    command: ["sh", "-c", "for i in $$(seq 1 60); do if wget -q -O - http://web/; then echo fetched by name; exec sleep 600; fi; sleep 0.5; done; echo never reached web; exit 1"]`,
      'volumes:',
      '  www: {}',
      '',
    ].join('\n'),
  );

  const up = await compose(['up', '-d']);
  assert.equal(up.code, 0, `up -d: ${up.stderr}\n${srv.log()}`);
  assert.match(up.stderr, new RegExp(`Creating network "${project}_default" with the default driver`));
  assert.match(up.stderr, new RegExp(`Creating volume "${project}_www" with default driver`));

  // the network and the volume exist, labelled by compose; both containers run on the network
  const net = JSON.parse(await lb(['network', 'inspect', `${project}_default`]))[0] as { Labels: Record<string, string>; Driver: string };
  assert.equal(net.Driver, 'bridge');
  assert.equal(net.Labels['com.docker.compose.project'], project);
  assert.match(await lb(['volume', 'ls', '-q']), new RegExp(`^${project}_www$`, 'm'));

  // the client got the page from the web service by its name
  let logs = '';
  for (let i = 0; i < 100 && !/fetched by name|never reached/.test(logs); i++) {
    logs = (await compose(['logs', '--no-color', 'client'])).stdout;
    if (!/fetched by name|never reached/.test(logs)) await sleep(200);
  }
  assert.match(logs, /hello from web/, logs);
  assert.match(logs, /fetched by name/, logs);

  const ps = await compose(['ps']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, new RegExp(`${project}_web_1 .* Up .*0\\.0\\.0\\.0:${port}->80/tcp`));
  assert.match(ps.stdout, new RegExp(`${project}_client_1 .* Up`));
  const services = (await compose(['ps', '--services'])).stdout.split('\n').filter(Boolean).sort();
  assert.deepEqual(services, ['client', 'web']);

  // the published port answers on the host; the page lives in the named volume
  const page = await httpGet(`http://127.0.0.1:${port}/`);
  assert.equal(page.status, 200);
  assert.equal(page.body, 'hello from web\n');
  const webLogs = await compose(['logs', '--no-color', 'web']);
  assert.equal(webLogs.code, 0, webLogs.stderr);

  const down = await compose(['down', '-v', '-t', '1']);
  assert.equal(down.code, 0, `down -v: ${down.stderr}\n${srv.log()}`);
  assert.equal(await lb(['ps', '-aq']), '', 'no container left');
  assert.equal(await lb(['network', 'ls', '-q', '--filter', `name=${project}`]), '', 'no network left');
  assert.doesNotMatch(await lb(['volume', 'ls', '-q']), new RegExp(project), 'no volume left');
  await assert.rejects(httpGet(`http://127.0.0.1:${port}/`), 'nothing answers on the port');
});
