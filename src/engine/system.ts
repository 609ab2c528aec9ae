/** engine.system: disk usage (df), info, version, check. */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { release, hostname, totalmem, availableParallelism } from 'node:os';
import type { Core } from './core.js';
import { buildCacheDf } from './build.js';
import type { Containers } from './containers.js';
import type { Images } from './images.js';
import type { Volumes } from './volumes.js';
import type { CheckReport, ImageDeleteResponseItem, SystemDf, SystemVersion } from './types.js';

export const VERSION = '0.1.0';
export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.24';

export class System {
  constructor(
    private readonly core: Core,
    private readonly images: Images,
    private readonly containers: Containers,
    private readonly volumes: Volumes,
  ) {}

  /**
   * GET /system/df: every image with its shared and unique bytes and its containers, every
   * container with the size of its writable layer, every volume with its size and links,
   * and the build cache. Layers shared by several images are counted once in LayersSize.
   */
  async df(): Promise<SystemDf> {
    const d = this.core.imagesDf();
    const Images = await Promise.all(d.rows.map((r) => this.images.summary(r.image, { containers: r.containers, shared: r.shared })));
    const hasContainers = this.core.hasAnyContainer();
    const Containers = hasContainers ? await this.containers.list({ all: true, size: true }) : [];
    const Volumes = this.volumes.list({ usage: true });
    const BuildCache = buildCacheDf(this.core);
    return { LayersSize: d.total, Images, Containers, Volumes, BuildCache, BuilderSize: BuildCache.reduce((n, b) => n + b.Size, 0) };
  }

  version(): SystemVersion {
    return {
      Platform: { Name: 'layerbox' },
      Components: [{ Name: 'Engine', Version: VERSION, Details: { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, Os: 'linux', Arch: goArch(), KernelVersion: release() } }],
      Version: VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: '',
      GoVersion: `node ${process.version}`,
      Os: 'linux',
      Arch: goArch(),
      KernelVersion: release(),
      BuildTime: '',
    };
  }

  /** GET /info: the fields the docker CLI prints, from the store. */
  async info(): Promise<Record<string, unknown>> {
    const containers = this.core.hasAnyContainer() ? await this.containers.list({ all: true }) : [];
    const count = (s: string) => containers.filter((c) => c.State === s).length;
    return {
      ID: this.core.storeId(),
      Containers: containers.length,
      ContainersRunning: count('running'),
      ContainersPaused: count('paused'),
      ContainersStopped: containers.length - count('running') - count('paused'),
      Images: this.core.images.list().length,
      Driver: this.core.snapshots.name,
      DriverStatus: [['Backing Filesystem', 'extfs']],
      DockerRootDir: this.core.root,
      ...hostFeatures(),
      OSType: 'linux',
      Architecture: process.arch === 'x64' ? 'x86_64' : process.arch,
      KernelVersion: release(),
      NCPU: availableParallelism(),
      MemTotal: totalmem(),
      Name: hostname(),
      ServerVersion: VERSION,
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: this.registryConfig(),
      SecurityOptions: ['name=seccomp,profile=default'],
      CgroupDriver: 'cgroupfs',
      // conmon's k8s-file log, under the name clients know it by (as in inspect's LogConfig)
      LoggingDriver: 'json-file',
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Log: ['json-file'] },
      Runtimes: { runc: { path: 'runc' } },
      DefaultRuntime: 'runc',
      Swarm: { LocalNodeState: 'inactive', NodeID: '', NodeAddr: '', RemoteManagers: null, ControlAvailable: false, Error: '' },
      LiveRestoreEnabled: true,
      Isolation: '',
      Experimental: false,
      Debug: false,
      Labels: [],
      Warnings: [],
    };
  }

  /** info's RegistryConfig as dockerd fills it: insecure CIDRs, one IndexConfig per insecure host and for docker.io (with its mirrors). */
  private registryConfig(): Record<string, unknown> {
    const mirrors = this.core.mirrors();
    const cidrs = ['127.0.0.0/8'];
    const index: Record<string, { Name: string; Mirrors: string[]; Secure: boolean; Official: boolean }> = {};
    for (const raw of this.core.insecure()) {
      const e = raw.trim().replace(/^https?:\/\//, '').replace(/\/+$/, '');
      if (/^[0-9a-fA-F.:]+\/\d+$/.test(e)) {
        if (!cidrs.includes(e)) cidrs.push(e);
      } else if (e) index[e] = { Name: e, Mirrors: [], Secure: false, Official: false };
    }
    index['docker.io'] = { Name: 'docker.io', Mirrors: mirrors, Secure: true, Official: true };
    return { AllowNondistributableArtifactsCIDRs: [], AllowNondistributableArtifactsHostnames: [], InsecureRegistryCIDRs: cidrs, IndexConfigs: index, Mirrors: mirrors };
  }

  /**
   * Repairs what interrupted commands left behind, then verifies every blob, layer and image
   * and looks for what no record explains (partial copies, leftovers of containers that do
   * not exist); with `repair` those are removed too.
   */
  async check(opts: { repair?: boolean } = {}): Promise<CheckReport> {
    const r = await this.core.check(opts);
    return { blobs: r.blobs, layers: r.layers, images: r.images, problems: r.problems, repaired: r.repaired };
  }

  /** `system prune`: stopped containers, dangling images (every unused one with `all`), unused anonymous volumes with `volumes`. */
  async prune(opts: { all?: boolean; volumes?: boolean } = {}): Promise<{ ContainersDeleted: string[]; ImagesDeleted: ImageDeleteResponseItem[]; VolumesDeleted: string[]; SpaceReclaimed: number }> {
    const r = await this.core.systemPrune(opts);
    return { ContainersDeleted: r.containers, ImagesDeleted: r.images, VolumesDeleted: r.volumes, SpaceReclaimed: r.reclaimed };
  }
}

const readText = (p: string): string | undefined => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
};

/**
 * What `docker info` reports of the host, read as dockerd reads it: the distribution
 * (os-release), the cgroup controllers behind the resource limits (the CLI warns about
 * each one missing), forwarding and bridge netfilter.
 */
function hostFeatures(): Record<string, unknown> {
  const osr = readText('/etc/os-release') ?? '';
  const field = (k: string) => new RegExp(`^${k}="?([^"\n]*)"?$`, 'm').exec(osr)?.[1];
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const controllers = v2 ? (readText('/sys/fs/cgroup/cgroup.controllers') ?? '').trim().split(/\s+/) : [];
  const has = (c: string, v1File: string) => (v2 ? controllers.includes(c) : existsSync(`/sys/fs/cgroup/${v1File}`));
  const on = (p: string) => readText(p)?.trim() === '1';
  let nfd = 0;
  try {
    nfd = readdirSync('/proc/self/fd').length;
  } catch {
    /* no /proc */
  }
  return {
    OperatingSystem: field('PRETTY_NAME') ?? 'Linux',
    OSVersion: field('VERSION_ID') ?? '',
    CgroupVersion: v2 ? '2' : '1',
    MemoryLimit: has('memory', 'memory/memory.limit_in_bytes'),
    SwapLimit: v2 ? controllers.includes('memory') : existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes'),
    KernelMemory: !v2 && existsSync('/sys/fs/cgroup/memory/memory.kmem.limit_in_bytes'),
    KernelMemoryTCP: !v2 && existsSync('/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes'),
    CpuCfsPeriod: has('cpu', 'cpu/cpu.cfs_period_us'),
    CpuCfsQuota: has('cpu', 'cpu/cpu.cfs_quota_us'),
    CPUShares: has('cpu', 'cpu/cpu.shares'),
    CPUSet: has('cpuset', 'cpuset/cpuset.cpus'),
    PidsLimit: has('pids', 'pids/pids.max'),
    OomKillDisable: !v2 && existsSync('/sys/fs/cgroup/memory/memory.oom_control'),
    IPv4Forwarding: on('/proc/sys/net/ipv4/ip_forward'),
    BridgeNfIptables: on('/proc/sys/net/bridge/bridge-nf-call-iptables'),
    BridgeNfIp6tables: on('/proc/sys/net/bridge/bridge-nf-call-ip6tables'),
    NFd: nfd,
    NGoroutines: 0,
    SystemTime: new Date().toISOString(),
    NEventsListener: 0,
    ExperimentalBuild: false,
    HttpProxy: process.env.HTTP_PROXY ?? process.env.http_proxy ?? '',
    HttpsProxy: process.env.HTTPS_PROXY ?? process.env.https_proxy ?? '',
    NoProxy: process.env.NO_PROXY ?? process.env.no_proxy ?? '',
    GenericResources: null,
  };
}

function goArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
}
