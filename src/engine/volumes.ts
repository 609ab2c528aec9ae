/** engine.volumes: local volumes in the Engine API's shapes (list, create, inspect, remove, prune). */
import { notFound } from '../errors/index.js';
import { VolumeStore, type Volume as StoredVolume } from '../container/volumes.js';
import { dirUsage } from '../snapshot/snapshotter.js';
import type { Core } from './core.js';
import { acceptFilters, boolFilter, labelMatch } from './filters.js';
import type { Filters, Volume, VolumeCreateBody, VolumePruneResponse } from './types.js';

export class Volumes {
  private store: VolumeStore | undefined;

  constructor(private readonly core: Core) {}

  /** Volumes need no runtime: the store is opened without the container machinery. */
  private vs(): VolumeStore {
    return (this.store ??= new VolumeStore(this.core.db, this.core.root, this.core.events));
  }

  private shape(v: StoredVolume, usage = false): Volume {
    const out: Volume = { CreatedAt: v.CreatedAt, Driver: v.Driver, Labels: v.Labels, Mountpoint: v.Mountpoint, Name: v.Name, Options: v.Options, Scope: v.Scope };
    if (usage) {
      let size = -1;
      try {
        size = dirUsage(v.Mountpoint).size;
      } catch {
        /* gone meanwhile */
      }
      out.UsageData = { Size: size, RefCount: this.vs().users(v.Name).length };
    }
    return out;
  }

  /** GET /volumes: filters dangling, name, label, driver. */
  list(opts: { filters?: Filters; usage?: boolean } = {}): Volume[] {
    const f = opts.filters ?? {};
    acceptFilters(f, ['dangling', 'name', 'label', 'driver']);
    const dangling = boolFilter(f, 'dangling');
    return this.vs()
      .list()
      .filter((v) => {
        if (dangling !== undefined && (this.vs().users(v.Name).length === 0) !== dangling) return false;
        if (f.name?.length && !f.name.some((n) => v.Name.includes(n))) return false;
        if (f.driver?.length && !f.driver.includes(v.Driver)) return false;
        if (f.label?.length && !f.label.every((l) => labelMatch(v.Labels, l))) return false;
        return true;
      })
      .map((v) => this.shape(v, opts.usage));
  }

  create(body: VolumeCreateBody = {}): Volume {
    if (body.Driver && body.Driver !== 'local') throw notFound('NO_SUCH_VOLUME_DRIVER', `error looking up volume plugin ${body.Driver}: plugin "${body.Driver}" not found`);
    const existed = !!body.Name && this.vs().has(body.Name);
    const v = this.vs().create(body.Name || undefined, body.Labels ?? {});
    // Docker logs a create for an existing name too (new ones are logged by the store)
    if (existed) this.core.events.volume(v.Name, 'create');
    return this.shape(v);
  }

  inspect(name: string): Volume {
    return this.shape(this.vs().get(name));
  }

  async remove(name: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.vs().remove(name, opts);
  }

  /** Unused volumes: anonymous ones, or every unused one with `all` (filter all=true). */
  async prune(opts: { filters?: Filters } = {}): Promise<VolumePruneResponse> {
    const f = opts.filters ?? {};
    acceptFilters(f, ['all', 'label']);
    const r = await this.vs().prune({ all: boolFilter(f, 'all') === true });
    return { VolumesDeleted: r.removed, SpaceReclaimed: r.reclaimed };
  }

  /** Containers linking a volume. */
  users(name: string): string[] {
    return this.vs().users(name);
  }
}
