/**
 * The container endpoints of the Engine API v1.41 and POST /commit: each turns a request
 * into one engine call and its answer into Docker's status, headers and framing. Docker's
 * semantics (wait conditions, attach before start, detach keys, stats, update) are the
 * engine's (src/engine/containers.ts), shared with the CLI.
 */
import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import type { ContainerConfig, ContainerCreateBody, ContainerUpdateBody, WaitCondition } from '../../engine/index.js';
import { badRequest, HttpError, sendEmpty, type Query } from '../http.js';
import type { RouteCtx, Router } from '../router.js';
import { frame, STDERR, STDOUT } from '../stdcopy.js';

/** The content type of attach, logs and exec streams in API 1.41 (multiplexed or not). */
export const RAW_STREAM = 'application/vnd.docker.raw-stream';

/** Writes `data`, waiting for the client to take it (or to go away). */
export async function put(out: NodeJS.WritableStream, data: Buffer | string, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  if (out.write(data)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      out.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    out.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * A stream's writer for one of a container's outputs: stdcopy frames on a multiplexed
 * connection, the bytes as they are with a TTY. Writes after the client left are dropped.
 */
export function outputWriter(out: () => NodeJS.WritableStream, stream: 1 | 2, raw: boolean, signal: AbortSignal): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (chunk.length === 0 || signal.aborted) return cb();
      put(out(), raw ? chunk : frame(stream, chunk), signal).then(() => cb(), cb);
    },
  });
}

/** Docker's `since`/`until`: unix seconds with an optional fraction ("1700000000.5"), or RFC 3339. */
function logTime(q: Query, name: string): number | undefined {
  const v = q.str(name);
  if (v === undefined || v === '' || v === '0') return undefined;
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw badRequest(`invalid value for ${name}: ${JSON.stringify(v)}: failed to parse value as time or duration`);
  return t;
}

function seconds(q: Query, name: string): number | undefined {
  const v = q.int(name);
  return v === undefined ? undefined : v;
}

/** A request body that must be absent (start's HostConfig was removed in API 1.24). */
async function noBody(c: RouteCtx, what: string): Promise<void> {
  const body = await c.json<unknown>();
  if (body !== undefined && body !== null && !(typeof body === 'object' && Object.keys(body as object).length === 0)) {
    throw badRequest(`${what} with a non-empty request body was deprecated since API v1.22 and removed in v1.24`);
  }
}

export function containerRoutes(r: Router): void {
  r.on('POST', '/containers/create', async (c) => {
    const body = await c.json<ContainerCreateBody>('ContainerCreate');
    if (!body) throw badRequest('config cannot be empty in order to create a container');
    const name = c.query.str('name');
    const platform = c.query.str('platform');
    const res = await c.engine.containers.create(body, { ...(name ? { name } : {}), ...(platform ? { platform } : {}) });
    c.send(201, res);
  });

  r.on('GET', '/containers/json', async (c) => {
    const q = c.query;
    const limit = q.int('limit');
    c.send(200, await c.engine.containers.list({ all: q.bool('all'), ...(limit !== undefined ? { limit } : {}), size: q.bool('size'), filters: q.filters() }));
  });

  r.on('POST', '/containers/prune', async (c) => {
    c.send(200, await c.engine.containers.prune({ filters: c.query.filters() }));
  });

  r.on('GET', '/containers/:id/json', async (c) => {
    c.send(200, await c.engine.containers.inspect(c.params.id!, { size: c.query.bool('size') }));
  });

  r.on('GET', '/containers/:id/top', async (c) => {
    c.send(200, await c.engine.containers.top(c.params.id!, c.query.str('ps_args') || undefined));
  });

  r.on('GET', '/containers/:id/changes', async (c) => {
    const changes = await c.engine.containers.changes(c.params.id!);
    c.send(200, changes.length ? changes : null);
  });

  r.on('GET', '/containers/:id/export', async (c) => {
    const id = await c.engine.containers.id(c.params.id!);
    const out = c.stream('application/x-tar');
    await c.engine.containers.export(id, out as unknown as Writable);
    out.end();
  });

  r.on('GET', '/containers/:id/logs', async (c) => {
    const q = c.query;
    const stdout = q.bool('stdout');
    const stderr = q.bool('stderr');
    if (!stdout && !stderr) throw badRequest('Bad parameters: you must choose at least one stream');
    const tailRaw = q.str('tail');
    let tail: number | undefined;
    if (tailRaw !== undefined && tailRaw !== '' && tailRaw !== 'all') {
      if (!/^-?\d+$/.test(tailRaw)) throw badRequest(`invalid value for tail: ${JSON.stringify(tailRaw)}: not an integer or "all"`);
      tail = Number(tailRaw) < 0 ? undefined : Number(tailRaw);
    }
    const since = logTime(q, 'since');
    const until = logTime(q, 'until');
    const timestamps = q.bool('timestamps');
    const info = await c.engine.containers.attachInfo(c.params.id!);
    const lines = c.engine.containers.logs(info.id, {
      follow: q.bool('follow'),
      stdout,
      stderr,
      ...(tail !== undefined ? { tail } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
      signal: c.signal,
    });
    const out = c.stream(RAW_STREAM);
    for await (const l of lines) {
      const data = timestamps ? Buffer.concat([Buffer.from(l.time + ' '), l.data]) : l.data;
      await put(out, info.tty ? data : frame(l.stream === 'stderr' ? STDERR : STDOUT, data), c.signal);
    }
    out.end();
  });

  r.on('GET', '/containers/:id/stats', async (c) => {
    const stream = c.query.bool('stream', true);
    const oneShot = c.query.bool('one-shot');
    if (stream && oneShot) throw badRequest('cannot have stream=true and one-shot=true');
    const it = c.engine.containers.stats(c.params.id!, { stream, oneShot, signal: c.signal });
    // the first sample before the headers: a missing container is a 404
    const first = await it.next();
    const out = c.stream('application/json');
    if (!first.done) await put(out, JSON.stringify(first.value) + '\n', c.signal);
    for await (const s of it) await put(out, JSON.stringify(s) + '\n', c.signal);
    out.end();
  });

  r.on('POST', '/containers/:id/resize', async (c) => {
    const h = c.query.int('h');
    const w = c.query.int('w');
    if (h === undefined || w === undefined || h < 0 || w < 0) throw badRequest('invalid terminal size: h and w are non-negative integers');
    await c.engine.containers.resize(c.params.id!, { height: h, width: w });
    c.res!.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '0' });
    c.res!.end();
  });

  r.on('POST', '/containers/:id/start', async (c) => {
    await noBody(c, 'starting container');
    const r = await c.engine.containers.start(c.params.id!);
    sendEmpty(c.res!, r.alreadyRunning ? 304 : 204);
  });

  r.on('POST', '/containers/:id/stop', async (c) => {
    const t = seconds(c.query, 't');
    const r = await c.engine.containers.stop(c.params.id!, t !== undefined ? { timeout: t } : {});
    sendEmpty(c.res!, r.alreadyStopped ? 304 : 204);
  });

  r.on('POST', '/containers/:id/restart', async (c) => {
    const t = seconds(c.query, 't');
    await c.engine.containers.restart(c.params.id!, t !== undefined ? { timeout: t } : {});
    sendEmpty(c.res!);
  });

  r.on('POST', '/containers/:id/kill', async (c) => {
    const signal = c.query.str('signal');
    await c.engine.containers.kill(c.params.id!, signal ? { signal } : {});
    sendEmpty(c.res!);
  });

  r.on('POST', '/containers/:id/pause', async (c) => {
    await c.engine.containers.pause(c.params.id!);
    sendEmpty(c.res!);
  });

  r.on('POST', '/containers/:id/unpause', async (c) => {
    await c.engine.containers.unpause(c.params.id!);
    sendEmpty(c.res!);
  });

  r.on('POST', '/containers/:id/update', async (c) => {
    const body = await c.json<ContainerUpdateBody>('ContainerUpdate');
    c.send(200, await c.engine.containers.update(c.params.id!, body ?? {}));
  });

  r.on('POST', '/containers/:id/rename', async (c) => {
    const name = c.query.str('name') ?? '';
    if (!name) throw badRequest('Neither old nor new names may be empty');
    await c.engine.containers.rename(c.params.id!, name);
    sendEmpty(c.res!);
  });

  r.on('POST', '/containers/:id/wait', async (c) => {
    const condition = (c.query.str('condition') || 'not-running') as WaitCondition;
    let waiting = false;
    const res = c.res!;
    try {
      const r = await c.engine.containers.wait(c.params.id!, {
        condition,
        signal: c.signal,
        // the headers go at once (API ≥ 1.30), so a client knows it waits before it starts the container
        onWaiting: () => {
          waiting = true;
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.flushHeaders();
        },
      });
      res.end(JSON.stringify(r) + '\n');
    } catch (e) {
      if (!waiting) throw e;
      res.end(JSON.stringify({ StatusCode: -1, Error: { Message: (e as Error).message } }) + '\n');
    }
  });

  r.on('DELETE', '/containers/:id', async (c) => {
    if (c.query.bool('link')) throw badRequest('removing links is not supported: layerbox has no container links');
    await c.engine.containers.remove(c.params.id!, { force: c.query.bool('force'), volumes: c.query.bool('v') });
    sendEmpty(c.res!);
  });

  r.on('POST', '/containers/:id/attach', async (c) => {
    const q = c.query;
    const info = await c.engine.containers.attachInfo(c.params.id!);
    let h: ReturnType<RouteCtx['hijack']> | undefined;
    const out = () => h!.out;
    const stdout = q.bool('stdout') ? outputWriter(out, STDOUT, info.tty, c.signal) : null;
    const stderr = q.bool('stderr') ? outputWriter(out, STDERR, info.tty, c.signal) : null;
    const detachKeys = q.str('detachKeys');
    const a = await c.engine.containers.attach(
      info.id,
      {
        get stdin() {
          return q.bool('stdin') ? (h?.input ?? null) : null;
        },
        stdout,
        stderr,
      },
      {
        logs: q.bool('logs'),
        stream: q.bool('stream'),
        ...(detachKeys !== undefined ? { detachKeys } : {}),
        signal: c.signal,
        onReady: () => {
          h = c.hijack(RAW_STREAM);
          // without stdin nothing reads the connection: read it anyway, to see the client leave
          if (!q.bool('stdin') || !info.openStdin) h.input?.resume();
        },
      },
    );
    await a.done;
    h?.end();
  });

  r.on('GET', '/containers/:id/attach/ws', () => {
    throw new HttpError(501, 'attach over a websocket is not supported by layerbox; use POST /containers/{id}/attach');
  });

  r.on('HEAD', '/containers/:id/archive', async (c) => {
    const path = archivePath(c);
    const stat = await c.engine.containers.stat(c.params.id!, path);
    const res = c.res!;
    res.writeHead(200, { 'X-Docker-Container-Path-Stat': Buffer.from(JSON.stringify(stat)).toString('base64'), 'Content-Type': 'application/x-tar' });
    res.end();
  });

  r.on('GET', '/containers/:id/archive', async (c) => {
    const path = archivePath(c);
    const { stat, stream } = await c.engine.containers.getArchive(c.params.id!, path, { signal: c.signal });
    const res = c.res as ServerResponse;
    res.writeHead(200, { 'X-Docker-Container-Path-Stat': Buffer.from(JSON.stringify(stat)).toString('base64'), 'Content-Type': 'application/x-tar' });
    c.signal.addEventListener('abort', () => stream.destroy(), { once: true });
    try {
      for await (const chunk of stream) await put(res, chunk as Buffer, c.signal);
    } finally {
      stream.destroy();
    }
    res.end();
  });

  r.on('PUT', '/containers/:id/archive', async (c) => {
    const path = archivePath(c);
    await c.engine.containers.putArchive(c.params.id!, path, c.req, {
      noOverwriteDirNonDir: c.query.bool('noOverwriteDirNonDir'),
      copyUIDGID: c.query.bool('copyUIDGID'),
      signal: c.signal,
    });
    c.res!.writeHead(200, { 'Content-Length': '0' });
    c.res!.end();
  });

  r.on('POST', '/commit', async (c) => {
    const q = c.query;
    const container = q.str('container');
    if (!container) throw badRequest('No such container: ');
    const config = await c.json<ContainerConfig | null>('ImageCommit');
    const repo = q.str('repo') ?? '';
    const tag = q.str('tag') ?? '';
    const res = await c.engine.containers.commit(container, {
      ...(repo ? { repo, ...(tag ? { tag } : {}) } : {}),
      comment: q.str('comment') ?? '',
      author: q.str('author') ?? '',
      pause: q.bool('pause', true),
      changes: q.all('changes').flatMap((ch) => ch.split('\n')).filter((ch) => ch.trim() !== ''),
      ...(config ? { config } : {}),
    });
    c.send(201, res);
  });
}

function archivePath(c: RouteCtx): string {
  const path = c.query.str('path');
  if (path === undefined || path === '') throw badRequest('path is required: the path of a file or directory in the container');
  return path;
}
