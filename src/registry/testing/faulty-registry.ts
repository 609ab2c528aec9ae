/**
 * FaultyRegistry — a FAULT-INJECTING TEST DOUBLE of an OCI registry (node:http), for tests
 * only. It exists solely for the faults a real registry will not make on request: wrong
 * bytes for a digest, short bodies, extra bytes, connections reset mid-layer, manifests
 * that hash to another digest, oversized manifests/configs/tokens/error bodies, ambiguous
 * (index + manifest) documents, endless 401s, 5xx storms, redirects of blob GETs to
 * another host, token realms over plain HTTP to a non-loopback host, lost responses.
 * Everything the protocol does normally is tested against the real docker-registry
 * (see registries.ts).
 *
 * It serves the blobs and manifests it is given (blobs under any repository), supports
 * Range on blob GETs, a minimal upload flow (POST/PATCH/PUT/GET/DELETE), Basic or Bearer
 * auth (with its own /token endpoint issuing opaque tokens), and records every request
 * (method, URL, Authorization, Range, status).
 *
 * Faults are rules: `inject({ method, path, times, fault })`; the first matching rule with
 * times left applies to a request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export type Fault =
  /** same length, different bytes */
  | { kind: 'wrong-bytes' }
  /** `missing` bytes fewer than the blob (default 10), with an honest Content-Length, or chunked without one */
  | { kind: 'short-body'; missing?: number; chunked?: boolean }
  /** `extra` bytes (default 10) appended, with a Content-Length that counts them, or chunked */
  | { kind: 'extra-bytes'; extra?: number; chunked?: boolean }
  /** announce the full length, send `bytes` bytes, then reset the connection */
  | { kind: 'reset-after'; bytes: number }
  /** answer a Range request with 200 and the whole content */
  | { kind: 'ignore-range' }
  /** answer with this status (and optional Retry-After / body) */
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  /** serve this body instead of the real one */
  | { kind: 'body'; body: Buffer | string; contentType?: string; status?: number; headers?: Record<string, string> }
  /** serve normally, but with these headers set/overridden */
  | { kind: 'headers'; headers: Record<string, string> }
  /** stream this many bytes (with or without Content-Length) */
  | { kind: 'huge'; bytes: number; chunked?: boolean; status?: number; contentType?: string }
  /** 401 with the auth challenge whatever credentials were sent */
  | { kind: 'unauthorized' }
  /** redirect to `to` + the request's path and query */
  | { kind: 'redirect'; to: string; status?: number }
  /** handle the request (state changes happen), then reset the connection instead of answering */
  | { kind: 'drop-response' };

export interface FaultRule {
  method?: string;
  /** exact path (without query), or a RegExp tested against path+query */
  path?: string | RegExp;
  /** how many requests it applies to (default: all) */
  times?: number;
  fault: Fault;
}

export interface FaultyRequest {
  method: string;
  /** path and query */
  url: string;
  path: string;
  authorization: string | undefined;
  range: string | undefined;
  /** 0 when the connection was reset instead of answered */
  status: number;
}

export type FaultyAuth =
  | { kind: 'none' }
  | { kind: 'basic'; user: string; password: string }
  | {
      kind: 'bearer';
      /** when set, the token endpoint requires these Basic credentials */
      user?: string;
      password?: string;
      /** realm announced in the challenge (default: this server's /token) */
      realm?: string;
      service?: string;
      expiresIn?: number;
    };

export interface FaultyRegistryOptions {
  /** listen address (default 127.0.0.1; use 127.0.0.2 for "another host") */
  host?: string;
  auth?: FaultyAuth;
}

interface StoredManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

export class FaultyRegistry {
  private server!: Server;
  private readonly blobs = new Map<string, Buffer>();
  private readonly manifests = new Map<string, StoredManifest>(); // `${repo}@${ref}`
  private readonly rules: FaultRule[] = [];
  private readonly tokens = new Set<string>();
  private readonly uploads = new Map<string, Buffer[]>();
  readonly requests: FaultyRequest[] = [];
  /** bytes actually written by the last 'huge' fault before the client hung up */
  hugeBytesSent = 0;
  host = '';
  url = '';

  private constructor(private readonly o: FaultyRegistryOptions) {}

  static async start(o: FaultyRegistryOptions = {}): Promise<FaultyRegistry> {
    const r = new FaultyRegistry(o);
    r.server = createServer((req, res) => {
      r.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end(String(e));
        } else res.destroy();
      });
    });
    await new Promise<void>((resolve) => r.server.listen(0, o.host ?? '127.0.0.1', resolve));
    const a = r.server.address() as AddressInfo;
    r.host = `${o.host ?? '127.0.0.1'}:${a.port}`;
    r.url = `http://${r.host}`;
    return r;
  }

  /** Adds a blob (served under any repository); returns its descriptor fields. */
  addBlob(data: Buffer | string, mediaType = 'application/octet-stream'): { mediaType: string; digest: string; size: number } {
    const b = Buffer.from(data);
    const digest = sha(b);
    this.blobs.set(digest, b);
    return { mediaType, digest, size: b.length };
  }

  /** Adds a manifest to `repo` under its digest and the given tags. */
  addManifest(repo: string, tags: string | string[] | undefined, body: Buffer | string | object, mediaType: string): { mediaType: string; digest: string; size: number } {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const digest = sha(bytes);
    const m = { bytes, mediaType, digest };
    this.manifests.set(`${repo}@${digest}`, m);
    for (const t of tags === undefined ? [] : Array.isArray(tags) ? tags : [tags]) this.manifests.set(`${repo}@${t}`, m);
    return { mediaType, digest, size: bytes.length };
  }

  hasBlob(digest: string): boolean {
    return this.blobs.has(digest);
  }

  inject(rule: FaultRule): void {
    this.rules.push({ ...rule });
  }

  clearFaults(): void {
    this.rules.length = 0;
  }

  private takeFault(method: string, path: string, url: string): Fault | undefined {
    for (const r of this.rules) {
      if (r.times !== undefined && r.times <= 0) continue;
      if (r.method && r.method !== method) continue;
      if (r.path !== undefined && (typeof r.path === 'string' ? r.path !== path : !r.path.test(url))) continue;
      if (r.times !== undefined) r.times--;
      return r.fault;
    }
    return undefined;
  }

  private challenge(): string {
    const a = this.o.auth ?? { kind: 'none' };
    if (a.kind === 'basic') return 'Basic realm="faulty-registry"';
    if (a.kind === 'bearer') return `Bearer realm="${a.realm ?? `${this.url}/token`}",service="${a.service ?? 'faulty-registry'}"`;
    return 'Basic realm="faulty-registry"';
  }

  private authorized(req: IncomingMessage): boolean {
    const a = this.o.auth ?? { kind: 'none' };
    const h = req.headers.authorization;
    if (a.kind === 'none') return true;
    if (a.kind === 'basic') return h === 'Basic ' + Buffer.from(`${a.user}:${a.password}`).toString('base64');
    return !!h && h.startsWith('Bearer ') && this.tokens.has(h.slice(7));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const path = url.split('?')[0]!;
    const entry: FaultyRequest = { method, url, path, authorization: req.headers.authorization, range: req.headers.range, status: 0 };
    this.requests.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const fault = this.takeFault(method, path, url);

    if (fault?.kind === 'redirect') {
      res.writeHead(fault.status ?? 307, { location: fault.to + url });
      res.end();
      return;
    }
    if (fault?.kind === 'status') {
      const h: Record<string, string> = { 'content-type': 'application/json' };
      if (fault.retryAfter !== undefined) h['retry-after'] = fault.retryAfter;
      res.writeHead(fault.status, h);
      res.end(fault.body ?? JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `injected ${fault.status}` }] }));
      return;
    }
    if (fault?.kind === 'huge') {
      await this.streamHuge(res, fault);
      return;
    }
    if (fault?.kind === 'drop-response' && !path.includes('/blobs/uploads/')) {
      res.socket?.destroy();
      return;
    }
    if (fault?.kind === 'body' && path !== '/token') {
      const b = Buffer.from(fault.body);
      res.writeHead(fault.status ?? 200, { 'content-type': fault.contentType ?? 'application/json', 'content-length': String(b.length), ...fault.headers });
      res.end(method === 'HEAD' ? undefined : b);
      return;
    }

    if (path === '/token') return this.token(req, res, fault);

    if (fault?.kind === 'unauthorized' || !this.authorized(req)) {
      res.writeHead(401, { 'www-authenticate': this.challenge(), 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    if (path === '/v2/' || path === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' });
      res.end('{}');
      return;
    }
    let m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(path);
    if (m) return this.upload(req, res, m[1]!, m[2]!, url, body, fault);
    m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path);
    if (m) return this.blob(req, res, m[2]!, fault);
    m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (m) return this.manifest(req, res, m[1]!, m[2]!, fault);
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] }));
  }

  private async token(req: IncomingMessage, res: ServerResponse, fault: Fault | undefined): Promise<void> {
    const a = this.o.auth;
    if (fault?.kind === 'body') {
      const b = Buffer.from(fault.body);
      res.writeHead(fault.status ?? 200, { 'content-type': 'application/json', 'content-length': String(b.length) });
      res.end(b);
      return;
    }
    if (a?.kind === 'bearer' && a.user !== undefined) {
      const want = 'Basic ' + Buffer.from(`${a.user}:${a.password ?? ''}`).toString('base64');
      if (req.headers.authorization !== want) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] }));
        return;
      }
    }
    const t = randomBytes(16).toString('hex');
    this.tokens.add(t);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: t, expires_in: a?.kind === 'bearer' ? a.expiresIn ?? 300 : 300, issued_at: new Date().toISOString() }));
  }

  private async streamHuge(res: ServerResponse, f: Extract<Fault, { kind: 'huge' }>): Promise<void> {
    const headers: Record<string, string> = { 'content-type': f.contentType ?? 'application/json' };
    if (!f.chunked) headers['content-length'] = String(f.bytes);
    res.writeHead(f.status ?? 200, headers);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    chunk.write('{"schemaVersion":2,"filler":"');
    this.hugeBytesSent = 0;
    let closed = false;
    let wake: (() => void) | undefined;
    res.on('close', () => {
      closed = true;
      wake?.();
    });
    res.on('drain', () => wake?.());
    while (this.hugeBytesSent < f.bytes && !closed) {
      const n = Math.min(chunk.length, f.bytes - this.hugeBytesSent);
      const ok = res.write(chunk.subarray(0, n));
      this.hugeBytesSent += n;
      if (!ok) await new Promise<void>((r) => (wake = r));
    }
    if (!closed) res.end();
  }

  private send(req: IncomingMessage, res: ServerResponse, data: Buffer, headers: Record<string, string>, fault: Fault | undefined, rangeable: boolean): void {
    let status = 200;
    let payload = data;
    const h: Record<string, string> = { ...headers };
    if (fault?.kind === 'headers') Object.assign(h, fault.headers);
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (rangeable && range && fault?.kind !== 'ignore-range') {
      const from = Number(range[1]);
      const to = range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
      if (from >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` });
        res.end();
        return;
      }
      status = 206;
      payload = data.subarray(from, to + 1);
      h['content-range'] = `bytes ${from}-${to}/${data.length}`;
    }
    if (fault?.kind === 'wrong-bytes') {
      payload = Buffer.from(payload);
      if (payload.length > 0) payload[payload.length >> 1] ^= 0xff;
    }
    let chunked = false;
    if (fault?.kind === 'short-body') {
      payload = payload.subarray(0, Math.max(0, payload.length - (fault.missing ?? 10)));
      chunked = !!fault.chunked;
    }
    if (fault?.kind === 'extra-bytes') {
      payload = Buffer.concat([payload, Buffer.alloc(fault.extra ?? 10, 0x21)]);
      chunked = !!fault.chunked;
    }
    if (fault?.kind === 'reset-after') {
      h['content-length'] = String(payload.length);
      res.writeHead(status, h);
      res.write(payload.subarray(0, fault.bytes), () => setTimeout(() => res.socket?.destroy(), 30));
      return;
    }
    if (!chunked) h['content-length'] = String(payload.length);
    res.writeHead(status, h);
    if (req.method === 'HEAD') res.end();
    else if (chunked) {
      // two writes without Content-Length: node uses chunked encoding
      res.write(payload.subarray(0, payload.length >> 1));
      res.end(payload.subarray(payload.length >> 1));
    } else res.end(payload);
  }

  private blob(req: IncomingMessage, res: ServerResponse, digest: string, fault: Fault | undefined): void {
    const b = this.blobs.get(digest);
    if (!b) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry', detail: digest }] }));
      return;
    }
    this.send(req, res, b, { 'content-type': 'application/octet-stream', 'docker-content-digest': digest, 'accept-ranges': 'bytes' }, fault, true);
  }

  private manifest(req: IncomingMessage, res: ServerResponse, repo: string, ref: string, fault: Fault | undefined): void {
    const m = this.manifests.get(`${repo}@${ref}`);
    if (!m) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: ref } }] }));
      return;
    }
    this.send(req, res, m.bytes, { 'content-type': m.mediaType, 'docker-content-digest': m.digest }, fault, false);
  }

  private upload(req: IncomingMessage, res: ServerResponse, repo: string, id: string, url: string, body: Buffer, fault: Fault | undefined): void {
    const method = req.method;
    const respond = (status: number, headers: Record<string, string>) => {
      if (fault?.kind === 'drop-response') {
        res.socket?.destroy();
        return;
      }
      res.writeHead(status, headers);
      res.end();
    };
    if (method === 'POST' && !id) {
      const q = new URL(url, 'http://x').searchParams;
      const mount = q.get('mount');
      if (mount && this.blobs.has(mount)) return respond(201, { location: `/v2/${repo}/blobs/${mount}`, 'docker-content-digest': mount });
      const nid = randomUUID();
      this.uploads.set(nid, []);
      return respond(202, { location: `/v2/${repo}/blobs/uploads/${nid}?_state=${randomBytes(8).toString('hex')}`, range: '0-0' });
    }
    const parts = this.uploads.get(id);
    if (!parts) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_UNKNOWN', message: 'blob upload unknown to registry' }] }));
      return;
    }
    const size = parts.reduce((a, b) => a + b.length, 0);
    const loc = `/v2/${repo}/blobs/uploads/${id}?_state=${randomBytes(8).toString('hex')}`;
    const rangeHeader = (n: number) => `0-${Math.max(0, n - 1)}`;
    if (method === 'GET') return respond(204, { location: loc, range: rangeHeader(size) });
    if (method === 'DELETE') {
      this.uploads.delete(id);
      return respond(204, {});
    }
    const cr = req.headers['content-range'];
    if (body.length > 0 && cr !== undefined) {
      const m = /^(\d+)-(\d+)$/.exec(cr);
      if (!m || Number(m[1]) !== size || Number(m[2]) - Number(m[1]) + 1 !== body.length) {
        res.writeHead(416, { location: loc, range: rangeHeader(size) });
        res.end();
        return;
      }
    }
    if (body.length > 0) parts.push(body);
    const total = size + body.length;
    if (method === 'PATCH') return respond(202, { location: loc, range: rangeHeader(total) });
    if (method === 'PUT') {
      const digest = new URL(url, 'http://x').searchParams.get('digest') ?? '';
      const all = Buffer.concat(parts);
      if (sha(all) !== digest) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' }] }));
        return;
      }
      this.blobs.set(digest, all);
      this.uploads.delete(id);
      return respond(201, { location: `/v2/${repo}/blobs/${digest}`, 'docker-content-digest': digest });
    }
    res.writeHead(405);
    res.end();
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
