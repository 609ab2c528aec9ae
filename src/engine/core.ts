/**
 * The store behind the engine's door: opens the root directory, metadata database, content
 * store, snapshotter, layer and image stores, and holds what the engine's services share
 * (registry clients, the container manager, crash repair). Private to the engine: the
 * fronts see only the services of engine.ts. No daemon: every process opens the store
 * itself; the database and the per-object locks keep concurrent processes correct.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { EngineError, invalidArgument, isEngineError, storageError } from '../errors/index.js';
import type { Digest } from '../oci/digest.js';
import { parseReference, parseRepositoryTag, type ImageRef } from '../oci/reference.js';
import type { ImageConfig } from '../oci/types.js';
import { openDatabase, getSetting, setSetting, type DB } from '../metadata/db.js';
import { StoreSpace } from '../metadata/space.js';
import { EventLog } from '../metadata/events.js';
import { ContentStore } from '../content/store.js';
import { createSnapshotter, overlaySupported, type StorageDriver } from '../snapshot/mount.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { LayerStore } from '../image/layers.js';
import { ImageStore, type ImageRecord } from '../image/images.js';
import { loadImages, type LoadEvent, type LoadedImage } from '../image/load.js';
import { importImage } from '../image/import.js';
import { saveImages, type SaveFormat } from '../image/save.js';
import { imageHistory, inspectImage, type HistoryRow } from '../image/inspect.js';
import { removeImage, pruneImages, type RemoveEvent, type ImageUsage } from '../image/remove.js';
import { imagesDf, type ImagesDf } from '../image/df.js';
import { ImageMounts } from '../image/mount.js';
import { checkStore, type CheckReport } from '../image/check.js';
import type { LayerEvent } from '../image/layers.js';
// registry code (undici and all) is loaded only by commands that talk to a registry
import type { RegistryClient, CredentialStore, Credentials } from '../registry/index.js';
import type { PullEvent, PullResult } from '../image/pull.js';
import type { PushEvent } from '../image/push.js';
import type { Platform } from '../oci/types.js';
// the container machinery (runtime, CNI) is loaded only by commands that use containers
import type { ContainerManager } from '../container/manager.js';
import { ContainerStore } from '../container/store.js';
import { trace } from '../sys/trace.js';
import type { AuthConfig } from './types.js';
import { spawnDetached } from '../sys/exec.js';

export interface EngineOptions {
  /** Registries reached over plain HTTP (or with unverified TLS), besides loopback. Also $LAYERBOX_INSECURE_REGISTRIES (comma-separated). */
  insecureRegistries?: string[];
  /** Docker's config.json with registry credentials (default ~/.docker/config.json or $DOCKER_CONFIG). */
  credentialsPath?: string;
  /** Docker's certs.d directory (default /etc/docker/certs.d). */
  certsDir?: string;
  /** Store root; default $LAYERBOX_ROOT or /var/lib/layerbox. */
  root?: string;
  /** overlay (default where the kernel allows) or vfs (copies). Fixed per store once chosen. */
  storageDriver?: StorageDriver;
  /** Quota on one layer's uncompressed size. */
  maxLayerBytes?: number;
  /**
   * Registry mirrors for docker.io (dockerd's `registry-mirrors`: `https://host[:port]`, or
   * `http://…`), tried in order before Docker Hub itself; a mirror that fails hands over to
   * the next one.
   */
  registryMirrors?: string[];
}

/** One place a repository is fetched from: the registry itself, or a mirror of docker.io. */
interface Endpoint {
  host: string;
  /** a mirror's scheme, as its URL gives it */
  scheme?: 'http' | 'https';
  mirror: boolean;
}

/** Docker's AuthConfig as the registry client's credentials (anonymous when empty). */
function credentialsOf(a: AuthConfig): Credentials {
  const c: Credentials = {};
  if (a.username) c.username = a.username;
  if (a.password) c.password = a.password;
  if (a.identitytoken) c.identityToken = a.identitytoken;
  if (a.registrytoken) c.registryToken = a.registrytoken;
  return c;
}

/** dockerd's ValidateMirror: an http(s) URL without path, query, fragment or user; normalised to end in `/`. */
export function validateMirror(val: string): string {
  let u: URL;
  try {
    u = new URL(val);
  } catch {
    throw invalidArgument('INVALID_MIRROR', `invalid mirror: ${JSON.stringify(val)} is not a valid URI`, { hint: 'give https://host[:port] or http://host[:port]' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalidArgument('INVALID_MIRROR', `invalid mirror: unsupported scheme ${JSON.stringify(u.protocol.replace(/:$/, ''))} in ${JSON.stringify(val)}`, { hint: 'give https://host[:port] or http://host[:port]' });
  if ((u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== '') throw invalidArgument('INVALID_MIRROR', `invalid mirror: path, query, or fragment at end of the URI ${JSON.stringify(val)}`);
  if (u.username || u.password) throw invalidArgument('INVALID_MIRROR', `invalid mirror: username/password not allowed in URI ${JSON.stringify(`${u.protocol}//${u.username}:xxxxx@${u.host}`)}`);
  return val.replace(/\/+$/, '') + '/';
}

export const DEFAULT_ROOT = '/var/lib/layerbox';

/** conmon's exit command (exit-hook.ts); the path works from dist/engine and from the CLI bundle alike (both two levels down). */
const EXIT_HOOK = fileURLToPath(new URL('../../dist/engine/exit-hook.js', import.meta.url));
/** a container's health monitor (health-monitor.ts), a process of its own per run */
const HEALTH_MONITOR = fileURLToPath(new URL('../../dist/engine/health-monitor.js', import.meta.url));

/** `busybox:latest` for docker.io/library/busybox:latest (names in image events). */
function familiar(name: string): string {
  try {
    return parseReference(name).familiarString();
  } catch {
    return name;
  }
}

export function defaultRoot(): string {
  return process.env.LAYERBOX_ROOT || DEFAULT_ROOT;
}

export class Core {
  private repaired = false;

  private constructor(
    readonly root: string,
    readonly db: DB,
    readonly content: ContentStore,
    readonly snapshots: Snapshotter,
    readonly layers: LayerStore,
    readonly images: ImageStore,
    readonly imageMounts: ImageMounts,
    readonly options: EngineOptions,
    /** the space guard: a reserve that keeps the freeing commands working on a full disk */
    readonly space: StoreSpace,
    /** the event log every process appends to (docker events) */
    readonly events: EventLog,
  ) {}

  static async open(opts: EngineOptions = {}): Promise<Core> {
    const root = resolve(opts.root ?? defaultRoot());
    for (const m of opts.registryMirrors ?? []) validateMirror(m);
    try {
      mkdirSync(root, { recursive: true, mode: 0o700 });
      // CVE-2021-41091: unprivileged users must not reach setuid binaries inside layers
      if ((statSync(root).mode & 0o077) !== 0) chmodSync(root, 0o700);
    } catch (e) {
      throw new EngineError('unavailable', 'ROOT_UNUSABLE', `cannot use the store root ${root}: ${(e as Error).message}`, {
        cause: e,
        hint: 'run as root, or choose another root with --root / LAYERBOX_ROOT',
      });
    }
    // before the database: on a nearly full disk the reserve makes room for it (space.ts)
    const space = new StoreSpace(root);
    space.beforeOpen();
    const db = openDatabase(root, { heapIndex: space.heapIndex });
    const content = new ContentStore(root);
    await content.init();
    let driver = getSetting(db, 'storage-driver') as StorageDriver | undefined;
    const wanted = opts.storageDriver ?? (process.env.LAYERBOX_STORAGE_DRIVER as StorageDriver | undefined);
    if (wanted && wanted !== 'overlay' && wanted !== 'vfs') {
      throw invalidArgument('BAD_DRIVER', `unknown storage driver ${JSON.stringify(wanted)}`, { hint: 'use overlay or vfs' });
    }
    if (driver && wanted && driver !== wanted) {
      throw invalidArgument('DRIVER_MISMATCH', `the store at ${root} uses the ${driver} storage driver, not ${wanted}`, { hint: 'use another --root for another driver' });
    }
    if (!driver) {
      driver = wanted ?? (overlaySupported(root) ? 'overlay' : 'vfs');
      setSetting(db, 'storage-driver', driver);
    }
    const snaps = createSnapshotter(db, root, driver);
    const layers = new LayerStore(db, content, snaps, root);
    const images = new ImageStore(db, content, layers);
    const mounts = new ImageMounts(db, snaps, join(root, 'mounts'));
    return new Core(root, db, content, snaps, layers, images, mounts, opts, space, new EventLog(db, join(root, 'metadata.db-wal')));
  }

  close(): void {
    for (const c of this.clients.values()) void c.close();
    this.clients.clear();
    this.events.close();
    this.db.close();
    // the reserve released for this command (or by an earlier one) is made again if there is room
    this.space.restore();
  }

  // ------------------------------------------------------------------ registries

  private readonly clients = new Map<string, RegistryClient>();

  async credentials(): Promise<CredentialStore> {
    const { CredentialStore } = await import('../registry/index.js');
    return new CredentialStore(this.options.credentialsPath ? { configPath: this.options.credentialsPath } : {});
  }

  insecure(): string[] {
    const env = (process.env.LAYERBOX_INSECURE_REGISTRIES ?? '').split(',').map((x) => x.trim()).filter(Boolean);
    return [...(this.options.insecureRegistries ?? []), ...env];
  }

  /** The registry mirrors for docker.io, validated and normalised (`http://host:port/`). */
  mirrors(): string[] {
    return (this.options.registryMirrors ?? []).map(validateMirror);
  }

  /**
   * Where a repository of `domain` is fetched from, in order: for docker.io the mirrors
   * first, then Docker Hub itself (dockerd's LookupPullEndpoints); any other registry is
   * its own only endpoint.
   */
  private endpoints(domain: string): Endpoint[] {
    const own: Endpoint = { host: domain, mirror: false };
    if (domain !== 'docker.io') return [own];
    return [
      ...this.mirrors().map((m): Endpoint => {
        const u = new URL(m);
        return { host: u.host, scheme: u.protocol === 'http:' ? 'http' : 'https', mirror: true };
      }),
      own,
    ];
  }

  /**
   * A client for one endpoint. With `auth` (a request's X-Registry-Auth), a client of its
   * own that holds those credentials only, closed after the call: nothing is kept. Without,
   * the engine's shared client (token caches, connection pools), with the stored credentials
   * — docker.io's for a mirror of docker.io, as dockerd sends them.
   */
  private async endpointClient(ep: Endpoint, auth: AuthConfig | undefined): Promise<{ client: RegistryClient; release(): Promise<void> }> {
    const { RegistryClient } = await import('../registry/index.js');
    const base = {
      host: ep.host,
      insecureRegistries: ep.scheme === 'http' ? [...this.insecure(), ep.host] : this.insecure(),
      ...(ep.scheme ? { scheme: ep.scheme } : {}),
      ...(this.options.certsDir ? { certsDir: this.options.certsDir } : {}),
      // a mirror that fails is left for the next endpoint soon, as dockerd does
      ...(ep.mirror ? { retry: { retries: 1 } } : {}),
    };
    if (auth) {
      const client = new RegistryClient({ ...base, credentials: credentialsOf(auth) });
      return { client, release: () => client.close() };
    }
    const key = `${ep.scheme ?? ''}//${ep.host}`;
    let client = this.clients.get(key);
    if (!client) {
      const store = await this.credentials();
      client = new RegistryClient({ ...base, credentials: ep.mirror ? { get: (_r: string, o?: { signal?: AbortSignal }) => store.get('docker.io', o) } : store });
      this.clients.set(key, client);
    }
    return { client, release: async () => {} };
  }

  /** One client per registry host for the life of the engine (token caches, connection pools). */
  async registry(domain: string): Promise<RegistryClient> {
    return (await this.endpointClient({ host: domain, mirror: false }, undefined)).client;
  }

  /**
   * Runs `fn` against each endpoint of `domain` in turn until one succeeds: a mirror that
   * fails (unreachable, an error answer, the image missing, a broken blob) hands over to the
   * next endpoint, as dockerd falls back. A cancellation or a local storage error ends it at
   * once; the last endpoint's error is the one reported.
   */
  private async withEndpoints<T>(domain: string, auth: AuthConfig | undefined, signal: AbortSignal | undefined, fn: (c: RegistryClient, ep: Endpoint) => Promise<T>): Promise<T> {
    const eps = this.endpoints(domain);
    for (const [i, ep] of eps.entries()) {
      const { client, release } = await this.endpointClient(ep, auth);
      try {
        return await fn(client, ep);
      } catch (e) {
        const last = i === eps.length - 1;
        if (last || signal?.aborted || isEngineError(e, 'cancelled') || storageError(e)) throw e;
        trace(`registry: mirror ${ep.host} failed (${(e as Error).message}); trying the next endpoint`);
      } finally {
        await release();
      }
    }
    throw new EngineError('internal', 'NO_ENDPOINT', `no endpoint for ${domain}`);
  }

  async pull(
    name: string,
    opts: { platform?: Platform; concurrency?: number; auth?: AuthConfig; onEvent?: (e: PullEvent) => void; warn?: (m: string) => void; signal?: AbortSignal } = {},
  ): Promise<PullResult> {
    this.space.require(`cannot pull ${name}`);
    await this.repair();
    const { pullImage } = await import('../image/pull.js');
    const ref = parseReference(name);
    const { auth, ...rest } = opts;
    return this.storing(`cannot pull ${name}`, () =>
      this.withEndpoints(ref.domain, auth, opts.signal, (client) => pullImage({ images: this.images, layers: this.layers, client: () => client }, name, { ...rest, maxLayerBytes: this.options.maxLayerBytes })),
    );
  }

  /** Runs a command that stores data: a full disk or an I/O error is reported on the store's path. */
  private async storing<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw storageError(e, this.root, what) ?? e;
    }
  }

  /** Pushes to the registry itself (never to a mirror, as dockerd). */
  async push(name: string, opts: { compression?: 'gzip' | 'zstd'; auth?: AuthConfig; onEvent?: (e: PushEvent) => void; signal?: AbortSignal } = {}): Promise<{ digest: Digest; size: number }> {
    const { pushImage } = await import('../image/push.js');
    const { auth, ...rest } = opts;
    const { client, release } = await this.endpointClient({ host: parseReference(name).domain, mirror: false }, auth);
    try {
      return await pushImage({ images: this.images, client: () => client }, name, rest);
    } finally {
      await release();
    }
  }

  async listTags(name: string, opts: { auth?: AuthConfig; signal?: AbortSignal } = {}): Promise<string[]> {
    const ref = parseReference(name);
    return this.withEndpoints(ref.domain, opts.auth, opts.signal, (c) => c.listTags(ref.path, { signal: opts.signal }));
  }

  /**
   * Checks credentials against the registry (an authenticated GET /v2/), storing nothing.
   * Fails with Docker's words: `login attempt to https://host/v2/ failed with status: 401 Unauthorized`.
   */
  async verifyLogin(server: string, creds: Credentials, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const { RegistryClient } = await import('../registry/index.js');
    const client = new RegistryClient({ host: server, credentials: creds, insecureRegistries: this.insecure(), ...(this.options.certsDir ? { certsDir: this.options.certsDir } : {}) });
    try {
      await client.verifyCredentials({ signal: opts.signal });
    } catch (e) {
      if (isEngineError(e, 'unauthorized') || isEngineError(e, 'forbidden')) {
        const url = await client.ping().then((p) => p.url, () => `https://${server}/`);
        throw new EngineError('unauthorized', 'LOGIN_FAILED', `login attempt to ${url}v2/ failed with status: 401 Unauthorized`, { cause: e, where: server, hint: 'check the user name and password' });
      }
      throw e;
    } finally {
      await client.close();
    }
  }

  /** Checks credentials against the registry, then stores them (0600, Docker's format). */
  async login(server: string, username: string, password: string): Promise<void> {
    await this.verifyLogin(server, { username, password });
    await (await this.credentials()).store(server, { username, password });
  }

  /** Returns false when there were no credentials for the server. */
  async logout(server: string): Promise<boolean> {
    const creds = await this.credentials();
    const had = (await creds.get(server)) !== undefined;
    if (had) await creds.erase(server);
    return had;
  }

  get tmpDir(): string {
    return join(this.root, 'tmp');
  }

  /** Crash repair before writing: sweep half-written blobs, dead processes' snapshots, orphan layers, interrupted container creations and removals. */
  async repair(): Promise<void> {
    if (this.repaired) return;
    this.repaired = true;
    await this.content.sweep();
    await this.snapshots.sweep();
    // a create or rm killed midway: its record says so (the container machinery finishes it)
    if (this.db.prepare("SELECT 1 FROM containers WHERE status IN ('creating', 'removing') LIMIT 1").get()) await (await this.containers()).sweep();
    await this.layers.sweep();
    // files written temp-then-rename by processes killed before the rename
    const { sweepTempFiles } = await import('../sys/fsutil.js');
    const { procStart: alive } = await import('../sys/proc.js');
    sweepTempFiles(join(this.root, 'network'), (pid) => alive(pid) !== undefined, 3);
    sweepTempFiles(join(this.root, 'locks'), (pid) => alive(pid) !== undefined);
    // temporary files: a tar-split belongs to a temporary snapshot (gone if its process
    // died: swept above); a spooled archive carries its writer's pid
    const { procStart } = await import('../sys/proc.js');
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const key = /^(.*)\.tarsplit$/.exec(name)?.[1];
      if (key !== undefined) {
        if (!this.snapshots.stat(key)) await rm(join(this.tmpDir, name), { force: true });
        continue;
      }
      const pid = Number(/^[a-z]+-(\d+)-/.exec(name)?.[1]);
      if (Number.isFinite(pid) && pid !== process.pid && procStart(pid) === undefined) await rm(join(this.tmpDir, name), { recursive: true, force: true });
    }
  }

  /**
   * Repairs what crashes leave, then verifies every blob, layer and image, and looks for
   * what no record explains: partial copies in snapshot directories, snapshots, directories
   * and mounts of containers that do not exist. With `repair` those are removed too.
   */
  async check(opts: { repair?: boolean } = {}): Promise<CheckReport> {
    if (opts.repair) this.space.forFreeing();
    await this.repair();
    const report = await checkStore(this.content, this.snapshots, this.images);
    const cm = await this.containers();
    const orphans = await cm.orphans();
    const leftovers = this.snapshots.leftovers().filter((l) => !cm.isBusySnapshot(l.key));
    // layers nothing uses (a pull killed before its image was recorded, an rmi killed midway)
    // are no inconsistency, only space: --repair (like rmi and prune) gives it back
    if (opts.repair) for (const l of await this.layers.unused({ remove: true })) report.repaired.push(`removed layer ${l}, which no image or container uses`);
    if (!opts.repair) {
      for (const o of orphans) report.problems.push(`container ${o.id}: ${o.what.join(', ')} without a container record`);
      for (const l of leftovers) report.problems.push(`${l.path}: ${l.key ? `not part of snapshot ${l.key} (a partial copy)` : 'a snapshot directory without a record'}`);
      return report;
    }
    for (const o of orphans) {
      try {
        await cm.removeOrphan(o.id);
        report.repaired.push(`removed the leftovers of container ${o.id}: ${o.what.join(', ')}`);
      } catch (e) {
        report.problems.push(`container ${o.id}: cannot remove ${o.what.join(', ')}: ${(e as Error).message}`);
      }
    }
    for (const l of leftovers) {
      try {
        await this.snapshots.removeLeftover(l.path);
        report.repaired.push(`removed ${l.path}`);
      } catch (e) {
        report.problems.push(`${l.path}: cannot remove: ${(e as Error).message}`);
      }
    }
    return report;
  }

  // ------------------------------------------------------------------ images

  resolveImage(name: string): ImageRecord {
    return this.images.resolve(name).image;
  }

  async load(input: { path?: string; stream?: Readable }, opts: { onEvent?: (e: LoadEvent) => void; warn?: (m: string) => void; signal?: AbortSignal } = {}): Promise<LoadedImage[]> {
    this.space.require('cannot load images');
    await this.repair();
    const loaded = await this.storing('cannot load images', () => loadImages({ images: this.images, layers: this.layers, tmpDir: this.tmpDir }, input, { ...opts, maxLayerBytes: this.options.maxLayerBytes }));
    for (const img of loaded) this.imageEvent(img.id, img.id, 'load');
    return loaded;
  }

  async import(
    input: { path?: string; stream?: Readable },
    opts: { reference?: string; changes?: string[]; message?: string; platform?: string; onEvent?: (e: LayerEvent) => void; signal?: AbortSignal } = {},
  ): Promise<{ id: Digest; tag?: string }> {
    const ref = opts.reference ? parseRepositoryTag(opts.reference) : undefined;
    this.space.require('cannot import the image');
    await this.repair();
    const { parsePlatform } = await import('../image/platform.js');
    const r = await this.storing('cannot import the image', () => importImage(this.images, this.layers, input, {
      ...(ref ? { ref } : {}),
      changes: opts.changes ?? [],
      message: opts.message,
      sourceName: input.path ?? '-',
      maxLayerBytes: this.options.maxLayerBytes,
      onEvent: opts.onEvent,
      signal: opts.signal,
      ...(opts.platform ? { platform: parsePlatform(opts.platform) } : {}),
    }));
    if (r.tag) this.imageEvent(r.id, familiar(r.tag), 'tag');
    this.imageEvent(r.id, r.id, 'import');
    return r;
  }

  async save(names: string[], out: { path?: string; stream?: Writable }, opts: { format?: SaveFormat; signal?: AbortSignal } = {}): Promise<void> {
    if (names.length === 0) throw invalidArgument('SAVE_NO_IMAGES', '"save" requires at least 1 argument.');
    const items: { image: ImageRecord; refs: ImageRef[] }[] = [];
    for (const n of names) {
      const { image, ref } = this.images.resolve(n);
      const existing = items.find((i) => i.image.id === image.id);
      const refs = ref && !ref.digest ? [ref] : [];
      if (existing) existing.refs.push(...refs);
      else items.push({ image, refs });
    }
    await saveImages(this.images, items, out, { format: opts.format ?? 'docker-archive', signal: opts.signal });
    for (const i of items) this.imageEvent(i.image.id, i.image.id, 'save');
  }

  async inspectImage(name: string): Promise<Record<string, unknown>> {
    const img = this.resolveImage(name);
    const cfg = await this.images.config(img.id);
    const last = (this.db.prepare('SELECT MAX(created) AS t FROM tags WHERE image_id = ?').get(img.id) as { t: string | null }).t;
    return inspectImage(this.images, this.snapshots, img, cfg, { parent: img.parent ?? '', ...(last ? { lastTagTime: last } : {}) });
  }

  async imageConfig(name: string): Promise<ImageConfig> {
    return this.images.config(this.resolveImage(name).id);
  }

  async history(name: string): Promise<HistoryRow[]> {
    const img = this.resolveImage(name);
    return imageHistory(this.images, img, await this.images.config(img.id));
  }

  tag(source: string, target: string, tag?: string): void {
    const img = this.resolveImage(source);
    const ref = parseRepositoryTag(target, tag);
    this.images.tag(img.id, ref);
    this.imageEvent(img.id, ref.familiarString(), 'tag');
  }

  /** An image event with the image's labels (Docker's LogImageEvent). Never fails. */
  imageEvent(id: string, name: string, action: string, image = id): void {
    let labels: Record<string, string> | null | undefined;
    try {
      // a config is small: read at once, so that the event is logged before the command ends
      const cfg = JSON.parse(readFileSync(this.content.path(this.resolveImage(image).id), 'utf8')) as ImageConfig;
      labels = cfg.config?.Labels;
    } catch {
      /* gone (delete) or not an image here */
    }
    this.events.image(id, name, action, labels);
  }

  /** Image ID by every familiar reference of every image (for the untag events of a removal). */
  private referenceIndex(): { refs: Map<string, string>; ids: Set<string> } {
    const refs = new Map<string, string>();
    const ids = new Set<string>();
    for (const img of this.images.list()) {
      ids.add(img.id);
      for (const t of img.tags) refs.set(familiar(t), img.id);
      for (const d of img.repoDigests) {
        let repo = d.repo;
        try {
          repo = parseReference(d.repo).familiarName;
        } catch {
          /* as stored */
        }
        refs.set(`${repo}@${d.digest}`, img.id);
      }
    }
    return { refs, ids };
  }

  /** untag and delete events for what a removal did (Docker names the image by its ID in both). */
  private removalEvents(events: RemoveEvent[], before: { refs: Map<string, string>; ids: Set<string> }): void {
    for (const e of events) {
      if ('Untagged' in e) {
        const id = before.refs.get(e.Untagged);
        if (id) this.events.image(id, id, 'untag');
      } else if (before.ids.has(e.Deleted)) this.events.image(e.Deleted, e.Deleted, 'delete');
    }
  }

  // ------------------------------------------------------------------ containers

  private containerManager: ContainerManager | undefined;

  /** Containers (loaded on first use: image-only commands never load the runtime). */
  async containers(): Promise<ContainerManager> {
    if (!this.containerManager) {
      const { ContainerManager } = await import('../container/manager.js');
      this.containerManager ??= new ContainerManager({
        db: this.db,
        root: this.root,
        images: this.images,
        snapshots: this.snapshots,
        // the door pulls (images.ensure) before it creates: create itself never does
        resolveImage: async (n) => this.resolveImage(n),
        exitCommand: (root, id) => ({ path: process.execPath, args: [EXIT_HOOK, root, id] }),
        healthMonitor: (root, id, startedAt) => spawnDetached(process.execPath, [HEALTH_MONITOR, root, id, startedAt]),
        space: this.space,
        events: this.events,
      });
    }
    return this.containerManager;
  }

  /** `diff` reads the container's upper dir (over the layer of its last commit) against its image: no runtime needed. */
  async diff(container: string) {
    const { overlayChanges } = await import('../archive/changes.js');
    const { withChanges } = await import('../snapshot/merge.js');
    const c = new ContainerStore(this.db).resolve(container);
    const m = this.snapshots.mounts(c.snapshot)[0];
    if (this.snapshots.name !== 'overlay' || !m || m.type !== 'overlay' || !m.upper) {
      throw new EngineError('unsupported', 'DIFF_NEEDS_OVERLAY', 'diff reads the container\'s overlay upper directory; this store uses the vfs driver');
    }
    return withChanges(this.snapshots.stack(c.snapshot), this.tmpDir, (dir, lowers) => overlayChanges(dir, lowers));
  }

  async commit(container: string, opts: { author?: string; message?: string; changes?: string[]; pause?: boolean; reference?: string; config?: import('../oci/types.js').ContainerConfig } = {}) {
    await this.repair();
    const { commitContainer } = await import('../container/commit.js');
    const cm = await this.containers();
    const c = cm.store.resolve(container);
    const r = await commitContainer({ images: this.images, snapshots: this.snapshots, containers: cm, tmpDir: this.tmpDir, space: this.space }, container, opts);
    if (r.tag) this.imageEvent(r.id, r.tag, 'tag');
    cm.event(cm.store.get(c.id) ?? c, 'commit', { comment: opts.message ?? '', imageID: r.id, imageRef: r.tag ?? '' });
    return r;
  }

  /** Which container uses an image (rmi conflicts). */
  imageUsage: ImageUsage = {
    container: (id) => {
      if (!this.hasContainers()) return undefined;
      const c = new ContainerStore(this.db).usingImage(id);
      return c ? { id: c.id, running: c.state.Running } : undefined;
    },
  };

  /** A stable ID of this store (Docker's daemon ID in `info`). */
  storeId(): string {
    let id = getSetting(this.db, 'store-id');
    if (!id) {
      id = randomUUID();
      setSetting(this.db, 'store-id', id);
    }
    return id;
  }

  hasAnyContainer(): boolean {
    return this.hasContainers();
  }

  private hasContainers(): boolean {
    return (this.db.prepare('SELECT 1 FROM containers LIMIT 1').get() as unknown) !== undefined;
  }

  private usage(): ImageUsage {
    return {
      container: (id) => this.imageUsage.container(id),
      beforeDelete: async (img) => {
        await this.imageMounts.unmount(img, true);
        await this.imageUsage.beforeDelete?.(img);
      },
    };
  }

  async removeImage(name: string, opts: { force?: boolean; noPrune?: boolean } = {}): Promise<RemoveEvent[]> {
    this.space.forFreeing();
    await this.repair();
    const before = this.referenceIndex();
    const events = await removeImage(this.images, name, this.usage(), opts);
    this.removalEvents(events, before);
    // and what an earlier rmi, killed between an image and its layers, left
    await this.layers.unused({ remove: true });
    return events;
  }

  async pruneImages(opts: { all?: boolean } = {}): Promise<{ events: RemoveEvent[]; reclaimed: number }> {
    this.space.forFreeing();
    await this.repair();
    const before = this.referenceIndex();
    const r = await pruneImages(this.images, this.usage(), opts);
    this.removalEvents(r.events, before);
    await this.layers.unused({ remove: true });
    return r;
  }

  /** `system prune`: stopped containers, then dangling images (all unused ones with `all`), then unused anonymous or all unused volumes with `volumes`. */
  async systemPrune(opts: { all?: boolean; volumes?: boolean } = {}): Promise<{ containers: string[]; images: RemoveEvent[]; volumes: string[]; reclaimed: number }> {
    this.space.forFreeing();
    await this.repair();
    const cm = this.hasContainers() ? await this.containers() : undefined;
    const containers = cm ? (await cm.prune()).removed : [];
    const before = this.referenceIndex();
    const { events, reclaimed } = await pruneImages(this.images, this.usage(), opts);
    this.removalEvents(events, before);
    await this.layers.unused({ remove: true });
    const volumes = opts.volumes ? (await (cm ?? (await this.containers())).volumes.prune({ all: false })).removed : [];
    return { containers, images: events, volumes, reclaimed };
  }

  /** Images with their shared and unique bytes and how many containers (of any state) use each, as Docker counts them. */
  imagesDf(): ImagesDf {
    const counts = new Map<string, number>();
    if (this.hasContainers()) for (const r of this.db.prepare('SELECT image_id, COUNT(*) AS n FROM containers GROUP BY image_id').all() as { image_id: string; n: number }[]) counts.set(r.image_id, r.n);
    return imagesDf(this.images, (id) => counts.get(id) ?? 0);
  }

  async mountImage(name: string): Promise<string> {
    const img = this.resolveImage(name);
    return this.imageMounts.mount(img, (c) => this.layers.get(c)!.snapshot);
  }

  async unmountImage(name: string, opts: { force?: boolean } = {}): Promise<boolean> {
    const img = this.resolveImage(name);
    return this.imageMounts.unmount(img, opts.force);
  }
}
