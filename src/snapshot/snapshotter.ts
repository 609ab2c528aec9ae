/**
 * Snapshotters, in containerd's vocabulary: `prepare` makes an active (writable) snapshot
 * on top of a committed parent, `view` a read-only one, `commit` freezes an active one
 * under a name, `remove` deletes one that has no children, `mounts` returns how to see a
 * snapshot as a root file system — as data; mounting is the caller's move (mount.ts).
 *
 * Directories are `<root>/snapshots/<n>/fs` (+ `work` for overlay), `n` a small integer so
 * overlay option strings stay short. State lives in the `snapshots` table; a snapshot
 * being filled by a process records that process and is swept when it dies.
 */
import { mkdirSync, chmodSync, rmSync, renameSync, existsSync, readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { conflict, EngineError, failedPrecondition, notFound } from '../errors/index.js';
import type { DB } from '../metadata/db.js';
import { now } from '../metadata/db.js';
import { isAlive, selfId } from '../sys/proc.js';
import { run } from '../sys/exec.js';
import { removeTree } from '../sys/fsutil.js';

export type SnapshotKind = 'active' | 'view' | 'committed';

export interface SnapshotInfo {
  id: number;
  key: string;
  parent: string | undefined;
  kind: SnapshotKind;
  created: string;
  labels: Record<string, string>;
}

export interface Mount {
  type: 'overlay' | 'bind';
  /** bind: the source directory */
  source?: string;
  /** overlay: lower dirs, top-most first */
  lowers?: string[];
  upper?: string;
  work?: string;
  readonly: boolean;
}

export interface PrepareOptions {
  labels?: Record<string, string>;
  /** Owned by this process until committed: swept if the process dies first. */
  temporary?: boolean;
}

interface Row {
  id: number;
  key: string;
  parent: string | null;
  kind: string;
  owner_pid: number | null;
  owner_start: number | null;
  labels: string;
  created: string;
  /** active snapshots: a committed snapshot stacked between the upper dir and the parent chain */
  lower: string | null;
}

/** How an active overlay snapshot is stacked: its upper dir, the committed layer it continues on, the parent chain. */
export interface Stack {
  upper: string;
  work: string;
  /** the directory of the committed layer right below the upper dir (snapshots.lower), if any */
  lower?: string;
  /** the key of that layer */
  lowerKey?: string;
  /** the parent chain's directories, top-most first */
  lowers: string[];
}

export abstract class Snapshotter {
  abstract readonly name: 'overlay' | 'vfs';
  /**
   * True when a layer can be unpacked into an empty directory without its parent
   * (overlay): layers of one image then unpack in parallel.
   */
  abstract readonly independentLayers: boolean;
  readonly dir: string;

  constructor(
    protected readonly db: DB,
    root: string,
  ) {
    this.dir = join(root, 'snapshots');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  protected row(key: string): Row | undefined {
    return this.db.prepare('SELECT * FROM snapshots WHERE key = ?').get(key) as Row | undefined;
  }

  private info(r: Row): SnapshotInfo {
    return { id: r.id, key: r.key, parent: r.parent ?? undefined, kind: r.kind as SnapshotKind, created: r.created, labels: JSON.parse(r.labels) as Record<string, string> };
  }

  stat(key: string): SnapshotInfo | undefined {
    const r = this.row(key);
    return r && r.kind !== 'removing' ? this.info(r) : undefined;
  }

  walk(): SnapshotInfo[] {
    return (this.db.prepare("SELECT * FROM snapshots WHERE kind != 'removing' ORDER BY id").all() as Row[]).map((r) => this.info(r));
  }

  /** Directory holding the snapshot's files (the overlay upper dir of an active one). */
  fsDir(key: string): string {
    const r = this.row(key);
    if (!r || r.kind === 'removing') throw notFound('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
    return join(this.dir, String(r.id), 'fs');
  }

  protected idDir(id: number): string {
    return join(this.dir, String(id));
  }

  /** The chain of committed snapshots from `key` down to the base: [key, parent, …]. */
  chain(key: string): Row[] {
    const out: Row[] = [];
    let k: string | null = key;
    while (k) {
      const r = this.row(k);
      if (!r || r.kind === 'removing') throw notFound('SNAPSHOT_NOT_FOUND', `snapshot ${k} does not exist`, { hint: 'the store is missing a layer; remove the image and load or pull it again' });
      out.push(r);
      k = r.parent;
      if (out.length > 1000) throw new EngineError('internal', 'SNAPSHOT_CYCLE', 'snapshot chain too long or cyclic');
    }
    return out;
  }

  private insert(key: string, parent: string | undefined, kind: SnapshotKind, opts: PrepareOptions): Row {
    const me = selfId();
    const tx = this.db.transaction(() => {
      if (parent) {
        const p = this.row(parent);
        if (!p || p.kind !== 'committed') {
          throw failedPrecondition('SNAPSHOT_PARENT', `parent snapshot ${parent} is not committed`);
        }
      }
      if (this.row(key)) throw conflict('SNAPSHOT_EXISTS', `snapshot ${key} already exists`);
      const info = this.db
        .prepare('INSERT INTO snapshots (key, parent, kind, owner_pid, owner_start, labels, created) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(key, parent ?? null, kind, opts.temporary ? me.pid : null, opts.temporary ? me.start : null, JSON.stringify(opts.labels ?? {}), now());
      return this.db.prepare('SELECT * FROM snapshots WHERE id = ?').get(info.lastInsertRowid) as Row;
    });
    return tx.immediate();
  }

  /** Creates an active snapshot. Returns its writable directory. */
  async prepare(key: string, parent?: string, opts: PrepareOptions = {}): Promise<string> {
    const r = this.insert(key, parent, 'active', opts);
    const d = this.idDir(r.id);
    try {
      rmSync(d, { recursive: true, force: true }); // leftovers of a crashed run with a reused id
      mkdirSync(join(d, 'fs'), { recursive: true, mode: 0o755 });
      chmodSync(join(d, 'fs'), 0o755);
      await this.populate(r, parent);
    } catch (e) {
      this.db.prepare('DELETE FROM snapshots WHERE id = ?').run(r.id);
      rmSync(d, { recursive: true, force: true });
      throw e;
    }
    return join(d, 'fs');
  }

  /** A read-only snapshot of `parent` (no writable layer). */
  async view(key: string, parent: string, opts: PrepareOptions = {}): Promise<void> {
    const r = this.insert(key, parent, 'view', opts);
    mkdirSync(this.idDir(r.id), { recursive: true, mode: 0o700 });
  }

  /** Snapshotter-specific filling of a new active snapshot (vfs copies the parent). */
  protected abstract populate(r: Row, parent: string | undefined): Promise<void>;

  abstract mounts(key: string): Mount[];

  /**
   * Freezes an active snapshot under `name`. `parent` may be given here for snapshots
   * prepared without one (overlay layers unpacked in parallel).
   */
  commit(name: string, key: string, opts: { parent?: string; labels?: Record<string, string> } = {}): void {
    const tx = this.db.transaction(() => {
      const r = this.row(key);
      if (!r || r.kind !== 'active') throw notFound('SNAPSHOT_NOT_ACTIVE', `active snapshot ${key} does not exist`);
      if (this.row(name)) throw conflict('SNAPSHOT_EXISTS', `snapshot ${name} already exists`);
      let parent = r.parent;
      if (opts.parent !== undefined) {
        if (r.parent && r.parent !== opts.parent) throw failedPrecondition('SNAPSHOT_PARENT', `snapshot ${key} already has parent ${r.parent}`);
        const p = this.row(opts.parent);
        if (!p || p.kind !== 'committed') throw failedPrecondition('SNAPSHOT_PARENT', `parent snapshot ${opts.parent} is not committed`);
        parent = opts.parent;
      }
      const labels = { ...(JSON.parse(r.labels) as Record<string, string>), ...(opts.labels ?? {}) };
      this.db
        .prepare("UPDATE snapshots SET key = ?, parent = ?, kind = 'committed', owner_pid = NULL, owner_start = NULL, labels = ? WHERE id = ?")
        .run(name, parent, JSON.stringify(labels), r.id);
      return r.id;
    });
    const id = tx.immediate();
    rmSync(join(this.idDir(id), 'work'), { recursive: true, force: true });
  }

  /** Removes a snapshot without children: rename-then-remove, so a crash never leaves half a layer that looks whole. */
  async remove(key: string): Promise<void> {
    const tx = this.db.transaction(() => {
      const r = this.row(key);
      if (!r || r.kind === 'removing') throw notFound('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
      const children = this.db.prepare("SELECT COUNT(*) AS n FROM snapshots WHERE (parent = ? OR lower = ?) AND kind != 'removing'").get(key, key) as { n: number };
      if (children.n > 0) throw failedPrecondition('SNAPSHOT_HAS_CHILDREN', `cannot remove snapshot ${key}: ${children.n} snapshot(s) depend on it`);
      // free the key at once; the row stays as 'removing' until the directory is gone
      this.db.prepare("UPDATE snapshots SET kind = 'removing', key = ?, parent = NULL WHERE id = ?").run(`removing-${r.id}-${randomBytes(4).toString('hex')}`, r.id);
      return r.id;
    });
    const id = tx.immediate();
    await this.destroy(id);
  }

  private async destroy(id: number): Promise<void> {
    const d = this.idDir(id);
    if (existsSync(d)) {
      const grave = join(this.dir, `.trash-${id}-${randomBytes(4).toString('hex')}`);
      // unmount anything left beneath first; removeTree refuses to delete through a mount
      await removeTree(join(d, 'merged')).catch(() => {});
      try {
        renameSync(d, grave);
      } catch (e) {
        // another process finishing the same removal (a sweep) got there first
        if ((e as { code?: string }).code !== 'ENOENT') throw e;
      }
      await removeTree(grave);
    }
    this.db.prepare('DELETE FROM snapshots WHERE id = ?').run(id);
  }

  /**
   * Start-up repair: finish interrupted removals, drop temporary snapshots whose owner
   * died (never used as parents: they are not committed), delete trash.
   */
  async sweep(): Promise<void> {
    const rows = this.db.prepare("SELECT * FROM snapshots WHERE kind = 'removing' OR owner_pid IS NOT NULL").all() as Row[];
    for (const r of rows) {
      if (r.kind === 'removing') {
        await this.destroy(r.id);
        continue;
      }
      if (r.owner_pid !== null && !isAlive({ pid: r.owner_pid, start: r.owner_start ?? 0 })) {
        const children = this.db.prepare('SELECT COUNT(*) AS n FROM snapshots WHERE parent = ? OR lower = ?').get(r.key, r.key) as { n: number };
        if (children.n === 0) await this.remove(r.key).catch(() => {});
      }
    }
    // the directories first, then the rows: a snapshot being prepared has its row before its
    // directory, so no directory seen here belongs to a row made after the query
    const names = readdirSync(this.dir);
    const known = new Set((this.db.prepare('SELECT id FROM snapshots').all() as { id: number }[]).map((r) => String(r.id)));
    for (const name of names) {
      if (name.startsWith('.trash-')) await removeTree(join(this.dir, name));
      else if (/^\d+$/.test(name) && !known.has(name)) {
        // a directory whose row was never committed (crash between mkdir and insert rollback)
        const grave = join(this.dir, `.trash-${name}-${randomBytes(4).toString('hex')}`);
        renameSync(join(this.dir, name), grave);
        await removeTree(grave);
      }
    }
  }

  /** The committed snapshot an active one continues on (see setLower), if any. */
  lowerOf(key: string): string | undefined {
    return this.row(key)?.lower ?? undefined;
  }

  /**
   * Stacks the committed snapshot `lower` between the active snapshot `key`'s upper dir and
   * its parent chain (or removes it with undefined). `lower` must sit on a snapshot of that
   * chain: it holds changes relative to the same image (a commit of the container). Runs in
   * the caller's transaction if there is one.
   */
  setLower(key: string, lower: string | undefined): void {
    this.db.transaction(() => {
      const r = this.row(key);
      if (!r || r.kind !== 'active') throw notFound('SNAPSHOT_NOT_ACTIVE', `active snapshot ${key} does not exist`);
      if (lower !== undefined) {
        const l = this.row(lower);
        if (!l || l.kind !== 'committed') throw failedPrecondition('SNAPSHOT_PARENT', `snapshot ${lower} is not committed`);
        const chain = r.parent ? this.chain(r.parent).map((x) => x.key) : [];
        if (!l.parent || !chain.includes(l.parent)) {
          throw failedPrecondition('SNAPSHOT_PARENT', `snapshot ${lower} does not sit on the parent chain of ${key}`);
        }
      }
      this.db.prepare('UPDATE snapshots SET lower = ? WHERE id = ?').run(lower ?? null, r.id);
    })();
  }

  /** The layers of an active overlay snapshot, split: upper dir, the committed layer it continues on, the parent chain. */
  stack(key: string): Stack {
    const r = this.row(key);
    if (!r || r.kind !== 'active') throw notFound('SNAPSHOT_NOT_ACTIVE', `active snapshot ${key} does not exist`);
    const fs = (id: number) => join(this.idDir(id), 'fs');
    const lowers = r.parent ? this.chain(r.parent).map((x) => fs(x.id)) : [];
    const out: Stack = { upper: fs(r.id), work: join(this.idDir(r.id), 'work'), lowers };
    if (r.lower) {
      const l = this.row(r.lower);
      if (!l || l.kind !== 'committed') throw notFound('SNAPSHOT_NOT_FOUND', `snapshot ${r.lower} does not exist`, { hint: 'the store is missing a layer; run layerbox system check' });
      out.lower = fs(l.id);
      out.lowerKey = l.key;
    }
    return out;
  }

  /**
   * What a snapshot directory holds besides its own `fs` and `work` (partial copies of an
   * upper dir an interrupted command left, e.g. `fs.private`), and snapshot directories
   * no row knows. Paths, for `system check`.
   */
  leftovers(): { path: string; key?: string }[] {
    // directories first, then rows (see sweep); trash is a removal under way (sweep's)
    const names = readdirSync(this.dir).filter((n) => !n.startsWith('.trash-'));
    const known = new Map((this.db.prepare('SELECT id, kind, key FROM snapshots').all() as { id: number; kind: string; key: string }[]).map((r) => [String(r.id), r]));
    const out: { path: string; key?: string }[] = [];
    for (const name of names) {
      const d = join(this.dir, name);
      const r = /^\d+$/.test(name) ? known.get(name) : undefined;
      if (!r) {
        out.push({ path: d });
        continue;
      }
      if (r.kind === 'removing') continue;
      for (const e of readdirSync(d)) if (e !== 'fs' && e !== 'work' && e !== 'merged') out.push({ path: join(d, e), key: r.key });
    }
    return out;
  }

  /** Removes what leftovers() listed (rename-then-remove). */
  async removeLeftover(path: string): Promise<void> {
    if (!path.startsWith(this.dir + '/')) throw failedPrecondition('NOT_IN_STORE', `${path} is not in the snapshot directory`);
    const grave = join(this.dir, `.trash-x-${randomBytes(4).toString('hex')}`);
    await removeTree(join(path, 'merged')).catch(() => {});
    try {
      renameSync(path, grave);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return;
      throw e;
    }
    await removeTree(grave);
  }

  /** Apparent size of the snapshot's own files (regular files and symlinks, hard links once). */
  usage(key: string): { size: number; inodes: number } {
    return dirUsage(this.fsDir(key));
  }
}

export function dirUsage(root: string): { size: number; inodes: number } {
  let size = 0;
  let inodes = 0;
  const seen = new Set<number>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = d + '/' + name;
      const st = lstatSync(p);
      inodes++;
      if (st.isDirectory()) {
        walk(p);
        continue;
      }
      if (st.nlink > 1) {
        if (seen.has(st.ino)) continue;
        seen.add(st.ino);
      }
      if (st.isFile() || st.isSymbolicLink()) size += st.size;
    }
  };
  walk(root);
  return { size, inodes };
}

export async function copyTree(from: string, to: string): Promise<void> {
  // cp -a keeps owners, modes, times, xattrs, hard links, devices; reflinks where the fs can
  await run('cp', ['-a', '--reflink=auto', from + '/.', to + '/']);
}
