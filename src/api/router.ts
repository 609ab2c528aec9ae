/**
 * Routing of the Engine API: `/v1.NN/…` and unversioned paths (find-my-way, Fastify's
 * router), the version check, and one context per request — its engine, query, body,
 * an AbortSignal that fires when the client goes away, and for attach and exec start the
 * hijacked connection (101 UPGRADED when the client asked for it, as the docker CLI does).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createRequire } from 'node:module';
import type { Engine } from '../engine/index.js';
import { API_VERSION, MIN_API_VERSION, VERSION } from '../engine/index.js';
import { HttpError, MAX_JSON_BODY, Query, parseJson, readJson, sendError, sendJson } from './http.js';
import { checkBody } from './schema.js';

export interface RouteCtx {
  engine: Engine;
  req: IncomingMessage;
  /** undefined when the connection was upgraded (then `socket` is the raw connection) */
  res: ServerResponse | undefined;
  socket: Duplex;
  /** bytes the client sent after the upgrade request's headers */
  head: Buffer;
  url: URL;
  query: Query;
  params: Record<string, string>;
  /** the API version the client asked for (the path's, else the newest) */
  version: string;
  /** aborted when the client disconnects */
  signal: AbortSignal;
  /** the body as JSON, checked against the spec's schema for `op` */
  json<T>(op?: string): Promise<T | undefined>;
  /** answers with JSON */
  send(status: number, body: unknown, headers?: Record<string, string>): void;
  /**
   * Takes over the connection for a raw stream (attach, exec start): a 101 UPGRADED answer on
   * an upgrade request, else 200 with the stream as the body. Returns where to write and,
   * after an upgrade, what the client sends (its stdin).
   */
  hijack(contentType: string): { out: NodeJS.WritableStream; input: Duplex | undefined; end(): void };
  /** starts a streamed 200 answer (pull progress, logs, events, stats) */
  stream(contentType: string, headers?: Record<string, string>): NodeJS.WritableStream;
}

export type Handler = (c: RouteCtx) => Promise<void> | void;

export const SERVER_HEADER = `layerbox/${VERSION} (linux)`;

const cmpVersion = (a: string, b: string) => {
  const [am, an] = a.split('.').map(Number) as [number, number];
  const [bm, bn] = b.split('.').map(Number) as [number, number];
  return am - bm || an - bn;
};

interface FindMyWay {
  on(method: string | string[], path: string, handler: unknown): void;
  find(method: string, path: string): { handler: unknown; params: Record<string, string | undefined> } | null;
}

/** Reads the Content-Length body of an upgrade request from what came with its headers and the socket. */
async function readUpgradeBody(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<{ body: Buffer | undefined; rest: Buffer }> {
  const len = Number(req.headers['content-length'] ?? 0);
  if (!Number.isInteger(len) || len < 0) throw new HttpError(400, 'invalid Content-Length');
  if (len === 0) return { body: undefined, rest: head };
  if (len > MAX_JSON_BODY) throw new HttpError(413, `request body too large: more than ${MAX_JSON_BODY} bytes`);
  let buf = head;
  while (buf.length < len) {
    const chunk = await new Promise<Buffer | null>((resolve) => {
      const onData = (b: Buffer) => {
        cleanup();
        socket.pause();
        resolve(b);
      };
      const onEnd = () => {
        cleanup();
        resolve(null);
      };
      const cleanup = () => {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', onEnd);
      };
      socket.on('data', onData);
      socket.once('end', onEnd);
      socket.once('close', onEnd);
      socket.resume();
    });
    if (!chunk) throw new HttpError(400, 'the request body ended early');
    buf = Buffer.concat([buf, chunk]);
  }
  return { body: buf.subarray(0, len), rest: buf.subarray(len) };
}

const EMPTY = Buffer.alloc(0);

/**
 * The path and query of a request target. WHATWG URL parsing (new URL) costs a measurable
 * share of a 0.1 ms answer, so it runs only for a path with something to resolve: dot
 * segments, percent-escapes of them, backslashes or a target that is not origin-form.
 * `undefined` for a target that cannot be parsed.
 */
export function requestTarget(raw: string): { path: string; search: string; url?: URL } | undefined {
  const q = raw.indexOf('?');
  const p = q < 0 ? raw : raw.slice(0, q);
  if (p.startsWith('/') && !/\/\.\.?(?:\/|$)|%2e|\\|#/i.test(p)) return { path: p, search: q < 0 ? '' : raw.slice(q) };
  try {
    const url = new URL(raw, 'http://docker');
    return { path: url.pathname, search: url.search, url };
  } catch {
    return undefined;
  }
}

/**
 * A request's RouteCtx. A class, not an object literal: a literal with getters and methods,
 * made per request, defeats V8's young generation (its objects were kept, then promoted, and
 * every scavenge of a busy server copied megabytes; measured: 8–10 ms scavenges instead of
 * 0.3 ms). Only what a handler asks for is made: the URL, the query, the AbortSignal.
 */
class Ctx implements RouteCtx {
  hijacked = false;
  private ac: AbortController | undefined = undefined;
  private gone = false;
  private q: Query | undefined = undefined;

  constructor(
    readonly engine: Engine,
    readonly req: IncomingMessage,
    readonly res: ServerResponse | undefined,
    readonly socket: Duplex,
    readonly head: Buffer,
    private readonly target: { path: string; search: string; url?: URL },
    readonly params: Record<string, string>,
    readonly version: string,
    private readonly upgradeBody: Buffer | undefined,
  ) {}

  /** the client went away: the signal (if any handler asked for one) aborts */
  abort(): void {
    this.gone = true;
    this.ac?.abort(new Error('the client went away'));
  }

  get url(): URL {
    return (this.target.url ??= new URL(this.req.url ?? '/', 'http://docker'));
  }

  get query(): Query {
    return (this.q ??= new Query(this.target.url ? this.target.url.searchParams : new URLSearchParams(this.target.search)));
  }

  get signal(): AbortSignal {
    if (!this.ac) {
      this.ac = new AbortController();
      if (this.gone) this.ac.abort(new Error('the client went away'));
    }
    return this.ac.signal;
  }

  async json<T>(op?: string): Promise<T | undefined> {
    const body = this.upgradeBody ? parseJson<T>(this.upgradeBody) : this.res ? await readJson<T>(this.req) : undefined;
    if (op) checkBody(op, body);
    return body;
  }

  send(status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (!this.res) throw new Error('send on a hijacked connection');
    sendJson(this.res, status, body, headers);
  }

  hijack(contentType: string): { out: NodeJS.WritableStream; input: Duplex | undefined; end(): void } {
    this.hijacked = true;
    const { res, socket, head } = this;
    // a client that goes away mid-stream (EPIPE, ECONNRESET) ends the stream, never the server
    socket.on('error', () => this.abort());
    if (!res) {
      socket.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nApi-Version: ${API_VERSION}\r\nServer: ${SERVER_HEADER}\r\n\r\n`);
      if (head.length) socket.unshift(head);
      return { out: socket, input: socket, end: () => socket.end() };
    }
    res.writeHead(200, { 'Content-Type': contentType });
    res.flushHeaders();
    return { out: res, input: undefined, end: () => res.end() };
  }

  stream(contentType: string, headers: Record<string, string> = {}): NodeJS.WritableStream {
    if (!this.res) throw new Error('stream on a hijacked connection');
    this.res.writeHead(200, { 'Content-Type': contentType, ...headers });
    this.res.flushHeaders();
    return this.res;
  }
}

export class Router {
  private readonly fmw: FindMyWay;

  constructor(private readonly engine: Engine) {
    const require = createRequire(import.meta.url);
    const FMW = require('find-my-way') as (o: object) => FindMyWay;
    this.fmw = FMW({ ignoreTrailingSlash: true, caseSensitive: true, maxParamLength: 4096 });
  }

  on(method: string | string[], path: string, handler: Handler): this {
    this.fmw.on(method, path, handler);
    return this;
  }

  /** Handles a request (res set) or an upgrade (res undefined). Never throws. */
  async dispatch(req: IncomingMessage, res: ServerResponse | undefined, socket: Duplex, head: Buffer = EMPTY): Promise<void> {
    const fail = (e: unknown) => {
      if (res) sendError(res, e);
      else {
        const { status, message } = e instanceof HttpError ? { status: e.status, message: e.message } : { status: 500, message: (e as Error).message };
        const body = JSON.stringify({ message });
        socket.end(`HTTP/1.1 ${status} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      }
    };
    const t = requestTarget(req.url ?? '/');
    if (!t) return fail(new HttpError(400, `invalid request path ${JSON.stringify(req.url)}`));
    let path = t.path;
    let version = API_VERSION;
    const m = /^\/v(\d+\.\d+)(\/.*)?$/.exec(path);
    if (m) {
      version = m[1]!;
      path = m[2] ?? '/';
      if (cmpVersion(version, API_VERSION) > 0) return fail(new HttpError(400, `client version ${version} is too new. Maximum supported API version is ${API_VERSION}`));
      if (cmpVersion(version, MIN_API_VERSION) < 0) return fail(new HttpError(400, `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`));
    }
    const found = this.fmw.find(req.method ?? 'GET', path);
    if (!found) {
      if (res) return sendJson(res, 404, { message: 'page not found' });
      return fail(new HttpError(404, 'page not found'));
    }
    // an upgrade request's body (exec start's {"Detach", "Tty"}) comes on the socket, after
    // the headers: it is read off first, so that only what follows is the stream's input
    let upgradeBody: Buffer | undefined;
    if (!res) {
      try {
        ({ body: upgradeBody, rest: head } = await readUpgradeBody(req, socket, head));
      } catch (e) {
        return fail(e);
      }
    }
    // find-my-way has percent-decoded the params (once, as Docker's router does)
    const ctx = new Ctx(this.engine, req, res, socket, head, t, found.params as Record<string, string>, version, upgradeBody);
    const abort = () => ctx.abort();
    socket.once('close', abort);
    res?.once('close', () => {
      if (!res.writableFinished) abort();
    });
    try {
      await (found.handler as Handler)(ctx);
    } catch (e) {
      if (ctx.hijacked && !res) {
        socket.destroy();
        return;
      }
      fail(e);
    } finally {
      socket.off('close', abort);
    }
  }
}
