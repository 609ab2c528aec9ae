/**
 * Reading and cleaning up the iptables state the CNI plugins leave: a safety net after
 * CNI DEL (the bridge plugin skips its masquerade rules when the netns is already gone),
 * the host ports other CNI users hold (podman, other layerbox stores), and pruning the
 * chains the plugins share once nothing uses them.
 */
import { createHash } from 'node:crypto';
import { run } from '../sys/exec.js';

export type Table = 'nat' | 'filter' | 'raw';

/**
 * The CVE-2020-8558 guard, as arguments after `-A PREROUTING` in the raw table: packets for
 * 127.0.0.0/8 that arrive on any interface but lo are dropped before conntrack and NAT see them
 * (Docker's raw-PREROUTING rule for loopback-published ports, for the whole range).
 */
export const LOOPBACK_GUARD: readonly string[] = [
  '-d', '127.0.0.0/8', '!', '-i', 'lo',
  '-m', 'comment', '--comment', 'layerbox: drop loopback-bound packets from outside lo (CVE-2020-8558)',
  '-j', 'DROP',
];

export interface Rule {
  table: Table;
  chain: string;
  /** the arguments after `-A <chain>`, unquoted */
  args: string[];
  /** the line as iptables -S printed it */
  text: string;
}

/** Splits an `iptables -S` line into arguments (double quotes with backslash escapes). */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inTok = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '\\' && i + 1 < line.length) cur += line[++i];
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') {
      quoted = true;
      inTok = true;
    } else if (c === ' ' || c === '\t') {
      if (inTok) out.push(cur);
      cur = '';
      inTok = false;
    } else {
      cur += c;
      inTok = true;
    }
  }
  if (inTok) out.push(cur);
  return out;
}

async function iptables(args: string[], allowFailure = false) {
  return run('iptables', ['-w', ...args], { allowFailure, env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } });
}

export async function listRules(table: Table): Promise<{ chains: string[]; rules: Rule[] }> {
  const r = await iptables(['-t', table, '-S'], true);
  if (r.code !== 0) return { chains: [], rules: [] };
  const chains: string[] = [];
  const rules: Rule[] = [];
  for (const line of r.stdout.split('\n')) {
    const t = tokenize(line);
    if (t[0] === '-N' && t[1]) chains.push(t[1]);
    else if (t[0] === '-A' && t[1]) rules.push({ table, chain: t[1], args: t.slice(2), text: line });
  }
  return { chains, rules };
}

async function deleteRule(r: Rule): Promise<boolean> {
  return (await iptables(['-t', r.table, '-D', r.chain, ...r.args], true)).code === 0;
}

async function deleteChain(table: Table, chain: string): Promise<boolean> {
  await iptables(['-t', table, '-F', chain], true);
  return (await iptables(['-t', table, '-X', chain], true)).code === 0;
}

/** libcni utils.FormatChainName: CNI- + sha512(name+id), cut to 28 characters (with a prefix, e.g. "DN-"). */
export function cniChainName(network: string, containerId: string, prefix = ''): string {
  const h = createHash('sha512').update(network + containerId).digest('hex');
  return `CNI-${prefix}${h.slice(0, 28 - 4 - prefix.length)}`;
}

const argValue = (args: string[], flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};

/**
 * Removes every rule and chain the bridge, portmap and firewall plugins made for one
 * container: rules commented with its network name and id, jumps to its CNI-<hash> and
 * CNI-DN-<hash> chains, the chains themselves, and CNI-FORWARD rules for its addresses.
 * Returns the rules removed (empty after a complete CNI DEL).
 */
export async function sweepContainerRules(network: string, containerId: string, ips: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  const own = new Set([cniChainName(network, containerId), cniChainName(network, containerId, 'DN-')]);
  const tag = `name: "${network}" id: "${containerId}"`;
  const hostIps = new Set(ips.map((ip) => `${ip.split('/')[0]}/32`));
  for (const table of ['nat', 'filter'] as const) {
    const { chains, rules } = await listRules(table);
    for (const r of rules) {
      const comment = argValue(r.args, '--comment') ?? '';
      const jump = argValue(r.args, '-j');
      const mine =
        comment.endsWith(tag) ||
        (jump !== undefined && own.has(jump)) ||
        (table === 'filter' && r.chain === 'CNI-FORWARD' && [argValue(r.args, '-s'), argValue(r.args, '-d')].some((a) => a && hostIps.has(a)));
      if (mine && !own.has(r.chain) && (await deleteRule(r))) removed.push(`-t ${table} ${r.text}`);
    }
    for (const c of chains) if (own.has(c) && (await deleteChain(table, c))) removed.push(`-t ${table} -X ${c}`);
  }
  return removed;
}

/** Host ports held by CNI portmap rules (any CNI user on this host), with who holds them. */
export async function cniHostPorts(): Promise<{ proto: string; hostPort: number; owner: string }[]> {
  const { rules } = await listRules('nat');
  const out: { proto: string; hostPort: number; owner: string }[] = [];
  for (const r of rules) {
    if (r.chain !== 'CNI-HOSTPORT-DNAT') continue;
    const proto = argValue(r.args, '-p');
    const ports = argValue(r.args, '--dports') ?? argValue(r.args, '--dport');
    if (!proto || !ports) continue;
    const comment = argValue(r.args, '--comment') ?? '';
    const m = /name: "([^"]*)" id: "([^"]*)"/.exec(comment);
    const owner = m ? `container ${m[2]!.slice(0, 12)} (CNI network ${m[1]})` : 'a CNI port mapping';
    for (const part of ports.split(',')) {
      const [a, b] = part.split(':').map(Number);
      for (let p = a!; p <= (b ?? a!); p++) out.push({ proto, hostPort: p, owner });
    }
  }
  return out;
}

/**
 * Removes the chains the plugins share (CNI-HOSTPORT-*, CNI-FORWARD, CNI-ADMIN) and their
 * jumps, but only when they hold nothing but their own fixed rules: another CNI user's
 * rules are never touched.
 */
export async function pruneSharedChains(): Promise<void> {
  const nat = await listRules('nat');
  const natRules = (c: string) => nat.rules.filter((r) => r.chain === c);
  const dnatEmpty = natRules('CNI-HOSTPORT-DNAT').length === 0;
  const masqOnlyMark = natRules('CNI-HOSTPORT-MASQ').every((r) => r.args.includes('--mark'));
  const setmarkOnlyMark = natRules('CNI-HOSTPORT-SETMARK').every((r) => r.args.includes('MARK'));
  if (dnatEmpty && masqOnlyMark && setmarkOnlyMark && nat.chains.includes('CNI-HOSTPORT-DNAT')) {
    for (const r of nat.rules) {
      const j = argValue(r.args, '-j');
      if (j === 'CNI-HOSTPORT-DNAT' || j === 'CNI-HOSTPORT-MASQ' || j === 'CNI-HOSTPORT-SETMARK') await deleteRule(r);
    }
    for (const c of ['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-MASQ', 'CNI-HOSTPORT-SETMARK']) if (nat.chains.includes(c)) await deleteChain('nat', c);
  }
  const filter = await listRules('filter');
  const fwd = filter.rules.filter((r) => r.chain === 'CNI-FORWARD');
  const admin = filter.rules.filter((r) => r.chain === 'CNI-ADMIN');
  if (filter.chains.includes('CNI-FORWARD') && admin.length === 0 && fwd.every((r) => argValue(r.args, '-j') === 'CNI-ADMIN')) {
    for (const r of filter.rules) if (argValue(r.args, '-j') === 'CNI-FORWARD' || (r.chain === 'CNI-FORWARD')) await deleteRule(r);
    await deleteChain('filter', 'CNI-FORWARD');
    if (filter.chains.includes('CNI-ADMIN')) await deleteChain('filter', 'CNI-ADMIN');
  }
}
