import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildHosts,
  buildHostNetworkHosts,
  buildHostname,
  buildResolvConf,
  filterResolvConf,
  hostResolvConfPath,
  parseExtraHost,
  peerLines,
  writeEtcFiles,
  writeInPlace,
} from './etc-files.js';
import { isEngineError } from '../errors/index.js';

const DEFAULTS =
  '127.0.0.1\tlocalhost\n' +
  '::1\tlocalhost ip6-localhost ip6-loopback\n' +
  'fe00::0\tip6-localnet\n' +
  'ff00::0\tip6-mcastprefix\n' +
  'ff02::1\tip6-allnodes\n' +
  'ff02::2\tip6-allrouters\n';

describe('/etc/hosts and /etc/hostname', () => {
  it('bridge: Docker default lines then <ip>\\t<hostname>', () => {
    assert.equal(buildHosts({ hostname: '3f4e5a6b7c8d', ip: '10.77.0.2' }), DEFAULTS + '10.77.0.2\t3f4e5a6b7c8d\n');
  });
  it('with a domain name: fqdn and short name', () => {
    assert.equal(buildHosts({ hostname: 'web', domainname: 'example.org', ip: '10.77.0.2' }), DEFAULTS + '10.77.0.2\tweb.example.org web\n');
    assert.equal(buildHosts({ hostname: 'db.local', ip: '10.77.0.3' }), DEFAULTS + '10.77.0.3\tdb.local db\n');
  });
  it('none: no line for the container', () => {
    assert.equal(buildHosts({ hostname: 'abc' }), DEFAULTS);
  });
  it('--add-host lines come before the container line; host-gateway is the gateway', () => {
    const extra = ['db:10.1.2.3', 'gw:host-gateway', 'v6:[2001:db8::1]'].map(parseExtraHost);
    assert.equal(
      buildHosts({ hostname: 'h', ip: '10.77.0.9', extraHosts: extra, gateway: '10.77.0.1' }),
      DEFAULTS + '10.1.2.3\tdb\n10.77.0.1\tgw\n2001:db8::1\tv6\n10.77.0.9\th\n',
    );
  });
  it('rejects malformed --add-host values with Docker messages', () => {
    assert.throws(() => parseExtraHost('nohost'), (e: unknown) => isEngineError(e, 'invalid-argument') && e.message === 'bad format for add-host: "nohost"');
    assert.throws(() => parseExtraHost(':1.2.3.4'), /bad format for add-host/);
    assert.throws(() => parseExtraHost('a:1.2.3'), (e: unknown) => isEngineError(e) && e.message === 'invalid IP address in add-host: "1.2.3"');
  });
  it('hostname file is the name and a newline', () => {
    assert.equal(buildHostname('abc123'), 'abc123\n');
  });
});

describe('/etc/resolv.conf', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-etc-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('drops localhost nameservers and keeps the rest', () => {
    const host = 'search corp.example\nnameserver 127.0.0.1\nnameserver 10.0.0.2\nnameserver ::1\noptions ndots:2\n';
    assert.equal(filterResolvConf(host), 'search corp.example\nnameserver 10.0.0.2\noptions ndots:2\n');
  });
  it('drops IPv6 nameservers (no IPv6 in the container) and falls back to Google DNS when none is left', () => {
    assert.equal(filterResolvConf('nameserver 127.0.0.53\nnameserver fe80::1%eth0\noptions edns0\n'), 'options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n');
    assert.equal(filterResolvConf(''), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
  });
  it('systemd-resolved stub → the upstream file', async () => {
    const etc = join(dir, 'resolv.conf');
    const alt = join(dir, 'systemd-resolv.conf');
    await writeFile(etc, 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n');
    assert.equal(await hostResolvConfPath(etc, alt), etc, 'alternate missing: keep /etc/resolv.conf');
    await writeFile(alt, 'nameserver 192.0.2.53\n');
    assert.equal(await hostResolvConfPath(etc, alt), alt);
    await writeFile(etc, 'nameserver 127.0.0.53\nnameserver 10.0.0.1\n');
    assert.equal(await hostResolvConfPath(etc, alt), etc, 'not only the stub: keep /etc/resolv.conf');
  });
  it('builds the container file from the host file', async () => {
    const p = join(dir, 'host-resolv.conf');
    await writeFile(p, '# host\nnameserver 127.0.0.1\nsearch a.example b.example\noptions timeout:1\n');
    assert.equal(await buildResolvConf({ hostPath: p }), '# host\nsearch a.example b.example\noptions timeout:1\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n');
    assert.equal(await buildResolvConf({ hostPath: p, hostNetwork: true }), '# host\nnameserver 127.0.0.1\nsearch a.example b.example\noptions timeout:1\n');
    assert.equal(
      await buildResolvConf({ hostPath: p, dns: ['1.1.1.1'] }),
      'search a.example b.example\nnameserver 1.1.1.1\noptions timeout:1\n',
    );
    assert.equal(
      await buildResolvConf({ hostPath: p, dnsSearch: ['x.example'], dnsOptions: ['ndots:3'] }),
      'search x.example\nnameserver 8.8.8.8\nnameserver 8.8.4.4\noptions ndots:3\n',
    );
    await assert.rejects(buildResolvConf({ hostPath: p, dns: ['dns.google'] }), (e: unknown) => isEngineError(e, 'invalid-argument'));
  });
  it('this host: the real files', async () => {
    const real = await readFile(await hostResolvConfPath(), 'utf8');
    const built = await buildResolvConf();
    assert.ok(/^nameserver /m.test(built), 'has a nameserver');
    assert.ok(!/^nameserver\s+127\./m.test(built), 'no localhost nameserver');
    assert.equal(await buildResolvConf({ hostNetwork: true }), real);
    assert.equal(await buildHostNetworkHosts(), await readFile('/etc/hosts', 'utf8'));
  });
  it('writes the three files', async () => {
    const paths = await writeEtcFiles(join(dir, 'c1'), { hosts: 'H\n', hostname: 'N\n', resolvConf: 'R\n' });
    assert.equal(await readFile(paths.hosts, 'utf8'), 'H\n');
    assert.equal(await readFile(paths.hostname, 'utf8'), 'N\n');
    assert.equal(await readFile(paths.resolvConf, 'utf8'), 'R\n');
    assert.equal((await stat(paths.hosts)).mode & 0o777, 0o644);
  });
  it('peer lines: one per address, names deduplicated, names with blanks left out', () => {
    assert.equal(
      peerLines([
        { ip: '10.78.0.2', names: ['web', 'www', 'web', 'abc123def456'] },
        { ip: '10.78.0.3', names: ['bad name', 'db'] },
        { ip: '10.78.0.4', names: [] },
      ]),
      '10.78.0.2\tweb www abc123def456\n10.78.0.3\tdb\n',
    );
  });
  it('rewrites a file in place: the same inode, longer and shorter content, nothing for a missing file', async () => {
    const p = join(dir, 'inplace-hosts');
    await writeFile(p, 'first version\n');
    const ino = (await stat(p)).ino;
    assert.equal(await writeInPlace(p, 'a much longer second version\nwith two lines\n'), true);
    assert.equal(await readFile(p, 'utf8'), 'a much longer second version\nwith two lines\n');
    assert.equal(await writeInPlace(p, 'short\n'), true);
    assert.equal(await readFile(p, 'utf8'), 'short\n');
    assert.equal((await stat(p)).ino, ino);
    assert.equal(await writeInPlace(join(dir, 'no-such-file'), 'x'), false);
  });
});
