/**
 * engine.networks and the container side of networks through the engine's door, as a
 * TypeScript program (or the API server) uses them: create bodies with NetworkingConfig,
 * the configuration a created container keeps, list filters, prune filters, and the shapes
 * of inspect and ps. As root (networks are bridges); every network is removed in after().
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Engine, isEngineError } from './index.js';
import { tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';

const IMAGE = 'bench/busybox:latest';
const tag = randomBytes(3).toString('hex');
const octet = 100 + (parseInt(tag.slice(0, 2), 16) % 100);
let t: ReturnType<typeof tempRoot>;
let engine: Engine;

before(async () => {
  assert.equal(process.getuid?.(), 0, 'these tests need root');
  t = tempRoot('lb-engnet-');
  engine = await Engine.open({ root: join(t.root, 'store') });
  await engine.images.load({ path: join(FIXTURES, 'busybox-base.docker.tar') }).result;
});

after(async () => {
  if (!engine) return;
  for (const c of await engine.containers.list({ all: true })) await engine.containers.remove(c.Id, { force: true }).catch(() => {});
  for (const n of await engine.networks.list({ filters: { type: ['custom'] } })) await engine.networks.remove(n.Id).catch(() => {});
  engine.close();
  t.cleanup();
});

test('a create body names its network and its endpoint settings; the container keeps them until it is connected or disconnected', async () => {
  const net = `eng${tag}`;
  const { Id: netId } = await engine.networks.create({ Name: net, CheckDuplicate: true, IPAM: { Config: [{ Subnet: `10.242.${octet}.0/24` }] }, Labels: { tier: 'back' } });
  const { Id } = await engine.containers.create(
    { Image: IMAGE, Cmd: ['sleep', '300'], HostConfig: { NetworkMode: net }, NetworkingConfig: { EndpointsConfig: { [net]: { Aliases: ['db'], IPAMConfig: { IPv4Address: `10.242.${octet}.9` } } } } },
    { name: `c${tag}` },
  );
  let doc = await engine.containers.inspect(Id);
  assert.equal((doc.HostConfig as { NetworkMode: string }).NetworkMode, net);
  const nets = (doc.NetworkSettings as { Networks: Record<string, { Aliases: string[] | null; IPAMConfig: unknown; IPAddress: string }> }).Networks;
  assert.deepEqual(Object.keys(nets), [net]);
  assert.deepEqual(nets[net]!.Aliases, ['db']);
  assert.deepEqual(nets[net]!.IPAMConfig, { IPv4Address: `10.242.${octet}.9` });
  assert.equal(nets[net]!.IPAddress, '', 'not running: no address yet');

  // refused as dockerd refuses them
  await assert.rejects(engine.containers.create({ Image: IMAGE, HostConfig: { NetworkMode: 'nosuch' } }), (e: unknown) => isEngineError(e, 'not-found') && e.message === 'network nosuch not found');
  await assert.rejects(engine.containers.create({ Image: IMAGE, NetworkingConfig: { EndpointsConfig: { a: {}, b: {} } } }), { message: 'Container cannot be connected to network endpoints: a, b' });
  await assert.rejects(engine.containers.create({ Image: IMAGE, HostConfig: { NetworkMode: 'bridge' }, NetworkingConfig: { EndpointsConfig: { bridge: { Aliases: ['x'] } } } }), { message: 'network-scoped alias is supported only for containers in user defined networks' });
  await assert.rejects(engine.containers.create({ Image: IMAGE, HostConfig: { NetworkMode: net }, NetworkingConfig: { EndpointsConfig: { [net]: { IPAMConfig: { IPv4Address: '10.1.2.3' } } } } }), { message: "Invalid address 10.1.2.3: It does not belong to any of this network's subnets" });
  await assert.rejects(engine.containers.create({ Image: IMAGE, HostConfig: { NetworkMode: 'container:x' } }), (e: unknown) => isEngineError(e, 'invalid-argument'));

  // connected to the default bridge too while created; started, it has both
  await engine.networks.connect('bridge', { Container: `c${tag}` });
  await engine.containers.start(Id);
  doc = await engine.containers.inspect(Id);
  const live = (doc.NetworkSettings as { IPAddress: string; Networks: Record<string, { IPAddress: string; NetworkID: string; Aliases: string[] | null }> }).Networks;
  assert.deepEqual(Object.keys(live).sort(), ['bridge', net].sort());
  assert.equal(live[net]!.IPAddress, `10.242.${octet}.9`);
  assert.equal(live[net]!.NetworkID, netId);
  assert.deepEqual(live[net]!.Aliases, ['db', Id.slice(0, 12)]);
  assert.match(live.bridge!.IPAddress, /^10\.77\./);
  assert.equal((doc.NetworkSettings as { IPAddress: string }).IPAddress, live.bridge!.IPAddress, 'the top-level address is the default bridge\'s');
  assert.equal((await engine.containers.exec(Id, ['ip', '-o', '-4', 'addr', 'show', 'eth1'])).exitCode, 0, 'eth1 exists');

  // ps: the networks, and the network filter by name and by ID prefix
  const [s] = await engine.containers.list({ filters: { network: [netId.slice(0, 8)] } });
  assert.equal(s?.Id, Id);
  assert.deepEqual(Object.keys(s!.NetworkSettings.Networks).sort(), ['bridge', net].sort());
  assert.deepEqual((await engine.containers.list({ filters: { network: [net] } })).map((c) => c.Id), [Id]);
  assert.deepEqual(await engine.containers.list({ filters: { network: ['none'] } }), []);

  // the network's Containers; the default bridge's too
  assert.deepEqual(Object.keys((await engine.networks.inspect(net)).Containers), [Id]);
  assert.ok(Object.keys((await engine.networks.inspect('bridge')).Containers).includes(Id));

  // list filters
  const names = async (filters: Record<string, string[]>) => (await engine.networks.list({ filters })).map((n) => n.Name).sort();
  assert.deepEqual(await names({ type: ['builtin'] }), ['bridge', 'host', 'none']);
  assert.deepEqual(await names({ type: ['custom'] }), [net]);
  assert.deepEqual(await names({ driver: ['null'] }), ['none']);
  assert.deepEqual(await names({ id: [netId.slice(0, 10)] }), [net]);
  assert.deepEqual(await names({ label: ['tier=back'] }), [net]);
  assert.deepEqual(await names({ label: ['tier=front'] }), []);
  assert.deepEqual(await names({ dangling: ['true'] }), [], 'in use: not dangling (and predefined networks never are)');
  await assert.rejects(engine.networks.list({ filters: { bogus: ['1'] } }), { message: "Invalid filter 'bogus'" });

  // stopped and removed: the network is free again and prune takes it (until: created before now)
  await engine.containers.remove(Id, { force: true });
  assert.deepEqual(await names({ dangling: ['true'] }), [net]);
  assert.deepEqual((await engine.networks.prune({ filters: { until: ['2000-01-01T00:00:00Z'] } })).NetworksDeleted, []);
  assert.deepEqual((await engine.networks.prune({ filters: { until: ['0s'], label: ['tier'] } })).NetworksDeleted, [net]);
});
