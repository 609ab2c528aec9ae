/**
 * The Engine API's HTTP conventions in one place: errors as `{"message": …}` with Docker's
 * status codes (one table from the engine's error kinds), JSON bodies with a size cap,
 * Docker's query forms (booleans, filters in both JSON shapes, X-Registry-Auth).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isEngineError, storageError, type ErrorKind } from '../errors/index.js';
import { drainRest, type Filters } from '../engine/index.js';

/** An engine error's kind → the HTTP status dockerd gives for its errdefs class. */
export const STATUS: Record<ErrorKind, number> = {
  'not-found': 404,
  'invalid-argument': 400,
  conflict: 409,
  unauthorized: 401,
  forbidden: 403,
  unavailable: 503,
  'data-loss': 500,
  'resource-exhausted': 500,
  'failed-precondition': 409,
  unsupported: 501,
  cancelled: 500,
  internal: 500,
};

/** A request error of the API layer itself (bad JSON, a bad query value), with its status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const badRequest = (m: string) => new HttpError(400, m);

/**
 * The message and status an error gets on the wire (no stack, ever). An engine error's
 * message alone, in Docker's words as dockerd sends them: its hint speaks to a layerbox
 * CLI user (the CLI prints it), not to an API client.
 */
export function errorReply(e: unknown): { status: number; message: string } {
  if (e instanceof HttpError) return { status: e.status, message: e.message };
  const err = storageError(e) ?? e;
  if (isEngineError(err)) return { status: STATUS[err.kind], message: err.message };
  return { status: 500, message: `internal error: ${(e as Error)?.message ?? String(e)}` };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, e: unknown): void {
  const { status, message } = errorReply(e);
  if (res.headersSent) {
    // a stream already under way: end it (the client sees it cut short)
    res.destroy();
    return;
  }
  sendJson(res, status, { message });
}

/** 204 No Content, or 304 Not Modified (start of a running container, stop of a stopped one). */
export function sendEmpty(res: ServerResponse, status = 204): void {
  res.writeHead(status);
  res.end();
}

export const MAX_JSON_BODY = 10 << 20;

/** The request body as JSON (`undefined` for an empty body), at most `limit` bytes. */
export async function readJson<T = unknown>(req: IncomingMessage, limit = MAX_JSON_BODY): Promise<T | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new HttpError(413, `request body too large: more than ${limit} bytes`);
    chunks.push(c as Buffer);
  }
  return parseJson<T>(Buffer.concat(chunks));
}

/** A body's bytes as JSON (`undefined` for an empty body); 400 for broken JSON. */
export function parseJson<T = unknown>(bytes: Buffer): T | undefined {
  const text = bytes.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw badRequest(`invalid JSON in the request body: ${(e as Error).message}`);
  }
}

/**
 * Reads what is left of a request body after a handler is done with it (an archive's
 * trailing padding a reader stopped before), so that the answer is not followed by a
 * connection reset; more than `limit` bytes left and the connection is closed instead.
 */
export async function drainBody(req: IncomingMessage, limit = 64 << 20): Promise<void> {
  if (req.readableEnded || req.destroyed) return;
  if ((await drainRest(req[Symbol.asyncIterator](), { limitBytes: limit })) === 'cut') req.socket.destroy();
}

/** Query helpers on a URL's search params, with Docker's rules. */
export class Query {
  constructor(readonly p: URLSearchParams) {}

  str(name: string): string | undefined {
    return this.p.get(name) ?? undefined;
  }

  all(name: string): string[] {
    return this.p.getAll(name);
  }

  /** Docker's BoolValue: absent, "", "0", "false", "no", "none" are false. */
  bool(name: string, dflt = false): boolean {
    const v = this.p.get(name);
    if (v === null) return dflt;
    return !['', '0', 'false', 'no', 'none'].includes(v.trim().toLowerCase());
  }

  int(name: string): number | undefined {
    const v = this.p.get(name);
    if (v === null || v === '') return undefined;
    if (!/^-?\d+$/.test(v.trim())) throw badRequest(`invalid value for ${name}: ${JSON.stringify(v)}: not an integer`);
    return Number(v);
  }

  /** `filters`: `{"k": ["v"]}`, or the older `{"k": {"v": true}}`. */
  filters(name = 'filters'): Filters {
    const raw = this.p.get(name);
    if (!raw) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw badRequest(`invalid filter: ${JSON.stringify(raw)} is not JSON`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest('invalid filter: the filters are a JSON object');
    const out: Filters = {};
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out[k] = v as string[];
      else if (v && typeof v === 'object' && !Array.isArray(v)) out[k] = Object.entries(v as Record<string, unknown>).filter(([, on]) => on === true).map(([x]) => x);
      else throw badRequest(`invalid filter: the values of ${JSON.stringify(k)} are a list of strings`);
    }
    return out;
  }

  /** A JSON-encoded query value (buildargs, labels). */
  json<T>(name: string): T | undefined {
    const raw = this.p.get(name);
    if (!raw) return undefined;
    try {
      return JSON.parse(raw) as T;
    } catch {
      throw badRequest(`invalid ${name}: not JSON`);
    }
  }
}

/** X-Registry-Auth: base64url JSON {username, password, serveraddress, identitytoken}. */
export function registryAuth(req: IncomingMessage): { username?: string; password?: string; serveraddress?: string; identitytoken?: string } | undefined {
  const h = req.headers['x-registry-auth'];
  if (typeof h !== 'string' || h.trim() === '') return undefined;
  try {
    const text = Buffer.from(h.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
    const v = JSON.parse(text) as Record<string, unknown>;
    if (!v || typeof v !== 'object') return undefined;
    const s = (k: string) => (typeof v[k] === 'string' && v[k] !== '' ? (v[k] as string) : undefined);
    const out: ReturnType<typeof registryAuth> = {};
    for (const k of ['username', 'password', 'serveraddress', 'identitytoken'] as const) {
      const x = s(k);
      if (x !== undefined) out![k] = x;
    }
    return Object.keys(out!).length ? out : undefined;
  } catch {
    throw badRequest('invalid X-Registry-Auth header: not base64-encoded JSON');
  }
}

/** Checks a JSON body's shape where a wrong type would otherwise reach the engine. */
export function expectObject(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest(`${what}: the body is a JSON object`);
  return v as Record<string, unknown>;
}

