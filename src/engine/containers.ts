/**
 * engine.containers: Docker's container operations in the Engine API's shapes — create,
 * run (create + attach + start + wait + auto-remove, what `docker run` orchestrates), list
 * with filters and Docker's status text, inspect, lifecycle, logs, attach, exec, archive,
 * commit, top, changes, export, prune.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { conflict, invalidArgument, notFound, unsupported } from '../errors/index.js';
import { checkRestartPolicy } from './createbody.js';
import { runHealthMonitor } from './health.js';
import type { ContainerManager } from '../container/manager.js';
import type { ContainerRecord } from '../container/types.js';
import type { NetworkAttachment } from '../network/index.js';
import type { Core } from './core.js';
import { toCreateRequest } from './createbody.js';
import { acceptFilters, labelMatch } from './filters.js';
import type {
  AttachStreams,
  ChangeItem,
  CommitOptions,
  ContainerCreateBody,
  ContainerCreateOptions,
  ContainerCreateResponse,
  ContainerInspect,
  ContainerListOptions,
  ContainerPruneResponse,
  ContainerSummary,
  ContainerUpdateBody,
  ContainerUpdateResponse,
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

function commandOf(c: ContainerRecord): string {
  return [...(c.config.Entrypoint ?? []), ...(c.config.Cmd ?? [])].join(' ');
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

interface ExecRecord {
  id: string;
  containerId: string;
  config: ExecConfig;
  running: boolean;
  exitCode: number | null;
  pid: number;
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

  constructor(private readonly core: Core) {}

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
    await this.core.repair();
    const cm = await this.manager();
    const c = await cm.create(req);
    return { Id: c.id, Warnings: [] };
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
      throw e;
    }
    if (opts.detach) return { id: created.Id, warnings: created.Warnings };
    return {
      id: created.Id,
      warnings: created.Warnings,
      exit: cm.waitAndCleanup(created.Id),
      ...(started.attached ? { attached: started.attached.catch(() => {}) } : {}),
    };
  }

  // ------------------------------------------------------------------ list / inspect

  async summary(c: ContainerRecord, opts: { size?: boolean; net?: NetworkAttachment } = {}): Promise<ContainerSummary> {
    const cm = await this.manager();
    const net = opts.net ?? (c.state.Running ? await cm.attachment(c.id) : undefined);
    const image = this.core.images.get(c.imageId);
    // Docker shows the image as named at create while that name still means the same image
    let imageName = c.imageName;
    try {
      if (!image || this.core.resolveImage(c.imageName).id !== c.imageId) imageName = c.imageId;
    } catch {
      imageName = c.imageId;
    }
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
      NetworkSettings: {
        Networks: net?.ipAddress
          ? { bridge: { NetworkID: net.networkName ?? 'bridge', EndpointID: net.containerId, Gateway: net.gateway ?? '', IPAddress: net.ipAddress, IPPrefixLen: net.ipPrefixLen ?? 0, MacAddress: net.macAddress ?? '' } }
          : c.hostConfig.NetworkMode === 'bridge'
            ? { bridge: { NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '' } }
            : { [c.hostConfig.NetworkMode]: { NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '' } },
      },
      Mounts: await this.mountPoints(c),
    };
    if (opts.size) {
      s.SizeRw = this.core.snapshots.usage(c.snapshot).size;
      s.SizeRootFs = s.SizeRw + (image?.size ?? 0);
    }
    return s;
  }

  private async mountPoints(c: ContainerRecord): Promise<ContainerSummary['Mounts']> {
    const out: ContainerSummary['Mounts'] = [];
    for (const m of c.hostConfig.Mounts) {
      if (m.Type === 'bind') out.push({ Type: 'bind', Source: m.Source, Destination: m.Target, Mode: m.ReadOnly ? 'ro' : '', RW: !m.ReadOnly, Propagation: 'rprivate' });
      if (m.Type === 'tmpfs') out.push({ Type: 'tmpfs', Source: '', Destination: m.Target, Mode: '', RW: !m.ReadOnly, Propagation: '' });
    }
    const cm = await this.manager();
    for (const r of this.core.db.prepare('SELECT volume, destination FROM container_volumes WHERE container_id = ?').all(c.id) as { volume: string; destination: string }[]) {
      const ro = c.hostConfig.Mounts.find((m) => m.Target === r.destination)?.ReadOnly ?? false;
      out.push({ Type: 'volume', Name: r.volume, Source: cm.volumes.mountpoint(r.volume), Destination: r.destination, Driver: 'local', Mode: ro ? 'ro' : '', RW: !ro, Propagation: '' });
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
    let list = await cm.list();
    const all = opts.all || (opts.limit !== undefined && opts.limit > 0) || (f.status?.length ?? 0) > 0 || (f.exited?.length ?? 0) > 0;
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
      if (!any('network', (v) => v === c.hostConfig.NetworkMode || (v === 'bridge' && c.hostConfig.NetworkMode === 'bridge'))) return false;
      if (!any('expose', (v) => Object.keys(c.config.ExposedPorts ?? {}).includes(v.includes('/') ? v : `${v}/tcp`))) return false;
      if (!any('health', (v) => v === (cm.health(c)?.Status ?? 'none'))) return false;
      return true;
    });
    if (opts.limit !== undefined && opts.limit > 0) list = list.slice(0, opts.limit);
    const out: ContainerSummary[] = [];
    for (const c of list) out.push(await this.summary(c, { size: !!opts.size }));
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

  async start(ref: string, opts: StartOptions = {}): Promise<{ attached?: Promise<void>; detach?: () => void }> {
    const cm = await this.manager();
    const s = await cm.start(ref, { ...(opts.attach ? { attach: opts.attach } : {}), ...(opts.consoleSize ? { consoleSize: opts.consoleSize } : {}) });
    return { ...(s.attached ? { attached: s.attached } : {}), ...(s.detach ? { detach: s.detach } : {}) };
  }

  async stop(ref: string, opts: { timeout?: number } = {}): Promise<void> {
    await (await this.manager()).stop(ref, opts.timeout);
  }

  async restart(ref: string, opts: { timeout?: number } = {}): Promise<void> {
    const cm = await this.manager();
    await cm.stop(ref, opts.timeout);
    const { c } = await cm.start(ref);
    cm.event(c, 'restart');
  }

  /**
   * POST /containers/{id}/update. The restart policy (checked as at create; it applies from
   * the next exit on) is done here; the resource limits are the container-endpoints part.
   */
  async update(ref: string, body: ContainerUpdateBody): Promise<ContainerUpdateResponse> {
    const cm = await this.manager();
    const c = await cm.get(ref);
    const { RestartPolicy, ...resources } = body ?? {};
    const set = Object.entries(resources).filter(([, v]) => v !== undefined && v !== null && v !== 0 && v !== '' && !(Array.isArray(v) && v.length === 0));
    if (set.length) throw unsupported('UPDATE_RESOURCES', `updating ${set.map(([k]) => k).join(', ')} is not supported yet`, { hint: 'only the restart policy can be updated' });
    let updated = c;
    // dockerd: an empty name (what the docker CLI sends without --restart) leaves it as it is
    if (RestartPolicy?.Name) {
      checkRestartPolicy(RestartPolicy);
      updated = await cm.updateRestartPolicy(c.id, RestartPolicy);
    }
    cm.event(updated, 'update');
    return { Warnings: [] };
  }

  async kill(ref: string, opts: { signal?: string } = {}): Promise<void> {
    await (await this.manager()).kill(ref, opts.signal ?? 'SIGKILL');
  }

  async pause(ref: string): Promise<void> {
    await (await this.manager()).pause(ref);
  }

  async unpause(ref: string): Promise<void> {
    await (await this.manager()).unpause(ref);
  }

  /**
   * POST /containers/{id}/wait. not-running: now if stopped, else at exit; next-exit: the
   * next exit; removed: once the container is gone (an AutoRemove container that exits and
   * is removed meanwhile still reports its exit code).
   */
  async wait(ref: string, opts: { condition?: WaitCondition; signal?: AbortSignal } = {}): Promise<WaitResponse> {
    const cm = await this.manager();
    const c = await cm.get(ref);
    const condition = opts.condition ?? 'not-running';
    const running = c.state.Running || c.state.Status === 'restarting';
    if (condition === 'not-running' && !running) return { StatusCode: c.state.ExitCode, Error: null };
    const code = running ? await cm.wait(c.id) : c.state.ExitCode;
    if (condition === 'removed') {
      while (cm.store.get(c.id)) {
        if (opts.signal?.aborted) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return { StatusCode: code, Error: null };
  }

  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    await (await this.manager()).remove(ref, { force: !!opts.force, volumes: !!opts.volumes });
  }

  async rename(ref: string, name: string): Promise<void> {
    (await this.manager()).rename(ref, name);
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

  async *logs(ref: string, opts: LogsOptions = {}): AsyncGenerator<LogEntry> {
    const cm = await this.manager();
    const wantOut = opts.stdout ?? true;
    const wantErr = opts.stderr ?? true;
    for await (const l of cm.logs(ref, {
      follow: !!opts.follow,
      ...(opts.tail !== undefined && opts.tail >= 0 ? { tail: opts.tail } : {}),
      ...(opts.since !== undefined ? { since: opts.since } : {}),
      ...(opts.until !== undefined ? { until: opts.until } : {}),
    })) {
      if (opts.signal?.aborted) return;
      if ((l.stream === 'stdout' && wantOut) || (l.stream === 'stderr' && wantErr)) yield l;
    }
  }

  async attach(ref: string, streams: AttachStreams): Promise<{ done: Promise<void>; detach: () => void; tty: boolean; openStdin: boolean }> {
    const a = await (await this.manager()).attach(ref, streams);
    return { done: a.done, detach: a.detach, tty: !!a.c.config.Tty, openStdin: !!a.c.config.OpenStdin };
  }

  /** What attach needs to know before it connects. */
  async attachInfo(ref: string): Promise<{ id: string; tty: boolean; openStdin: boolean; running: boolean }> {
    const c = await this.record(ref);
    return { id: c.id, tty: !!c.config.Tty, openStdin: !!c.config.OpenStdin, running: c.state.Running };
  }

  async resize(ref: string, size: { height: number; width: number }): Promise<void> {
    await (await this.manager()).resize(ref, size.height, size.width);
  }

  // ------------------------------------------------------------------ exec

  /** POST /containers/{id}/exec */
  async createExec(ref: string, config: ExecConfig): Promise<{ Id: string }> {
    const c = await this.record(ref);
    if (!Array.isArray(config.Cmd) || config.Cmd.length === 0) throw invalidArgument('NO_EXEC_CMD', 'No exec command specified');
    if (!c.state.Running) throw conflict('NOT_RUNNING', `Container ${c.id} is not running`);
    if (c.state.Paused) throw conflict('CONTAINER_PAUSED', `Container ${c.id} is paused, unpause the container before exec`);
    if (c.state.Status === 'restarting') throw conflict('CONTAINER_RESTARTING', `Container ${c.id} is restarting, wait until the container is running`);
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

  /** POST /exec/{id}/start: attached (streams) or detached; resolves with the exit code of an attached one. */
  async startExec(id: string, opts: { detach?: boolean; streams?: AttachStreams; consoleSize?: { height: number; width: number }; signal?: AbortSignal } = {}): Promise<{ exitCode?: number }> {
    const e = this.execRecord(id);
    if (e.running || e.exitCode !== null) throw conflict('EXEC_STARTED', `Error: Exec command ${id} has already run`);
    e.running = true;
    try {
      const cm = await this.manager();
      const c = await cm.get(e.containerId);
      cm.event(c, `exec_start: ${execLine(e.config.Cmd)}`, { execID: id });
      const r = await cm.exec(e.containerId, {
        onStarted: (pid) => (e.pid = pid),
        ...(opts.signal ? { signal: opts.signal } : {}),
        args: e.config.Cmd,
        env: e.config.Env ?? [],
        ...(e.config.WorkingDir ? { workdir: e.config.WorkingDir } : {}),
        ...(e.config.User ? { user: e.config.User } : {}),
        tty: !!e.config.Tty,
        privileged: !!e.config.Privileged,
        detach: !!opts.detach,
        streams: opts.streams ?? {},
        ...(opts.consoleSize ? { consoleSize: opts.consoleSize } : {}),
      });
      if (r.exitCode !== undefined) {
        e.exitCode = r.exitCode;
        cm.event(c, 'exec_die', { execID: id, exitCode: String(r.exitCode) });
      }
      return r;
    } finally {
      if (!opts.detach) e.running = false;
    }
  }

  async inspectExec(id: string): Promise<ExecInspect> {
    const e = this.execRecord(id);
    return {
      ID: e.id,
      Running: e.running,
      ExitCode: e.exitCode,
      ProcessConfig: { tty: !!e.config.Tty, entrypoint: e.config.Cmd[0] ?? '', arguments: e.config.Cmd.slice(1), privileged: !!e.config.Privileged, user: e.config.User ?? '' },
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
    const { stdin: _stdin, signal: _signal, ...config } = opts;
    void _stdin;
    void _signal;
    const { Id } = await this.createExec(ref, { ...config, Cmd: cmd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.on('data', (b: Buffer) => out.push(b));
    stderr.on('data', (b: Buffer) => err.push(b));
    let r: { exitCode?: number };
    try {
      r = await this.startExec(Id, { streams: { stdin: opts.stdin ?? null, stdout, stderr }, ...(opts.signal ? { signal: opts.signal } : {}) });
    } finally {
      this.execs.delete(Id);
    }
    return { exitCode: r.exitCode ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
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

function safeRegex(s: string): RegExp {
  try {
    return new RegExp(s);
  } catch {
    return { test: (x: string) => x.includes(s) } as RegExp;
  }
}
