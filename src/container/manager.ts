/**
 * Containers: an image plus one writable snapshot on top, run by an OCI runtime under
 * conmon. Every fact about a container lives in the store (database row, bundle, log,
 * conmon's exit file), so any `layerbox` process sees the same containers; no Node
 * process stays behind per container. conmon runs `layerbox container cleanup` when a
 * container exits, which unmounts its root file system and releases its network.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lchownSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { run } from '../sys/exec.js';
import { LowerView } from '../archive/overlayfs.js';
import { unpackLayer } from '../archive/unpack.js';
import { readFile, rm } from 'node:fs/promises';
import { join, dirname, relative } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { hostname as osHostname } from 'node:os';
import { conflict, failedPrecondition, invalidArgument, isEngineError, notFound } from '../errors/index.js';
import type { DB } from '../metadata/db.js';
import { now } from '../metadata/db.js';
import type { ContainerConfig } from '../oci/types.js';
import type { ImageStore, ImageRecord } from '../image/images.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { mountAll, unmount } from '../snapshot/mount.js';
import { isMountPoint } from '../image/mount.js';
import { acquireLock } from '../sys/lock.js';
import { bootId } from '../sys/proc.js';
import { trace } from '../sys/trace.js';
import { removeTree } from '../sys/fsutil.js';
import {
  buildSpec,
  buildExecProcess,
  detectRuntime,
  createContainer,
  startContainer,
  attachContainer,
  resizeContainer,
  cleanupContainer,
  waitExit,
  readExit,
  stopContainer,
  execInContainer,
  readLogs,
  imageVolumes,
  resolveInRoot,
  type Runtime,
  type RunOptions,
  type ContainerPaths,
  type MountInput,
  type Spec,
  type AttachStreams,
  type LogLine,
  type TopResult,
} from '../runtime/index.js';
import { NetworkManager, type NetworkAttachment, type EarlyNetwork } from '../network/index.js';
import { ContainerStore } from './store.js';
import { VolumeStore } from './volumes.js';
import { randomName, validateName } from './names.js';
import { inspectContainer } from './inspect.js';
import { containerPath, copyFromContainer, copyToContainer, writeTree } from './copy.js';
import { defaultHostConfig, initialState, ZERO_TIME, type ContainerRecord, type HostConfig } from './types.js';

export interface CreateRequest {
  image: string;
  name?: string;
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  domainname?: string;
  tty?: boolean;
  openStdin?: boolean;
  stdinOnce?: boolean;
  labels?: Record<string, string>;
  stopSignal?: string;
  stopTimeout?: number;
  /** `--expose` */
  expose?: string[];
  hostConfig?: Partial<HostConfig>;
}

export interface ManagerDeps {
  db: DB;
  root: string;
  images: ImageStore;
  snapshots: Snapshotter;
  /** finds an image, pulling it when missing (`run` of an image not stored yet) */
  resolveImage: (name: string) => Promise<ImageRecord>;
}

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'layerbox.js');

/**
 * Ends what is left of a container's conmon once the container exited and was cleaned up:
 * the child it forked to run the (delayed) exit command, still sleeping. conmon leads its
 * own process group, and the leader (maybe a zombie by now) still says `conmon` in its stat.
 */
function dismissMonitor(pid: number): void {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'conmon') return;
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    if (pgrp !== pid) return;
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** How long conmon waits before the fallback cleanup of a foreground container. */
const FOREGROUND_EXIT_DELAY_S = 2;

function exitCommandFor(root: string, id: string) {
  return { path: process.execPath, args: [BIN, '--root', root, 'container', 'cleanup', id] };
}

/** Whether the container's cgroup is frozen (cgroup v1 freezer or v2 cgroup.freeze), if known. */
function frozenState(id: string): boolean | undefined {
  for (const [path, frozen] of [
    [`/sys/fs/cgroup/freezer/layerbox/${id}/freezer.state`, (v: string) => v === 'FROZEN' || v === 'FREEZING'],
    [`/sys/fs/cgroup/layerbox/${id}/cgroup.freeze`, (v: string) => v === '1'],
    [`/sys/fs/cgroup/unified/layerbox/${id}/cgroup.freeze`, (v: string) => v === '1'],
  ] as const) {
    try {
      return frozen(readFileSync(path, 'utf8').trim());
    } catch {
      /* not this hierarchy */
    }
  }
  return undefined;
}

export class ContainerManager {
  readonly store: ContainerStore;
  readonly volumes: VolumeStore;
  readonly network: NetworkManager;
  readonly runDir: string;
  private runtimeP: Promise<Runtime> | undefined;

  constructor(private readonly d: ManagerDeps) {
    this.store = new ContainerStore(d.db);
    this.volumes = new VolumeStore(d.db, d.root);
    this.network = new NetworkManager({ root: d.root });
    // runtime state and exit files on tmpfs: gone after a reboot, like the processes
    this.runDir = join('/run/layerbox', createHash('sha256').update(d.root).digest('hex').slice(0, 12));
  }

  runtime(): Promise<Runtime> {
    const pref = (process.env.LAYERBOX_RUNTIME ?? '').split(',').filter(Boolean) as ('runc' | 'crun')[];
    return (this.runtimeP ??= detectRuntime({ stateDir: join(this.runDir, 'runtime'), cacheFile: join(this.runDir, 'runtime.json'), ...(pref.length ? { prefer: pref } : {}) }));
  }

  dir(id: string): string {
    return join(this.d.root, 'containers', id);
  }

  paths(id: string): ContainerPaths {
    return { bundleDir: join(this.dir(id), 'bundle'), logPath: join(this.dir(id), 'ctr.log'), exitDir: join(this.runDir, 'exits') };
  }

  rootfs(id: string): string {
    return join(this.dir(id), 'rootfs');
  }

  private lock(id: string) {
    return acquireLock(join(this.d.root, 'locks', `ctr-${id.slice(0, 32)}.lock`), { what: `container ${id.slice(0, 12)}` });
  }

  // ------------------------------------------------------------------ create

  async create(req: CreateRequest): Promise<ContainerRecord> {
    trace('create: begin');
    const hc: HostConfig = { ...defaultHostConfig(), ...(req.hostConfig ?? {}) };
    this.validateHostConfig(hc);
    const name = req.name !== undefined ? validateName(req.name) : undefined;
    if (name && this.d.db.prepare('SELECT 1 FROM containers WHERE name = ?').get(name)) {
      const other = this.d.db.prepare('SELECT id FROM containers WHERE name = ?').get(name) as { id: string };
      throw conflict('NAME_IN_USE', `Conflict. The container name "/${name}" is already in use by container "${other.id}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    const image = await this.d.resolveImage(req.image);
    if (!image.topLayer) throw failedPrecondition('IMAGE_NO_LAYERS', `image ${req.image} has no layers: it has no root file system to run`);
    const imageConfig = await this.d.images.config(image.id);
    const id = randomBytes(32).toString('hex');
    const snapshot = `ctr-${id}`;
    const layer = this.d.images.layers.get(image.topLayer)!;
    trace('create: image resolved');
    const parent = this.d.snapshots.independentLayers ? await this.makeInitLayer(id, layer.snapshot) : layer.snapshot;
    await this.d.snapshots.prepare(snapshot, parent, { labels: { container: id } });
    trace('create: snapshot prepared');
    const rootfs = this.rootfs(id);
    let mounted = false;
    try {
      mkdirSync(rootfs, { recursive: true, mode: 0o755 });
      mountAll(this.d.snapshots.mounts(snapshot), rootfs);
      mounted = true;
      trace('create: mounted');
      // validate everything that can be validated now: user, workdir, mounts (nothing is
      // left behind when this fails)
      const built = await buildSpec({ rootfs, readonlyRootfs: hc.ReadonlyRootfs, image: imageConfig.config, options: this.runOptions(id, req, hc, undefined) });
      const config: ContainerConfig = { ...built.config, Image: req.image, Hostname: req.hostname ?? id.slice(0, 12), ...(req.domainname ? { Domainname: req.domainname } : {}) };
      if (req.stopTimeout !== undefined) config.StopTimeout = req.stopTimeout;
      if (req.openStdin) {
        config.OpenStdin = true;
        config.StdinOnce = !!req.stdinOnce;
        config.AttachStdin = true;
      }
      config.AttachStdout = true;
      config.AttachStderr = true;
      if (req.expose?.length) {
        config.ExposedPorts = { ...(config.ExposedPorts ?? {}) };
        for (const p of req.expose) config.ExposedPorts[p.includes('/') ? p : `${p}/tcp`] = {};
      }
      for (let attempt = 0; ; attempt++) {
        const rec: ContainerRecord = { id, name: name ?? randomName(attempt), imageId: image.id, imageName: req.image, snapshot, created: now(), config, hostConfig: hc, state: initialState() };
        try {
          this.store.insert(rec);
          trace('create: recorded');
          return rec;
        } catch (e) {
          if (!name && isEngineError(e, 'conflict') && attempt < 10) continue;
          throw e;
        }
      }
    } catch (e) {
      if (mounted) unmount(rootfs, { detach: true });
      await this.d.snapshots.remove(snapshot).catch(() => {});
      if (this.d.snapshots.stat(`${snapshot}-init`)) await this.d.snapshots.remove(`${snapshot}-init`).catch(() => {});
      rmSync(this.dir(id), { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * Docker's init layer: a read-only layer between the image and the container holding
   * the mount points the runtime needs (/etc/hosts, /etc/hostname, /etc/resolv.conf,
   * /dev/console, /dev/pts, /dev/shm, /proc, /sys) and /etc/mtab, so that they never
   * appear in `diff` nor in a committed layer. Directories the image has are created
   * with the image's own metadata, so the container sees them unchanged.
   */
  private async makeInitLayer(id: string, imageSnapshot: string): Promise<string> {
    const name = `ctr-${id}-init`;
    const key = `${name}-tmp`;
    const dir = await this.d.snapshots.prepare(key, undefined, { temporary: true });
    try {
      const lowers = this.d.snapshots.chain(imageSnapshot).map((r) => join(this.d.snapshots.dir, String(r.id), 'fs'));
      const view = new LowerView(lowers);
      const mkdirs = (rel: string): boolean => {
        let cur = '';
        for (const part of rel.split('/')) {
          cur = cur ? `${cur}/${part}` : part;
          const abs = join(dir, cur);
          if (existsSync(abs)) continue;
          const e = view.lookup(cur);
          if (e && !e.stat.isDirectory()) return false; // a file or link in the image: leave the path alone
          mkdirSync(abs, { mode: 0o755 });
          if (e) {
            chmodSync(abs, Number(e.stat.mode & 0o7777n));
            lchownSync(abs, Number(e.stat.uid), Number(e.stat.gid));
            utimesSync(abs, Number(e.stat.atimeMs) / 1000, Number(e.stat.mtimeMs) / 1000);
          }
        }
        return true;
      };
      for (const d of ['proc', 'sys', 'dev', 'dev/pts', 'dev/shm']) if (!view.lookup(d)) mkdirs(d);
      for (const f of ['etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'dev/console']) {
        if (view.lookup(f)) continue;
        if (!mkdirs(f.slice(0, f.lastIndexOf('/')))) continue;
        writeFileSync(join(dir, f), '', { mode: 0o755 });
      }
      if (!view.lookup('etc/mtab') && mkdirs('etc')) symlinkSync('/proc/mounts', join(dir, 'etc/mtab'));
      // parents created above got the image's mtimes before their children were added
      for (const d of ['etc', 'dev']) {
        const e = view.lookup(d);
        if (e?.stat.isDirectory() && existsSync(join(dir, d))) utimesSync(join(dir, d), Number(e.stat.atimeMs) / 1000, Number(e.stat.mtimeMs) / 1000);
      }
      this.d.snapshots.commit(name, key, { parent: imageSnapshot });
      return name;
    } catch (e) {
      await this.d.snapshots.remove(key).catch(() => {});
      throw e;
    }
  }

  private validateHostConfig(hc: HostConfig): void {
    for (const m of hc.Mounts) {
      if (!m.Target.startsWith('/')) throw invalidArgument('INVALID_MOUNT', `invalid mount config: mount path must be absolute: ${m.Target}`);
      if (m.Type === 'bind') {
        if (!m.Source.startsWith('/')) throw invalidArgument('INVALID_MOUNT', `invalid mount config for type "bind": invalid mount path: '${m.Source}' mount path must be absolute`);
        if (!existsSync(m.Source)) throw invalidArgument('INVALID_MOUNT', `invalid mount config for type "bind": bind source path does not exist: ${m.Source}`);
      }
    }
  }

  private runOptions(id: string, req: CreateRequest | { config: ContainerConfig }, hc: HostConfig, net: EarlyNetwork | undefined, mounts: MountInput[] = []): RunOptions {
    const o: RunOptions = {
      groupAdd: hc.GroupAdd,
      capAdd: hc.CapAdd,
      capDrop: hc.CapDrop,
      privileged: hc.Privileged,
      securityOpt: hc.SecurityOpt,
      readOnly: hc.ReadonlyRootfs,
      shmSize: hc.ShmSize,
      mounts,
      init: hc.Init,
      cgroupsPath: `/layerbox/${id}`,
      sysctls: hc.Sysctls,
      ulimits: hc.Ulimits.map((u) => ({ name: u.Name, soft: u.Soft, hard: u.Hard })),
    };
    if (hc.Memory) o.memory = hc.Memory;
    if (hc.NanoCpus) o.cpus = hc.NanoCpus / 1e9;
    if (hc.PidsLimit) o.pidsLimit = hc.PidsLimit;
    if ('image' in req) {
      Object.assign(o, {
        ...(req.cmd ? { cmd: req.cmd } : {}),
        ...(req.entrypoint ? { entrypoint: req.entrypoint } : {}),
        ...(req.env ? { env: req.env } : {}),
        ...(req.workdir ? { workdir: req.workdir } : {}),
        ...(req.user ? { user: req.user } : {}),
        ...(req.labels ? { labels: req.labels } : {}),
        ...(req.stopSignal ? { stopSignal: req.stopSignal } : {}),
        tty: !!req.tty,
        stdin: !!req.openStdin,
        hostname: req.hostname ?? id.slice(0, 12),
        ...(req.domainname ? { domainname: req.domainname } : {}),
      });
    } else {
      // start: the merged config is authoritative; the image config is not consulted again
      const c = req.config;
      Object.assign(o, { tty: !!c.Tty, stdin: !!c.OpenStdin, hostname: c.Hostname ?? id.slice(0, 12), ...(c.Domainname ? { domainname: c.Domainname } : {}) });
    }
    if (hc.NetworkMode === 'host') {
      o.network = { mode: 'host' };
      o.hostname = osHostname();
    } else if (net?.netnsPath) o.network = { mode: 'path', path: net.netnsPath } as RunOptions['network'];
    if (net?.etcFiles) o.etcFiles = net.etcFiles;
    return o;
  }

  // ------------------------------------------------------------------ state

  /** Reconciles the record with reality: conmon's exit file, the boot id. */
  async refresh(c: ContainerRecord): Promise<ContainerRecord> {
    const s = c.state;
    if (!s.Running && !s.Paused) return c;
    const p = this.paths(c.id);
    if (s.BootId && s.BootId !== bootId()) {
      // the host rebooted: the process is gone with it
      const state = { ...s, Status: 'exited' as const, Running: false, Paused: false, Pid: 0, ExitCode: 255, FinishedAt: s.StartedAt };
      this.store.setState(c.id, state);
      return { ...c, state };
    }
    const exit = await readExit(p, c.id);
    if (!exit) {
      // paused/unpaused by a process that died before recording it: the freezer knows
      const frozen = frozenState(c.id);
      if (frozen !== undefined && frozen !== s.Paused) {
        const state = { ...s, Status: frozen ? ('paused' as const) : ('running' as const), Paused: frozen };
        this.store.setState(c.id, state);
        return { ...c, state };
      }
    }
    if (exit) {
      let finished = now();
      try {
        finished = statSync(join(p.exitDir, c.id)).mtime.toISOString();
      } catch {
        /* keep now */
      }
      const state = { ...s, Status: 'exited' as const, Running: false, Paused: false, Pid: 0, ExitCode: exit.exitCode, OOMKilled: exit.oomKilled, FinishedAt: finished };
      this.store.setState(c.id, state);
      return { ...c, state };
    }
    return c;
  }

  async get(ref: string): Promise<ContainerRecord> {
    return this.refresh(this.store.resolve(ref));
  }

  async list(): Promise<ContainerRecord[]> {
    const out: ContainerRecord[] = [];
    for (const c of this.store.list()) out.push(await this.refresh(c));
    return out;
  }

  // ------------------------------------------------------------------ start / run

  /** Marks the container's upper dir as shared with a committed layer (see commit). */
  markUpperShared(id: string): void {
    const c = this.store.get(id);
    if (c && !c.state.UpperShared) this.store.setState(id, { ...c.state, UpperShared: true });
  }

  /**
   * Gives the container a private copy of an upper dir it shares with a committed layer,
   * before anything can write into it (start, cp into it). The layer keeps the originals.
   */
  private async unshareUpper(c: ContainerRecord): Promise<void> {
    const cur = this.store.get(c.id);
    if (!cur?.state.UpperShared) return;
    const rootfs = this.rootfs(c.id);
    if (await isMountPoint(rootfs)) unmount(rootfs);
    const upper = this.d.snapshots.fsDir(c.snapshot);
    const fresh = `${upper}.private`;
    const old = `${upper}.shared`;
    rmSync(fresh, { recursive: true, force: true });
    rmSync(old, { recursive: true, force: true });
    mkdirSync(fresh, { mode: 0o755 });
    await run('cp', ['-a', upper + '/.', fresh + '/']);
    chmodSync(fresh, statSync(upper).mode & 0o7777);
    renameSync(upper, old);
    renameSync(fresh, upper);
    this.store.setState(c.id, { ...cur.state, UpperShared: false });
    await removeTree(old);
  }

  async ensureMounted(c: ContainerRecord, opts: { write?: boolean } = { write: true }): Promise<string> {
    if (opts.write) await this.unshareUpper(c);
    const rootfs = this.rootfs(c.id);
    if (!(await isMountPoint(rootfs))) {
      mkdirSync(rootfs, { recursive: true, mode: 0o755 });
      mountAll(this.d.snapshots.mounts(c.snapshot), rootfs);
    }
    return rootfs;
  }

  /** Volumes and binds as runtime mounts; creates named volumes and the image's anonymous ones. */
  private async resolveMounts(c: ContainerRecord, rootfs: string): Promise<MountInput[]> {
    const out: MountInput[] = [];
    const taken = new Set<string>();
    for (const m of c.hostConfig.Mounts) {
      taken.add(m.Target.replace(/\/+$/, '') || '/');
      if (m.Type === 'tmpfs') {
        out.push({ type: 'tmpfs', destination: m.Target, ...(m.TmpfsOptions ? { options: m.TmpfsOptions } : {}), ...(m.ReadOnly ? { readOnly: true } : {}) });
      } else if (m.Type === 'bind') {
        if (!existsSync(m.Source)) mkdirSync(m.Source, { recursive: true }); // -v creates a missing host dir (validated for --mount at create)
        out.push({ type: 'bind', source: m.Source, destination: m.Target, readOnly: m.ReadOnly });
      } else {
        const fresh = !m.Source || !this.volumes.has(m.Source);
        const v = this.volumes.create(m.Source || undefined);
        if (fresh) await this.volumes.populate(v.Name, await resolveInRoot(rootfs, m.Target));
        this.volumes.link(c.id, v.Name, m.Target);
        if (!m.Source) m.Source = v.Name;
        out.push({ type: 'volume', source: v.Mountpoint, destination: m.Target, readOnly: m.ReadOnly });
      }
    }
    // VOLUME of the image: an anonymous volume each, unless the user mounted something there
    for (const iv of await imageVolumes(c.config, rootfs)) {
      if (taken.has(iv.destination)) continue;
      const existing = this.d.db.prepare('SELECT volume FROM container_volumes WHERE container_id = ? AND destination = ?').get(c.id, iv.destination) as { volume: string } | undefined;
      let name = existing?.volume;
      if (!name || !this.volumes.has(name)) {
        const v = this.volumes.create();
        await this.volumes.populate(v.Name, iv.sourceInRootfs);
        this.volumes.link(c.id, v.Name, iv.destination);
        name = v.Name;
      }
      out.push({ type: 'volume', source: this.volumes.mountpoint(name), destination: iv.destination });
    }
    return out;
  }

  /**
   * Starts a created or exited container. With `attach`, stdio is connected before the
   * process starts (no output lost); the caller waits with `waitAndCleanup`.
   */
  async start(ref: string, opts: { attach?: AttachStreams; consoleSize?: { height: number; width: number } } = {}): Promise<{ c: ContainerRecord; detach?: () => void; attached?: Promise<void> }> {
    const found = this.store.resolve(ref);
    const lock = await this.lock(found.id);
    try {
      const c = await this.refresh(this.store.get(found.id)!);
      if (c.state.Running) {
        if (c.state.Paused) throw conflict('CONTAINER_PAUSED', `cannot start a paused container, try unpause instead`);
        return { c };
      }
      if (c.state.NetworkAttached || c.state.Status === 'exited') await this.releaseResources(c, { keepMount: true });
      const rt = await this.runtime();
      trace('start: runtime detected');
      const paths = this.paths(c.id);
      const rootfs = await this.ensureMounted(c);
      trace('start: mounted');
      try {
        const mounts = await this.resolveMounts(c, rootfs);
        // The runtime creates the container (its process waits for `start`) while CNI makes
        // its interfaces: both need only the namespace and the etc files to exist.
        let created!: Awaited<ReturnType<typeof createContainer>>;
        await this.network.setupWhile(
          {
            containerId: c.id,
            mode: c.hostConfig.NetworkMode,
            publish: c.hostConfig.PortBindings,
            publishAll: c.hostConfig.PublishAllPorts,
            exposedPorts: Object.keys(c.config.ExposedPorts ?? {}),
            hostname: c.config.Hostname ?? c.id.slice(0, 12),
            ...(c.config.Domainname ? { domainname: c.config.Domainname } : {}),
            extraHosts: c.hostConfig.ExtraHosts,
            dns: c.hostConfig.Dns,
            dnsSearch: c.hostConfig.DnsSearch,
            dnsOptions: c.hostConfig.DnsOptions,
            etcDir: this.dir(c.id),
          },
          async (early) => {
            const options: RunOptions = this.runOptions(c.id, { config: c.config }, c.hostConfig, early, mounts);
            if (opts.consoleSize) options.consoleSize = opts.consoleSize;
            // the merged config (image defaults folded in at create) is what the container runs
            const built = await buildSpec({ rootfs, readonlyRootfs: c.hostConfig.ReadonlyRootfs, image: c.config, options });
            trace('start: spec built');
            created = await createContainer({
              id: c.id,
              name: c.name,
              runtime: rt,
              paths,
              spec: built.spec,
              tty: !!c.config.Tty,
              stdin: !!c.config.OpenStdin,
              leaveStdinOpen: !c.config.StdinOnce,
              // conmon runs `layerbox container cleanup` when the container exits: at once
              // for a detached one; for a foreground one after a delay, as a fallback — the
              // attached CLI cleans up itself (and first), unless it died (a closed pipe,
              // a signal), when an --rm container must still go, as dockerd would see to
              exitCommand: { ...exitCommandFor(this.d.root, c.id), ...(opts.attach ? { delaySeconds: FOREGROUND_EXIT_DELAY_S } : {}) },
            });
          },
        );
        trace('start: network ready, runtime created');
        this.store.setState(c.id, { ...c.state, NetworkAttached: true });
        let att: Awaited<ReturnType<typeof attachContainer>> | undefined;
        if (opts.attach) att = await attachContainer(paths, opts.attach);
        if (opts.consoleSize && c.config.Tty) await resizeContainer(paths, opts.consoleSize.height, opts.consoleSize.width).catch(() => {});
        await startContainer(rt, c.id);
        trace('start: started');
        const state = {
          ...c.state,
          Status: 'running' as const,
          Running: true,
          Paused: false,
          Pid: created.pid,
          ExitCode: 0,
          Error: '',
          StartedAt: now(),
          FinishedAt: ZERO_TIME,
          BootId: bootId(),
          NetworkAttached: true,
          ConmonPid: created.conmonPid,
        };
        this.store.setState(c.id, state);
        return { c: { ...c, state }, ...(att ? { detach: () => att!.detach(), attached: att.done } : {}) };
      } catch (e) {
        // roll back: nothing of this start stays behind
        await cleanupContainer(rt, paths, c.id).catch(() => {});
        await this.network.teardown(c.id).catch(() => {});
        unmount(rootfs, { detach: true });
        const state = { ...c.state, NetworkAttached: false, Error: e instanceof Error ? e.message : String(e) };
        this.store.setState(c.id, state);
        throw e;
      }
    } finally {
      lock.release();
    }
  }

  /** Waits for the container to exit, then releases its resources. Returns the exit code. */
  async waitAndCleanup(id: string): Promise<number> {
    const conmon = this.store.get(id)?.state.ConmonPid;
    const status = await waitExit(this.paths(id), id);
    trace('exited');
    await this.cleanup(id);
    trace('cleaned up');
    // done here: conmon, waiting out the delay of its fallback cleanup, need not run it
    if (conmon) dismissMonitor(conmon);
    return status?.exitCode ?? 255;
  }

  /**
   * After exit (called by conmon's exit command, and by the foreground CLI): record the
   * exit, unmount, release the network, and remove an `--rm` container. Idempotent.
   */
  async cleanup(ref: string): Promise<void> {
    let c: ContainerRecord;
    try {
      c = this.store.resolve(ref);
    } catch (e) {
      if (isEngineError(e, 'not-found')) return; // already removed
      throw e;
    }
    const lock = await this.lock(c.id);
    try {
      const cur = this.store.get(c.id);
      if (!cur) return;
      const r = await this.refresh(cur);
      if (r.state.Running) return; // still running (a stale exit command of a previous run)
      if (r.hostConfig.AutoRemove) await this.removeLocked(r, { volumes: true });
      else await this.releaseResources(r);
    } finally {
      lock.release();
    }
  }

  /** Runtime record, conmon files, network, root file system mount. */
  private async releaseResources(c: ContainerRecord, opts: { keepMount?: boolean } = {}): Promise<void> {
    const { network } = await this.releaseRuntime(c, opts);
    await network;
  }

  /**
   * Removes the runtime record and unmounts the root file system; the network teardown runs
   * meanwhile and is returned unfinished, so a removal can overlap its own work with it.
   */
  private async releaseRuntime(c: ContainerRecord, opts: { keepMount?: boolean } = {}): Promise<{ network: Promise<void> }> {
    const rt = await this.runtime();
    // independent of each other once the process is gone: runtime record, network, mount
    const network = (async () => {
      if (c.state.NetworkAttached || (await this.network.inspect(c.id))) await this.network.teardown(c.id);
      const cur = this.store.get(c.id);
      if (cur?.state.NetworkAttached) this.store.setState(c.id, { ...cur.state, NetworkAttached: false });
      trace('cleanup: network released');
    })();
    network.catch(() => {});
    await cleanupContainer(rt, this.paths(c.id), c.id).catch(() => {});
    trace('cleanup: runtime record gone');
    if (!opts.keepMount) unmount(this.rootfs(c.id));
    return { network };
  }

  // ------------------------------------------------------------------ control

  async stop(ref: string, timeoutSeconds?: number): Promise<ContainerRecord> {
    const c = await this.get(ref);
    if (!c.state.Running) return c;
    const rt = await this.runtime();
    if (c.state.Paused) await rt.resume(c.id).catch(() => {});
    const timeout = timeoutSeconds ?? c.config.StopTimeout ?? 10;
    await stopContainer(rt, this.paths(c.id), c.id, { stopSignal: c.config.StopSignal ?? 'SIGTERM', timeoutSeconds: timeout });
    await this.cleanup(c.id);
    return this.store.get(c.id) ?? c;
  }

  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const c = await this.get(ref);
    if (!c.state.Running) throw conflict('NOT_RUNNING', `Cannot kill container: ${ref}: Container ${c.id} is not running`);
    const rt = await this.runtime();
    await rt.kill(c.id, signal.startsWith('SIG') || /^\d+$/.test(signal) ? signal : `SIG${signal}`);
    if (/^(SIG)?KILL$|^9$/.test(signal)) {
      await waitExit(this.paths(c.id), c.id, { timeoutMs: 10000 });
      await this.cleanup(c.id);
    }
  }

  async pause(ref: string): Promise<void> {
    const c = await this.get(ref);
    if (!c.state.Running) throw conflict('NOT_RUNNING', `Container ${c.id} is not running`);
    if (c.state.Paused) throw conflict('ALREADY_PAUSED', `Container ${c.id} is already paused`);
    await (await this.runtime()).pause(c.id);
    this.store.setState(c.id, { ...c.state, Status: 'paused', Paused: true });
  }

  async unpause(ref: string): Promise<void> {
    const c = await this.get(ref);
    if (!c.state.Paused) throw conflict('NOT_PAUSED', `Container ${c.id} is not paused`);
    await (await this.runtime()).resume(c.id);
    this.store.setState(c.id, { ...c.state, Status: 'running', Paused: false });
  }

  async wait(ref: string): Promise<number> {
    const c = await this.get(ref);
    if (!c.state.Running) return c.state.ExitCode;
    const st = await waitExit(this.paths(c.id), c.id);
    return st?.exitCode ?? (await this.get(c.id)).state.ExitCode;
  }

  // ------------------------------------------------------------------ remove

  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<string> {
    const c = await this.get(ref);
    if (c.state.Running) {
      if (!opts.force) {
        throw conflict('CONTAINER_RUNNING', `You cannot remove a ${c.state.Paused ? 'paused' : 'running'} container ${c.id}. Stop the container before attempting removal or force remove`);
      }
      const rt = await this.runtime();
      if (c.state.Paused) await rt.resume(c.id).catch(() => {});
      await rt.kill(c.id, 'SIGKILL').catch(() => {});
      await waitExit(this.paths(c.id), c.id, { timeoutMs: 10000 });
    }
    const lock = await this.lock(c.id);
    try {
      const cur = this.store.get(c.id);
      if (!cur) return c.id;
      await this.removeLocked(await this.refresh(cur), opts);
    } finally {
      lock.release();
    }
    return c.id;
  }

  private async removeLocked(c: ContainerRecord, opts: { volumes?: boolean; released?: boolean }): Promise<void> {
    const { network } = opts.released ? { network: Promise.resolve() } : await this.releaseRuntime(c);
    // mark first: a crash from here on leaves a row that says it is being removed
    this.store.setState(c.id, { ...(this.store.get(c.id)?.state ?? c.state), Status: 'removing' });
    // an image removed while this container used it (rmi -f) left its layers to us
    const held = this.d.images.get(c.imageId) ? undefined : this.d.images.layers.layerUnder(c.snapshot);
    const vols = (this.d.db.prepare('SELECT volume FROM container_volumes WHERE container_id = ?').all(c.id) as { volume: string }[]).map((r) => r.volume);
    this.d.db.prepare('DELETE FROM container_volumes WHERE container_id = ?').run(c.id);
    const snaps = (async () => {
      if (this.d.snapshots.stat(c.snapshot)) await this.d.snapshots.remove(c.snapshot);
      if (this.d.snapshots.stat(`${c.snapshot}-init`)) await this.d.snapshots.remove(`${c.snapshot}-init`);
    })();
    const files = Promise.all([snaps, removeTree(this.dir(c.id)), rm(join(this.paths(c.id).exitDir, c.id), { force: true })]);
    files.catch(() => {});
    // the record goes last, once nothing of the container is left (a failed network
    // teardown keeps it, NetworkAttached, for `rm -f` to retry)
    await network;
    await files;
    this.store.delete(c.id);
    if (held) await this.d.images.layers.releaseFrom(held);
    trace('cleanup: removed');
    if (opts.volumes) {
      for (const v of vols) {
        const vol = this.volumes.has(v) ? this.volumes.get(v) : undefined;
        if (vol?.anonymous && this.volumes.users(v).length === 0) await this.volumes.remove(v).catch(() => {});
      }
    }
  }

  async prune(): Promise<{ removed: string[] }> {
    const removed: string[] = [];
    for (const c of await this.list()) {
      if (c.state.Running) continue;
      await this.remove(c.id, { volumes: false });
      removed.push(c.id);
    }
    return { removed };
  }

  rename(ref: string, name: string): void {
    const c = this.store.resolve(ref);
    const n = validateName(name);
    if (n === c.name) throw invalidArgument('SAME_NAME', `Renaming a container with the same name as its current name`);
    this.store.rename(c.id, n);
  }

  // ------------------------------------------------------------------ inside

  async exec(
    ref: string,
    e: { args: string[]; env?: string[]; workdir?: string; user?: string; tty?: boolean; privileged?: boolean; detach?: boolean; streams?: AttachStreams; consoleSize?: { height: number; width: number } },
  ): Promise<{ exitCode?: number }> {
    const c = await this.get(ref);
    if (!c.state.Running) throw conflict('NOT_RUNNING', `Container ${c.id} is not running`);
    if (c.state.Paused) throw conflict('CONTAINER_PAUSED', `Container ${c.id} is paused, unpause the container before exec`);
    const rt = await this.runtime();
    const paths = this.paths(c.id);
    const spec = JSON.parse(await readFile(join(paths.bundleDir, 'config.json'), 'utf8')) as Spec;
    const process = await buildExecProcess({ spec, config: c.config, rootfs: this.rootfs(c.id) }, {
      args: e.args,
      ...(e.env ? { env: e.env } : {}),
      ...(e.workdir ? { workdir: e.workdir } : {}),
      ...(e.user ? { user: e.user } : {}),
      tty: !!e.tty,
      privileged: !!e.privileged,
      ...(e.consoleSize ? { consoleSize: e.consoleSize } : {}),
    });
    const execId = randomBytes(16).toString('hex');
    const execDir = join(paths.bundleDir, 'exec', execId);
    try {
      const r = await execInContainer({
        containerId: c.id,
        execId,
        runtime: rt,
        execDir,
        process,
        ...(e.detach ? { detach: true } : { streams: e.streams ?? {} }),
        ...(e.consoleSize && e.tty ? { onAttached: async (resize: (h: number, w: number) => Promise<void>) => resize(e.consoleSize!.height, e.consoleSize!.width) } : {}),
      });
      return { ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}) };
    } finally {
      if (!e.detach) rmSync(execDir, { recursive: true, force: true });
    }
  }

  async attach(ref: string, streams: AttachStreams): Promise<{ done: Promise<void>; detach: () => void; c: ContainerRecord }> {
    const c = await this.get(ref);
    if (!c.state.Running) throw conflict('NOT_RUNNING', 'You cannot attach to a stopped container, start it first');
    const a = await attachContainer(this.paths(c.id), streams);
    return { done: a.done, detach: a.detach, c };
  }

  async resize(ref: string, height: number, width: number): Promise<void> {
    const c = this.store.resolve(ref);
    await resizeContainer(this.paths(c.id), height, width).catch(() => {});
  }

  async *logs(ref: string, opts: { follow?: boolean; tail?: number; since?: number; until?: number } = {}): AsyncGenerator<LogLine> {
    const c = await this.get(ref);
    const paths = this.paths(c.id);
    if (!existsSync(paths.logPath)) return;
    yield* readLogs(paths.logPath, {
      ...(opts.tail !== undefined ? { tail: opts.tail } : {}),
      ...(opts.since !== undefined ? { since: opts.since } : {}),
      ...(opts.until !== undefined ? { until: opts.until } : {}),
      follow: !!opts.follow && c.state.Running,
      stopWhen: async () => !!(await readExit(paths, c.id)),
    });
  }

  async top(ref: string, psArgs?: string[]): Promise<TopResult> {
    const c = await this.get(ref);
    if (!c.state.Running) throw conflict('NOT_RUNNING', `Container ${c.id} is not running`);
    return (await this.runtime()).top(c.id, psArgs);
  }

  async ports(ref: string, filter?: string): Promise<string[]> {
    const c = await this.get(ref);
    return this.network.portLines(c.id, filter);
  }

  async inspect(ref: string): Promise<Record<string, unknown>> {
    const c = await this.get(ref);
    const net = await this.network.inspect(c.id);
    const mounts: { Type: string; Name?: string; Source: string; Destination: string; RW: boolean }[] = [];
    for (const m of c.hostConfig.Mounts) {
      if (m.Type === 'bind') mounts.push({ Type: 'bind', Source: m.Source, Destination: m.Target, RW: !m.ReadOnly });
    }
    for (const r of this.d.db.prepare('SELECT volume, destination FROM container_volumes WHERE container_id = ?').all(c.id) as { volume: string; destination: string }[]) {
      const ro = c.hostConfig.Mounts.find((m) => m.Target === r.destination)?.ReadOnly ?? false;
      mounts.push({ Type: 'volume', Name: r.volume, Source: this.volumes.mountpoint(r.volume), Destination: r.destination, RW: !ro });
    }
    const m = this.d.snapshots.mounts(c.snapshot)[0];
    return inspectContainer(c, {
      rootfs: this.rootfs(c.id),
      logPath: this.paths(c.id).logPath,
      ...(net ? { net } : {}),
      mounts,
      ...(m?.type === 'overlay' ? { upper: m.upper!, lowers: m.lowers! } : { upper: this.d.snapshots.fsDir(c.snapshot) }),
    });
  }

  /** Runs `fn` with the container's root file system mounted (mounting a stopped one for the time of the call). */
  async withRootfs<T>(ref: string, fn: (rootfs: string) => Promise<T>, opts: { write?: boolean } = {}): Promise<T> {
    const c = await this.get(ref);
    const rootfs = this.rootfs(c.id);
    if (opts.write) await this.unshareUpper(c);
    const was = await isMountPoint(rootfs);
    if (!was) await this.ensureMounted(c, { write: !!opts.write });
    try {
      return await fn(rootfs);
    } finally {
      if (!was && !(await this.get(c.id)).state.Running) unmount(rootfs);
    }
  }

  async copyFrom(ref: string, src: string, dest: string | Writable, opts: { archive?: boolean } = {}): Promise<void> {
    await this.withRootfs(ref, async (rootfs) => {
      if (typeof dest === 'string') return copyFromContainer(rootfs, src, dest, opts);
      const p = await containerPath(rootfs, src);
      if (!existsSync(p)) throw notFound('CP_NO_SOURCE', `Could not find the file ${src} in container ${ref}`);
      await writeTree(rootfs, relative(rootfs, p), dest);
    });
  }

  async copyTo(ref: string, src: string, dest: string, opts: { archive?: boolean } = {}): Promise<void> {
    await this.withRootfs(ref, (rootfs) => copyToContainer(rootfs, src, dest, opts), { write: true });
  }

  /**
   * `docker cp - CONTAINER:DIR`: extracts a tar stream (plain, gzip or zstd) into a directory
   * of the container, with the layer extractor's confinement (nothing lands outside DIR, no
   * link is written through). Not a layer: `.wh.` names are ordinary files. Owners are the
   * archive's with `archive` (-a), else root's, as Docker.
   */
  async copyArchiveTo(ref: string, source: Readable, dest: string, opts: { archive?: boolean } = {}): Promise<void> {
    await this.withRootfs(
      ref,
      async (rootfs) => {
        const dir = await containerPath(rootfs, dest);
        let st;
        try {
          st = statSync(dir);
        } catch {
          throw notFound('CP_NO_DEST', `Could not find the file ${dest} in container ${ref}`);
        }
        if (!st.isDirectory()) throw invalidArgument('CP_DEST_NOT_DIR', `extraction point is not a directory: ${dest}`, { hint: 'with - as the source, the destination must be a directory' });
        await unpackLayer({ source, compression: 'auto', target: dir, whiteouts: 'none', fresh: false, sameOwner: !!opts.archive, where: `${ref}:${dest}` });
      },
      { write: true },
    );
  }

  /** `export`: the container's whole root file system as a tar stream. */
  async export(ref: string, out: Writable): Promise<void> {
    await this.withRootfs(ref, (rootfs) => writeTree(rootfs, '', out));
  }

  /** Network attachment (ports for `ps`). */
  attachment(id: string): Promise<NetworkAttachment | undefined> {
    return this.network.inspect(id);
  }

  /** Recorded containers using an image (for rmi's conflict checks). */
  usingImage(imageId: string): { id: string; running: boolean } | undefined {
    const c = this.store.usingImage(imageId);
    return c ? { id: c.id, running: c.state.Running } : undefined;
  }
}

