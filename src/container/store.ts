/** Container rows in the metadata database. */
import type { DB } from '../metadata/db.js';
import { conflict, invalidArgument, notFound } from '../errors/index.js';
import type { ContainerRecord, ContainerState, HostConfig } from './types.js';
import type { ContainerConfig } from '../oci/types.js';

interface Row {
  id: string;
  name: string;
  image_id: string;
  image_name: string;
  snapshot: string;
  created: string;
  status: string;
  config: string;
  host_config: string;
  state: string;
}

const toRecord = (r: Row): ContainerRecord => ({
  id: r.id,
  name: r.name,
  imageId: r.image_id,
  imageName: r.image_name,
  snapshot: r.snapshot,
  created: r.created,
  config: JSON.parse(r.config) as ContainerConfig,
  hostConfig: JSON.parse(r.host_config) as HostConfig,
  state: JSON.parse(r.state) as ContainerState,
});

export class ContainerStore {
  constructor(private readonly db: DB) {}

  insert(c: ContainerRecord): void {
    try {
      this.db
        .prepare('INSERT INTO containers (id, name, image_id, image_name, snapshot, created, status, config, host_config, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(c.id, c.name, c.imageId, c.imageName, c.snapshot, c.created, c.state.Status, JSON.stringify(c.config), JSON.stringify(c.hostConfig), JSON.stringify(c.state));
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        const other = this.db.prepare('SELECT id FROM containers WHERE name = ?').get(c.name) as { id: string } | undefined;
        throw conflict('NAME_IN_USE', `Conflict. The container name "/${c.name}" is already in use by container "${other?.id ?? '?'}". You have to remove (or rename) that container to be able to reuse that name.`);
      }
      throw e;
    }
  }

  get(id: string): ContainerRecord | undefined {
    const r = this.db.prepare('SELECT * FROM containers WHERE id = ?').get(id) as Row | undefined;
    return r ? toRecord(r) : undefined;
  }

  /** By full ID, name, or unique ID prefix (Docker's lookup order). */
  resolve(ref: string): ContainerRecord {
    const name = ref.replace(/^\//, '');
    // a container being created is not there yet (Docker registers it once it is whole)
    let r = this.db.prepare("SELECT * FROM containers WHERE id = ? AND status != 'creating'").get(ref) as Row | undefined;
    r ??= this.db.prepare("SELECT * FROM containers WHERE name = ? AND status != 'creating'").get(name) as Row | undefined;
    if (!r && /^[0-9a-f]+$/.test(ref)) {
      const rows = this.db.prepare("SELECT * FROM containers WHERE id LIKE ? || '%' AND status != 'creating'").all(ref) as Row[];
      if (rows.length > 1) throw invalidArgument('AMBIGUOUS_ID', `multiple IDs found with provided prefix: ${ref}`);
      r = rows[0];
    }
    if (!r) throw notFound('NO_SUCH_CONTAINER', `No such container: ${ref}`);
    return toRecord(r);
  }

  /** Every container, newest first; `live`: only those that may be running (not created, exited or dead). */
  list(opts: { live?: boolean } = {}): ContainerRecord[] {
    const where = opts.live ? "status NOT IN ('creating', 'created', 'exited', 'dead')" : "status != 'creating'";
    return (this.db.prepare(`SELECT * FROM containers WHERE ${where} ORDER BY created DESC`).all() as Row[]).map(toRecord);
  }

  setState(id: string, state: ContainerState): void {
    this.db.prepare('UPDATE containers SET state = ?, status = ? WHERE id = ?').run(JSON.stringify(state), state.Status, id);
  }

  setConfig(id: string, config: ContainerConfig): void {
    this.db.prepare('UPDATE containers SET config = ? WHERE id = ?').run(JSON.stringify(config), id);
  }

  setHostConfig(id: string, hostConfig: HostConfig): void {
    this.db.prepare('UPDATE containers SET host_config = ? WHERE id = ?').run(JSON.stringify(hostConfig), id);
  }

  rename(id: string, name: string): void {
    try {
      this.db.prepare('UPDATE containers SET name = ? WHERE id = ?').run(name, id);
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        const other = this.db.prepare('SELECT id FROM containers WHERE name = ?').get(name) as { id: string } | undefined;
        throw conflict('NAME_IN_USE', `Error when allocating new name: Conflict. The container name "/${name}" is already in use by container "${other?.id ?? '?'}". You have to remove (or rename) that container to be able to reuse that name.`);
      }
      throw e;
    }
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM containers WHERE id = ?').run(id);
  }

  /** A container using the image (running ones first). */
  usingImage(imageId: string): ContainerRecord | undefined {
    const rows = (this.db.prepare('SELECT * FROM containers WHERE image_id = ?').all(imageId) as Row[]).map(toRecord);
    return rows.find((c) => c.state.Running) ?? rows[0];
  }
}
