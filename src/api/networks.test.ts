/**
 * The network endpoints of `layerbox serve`, as root with real containers: raw requests
 * (statuses, bodies, the spec's schema), and the real docker CLI where docker.io is
 * installed — while the layerbox CLI works on the same store (it runs the containers the
 * API connects). Every network is removed in after(), also when a test fails.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { lbp } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { startServe, type RunningServe } from '../testing/serve.js';

const IMAGE = 'bench/busybox:latest';
const tag = randomBytes(3).toString('hex');
const octet = 100 + (parseInt(tag.slice(0, 2), 16) % 100);
const haveDocker = existsSync('/usr/bin/docker');
let srv: RunningServe;

async function lb(args: string[]): Promise<string> {
  const r = await lbp(srv.root, args);
  assert.equal(r.code, 0, `layerbox ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
  const r = await srv.request(method, path, body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
  const text = r.body.toString();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: r.status, json, text };
}

before(async () => {
  assert.equal(process.getuid?.(), 0, 'these tests need root');
  srv = await startServe();
  await lb(['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
});

after(async () => {
  if (!srv) return;
  const ids = (await lbp(srv.root, ['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await lbp(srv.root, ['rm', '-f', ...ids]);
  const nets = (await lbp(srv.root, ['network', 'ls', '-q', '--filter', 'type=custom'])).stdout.split('\n').filter(Boolean);
  if (nets.length) await lbp(srv.root, ['network', 'rm', ...nets]);
  await srv.stop();
});

test('the network endpoints: statuses and bodies as dockerd gives them', async () => {
  const name = `api${tag}`;
  const created = await api('POST', '/v1.41/networks/create', { Name: name, CheckDuplicate: true, Driver: 'bridge', Labels: { 'com.example': 'x' }, IPAM: { Driver: 'default', Config: [{ Subnet: `10.240.${octet}.0/24` }] } });
  assert.equal(created.status, 201, created.text);
  const id = (created.json as { Id: string; Warning: string }).Id;
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.equal((created.json as { Warning: string }).Warning, '');

  const dup = await api('POST', '/networks/create', { Name: name });
  assert.equal(dup.status, 409);
  assert.deepEqual(dup.json, { message: `network with name ${name} already exists` });
  const wrongType = await api('POST', '/networks/create', { Name: 5 });
  assert.equal(wrongType.status, 400);
  assert.match((wrongType.json as { message: string }).message, /Name/);
  const noName = await api('POST', '/networks/create', {});
  assert.equal(noName.status, 400);
  assert.equal((await api('POST', '/networks/create', '{"Name": ')).status, 400, 'broken JSON');
  const predefined = await api('POST', '/networks/create', { Name: 'host' });
  assert.equal(predefined.status, 403);
  assert.deepEqual(predefined.json, { message: 'operation is not permitted on predefined host network' });

  const list = (await api('GET', '/v1.24/networks')).json as { Name: string; Id: string; Containers: object }[];
  assert.deepEqual(list.map((n) => n.Name).filter((n) => ['bridge', 'host', 'none', name].includes(n)).sort(), ['bridge', 'host', name, 'none'].sort());
  const filtered = (await api('GET', `/networks?filters=${encodeURIComponent(JSON.stringify({ label: ['com.example=x'] }))}`)).json as { Id: string }[];
  assert.deepEqual(filtered.map((n) => n.Id), [id]);
  const old = (await api('GET', `/networks?filters=${encodeURIComponent(JSON.stringify({ name: { [name]: true } }))}`)).json as { Id: string }[];
  assert.deepEqual(old.map((n) => n.Id), [id], 'the older filter shape');
  assert.equal((await api('GET', `/networks?filters=${encodeURIComponent('{"type":["x"]}')}`)).status, 400);

  const doc = (await api('GET', `/networks/${id.slice(0, 12)}`)).json as { Name: string; IPAM: { Config: { Subnet: string; Gateway: string }[] }; ConfigFrom: object; Containers: object };
  assert.equal(doc.Name, name);
  assert.deepEqual(doc.IPAM.Config, [{ Subnet: `10.240.${octet}.0/24`, Gateway: `10.240.${octet}.1` }]);
  assert.deepEqual(doc.ConfigFrom, { Network: '' });
  const missing = await api('GET', '/networks/nosuch');
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json, { message: 'network nosuch not found' });
  assert.equal((await api('DELETE', '/networks/bridge')).status, 403);

  // a container the layerbox CLI runs on the network, another one the API connects to it
  await lb(['run', '-d', '--name', `a${tag}`, '--network', name, IMAGE, 'sleep', '300']);
  await lb(['run', '-d', '--name', `b${tag}`, IMAGE, 'sleep', '300']);
  assert.equal((await api('POST', `/networks/${name}/connect`, { Container: 'nosuch' })).status, 404);
  const conn = await api('POST', `/networks/${id}/connect`, { Container: `b${tag}`, EndpointConfig: { Aliases: ['bee'], IPAMConfig: { IPv4Address: `10.240.${octet}.66` } } });
  assert.equal(conn.status, 200, conn.text);
  assert.match(await lb(['exec', `a${tag}`, 'ping', '-c', '1', '-W', '2', 'bee']), new RegExp(`10\\.240\\.${octet}\\.66`));
  const members = ((await api('GET', `/networks/${id}`)).json as { Containers: Record<string, { Name: string; IPv4Address: string }> }).Containers;
  assert.deepEqual(Object.values(members).map((m) => m.Name).sort(), [`a${tag}`, `b${tag}`].sort());
  assert.ok(Object.values(members).some((m) => m.IPv4Address === `10.240.${octet}.66/24`));
  const again = await api('POST', `/networks/${id}/connect`, { Container: `b${tag}` });
  assert.equal(again.status, 403);
  assert.deepEqual(again.json, { message: `endpoint with name b${tag} already exists in network ${name}` });

  const busy = await api('DELETE', `/networks/${name}`);
  assert.equal(busy.status, 403);
  assert.deepEqual(busy.json, { message: `error while removing network: network ${name} id ${id} has active endpoints` });
  assert.equal((await api('POST', `/networks/${name}/disconnect`, { Container: `b${tag}`, Force: false })).status, 200);
  assert.notEqual((await lbp(srv.root, ['exec', `a${tag}`, 'ping', '-c', '1', '-W', '1', 'bee'])).code, 0, 'disconnected');
  assert.equal((await api('POST', `/networks/${name}/disconnect`, { Container: `b${tag}` })).status, 500, 'not connected: dockerd\'s 500');

  // prune spares a network in use; after the container goes, it is pruned by label
  assert.deepEqual((await api('POST', `/networks/prune?filters=${encodeURIComponent(JSON.stringify({ label: ['com.example'] }))}`)).json, { NetworksDeleted: null }, 'dockerd says null');
  await lb(['rm', '-f', `a${tag}`, `b${tag}`]);
  assert.deepEqual((await api('POST', `/networks/prune?filters=${encodeURIComponent(JSON.stringify({ 'label!': ['com.example'] }))}`)).json, { NetworksDeleted: null });
  assert.deepEqual((await api('POST', `/networks/prune?filters=${encodeURIComponent(JSON.stringify({ label: ['com.example'] }))}`)).json, { NetworksDeleted: [name] });
  assert.equal((await api('GET', `/networks/${id}`)).status, 404);
  assert.equal((await api('DELETE', `/networks/${id}`)).status, 404);
});

test('the docker CLI through layerbox serve says what the layerbox CLI says, on the same store', async (t) => {
  if (!haveDocker) {
    t.diagnostic('docker.io is not installed: the raw-request test covers the endpoints');
    assert.equal((await api('GET', '/_ping')).text, 'OK');
    return;
  }
  const n = `dck${tag}`;
  const created = await srv.docker(['network', 'create', '--subnet', `10.241.${octet}.0/24`, '--label', 'made=by-docker', n]);
  assert.equal(created.code, 0, created.stderr);
  const id = created.stdout.trim();
  assert.equal((await lb(['network', 'inspect', '-f', '{{.Id}}', n])).trim(), id, 'the layerbox CLI sees what the docker CLI made');
  for (const args of [
    ['network', 'ls', '--filter', `name=${n}`],
    ['network', 'ls', '--filter', 'type=builtin', '--format', '{{.Name}} {{.Driver}} {{.Scope}}'],
    ['network', 'inspect', n],
    ['network', 'inspect', 'nosuch'],
    ['network', 'create', n],
    ['network', 'rm', 'none'],
  ]) {
    const d = await srv.docker(args);
    const l = await lbp(srv.root, args);
    assert.equal(d.stdout, l.stdout, args.join(' '));
    assert.equal(d.stderr, l.stderr.replaceAll('layerbox', 'docker'), args.join(' '));
    assert.equal(d.code, l.code, args.join(' '));
  }
  // a container of the layerbox CLI, connected by the docker CLI, resolves by its alias
  await lb(['run', '-d', '--name', `p${tag}`, '--network', n, IMAGE, 'sleep', '300']);
  await lb(['run', '-d', '--name', `q${tag}`, IMAGE, 'sleep', '300']);
  const c = await srv.docker(['network', 'connect', '--alias', 'queue', n, `q${tag}`]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(await lb(['exec', `p${tag}`, 'ping', '-c', '1', '-W', '2', 'queue']), /1 packets received/);
  const rm = await srv.docker(['network', 'rm', n]);
  assert.equal(rm.code, 1);
  assert.equal(rm.stderr, `Error response from daemon: error while removing network: network ${n} id ${id} has active endpoints\n`);
  assert.equal((await srv.docker(['network', 'disconnect', n, `q${tag}`])).code, 0);
  await lb(['rm', '-f', `p${tag}`, `q${tag}`]);
  const pruned = await srv.docker(['network', 'prune', '-f', '--filter', 'label=made=by-docker']);
  assert.equal(pruned.stdout, `Deleted Networks:\n${n}\n\n`);
});
