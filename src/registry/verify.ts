/**
 * Verification of what a registry sends: blobs are counted and hashed as they stream,
 * manifests are hashed and structurally checked before anyone reads them.
 *
 * - a manifest that carries `manifests`, or an index that carries `layers`/`config`, is
 *   refused (CVE-2021-41190: one body must not be readable as both);
 * - `Content-Type` and the body's `mediaType` must agree;
 * - schema 1 is refused with a clear message;
 * - every descriptor's digest is parsed (sha256 only) before any URL is built from it.
 */
import { createHash, type Hash } from 'node:crypto';
import { EngineError } from '../errors/index.js';
import { parseDigest, type Digest } from '../oci/digest.js';
import { MediaType, isIndexType, isManifestType } from '../oci/mediatypes.js';
import type { Descriptor, Index, Manifest, Platform } from '../oci/types.js';
import { describeContext, registryDataLoss, registryWhere, type RegistryContext } from './errors.js';

export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaType.OciIndex,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.DockerManifest,
];

const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
const GENERIC_CONTENT_TYPES = new Set(['', 'application/json', 'application/octet-stream', 'text/plain', 'binary/octet-stream']);

export const isSchema1Type = (mt: string) => mt.startsWith('application/vnd.docker.distribution.manifest.v1+');

/** Lower-cased media type without parameters. */
export function baseContentType(ct: string | undefined): string {
  return (ct ?? '').split(';')[0]!.trim().toLowerCase();
}

function schema1Error(ctx: RegistryContext): EngineError {
  const ref = `${ctx.registry}/${ctx.repository ?? ''}${ctx.digest ? '@' + ctx.digest : ctx.tag ? ':' + ctx.tag : ''}`;
  return new EngineError(
    'unsupported',
    'REGISTRY_SCHEMA1',
    `schema 1 manifests are not supported: ${ref} uses Docker image manifest v2, schema 1, whose support has been removed (${describeContext(ctx)})`,
    {
      where: registryWhere(ctx),
      hint: `ask the author of ${ref} to push it again with a current client (OCI or Docker manifest v2, schema 2)`,
    },
  );
}

function invalid(msg: string, ctx: RegistryContext, code = 'REGISTRY_MANIFEST_INVALID'): EngineError {
  return registryDataLoss(code, msg, ctx, 'the registry sent a manifest that is not valid; it was not used');
}

/** Validates a descriptor from a manifest; throws data-loss/unsupported naming where it was found. */
export function validateDescriptor(v: unknown, what: string, ctx: RegistryContext): Descriptor {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalid(`manifest ${what} is not a descriptor object`, ctx);
  const d = v as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || !MEDIA_TYPE_RE.test(d.mediaType)) throw invalid(`manifest ${what} has an invalid mediaType`, ctx);
  let digest: Digest;
  try {
    digest = parseDigest(d.digest);
  } catch (e) {
    const unsup = e instanceof EngineError && e.code === 'UNSUPPORTED_DIGEST';
    throw new EngineError(unsup ? 'unsupported' : 'data-loss', unsup ? 'REGISTRY_UNSUPPORTED_DIGEST' : 'REGISTRY_MANIFEST_INVALID', `manifest ${what}: ${(e as Error).message} (${describeContext(ctx)})`, {
      where: registryWhere(ctx),
      cause: e,
    });
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`manifest ${what} has an invalid size`, ctx);
  const out: Descriptor = { mediaType: d.mediaType, digest, size: d.size };
  if (d.urls !== undefined) {
    if (!Array.isArray(d.urls) || !d.urls.every((u) => typeof u === 'string')) throw invalid(`manifest ${what} has invalid urls`, ctx);
    out.urls = d.urls as string[];
  }
  if (d.annotations !== undefined) {
    if (!isStringMap(d.annotations)) throw invalid(`manifest ${what} has invalid annotations`, ctx);
    out.annotations = d.annotations;
  }
  if (d.platform !== undefined) {
    const p = d.platform as Record<string, unknown>;
    if (!p || typeof p !== 'object' || typeof p.architecture !== 'string' || typeof p.os !== 'string') {
      throw invalid(`manifest ${what} has an invalid platform`, ctx);
    }
    out.platform = p as unknown as Platform;
  }
  if (d.artifactType !== undefined) {
    if (typeof d.artifactType !== 'string') throw invalid(`manifest ${what} has an invalid artifactType`, ctx);
    out.artifactType = d.artifactType;
  }
  return out;
}

function isStringMap(v: unknown): v is Record<string, string> {
  return !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

export interface ParsedManifest {
  mediaType: string;
  parsed: Manifest | Index;
}

/**
 * Parses and checks manifest bytes received with `contentType`. The caller has already
 * hashed the bytes; this checks the structure and the media type.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined, ctx: RegistryContext): ParsedManifest {
  const ct = baseContentType(contentType);
  if (isSchema1Type(ct)) throw schema1Error(ctx);
  let j: unknown;
  try {
    j = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('manifest is not valid JSON', ctx);
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw invalid('manifest is not a JSON object', ctx);
  const m = j as Record<string, unknown>;
  if (m.schemaVersion === 1) throw schema1Error(ctx);
  if (m.schemaVersion !== 2) throw invalid(`manifest has schemaVersion ${JSON.stringify(m.schemaVersion)}; only 2 is supported`, ctx);
  if (m.mediaType !== undefined && typeof m.mediaType !== 'string') throw invalid('manifest mediaType is not a string', ctx);
  const bodyType = m.mediaType as string | undefined;
  if (bodyType !== undefined && isSchema1Type(bodyType)) throw schema1Error(ctx);

  let mt: string;
  if (!GENERIC_CONTENT_TYPES.has(ct)) {
    if (bodyType !== undefined && bodyType !== ct) {
      throw invalid(`manifest media type mismatch: Content-Type says ${JSON.stringify(ct)} but the body says ${JSON.stringify(bodyType)}`, ctx, 'REGISTRY_MEDIA_TYPE_MISMATCH');
    }
    mt = ct;
  } else if (bodyType !== undefined) {
    mt = bodyType;
  } else if ('manifests' in m && !('layers' in m) && !('config' in m)) {
    mt = MediaType.OciIndex;
  } else if ('config' in m && 'layers' in m && !('manifests' in m)) {
    mt = MediaType.OciManifest;
  } else {
    throw invalid('manifest has no media type and its fields do not identify it', ctx);
  }

  if (isManifestType(mt)) {
    if ('manifests' in m) {
      throw invalid(`ambiguous manifest: a ${mt} must not carry "manifests" (CVE-2021-41190)`, ctx, 'REGISTRY_MEDIA_TYPE_CONFUSION');
    }
    const config = validateDescriptor(m.config, 'config', ctx);
    if (!Array.isArray(m.layers)) throw invalid('manifest has no layers array', ctx);
    const layers = m.layers.map((l, i) => validateDescriptor(l, `layer ${i}`, ctx));
    const out: Manifest = { ...(m as object), schemaVersion: 2, config, layers } as Manifest;
    if (m.subject !== undefined) out.subject = validateDescriptor(m.subject, 'subject', ctx);
    return { mediaType: mt, parsed: out };
  }
  if (isIndexType(mt)) {
    if ('layers' in m || 'config' in m) {
      throw invalid(`ambiguous index: a ${mt} must not carry "${'layers' in m ? 'layers' : 'config'}" (CVE-2021-41190)`, ctx, 'REGISTRY_MEDIA_TYPE_CONFUSION');
    }
    if (!Array.isArray(m.manifests)) throw invalid('index has no manifests array', ctx);
    const manifests = m.manifests.map((d, i) => validateDescriptor(d, `manifests[${i}]`, ctx));
    const out: Index = { ...(m as object), schemaVersion: 2, manifests } as Index;
    if (m.subject !== undefined) out.subject = validateDescriptor(m.subject, 'subject', ctx);
    return { mediaType: mt, parsed: out };
  }
  throw new EngineError('unsupported', 'REGISTRY_UNSUPPORTED_MANIFEST', `unsupported manifest media type ${JSON.stringify(mt.slice(0, 200))} (${describeContext(ctx)})`, {
    where: registryWhere(ctx),
    hint: `supported types: ${MANIFEST_MEDIA_TYPES.join(', ')}`,
  });
}

/**
 * Counts and hashes a blob as it streams. `update` fails at the first byte beyond the
 * expected size; `finish` fails when the blob is short or hashes to another digest.
 */
export class BlobVerifier {
  private n: number;
  private readonly hash: Hash;

  constructor(
    readonly expected: { digest: Digest; size: number },
    readonly ctx: RegistryContext,
    resume?: { offset: number; hash: Hash },
  ) {
    this.n = resume?.offset ?? 0;
    this.hash = resume?.hash ?? createHash('sha256');
  }

  get offset(): number {
    return this.n;
  }

  /** Throws before hashing a chunk that would go past the expected size. */
  check(len: number): void {
    if (this.n + len > this.expected.size) {
      throw registryDataLoss(
        'REGISTRY_BLOB_EXTRA_BYTES',
        `blob ${this.expected.digest} is longer than its descriptor says: extra bytes after ${this.expected.size} bytes`,
        this.ctx,
      );
    }
  }

  update(chunk: Buffer): void {
    this.check(chunk.length);
    this.hash.update(chunk);
    this.n += chunk.length;
  }

  finish(): void {
    if (this.n < this.expected.size) {
      throw registryDataLoss(
        'REGISTRY_BLOB_SHORT',
        `blob ${this.expected.digest} is short: got ${this.n} of ${this.expected.size} bytes`,
        this.ctx,
      );
    }
    const got = 'sha256:' + this.hash.digest('hex');
    if (got !== this.expected.digest) {
      throw registryDataLoss(
        'REGISTRY_DIGEST_MISMATCH',
        `blob ${this.expected.digest} failed verification: its ${this.n} bytes hash to ${got}`,
        this.ctx,
      );
    }
  }
}

