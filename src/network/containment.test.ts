/**
 * Containment of the default bridge network against a hostile container, through the real CLI:
 * default containers (Docker's 14 capabilities, NET_RAW among them, and its seccomp profile) on
 * the default bridge layerbox0, in temporary store roots.
 *
 * - CVE-2020-8558: a container writes raw Ethernet frames (AF_PACKET) to the gateway's MAC with
 *   the IPv4 destination 127.0.0.1, which portmap's route_localnet on the bridge would route to
 *   the host's loopback services. The sender is src/network/testdata/raw-frame.c, compiled here
 *   with `gcc -static` and bind-mounted into a busybox container.
 * - issue 9.6: two stores on one bridge must never hand out the same address.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { lbp, tempRoot } from '../testing/cli.js';
import { FIXTURES, REPO_ROOT } from '../testing/tree.js';
import { run } from '../sys/exec.js';
import { createNetns, removeNetns, execInNetns } from './netns.js';
import { NetworkManager, DEFAULT_BRIDGE_NETWORK } from './network.js';

const BB = 'bench/busybox:latest';
const BRIDGE = DEFAULT_BRIDGE_NETWORK.bridge;
const storeA = tempRoot('lb-contain-a-');
// the two stores of the issue-9.6 test: fresh, so that leases per store would collide at once
const storeB = tempRoot('lb-contain-b-');
const storeC = tempRoot('lb-contain-c-');
const work = mkdtempSync(join(tmpdir(), 'lb-contain-work-'));
const tag = randomBytes(2).toString('hex');
const children: ChildProcess[] = [];

async function ok(root: string, args: string[]): Promise<string> {
  const r = await lbp(root, args);
  assert.equal(r.code, 0, `layerbox ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function waitFor<T>(what: string, f: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      return await f();
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${what}: ${(last as Error)?.message ?? 'timed out'}`);
}

async function fetchText(url: string): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.text();
}

function listenHttp(host: string, hits: string[]): Promise<http.Server> {
  const s = http.createServer((req, res) => {
    hits.push(`${req.socket.remoteAddress} ${req.method} ${req.url}`);
    res.end('host secret\n');
  });
  s.on('connection', (c) => hits.push(`connection from ${c.remoteAddress}`));
  return new Promise((r) => s.listen(0, host, () => r(s)));
}

function listenUdp(host: string, got: { from: string; msg: string }[]): Promise<Socket> {
  const s = createSocket('udp4');
  s.on('message', (m, rinfo) => got.push({ from: rinfo.address, msg: m.toString() }));
  return new Promise((r) => s.bind(0, host, () => r(s)));
}

const portOf = (s: http.Server | Socket) => (s.address() as AddressInfo).port;

function inspectNet(root: string, name: string): Promise<{ id: string; ip: string; gateway: string }> {
  return ok(root, ['inspect', name]).then((out) => {
    const c = JSON.parse(out)[0];
    return { id: c.Id as string, ip: c.NetworkSettings.IPAddress as string, gateway: c.NetworkSettings.Gateway as string };
  });
}

/** the sections of a probe script's output, split at "== name" lines */
function sections(out: string): Record<string, string> {
  const r: Record<string, string> = {};
  let cur = '';
  for (const line of out.split('\n')) {
    const m = /^== (\S+)$/.exec(line);
    if (m) r[(cur = m[1]!)] = '';
    else if (cur) r[cur] += line + '\n';
  }
  return r;
}

before(async () => {
  assert.equal(process.getuid?.(), 0, 'these tests need root');
  execFileSync('gcc', ['-static', '-O2', '-o', join(work, 'raw-frame'), join(REPO_ROOT, 'src', 'network', 'testdata', 'raw-frame.c')]);
  await ok(storeA.root, ['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
  await ok(storeB.root, ['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
  await ok(storeC.root, ['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
});

/** Waits until no process names the store root (conmon, and the cleanup it runs when a container exits). */
async function settled(root: string): Promise<void> {
  const users = () =>
    readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid && (() => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(root);
      } catch {
        return false;
      }
    })());
  await waitFor(`processes using ${root} exited`, async () => assert.deepEqual(users(), [])).catch(() => {});
}

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const s of [storeA, storeB, storeC]) {
    const ids = (await lbp(s.root, ['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean);
    if (ids.length) await lbp(s.root, ['rm', '-f', ...ids]);
    await settled(s.root);
    s.cleanup();
  }
  await run('ip', ['link', 'del', `lbx${tag}`], { allowFailure: true });
  await removeNetns(join(work, 'outside')).catch(() => {});
  rmSync(work, { recursive: true, force: true });
});

describe('CVE-2020-8558: a default container sends raw frames to the gateway MAC for 127.0.0.1', () => {
  const loHits: string[] = [];
  const loDatagrams: { from: string; msg: string }[] = [];
  const anyDatagrams: { from: string; msg: string }[] = [];
  const servers: { close(): unknown }[] = [];
  let loPort = 0;
  let loUdpPort = 0;
  let anyTcpPort = 0;
  let anyUdpPort = 0;
  let published = 0;
  let probe: Record<string, string> = {};
  let prober = { ip: '', gateway: '' };

  before(async () => {
    const loHttp = await listenHttp('127.0.0.1', loHits);
    const anyHttp = await listenHttp('0.0.0.0', []);
    const loUdp = await listenUdp('127.0.0.1', loDatagrams);
    const anyUdp = await listenUdp('0.0.0.0', anyDatagrams);
    servers.push(loHttp, anyHttp, loUdp, anyUdp);
    [loPort, anyTcpPort, loUdpPort, anyUdpPort] = [portOf(loHttp), portOf(anyHttp), portOf(loUdp), portOf(anyUdp)];

    // a port published on the host's loopback only (also what sets route_localnet on the bridge)
    const free = await listenHttp('127.0.0.1', []);
    published = portOf(free);
    await new Promise((r) => free.close(r));
    await ok(storeA.root, ['run', '-d', '--name', 'lo-web', '-p', `127.0.0.1:${published}:80`, BB, 'httpd', '-f', '-p', '80', '-h', '/etc']);
    await waitFor('the loopback-published port answers', () => fetchText(`http://127.0.0.1:${published}/motd`));

    const get = (path: string) => `GET ${path} HTTP/1.0\r\nHost: x\r\n\r\n`;
    const script = [
      'GW=$(ip route | awk \'/^default/{print $3}\')',
      'ping -c 1 -W 2 "$GW" >/dev/null',
      'MAC=$(awk -v gw="$GW" \'$1==gw{print $4}\' /proc/net/arp)',
      'echo "== gateway"; echo "$GW $MAC"',
      // the attack, then the same frames to an address the container may reach (the controls)
      `echo "== tcp-loopback"; /t/raw-frame eth0 "$MAC" 127.0.0.1 tcp ${loPort} '${get('/')}'`,
      `echo "== udp-loopback"; /t/raw-frame eth0 "$MAC" 127.0.0.1 udp ${loUdpPort} probe-loopback`,
      `echo "== tcp-loopback-published"; /t/raw-frame eth0 "$MAC" 127.0.0.1 tcp ${published} '${get('/motd')}'`,
      `echo "== tcp-gateway"; /t/raw-frame eth0 "$MAC" "$GW" tcp ${anyTcpPort} '${get('/')}'`,
      `echo "== udp-gateway"; /t/raw-frame eth0 "$MAC" "$GW" udp ${anyUdpPort} probe-gateway`,
      // plain sockets: the gateway address on ports bound to the host's 127.0.0.1 only
      `echo "== connect-gateway-loopback-port"; wget -q -O - "http://$GW:${loPort}/"; echo "exit $?"`,
      `echo "== connect-gateway-published-port"; wget -q -O - "http://$GW:${published}/motd"; echo "exit $?"`,
      'echo "== end"',
    ].join('\n');
    const out = await ok(storeA.root, ['run', '--rm', '--name', 'prober', '-v', `${work}:/t:ro`, BB, 'sh', '-c', script]);
    probe = sections(out);
    const [gw] = probe.gateway!.trim().split(' ');
    prober = { ip: '', gateway: gw! };
    // the control datagram was sent after the one to 127.0.0.1: once it is here, the other one
    // would have arrived too
    await waitFor('the control datagram to the gateway', async () => assert.equal(anyDatagrams.length, 1));
    prober.ip = anyDatagrams[0]!.from;
  });

  after(async () => {
    for (const s of servers) s.close();
    await lbp(storeA.root, ['rm', '-f', 'lo-web']);
  });

  it('the probe is real: route_localnet is on for the bridge, and the same raw frames to the gateway address get answered', () => {
    assert.equal(readFileSync(`/proc/sys/net/ipv4/conf/${BRIDGE}/route_localnet`, 'utf8').trim(), '1', 'portmap set route_localnet');
    assert.match(probe['tcp-gateway']!, /^syn-ack\n/, `raw TCP to the gateway: ${probe['tcp-gateway']}`);
    assert.deepEqual(anyDatagrams.map((d) => d.msg), ['probe-gateway']);
    assert.match(prober.ip, /^10\.77\.\d+\.\d+$/, 'the datagram came from the container address');
  });

  it('raw TCP frames to 127.0.0.1: no handshake, no connection on the host loopback listener', () => {
    assert.equal(probe['tcp-loopback'], 'timeout\n');
    assert.deepEqual(loHits, []);
  });

  it('raw UDP frames to 127.0.0.1: no datagram on the host loopback listener', () => {
    assert.equal(probe['udp-loopback'], 'sent\n', 'the frame was sent');
    assert.deepEqual(loDatagrams, []);
  });

  it('raw TCP frames to a port published on 127.0.0.1 only (-p 127.0.0.1:H:C): dropped before its DNAT', () => {
    assert.equal(probe['tcp-loopback-published'], 'timeout\n');
  });

  it('a TCP connect to the gateway address on a port bound to the host 127.0.0.1 fails', () => {
    assert.match(probe['connect-gateway-loopback-port']!, /^(?!host secret)[\s\S]*exit [1-9]\d*\n$/);
    assert.match(probe['connect-gateway-published-port']!, /^(?![\s\S]*Welcome)[\s\S]*exit [1-9]\d*\n$/);
    assert.deepEqual(loHits, []);
  });

  it('-p 127.0.0.1:H:C still answers from the host; the drop rule is installed once', async () => {
    assert.equal(await fetchText(`http://127.0.0.1:${published}/motd`), 'Welcome to the busybox fixture\n');
    const raw = (await run('iptables', ['-w', '-t', 'raw', '-S', 'PREROUTING'])).stdout.split('\n');
    const guard = raw.filter((l) => l.includes('CVE-2020-8558'));
    assert.equal(guard.length, 1, raw.join('\n'));
    assert.match(guard[0]!, /^-A PREROUTING -d 127\.0\.0\.0\/8 ! -i lo .*-j DROP$/);
  });
});

describe('two stores on one bridge (issue 9.6)', () => {
  const outside = join(work, 'outside');
  const veth = `lbx${tag}`;
  const OUT_HOST = '203.0.113.1';
  const OUT_PEER = '203.0.113.2';

  before(async () => {
    await createNetns(outside);
    await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`]);
    await run('ip', ['link', 'set', `${veth}p`, 'netns', outside]);
    await run('ip', ['addr', 'add', `${OUT_HOST}/24`, 'dev', veth]);
    await run('ip', ['link', 'set', veth, 'up']);
    await execInNetns(outside, 'ip', ['addr', 'add', `${OUT_PEER}/24`, 'dev', `${veth}p`]);
    await execInNetns(outside, 'ip', ['link', 'set', `${veth}p`, 'up']);
    await execInNetns(outside, 'ip', ['link', 'set', 'lo', 'up']);
    const cgi = join(work, 'outside-www', 'cgi-bin');
    mkdirSync(cgi, { recursive: true });
    writeFileSync(join(cgi, 'ip'), '#!/bin/sh\nprintf \'Content-Type: text/plain\\r\\n\\r\\n%s\\n\' "$REMOTE_ADDR"\n');
    chmodSync(join(cgi, 'ip'), 0o755);
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    children.push(spawn('nsenter', [`--net=${outside}`, '--', 'busybox', 'httpd', '-f', '-p', `${OUT_PEER}:80`, '-h', join(work, 'outside-www')], { stdio: 'ignore', env }));
    await waitFor('the outside httpd', () => fetchText(`http://${OUT_PEER}/cgi-bin/ip`));
  });

  after(async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    await run('ip', ['link', 'del', veth], { allowFailure: true });
    await removeNetns(outside).catch(() => {});
  });

  it('containers of two stores get distinct addresses and reach each other and the outside; one store\'s rm and prune keep the other\'s lease', async () => {
    // each store's first container (fresh stores: with leases per store, both got 10.77.0.2)
    await ok(storeB.root, ['run', '-d', '--name', 'one', BB, 'httpd', '-f', '-p', '80', '-h', '/etc']);
    await ok(storeC.root, ['run', '-d', '--name', 'two', BB, 'httpd', '-f', '-p', '80', '-h', '/etc']);
    const one = await inspectNet(storeB.root, 'one');
    const two = await inspectNet(storeC.root, 'two');
    assert.match(one.ip, /^10\.77\.\d+\.\d+$/);
    assert.match(two.ip, /^10\.77\.\d+\.\d+$/);
    assert.notEqual(one.ip, two.ip);
    assert.equal(one.gateway, two.gateway);

    // each reaches the other over the bridge, and the outside through the host's masquerade
    const wget = (root: string, name: string, url: string) => ok(root, ['exec', name, 'wget', '-q', '-O', '-', url]);
    assert.equal(await waitFor('one -> two', () => wget(storeB.root, 'one', `http://${two.ip}/motd`)), 'Welcome to the busybox fixture\n');
    assert.equal(await waitFor('two -> one', () => wget(storeC.root, 'two', `http://${one.ip}/motd`)), 'Welcome to the busybox fixture\n');
    assert.equal((await wget(storeB.root, 'one', `http://${OUT_PEER}/cgi-bin/ip`)).trim(), OUT_HOST);
    assert.equal((await wget(storeC.root, 'two', `http://${OUT_PEER}/cgi-bin/ip`)).trim(), OUT_HOST);

    // one allocator for the bridge: both leases in the same directory, each naming its container
    const nmB = new NetworkManager({ root: storeB.root });
    const leaseDir = join(nmB.ipamDir, DEFAULT_BRIDGE_NETWORK.name);
    const owner = async (ip: string) => (await readFile(join(leaseDir, ip), 'utf8').catch(() => '')).split(/\r?\n/)[0];
    assert.equal(await owner(one.ip), one.id);
    assert.equal(await owner(two.ip), two.id);

    // the first store lets go of everything: the second's lease, rules and connectivity stay
    await ok(storeB.root, ['rm', '-f', 'one']);
    assert.equal(existsSync(join(leaseDir, one.ip)), false, 'the first store released its lease');
    assert.equal(await nmB.prune(), false, 'prune keeps a bridge another store uses');
    assert.equal(await owner(two.ip), two.id, "the second store's lease is kept");
    assert.equal((await wget(storeC.root, 'two', `http://${OUT_PEER}/cgi-bin/ip`)).trim(), OUT_HOST);

    // the first store's next container does not get the second's address
    await ok(storeB.root, ['run', '-d', '--name', 'three', BB, 'httpd', '-f', '-p', '80', '-h', '/etc']);
    const three = await inspectNet(storeB.root, 'three');
    assert.notEqual(three.ip, two.ip);
    assert.equal(await waitFor('three -> two', () => wget(storeB.root, 'three', `http://${two.ip}/motd`)), 'Welcome to the busybox fixture\n');
    await ok(storeB.root, ['rm', '-f', 'three']);
    await ok(storeC.root, ['rm', '-f', 'two']);
    assert.equal(existsSync(join(leaseDir, two.ip)), false, 'the second store released its lease');
  });
});
