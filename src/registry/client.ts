/**
 * RegistryClient: the OCI distribution protocol against ONE registry host, written for
 * registries that lie. Everything that comes back is capped, hashed and checked before
 * it is returned; blobs are verified while they stream.
 *
 * Use one client per registry host; it keeps the scheme it found at `/v2/`, the auth
 * challenge, tokens per scope and the connection pools. `close()` when done.
 */
import { readFileSync } from 'node:fs';
import { EngineError, abortError } from '../errors/index.js';
import { isDigest, parseDigest, sha256, type Digest } from '../oci/digest.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../oci/types.js';
import { Authenticator, repositoryScope, type Credentials, type CredentialSource } from './auth.js';
import { parseChallenges } from './challenge.js';
import { describeContext, parseErrorBody, registryDataLoss, registryError, registryMessage, registryWhere, statusError, type RegistryContext } from './errors.js';
import { validateRepository, parseManifestReference } from './names.js';
import {
  DEFAULT_RETRY,
  DEFAULT_TIMEOUTS,
  Transport,
  backoffDelay,
  classifyNetworkError,
  discard,
  header,
  headerAll,
  isTransientNetworkError,
  networkError,
  raceSignal,
  readCapped,
  readErrorBody,
  sleep,
  type HttpResponse,
  type Method,
  type RetryOptions,
  type Timeouts,
} from './transport.js';
import { MANIFEST_MEDIA_TYPES, baseContentType, parseManifest } from './verify.js';
import { openBlob, type OpenBlobOptions } from './blobs.js';
import { mountBlob, uploadBlob, cancelUpload, type MountResult, type UploadOptions, type UploadSession } from './upload.js';

const MiB = 1024 * 1024;

export interface Limits {
  manifestBytes: number;
  configBytes: number;
  tokenBytes: number;
  errorBodyBytes: number;
  /** one page of a tag list */
  tagListBytes: number;
}

export const DEFAULT_LIMITS: Limits = { manifestBytes: 4 * MiB, configBytes: 4 * MiB, tokenBytes: 1 * MiB, errorBodyBytes: 1 * MiB, tagListBytes: 4 * MiB };

export interface RegistryClientOptions {
  /** registry host[:port] as in an image reference: `127.0.0.1:5000`, `ghcr.io`, `docker.io` */
  host: string;
  /** credentials for THIS host, or a source asked for this host only (e.g. a CredentialStore) */
  credentials?: Credentials | CredentialSource | undefined;
  /** Docker's insecure-registries: `host[:port]` or CIDR; HTTPS is tried first, then HTTP; TLS errors are tolerated */
  insecureRegistries?: readonly string[];
  /** Docker's certs.d directory (default /etc/docker/certs.d) */
  certsDir?: string;
  /**
   * The scheme to speak, as an operator's URL names it (a registry mirror's `http://…`):
   * no HTTPS-then-HTTP discovery. Default: HTTPS, then plain HTTP for loopback and
   * insecure hosts.
   */
  scheme?: 'https' | 'http';
  /** default `layerbox/<version>` */
  userAgent?: string;
  retry?: Partial<RetryOptions>;
  timeouts?: Partial<Timeouts>;
  limits?: Partial<Limits>;
  /** Docker treats tokens as valid for at least 60 s; tests lower this */
  minTokenLifetimeSeconds?: number;
  /** resumes of one blob download after mid-body failures (default 5) */
  maxBlobResumes?: number;
  /** request log lines (URLs redacted) */
  logger?: (line: string) => void;
}

export interface ManifestResult {
  mediaType: string;
  /** sha256 of `bytes`, computed here (never taken from a header) */
  digest: Digest;
  size: number;
  bytes: Buffer;
  parsed: Manifest | Index;
}

export interface PingResult {
  /** e.g. `https://ghcr.io/` */
  url: string;
  scheme: 'https' | 'http';
  auth: 'none' | 'basic' | 'bearer';
}

export interface Signal {
  signal?: AbortSignal | undefined;
}

/** What blobs.ts / upload.ts need from the client. */
export interface Caller {
  readonly registry: string;
  readonly limits: Limits;
  readonly retry: RetryOptions;
  readonly maxBlobResumes: number;
  readonly logger: ((line: string) => void) | undefined;
  call(o: CallOptions): Promise<HttpResponse>;
  fail(res: HttpResponse, what: string, ctx: RegistryContext, notFound?: string): Promise<EngineError>;
  blobExists(repo: string, digest: string, opts?: Signal): Promise<number | undefined>;
}

export interface CallOptions {
  method: Method;
  /** path on the registry (`/v2/...`), or `url` */
  path?: string;
  /** absolute URL (upload locations, pagination links) */
  url?: URL;
  headers?: Record<string, string>;
  body?: Buffer;
  scopes: string[];
  ctx: RegistryContext;
  /** for messages: `GET manifest`, `PATCH blob upload` */
  what: string;
  signal?: AbortSignal | undefined;
  maxRedirects?: number;
}

let VERSION = '0.0.0';
try {
  VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
} catch {
  /* not in the package layout */
}
export const DEFAULT_USER_AGENT = `layerbox/${VERSION}`;

/**
 * Whether an HTTPS failure at `/v2/` lets a loopback/insecure host be tried over plain HTTP:
 * only when the other side does not seem to speak TLS at all (protocol mismatch, refused,
 * reset, timeout). A certificate that fails verification, a handshake the server refused
 * (client certificate wanted) or a broken certs.d directory is reported as is.
 */
function fallsBackToHttp(e: EngineError): boolean {
  if (e.code === 'REGISTRY_TLS') return classifyNetworkError(e.cause) === 'tls-protocol';
  return e.code === 'REGISTRY_UNREACHABLE';
}

/** Docker Hub's names → the host that serves its API. */
export function apiHost(host: string): string {
  const h = host.toLowerCase();
  return h === 'docker.io' || h === 'index.docker.io' ? 'registry-1.docker.io' : host;
}

export class RegistryClient implements Caller {
  readonly registry: string;
  readonly limits: Limits;
  readonly retry: RetryOptions;
  readonly maxBlobResumes: number;
  readonly logger: ((line: string) => void) | undefined;
  private readonly host: string;
  private readonly transport: Transport;
  private readonly auth: Authenticator;
  private base: URL | undefined;
  private pinging: Promise<PingResult> | undefined;
  private readonly scheme: 'https' | 'http' | undefined;

  constructor(opts: RegistryClientOptions) {
    if (!opts.host || /[/\s@?#]/.test(opts.host)) {
      throw new EngineError('invalid-argument', 'INVALID_REGISTRY', `invalid registry host ${JSON.stringify(opts.host)}`, { hint: 'give host[:port], without scheme or path' });
    }
    this.registry = opts.host;
    this.host = apiHost(opts.host);
    this.scheme = opts.scheme;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.maxBlobResumes = opts.maxBlobResumes ?? 5;
    this.logger = opts.logger;
    this.transport = new Transport({
      userAgent: opts.userAgent ?? DEFAULT_USER_AGENT,
      insecureRegistries: opts.insecureRegistries ?? [],
      certsDir: opts.certsDir ?? '/etc/docker/certs.d',
      retry: this.retry,
      timeouts: { ...DEFAULT_TIMEOUTS, ...opts.timeouts },
      logger: opts.logger,
    });
    this.auth = new Authenticator({
      registry: opts.host,
      transport: this.transport,
      credentials: opts.credentials,
      minTokenLifetimeSeconds: opts.minTokenLifetimeSeconds ?? 60,
      tokenBytes: this.limits.tokenBytes,
      errorBodyBytes: this.limits.errorBodyBytes,
      clientId: 'layerbox',
    });
  }

  // ---------- /v2/ and scheme ----------

  /**
   * `GET /v2/`: finds the scheme (HTTPS; plain HTTP only for loopback and insecure hosts,
   * after HTTPS failed) and the auth challenge. Run once per client, lazily.
   */
  ping(opts: Signal = {}): Promise<PingResult> {
    if (!this.pinging) {
      const p = this.doPing();
      this.pinging = p;
      p.then(
        (r) => (this.base = new URL(r.url)),
        () => {
          if (this.pinging === p) this.pinging = undefined;
        },
      );
    }
    return raceSignal(this.pinging, opts.signal);
  }

  private async endpoint(signal?: AbortSignal): Promise<URL> {
    if (this.base) return this.base;
    await this.ping({ signal });
    return this.base!;
  }

  private async doPing(): Promise<PingResult> {
    const ctx: RegistryContext = { registry: this.registry };
    const schemes: ('https' | 'http')[] = this.scheme ? [this.scheme] : this.transport.httpAllowed(this.host) ? ['https', 'http'] : ['https'];
    let httpsError: EngineError | undefined;
    for (const [i, scheme] of schemes.entries()) {
      const last = i === schemes.length - 1;
      const url = new URL(`${scheme}://${this.host}/v2/`);
      let res: HttpResponse;
      try {
        res = await this.transport.sendWithRetry({ method: 'GET', url, headers: { accept: 'application/json' } }, ctx, last ? this.retry : { ...this.retry, retries: 0 });
      } catch (e) {
        if (!last && e instanceof EngineError && e.kind !== 'cancelled' && fallsBackToHttp(e)) {
          httpsError = e;
          this.logger?.(`https://${this.host}/v2/ failed (${e.message}); trying plain HTTP`);
          continue;
        }
        if (httpsError && e instanceof EngineError && e.kind !== 'cancelled') {
          throw new EngineError(e.kind, e.code, `${e.message}; HTTPS failed too: ${httpsError.message}`, { where: e.where, hint: e.hint, cause: e });
        }
        throw e;
      }
      if (httpsError && res.status !== 200 && res.status !== 401) {
        // e.g. a TLS-only server answering "400 Client sent an HTTP request to an HTTPS server"
        await discard(res.body);
        throw httpsError;
      }
      if (res.status === 200 || res.status === 401) {
        const chs = res.status === 401 ? parseChallenges(res.headers['www-authenticate']) : [];
        await discard(res.body);
        this.auth.setChallenges(chs);
        return { url: `${scheme}://${this.host}/`, scheme, auth: this.auth.scheme };
      }
      if (res.status === 404) {
        await discard(res.body);
        throw registryError('unsupported', 'REGISTRY_NOT_V2', `${scheme}://${this.host}/v2/ answered 404: not an OCI/Docker v2 registry`, ctx);
      }
      throw await this.fail(res, 'GET /v2/', ctx);
    }
    throw new EngineError('internal', 'REGISTRY_PING', 'unreachable');
  }

  /** `login`: an authenticated `GET /v2/` must succeed with the credentials given. */
  async verifyCredentials(opts: Signal = {}): Promise<void> {
    const ctx: RegistryContext = { registry: this.registry };
    const res = await this.call({ method: 'GET', path: '/v2/', scopes: [], ctx, what: 'GET /v2/ (login)', signal: opts.signal });
    if (res.status === 200) {
      await discard(res.body);
      return;
    }
    throw await this.fail(res, 'GET /v2/ (login)', ctx);
  }

  // ---------- requests ----------

  /**
   * One authenticated request (with retries, redirects and ONE re-authentication on 401).
   * Authorization is attached only to requests on the registry's own origin.
   */
  async call(o: CallOptions): Promise<HttpResponse> {
    const base = await this.endpoint(o.signal);
    const url = o.url ?? new URL(o.path!, base);
    let reauthenticated = false;
    let scopes = o.scopes;
    for (;;) {
      const authz = url.origin === base.origin ? await raceSignal(this.auth.authorization(scopes, o.ctx), o.signal) : undefined;
      const res = await this.transport.sendWithRetry(
        { method: o.method, url, headers: o.headers, body: o.body, authorization: authz, authOrigin: base.origin, signal: o.signal, maxRedirects: o.maxRedirects },
        o.ctx,
      );
      if (res.status !== 401) return res;
      if (res.foreign) {
        await discard(res.body);
        throw registryError(
          'unauthorized',
          'REGISTRY_FOREIGN_AUTH',
          `${res.url.host}, where the registry redirected ${o.what}, asks for credentials; credentials for ${this.registry} are never sent to another host`,
          o.ctx,
        );
      }
      const chs = parseChallenges(res.headers['www-authenticate']);
      if (!reauthenticated && (await raceSignal(this.auth.onUnauthorized(chs, scopes, authz), o.signal))) {
        reauthenticated = true;
        // `error="insufficient_scope", scope="…"`: ask for what the registry says it needs as well
        const wanted = chs.find((ch) => ch.scheme === 'bearer')?.params.scope;
        if (wanted) scopes = [...new Set([...scopes, ...wanted.split(' ').filter((x) => /^[a-z]+:[^\s]+:[a-z*,]+$/.test(x))])];
        await discard(res.body);
        continue;
      }
      const had = await this.auth.hasCredentials();
      const body = await readErrorBody(res, this.limits.errorBodyBytes);
      const entries = parseErrorBody(body);
      const regMsg = registryMessage(entries, 401);
      throw new EngineError(
        'unauthorized',
        entries[0] && entries[0].code !== 'UNKNOWN' ? `REGISTRY_${entries[0].code}` : 'REGISTRY_HTTP_401',
        `${regMsg}: ${o.what} on ${o.ctx.repository ? `repository ${o.ctx.repository}` : this.registry} was refused ${had ? `with the credentials stored for ${this.registry}` : 'without credentials'}${reauthenticated ? ', also after authenticating again' : ''} (${describeContext(o.ctx)})`,
        {
          where: registryWhere(o.ctx),
          hint: had
            ? `check the credentials for ${this.registry} ('layerbox login ${this.registry}')`
            : `the repository may not exist, or may require 'layerbox login ${this.registry}'`,
        },
      );
    }
  }

  /** The error for an unexpected response (reads at most `limits.errorBodyBytes` of its body). */
  async fail(res: HttpResponse, what: string, ctx: RegistryContext, notFound?: string): Promise<EngineError> {
    const body = await readErrorBody(res, this.limits.errorBodyBytes);
    return statusError({ status: res.status, body, what, notFound, ctx });
  }

  /**
   * GET a small document: status check, then a capped read; a transient failure while the
   * body is read repeats the whole request.
   */
  private async fetchSmall(o: CallOptions, ok: number[], cap: number, tooLarge: (n: number, declared: boolean) => Error, notFound?: string) {
    for (let attempt = 0; ; attempt++) {
      const res = await this.call(o);
      if (!ok.includes(res.status)) throw await this.fail(res, o.what, o.ctx, notFound);
      try {
        return { res, bytes: await readCapped(res, cap, tooLarge) };
      } catch (e) {
        if (o.signal?.aborted) throw abortError(o.signal);
        if (e instanceof EngineError) throw e;
        if (isTransientNetworkError(e) && attempt < this.retry.retries) {
          await sleep(backoffDelay(attempt, this.retry), o.signal);
          continue;
        }
        throw networkError(e, res.url, o.ctx, o.signal);
      }
    }
  }

  // ---------- manifests ----------

  /**
   * GET a manifest by tag or digest. The body is capped at 4 MiB, hashed here, checked
   * against the digest asked for (and against `Docker-Content-Digest`), and validated
   * (schema 2, media type agreement, no index/manifest confusion, schema 1 refused).
   */
  async getManifest(repo: string, reference: string, opts: Signal & { accept?: readonly string[] } = {}): Promise<ManifestResult> {
    validateRepository(repo, this.registry);
    const ref = parseManifestReference(reference, `${this.registry}/${repo}`);
    const ctx: RegistryContext = { registry: this.registry, repository: repo, digest: ref.digest, tag: ref.tag };
    const cap = this.limits.manifestBytes;
    const { res, bytes } = await this.fetchSmall(
      {
        method: 'GET',
        path: `/v2/${repo}/manifests/${reference}`,
        headers: { accept: (opts.accept ?? MANIFEST_MEDIA_TYPES).join(', ') },
        scopes: [repositoryScope(repo)],
        ctx,
        what: 'GET manifest',
        signal: opts.signal,
      },
      [200],
      cap,
      (n, declared) =>
        registryError('resource-exhausted', 'REGISTRY_MANIFEST_TOO_LARGE', `manifest ${ref.digest ?? `tagged by ${JSON.stringify(ref.tag)}`} is larger than the ${cap} bytes allowed (${declared ? 'declared' : 'received at least'} ${n} bytes); refusing it`, ctx),
      ref.digest ? `manifest ${ref.digest} is not found` : `manifest tagged by ${JSON.stringify(ref.tag)} is not found`,
    );
    const digest = sha256(bytes);
    if (ref.digest && digest !== ref.digest) {
      throw registryDataLoss('REGISTRY_DIGEST_MISMATCH', `manifest ${ref.digest} failed verification: the registry sent content with digest ${digest}`, ctx);
    }
    const dcd = header(res.headers, 'docker-content-digest')?.trim();
    if (dcd && (dcd.startsWith('sha256:') || !dcd.includes(':')) && dcd !== digest) {
      throw registryDataLoss(
        'REGISTRY_DIGEST_MISMATCH',
        `manifest ${ref.digest ?? `tagged by ${JSON.stringify(ref.tag)}`} failed verification: Docker-Content-Digest says ${JSON.stringify(dcd.slice(0, 80))} but the body hashes to ${digest}`,
        { ...ctx, digest: ctx.digest ?? digest },
      );
    }
    const { mediaType, parsed } = parseManifest(bytes, header(res.headers, 'content-type'), { ...ctx, digest });
    return { mediaType, digest, size: bytes.length, bytes, parsed };
  }

  /**
   * HEAD a manifest: what the registry CLAIMS (digest, type, size), unverified; undefined when
   * absent. Use the digest to GET the manifest by digest, which is verified.
   */
  async headManifest(repo: string, reference: string, opts: Signal & { accept?: readonly string[] } = {}): Promise<{ digest?: Digest; mediaType: string; size?: number } | undefined> {
    validateRepository(repo, this.registry);
    const ref = parseManifestReference(reference, `${this.registry}/${repo}`);
    const ctx: RegistryContext = { registry: this.registry, repository: repo, digest: ref.digest, tag: ref.tag };
    const res = await this.call({
      method: 'HEAD',
      path: `/v2/${repo}/manifests/${reference}`,
      headers: { accept: (opts.accept ?? MANIFEST_MEDIA_TYPES).join(', ') },
      scopes: [repositoryScope(repo)],
      ctx,
      what: 'HEAD manifest',
      signal: opts.signal,
    });
    await discard(res.body);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.fail(res, 'HEAD manifest', ctx);
    const dcd = header(res.headers, 'docker-content-digest')?.trim();
    const cl = header(res.headers, 'content-length');
    const out: { digest?: Digest; mediaType: string; size?: number } = { mediaType: baseContentType(header(res.headers, 'content-type')) };
    if (isDigest(dcd)) out.digest = dcd;
    if (cl && /^\d+$/.test(cl)) out.size = Number(cl);
    if (ref.digest && out.digest && out.digest !== ref.digest) {
      throw registryDataLoss('REGISTRY_DIGEST_MISMATCH', `HEAD of manifest ${ref.digest} answered with digest ${out.digest}`, ctx);
    }
    return out;
  }

  /**
   * PUT a manifest under a tag or its digest; returns its digest. The bytes are validated
   * like a pulled manifest; `mediaType` must be the body's `mediaType` when it has one.
   */
  async putManifest(repo: string, reference: string, mediaType: string, bytes: Buffer, opts: Signal = {}): Promise<Digest> {
    validateRepository(repo, this.registry);
    const ref = parseManifestReference(reference, `${this.registry}/${repo}`);
    const digest = sha256(bytes);
    const ctx: RegistryContext = { registry: this.registry, repository: repo, digest, tag: ref.tag };
    if (bytes.length > this.limits.manifestBytes) {
      throw registryError('resource-exhausted', 'REGISTRY_MANIFEST_TOO_LARGE', `manifest is ${bytes.length} bytes, more than the ${this.limits.manifestBytes} allowed`, ctx);
    }
    if (ref.digest && ref.digest !== digest) {
      throw new EngineError('invalid-argument', 'MANIFEST_DIGEST_MISMATCH', `cannot push manifest as ${ref.digest}: its bytes hash to ${digest}`, { where: registryWhere(ctx) });
    }
    const checked = parseManifest(bytes, mediaType, ctx);
    const res = await this.call({
      method: 'PUT',
      path: `/v2/${repo}/manifests/${reference}`,
      headers: { 'content-type': checked.mediaType },
      body: bytes,
      scopes: [repositoryScope(repo, true)],
      ctx,
      what: 'PUT manifest',
      signal: opts.signal,
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await this.fail(res, 'PUT manifest', ctx);
    await discard(res.body);
    const dcd = header(res.headers, 'docker-content-digest')?.trim();
    if (dcd && dcd.startsWith('sha256:') && dcd !== digest) {
      throw registryDataLoss('REGISTRY_DIGEST_MISMATCH', `the registry stored manifest ${digest} as ${JSON.stringify(dcd.slice(0, 80))}`, ctx);
    }
    return digest;
  }

  // ---------- blobs ----------

  /**
   * Streams a blob, verifying on the fly (size counted, sha256 hashed, resumed with Range
   * after a reset). Chunks are UNVERIFIED until the iteration completes normally: only then
   * are size and digest known to match. Never buffers the blob.
   */
  openBlob(repo: string, descriptor: Descriptor, opts: OpenBlobOptions = {}): AsyncGenerator<Buffer, void, undefined> {
    validateRepository(repo, this.registry);
    return openBlob(this, repo, descriptor, opts);
  }

  /** A small blob, whole, verified; refused up front when the descriptor's size exceeds `capBytes`. */
  async getBlobBytes(repo: string, descriptor: Descriptor, capBytes: number, opts: Signal = {}): Promise<Buffer> {
    validateRepository(repo, this.registry);
    const digest = parseDigest(descriptor.digest, `${this.registry}/${repo}`);
    const ctx: RegistryContext = { registry: this.registry, repository: repo, digest };
    if (!Number.isSafeInteger(descriptor.size) || descriptor.size < 0) {
      throw new EngineError('invalid-argument', 'INVALID_DESCRIPTOR', `descriptor of ${digest} has an invalid size`, { where: registryWhere(ctx) });
    }
    if (descriptor.size > capBytes) {
      throw registryError('resource-exhausted', 'REGISTRY_BLOB_TOO_LARGE', `blob ${digest} is ${descriptor.size} bytes, more than the ${capBytes} allowed here; refusing it`, ctx);
    }
    const parts: Buffer[] = [];
    for await (const c of openBlob(this, repo, descriptor, opts)) parts.push(c);
    return Buffer.concat(parts);
  }

  /** An image config (capped at 4 MiB, verified, parsed as a JSON object). */
  async getConfig(repo: string, descriptor: Descriptor, opts: Signal = {}): Promise<{ bytes: Buffer; parsed: ImageConfig }> {
    const bytes = await this.getBlobBytes(repo, descriptor, this.limits.configBytes, opts);
    let j: unknown;
    try {
      j = JSON.parse(bytes.toString('utf8'));
    } catch {
      j = undefined;
    }
    if (!j || typeof j !== 'object' || Array.isArray(j)) {
      throw registryDataLoss('REGISTRY_CONFIG_INVALID', `config ${descriptor.digest} is not a JSON object`, { registry: this.registry, repository: repo, digest: descriptor.digest });
    }
    return { bytes, parsed: j as ImageConfig };
  }

  /** HEAD a blob: its size when the repository has it, undefined when not. */
  async blobExists(repo: string, digest: string, opts: Signal = {}): Promise<number | undefined> {
    validateRepository(repo, this.registry);
    const d = parseDigest(digest, `${this.registry}/${repo}`);
    const ctx: RegistryContext = { registry: this.registry, repository: repo, digest: d };
    const res = await this.call({ method: 'HEAD', path: `/v2/${repo}/blobs/${d}`, scopes: [repositoryScope(repo)], ctx, what: 'HEAD blob', signal: opts.signal });
    await discard(res.body);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.fail(res, 'HEAD blob', ctx);
    const dcd = header(res.headers, 'docker-content-digest')?.trim();
    if (dcd && dcd.startsWith('sha256:') && dcd !== d) {
      throw registryDataLoss('REGISTRY_DIGEST_MISMATCH', `HEAD of blob ${d} answered with digest ${JSON.stringify(dcd.slice(0, 80))}`, ctx);
    }
    const cl = header(res.headers, 'content-length');
    if (!cl || !/^\d+$/.test(cl)) {
      throw registryDataLoss('REGISTRY_PROTOCOL', `HEAD of blob ${d} answered without a Content-Length`, ctx);
    }
    return Number(cl);
  }

  /**
   * Cross-repository mount (`POST ?mount=&from=`). 201 → `{ mounted: true }`. 202 means the
   * registry started an upload instead: it is cancelled, unless `keepUpload`, in which case
   * its session is returned for `uploadBlob(..., { session })`.
   */
  mountBlob(repo: string, digest: string, fromRepo: string, opts: Signal & { keepUpload?: boolean } = {}): Promise<MountResult> {
    validateRepository(repo, this.registry);
    validateRepository(fromRepo, this.registry);
    return mountBlob(this, repo, parseDigest(digest, `${this.registry}/${repo}`), fromRepo, opts);
  }

  /**
   * Uploads a blob from a stream: monolithic PUT when it fits in one chunk, else chunked
   * PATCHes; the digest is computed while streaming and checked against `opts.digest`/`size`.
   */
  uploadBlob(repo: string, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: UploadOptions = {}): Promise<{ digest: Digest; size: number }> {
    validateRepository(repo, this.registry);
    return uploadBlob(this, repo, source, opts);
  }

  /** Cancels an upload session (best effort). */
  cancelUpload(repo: string, session: UploadSession, opts: Signal = {}): Promise<void> {
    validateRepository(repo, this.registry);
    return cancelUpload(this, repo, session.location, opts.signal);
  }

  // ---------- tags ----------

  /** All tags of a repository, following `Link: <…>; rel="next"` pagination. */
  async listTags(repo: string, opts: Signal & { pageSize?: number } = {}): Promise<string[]> {
    validateRepository(repo, this.registry);
    const ctx: RegistryContext = { registry: this.registry, repository: repo };
    const base = await this.endpoint(opts.signal);
    let url: URL | undefined = new URL(`/v2/${repo}/tags/list`, base);
    if (opts.pageSize) url.search = `?n=${Math.max(1, Math.floor(opts.pageSize))}`;
    const tags: string[] = [];
    const seen = new Set<string>();
    for (let page = 0; url; page++) {
      if (page >= 10_000 || seen.has(url.href)) {
        throw registryDataLoss('REGISTRY_PAGINATION_LOOP', `tag list pagination does not end (page ${page})`, ctx);
      }
      seen.add(url.href);
      const cap = this.limits.tagListBytes;
      const { res, bytes } = await this.fetchSmall(
        { method: 'GET', url, headers: { accept: 'application/json' }, scopes: [repositoryScope(repo)], ctx, what: 'GET tag list', signal: opts.signal },
        [200],
        cap,
        (n) => registryError('resource-exhausted', 'REGISTRY_TAGS_TOO_LARGE', `a tag list page is larger than ${cap} bytes (${n})`, ctx),
        `repository ${repo} is not found`,
      );
      let j: { tags?: unknown };
      try {
        j = JSON.parse(bytes.toString('utf8')) as { tags?: unknown };
      } catch {
        throw registryDataLoss('REGISTRY_PROTOCOL', 'tag list is not valid JSON', ctx);
      }
      if (j.tags !== null && j.tags !== undefined) {
        if (!Array.isArray(j.tags) || !j.tags.every((t) => typeof t === 'string')) throw registryDataLoss('REGISTRY_PROTOCOL', 'tag list has an invalid "tags" field', ctx);
        tags.push(...(j.tags as string[]));
      }
      url = nextLink(headerAll(res.headers, 'link'), res.url);
      if (url && url.origin !== base.origin) {
        throw registryDataLoss('REGISTRY_PROTOCOL', `tag list pagination points to another host (${url.host})`, ctx);
      }
    }
    return tags;
  }

  /** Closes the connection pools. */
  async close(): Promise<void> {
    await this.transport.close();
  }
}

/** `Link: </v2/x/tags/list?last=b&n=2>; rel="next"` → absolute URL. */
export function nextLink(values: string[], base: URL): URL | undefined {
  for (const v of values) {
    for (const part of v.split(/,(?=\s*<)/)) {
      const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
      if (!m) continue;
      if (!/(?:^|;)\s*rel\s*=\s*"?next"?\s*(?:;|$)/i.test(m[2]!)) continue;
      try {
        return new URL(m[1]!, base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

