import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { createSocket } from 'node:dgram';
import {
  parsePortSpec,
  parsePortSpecs,
  withPublishAll,
  formatPortLines,
  dockerPortMap,
  allocatePorts,
  probePort,
  ephemeralRange,
  type PortMapping,
} from './ports.js';
import { isEngineError } from '../errors/index.js';

const m = (containerPort: number, hostPort = '', hostIP = '', proto: PortMapping['proto'] = 'tcp'): PortMapping => ({
  containerPort,
  proto,
  hostIP,
  hostPort,
});

describe('parsePortSpec (docker -p)', () => {
  const good: [string, PortMapping[]][] = [
    ['80', [m(80)]],
    [':80', [m(80)]],
    ['8080:80', [m(80, '8080')]],
    ['8080:80/udp', [m(80, '8080', '', 'udp')]],
    ['8080:80/UDP', [m(80, '8080', '', 'udp')]],
    ['8080:80/sctp', [m(80, '8080', '', 'sctp')]],
    ['80/tcp', [m(80)]],
    ['127.0.0.1:8080:80', [m(80, '8080', '127.0.0.1')]],
    ['127.0.0.1::80', [m(80, '', '127.0.0.1')]],
    ['0.0.0.0:8080:80/udp', [m(80, '8080', '0.0.0.0', 'udp')]],
    ['8000-8001:80-81', [m(80, '8000'), m(81, '8001')]],
    ['8000-8010:80', [m(80, '8000-8010')]],
    ['80-82', [m(80), m(81), m(82)]],
    ['127.0.0.1::80-81/udp', [m(80, '', '127.0.0.1', 'udp'), m(81, '', '127.0.0.1', 'udp')]],
    ['[::1]:8080:80', [m(80, '8080', '::1')]],
    ['::1:8080:80', [m(80, '8080', '::1')]],
    ['[::]::80', [m(80, '', '::')]],
    ['0:80', [m(80)]],
  ];
  for (const [spec, want] of good) {
    it(`parses ${JSON.stringify(spec)}`, () => assert.deepEqual(parsePortSpec(spec), want));
  }

  const bad: [string, string][] = [
    ['abc', 'invalid containerPort: abc'],
    ['8080:abc', 'invalid containerPort: abc'],
    ['70000', 'invalid containerPort: 70000'],
    ['0', 'invalid containerPort: 0'],
    ['8080:81-80', 'invalid containerPort: 81-80'],
    ['abc:80', 'invalid hostPort: abc'],
    ['99999:80', 'invalid hostPort: 99999'],
    ['8001-8000:80', 'invalid hostPort: 8001-8000'],
    ['8080:80/xyz', 'invalid proto: xyz'],
    ['1.2.3:8080:80', 'invalid IP address: 1.2.3'],
    ['localhost:8080:80', 'invalid IP address: localhost'],
    ['8000-8001:80-82', 'invalid ranges specified for container and host Ports: 80-82 and 8000-8001'],
    ['', 'no port specified: <empty>'],
    ['8080:', 'no port specified: 8080:<empty>'],
    ['8080:/udp', 'no port specified: 8080:/udp<empty>'],
  ];
  for (const [spec, msg] of bad) {
    it(`rejects ${JSON.stringify(spec)} with "${msg}"`, () => {
      assert.throws(
        () => parsePortSpec(spec),
        (e: unknown) => isEngineError(e, 'invalid-argument') && e.code === 'INVALID_PORT_SPEC' && e.message === msg,
      );
    });
  }

  it('parsePortSpecs concatenates in order', () => {
    assert.deepEqual(parsePortSpecs(['1:2', '3']), [m(2, '1'), m(3)]);
  });
});

describe('-P and rendering', () => {
  it('withPublishAll adds a random binding for each exposed port without one', () => {
    const out = withPublishAll(parsePortSpecs(['8080:80']), ['80/tcp', '53/udp', '9000-9001', '53/udp']);
    assert.deepEqual(out, [m(80, '8080'), m(53, '', '', 'udp'), m(9000), m(9001)]);
  });

  it('withPublishAll rejects a malformed exposed port', () => {
    assert.throws(() => withPublishAll([], ['http/tcp']), (e: unknown) => isEngineError(e, 'invalid-argument'));
  });

  it('formats docker port lines, natural-sorted, and filters', () => {
    const ports = [
      { containerPort: 8080, proto: 'tcp' as const, hostIP: '', hostPort: 32769 },
      { containerPort: 80, proto: 'tcp' as const, hostIP: '', hostPort: 8080 },
      { containerPort: 80, proto: 'udp' as const, hostIP: '127.0.0.1', hostPort: 5353 },
      { containerPort: 443, proto: 'tcp' as const, hostIP: '::1', hostPort: 8443 },
    ];
    assert.deepEqual(formatPortLines(ports), [
      '80/tcp -> 0.0.0.0:8080',
      '80/udp -> 127.0.0.1:5353',
      '443/tcp -> [::1]:8443',
      '8080/tcp -> 0.0.0.0:32769',
    ]);
    assert.deepEqual(formatPortLines(ports, '80'), ['0.0.0.0:8080']);
    assert.deepEqual(formatPortLines(ports, '80/udp'), ['127.0.0.1:5353']);
    assert.throws(() => formatPortLines(ports, '81'), /No public port '81\/tcp' published for this container/);
    assert.deepEqual(dockerPortMap(ports.slice(1, 3)), {
      '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }],
      '80/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }],
    });
  });
});

async function listenTcp(host: string, port = 0): Promise<Server> {
  const s = createServer();
  await new Promise<void>((res, rej) => {
    s.once('error', rej);
    s.listen({ host, port }, () => res());
  });
  return s;
}
const portOf = (s: Server) => (s.address() as { port: number }).port;
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

describe('host port allocation', () => {
  it('a port a host process listens on is reported as Docker does', async () => {
    const s = await listenTcp('0.0.0.0');
    const port = portOf(s);
    try {
      assert.equal(await probePort('tcp', '', port), 'in-use');
      assert.equal(await probePort('tcp', '127.0.0.1', port), 'in-use');
      await assert.rejects(
        allocatePorts([m(80, String(port))], []),
        (e: unknown) =>
          isEngineError(e, 'conflict') && e.code === 'PORT_ALLOCATED' && e.message === `Bind for 0.0.0.0:${port} failed: port is already allocated`,
      );
    } finally {
      await close(s);
    }
    assert.equal(await probePort('tcp', '', port), 'free');
    assert.deepEqual(await allocatePorts([m(80, String(port))], []), [{ containerPort: 80, proto: 'tcp', hostIP: '', hostPort: port }]);
  });

  it('a listener on 127.0.0.1 blocks a publish on all addresses', async () => {
    const s = await listenTcp('127.0.0.1');
    try {
      await assert.rejects(allocatePorts([m(80, String(portOf(s)))], []), /Bind for 0\.0\.0\.0:\d+ failed: port is already allocated/);
    } finally {
      await close(s);
    }
  });

  it('udp ports are probed with udp', async () => {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '0.0.0.0', () => r()));
    const port = sock.address().port;
    try {
      assert.equal(await probePort('udp', '', port), 'in-use');
      // the same number is free for tcp unless something listens there
      const tcp = await probePort('tcp', '', port);
      assert.ok(tcp === 'free' || tcp === 'in-use');
      await assert.rejects(allocatePorts([m(53, String(port), '', 'udp')], []), /port is already allocated/);
    } finally {
      sock.close();
    }
  });

  it('ports recorded for our other containers conflict by protocol and overlapping address', async () => {
    const s = await listenTcp('127.0.0.1');
    const port = portOf(s);
    await close(s); // free on the host, but recorded as held
    const held = [{ proto: 'tcp' as const, hostIP: '', hostPort: port, owner: 'container abc' }];
    await assert.rejects(
      allocatePorts([m(80, String(port), '127.0.0.1')], held),
      (e: unknown) => isEngineError(e) && e.message === `Bind for 127.0.0.1:${port} failed: port is already allocated` && /container abc/.test(e.hint ?? ''),
    );
    const udp = await allocatePorts([m(80, String(port), '', 'udp')], held);
    assert.equal(udp[0]!.hostPort, port);
    // two bindings of one request on the same host port conflict too
    await assert.rejects(allocatePorts([m(80, String(port)), m(81, String(port))], []), /port is already allocated/);
  });

  it('random and ranged host ports skip what is taken', async () => {
    const [lo, hi] = await ephemeralRange();
    const got = await allocatePorts([m(80), m(81)], []);
    assert.equal(got.length, 2);
    for (const g of got) assert.ok(g.hostPort >= lo && g.hostPort <= hi, `${g.hostPort} in ${lo}-${hi}`);
    assert.notEqual(got[0]!.hostPort, got[1]!.hostPort);

    const s = await listenTcp('0.0.0.0');
    const p = portOf(s);
    try {
      const r = await allocatePorts([m(80, `${p}-${p + 5}`)], [{ proto: 'tcp', hostIP: '', hostPort: p + 1, owner: 'x' }]);
      assert.ok(r[0]!.hostPort > p + 1 && r[0]!.hostPort <= p + 5, `got ${r[0]!.hostPort}`);
      // `P-P:80` is parsed as the fixed port P (as Docker does)
      await assert.rejects(allocatePorts(parsePortSpec(`${p}-${p}:80`), []), /Bind for 0\.0\.0\.0:\d+ failed: port is already allocated/);
      await assert.rejects(allocatePorts([m(80, `${p}-${p}`)], []), /all ports are allocated/);
    } finally {
      await close(s);
    }
  });

  it('a host address that is not ours and IPv6 host addresses are refused', async () => {
    await assert.rejects(allocatePorts([m(80, '18080', '203.0.113.7')], []), (e: unknown) => isEngineError(e) && e.code === 'HOST_IP_UNAVAILABLE');
    await assert.rejects(allocatePorts([m(80, '18080', '::1')], []), (e: unknown) => isEngineError(e, 'unsupported'));
  });
});
