/** overlayfs snapshotter: one directory per layer, stacked by the kernel. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { notFound } from '../errors/index.js';
import { Snapshotter, type Mount } from './snapshotter.js';

export class OverlaySnapshotter extends Snapshotter {
  readonly name = 'overlay' as const;
  readonly independentLayers = true;

  protected async populate(r: { id: number }, parent: string | undefined): Promise<void> {
    if (parent) mkdirSync(join(this.idDir(r.id), 'work'), { mode: 0o700 });
  }

  mounts(key: string): Mount[] {
    const r = this.row(key);
    if (!r || r.kind === 'removing') throw notFound('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
    const fs = (id: number) => join(this.idDir(id), 'fs');
    if (r.kind === 'view') {
      const lowers = this.chain(r.parent!).map((x) => fs(x.id));
      return lowers.length === 1 ? [{ type: 'bind', source: lowers[0]!, readonly: true }] : [{ type: 'overlay', lowers, readonly: true }];
    }
    if (r.kind === 'committed') {
      const lowers = this.chain(key).map((x) => fs(x.id));
      return lowers.length === 1 ? [{ type: 'bind', source: lowers[0]!, readonly: true }] : [{ type: 'overlay', lowers, readonly: true }];
    }
    // active: upper dir, the committed layer it continues on (after a commit), the parent chain
    if (!r.parent) return [{ type: 'bind', source: fs(r.id), readonly: false }];
    const lowers = this.chain(r.parent).map((x) => fs(x.id));
    if (r.lower) {
      const l = this.row(r.lower);
      if (!l || l.kind !== 'committed') throw notFound('SNAPSHOT_NOT_FOUND', `snapshot ${r.lower} does not exist`, { hint: 'the store is missing a layer; run layerbox system check' });
      lowers.unshift(fs(l.id));
    }
    return [{ type: 'overlay', lowers, upper: fs(r.id), work: join(this.idDir(r.id), 'work'), readonly: false }];
  }
}
