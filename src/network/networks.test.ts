/**
 * User-defined bridge networks, as root with the real CNI plugins, iptables and iproute2:
 * each test store has its own default bridge (a unique name and subnet), its user networks
 * get unique bridges (br-<id>) and subnets from the pool, and everything — bridges, rules,
 * netns, leases — is removed in after() even when a test fails.
 */
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run } from '../sys/exec.js';
import { removeTree } from '../sys/fsutil.js';
import { isEngineError } from '../errors/index.js';
import { NetworkManager, cniNameOf, type NetworkAttachment } from './network.js';
import { execInNetns } from './netns.js';
import { allocateSubnet, subnetPool } from './records.js';
import { parseCidr4, formatCidr4 } from './ipv4.js';
import { ISOLATION_1, ISOLATION_2 } from './isolation.js';

const tag = randomBytes(2).toString('hex');
const octet = 100 + (parseInt(tag, 16) % 100);
const DEFAULT = { name: `lbn${tag}`, bridge: `lbn${tag}`, subnet: `10.234.${octet}.0/24` };

let root: string;
let nm: NetworkManager;
const newId = () => randomBytes(32).toString('hex');

async function ping(a: NetworkAttachment, ip: string): Promise<boolean> {
  return (await execInNetns(a.netnsPath!, 'busybox', ['ping', '-c', '1', '-W', '1', ip], { allowFailure: true })).code === 0;
}

const iptablesSave = async () => (await run('iptables-save', [])).stdout;

async function cleanAll(): Promise<void> {
  for (const a of await nm.list().catch(() => [])) await nm.teardown(a.containerId).catch(() => {});
  for (const r of await nm.records.list().catch(() => [])) await nm.removeNetwork(r.Id).catch(() => {});
}

before(async () => {
  assert.equal(process.getuid?.(), 0, 'these tests need root');
  root = await mkdtemp(join(tmpdir(), 'lb-nets-'));
  nm = new NetworkManager({ root: join(root, 'store'), network: DEFAULT });
});

after(async () => {
  await cleanAll();
  await nm.prune().catch(() => {});
  if (root) await removeTree(root).catch(() => {});
});

describe('subnet pool', () => {
  it('gives the first /24 of 10.78.0.0/15 that nothing overlaps, then Docker\'s /16s of 172.18-31', () => {
    assert.equal(allocateSubnet([]), '10.78.0.0/24');
    assert.equal(allocateSubnet([parseCidr4('10.78.0.0/23')]), '10.78.2.0/24');
    assert.equal(allocateSubnet([parseCidr4('10.78.0.128/25'), parseCidr4('10.78.1.7/32')]), '10.78.2.0/24');
    assert.equal(allocateSubnet([parseCidr4('10.0.0.0/8')]), '172.18.0.0/16');
    assert.equal(allocateSubnet([parseCidr4('10.0.0.0/8'), parseCidr4('172.16.0.0/12')]), undefined);
    const all = [...subnetPool()].map(formatCidr4);
    assert.equal(all.length, 512 + 14);
    assert.equal(new Set(all).size, all.length);
  });
});

describe('user-defined networks (root, real CNI plugins)', () => {
  afterEach(cleanAll);

  it('create: a record, a bridge with its gateway address, its rules; Docker\'s refusals; rm takes all of it back', async () => {
    const r = await nm.createNetwork({ name: `n1${tag}`, labels: { a: 'b' }, options: { foo: 'bar' } });
    assert.match(r.Id, /^[0-9a-f]{64}$/);
    assert.equal(r.bridge, `br-${r.Id.slice(0, 12)}`);
    assert.equal(r.Driver, 'bridge');
    assert.deepEqual(r.Labels, { a: 'b' });
    assert.deepEqual(r.Options, { foo: 'bar' });
    const subnet = r.IPAM.Config[0]!.Subnet;
    assert.match(subnet, /^(10\.7[89]\.\d+\.0\/24|172\.\d+\.0\.0\/16)$/, 'allocated from the pool');
    const gw = r.IPAM.Config[0]!.Gateway!;
    assert.match((await run('ip', ['-o', '-4', 'addr', 'show', 'dev', r.bridge])).stdout, new RegExp(`inet ${gw.replace(/\./g, '\\.')}/`));
    const rules = await iptablesSave();
    assert.ok(rules.includes(`-A ${ISOLATION_1} -i ${r.bridge} ! -o ${r.bridge}`), 'isolated from the other bridges');
    assert.ok(rules.includes(`-A ${ISOLATION_2} -o ${r.bridge}`));
    assert.ok(rules.includes(`-s ${subnet} ! -o ${r.bridge} -m comment --comment "layerbox ${cniNameOf(r.Id)}" -j MASQUERADE`));
    assert.equal((await nm.findNetwork(`n1${tag}`)).Id, r.Id, 'by name');
    assert.equal((await nm.findNetwork(r.Id.slice(0, 10))).Id, r.Id, 'by ID prefix');

    // a second network gets another subnet; an overlapping one is refused
    const r2 = await nm.createNetwork({ name: `n2${tag}` });
    assert.notEqual(r2.IPAM.Config[0]!.Subnet, subnet);
    await assert.rejects(nm.createNetwork({ name: `n3${tag}`, ipam: { Config: [{ Subnet: subnet }] } }), (e: unknown) => isEngineError(e, 'forbidden') && /^Pool overlaps with other one on this address space/.test(e.message));
    await assert.rejects(nm.createNetwork({ name: `n3${tag}`, ipam: { Config: [{ Subnet: DEFAULT.subnet }] } }), /Pool overlaps/);
    await assert.rejects(nm.createNetwork({ name: `n1${tag}` }), (e: unknown) => isEngineError(e, 'conflict') && e.message === `network with name n1${tag} already exists`);
    for (const n of ['bridge', 'host', 'none']) await assert.rejects(nm.createNetwork({ name: n }), (e: unknown) => isEngineError(e, 'forbidden') && e.message === `operation is not permitted on predefined ${n} network`);
    await assert.rejects(nm.createNetwork({ name: `n3${tag}`, driver: 'host' }), { message: 'only one instance of "host" network is allowed' });
    await assert.rejects(nm.createNetwork({ name: `n3${tag}`, driver: 'foo' }), (e: unknown) => isEngineError(e, 'not-found') && e.message === 'plugin "foo" not found');
    await assert.rejects(nm.createNetwork({ name: `n3${tag}`, ipam: { Config: [{ Subnet: '10.235.1.0/24', Gateway: '10.235.2.1' }] } }), { message: 'no matching subnet for gateway 10.235.2.1' });
    await assert.rejects(nm.createNetwork({ name: `n3${tag}`, ipam: { Config: [{ Subnet: '10.235.1.7/24' }] } }), /does not match the network address 10\.235\.1\.0\/24/);
    await assert.rejects(nm.createNetwork({ name: `n3${tag}`, enableIPv6: true }), (e: unknown) => isEngineError(e, 'unsupported'));
    await assert.rejects(nm.removeNetwork('bridge'), (e: unknown) => isEngineError(e, 'forbidden') && e.message === 'bridge is a pre-defined network and cannot be removed');
    await assert.rejects(nm.removeNetwork('nope'), (e: unknown) => isEngineError(e, 'not-found') && e.message === 'network nope not found');

    await nm.removeNetwork(r.Id);
    await nm.removeNetwork(`n2${tag}`);
    assert.ok(!existsSync(`/sys/class/net/${r.bridge}`), 'bridge deleted');
    const after = await iptablesSave();
    for (const x of [r, r2]) {
      assert.ok(!after.includes(x.bridge), `no rule names ${x.bridge}`);
      assert.ok(!after.includes(cniNameOf(x.Id)), `no rule of ${cniNameOf(x.Id)}`);
    }
    assert.deepEqual(await nm.records.list(), []);
    assert.ok(!existsSync(nm.bridgeIpamDir(r.bridge)), 'lease directory removed');
  });

  it('containers of a network resolve each other by name, alias and short ID (hosts files rewritten in place); other networks are isolated', async () => {
    const net = await nm.createNetwork({ name: `app${tag}` });
    const other = await nm.createNetwork({ name: `oth${tag}` });
    const [idA, idB, idC, idD] = [newId(), newId(), newId(), newId()];
    const a = await nm.setup({ containerId: idA, containerName: 'web', networks: [{ network: net.Name, aliases: ['www'] }], etcDir: join(root, 'c', idA) });
    const hostsA = a.etcFiles!.hosts;
    const inode = (await stat(hostsA)).ino;
    assert.equal(a.endpoints?.length, 1);
    assert.deepEqual(a.endpoints![0]!.aliases, ['www', idA.slice(0, 12)]);
    assert.ok(a.ipAddress && a.ipAddress.startsWith(net.IPAM.Config[0]!.Subnet.replace(/\.0\/\d+$/, '.')), `${a.ipAddress} in ${net.IPAM.Config[0]!.Subnet}`);
    const b = await nm.setup({ containerId: idB, containerName: 'db', networks: [{ network: net.Id }], etcDir: join(root, 'c', idB) });
    const c = await nm.setup({ containerId: idC, containerName: 'stranger', networks: [{ network: other.Name }], etcDir: join(root, 'c', idC) });
    const d = await nm.setup({ containerId: idD, containerName: 'default', etcDir: join(root, 'c', idD) });

    const hostsOfA = await readFile(hostsA, 'utf8');
    assert.ok(hostsOfA.includes(`\n${a.ipAddress}\t${idA.slice(0, 12)}\n`), 'its own line');
    assert.ok(hostsOfA.includes(`\n${b.ipAddress}\tdb ${idB.slice(0, 12)}\n`), 'the peer that came later, by name and short ID');
    assert.ok(hostsOfA.includes(`\n${a.ipAddress}\tweb www ${idA.slice(0, 12)}\n`), 'itself by name and alias');
    assert.equal((await stat(hostsA)).ino, inode, 'the same inode: a running container sees the change');
    const hostsOfB = await readFile(b.etcFiles!.hosts, 'utf8');
    assert.ok(hostsOfB.includes(`\n${a.ipAddress}\tweb www ${idA.slice(0, 12)}\n`));
    assert.ok(!hostsOfA.includes('stranger') && !hostsOfB.includes('stranger'), 'another network\'s container is not listed');
    assert.ok(!(await readFile(d.etcFiles!.hosts, 'utf8')).includes('web'), 'the default bridge has no name resolution (as Docker)');

    assert.ok(await ping(a, b.ipAddress!), 'peers reach each other');
    assert.ok(await ping(b, a.ipAddress!));
    assert.ok(!(await ping(c, a.ipAddress!)), 'a container of another network cannot reach them');
    assert.ok(!(await ping(d, a.ipAddress!)), 'nor can one of the default bridge');
    assert.ok(!(await ping(a, c.ipAddress!)), 'and they cannot reach it');
    assert.ok(await ping(c, c.gateway!), 'each still reaches its own gateway');

    // the network cannot go while they are attached (Docker's words)
    await assert.rejects(nm.removeNetwork(net.Name), (e: unknown) => isEngineError(e, 'forbidden') && e.message === `error while removing network: network ${net.Name} id ${net.Id} has active endpoints`);
    const users = await nm.endpointsOn(net.Id);
    assert.deepEqual(users.map((u) => u.name).sort(), ['db', 'web']);

    // a renamed container is known by its new name
    await nm.renamed(idB, 'database');
    assert.ok((await readFile(hostsA, 'utf8')).includes(`\n${b.ipAddress}\tdatabase ${idB.slice(0, 12)}\n`));
    // one that leaves is forgotten
    await nm.teardown(idB);
    assert.ok(!(await readFile(hostsA, 'utf8')).includes(b.ipAddress!));
    assert.equal((await stat(hostsA)).ino, inode);
  });

  it('connect and disconnect of a running container: eth1 with the address asked for; names come and go', async () => {
    const n1 = await nm.createNetwork({ name: `front${tag}` });
    const n2 = await nm.createNetwork({ name: `back${tag}`, ipam: { Config: [{ Subnet: `10.236.${octet}.0/24`, Gateway: `10.236.${octet}.254` }] } });
    const [idA, idB] = [newId(), newId()];
    const a = await nm.setup({ containerId: idA, containerName: 'app', networks: [{ network: n1.Name }], etcDir: join(root, 'c', idA) });
    const b = await nm.setup({ containerId: idB, containerName: 'store', networks: [{ network: n2.Name }], etcDir: join(root, 'c', idB) });
    assert.equal(b.gateway, `10.236.${octet}.254`);
    assert.ok(!(await ping(a, b.ipAddress!)), 'not connected yet: isolated');

    await assert.rejects(nm.connect(idA, { network: 'bridge', aliases: ['x'] }), { message: 'network-scoped alias is supported only for containers in user defined networks' });
    await assert.rejects(nm.connect(idA, { network: n1.Name, ipv4Address: '10.78.9.9' }), { message: 'user specified IP address is supported only when connecting to networks with user configured subnets' });
    await assert.rejects(nm.connect(idA, { network: n2.Name, ipv4Address: '10.1.1.1' }), { message: "Invalid address 10.1.1.1: It does not belong to any of this network's subnets" });
    await assert.rejects(nm.connect(idA, { network: n1.Name }), (e: unknown) => isEngineError(e, 'forbidden') && e.message === `endpoint with name app already exists in network ${n1.Name}`);
    await assert.rejects(nm.connect(idA, { network: 'host' }), { message: 'container cannot be disconnected from host network or connected to host network' });

    const ip = `10.236.${octet}.77`;
    const ep = await nm.connect(idA, { network: n2.Name, aliases: ['api'], ipv4Address: ip });
    assert.equal(ep.ifName, 'eth1');
    assert.equal(ep.ipAddress, ip);
    assert.match((await execInNetns(a.netnsPath!, 'ip', ['-o', '-4', 'addr', 'show', 'dev', 'eth1'])).stdout, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/24`));
    assert.ok(await ping(a, b.ipAddress!), 'connected: reaches the other network');
    assert.ok((await readFile(b.etcFiles!.hosts, 'utf8')).includes(`\n${ip}\tapp api ${idA.slice(0, 12)}\n`), 'the peer resolves it');
    assert.ok((await readFile(a.etcFiles!.hosts, 'utf8')).includes(`\n${b.ipAddress}\tstore ${idB.slice(0, 12)}\n`), 'it resolves the peer');
    const route = (await execInNetns(a.netnsPath!, 'ip', ['route', 'show', 'default'])).stdout;
    assert.match(route, /dev eth0/, 'the first network keeps the default route');

    await nm.disconnect(idA, n2.Name);
    assert.equal((await execInNetns(a.netnsPath!, 'ip', ['-o', 'link', 'show', 'dev', 'eth1'], { allowFailure: true })).code === 0, false, 'eth1 gone');
    assert.ok(!(await readFile(b.etcFiles!.hosts, 'utf8')).includes(ip), 'the peer forgot it');
    assert.ok(!(await ping(a, b.ipAddress!)));
    await assert.rejects(nm.disconnect(idA, n2.Name), { message: `container ${idA} is not connected to network ${n2.Name}` });
    assert.ok(!(await readdir2(nm.bridgeIpamDir(n2.bridge))).includes(ip), 'the lease is released');
    // after a reconnect it gets the same address again, and the network's rules stay in order
    await nm.connect(idA, { network: n2.Id, ipv4Address: ip });
    assert.ok(await ping(a, b.ipAddress!));
  });

  it('an internal network: its containers reach each other, not the outside (no masquerade, no default route)', async () => {
    const n = await nm.createNetwork({ name: `int${tag}`, internal: true });
    const out = await nm.createNetwork({ name: `out${tag}` });
    const [idA, idB, idC] = [newId(), newId(), newId()];
    const a = await nm.setup({ containerId: idA, networks: [{ network: n.Name }] });
    const b = await nm.setup({ containerId: idB, networks: [{ network: n.Name }] });
    const c = await nm.setup({ containerId: idC, networks: [{ network: out.Name }] });
    assert.ok(await ping(a, b.ipAddress!));
    assert.equal((await execInNetns(a.netnsPath!, 'ip', ['route', 'show', 'default'])).stdout.trim(), '', 'no default route');
    assert.ok(!(await ping(a, c.ipAddress!)));
    assert.ok(!(await ping(c, a.ipAddress!)));
    const rules = await iptablesSave();
    assert.ok(!rules.includes(`-s ${n.IPAM.Config[0]!.Subnet} ! -o ${n.bridge}`), 'no masquerade');
    assert.ok(rules.includes(`-A ${ISOLATION_1} ! -i ${n.bridge} -o ${n.bridge}`), "nothing enters from outside");
  });

  it('a stopped container may name a removed network: the next setup says it is not found, and nothing is left', async () => {
    const n = await nm.createNetwork({ name: `gone${tag}` });
    await nm.removeNetwork(n.Name);
    const id = newId();
    await assert.rejects(nm.setup({ containerId: id, networks: [{ network: n.Name }] }), (e: unknown) => isEngineError(e, 'not-found') && e.message === `network gone${tag} not found`);
    assert.equal(await nm.inspect(id), undefined);
    assert.ok(!existsSync(nm.netnsPath(id)));
  });
});

/** Every lease file name on a bridge (all its network names). */
async function readdir2(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir).catch(() => [] as string[])) out.push(...(await readdir(join(dir, d)).catch(() => [] as string[])));
  return out;
}
