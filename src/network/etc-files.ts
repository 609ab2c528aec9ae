/**
 * /etc/hosts, /etc/hostname and /etc/resolv.conf for a container, as Docker (libnetwork
 * etchosts/resolvconf) writes them. The container module bind-mounts the files.
 */
import { readFile, access, open } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { invalidArgument, errnoCode } from '../errors/index.js';
import { writeFileAtomic, mkdirp } from '../sys/fsutil.js';

export interface HostEntry {
  host: string;
  ip: string;
}

const DEFAULT_HOSTS: ReadonlyArray<[string, string]> = [
  ['127.0.0.1', 'localhost'],
  ['::1', 'localhost ip6-localhost ip6-loopback'],
  ['fe00::0', 'ip6-localnet'],
  ['ff00::0', 'ip6-mcastprefix'],
  ['ff02::1', 'ip6-allnodes'],
  ['ff02::2', 'ip6-allrouters'],
];

/**
 * Parses `--add-host name:ip` (Docker's opts.ValidateExtraHost). `host-gateway` stands for
 * the gateway address, substituted by buildHosts.
 */
export function parseExtraHost(val: string): HostEntry {
  const i = val.indexOf(':');
  if (i <= 0) throw invalidArgument('INVALID_ADD_HOST', `bad format for add-host: "${val}"`, { where: val, hint: 'use --add-host name:ip' });
  const host = val.slice(0, i);
  let ip = val.slice(i + 1);
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (ip !== 'host-gateway' && isIP(ip) === 0) {
    throw invalidArgument('INVALID_ADD_HOST', `invalid IP address in add-host: "${ip}"`, { where: val, hint: 'use --add-host name:ip' });
  }
  return { host, ip };
}

export interface HostsOptions {
  hostname: string;
  domainname?: string;
  /** the container's address; absent for --network none (no own line, as Docker) */
  ip?: string;
  extraHosts?: readonly HostEntry[];
  /** what `host-gateway` in extraHosts resolves to */
  gateway?: string;
}

/** Docker's hosts file: the localhost/ip6 lines, the --add-host lines, then `<ip>\t<hostname>`. */
export function buildHosts(o: HostsOptions): string {
  let s = DEFAULT_HOSTS.map(([ip, h]) => `${ip}\t${h}\n`).join('');
  s += extraLines(o.extraHosts, o.gateway);
  if (o.ip) s += ownHostsLine(o.hostname, o.domainname, o.ip);
  return s;
}

/** The container's own line: `<ip>\t<fqdn> <hostname>` (or `<ip>\t<hostname>`). */
export function ownHostsLine(hostname: string, domainname: string | undefined, ip: string): string {
  const fqdn = domainname ? `${hostname}.${domainname}` : hostname;
  const dot = fqdn.indexOf('.');
  return `${ip}\t${dot > 0 ? `${fqdn} ${fqdn.slice(0, dot)}` : fqdn}\n`;
}

function extraLines(extra: readonly HostEntry[] | undefined, gateway: string | undefined): string {
  let s = '';
  for (const e of extra ?? []) {
    const ip = e.ip === 'host-gateway' ? gateway : e.ip;
    if (!ip) {
      throw invalidArgument('HOST_GATEWAY_UNKNOWN', `cannot resolve host-gateway for add-host "${e.host}": this network has no gateway`, {
        where: e.host,
      });
    }
    s += `${ip}\t${e.host}\n`;
  }
  return s;
}

/** --network host: the host's /etc/hosts, plus the --add-host lines. */
export async function buildHostNetworkHosts(extra?: readonly HostEntry[], hostsPath = '/etc/hosts'): Promise<string> {
  let s = '';
  try {
    s = await readFile(hostsPath, 'utf8');
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
  const more = extraLines(extra, '127.0.0.1');
  if (more && s && !s.endsWith('\n')) s += '\n';
  return s + more;
}

export const buildHostname = (h: string) => `${h}\n`;

/** A container on a network the hosts file's owner shares: its address and the names it answers to. */
export interface PeerEntry {
  ip: string;
  /** container name, network-scoped aliases, short ID: the names Docker's embedded DNS answers for it */
  names: string[];
}

/** The lines that make a network's containers reachable by name, after the file's own lines. */
export function peerLines(peers: readonly PeerEntry[]): string {
  let s = '';
  for (const p of peers) {
    const names = [...new Set(p.names.filter((n) => n && !/\s/.test(n)))];
    if (names.length) s += `${p.ip}\t${names.join(' ')}\n`;
  }
  return s;
}

/**
 * Rewrites a file in place — the same inode, which a running container has bind-mounted (a
 * rename would leave it with the old file) — when its content differs. The new bytes go in
 * with one write at offset 0, then the file is cut to their length: a reader never sees it
 * empty. Returns false when the file does not exist (its container was removed meanwhile).
 */
export async function writeInPlace(path: string, content: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'r+');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
  try {
    const want = Buffer.from(content);
    const cur = await fh.readFile();
    if (cur.equals(want)) return true;
    await fh.write(want, 0, want.length, 0);
    await fh.truncate(want.length);
    return true;
  } finally {
    await fh.close();
  }
}

export function hostHostname(): string {
  return osHostname();
}

// ---------------------------------------------------------------------------------------
// resolv.conf

const SYSTEMD_RESOLVED = '/run/systemd/resolve/resolv.conf';

export function nameservers(conf: string): string[] {
  const out: string[] = [];
  for (const line of conf.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}

/**
 * The resolv.conf to start from (Docker's resolvconf.Path): /etc/resolv.conf, unless its
 * only nameserver is systemd-resolved's stub 127.0.0.53, then systemd-resolved's upstream file.
 */
export async function hostResolvConfPath(etc = '/etc/resolv.conf', alternate = SYSTEMD_RESOLVED): Promise<string> {
  try {
    const ns = nameservers(await readFile(etc, 'utf8'));
    if (ns.length === 1 && ns[0] === '127.0.0.53') {
      await access(alternate);
      return alternate;
    }
  } catch {
    /* fall through */
  }
  return etc;
}

const isLocalhostNs = (ip: string) => /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip) || ip === '::1';

/**
 * Docker's FilterResolvDNS: drops localhost nameservers (and IPv6 ones unless IPv6 is
 * enabled); when no nameserver is left, adds Google's 8.8.8.8 and 8.8.4.4.
 */
export function filterResolvConf(conf: string, ipv6 = false): string {
  const kept = conf.split('\n').filter((line) => {
    const m = /^\s*nameserver\s+(\S+)\s*$/.exec(line);
    if (!m) return true;
    const ip = m[1]!.replace(/%.*$/, '');
    if (isLocalhostNs(ip)) return false;
    if (!ipv6 && isIP(ip) === 6) return false;
    return true;
  });
  let s = kept.join('\n');
  if (nameservers(s).length === 0) {
    if (s !== '' && !s.endsWith('\n')) s += '\n';
    s += 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n';
    if (ipv6) s += 'nameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n';
  }
  if (s !== '' && !s.endsWith('\n')) s += '\n';
  return s;
}

function lineValues(conf: string, key: 'search' | 'options'): string[] {
  let vals: string[] = [];
  for (const line of conf.split('\n')) {
    const m = new RegExp(`^\\s*${key}\\s+(.*)$`).exec(line);
    // for search the last line wins (resolver semantics); options accumulate
    if (m) vals = key === 'search' ? m[1]!.trim().split(/\s+/) : [...vals, ...m[1]!.trim().split(/\s+/)];
  }
  return vals;
}

export interface ResolvOptions {
  /** host network: the host's file as is (Docker copies it unfiltered) */
  hostNetwork?: boolean;
  dns?: readonly string[];
  dnsSearch?: readonly string[];
  dnsOptions?: readonly string[];
  /** override for tests */
  hostPath?: string;
}

/**
 * The container's resolv.conf. With --dns/--dns-search/--dns-option a new file is built
 * (what is not given comes from the host's filtered file), as Docker's resolvconf.Build.
 */
export async function buildResolvConf(o: ResolvOptions = {}): Promise<string> {
  const path = o.hostPath ?? (await hostResolvConfPath());
  let host = '';
  try {
    host = await readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
  for (const d of o.dns ?? []) {
    if (isIP(d) === 0) throw invalidArgument('INVALID_DNS', `${d} is not an ip address`, { where: d, hint: 'use --dns with an IP address' });
  }
  const custom = (o.dns?.length ?? 0) + (o.dnsSearch?.length ?? 0) + (o.dnsOptions?.length ?? 0) > 0;
  if (!custom) return o.hostNetwork ? host : filterResolvConf(host);
  const base = o.hostNetwork ? host : filterResolvConf(host);
  const dns = o.dns?.length ? o.dns : nameservers(base);
  const search = o.dnsSearch?.length ? o.dnsSearch : lineValues(host, 'search');
  const options = o.dnsOptions?.length ? o.dnsOptions : lineValues(host, 'options');
  let s = '';
  const searchLine = search.join(' ');
  if (search.length > 0 && searchLine.trim() !== '.') s += `search ${searchLine}\n`;
  for (const d of dns) s += `nameserver ${d}\n`;
  const optLine = options.join(' ');
  if (optLine.trim() !== '') s += `options ${optLine}\n`;
  return s;
}

export interface EtcFiles {
  hosts: string;
  hostname: string;
  resolvConf: string;
}

/** Writes the three files into `dir` (e.g. containers/<id>/) and returns their paths. */
export async function writeEtcFiles(dir: string, content: EtcFiles): Promise<EtcFiles> {
  await mkdirp(dir);
  const paths: EtcFiles = { hosts: join(dir, 'hosts'), hostname: join(dir, 'hostname'), resolvConf: join(dir, 'resolv.conf') };
  await Promise.all([
    writeFileAtomic(paths.hosts, content.hosts),
    writeFileAtomic(paths.hostname, content.hostname),
    writeFileAtomic(paths.resolvConf, content.resolvConf),
  ]);
  return paths;
}
