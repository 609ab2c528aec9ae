/** Network commands: network create, ls, inspect, rm, connect, disconnect, prune (the docker CLI's words, columns and exit codes). */
import { createInterface } from 'node:readline/promises';
import { isEngineError, storageError } from '../errors/index.js';
import { parseFilterArgs, type IPAMConfig, type Network, type NetworkCreateRequest } from '../engine/index.js';
import { command } from './command.js';
import { ExitError } from './ctx.js';
import { flag } from './flags.js';
import { formatRows, goTime, renderTemplate, table } from './format.js';

/** An engine error as the docker CLI prints a daemon's answer. */
function daemonError(err: unknown): unknown {
  const e = storageError(err) ?? err;
  return isEngineError(e) ? new ExitError(1, `Error response from daemon: ${e.describe()}`) : e;
}

/** inspect and rm: the docker CLI 20.10 words a 404 for the network itself. */
function lookupError(err: unknown, ref: string): unknown {
  const e = storageError(err) ?? err;
  if (isEngineError(e, 'not-found') && e.code === 'NETWORK_NOT_FOUND') return new ExitError(1, `Error: No such network: ${ref}`);
  return daemonError(e);
}

async function daemon<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw daemonError(e);
  }
}

function kv(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    out[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

// ------------------------------------------------------------------ IPv4 arithmetic (client-side checks, as the docker CLI makes them)

function ipNum(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) return undefined;
  return m.slice(1).reduce((a, x) => a * 256 + Number(x), 0);
}

function cidr(s: string): { base: number; prefix: number } | undefined {
  const [ip, p] = s.split('/');
  const n = ipNum(ip ?? '');
  const prefix = Number(p);
  if (n === undefined || p === undefined || !/^\d{1,2}$/.test(p) || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  return { base: n - (n % size), prefix };
}

const contains = (net: { base: number; prefix: number }, n: number) => n >= net.base && n < net.base + 2 ** (32 - net.prefix);

/** The docker CLI's consolidateIpam: each gateway, range and auxiliary address goes with the subnet that holds it. */
function consolidateIpam(subnets: string[], ranges: string[], gateways: string[], aux: Record<string, string>): IPAMConfig[] {
  if (subnets.length < ranges.length || subnets.length < gateways.length) throw new ExitError(1, 'every ip-range or gateway must have a corresponding subnet');
  const out: (IPAMConfig & { net?: { base: number; prefix: number } })[] = [];
  for (const s of subnets) {
    const c = cidr(s);
    if (!c) throw new ExitError(1, `invalid CIDR address: ${s}`);
    for (const o of out) {
      if (o.net && (contains(o.net, c.base) || contains(c, o.net.base))) throw new ExitError(1, 'multiple overlapping subnet configuration is not supported');
    }
    out.push({ Subnet: s, AuxiliaryAddresses: {}, net: c });
  }
  for (const r of ranges) {
    const rc = cidr(r);
    if (!rc) throw new ExitError(1, `invalid CIDR address: ${r}`);
    const o = out.find((x) => x.net && contains(x.net, rc.base));
    if (!o) throw new ExitError(1, `no matching subnet for range ${r}`);
    if (o.IPRange) throw new ExitError(1, `cannot configure multiple ranges (${r}, ${o.IPRange}) on the same subnet (${o.Subnet})`);
    o.IPRange = r;
  }
  for (const g of gateways) {
    const n = ipNum(g);
    const o = n === undefined ? undefined : out.find((x) => x.net && contains(x.net, n));
    if (!o) throw new ExitError(1, `no matching subnet for gateway ${g}`);
    if (o.Gateway) throw new ExitError(1, `cannot configure multiple gateways (${g}, ${o.Gateway}) for the same subnet (${o.Subnet})`);
    o.Gateway = g;
  }
  for (const [k, v] of Object.entries(aux)) {
    const n = ipNum(v);
    const o = n === undefined ? undefined : out.find((x) => x.net && contains(x.net, n));
    if (!o) throw new ExitError(1, `no matching subnet for aux-address ${v}`);
    o.AuxiliaryAddresses![k] = v;
  }
  return out.map(({ net: _net, ...c }) => c);
}

// ------------------------------------------------------------------ commands

const create = command({
  name: 'create',
  usage: '[OPTIONS] NETWORK',
  short: 'Create a network',
  flags: {
    attachable: flag.bool('attachable', '', 'Enable manual container attachment'),
    auxAddress: flag.list('aux-address', '', 'Auxiliary IPv4 or IPv6 addresses used by Network driver', { typeName: 'map', defaultText: 'map[]' }),
    configFrom: flag.string('config-from', '', 'The network from which to copy the configuration'),
    configOnly: flag.bool('config-only', '', 'Create a configuration only network'),
    driver: flag.string('driver', 'd', 'Driver to manage the Network', { default: 'bridge' }),
    gateway: flag.list('gateway', '', 'IPv4 or IPv6 Gateway for the master subnet', { typeName: 'strings' }),
    ingress: flag.bool('ingress', '', 'Create swarm routing-mesh network'),
    internal: flag.bool('internal', '', 'Restrict external access to the network'),
    ipRange: flag.list('ip-range', '', 'Allocate container ip from a sub-range', { typeName: 'strings' }),
    ipamDriver: flag.string('ipam-driver', '', 'IP Address Management Driver', { default: 'default' }),
    ipamOpt: flag.list('ipam-opt', '', 'Set IPAM driver specific options', { typeName: 'map', defaultText: 'map[]' }),
    ipv6: flag.bool('ipv6', '', 'Enable IPv6 networking'),
    label: flag.list('label', '', 'Set metadata on a network'),
    opt: flag.list('opt', 'o', 'Set driver specific options', { typeName: 'map', defaultText: 'map[]' }),
    scope: flag.string('scope', '', "Control the network's scope"),
    subnet: flag.list('subnet', '', 'Subnet in CIDR format that represents a network segment', { typeName: 'strings' }),
  },
  args: { min: 1, max: 1 },
  async run(ctx, [name], o) {
    const engine = await ctx.engine();
    if (o.configOnly || o.configFrom) throw new ExitError(1, 'Error response from daemon: configuration-only networks belong to swarm mode, which layerbox does not have');
    const body: NetworkCreateRequest = {
      Name: name!,
      CheckDuplicate: true,
      Driver: o.driver ?? 'bridge',
      EnableIPv6: !!o.ipv6,
      IPAM: { Driver: o.ipamDriver ?? 'default', Config: consolidateIpam(o.subnet, o.ipRange, o.gateway, kv(o.auxAddress)), Options: kv(o.ipamOpt) },
      Internal: !!o.internal,
      Attachable: !!o.attachable,
      Ingress: !!o.ingress,
      Options: kv(o.opt),
      Labels: kv(o.label),
    };
    const r = await daemon(() => engine.networks.create(body));
    ctx.out.write(r.Id + '\n');
  },
});

/** Go's time.Time String() of an RFC 3339 time with nanoseconds: "2024-01-01 00:00:00.295030985 +0000 UTC" (trailing zeros dropped). */
function goTimeNano(iso: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(iso);
  if (!m) return goTime(iso);
  const frac = (m[3] ?? '').replace(/0+$/, '');
  return `${m[1]} ${m[2]}${frac ? '.' + frac : ''} +0000 UTC`;
}

/** sortorder.NaturalLess: digit runs compare as numbers. */
function naturalLess(a: string, b: string): number {
  const re = /(\d+)|(\D+)/g;
  const pa = a.match(re) ?? [];
  const pb = b.match(re) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    if (/^\d/.test(x) && /^\d/.test(y)) return Number(x) - Number(y) || x.length - y.length;
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

const ls = command({
  name: 'ls',
  aliases: ['list'],
  usage: '[OPTIONS]',
  short: 'List networks',
  flags: {
    filter: flag.list('filter', 'f', "Provide filter values (e.g. 'driver=bridge')", { typeName: 'filter' }),
    format: flag.string('format', '', 'Pretty-print networks using a Go template'),
    noTrunc: flag.bool('no-trunc', '', 'Do not truncate the output'),
    quiet: flag.bool('quiet', 'q', 'Only display network IDs'),
  },
  args: { max: 0 },
  async run(ctx, _a, o) {
    const engine = await ctx.engine();
    const nets = (await daemon(() => engine.networks.list({ filters: parseFilterArgs(o.filter) }))).sort((a, b) => naturalLess(a.Name, b.Name));
    const id = (n: Network) => (o.noTrunc ? n.Id : n.Id.slice(0, 12));
    if (o.quiet) {
      for (const n of nets) ctx.out.write(id(n) + '\n');
      return;
    }
    const rows = nets.map((n) => ({
      CreatedAt: goTimeNano(n.Created),
      Driver: n.Driver,
      ID: id(n),
      IPv6: String(n.EnableIPv6),
      Internal: String(n.Internal),
      Labels: Object.entries(n.Labels).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(','),
      Name: n.Name,
      Scope: n.Scope,
    }));
    if (o.format && /\{\{\s*\.Label\s+"([^"]*)"\s*\}\}/.test(o.format)) {
      // {{.Label "key"}}: one label's value
      const fmt = o.format;
      for (const [i, n] of nets.entries()) ctx.out.write(renderTemplate(fmt.replace(/\{\{\s*\.Label\s+"([^"]*)"\s*\}\}/g, (_m, k: string) => n.Labels[k] ?? ''), rows[i]!) + '\n');
      return;
    }
    const fmt = formatRows(o.format, rows, { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv6: 'IPV6', Internal: 'INTERNAL', Labels: 'LABELS', CreatedAt: 'CREATED' });
    if (fmt !== undefined) ctx.out.write(fmt);
    else ctx.out.write(table([['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], ...rows.map((r) => [r.ID, r.Name, r.Driver, r.Scope])]));
  },
});

const inspect = command({
  name: 'inspect',
  usage: '[OPTIONS] NETWORK [NETWORK...]',
  short: 'Display detailed information on one or more networks',
  flags: {
    format: flag.string('format', 'f', 'Format the output using the given Go template'),
    verbose: flag.bool('verbose', 'v', 'Verbose output for diagnostics'),
  },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    const found: Network[] = [];
    const errors: string[] = [];
    for (const n of names) {
      try {
        found.push(await engine.networks.inspect(n));
      } catch (e) {
        const err = lookupError(e, n);
        if (!(err instanceof ExitError)) throw err;
        errors.push(err.message);
      }
    }
    if (o.format) for (const r of found) ctx.out.write((o.format === 'json' ? JSON.stringify(r) : renderTemplate(o.format, r as unknown as Record<string, unknown>)) + '\n');
    else ctx.out.write(JSON.stringify(found, null, 4) + '\n');
    if (errors.length) throw new ExitError(1, errors.join('\n'));
  },
});

const rm = command({
  name: 'rm',
  aliases: ['remove'],
  usage: 'NETWORK [NETWORK...]',
  short: 'Remove one or more networks',
  args: { min: 1 },
  async run(ctx, names) {
    const engine = await ctx.engine();
    let failed = false;
    for (const n of names) {
      try {
        await engine.networks.remove(n);
        ctx.out.write(n + '\n');
      } catch (e) {
        const err = lookupError(e, n);
        if (!(err instanceof ExitError)) throw err;
        ctx.err.write(err.message + '\n');
        failed = true;
      }
    }
    if (failed) throw new ExitError(1);
  },
});

const connect = command({
  name: 'connect',
  usage: '[OPTIONS] NETWORK CONTAINER',
  short: 'Connect a container to a network',
  flags: {
    alias: flag.list('alias', '', 'Add network-scoped alias for the container', { typeName: 'strings' }),
    driverOpt: flag.list('driver-opt', '', 'driver options for the network', { typeName: 'strings' }),
    ip: flag.string('ip', '', 'IPv4 address (e.g., 172.30.100.104)'),
    ip6: flag.string('ip6', '', 'IPv6 address (e.g., 2001:db8::33)'),
    link: flag.list('link', '', 'Add link to another container'),
    linkLocalIp: flag.list('link-local-ip', '', 'Add a link-local address for the container', { typeName: 'strings' }),
  },
  args: { min: 2, max: 2 },
  async run(ctx, [network, container], o) {
    const engine = await ctx.engine();
    if (o.ip6) throw new ExitError(1, 'Error response from daemon: IPv6 addresses are not supported yet');
    if (o.link.length) throw new ExitError(1, 'Error response from daemon: --link is not supported: containers of a user-defined network reach each other by name');
    await daemon(() =>
      engine.networks.connect(network!, {
        Container: container!,
        EndpointConfig: { ...(o.alias.length ? { Aliases: o.alias } : {}), ...(o.ip ? { IPAMConfig: { IPv4Address: o.ip } } : {}) },
      }),
    );
  },
});

const disconnect = command({
  name: 'disconnect',
  usage: '[OPTIONS] NETWORK CONTAINER',
  short: 'Disconnect a container from a network',
  flags: { force: flag.bool('force', 'f', 'Force the container to disconnect from a network') },
  args: { min: 2, max: 2 },
  async run(ctx, [network, container], o) {
    const engine = await ctx.engine();
    await daemon(() => engine.networks.disconnect(network!, { Container: container!, Force: !!o.force }));
  },
});

const prune = command({
  name: 'prune',
  usage: '[OPTIONS]',
  short: 'Remove all unused networks',
  flags: {
    filter: flag.list('filter', '', "Provide filter values (e.g. 'until=<timestamp>')", { typeName: 'filter' }),
    force: flag.bool('force', 'f', 'Do not prompt for confirmation'),
  },
  args: { max: 0 },
  async run(ctx, _a, o) {
    const engine = await ctx.engine();
    if (!o.force) {
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      const a = await rl.question('WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ');
      rl.close();
      if (!/^y(es)?$/i.test(a.trim())) return;
    }
    const r = await daemon(() => engine.networks.prune({ filters: parseFilterArgs(o.filter) }));
    if (r.NetworksDeleted.length) ctx.out.write('Deleted Networks:\n' + r.NetworksDeleted.map((n) => n + '\n').join('') + '\n');
  },
});

export const networkGroup = command({ name: 'network', short: 'Manage networks', commands: [connect, create, disconnect, inspect, ls, prune, rm] });
