/** engine.system: disk usage (df), info, version, check. */
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
    return { LayersSize: d.total, Images, Containers, Volumes, BuildCache: buildCacheDf(this.core) };
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
      OperatingSystem: 'Linux',
      OSType: 'linux',
      OSVersion: '',
      Architecture: process.arch === 'x64' ? 'x86_64' : process.arch,
      KernelVersion: release(),
      NCPU: availableParallelism(),
      MemTotal: totalmem(),
      Name: hostname(),
      ServerVersion: VERSION,
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: { InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {}, Mirrors: [] },
      SecurityOptions: ['name=seccomp,profile=default'],
      CgroupDriver: 'cgroupfs',
      LoggingDriver: 'k8s-file',
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Log: ['k8s-file'] },
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

function goArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
}
