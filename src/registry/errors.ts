/**
 * Registry errors: one place that turns HTTP statuses and registry error bodies
 * (`{"errors":[{code,message,detail}]}`) into EngineErrors whose message names what went
 * wrong, on which registry and repository (and digest), and what to do next.
 *
 * Everything a registry sends is untrusted: its messages are stripped of control
 * characters and shortened before they reach a terminal or a log.
 */
import { EngineError, type ErrorKind } from '../errors/index.js';

/** What a request was about; every registry error names these. */
export interface RegistryContext {
  /** registry host[:port] as the user named it (e.g. `127.0.0.1:5000`, `docker.io`) */
  registry: string;
  repository?: string | undefined;
  /** blob or manifest digest, when the request is about one */
  digest?: string | undefined;
  /** tag, when a manifest was asked for by tag */
  tag?: string | undefined;
}

/** `registry 127.0.0.1:5000, repository a/b[, digest sha256:…]` */
export function describeContext(ctx: RegistryContext): string {
  let s = `registry ${ctx.registry}`;
  if (ctx.repository) s += `, repository ${ctx.repository}`;
  if (ctx.digest) s += `, digest ${ctx.digest}`;
  return s;
}

/** Query parameters of the distribution protocol itself, which carry no secrets. */
const SAFE_QUERY_PARAMS = new Set(['digest', 'mount', 'from', 'n', 'last', 'service', 'scope']);

/** Removes credentials and query values from a URL before it is shown anywhere (signed storage URLs carry secrets). */
export function redactUrl(u: string | URL): string {
  let url: URL;
  try {
    url = typeof u === 'string' ? new URL(u) : u;
  } catch {
    return '<invalid URL>';
  }
  let q = '';
  if (url.search) {
    const parts: string[] = [];
    for (const [k, v] of url.searchParams) {
      parts.push(`${encodeURIComponent(k)}=${SAFE_QUERY_PARAMS.has(k) ? encodeURIComponent(v) : 'REDACTED'}`);
    }
    q = '?' + parts.join('&');
  }
  return `${url.protocol}//${url.host}${url.pathname}${q}`;
}

/** Makes a server-provided string safe to print: no control characters, bounded length. */
export function sanitize(s: unknown, max = 300): string {
  const str = typeof s === 'string' ? s : s === undefined || s === null ? '' : JSON.stringify(s);
  // eslint-disable-next-line no-control-regex
  const clean = str.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, ' ').trim();
  return clean.length > max ? clean.slice(0, max) + '…' : clean;
}

export interface RegistryErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/** Parses a registry error body; tolerant of anything (HTML from proxies, empty bodies, Docker Hub's `details`). */
export function parseErrorBody(body: Buffer | undefined): RegistryErrorEntry[] {
  if (!body || body.length === 0) return [];
  let j: unknown;
  try {
    j = JSON.parse(body.toString('utf8'));
  } catch {
    return [];
  }
  if (!j || typeof j !== 'object') return [];
  const o = j as Record<string, unknown>;
  const out: RegistryErrorEntry[] = [];
  if (Array.isArray(o.errors)) {
    for (const e of o.errors.slice(0, 20)) {
      if (!e || typeof e !== 'object') continue;
      const r = e as Record<string, unknown>;
      const code = typeof r.code === 'string' ? sanitize(r.code, 64).toUpperCase() : 'UNKNOWN';
      out.push({ code, message: sanitize(r.message), detail: r.detail });
    }
  } else if (typeof o.details === 'string' || typeof o.message === 'string' || typeof o.error === 'string') {
    out.push({ code: 'UNKNOWN', message: sanitize(o.details ?? o.message ?? o.error) });
  }
  return out;
}

/** Kind for a registry error code (takes precedence over the status where the code is specific). */
function kindForCode(code: string): ErrorKind | undefined {
  switch (code) {
    case 'BLOB_UNKNOWN':
    case 'MANIFEST_UNKNOWN':
    case 'NAME_UNKNOWN':
    case 'BLOB_UPLOAD_UNKNOWN':
      return 'not-found';
    case 'UNAUTHORIZED':
      return 'unauthorized';
    case 'DENIED':
      return 'forbidden';
    case 'TOOMANYREQUESTS':
      return 'resource-exhausted';
    case 'UNSUPPORTED':
      return 'unsupported';
    case 'DIGEST_INVALID':
    case 'SIZE_INVALID':
    case 'MANIFEST_INVALID':
    case 'MANIFEST_BLOB_UNKNOWN':
    case 'NAME_INVALID':
    case 'TAG_INVALID':
    case 'BLOB_UPLOAD_INVALID':
    case 'PAGINATION_NUMBER_INVALID':
    case 'RANGE_INVALID':
      return 'invalid-argument';
    default:
      return undefined;
  }
}

export function kindForStatus(status: number): ErrorKind {
  if (status === 400) return 'invalid-argument';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 405 || status === 501) return 'unsupported';
  if (status === 409) return 'conflict';
  if (status === 413 || status === 429) return 'resource-exhausted';
  if (status === 416) return 'failed-precondition';
  if (status >= 500) return 'unavailable';
  return 'internal';
}

const STATUS_TEXT: Record<number, string> = {
  400: 'bad request',
  401: 'authentication required',
  403: 'access denied',
  404: 'not found',
  405: 'method not allowed',
  409: 'conflict',
  413: 'payload too large',
  416: 'range not satisfiable',
  429: 'too many requests',
  500: 'internal server error',
  502: 'bad gateway',
  503: 'service unavailable',
  504: 'gateway timeout',
};

/** The registry's own words for an error (first error entry), or the status text. */
export function registryMessage(entries: RegistryErrorEntry[], status: number): string {
  const first = entries[0];
  return first ? first.message || first.code.toLowerCase().replace(/_/g, ' ') : STATUS_TEXT[status] ?? `HTTP ${status}`;
}

export interface StatusErrorInput {
  status: number;
  body?: Buffer | undefined;
  /** what we were doing, e.g. `manifest tagged by "x" is not found`-style phrase for 404s, or `GET manifest` */
  what: string;
  /** phrase used for a 404 (`manifest tagged by "x" is not found`) */
  notFound?: string;
  ctx: RegistryContext;
  /** `Retry-After` hint etc. */
  extraHint?: string;
}

/**
 * Error for a non-success response:
 * `manifest unknown: manifest tagged by "x" is not found (registry 127.0.0.1:5000, repository a/b)`.
 */
export function statusError(i: StatusErrorInput): EngineError {
  const entries = parseErrorBody(i.body);
  const first = entries[0];
  let kind = kindForStatus(i.status);
  const byCode = first ? kindForCode(first.code) : undefined;
  // The status is authoritative for auth and availability; the code refines the rest.
  if (byCode && i.status !== 401 && i.status !== 403 && i.status < 500) kind = byCode;
  if (i.status === 401 && first?.code === 'DENIED') kind = 'forbidden';
  const regMsg = registryMessage(entries, i.status);
  const ours = i.status === 404 && i.notFound ? i.notFound : `${i.what} failed with HTTP ${i.status}`;
  let msg = `${regMsg}: ${ours}`;
  if (entries.length > 1) msg += ` (and ${entries.length - 1} more error${entries.length > 2 ? 's' : ''}: ${entries.slice(1, 3).map((e) => e.message || e.code).join('; ')})`;
  msg += ` (${describeContext(i.ctx)})`;
  let hint: string | undefined;
  switch (kind) {
    case 'unauthorized':
      hint = `log in with 'layerbox login ${i.ctx.registry}' or check the credentials for it`;
      break;
    case 'forbidden':
      hint = `the credentials for ${i.ctx.registry} do not grant access to ${i.ctx.repository ?? 'this resource'}`;
      break;
    case 'unavailable':
      hint = 'the registry is failing; try again later';
      break;
    case 'resource-exhausted':
      hint = i.status === 429 ? 'the registry is rate limiting; wait and try again' : undefined;
      break;
    default:
      break;
  }
  if (i.extraHint) hint = hint ? `${hint}; ${i.extraHint}` : i.extraHint;
  const code = first && first.code !== 'UNKNOWN' ? `REGISTRY_${first.code}` : `REGISTRY_HTTP_${i.status}`;
  return new EngineError(kind, code, msg, { where: registryWhere(i.ctx), hint });
}

/**
 * The `where` of a registry error: the same words the message ends with
 * (`registry 127.0.0.1:5000, repository a/b, digest sha256:…`), so `describe()` does not repeat them.
 */
export function registryWhere(ctx: RegistryContext): string {
  return describeContext(ctx);
}

/** Bad data from a registry (wrong bytes, wrong size, wrong digest, malformed manifest). */
export function registryDataLoss(code: string, message: string, ctx: RegistryContext, hint?: string, cause?: unknown): EngineError {
  return new EngineError('data-loss', code, `${message} (${describeContext(ctx)})`, {
    where: registryWhere(ctx),
    hint: hint ?? 'the registry sent content that does not match what was asked for; try again, and if it persists the registry or a proxy in between is corrupting data',
    cause,
  });
}

export function registryError(kind: ErrorKind, code: string, message: string, ctx: RegistryContext, hint?: string, cause?: unknown): EngineError {
  return new EngineError(kind, code, `${message} (${describeContext(ctx)})`, { where: registryWhere(ctx), hint, cause });
}
