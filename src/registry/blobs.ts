/**
 * Streaming blob download with verification on the fly:
 * - bytes are counted; one byte beyond the descriptor's size fails at once ("extra bytes");
 * - bytes are hashed as they pass; after the last byte size and digest are checked and a
 *   mismatch (short body, wrong bytes) is a `data-loss` error naming registry, repository
 *   and digest;
 * - a connection reset / timeout mid-body resumes with `Range: bytes=<n>-` (a 206 must
 *   carry a matching Content-Range; a 200 is accepted by skipping the first n bytes);
 * - nothing is buffered beyond one network chunk.
 * Chunks are unverified until the iterator completes normally.
 */
import type { Hash } from 'node:crypto';
import { EngineError, abortError, invalidArgument } from '../errors/index.js';
import { parseDigest } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';
import { repositoryScope } from './auth.js';
import type { Caller } from './client.js';
import { registryDataLoss, type RegistryContext } from './errors.js';
import { abandon, backoffDelay, discard, header, isTransientNetworkError, networkError, sleep, type HttpResponse } from './transport.js';
import { BlobVerifier } from './verify.js';

export interface BlobProgress {
  /** bytes received so far (including a resumed prefix) */
  offset: number;
  total: number;
}

export interface OpenBlobOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((p: BlobProgress) => void) | undefined;
  /**
   * Resume a download whose first `startOffset` bytes the caller already holds; only the
   * rest is fetched and yielded. Requires `prefixHash`.
   */
  startOffset?: number;
  /** a sha256 Hash already fed with exactly those first `startOffset` bytes */
  prefixHash?: Hash;
}

const CONTENT_RANGE_RE = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i;

export async function* openBlob(c: Caller, repo: string, desc: Descriptor, opts: OpenBlobOptions = {}): AsyncGenerator<Buffer, void, undefined> {
  const digest = parseDigest(desc?.digest, `${c.registry}/${repo}`);
  const ctx: RegistryContext = { registry: c.registry, repository: repo, digest };
  const size = desc.size;
  if (!Number.isSafeInteger(size) || size < 0) throw invalidArgument('INVALID_DESCRIPTOR', `descriptor of ${digest} has an invalid size`, { where: `${c.registry}/${repo}` });
  const start = opts.startOffset ?? 0;
  if (!Number.isSafeInteger(start) || start < 0 || start > size) throw invalidArgument('INVALID_OFFSET', `startOffset ${start} is outside blob ${digest} of ${size} bytes`);
  if (start > 0 && !opts.prefixHash) throw invalidArgument('INVALID_OFFSET', 'startOffset needs prefixHash (the hash of the bytes already held)');
  const v = new BlobVerifier({ digest, size }, ctx, start > 0 ? { offset: start, hash: opts.prefixHash! } : undefined);
  const signal = opts.signal;
  let resumes = 0;
  let useRange = true;

  for (;;) {
    if (signal?.aborted) throw abortError(signal);
    if (v.offset === size) {
      v.finish();
      return;
    }
    const offset = v.offset;
    const headers: Record<string, string> = { accept: '*/*' };
    if (offset > 0 && useRange) headers.range = `bytes=${offset}-`;
    const res: HttpResponse = await c.call({
      method: 'GET',
      path: `/v2/${repo}/blobs/${digest}`,
      headers,
      scopes: [repositoryScope(repo)],
      ctx,
      what: `GET blob ${digest}`,
      signal,
    });
    let skip = 0;
    let remaining: number;
    if (res.status === 200) {
      skip = offset; // the server ignored Range (or none was sent): drop what we already have
      remaining = size;
    } else if (res.status === 206) {
      const m = CONTENT_RANGE_RE.exec(header(res.headers, 'content-range') ?? '');
      const from = m ? Number(m[1]) : NaN;
      if (!m || from > offset || (m[3] !== '*' && Number(m[3]) !== size)) {
        await discard(res.body);
        throw registryDataLoss(
          'REGISTRY_BAD_RANGE',
          `blob ${digest}: asked for bytes ${offset}- and got a 206 with Content-Range ${JSON.stringify(header(res.headers, 'content-range') ?? '')}`,
          ctx,
        );
      }
      skip = offset - from;
      remaining = size - from;
    } else if (res.status === 416 && offset > 0 && useRange) {
      await discard(res.body);
      useRange = false; // try once more from the start, skipping what we have
      continue;
    } else {
      throw await c.fail(res, `GET blob`, ctx, `blob ${digest} is not found`);
    }

    const dcd = header(res.headers, 'docker-content-digest')?.trim();
    if (dcd && dcd.startsWith('sha256:') && dcd !== digest) {
      abandon(res.body);
      throw registryDataLoss('REGISTRY_DIGEST_MISMATCH', `blob ${digest}: the registry says it is sending ${JSON.stringify(dcd.slice(0, 80))}`, ctx);
    }
    const cl = header(res.headers, 'content-length');
    if (cl !== undefined && /^\d+$/.test(cl) && Number(cl) !== remaining) {
      abandon(res.body);
      const n = Number(cl);
      if (n > remaining) {
        throw registryDataLoss('REGISTRY_BLOB_EXTRA_BYTES', `blob ${digest} is longer than its descriptor says: the registry announces ${n} bytes where ${remaining} remain (extra bytes)`, ctx);
      }
      throw registryDataLoss('REGISTRY_BLOB_SHORT', `blob ${digest} is short: the registry announces ${n} bytes where ${remaining} remain`, ctx);
    }

    let ended = false;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        let buf = chunk;
        if (skip > 0) {
          if (buf.length <= skip) {
            skip -= buf.length;
            continue;
          }
          buf = buf.subarray(skip);
          skip = 0;
        }
        v.update(buf); // throws at the first extra byte
        opts.onProgress?.({ offset: v.offset, total: size });
        yield buf;
      }
      ended = true;
    } catch (e) {
      abandon(res.body);
      if (signal?.aborted) throw abortError(signal);
      if (e instanceof EngineError) throw e;
      if (isTransientNetworkError(e) && resumes < c.maxBlobResumes) {
        resumes++;
        c.logger?.(`blob ${digest}: connection lost at byte ${v.offset} of ${size}; resuming (${resumes}/${c.maxBlobResumes})`);
        await sleep(backoffDelay(resumes - 1, c.retry), signal);
        continue;
      }
      throw networkError(e, res.url, ctx, signal);
    } finally {
      if (!ended) abandon(res.body);
    }
    // the body ended normally: it must have been complete
    v.finish();
    return;
  }
}
