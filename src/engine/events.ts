/**
 * engine.events(): Docker's event stream over the store's event log (metadata/events.ts),
 * which every layerbox process appends to. Docker's semantics (daemon/events and the
 * events route): with `since` or `until`, the past events in that window first (the log
 * keeps the last 10,000); with an `until` in the past, only those; else the live events
 * follow — until `until`, or until the signal aborts. Filters as Docker's events filter:
 * type, event (fuzzy for health_status, exec_create, exec_start), container, image (ID, name
 * and name without tag), volume, network, daemon, plugin, node, service, secret, config
 * (ID or name prefix), scope, label (all of them). The values of one key are ORed, keys ANDed.
 */
import { invalidArgument } from '../errors/index.js';
import { nowMicros, type EventLog, type LoggedEvent } from '../metadata/events.js';
import { parseReference } from '../oci/reference.js';
import type { EngineEvent, Filters } from './types.js';

export interface EventsOptions {
  filters?: Filters;
  /**
   * Past events from this time on: Docker's `sec[.nanos]`, or what the docker CLI accepts
   * (RFC 3339 dates and times, a duration before now such as `10m`), a number of unix
   * seconds, or a Date.
   */
  since?: string | number | Date;
  /** Stream until this time (the same forms); in the past: only past events. */
  until?: string | number | Date;
  signal?: AbortSignal;
}

// ------------------------------------------------------------------ timestamps (docker/api/types/time)

const DURATION_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds; undefined when `s` is no duration. */
function goDurationNs(s: string): number | undefined {
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest[0] === '-' ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  const re = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  let total = 0;
  while (rest.length) {
    const m = re.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * DURATION_NS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return sign * total;
}

const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?(Z|z|[+-]\d{2}:\d{2})?$/;

/**
 * The docker CLI's timetypes.GetTimestamp: a duration before `nowMs` (`10m`, `1h30m`; not
 * `0`), an RFC 3339 date or time (local time without a zone), or a unix timestamp as is.
 * Returns Docker's `seconds.nanoseconds` string (whole seconds for a duration).
 */
export function eventTimestamp(value: string, nowMs = Date.now()): string {
  const d = value !== '0' ? goDurationNs(value) : undefined;
  if (d !== undefined) return String(Math.floor((nowMs - d / 1e6) / 1000));
  const m = TIME_RE.exec(value);
  const inLocation = !(/[zZ+]/.test(value) || value.split('-').length - 1 === 3);
  if (m && !!m[8] === !inLocation && !(m[7] !== undefined && m[6] === undefined)) {
    const [y, mo, da, h = '0', mi = '0', se = '0'] = m.slice(1, 7).map((x) => x ?? undefined) as string[];
    const frac = (m[7] ?? '').padEnd(9, '0');
    // Go's time.Parse refuses a month, day or time out of range (no overflow into the next)
    const check = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(da), Number(h), Number(mi), Number(se)));
    const inRange = check.getUTCMonth() === Number(mo) - 1 && check.getUTCDate() === Number(da) && check.getUTCHours() === Number(h) && check.getUTCMinutes() === Number(mi) && check.getUTCSeconds() === Number(se);
    if (!inRange) throw invalidArgument('INVALID_TIMESTAMP', `parsing time ${JSON.stringify(value)}: out of range`);
    let ms: number;
    if (inLocation) ms = new Date(Number(y), Number(mo) - 1, Number(da), Number(h), Number(mi), Number(se)).getTime();
    else {
      ms = Date.UTC(Number(y), Number(mo) - 1, Number(da), Number(h), Number(mi), Number(se));
      const z = m[8]!;
      if (z !== 'Z' && z !== 'z') ms -= (z[0] === '-' ? -1 : 1) * (Number(z.slice(1, 3)) * 60 + Number(z.slice(4, 6))) * 60000;
    }
    if (Number.isFinite(ms)) return `${Math.floor(ms / 1000)}.${frac}`;
  }
  if (value.includes('-') && !/^-?\d+(\.\d+)?$/.test(value)) throw invalidArgument('INVALID_TIMESTAMP', `parsing time ${JSON.stringify(value)}: not an RFC 3339 date or time`, { hint: 'give a duration (10m), a date (2024-01-02), a time (2024-01-02T15:04:05Z) or unix seconds' });
  if (!/^[+-]?\d+(\.[+-]?\d+)?$/.test(value)) throw invalidArgument('INVALID_TIMESTAMP', `failed to parse value as time or duration: ${JSON.stringify(value)}`);
  return value;
}

/** Docker's timetypes.ParseTimestamps: `seconds[.nanoseconds]` → nanoseconds since the epoch. */
export function parseTimestamp(value: string): bigint {
  const m = /^([+-]?\d+)(?:\.([+-]?\d+))?$/.exec(value);
  if (!m) throw invalidArgument('INVALID_TIMESTAMP', `invalid timestamp ${JSON.stringify(value)}: expected seconds[.nanoseconds] since the epoch`);
  const s = BigInt(m[1]!);
  if (m[2] === undefined) return s * 1_000_000_000n;
  const digits = m[2].replace(/^[+-]/, '');
  let n = BigInt(m[2]);
  if (digits.length <= 9) n *= 10n ** BigInt(9 - digits.length);
  else n /= 10n ** BigInt(digits.length - 9);
  return s * 1_000_000_000n + n;
}

/** since/until as an API or a program gives them → nanoseconds (undefined for absent or empty). */
export function eventTime(v: string | number | Date | undefined, nowMs = Date.now()): bigint | undefined {
  if (v === undefined || v === '') return undefined;
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw invalidArgument('INVALID_TIMESTAMP', 'invalid date');
    return BigInt(v.getTime()) * 1_000_000n;
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw invalidArgument('INVALID_TIMESTAMP', `invalid timestamp ${v}`);
    return BigInt(Math.round(v * 1e6)) * 1000n;
  }
  return parseTimestamp(/^[+-]?\d+(\.[+-]?\d+)?$/.test(v) ? v : eventTimestamp(v, nowMs));
}

// ------------------------------------------------------------------ the message

const sortedAttributes = (a: Record<string, string>): Record<string, string> => Object.fromEntries(Object.keys(a).sort().map((k) => [k, a[k]!]));

/** A logged event as Docker's events.Message, its fields in Docker's order. */
export function toEngineEvent(l: LoggedEvent): EngineEvent {
  const e: Partial<EngineEvent> = {};
  // the deprecated fields, for containers and images
  if (l.type === 'container' || l.type === 'image') {
    e.status = l.action;
    e.id = l.actor;
    if (l.type === 'container' && l.attributes.image) e.from = l.attributes.image;
  }
  e.Type = l.type as EngineEvent['Type'];
  e.Action = l.action;
  e.Actor = { ID: l.actor, Attributes: sortedAttributes(l.attributes) };
  e.scope = 'local';
  e.time = Number(l.timeNano / 1_000_000_000n);
  // a multiple of 1000 below 2^63: the nearest double prints as these very digits
  e.timeNano = Number(l.timeNano);
  return e as EngineEvent;
}

// ------------------------------------------------------------------ filters (daemon/events/filter.go)

const NAMED_TYPES = ['container', 'volume', 'network', 'daemon', 'plugin', 'node', 'service', 'secret', 'config'];

function exactMatch(f: Filters, key: string, source: string): boolean {
  const v = f[key];
  return !v?.length || v.includes(source);
}

function fuzzyMatch(f: Filters, key: string, source: string): boolean {
  const v = f[key];
  return !v?.length || v.some((x) => source === x || source.startsWith(x));
}

function stripTag(image: string): string {
  try {
    return parseReference(image).familiarName;
  } catch {
    return image;
  }
}

/** Docker's MatchKVList: every `key` or `key=value` of the filter is among the attributes. */
function matchLabels(f: Filters, attrs: Record<string, string>): boolean {
  const v = f.label;
  if (!v?.length) return true;
  if (Object.keys(attrs).length === 0) return false;
  return v.every((x) => {
    const i = x.indexOf('=');
    const k = i < 0 ? x : x.slice(0, i);
    if (!(k in attrs)) return false;
    return i < 0 || attrs[k] === x.slice(i + 1);
  });
}

/**
 * The predicate of Docker's events filter. Keys it does not know are ignored, as dockerd
 * ignores them; `action` is taken as another name of `event`.
 */
export function eventFilter(filters: Filters = {}): (e: EngineEvent) => boolean {
  const f: Filters = { ...filters };
  if (f.action?.length) f.event = [...(f.event ?? []), ...f.action];
  const fuzzyEvent = (f.event ?? []).some((x) => x === 'health_status' || x === 'exec_create' || x === 'exec_start');
  return (e) => {
    if (!(fuzzyEvent ? fuzzyMatch(f, 'event', e.Action) : exactMatch(f, 'event', e.Action))) return false;
    if (!exactMatch(f, 'type', e.Type)) return false;
    if (!exactMatch(f, 'scope', e.scope)) return false;
    const name = e.Actor.Attributes.name ?? '';
    for (const t of NAMED_TYPES) if (f[t]?.length && !(fuzzyMatch(f, t, e.Actor.ID) || fuzzyMatch(f, t, name))) return false;
    if (f.image?.length) {
      const imageName = e.Actor.Attributes[e.Type === 'image' ? 'name' : 'image'] ?? '';
      const id = e.Actor.ID;
      if (!(exactMatch(f, 'image', id) || exactMatch(f, 'image', imageName) || exactMatch(f, 'image', stripTag(id)) || exactMatch(f, 'image', stripTag(imageName)))) return false;
    }
    return matchLabels(f, e.Actor.Attributes);
  };
}

// ------------------------------------------------------------------ the stream

/** How many events a slow consumer may fall behind before its stream is ended. */
const MAX_BACKLOG = 10_000;

/**
 * The events of `log` as Docker's /events gives them: the past ones of the since/until
 * window, then (unless `until` is past) the live ones until `until` or the signal. The
 * options are checked at once (an invalid since or until throws here, not at the first
 * event).
 */
export function eventStream(log: EventLog, opts: EventsOptions = {}): AsyncGenerator<EngineEvent> {
  const nowMs = Date.now();
  const since = eventTime(opts.since, nowMs);
  const until = eventTime(opts.until, nowMs);
  if (since !== undefined && until !== undefined && until < since) {
    throw invalidArgument('SINCE_AFTER_UNTIL', `\`since\` time (${String(opts.since)}) cannot be after \`until\` time (${String(opts.until)})`);
  }
  return stream(log, since, until, eventFilter(opts.filters), opts.signal);
}

async function* stream(log: EventLog, since: bigint | undefined, until: bigint | undefined, match: (e: EngineEvent) => boolean, signal: AbortSignal | undefined): AsyncGenerator<EngineEvent> {
  if (signal?.aborted) return;
  // the window and the live part meet at one seq: nothing is missed, nothing comes twice
  let last = log.lastSeq();
  if (since !== undefined || until !== undefined) {
    for (const l of log.history(since ?? 0n, until, last)) {
      const e = toEngineEvent(l);
      if (match(e)) yield e;
      if (signal?.aborted) return;
    }
  }
  const nowNano = BigInt(nowMicros()) * 1000n;
  if (until !== undefined && until < nowNano) return;

  let wake: (() => void) | undefined;
  let dirty = true;
  const unsubscribe = log.subscribe(() => {
    dirty = true;
    wake?.();
  });
  const onAbort = () => wake?.();
  signal?.addEventListener('abort', onAbort);
  let timer: NodeJS.Timeout | undefined;
  let expired = false;
  if (until !== undefined) {
    timer = setTimeout(() => {
      expired = true;
      wake?.();
    }, Math.max(0, Number((until - nowNano) / 1_000_000n)));
  }
  try {
    for (;;) {
      if (signal?.aborted || expired) return;
      if (dirty) {
        dirty = false;
        const rows = log.read(last, MAX_BACKLOG);
        if (rows.length === MAX_BACKLOG) dirty = true;
        for (const l of rows) {
          last = l.seq;
          if (until !== undefined && l.timeNano > until) return;
          const e = toEngineEvent(l);
          if (match(e)) yield e;
          if (signal?.aborted) return;
        }
        continue;
      }
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    unsubscribe();
  }
}
