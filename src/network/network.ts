/**
 * Docker-like container networking: `--network bridge|host|none|NAME`, user-defined bridge
 * networks (create, connect, disconnect, remove), `-p`/`-P`, name resolution between the
 * containers of a user-defined network, and the container's /etc/hosts, /etc/hostname,
 * /etc/resolv.conf.
 *
 * A store's state lives under `<root>/network/` (all of it needed for teardown, also after a reboot):
 *   lock                    serializes setup/teardown of this store's containers across processes
 *   networks/<id>.json      the user-defined networks (records.ts)
 *   attachments/<id>.json   what setup did (mode, netns, endpoints with their addresses, published ports)
 *   netns/<id>              the container's network namespace (bind mount)
 *   cni/results/<net>-<id>-<if>   the cached CNI ADD result of one endpoint (libcni format;
 *                           keyed by the container id, which no other store has: it stays per store)
 *
 * What every store on the host shares lives under the host state dir (`/run/layerbox/network`):
 *   lock                    serializes bridge work across stores (taken after a store's lock)
 *   ipam/<bridge>/<net>/    host-local leases: one allocator per bridge, whichever store asks,
 *                           so two stores on one bridge never get the same address
 *   ipam/<bridge>/boot-id   the boot the leases belong to; under another boot every container
 *                           that held one is gone, and so are the leases
 *   rules/<bridge>          the boot for which the bridge's host rules are installed
 *
 * Every bridge network — the default one (`bridge`: layerbox0, 10.77.0.0/16) and each
 * user-defined one (`br-<id>`, its own subnet) — is one CNI configuration list: the bridge
 * plugin with host-local IPAM, plus portmap and firewall for an endpoint that publishes ports.
 * A container has one endpoint per network it is connected to (eth0, eth1, …), in one netns.
 * Bridges are isolated from each other (isolation.ts), as Docker isolates its networks.
 *
 * Name resolution (user-defined networks only; Docker's default bridge has none either):
 * layerbox has no daemon, so no process could answer DNS for the containers (Docker's
 * embedded server at 127.0.0.11). Instead every attached container's /etc/hosts — a file of
 * the store that the runtime bind-mounts — is kept up to date in place by whichever process
 * changes a network's membership (a start, stop, connect, disconnect, rm, rename, from the
 * CLI or the API server alike, under the store's network lock): it lists the address of every
 * running container of each of its user-defined networks with its name, its network-scoped
 * aliases (compose's service names) and its short ID. glibc and musl read /etc/hosts on every
 * lookup, so a change is seen at once; there is nothing to run, crash or secure.
 *
 * Call setup() before the OCI runtime creates the container (the runtime joins the
 * namespace at attachment.netnsPath) and teardown() once its process has exited.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EngineError, conflict, internal, invalidArgument, notFound, unavailable, unsupported, errnoCode, throwIfAborted, isEngineError } from '../errors/index.js';
import { acquireLock, type Lock } from '../sys/lock.js';
import { writeFileAtomic, mkdirp } from '../sys/fsutil.js';
import { bootId } from '../sys/proc.js';
import { run } from '../sys/exec.js';
import { createNetns, removeNetns, isNetns } from './netns.js';
import { trace } from '../sys/trace.js';
import {
  addNetworkList,
  delNetworkList,
  checkNetworkList,
  loopbackUp,
  readCache,
  removeCache,
  cachePath,
  validContainerId,
  DEFAULT_PLUGIN_DIRS,
  type CniConfList,
  type CniResult,
  type CniCacheEntry,
} from './cni.js';
import {
  parsePortSpec,
  withPublishAll,
  allocatePorts,
  toCniPortMappings,
  formatPortLines,
  type PortMapping,
  type PublishedPort,
  type HeldPort,
  type PortProto,
} from './ports.js';
import {
  buildHosts,
  buildHostNetworkHosts,
  buildHostname,
  buildResolvConf,
  hostHostname,
  parseExtraHost,
  ownHostsLine,
  peerLines,
  writeEtcFiles,
  writeInPlace,
  type EtcFiles,
  type PeerEntry,
} from './etc-files.js';
import { sweepContainerRules, cniHostPorts, pruneSharedChains, LOOPBACK_GUARD } from './iptables.js';
import { ensureIsolation, keepIsolationFirst, removeIsolation } from './isolation.js';
import { parseCidr4, firstHost, cidrContains, cidrOverlaps, formatCidr4, ipToInt, intToIp, type Cidr4 } from './ipv4.js';
import { NetworkRecords, allocateSubnet, type IpamConfig, type NetworkRecord } from './records.js';

export type { NetworkRecord, IpamConfig } from './records.js';

export type NetworkMode = 'bridge' | 'host' | 'none';

/** `--network` value → mode, with Docker's errors for what we do not have (the built-in networks only). */
export function parseNetworkMode(v: string | undefined): NetworkMode {
  if (v === undefined || v === '' || v === 'bridge' || v === 'default') return 'bridge';
  if (v === 'host' || v === 'none') return v;
  if (v.startsWith('container:')) {
    throw unsupported('NETWORK_MODE_UNSUPPORTED', `network mode "${v}" is not supported`, {
      where: v,
      hint: 'use --network bridge, host or none',
    });
  }
  throw notFound('NETWORK_NOT_FOUND', `network ${v} not found`, { where: v, hint: 'use --network bridge, host or none' });
}

export interface BridgeNetworkConfig {
  /** CNI network name (also the host-local data subdirectory); default "layerbox" */
  name: string;
  /** Linux bridge device; default "layerbox0" */
  bridge: string;
  /** IPv4 subnet; default 10.77.0.0/16 (clear of podman's 10.88/16 and 10.89.x/24, Docker's 172.17-31, k8s' 10.96/12) */
  subnet: string;
  /** default: first address of the subnet */
  gateway?: string;
  /** default: the MTU of the host's default-route interface (1500 when there is none) */
  mtu?: number;
}

export const DEFAULT_BRIDGE_NETWORK: BridgeNetworkConfig = { name: 'layerbox', bridge: 'layerbox0', subnet: '10.77.0.0/16' };

/** A bridge network as setup works with it: the default one or a user-defined one. */
export interface BridgeNet {
  /** Docker's network ID */
  id: string;
  /** Docker's network name ("bridge" for the default one) */
  name: string;
  /** the CNI network name: lease directory, cache key, iptables comments */
  cniName: string;
  bridge: string;
  subnet: string;
  gateway: string;
  /** host-local's range within the subnet (IPAM IPRange) */
  rangeStart?: string;
  rangeEnd?: string;
  mtu?: number;
  /** no way out of the network (no masquerade, no default route, isolated from the host's other interfaces) */
  internal: boolean;
  masquerade: boolean;
  /** the containers of the network resolve each other's names (user-defined networks) */
  dns: boolean;
  /** the subnet was configured: a container may ask for its address */
  configuredSubnet: boolean;
  builtin: boolean;
}

export interface NetworkManagerOptions {
  /** the store root; state goes to <root>/network */
  root: string;
  /** state shared by every store on the host (leases per bridge, the bridge-wide lock); default /run/layerbox/network */
  hostStateDir?: string;
  network?: Partial<BridgeNetworkConfig>;
  pluginDirs?: string[];
}

/** One network a container joins: what `--network`, `--network-alias`, `--ip` or a connect ask for. */
export interface EndpointRequest {
  /** a network's name or ID ("bridge", "default" or "": the default bridge) */
  network: string;
  aliases?: readonly string[];
  ipv4Address?: string;
}

export interface SetupRequest {
  containerId: string;
  /** the container's name: what its peers on user-defined networks call it */
  containerName?: string;
  /** default bridge */
  mode?: NetworkMode;
  /** bridge mode: the networks to join, the first one as eth0 (default: the default bridge) */
  networks?: readonly EndpointRequest[];
  /** `-p` values (or already parsed mappings) */
  publish?: readonly (string | PortMapping)[];
  /** `-P` */
  publishAll?: boolean;
  /** the image's ExposedPorts keys plus `--expose` values ("80/tcp") */
  exposedPorts?: readonly string[];
  /** default: the first 12 characters of the id (host network: the host's name) */
  hostname?: string;
  domainname?: string;
  /** `--add-host name:ip` values (`host-gateway` = the bridge gateway) */
  extraHosts?: readonly string[];
  dns?: readonly string[];
  dnsSearch?: readonly string[];
  dnsOptions?: readonly string[];
  /** where to write hosts, hostname, resolv.conf (e.g. containers/<id>/); omitted: not written */
  etcDir?: string;
}

/**
 * Which CNI plugin list a bridge endpoint used (DEL must use the same):
 * `plain` — bridge + host-local only; NAT and forwarding come from two subnet-wide rules
 * installed once per boot (no per-container iptables work at all);
 * `ports` — plus portmap and firewall, for containers that publish ports;
 * `legacy` — attachments made before variants existed (per-container masquerade).
 */
export type ConfVariant = 'plain' | 'ports' | 'legacy';

/** What a container's runtime needs from its network before the interfaces exist. */
export interface EarlyNetwork {
  netnsPath?: string;
  etcFiles?: EtcFiles;
}

/** A container's interface on one bridge network. */
export interface Endpoint {
  /** Docker's network ID and name (the name at the time of attachment) */
  networkId: string;
  network: string;
  cniName: string;
  bridge: string;
  ifName: string;
  variant: ConfVariant;
  endpointId: string;
  /** network-scoped aliases (and the short ID on user-defined networks) */
  aliases: string[];
  /** the address asked for (IPAMConfig.IPv4Address) */
  requestedIp?: string;
  /** peers resolve this container's names */
  dns: boolean;
  ipAddress?: string;
  ipPrefixLen?: number;
  gateway?: string;
  macAddress?: string;
  hostVeth?: string;
}

export interface NetworkAttachment {
  containerId: string;
  containerName?: string;
  mode: NetworkMode;
  state: 'setting-up' | 'ready';
  /** the bridge endpoints, eth0 first; the fields below repeat the first one's */
  endpoints?: Endpoint[];
  variant?: ConfVariant;
  /** the namespace the runtime must join (bridge, none); absent for host */
  netnsPath?: string;
  networkName?: string;
  bridge?: string;
  ifName?: string;
  ipAddress?: string;
  ipPrefixLen?: number;
  gateway?: string;
  macAddress?: string;
  hostVeth?: string;
  ports: PublishedPort[];
  hostname: string;
  etcFiles?: EtcFiles;
  /** the hosts file's first lines (localhost, --add-host), before its own line and its peers' */
  hostsHead?: string;
  domainname?: string;
  warnings: string[];
  createdAt: string;
  bootId: string;
}

/** What `network inspect` lists under Containers: a running container's endpoint. */
export interface NetworkEndpointView {
  containerId: string;
  name: string;
  endpoint: Endpoint;
}

export interface CreateNetworkRequest {
  name: string;
  /** bridge (default) */
  driver?: string;
  internal?: boolean;
  attachable?: boolean;
  ingress?: boolean;
  enableIPv6?: boolean;
  ipam?: { Driver?: string; Options?: Record<string, string> | null; Config?: IpamConfig[] | null } | null;
  options?: Record<string, string> | null;
  labels?: Record<string, string> | null;
}

const IFNAME = 'eth0';

export const DEFAULT_HOST_STATE_DIR = '/run/layerbox/network';

/** Docker's bridge driver options that layerbox acts on. */
export const OPT_BRIDGE_NAME = 'com.docker.network.bridge.name';
export const OPT_MTU = 'com.docker.network.driver.mtu';
export const OPT_MASQUERADE = 'com.docker.network.bridge.enable_ip_masquerade';

/** host-local lease file names are addresses; everything else in its directory is its own bookkeeping */
const isLeaseName = (n: string) => /^[0-9a-f.:]+$/i.test(n);

const validBridgeName = (b: string) => /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(b);

/** The CNI network name of a user-defined network (its ID's first 12 characters: unique, and the same whatever its name). */
export const cniNameOf = (id: string) => `layerbox-${id.slice(0, 12)}`;

/** Docker's predefined networks, which cannot be created, removed or shadowed. */
export const PREDEFINED_NETWORKS = ['bridge', 'host', 'none'];

/** RFC 3339 with nanoseconds, as Docker writes Created (the digits below a millisecond random, or zero). */
const nanoTime = (ms: number, random = true) =>
  new Date(ms).toISOString().replace(/\.(\d{3})Z$/, (_, f: string) => `.${f}${random ? String(randomBytes(4).readUInt32BE(0) % 1e6).padStart(6, '0') : '000000'}Z`);

export class NetworkManager {
  readonly stateDir: string;
  readonly hostStateDir: string;
  readonly net: BridgeNetworkConfig;
  readonly pluginDirs: string[];
  readonly records: NetworkRecords;
  private readonly mtus = new Map<string, number>();

  constructor(opts: NetworkManagerOptions) {
    this.stateDir = join(opts.root, 'network');
    this.hostStateDir = opts.hostStateDir ?? DEFAULT_HOST_STATE_DIR;
    this.net = { ...DEFAULT_BRIDGE_NETWORK, ...opts.network };
    this.pluginDirs = opts.pluginDirs ?? DEFAULT_PLUGIN_DIRS;
    this.records = new NetworkRecords(join(this.stateDir, 'networks'));
    if (!validBridgeName(this.net.bridge)) {
      throw invalidArgument('INVALID_BRIDGE_NAME', `invalid bridge name "${this.net.bridge}"`, {
        where: this.net.bridge,
        hint: 'at most 15 characters: letters, digits, _ . -',
      });
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(this.net.name)) {
      throw invalidArgument('INVALID_NETWORK_NAME', `invalid network name "${this.net.name}"`, { where: this.net.name });
    }
    const c = parseCidr4(this.net.subnet);
    if (c.prefix > 30) throw invalidArgument('INVALID_SUBNET', `subnet ${this.net.subnet} is too small`, { where: this.net.subnet });
    this.net.subnet = formatCidr4(c);
    this.net.gateway ??= firstHost(c);
    if (!cidrContains(c, this.net.gateway)) {
      throw invalidArgument('INVALID_GATEWAY', `gateway ${this.net.gateway} is not in subnet ${this.net.subnet}`, { where: this.net.gateway });
    }
  }

  // ------------------------------------------------------------------ paths

  netnsPath(id: string): string {
    return join(this.stateDir, 'netns', id);
  }
  get cacheDir(): string {
    return join(this.stateDir, 'cni');
  }
  /** host-local's dataDir of the default bridge, shared by every store on it; leases are files under ipamDir/<network name>/ */
  get ipamDir(): string {
    return this.bridgeIpamDir(this.net.bridge);
  }
  bridgeIpamDir(bridge: string): string {
    return join(this.hostStateDir, 'ipam', bridge);
  }
  /** where this store kept its leases before they were shared per bridge */
  private get legacyIpamDir(): string {
    return join(this.stateDir, 'ipam');
  }
  private attachmentPath(id: string): string {
    return join(this.stateDir, 'attachments', `${id}.json`);
  }

  // ------------------------------------------------------------------ networks

  /** A stable ID for a predefined network of this store (Docker's are random per daemon, and kept). */
  builtinId(name: string): string {
    return createHash('sha256').update(`layerbox-network\0${this.stateDir}\0${name}`).digest('hex');
  }

  /** The default bridge network. */
  defaultNet(): BridgeNet {
    return {
      id: this.builtinId('bridge'),
      name: 'bridge',
      cniName: this.net.name,
      bridge: this.net.bridge,
      subnet: this.net.subnet,
      gateway: this.net.gateway!,
      ...(this.net.mtu ? { mtu: this.net.mtu } : {}),
      internal: false,
      masquerade: true,
      dns: false,
      configuredSubnet: false,
      builtin: true,
    };
  }

  /** The setup view of a user-defined network's record. */
  bridgeNetOf(r: NetworkRecord): BridgeNet {
    if (r.Name === 'bridge' && r.Id === this.builtinId('bridge')) return this.defaultNet();
    const cfg = r.IPAM.Config.find((c) => !c.Subnet.includes(':'));
    if (r.Driver !== 'bridge' || !cfg) throw invalidArgument('NOT_A_BRIDGE_NETWORK', `network ${r.Name} is not a bridge network`, { where: r.Name });
    const c = parseCidr4(cfg.Subnet);
    const out: BridgeNet = {
      id: r.Id,
      name: r.Name,
      cniName: cniNameOf(r.Id),
      bridge: r.bridge,
      subnet: formatCidr4(c),
      gateway: cfg.Gateway || firstHost(c),
      internal: r.Internal,
      masquerade: r.Options[OPT_MASQUERADE] !== 'false',
      dns: true,
      configuredSubnet: r.configuredSubnet,
      builtin: false,
    };
    const mtu = Number(r.Options[OPT_MTU]);
    if (mtu >= 576 && mtu <= 65535) out.mtu = mtu;
    if (cfg.IPRange) {
      const rc = parseCidr4(cfg.IPRange);
      const last = c.base + 2 ** (32 - c.prefix) - 2; // the subnet's broadcast address is never handed out
      out.rangeStart = intToIp(Math.max(rc.base, c.base + 1));
      out.rangeEnd = intToIp(Math.min(rc.base + 2 ** (32 - rc.prefix) - 1, last));
    }
    return out;
  }

  /** The predefined networks, in Docker's inspect shape. */
  builtinRecords(): NetworkRecord[] {
    const created = nanoTime(bootTimeMs() ?? 0, false);
    const base = (name: string, driver: string): NetworkRecord => ({
      Name: name,
      Id: this.builtinId(name),
      Created: created,
      Scope: 'local',
      Driver: driver,
      EnableIPv6: false,
      IPAM: { Driver: 'default', Options: null, Config: [] },
      Internal: false,
      Attachable: false,
      Ingress: false,
      Options: {},
      Labels: {},
      bridge: '',
      configuredSubnet: false,
    });
    const bridge = base('bridge', 'bridge');
    bridge.IPAM = { Driver: 'default', Options: null, Config: [{ Subnet: this.net.subnet, Gateway: this.net.gateway! }] };
    bridge.bridge = this.net.bridge;
    bridge.Options = {
      'com.docker.network.bridge.default_bridge': 'true',
      'com.docker.network.bridge.enable_icc': 'true',
      [OPT_MASQUERADE]: 'true',
      'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
      [OPT_BRIDGE_NAME]: this.net.bridge,
      [OPT_MTU]: String(this.net.mtu ?? this.mtus.get(this.net.bridge) ?? bridgeMtu(this.net.bridge) ?? 1500),
    };
    return [bridge, base('host', 'host'), base('none', 'null')];
  }

  /** Every network: the predefined ones, then the user-defined ones. */
  async networks(): Promise<NetworkRecord[]> {
    return [...this.builtinRecords(), ...(await this.records.list())];
  }

  /** Docker's lookup: a full ID, a name, then a unique ID prefix. `default` and '' are the default bridge. */
  async findNetwork(ref: string): Promise<NetworkRecord> {
    const all = await this.networks();
    const name = ref === '' || ref === 'default' ? 'bridge' : ref;
    const hit = all.find((n) => n.Id === name) ?? all.find((n) => n.Name === name);
    if (hit) return hit;
    if (/^[0-9a-f]+$/.test(ref)) {
      const m = all.filter((n) => n.Id.startsWith(ref));
      if (m.length === 1) return m[0]!;
      if (m.length > 1) throw invalidArgument('AMBIGUOUS_NETWORK', `network ${ref} is ambiguous (${m.length} matches found based on ID prefix)`, { where: ref });
    }
    throw notFound('NETWORK_NOT_FOUND', `network ${ref} not found`, { where: ref });
  }

  /**
   * Creates a user-defined bridge network: its record, then its bridge device with the
   * gateway address (so that its subnet is a host route that no other network — of any store —
   * is given), its masquerade and forwarding rules and its isolation from the other bridges.
   */
  async createNetwork(req: CreateNetworkRequest, opts: { signal?: AbortSignal } = {}): Promise<NetworkRecord> {
    const name = req.name;
    if (typeof name !== 'string' || name.trim() === '') throw invalidArgument('INVALID_NETWORK_NAME', 'network name cannot be empty');
    if (PREDEFINED_NETWORKS.includes(name)) throw new EngineError('forbidden', 'PREDEFINED_NETWORK', `operation is not permitted on predefined ${name} network`, { where: name });
    const driver = req.driver || 'bridge';
    if (driver === 'host' || driver === 'null') throw new EngineError('forbidden', 'PREDEFINED_NETWORK', `only one instance of "${driver}" network is allowed`, { where: driver });
    if (['macvlan', 'ipvlan', 'overlay'].includes(driver)) throw unsupported('UNSUPPORTED_DRIVER', `network driver ${driver} is not supported: layerbox has the bridge driver only`, { where: driver });
    if (driver !== 'bridge') throw notFound('NO_SUCH_DRIVER', `plugin "${driver}" not found`, { where: driver });
    if (req.ingress) throw unsupported('INGRESS_UNSUPPORTED', 'ingress networks belong to swarm mode, which layerbox does not have');
    if (req.enableIPv6) throw unsupported('IPV6_UNSUPPORTED', 'IPv6 networks are not supported yet', { hint: 'create the network without --ipv6' });
    const ipamDriver = req.ipam?.Driver || 'default';
    if (ipamDriver !== 'default') throw notFound('NO_SUCH_IPAM_DRIVER', `plugin "${ipamDriver}" not found`, { where: ipamDriver });
    const configs = (req.ipam?.Config ?? []).filter((c) => c && (c.Subnet || c.Gateway || c.IPRange));
    if (configs.some((c) => (c.Subnet ?? '').includes(':'))) throw unsupported('IPV6_UNSUPPORTED', 'IPv6 subnets are not supported yet');
    if (configs.length > 1) throw unsupported('ONE_SUBNET', 'a layerbox network has one IPv4 subnet', { hint: 'give one --subnet' });
    const options = { ...(req.options ?? {}) };
    const labels = { ...(req.labels ?? {}) };
    const wanted = configs[0];
    if (wanted && !wanted.Subnet) throw invalidArgument('INVALID_IPAM', 'every ip-range or gateway must have a corresponding subnet');
    let subnet: Cidr4 | undefined;
    let gateway: string | undefined;
    let ipRange: string | undefined;
    if (wanted) {
      subnet = parseCidr4(wanted.Subnet);
      if (subnet.prefix > 30) throw invalidArgument('INVALID_SUBNET', `subnet ${wanted.Subnet} is too small`, { where: wanted.Subnet });
      if (formatCidr4(subnet) !== wanted.Subnet) throw invalidArgument('INVALID_SUBNET', `invalid subnet ${wanted.Subnet} : it does not match the network address ${formatCidr4(subnet)}`, { where: wanted.Subnet });
      if (wanted.Gateway) {
        if (ipToInt(wanted.Gateway) === undefined || !cidrContains(subnet, wanted.Gateway)) throw invalidArgument('INVALID_GATEWAY', `no matching subnet for gateway ${wanted.Gateway}`, { where: wanted.Gateway });
        gateway = wanted.Gateway;
      }
      if (wanted.IPRange) {
        const r = parseCidr4(wanted.IPRange);
        if (r.prefix < subnet.prefix || !cidrOverlaps(r, subnet)) throw invalidArgument('INVALID_IP_RANGE', `no matching subnet for range ${wanted.IPRange}`, { where: wanted.IPRange });
        ipRange = formatCidr4(r);
      }
    }
    const id = randomBytes(32).toString('hex');
    const bridge = options[OPT_BRIDGE_NAME] || `br-${id.slice(0, 12)}`;
    if (!validBridgeName(bridge)) throw invalidArgument('INVALID_BRIDGE_NAME', `invalid bridge name "${bridge}"`, { where: bridge, hint: 'at most 15 characters: letters, digits, _ . -' });
    if (options[OPT_MTU] !== undefined && !(Number(options[OPT_MTU]) >= 576 && Number(options[OPT_MTU]) <= 65535)) {
      throw invalidArgument('INVALID_MTU', `invalid MTU ${JSON.stringify(options[OPT_MTU])}: between 576 and 65535`, { where: OPT_MTU });
    }
    const lock = await this.locks(opts.signal);
    let rec: NetworkRecord;
    try {
      const existing = await this.records.list();
      if (existing.some((n) => n.Name === name)) throw conflict('NETWORK_EXISTS', `network with name ${name} already exists`, { where: name });
      if (bridge === this.net.bridge || existing.some((n) => n.bridge === bridge) || (options[OPT_BRIDGE_NAME] && existsSync(`/sys/class/net/${bridge}`))) {
        throw conflict('BRIDGE_IN_USE', `bridge ${bridge} is in use by another network`, { where: bridge });
      }
      const others = [parseCidr4(this.net.subnet), ...existing.flatMap((n) => n.IPAM.Config.filter((c) => !c.Subnet.includes(':')).map((c) => parseCidr4(c.Subnet)))];
      const routes = await hostRoutes(opts.signal);
      if (subnet) {
        if (others.some((o) => cidrOverlaps(o, subnet!))) throw new EngineError('forbidden', 'POOL_OVERLAPS', 'Pool overlaps with other one on this address space');
        const r = routes.find((x) => cidrOverlaps(x.cidr, subnet!));
        if (r) throw new EngineError('forbidden', 'POOL_OVERLAPS', `Pool overlaps with other one on this address space: the host route ${r.dst} on ${r.dev}`);
      } else {
        const s = allocateSubnet([...others, ...routes.map((r) => r.cidr)]);
        if (!s) throw new EngineError('resource-exhausted', 'NO_FREE_POOL', 'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
        subnet = parseCidr4(s);
      }
      // Docker's field order
      const cfg: IpamConfig = { Subnet: formatCidr4(subnet), ...(ipRange ? { IPRange: ipRange } : {}), Gateway: gateway ?? firstHost(subnet) };
      if (wanted?.AuxiliaryAddresses && Object.keys(wanted.AuxiliaryAddresses).length) cfg.AuxiliaryAddresses = wanted.AuxiliaryAddresses;
      rec = {
        Name: name,
        Id: id,
        Created: nanoTime(Date.now()),
        Scope: 'local',
        Driver: 'bridge',
        EnableIPv6: false,
        IPAM: { Driver: 'default', Options: req.ipam?.Options ?? {}, Config: [cfg] },
        Internal: !!req.internal,
        Attachable: !!req.attachable,
        Ingress: false,
        Options: options,
        Labels: labels,
        bridge,
        configuredSubnet: !!wanted,
      };
      // the record first: a crash from here on leaves what removeNetwork needs
      await this.records.write(rec);
      try {
        const net = this.bridgeNetOf(rec);
        await this.ensureBridge(net, opts.signal);
        await this.ensureHostRules(net, opts.signal);
      } catch (e) {
        await this.removeBridge(this.bridgeNetOf(rec)).catch(() => {});
        await this.records.remove(id);
        throw e;
      }
    } finally {
      lock.release();
    }
    return rec;
  }

  /**
   * Removes a user-defined network: refused while a container is attached (Docker's active
   * endpoints); a stopped container that was connected keeps its configuration, and its next
   * start fails with `network … not found`, as Docker's.
   */
  async removeNetwork(ref: string, opts: { signal?: AbortSignal } = {}): Promise<NetworkRecord> {
    const lock = await this.locks(opts.signal);
    try {
      const r = await this.findNetwork(ref);
      if (PREDEFINED_NETWORKS.includes(r.Name) && r.Id === this.builtinId(r.Name)) {
        throw new EngineError('forbidden', 'PREDEFINED_NETWORK', `${r.Name} is a pre-defined network and cannot be removed`, { where: r.Name });
      }
      const net = this.bridgeNetOf(r);
      const users = await this.endpointsOn(r.Id);
      const leased = (await this.leasesOn(net.bridge)).length > 0;
      const ports = existsSync(`/sys/class/net/${net.bridge}`) ? (await run('ip', ['-o', 'link', 'show', 'master', net.bridge], { allowFailure: true })).stdout.trim() : '';
      if (users.length > 0 || leased || ports !== '') {
        throw new EngineError('forbidden', 'NETWORK_IN_USE', `error while removing network: network ${r.Name} id ${r.Id} has active endpoints`, { where: r.Name });
      }
      await this.removeBridge(net);
      await this.records.remove(r.Id);
      return r;
    } finally {
      lock.release();
    }
  }

  /** The running containers of this store attached to a network. */
  async endpointsOn(networkId: string): Promise<NetworkEndpointView[]> {
    const out: NetworkEndpointView[] = [];
    for (const a of await this.list()) {
      for (const ep of this.endpointsOf(a)) if (ep.networkId === networkId) out.push({ containerId: a.containerId, name: a.containerName ?? a.containerId.slice(0, 12), endpoint: ep });
    }
    return out;
  }

  /** The bridge endpoints of an attachment (a record of an earlier version has one, on the default bridge). */
  endpointsOf(a: NetworkAttachment): Endpoint[] {
    if (a.endpoints) return a.endpoints;
    if (a.mode !== 'bridge' || !a.networkName) return [];
    const def = a.networkName === this.net.name;
    return [
      {
        networkId: def ? this.builtinId('bridge') : '',
        network: def ? 'bridge' : a.networkName,
        cniName: a.networkName,
        bridge: a.bridge ?? this.net.bridge,
        ifName: a.ifName ?? IFNAME,
        variant: a.variant ?? 'legacy',
        endpointId: createHash('sha256').update(`${a.containerId}\0${a.networkName}`).digest('hex'),
        aliases: [],
        dns: false,
        ...(a.ipAddress ? { ipAddress: a.ipAddress } : {}),
        ...(a.ipPrefixLen !== undefined ? { ipPrefixLen: a.ipPrefixLen } : {}),
        ...(a.gateway ? { gateway: a.gateway } : {}),
        ...(a.macAddress ? { macAddress: a.macAddress } : {}),
        ...(a.hostVeth ? { hostVeth: a.hostVeth } : {}),
      },
    ];
  }

  // ------------------------------------------------------------------ CNI configuration

  /** The conflist of a bridge network (default: the default bridge): bridge + host-local, portmap, firewall. */
  async confList(variant: ConfVariant = 'ports', net: BridgeNet = this.defaultNet()): Promise<CniConfList> {
    // the bridge, once it exists, has the MTU it was made with: no `ip route` per container
    const mtu = net.mtu ?? (await this.mtuOf(net.bridge));
    const range: Record<string, string> = { subnet: net.subnet, gateway: net.gateway };
    if (net.rangeStart) range.rangeStart = net.rangeStart;
    if (net.rangeEnd) range.rangeEnd = net.rangeEnd;
    const list: CniConfList = {
      cniVersion: '1.0.0',
      name: net.cniName,
      plugins: [
        {
          type: 'bridge',
          bridge: net.bridge,
          isGateway: true,
          ipMasq: variant === 'legacy',
          hairpinMode: true,
          mtu,
          ipam: {
            type: 'host-local',
            dataDir: this.bridgeIpamDir(net.bridge),
            ranges: [[range]],
            // an internal network has no way out: no default route
            routes: net.internal ? [] : [{ dst: '0.0.0.0/0' }],
          },
        },
        { type: 'portmap', snat: true, capabilities: { portMappings: true } },
        { type: 'firewall', backend: 'iptables' },
      ],
    };
    if (variant === 'plain') list.plugins = list.plugins.slice(0, 1);
    return list;
  }

  private async mtuOf(bridge: string): Promise<number> {
    let m = this.mtus.get(bridge);
    if (m === undefined) {
      m = bridgeMtu(bridge) ?? (await defaultRouteMtu());
      this.mtus.set(bridge, m);
    }
    return m;
  }

  /** [table, rule] of a network's subnet-wide rules, as iptables arguments after -A/-C/-D. */
  private hostRules(net: BridgeNet): [string, string[]][] {
    const tag = ['-m', 'comment', '--comment', `layerbox ${net.cniName}`];
    const out: [string, string[]][] = [];
    if (net.masquerade && !net.internal) out.push(['nat', ['POSTROUTING', '-s', net.subnet, '!', '-o', net.bridge, ...tag, '-j', 'MASQUERADE']]);
    out.push(
      ['filter', ['FORWARD', '-i', net.bridge, ...tag, '-j', 'ACCEPT']],
      ['filter', ['FORWARD', '-o', net.bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', ...tag, '-j', 'ACCEPT']],
    );
    return out;
  }

  /**
   * The rules every bridge container relies on, installed once per boot and bridge (a marker
   * in the host state dir records it; the host lock is held, so two stores never both add them):
   * - the loopback guard (CVE-2020-8558, host-wide, first in raw PREROUTING): portmap's
   *   `snat` sets route_localnet on the bridge so that `-p 127.0.0.1:H:C` works from the host,
   *   which also lets a container (NET_RAW) address frames to the gateway with destination
   *   127.0.0.1 and reach the host's loopback services. The guard drops every packet for
   *   127.0.0.0/8 arriving on an interface other than lo, before conntrack and NAT. The host's
   *   own `127.0.0.1:H` traffic is unaffected: what the host sends never passes PREROUTING, and
   *   the container's replies arrive addressed to the gateway (portmap masqueraded the
   *   connection), turned back into 127.0.0.1 by conntrack only after the raw table.
   *   It is never removed, as kube-proxy leaves its KUBE-FIREWALL rule: route_localnet stays set
   *   on every bridge portmap touched (also other CNI users'), and the packets it drops are
   *   martians the kernel would drop itself without route_localnet. A reboot clears it.
   * - the subnet-wide rules that replace per-container NAT and forwarding work (what
   *   Docker does for docker0): masquerade traffic leaving the subnet, accept forwarding to
   *   and from the bridge. Removed by prune or with the network.
   * - the bridge's isolation from the other layerbox bridges (isolation.ts), ahead of those.
   */
  private async ensureHostRules(net: BridgeNet, signal?: AbortSignal): Promise<void> {
    const marker = join(this.hostStateDir, 'rules', net.bridge);
    const want = `${bootId()} ${net.cniName} ${net.subnet} isolated${net.internal ? ' internal' : ''}${net.masquerade ? '' : ' no-masquerade'}\n`;
    if ((await readFile(marker, 'utf8').catch(() => '')) === want) return;
    const guard = ['PREROUTING', ...LOOPBACK_GUARD];
    if ((await run('iptables', ['-w', '-t', 'raw', '-C', ...guard], { allowFailure: true, signal })).code !== 0) {
      const r = await run('iptables', ['-w', '-t', 'raw', '-I', ...guard], { allowFailure: true, signal });
      if (r.code !== 0) {
        // refuse rather than run containers that can reach the host's loopback services
        throw unavailable('LOOPBACK_GUARD_FAILED', `cannot install the rule that keeps containers off the host's 127.0.0.1: ${r.stderr.trim() || `exit ${r.code}`}`, {
          where: 'iptables -t raw PREROUTING',
          hint: 'the bridge network needs the iptables raw table (kernel: iptable_raw or nf_tables)',
        });
      }
    }
    for (const [table, r] of this.hostRules(net)) {
      const check = await run('iptables', ['-w', '-t', table, '-C', ...r], { allowFailure: true, signal });
      if (check.code !== 0) await run('iptables', ['-w', '-t', table, table === 'filter' ? '-I' : '-A', ...r], { signal });
    }
    try {
      await ensureIsolation(net.bridge, net.cniName, net.internal, signal);
    } catch (e) {
      throw unavailable('ISOLATION_FAILED', `cannot isolate bridge ${net.bridge} from the other networks: ${(e as Error).message}`, { where: net.bridge, cause: e });
    }
    await run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], { allowFailure: true, signal });
    await mkdirp(dirname(marker), 0o700);
    await writeFileAtomic(marker, want, 0o600);
  }

  /** Removes a network's subnet-wide and isolation rules (prune, network rm); the loopback guard stays (see ensureHostRules). */
  private async removeHostRules(net: BridgeNet): Promise<void> {
    // both masquerade variants: the rule is looked up by its exact text
    for (const [table, r] of [...this.hostRules({ ...net, masquerade: true, internal: false }), ...this.hostRules(net)]) {
      while ((await run('iptables', ['-w', '-t', table, '-D', ...r], { allowFailure: true })).code === 0) {
        /* remove every copy */
      }
    }
    await removeIsolation(net.bridge, net.cniName, net.internal);
    await rm(join(this.hostStateDir, 'rules', net.bridge), { force: true });
    if (net.builtin) await rm(join(this.stateDir, 'host-rules'), { force: true }); // the per-store marker of earlier versions
  }

  /** A user-defined network's bridge device, with its gateway address and MTU (made at create, and again after a reboot). */
  private async ensureBridge(net: BridgeNet, signal?: AbortSignal): Promise<void> {
    if (existsSync(`/sys/class/net/${net.bridge}`)) return;
    const mtu = net.mtu ?? (await defaultRouteMtu());
    const add = await run('ip', ['link', 'add', 'name', net.bridge, 'mtu', String(mtu), 'type', 'bridge'], { allowFailure: true, signal });
    if (add.code !== 0 && !existsSync(`/sys/class/net/${net.bridge}`)) {
      throw unavailable('BRIDGE_CREATE_FAILED', `cannot create bridge ${net.bridge}: ${add.stderr.trim()}`, { where: net.bridge });
    }
    const prefix = parseCidr4(net.subnet).prefix;
    await run('ip', ['addr', 'replace', `${net.gateway}/${prefix}`, 'dev', net.bridge], { signal });
    await run('ip', ['link', 'set', net.bridge, 'up'], { signal });
    this.mtus.set(net.bridge, mtu);
  }

  /** Deletes a network's bridge, rules and lease directory (nothing may be attached). */
  private async removeBridge(net: BridgeNet): Promise<void> {
    if (existsSync(`/sys/class/net/${net.bridge}`)) await run('ip', ['link', 'del', net.bridge], { allowFailure: true });
    await this.removeHostRules(net);
    await pruneSharedChains();
    await rm(this.bridgeIpamDir(net.bridge), { recursive: true, force: true });
    this.mtus.delete(net.bridge);
  }

  /** The lock every store takes (after its own) for work on the shared bridges, leases and host rules. */
  private async hostLock(signal?: AbortSignal): Promise<Lock> {
    await mkdirp(this.hostStateDir, 0o700);
    return acquireLock(join(this.hostStateDir, 'lock'), { signal, timeoutMs: 120_000, what: 'container networking (host)' });
  }

  /** Both locks, in their order: the store's, then the host's. */
  private async locks(signal?: AbortSignal): Promise<{ release(): void }> {
    await mkdirp(this.stateDir, 0o700);
    const store = await acquireLock(join(this.stateDir, 'lock'), { signal, timeoutMs: 120_000, what: 'container networking' });
    let host: Lock;
    try {
      host = await this.hostLock(signal);
    } catch (e) {
      store.release();
      throw e;
    }
    return {
      release() {
        host.release();
        store.release();
      },
    };
  }

  /**
   * Readies a bridge's shared lease directory for an allocation (under the host lock):
   * - leases from another boot are dropped: every container that held one died with it
   *   (their stores' teardowns then find nothing of theirs left, which is fine);
   * - one network name per bridge: host-local keeps a directory per network name, and two
   *   of them on one bridge would hand out the same addresses again;
   * - leases this store kept in its own directory before leases were shared (containers still
   *   running across an upgrade) are moved over, so that nobody else gets their addresses.
   */
  private async prepareLeases(net: BridgeNet = this.defaultNet()): Promise<void> {
    const dir = this.bridgeIpamDir(net.bridge);
    await mkdirp(dir, 0o700);
    const bootFile = join(dir, 'boot-id');
    const boot = bootId();
    if ((await readFile(bootFile, 'utf8').catch(() => '')).trim() !== boot) {
      for (const n of await readdir(dir)) if (n !== 'boot-id') await rm(join(dir, n), { recursive: true, force: true });
      await writeFileAtomic(bootFile, `${boot}\n`, 0o600);
    }
    for (const n of await readdir(dir, { withFileTypes: true })) {
      if (!n.isDirectory() || n.name === net.cniName) continue;
      const held = (await readdir(join(dir, n.name)).catch(() => [] as string[])).filter(isLeaseName);
      if (held.length > 0) {
        throw conflict('BRIDGE_IN_USE', `bridge ${net.bridge} is in use by network ${n.name} (${held.length} address(es) leased)`, {
          where: net.bridge,
          hint: `use network name ${n.name} for this bridge, or another bridge`,
        });
      }
    }
    if (!net.builtin) return;
    const legacy = join(this.legacyIpamDir, net.cniName);
    if (!existsSync(legacy)) return;
    const shared = join(dir, net.cniName);
    await mkdirp(shared, 0o700);
    for (const n of (await readdir(legacy).catch(() => [] as string[])).filter(isLeaseName)) {
      const owner = await readFile(join(legacy, n), 'utf8').catch(() => '');
      const id = owner.split(/\r?\n/)[0]?.trim() ?? '';
      const att = validContainerId(id) ? await this.readAttachment(id).catch(() => undefined) : undefined;
      if (att?.bootId !== boot) continue;
      await writeFile(join(shared, n), owner, { flag: 'wx', mode: 0o600 }).catch((e: unknown) => {
        if (errnoCode(e) !== 'EEXIST') throw e;
      });
    }
    await rm(legacy, { recursive: true, force: true });
  }

  // ------------------------------------------------------------------ public API

  /**
   * Gives a container its network. bridge: a netns with lo and one interface per network
   * (eth0 on the first), NAT outbound, published ports on eth0; none: a netns with only lo
   * up; host: nothing to create. Writes the etc files when etcDir is given. Idempotent per
   * container: an earlier attachment of the same id is torn down first. On failure nothing
   * is left behind.
   */
  async setup(req: SetupRequest, opts: { signal?: AbortSignal } = {}): Promise<NetworkAttachment> {
    return (await this.setupWhile(req, async () => undefined, opts))[0];
  }

  /**
   * The networks a request names, resolved and checked as Docker's daemon checks them
   * (aliases and addresses only on user-defined networks, an address inside the subnet).
   */
  async resolveEndpoints(containerId: string, list: readonly EndpointRequest[] | undefined): Promise<{ net: BridgeNet; aliases: string[]; ip?: string }[]> {
    // none given: the default bridge; an empty list (disconnected from every network): no interface but lo
    const want = list ?? [{ network: 'bridge' }];
    const out: { net: BridgeNet; aliases: string[]; ip?: string }[] = [];
    for (const e of want) {
      const r = await this.findNetwork(e.network);
      if (r.Driver === 'host') throw invalidArgument('HOST_NETWORK', 'container cannot be disconnected from host network or connected to host network');
      if (r.Driver === 'null') throw invalidArgument('NONE_NETWORK', 'container cannot be connected to multiple networks with one of the networks in private (none) mode');
      const net = this.bridgeNetOf(r);
      if (out.some((o) => o.net.id === net.id)) continue;
      const aliases = [...new Set((e.aliases ?? []).filter((a) => a !== ''))];
      if (aliases.length && net.builtin) throw invalidArgument('ALIAS_ON_DEFAULT', 'network-scoped alias is supported only for containers in user defined networks');
      const ip = e.ipv4Address || undefined;
      if (ip) {
        if (net.builtin) throw invalidArgument('IP_ON_DEFAULT', 'user specified IP address is supported on user defined networks only');
        if (!net.configuredSubnet) throw invalidArgument('IP_WITHOUT_SUBNET', 'user specified IP address is supported only when connecting to networks with user configured subnets');
        if (ipToInt(ip) === undefined || !cidrContains(parseCidr4(net.subnet), ip)) throw invalidArgument('IP_OUTSIDE_SUBNET', `Invalid address ${ip}: It does not belong to any of this network's subnets`, { where: ip });
      }
      if (net.dns) aliases.push(containerId.slice(0, 12));
      out.push({ net, aliases: [...new Set(aliases)], ...(ip ? { ip } : {}) });
    }
    return out;
  }

  /**
   * setup(), running `during` as soon as the namespace and the etc files exist — while the
   * interfaces are still being made (CNI ADD). An OCI runtime can `create` the container in
   * the namespace meanwhile: the process does not run before `start`. The hosts file gets
   * the container's address, in place (it is the inode the runtime bind-mounts), once ADD
   * has allocated it, and the names of its peers on user-defined networks; theirs get this
   * one's. If either side fails, the network is torn down after `during` settled and the
   * first error is thrown; undoing what `during` made is the caller's.
   */
  async setupWhile<T>(req: SetupRequest, during: (early: EarlyNetwork) => Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<[NetworkAttachment, T]> {
    const id = req.containerId;
    if (!validContainerId(id)) {
      throw invalidArgument('INVALID_CONTAINER_ID', `invalid container id "${id}"`, { where: id, hint: 'letters, digits, _ . - only' });
    }
    const mode = req.mode ?? 'bridge';
    // Parse everything before touching the host.
    let mappings: PortMapping[] = (req.publish ?? []).flatMap((p) => (typeof p === 'string' ? parsePortSpec(p) : [p]));
    if (req.publishAll) mappings = withPublishAll(mappings, req.exposedPorts ?? []);
    const extraHosts = (req.extraHosts ?? []).map(parseExtraHost);
    const warnings: string[] = [];
    if (mode !== 'bridge' && mappings.length > 0) {
      warnings.push(`Published ports are discarded when using ${mode} network mode`);
      mappings = [];
    }
    let att: NetworkAttachment;
    let side: Promise<T>;
    const lock = await this.locks(opts.signal);
    try {
      const nets = mode === 'bridge' ? await this.resolveEndpoints(id, req.networks) : [];
      const leftover =
        (await this.readAttachment(id).catch(() => true)) ||
        (await this.cachedEndpoints(id)).length > 0 ||
        existsSync(this.netnsPath(id));
      if (leftover) {
        await this.teardownLocked(id, opts);
      }
      att = {
        containerId: id,
        ...(req.containerName ? { containerName: req.containerName } : {}),
        mode,
        state: 'setting-up',
        ports: [],
        hostname: req.hostname ?? (mode === 'host' ? hostHostname() : id.slice(0, 12)),
        warnings,
        createdAt: new Date().toISOString(),
        bootId: bootId(),
      };
      if (mode !== 'host') att.netnsPath = this.netnsPath(id);
      if (mode === 'bridge') {
        for (const { net } of nets) {
          await this.checkSubnetFree(net, opts.signal);
          await this.prepareLeases(net);
        }
        // port bookkeeping (an iptables scan) only for containers that publish ports
        att.ports = mappings.length ? await allocatePorts(mappings, await this.heldPorts(id), opts) : [];
        att.endpoints = nets.map(({ net, aliases, ip }, i) => newEndpoint(id, net, `eth${i}`, i === 0 && att.ports.length ? 'ports' : 'plain', aliases, ip));
        mirrorFirst(att);
      }
      // Recorded before anything is created: a crash from here on leaves what teardown needs.
      await this.writeAttachment(att);
      let started = false;
      let lo: Promise<void> | undefined;
      try {
        if (att.netnsPath) await createNetns(att.netnsPath, opts);
        trace('network: netns created');
        // the runtime's side first (it is the longer), then the interfaces (CNI), in parallel;
        // the runtime needs the etc files (the hosts file without the container's address,
        // not known yet)
        if (req.etcDir) att.etcFiles = await writeEtcFiles(req.etcDir, await this.etcContent({ ...att, gateway: att.gateway ?? nets[0]?.net.gateway }, req, extraHosts));
        trace('network: etc files written');
        side = during({ ...(att.netnsPath ? { netnsPath: att.netnsPath } : {}), ...(att.etcFiles ? { etcFiles: att.etcFiles } : {}) });
        side.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
        started = true;
        lo = att.netnsPath ? loopbackUp(att.netnsPath, id, { pluginDirs: this.pluginDirs, signal: opts.signal }) : undefined;
        lo?.catch(() => {});
        const added =
          mode === 'bridge'
            ? (async () => {
                for (const [i, ep] of att.endpoints!.entries()) Object.assign(ep, describeResult(await this.addEndpoint(att, ep, nets[i]!.net, opts.signal), att.netnsPath!));
              })()
            : undefined;
        added?.catch(() => {});
        if (added) {
          await added;
          mirrorFirst(att);
          trace('network: CNI ADD done');
          if (att.etcFiles && att.ipAddress) {
            // its own lines, kept for the rewrites as peers come and go
            att.hostsHead = buildHosts({ hostname: att.hostname, extraHosts, ...(att.gateway ? { gateway: att.gateway } : {}) });
            if (req.domainname) att.domainname = req.domainname;
            // In place, not by rename: the runtime may already have bind-mounted this inode.
            // Nothing reads it before the container starts, after `during` has settled.
            await writeFile(att.etcFiles.hosts, await this.hostsFor(att));
          }
        }
        await lo;
        trace('network: lo up');
        att.state = 'ready';
        await this.writeAttachment(att);
        await this.refreshHosts(dnsNetworks(att), id);
      } catch (e) {
        await lo?.catch(() => {});
        if (started) await side!.catch(() => {});
        await this.teardownLocked(id, {}).catch(() => {});
        throw e;
      }
    } finally {
      lock.release();
    }
    // outside the lock: other containers' networking need not wait for this runtime
    try {
      return [att, await side];
    } catch (e) {
      await this.teardown(id).catch(() => {});
      throw e;
    }
  }

  /**
   * Connects a running container to one more network: a new interface (eth1, …) in its
   * namespace, and its name in the hosts files of the network's containers (and theirs in its).
   */
  async connect(containerId: string, req: EndpointRequest, opts: { signal?: AbortSignal } = {}): Promise<Endpoint> {
    const lock = await this.locks(opts.signal);
    try {
      const att = await this.readAttachment(containerId);
      if (!att || att.state !== 'ready' || !att.netnsPath || !(await isNetns(att.netnsPath))) {
        throw conflict('NOT_ATTACHED', `container ${containerId} has no network namespace to connect`, { where: containerId, hint: 'start the container first' });
      }
      if (att.mode === 'host') throw invalidArgument('HOST_NETWORK', 'container cannot be disconnected from host network or connected to host network');
      if (att.mode === 'none') throw invalidArgument('NONE_NETWORK', 'container cannot be connected to multiple networks with one of the networks in private (none) mode');
      const [want] = await this.resolveEndpoints(containerId, [req]);
      const { net, aliases, ip } = want!;
      const eps = this.endpointsOf(att);
      if (eps.some((e) => e.networkId === net.id)) {
        throw new EngineError('forbidden', 'ALREADY_CONNECTED', `endpoint with name ${att.containerName ?? containerId.slice(0, 12)} already exists in network ${net.name}`, { where: net.name });
      }
      await this.checkSubnetFree(net, opts.signal);
      await this.prepareLeases(net);
      const used = new Set(eps.map((e) => e.ifName));
      let n = 0;
      while (used.has(`eth${n}`)) n++;
      const ep = newEndpoint(containerId, net, `eth${n}`, 'plain', aliases, ip);
      att.endpoints = [...eps, ep];
      await this.writeAttachment(att); // first: a crash leaves what teardown needs
      try {
        Object.assign(ep, describeResult(await this.addEndpoint(att, ep, net, opts.signal), att.netnsPath));
      } catch (e) {
        await this.teardownEndpoint(containerId, att, ep, true).catch(() => {});
        att.endpoints = eps;
        await this.writeAttachment(att);
        throw e;
      }
      mirrorFirst(att);
      await this.writeAttachment(att);
      if (att.etcFiles && att.hostsHead !== undefined) await writeInPlace(att.etcFiles.hosts, await this.hostsFor(att));
      await this.refreshHosts(new Set([net.id]), containerId);
      return ep;
    } finally {
      lock.release();
    }
  }

  /** Disconnects a running container from a network: its interface goes, and its names from the peers' hosts files. */
  async disconnect(containerId: string, network: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const lock = await this.locks(opts.signal);
    try {
      const att = await this.readAttachment(containerId);
      const r = await this.findNetwork(network);
      if (r.Driver === 'host' || att?.mode === 'host') throw invalidArgument('HOST_NETWORK', 'container cannot be disconnected from host network or connected to host network');
      const eps = att ? this.endpointsOf(att) : [];
      const ep = eps.find((e) => e.networkId === r.Id);
      // dockerd answers this one with a 500
      if (!att || !ep) throw internal('NOT_CONNECTED', `container ${containerId} is not connected to network ${r.Name}`, { where: r.Name });
      const live = !!att.netnsPath && (await isNetns(att.netnsPath));
      await this.teardownEndpoint(containerId, att, ep, live);
      att.endpoints = eps.filter((e) => e !== ep);
      if (ep.variant === 'ports') att.ports = [];
      mirrorFirst(att);
      await this.writeAttachment(att);
      if (att.etcFiles && att.hostsHead !== undefined) await writeInPlace(att.etcFiles.hosts, await this.hostsFor(att));
      await this.refreshHosts(new Set([r.Id]), containerId);
    } finally {
      lock.release();
    }
  }

  /** A container was renamed: its peers' hosts files get the new name. */
  async renamed(containerId: string, name: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const lock = await this.locks(opts.signal);
    try {
      const att = await this.readAttachment(containerId).catch(() => undefined);
      if (!att) return;
      att.containerName = name;
      await this.writeAttachment(att);
      await this.refreshHosts(dnsNetworks(att));
    } finally {
      lock.release();
    }
  }

  /**
   * Undoes setup: CNI DEL of every endpoint (with the cached result; works when the netns is
   * already gone, e.g. after a reboot), a sweep of any iptables rule left for the container,
   * the netns, the port reservations and the record; the container's names leave its peers'
   * hosts files. Idempotent; a container never set up is fine.
   */
  async teardown(containerId: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (!validContainerId(containerId)) {
      throw invalidArgument('INVALID_CONTAINER_ID', `invalid container id "${containerId}"`, { where: containerId });
    }
    const lock = await this.locks(opts.signal);
    try {
      await this.teardownLocked(containerId, opts);
    } finally {
      lock.release();
    }
  }

  async inspect(containerId: string): Promise<NetworkAttachment | undefined> {
    return this.readAttachment(containerId);
  }

  /** Every container this store has networking state for (for cleanup after a reboot or crash). */
  async list(): Promise<NetworkAttachment[]> {
    let names: string[];
    try {
      names = await readdir(join(this.stateDir, 'attachments'));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw e;
    }
    const out: NetworkAttachment[] = [];
    for (const n of names) {
      if (!n.endsWith('.json') || n.startsWith('.')) continue;
      const id = n.slice(0, -5);
      let a: NetworkAttachment | undefined;
      try {
        a = await this.readAttachment(id);
      } catch (e) {
        if (!isEngineError(e) || e.code !== 'ATTACHMENT_CORRUPT') throw e;
        // unreadable record: listed so that it gets torn down (teardown needs only the id)
        a = { containerId: id, mode: 'bridge', state: 'setting-up', ports: [], hostname: id.slice(0, 12), warnings: [], createdAt: '', bootId: '' };
      }
      if (a) out.push(a);
    }
    return out;
  }

  /** `docker port` output for a container. */
  async portLines(containerId: string, filter?: string): Promise<string[]> {
    const a = await this.readAttachment(containerId);
    if (!a) throw notFound('NO_SUCH_CONTAINER_NETWORK', `container ${containerId} has no network attached`, { where: containerId });
    return formatPortLines(a.ports, filter);
  }

  /** CNI CHECK of a bridge attachment (is each interface, address, route, rule still there?). */
  async check(containerId: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const a = await this.readAttachment(containerId);
    if (!a || a.mode !== 'bridge' || !a.netnsPath) return;
    if (!(await isNetns(a.netnsPath))) {
      throw notFound('NETNS_GONE', `the network namespace of container ${containerId} is gone`, { where: a.netnsPath });
    }
    for (const ep of this.endpointsOf(a)) {
      await checkNetworkList(
        { cniVersion: '1.0.0', name: ep.cniName, plugins: [] },
        { containerId, netns: a.netnsPath, ifName: ep.ifName },
        { cacheDir: this.cacheDir, pluginDirs: this.pluginDirs, signal: opts.signal },
      );
    }
  }

  /**
   * When no container of this store is attached and no other store holds an address on the
   * bridge: deletes the default bridge, its subnet-wide rules, its lease directory and the CNI
   * chains the plugins share if nothing else uses them (Docker keeps docker0; this is for
   * `system reset`-like cleanups and tests). Returns false, touching nothing, otherwise.
   */
  async prune(opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    const lock = await this.locks(opts.signal);
    try {
      if ((await this.list()).length > 0) return false;
      if (existsSync(`/sys/class/net/${this.net.bridge}`)) {
        const ports = await run('ip', ['-o', 'link', 'show', 'master', this.net.bridge], { allowFailure: true });
        if (ports.stdout.trim() !== '') return false; // someone else's container is on it
      }
      // another store's container holds an address (drops the leases of an earlier boot first)
      await this.prepareLeases();
      if ((await this.leasesOn(this.net.bridge)).length > 0) return false;
      await this.removeBridge(this.defaultNet());
      await rm(this.legacyIpamDir, { recursive: true, force: true }); // none of its leases can be in use: no attachment left
      return true;
    } finally {
      lock.release();
    }
  }

  // ------------------------------------------------------------------ internals

  /** Every lease file on a bridge, of any network name and store: [network name, address, owner id]. */
  private async leasesOn(bridge: string): Promise<[string, string, string][]> {
    const dir = this.bridgeIpamDir(bridge);
    const boot = (await readFile(join(dir, 'boot-id'), 'utf8').catch(() => '')).trim();
    if (boot !== '' && boot !== bootId()) return []; // an earlier boot's: nobody holds them
    const out: [string, string, string][] = [];
    for (const net of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!net.isDirectory()) continue;
      for (const n of await readdir(join(dir, net.name)).catch(() => [] as string[])) {
        if (!isLeaseName(n)) continue;
        const owner = await readFile(join(dir, net.name, n), 'utf8').catch(() => '');
        out.push([net.name, n, owner.split(/\r?\n/)[0]?.trim() ?? '']);
      }
    }
    return out;
  }

  /**
   * Whether an attachment (or, when its record is unreadable, its CNI cache entry) was made
   * under an earlier boot: then nothing of it is left in the kernel (netns, veth, iptables
   * rules), and its address may already be someone else's.
   */
  private async fromEarlierBoot(att: NetworkAttachment | undefined, netName: string, id: string, ifName: string): Promise<boolean> {
    if (att?.bootId) return att.bootId !== bootId();
    const bt = bootTimeMs();
    if (bt === undefined) return false;
    for (const p of [this.attachmentPath(id), cachePath(this.cacheDir, netName, id, ifName)]) {
      const st = await stat(p).catch(() => undefined);
      if (st) return st.mtimeMs < bt;
    }
    return false;
  }

  /** Whether `ip` is leased on the bridge to a container other than `id` (then its rules are that one's). */
  private async leasedToOther(bridge: string, netName: string, ip: string, id: string): Promise<boolean> {
    if (!isLeaseName(ip)) return false;
    const owner = await readFile(join(this.bridgeIpamDir(bridge), netName, ip), 'utf8').catch(() => undefined);
    return owner !== undefined && owner.split(/\r?\n/)[0]?.trim() !== id;
  }

  /** The endpoints a container's CNI cache entries describe (what teardown needs when the record is unreadable or incomplete). */
  private async cachedEndpoints(id: string): Promise<Endpoint[]> {
    const dir = join(this.cacheDir, 'results');
    const out: Endpoint[] = [];
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
    for (const n of names) {
      const m = new RegExp(`^(.+)-${id.replace(/[.]/g, '\\.')}-([A-Za-z0-9_.-]+)$`).exec(n);
      if (!m) continue;
      const [, cniName, ifName] = m as unknown as [string, string, string];
      let bridge = cniName === this.net.name ? this.net.bridge : '';
      let variant: ConfVariant = 'legacy';
      try {
        const c = JSON.parse(await readFile(join(dir, n), 'utf8')) as CniCacheEntry;
        const list = JSON.parse(Buffer.from(c.config, 'base64').toString('utf8')) as CniConfList;
        bridge = String(list.plugins[0]?.bridge ?? bridge);
        variant = list.plugins.length === 1 ? 'plain' : list.plugins[0]?.ipMasq ? 'legacy' : 'ports';
      } catch {
        /* unreadable: teardown's sweep and lease scan clean up */
      }
      out.push({ networkId: '', network: cniName, cniName, bridge, ifName, variant, endpointId: '', aliases: [], dns: false });
    }
    return out;
  }

  /** Caller holds both locks. */
  private async teardownLocked(id: string, opts: { signal?: AbortSignal }): Promise<void> {
    throwIfAborted(opts.signal);
    let att: NetworkAttachment | undefined;
    try {
      att = await this.readAttachment(id);
    } catch (e) {
      if (!isEngineError(e) || e.code !== 'ATTACHMENT_CORRUPT') throw e;
    }
    const eps = att ? [...this.endpointsOf(att)] : [];
    for (const c of await this.cachedEndpoints(id)) if (!eps.some((e) => e.cniName === c.cniName && e.ifName === c.ifName)) eps.push(c);
    // an unreadable record of a bridge container, its cache entry gone too: the default bridge's sweep and lease scan
    if (eps.length === 0 && att?.mode === 'bridge' && !att.endpoints) {
      const d = this.defaultNet();
      eps.push({ networkId: d.id, network: d.name, cniName: d.cniName, bridge: d.bridge, ifName: IFNAME, variant: att?.variant ?? 'legacy', endpointId: '', aliases: [], dns: false });
    }
    const netns = att?.netnsPath ?? this.netnsPath(id);
    const live = await isNetns(netns);
    let err: unknown;
    for (const ep of eps) {
      try {
        await this.teardownEndpoint(id, att, ep, live);
      } catch (e) {
        err ??= e;
      }
    }
    await removeNetns(netns);
    trace('network: netns removed');
    if (err) throw err; // the record stays for a retry
    await rm(this.attachmentPath(id), { force: true });
    if (att) await this.refreshHosts(dnsNetworks(att), id);
  }

  /** Removes one endpoint: CNI DEL (or, for an earlier boot's, only what is keyed by the container), leftover rules, leases. */
  private async teardownEndpoint(id: string, att: NetworkAttachment | undefined, ep: Endpoint, live: boolean): Promise<void> {
    const { cniName: netName, bridge, ifName } = ep;
    const netns = att?.netnsPath ?? this.netnsPath(id);
    let cached: CniCacheEntry | undefined;
    try {
      cached = await readCache(this.cacheDir, netName, id, ifName);
    } catch (e) {
      // unreadable: DEL cannot be run with it; the sweep and the lease scan below clean up instead
      if (!isEngineError(e, 'data-loss')) throw e;
      await removeCache(this.cacheDir, netName, id, ifName);
    }
    if (!live && (await this.fromEarlierBoot(att, netName, id, ifName))) {
      // Made under an earlier boot: its interfaces and rules died with it, and its address may
      // have been leased again since (leases do not outlive a boot). No CNI DEL — the firewall
      // plugin deletes forwarding rules by address, which may be another container's now — only
      // what is keyed by this container's id: rules restored by an iptables-restore at boot,
      // its leases, its cache entry.
      await sweepContainerRules(netName, id, []);
      await this.releaseLeases(bridge, netName, id);
      await removeCache(this.cacheDir, netName, id, ifName);
      trace('network: attachment of an earlier boot released');
      return;
    }
    let err: unknown;
    try {
      await delNetworkList({ cniVersion: '1.0.0', name: netName, plugins: [] }, { containerId: id, netns: live ? netns : '', ifName }, { cacheDir: this.cacheDir, pluginDirs: this.pluginDirs });
    } catch (e) {
      err = e;
    }
    if (!live) await removeOrphanVeth(ep.hostVeth ?? cached?.result?.interfaces?.find((i) => !i.sandbox && i.name.startsWith('veth'))?.name, bridge);
    // Safety net: what a DEL could not remove (masquerade rules when the netns was gone).
    // A plain endpoint made no iptables rules: nothing to sweep when its DEL worked.
    // Addresses another container holds now are left out (rules for them are its rules).
    if (err || ep.variant !== 'plain') {
      const ips = (cached?.result?.ips ?? []).map((i) => i.address.split('/')[0]!);
      if (ep.ipAddress) ips.push(ep.ipAddress);
      const mine: string[] = [];
      for (const ip of new Set(ips)) if (!(await this.leasedToOther(bridge, netName, ip, id))) mine.push(ip);
      await sweepContainerRules(netName, id, mine);
    }
    if (err) throw err;
    await this.releaseLeases(bridge, netName, id);
    trace('network: CNI DEL done');
  }

  /**
   * host-local lease files (`<ip>` containing `<container id>\r\n<ifname>`) still naming the
   * container: after a DEL that ran without its cache, or for an attachment of an earlier
   * boot; in the bridge's shared directory and in this store's directory of earlier versions.
   * Only files naming this container are touched (another store's never are). Runs under the
   * host lock, which every host-local call on the shared directory also holds.
   */
  private async releaseLeases(bridge: string, netName: string, id: string): Promise<void> {
    for (const dir of [join(this.bridgeIpamDir(bridge), netName), join(this.legacyIpamDir, netName)]) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') continue;
        throw e;
      }
      for (const n of names) {
        if (!isLeaseName(n)) continue;
        const owner = await readFile(join(dir, n), 'utf8').catch(() => '');
        if (owner.split(/\r?\n/)[0]?.trim() === id) await rm(join(dir, n), { force: true });
      }
    }
  }

  /** Ports held by our other containers and by any CNI port mapping on this host. */
  private async heldPorts(exceptId: string): Promise<HeldPort[]> {
    const held: HeldPort[] = [];
    for (const a of await this.list()) {
      if (a.containerId === exceptId) continue;
      for (const p of a.ports) held.push({ ...p, owner: `container ${a.containerId.slice(0, 12)}` });
    }
    for (const p of await cniHostPorts()) {
      held.push({ proto: p.proto as PortProto, hostIP: '', hostPort: p.hostPort, owner: p.owner });
    }
    return held;
  }

  /** CNI ADD of one endpoint (after the network's bridge and subnet-wide rules exist). */
  private async addEndpoint(att: NetworkAttachment, ep: Endpoint, net: BridgeNet, signal?: AbortSignal): Promise<CniResult> {
    if (!net.builtin) await this.ensureBridge(net, signal);
    await this.ensureHostRules(net, signal);
    const args: [string, string][] = [['IgnoreUnknown', '1']];
    if (ep.requestedIp) args.push(['IP', ep.requestedIp]);
    const r = await addNetworkList(
      await this.confList(ep.variant, net),
      { containerId: att.containerId, netns: att.netnsPath!, ifName: ep.ifName, args, capabilityArgs: { portMappings: ep.variant === 'ports' ? toCniPortMappings(att.ports) : [] } },
      { cacheDir: this.cacheDir, pluginDirs: this.pluginDirs, signal },
    );
    // the firewall plugin puts its CNI-FORWARD jump first when it makes the chain: isolation goes first again
    if (ep.variant === 'ports') await keepIsolationFirst(signal);
    return r;
  }

  /** Before the bridge exists: refuse a subnet that a host route already covers. */
  private async checkSubnetFree(net: BridgeNet, signal?: AbortSignal): Promise<void> {
    if (existsSync(`/sys/class/net/${net.bridge}`)) return;
    const mine = parseCidr4(net.subnet);
    for (const rt of await hostRoutes(signal)) {
      if (rt.dev === net.bridge) continue;
      if (cidrOverlaps(rt.cidr, mine)) {
        throw conflict('SUBNET_IN_USE', `subnet ${net.subnet} of network ${net.builtin ? net.cniName : net.name} overlaps the host route ${rt.dst} on ${rt.dev}`, {
          where: net.subnet,
          hint: net.builtin ? 'configure another subnet for the layerbox bridge network' : 'remove the network and create it with another --subnet',
        });
      }
    }
  }

  private bridgeHosts(att: NetworkAttachment, req: SetupRequest, extraHosts: ReturnType<typeof parseExtraHost>[]): string {
    return buildHosts({ hostname: att.hostname, domainname: req.domainname, ip: att.ipAddress, extraHosts, gateway: att.gateway });
  }

  /**
   * A container's hosts file: its own lines, then every running container of each of its
   * user-defined networks (itself included) with its name, aliases and short ID.
   */
  private async hostsFor(att: NetworkAttachment, all?: NetworkAttachment[]): Promise<string> {
    const base = (att.hostsHead ?? '') + (att.ipAddress ? ownHostsLine(att.hostname, att.domainname, att.ipAddress) : '');
    const mine = this.endpointsOf(att).filter((e) => e.dns);
    if (!mine.length) return base;
    const members = [att, ...(all ?? (await this.list())).filter((b) => b.containerId !== att.containerId && b.state === 'ready')];
    const peers: PeerEntry[] = [];
    for (const ep of mine) {
      const entries: (PeerEntry & { key: string })[] = [];
      for (const b of members) {
        const f = this.endpointsOf(b).find((x) => x.networkId === ep.networkId);
        if (!f?.ipAddress) continue;
        entries.push({ key: b.containerName ?? b.containerId, ip: f.ipAddress, names: [...(b.containerName ? [b.containerName] : []), ...f.aliases] });
      }
      entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      peers.push(...entries);
    }
    return base + peerLines(peers);
  }

  /** Rewrites, in place, the hosts files of this store's running containers on these networks (the host lock is held). */
  private async refreshHosts(networkIds: Set<string>, except?: string): Promise<void> {
    if (networkIds.size === 0) return;
    const all = await this.list();
    for (const a of all) {
      if (a.containerId === except || a.state !== 'ready' || !a.etcFiles || a.hostsHead === undefined) continue;
      if (!this.endpointsOf(a).some((e) => e.dns && networkIds.has(e.networkId))) continue;
      await writeInPlace(a.etcFiles.hosts, await this.hostsFor(a, all)).catch(() => false);
    }
  }

  private async etcContent(att: NetworkAttachment, req: SetupRequest, extraHosts: ReturnType<typeof parseExtraHost>[]): Promise<EtcFiles> {
    const dnsOpts = { dns: req.dns, dnsSearch: req.dnsSearch, dnsOptions: req.dnsOptions };
    if (att.mode === 'host') {
      return {
        hosts: await buildHostNetworkHosts(extraHosts),
        hostname: buildHostname(att.hostname),
        resolvConf: await buildResolvConf({ ...dnsOpts, hostNetwork: true }),
      };
    }
    return {
      hosts: this.bridgeHosts(att, req, extraHosts),
      hostname: buildHostname(att.hostname),
      resolvConf: await buildResolvConf(dnsOpts),
    };
  }

  private async readAttachment(id: string): Promise<NetworkAttachment | undefined> {
    const p = this.attachmentPath(id);
    try {
      return JSON.parse(await readFile(p, 'utf8')) as NetworkAttachment;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      if (e instanceof SyntaxError) {
        throw internal('ATTACHMENT_CORRUPT', `the network record of container ${id} is unreadable`, { where: p, cause: e });
      }
      throw e;
    }
  }

  private async writeAttachment(a: NetworkAttachment): Promise<void> {
    await mkdirp(join(this.stateDir, 'attachments'), 0o700);
    await writeFileAtomic(this.attachmentPath(a.containerId), JSON.stringify(a, null, 2), 0o600);
  }
}

function newEndpoint(containerId: string, net: BridgeNet, ifName: string, variant: ConfVariant, aliases: string[], ip?: string): Endpoint {
  return {
    networkId: net.id,
    network: net.name,
    cniName: net.cniName,
    bridge: net.bridge,
    ifName,
    variant,
    endpointId: createHash('sha256').update(`${containerId}\0${net.id}\0${randomBytes(8).toString('hex')}`).digest('hex'),
    aliases,
    dns: net.dns,
    ...(ip ? { requestedIp: ip } : {}),
  };
}

/** The top-level fields of an attachment repeat its first endpoint's (what earlier versions and `ps` read). */
function mirrorFirst(att: NetworkAttachment): void {
  const ep = att.endpoints?.[0];
  for (const k of ['networkName', 'bridge', 'ifName', 'variant', 'ipAddress', 'ipPrefixLen', 'gateway', 'macAddress', 'hostVeth'] as const) delete att[k];
  if (!ep) return;
  att.networkName = ep.cniName;
  att.bridge = ep.bridge;
  att.ifName = ep.ifName;
  att.variant = ep.variant;
  if (ep.ipAddress) att.ipAddress = ep.ipAddress;
  if (ep.ipPrefixLen !== undefined) att.ipPrefixLen = ep.ipPrefixLen;
  if (ep.gateway) att.gateway = ep.gateway;
  if (ep.macAddress) att.macAddress = ep.macAddress;
  if (ep.hostVeth) att.hostVeth = ep.hostVeth;
}

/** The user-defined networks of an attachment, whose peers resolve its names. */
function dnsNetworks(att: NetworkAttachment): Set<string> {
  return new Set((att.endpoints ?? []).filter((e) => e.dns).map((e) => e.networkId));
}

/** The host's unicast IPv4 routes with a destination (every table), for subnet clash checks. */
async function hostRoutes(signal?: AbortSignal): Promise<{ dst: string; dev: string; cidr: Cidr4 }[]> {
  const r = await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all'], { allowFailure: true, ...(signal ? { signal } : {}) });
  if (r.code !== 0) return [];
  let routes: { dst?: string; dev?: string; type?: string }[] = [];
  try {
    routes = JSON.parse(r.stdout) as typeof routes;
  } catch {
    return [];
  }
  const out: { dst: string; dev: string; cidr: Cidr4 }[] = [];
  for (const rt of routes) {
    if (!rt.dst || rt.dst === 'default') continue;
    if (rt.type && rt.type !== 'unicast') continue;
    let c;
    try {
      c = parseCidr4(rt.dst);
    } catch {
      continue;
    }
    if (c.prefix === 0) continue;
    out.push({ dst: rt.dst, dev: rt.dev ?? '', cidr: c });
  }
  return out;
}

/** Address, gateway, MAC and host veth from a bridge ADD result. */
export function describeResult(r: CniResult, netns: string): Partial<NetworkAttachment> {
  const ifs = r.interfaces ?? [];
  const ip = (r.ips ?? []).find((i) => !i.address.includes(':')) ?? r.ips?.[0];
  const out: Partial<NetworkAttachment> = {};
  if (ip) {
    const [addr, len] = ip.address.split('/');
    out.ipAddress = addr;
    out.ipPrefixLen = Number(len);
    if (ip.gateway) out.gateway = ip.gateway;
    const iface = ip.interface !== undefined ? ifs[ip.interface] : ifs.find((i) => i.sandbox === netns);
    if (iface?.mac) out.macAddress = iface.mac;
  }
  const host = ifs.find((i) => !i.sandbox && i.name.startsWith('veth'));
  if (host) out.hostVeth = host.name;
  return out;
}

/**
 * The host end of a veth whose container end was in a namespace that died. The kernel deletes
 * the pair when it frees the namespace, but from a work queue, after the last reference is
 * dropped: under load that is a while after the unmount, and a teardown that returned before
 * it would leave a veth on the bridge for that while. Deleted here instead, so that teardown
 * leaves nothing behind when it returns. Only a link that is still a port of this bridge is
 * touched; one the kernel deleted meanwhile is fine.
 */
async function removeOrphanVeth(name: string | undefined, bridge: string | undefined): Promise<void> {
  if (!name || !bridge || !/^veth[0-9a-f]{1,11}$/.test(name)) return;
  let master: string;
  try {
    master = basename(await readlink(`/sys/class/net/${name}/master`));
  } catch {
    return; // gone already, or not on a bridge: not ours to delete
  }
  if (master !== bridge) return;
  const r = await run('ip', ['link', 'del', 'dev', name], { allowFailure: true });
  if (r.code !== 0 && existsSync(`/sys/class/net/${name}`)) {
    throw internal('VETH_DELETE_FAILED', `cannot delete the host end ${name} of a dead container's veth: ${r.stderr.trim()}`, { where: name });
  }
  trace('network: orphan veth deleted');
}

/** When this boot began (btime of /proc/stat), in ms since the epoch. */
function bootTimeMs(): number | undefined {
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    return m ? Number(m[1]) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** MTU of a bridge that exists. */
function bridgeMtu(bridge: string): number | undefined {
  try {
    const mtu = Number(readFileSync(`/sys/class/net/${bridge}/mtu`, 'utf8').trim());
    return mtu >= 576 && mtu <= 65535 ? mtu : undefined;
  } catch {
    return undefined;
  }
}

/** MTU of the interface the default route uses (containers then never exceed the uplink's). */
async function defaultRouteMtu(): Promise<number> {
  try {
    const r = await run('ip', ['-j', '-4', 'route', 'show', 'default'], { allowFailure: true });
    const routes = JSON.parse(r.stdout || '[]') as { dev?: string }[];
    const dev = routes.find((x) => x.dev)?.dev;
    if (dev && /^[\w.-]+$/.test(dev)) {
      const mtu = Number(readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8').trim());
      if (mtu >= 576 && mtu <= 65535) return mtu;
    }
  } catch {
    /* fall back */
  }
  return 1500;
}
