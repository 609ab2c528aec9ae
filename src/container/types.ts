/** Container records: what `create` decided (Docker's Config and HostConfig) and the live State. */
import type { ContainerConfig } from '../oci/types.js';

/** 'creating': recorded before anything else is made (hidden from ps; swept when its creator died). */
export type ContainerStatus = 'creating' | 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead' | 'removing';

export interface MountSpec {
  Type: 'bind' | 'volume' | 'tmpfs';
  /** bind: absolute host path; volume: volume name ('' for anonymous until created) */
  Source: string;
  Target: string;
  ReadOnly: boolean;
  /** tmpfs options */
  TmpfsOptions?: string[];
}

/** What a container asks of one network (the Engine API's EndpointSettings, as configured). */
export interface EndpointConfig {
  Aliases?: string[];
  IPAMConfig?: { IPv4Address?: string } | null;
  /** the network's ID when the container was connected */
  NetworkID?: string;
}

/**
 * How a container joins networks: its mode and, for bridge mode, the networks in order
 * (NetworkMode's first), as they are named in its configuration.
 */
export function containerNetworks(hc: Pick<HostConfig, 'NetworkMode' | 'Networks'>): { mode: 'bridge' | 'host' | 'none'; networks: { name: string; config: EndpointConfig }[] } {
  const m = hc.NetworkMode === 'default' || !hc.NetworkMode ? 'bridge' : hc.NetworkMode;
  if (m === 'host' || m === 'none') return { mode: m, networks: [] };
  if (!hc.Networks) return { mode: 'bridge', networks: [{ name: m, config: {} }] };
  const names = Object.keys(hc.Networks).sort((a, b) => (a === m ? -1 : b === m ? 1 : 0));
  return { mode: 'bridge', networks: names.map((name) => ({ name, config: hc.Networks![name]! })) };
}

/**
 * A mount point's Mode as dockerd shows it: the mode of its `-v` spec (`ro`, `rw,z`), `z`
 * for a named volume given without one (or by --mount), '' for a bind without one and for
 * an anonymous volume (`-v /data`, an image's VOLUME).
 */
export function mountMode(hc: Pick<HostConfig, 'Binds' | 'Mounts'>, target: string): string {
  const norm = (p: string) => p.replace(/\/+$/, '') || '/';
  for (const b of hc.Binds) {
    const [src = '', dst = '', mode] = b.split(':');
    if (norm(dst) !== norm(target)) continue;
    return mode ?? (src.startsWith('/') ? '' : 'z');
  }
  const m = hc.Mounts.find((x) => norm(x.Target) === norm(target));
  return m?.Type === 'volume' && m.Source ? 'z' : '';
}

/** What `create`/`run` flags decided, with Docker's field names where Docker has them. */
export interface HostConfig {
  Binds: string[];
  Mounts: MountSpec[];
  PortBindings: string[];
  PublishAllPorts: boolean;
  /** 'bridge' | 'host' | 'none', or the name of a user-defined network (the first one the container joins) */
  NetworkMode: string;
  /**
   * The networks the container joins when it starts (connect and disconnect change them),
   * keyed by name, with what was asked for on each; absent: NetworkMode's alone.
   */
  Networks?: Record<string, EndpointConfig>;
  Privileged: boolean;
  ReadonlyRootfs: boolean;
  CapAdd: string[];
  CapDrop: string[];
  SecurityOpt: string[];
  /** bytes; 0 = unlimited */
  Memory: number;
  NanoCpus: number;
  PidsLimit: number;
  // more resources (docker update, and create bodies that give them); absent = unset
  CpuShares?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  MemoryReservation?: number;
  /** bytes of memory + swap; -1 unlimited; unset: twice Memory where swap is accounted */
  MemorySwap?: number;
  BlkioWeight?: number;
  Init: boolean;
  AutoRemove: boolean;
  Dns: string[];
  DnsSearch: string[];
  DnsOptions: string[];
  ExtraHosts: string[];
  GroupAdd: string[];
  ShmSize: number;
  Sysctls: Record<string, string>;
  Ulimits: { Name: string; Soft: number; Hard: number }[];
  Runtime: string;
  /** Docker's restart policy: '' or 'no', 'always', 'unless-stopped', 'on-failure' (with a retry cap) */
  RestartPolicy?: { Name: string; MaximumRetryCount: number };
}

export interface ContainerState {
  Status: ContainerStatus;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  /** boot the container was started in: after a reboot it is stopped, whatever the record says */
  BootId?: string;
  ConmonPid?: number;
  RestartCount?: number;
  /** attached network resources to release (set between network setup and teardown) */
  NetworkAttached?: boolean;
  /**
   * the upper dir's inodes are shared with a committed layer: before the next write it is
   * replaced by an empty one (the layer below holds it all), or copied (stores of older
   * versions, where no layer sits below it)
   */
  UpperShared?: boolean;
  /** set with Status 'removing': the interrupted removal also removes anonymous volumes */
  RemoveVolumes?: boolean;
  /** stopped or killed by hand (Docker's HasBeenManuallyStopped): no restart of that exit; unless-stopped remembers it */
  ManuallyStopped?: boolean;
  /** the restart policy's last back-off (ms; 0: none yet) */
  RestartBackoffMs?: number;
  /** Status 'restarting': when the pending restart is due */
  RestartAt?: string;
  /** Status 'restarting': the process waiting to restart it (conmon's exit hook) */
  RestartWaiter?: { pid: number; start: number };
  /** the run mounted volumes whose unmount events are still to come */
  VolumesMounted?: boolean;
}

export interface ContainerRecord {
  id: string;
  name: string;
  imageId: string;
  /** the image as the user named it */
  imageName: string;
  snapshot: string;
  created: string;
  /** Docker's .Config: the image config merged with the flags */
  config: ContainerConfig;
  hostConfig: HostConfig;
  state: ContainerState;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function initialState(): ContainerState {
  return {
    Status: 'created',
    Running: false,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 0,
    ExitCode: 0,
    Error: '',
    StartedAt: ZERO_TIME,
    FinishedAt: ZERO_TIME,
    RestartCount: 0,
  };
}

export function defaultHostConfig(): HostConfig {
  return {
    Binds: [],
    Mounts: [],
    PortBindings: [],
    PublishAllPorts: false,
    NetworkMode: 'bridge',
    Privileged: false,
    ReadonlyRootfs: false,
    CapAdd: [],
    CapDrop: [],
    SecurityOpt: [],
    Memory: 0,
    NanoCpus: 0,
    PidsLimit: 0,
    Init: false,
    AutoRemove: false,
    Dns: [],
    DnsSearch: [],
    DnsOptions: [],
    ExtraHosts: [],
    GroupAdd: [],
    ShmSize: 64 * 1024 * 1024,
    Sysctls: {},
    Ulimits: [],
    Runtime: '',
  };
}
