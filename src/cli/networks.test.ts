/**
 * `layerbox network …` and `run --network NAME`, end to end as root: real containers (the
 * busybox fixture) on user-defined bridge networks, with the CNI plugins, iptables and the
 * kernel's bridges. Every network a test makes is removed (bridge, rules, leases) in
 * after(), also when a test fails. Where docker.io is installed, the same lines go to a
 * private dockerd too, and the outputs and exit codes are compared.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { lb, tempRoot, type CliResult } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { startDockerd, type PrivateDockerd } from '../testing/dockerd.js';

const IMAGE = 'bench/busybox:latest';
const tag = randomBytes(3).toString('hex');
const octet = 100 + (parseInt(tag.slice(0, 2), 16) % 100);
let store: { root: string; cleanup(): void };

const run = (args: string[], input?: string): CliResult => lb(store.root, args, input === undefined ? {} : { input });
function ok(args: string[]): string {
  const r = run(args);
  assert.equal(r.code, 0, `layerbox ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const bridgeOf = (net: string) => `br-${ok(['network', 'inspect', '-f', '{{.Id}}', net]).trim().slice(0, 12)}`;

before(() => {
  assert.equal(process.getuid?.(), 0, 'these tests need root');
  store = tempRoot('lb-netcli-');
  ok(['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
});

after(() => {
  if (!store) return;
  const ids = run(['ps', '-aq']).stdout.split('\n').filter(Boolean);
  if (ids.length) run(['rm', '-f', ...ids]);
  const nets = run(['network', 'ls', '-q', '--filter', 'type=custom']).stdout.split('\n').filter(Boolean);
  if (nets.length) run(['network', 'rm', ...nets]);
  store.cleanup();
});

test('containers of a network reach each other by name and alias (ping, wget); another network\'s cannot; connect and disconnect while running', () => {
  const app = `app${tag}`;
  const other = `oth${tag}`;
  ok(['network', 'create', app]);
  ok(['network', 'create', '--subnet', `10.237.${octet}.0/24`, '--gateway', `10.237.${octet}.254`, other]);
  ok(['run', '-d', '--name', `web${tag}`, '--network', app, '--network-alias', 'www', IMAGE, 'sh', '-c', 'mkdir -p /www && echo hello from web > /www/index.html && exec httpd -f -p 80 -h /www']);
  ok(['run', '-d', '--name', `cli${tag}`, '--network', app, IMAGE, 'sleep', '300']);
  ok(['run', '-d', '--name', `str${tag}`, '--network', other, IMAGE, 'sleep', '300']);

  for (const name of [`web${tag}`, 'www']) {
    assert.match(ok(['exec', `cli${tag}`, 'ping', '-c', '1', '-W', '2', name]), /1 packets received/, `ping ${name}`);
  }
  const webId = ok(['inspect', '-f', '{{.Id}}', `web${tag}`]).trim();
  assert.match(ok(['exec', `cli${tag}`, 'ping', '-c', '1', '-W', '2', webId.slice(0, 12)]), /1 packets received/, 'by short ID');
  assert.match(ok(['exec', `web${tag}`, 'ping', '-c', '1', '-W', '2', `cli${tag}`]), /1 packets received/, 'and back');
  const page = (from: string, host: string) => run(['exec', from, 'timeout', '5', 'wget', '-q', '-O', '-', `http://${host}/`]);
  assert.equal(page(`cli${tag}`, 'www').stdout, 'hello from web\n');
  assert.equal(page(`cli${tag}`, `web${tag}`).stdout, 'hello from web\n');

  // the other network: no name, and no way to the address
  const webIp = ok(['inspect', '-f', `{{.NetworkSettings.Networks.${app}.IPAddress}}`, `web${tag}`]).trim();
  assert.match(webIp, /^\d+\.\d+\.\d+\.\d+$/);
  assert.notEqual(run(['exec', `str${tag}`, 'ping', '-c', '1', '-W', '1', `web${tag}`]).code, 0, 'its name does not resolve elsewhere');
  assert.notEqual(run(['exec', `str${tag}`, 'ping', '-c', '1', '-W', '1', webIp]).code, 0, 'isolated by address too');
  assert.notEqual(page(`str${tag}`, webIp).code, 0);
  // nor from the default bridge
  assert.notEqual(run(['run', '--rm', IMAGE, 'ping', '-c', '1', '-W', '1', webIp]).code, 0, 'the default bridge is isolated from it');
  assert.equal(ok(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', `web${tag}`]).trim(), '', 'top-level addresses are the default bridge\'s (as Docker)');

  // connect the stranger (with an alias and an address), then disconnect it again
  ok(['network', 'connect', '--alias', 'visitor', '--ip', `10.237.${octet}.50`, other, `cli${tag}`]);
  assert.match(ok(['exec', `cli${tag}`, 'ip', '-o', '-4', 'addr', 'show', 'eth1']), new RegExp(`inet 10\\.237\\.${octet}\\.50/24`));
  assert.match(ok(['exec', `str${tag}`, 'ping', '-c', '1', '-W', '2', 'visitor']), /1 packets received/);
  ok(['network', 'connect', app, `str${tag}`]);
  assert.equal(page(`str${tag}`, 'www').stdout, 'hello from web\n', 'connected: it reaches the web server by its alias');
  assert.match(ok(['inspect', '-f', '{{json .NetworkSettings.Networks}}', `str${tag}`]), new RegExp(`"${app}":\\{`));
  ok(['network', 'disconnect', app, `str${tag}`]);
  assert.notEqual(run(['exec', `str${tag}`, 'ping', '-c', '1', '-W', '1', 'www']).code, 0, 'disconnected: the name is gone');
  assert.notEqual(run(['exec', `str${tag}`, 'ip', 'link', 'show', 'eth1']).code, 0, 'and the interface');

  // ps shows the networks; the network filter takes a name
  assert.equal(ok(['ps', '--filter', `network=${other}`, '--format', '{{.Names}}']).split('\n').filter(Boolean).sort().join(' '), [`cli${tag}`, `str${tag}`].sort().join(' '));
  assert.equal(ok(['ps', '--filter', `name=cli${tag}`, '--format', '{{.Networks}}']).trim().split(',').sort().join(','), [app, other].sort().join(','));

  // inspect's Containers lists the running ones
  const members = JSON.parse(ok(['network', 'inspect', '-f', '{{json .Containers}}', app])) as Record<string, { Name: string; IPv4Address: string }>;
  assert.deepEqual(Object.values(members).map((m) => m.Name).sort(), [`cli${tag}`, `web${tag}`].sort());
  assert.equal(members[webId]!.IPv4Address.split('/')[0], webIp);

  // a network with containers cannot go (Docker's words and exit code); without them it can
  const bridge = bridgeOf(app);
  const id = ok(['network', 'inspect', '-f', '{{.Id}}', app]).trim();
  const refused = run(['network', 'rm', app]);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr, `Error response from daemon: error while removing network: network ${app} id ${id} has active endpoints\n`);
  ok(['rm', '-f', `web${tag}`, `cli${tag}`, `str${tag}`]);
  assert.equal(ok(['network', 'rm', app, other]), `${app}\n${other}\n`);
  assert.ok(!existsSync(`/sys/class/net/${bridge}`), 'the bridge is gone');
});

test('compose\'s way: a created container is disconnected and connected again with its aliases, then started; a removed network fails the start', () => {
  const net = `cmp${tag}`;
  ok(['network', 'create', '--label', 'com.docker.compose.network=default', net]);
  ok(['create', '--name', `svc${tag}`, '--network', net, '--network-alias', 'first', IMAGE, 'sleep', '300']);
  ok(['network', 'disconnect', net, `svc${tag}`]);
  assert.equal(ok(['inspect', '-f', '{{json .NetworkSettings.Networks}}', `svc${tag}`]).trim(), '{}');
  ok(['network', 'connect', '--alias', 'svc', net, `svc${tag}`]);
  ok(['start', `svc${tag}`]);
  assert.match(ok(['exec', `svc${tag}`, 'cat', '/etc/hosts']), new RegExp(`\\tsvc${tag} svc [0-9a-f]{12}\\n`));
  const aliases = JSON.parse(ok(['inspect', '-f', `{{json .NetworkSettings.Networks.${net}.Aliases}}`, `svc${tag}`])) as string[];
  assert.equal(aliases[0], 'svc');
  assert.equal(aliases.length, 2);

  // stopped and the network removed: the start says so, as Docker's
  ok(['stop', '-t', '0', `svc${tag}`]);
  assert.equal(ok(['network', 'rm', net]), `${net}\n`);
  const r = run(['start', `svc${tag}`]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`network ${net} not found`));
  ok(['rm', `svc${tag}`]);
});

test('network ls, inspect and prune: columns, -q, --filter, --format; prune keeps networks in use and those a filter spares', () => {
  const [a, b, c] = [`lsa${tag}`, `lsb${tag}`, `lsc${tag}`];
  ok(['network', 'create', '--label', 'keep=yes', a]);
  ok(['network', 'create', '--internal', b]);
  ok(['network', 'create', c]);
  ok(['run', '-d', '--name', `user${tag}`, '--network', c, IMAGE, 'sleep', '300']);
  const ls = ok(['network', 'ls']);
  assert.match(ls.split('\n')[0]!, /^NETWORK ID {5}NAME {6,}DRIVER {4}SCOPE$/);
  for (const n of ['bridge', 'host', 'none', a, b, c]) assert.match(ls, new RegExp(`^[0-9a-f]{12} {3}${n} +\\S+ +local$`, 'm'));
  assert.deepEqual(ok(['network', 'ls', '--filter', 'type=builtin', '--format', '{{.Name}} {{.Driver}}']).trim().split('\n'), ['bridge bridge', 'host host', 'none null']);
  assert.equal(ok(['network', 'ls', '--filter', `name=${tag}`, '--filter', 'label=keep', '--format', '{{.Name}} {{.Labels}} {{.Internal}}']).trim(), `${a} keep=yes false`);
  assert.equal(ok(['network', 'ls', '--filter', `name=lsb${tag}`, '--format', '{{.Internal}} {{.IPv6}} {{.Scope}}']).trim(), 'true false local');
  assert.equal(ok(['network', 'ls', '-q', '--filter', `name=${a}`]).trim(), ok(['network', 'inspect', '-f', '{{.Id}}', a]).trim().slice(0, 12));
  assert.equal(ok(['network', 'ls', '-q', '--no-trunc', '--filter', `name=${a}`]).trim(), ok(['network', 'inspect', '-f', '{{.Id}}', a]).trim());
  assert.deepEqual(ok(['network', 'ls', '--filter', 'dangling=true', '--filter', `name=${tag}`, '--format', '{{.Name}}']).trim().split('\n').sort(), [a, b].sort());
  const bad = run(['network', 'ls', '--filter', 'type=weird']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, "Error response from daemon: invalid filter: 'type'='weird'\n");
  const doc = JSON.parse(ok(['network', 'inspect', b, 'bridge'])) as { Name: string; Internal: boolean; Driver: string; IPAM: { Config: { Subnet: string }[] } }[];
  assert.equal(doc.length, 2);
  assert.equal(doc[0]!.Internal, true);
  assert.equal(doc[1]!.Name, 'bridge');
  assert.equal(doc[1]!.IPAM.Config[0]!.Subnet, '10.77.0.0/16');
  const missing = run(['network', 'inspect', 'nosuch']);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, '[]\n');
  assert.equal(missing.stderr, 'Error: No such network: nosuch\n');

  assert.equal(ok(['network', 'prune', '-f', '--filter', 'label=keep']), `Deleted Networks:\n${a}\n\n`);
  assert.equal(ok(['network', 'prune', '-f']), `Deleted Networks:\n${b}\n\n`, 'the one in use stays');
  assert.equal(ok(['network', 'prune', '-f']), '', 'nothing left to prune: nothing said');
  assert.equal(ok(['network', 'ls', '-q', '--filter', `name=${c}`]).trim().length, 12);
  ok(['rm', '-f', `user${tag}`]);
  ok(['network', 'rm', c]);
});

test('network errors as the docker CLI words them', () => {
  const n = `err${tag}`;
  ok(['network', 'create', n]);
  const cases: [string[], number, string][] = [
    [['network', 'create', n], 1, `Error response from daemon: network with name ${n} already exists\n`],
    [['network', 'create', 'bridge'], 1, 'Error response from daemon: operation is not permitted on predefined bridge network\n'],
    [['network', 'create', '-d', 'host', 'x'], 1, 'Error response from daemon: only one instance of "host" network is allowed\n'],
    [['network', 'create', '-d', 'foo', 'x'], 1, 'Error response from daemon: plugin "foo" not found\n'],
    [['network', 'create', '--gateway', '10.1.1.1', 'x'], 1, 'every ip-range or gateway must have a corresponding subnet\n'],
    [['network', 'create', '--subnet', '10.238.1.0/24', '--gateway', '10.238.2.1', 'x'], 1, 'no matching subnet for gateway 10.238.2.1\n'],
    [['network', 'rm', 'host', 'nosuch'], 1, 'Error response from daemon: host is a pre-defined network and cannot be removed\nError: No such network: nosuch\n'],
    [['network', 'connect', n, 'nosuch'], 1, 'Error response from daemon: No such container: nosuch\n'],
    [['run', '--network', 'bridge', '--network-alias', 'x', IMAGE, 'true'], 125, "layerbox: network-scoped aliases are only supported for user-defined networks.\nSee 'layerbox run --help'.\n"],
    [['run', '--network', 'bridge', '--ip', '10.77.0.9', IMAGE, 'true'], 125, "layerbox: Error response from daemon: user specified IP address is supported on user defined networks only.\nSee 'layerbox run --help'.\n"],
    [['run', '--network', n, '--ip', '10.77.0.9', IMAGE, 'true'], 125, "layerbox: Error response from daemon: user specified IP address is supported only when connecting to networks with user configured subnets.\nSee 'layerbox run --help'.\n"],
    [['run', '--network', 'nosuchnet', IMAGE, 'true'], 125, "layerbox: Error response from daemon: network nosuchnet not found.\nSee 'layerbox run --help'.\n"],
  ];
  for (const [args, code, stderr] of cases) {
    const r = run(args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr, stderr, args.join(' '));
  }
  assert.equal(ok(['ps', '-aq']), '', 'nothing was created');
  ok(['network', 'rm', n]);
});

// ------------------------------------------------------------------ compared with a private dockerd

let dockerd: PrivateDockerd | undefined;
after(async () => {
  if (!dockerd) return;
  const ids = dockerd.dockerSync(['ps', '-aq']).stdout.split('\n').filter(Boolean);
  if (ids.length) dockerd.dockerSync(['rm', '-f', ...ids]);
  dockerd.dockerSync(['network', 'prune', '-f']);
  await dockerd.stop();
});

test('the same network lines give the same output and exit code as a private dockerd', async (t) => {
  dockerd = await startDockerd({ prefix: 'lbnet-' });
  if (!dockerd) {
    t.diagnostic('docker.io is not installed: nothing to compare with');
    assert.equal(ok(['network', 'ls', '-q', '--filter', 'type=custom']), '');
    return;
  }
  assert.equal(dockerd.dockerSync(['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]).code, 0);
  const n1 = `cmp${tag}`;
  const n2 = `cmq${tag}`;
  const sub = `10.239.${octet}.0/24`;
  // IDs and interface numbers differ by nature; one label each (Go prints a map's labels in random order)
  const norm = (s: string) => s.replace(/[0-9a-f]{64}/g, '<ID>').replace(/\b[0-9a-f]{12}\b/g, '<SHORT>').replace(/^\d+: /gm, 'N: ');
  const lines: string[][] = [
    ['network', 'create', n1],
    ['network', 'create', n1],
    ['network', 'create', 'bridge'],
    ['network', 'create', '-d', 'host', 'x'],
    ['network', 'create', '-d', 'foo', 'x'],
    ['network', 'create', '--gateway', '10.1.1.1', 'x'],
    ['network', 'create', '--subnet', sub, '--gateway', `10.239.${octet}.254`, '--ip-range', `10.239.${octet}.128/25`, '--label', 'c=d', '-o', 'foo=bar', n2],
    ['network', 'ls', '--filter', 'type=custom', '--format', '{{.Name}} {{.Driver}} {{.Scope}} {{.IPv6}} {{.Internal}} {{.Labels}}'],
    ['network', 'ls', '--filter', `name=${n2}`],
    ['network', 'inspect', n2, '--format', '{{json .IPAM}} {{json .Options}} {{json .Labels}} {{.Driver}} {{.Scope}} {{.Internal}} {{.Attachable}} {{.EnableIPv6}} {{json .Containers}} {{json .ConfigFrom}}'],
    ['network', 'inspect', 'nope'],
    ['network', 'rm', 'nope'],
    ['run', '-d', '--name', `c1${tag}`, '--network', n1, '--network-alias', 'web', IMAGE, 'sleep', '100'],
    ['network', 'rm', n1],
    ['network', 'connect', n1, `c1${tag}`],
    ['network', 'disconnect', n2, `c1${tag}`],
    ['network', 'connect', '--ip', '10.1.1.1', n2, `c1${tag}`],
    ['network', 'connect', '--ip', '10.2.2.2', n1, `c1${tag}`],
    ['network', 'connect', 'host', `c1${tag}`],
    ['network', 'connect', 'none', `c1${tag}`],
    ['network', 'connect', n2, 'nosuch'],
    ['network', 'connect', '--alias', 'db', '--ip', `10.239.${octet}.140`, n2, `c1${tag}`],
    ['inspect', `c1${tag}`, '--format', `{{json .NetworkSettings.Networks.${n1}.Aliases}} {{.NetworkSettings.Networks.${n2}.IPAddress}} {{json .NetworkSettings.Networks.${n2}.IPAMConfig}} {{.HostConfig.NetworkMode}}`],
    ['exec', `c1${tag}`, 'ip', '-o', '-4', 'addr', 'show', 'eth1'],
    ['network', 'disconnect', n2, `c1${tag}`],
    ['network', 'ls', '-q', '--filter', 'dangling=true', '--filter', `name=${n2}`],
    ['rm', '-f', `c1${tag}`],
    ['network', 'prune', '-f', '--filter', 'label=c'],
    ['network', 'rm', n1],
    ['network', 'prune', '-f'],
    ['network', 'ls', '--filter', 'type=custom'],
    ['run', '--rm', '--network', 'bridge', '--network-alias', 'x', IMAGE, 'true'],
    ['network', 'rm', 'none', 'nope'],
  ];
  const problems: string[] = [];
  for (const line of lines) {
    const ours = run(line);
    // Debian's docker.io 20.10 client (a newer one may be first in PATH)
    const theirs = await dockerd.docker(line, { env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' } });
    const o = { code: ours.code, out: norm(ours.stdout), err: norm(ours.stderr).replaceAll('layerbox', 'docker') };
    const d = { code: theirs.code, out: norm(theirs.stdout), err: norm(theirs.stderr) };
    if (o.code !== d.code || o.out !== d.out || o.err !== d.err) problems.push(`${line.join(' ')}:\n  ours   ${JSON.stringify(o)}\n  docker ${JSON.stringify(d)}`);
  }
  assert.deepEqual(problems, []);
});
