/**
 * Blob upload: POST to open a session, then one monolithic PUT when the blob fits in one
 * chunk, else PATCHes of `chunkSize` bytes (Content-Range, following the Location each
 * time, realigning on 416 from the upload status) and a closing PUT `?digest=`.
 *
 * Chunks are held in memory one (plus one read ahead) at a time so that every request can
 * be replayed on retry; the blob itself is never buffered whole. Any failure cancels the
 * session (DELETE), best effort.
 */
import { createHash } from 'node:crypto';
import { EngineError, abortError } from '../errors/index.js';
import { parseDigest, type Digest } from '../oci/digest.js';
import { repositoryScope } from './auth.js';
import type { Caller } from './client.js';
import { describeContext, registryDataLoss, registryError, type RegistryContext } from './errors.js';
import { discard, header } from './transport.js';

export interface UploadSession {
  /** absolute upload URL (secret-bearing: never log it unredacted) */
  location: string;
  /** OCI-Chunk-Min-Length, when the registry announced one */
  minChunkLength?: number;
}

export type MountResult = { mounted: true } | { mounted: false; session?: UploadSession };

export interface UploadOptions {
  /** expected digest: the upload fails (and is cancelled) when the stream hashes to another */
  digest?: string;
  /** expected size */
  size?: number;
  /** bytes per PATCH (default 16 MiB); a blob that fits in one chunk goes in a single PUT */
  chunkSize?: number;
  /** continue a session (e.g. the one a 202 mount started) */
  session?: UploadSession;
  signal?: AbortSignal;
  onProgress?: (p: { offset: number }) => void;
}

export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;

function location(res: { headers: Record<string, string | string[] | undefined>; url: URL }, ctx: RegistryContext, required: boolean): string | undefined {
  const loc = header(res.headers, 'location');
  if (!loc) {
    if (required) throw registryDataLoss('REGISTRY_PROTOCOL', 'the registry answered an upload request without a Location', ctx);
    return undefined;
  }
  try {
    const u = new URL(loc, res.url);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('scheme');
    return u.href;
  } catch {
    throw registryDataLoss('REGISTRY_PROTOCOL', 'the registry answered an upload request with an invalid Location', ctx);
  }
}

/** `<location>` + `digest=<d>`, keeping the location's own query string byte for byte (it may be signed). */
function withDigest(loc: string, digest: Digest): URL {
  const u = new URL(loc);
  u.search = (u.search ? u.search + '&' : '?') + 'digest=' + encodeURIComponent(digest);
  return u;
}

export async function startUpload(c: Caller, repo: string, ctx: RegistryContext, signal?: AbortSignal): Promise<UploadSession> {
  const res = await c.call({ method: 'POST', path: `/v2/${repo}/blobs/uploads/`, body: Buffer.alloc(0), scopes: [repositoryScope(repo, true)], ctx, what: 'POST blob upload', signal });
  if (res.status !== 202) throw await c.fail(res, 'POST blob upload', ctx);
  await discard(res.body);
  const s: UploadSession = { location: location(res, ctx, true)! };
  const min = header(res.headers, 'oci-chunk-min-length');
  if (min && /^\d+$/.test(min)) s.minChunkLength = Number(min);
  return s;
}

export async function cancelUpload(c: Caller, repo: string, loc: string, signal?: AbortSignal): Promise<void> {
  try {
    const res = await c.call({
      method: 'DELETE',
      url: new URL(loc),
      body: Buffer.alloc(0),
      scopes: [repositoryScope(repo, true)],
      ctx: { registry: c.registry, repository: repo },
      what: 'DELETE blob upload',
      signal,
    });
    await discard(res.body);
  } catch {
    /* best effort: the registry purges stale uploads */
  }
}

export async function mountBlob(c: Caller, repo: string, digest: Digest, fromRepo: string, opts: { keepUpload?: boolean; signal?: AbortSignal | undefined }): Promise<MountResult> {
  const ctx: RegistryContext = { registry: c.registry, repository: repo, digest };
  const res = await c.call({
    method: 'POST',
    path: `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepo)}`,
    body: Buffer.alloc(0),
    scopes: [repositoryScope(repo, true), repositoryScope(fromRepo)],
    ctx,
    what: `mount blob from ${fromRepo}`,
    signal: opts.signal,
  });
  if (res.status === 201) {
    await discard(res.body);
    const dcd = header(res.headers, 'docker-content-digest')?.trim();
    if (dcd && dcd.startsWith('sha256:') && dcd !== digest) throw registryDataLoss('REGISTRY_DIGEST_MISMATCH', `mounting ${digest} answered with digest ${JSON.stringify(dcd.slice(0, 80))}`, ctx);
    return { mounted: true };
  }
  if (res.status === 202) {
    await discard(res.body);
    const session: UploadSession = { location: location(res, ctx, true)! };
    if (opts.keepUpload) return { mounted: false, session };
    await cancelUpload(c, repo, session.location, opts.signal);
    return { mounted: false };
  }
  throw await c.fail(res, `mount blob from ${fromRepo}`, ctx);
}

/** Splits a byte stream into chunks of exactly `size` bytes (the last may be shorter), one chunk read ahead so the last is known. */
async function* chunks(src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, size: number): AsyncGenerator<{ buf: Buffer; last: boolean }> {
  let parts: Buffer[] = [];
  let n = 0;
  let pending: Buffer | undefined;
  for await (const c of src) {
    let b = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    while (b.length > 0) {
      const take = Math.min(size - n, b.length);
      parts.push(b.subarray(0, take));
      n += take;
      b = b.subarray(take);
      if (n === size) {
        if (pending) yield { buf: pending, last: false };
        pending = Buffer.concat(parts, n);
        parts = [];
        n = 0;
      }
    }
  }
  if (n > 0) {
    if (pending) yield { buf: pending, last: false };
    pending = Buffer.concat(parts, n);
  }
  if (pending) yield { buf: pending, last: true };
}

/** `Range: 0-<end>` of an upload → the offset of the next byte the registry expects. */
function uploadOffset(v: string | undefined, expected: number): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec((v ?? '').trim());
  if (!m) return undefined;
  const end = Number(m[1]);
  // distribution answers "0-0" both for an empty upload and for one byte
  if (end === 0) return expected === 1 ? 1 : 0;
  return end + 1;
}

async function uploadStatus(c: Caller, repo: string, loc: string, ctx: RegistryContext, signal?: AbortSignal): Promise<{ location: string; offset: number | undefined }> {
  const res = await c.call({ method: 'GET', url: new URL(loc), scopes: [repositoryScope(repo, true)], ctx, what: 'GET upload status', signal });
  if (res.status !== 204 && res.status !== 200) throw await c.fail(res, 'GET upload status', ctx);
  await discard(res.body);
  return { location: location(res, ctx, false) ?? loc, offset: uploadOffset(header(res.headers, 'range'), -1) };
}

/** PATCHes one chunk that starts at `offset`; returns the next Location. */
async function patchChunk(c: Caller, repo: string, loc: string, buf: Buffer, offset: number, ctx: RegistryContext, signal?: AbortSignal): Promise<string> {
  const end = offset + buf.length;
  let at = offset;
  for (let round = 0; round < 5; round++) {
    const part = buf.subarray(at - offset);
    if (part.length === 0) return loc;
    const res = await c.call({
      method: 'PATCH',
      url: new URL(loc),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${at}-${at + part.length - 1}` },
      body: part,
      scopes: [repositoryScope(repo, true)],
      ctx,
      what: 'PATCH blob upload',
      signal,
    });
    if (res.status === 202 || res.status === 204) {
      await discard(res.body);
      loc = location(res, ctx, false) ?? loc;
      const got = uploadOffset(header(res.headers, 'range'), end);
      if (got === undefined || got === end) return loc;
      if (got < offset || got > end) {
        throw registryError('unavailable', 'REGISTRY_UPLOAD_OFFSET', `the registry reports ${got} bytes received for an upload that should hold ${end}`, ctx);
      }
      at = got;
      continue;
    }
    if (res.status === 416) {
      await discard(res.body);
      const st = await uploadStatus(c, repo, loc, ctx, signal);
      loc = st.location;
      if (st.offset === undefined || st.offset < offset || st.offset > end) {
        throw registryError('unavailable', 'REGISTRY_UPLOAD_OFFSET', `the registry lost upload data: it holds ${st.offset ?? 'an unknown number of'} bytes, the next chunk starts at ${offset}`, ctx, 'push again');
      }
      at = st.offset;
      continue;
    }
    throw await c.fail(res, 'PATCH blob upload', ctx);
  }
  throw registryError('unavailable', 'REGISTRY_UPLOAD_STALLED', `upload of a chunk at offset ${offset} does not progress`, ctx);
}

export async function uploadBlob(c: Caller, repo: string, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: UploadOptions = {}): Promise<{ digest: Digest; size: number }> {
  const expectedDigest = opts.digest === undefined ? undefined : parseDigest(opts.digest, `${c.registry}/${repo}`);
  const ctx: RegistryContext = { registry: c.registry, repository: repo, digest: expectedDigest };
  const signal = opts.signal;
  const session = opts.session ?? (await startUpload(c, repo, ctx, signal));
  let loc = session.location;
  const chunkSize = Math.max(1, Math.floor(opts.chunkSize ?? DEFAULT_CHUNK_SIZE), session.minChunkLength ?? 0);
  const hash = createHash('sha256');
  let total = 0;
  let digest: Digest | undefined;

  const finalDigest = (): Digest => {
    const d = ('sha256:' + hash.digest('hex')) as Digest;
    const dctx = { ...ctx, digest: expectedDigest ?? d };
    if (expectedDigest && d !== expectedDigest) {
      throw new EngineError('data-loss', 'UPLOAD_DIGEST_MISMATCH', `the data uploaded as ${expectedDigest} hashes to ${d}; the upload was cancelled (${describeContext(dctx)})`, {
        where: describeContext(dctx),
        hint: 'the local content changed or is corrupt',
      });
    }
    if (opts.size !== undefined && opts.size !== total) {
      throw new EngineError('data-loss', 'UPLOAD_SIZE_MISMATCH', `the data uploaded as ${dctx.digest} is ${total} bytes, not ${opts.size}; the upload was cancelled (${describeContext(dctx)})`, {
        where: describeContext(dctx),
      });
    }
    return d;
  };

  try {
    const it = chunks(source, chunkSize)[Symbol.asyncIterator]();
    let r = await it.next();
    let putBody: Buffer;
    if (r.done || r.value.last) {
      putBody = r.done ? Buffer.alloc(0) : r.value.buf;
      hash.update(putBody);
      total = putBody.length;
      digest = finalDigest();
    } else {
      for (;;) {
        if (signal?.aborted) throw abortError(signal);
        const { buf, last } = r.value;
        hash.update(buf);
        loc = await patchChunk(c, repo, loc, buf, total, ctx, signal);
        total += buf.length;
        opts.onProgress?.({ offset: total });
        if (last) break;
        r = await it.next();
        if (r.done) break;
      }
      putBody = Buffer.alloc(0);
      digest = finalDigest();
    }
    const dctx = { ...ctx, digest };
    let res;
    let failure: unknown;
    try {
      res = await c.call({
        method: 'PUT',
        url: withDigest(loc, digest),
        headers: { 'content-type': 'application/octet-stream' },
        body: putBody,
        scopes: [repositoryScope(repo, true)],
        ctx: dctx,
        what: 'PUT blob upload',
        signal,
      });
      if (res.status !== 201 && res.status !== 204 && res.status !== 200) failure = await c.fail(res, 'PUT blob upload', dctx);
    } catch (e) {
      failure = e;
    }
    if (failure !== undefined || !res) {
      // A PUT whose response was lost (and whose replay then finds no session) may have
      // landed: the blob being there with the right size is success.
      if (!signal?.aborted && (await c.blobExists(repo, digest, { signal }).catch(() => undefined)) === total) return { digest, size: total };
      throw failure;
    }
    await discard(res.body);
    if (putBody.length > 0) opts.onProgress?.({ offset: total });
    const dcd = header(res.headers, 'docker-content-digest')?.trim();
    if (dcd && dcd.startsWith('sha256:') && dcd !== digest) {
      throw registryDataLoss('REGISTRY_DIGEST_MISMATCH', `the registry stored blob ${digest} as ${JSON.stringify(dcd.slice(0, 80))}`, dctx);
    }
    return { digest, size: total };
  } catch (e) {
    await cancelUpload(c, repo, loc);
    throw e;
  }
}
