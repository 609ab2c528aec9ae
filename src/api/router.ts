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
  async dispatch(req: IncomingMessage, res: ServerResponse | undefined, socket: Duplex, head: Buffer = Buffer.alloc(0)): Promise<void> {
    const fail = (e: unknown) => {
      if (res) sendError(res, e);
      else {
        const { status, message } = e instanceof HttpError ? { status: e.status, message: e.message } : { status: 500, message: (e as Error).message };
        const body = JSON.stringify({ message });
        socket.end(`HTTP/1.1 ${status} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      }
    };
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://docker');
    } catch {
      return fail(new HttpError(400, `invalid request path ${JSON.stringify(req.url)}`));
    }
    let path = url.pathname;
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
    // the signal is made when a handler first asks for it: most answers (lists, inspects) never
    // do, and an AbortController per request is a measurable share of a 0.2 ms answer
    let ac: AbortController | undefined;
    let gone = false;
    const abort = () => {
      gone = true;
      ac?.abort(new Error('the client went away'));
    };
    socket.once('close', abort);
    res?.once('close', () => {
      if (!res.writableFinished) abort();
    });
    let hijacked = false;
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
    const ctx: RouteCtx = {
      engine: this.engine,
      req,
      res,
      socket,
      head,
      url,
      query: new Query(url.searchParams),
      params: Object.fromEntries(Object.entries(found.params).map(([k, v]) => [k, decodeURIComponent(v ?? '')])),
      version,
      get signal() {
        if (!ac) {
          ac = new AbortController();
          if (gone) ac.abort(new Error('the client went away'));
        }
        return ac.signal;
      },
      async json<T>(op?: string) {
        const body = upgradeBody ? parseJson<T>(upgradeBody) : res ? await readJson<T>(req) : undefined;
        if (op) checkBody(op, body);
        return body;
      },
      send(status, body, headers = {}) {
        if (!res) throw new Error('send on a hijacked connection');
        sendJson(res, status, body, headers);
      },
      hijack(contentType) {
        hijacked = true;
        // a client that goes away mid-stream (EPIPE, ECONNRESET) ends the stream, never the server
        socket.on('error', abort);
        if (!res) {
          socket.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nApi-Version: ${API_VERSION}\r\nServer: ${SERVER_HEADER}\r\n\r\n`);
          if (head.length) socket.unshift(head);
          return { out: socket, input: socket, end: () => socket.end() };
        }
        res.writeHead(200, { 'Content-Type': contentType });
        res.flushHeaders();
        return { out: res, input: undefined, end: () => res.end() };
      },
      stream(contentType, headers = {}) {
        if (!res) throw new Error('stream on a hijacked connection');
        res.writeHead(200, { 'Content-Type': contentType, ...headers });
        res.flushHeaders();
        return res;
      },
    };
    try {
      await (found.handler as Handler)(ctx);
    } catch (e) {
      if (hijacked && !res) {
        socket.destroy();
        return;
      }
      fail(e);
    } finally {
      socket.off('close', abort);
    }
  }
}
