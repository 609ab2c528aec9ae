/**
 * The event log (`docker events`): one table of the metadata database that every layerbox
 * process appends to — the CLI, the API server, conmon's exit hook, the health monitors —
 * so that a stream in any process sees what all of them did. Rows are numbered (seq,
 * monotonic across processes: SQLite's AUTOINCREMENT) and timed in nanoseconds (microsecond
 * resolution). The writers keep the last EVENT_RETENTION events (dockerd keeps 256 in
 * memory); `since` reaches back that far.
 *
 * A reader tails the log by seq without holding the database: each look is one indexed
 * SELECT in its own implicit read transaction, done when the database's WAL changes (an
 * fs.watch on the -wal file, which every commit of any process writes) and at least every
 * POLL_MS otherwise. Appends in the same process wake readers at once.
 *
 * Logging an event never fails the operation that caused it: an event that cannot be
 * written (a full disk, a locked database) is dropped.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { DB } from './db.js';

/** Keep this many of the latest events. */
export const EVENT_RETENTION = 10_000;

/** How often readers look for events when no change of the database woke them. */
export const POLL_MS = 250;

export type EventType = 'container' | 'image' | 'volume' | 'network' | 'daemon' | 'plugin' | 'builder';

export interface LoggedEvent {
  seq: number;
  /** nanoseconds since the epoch (a multiple of 1000) */
  timeNano: bigint;
  type: string;
  action: string;
  /** Actor.ID */
  actor: string;
  attributes: Record<string, string>;
}

let lastMicros = 0;

/** The time now in microseconds since the epoch, strictly increasing within this process. */
export function nowMicros(): number {
  // Date.now() keeps to the wall clock (a long-lived server's performance clock drifts from
  // it); the microseconds within the millisecond come from the monotonic clock
  const us = Date.now() * 1000 + (Math.floor(performance.now() * 1000) % 1000);
  lastMicros = us > lastMicros ? us : lastMicros + 1;
  return lastMicros;
}

interface Row {
  seq: number | bigint;
  time_nano: bigint;
  type: string;
  action: string;
  actor: string;
  attributes: string;
}

const toLogged = (r: Row): LoggedEvent => {
  let attributes: Record<string, string> = {};
  try {
    attributes = JSON.parse(r.attributes) as Record<string, string>;
  } catch {
    /* a damaged row: no attributes */
  }
  return { seq: Number(r.seq), timeNano: r.time_nano, type: r.type, action: r.action, actor: r.actor, attributes };
};

/** What a container event says about the container (Docker's LogContainerEventWithAttributes). */
export interface ContainerActor {
  id: string;
  name: string;
  config: { Image?: string; Labels?: Record<string, string> | null };
}

/** What a network event says about the network (Docker's LogNetworkEventWithAttributes). */
export interface NetworkActor {
  id: string;
  name: string;
  /** the driver: bridge, host, null */
  type: string;
}

export class EventLog {
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private pending: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: DB,
    /** the database's -wal file, watched for commits of other processes */
    private readonly walPath?: string,
  ) {}

  /** Appends one event (never throws). */
  append(type: EventType, action: string, actor: string, attributes: Record<string, string> = {}): void {
    try {
      const r = this.db
        .prepare('INSERT INTO events (time_nano, type, action, actor, attributes) VALUES (?, ?, ?, ?, ?)')
        .run(BigInt(nowMicros()) * 1000n, type, action, actor, JSON.stringify(attributes));
      const seq = Number(r.lastInsertRowid);
      if (seq % 64 === 0) this.db.prepare('DELETE FROM events WHERE seq <= ?').run(seq - EVENT_RETENTION);
    } catch {
      return; // the operation stands; its event is lost
    }
    this.notify();
  }

  /**
   * A container event: the container's labels, then `image` (as named at create) and
   * `name`; `extra` (exitCode, signal, …) is overridden by labels of the same key, as Docker's.
   */
  container(c: ContainerActor, action: string, extra: Record<string, string> = {}): void {
    const attrs: Record<string, string> = { ...extra, ...(c.config.Labels ?? {}) };
    if (c.config.Image) attrs.image = c.config.Image;
    attrs.name = c.name.replace(/^\/+/, '');
    this.append('container', action, c.id, attrs);
  }

  /** An image event: `id` is the image ID (or, for pull and push, the reference), `name` a reference or the ID. */
  image(id: string, name: string, action: string, labels: Record<string, string> | null | undefined = {}): void {
    const attrs: Record<string, string> = { ...(labels ?? {}) };
    if (name) attrs.name = name;
    this.append('image', action, id, attrs);
  }

  /** A volume event (create, mount, unmount, destroy): `driver` plus what the action adds. */
  volume(name: string, action: string, extra: Record<string, string> = {}): void {
    this.append('volume', action, name, { driver: 'local', ...extra });
  }

  /** A network event (create, connect, disconnect, destroy): `name` and `type` plus `container` for connect/disconnect. */
  network(n: NetworkActor, action: string, extra: Record<string, string> = {}): void {
    this.append('network', action, n.id, { ...extra, name: n.name, type: n.type });
  }

  /** The seq of the latest event (0 when there is none). */
  lastSeq(): number {
    try {
      const r = this.db.prepare('SELECT MAX(seq) AS s FROM events').get() as { s: number | null };
      return r.s ?? 0;
    } catch {
      return 0;
    }
  }

  /** Events after `afterSeq`, oldest first, at most `limit`. */
  read(afterSeq: number, limit = 1000): LoggedEvent[] {
    const st = this.db.prepare('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?').safeIntegers(true);
    return (st.all(BigInt(afterSeq), BigInt(limit)) as Row[]).map(toLogged);
  }

  /** Past events up to seq `maxSeq`, timed at or after `sinceNano` and (when given) at or before `untilNano`, oldest first. */
  history(sinceNano: bigint, untilNano: bigint | undefined, maxSeq: number): LoggedEvent[] {
    const st = this.db
      .prepare(untilNano === undefined ? 'SELECT * FROM events WHERE seq <= ? AND time_nano >= ? ORDER BY seq' : 'SELECT * FROM events WHERE seq <= ? AND time_nano >= ? AND time_nano <= ? ORDER BY seq')
      .safeIntegers(true);
    const args: bigint[] = [BigInt(maxSeq), sinceNano];
    if (untilNano !== undefined) args.push(untilNano);
    return (st.all(...args) as Row[]).map(toLogged);
  }

  /**
   * Calls `onChange` whenever new events may be there (an append here, a commit of another
   * process, or every POLL_MS). Returns the unsubscribe function. While anyone listens, the
   * poll timer keeps the process alive (a CLI `events` runs until interrupted).
   */
  subscribe(onChange: () => void): () => void {
    this.listeners.add(onChange);
    if (!this.timer) {
      this.timer = setInterval(() => this.notify(), POLL_MS);
      if (this.walPath) {
        try {
          this.watcher = watch(this.walPath, () => this.soon());
          this.watcher.on('error', () => {
            this.watcher?.close();
            this.watcher = undefined;
          });
        } catch {
          /* no WAL file yet: the poll covers it */
        }
      }
    }
    return () => {
      this.listeners.delete(onChange);
      if (this.listeners.size === 0) this.stopWatching();
    };
  }

  private stopWatching(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    clearTimeout(this.pending);
    this.pending = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** A change of the WAL: one look soon, however many writes there were meanwhile. */
  private soon(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.notify();
    }, 10);
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  close(): void {
    this.listeners.clear();
    this.stopWatching();
  }
}
