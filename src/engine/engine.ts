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
import { System } from './system.js';
import { Volumes } from './volumes.js';
import { eventStream, type EventsOptions } from './events.js';
import type { EngineEvent } from './types.js';

export { DEFAULT_ROOT, defaultRoot, type EngineOptions };

export class Engine implements AsyncDisposable {
  readonly images: Images;
  readonly containers: Containers;
  readonly volumes: Volumes;
  readonly system: System;
  readonly build: Build;
  /** What images' layers hold and cost (image analyze, the explorer). */
  readonly analysis: Analysis;

  private constructor(private readonly core: Core) {
    this.images = new Images(core);
    this.containers = new Containers(core);
    this.volumes = new Volumes(core);
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
