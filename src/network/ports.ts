/**
 * Port publishing as Docker does it: `-p` spec parsing (docker/go-connections `nat`),
 * `-P` (every exposed port to a random host port), host-port allocation with a
 * "try to bind it" probe plus a record of the ports our containers hold, and the
 * `docker port` / inspect renderings.
 */
import { createServer, isIP } from 'node:net';
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { conflict, invalidArgument, unavailable, unsupported, errnoCode, throwIfAborted } from '../errors/index.js';

export type PortProto = 'tcp' | 'udp' | 'sctp';

/** One parsed binding, as Docker's nat.PortMapping: hostPort is '' (any), 'N' or 'A-B' (allocate within). */
export interface PortMapping {
  containerPort: number;
  proto: PortProto;
  /** '' = all interfaces (0.0.0.0); IPv6 without brackets */
  hostIP: string;
  hostPort: string;
}

/** A binding with its host port decided. */
export interface PublishedPort {
  containerPort: number;
  proto: PortProto;
  /** '' = all interfaces */
  hostIP: string;
  hostPort: number;
}

const PROTOS: readonly string[] = ['tcp', 'udp', 'sctp'];

function badSpec(message: string, spec: string) {
  return invalidArgument('INVALID_PORT_SPEC', message, {
    where: spec,
    hint: 'use [ip:][hostPort:]containerPort[/proto], e.g. 8080:80, 127.0.0.1:8080:80/udp, 8000-8001:80-81',
  });
}

function parsePortNumber(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

/** "80" or "8000-8010" → [start, end]; undefined when invalid (Docker's ParsePortRange). */
export function parsePortRange(s: string): [number, number] | undefined {
  if (s === '') return undefined;
  const dash = s.indexOf('-');
  if (dash < 0) {
    const p = parsePortNumber(s);
    return p === undefined ? undefined : [p, p];
  }
  const a = parsePortNumber(s.slice(0, dash));
  const b = parsePortNumber(s.slice(dash + 1));
  if (a === undefined || b === undefined || b < a) return undefined;
  return [a, b];
}

function splitParts(raw: string): [string, string, string] {
  const parts = raw.split(':');
  const n = parts.length;
  if (n === 1) return ['', '', parts[0]!];
  if (n === 2) return ['', parts[0]!, parts[1]!];
  if (n === 3) return [parts[0]!, parts[1]!, parts[2]!];
  return [parts.slice(0, n - 2).join(':'), parts[n - 2]!, parts[n - 1]!];
}

/**
 * Parses one `-p` value: `80`, `:80`, `8080:80`, `8080:80/udp`, `127.0.0.1:8080:80`,
 * `127.0.0.1::80`, `8000-8001:80-81`, `8000-8010:80` (allocate within the range),
 * `[::1]:8080:80`. Error messages are Docker's (go-connections nat.ParsePortSpec).
 */
export function parsePortSpec(raw: string): PortMapping[] {
  let [ip, hostPort, containerPart] = splitParts(raw.trim());
  const slash = containerPart.indexOf('/');
  let port = slash < 0 ? containerPart : containerPart.slice(0, slash);
  let proto = slash < 0 ? '' : containerPart.slice(slash + 1);
  if (port === '') throw badSpec(`no port specified: ${raw}<empty>`, raw);
  proto = proto === '' ? 'tcp' : proto.toLowerCase();
  if (!PROTOS.includes(proto)) throw badSpec(`invalid proto: ${proto}`, raw);
  if (ip.startsWith('[')) {
    if (!ip.endsWith(']') || ip.length < 3) throw badSpec(`invalid IP address ${ip}: missing ']' in address`, raw);
    ip = ip.slice(1, -1);
  }
  if (ip !== '' && isIP(ip) === 0) throw badSpec(`invalid IP address: ${ip}`, raw);
  const cr = parsePortRange(port);
  if (!cr || cr[0] === 0) throw badSpec(`invalid containerPort: ${port}`, raw);
  let hr: [number, number] | undefined;
  if (hostPort !== '') {
    hr = parsePortRange(hostPort);
    if (!hr) throw badSpec(`invalid hostPort: ${hostPort}`, raw);
    if (cr[1] - cr[0] !== hr[1] - hr[0] && cr[1] !== cr[0]) {
      throw badSpec(`invalid ranges specified for container and host Ports: ${port} and ${hostPort}`, raw);
    }
  }
  const count = cr[1] - cr[0] + 1;
  const out: PortMapping[] = [];
  for (let i = 0; i < count; i++) {
    let hp = '';
    if (hr) {
      hp = String(hr[0] + i);
      if (count === 1 && hr[0] !== hr[1]) hp += `-${hr[1]}`;
      if (hp === '0') hp = ''; // -p 0:80 = any port, as Docker
    }
    out.push({ containerPort: cr[0] + i, proto: proto as PortProto, hostIP: ip, hostPort: hp });
  }
  return out;
}

export function parsePortSpecs(raws: readonly string[]): PortMapping[] {
  return raws.flatMap((r) => parsePortSpec(r));
}

/** An image's ExposedPorts key or an `--expose` value: "80", "80/udp", "8000-8002/tcp". */
export function parseExposedPort(raw: string): { start: number; end: number; proto: PortProto } {
  const slash = raw.indexOf('/');
  const port = slash < 0 ? raw : raw.slice(0, slash);
  const proto = (slash < 0 || raw.slice(slash + 1) === '' ? 'tcp' : raw.slice(slash + 1)).toLowerCase();
  if (!PROTOS.includes(proto)) throw badSpec(`invalid proto: ${proto}`, raw);
  const r = parsePortRange(port);
  if (!r || r[0] === 0) throw badSpec(`invalid range format for --expose specification: "${raw}", error: invalid port`, raw);
  return { start: r[0], end: r[1], proto: proto as PortProto };
}

/**
 * `-P`: every exposed port that has no explicit binding gets one to a random host port
 * on all interfaces. Returns the explicit mappings followed by the added ones.
 */
export function withPublishAll(explicit: readonly PortMapping[], exposed: readonly string[]): PortMapping[] {
  const out = [...explicit];
  const bound = new Set(explicit.map((m) => `${m.containerPort}/${m.proto}`));
  for (const e of exposed) {
    const { start, end, proto } = parseExposedPort(e);
    for (let p = start; p <= end; p++) {
      const key = `${p}/${proto}`;
      if (bound.has(key)) continue;
      bound.add(key);
      out.push({ containerPort: p, proto, hostIP: '', hostPort: '' });
    }
  }
  return out;
}

const isWildcard = (ip: string) => ip === '' || ip === '0.0.0.0' || ip === '::';

/** `0.0.0.0:8080`, `[::1]:8080` */
export function hostAddr(ip: string, port: number | string): string {
  const h = ip === '' ? '0.0.0.0' : ip;
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

/** `docker port` lines (`80/tcp -> 0.0.0.0:8080`), natural-sorted; with a filter (`80`, `80/udp`) only its host addresses. */
export function formatPortLines(ports: readonly PublishedPort[], filter?: string): string[] {
  if (filter !== undefined) {
    const slash = filter.indexOf('/');
    const p = Number(slash < 0 ? filter : filter.slice(0, slash));
    const proto = slash < 0 ? 'tcp' : filter.slice(slash + 1).toLowerCase();
    const hits = ports.filter((x) => x.containerPort === p && x.proto === proto).map((x) => hostAddr(x.hostIP, x.hostPort));
    if (hits.length === 0) {
      throw invalidArgument('NO_SUCH_PORT', `No public port '${p}/${proto}' published for this container`, { where: filter });
    }
    return hits;
  }
  const lines = ports.map((x) => `${x.containerPort}/${x.proto} -> ${hostAddr(x.hostIP, x.hostPort)}`);
  const collator = new Intl.Collator('en', { numeric: true });
  return lines.sort(collator.compare);
}

/** inspect's `NetworkSettings.Ports` / `HostConfig.PortBindings` shape. */
export function dockerPortMap(ports: readonly PublishedPort[]): Record<string, { HostIp: string; HostPort: string }[]> {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of ports) {
    (out[`${p.containerPort}/${p.proto}`] ??= []).push({ HostIp: p.hostIP === '' ? '0.0.0.0' : p.hostIP, HostPort: String(p.hostPort) });
  }
  return out;
}

/** The CNI portmap capability argument for a set of published ports. */
export function toCniPortMappings(ports: readonly PublishedPort[]) {
  // portmap matches `-d hostIP` for any hostIP given; all-addresses must be passed as ''.
  return ports.map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.proto, hostIP: isWildcard(p.hostIP) ? '' : p.hostIP }));
}

// ---------------------------------------------------------------------------------------
// Allocation

/** A host port already held: by one of our containers (`owner`) or by someone else's CNI rule. */
export interface HeldPort {
  proto: PortProto;
  hostIP: string;
  hostPort: number;
  owner: string;
}

function overlaps(a: { proto: string; hostIP: string; hostPort: number }, b: { proto: string; hostIP: string; hostPort: number }) {
  return a.proto === b.proto && a.hostPort === b.hostPort && (isWildcard(a.hostIP) || isWildcard(b.hostIP) || a.hostIP === b.hostIP);
}

export function portAllocatedError(hostIP: string, port: number | string, proto: string, holder?: string) {
  return conflict('PORT_ALLOCATED', `Bind for ${hostAddr(hostIP, port)} failed: port is already allocated`, {
    where: `${hostAddr(hostIP, port)}/${proto}`,
    hint: holder
      ? `${holder} holds it; publish on another host port (or omit the host port to get a free one), or stop what holds it`
      : 'publish on another host port, or stop what holds it',
  });
}

/** Result of trying to bind a host port: free, in use, or the address is not this host's. */
export type ProbeResult = 'free' | 'in-use' | 'no-address';

/** Binds (and at once releases) ip:port to find out whether it is free. sctp cannot be probed from Node: reported free. */
export async function probePort(proto: PortProto, hostIP: string, port: number): Promise<ProbeResult> {
  const ip = hostIP === '' ? '0.0.0.0' : hostIP;
  const classify = (e: unknown): ProbeResult => {
    const c = errnoCode(e);
    if (c === 'EADDRINUSE' || c === 'EACCES') return 'in-use';
    if (c === 'EADDRNOTAVAIL') return 'no-address';
    throw e;
  };
  if (proto === 'tcp') {
    return new Promise<ProbeResult>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', (e) => {
        try {
          resolve(classify(e));
        } catch (x) {
          reject(x);
        }
      });
      srv.listen({ host: ip, port, exclusive: true, ipv6Only: ip.includes(':') }, () => srv.close(() => resolve('free')));
    });
  }
  if (proto === 'udp') {
    return new Promise<ProbeResult>((resolve, reject) => {
      const sock = createSocket({ type: ip.includes(':') ? 'udp6' : 'udp4', ipv6Only: ip.includes(':') });
      sock.once('error', (e) => {
        try {
          sock.close();
        } catch {
          /* not bound */
        }
        try {
          resolve(classify(e));
        } catch (x) {
          reject(x);
        }
      });
      sock.bind({ address: ip, port, exclusive: true }, () => sock.close(() => resolve('free')));
    });
  }
  return 'free';
}

/** The ephemeral range Docker allocates random host ports from. */
export async function ephemeralRange(): Promise<[number, number]> {
  try {
    const [a, b] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/).map(Number);
    if (a && b && a <= b) return [a, b];
  } catch {
    /* not Linux? */
  }
  return [32768, 60999];
}

/**
 * Decides the host port of every mapping. A fixed port held by one of ours or by a
 * listening process fails with Docker's "port is already allocated"; a range or an empty
 * host port takes the first free one (ranges in order; empty from the ephemeral range,
 * like Docker's allocator).
 */
export async function allocatePorts(
  wanted: readonly PortMapping[],
  held: readonly HeldPort[],
  opts: { signal?: AbortSignal } = {},
): Promise<PublishedPort[]> {
  const taken: HeldPort[] = [...held];
  const out: PublishedPort[] = [];
  let eph: [number, number] | undefined;
  for (const m of wanted) {
    throwIfAborted(opts.signal);
    if (m.hostIP.includes(':')) {
      throw unsupported('IPV6_HOST_IP', `cannot publish on IPv6 address ${m.hostIP}: the layerbox bridge network is IPv4-only`, {
        where: hostAddr(m.hostIP, m.hostPort || m.containerPort),
        hint: 'publish on an IPv4 address (e.g. 127.0.0.1:PORT:PORT) or on all addresses (PORT:PORT)',
      });
    }
    const fixed = m.hostPort !== '' && !m.hostPort.includes('-');
    let candidates: Iterable<number>;
    if (fixed) candidates = [Number(m.hostPort)];
    else if (m.hostPort !== '') {
      const [a, b] = parsePortRange(m.hostPort)!;
      candidates = range(a, b);
    } else {
      eph ??= await ephemeralRange();
      candidates = range(eph[0], eph[1]);
    }
    let chosen: number | undefined;
    for (const port of candidates) {
      const probe = { proto: m.proto, hostIP: m.hostIP, hostPort: port };
      const holder = taken.find((t) => overlaps(t, probe));
      if (holder) {
        if (fixed) throw portAllocatedError(m.hostIP, port, m.proto, holder.owner);
        continue;
      }
      const r = await probePort(m.proto, m.hostIP, port);
      if (r === 'no-address') {
        throw unavailable(
          'HOST_IP_UNAVAILABLE',
          `Error starting userland proxy: listen ${m.proto}4 ${hostAddr(m.hostIP, port)}: bind: cannot assign requested address`,
          { where: m.hostIP, hint: `${m.hostIP} is not an address of this host; publish on one of its addresses or on all (omit the IP)` },
        );
      }
      if (r === 'in-use') {
        if (fixed) throw portAllocatedError(m.hostIP, port, m.proto, 'a process on this host');
        continue;
      }
      chosen = port;
      break;
    }
    if (chosen === undefined) {
      throw conflict('PORT_ALLOCATED', `Bind for ${hostAddr(m.hostIP, m.hostPort || '*')} failed: all ports are allocated`, {
        where: `${hostAddr(m.hostIP, m.hostPort || '*')}/${m.proto}`,
        hint: 'free a port in that range or publish on another range',
      });
    }
    const p: PublishedPort = { containerPort: m.containerPort, proto: m.proto, hostIP: m.hostIP, hostPort: chosen };
    out.push(p);
    taken.push({ ...p, owner: 'another binding of this container' });
  }
  return out;
}

function* range(a: number, b: number): Generator<number> {
  for (let i = a; i <= b; i++) yield i;
}
