/** Named and anonymous volumes (`volume create|ls|inspect|rm|prune`, `-v name:/path`). */
import { mkdirSync, readdirSync, existsSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DB } from '../metadata/db.js';
import { now } from '../metadata/db.js';
import { conflict, invalidArgument, notFound, storageError } from '../errors/index.js';
import { renameat2, RENAME_EXCHANGE } from '../sys/native.js';
import { removeTree } from '../sys/fsutil.js';
import { run } from '../sys/exec.js';
import type { EventLog } from '../metadata/events.js';

export interface Volume {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  Options: Record<string, string> | null;
  anonymous: boolean;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export class VolumeStore {
  readonly dir: string;

  constructor(
    private readonly db: DB,
    root: string,
    /** where volume create and destroy events go */
    private readonly events?: EventLog,
  ) {
    this.dir = join(root, 'volumes');
  }

  private row(name: string): { name: string; created: string; labels: string; anonymous: number } | undefined {
    return this.db.prepare('SELECT * FROM volumes WHERE name = ?').get(name) as { name: string; created: string; labels: string; anonymous: number } | undefined;
  }

  private toVolume(r: { name: string; created: string; labels: string; anonymous: number }): Volume {
    return { Name: r.name, Driver: 'local', Mountpoint: this.mountpoint(r.name), CreatedAt: r.created, Labels: JSON.parse(r.labels) as Record<string, string>, Scope: 'local', Options: null, anonymous: r.anonymous === 1 };
  }

  mountpoint(name: string): string {
    return join(this.dir, name, '_data');
  }

  /** Creates a volume (idempotent for an existing name, like Docker). */
  create(name?: string, labels: Record<string, string> = {}): Volume {
    const anonymous = !name;
    const n = name ?? randomBytes(32).toString('hex');
    if (!NAME_RE.test(n)) {
      throw invalidArgument('INVALID_VOLUME_NAME', `create ${n}: "${n}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    }
    const existing = this.row(n);
    if (existing) return this.toVolume(existing);
    mkdirSync(this.mountpoint(n), { recursive: true, mode: 0o755 });
    const made = this.db.prepare('INSERT OR IGNORE INTO volumes (name, created, labels, anonymous) VALUES (?, ?, ?, ?)').run(n, now(), JSON.stringify(labels), anonymous ? 1 : 0);
    if (made.changes === 1) this.events?.volume(n, 'create');
    return this.toVolume(this.row(n)!);
  }

  get(name: string): Volume {
    const r = this.row(name);
    if (!r) throw notFound('NO_SUCH_VOLUME', `get ${name}: no such volume`);
    return this.toVolume(r);
  }

  has(name: string): boolean {
    return this.row(name) !== undefined;
  }

  list(): Volume[] {
    return (this.db.prepare('SELECT * FROM volumes ORDER BY name').all() as { name: string; created: string; labels: string; anonymous: number }[]).map((r) => this.toVolume(r));
  }

  users(name: string): string[] {
    return (this.db.prepare('SELECT container_id FROM container_volumes WHERE volume = ?').all(name) as { container_id: string }[]).map((r) => r.container_id);
  }

  link(containerId: string, name: string, destination: string): void {
    this.db.prepare('INSERT OR REPLACE INTO container_volumes (container_id, volume, destination) VALUES (?, ?, ?)').run(containerId, name, destination);
  }

  async remove(name: string, opts: { force?: boolean } = {}): Promise<void> {
    const r = this.row(name);
    if (!r) {
      if (opts.force) return;
      throw notFound('NO_SUCH_VOLUME', `get ${name}: no such volume`);
    }
    const users = this.users(name);
    if (users.length) {
      throw conflict('VOLUME_IN_USE', `remove ${name}: volume is in use - [${users.join(', ')}]`);
    }
    this.db.prepare('DELETE FROM volumes WHERE name = ?').run(name);
    await removeTree(join(this.dir, name));
    this.events?.volume(name, 'destroy');
  }

  /** Removes unused volumes (anonymous ones only, unless `all`, as Docker 23+ does; 20.10 removed all unused). */
  async prune(opts: { all?: boolean } = {}): Promise<{ removed: string[]; reclaimed: number }> {
    const removed: string[] = [];
    let reclaimed = 0;
    for (const v of this.list()) {
      if (this.users(v.Name).length) continue;
      if (!opts.all && !v.anonymous) continue;
      reclaimed += sizeOf(this.mountpoint(v.Name));
      await this.remove(v.Name);
      removed.push(v.Name);
    }
    return { removed, reclaimed };
  }

  /**
   * Copies what the image has at the mount point into a new, empty volume (Docker does this
   * on first use). All or nothing: the copy goes to a directory beside the volume's data and
   * takes its place in one exchange, so a full disk midway leaves the volume empty, never
   * half filled (and the partial copy is removed).
   */
  async populate(name: string, sourceInRootfs: string | undefined): Promise<void> {
    const mp = this.mountpoint(name);
    if (!sourceInRootfs || !existsSync(sourceInRootfs)) return;
    if (readdirSync(mp).length > 0) return;
    const tmp = join(this.dir, name, '_data.populate');
    await removeTree(tmp);
    mkdirSync(tmp, { mode: 0o755 });
    try {
      // host cp on host paths: nothing from the container's file system is executed
      await run('cp', ['-a', '--no-dereference', sourceInRootfs + '/.', tmp + '/']);
      renameat2(tmp, mp, RENAME_EXCHANGE);
    } catch (e) {
      await removeTree(tmp).catch(() => {});
      throw storageError(e, mp, `cannot copy ${sourceInRootfs} into volume ${name}`) ?? e;
    }
    await removeTree(tmp);
  }

  /** Drops a container's use of a volume. */
  unlink(containerId: string, name: string): void {
    this.db.prepare('DELETE FROM container_volumes WHERE container_id = ? AND volume = ?').run(containerId, name);
  }
}

function sizeOf(dir: string): number {
  let n = 0;
  try {
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else n += lstatSync(p).size;
      }
    };
    walk(dir);
  } catch {
    /* gone */
  }
  return n;
}

