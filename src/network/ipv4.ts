/** Tiny IPv4 CIDR arithmetic for the bridge subnet. */
import { invalidArgument } from '../errors/index.js';

export interface Cidr4 {
  /** network address as an unsigned 32-bit number */
  base: number;
  prefix: number;
}

export function ipToInt(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return undefined;
  return ((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]!;
}

export const intToIp = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

const maskOf = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

export function parseCidr4(s: string): Cidr4 {
  const [ip, p] = s.split('/');
  const n = ipToInt(ip ?? '');
  const prefix = p === undefined ? 32 : Number(p);
  if (n === undefined || !/^\d{1,2}$/.test(p ?? '32') || prefix > 32) {
    throw invalidArgument('INVALID_SUBNET', `invalid IPv4 subnet "${s}"`, { where: s, hint: 'use CIDR notation, e.g. 10.77.0.0/16' });
  }
  return { base: (n & maskOf(prefix)) >>> 0, prefix };
}

export const formatCidr4 = (c: Cidr4) => `${intToIp(c.base)}/${c.prefix}`;

export function cidrContains(c: Cidr4, ip: string): boolean {
  const n = ipToInt(ip);
  return n !== undefined && ((n & maskOf(c.prefix)) >>> 0) === c.base;
}

export function cidrOverlaps(a: Cidr4, b: Cidr4): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & maskOf(p)) >>> 0) === ((b.base & maskOf(p)) >>> 0);
}

/** The first usable address (the gateway by convention). */
export const firstHost = (c: Cidr4) => intToIp(c.base + 1);
