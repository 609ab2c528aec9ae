/**
 * Integration tests, as root, with the real CNI plugins (/usr/lib/cni), iptables,
 * iproute2 and busybox-static. Every test network uses its own bridge and subnet and a
 * temp store root; everything is removed in after() even when a test fails.
 */
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, readFile, readdir, readlink, chmod, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir, hostname as osHostname } from 'node:os';
import { join, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import { createServer, type Server } from 'node:net';
import { createSocket } from 'node:dgram';
import { run } from '../sys/exec.js';
import { removeTree } from '../sys/fsutil.js';
import { isEngineError } from '../errors/index.js';
import { NetworkManager, parseNetworkMode, type NetworkAttachment } from './network.js';
import { createNetns, removeNetns, execInNetns, isNetns } from './netns.js';
import { cniChainName, sweepContainerRules, listRules } from './iptables.js';
import { readCache } from './cni.js';
import { ephemeralRange } from './ports.js';

const here = dirname(fileURLToPath(import.meta.url));
const tag = randomBytes(2).toString('hex');
const octet = 100 + (parseInt(tag, 16) % 100);
const NET = { name: `lbt${tag}`, bridge: `lbt${tag}`, subnet: `10.231.${octet}.0/24` };
const NET2 = { name: `lbu${tag}`, bridge: `lbu${tag}`, subnet: `10.232.${octet}.0/24` };
const NET3 = { name: `lbv${tag}`, bridge: `lbv${tag}`, subnet: `10.233.${octet}.0/24` };
const OUT_HOST = '198.51.100.1';
const OUT_PEER = '198.51.100.2';
const outVeth = `lbo${tag}`;

let root: string;
let www: string;
let nm: NetworkManager;
let nm2: NetworkManager;
/** further stores made by tests: torn down and pruned like nm and nm2 */
const extra: NetworkManager[] = [];
let origForward: string;
const children: ChildProcess[] = [];

const newId = () => randomBytes(32).toString('hex');

function spawnInNetns(ns: string, cmd: string, args: string[]): ChildProcess {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const c = spawn('nsenter', [`--net=${ns}`, '--', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(c);
  return c;
}

function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    c.once('close', () => r());
    c.kill('SIGKILL');
  });
}

function httpGet(url: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout fetching ${url}`)));
    req.on('error', reject);
  });
}

async function waitFor<T>(what: string, f: () => Promise<T>, timeoutMs = 5000): Promise<T> {
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

async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '0.0.0.0', () => r()));
  const p = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function leases(n: NetworkManager, netName: string): Promise<string[]> {
  try {
    return (await readdir(join(n.ipamDir, netName))).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
  } catch {
    return [];
  }
}

/** busybox wget inside a netns. Not `wget -T`: Debian's busybox-static 1.35 wget segfaults with it. */
async function wgetIn(ns: string, url: string, allowFailure = false) {
  return execInNetns(ns, 'timeout', ['5', 'busybox', 'wget', '-q', '-O', '-', url], { allowFailure });
}

/** Starts busybox httpd on :80 inside the container's netns, serving `www`. */
async function startHttpd(a: NetworkAttachment): Promise<ChildProcess> {
  const c = spawnInNetns(a.netnsPath!, 'busybox', ['httpd', '-f', '-p', '80', '-h', www]);
  await waitFor('httpd up', () => httpGet(`http://${a.ipAddress}/`));
  return c;
}

/** Asserts that nothing of the attachment remains on the host. */
async function assertNoTrace(n: NetworkManager, a: NetworkAttachment, netName = NET.name): Promise<void> {
  const id = a.containerId;
  if (a.hostVeth) {
    const r = await run('ip', ['-o', 'link', 'show', 'dev', a.hostVeth], { allowFailure: true });
    assert.notEqual(r.code, 0, `veth ${a.hostVeth} is gone`);
  }
  const ipt = (await run('iptables-save', [])).stdout;
  assert.ok(!ipt.includes(id), 'no iptables rule mentions the container id');
  assert.ok(!ipt.includes(cniChainName(netName, id)), 'no CNI-<hash> masquerade chain');
  assert.ok(!ipt.includes(cniChainName(netName, id, 'DN-')), 'no CNI-DN-<hash> port chain');
  if (a.ipAddress) assert.ok(!ipt.includes(`${a.ipAddress}/32`), `no rule for ${a.ipAddress}`);
  for (const p of a.ports) assert.ok(!new RegExp(`--dports? ${p.hostPort}\\b`).test(ipt), `no DNAT for host port ${p.hostPort}`);
  if (a.netnsPath) {
    const mounts = await readFile('/proc/mounts', 'utf8');
    assert.ok(!mounts.includes(a.netnsPath), 'netns unmounted');
    assert.ok(!existsSync(a.netnsPath), 'netns file removed');
  }
  if (a.ipAddress) assert.ok(!(await leases(n, netName)).includes(a.ipAddress), `IPAM lease of ${a.ipAddress} released`);
  assert.equal(await readCache(n.cacheDir, netName, id, 'eth0'), undefined, 'CNI cache entry removed');
  assert.equal(await n.inspect(id), undefined, 'attachment record removed');
}

before(async () => {
  assert.equal(process.getuid?.(), 0, 'these tests need root');
  root = await mkdtemp(join(tmpdir(), 'lb-net-'));
  www = join(root, 'www');
  await mkdir(www);
  await writeFile(join(www, 'index.html'), 'hello from the container\n');
  origForward = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim();
  nm = new NetworkManager({ root: join(root, 'store'), network: NET });
  nm2 = new NetworkManager({ root: join(root, 'store2'), network: NET2 });
});

after(async () => {
  for (const c of children) await stopChild(c);
  for (const m of [nm, nm2, ...extra]) {
    if (!m) continue;
    for (const a of await m.list().catch(() => [])) await m.teardown(a.containerId).catch(() => {});
    await m.prune().catch(() => {});
  }
  await run('ip', ['link', 'del', outVeth], { allowFailure: true });
  if (root) {
    await removeNetns(join(root, 'outside')).catch(() => {});
    await removeTree(root).catch(() => {});
  }
  // The bridge plugin turns on forwarding; put it back unless other containers need it now.
  const veths = await run('ip', ['-o', 'link', 'show', 'type', 'veth'], { allowFailure: true });
  if (origForward === '0' && veths.stdout.trim() === '') await writeFile('/proc/sys/net/ipv4/ip_forward', '0');
});

describe('network (root, real CNI plugins)', () => {
  // Each test starts from a clean host even when the one before failed half-way.
  afterEach(async () => {
    for (const c of children.splice(0)) await stopChild(c);
    for (const m of [nm, nm2, ...extra]) for (const a of await m.list().catch(() => [])) await m.teardown(a.containerId).catch(() => {});
    await run('ip', ['link', 'del', outVeth], { allowFailure: true });
    await removeNetns(join(root, 'outside')).catch(() => {});
  });

  it('bridge: two containers ping each other and the gateway; hosts/hostname written; teardown leaves nothing', async () => {
    const [id1, id2] = [newId(), newId()];
    const a1 = await nm.setup({ containerId: id1, etcDir: join(root, 'c', id1) });
    const a2 = await nm.setup({ containerId: id2, etcDir: join(root, 'c', id2), hostname: 'second', extraHosts: ['gw:host-gateway'] });
    assert.equal(a1.state, 'ready');
    assert.ok(a1.ipAddress?.startsWith(`10.231.${octet}.`), `address ${a1.ipAddress} in ${NET.subnet}`);
    assert.notEqual(a1.ipAddress, a2.ipAddress);
    assert.equal(a1.gateway, `10.231.${octet}.1`);
    assert.ok(await isNetns(a1.netnsPath!));
    const onBridge = (await run('ip', ['-o', 'link', 'show', 'master', NET.bridge])).stdout;
    assert.ok(onBridge.includes(a1.hostVeth!) && onBridge.includes(a2.hostVeth!), 'both veths are bridge ports');
    assert.deepEqual((await leases(nm, NET.name)).sort(), [a1.ipAddress!, a2.ipAddress!].sort());

    await execInNetns(a1.netnsPath!, 'busybox', ['ping', '-c', '1', '-W', '2', a2.ipAddress!]);
    await execInNetns(a2.netnsPath!, 'busybox', ['ping', '-c', '1', '-W', '2', a1.ipAddress!]);
    await execInNetns(a1.netnsPath!, 'busybox', ['ping', '-c', '1', '-W', '2', a1.gateway!]);
    const route = (await execInNetns(a1.netnsPath!, 'ip', ['route', 'show', 'default'])).stdout;
    assert.match(route, new RegExp(`default via ${a1.gateway!.replace(/\./g, '\\.')} dev eth0`));

    assert.equal(await readFile(a1.etcFiles!.hostname, 'utf8'), `${id1.slice(0, 12)}\n`);
    assert.ok((await readFile(a1.etcFiles!.hosts, 'utf8')).endsWith(`\n${a1.ipAddress}\t${id1.slice(0, 12)}\n`));
    assert.ok((await readFile(a2.etcFiles!.hosts, 'utf8')).endsWith(`${a2.gateway}\tgw\n${a2.ipAddress}\tsecond\n`));
    assert.ok(!/^nameserver\s+127\./m.test(await readFile(a1.etcFiles!.resolvConf, 'utf8')));

    await nm.teardown(id1);
    await nm.teardown(id2);
    await assertNoTrace(nm, a1);
    await assertNoTrace(nm, a2);
    await nm.teardown(id1); // idempotent
    await assertNoTrace(nm, a1);
    assert.equal((await run('ip', ['-o', 'link', 'show', 'master', NET.bridge])).stdout.trim(), '', 'no port left on the bridge');
  });

  it('-p: httpd in the netns answers on 127.0.0.1:HOSTPORT and via the host address from another container; docker port output', async () => {
    const [p1, p2, p3] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
    const id = newId();
    const a = await nm.setup({ containerId: id, publish: [`${p1}:80`, `127.0.0.1:${p2}:80`, `0.0.0.0:${p3}:80`] });
    const natural = new Intl.Collator('en', { numeric: true }).compare;
    assert.deepEqual(await nm.portLines(id), [`80/tcp -> 0.0.0.0:${p1}`, `80/tcp -> 0.0.0.0:${p3}`, `80/tcp -> 127.0.0.1:${p2}`].sort(natural));
    await startHttpd(a);
    const r = await httpGet(`http://127.0.0.1:${p1}/`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello from the container\n');
    assert.equal((await httpGet(`http://127.0.0.1:${p2}/`)).body, 'hello from the container\n');
    assert.equal((await httpGet(`http://127.0.0.1:${p3}/`)).body, 'hello from the container\n');
    // hairpin: the container reaches itself through its published port
    assert.equal((await wgetIn(a.netnsPath!, `http://${a.gateway}:${p1}/`)).stdout, 'hello from the container\n');

    // another container reaches it through a host address (the gateway), i.e. DNAT + hairpin masquerade
    const other = await nm.setup({ containerId: newId() });
    const viaHost = await wgetIn(other.netnsPath!, `http://${a.gateway}:${p1}/`);
    assert.equal(viaHost.stdout, 'hello from the container\n');
    // the 127.0.0.1-only binding is not published on other addresses
    const notThere = await wgetIn(other.netnsPath!, `http://${a.gateway}:${p2}/`, true);
    assert.notEqual(notThere.code, 0);

    await nm.teardown(other.containerId);
    await nm.teardown(id);
    await assertNoTrace(nm, a);
    await assertNoTrace(nm, other);
    await assert.rejects(httpGet(`http://127.0.0.1:${p1}/`, 1000), 'nothing answers on the host port after teardown');
  });

  it('-p udp: a datagram to 127.0.0.1:HOSTPORT reaches a udp server in the netns and the reply comes back', async () => {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '0.0.0.0', () => r()));
    const hp = sock.address().port;
    sock.close();
    const id = newId();
    const a = await nm.setup({ containerId: id, publish: [`${hp}:5353/udp`] });
    const srv = spawnInNetns(a.netnsPath!, process.execPath, [
      '-e',
      "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('echo:'+m,r.port,r.address));s.bind(5353,()=>console.log('ready'))",
    ]);
    await new Promise<void>((res, rej) => {
      srv.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && res());
      srv.once('close', () => rej(new Error('udp server exited')));
    });
    const client = createSocket('udp4');
    try {
      const reply = await waitFor('udp echo', () => {
        return new Promise<string>((res, rej) => {
          const t = setTimeout(() => rej(new Error('no reply')), 300);
          client.once('message', (m) => {
            clearTimeout(t);
            res(m.toString());
          });
          client.send('hi', hp, '127.0.0.1');
        });
      });
      assert.equal(reply, 'echo:hi');
    } finally {
      client.close();
    }
    assert.deepEqual(await nm.portLines(id), [`5353/udp -> 0.0.0.0:${hp}`]);
    await stopChild(srv);
    await nm.teardown(id);
    await assertNoTrace(nm, a);
  });

  it('-P: every exposed port gets a random host port, reported and reachable', async () => {
    const id = newId();
    const a = await nm.setup({ containerId: id, publishAll: true, exposedPorts: ['80/tcp', '53/udp'] });
    const [lo, hi] = await ephemeralRange();
    assert.equal(a.ports.length, 2);
    for (const p of a.ports) assert.ok(p.hostPort >= lo && p.hostPort <= hi, `host port ${p.hostPort} is in ${lo}-${hi}`);
    const tcp = a.ports.find((p) => p.proto === 'tcp')!;
    const udp = a.ports.find((p) => p.proto === 'udp')!;
    assert.deepEqual(await nm.portLines(id), [`53/udp -> 0.0.0.0:${udp.hostPort}`, `80/tcp -> 0.0.0.0:${tcp.hostPort}`]);
    assert.deepEqual(await nm.portLines(id, '80/tcp'), [`0.0.0.0:${tcp.hostPort}`]);
    await startHttpd(a);
    assert.equal((await httpGet(`http://127.0.0.1:${tcp.hostPort}/`)).body, 'hello from the container\n');
    await nm.teardown(id);
    await assertNoTrace(nm, a);
  });

  it('a taken host port fails with "port is already allocated" (our container, a host process, another CNI user) and leaves nothing', async () => {
    const p = await freeTcpPort();
    const id1 = newId();
    const a1 = await nm.setup({ containerId: id1, publish: [`${p}:80`] });
    const allocated = (ip: string, port: number) => (e: unknown) =>
      isEngineError(e, 'conflict') && e.code === 'PORT_ALLOCATED' && e.message === `Bind for ${ip}:${port} failed: port is already allocated`;

    const id2 = newId();
    await assert.rejects(nm.setup({ containerId: id2, publish: [`${p}:8080`] }), allocated('0.0.0.0', p));
    await assert.rejects(nm.setup({ containerId: id2, publish: [`127.0.0.1:${p}:8080`] }), allocated('127.0.0.1', p));
    assert.equal(await nm.inspect(id2), undefined);
    assert.ok(!existsSync(nm.netnsPath(id2)), 'no netns left by the failed setup');
    assert.deepEqual(await leases(nm, NET.name), [a1.ipAddress!]);

    // another store on this host (its own bridge): the port is held by our CNI DNAT rule
    await assert.rejects(
      nm2.setup({ containerId: newId(), publish: [`${p}:80`] }),
      (e: unknown) => allocated('0.0.0.0', p)(e) && /CNI network/.test((e as { hint?: string }).hint ?? ''),
    );

    // a process on the host listens on the port
    const q = await freeTcpPort();
    const listener: Server = createServer();
    await new Promise<void>((r) => listener.listen(q, '127.0.0.1', () => r()));
    try {
      await assert.rejects(nm.setup({ containerId: id2, publish: [`${q}:80`] }), allocated('0.0.0.0', q));
    } finally {
      await new Promise<void>((r) => listener.close(() => r()));
    }
    assert.equal(await nm.inspect(id2), undefined);

    // released at teardown: now it can be taken
    await nm.teardown(id1);
    await assertNoTrace(nm, a1);
    const a2 = await nm.setup({ containerId: id2, publish: [`${p}:80`] });
    assert.equal(a2.ports[0]!.hostPort, p);
    await nm.teardown(id2);
    await assertNoTrace(nm, a2);
  });

  it('outbound: traffic to an outside network is masqueraded behind the host (seen from an outside netns)', async () => {
    const outside = join(root, 'outside');
    await createNetns(outside);
    await run('ip', ['link', 'add', outVeth, 'type', 'veth', 'peer', 'name', `${outVeth}p`]);
    await run('ip', ['link', 'set', `${outVeth}p`, 'netns', outside]);
    await run('ip', ['addr', 'add', `${OUT_HOST}/24`, 'dev', outVeth]);
    await run('ip', ['link', 'set', outVeth, 'up']);
    await execInNetns(outside, 'ip', ['addr', 'add', `${OUT_PEER}/24`, 'dev', `${outVeth}p`]);
    await execInNetns(outside, 'ip', ['link', 'set', `${outVeth}p`, 'up']);
    await execInNetns(outside, 'ip', ['link', 'set', 'lo', 'up']);
    const cgi = join(root, 'outside-www', 'cgi-bin');
    await mkdir(cgi, { recursive: true });
    await writeFile(join(cgi, 'ip'), '#!/bin/sh\nprintf \'Content-Type: text/plain\\r\\n\\r\\n%s\\n\' "$REMOTE_ADDR"\n');
    await chmod(join(cgi, 'ip'), 0o755);
    const srv = spawnInNetns(outside, 'busybox', ['httpd', '-f', '-p', `${OUT_PEER}:80`, '-h', join(root, 'outside-www')]);
    await waitFor('outside httpd', () => httpGet(`http://${OUT_PEER}/cgi-bin/ip`));

    const id = newId();
    const a = await nm.setup({ containerId: id });
    // the outside netns has no route to the container subnet: only NAT can make this work
    const seen = await wgetIn(a.netnsPath!, `http://${OUT_PEER}/cgi-bin/ip`);
    assert.equal(seen.stdout.trim(), OUT_HOST, 'the outside sees the host address, not the container address');
    assert.equal((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim(), '1');
    await execInNetns(a.netnsPath!, 'busybox', ['ping', '-c', '1', '-W', '2', OUT_PEER]);

    await stopChild(srv);
    await nm.teardown(id);
    await assertNoTrace(nm, a);
    await run('ip', ['link', 'del', outVeth]);
    await removeNetns(outside);
  });

  it('none: a netns with only lo, up; published ports discarded with a warning', async () => {
    const id = newId();
    const a = await nm.setup({ containerId: id, mode: 'none', publish: ['8080:80'], etcDir: join(root, 'c', id) });
    assert.deepEqual(a.ports, []);
    assert.match(a.warnings.join('\n'), /Published ports are discarded when using none network mode/);
    const links = (await execInNetns(a.netnsPath!, 'ip', ['-o', 'link', 'show'])).stdout.trim().split('\n');
    assert.equal(links.length, 1, links.join('\n'));
    assert.match(links[0]!, /^1: lo: <LOOPBACK,UP,LOWER_UP>/);
    assert.match((await execInNetns(a.netnsPath!, 'ip', ['-o', '-4', 'addr', 'show', 'lo'])).stdout, /inet 127\.0\.0\.1\/8/);
    await execInNetns(a.netnsPath!, 'busybox', ['ping', '-c', '1', '-W', '1', '127.0.0.1']);
    const hosts = await readFile(a.etcFiles!.hosts, 'utf8');
    assert.ok(hosts.startsWith('127.0.0.1\tlocalhost\n') && !hosts.includes(id.slice(0, 12)), 'no own address line');
    await nm.teardown(id);
    await assertNoTrace(nm, a);
  });

  it('host: no netns; the host hosts/hostname/resolv.conf; ports discarded', async () => {
    const id = newId();
    const a = await nm.setup({ containerId: id, mode: 'host', publish: ['8080:80'], etcDir: join(root, 'c', id) });
    assert.equal(a.netnsPath, undefined);
    assert.ok(!existsSync(nm.netnsPath(id)));
    assert.match(a.warnings.join('\n'), /Published ports are discarded when using host network mode/);
    assert.equal(await readFile(a.etcFiles!.hosts, 'utf8'), await readFile('/etc/hosts', 'utf8'));
    assert.equal(await readFile(a.etcFiles!.hostname, 'utf8'), `${osHostname()}\n`);
    assert.equal(await readFile(a.etcFiles!.resolvConf, 'utf8'), await readFile('/etc/resolv.conf', 'utf8'));
    await nm.teardown(id);
    assert.equal(await nm.inspect(id), undefined);
  });

  it('teardown after the netns died, and after a (simulated) reboot, releases the lease and leaves no rule', async () => {
    const p = await freeTcpPort();
    // netns died, iptables rules still there: CNI DEL cannot see the interface, the sweep removes the rules
    const idA = newId();
    const a = await nm.setup({ containerId: idA, publish: [`${p}:80`] });
    // The kernel frees an unmounted namespace, and the veth pair in it, from a work queue some
    // time later (under load, long enough for a check right after teardown to see the veth).
    // A process holding the namespace makes that "later" last for the whole teardown.
    const holder = spawnInNetns(a.netnsPath!, 'sleep', ['60']);
    await waitFor('holder in the netns', async () => assert.notEqual(await readlink(`/proc/${holder.pid}/ns/net`), await readlink('/proc/self/ns/net')));
    await run('umount', [a.netnsPath!]);
    assert.ok(existsSync(a.netnsPath!) && !(await isNetns(a.netnsPath!)));
    assert.ok(existsSync(`/sys/class/net/${a.hostVeth}`), 'the veth outlives the unmount while the namespace is held');
    assert.ok((await run('iptables-save', [])).stdout.includes(idA), 'rules still present before teardown');
    await nm.teardown(idA);
    await assertNoTrace(nm, a);
    await stopChild(holder);

    // reboot: no netns, no veth, no rules; leases, cache, record and the (now plain) netns file remain on disk
    const idB = newId();
    const b = await nm.setup({ containerId: idB, publish: [`${p}:80`] });
    await run('umount', [b.netnsPath!]);
    await sweepContainerRules(NET.name, idB, [b.ipAddress!]);
    assert.ok((await leases(nm, NET.name)).includes(b.ipAddress!));
    await nm.teardown(idB);
    await assertNoTrace(nm, b);
  });

  it('a corrupt CNI cache does not block teardown: rules, veth, lease and netns still go', async () => {
    const id = newId();
    const a = await nm.setup({ containerId: id, publish: [`${await freeTcpPort()}:80`] });
    await writeFile(join(nm.cacheDir, 'results', `${NET.name}-${id}-eth0`), '{"kind":"cniCa');
    await assert.rejects(readCache(nm.cacheDir, NET.name, id, 'eth0'), (e: unknown) => isEngineError(e, 'data-loss'));
    await nm.teardown(id);
    await assertNoTrace(nm, a);
  });

  it('setup is idempotent per container and rolls back completely on failure', async () => {
    const id = newId();
    const first = await nm.setup({ containerId: id });
    const second = await nm.setup({ containerId: id, publish: [`${await freeTcpPort()}:80`] });
    assert.ok(await isNetns(second.netnsPath!));
    assert.deepEqual(await leases(nm, NET.name), [second.ipAddress!], 'the first lease was released');
    if (first.hostVeth !== second.hostVeth) {
      assert.notEqual((await run('ip', ['link', 'show', 'dev', first.hostVeth!], { allowFailure: true })).code, 0);
    }
    await nm.teardown(id);
    await assertNoTrace(nm, second);

    // a missing plugin: the error says which, and nothing is left
    const broken = new NetworkManager({ root: join(root, 'store'), network: NET, pluginDirs: [join(root, 'no-plugins')] });
    const idX = newId();
    await assert.rejects(broken.setup({ containerId: idX }), (e: unknown) => isEngineError(e, 'unavailable') && e.code === 'CNI_PLUGIN_MISSING');
    assert.equal(await nm.inspect(idX), undefined);
    assert.ok(!existsSync(nm.netnsPath(idX)));
    assert.deepEqual(await leases(nm, NET.name), []);
  });

  it('concurrent setups, in this process and from another process, get distinct addresses', async () => {
    const ids = [newId(), newId(), newId()];
    const childId = newId();
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const code = `
      import { NetworkManager } from ${JSON.stringify(join(here, 'index.js'))};
      const nm = new NetworkManager({ root: ${JSON.stringify(join(root, 'store'))}, network: ${JSON.stringify(NET)} });
      const a = await nm.setup({ containerId: ${JSON.stringify(childId)} });
      process.stdout.write(JSON.stringify(a));`;
    const childRun = run(process.execPath, ['--input-type=module', '-e', code], { env });
    const mine = await Promise.all(ids.map((containerId) => nm.setup({ containerId })));
    const fromChild = JSON.parse((await childRun).stdout) as NetworkAttachment;
    const all = [...mine, fromChild];
    assert.equal(new Set(all.map((a) => a.ipAddress)).size, 4, all.map((a) => a.ipAddress).join(' '));
    assert.equal((await leases(nm, NET.name)).length, 4);
    await execInNetns(mine[0]!.netnsPath!, 'busybox', ['ping', '-c', '1', '-W', '2', fromChild.ipAddress!]);
    await Promise.all(all.map((a) => nm.teardown(a.containerId)));
    for (const a of all) await assertNoTrace(nm, a);
  });

  it('issue 9.6: two stores on one bridge share one allocator: distinct addresses; one store\'s teardown and prune leave the other\'s lease', async () => {
    const other = new NetworkManager({ root: join(root, 'store-other'), network: NET });
    extra.push(other);
    const a = await nm.setup({ containerId: newId() });
    const b = await other.setup({ containerId: newId() });
    assert.notEqual(a.ipAddress, b.ipAddress);
    assert.equal(other.ipamDir, nm.ipamDir, 'one lease directory per bridge');
    assert.deepEqual((await leases(nm, NET.name)).sort(), [a.ipAddress!, b.ipAddress!].sort());
    await execInNetns(a.netnsPath!, 'busybox', ['ping', '-c', '1', '-W', '2', b.ipAddress!]);

    // a store with no container of its own left keeps the bridge, the rules and the leases of the other
    await other.teardown(b.containerId);
    await assertNoTrace(other, b);
    assert.equal(await other.prune(), false);
    assert.ok(existsSync(`/sys/class/net/${NET.bridge}`), 'the bridge stays');
    assert.deepEqual(await leases(nm, NET.name), [a.ipAddress!]);
    await execInNetns(a.netnsPath!, 'busybox', ['ping', '-c', '1', '-W', '2', a.gateway!]);
    const c = await other.setup({ containerId: newId() });
    assert.notEqual(c.ipAddress, a.ipAddress);
    await other.teardown(c.containerId);
    assert.deepEqual(await leases(nm, NET.name), [a.ipAddress!]);

    // a lease of another store with no bridge port (its container is being set up or torn down) also keeps the bridge
    await run('ip', ['link', 'set', a.hostVeth!, 'nomaster']);
    try {
      assert.equal(await other.prune(), false, 'the lease of the first store keeps the bridge');
    } finally {
      await run('ip', ['link', 'set', a.hostVeth!, 'master', NET.bridge]);
    }
    await nm.teardown(a.containerId);
    await assertNoTrace(nm, a);
    assert.equal(await other.prune(), true, 'nothing on the bridge any more');
    assert.ok(!existsSync(`/sys/class/net/${NET.bridge}`));
    assert.ok(!existsSync(nm.ipamDir), 'the lease directory went with the bridge');
  });

  it('issue 9.6: another network name on a bridge with leases is refused (BRIDGE_IN_USE), leaving nothing', async () => {
    const a = await nm.setup({ containerId: newId() });
    const renamed = new NetworkManager({ root: join(root, 'store-renamed'), network: { ...NET, name: `lbr${tag}` } });
    extra.push(renamed);
    const id = newId();
    await assert.rejects(renamed.setup({ containerId: id }), (e: unknown) => isEngineError(e, 'conflict') && e.code === 'BRIDGE_IN_USE' && e.message.includes(NET.name));
    assert.equal(await renamed.inspect(id), undefined);
    assert.ok(!existsSync(renamed.netnsPath(id)));
    assert.deepEqual(await leases(nm, NET.name), [a.ipAddress!]);
    await nm.teardown(a.containerId);
    await assertNoTrace(nm, a);
  });

  it('issue 9.6: leases a store kept in its own directory (earlier versions) are moved to the bridge\'s when it next sets up', async () => {
    await rm(join(nm.ipamDir, NET.name), { recursive: true, force: true }); // host-local starts at the range's start
    const a = await nm.setup({ containerId: newId() });
    // as an earlier version left it: the lease in <root>/network/ipam/<net>/, none in the shared directory
    const legacy = join(nm.stateDir, 'ipam', NET.name);
    await mkdir(legacy, { recursive: true });
    await writeFile(join(legacy, a.ipAddress!), await readFile(join(nm.ipamDir, NET.name, a.ipAddress!)));
    await rm(join(nm.ipamDir, NET.name), { recursive: true }); // last_reserved_ip too: host-local starts at the range's start again
    const b = await nm.setup({ containerId: newId() });
    assert.notEqual(b.ipAddress, a.ipAddress, 'the moved lease still holds the first address');
    assert.deepEqual((await leases(nm, NET.name)).sort(), [a.ipAddress!, b.ipAddress!].sort());
    assert.ok(!existsSync(legacy), 'the old directory is gone');
    await nm.teardown(a.containerId);
    await nm.teardown(b.containerId);
    await assertNoTrace(nm, a);
    await assertNoTrace(nm, b);
  });

  it('issue 9.6, after a reboot (simulated): the earlier boot\'s leases are dropped; its attachment is released without CNI DEL, sparing the rules of the container that got its address', async () => {
    const hostState = join(root, 'host-state');
    const s1 = new NetworkManager({ root: join(root, 'store-r1'), hostStateDir: hostState, network: NET3 });
    const s2 = new NetworkManager({ root: join(root, 'store-r2'), hostStateDir: hostState, network: NET3 });
    extra.push(s1, s2);
    const [p, q] = [await freeTcpPort(), await freeTcpPort()];
    const old = await s1.setup({ containerId: newId(), publish: [`${p}:80`] });
    const gone = await s1.setup({ containerId: newId() });

    // the reboot: namespaces, veths and rules are gone; records, caches and lease files remain,
    // written under another boot id
    for (const a of [old, gone]) {
      await run('umount', [a.netnsPath!]);
      await sweepContainerRules(NET3.name, a.containerId, [a.ipAddress!]);
      const rec = join(s1.stateDir, 'attachments', `${a.containerId}.json`);
      await writeFile(rec, JSON.stringify({ ...JSON.parse(await readFile(rec, 'utf8')), bootId: 'an-earlier-boot' }));
    }
    await writeFile(join(s1.ipamDir, 'boot-id'), 'an-earlier-boot\n');

    // the other store's first container of this boot: the stale leases (also of `gone`, whose store
    // is not opened again) are dropped, and it gets the first address again, the old container's
    const fresh = await s2.setup({ containerId: newId(), publish: [`${q}:80`] });
    assert.equal(fresh.ipAddress, old.ipAddress);
    assert.deepEqual(await leases(s2, NET3.name), [fresh.ipAddress!], 'only the lease of this boot');
    await startHttpd(fresh);
    const forwardRules = async () => (await listRules('filter')).rules.filter((r) => r.chain === 'CNI-FORWARD' && r.text.includes(`${fresh.ipAddress}/32`)).map((r) => r.text);
    const before = await forwardRules();
    assert.equal(before.length, 2, 'the firewall plugin\'s rules for the new container');

    // the old containers are cleaned up now, after the new one took the address
    await s1.teardown(old.containerId);
    await s1.teardown(gone.containerId);
    assert.equal(await s1.inspect(old.containerId), undefined, 'record removed');
    assert.equal(await readCache(s1.cacheDir, NET3.name, old.containerId, 'eth0'), undefined, 'cache removed');
    assert.ok(!existsSync(old.netnsPath!), 'netns file removed');
    assert.deepEqual(await forwardRules(), before, 'the new container\'s forwarding rules are untouched');
    assert.deepEqual(await leases(s2, NET3.name), [fresh.ipAddress!], 'and its lease');
    assert.equal((await httpGet(`http://127.0.0.1:${q}/`)).body, 'hello from the container\n');

    await s2.teardown(fresh.containerId);
    await assertNoTrace(s2, fresh, NET3.name);
    assert.equal(await s1.prune(), true);
  });

  it('CNI CHECK passes on a healthy attachment and fails when eth0 is gone', async () => {
    const id = newId();
    const a = await nm.setup({ containerId: id });
    await nm.check(id);
    await execInNetns(a.netnsPath!, 'ip', ['link', 'del', 'eth0']);
    await assert.rejects(nm.check(id), (e: unknown) => isEngineError(e) && e.code === 'CNI_PLUGIN_FAILED');
    await nm.teardown(id);
    await assertNoTrace(nm, a);
  });

  it('refuses bad ids, unknown networks and a subnet that clashes with a host route', async () => {
    await assert.rejects(nm.setup({ containerId: '../etc' }), (e: unknown) => isEngineError(e, 'invalid-argument'));
    assert.throws(() => parseNetworkMode('foo'), (e: unknown) => isEngineError(e, 'not-found') && e.message === 'network foo not found');
    assert.equal(parseNetworkMode(undefined), 'bridge');
    assert.equal(parseNetworkMode('default'), 'bridge');
    assert.throws(() => parseNetworkMode('container:abc'), (e: unknown) => isEngineError(e, 'unsupported'));
    const defRoute = JSON.parse((await run('ip', ['-j', '-4', 'route', 'show'])).stdout) as { dst: string }[];
    const connected = defRoute.find((r) => r.dst !== 'default' && r.dst.includes('/'));
    assert.ok(connected, 'the host has a connected IPv4 route');
    const clash = new NetworkManager({ root: join(root, 'store3'), network: { name: 'lbclash', bridge: `lbc${tag}`, subnet: connected.dst } });
    await assert.rejects(clash.setup({ containerId: newId() }), (e: unknown) => isEngineError(e, 'conflict') && e.code === 'SUBNET_IN_USE');
    assert.ok(!existsSync(`/sys/class/net/lbc${tag}`));
  });
});
