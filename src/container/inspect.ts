/** Docker's JSON view of a container (`docker inspect`), and the short forms `ps` prints. */
import { mountMode, type ContainerRecord } from './types.js';
import type { NetworkAttachment } from '../network/index.js';
import { dockerContainerConfig } from '../image/inspect.js';
import { endpointViews } from './networking.js';
import { parsePortSpecs } from '../network/ports.js';

/**
 * NetworkSettings as Docker shows it: one entry per network; the top-level address fields
 * are the default bridge's endpoint (empty on user-defined networks, as Docker's).
 */
function networkSettings(c: ContainerRecord, net: NetworkAttachment | undefined, ports: Record<string, unknown>): Record<string, unknown> {
  const networks = endpointViews(c, net);
  const b = networks.bridge;
  return {
    Bridge: '',
    SandboxID: net?.netnsPath ? c.id : '',
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    Ports: ports,
    SandboxKey: net?.netnsPath ?? '',
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: b?.EndpointID ?? '',
    Gateway: b?.Gateway ?? '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    IPAddress: b?.IPAddress ?? '',
    IPPrefixLen: b?.IPPrefixLen ?? 0,
    IPv6Gateway: '',
    MacAddress: b?.MacAddress ?? '',
    Networks: networks,
  };
}

/** The `-p` specs a container keeps → Docker's PortMap: {"80/tcp": [{HostIp: "", HostPort: "8080"}]}. */
function portBindings(specs: readonly string[]): Record<string, { HostIp: string; HostPort: string }[]> {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const m of parsePortSpecs(specs)) (out[`${m.containerPort}/${m.proto}`] ??= []).push({ HostIp: m.hostIP, HostPort: m.hostPort });
  return out;
}

export function inspectContainer(c: ContainerRecord, extra: { rootfs: string; upper?: string; lowers?: string[]; logPath: string; net?: NetworkAttachment; mounts: { Type: string; Name?: string; Source: string; Destination: string; RW: boolean }[]; health?: unknown }): Record<string, unknown> {
  const net = extra.net;
  const ports: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  for (const e of Object.keys(c.config.ExposedPorts ?? {})) ports[e] = null;
  for (const p of net?.ports ?? []) (ports[`${p.containerPort}/${p.proto}`] ??= []).push({ HostIp: p.hostIP || '0.0.0.0', HostPort: String(p.hostPort) });
  const s = c.state;
  return {
    Id: c.id,
    Created: c.created,
    Path: [...(c.config.Entrypoint ?? []), ...(c.config.Cmd ?? [])][0] ?? '',
    Args: [...(c.config.Entrypoint ?? []), ...(c.config.Cmd ?? [])].slice(1),
    State: {
      Status: s.Status,
      // Docker: a container waiting to restart counts as running
      Running: s.Running || s.Status === 'restarting',
      Paused: s.Paused,
      Restarting: s.Status === 'restarting',
      OOMKilled: s.OOMKilled,
      Dead: s.Dead,
      Pid: s.Pid,
      ExitCode: s.ExitCode,
      Error: s.Error,
      StartedAt: s.StartedAt,
      FinishedAt: s.FinishedAt,
      ...(extra.health ? { Health: extra.health } : {}),
    },
    Image: c.imageId,
    ResolvConfPath: net?.etcFiles?.resolvConf ?? '',
    HostnamePath: net?.etcFiles?.hostname ?? '',
    HostsPath: net?.etcFiles?.hosts ?? '',
    LogPath: extra.logPath,
    Name: '/' + c.name,
    RestartCount: s.RestartCount ?? 0,
    Driver: extra.lowers ? 'overlay' : 'vfs',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: {
      Binds: c.hostConfig.Binds.length ? c.hostConfig.Binds : null,
      // the logs endpoints serve conmon's k8s-file log; named json-file as Podman's compat API
      // names it (podman#9036): clients read logs through the API only for a driver they know
      // (docker-compose's logs and docker-py's containers.run printed nothing with k8s-file)
      LogConfig: { Type: 'json-file', Config: {} },
      NetworkMode: c.hostConfig.NetworkMode,
      PortBindings: portBindings(c.hostConfig.PortBindings),
      AutoRemove: c.hostConfig.AutoRemove,
      CapAdd: c.hostConfig.CapAdd.length ? c.hostConfig.CapAdd : null,
      CapDrop: c.hostConfig.CapDrop.length ? c.hostConfig.CapDrop : null,
      Dns: c.hostConfig.Dns,
      ExtraHosts: c.hostConfig.ExtraHosts.length ? c.hostConfig.ExtraHosts : null,
      GroupAdd: c.hostConfig.GroupAdd.length ? c.hostConfig.GroupAdd : null,
      Privileged: c.hostConfig.Privileged,
      PublishAllPorts: c.hostConfig.PublishAllPorts,
      ReadonlyRootfs: c.hostConfig.ReadonlyRootfs,
      SecurityOpt: c.hostConfig.SecurityOpt.length ? c.hostConfig.SecurityOpt : null,
      ShmSize: c.hostConfig.ShmSize,
      Runtime: c.hostConfig.Runtime || 'runc',
      Memory: c.hostConfig.Memory,
      NanoCpus: c.hostConfig.NanoCpus,
      PidsLimit: c.hostConfig.PidsLimit || null,
      CpuShares: c.hostConfig.CpuShares ?? 0,
      CpuPeriod: c.hostConfig.CpuPeriod ?? 0,
      CpuQuota: c.hostConfig.CpuQuota ?? 0,
      CpusetCpus: c.hostConfig.CpusetCpus ?? '',
      CpusetMems: c.hostConfig.CpusetMems ?? '',
      MemoryReservation: c.hostConfig.MemoryReservation ?? 0,
      MemorySwap: c.hostConfig.MemorySwap ?? 0,
      BlkioWeight: c.hostConfig.BlkioWeight ?? 0,
      Init: c.hostConfig.Init || null,
      RestartPolicy: { Name: c.hostConfig.RestartPolicy?.Name ?? '', MaximumRetryCount: c.hostConfig.RestartPolicy?.MaximumRetryCount ?? 0 },
      Mounts: c.hostConfig.Mounts.map((m) => ({ Type: m.Type, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly })),
    },
    GraphDriver: {
      Data: extra.lowers ? { LowerDir: extra.lowers.join(':'), MergedDir: extra.rootfs, UpperDir: extra.upper, WorkDir: extra.upper ? extra.upper.replace(/\/fs$/, '/work') : '' } : { Dir: extra.upper ?? extra.rootfs },
      Name: extra.lowers ? 'overlay' : 'vfs',
    },
    Mounts: extra.mounts.map((m) => ({ Type: m.Type, ...(m.Name ? { Name: m.Name } : {}), Source: m.Source, Destination: m.Destination, Driver: m.Type === 'volume' ? 'local' : undefined, Mode: mountMode(c.hostConfig, m.Destination), RW: m.RW, Propagation: m.Type === 'bind' ? 'rprivate' : '' })),
    Config: dockerContainerConfig(c.config),
    NetworkSettings: networkSettings(c, net, ports),
  };
}
