/** Which hosts are loopback, which are listed as insecure, and so which may be spoken to in plain HTTP. */
import { isIP } from 'node:net';

/** The hostname part of `host[:port]` / `[v6]:port`, without brackets. */
export function hostnameOf(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const i = host.lastIndexOf(':');
  return i > 0 && host.indexOf(':') === i ? host.slice(0, i) : host;
}

export function isLoopbackHost(host: string): boolean {
  const h = hostnameOf(host).toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
}

function ipv6ToBigInt(ip: string): bigint {
  let [head, tail] = ip.includes('::') ? (ip.split('::') as [string, string]) : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].reduce((a, g) => (a << 16n) + BigInt(parseInt(g || '0', 16)), 0n);
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, bitsS] = cidr.split('/');
  const bits = Number(bitsS);
  if (!net || !Number.isInteger(bits)) return false;
  if (isIP(ip) === 4 && isIP(net) === 4 && bits >= 0 && bits <= 32) {
    if (bits === 0) return true;
    const mask = (0xffffffff << (32 - bits)) >>> 0;
    return (ipv4ToInt(ip) & mask) === (ipv4ToInt(net) & mask);
  }
  if (isIP(ip) === 6 && isIP(net) === 6 && bits >= 0 && bits <= 128) {
    const shift = BigInt(128 - bits);
    return ipv6ToBigInt(ip) >> shift === ipv6ToBigInt(net) >> shift;
  }
  return false;
}

/** Whether `host` is listed in `insecure` (exact `host[:port]`, or an IP literal inside a CIDR entry). */
export function isInsecureHost(host: string, insecure: readonly string[]): boolean {
  const h = host.toLowerCase();
  const name = hostnameOf(h);
  for (const raw of insecure) {
    const e = raw.trim().toLowerCase().replace(/^https?:\/\//, '').replace(/\/+$/, '');
    if (!e) continue;
    if (e.includes('/') && inCidr(name, e)) return true;
    if (e === h) return true;
  }
  return false;
}

/** Plain HTTP may be used for loopback hosts and for hosts listed as insecure. */
export function httpAllowed(host: string, insecure: readonly string[]): boolean {
  return isLoopbackHost(host) || isInsecureHost(host, insecure);
}
