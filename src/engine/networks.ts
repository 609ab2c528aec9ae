/**
 * engine.networks: Docker's networks in the Engine API's shapes — the predefined bridge, host
 * and none, and user-defined bridge networks (create, inspect, list with filters, remove,
 * connect, disconnect, prune). Each user-defined network is its own bridge and subnet, its
 * containers resolve each other by name, alias and short ID, and it is isolated from the
 * other networks (src/network).
 */
import { invalidArgument, isEngineError } from '../errors/index.js';
import type { ContainerManager } from '../container/manager.js';
import { connectContainer, disconnectContainer } from '../container/networking.js';
import { PREDEFINED_NETWORKS, type NetworkRecord } from '../network/index.js';
import type { Core } from './core.js';
import { acceptFilters, boolFilter, labelMatch, parseUntil } from './filters.js';
import type { Filters, Network, NetworkConnectRequest, NetworkContainer, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest, NetworkPruneResponse } from './types.js';

/** Docker's Args.Match: the value as a regular expression (a substring, usually), or literally when it is not one. */
function matches(pattern: string, s: string): boolean {
  try {
    return new RegExp(pattern).test(s);
  } catch {
    return s.includes(pattern);
  }
}

export class Networks {
  constructor(private readonly core: Core) {}

  private manager(): Promise<ContainerManager> {
    return this.core.containers();
  }

  private isPredefined(cm: ContainerManager, r: NetworkRecord): boolean {
    return PREDEFINED_NETWORKS.includes(r.Name) && r.Id === cm.network.builtinId(r.Name);
  }

  private shape(r: NetworkRecord, containers: Record<string, NetworkContainer> = {}): Network {
    return {
      Name: r.Name,
      Id: r.Id,
      Created: r.Created,
      Scope: r.Scope,
      Driver: r.Driver,
      EnableIPv6: r.EnableIPv6,
      IPAM: { Driver: r.IPAM.Driver, Options: r.IPAM.Options, Config: r.IPAM.Config.map((c) => ({ ...c })) },
      Internal: r.Internal,
      Attachable: r.Attachable,
      Ingress: r.Ingress,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Containers: containers,
      Options: { ...r.Options },
      Labels: { ...r.Labels },
    };
  }

  /** The running containers of a network (host and none: the containers in that mode). */
  private async containersOf(cm: ContainerManager, r: NetworkRecord): Promise<Record<string, NetworkContainer>> {
    const out: Record<string, NetworkContainer> = {};
    const nameOf = (id: string, fallback: string) => cm.store.get(id)?.name ?? fallback;
    if (this.isPredefined(cm, r) && r.Name !== 'bridge') {
      for (const a of await cm.network.list()) {
        if (a.mode !== r.Name || a.state !== 'ready') continue;
        out[a.containerId] = { Name: nameOf(a.containerId, a.containerName ?? ''), EndpointID: '', MacAddress: '', IPv4Address: '', IPv6Address: '' };
      }
      return out;
    }
    for (const e of await cm.network.endpointsOn(r.Id)) {
      const ep = e.endpoint;
      out[e.containerId] = {
        Name: nameOf(e.containerId, e.name),
        EndpointID: ep.endpointId,
        MacAddress: ep.macAddress ?? '',
        IPv4Address: ep.ipAddress ? `${ep.ipAddress}/${ep.ipPrefixLen ?? 32}` : '',
        IPv6Address: '',
      };
    }
    return out;
  }

  /** GET /networks: filters dangling, driver, id, label, name, scope, type (custom, builtin). Containers is left empty, as dockerd leaves it. */
  async list(opts: { filters?: Filters } = {}): Promise<Network[]> {
    const f = opts.filters ?? {};
    acceptFilters(f, ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type']);
    for (const t of f.type ?? []) if (t !== 'custom' && t !== 'builtin') throw invalidArgument('INVALID_FILTER', `invalid filter: 'type'='${t}'`);
    const dangling = boolFilter(f, 'dangling');
    const cm = await this.manager();
    const all = await cm.network.networks();
    const used = dangling === undefined ? undefined : new Set((await cm.network.list()).flatMap((a) => cm.network.endpointsOf(a).map((e) => e.networkId)));
    return all
      .filter((r) => {
        const predefined = this.isPredefined(cm, r);
        if (f.name?.length && !f.name.some((v) => matches(v, r.Name))) return false;
        if (f.id?.length && !f.id.some((v) => matches(v, r.Id))) return false;
        if (f.driver?.length && !f.driver.includes(r.Driver)) return false;
        if (f.scope?.length && !f.scope.includes(r.Scope)) return false;
        if (f.label?.length && !f.label.every((l) => labelMatch(r.Labels, l))) return false;
        if (f.type?.length && !f.type.includes(predefined ? 'builtin' : 'custom')) return false;
        if (dangling !== undefined && (!predefined && !used!.has(r.Id)) !== dangling) return false;
        return true;
      })
      .map((r) => this.shape(r));
  }

  /** GET /networks/{id}: by ID, name or unique ID prefix; Containers lists the running ones. */
  async inspect(ref: string): Promise<Network> {
    const cm = await this.manager();
    const r = await cm.network.findNetwork(ref);
    return this.shape(r, await this.containersOf(cm, r));
  }

  /** POST /networks/create */
  async create(body: NetworkCreateRequest, opts: { signal?: AbortSignal } = {}): Promise<NetworkCreateResponse> {
    if (!body || typeof body !== 'object') throw invalidArgument('INVALID_BODY', 'a network create request needs a body');
    const cm = await this.manager();
    const r = await cm.network.createNetwork(
      {
        name: body.Name,
        ...(body.Driver ? { driver: body.Driver } : {}),
        internal: !!body.Internal,
        attachable: !!body.Attachable,
        ingress: !!body.Ingress,
        enableIPv6: !!body.EnableIPv6,
        ...(body.IPAM ? { ipam: { ...(body.IPAM.Driver ? { Driver: body.IPAM.Driver } : {}), Options: body.IPAM.Options ?? null, Config: (body.IPAM.Config ?? []).map((c) => ({ Subnet: c.Subnet ?? '', ...(c.Gateway ? { Gateway: c.Gateway } : {}), ...(c.IPRange ? { IPRange: c.IPRange } : {}), ...(c.AuxiliaryAddresses ? { AuxiliaryAddresses: c.AuxiliaryAddresses } : {}) })) } } : {}),
        options: body.Options ?? {},
        labels: body.Labels ?? {},
      },
      opts,
    );
    return { Id: r.Id, Warning: '' };
  }

  /** DELETE /networks/{id}: refused for the predefined networks and while a container is attached. */
  async remove(ref: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await (await this.manager()).network.removeNetwork(ref, opts);
  }

  /** POST /networks/{id}/connect: a running container gets an interface at once; another one at its next start. */
  async connect(ref: string, body: NetworkConnectRequest): Promise<void> {
    if (!body || typeof body.Container !== 'string' || body.Container === '') throw invalidArgument('NO_CONTAINER', 'a connect request names a Container');
    const cfg = body.EndpointConfig ?? {};
    await connectContainer(await this.manager(), body.Container, ref, { ...(cfg.Aliases ? { Aliases: cfg.Aliases } : {}), ...(cfg.IPAMConfig ? { IPAMConfig: cfg.IPAMConfig } : {}) });
  }

  /** POST /networks/{id}/disconnect */
  async disconnect(ref: string, body: NetworkDisconnectRequest): Promise<void> {
    if (!body || typeof body.Container !== 'string' || body.Container === '') throw invalidArgument('NO_CONTAINER', 'a disconnect request names a Container');
    await disconnectContainer(await this.manager(), body.Container, ref, { force: !!body.Force });
  }

  /** POST /networks/prune: user-defined networks no running container uses; filters until, label, label!. */
  async prune(opts: { filters?: Filters; signal?: AbortSignal } = {}): Promise<NetworkPruneResponse> {
    const f = opts.filters ?? {};
    acceptFilters(f, ['until', 'label', 'label!']);
    const until = f.until?.length ? Math.min(...f.until.map((u) => parseUntil(u))) : undefined;
    const cm = await this.manager();
    const deleted: string[] = [];
    for (const r of await cm.network.records.list()) {
      if (until !== undefined && !(Date.parse(r.Created) < until)) continue;
      if (f.label?.length && !f.label.every((l) => labelMatch(r.Labels, l))) continue;
      if (f['label!']?.length && f['label!'].some((l) => labelMatch(r.Labels, l))) continue;
      if ((await cm.network.endpointsOn(r.Id)).length > 0) continue;
      try {
        await cm.network.removeNetwork(r.Id, opts);
        deleted.push(r.Name);
      } catch (e) {
        // a container joined it meanwhile: it is in use, not unused
        if (!isEngineError(e, 'forbidden')) throw e;
      }
    }
    return { NetworksDeleted: deleted };
  }
}
