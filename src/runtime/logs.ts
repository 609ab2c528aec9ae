/**
 * Reader of conmon's k8s-file logs: `<RFC3339Nano time> <stdout|stderr> <F|P> <text>\n`, one record per
 * line of output (P = partial, continued by the next record of that stream). `docker logs` semantics:
 * --tail N counts log records as Docker's json-file counts entries (output without a newline, or a line
 * longer than conmon's buffer, spans several records), --timestamps prints the time in UTC, -f follows
 * until the container has exited.
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { errnoCode, throwIfAborted } from '../errors/index.js';
import { nap } from './nap.js';

export interface LogRecord {
  /** as conmon wrote it, e.g. 2026-11-22T12:38:42.154398172+00:00 */
  time: string;
  stream: 'stdout' | 'stderr';
  partial: boolean;
  data: Buffer;
}

export interface LogLine {
  stream: 'stdout' | 'stderr';
  /** RFC3339Nano in UTC (Docker's format) of the line's first record */
  time: string;
  /** the text of the line, with its trailing newline (none when the output ended mid-line) */
  data: Buffer;
}

export interface ReadLogsOptions {
  /** only the last N records (default: all) */
  tail?: number;
  /** keep reading new output until `until()` says the writer is done */
  follow?: boolean;
  /** polled while following; when it returns true the rest of the file is read and reading stops */
  stopWhen?: () => boolean | Promise<boolean>;
  /** skip lines older than this (ms since epoch) */
  since?: number;
  /** skip lines newer than this (ms since epoch) */
  until?: number;
  pollMs?: number;
  signal?: AbortSignal;
}

const SP = 0x20;
const NL = 0x0a;

export function parseRecord(line: Buffer): LogRecord | undefined {
  const a = line.indexOf(SP);
  const b = a < 0 ? -1 : line.indexOf(SP, a + 1);
  const c = b < 0 ? -1 : line.indexOf(SP, b + 1);
  if (c < 0) {
    // "time stream F" with empty text has no third space
    if (b > 0 && line.length === b + 2) return build(line, a, b, line.length);
    return undefined;
  }
  return build(line, a, b, c);
}

function build(line: Buffer, a: number, b: number, c: number): LogRecord | undefined {
  const stream = line.toString('latin1', a + 1, b);
  const tag = line.toString('latin1', b + 1, b + 2);
  if ((stream !== 'stdout' && stream !== 'stderr') || (tag !== 'F' && tag !== 'P')) return undefined;
  return { time: line.toString('latin1', 0, a), stream, partial: tag === 'P', data: c < line.length ? line.subarray(c + 1) : Buffer.alloc(0) };
}

/**
 * conmon's `2026-11-22T12:38:42.154398172+01:00` → Docker's `2026-11-22T11:38:42.154398172Z`
 * (and ms since epoch): always nine fraction digits, trailing zeros kept, as dockerd's logs
 * write it (jsonmessage.RFC3339NanoFixed).
 */
export function toUtc(time: string): { iso: string; ms: number } {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$/.exec(time);
  if (!m) return { iso: time, ms: Date.parse(time) };
  const base = Date.parse(`${m[1]}${m[3] === 'Z' ? 'Z' : m[3]}`);
  const frac = (m[2] ?? '').padEnd(9, '0').slice(0, 9);
  const iso = new Date(base).toISOString().slice(0, 19) + `.${frac}Z`;
  return { iso, ms: base + Number(`0.${m[2] ?? '0'}`) * 1000 };
}

/** Byte offset where the last `n` records start (scanning backwards in chunks; a line being written is not counted). */
export async function tailOffset(path: string, n: number): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    if (n <= 0) return size;
    let pos = size; // file offset of buf[0]
    let buf = Buffer.alloc(0); // file[pos, start of the earliest line already counted)
    let count = 0;
    for (;;) {
      const idx = buf.length >= 2 ? buf.lastIndexOf(NL, buf.length - 2) : -1;
      if (idx < 0 && pos > 0) {
        const len = Math.min(64 * 1024, pos);
        const more = Buffer.alloc(len);
        await fh.read(more, 0, len, pos - len);
        pos -= len;
        buf = Buffer.concat([more, buf]);
        continue;
      }
      if (buf.length === 0) return 0;
      const lineStart = idx + 1;
      const line = buf.subarray(lineStart);
      if (line[line.length - 1] === NL) {
        const rec = parseRecord(line.subarray(0, line.length - 1));
        if (rec && ++count === n + 1) return pos + buf.length;
      }
      buf = buf.subarray(0, lineStart);
      if (lineStart === 0 && pos === 0) return 0;
    }
  } finally {
    await fh.close();
  }
}

/** Raw records from `offset`, following while asked. */
export async function* readRecords(path: string, opts: ReadLogsOptions & { offset?: number } = {}): AsyncGenerator<LogRecord> {
  let offset = opts.offset ?? 0;
  let rest = Buffer.alloc(0);
  const pollMs = opts.pollMs ?? 200;
  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  const ping = () => wake?.();
  try {
    let finishing = false;
    for (;;) {
      throwIfAborted(opts.signal);
      let size: number;
      try {
        size = (await stat(path)).size;
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
        size = 0;
      }
      if (size < offset) {
        offset = 0; // truncated or rotated
        rest = Buffer.alloc(0);
      }
      if (size > offset) {
        const fh = await open(path, 'r');
        try {
          while (offset < size) {
            const len = Math.min(256 * 1024, size - offset);
            const buf = Buffer.alloc(len);
            const { bytesRead } = await fh.read(buf, 0, len, offset);
            if (bytesRead === 0) break;
            offset += bytesRead;
            let data = rest.length ? Buffer.concat([rest, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
            let nl = data.indexOf(NL);
            while (nl >= 0) {
              const rec = parseRecord(data.subarray(0, nl));
              if (rec) yield rec;
              data = data.subarray(nl + 1);
              nl = data.indexOf(NL);
            }
            rest = Buffer.from(data);
          }
        } finally {
          await fh.close();
        }
      }
      if (!opts.follow || finishing) return;
      if (opts.stopWhen && (await opts.stopWhen())) {
        finishing = true; // one more pass reads what was written before the exit
        continue;
      }
      if (!watcher) {
        try {
          watcher = watch(path, ping);
          watcher.on('error', () => {});
        } catch {
          /* polling only */
        }
      }
      await nap(pollMs, opts.signal, (w) => (wake = w));
      wake = undefined;
    }
  } finally {
    watcher?.close();
  }
}

/** `docker logs`: lines (partial records joined), with --tail/--since/--until and -f. */
export async function* readLogs(path: string, opts: ReadLogsOptions = {}): AsyncGenerator<LogLine> {
  let offset = 0;
  if (opts.tail !== undefined && opts.tail >= 0) {
    try {
      offset = await tailOffset(path, opts.tail);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
    }
  }
  const parts: Record<string, { time: string; chunks: Buffer[] } | undefined> = {};
  for await (const rec of readRecords(path, { ...opts, offset })) {
    let p = parts[rec.stream];
    if (!p) p = parts[rec.stream] = { time: rec.time, chunks: [] };
    p.chunks.push(rec.data);
    if (rec.partial) continue;
    parts[rec.stream] = undefined;
    const t = toUtc(p.time);
    if (opts.since !== undefined && t.ms < opts.since) continue;
    if (opts.until !== undefined && t.ms > opts.until) continue;
    yield { stream: rec.stream, time: t.iso, data: Buffer.concat([...p.chunks, Buffer.from('\n')]) };
  }
  for (const stream of ['stdout', 'stderr'] as const) {
    const p = parts[stream];
    if (p) yield { stream, time: toUtc(p.time).iso, data: Buffer.concat(p.chunks) };
  }
}
