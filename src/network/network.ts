/**
 * Docker-like container networking: `--network bridge|host|none`, `-p`/`-P`, and the
 * container's /etc/hosts, /etc/hostname, /etc/resolv.conf.
 *
 * A store's state lives under `<root>/network/` (all of it needed for teardown, also after a reboot):
 *   lock                    serializes setup/teardown of this store's containers across processes
 *   attachments/<id>.json   what setup did (mode, netns, address, published ports)
 *   netns/<id>              the container's network namespace (bind mount)
 *   cni/results/<net>-<id>-eth0   the cached CNI ADD result (libcni format; keyed by the
 *                           container id, which no other store has: it stays per store)
 *
 * What every store on the host shares lives under the host state dir (`/run/layerbox/network`):
 *   lock                    serializes bridge work across stores (taken after a store's lock)
 *   ipam/<bridge>/<net>/    host-local leases: one allocator per bridge, whichever store asks,
 *                           so two stores on one bridge never get the same address
 *   ipam/<bridge>/boot-id   the boot the leases belong to; under another boot every container
 *                           that held one is gone, and so are the leases
 *   rules/<bridge>          the boot for which the bridge's host rules are installed
 *
 * Call setup() before the OCI runtime creates the container (the runtime joins the
 * namespace at attachment.netnsPath) and teardown() once its process has exited.
 */
import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { conflict, internal, invalidArgument, notFound, unavailable, unsupported, errnoCode, throwIfAborted, isEngineError } from '../errors/index.js';
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
  writeEtcFiles,
  type EtcFiles,
} from './etc-files.js';
import { sweepContainerRules, cniHostPorts, pruneSharedChains, LOOPBACK_GUARD } from './iptables.js';
import { parseCidr4, firstHost, cidrContains, cidrOverlaps, formatCidr4 } from './ipv4.js';

export type NetworkMode = 'bridge' | 'host' | 'none';

/** `--network` value → mode, with Docker's errors for what we do not have. */
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

export interface NetworkManagerOptions {
  /** the store root; state goes to <root>/network */
  root: string;
  /** state shared by every store on the host (leases per bridge, the bridge-wide lock); default /run/layerbox/network */
  hostStateDir?: string;
  network?: Partial<BridgeNetworkConfig>;
  pluginDirs?: string[];
}

export interface SetupRequest {
  containerId: string;
  /** default bridge */
  mode?: NetworkMode;
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
 * Which CNI plugin list a bridge attachment used (DEL must use the same):
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

export interface NetworkAttachment {
  containerId: string;
  mode: NetworkMode;
  state: 'setting-up' | 'ready';
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
  warnings: string[];
  createdAt: string;
  bootId: string;
}

const IFNAME = 'eth0';

export const DEFAULT_HOST_STATE_DIR = '/run/layerbox/network';

/** host-local lease file names are addresses; everything else in its directory is its own bookkeeping */
const isLeaseName = (n: string) => /^[0-9a-f.:]+$/i.test(n);

export class NetworkManager {
  readonly stateDir: string;
  readonly hostStateDir: string;
  readonly net: BridgeNetworkConfig;
  readonly pluginDirs: string[];
  private mtu: number | undefined;

  constructor(opts: NetworkManagerOptions) {
    this.stateDir = join(opts.root, 'network');
    this.hostStateDir = opts.hostStateDir ?? DEFAULT_HOST_STATE_DIR;
    this.net = { ...DEFAULT_BRIDGE_NETWORK, ...opts.network };
    this.pluginDirs = opts.pluginDirs ?? DEFAULT_PLUGIN_DIRS;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(this.net.bridge)) {
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
  /** host-local's dataDir, shared by every store on the bridge; leases are files under ipamDir/<network name>/ */
  get ipamDir(): string {
    return this.bridgeIpamDir(this.net.bridge);
  }
  private bridgeIpamDir(bridge: string): string {
    return join(this.hostStateDir, 'ipam', bridge);
  }
  /** where this store kept its leases before they were shared per bridge */
  private get legacyIpamDir(): string {
    return join(this.stateDir, 'ipam');
  }
  private attachmentPath(id: string): string {
    return join(this.stateDir, 'attachments', `${id}.json`);
  }

  /** The conflist of the bridge network: bridge + host-local, portmap, firewall. */
  async confList(variant: ConfVariant = 'ports'): Promise<CniConfList> {
    // the bridge, once it exists, has the MTU it was made with: no `ip route` per container
    const mtu = this.net.mtu ?? (this.mtu ??= bridgeMtu(this.net.bridge) ?? (await defaultRouteMtu()));
    const list: CniConfList = {
      cniVersion: '1.0.0',
      name: this.net.name,
      plugins: [
        {
          type: 'bridge',
          bridge: this.net.bridge,
          isGateway: true,
          ipMasq: variant === 'legacy',
          hairpinMode: true,
          mtu,
          ipam: {
            type: 'host-local',
            dataDir: this.ipamDir,
            ranges: [[{ subnet: this.net.subnet, gateway: this.net.gateway }]],
            routes: [{ dst: '0.0.0.0/0' }],
          },
        },
        { type: 'portmap', snat: true, capabilities: { portMappings: true } },
        { type: 'firewall', backend: 'iptables' },
      ],
    };
    if (variant === 'plain') list.plugins = list.plugins.slice(0, 1);
    return list;
  }

  /** [table, rule] of the subnet-wide rules, as iptables arguments after -A/-C/-D. */
  private hostRules(): [string, string[]][] {
    const tag = ['-m', 'comment', '--comment', `layerbox ${this.net.name}`];
    return [
      ['nat', ['POSTROUTING', '-s', this.net.subnet, '!', '-o', this.net.bridge, ...tag, '-j', 'MASQUERADE']],
      ['filter', ['FORWARD', '-i', this.net.bridge, ...tag, '-j', 'ACCEPT']],
      ['filter', ['FORWARD', '-o', this.net.bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', ...tag, '-j', 'ACCEPT']],
    ];
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
   * - the two subnet-wide rules that replace per-container NAT and forwarding work (what
   *   Docker does for docker0): masquerade traffic leaving the subnet, accept forwarding to
   *   and from the bridge. Removed by prune.
   */
  private async ensureHostRules(signal?: AbortSignal): Promise<void> {
    const marker = join(this.hostStateDir, 'rules', this.net.bridge);
    const want = `${bootId()} ${this.net.name} ${this.net.subnet}\n`;
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
    for (const [table, r] of this.hostRules()) {
      const check = await run('iptables', ['-w', '-t', table, '-C', ...r], { allowFailure: true, signal });
      if (check.code !== 0) await run('iptables', ['-w', '-t', table, table === 'filter' ? '-I' : '-A', ...r], { signal });
    }
    await run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], { allowFailure: true, signal });
    await mkdirp(dirname(marker), 0o700);
    await writeFileAtomic(marker, want, 0o600);
  }

  /** Removes the subnet-wide rules (prune); the loopback guard stays (see ensureHostRules). */
  private async removeHostRules(): Promise<void> {
    for (const [table, r] of this.hostRules()) {
      while ((await run('iptables', ['-w', '-t', table, '-D', ...r], { allowFailure: true })).code === 0) {
        /* remove every copy */
      }
    }
    await rm(join(this.hostStateDir, 'rules', this.net.bridge), { force: true });
    await rm(join(this.stateDir, 'host-rules'), { force: true }); // the per-store marker of earlier versions
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
   * Readies the bridge's shared lease directory for an allocation (under the host lock):
   * - leases from another boot are dropped: every container that held one died with it
   *   (their stores' teardowns then find nothing of theirs left, which is fine);
   * - one network name per bridge: host-local keeps a directory per network name, and two
   *   of them on one bridge would hand out the same addresses again;
   * - leases this store kept in its own directory before leases were shared (containers still
   *   running across an upgrade) are moved over, so that nobody else gets their addresses.
   */
  private async prepareLeases(): Promise<void> {
    const dir = this.ipamDir;
    await mkdirp(dir, 0o700);
    const bootFile = join(dir, 'boot-id');
    const boot = bootId();
    if ((await readFile(bootFile, 'utf8').catch(() => '')).trim() !== boot) {
      for (const n of await readdir(dir)) if (n !== 'boot-id') await rm(join(dir, n), { recursive: true, force: true });
      await writeFileAtomic(bootFile, `${boot}\n`, 0o600);
    }
    for (const n of await readdir(dir, { withFileTypes: true })) {
      if (!n.isDirectory() || n.name === this.net.name) continue;
      const held = (await readdir(join(dir, n.name)).catch(() => [] as string[])).filter(isLeaseName);
      if (held.length > 0) {
        throw conflict('BRIDGE_IN_USE', `bridge ${this.net.bridge} is in use by network ${n.name} (${held.length} address(es) leased)`, {
          where: this.net.bridge,
          hint: `use network name ${n.name} for this bridge, or another bridge`,
        });
      }
    }
    const legacy = join(this.legacyIpamDir, this.net.name);
    if (!existsSync(legacy)) return;
    const shared = join(dir, this.net.name);
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
   * Gives a container its network. bridge: a netns with lo and eth0 on the bridge, NAT
   * outbound, published ports; none: a netns with only lo up; host: nothing to create.
   * Writes the etc files when etcDir is given. Idempotent per container: an earlier
   * attachment of the same id is torn down first. On failure nothing is left behind.
   */
  async setup(req: SetupRequest, opts: { signal?: AbortSignal } = {}): Promise<NetworkAttachment> {
    return (await this.setupWhile(req, async () => undefined, opts))[0];
  }

  /**
   * setup(), running `during` as soon as the namespace and the etc files exist — while the
   * interfaces are still being made (CNI ADD). An OCI runtime can `create` the container in
   * the namespace meanwhile: the process does not run before `start`. The hosts file gets
   * the container's address, in place (it is the inode the runtime bind-mounts), once ADD
   * has allocated it. If either side fails, the network is torn down after `during` settled
   * and the first error is thrown; undoing what `during` made is the caller's.
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
      const leftover =
        (await this.readAttachment(id).catch(() => true)) ||
        (await readCache(this.cacheDir, this.net.name, id, IFNAME).catch(() => true)) ||
        existsSync(this.netnsPath(id));
      if (leftover) {
        await this.teardownLocked(id, opts);
      }
      att = {
        containerId: id,
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
        await this.checkSubnetFree(opts.signal);
        await this.prepareLeases();
        // port bookkeeping (an iptables scan) only for containers that publish ports
        att.ports = mappings.length ? await allocatePorts(mappings, await this.heldPorts(id), opts) : [];
        att.variant = att.ports.length ? 'ports' : 'plain';
        att.networkName = this.net.name;
        att.bridge = this.net.bridge;
        att.ifName = IFNAME;
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
        if (req.etcDir) att.etcFiles = await writeEtcFiles(req.etcDir, await this.etcContent({ ...att, gateway: att.gateway ?? (mode === 'bridge' ? this.net.gateway : undefined) }, req, extraHosts));
        trace('network: etc files written');
        side = during({ ...(att.netnsPath ? { netnsPath: att.netnsPath } : {}), ...(att.etcFiles ? { etcFiles: att.etcFiles } : {}) });
        side.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
        started = true;
        lo = att.netnsPath ? loopbackUp(att.netnsPath, id, { pluginDirs: this.pluginDirs, signal: opts.signal }) : undefined;
        lo?.catch(() => {});
        const added = mode === 'bridge' ? this.addBridge(att, opts.signal) : undefined;
        added?.catch(() => {});
        if (added) {
          Object.assign(att, describeResult(await added, att.netnsPath!));
          trace('network: CNI ADD done');
          if (att.etcFiles && att.ipAddress) {
            // In place, not by rename: the runtime may already have bind-mounted this inode.
            // Nothing reads it before the container starts, after `during` has settled.
            await writeFile(att.etcFiles.hosts, this.bridgeHosts(att, req, extraHosts));
          }
        }
        await lo;
        trace('network: lo up');
        att.state = 'ready';
        await this.writeAttachment(att);
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
   * Undoes setup: CNI DEL (with the cached result; works when the netns is already gone,
   * e.g. after a reboot), a sweep of any iptables rule left for the container, the netns,
   * the port reservations and the record. Idempotent; a container never set up is fine.
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

  /** CNI CHECK of a bridge attachment (is the interface, address, route, rule still there?). */
  async check(containerId: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const a = await this.readAttachment(containerId);
    if (!a || a.mode !== 'bridge' || !a.netnsPath) return;
    if (!(await isNetns(a.netnsPath))) {
      throw notFound('NETNS_GONE', `the network namespace of container ${containerId} is gone`, { where: a.netnsPath });
    }
    await checkNetworkList(
      await this.confList(a.variant ?? 'legacy'),
      { containerId, netns: a.netnsPath, ifName: IFNAME },
      { cacheDir: this.cacheDir, pluginDirs: this.pluginDirs, signal: opts.signal },
    );
  }

  /**
   * When no container of this store is attached and no other store holds an address on the
   * bridge: deletes the bridge, its subnet-wide rules, its lease directory and the CNI chains
   * the plugins share if nothing else uses them (Docker keeps docker0; this is for
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
      if (existsSync(`/sys/class/net/${this.net.bridge}`)) await run('ip', ['link', 'del', this.net.bridge], { allowFailure: true });
      await pruneSharedChains();
      await this.removeHostRules();
      await rm(this.ipamDir, { recursive: true, force: true });
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
  private async fromEarlierBoot(att: NetworkAttachment | undefined, netName: string, id: string): Promise<boolean> {
    if (att?.bootId) return att.bootId !== bootId();
    const bt = bootTimeMs();
    if (bt === undefined) return false;
    for (const p of [this.attachmentPath(id), cachePath(this.cacheDir, netName, id, IFNAME)]) {
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

  /** Caller holds both locks. */
  private async teardownLocked(id: string, opts: { signal?: AbortSignal }): Promise<void> {
    throwIfAborted(opts.signal);
    let att: NetworkAttachment | undefined;
    try {
      att = await this.readAttachment(id);
    } catch (e) {
      if (!isEngineError(e) || e.code !== 'ATTACHMENT_CORRUPT') throw e;
    }
    // the network the container was attached to, even if this manager's config changed since
    const netName = att?.networkName ?? this.net.name;
    const bridge = att?.bridge ?? this.net.bridge;
    const netns = att?.netnsPath ?? this.netnsPath(id);
    const live = await isNetns(netns);
    let err: unknown;
    let cached: CniCacheEntry | undefined;
    try {
      cached = await readCache(this.cacheDir, netName, id, IFNAME);
    } catch (e) {
      // unreadable: DEL cannot be run with it; the sweep and the lease scan below clean up instead
      if (!isEngineError(e, 'data-loss')) throw e;
      await removeCache(this.cacheDir, netName, id, IFNAME);
    }
    if ((cached || att?.mode === 'bridge') && !live && (await this.fromEarlierBoot(att, netName, id))) {
      // Made under an earlier boot: its interfaces and rules died with it, and its address may
      // have been leased again since (leases do not outlive a boot). No CNI DEL — the firewall
      // plugin deletes forwarding rules by address, which may be another container's now — only
      // what is keyed by this container's id: rules restored by an iptables-restore at boot,
      // its leases, its cache entry.
      await sweepContainerRules(netName, id, []);
      await this.releaseLeases(bridge, netName, id);
      await removeCache(this.cacheDir, netName, id, IFNAME);
      trace('network: attachment of an earlier boot released');
    } else if (cached || att?.mode === 'bridge') {
      try {
        await delNetworkList(
          { ...(await this.confList(att?.variant ?? 'legacy')), name: netName },
          { containerId: id, netns: live ? netns : '', ifName: IFNAME },
          { cacheDir: this.cacheDir, pluginDirs: this.pluginDirs },
        );
      } catch (e) {
        err = e;
      }
      // Safety net: what a DEL could not remove (masquerade rules when the netns was gone).
      // A plain attachment made no iptables rules: nothing to sweep when its DEL worked.
      // Addresses another container holds now are left out (rules for them are its rules).
      if (err || att?.variant !== 'plain') {
        const ips = (cached?.result?.ips ?? []).map((i) => i.address.split('/')[0]!);
        if (att?.ipAddress) ips.push(att.ipAddress);
        const mine: string[] = [];
        for (const ip of new Set(ips)) if (!(await this.leasedToOther(bridge, netName, ip, id))) mine.push(ip);
        await sweepContainerRules(netName, id, mine);
      }
      if (!err) await this.releaseLeases(bridge, netName, id);
      trace('network: CNI DEL done');
    }
    await removeNetns(netns);
    trace('network: netns removed');
    if (err) throw err; // the record stays for a retry
    await rm(this.attachmentPath(id), { force: true });
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

  /** Before the bridge exists: refuse a subnet that a host route already covers. */
  /** CNI ADD of the bridge network (after the subnet-wide rules exist). */
  private async addBridge(att: NetworkAttachment, signal?: AbortSignal): Promise<CniResult> {
    await this.ensureHostRules(signal);
    return addNetworkList(
      await this.confList(att.variant),
      { containerId: att.containerId, netns: att.netnsPath!, ifName: IFNAME, capabilityArgs: { portMappings: toCniPortMappings(att.ports) } },
      { cacheDir: this.cacheDir, pluginDirs: this.pluginDirs, signal },
    );
  }

  private async checkSubnetFree(signal?: AbortSignal): Promise<void> {
    if (existsSync(`/sys/class/net/${this.net.bridge}`)) return;
    const r = await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all'], { allowFailure: true, signal });
    if (r.code !== 0) return;
    let routes: { dst?: string; dev?: string; type?: string }[] = [];
    try {
      routes = JSON.parse(r.stdout) as typeof routes;
    } catch {
      return;
    }
    const mine = parseCidr4(this.net.subnet);
    for (const rt of routes) {
      if (!rt.dst || rt.dst === 'default' || rt.dev === this.net.bridge) continue;
      if (rt.type && rt.type !== 'unicast') continue;
      let c;
      try {
        c = parseCidr4(rt.dst);
      } catch {
        continue;
      }
      if (c.prefix === 0) continue;
      if (cidrOverlaps(c, mine)) {
        throw conflict('SUBNET_IN_USE', `subnet ${this.net.subnet} of network ${this.net.name} overlaps the host route ${rt.dst} on ${rt.dev}`, {
          where: this.net.subnet,
          hint: 'configure another subnet for the layerbox bridge network',
        });
      }
    }
  }

  private bridgeHosts(att: NetworkAttachment, req: SetupRequest, extraHosts: ReturnType<typeof parseExtraHost>[]): string {
    return buildHosts({ hostname: att.hostname, domainname: req.domainname, ip: att.ipAddress, extraHosts, gateway: att.gateway });
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

/** When this boot began (btime of /proc/stat), in ms since the epoch. */
function bootTimeMs(): number | undefined {
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    return m ? Number(m[1]) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** MTU of the interface the default route uses (containers then never exceed the uplink's). */
function bridgeMtu(bridge: string): number | undefined {
  try {
    const mtu = Number(readFileSync(`/sys/class/net/${bridge}/mtu`, 'utf8').trim());
    return mtu >= 576 && mtu <= 65535 ? mtu : undefined;
  } catch {
    return undefined;
  }
}

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
