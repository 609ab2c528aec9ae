/**
 * engine.containers: Docker's container operations in the Engine API's shapes — create,
 * run (create + attach + start + wait + auto-remove, what `docker run` orchestrates), list
 * with filters and Docker's status text, inspect, lifecycle, logs, attach, exec, archive,
 * commit, top, changes, export, prune.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { availableParallelism, constants as osConstants } from 'node:os';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { conflict, EngineError, invalidArgument, isEngineError, notFound } from '../errors/index.js';
import { parseReference } from '../oci/reference.js';
import { parsePlatform, platformMatches, platformString } from '../image/platform.js';
import { swapAccounting } from '../runtime/index.js';
import type { HostConfig as InternalHostConfig } from '../container/types.js';
import { runHealthMonitor } from './health.js';
import type { ContainerManager } from '../container/manager.js';
import type { ContainerRecord } from '../container/types.js';
import type { ImageRecord } from '../image/images.js';
import type { NetworkAttachment } from '../network/index.js';
import { endpointViews } from '../container/networking.js';
import { containerNetworks, mountMode } from '../container/types.js';
import type { Core } from './core.js';
import { checkResources, resourceFields, toCreateRequest } from './createbody.js';
import { DEFAULT_DETACH_KEYS, EscapeProxy, parseDetachKeys } from './detachkeys.js';
import { emptyStats, sampleStats, ZERO_TIME } from './stats.js';
import { acceptFilters, labelMatch } from './filters.js';
import type {
  AttachHandle,
  AttachOptions,
  AttachStreams,
  ContainerStats,
  ContainerUpdateBody,
  ContainerUpdateResponse,
  CpuStats,
  ChangeItem,
  CommitOptions,
  ContainerCreateBody,
  ContainerCreateOptions,
  ContainerCreateResponse,
  ContainerInspect,
  ContainerListOptions,
  ContainerPruneResponse,
  ContainerSummary,
  ExecConfig,
  ExecInspect,
  ExecResult,
  Filters,
  LogEntry,
  LogsOptions,
  Port,
  PathStat,
  PortMap,
  TopResponse,
  WaitCondition,
  WaitResponse,
} from './types.js';

/** go-units HumanDuration, which Docker's status text uses. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(ms / 3600000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3600000 / 24 / 365)} years`;
}

/** Docker's STATUS text: "Up 5 minutes", "Up 2 seconds (Paused)", "Up 1 second (healthy)", "Exited (0) 3 hours ago", "Created". */
export function statusText(c: ContainerRecord, nowMs = Date.now(), health?: { Status: string }): string {
  const s = c.state;
  const ago = (iso: string) => humanDuration(nowMs - Date.parse(iso));
  switch (s.Status) {
    case 'running':
      if (health) return `Up ${ago(s.StartedAt)} (${health.Status === 'starting' ? 'health: starting' : health.Status})`;
      return `Up ${ago(s.StartedAt)}`;
    case 'paused':
      return `Up ${ago(s.StartedAt)} (Paused)`;
    case 'restarting':
      return `Restarting (${s.ExitCode}) ${ago(s.FinishedAt)} ago`;
    case 'exited':
      return s.FinishedAt.startsWith('0001') ? `Exited (${s.ExitCode})` : `Exited (${s.ExitCode}) ${ago(s.FinishedAt)} ago`;
    case 'created':
    case 'creating':
      return 'Created';
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    default:
      return s.Status;
  }
}

/** The Command of a container list entry, as dockerd writes it: the path, then the arguments, one with a space in single quotes. */
function commandOf(c: ContainerRecord): string {
  const [path = '', ...args] = [...(c.config.Entrypoint ?? []), ...(c.config.Cmd ?? [])];
  return [path, ...args.map((a) => (a.includes(' ') ? `'${a}'` : a))].join(' ');
}

function portsOf(net: NetworkAttachment | undefined, c: ContainerRecord): Port[] {
  const out: Port[] = [];
  const published = new Set<string>();
  for (const p of net?.ports ?? []) {
    published.add(`${p.containerPort}/${p.proto}`);
    out.push({ IP: p.hostIP || '0.0.0.0', PrivatePort: p.containerPort, PublicPort: p.hostPort, Type: p.proto });
  }
  for (const e of Object.keys(c.config.ExposedPorts ?? {})) {
    if (published.has(e)) continue;
    const [port, proto] = e.split('/');
    out.push({ PrivatePort: Number(port), Type: (proto ?? 'tcp') as Port['Type'] });
  }
  return out;
}

/** Lookups the summaries of one container list share (see summaryMemo). */
interface SummaryMemo {
  image(id: string): ImageRecord | undefined;
  /** the ID an image name resolves to now, if any */
  resolves(name: string): string | undefined;
  volumes(containerId: string): { volume: string; destination: string }[];
}

interface ExecRecord {
  id: string;
  containerId: string;
  config: ExecConfig;
  running: boolean;
  exitCode: number | null;
  pid: number;
  /** started detached: its exit code is read from its exit file */
  detached?: boolean;
  /** a terminal size asked for before the exec ran */
  size?: { height: number; width: number };
  /** its terminal is connected (a resize goes to it, not to `size`) */
  attached?: boolean;
  /** when it ended (records of ended execs are dropped after a while, as dockerd's) */
  endedAt?: number;
}

/** An attach waiting for its container to start (`docker run` attaches before it starts). */
interface PendingAttach {
  streams: AttachStreams;
  /** given the attachment the start made, or nothing when the start failed or the client left */
  connect(a: { done: Promise<void>; detach(): void } | undefined): void;
}

/** How long the records of ended execs stay inspectable (dockerd: 5 minutes). */
const EXEC_RECORD_TTL_MS = 5 * 60_000;

/** Docker's signal names (SIGTERM, TERM, 15) → what the runtime takes; 400 for others. */
export function parseSignal(raw: string): string {
  const s = raw.trim();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > 64) throw invalidArgument('INVALID_SIGNAL', `Invalid signal: ${raw}`);
    return s;
  }
  const name = s.toUpperCase().replace(/^SIG/, '');
  if (!(`SIG${name}` in osConstants.signals) && !/^RTMIN(\+\d+)?$|^RTMAX(-\d+)?$/.test(name)) throw invalidArgument('INVALID_SIGNAL', `Invalid signal: ${raw}`);
  return `SIG${name}`;
}

/** Waits until `ms` passed, `emitter` emitted `event` for `id`, or the signal fired (no throw). */
function napFor(emitter: EventEmitter, id: string, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      emitter.off('change', onChange);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const onChange = (x: string) => {
      if (x === id) done();
    };
    const t = setTimeout(done, ms);
    emitter.on('change', onChange);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface StartOptions {
  /** connect these before the process starts (nothing of its output is lost) */
  attach?: AttachStreams;
  consoleSize?: { height: number; width: number };
  signal?: AbortSignal;
}

/** A started, attached container: its exit and the handles a front needs meanwhile. */
export interface RunHandle {
  id: string;
  warnings: string[];
  /** resolves with the exit code once the container exited and was cleaned up (removed with AutoRemove) */
  exit?: Promise<number>;
  /** the attach streams are done (the container's output has ended) */
  attached?: Promise<void>;
}

export class Containers {
  private readonly execs = new Map<string, ExecRecord>();
  /** attaches to containers that have not started yet, by container ID */
  private readonly pending = new Map<string, Set<PendingAttach>>();
  /** 'change' (id): a container's state changed through this engine (waiters wake at once) */
  private readonly stateChanges = new EventEmitter();

  constructor(private readonly core: Core) {
    this.stateChanges.setMaxListeners(0);
  }

  private changed(id: string): void {
    this.stateChanges.emit('change', id);
  }

  private manager(): Promise<ContainerManager> {
    return this.core.containers();
  }

  private async record(ref: string): Promise<ContainerRecord> {
    return (await this.manager()).get(ref);
  }

  // ------------------------------------------------------------------ create / run

  /** POST /containers/create. The image must be stored (`images.ensure` pulls it); 404 otherwise. */
  async create(body: ContainerCreateBody, opts: ContainerCreateOptions = {}): Promise<ContainerCreateResponse> {
    const req = toCreateRequest(body, opts.name);
    // Docker's 404 for an image that is not stored: on it the docker CLI pulls and retries
    const image = this.storedImage(body.Image);
    if (opts.platform) {
      const want = parsePlatform(opts.platform);
      const cfg = await this.core.images.config(image.id);
      const have = { os: cfg.os, architecture: cfg.architecture, ...(cfg.variant ? { variant: cfg.variant } : {}) };
      if (!platformMatches(have, want)) {
        throw notFound('NO_SUCH_IMAGE', `image with reference ${body.Image} was found but does not match the specified platform: wanted ${platformString(want)}, actual: ${platformString(have)}`);
      }
    }
    await this.core.repair();
    const cm = await this.manager();
    const c = await cm.create(req);
    return { Id: c.id, Warnings: createWarnings(body) };
  }

  /** The stored image `name` names, or Docker's "No such image: busybox:latest" (404). */
  private storedImage(name: string) {
    try {
      return this.core.resolveImage(name);
    } catch (e) {
      if (!isEngineError(e, 'not-found')) throw e;
      let shown = name;
      try {
        const r = parseReference(name);
        shown = r.digest || r.tag ? r.familiarString() : r.withDefaultTag().familiarString();
      } catch {
        /* an ID or an invalid name: as given */
      }
      throw notFound('NO_SUCH_IMAGE', `No such image: ${shown}`);
    }
  }

  /**
   * `docker run`: create, then start attached (or detached), and for an attached run wait
   * for the exit and clean up (an AutoRemove container is removed). A container that cannot
   * start is removed again, and the error carries Docker's exit code (125, 126 or 127).
   */
  async run(body: ContainerCreateBody, opts: ContainerCreateOptions & StartOptions & { detach?: boolean } = {}): Promise<RunHandle> {
    const created = await this.create(body, opts);
    const cm = await this.manager();
    let started: Awaited<ReturnType<ContainerManager['start']>>;
    try {
      started = await cm.start(created.Id, opts.detach ? {} : { ...(opts.attach ? { attach: opts.attach } : {}), ...(opts.consoleSize ? { consoleSize: opts.consoleSize } : {}) });
    } catch (e) {
      await cm.remove(created.Id, { force: true, volumes: true }).catch(() => {});
      this.changed(created.Id);
      throw e;
    }
    this.changed(created.Id);
    if (opts.detach) return { id: created.Id, warnings: created.Warnings };
    return {
      id: created.Id,
      warnings: created.Warnings,
      exit: cm.waitAndCleanup(created.Id),
      ...(started.attached ? { attached: started.attached.catch(() => {}) } : {}),
    };
  }

  // ------------------------------------------------------------------ list / inspect

  async summary(c: ContainerRecord, opts: { size?: boolean; net?: NetworkAttachment; memo?: SummaryMemo } = {}): Promise<ContainerSummary> {
    const cm = await this.manager();
    const memo = opts.memo ?? this.summaryMemo();
    const net = opts.net ?? (c.state.Running ? await cm.attachment(c.id) : undefined);
    const image = memo.image(c.imageId);
    // Docker shows the image as named at create while that name still means the same image
    const imageName = image && memo.resolves(c.imageName) === c.imageId ? c.imageName : c.imageId;
    const s: ContainerSummary = {
      Id: c.id,
      Names: ['/' + c.name],
      Image: imageName,
      ImageID: c.imageId,
      Command: commandOf(c),
      Created: Math.floor(Date.parse(c.created) / 1000),
      Ports: portsOf(net, c),
      Labels: c.config.Labels ?? {},
      // a record still being created is not a container yet for anyone but its creator
      State: c.state.Status === 'creating' ? 'created' : c.state.Status,
      Status: statusText(c, Date.now(), cm.health(c)),
      HostConfig: { NetworkMode: c.hostConfig.NetworkMode === 'bridge' ? 'default' : c.hostConfig.NetworkMode },
      NetworkSettings: { Networks: endpointViews(c, net) },
      Mounts: await this.mountPoints(c, memo),
    };
    if (opts.size) {
      s.SizeRw = this.core.snapshots.usage(c.snapshot).size;
      s.SizeRootFs = s.SizeRw + (image?.size ?? 0);
    }
    return s;
  }

  /**
   * What the summaries of one list share: image records, what image names resolve to, and
   * the containers' volumes, each read once per list rather than once per container.
   */
  private summaryMemo(): SummaryMemo {
    const images = new Map<string, ImageRecord | undefined>();
    const names = new Map<string, string | undefined>();
    let volumes: Map<string, { volume: string; destination: string }[]> | undefined;
    return {
      image: (id) => {
        if (!images.has(id)) images.set(id, this.core.images.get(id));
        return images.get(id);
      },
      resolves: (name) => {
        if (!names.has(name)) {
          let id: string | undefined;
          try {
            id = this.core.resolveImage(name).id;
          } catch {
            id = undefined;
          }
          names.set(name, id);
        }
        return names.get(name);
      },
      volumes: (id) => {
        if (!volumes) {
          volumes = new Map();
          for (const r of this.core.db.prepare('SELECT container_id, volume, destination FROM container_volumes ORDER BY container_id, destination').all() as { container_id: string; volume: string; destination: string }[]) {
            const g = volumes.get(r.container_id) ?? [];
            g.push({ volume: r.volume, destination: r.destination });
            volumes.set(r.container_id, g);
          }
        }
        return volumes.get(id) ?? [];
      },
    };
  }

  private async mountPoints(c: ContainerRecord, memo: SummaryMemo): Promise<ContainerSummary['Mounts']> {
    const out: ContainerSummary['Mounts'] = [];
    for (const m of c.hostConfig.Mounts) {
      if (m.Type === 'bind') out.push({ Type: 'bind', Source: m.Source, Destination: m.Target, Mode: mountMode(c.hostConfig, m.Target), RW: !m.ReadOnly, Propagation: 'rprivate' });
      if (m.Type === 'tmpfs') out.push({ Type: 'tmpfs', Source: '', Destination: m.Target, Mode: '', RW: !m.ReadOnly, Propagation: '' });
    }
    const cm = await this.manager();
    for (const r of memo.volumes(c.id)) {
      const ro = c.hostConfig.Mounts.find((m) => m.Target === r.destination)?.ReadOnly ?? false;
      out.push({ Type: 'volume', Name: r.volume, Source: cm.volumes.mountpoint(r.volume), Destination: r.destination, Driver: 'local', Mode: mountMode(c.hostConfig, r.destination), RW: !ro, Propagation: '' });
    }
    return out;
  }

  /**
   * GET /containers/json: running ones unless `all` (or `limit`, or a status filter), newest
   * first; Docker's filters id, name, label, status, exited, ancestor, before, since,
   * volume, network, publish, expose.
   */
  async list(opts: ContainerListOptions = {}): Promise<ContainerSummary[]> {
    const f: Filters = opts.filters ?? {};
    acceptFilters(f, ['id', 'name', 'label', 'status', 'exited', 'ancestor', 'before', 'since', 'volume', 'network', 'publish', 'expose', 'health', 'is-task', 'isolation']);
    for (const h of f.health ?? []) {
      if (!['starting', 'healthy', 'unhealthy', 'none'].includes(h)) throw invalidArgument('INVALID_FILTER', `Unrecognised filter value for health: ${h}`);
    }
    for (const s of f.status ?? []) {
      if (!['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'].includes(s)) throw invalidArgument('INVALID_FILTER', `Invalid filter 'status=${s}'`);
    }
    for (const e of f.exited ?? []) if (!/^-?\d+$/.test(e)) throw invalidArgument('INVALID_FILTER', `Invalid filter 'exited=${e}'`);
    const cm = await this.manager();
    const all = opts.all || (opts.limit !== undefined && opts.limit > 0) || (f.status?.length ?? 0) > 0 || (f.exited?.length ?? 0) > 0;
    let list = await cm.list({ live: !all });
    // a container waiting to restart counts as running, as Docker's
    if (!all) list = list.filter((c) => c.state.Running || c.state.Status === 'restarting');
    const createdOf = (ref: string) => {
      const c = cm.store.resolve(ref);
      return Date.parse(c.created);
    };
    const before = f.before?.length ? createdOf(f.before[0]!) : undefined;
    const since = f.since?.length ? createdOf(f.since[0]!) : undefined;
    const any = (key: string, pred: (v: string) => boolean) => !f[key]?.length || f[key]!.some(pred);
    const ancestorIds = (f.ancestor ?? []).map((a) => {
      try {
        return this.core.resolveImage(a).id as string;
      } catch {
        return undefined;
      }
    });
    // a network filter value is a name or an ID (prefix): the names it stands for
    const networkIds = new Map<string, string[]>();
    for (const v of f.network ?? []) networkIds.set(v, (await cm.network.networks()).filter((n) => n.Id.startsWith(v)).map((n) => n.Name));
    const netNames = (c: ContainerRecord) => {
      const { mode, networks } = containerNetworks(c.hostConfig);
      return mode === 'bridge' ? networks.map((n) => n.name) : [mode];
    };
    list = list.filter((c) => {
      if (!any('id', (v) => c.id.startsWith(v))) return false;
      if (!any('name', (v) => safeRegex(v).test(c.name) || safeRegex(v).test('/' + c.name))) return false;
      if (f.label?.length && !f.label.every((l) => labelMatch(c.config.Labels, l))) return false;
      if (!any('status', (v) => c.state.Status === v)) return false;
      if (!any('exited', (v) => c.state.Status === 'exited' && c.state.ExitCode === Number(v))) return false;
      if (f.ancestor?.length && !f.ancestor.some((a, i) => a === c.imageName || ancestorIds[i] === c.imageId || c.imageId.replace(/^sha256:/, '').startsWith(a.replace(/^sha256:/, '')))) return false;
      const created = Date.parse(c.created);
      if (before !== undefined && !(created < before)) return false;
      if (since !== undefined && !(created > since)) return false;
      if (!any('volume', (v) => c.hostConfig.Mounts.some((m) => m.Source === v || m.Target === v))) return false;
      if (f.network?.length && !f.network.some((v) => netNames(c).some((n) => n === v || networkIds.get(v)?.includes(n)))) return false;
      if (!any('expose', (v) => Object.keys(c.config.ExposedPorts ?? {}).includes(v.includes('/') ? v : `${v}/tcp`))) return false;
      if (!any('health', (v) => v === (cm.health(c)?.Status ?? 'none'))) return false;
      return true;
    });
    if (opts.limit !== undefined && opts.limit > 0) list = list.slice(0, opts.limit);
    const out: ContainerSummary[] = [];
    const memo = this.summaryMemo();
    for (const c of list) out.push(await this.summary(c, { size: !!opts.size, memo }));
    if (f.publish?.length) return out.filter((s) => f.publish!.some((v) => s.Ports.some((p) => p.PublicPort !== undefined && `${p.PublicPort}/${p.Type}` === (v.includes('/') ? v : `${v}/tcp`))));
    return out;
  }

  async inspect(ref: string, opts: { size?: boolean } = {}): Promise<ContainerInspect> {
    const cm = await this.manager();
    const c = await cm.get(ref);
    const doc = (await cm.inspect(c.id)) as ContainerInspect;
    if (opts.size) {
      const rw = this.core.snapshots.usage(c.snapshot).size;
      doc.SizeRw = rw;
      doc.SizeRootFs = rw + (this.core.images.get(c.imageId)?.size ?? 0);
    }
    return doc;
  }

  /** The container's ID for a name, ID or unique ID prefix. */
  async id(ref: string): Promise<string> {
    return (await this.record(ref)).id;
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * POST /containers/{id}/start. Attaches waiting for this container (attach before start,
   * as `docker run` does) are connected before its process runs. `alreadyRunning`: nothing
   * was done (the API's 304). An AutoRemove container that cannot start is removed, as dockerd does.
   */
  async start(ref: string, opts: StartOptions = {}): Promise<{ attached?: Promise<void>; detach?: () => void; alreadyRunning?: boolean }> {
    const cm = await this.manager();
    const c = await cm.get(ref);
    if (c.state.Running && !c.state.Paused) return { alreadyRunning: true };
    const waiting = [...(this.pending.get(c.id) ?? [])];
    this.pending.delete(c.id);
    const list = [...(opts.attach ? [opts.attach] : []), ...waiting.map((p) => p.streams)];
    let s: Awaited<ReturnType<ContainerManager['start']>>;
    try {
      s = await cm.start(c.id, { ...(list.length ? { attach: list } : {}), ...(opts.consoleSize ? { consoleSize: opts.consoleSize } : {}) });
    } catch (e) {
      for (const p of waiting) p.connect(undefined);
      if (c.hostConfig.AutoRemove) await cm.remove(c.id, { force: true, volumes: true }).catch(() => {});
      this.changed(c.id);
      throw e;
    }
    this.changed(c.id);
    const atts = s.attachments ?? [];
    const first = opts.attach ? 1 : 0;
    waiting.forEach((p, i) => p.connect(atts[first + i]));
    const own = opts.attach ? atts[0] : undefined;
    return { ...(own ? { attached: own.done, detach: () => own.detach() } : {}) };
  }

  /** POST /containers/{id}/stop: the stop signal, SIGKILL after `timeout` seconds. `alreadyStopped`: the API's 304. */
  async stop(ref: string, opts: { timeout?: number } = {}): Promise<{ alreadyStopped?: boolean }> {
    const cm = await this.manager();
    const c = await cm.get(ref);
    // a restarting container counts as running (Docker's): stopping it cancels the restart
    if (!c.state.Running && c.state.Status !== 'restarting') return { alreadyStopped: true };
    await cm.stop(c.id, opts.timeout);
    this.changed(c.id);
    return {};
  }

  async restart(ref: string, opts: { timeout?: number } = {}): Promise<void> {
    const cm = await this.manager();
    const c = await cm.get(ref);
    await cm.stop(c.id, opts.timeout);
    this.changed(c.id);
    await this.start(c.id);
    cm.event(cm.store.get(c.id) ?? c, 'restart');
  }

  /** POST /containers/{id}/kill: a signal by name (KILL, SIGTERM) or number; 400 for an unknown one. */
  async kill(ref: string, opts: { signal?: string } = {}): Promise<void> {
    const sig = parseSignal(opts.signal || 'SIGKILL');
    const cm = await this.manager();
    try {
      const c = await cm.get(ref);
      await cm.kill(c.id, sig);
      this.changed(c.id);
    } catch (e) {
      // dockerd's kill route wraps every error (a missing container, one not running) so
      throw isEngineError(e) ? new EngineError(e.kind, e.code, `Cannot kill container: ${ref}: ${e.message}`, { cause: e }) : e;
    }
  }

  async pause(ref: string): Promise<void> {
    const cm = await this.manager();
    const c = await cm.get(ref);
    await cm.pause(c.id);
    this.changed(c.id);
  }

  async unpause(ref: string): Promise<void> {
    const cm = await this.manager();
    const c = await cm.get(ref);
    await cm.unpause(c.id);
    this.changed(c.id);
  }

  /**
   * POST /containers/{id}/wait. not-running: at once for a container that is not running,
   * else at its exit; next-exit: the next exit (a container not running yet is waited for
   * to start, then to exit); removed: once the container is gone. On the exit it sees, the
   * waiter records it and releases the container (removing an AutoRemove one) at once, as
   * dockerd does — so `docker run --rm`, which waits (removed) before it starts, gets the
   * exit code however fast the container exits and is removed. `onWaiting` is called once
   * the container's state is taken (the API sends its headers then).
   */
  async wait(ref: string, opts: { condition?: WaitCondition; signal?: AbortSignal; onWaiting?: () => void } = {}): Promise<WaitResponse> {
    const cm = await this.manager();
    let c = await cm.get(ref);
    const condition = opts.condition ?? 'not-running';
    if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw invalidArgument('INVALID_CONDITION', `invalid condition: "${condition}"`);
    const signal = opts.signal;
    opts.onWaiting?.();
    if (condition === 'not-running' && !c.state.Running && c.state.Status !== 'restarting') return { StatusCode: c.state.ExitCode, Error: null };
    let code = c.state.ExitCode;
    const gone = () => ({ StatusCode: code, Error: null });
    if (!c.state.Running) {
      // until it runs (started here or by another process), or is removed
      const startedAt = c.state.StartedAt;
      for (;;) {
        if (signal?.aborted) return gone();
        const cur = cm.store.get(c.id);
        if (!cur) return gone();
        const r = await cm.refresh(cur);
        code = r.state.ExitCode;
        if (r.state.Running || r.state.StartedAt !== startedAt) {
          c = r;
          break;
        }
        await napFor(this.stateChanges, c.id, 250, signal);
      }
    }
    if (c.state.Running) {
      try {
        code = await cm.waitAndCleanup(c.id, signal ? { signal } : {});
      } catch (e) {
        if (signal?.aborted) return gone();
        if (!isEngineError(e, 'not-found')) {
          const cur = cm.store.get(c.id);
          if (cur) return { StatusCode: (await cm.refresh(cur)).state.ExitCode, Error: { Message: (e as Error).message } };
        }
      }
      this.changed(c.id);
    } else {
      code = c.state.ExitCode;
      await cm.cleanup(c.id).catch(() => {});
    }
    if (condition === 'removed') {
      while (cm.store.get(c.id) && !signal?.aborted) await napFor(this.stateChanges, c.id, 250, signal);
    }
    return { StatusCode: code, Error: null };
  }

  /** DELETE /containers/{id}: 409 for a running container unless `force`; `volumes` removes its anonymous volumes. */
  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const cm = await this.manager();
    const id = await cm.remove(ref, { force: !!opts.force, volumes: !!opts.volumes });
    for (const [k, e] of this.execs) if (e.containerId === id) this.execs.delete(k);
    this.changed(id);
  }

  /**
   * POST /containers/{id}/update: resources (zero leaves a value as it is, as Docker's)
   * applied at once to a running container and recorded for its next starts; the restart
   * policy is recorded. Docker's conflicts: a memory limit above the swap limit already
   * set, NanoCpus against a CPU period or quota.
   */
  async update(ref: string, body: ContainerUpdateBody): Promise<ContainerUpdateResponse> {
    const cm = await this.manager();
    const c = await cm.get(ref);
    const h = body as Parameters<typeof resourceFields>[0];
    const cur = c.hostConfig;
    const patch: Partial<InternalHostConfig> = resourceFields(h);
    if (body.Memory) patch.Memory = body.Memory;
    if (body.NanoCpus) patch.NanoCpus = body.NanoCpus;
    if (body.PidsLimit !== undefined && body.PidsLimit !== null) patch.PidsLimit = body.PidsLimit > 0 ? body.PidsLimit : 0;
    if (body.NanoCpus && (cur.CpuPeriod || cur.CpuQuota) && !body.CpuPeriod && !body.CpuQuota) throw conflict('CONFLICTING_UPDATE', 'Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set');
    if ((body.CpuPeriod || body.CpuQuota) && cur.NanoCpus && !body.NanoCpus) throw conflict('CONFLICTING_UPDATE', `Conflicting options: CPU ${body.CpuPeriod ? 'Period' : 'Quota'} cannot be updated as NanoCPUs has already been set`);
    const swap = cur.MemorySwap ?? (cur.Memory && swapAccounting() ? cur.Memory * 2 : 0);
    if (body.Memory && !body.MemorySwap && swap > 0 && body.Memory > swap) {
      throw conflict('CONFLICTING_UPDATE', 'Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time');
    }
    // the swap limit stays what it was (not twice the new memory limit)
    if (body.Memory && !body.MemorySwap && swap > 0) patch.MemorySwap = swap;
    if (body.RestartPolicy && (body.RestartPolicy.Name || body.RestartPolicy.MaximumRetryCount)) {
      const rp = body.RestartPolicy;
      if (!['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(rp.Name)) throw invalidArgument('INVALID_RESTART_POLICY', `invalid restart policy '${rp.Name}'`);
      if (cur.AutoRemove && rp.Name !== '' && rp.Name !== 'no') throw invalidArgument('CONFLICT_AUTOREMOVE_RESTART', 'Restart policy cannot be updated because AutoRemove is enabled for the container');
      if ((rp.MaximumRetryCount ?? 0) < 0) throw invalidArgument('INVALID_RESTART_POLICY', 'maximum retry count cannot be negative');
      if (rp.Name !== 'on-failure' && (rp.MaximumRetryCount ?? 0) > 0) throw invalidArgument('INVALID_RESTART_POLICY', `maximum retry count cannot be used with restart policy '${rp.Name}'`);
      patch.RestartPolicy = { Name: rp.Name, MaximumRetryCount: rp.MaximumRetryCount ?? 0 };
    }
    const m = { ...cur, ...patch };
    checkResources(
      { Memory: m.Memory, NanoCpus: m.NanoCpus, CpuShares: m.CpuShares, CpuPeriod: m.CpuPeriod, CpuQuota: m.CpuQuota, CpusetCpus: m.CpusetCpus, CpusetMems: m.CpusetMems, MemoryReservation: m.MemoryReservation, MemorySwap: m.MemorySwap, BlkioWeight: m.BlkioWeight } as Parameters<typeof checkResources>[0],
      availableParallelism(),
    );
    if (c.state.Status === 'removing' || c.state.Status === 'dead') throw conflict('CONTAINER_REMOVING', `Cannot update container ${c.id}: container is marked for removal and cannot be "update"`);
    const updated = await cm.update(c.id, patch);
    cm.event(updated, 'update');
    this.changed(c.id);
    const warnings: string[] = [];
    if (body.KernelMemory) warnings.push('You specified a kernel memory limit on a kernel older than 4.15. Kernel memory limits are experimental on older kernels, it won\'t work as expected and can cause your system to be unstable.');
    return { Warnings: warnings };
  }

  async rename(ref: string, name: string): Promise<void> {
    const cm = await this.manager();
    cm.rename(ref, name);
    // its peers on user-defined networks know it by its new name
    await cm.network.renamed(cm.store.resolve(name).id, name);
  }

  /** Removes every stopped container. */
  async prune(opts: { filters?: Filters } = {}): Promise<ContainerPruneResponse> {
    const f = opts.filters ?? {};
    acceptFilters(f, ['until', 'label']);
    const cm = await this.manager();
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const c of await cm.list()) {
      if (c.state.Running || c.state.Status === 'restarting') continue;
      if (f.label?.length && !f.label.every((l) => labelMatch(c.config.Labels, l))) continue;
      let size = 0;
      try {
        size = this.core.snapshots.usage(c.snapshot).size;
      } catch {
        /* gone */
      }
      await cm.remove(c.id, { volumes: false });
      deleted.push(c.id);
      reclaimed += size;
    }
    return { ContainersDeleted: deleted, SpaceReclaimed: reclaimed };
  }

  // ------------------------------------------------------------------ io

  /**
   * GET /containers/{id}/logs: lines with their stream and time. `follow` follows a running
   * container until it exits (a stopped one's log is read to its end); the signal ends it.
   */
  async *logs(ref: string, opts: LogsOptions = {}): AsyncGenerator<LogEntry> {
    const cm = await this.manager();
    const wantOut = opts.stdout ?? true;
    const wantErr = opts.stderr ?? true;
    try {
      for await (const l of cm.logs(ref, {
        follow: !!opts.follow,
        ...(opts.tail !== undefined && opts.tail >= 0 ? { tail: opts.tail } : {}),
        ...(opts.since !== undefined ? { since: opts.since } : {}),
        ...(opts.until !== undefined ? { until: opts.until } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      })) {
        if (opts.signal?.aborted) return;
        if ((l.stream === 'stdout' && wantOut) || (l.stream === 'stderr' && wantErr)) yield l;
      }
    } catch (e) {
      // the client went away: the follow just ends
      if (opts.signal?.aborted) return;
      throw e;
    }
  }

  /**
   * POST /containers/{id}/attach (and the CLI's attach): the container's stdio on `streams`.
   * `logs` replays its log first; `stream: false` ends there. A container that is not
   * running yet is attached when it starts (`docker run` attaches first); a running one at
   * once. Its stdin (when the container has one open) goes through the detach keys
   * (default ctrl-p,ctrl-q): on them the client is detached and the container runs on.
   */
  async attach(ref: string, streams: AttachStreams, opts: AttachOptions = {}): Promise<AttachHandle> {
    const cm = await this.manager();
    const c = await cm.get(ref);
    if (c.state.Paused) throw conflict('CONTAINER_PAUSED', 'You cannot attach to a paused container, unpause it first');
    if (c.state.Restarting) throw conflict('CONTAINER_RESTARTING', 'You cannot attach to a restarting container, wait until it is running');
    const keys = parseDetachKeys(opts.detachKeys ?? DEFAULT_DETACH_KEYS);
    const tty = !!c.config.Tty;
    const openStdin = !!c.config.OpenStdin;
    opts.onReady?.();
    if (opts.logs) {
      for await (const l of this.logs(c.id, { stdout: opts.stdout ?? true, stderr: opts.stderr ?? true, ...(opts.signal ? { signal: opts.signal } : {}) })) {
        const out = l.stream === 'stderr' ? streams.stderr : streams.stdout;
        if (out && !out.write(l.data)) await new Promise((r) => out.once('drain', r));
      }
    }
    let detached = false;
    let ended = false;
    let attachment: { done: Promise<void>; detach(): void } | undefined;
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    let pend: PendingAttach | undefined;
    const handle: AttachHandle = {
      done,
      detach: () => {
        if (ended) return;
        ended = true;
        if (pend) this.pending.get(c.id)?.delete(pend);
        attachment?.detach();
        finish();
      },
      get detached() {
        return detached;
      },
      tty,
      openStdin,
    };
    if (opts.stream === false || opts.signal?.aborted) {
      ended = true;
      finish();
      return handle;
    }
    let stdin: NodeJS.ReadableStream | null = openStdin ? (streams.stdin ?? null) : null;
    if (stdin && keys.length) {
      const proxy = new EscapeProxy(keys, () => {
        detached = true;
        handle.detach();
      });
      stdin.pipe(proxy);
      stdin = proxy;
    }
    const s: AttachStreams = { stdin, stdout: streams.stdout ?? null, stderr: streams.stderr ?? null };
    const connect = (a: { done: Promise<void>; detach(): void } | undefined) => {
      pend = undefined;
      if (!a) return handle.detach();
      attachment = a;
      if (ended) a.detach();
      void a.done.then(() => handle.detach());
    };
    opts.signal?.addEventListener('abort', () => handle.detach(), { once: true });
    if (c.state.Running) {
      connect(await cm.attach(c.id, s));
      return handle;
    }
    pend = { streams: s, connect };
    let set = this.pending.get(c.id);
    if (!set) this.pending.set(c.id, (set = new Set()));
    set.add(pend);
    void this.watchPending(c.id);
    return handle;
  }

  /**
   * While attaches wait for a container to start: one started by another process (the CLI)
   * is attached once seen running; one removed ends them.
   */
  private async watchPending(id: string): Promise<void> {
    const cm = await this.manager();
    while (this.pending.get(id)?.size) {
      await napFor(this.stateChanges, id, 500);
      const set = this.pending.get(id);
      if (!set?.size) break;
      const cur = cm.store.get(id);
      if (cur && !(await cm.refresh(cur)).state.Running) continue;
      this.pending.delete(id);
      for (const p of set) {
        if (!cur) p.connect(undefined);
        else p.connect(await cm.attach(id, p.streams).catch(() => undefined));
      }
    }
    if (this.pending.get(id)?.size === 0) this.pending.delete(id);
  }

  /** What attach needs to know before it connects. */
  async attachInfo(ref: string): Promise<{ id: string; tty: boolean; openStdin: boolean; running: boolean }> {
    const c = await this.record(ref);
    return { id: c.id, tty: !!c.config.Tty, openStdin: !!c.config.OpenStdin, running: c.state.Running };
  }

  /** POST /containers/{id}/resize: the terminal size of a `-t` container. */
  async resize(ref: string, size: { height: number; width: number }): Promise<void> {
    const cm = await this.manager();
    const c = await cm.get(ref);
    if (!c.state.Running) throw conflict('NOT_RUNNING', `Container ${c.id} is not running`);
    await cm.resize(c.id, size.height, size.width);
  }

  /**
   * GET /containers/{id}/stats: samples of the container's cgroup and network namespace in
   * Docker's JSON, each with the previous one's CPU figures (precpu_stats). `stream`: one a
   * second until the container is removed or the signal fires; else one — after a first
   * sample a second earlier, so CPU % can be computed (as dockerd), or at once with `oneShot`.
   */
  async *stats(ref: string, opts: { stream?: boolean; oneShot?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<ContainerStats> {
    const cm = await this.manager();
    const c0 = await cm.get(ref);
    const id = c0.id;
    let prev: { read: string; cpu: CpuStats } | undefined;
    const sample = async (): Promise<ContainerStats | undefined> => {
      const cur = cm.store.get(id);
      if (!cur) return undefined;
      const c = await cm.refresh(cur);
      const name = '/' + c.name;
      if (!c.state.Running) {
        prev = undefined;
        return emptyStats(name, id);
      }
      const s = (await sampleStats({ name, id, cgroupsPath: cm.cgroupsPath(id), pid: c.state.Pid, network: c.hostConfig.NetworkMode !== 'host', ...(prev ? { prev } : {}) })) ?? emptyStats(name, id);
      prev = s.read === ZERO_TIME ? undefined : { read: s.read, cpu: s.cpu_stats };
      return s;
    };
    const pause = () => napFor(this.stateChanges, `\0never`, 1000, opts.signal);
    if (!opts.stream) {
      if (c0.state.Running && !opts.oneShot) {
        await sample();
        await pause();
      }
      const s = await sample();
      if (s) yield s;
      return;
    }
    while (!opts.signal?.aborted) {
      const s = await sample();
      if (!s) return;
      yield s;
      await pause();
    }
  }

  // ------------------------------------------------------------------ exec

  /** POST /containers/{id}/exec */
  async createExec(ref: string, config: ExecConfig): Promise<{ Id: string }> {
    const c = await this.record(ref);
    if (!Array.isArray(config.Cmd) || config.Cmd.length === 0) throw invalidArgument('NO_EXEC_CMD', 'No exec command specified');
    if (config.DetachKeys) parseDetachKeys(config.DetachKeys);
    if (!c.state.Running) throw conflict('NOT_RUNNING', `Container ${c.id} is not running`);
    if (c.state.Paused) throw conflict('CONTAINER_PAUSED', `Container ${c.id} is paused, unpause the container before exec`);
    if (c.state.Status === 'restarting') throw conflict('CONTAINER_RESTARTING', `Container ${c.id} is restarting, wait until the container is running`);
    // records of execs that ended a while ago, or whose container is gone, are dropped
    const cm = await this.manager();
    const now = Date.now();
    for (const [k, e] of this.execs) {
      if ((e.endedAt !== undefined && now - e.endedAt > EXEC_RECORD_TTL_MS) || !cm.store.get(e.containerId)) this.execs.delete(k);
    }
    const id = randomBytes(32).toString('hex');
    this.execs.set(id, { id, containerId: c.id, config, running: false, exitCode: null, pid: 0 });
    (await this.manager()).event(c, `exec_create: ${execLine(config.Cmd)}`, { execID: id });
    return { Id: id };
  }

  private execRecord(id: string): ExecRecord {
    const e = this.execs.get(id);
    if (!e) throw notFound('NO_SUCH_EXEC', `No such exec instance: ${id}`);
    return e;
  }

  /**
   * POST /exec/{id}/start: attached (streams) or detached; resolves with the exit code of an
   * attached one. The exec's stdin (AttachStdin) goes through its detach keys; a client that
   * detaches or goes away (the signal) leaves the process running, and its exit code is
   * still recorded for inspect.
   */
  async startExec(
    id: string,
    opts: { detach?: boolean; streams?: AttachStreams; consoleSize?: { height: number; width: number }; signal?: AbortSignal; /** kills the process when aborted (signal only detaches) */ kill?: AbortSignal; onReady?: (e: { tty: boolean }) => void } = {},
  ): Promise<{ exitCode?: number }> {
    const e = this.execRecord(id);
    if (e.exitCode !== null) throw conflict('EXEC_STARTED', `Error: Exec command ${id} has already run`);
    if (e.running) throw conflict('EXEC_RUNNING', `Error: Exec command ${id} is already running`);
    const ctr = (await this.manager()).store.get(e.containerId);
    if (!ctr || !ctr.state.Running) throw conflict('NOT_RUNNING', `Container ${e.containerId} is not running`);
    e.running = true;
    opts.onReady?.({ tty: !!e.config.Tty });
    const streams: AttachStreams = { ...(opts.streams ?? {}) };
    let attachment: { detach(): void } | undefined;
    let gone = false;
    let left!: () => void;
    const leftP = new Promise<void>((r) => (left = r));
    const leave = () => {
      gone = true;
      attachment?.detach();
      left();
    };
    if (streams.stdin && e.config.AttachStdin) {
      const keys = parseDetachKeys(e.config.DetachKeys || DEFAULT_DETACH_KEYS);
      if (keys.length) {
        const proxy = new EscapeProxy(keys, leave);
        streams.stdin.pipe(proxy);
        streams.stdin = proxy;
      }
    } else streams.stdin = null;
    opts.signal?.addEventListener('abort', leave, { once: true });
    const size = opts.consoleSize ?? e.size;
    const cm = await this.manager();
    cm.event(ctr, `exec_start: ${execLine(e.config.Cmd)}`, { execID: id });
    // the exec's own course: its exit code is recorded whether or not a client still listens
    const run = (async () => {
      try {
        const r = await cm.exec(e.containerId, {
          args: e.config.Cmd,
          env: e.config.Env ?? [],
          ...(e.config.WorkingDir ? { workdir: e.config.WorkingDir } : {}),
          ...(e.config.User ? { user: e.config.User } : {}),
          tty: !!e.config.Tty,
          privileged: !!e.config.Privileged,
          detach: !!opts.detach,
          streams,
          ...(size ? { consoleSize: size } : {}),
          sizeWhenAttached: () => e.size ?? size,
          execId: e.id,
          onStarted: (pid) => (e.pid = pid),
          // only a caller that asks for it (a healthcheck's timeout) kills the process; a client that leaves does not
          ...(opts.kill ? { signal: opts.kill } : {}),
          onAttachment: (a) => {
            attachment = a;
            e.attached = true;
            if (gone) a.detach();
          },
        });
        if (r.pid) e.pid = r.pid;
        if (opts.detach) e.detached = true;
        if (r.exitCode !== undefined) {
          e.exitCode = r.exitCode;
          e.endedAt = Date.now();
          cm.event(ctr, 'exec_die', { execID: id, exitCode: String(r.exitCode) });
        }
        return r.exitCode !== undefined ? { exitCode: r.exitCode } : {};
      } catch (err) {
        e.endedAt = Date.now();
        if (isEngineError(err) && err.code === 'START_FAILED') {
          // dockerd: an exec that cannot start has exit code 126 (whatever the reason), and its
          // error ends as containerd's gRPC error does (": unknown")
          e.exitCode = 126;
          throw Object.assign(new EngineError(err.kind, err.code, `${err.message}: unknown`, { ...(err.where ? { where: err.where } : {}), cause: err }), { exitCode: 126 });
        }
        if (e.exitCode === null) e.exitCode = (err as { exitCode?: number }).exitCode ?? 126;
        throw err;
      } finally {
        if (!opts.detach) e.running = false;
        opts.signal?.removeEventListener('abort', leave);
      }
    })();
    // a client that detached (its keys) or went away is done at once; the exec runs on
    const r = await Promise.race([run, leftP.then(() => undefined)]);
    if (r === undefined) {
      run.catch(() => {});
      return {};
    }
    return r;
  }

  /** POST /exec/{id}/resize: the exec's terminal size (kept for its start when it has not run yet). */
  async resizeExec(id: string, size: { height: number; width: number }): Promise<void> {
    const e = this.execRecord(id);
    if (!e.config.Tty) return;
    // not connected yet: the size is applied when it is
    e.size = size;
    if (!e.running || !e.attached) return;
    await (await this.manager()).resizeExec(e.containerId, e.id, size.height, size.width);
  }

  /** GET /exec/{id}/json */
  async inspectExec(id: string): Promise<ExecInspect> {
    const e = this.execRecord(id);
    if (e.detached && e.running) {
      const cm = await this.manager();
      const code = await cm.execExit(e.containerId, e.id);
      const ctr = cm.store.get(e.containerId);
      const alive = ctr ? (await cm.refresh(ctr)).state.Running : false;
      if (code !== undefined || !alive) {
        e.running = false;
        e.exitCode = code ?? e.exitCode;
        e.endedAt = Date.now();
      }
    }
    return {
      ID: e.id,
      Running: e.running,
      ExitCode: e.exitCode,
      ProcessConfig: { tty: !!e.config.Tty, entrypoint: e.config.Cmd[0] ?? '', arguments: e.config.Cmd.slice(1), privileged: !!e.config.Privileged, ...(e.config.User ? { user: e.config.User } : {}) },
      OpenStdin: !!e.config.AttachStdin,
      OpenStderr: e.config.AttachStderr ?? true,
      OpenStdout: e.config.AttachStdout ?? true,
      ContainerID: e.containerId,
      Pid: e.pid,
      CanRemove: !e.running,
      DetachKeys: e.config.DetachKeys ?? '',
    };
  }

  /**
   * Runs a command in the container to its end and collects its output. Aborting the
   * signal kills the command (SIGKILL); the result then has its exit code (137).
   */
  async exec(ref: string, cmd: string[], opts: Omit<ExecConfig, 'Cmd'> & { stdin?: Readable; signal?: AbortSignal } = {}): Promise<ExecResult> {
    const { stdin, signal, ...config } = opts;
    const { Id } = await this.createExec(ref, { ...config, Cmd: cmd, ...(stdin ? { AttachStdin: true } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.on('data', (b: Buffer) => out.push(b));
    stderr.on('data', (b: Buffer) => err.push(b));
    try {
      // aborting kills the command (its exit code is then 137)
      const r = await this.startExec(Id, { streams: { stdin: stdin ?? null, stdout, stderr }, ...(signal ? { kill: signal } : {}) });
      return { exitCode: r.exitCode ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
    } finally {
      this.execs.delete(Id);
    }
  }

  // ------------------------------------------------------------------ inside

  async top(ref: string, psArgs?: string): Promise<TopResponse> {
    const t = await (await this.manager()).top(ref, psArgs ? psArgs.split(/\s+/).filter(Boolean) : undefined);
    return { Titles: t.titles, Processes: t.processes };
  }

  async changes(ref: string): Promise<ChangeItem[]> {
    const kinds = { C: 0, A: 1, D: 2 } as const;
    return (await this.core.diff(ref)).map((ch) => ({ Kind: kinds[ch.kind as 'C' | 'A' | 'D'], Path: ch.path }));
  }

  async export(ref: string, out: Writable): Promise<void> {
    await (await this.manager()).export(ref, out);
  }

  /** Published ports, as inspect's NetworkSettings.Ports. */
  async ports(ref: string): Promise<PortMap> {
    const doc = await this.inspect(ref);
    return ((doc.NetworkSettings as { Ports?: PortMap }).Ports ?? {}) as PortMap;
  }

  /** `docker port` lines ("80/tcp -> 0.0.0.0:8080"), optionally for one PRIVATE_PORT[/PROTO]. */
  async portLines(ref: string, filter?: string): Promise<string[]> {
    return (await this.manager()).ports(ref, filter);
  }

  async commit(ref: string, opts: CommitOptions = {}): Promise<{ Id: string }> {
    const reference = opts.repo ? (opts.tag ? `${opts.repo}:${opts.tag}` : opts.repo) : undefined;
    const r = await this.core.commit(ref, {
      ...(opts.author ? { author: opts.author } : {}),
      ...(opts.comment ? { message: opts.comment } : {}),
      changes: opts.changes ?? [],
      pause: opts.pause ?? true,
      ...(reference ? { reference } : {}),
      // dockerd decodes the body into a wrapper whose config stays nil for `{}` (what docker-py
      // sends) as for `null` (the docker CLI): then the changes apply to the container's config
      ...(opts.config && Object.keys(opts.config).length ? { config: opts.config as import('../oci/types.js').ContainerConfig } : {}),
    });
    return { Id: r.id };
  }

  // ------------------------------------------------------------------ files (cp, the archive endpoints)

  /** HEAD /containers/{id}/archive: Docker's stat of a path in the container (binds, volumes and etc files included). */
  async stat(ref: string, path: string): Promise<PathStat> {
    return (await this.manager()).stat(ref, path);
  }

  /** GET /containers/{id}/archive: the stat and a tar stream of a path; the stream holds the container's file system until it ends. */
  async getArchive(ref: string, path: string, opts: { signal?: AbortSignal } = {}): Promise<{ stat: PathStat; stream: Readable }> {
    return (await this.manager()).getArchive(ref, path, opts);
  }

  /** PUT /containers/{id}/archive: extracts a tar stream (plain, gzip, zstd) into a directory of the container, confined to it. */
  async putArchive(ref: string, path: string, source: Readable | AsyncIterable<Buffer>, opts: { noOverwriteDirNonDir?: boolean; copyUIDGID?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    await (await this.manager()).putArchive(ref, path, source, opts);
  }

  async copyFrom(ref: string, src: string, dest: string | Writable, opts: { followLink?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    await (await this.manager()).copyFrom(ref, src, dest, opts);
  }

  async copyTo(ref: string, src: string, dest: string, opts: { archive?: boolean; followLink?: boolean } = {}): Promise<void> {
    await (await this.manager()).copyTo(ref, src, dest, opts);
  }

  async copyArchiveTo(ref: string, source: Readable, dest: string, opts: { archive?: boolean } = {}): Promise<void> {
    await (await this.manager()).copyArchiveTo(ref, source, dest, opts);
  }

  /** conmon's exit command: record the exit, release the container's resources, remove an AutoRemove one. */
  async cleanup(id: string): Promise<void> {
    await (await this.manager()).cleanup(id);
  }

  /**
   * conmon's exit hook, after cleanup: a container whose restart policy restarts it is
   * started again once its back-off is over (this waits for it; nothing when it was
   * stopped, removed or started meanwhile).
   */
  async restartPending(id: string): Promise<void> {
    await (await this.manager()).runPendingRestart(id);
  }

  /**
   * What dockerd does at boot, for `serve` when it starts: starts the containers whose
   * restart policy says so (always; unless-stopped unless stopped by hand; on-failure after
   * a failure) — after a reboot, or whenever they are stopped — and gives running
   * containers with a healthcheck a monitor again where theirs is gone. Returns what it
   * started and the errors of what it could not.
   */
  async restore(): Promise<{ started: string[]; failed: { id: string; error: string }[]; monitored: string[] }> {
    await this.core.repair();
    const cm = await this.manager();
    const started: string[] = [];
    const failed: { id: string; error: string }[] = [];
    for (const id of await cm.restartCandidates()) {
      try {
        await cm.start(id);
        started.push(id);
      } catch (e) {
        failed.push({ id, error: (e as Error).message });
      }
    }
    const monitored: string[] = [];
    for (const c of await cm.unmonitored()) {
      await cm.resumeHealthMonitor(c.id).then(
        () => monitored.push(c.id),
        () => {},
      );
    }
    return { started, failed, monitored };
  }

  /**
   * The health monitor of one run of a container (health-monitor.ts, a process of its own):
   * Docker's probes, every Interval, until the container stops or starts anew.
   */
  async monitorHealth(id: string, startedAt: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await runHealthMonitor({ manager: await this.manager(), exec: (cmd, o) => this.exec(id, cmd, o) }, id, startedAt, opts);
  }
}

/** Docker's exec event wording: "exec_create: sh -c ls" (the entrypoint, a space, the arguments). */
function execLine(cmd: string[]): string {
  return `${cmd[0] ?? ''} ${cmd.slice(1).join(' ')}`;
}

/** The warnings dockerd gives at create, in its words. */
function createWarnings(body: ContainerCreateBody): string[] {
  const h = body.HostConfig ?? {};
  const out: string[] = [];
  if (h.NetworkMode === 'host' && Object.keys(h.PortBindings ?? {}).length) out.push('Published ports are discarded when using host network mode');
  if (h.Memory && !swapAccounting()) out.push('Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.');
  if (h.OomKillDisable && !h.Memory) out.push('OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.');
  return out;
}

function safeRegex(s: string): RegExp {
  try {
    return new RegExp(s);
  } catch {
    return { test: (x: string) => x.includes(s) } as RegExp;
  }
}
