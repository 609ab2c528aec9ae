/**
 * A container-create body (the Engine API's Config + HostConfig) → the container manager's
 * request, with the checks Docker's daemon makes (and its messages): mount specs, port
 * bindings, resources, network mode, restart policy. Every front goes through this, so the
 * CLI and the API server refuse the same things with the same words.
 */
import { isAbsolute } from 'node:path';
import { availableParallelism } from 'node:os';
import { invalidArgument } from '../errors/index.js';
import type { CreateRequest } from '../container/manager.js';
import type { HostConfig as InternalHostConfig, MountSpec } from '../container/types.js';
import type { ContainerCreateBody, HealthConfig, HostConfig, Mount, PortMap, RestartPolicy } from './types.js';

const VOLUME_MODES = ['ro', 'rw', 'z', 'Z', 'nocopy', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'consistent', 'cached', 'delegated'];

/** One `Binds` entry (`-v SRC:DST[:MODE]`), as the daemon's volume parser reads it. */
export function parseBind(spec: string): MountSpec {
  const parts = spec.split(':');
  let src = '';
  let dst: string;
  let mode = '';
  if (parts.length === 1) dst = parts[0]!;
  else if (parts.length === 2) {
    if (parts[1]!.startsWith('/')) [src, dst] = parts as [string, string];
    else {
      dst = parts[0]!;
      mode = parts[1]!;
    }
  } else if (parts.length === 3) [src, dst, mode] = parts as [string, string, string];
  else throw invalidArgument('INVALID_VOLUME', `invalid volume specification: '${spec}'`);
  if (!dst || !dst.startsWith('/')) throw invalidArgument('INVALID_VOLUME', `invalid volume specification: '${spec}': invalid mount config for type "volume": invalid mount path: '${dst}' mount path must be absolute`);
  const opts = mode ? mode.split(',') : [];
  for (const o of opts) if (!VOLUME_MODES.includes(o)) throw invalidArgument('INVALID_VOLUME', `invalid mode: ${o}`);
  const readOnly = opts.includes('ro');
  if (src && (isAbsolute(src) || src.startsWith('.'))) {
    if (!isAbsolute(src)) throw invalidArgument('INVALID_VOLUME', `invalid volume specification: '${spec}': bind source must be an absolute path`);
    return { Type: 'bind', Source: src, Target: dst, ReadOnly: readOnly };
  }
  return { Type: 'volume', Source: src, Target: dst, ReadOnly: readOnly };
}

function fromMount(m: Mount): MountSpec {
  if (!['bind', 'volume', 'tmpfs'].includes(m.Type)) throw invalidArgument('INVALID_MOUNT', `mount type unknown: ${JSON.stringify(m.Type)}`);
  if (!m.Target) throw invalidArgument('INVALID_MOUNT', 'invalid mount config: Target must not be empty');
  if (m.Type === 'bind' && !m.Source) throw invalidArgument('INVALID_MOUNT', 'invalid mount config for type "bind": field Source must not be empty');
  if (m.Type === 'tmpfs' && m.Source) throw invalidArgument('INVALID_MOUNT', 'invalid mount config for type "tmpfs": field Source must not be specified');
  const spec: MountSpec = { Type: m.Type as MountSpec['Type'], Source: m.Source ?? '', Target: m.Target, ReadOnly: !!m.ReadOnly };
  if (m.Type === 'tmpfs') {
    const o: string[] = [];
    if (m.TmpfsOptions?.SizeBytes) o.push(`size=${m.TmpfsOptions.SizeBytes}`);
    if (m.TmpfsOptions?.Mode) o.push(`mode=${m.TmpfsOptions.Mode.toString(8)}`);
    spec.TmpfsOptions = o;
  }
  return spec;
}

/** PortBindings → the `-p` spec strings the network layer publishes. */
function portSpecs(pm: PortMap | null | undefined): string[] {
  const out: string[] = [];
  for (const [key, bindings] of Object.entries(pm ?? {})) {
    const m = /^(\d+(?:-\d+)?)(?:\/(tcp|udp|sctp))?$/i.exec(key);
    if (!m) throw invalidArgument('INVALID_PORT_SPEC', `invalid port specification: "${key}"`, { hint: 'a PortBindings key is PORT[/PROTO], e.g. 80/tcp' });
    const cport = `${m[1]}/${(m[2] ?? 'tcp').toLowerCase()}`;
    for (const b of bindings?.length ? bindings : [{ HostIp: '', HostPort: '' }]) {
      const ip = b.HostIp ?? '';
      const hp = b.HostPort ?? '';
      if (hp && !/^\d+(-\d+)?$/.test(hp)) throw invalidArgument('INVALID_PORT_SPEC', `invalid port specification: "${hp}"`);
      const host = ip.includes(':') ? `[${ip}]` : ip;
      out.push(ip ? `${host}:${hp}:${cport}` : hp ? `${hp}:${cport}` : cport);
    }
  }
  return out;
}

const NETWORK_MODES = ['bridge', 'host', 'none', 'default'];

/** The resources beyond Memory, NanoCpus and PidsLimit that a body sets (create and update). */
export function resourceFields(h: HostConfig): Partial<InternalHostConfig> {
  const o: Partial<InternalHostConfig> = {};
  if (h.CpuShares) o.CpuShares = h.CpuShares;
  if (h.CpuPeriod) o.CpuPeriod = h.CpuPeriod;
  if (h.CpuQuota) o.CpuQuota = h.CpuQuota;
  if (h.CpusetCpus) o.CpusetCpus = h.CpusetCpus;
  if (h.CpusetMems) o.CpusetMems = h.CpusetMems;
  if (h.MemoryReservation) o.MemoryReservation = h.MemoryReservation;
  if (h.MemorySwap) o.MemorySwap = h.MemorySwap;
  if (h.BlkioWeight) o.BlkioWeight = h.BlkioWeight;
  return o;
}

/**
 * The daemon's checks of resources (create and update), with its words: a CPU period and
 * quota beside NanoCpus, ranges, a swap limit below the memory limit.
 */
export function checkResources(h: HostConfig, ncpu: number): void {
  const memory = h.Memory ?? 0;
  if (memory < 0) throw invalidArgument('INVALID_MEMORY', 'invalid memory limit');
  if (memory !== 0 && memory < 6 * 1024 * 1024) throw invalidArgument('INVALID_MEMORY', 'Minimum memory limit allowed is 6MB');
  const nano = h.NanoCpus ?? 0;
  if (nano !== 0 && (h.CpuPeriod || h.CpuQuota)) throw invalidArgument('CONFLICTING_CPU', 'Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (nano !== 0 && (nano < 0.01e9 || nano > ncpu * 1e9)) throw invalidArgument('INVALID_CPUS', `Range of CPUs is from 0.01 to ${ncpu}.00, as there are only ${ncpu} CPUs available`);
  if (h.CpuPeriod && (h.CpuPeriod < 1000 || h.CpuPeriod > 1000000)) throw invalidArgument('INVALID_CPU_PERIOD', 'CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  if (h.CpuQuota && h.CpuQuota > 0 && h.CpuQuota < 1000) throw invalidArgument('INVALID_CPU_QUOTA', 'CPU cfs quota can not be less than 1ms (i.e. 1000)');
  if (h.CpuShares !== undefined && h.CpuShares < 0) throw invalidArgument('INVALID_CPU_SHARES', 'invalid CPU shares: must be a positive number');
  if (h.BlkioWeight && (h.BlkioWeight < 10 || h.BlkioWeight > 1000)) throw invalidArgument('INVALID_BLKIO_WEIGHT', 'Range of blkio weight is from 10 to 1000');
  if (h.MemorySwap && h.MemorySwap > 0 && memory > 0 && h.MemorySwap < memory) throw invalidArgument('INVALID_MEMORY_SWAP', 'Minimum memoryswap limit should be larger than memory limit, see usage');
  if (h.MemoryReservation && h.MemoryReservation < 0) throw invalidArgument('INVALID_MEMORY_RESERVATION', 'invalid memory reservation');
  if (h.MemoryReservation && memory > 0 && h.MemoryReservation > memory) throw invalidArgument('INVALID_MEMORY_RESERVATION', 'Minimum memory limit can not be less than memory reservation limit, see usage');
  for (const cpus of [h.CpusetCpus, h.CpusetMems]) {
    if (cpus && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(cpus)) throw invalidArgument('INVALID_CPUSET', `Invalid value ${cpus} for cpuset cpus`);
  }
}

/** The daemon's validateRestartPolicy (create and update). */
export function checkRestartPolicy(p: RestartPolicy): void {
  if (!p || typeof p !== 'object') throw invalidArgument('INVALID_RESTART_POLICY', 'invalid restart policy');
  const rp = p.Name ?? '';
  const max = p.MaximumRetryCount ?? 0;
  if (typeof rp !== 'string' || !['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(rp)) throw invalidArgument('INVALID_RESTART_POLICY', `invalid restart policy '${String(rp)}'`);
  if (!Number.isInteger(max)) throw invalidArgument('INVALID_RESTART_POLICY', 'maximum retry count must be an integer');
  if (max < 0) throw invalidArgument('INVALID_RESTART_POLICY', 'maximum retry count cannot be negative');
  if (rp !== 'on-failure' && max > 0) throw invalidArgument('INVALID_RESTART_POLICY', `maximum retry count cannot be used with restart policy '${rp}'`);
}

/** Config.Healthcheck as dockerd keeps it: zero fields left out (Go's omitempty; they inherit the image's). */
function healthcheckOf(h: HealthConfig): HealthConfig {
  const out: HealthConfig = {};
  if (h.Test?.length) out.Test = h.Test;
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'Retries'] as const) if (h[k]) out[k] = h[k];
  return out;
}

/** 1 ms: Docker's containertypes.MinimumDuration, in nanoseconds. */
const MIN_DURATION_NS = 1e6;

/** The daemon's checks of Config.Healthcheck (verifyContainerSettings). */
export function checkHealthcheck(h: HealthConfig | undefined): void {
  if (!h) return;
  if (typeof h !== 'object') throw invalidArgument('INVALID_HEALTHCHECK', 'Healthcheck: not an object');
  if (h.Test !== undefined && h.Test !== null && (!Array.isArray(h.Test) || h.Test.some((x) => typeof x !== 'string'))) throw invalidArgument('INVALID_HEALTHCHECK', 'Healthcheck.Test: a list of strings');
  const test = h.Test?.[0];
  if (test !== undefined && !['NONE', 'CMD', 'CMD-SHELL'].includes(test)) throw invalidArgument('INVALID_HEALTHCHECK', `Unknown healthcheck type '${test}' (expected 'CMD')`);
  for (const [k, what] of [['Interval', 'Interval'], ['Timeout', 'Timeout'], ['StartPeriod', 'StartPeriod']] as const) {
    const v = h[k] ?? 0;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidArgument('INVALID_HEALTHCHECK', `${what} in Healthcheck: not a number`);
    if (v !== 0 && v < MIN_DURATION_NS) throw invalidArgument('INVALID_HEALTHCHECK', `${what} in Healthcheck cannot be less than 1ms`);
  }
  if (typeof (h.Retries ?? 0) !== 'number' || (h.Retries ?? 0) < 0) throw invalidArgument('INVALID_HEALTHCHECK', 'Retries in Healthcheck cannot be negative');
}

/** Checks the body as the daemon does and turns it into the manager's request. */
export function toCreateRequest(body: ContainerCreateBody, name: string | undefined): CreateRequest {
  if (!body || typeof body !== 'object') throw invalidArgument('INVALID_BODY', 'config cannot be empty in order to create a container');
  if (typeof body.Image !== 'string' || body.Image === '') throw invalidArgument('NO_IMAGE', 'No command specified', { hint: 'give an image' });
  const h: HostConfig = body.HostConfig ?? {};
  const mounts: MountSpec[] = [];
  for (const b of h.Binds ?? []) mounts.push(parseBind(b));
  for (const m of h.Mounts ?? []) mounts.push(fromMount(m));
  for (const [dst, opts] of Object.entries(h.Tmpfs ?? {})) {
    if (!dst.startsWith('/')) throw invalidArgument('INVALID_TMPFS', `invalid mount config for type "tmpfs": invalid mount path: '${dst}' mount path must be absolute`);
    mounts.push({ Type: 'tmpfs', Source: '', Target: dst, ReadOnly: false, TmpfsOptions: opts ? opts.split(',') : [] });
  }
  // anonymous volumes (`-v /data`): Config.Volumes
  for (const dst of Object.keys(body.Volumes ?? {})) {
    if (mounts.some((m) => m.Target === dst)) continue;
    if (!dst.startsWith('/')) throw invalidArgument('INVALID_VOLUME', `invalid volume specification: '${dst}': mount path must be absolute`);
    mounts.push({ Type: 'volume', Source: '', Target: dst, ReadOnly: false });
  }
  const seen = new Set<string>();
  for (const m of mounts) {
    const t = m.Target.replace(/\/+$/, '') || '/';
    if (seen.has(t)) throw invalidArgument('DUPLICATE_MOUNT', `Duplicate mount point: ${t}`);
    seen.add(t);
  }
  const network = h.NetworkMode || 'default';
  if (network.startsWith('container:')) throw invalidArgument('UNSUPPORTED_NETWORK_MODE', `network mode ${network} is not supported yet`, { hint: 'use bridge, host, none or a user-defined network' });
  // the network's endpoint configuration (aliases, address); API 1.41 takes one network at create
  const endpoints = Object.entries(body.NetworkingConfig?.EndpointsConfig ?? {}).filter(([, v]) => v !== null);
  if (endpoints.length > 1) throw invalidArgument('MULTIPLE_ENDPOINTS', `Container cannot be connected to network endpoints: ${endpoints.map(([k]) => k).join(', ')}`);
  const primary = network === 'default' ? 'bridge' : network;
  const ep = endpoints[0]?.[1];
  const networks: InternalHostConfig['Networks'] =
    // host and none join no network; bridge (default) and user-defined ones one each
    NETWORK_MODES.includes(primary) && primary !== 'bridge'
      ? undefined
      : {
          [primary]: {
            ...(ep?.Aliases?.length ? { Aliases: ep.Aliases.filter((a) => typeof a === 'string' && a !== '') } : {}),
            ...(ep?.IPAMConfig?.IPv4Address ? { IPAMConfig: { IPv4Address: ep.IPAMConfig.IPv4Address } } : {}),
          },
        };
  const memory = h.Memory ?? 0;
  const nano = h.NanoCpus ?? 0;
  checkResources(h, availableParallelism());
  const rp = h.RestartPolicy?.Name ?? '';
  checkRestartPolicy(h.RestartPolicy ?? { Name: '' });
  if (h.AutoRemove && rp !== '' && rp !== 'no') throw invalidArgument('CONFLICT_AUTOREMOVE_RESTART', "can't create 'AutoRemove' container with restart policy");
  checkHealthcheck(body.Healthcheck);
  if ((h.ShmSize ?? 0) < 0) throw invalidArgument('INVALID_SHM', 'SHM size can not be less than 0');
  if (body.StopTimeout !== undefined && body.StopTimeout !== null && !Number.isInteger(body.StopTimeout)) throw invalidArgument('INVALID_STOP_TIMEOUT', 'StopTimeout must be an integer');
  const sysctls = h.Sysctls ?? {};
  const hc: Partial<InternalHostConfig> = {
    Binds: h.Binds ?? [],
    Mounts: mounts,
    PortBindings: portSpecs(h.PortBindings),
    PublishAllPorts: !!h.PublishAllPorts,
    // kept as the client gave it: dockerd's inspect says "default" for a container run without --network
    NetworkMode: network,
    ...(networks ? { Networks: networks } : {}),
    Privileged: !!h.Privileged,
    ReadonlyRootfs: !!h.ReadonlyRootfs,
    CapAdd: h.CapAdd ?? [],
    CapDrop: h.CapDrop ?? [],
    SecurityOpt: h.SecurityOpt ?? [],
    Memory: memory,
    NanoCpus: nano,
    PidsLimit: h.PidsLimit ?? 0,
    ...resourceFields(h),
    Init: !!h.Init,
    AutoRemove: !!h.AutoRemove,
    Dns: h.Dns ?? [],
    DnsSearch: h.DnsSearch ?? [],
    DnsOptions: h.DnsOptions ?? [],
    ExtraHosts: h.ExtraHosts ?? [],
    GroupAdd: h.GroupAdd ?? [],
    ...(h.ShmSize ? { ShmSize: h.ShmSize } : {}),
    Sysctls: sysctls,
    Ulimits: (h.Ulimits ?? []).map((u) => ({ Name: u.Name, Soft: u.Soft, Hard: u.Hard })),
    RestartPolicy: { Name: rp, MaximumRetryCount: h.RestartPolicy?.MaximumRetryCount ?? 0 },
  };
  return {
    image: body.Image,
    ...(name !== undefined && name !== '' ? { name: name.replace(/^\//, '') } : {}),
    ...(body.Cmd?.length ? { cmd: body.Cmd } : {}),
    ...(body.Entrypoint ? { entrypoint: body.Entrypoint } : {}),
    env: body.Env ?? [],
    ...(body.WorkingDir ? { workdir: body.WorkingDir } : {}),
    ...(body.User ? { user: body.User } : {}),
    ...(body.Hostname ? { hostname: body.Hostname } : {}),
    ...(body.Domainname ? { domainname: body.Domainname } : {}),
    tty: !!body.Tty,
    openStdin: !!body.OpenStdin,
    stdinOnce: !!body.StdinOnce,
    ...(body.Labels && Object.keys(body.Labels).length ? { labels: body.Labels } : {}),
    ...(body.StopSignal ? { stopSignal: body.StopSignal } : {}),
    ...(body.StopTimeout !== undefined && body.StopTimeout !== null ? { stopTimeout: body.StopTimeout } : {}),
    expose: Object.keys(body.ExposedPorts ?? {}),
    ...(body.Healthcheck ? { healthcheck: healthcheckOf(body.Healthcheck) } : {}),
    hostConfig: hc,
  };
}
