/** Small helpers shared by registry tests (and usable by other modules' tests). */
import { createHash } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MediaType } from '../../oci/mediatypes.js';
import type { Descriptor } from '../../oci/types.js';

export const sha256hex = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** Deterministic pseudo-random bytes (xorshift), so test blobs do not compress or repeat. */
export function pseudoRandom(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** A stream of `data` in pieces of `piece` bytes. */
export async function* streamOf(data: Buffer, piece = 64 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += piece) yield data.subarray(i, i + piece);
}

export async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

export function descriptor(data: Buffer | string, mediaType: string = MediaType.OciLayer): Descriptor {
  const b = Buffer.from(data);
  return { mediaType, digest: sha256hex(b), size: b.length };
}

export function ociManifest(config: Descriptor, layers: Descriptor[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers }));
}

export function ociIndex(manifests: Descriptor[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
}

export function imageConfig(diffIds: string[] = []): Buffer {
  return Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: {} }));
}

export const tempDir = (prefix = 'layerbox-test-') => mkdtemp(join(tmpdir(), prefix));

/** Runs `fn` and returns the error it throws (fails the test if it does not throw). */
export async function thrown(fn: () => Promise<unknown>): Promise<Error & { kind?: string; code?: string }> {
  try {
    await fn();
  } catch (e) {
    return e as Error & { kind?: string; code?: string };
  }
  throw new Error('expected an error, none was thrown');
}
