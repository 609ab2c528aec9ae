/**
 * A container's networks: the checks at create, `network connect` and `network disconnect`
 * of created, stopped and running containers (Docker's daemon semantics: a running one gets
 * or loses an interface at once, any other only has its configuration changed, used by its
 * next start), and the EndpointSettings that inspect and ps show.
 */
import { EngineError, invalidArgument } from '../errors/index.js';
import type { NetworkManager, NetworkAttachment, Endpoint } from '../network/index.js';
import type { ContainerManager } from './manager.js';
import { containerNetworks, type ContainerRecord, type EndpointConfig, type HostConfig } from './types.js';

/** Docker's EndpointSettings, as inspect and ps show them. */
export interface EndpointView {
  IPAMConfig: { IPv4Address?: string } | null;
  Links: string[] | null;
  Aliases: string[] | null;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  MacAddress: string;
  DriverOpts: Record<string, string> | null;
}

const hostError = () => invalidArgument('HOST_NETWORK', 'container cannot be disconnected from host network or connected to host network');
const noneError = () => invalidArgument('NONE_NETWORK', 'container cannot be connected to multiple networks with one of the networks in private (none) mode');

/**
 * The networks of a create request exist and take what is asked of them (aliases and
 * addresses only on user-defined networks, …). Returns the host config with each network's
 * ID recorded.
 */
export async function checkCreateNetworks(nm: NetworkManager, id: string, hc: HostConfig): Promise<HostConfig> {
  if (hc.NetworkMode.startsWith('container:')) throw invalidArgument('UNSUPPORTED_NETWORK_MODE', `network mode ${hc.NetworkMode} is not supported yet`, { hint: 'use bridge, host, none or a user-defined network' });
  const { mode, networks } = containerNetworks(hc);
  if (mode !== 'bridge') return hc;
  const resolved = await nm.resolveEndpoints(
    id,
    networks.map((n) => ({ network: n.name, ...(n.config.Aliases ? { aliases: n.config.Aliases } : {}), ...(n.config.IPAMConfig?.IPv4Address ? { ipv4Address: n.config.IPAMConfig.IPv4Address } : {}) })),
  );
  const out: Record<string, EndpointConfig> = {};
  networks.forEach((n, i) => {
    out[n.name] = { ...n.config, NetworkID: resolved[i]?.net.id ?? '' };
  });
  return { ...hc, Networks: out };
}

/** The endpoint requests a starting container makes (NetworkMode's network first). */
export function endpointRequests(hc: HostConfig): { mode: 'bridge' | 'host' | 'none'; networks: { network: string; aliases?: string[]; ipv4Address?: string }[] } {
  const { mode, networks } = containerNetworks(hc);
  return {
    mode,
    networks: networks.map((n) => ({
      network: n.name,
      ...(n.config.Aliases?.length ? { aliases: n.config.Aliases } : {}),
      ...(n.config.IPAMConfig?.IPv4Address ? { ipv4Address: n.config.IPAMConfig.IPv4Address } : {}),
    })),
  };
}

/** POST /networks/{id}/connect */
export async function connectContainer(cm: ContainerManager, ref: string, network: string, cfg: { Aliases?: string[] | null; IPAMConfig?: { IPv4Address?: string } | null } = {}): Promise<void> {
  const found = await cm.get(ref);
  const r = await cm.network.findNetwork(network);
  await cm.withLock(found.id, async () => {
    const c = await cm.get(found.id);
    const { mode, networks } = containerNetworks(c.hostConfig);
    if (r.Driver === 'host' || mode === 'host') throw hostError();
    if (r.Driver === 'null' || mode === 'none') throw noneError();
    const aliases = (cfg.Aliases ?? []).filter((a) => a !== '');
    const ip = cfg.IPAMConfig?.IPv4Address || undefined;
    const req = { network: r.Id, ...(aliases.length ? { aliases } : {}), ...(ip ? { ipv4Address: ip } : {}) };
    // what is asked of the network first (as dockerd: an address outside a configured subnet is that, connected or not)
    await cm.network.resolveEndpoints(c.id, [req]);
    if (networks.some((n) => n.name === r.Name || (n.config.NetworkID && n.config.NetworkID === r.Id))) {
      throw new EngineError('forbidden', 'ALREADY_CONNECTED', `endpoint with name ${c.name} already exists in network ${r.Name}`, { where: r.Name });
    }
    if (c.state.Running) await cm.network.connect(c.id, req);
    const ecfg: EndpointConfig = { ...(aliases.length ? { Aliases: aliases } : {}), ...(ip ? { IPAMConfig: { IPv4Address: ip } } : {}), NetworkID: r.Id };
    const Networks = Object.fromEntries(networks.map((n) => [n.name, n.config]));
    Networks[r.Name] = ecfg;
    cm.store.setHostConfig(c.id, { ...c.hostConfig, Networks });
  });
}

/** POST /networks/{id}/disconnect */
export async function disconnectContainer(cm: ContainerManager, ref: string, network: string, opts: { force?: boolean } = {}): Promise<void> {
  const found = await cm.get(ref);
  const r = await cm.network.findNetwork(network);
  await cm.withLock(found.id, async () => {
    const c = await cm.get(found.id);
    const { mode, networks } = containerNetworks(c.hostConfig);
    if (r.Driver === 'host' || mode === 'host') throw hostError();
    const mine = networks.find((n) => n.name === r.Name || (n.config.NetworkID && n.config.NetworkID === r.Id));
    if (c.state.Running && mode === 'bridge') {
      try {
        await cm.network.disconnect(c.id, r.Id);
      } catch (e) {
        // configured but not attached (its start predates the connect): only the configuration changes
        if (!(mine && (e as { code?: string }).code === 'NOT_CONNECTED') && !opts.force) throw e;
      }
    } else if (!mine) {
      throw new EngineError('internal', 'NOT_CONNECTED', `container ${c.id} is not connected to network ${r.Name}`, { where: r.Name }); // dockerd's 500
    }
    const Networks = Object.fromEntries(networks.filter((n) => n !== mine).map((n) => [n.name, n.config]));
    cm.store.setHostConfig(c.id, { ...c.hostConfig, Networks });
  });
}

/** NetworkSettings.Networks: one entry per configured network, filled from the live endpoint while the container runs. */
export function endpointViews(c: ContainerRecord, net: NetworkAttachment | undefined): Record<string, EndpointView> {
  const empty = (): EndpointView => ({
    IPAMConfig: null,
    Links: null,
    Aliases: null,
    NetworkID: '',
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    MacAddress: '',
    DriverOpts: null,
  });
  const { mode, networks } = containerNetworks(c.hostConfig);
  if (mode !== 'bridge') return { [mode]: empty() };
  const eps: Endpoint[] = net?.endpoints ?? [];
  const out: Record<string, EndpointView> = {};
  networks.forEach((n, i) => {
    const v = empty();
    if (n.config.IPAMConfig?.IPv4Address) v.IPAMConfig = { IPv4Address: n.config.IPAMConfig.IPv4Address };
    if (n.config.Aliases?.length) v.Aliases = [...n.config.Aliases];
    const ep = eps.find((e) => (n.config.NetworkID && e.networkId === n.config.NetworkID) || e.network === n.name);
    if (ep) {
      Object.assign(v, {
        Aliases: ep.aliases.length ? ep.aliases : v.Aliases,
        NetworkID: ep.networkId,
        EndpointID: ep.endpointId,
        Gateway: ep.gateway ?? '',
        IPAddress: ep.ipAddress ?? '',
        IPPrefixLen: ep.ipPrefixLen ?? 0,
        MacAddress: ep.macAddress ?? '',
      });
    } else if (net && !net.endpoints && i === 0 && net.ipAddress) {
      // an attachment of an earlier version: one interface, the container's first network
      Object.assign(v, { NetworkID: n.config.NetworkID ?? '', EndpointID: net.containerId, Gateway: net.gateway ?? '', IPAddress: net.ipAddress, IPPrefixLen: net.ipPrefixLen ?? 0, MacAddress: net.macAddress ?? '' });
    }
    out[n.name] = v;
  });
  return out;
}
