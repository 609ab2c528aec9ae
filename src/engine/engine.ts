/**
 * The engine: the one door every front (the CLI, the API server, the explorer) and every
 * TypeScript program uses. It opens a store and offers Docker's operations as services —
 * images, containers, volumes, system — that take and return values in the Engine API's
 * shapes (types.ts). The stores behind it are private (core.ts).
 */
import { Core, DEFAULT_ROOT, defaultRoot, type EngineOptions } from './core.js';
import { Build } from './build.js';
import { Analysis } from './analyze.js';
import { Containers } from './containers.js';
import { Images } from './images.js';
import { Networks } from './networks.js';
import { System } from './system.js';
import { Volumes } from './volumes.js';
import type { AuthConfig, AuthResponse } from './types.js';
import { eventStream, type EventsOptions } from './events.js';
import type { EngineEvent } from './types.js';

export { DEFAULT_ROOT, defaultRoot, type EngineOptions };

/** `https://index.docker.io/v1/` → docker.io, `http://host:5000/v2/` → host:5000 (Docker's ConvertToHostname). */
function registryHost(server: string): string {
  const h = server.trim().replace(/^https?:\/\//, '').split('/')[0]!.toLowerCase();
  return h === 'index.docker.io' || h === 'registry-1.docker.io' || h === 'registry.hub.docker.com' ? 'docker.io' : h;
}

export class Engine implements AsyncDisposable {
  readonly images: Images;
  readonly containers: Containers;
  readonly volumes: Volumes;
  readonly networks: Networks;
  readonly system: System;
  readonly build: Build;
  /** What images' layers hold and cost (image analyze, the explorer). */
  readonly analysis: Analysis;

  private constructor(private readonly core: Core) {
    this.images = new Images(core);
    this.containers = new Containers(core);
    this.volumes = new Volumes(core);
    this.networks = new Networks(core);
    this.system = new System(core, this.images, this.containers, this.volumes);
    this.build = new Build(core);
    this.analysis = new Analysis(core);
  }

  /** Opens (creating if needed) the store at `root` (default $LAYERBOX_ROOT or /var/lib/layerbox). */
  static async open(opts: EngineOptions = {}): Promise<Engine> {
    return new Engine(await Core.open(opts));
  }

  /** The store's root directory. */
  get root(): string {
    return this.core.root;
  }

  /** overlay or vfs */
  get storageDriver(): string {
    return this.core.snapshots.name;
  }

  /**
   * Docker's event stream (GET /events): what every process on this store did — the CLI,
   * the API server, the exit hooks and health monitors. With `since`/`until` the past
   * events of that window first; live events follow unless `until` is past, until `until`
   * or until the signal aborts.
   */
  events(opts: EventsOptions = {}): AsyncGenerator<EngineEvent> {
    return eventStream(this.core.events, opts);
  }

  /** Checks credentials against the registry, then stores them (0600, Docker's config.json format). */
  async login(server: string, username: string, password: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    void opts;
    await this.core.login(server, username, password);
  }

  /**
   * POST /auth: checks credentials against the registry (default Docker Hub) and stores
   * nothing — the client keeps them, as with dockerd. A refusal is an `unauthorized` error
   * in Docker's words.
   */
  async checkAuth(config: AuthConfig, opts: { signal?: AbortSignal } = {}): Promise<AuthResponse> {
    const server = registryHost(config.serveraddress || 'https://index.docker.io/v1/');
    await this.core.verifyLogin(server, { ...(config.username ? { username: config.username } : {}), ...(config.password ? { password: config.password } : {}), ...(config.identitytoken ? { identityToken: config.identitytoken } : {}) }, opts);
    return { Status: 'Login Succeeded', IdentityToken: '' };
  }

  /** Returns false when there were no credentials for the server. */
  async logout(server: string): Promise<boolean> {
    return this.core.logout(server);
  }

  /** Closes registry connections and the database. */
  close(): void {
    this.core.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
