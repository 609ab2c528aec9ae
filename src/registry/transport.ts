/**
 * HTTP transport for registries, on undici: TLS per host (system roots + Docker's
 * `/etc/docker/certs.d/<host[:port]>/` CAs and client pairs), which hosts may use plain
 * HTTP, manual redirects that never carry credentials to another origin, retries with
 * exponential backoff and jitter, and size-capped body reading.
 *
 * Request bodies are always Buffers, so every request can be replayed on retry.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { EngineError, abortError } from '../errors/index.js';
import { describeContext, redactUrl, registryWhere, type RegistryContext } from './errors.js';
import { httpAllowed, isInsecureHost } from './hosts.js';
import { loadCertsDir } from './tls.js';
import { isTransientNetworkError, messages, networkError } from './neterrors.js';

export { hostnameOf, isLoopbackHost, isInsecureHost, httpAllowed } from './hosts.js';
export { loadCertsDir, type HostTls } from './tls.js';
export { classifyNetworkError, isTransientNetworkError, networkError, type NetErrorClass } from './neterrors.js';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type Headers = Record<string, string | string[] | undefined>;
export type Body = Dispatcher.ResponseData['body'];

export interface RetryOptions {
  /** retries after the first attempt (so `retries + 1` attempts in all) */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** the longest `Retry-After` honoured; longer values are shortened to this */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { retries: 4, baseDelayMs: 250, maxDelayMs: 10_000, maxRetryAfterMs: 60_000 };

export interface Timeouts {
  connectMs: number;
  /** time to the response headers */
  headersMs: number;
  /** longest silence while a body is flowing */
  bodyMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 30_000, headersMs: 120_000, bodyMs: 120_000 };

export interface TransportOptions {
  userAgent: string;
  /** `host[:port]` entries or IPv4/IPv6 CIDRs (Docker's `insecure-registries`) */
  insecureRegistries: readonly string[];
  /** Docker's `certs.d` directory */
  certsDir: string;
  retry: RetryOptions;
  timeouts: Timeouts;
  logger?: ((line: string) => void) | undefined;
}

export interface HttpRequest {
  method: Method;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Authorization header value; sent only while the request is on `authOrigin` */
  authorization?: string | undefined;
  authOrigin?: string | undefined;
  signal?: AbortSignal | undefined;
  /** 0 disables following redirects */
  maxRedirects?: number;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  body: Body;
  /** the URL that produced this response (after redirects) */
  url: URL;
  /** the final response came from another origin than `authOrigin` */
  foreign: boolean;
}

export function header(h: Headers, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function headerAll(h: Headers, name: string): string[] {
  const v = h[name.toLowerCase()];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

// ---------- backoff ----------

export function backoffDelay(attempt: number, r: RetryOptions): number {
  const exp = Math.min(r.maxDelayMs, r.baseDelayMs * 2 ** attempt);
  return Math.round(exp / 2 + Math.random() * (exp / 2)); // "equal jitter"
}

/** `Retry-After`: delta-seconds or an HTTP-date; undefined when absent or unreadable. */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) throw abortError(signal);
  if (ms <= 0) return;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

// ---------- body reading ----------

/**
 * Drops a body we will not read further. undici's body emits an error when destroyed before
 * its end; with no listener that error would crash the process.
 */
export function abandon(body: Body): void {
  body.on('error', () => {});
  body.destroy();
}

/** Discards a body without reading much of it (the connection is reused when cheap, else closed). */
export async function discard(body: Body): Promise<void> {
  try {
    await body.dump({ limit: 64 * 1024 });
  } catch {
    /* already destroyed */
  }
}

/**
 * Reads a body of at most `cap` bytes. A `Content-Length` above the cap fails before
 * reading; otherwise bytes are counted as they arrive and reading stops at the first
 * byte over the cap (the connection is destroyed).
 */
export async function readCapped(res: HttpResponse, cap: number, tooLarge: (seen: number, declared: boolean) => Error): Promise<Buffer> {
  const cl = header(res.headers, 'content-length');
  if (cl !== undefined && /^\d+$/.test(cl) && Number(cl) > cap) {
    abandon(res.body);
    throw tooLarge(Number(cl), true);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > cap) {
      abandon(res.body);
      throw tooLarge(n, false);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks, n);
}

/** Reads up to `cap` bytes of an error body; more is dropped, never buffered. */
export async function readErrorBody(res: HttpResponse, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res.body as AsyncIterable<Buffer>) {
      const take = Math.min(c.length, cap - n);
      if (take > 0) chunks.push(c.subarray(0, take));
      n += take;
      if (n >= cap) {
        abandon(res.body);
        break;
      }
    }
  } catch {
    /* a broken error body still yields its status */
  }
  return Buffer.concat(chunks);
}

// ---------- the transport ----------

export class Transport {
  private readonly dispatchers = new Map<string, Promise<Dispatcher>>();
  private closed = false;

  constructor(readonly opts: TransportOptions) {}

  httpAllowed(host: string): boolean {
    return httpAllowed(host, this.opts.insecureRegistries);
  }

  private dispatcherFor(url: URL): Promise<Dispatcher> {
    const key = `${url.protocol}//${url.host}`;
    let d = this.dispatchers.get(key);
    if (!d) {
      d = this.makeDispatcher(url);
      this.dispatchers.set(key, d);
      d.catch(() => this.dispatchers.delete(key));
    }
    return d;
  }

  private async makeDispatcher(url: URL): Promise<Dispatcher> {
    const t = this.opts.timeouts;
    const connect: Record<string, unknown> = { timeout: t.connectMs };
    if (url.protocol === 'https:') {
      const tls = await loadCertsDir(this.opts.certsDir, url.host);
      if (tls.ca) connect.ca = tls.ca;
      if (tls.cert) {
        connect.cert = tls.cert;
        connect.key = tls.key;
      }
      if (isInsecureHost(url.host, this.opts.insecureRegistries)) connect.rejectUnauthorized = false;
    }
    return new Agent({ connect, headersTimeout: t.headersMs, bodyTimeout: t.bodyMs, keepAliveTimeout: 10_000 });
  }

  /** One exchange, following redirects by hand. Network errors are thrown raw (see classifyNetworkError). */
  async send(req: HttpRequest, ctx: RegistryContext): Promise<HttpResponse> {
    if (this.closed) throw new EngineError('failed-precondition', 'REGISTRY_CLIENT_CLOSED', 'registry client is closed');
    let url = req.url;
    let method = req.method;
    let body = req.body;
    const maxRedirects = req.maxRedirects ?? 10;
    for (let hop = 0; ; hop++) {
      if (req.signal?.aborted) throw abortError(req.signal);
      const onAuthOrigin = req.authOrigin !== undefined && url.origin === req.authOrigin;
      const headers: Record<string, string> = { 'user-agent': this.opts.userAgent, ...req.headers };
      if (req.authorization && onAuthOrigin) headers.authorization = req.authorization;
      if (body !== undefined) headers['content-length'] = String(body.length);
      const dispatcher = await this.dispatcherFor(url);
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, { method, headers, body: body ?? null, signal: req.signal, dispatcher });
      } catch (e) {
        // remember which URL failed (it may be a redirect target), for the error message
        if (e && typeof e === 'object') (e as { layerboxUrl?: URL }).layerboxUrl = url;
        throw e;
      }
      this.opts.logger?.(`${method} ${redactUrl(url)} -> ${res.statusCode}`);
      const status = res.statusCode;
      const location = header(res.headers, 'location');
      if (maxRedirects > 0 && [301, 302, 303, 307, 308].includes(status) && location) {
        await discard(res.body);
        if (hop >= maxRedirects) {
          throw new EngineError('unavailable', 'REGISTRY_REDIRECT_LOOP', `too many redirects (${maxRedirects}) starting at ${redactUrl(req.url)} (${describeContext(ctx)})`, {
            where: registryWhere(ctx),
          });
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new EngineError('data-loss', 'REGISTRY_BAD_REDIRECT', `registry redirected to an invalid location (${describeContext(ctx)})`, { where: registryWhere(ctx) });
        }
        if (next.protocol !== 'https:' && next.protocol !== 'http:') {
          throw new EngineError('data-loss', 'REGISTRY_BAD_REDIRECT', `registry redirected to a ${next.protocol} URL (${describeContext(ctx)})`, { where: registryWhere(ctx) });
        }
        if (next.protocol === 'http:' && url.protocol === 'https:' && !this.httpAllowed(next.host)) {
          throw new EngineError('forbidden', 'REGISTRY_INSECURE_REDIRECT', `refusing a redirect from HTTPS to plain HTTP (${redactUrl(next)}) (${describeContext(ctx)})`, {
            where: registryWhere(ctx),
            hint: `list ${next.host} in insecure-registries if this is intended`,
          });
        }
        next.username = '';
        next.password = '';
        if (status === 303 || ((status === 301 || status === 302) && method !== 'GET' && method !== 'HEAD')) {
          method = method === 'HEAD' ? 'HEAD' : 'GET';
          body = undefined;
        }
        url = next;
        continue;
      }
      return { status, headers: res.headers, body: res.body, url, foreign: req.authOrigin !== undefined && !onAuthOrigin };
    }
  }

  /**
   * `send` with retries: network errors (resets, refused, timeouts) and 429/500/502/503/504
   * are retried with exponential backoff and jitter, honouring `Retry-After`. The last
   * response is returned as is when retries run out; network errors become EngineErrors.
   */
  async sendWithRetry(req: HttpRequest, ctx: RegistryContext, retry: RetryOptions = this.opts.retry): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.send(req, ctx);
      } catch (e) {
        if (req.signal?.aborted) throw abortError(req.signal);
        if (e instanceof EngineError) throw e;
        if (isTransientNetworkError(e) && attempt < retry.retries) {
          const d = backoffDelay(attempt, retry);
          this.opts.logger?.(`${req.method} ${redactUrl(req.url)} failed (${messages(e)}); retry ${attempt + 1}/${retry.retries} in ${d} ms`);
          await sleep(d, req.signal);
          continue;
        }
        throw networkError(e, req.url, ctx, req.signal);
      }
      if (RETRY_STATUSES.has(res.status) && attempt < retry.retries) {
        const ra = parseRetryAfter(header(res.headers, 'retry-after'));
        const d = ra !== undefined ? Math.min(ra, retry.maxRetryAfterMs) : backoffDelay(attempt, retry);
        await discard(res.body);
        this.opts.logger?.(`${req.method} ${redactUrl(req.url)} -> ${res.status}; retry ${attempt + 1}/${retry.retries} in ${d} ms`);
        await sleep(d, req.signal);
        continue;
      }
      return res;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const ds = [...this.dispatchers.values()];
    this.dispatchers.clear();
    await Promise.all(ds.map(async (p) => (await p.catch(() => undefined))?.destroy().catch(() => {})));
  }
}

/** Waits for `p` unless `signal` aborts first (the work behind `p` may be shared by other callers). */
export function raceSignal<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
