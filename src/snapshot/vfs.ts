/**
 * The copying fallback for hosts without overlayfs (Docker calls it "vfs"): every
 * snapshot is a full copy of its parent plus its own changes. Correct everywhere, costly
 * in disk; layers must be applied in order.
 */
import { join } from 'node:path';
import { notFound } from '../errors/index.js';
import { Snapshotter, copyTree, type Mount } from './snapshotter.js';

export class VfsSnapshotter extends Snapshotter {
  readonly name = 'vfs' as const;
  readonly independentLayers = false;

  protected async populate(r: { id: number }, parent: string | undefined): Promise<void> {
    if (parent) await copyTree(this.fsDir(parent), join(this.idDir(r.id), 'fs'));
  }

  mounts(key: string): Mount[] {
    const r = this.row(key);
    if (!r || r.kind === 'removing') throw notFound('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
    if (r.kind === 'view') return [{ type: 'bind', source: this.fsDir(r.parent!), readonly: true }];
    return [{ type: 'bind', source: join(this.idDir(r.id), 'fs'), readonly: r.kind === 'committed' }];
  }
}
