/**
 * Containers: an image plus one writable snapshot on top, run by an OCI runtime under
 * conmon. Every fact about a container lives in the store (database row, bundle, log,
 * conmon's exit file), so any `layerbox` process sees the same containers; no Node
 * process stays behind per container. conmon runs `layerbox container cleanup` when a
 * container exits, which unmounts its root file system and releases its network.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lchownSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { run } from '../sys/exec.js';
import { LowerView } from '../archive/overlayfs.js';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { hostname as osHostname } from 'node:os';
import { conflict, errnoCode, failedPrecondition, invalidArgument, isEngineError, notFound, storageError } from '../errors/index.js';
import type { DB } from '../metadata/db.js';
import { now } from '../metadata/db.js';
import type { ContainerConfig } from '../oci/types.js';
import type { Digest } from '../oci/digest.js';
import type { ImageStore, ImageRecord } from '../image/images.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { mountAll, unmount } from '../snapshot/mount.js';
import { isMountPoint } from '../image/mount.js';
import { acquireLock, tryLock } from '../sys/lock.js';
import { bootId, isAlive, procStart, selfId } from '../sys/proc.js';
import { trace } from '../sys/trace.js';
import { listDir, mountsUnder, removeTree, sweepTempFiles } from '../sys/fsutil.js';
import { lgetxattr, llistxattr, lsetxattr, renameat2, umount2, RENAME_EXCHANGE } from '../sys/native.js';
import { isOverlayXattr } from '../archive/overlayfs.js';
import type { StoreSpace } from '../metadata/space.js';
import type { EventLog } from '../metadata/events.js';
import { constants as osConstants } from 'node:os';
import { hasPolicy, nextBackoff, policyRestarts } from './restart.js';
import { healthView, mergeHealthcheck, probeCommand, readHealth, writeHealth, type HealthConfig, type HealthFile } from './health.js';
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
  readExecExit,
  resizeTerminal,
  buildResources,
  imageVolumes,
  resolveInRoot,
  resolveUser,
  cleanContainerPath,
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
import { checkCreateNetworks, endpointRequests } from './networking.js';
import { VolumeStore } from './volumes.js';
import { randomName, validateName } from './names.js';
import { inspectContainer } from './inspect.js';
import { archivePath, copyFromContainer, copyToContainer, exportTree, extractToDir, pump, statPath, type ArchiveEndpoint, type ExtractOptions, type PathStat } from './copy.js';
import { FsView, type ViewMount } from './fsview.js';
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
  /** Docker's HealthConfig, kept in the container's config */
  healthcheck?: ContainerConfig['Healthcheck'];
  hostConfig?: Partial<HostConfig>;
}

export interface ManagerDeps {
  db: DB;
  root: string;
  images: ImageStore;
  snapshots: Snapshotter;
  /** finds a stored image */
  resolveImage: (name: string) => Promise<ImageRecord>;
  /** what conmon runs when a container exits (the engine's exit hook for this store and container) */
  exitCommand: (root: string, id: string) => { path: string; args: string[] };
  /** the store's space guard: commands that use space refuse on a nearly full disk */
  space?: StoreSpace;
  /** the event log: the container and volume events of what the manager does */
  events?: EventLog;
  /** starts the health monitor of a container's run (a process of its own); returns its pid */
  healthMonitor?: (root: string, id: string, startedAt: string) => number | undefined;
}

/** Docker's numeric signal in kill events ("15" for SIGTERM). */
function signalNumber(sig: string): string {
  if (/^\d+$/.test(sig)) return sig;
  const name = (sig.toUpperCase().startsWith('SIG') ? sig.toUpperCase() : `SIG${sig.toUpperCase()}`) as keyof typeof osConstants.signals;
  return String(osConstants.signals[name] ?? sig);
}

/** Ends a health monitor (verified by its start time: a reused pid is left alone). */
function endMonitor(m: { pid: number; start: number } | undefined): void {
  if (!m || !isAlive(m)) return;
  try {
    process.kill(m.pid, 'SIGTERM');
  } catch {
    /* gone */
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** Whether a file below `dir` has hard links outside it (its link count is more than the links found inside). */
function linkedOutside(dir: string): boolean {
  const inside = new Map<number, { nlink: number; seen: number }>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        walk(p);
        continue;
      }
      const st = lstatSync(p);
      if (st.nlink < 2) continue;
      const x = inside.get(st.ino) ?? { nlink: st.nlink, seen: 0 };
      x.seen++;
      inside.set(st.ino, x);
    }
  };
  walk(dir);
  for (const x of inside.values()) if (x.seen < x.nlink) return true;
  return false;
}

/** The resources of a host config beyond memory, cpus and pids, as the runtime's options. */
function resourceOptions(hc: HostConfig): Partial<RunOptions> {
  const o: Partial<RunOptions> = {};
  if (hc.CpuShares) o.cpuShares = hc.CpuShares;
  if (hc.CpuPeriod) o.cpuPeriod = hc.CpuPeriod;
  if (hc.CpuQuota) o.cpuQuota = hc.CpuQuota;
  if (hc.CpusetCpus) o.cpusetCpus = hc.CpusetCpus;
  if (hc.CpusetMems) o.cpusetMems = hc.CpusetMems;
  if (hc.MemoryReservation) o.memoryReservation = hc.MemoryReservation;
  if (hc.MemorySwap) o.memorySwap = hc.MemorySwap;
  if (hc.BlkioWeight) o.blkioWeight = hc.BlkioWeight;
  return o;
}

/** How long conmon waits before the fallback cleanup of a foreground container. */
const FOREGROUND_EXIT_DELAY_S = 2;

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
    this.volumes = new VolumeStore(d.db, d.root, d.events);
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

  /** Logs a container event (labels, image and name of `c`, plus `extra`). */
  event(c: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.d.events?.container(c, action, extra);
  }

  /** The container's health as inspect shows it (State.Health), when it has a healthcheck and ran. */
  health(c: ContainerRecord): ReturnType<typeof healthView> {
    if (!probeCommand(c.config)) return undefined;
    return healthView(c, readHealth(this.dir(c.id)));
  }

  paths(id: string): ContainerPaths {
    return { bundleDir: join(this.dir(id), 'bundle'), logPath: join(this.dir(id), 'ctr.log'), exitDir: join(this.runDir, 'exits') };
  }

  rootfs(id: string): string {
    return join(this.dir(id), 'rootfs');
  }

  private lockPath(id: string): string {
    return join(this.d.root, 'locks', `ctr-${id.slice(0, 32)}.lock`);
  }

  private lock(id: string) {
    return acquireLock(this.lockPath(id), { what: `container ${id.slice(0, 12)}` });
  }

  /** Runs `fn` holding the container's lock (no start, stop, rm of it meanwhile). */
  async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const lock = await this.lock(id);
    try {
      return await fn();
    } finally {
      lock.release();
    }
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
    this.d.space?.require(`cannot create a container of ${req.image}`);
    const imageConfig = await this.d.images.config(image.id);
    const id = randomBytes(32).toString('hex');
    // the networks exist and take what is asked of them (their IDs recorded)
    const withNets = await checkCreateNetworks(this.network, id, hc);
    if (withNets.Networks) hc.Networks = withNets.Networks;
    const snapshot = `ctr-${id}`;
    const layer = this.d.images.layers.get(image.topLayer)!;
    trace('create: image resolved');
    await this.sweep();
    // The record comes first, as 'creating', under the container's lock: it reserves the
    // name and owns everything made below (snapshots, directory, mount). A creator killed
    // midway leaves a record whose lock is free: the next command removes what it left.
    const lock = await this.lock(id);
    try {
      let rec!: ContainerRecord;
      for (let attempt = 0; ; attempt++) {
        rec = { id, name: name ?? randomName(attempt), imageId: image.id, imageName: req.image, snapshot, created: now(), config: { Image: req.image }, hostConfig: hc, state: { ...initialState(), Status: 'creating' } };
        try {
          this.store.insert(rec);
          break;
        } catch (e) {
          if (!name && isEngineError(e, 'conflict') && attempt < 10) continue;
          throw e;
        }
      }
      trace('create: recorded');
      try {
        const parent = this.d.snapshots.independentLayers ? await this.makeInitLayer(id, layer.snapshot) : layer.snapshot;
        await this.d.snapshots.prepare(snapshot, parent, { labels: { container: id } });
        trace('create: snapshot prepared');
        const rootfs = this.rootfs(id);
        mkdirSync(rootfs, { recursive: true, mode: 0o755 });
        mountAll(this.d.snapshots.mounts(snapshot), rootfs);
        trace('create: mounted');
        // validate everything that can be validated now: user, workdir, mounts (nothing is
        // left behind when this fails)
        const built = await buildSpec({ rootfs, readonlyRootfs: hc.ReadonlyRootfs, image: imageConfig.config, options: this.runOptions(id, req, hc, undefined) });
        const config: ContainerConfig = { ...built.config, Image: req.image, Hostname: req.hostname ?? id.slice(0, 12), ...(req.domainname ? { Domainname: req.domainname } : {}) };
        if (req.stopTimeout !== undefined) config.StopTimeout = req.stopTimeout;
        if (req.healthcheck) config.Healthcheck = mergeHealthcheck(req.healthcheck as HealthConfig, imageConfig.config?.Healthcheck as HealthConfig | undefined);
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
        const done: ContainerRecord = { ...rec, config, state: initialState() };
        this.d.db.transaction(() => {
          this.store.setConfig(id, config);
          this.store.setState(id, done.state);
        })();
        trace('create: created');
        this.event(done, 'create');
        return done;
      } catch (e) {
        await this.discardLocked(rec).catch(() => {});
        throw storageError(e, undefined, `cannot create a container of ${req.image}`) ?? e;
      }
    } finally {
      lock.release();
    }
  }

  /** Removes everything of a container whose creation did not finish (the caller holds its lock). */
  private async discardLocked(c: ContainerRecord): Promise<void> {
    const layers = this.layerKeys(c);
    unmount(this.rootfs(c.id), { detach: true });
    for (const key of [c.snapshot, `${c.snapshot}-init`, `${c.snapshot}-init-tmp`]) {
      if (this.d.snapshots.stat(key)) await this.d.snapshots.remove(key);
    }
    await removeTree(this.dir(c.id));
    this.store.delete(c.id);
    await this.releaseLayers(layers);
  }

  /**
   * Finishes what killed commands left: a container whose record says 'creating' or
   * 'removing' while nobody holds its lock lost its creator or remover. Its leftovers
   * (snapshots, directory, mount, runtime state, network) are removed, then its record.
   * Cheap when there is nothing to do (one query). Returns the IDs removed.
   */
  async sweep(): Promise<string[]> {
    const rows = this.d.db.prepare("SELECT id FROM containers WHERE status IN ('creating', 'removing')").all() as { id: string }[];
    const out: string[] = [];
    this.sweepLocks();
    for (const { id } of rows) {
      const lock = tryLock(this.lockPath(id));
      if (!lock) continue; // its creator or remover is at work
      try {
        const c = this.store.get(id);
        if (!c) continue;
        if (c.state.Status === 'creating') await this.discardLocked(c);
        else if (c.state.Status === 'removing') await this.removeLocked(c, { volumes: !!c.state.RemoveVolumes });
        else continue;
        out.push(id);
      } catch {
        /* left for system check to report */
      } finally {
        lock.release();
      }
    }
    // a removal killed while it removed a snapshot leaves that snapshot marked 'removing'
    if (rows.length) await this.d.snapshots.sweep().catch(() => {});
    return out;
  }

  /**
   * Lock files of containers that do not exist, left by a process killed while it held one
   * (after the container's removal, or before its record): broken and dropped, unless their
   * holder still runs (a create that has not recorded its container yet).
   */
  private sweepLocks(): void {
    const dir = join(this.d.root, 'locks');
    const names = listDir(dir);
    const stale = names.filter((n) => /^ctr-[0-9a-f]{32}\.lock$/.test(n));
    if (stale.length) {
      const ids = (this.d.db.prepare('SELECT id FROM containers').all() as { id: string }[]).map((r) => r.id.slice(0, 32));
      for (const n of stale) {
        if (ids.includes(n.slice(4, 36))) continue;
        tryLock(join(dir, n))?.release();
      }
    }
    if (names.some((n) => n.startsWith('.tmp-'))) sweepTempFiles(dir, (pid) => procStart(pid) !== undefined);
  }

  /**
   * What the store holds of containers that have no record (system check): snapshots,
   * directories, mounts, network state — left by a crash of an older version, or by hand.
   * What is on disk is listed first, the records last: a container is recorded before
   * anything of it is made, so nothing being created right now is taken for an orphan.
   */
  async orphans(): Promise<{ id: string; what: string[] }[]> {
    const found = new Map<string, string[]>();
    const add = (id: string, what: string) => {
      const l = found.get(id) ?? [];
      l.push(what);
      found.set(id, l);
    };
    const cdir = join(this.d.root, 'containers');
    for (const name of listDir(cdir)) add(name, `directory ${join(cdir, name)}`);
    for (const m of await mountsUnder(cdir)) add(m.slice(cdir.length + 1).split('/')[0]!, `mount ${m}`);
    for (const m of await mountsUnder(join(this.d.root, 'network', 'netns'))) add(m.slice(m.lastIndexOf('/') + 1), `network namespace ${m}`);
    for (const a of await this.network.list().catch(() => [])) add(a.containerId, 'network attachment');
    for (const snap of this.d.snapshots.walk()) {
      const m = /^ctr-([0-9a-f]{64})(-init(-tmp)?)?$/.exec(snap.key);
      if (m) add(m[1]!, `snapshot ${snap.key} (${join(this.d.snapshots.dir, String(snap.id))})`);
    }
    const recorded = new Set((this.d.db.prepare('SELECT id FROM containers').all() as { id: string }[]).map((r) => r.id));
    return [...found].filter(([id]) => !recorded.has(id)).map(([id, what]) => ({ id, what }));
  }

  /** Removes the leftovers of a container without a record (system check --repair). */
  async removeOrphan(id: string): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(id)) {
      // not a container's name at all: only a stray directory can be that
      await removeTree(join(this.d.root, 'containers', id));
      return;
    }
    const lock = tryLock(this.lockPath(id));
    if (!lock) throw conflict('CONTAINER_BUSY', `container ${id.slice(0, 12)} is in use by another layerbox process`);
    try {
      if (this.store.get(id)) return; // recorded meanwhile: not an orphan
      const snapshot = `ctr-${id}`;
      const layers = this.d.snapshots.stat(snapshot) ? this.layerKeys({ snapshot, imageId: '' } as ContainerRecord) : [];
      await cleanupContainer(await this.runtime(), this.paths(id), id).catch(() => {});
      if ((await this.network.inspect(id).catch(() => undefined)) || (await mountsUnder(join(this.d.root, 'network', 'netns', id))).length) await this.network.teardown(id);
      unmount(this.rootfs(id), { detach: true });
      for (const key of [snapshot, `${snapshot}-init`, `${snapshot}-init-tmp`]) {
        if (this.d.snapshots.stat(key)) await this.d.snapshots.remove(key);
      }
      await removeTree(this.dir(id));
      await this.releaseLayers(layers);
    } finally {
      lock.release();
    }
  }

  /** Whether a container's snapshot is being worked on right now (its container's lock is held). */
  isBusySnapshot(key: string | undefined): boolean {
    const id = key && /^ctr-([0-9a-f]{64})/.exec(key)?.[1];
    if (!id) return false;
    const l = tryLock(this.lockPath(id));
    if (!l) return true;
    l.release();
    return false;
  }

  /** The layers a container keeps alive: the committed layer it continues on, and its image's top layer (snapshot keys). */
  private layerKeys(c: ContainerRecord): string[] {
    const out: string[] = [];
    try {
      const lower = this.d.snapshots.lowerOf(c.snapshot);
      if (lower) out.push(lower);
      const top = this.d.snapshots.chain(c.snapshot).find((r) => r.key.startsWith('sha256:'));
      if (top) out.push(top.key);
    } catch {
      /* a snapshot of the chain is gone already */
    }
    if (!out.length) {
      const img = this.d.images.get(c.imageId);
      if (img?.topLayer) out.push(this.d.images.layers.get(img.topLayer)?.snapshot ?? img.topLayer);
    }
    return out;
  }

  /**
   * Lets go of layers a container no longer uses: each one, and the layers below it, is
   * removed unless an image, another layer, a container or a lease still uses it (rmi -f of
   * an image a container used leaves its layers to the container, as Docker does).
   */
  private async releaseLayers(keys: string[]): Promise<void> {
    for (const key of keys) {
      try {
        const chain = this.d.snapshots.chain(key).map((r) => r.key).filter((k) => k.startsWith('sha256:')).reverse();
        await this.d.images.layers.release(chain as Digest[]);
      } catch {
        /* gone already, or in use */
      }
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
      cgroupsPath: this.cgroupsPath(id),
      sysctls: hc.Sysctls,
      ulimits: hc.Ulimits.map((u) => ({ name: u.Name, soft: u.Soft, hard: u.Hard })),
    };
    if (hc.Memory) o.memory = hc.Memory;
    if (hc.NanoCpus) o.cpus = hc.NanoCpus / 1e9;
    if (hc.PidsLimit) o.pidsLimit = hc.PidsLimit;
    Object.assign(o, resourceOptions(hc));
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
  async refresh(c: ContainerRecord, retried = false): Promise<ContainerRecord> {
    const s = c.state;
    if (s.Status === 'restarting') return this.refreshRestarting(c);
    if (!s.Running && !s.Paused) return c;
    const p = this.paths(c.id);
    if (s.BootId && s.BootId !== bootId()) {
      // the host rebooted: the process is gone with it
      const state = { ...s, Status: 'exited' as const, Running: false, Paused: false, Pid: 0, ExitCode: 255, FinishedAt: s.StartedAt };
      this.persistRefreshed(c.id, state);
      return { ...c, state };
    }
    const exit = await readExit(p, c.id);
    if (!exit) {
      // paused/unpaused by a process that died before recording it: the freezer knows
      const frozen = frozenState(c.id);
      if (frozen !== undefined && frozen !== s.Paused) {
        const state = { ...s, Status: frozen ? ('paused' as const) : ('running' as const), Paused: frozen };
        this.persistRefreshed(c.id, state);
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
      const state: ContainerRecord['state'] = { ...s, Status: 'exited', Running: false, Paused: false, Pid: 0, ExitCode: exit.exitCode, OOMKilled: exit.oomKilled, FinishedAt: finished };
      if (this.recordExit(c, state)) return { ...c, state };
      // recorded by another process, or changed meanwhile (a stop marked it): as it is now
      const cur = this.store.get(c.id);
      if (!cur) return { ...c, state };
      if (cur.state.Running && cur.state.StartedAt === s.StartedAt && !retried) return this.refresh(cur, true);
      return cur.state.Running && cur.state.StartedAt === s.StartedAt ? { ...c, state } : cur;
    }
    return c;
  }

  /**
   * Records an exit that conmon wrote, once: only the process whose update finds the run
   * still recorded as running (the same StartedAt) records it, and it logs the `die` event
   * in the same transaction. Whoever notices first — the exit hook, the foreground CLI, a
   * `ps` — records it; the others find it recorded.
   */
  private recordExit(c: ContainerRecord, exited: ContainerRecord['state']): boolean {
    // the restart policy decides at once, as dockerd does: nobody sees it stopped meanwhile
    const state = this.restartDecision(c, exited);
    try {
      return this.d.db.transaction(() => {
        // the run as read, stopped by hand or not as read (a stop marks it first)
        const r = this.d.db
          .prepare("UPDATE containers SET state = ?, status = ? WHERE id = ? AND status IN ('running', 'paused') AND json_extract(state, '$.StartedAt') = ? AND coalesce(json_extract(state, '$.ManuallyStopped'), 0) = ?")
          .run(JSON.stringify(state), state.Status, c.id, c.state.StartedAt, c.state.ManuallyStopped ? 1 : 0);
        if (r.changes !== 1) return false;
        this.event(c, 'die', { exitCode: String(state.ExitCode) });
        Object.assign(exited, state);
        return true;
      }).immediate();
    } catch (e) {
      if (!storageError(e) && (e as { code?: string }).code !== 'SQLITE_BUSY') throw e;
      return false;
    }
  }

  /**
   * A container waiting out its restart back-off. When the process that waits (conmon's exit
   * hook) is gone — killed, or the host rebooted — nobody will start it: it is stopped
   * (serve, as dockerd at boot, starts it again when its policy says so).
   */
  private refreshRestarting(c: ContainerRecord): ContainerRecord {
    const s = c.state;
    const w = s.RestartWaiter;
    const lost = s.BootId !== undefined && s.BootId !== bootId() ? true : w ? !isAlive(w) : Date.now() - Date.parse(s.RestartAt ?? s.FinishedAt) > 30_000;
    if (!lost) return c;
    const state = { ...s, Status: 'exited' as const, Running: false, Restarting: false, RestartAt: undefined, RestartWaiter: undefined };
    this.persistRefreshed(c.id, state);
    return { ...c, state };
  }

  /**
   * What refresh learnt is recorded when the store can take it; on a full (or failing)
   * disk the answer is still right and the record is updated by a later command.
   */
  private persistRefreshed(id: string, state: ContainerRecord['state']): void {
    try {
      this.store.setState(id, state);
    } catch (e) {
      if (!storageError(e) && (e as { code?: string }).code !== 'SQLITE_BUSY') throw e;
    }
  }

  async get(ref: string): Promise<ContainerRecord> {
    return this.refresh(this.store.resolve(ref));
  }

  /** Every container as it is now; `live`: only those that may be running (what `ps` without -a needs). */
  async list(opts: { live?: boolean } = {}): Promise<ContainerRecord[]> {
    await this.sweep().catch(() => {});
    const out: ContainerRecord[] = [];
    for (const c of this.store.list(opts)) out.push(await this.refresh(c));
    return out;
  }

  // ------------------------------------------------------------------ start / run

  /**
   * After a commit of the stopped container (the caller holds its lock): the container
   * continues on the committed layer `layer`, which holds exactly its changes since the
   * image, with an empty upper dir — no copy, no extra space, and the layer is never
   * written. The layer it continued on before (a second commit's layer holds every change
   * since the image) is let go.
   */
  async continueOnLocked(id: string, layer: string): Promise<void> {
    const c = this.store.get(id);
    if (!c) throw notFound('NO_SUCH_CONTAINER', `No such container: ${id}`);
    const old = this.d.snapshots.lowerOf(c.snapshot);
    this.d.db.transaction(() => {
      this.d.snapshots.setLower(c.snapshot, layer);
      const cur = this.store.get(id)!;
      if (!cur.state.UpperShared) this.store.setState(id, { ...cur.state, UpperShared: true });
    }).immediate();
    await this.unshareUpper(c);
    if (old && old !== layer) await this.releaseLayers([old]);
  }

  /** Marks the container's upper dir as shared with a layer being committed (before the sharing exists). */
  markUpperShared(id: string, shared = true): void {
    const c = this.store.get(id);
    if (c && !!c.state.UpperShared !== shared) this.store.setState(id, { ...c.state, UpperShared: shared });
  }

  /**
   * Ends the sharing of the upper dir with a committed layer before anything can write into
   * it (start, cp into it). When the layer sits below the upper dir (continueOnLocked) the
   * upper dir is replaced by an empty one; a store of an older version, whose commit left
   * no layer below, gets a private copy (rolled back if it fails). The replacement is one
   * atomic exchange, and a crash at any point leaves a state this redoes.
   */
  private async unshareUpper(c: ContainerRecord): Promise<void> {
    const cur = this.store.get(c.id);
    if (!cur?.state.UpperShared) return;
    const rootfs = this.rootfs(c.id);
    // never a lazy (detached) unmount here: a mount left alive could write into the layer
    try {
      umount2(rootfs, 0);
    } catch (e) {
      if (errnoCode(e) === 'EBUSY') throw conflict('ROOTFS_BUSY', `the root file system of container ${c.name} is in use`, { where: rootfs, hint: 'end the processes using it (lsof, fuser -m) and retry' });
      if (errnoCode(e) !== 'EINVAL' && errnoCode(e) !== 'ENOENT') throw e;
    }
    const stack = this.d.snapshots.stack(c.snapshot);
    const upper = stack.upper;
    if (!stack.lower) {
      // no layer below: the sharing is a commit's that was killed (its temporary snapshot
      // goes with the sweep) or an older version's. Copy only if some file still has links
      // outside the upper dir.
      await this.d.snapshots.sweep();
      if (!linkedOutside(upper)) {
        this.store.setState(c.id, { ...cur.state, UpperShared: false });
        return;
      }
    }
    const fresh = `${upper}.fresh`;
    await removeTree(fresh);
    const st = statSync(upper);
    try {
      mkdirSync(fresh, { mode: 0o755 });
      if (!stack.lower) await run('cp', ['-a', upper + '/.', fresh + '/']);
      // the root of an overlay's view has the upper dir's own attributes
      lchownSync(fresh, st.uid, st.gid);
      chmodSync(fresh, st.mode & 0o7777);
      for (const n of llistxattr(upper)) {
        if (isOverlayXattr(n)) continue;
        const v = lgetxattr(upper, n);
        if (v !== null) lsetxattr(fresh, n, v);
      }
      utimesSync(fresh, st.atime, st.mtime);
    } catch (e) {
      await removeTree(fresh).catch(() => {});
      throw storageError(e, fresh, `cannot give container ${c.name} its own writable layer`) ?? e;
    }
    renameat2(fresh, upper, RENAME_EXCHANGE);
    this.store.setState(c.id, { ...cur.state, UpperShared: false });
    await removeTree(fresh);
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

  /**
   * Volumes and binds as runtime mounts; creates named volumes and the image's anonymous
   * ones. The volumes it creates are listed in `created`, for a failed start to take back.
   */
  private async resolveMounts(c: ContainerRecord, rootfs: string, created: string[] = []): Promise<MountInput[]> {
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
        // an anonymous volume (-v /path) is made at the first start and kept for the next ones
        const source = m.Source || (this.d.db.prepare('SELECT volume FROM container_volumes WHERE container_id = ? AND destination = ?').get(c.id, m.Target) as { volume: string } | undefined)?.volume;
        const fresh = !source || !this.volumes.has(source);
        const v = this.volumes.create(source || undefined);
        if (fresh) created.push(v.Name);
        this.volumes.link(c.id, v.Name, m.Target);
        if (fresh) await this.volumes.populate(v.Name, await resolveInRoot(rootfs, m.Target));
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
        created.push(v.Name);
        this.volumes.link(c.id, v.Name, iv.destination);
        await this.volumes.populate(v.Name, iv.sourceInRootfs);
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
  async start(
    ref: string,
    opts: {
      attach?: AttachStreams | AttachStreams[];
      consoleSize?: { height: number; width: number };
      /**
       * a start by the restart policy (the exit hook after the back-off): only of a container
       * still waiting to restart; it keeps RestartCount and the back-off. Any other start is
       * a manual one: it resets them, and forgets a manual stop (Docker's ResetRestartManager).
       */
      policyRestart?: boolean;
    } = {},
  ): Promise<{ c: ContainerRecord; detach?: () => void; attached?: Promise<void>; attachments?: Awaited<ReturnType<typeof attachContainer>>[] }> {
    const attachList = opts.attach ? (Array.isArray(opts.attach) ? opts.attach : [opts.attach]) : [];
    const found = this.store.resolve(ref);
    const lock = await this.lock(found.id);
    try {
      const c = await this.refresh(this.store.get(found.id)!);
      if (c.state.Running) {
        if (c.state.Paused) throw conflict('CONTAINER_PAUSED', `cannot start a paused container, try unpause instead`);
        return { c };
      }
      // restarting counts as running (Docker answers 304); a policy restart finds it so, or nothing to do
      if ((c.state.Status === 'restarting') !== !!opts.policyRestart) return { c };
      if (opts.policyRestart && c.state.ManuallyStopped) return { c };
      this.d.space?.require(`cannot start container ${c.name}`);
      if (c.state.NetworkAttached || c.state.Status === 'exited' || c.state.Status === 'restarting') await this.releaseResources(c, { keepMount: true });
      const rt = await this.runtime();
      trace('start: runtime detected');
      const paths = this.paths(c.id);
      const rootfs = await this.ensureMounted(c).catch((e: unknown) => {
        throw storageError(e, undefined, `cannot start container ${c.name}`) ?? e;
      });
      trace('start: mounted');
      // from here on runtime and network resources may exist: a start killed midway leaves
      // a record that says so, and the next start or rm releases them
      this.store.setState(c.id, { ...c.state, NetworkAttached: true });
      const createdVolumes: string[] = [];
      try {
        const mounts = await this.resolveMounts(c, rootfs, createdVolumes);
        // The runtime creates the container (its process waits for `start`) while CNI makes
        // its interfaces: both need only the namespace and the etc files to exist.
        let created!: Awaited<ReturnType<typeof createContainer>>;
        const nets = endpointRequests(c.hostConfig);
        await this.network.setupWhile(
          {
            containerId: c.id,
            containerName: c.name,
            mode: nets.mode,
            networks: nets.networks,
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
              // Docker closes a container's stdin when its client's ends only without a tty
              leaveStdinOpen: !c.config.StdinOnce || !!c.config.Tty,
              // conmon runs `layerbox container cleanup` when the container exits: at once
              // for a detached one; for a foreground one after a delay, as a fallback — the
              // attached CLI cleans up itself (and first), unless it died (a closed pipe,
              // a signal), when an --rm container must still go, as dockerd would see to.
              // With a restart policy at once, always: the hook waits out the back-off and
              // starts it again, whoever recorded the exit
              exitCommand: { ...this.d.exitCommand(this.d.root, c.id), ...(attachList.length && !hasPolicy(c.hostConfig.RestartPolicy) ? { delaySeconds: FOREGROUND_EXIT_DELAY_S } : {}) },
            });
          },
        );
        trace('start: network ready, runtime created');
        this.store.setState(c.id, { ...c.state, NetworkAttached: true });
        const volumes = this.d.db.prepare('SELECT volume, destination FROM container_volumes WHERE container_id = ?').all(c.id) as { volume: string; destination: string }[];
        for (const v of volumes) {
          const ro = c.hostConfig.Mounts.find((m) => m.Target === v.destination)?.ReadOnly ?? false;
          this.d.events?.volume(v.volume, 'mount', { container: c.id, destination: v.destination, propagation: '', 'read/write': String(!ro) });
        }
        const atts: Awaited<ReturnType<typeof attachContainer>>[] = [];
        for (const a of attachList) {
          atts.push(await attachContainer(paths, a));
          this.event(c, 'attach');
        }
        if (opts.consoleSize && c.config.Tty) await resizeContainer(paths, opts.consoleSize.height, opts.consoleSize.width).catch(() => {});
        await startContainer(rt, c.id);
        trace('start: started');
        const manual = !opts.policyRestart;
        const state = {
          ...c.state,
          Status: 'running' as const,
          Running: true,
          Paused: false,
          Restarting: false,
          Pid: created.pid,
          ExitCode: 0,
          Error: '',
          StartedAt: now(),
          FinishedAt: ZERO_TIME,
          BootId: bootId(),
          NetworkAttached: true,
          ConmonPid: created.conmonPid,
          RestartCount: manual ? 0 : (c.state.RestartCount ?? 0),
          RestartBackoffMs: manual ? 0 : (c.state.RestartBackoffMs ?? 0),
          ManuallyStopped: manual ? false : !!c.state.ManuallyStopped,
          RestartAt: undefined,
          RestartWaiter: undefined,
          VolumesMounted: volumes.length > 0,
        };
        this.store.setState(c.id, state);
        const started = { ...c, state };
        this.event(started, 'start');
        await this.startHealthMonitor(started);
        return {
          c: started,
          ...(atts.length ? { detach: () => atts.forEach((a) => a.detach()), attached: Promise.all(atts.map((a) => a.done)).then(() => {}), attachments: atts } : {}),
        };
      } catch (e) {
        // roll back: nothing of this start stays behind
        await cleanupContainer(rt, paths, c.id).catch(() => {});
        await this.network.teardown(c.id).catch(() => {});
        unmount(rootfs, { detach: true });
        // volumes this start made: the next start makes (and fills) them afresh
        for (const v of createdVolumes) {
          try {
            this.volumes.unlink(c.id, v);
            if (this.volumes.users(v).length === 0) await this.volumes.remove(v);
          } catch {
            /* kept: removed with the container */
          }
        }
        const state = { ...c.state, NetworkAttached: false, Error: e instanceof Error ? e.message : String(e) };
        try {
          this.store.setState(c.id, state);
        } catch {
          /* a full disk: the record keeps NetworkAttached, and the next start or rm releases again */
        }
        throw storageError(e, undefined, `cannot start container ${c.name}`) ?? e;
      }
    } finally {
      lock.release();
    }
  }

  /**
   * A run's health monitor (when the container has a healthcheck): its state starts as
   * "starting" (the last results kept, as Docker's), then the monitor process — of its own,
   * so that it outlives the command that started the container — probes it until it stops.
   */
  private async startHealthMonitor(c: ContainerRecord): Promise<void> {
    if (!probeCommand(c.config) || !this.d.healthMonitor) return;
    const dir = this.dir(c.id);
    const prev = readHealth(dir);
    endMonitor(prev?.monitor);
    const h: HealthFile = { Status: 'starting', FailingStreak: 0, Log: prev?.Log ?? [], startedAt: c.state.StartedAt };
    try {
      await writeHealth(dir, h);
      // the monitor records itself in the file (it is its only writer from now on)
      this.d.healthMonitor(this.d.root, c.id, c.state.StartedAt);
    } catch {
      /* no health state (a full disk): the container runs without its monitor */
    }
  }

  /** Ends the health monitor of the container's last run. */
  private stopHealthMonitor(c: ContainerRecord): void {
    endMonitor(readHealth(this.dir(c.id))?.monitor);
  }

  /** Waits for the container to exit, then releases its resources. Returns the exit code. */
  async waitAndCleanup(id: string, opts: { signal?: AbortSignal } = {}): Promise<number> {
    const rec = this.store.get(id);
    const conmon = rec?.state.ConmonPid;
    const status = await waitExit(this.paths(id), id, opts.signal ? { signal: opts.signal } : {});
    trace('exited');
    await this.cleanup(id);
    trace('cleaned up');
    // done here: conmon, waiting out the delay of its fallback cleanup, need not run it
    // (with a restart policy its exit hook runs at once, and waits to restart the container)
    if (conmon && !hasPolicy(rec?.hostConfig.RestartPolicy)) dismissMonitor(conmon);
    return status?.exitCode ?? 255;
  }

  /**
   * After exit (called by conmon's exit command, and by the foreground CLI): record the
   * exit, unmount, release the network, and remove an `--rm` container. Idempotent.
   */
  async cleanup(ref: string): Promise<void> {
    this.d.space?.forFreeing();
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
      const after = this.afterExit(r);
      if (r.hostConfig.AutoRemove) await this.removeLocked(after, { volumes: true });
      // waiting to restart: the mount stays for the next run
      else if (r.state.Status === 'restarting') await this.releaseResources(after, { keepMount: true });
      else await this.releaseResources(after);
    } finally {
      lock.release();
    }
  }

  /**
   * Once per run, after its exit was recorded (the caller holds the lock): the volumes'
   * unmount events (after `die`, as dockerd's Cleanup) and the end of the health monitor.
   */
  private afterExit(c: ContainerRecord): ContainerRecord {
    this.stopHealthMonitor(c);
    if (!c.state.VolumesMounted) return c;
    const state = { ...c.state, VolumesMounted: false };
    try {
      this.store.setState(c.id, state);
    } catch {
      return c;
    }
    for (const v of this.d.db.prepare('SELECT volume FROM container_volumes WHERE container_id = ?').all(c.id) as { volume: string }[]) {
      this.d.events?.volume(v.volume, 'unmount', { container: c.id });
    }
    return { ...c, state };
  }

  /**
   * The restart policy's decision on an exit being recorded: unless the container was
   * stopped by hand (or is removed with AutoRemove), restart it after the back-off —
   * recorded as 'restarting', with the time it is due; conmon's exit hook waits and starts
   * it (runPendingRestart). Returns the state to record.
   */
  private restartDecision(c: ContainerRecord, s: ContainerRecord['state']): ContainerRecord['state'] {
    const policy = c.hostConfig.RestartPolicy;
    if (!hasPolicy(policy) || c.hostConfig.AutoRemove || c.state.ManuallyStopped) return s;
    const count = s.RestartCount ?? 0;
    const ran = Date.parse(s.FinishedAt) - Date.parse(s.StartedAt);
    const backoff = nextBackoff(s.RestartBackoffMs ?? 0, Number.isFinite(ran) ? ran : 0);
    if (!policyRestarts(policy, s.ExitCode, false, count)) return s;
    return { ...s, Status: 'restarting', Restarting: true, RestartCount: count + 1, RestartBackoffMs: backoff, RestartAt: new Date(Date.now() + backoff).toISOString(), RestartWaiter: undefined };
  }

  /**
   * conmon's exit hook, after cleanup: when the container waits to restart, waits until
   * the restart is due and starts it — unless it was stopped, removed, started or
   * rescheduled meanwhile, or another live process waits for it already.
   */
  async runPendingRestart(id: string): Promise<void> {
    let at: string | undefined;
    await this.withLock(id, async () => {
      const cur = this.store.get(id);
      if (!cur || cur.state.Status !== 'restarting') return;
      const w = cur.state.RestartWaiter;
      if (w && isAlive(w) && w.pid !== process.pid) return;
      this.store.setState(id, { ...cur.state, RestartWaiter: selfId() });
      at = cur.state.RestartAt;
    }).catch((e: unknown) => {
      if (!isEngineError(e, 'not-found')) throw e;
    });
    if (at === undefined) return;
    for (;;) {
      const due = Date.parse(at) - Date.now();
      if (due > 0) await sleep(Math.min(due, 250));
      if (!existsSync(this.dir(id))) return; // removed, or the whole store (a test's root)
      const cur = this.store.get(id);
      if (!cur || cur.state.Status !== 'restarting' || cur.state.RestartAt !== at) return;
      // stopped by hand while it waited (the stop found it running, just before its exit)
      if (cur.state.ManuallyStopped) {
        await this.cancelRestart(id);
        return;
      }
      if (due <= 0) break;
    }
    trace('restart: due');
    try {
      await this.start(id, { policyRestart: true });
    } catch (e) {
      // dockerd: a restart that fails leaves the container stopped
      await this.withLock(id, async () => {
        const cur = this.store.get(id);
        if (cur?.state.Status === 'restarting') this.store.setState(id, { ...cur.state, Status: 'exited', Running: false, Restarting: false, RestartAt: undefined, RestartWaiter: undefined, Error: (e as Error).message });
      }).catch(() => {});
    }
  }

  /**
   * Ends a pending restart by hand (stop, kill, rm -f of a restarting container): the
   * container is stopped, and remembers it was stopped by hand. Returns the new record,
   * or undefined when it was not restarting (any more).
   */
  private async cancelRestart(id: string): Promise<ContainerRecord | undefined> {
    return this.withLock(id, async () => {
      const cur = this.store.get(id);
      if (!cur || cur.state.Status !== 'restarting') return undefined;
      const state = { ...cur.state, Status: 'exited' as const, Running: false, Restarting: false, ManuallyStopped: true, RestartAt: undefined, RestartWaiter: undefined };
      this.store.setState(id, state);
      await this.releaseResources({ ...cur, state }).catch(() => {});
      return { ...cur, state };
    });
  }

  /** Remembers that the container is being stopped by hand, before the signal goes (the exit hook must see it). */
  private async markManuallyStopped(id: string): Promise<void> {
    await this.withLock(id, async () => {
      const cur = this.store.get(id);
      if (cur && !cur.state.ManuallyStopped) this.store.setState(id, { ...cur.state, ManuallyStopped: true });
    });
  }

  /**
   * What `serve` starts when it starts, as dockerd does at boot: every container that ran
   * before, is not running, and whose policy says so — always; unless-stopped unless it was
   * stopped by hand; on-failure after a failure, under the retry cap — and the ones that
   * waited to restart when their waiting process died (a reboot). Returns their IDs.
   */
  async restartCandidates(): Promise<string[]> {
    const out: string[] = [];
    for (const c of await this.list()) {
      const s = c.state;
      if (!hasPolicy(c.hostConfig.RestartPolicy) || s.Running || s.Status === 'restarting') continue;
      if (s.Status !== 'exited' || s.StartedAt.startsWith('0001')) continue;
      if (policyRestarts(c.hostConfig.RestartPolicy, s.ExitCode, !!s.ManuallyStopped, s.RestartCount ?? 0)) out.push(c.id);
    }
    return out;
  }

  /** Running containers with a healthcheck whose monitor is gone (a crash): `serve` gives them one again. */
  async unmonitored(): Promise<ContainerRecord[]> {
    const out: ContainerRecord[] = [];
    for (const c of await this.list()) {
      if (!c.state.Running || !probeCommand(c.config)) continue;
      const h = readHealth(this.dir(c.id));
      if (!h || h.startedAt !== c.state.StartedAt || !h.monitor || !isAlive(h.monitor)) out.push(c);
    }
    return out;
  }

  /** Starts a monitor for a running container that lost its own (see unmonitored). */
  async resumeHealthMonitor(id: string): Promise<void> {
    const c = await this.get(id);
    if (!c.state.Running || !this.d.healthMonitor) return;
    const h = readHealth(this.dir(c.id));
    if (!h || h.startedAt !== c.state.StartedAt) await writeHealth(this.dir(c.id), { Status: 'starting', FailingStreak: 0, Log: h?.Log ?? [], startedAt: c.state.StartedAt });
    this.d.healthMonitor(this.d.root, c.id, c.state.StartedAt);
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
    let c = await this.get(ref);
    if (!c.state.Running && c.state.Status !== 'restarting') return c;
    // first: the exit this causes (or one that came just before) is not restarted
    await this.markManuallyStopped(c.id);
    c = await this.get(c.id);
    if (c.state.Status === 'restarting') {
      // Docker: a restarting container counts as running; stopping it cancels the restart
      const stopped = (await this.cancelRestart(c.id)) ?? (await this.get(c.id));
      this.event(stopped, 'stop');
      return stopped;
    }
    if (!c.state.Running) return c;
    const rt = await this.runtime();
    if (c.state.Paused) await rt.resume(c.id).catch(() => {});
    const timeout = timeoutSeconds ?? c.config.StopTimeout ?? 10;
    await stopContainer(rt, this.paths(c.id), c.id, {
      stopSignal: c.config.StopSignal ?? 'SIGTERM',
      timeoutSeconds: timeout,
      onSignal: (sig) => this.event(c, 'kill', { signal: signalNumber(sig) }),
    });
    await this.cleanup(c.id);
    const after = (await this.cancelRestart(c.id)) ?? this.store.get(c.id);
    this.event(after ?? c, 'stop');
    return after ?? c;
  }

  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const c = await this.get(ref);
    const sig = signal.startsWith('SIG') || /^\d+$/.test(signal) ? signal : `SIG${signal}`;
    const num = signalNumber(sig);
    // Docker: killing with SIGKILL or the stop signal (any signal when none is configured)
    // means the container is stopped by hand: its exit is not restarted
    const manual = num === '9' || !c.config.StopSignal || signalNumber(c.config.StopSignal) === num;
    if (c.state.Status === 'restarting') {
      if (manual) {
        await this.markManuallyStopped(c.id);
        await this.cancelRestart(c.id);
      }
      return;
    }
    if (!c.state.Running) throw conflict('NOT_RUNNING', `Container ${c.id} is not running`); // (the engine's kill says which kill failed)
    if (manual) await this.markManuallyStopped(c.id);
    const rt = await this.runtime();
    await rt.kill(c.id, sig);
    this.event(c, 'kill', { signal: num });
    if (num === '9') {
      await waitExit(this.paths(c.id), c.id, { timeoutMs: 10000 });
      await this.cleanup(c.id);
    }
  }

  private refuseRestarting(c: ContainerRecord): void {
    if (c.state.Status === 'restarting') throw conflict('CONTAINER_RESTARTING', `Container ${c.id} is restarting, wait until the container is running`);
  }

  async pause(ref: string): Promise<void> {
    const c = await this.get(ref);
    this.refuseRestarting(c);
    if (!c.state.Running) throw conflict('NOT_RUNNING', `Container ${c.id} is not running`);
    if (c.state.Paused) throw conflict('ALREADY_PAUSED', `Container ${c.id} is already paused`);
    await (await this.runtime()).pause(c.id);
    this.store.setState(c.id, { ...c.state, Status: 'paused', Paused: true });
    this.event(c, 'pause');
  }

  async unpause(ref: string): Promise<void> {
    const c = await this.get(ref);
    if (!c.state.Paused) throw conflict('NOT_PAUSED', `Container ${c.id} is not paused`);
    await (await this.runtime()).resume(c.id);
    this.store.setState(c.id, { ...c.state, Status: 'running', Paused: false });
    this.event(c, 'unpause');
  }

  async wait(ref: string, opts: { signal?: AbortSignal } = {}): Promise<number> {
    let c = await this.get(ref);
    // restarting counts as running: the wait ends at the next exit (or a stop)
    while (c.state.Status === 'restarting') {
      if (opts.signal?.aborted) return c.state.ExitCode;
      await sleep(100);
      c = await this.get(c.id);
    }
    if (!c.state.Running) return c.state.ExitCode;
    const st = await waitExit(this.paths(c.id), c.id, opts.signal ? { signal: opts.signal } : {});
    return st?.exitCode ?? (await this.get(c.id)).state.ExitCode;
  }

  // ------------------------------------------------------------------ remove

  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<string> {
    this.d.space?.forFreeing();
    const c = await this.get(ref);
    if (c.state.Running || c.state.Status === 'restarting') {
      if (!opts.force) {
        throw conflict('CONTAINER_RUNNING', `You cannot remove a ${c.state.Status === 'restarting' ? 'restarting' : c.state.Paused ? 'paused' : 'running'} container ${c.id}. Stop the container before attempting removal or force remove`);
      }
      // no restart of this exit (its hook finds the container gone, or stopped by hand)
      await this.markManuallyStopped(c.id);
    }
    if (c.state.Running) {
      const rt = await this.runtime();
      if (c.state.Paused) await rt.resume(c.id).catch(() => {});
      if (await rt.kill(c.id, 'SIGKILL').then(() => true, () => false)) this.event(c, 'kill', { signal: '9' });
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

  private async removeLocked(rec: ContainerRecord, opts: { volumes?: boolean; released?: boolean }): Promise<void> {
    const c = rec.state.Running ? rec : this.afterExit(rec);
    const { network } = opts.released ? { network: Promise.resolve() } : await this.releaseRuntime(c);
    // mark first: a crash from here on leaves a row that says it is being removed (and the
    // next command finishes the removal: sweep)
    this.store.setState(c.id, { ...(this.store.get(c.id)?.state ?? c.state), Status: 'removing', ...(opts.volumes ? { RemoveVolumes: true } : {}) });
    const layers = this.layerKeys(c);
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
    trace('cleanup: removed');
    // layers only this container kept (its image removed with rmi -f, a layer it continued on)
    await this.releaseLayers(layers);
    if (opts.volumes) {
      for (const v of vols) {
        const vol = this.volumes.has(v) ? this.volumes.get(v) : undefined;
        if (vol?.anonymous && this.volumes.users(v).length === 0) await this.volumes.remove(v).catch(() => {});
      }
    }
    this.event(c, 'destroy');
  }

  async prune(): Promise<{ removed: string[] }> {
    this.d.space?.forFreeing();
    const removed: string[] = [];
    for (const c of await this.list()) {
      if (c.state.Running || c.state.Status === 'restarting') continue;
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
    this.event({ ...c, name: n }, 'rename', { oldName: `/${c.name}` });
  }

  /**
   * `docker update --restart`: a new restart policy, checked as at create (and refused for
   * an AutoRemove container, as dockerd does). It applies from the next exit on.
   */
  async updateRestartPolicy(ref: string, policy: { Name: string; MaximumRetryCount?: number }): Promise<ContainerRecord> {
    const found = this.store.resolve(ref);
    return this.withLock(found.id, async () => {
      const c = this.store.get(found.id)!;
      if (c.hostConfig.AutoRemove && hasPolicy(policy)) throw conflict('AUTOREMOVE_RESTART', 'Restart policy cannot be updated because AutoRemove is enabled for the container');
      const hostConfig = { ...c.hostConfig, RestartPolicy: { Name: policy.Name, MaximumRetryCount: policy.MaximumRetryCount ?? 0 } };
      this.d.db.prepare('UPDATE containers SET host_config = ? WHERE id = ?').run(JSON.stringify(hostConfig), c.id);
      return { ...c, hostConfig };
    });
  }

  // ------------------------------------------------------------------ inside

  async exec(
    ref: string,
    e: {
      args: string[];
      env?: string[];
      workdir?: string;
      user?: string;
      tty?: boolean;
      privileged?: boolean;
      detach?: boolean;
      streams?: AttachStreams;
      consoleSize?: { height: number; width: number };
      /** the terminal size once attached, asked for at that moment (a resize may have come meanwhile) */
      sizeWhenAttached?: () => { height: number; width: number } | undefined;
      /** the exec's ID (hex), for resizeExec and execExit; default a new one */
      execId?: string;
      /** the host pid of its process, once it runs */
      onStarted?: (pid: number) => void;
      /** the foreground attachment, once connected */
      onAttachment?: (a: { detach(): void; done: Promise<void> }) => void;
      /** kills the process (SIGKILL) when aborted; the exec then ends with its exit code */
      signal?: AbortSignal;
    },
  ): Promise<{ exitCode?: number; pid?: number }> {
    const c = await this.get(ref);
    this.refuseRestarting(c);
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
    const execId = e.execId ?? randomBytes(16).toString('hex');
    const execDir = join(paths.bundleDir, 'exec', execId);
    let pid = 0;
    const kill = () => {
      if (pid > 0) {
        try {
          globalThis.process.kill(pid, 'SIGKILL');
        } catch {
          /* ended meanwhile */
        }
      }
    };
    e.signal?.addEventListener('abort', kill);
    try {
      const r = await execInContainer({
        onStarted: (p) => {
          pid = p;
          e.onStarted?.(p);
          if (e.signal?.aborted) kill();
        },
        containerId: c.id,
        execId,
        runtime: rt,
        execDir,
        process,
        ...(e.detach ? { detach: true } : { streams: e.streams ?? {} }),
        ...(e.tty && (e.consoleSize || e.sizeWhenAttached)
          ? {
              onAttached: async (resize: (h: number, w: number) => Promise<void>) => {
                const size = e.sizeWhenAttached?.() ?? e.consoleSize;
                if (size) await resize(size.height, size.width);
              },
            }
          : {}),
        ...(e.onAttachment ? { onAttachment: e.onAttachment } : {}),
      });
      return { ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}), pid: r.pid };
    } finally {
      e.signal?.removeEventListener('abort', kill);
      if (!e.detach) rmSync(execDir, { recursive: true, force: true });
    }
  }

  /** The container's cgroup (as its spec names it, below each hierarchy's root). */
  cgroupsPath(id: string): string {
    return `/layerbox/${id}`;
  }

  /** Sets the terminal size of a running `-t` exec. */
  async resizeExec(containerId: string, execId: string, height: number, width: number): Promise<void> {
    await resizeTerminal(join(this.paths(containerId).bundleDir, 'exec', execId), height, width);
  }

  /** The exit code of a detached exec once it has exited (undefined while it runs). */
  async execExit(containerId: string, execId: string): Promise<number | undefined> {
    return readExecExit(join(this.paths(containerId).bundleDir, 'exec', execId)).catch(() => undefined);
  }

  /**
   * `docker update`: records the new host config and, for a running container, applies its
   * resources at once (the runtime's update); nothing is recorded when the runtime refuses.
   */
  async update(ref: string, patch: Partial<HostConfig>): Promise<ContainerRecord> {
    const found = this.store.resolve(ref);
    return this.withLock(found.id, async () => {
      const c = await this.refresh(this.store.get(found.id) ?? found);
      const hc: HostConfig = { ...c.hostConfig, ...patch };
      if (c.state.Running) {
        const o: RunOptions = { ...resourceOptions(hc) };
        if (hc.Memory) o.memory = hc.Memory;
        if (hc.NanoCpus) o.cpus = hc.NanoCpus / 1e9;
        if (hc.PidsLimit) o.pidsLimit = hc.PidsLimit;
        const r = buildResources(o);
        // a pids limit of 0 or less lifts the limit (the runtime's -1)
        if (patch.PidsLimit !== undefined && patch.PidsLimit <= 0) r.pids = { limit: -1 };
        await (await this.runtime()).update(c.id, r);
      }
      this.store.setHostConfig(c.id, hc);
      return { ...c, hostConfig: hc };
    });
  }

  async attach(ref: string, streams: AttachStreams): Promise<{ done: Promise<void>; detach: () => void; c: ContainerRecord }> {
    const c = await this.get(ref);
    if (c.state.Status === 'restarting') throw conflict('CONTAINER_RESTARTING', 'You cannot attach to a restarting container, wait until it is running');
    if (!c.state.Running) throw conflict('NOT_RUNNING', 'You cannot attach to a stopped container, start it first');
    const a = await attachContainer(this.paths(c.id), streams);
    this.event(c, 'attach');
    return { done: a.done, detach: a.detach, c };
  }

  async resize(ref: string, height: number, width: number): Promise<void> {
    const c = this.store.resolve(ref);
    const ok = await resizeContainer(this.paths(c.id), height, width).then(
      () => true,
      () => false,
    );
    if (ok) this.event(c, 'resize', { height: String(height), width: String(width) });
  }

  async *logs(ref: string, opts: { follow?: boolean; tail?: number; since?: number; until?: number; signal?: AbortSignal } = {}): AsyncGenerator<LogLine> {
    const c = await this.get(ref);
    const paths = this.paths(c.id);
    if (!existsSync(paths.logPath)) return;
    yield* readLogs(paths.logPath, {
      ...(opts.tail !== undefined ? { tail: opts.tail } : {}),
      ...(opts.since !== undefined ? { since: opts.since } : {}),
      ...(opts.until !== undefined ? { until: opts.until } : {}),
      follow: !!opts.follow && c.state.Running,
      stopWhen: async () => !!(await readExit(paths, c.id)),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  async top(ref: string, psArgs?: string[]): Promise<TopResult> {
    const c = await this.get(ref);
    if (!c.state.Running && c.state.Status !== 'restarting') throw conflict('NOT_RUNNING', `Container ${c.id} is not running`);
    this.refuseRestarting(c);
    const t = await (await this.runtime()).top(c.id, psArgs);
    this.event(c, 'top');
    return t;
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
      ...(this.health(c) ? { health: this.health(c) } : {}),
      ...(m?.type === 'overlay' ? { upper: m.upper!, lowers: m.lowers! } : { upper: this.d.snapshots.fsDir(c.snapshot) }),
    });
  }

  /**
   * Runs `fn` with the container's root file system mounted (mounting a stopped one for the
   * time of the call). Paths under it are host paths: of a running container, they must not
   * be resolved and then used (CVE-2018-15664); the copy operations below walk fds instead.
   */
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

  /**
   * The container's mounts as the copy code sees them (besides the root file system): binds,
   * volumes (named, anonymous, the image's), and the etc files of its network, as Docker's
   * daemon.mountVolumes mounts them for an archive operation. tmpfs mounts are not reachable
   * from the host and are left out (as Docker does).
   */
  private viewMounts(c: ContainerRecord): ViewMount[] {
    const out: ViewMount[] = [];
    const taken = new Set<string>();
    for (const m of c.hostConfig.Mounts) {
      if (m.Type === 'tmpfs') taken.add(cleanContainerPath(m.Target));
      if (m.Type !== 'bind') continue;
      out.push({ target: cleanContainerPath(m.Target), source: m.Source, readOnly: m.ReadOnly, kind: 'bind' });
      taken.add(cleanContainerPath(m.Target));
    }
    for (const r of this.d.db.prepare('SELECT volume, destination FROM container_volumes WHERE container_id = ?').all(c.id) as { volume: string; destination: string }[]) {
      const target = cleanContainerPath(r.destination);
      if (taken.has(target) || !this.volumes.has(r.volume)) continue;
      const ro = c.hostConfig.Mounts.find((m) => cleanContainerPath(m.Target) === target)?.ReadOnly ?? false;
      out.push({ target, source: this.volumes.mountpoint(r.volume), readOnly: ro, kind: 'volume' });
      taken.add(target);
    }
    for (const [file, target] of [
      ['resolv.conf', '/etc/resolv.conf'],
      ['hostname', '/etc/hostname'],
      ['hosts', '/etc/hosts'],
    ] as const) {
      const source = join(this.dir(c.id), file);
      if (taken.has(target) || !existsSync(source)) continue;
      out.push({ target, source, readOnly: c.hostConfig.ReadonlyRootfs, kind: 'etc' });
    }
    return out;
  }

  /**
   * Before a copy with a container that has not run yet: its named volumes and bind sources
   * exist, as Docker has them from `create` on (a volume new to it gets the image's content
   * at the mount point first, as at start). Anonymous volumes are made at start. Host side
   * only: the root file system is not written (a read may not unshare a committed upper).
   */
  private async prepareMounts(c: ContainerRecord, rootfs: string): Promise<void> {
    for (const m of c.hostConfig.Mounts) {
      if (m.Type === 'bind' && !existsSync(m.Source)) mkdirSync(m.Source, { recursive: true });
      if (m.Type !== 'volume' || !m.Source) continue;
      const fresh = !this.volumes.has(m.Source);
      const v = this.volumes.create(m.Source);
      if (fresh) await this.volumes.populate(v.Name, await resolveInRoot(rootfs, m.Target));
      this.volumes.link(c.id, v.Name, m.Target);
    }
  }

  /**
   * The container's file system as it sees it, for the time of a copy: the root file system
   * mounted (a stopped container's for the time of the call) and walked through fds only.
   * `release` closes the view and unmounts what was mounted for it; it runs once.
   */
  private async openView(ref: string, opts: { write?: boolean } = {}): Promise<{ c: ContainerRecord; view: FsView; release: () => void }> {
    const c = await this.get(ref);
    const rootfs = this.rootfs(c.id);
    if (opts.write) await this.unshareUpper(c);
    const was = await isMountPoint(rootfs);
    if (!was) await this.ensureMounted(c, { write: !!opts.write });
    let view: FsView;
    try {
      if (!c.state.Running) await this.prepareMounts(c, rootfs);
      view = new FsView(rootfs, { readOnly: c.hostConfig.ReadonlyRootfs, mounts: this.viewMounts(c), createTargets: !!opts.write });
    } catch (e) {
      if (!was) unmount(rootfs);
      throw e;
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      view.close();
      if (was) return;
      const now = this.store.get(c.id);
      if (!now?.state.Running) {
        try {
          unmount(rootfs);
        } catch {
          /* in use by another copy: its release unmounts */
        }
      }
    };
    return { c, view, release };
  }

  /** `HEAD /containers/{id}/archive`: Docker's ContainerPathStat of a path in the container. */
  async stat(ref: string, path: string): Promise<PathStat> {
    const { view, release } = await this.openView(ref);
    try {
      return statPath(view, path, ref);
    } finally {
      release();
    }
  }

  /**
   * `GET /containers/{id}/archive`: the stat of a path and a tar stream of it (entries named
   * from the path's base name, as Docker's). Errors (not found, …) come before any byte; the
   * stream holds the container's file system until it ends or is destroyed.
   */
  async getArchive(ref: string, path: string, opts: { signal?: AbortSignal } = {}): Promise<{ stat: PathStat; stream: Readable }> {
    const { c, view, release } = await this.openView(ref);
    const a = await archivePath(view, path, ref, { ...opts, done: release });
    this.event(c, 'archive-path');
    return a;
  }

  /**
   * `PUT /containers/{id}/archive`: extracts a tar stream (plain, gzip, zstd) into the
   * directory `path` of the container, binds and volumes included. Owners are the archive's;
   * with `copyUIDGID`, the container's user's when it has one (Docker's tarCopyOptions).
   */
  async putArchive(ref: string, path: string, source: Readable | AsyncIterable<Buffer>, opts: { noOverwriteDirNonDir?: boolean; copyUIDGID?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const { c, view, release } = await this.openView(ref, { write: true });
    try {
      let owner: ExtractOptions['owner'] = 'archive';
      if (opts.copyUIDGID && c.config.User) {
        const u = await resolveUser(this.rootfs(c.id), c.config.User);
        owner = { uid: u.uid, gid: u.gid };
      }
      await extractToDir(view, path, source, ref, { noOverwriteDirNonDir: !!opts.noOverwriteDirNonDir, owner, ...(opts.signal ? { signal: opts.signal } : {}) });
      this.event(c, 'extract-to-dir');
    } finally {
      release();
    }
  }

  /** The archive operations on one container, as the CLI's copies use them. */
  archiveEndpoint(ref: string): ArchiveEndpoint {
    return {
      name: ref,
      stat: (p) => this.stat(ref, p),
      getArchive: (p) => this.getArchive(ref, p),
      putArchive: (p, source, o) => this.putArchive(ref, p, source, o),
    };
  }

  /** `docker cp CONTAINER:SRC DEST|-` (`-L`: follow a link at SRC). */
  async copyFrom(ref: string, src: string, dest: string | Writable, opts: { followLink?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    await this.get(ref);
    await copyFromContainer(this.archiveEndpoint(ref), src, dest, opts);
  }

  /** `docker cp SRC CONTAINER:DEST` (`-a`: the container user's owners, `-L`: follow a link at SRC). */
  async copyTo(ref: string, src: string, dest: string, opts: { archive?: boolean; followLink?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    await this.get(ref);
    await copyToContainer(this.archiveEndpoint(ref), src, dest, { copyUIDGID: !!opts.archive, ...(opts.followLink ? { followLink: true } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
  }

  /**
   * `docker cp - CONTAINER:DIR`: extracts a tar stream (plain, gzip or zstd) into a directory
   * of the container. Not a layer: `.wh.` names are ordinary files.
   */
  async copyArchiveTo(ref: string, source: Readable, dest: string, opts: { archive?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    await this.get(ref);
    await copyToContainer(this.archiveEndpoint(ref), source, dest, { copyUIDGID: !!opts.archive, ...(opts.signal ? { signal: opts.signal } : {}) });
  }

  /** `export`: the container's root file system (not its volumes) as a tar stream. */
  async export(ref: string, out: Writable, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const c = await this.get(ref);
    const rootfs = this.rootfs(c.id);
    const was = await isMountPoint(rootfs);
    if (!was) await this.ensureMounted(c, { write: false });
    const view = new FsView(rootfs);
    try {
      this.event(c, 'export');
      await pump(exportTree(view, opts), out, opts.signal);
    } finally {
      view.close();
      if (!was && !this.store.get(c.id)?.state.Running) unmount(rootfs);
    }
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

