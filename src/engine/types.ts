/**
 * The engine's public values, in the shapes of the Docker Engine API v1.41 (field names and
 * meanings as in its spec), so that every front — the CLI, the API server, the explorer and
 * TypeScript programs — hands the engine the same requests and gets the same answers.
 */
import type { ContainerConfig as OciContainerConfig, ImageConfig, Platform } from '../oci/types.js';
import type { NetCounters } from '../runtime/cgroup.js';

export type { ImageConfig, Platform };

/** Docker's filters: `{"status": ["running", "paused"], "label": ["a=b"]}`. Values of one key are ORed, keys ANDed. */
export type Filters = Record<string, string[]>;

// ------------------------------------------------------------------ containers: requests

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** `"80/tcp": [{HostIp: "", HostPort: "8080"}]` */
export type PortMap = Record<string, PortBinding[] | null>;

export interface RestartPolicy {
  /** '' | 'no' | 'always' | 'unless-stopped' | 'on-failure' */
  Name: string;
  MaximumRetryCount?: number;
}

export interface Mount {
  Target: string;
  Source?: string;
  Type: 'bind' | 'volume' | 'tmpfs' | 'npipe';
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string>; DriverConfig?: { Name?: string; Options?: Record<string, string> } };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

export interface HealthConfig {
  /** [] inherit, ["NONE"], ["CMD", args…], ["CMD-SHELL", command] */
  Test?: string[];
  /** nanoseconds; 0 inherits */
  Interval?: number;
  Timeout?: number;
  Retries?: number;
  StartPeriod?: number;
}

/** HostConfig of a container-create body (the fields this engine acts on, and the ones it passes through). */
export interface HostConfig {
  Binds?: string[] | null;
  ContainerIDFile?: string;
  LogConfig?: { Type: string; Config?: Record<string, string> };
  NetworkMode?: string;
  PortBindings?: PortMap | null;
  RestartPolicy?: RestartPolicy;
  AutoRemove?: boolean;
  VolumeDriver?: string;
  VolumesFrom?: string[] | null;
  Mounts?: Mount[] | null;
  CapAdd?: string[] | null;
  CapDrop?: string[] | null;
  CgroupnsMode?: string;
  Dns?: string[] | null;
  DnsOptions?: string[] | null;
  DnsSearch?: string[] | null;
  ExtraHosts?: string[] | null;
  GroupAdd?: string[] | null;
  IpcMode?: string;
  Cgroup?: string;
  Links?: string[] | null;
  OomScoreAdj?: number;
  PidMode?: string;
  Privileged?: boolean;
  PublishAllPorts?: boolean;
  ReadonlyRootfs?: boolean;
  SecurityOpt?: string[] | null;
  StorageOpt?: Record<string, string> | null;
  /** `{"/run": "rw,noexec,size=65536k"}` */
  Tmpfs?: Record<string, string> | null;
  UTSMode?: string;
  UsernsMode?: string;
  ShmSize?: number;
  Sysctls?: Record<string, string> | null;
  Runtime?: string;
  ConsoleSize?: [number, number] | null;
  Isolation?: string;
  MaskedPaths?: string[] | null;
  ReadonlyPaths?: string[] | null;
  // Resources
  CpuShares?: number;
  Memory?: number;
  CgroupParent?: string;
  BlkioWeight?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  Devices?: { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }[] | null;
  DeviceCgroupRules?: string[] | null;
  MemoryReservation?: number;
  MemorySwap?: number;
  MemorySwappiness?: number | null;
  NanoCpus?: number;
  OomKillDisable?: boolean | null;
  Init?: boolean | null;
  PidsLimit?: number | null;
  Ulimits?: Ulimit[] | null;
}

export interface EndpointSettings {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
  Links?: string[] | null;
  Aliases?: string[] | null;
  NetworkID?: string;
  EndpointID?: string;
  Gateway?: string;
  IPAddress?: string;
  IPPrefixLen?: number;
  IPv6Gateway?: string;
  GlobalIPv6Address?: string;
  GlobalIPv6PrefixLen?: number;
  MacAddress?: string;
  DriverOpts?: Record<string, string> | null;
}

/** Config (the image config's fields plus the container's own), as a create body carries it. */
export interface ContainerConfig extends Omit<OciContainerConfig, 'Healthcheck'> {
  Healthcheck?: HealthConfig;
  NetworkDisabled?: boolean;
  MacAddress?: string;
}

/** POST /containers/create */
export interface ContainerCreateBody extends ContainerConfig {
  Image: string;
  HostConfig?: HostConfig;
  NetworkingConfig?: { EndpointsConfig?: Record<string, EndpointSettings> };
}

export interface ContainerCreateOptions {
  name?: string;
  platform?: string;
  /** `--pull`: missing (default), always, never */
  pull?: 'missing' | 'always' | 'never';
  signal?: AbortSignal;
}

export interface ContainerCreateResponse {
  Id: string;
  Warnings: string[];
}

// ------------------------------------------------------------------ containers: answers

export interface Port {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: 'tcp' | 'udp' | 'sctp';
}

export interface MountPoint {
  Type: string;
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

export type ContainerStateStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

/** GET /containers/json */
export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  /** unix seconds */
  Created: number;
  Ports: Port[];
  SizeRw?: number;
  SizeRootFs?: number;
  Labels: Record<string, string>;
  State: ContainerStateStatus;
  /** "Up 5 minutes", "Exited (0) 2 hours ago", as Docker words it */
  Status: string;
  HostConfig: { NetworkMode: string };
  NetworkSettings: { Networks: Record<string, EndpointSettings> };
  Mounts: MountPoint[];
}

export interface ContainerListOptions {
  all?: boolean;
  /** the n most recently created (includes all states) */
  limit?: number;
  size?: boolean;
  filters?: Filters;
}

export interface HealthcheckResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface Health {
  Status: 'none' | 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: HealthcheckResult[];
}

export interface ContainerState {
  Status: ContainerStateStatus;
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
  Health?: Health;
}

/** GET /containers/{id}/json (the engine's inspect document; typed loosely beyond its top level). */
export interface ContainerInspect {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: ContainerState;
  Image: string;
  Name: string;
  RestartCount: number;
  Config: ContainerConfig;
  HostConfig: Record<string, unknown>;
  NetworkSettings: Record<string, unknown>;
  Mounts: MountPoint[];
  [k: string]: unknown;
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

export interface WaitResponse {
  StatusCode: number;
  Error?: { Message: string } | null;
}

export interface LogsOptions {
  follow?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  /** unix milliseconds */
  since?: number;
  until?: number;
  timestamps?: boolean;
  /** lines from the end; undefined = all */
  tail?: number;
  signal?: AbortSignal;
}

export interface LogEntry {
  stream: 'stdout' | 'stderr';
  /** RFC 3339 with nanoseconds */
  time: string;
  data: Buffer;
}

/** Where an attached container's streams go (Node streams; the API server passes its socket's halves). */
export interface AttachStreams {
  stdin?: NodeJS.ReadableStream | null;
  stdout?: NodeJS.WritableStream | null;
  stderr?: NodeJS.WritableStream | null;
}

export interface ExecConfig {
  Cmd: string[];
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  DetachKeys?: string;
  /** the docker CLI says so for `exec -d` (the start request decides) */
  Detach?: boolean;
  Tty?: boolean;
  Env?: string[];
  Privileged?: boolean;
  User?: string;
  WorkingDir?: string;
  ConsoleSize?: [number, number] | null;
}

export interface ExecInspect {
  ID: string;
  Running: boolean;
  ExitCode: number | null;
  ProcessConfig: { tty: boolean; entrypoint: string; arguments: string[]; privileged: boolean; user?: string };
  OpenStdin: boolean;
  OpenStderr: boolean;
  OpenStdout: boolean;
  ContainerID: string;
  Pid: number;
  CanRemove: boolean;
  DetachKeys: string;
}

/** `exec` run to completion with its output collected. */
export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

export interface ChangeItem {
  /** 0 modified, 1 added, 2 deleted */
  Kind: 0 | 1 | 2;
  Path: string;
}

export interface TopResponse {
  Titles: string[];
  Processes: string[][];
}

/** X-Docker-Container-Path-Stat */
export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits */
  mode: number;
  mtime: string;
  linkTarget: string;
}

export interface CommitOptions {
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  /** default true */
  pause?: boolean;
  /** Dockerfile instructions (CMD, ENV, …) applied to the new image's config */
  changes?: string[];
  /** a config merged over the container's (POST /commit body) */
  config?: ContainerConfig;
  signal?: AbortSignal;
}

/**
 * POST /containers/{id}/update: the restart policy and the resource limits (the fields of
 * HostConfig's Resources). The restart policy applies from the next exit on.
 */
export interface ContainerUpdateBody extends Pick<
  HostConfig,
  | 'CpuShares'
  | 'Memory'
  | 'CgroupParent'
  | 'BlkioWeight'
  | 'CpuPeriod'
  | 'CpuQuota'
  | 'CpusetCpus'
  | 'CpusetMems'
  | 'Devices'
  | 'DeviceCgroupRules'
  | 'MemoryReservation'
  | 'MemorySwap'
  | 'MemorySwappiness'
  | 'NanoCpus'
  | 'OomKillDisable'
  | 'Init'
  | 'PidsLimit'
  | 'Ulimits'
> {
  RestartPolicy?: RestartPolicy;
  KernelMemory?: number;
  CpuRealtimePeriod?: number;
  CpuRealtimeRuntime?: number;
  BlkioWeightDevice?: unknown[] | null;
  BlkioDeviceReadBps?: unknown[] | null;
  BlkioDeviceWriteBps?: unknown[] | null;
  BlkioDeviceReadIOps?: unknown[] | null;
  BlkioDeviceWriteIOps?: unknown[] | null;
}

export interface ContainerUpdateResponse {
  Warnings: string[];
}

/** attach's options (the query of POST /containers/{id}/attach) */
export interface AttachOptions {
  /** replay the container's log first */
  logs?: boolean;
  /** stay attached (default true); false: only the log */
  stream?: boolean;
  /** which output streams the log replay sends (default both) */
  stdout?: boolean;
  stderr?: boolean;
  /** Docker's key list; default ctrl-p,ctrl-q; '' disables */
  detachKeys?: string;
  /** the client went away: detach */
  signal?: AbortSignal;
  /** called once the request is accepted, before anything is written (the API hijacks the connection then) */
  onReady?: () => void;
}

/** An attached client: `done` when the stream ends (the container's output ended, or the client detached). */
export interface AttachHandle {
  done: Promise<void>;
  /** ends the attachment (the container keeps running) */
  detach: () => void;
  /** whether it ended by the detach keys */
  readonly detached: boolean;
  tty: boolean;
  openStdin: boolean;
}

export interface CpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

export interface BlkioStatEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

/** A network's counters in StatsJSON: the runtime's netns counters, under Docker's names. */
export type NetworkStats = NetCounters;

/** GET /containers/{id}/stats: Docker's StatsJSON */
export interface ContainerStats {
  /** RFC 3339 */
  read: string;
  preread: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: {
    io_service_bytes_recursive: BlkioStatEntry[] | null;
    io_serviced_recursive: BlkioStatEntry[] | null;
    io_queue_recursive: BlkioStatEntry[] | null;
    io_service_time_recursive: BlkioStatEntry[] | null;
    io_wait_time_recursive: BlkioStatEntry[] | null;
    io_merged_recursive: BlkioStatEntry[] | null;
    io_time_recursive: BlkioStatEntry[] | null;
    sectors_recursive: BlkioStatEntry[] | null;
  };
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: CpuStats;
  precpu_stats: CpuStats;
  memory_stats: { usage?: number; max_usage?: number; stats?: Record<string, number>; failcnt?: number; limit?: number };
  name: string;
  id: string;
  networks?: Record<string, NetworkStats>;
}

export interface ContainerPruneResponse {
  ContainersDeleted: string[];
  SpaceReclaimed: number;
}

// ------------------------------------------------------------------ images

/** GET /images/json */
export interface ImageSummary {
  Id: string;
  ParentId: string;
  RepoTags: string[];
  RepoDigests: string[];
  /** unix seconds */
  Created: number;
  Size: number;
  /** bytes shared with other images (-1 unless computed, as Docker) */
  SharedSize: number;
  VirtualSize: number;
  Labels: Record<string, string>;
  /** containers using the image (-1 unless computed, as Docker) */
  Containers: number;
}

export interface ImageListOptions {
  all?: boolean;
  filters?: Filters;
  digests?: boolean;
}

export interface HistoryItem {
  /** the image ID, or "<missing>" for layers of images not stored here */
  Id: string;
  /** unix seconds */
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

export interface ImageDeleteResponseItem {
  Untagged?: string;
  Deleted?: string;
}

export interface ImagePruneResponse {
  ImagesDeleted: ImageDeleteResponseItem[];
  SpaceReclaimed: number;
}

/**
 * Registry credentials for one call (Docker's AuthConfig, as X-Registry-Auth and POST /auth
 * carry it). Given to pull or push, they are used for that call only and never stored; an
 * empty object means anonymous (not the store's credentials file).
 */
export interface AuthConfig {
  username?: string;
  password?: string;
  /** the registry the credentials are for (default Docker Hub) */
  serveraddress?: string;
  /** an OAuth2 refresh token */
  identitytoken?: string;
  /** a bearer token used as is */
  registrytoken?: string;
  email?: string;
}

/** POST /auth */
export interface AuthResponse {
  Status: string;
  IdentityToken: string;
}

// ------------------------------------------------------------------ progress

/**
 * One progress message, in the shape of Docker's JSON progress stream (jsonmessage): the
 * API server writes it as one JSON line, the CLI draws it as Docker's CLI does.
 */
export interface ProgressMessage {
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
  /** the bar as text (deprecated in Docker's stream, still sent; the CLI draws its own from progressDetail) */
  progress?: string;
  /** build output */
  stream?: string;
  aux?: Record<string, unknown>;
  error?: string;
  errorDetail?: { message: string; code?: number };
}

/**
 * A long operation: iterate it for progress messages, await `result` for the outcome.
 * Either may be used alone; the work starts when either is first used.
 */
export interface Operation<R> extends AsyncIterable<ProgressMessage> {
  readonly result: Promise<R>;
}

export interface PullResult {
  /** the reference pulled, fully qualified */
  reference: string;
  id: string;
  digest: string;
  upToDate: boolean;
}

export interface PushResult {
  tag: string;
  digest: string;
  size: number;
}

export interface LoadResult {
  images: { id: string; tags: string[] }[];
}

// ------------------------------------------------------------------ volumes

export interface Volume {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt?: string;
  Status?: Record<string, unknown>;
  Labels: Record<string, string>;
  Scope: 'local' | 'global';
  Options: Record<string, string> | null;
  UsageData?: { Size: number; RefCount: number } | null;
}

export interface VolumeCreateBody {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string>;
  Labels?: Record<string, string>;
}

export interface VolumePruneResponse {
  VolumesDeleted: string[];
  SpaceReclaimed: number;
}

// ------------------------------------------------------------------ networks

export interface IPAMConfig {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

export interface IPAM {
  /** default */
  Driver?: string;
  Config?: IPAMConfig[] | null;
  Options?: Record<string, string> | null;
}

/** POST /networks/create */
export interface NetworkCreateRequest {
  Name: string;
  /** layerbox always refuses a second network of the same name (as Docker 23 does) */
  CheckDuplicate?: boolean;
  /** bridge (default) */
  Driver?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  IPAM?: IPAM | null;
  EnableIPv6?: boolean;
  /** driver options: com.docker.network.bridge.name, com.docker.network.driver.mtu, com.docker.network.bridge.enable_ip_masquerade are acted on */
  Options?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

export interface NetworkCreateResponse {
  Id: string;
  Warning: string;
}

/** A network's running container, as inspect lists it. */
export interface NetworkContainer {
  Name: string;
  EndpointID: string;
  MacAddress: string;
  /** address/prefix length */
  IPv4Address: string;
  IPv6Address: string;
}

/** GET /networks/{id} (and, with Containers empty, GET /networks) */
export interface Network {
  Name: string;
  Id: string;
  /** RFC 3339 with nanoseconds */
  Created: string;
  Scope: 'local' | 'global' | 'swarm';
  Driver: string;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: IPAMConfig[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Containers: Record<string, NetworkContainer>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

/** POST /networks/{id}/connect */
export interface NetworkConnectRequest {
  Container: string;
  EndpointConfig?: EndpointSettings | null;
}

/** POST /networks/{id}/disconnect */
export interface NetworkDisconnectRequest {
  Container: string;
  Force?: boolean;
}

export interface NetworkPruneResponse {
  NetworksDeleted: string[];
}

// ------------------------------------------------------------------ system

/** POST /build: the context as a tar stream (or a plain Dockerfile), a directory, or nothing with `remote`. */
export type ImageBuildInput = { stream: import('node:stream').Readable } | { dir: string } | Record<string, never>;

/** POST /build's query parameters (Docker's names), plus what a local front can give directly. */
export interface ImageBuildOptions {
  /** NAME[:TAG], each */
  t?: string[];
  /** the Dockerfile's path in the context (default Dockerfile) */
  dockerfile?: string;
  /** --build-arg: null takes no value (the ARG's default applies) */
  buildargs?: Record<string, string | null>;
  target?: string;
  nocache?: boolean;
  pull?: boolean;
  labels?: Record<string, string>;
  /** quiet: no build output, only the result */
  q?: boolean;
  /** remove intermediate containers after a successful build (default true) */
  rm?: boolean;
  /** always remove intermediate containers */
  forcerm?: boolean;
  /** RUN's network: default (bridge), bridge, host, none */
  networkmode?: string;
  /** HOST:IP, each */
  extrahosts?: string[];
  /** a URL of a tarball (or of a Dockerfile, text/plain) to build instead of a context */
  remote?: string;
  /** OS/ARCH[/VARIANT] for FROM scratch */
  platform?: string;
  /** layerbox: the Dockerfile's text, when it is not in the context (the CLI's `-f -`, or a file outside the context) */
  dockerfileContent?: string;
  /**
   * X-Registry-Config: credentials by registry (`https://index.docker.io/v1/`, `host:port`)
   * for the images FROM pulls, used for this build only. When given, a registry it does not
   * name is pulled from anonymously; when absent, the stored credentials apply.
   */
  registryAuth?: Record<string, AuthConfig>;
}

export interface BuildResponse {
  /** the image built */
  id: string;
  /** the tags it was given, familiar form */
  tags: string[];
  warnings: string[];
}

export interface BuildCachePruneResponse {
  CachesDeleted: string[];
  SpaceReclaimed: number;
}

export interface BuildCacheRecord {
  ID: string;
  Parent: string;
  Type: string;
  Description: string;
  InUse: boolean;
  Shared: boolean;
  Size: number;
  CreatedAt: string;
  LastUsedAt: string | null;
  UsageCount: number;
}

/** GET /system/df */
export interface SystemDf {
  /** bytes of all image layers, each counted once */
  LayersSize: number;
  Images: ImageSummary[];
  Containers: ContainerSummary[];
  Volumes: Volume[];
  BuildCache: BuildCacheRecord[];
  /** bytes of the build cache (deprecated in the API, still sent by dockerd 20.10) */
  BuilderSize: number;
}

export interface SystemVersion {
  Platform: { Name: string };
  Components: { Name: string; Version: string; Details?: Record<string, string> }[];
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  GitCommit: string;
  GoVersion: string;
  Os: string;
  Arch: string;
  KernelVersion: string;
  BuildTime: string;
}

export interface CheckReport {
  blobs: number;
  layers: number;
  images: number;
  problems: string[];
  /** what `repair` removed */
  repaired: string[];
}

/** GET /events */
export interface EngineEvent {
  Type: 'container' | 'image' | 'volume' | 'network' | 'daemon' | 'builder';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  /** unix seconds */
  time: number;
  timeNano: number;
  // the deprecated top-level fields Docker still sends for containers and images
  status?: string;
  id?: string;
  from?: string;
}

// ------------------------------------------------------------------ analysis (engine.analysis)

export type {
  ImageAnalysis,
  AnalysisLayer,
  WastedFile,
  ImageDetail,
  LayerDetail,
  HistoryStep,
  TreeEntry,
  TreeQuery,
  TreeListing,
  SearchResult,
  FileContent,
  EntryType,
  ModifiedReason,
} from '../image/analyze.js';
export type { Hidden } from '../image/layertree.js';

/** engine.analysis.store(): every image as a stack of layers, and who shares each layer. */
export interface StoreView {
  /** bytes of all layers, each counted once (`system df`'s LayersSize) */
  layersSize: number;
  images: {
    id: string;
    tags: string[];
    created: string | null;
    /** `system df -v` SIZE, SHARED SIZE, UNIQUE SIZE, CONTAINERS */
    size: number;
    sharedSize: number;
    uniqueSize: number;
    containers: number;
    /** what `rmi` of the image would free: its unique layers (0 while a container uses it) */
    rmiFrees: number;
    /** chainIDs, base first */
    chain: string[];
  }[];
  layers: {
    chainID: string;
    diffID: string;
    parent: string | null;
    /** the layer's size as `system df` counts it */
    size: number;
    /** how many images use the layer */
    refCount: number;
    images: string[];
    createdBy: string;
  }[];
}

/** engine.analysis.compare(a, b): two images' layers side by side, aligned by chainID. */
export interface LayerComparison {
  a: { id: string; tags: string[] };
  b: { id: string; tags: string[] };
  rows: {
    index: number;
    a: { index: number; chainID: string; diffID: string; createdBy: string; size: number } | null;
    b: { index: number; chainID: string; diffID: string; createdBy: string; size: number } | null;
    /** the same chainID: one layer, stored once, used by both */
    shared: boolean;
  }[];
  sharedLayers: number;
  sharedBytes: number;
}
