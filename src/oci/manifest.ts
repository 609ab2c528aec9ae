/** Strict parsing of manifests and indexes (OCI and Docker schema2). */
import { EngineError, unsupported } from '../errors/index.js';
import { parseDigest } from './digest.js';
import { MediaType, isIndexType, isManifestType } from './mediatypes.js';
import type { Descriptor, Index, Manifest } from './types.js';

export type Parsed = { kind: 'manifest'; mediaType: string; manifest: Manifest } | { kind: 'index'; mediaType: string; index: Index };

const bad = (msg: string, where?: string) => new EngineError('data-loss', 'BAD_MANIFEST', msg, { where });

function checkDescriptor(d: unknown, where?: string): Descriptor {
  const x = d as Descriptor;
  if (!x || typeof x !== 'object') throw bad('descriptor is not an object', where);
  if (typeof x.mediaType !== 'string' || x.mediaType.length === 0) throw bad('descriptor has no mediaType', where);
  parseDigest(x.digest, where);
  if (typeof x.size !== 'number' || !Number.isSafeInteger(x.size) || x.size < 0) throw bad(`descriptor ${x.digest} has an invalid size`, where);
  return x;
}

/**
 * Parses manifest or index bytes. `declared` is the media type the transport announced
 * (Content-Type, descriptor). A manifest carrying `manifests` or an index carrying
 * `layers` is refused (CVE-2021-41190), as is schema 1.
 */
export function parseManifestBytes(bytes: Buffer | string, declared?: string, where?: string): Parsed {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw bad(`manifest is not valid JSON: ${(e as Error).message}`, where);
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw bad('manifest is not a JSON object', where);
  const mt = typeof j.mediaType === 'string' ? j.mediaType : undefined;
  if (j.schemaVersion === 1 || (mt ?? declared ?? '').startsWith('application/vnd.docker.distribution.manifest.v1')) {
    throw unsupported('SCHEMA1', 'Docker Image Format v1 and Docker Image manifest version 2, schema 1 are not supported', {
      where,
      hint: 'push the image again with a current client (schema 2 or OCI)',
    });
  }
  if (j.schemaVersion !== 2) throw bad(`unsupported manifest schemaVersion ${JSON.stringify(j.schemaVersion)}`, where);
  const declaredKind = declared && isIndexType(declared) ? 'index' : declared && isManifestType(declared) ? 'manifest' : undefined;
  if (mt && declared && mt !== declared && declared !== 'application/json' && declared !== 'application/octet-stream') {
    throw bad(`manifest media type ${mt} does not match the declared ${declared}`, where);
  }
  const hasManifests = 'manifests' in j;
  const hasLayers = 'layers' in j || 'config' in j;
  if (hasManifests && hasLayers) throw bad('manifest is ambiguous: it has both "manifests" and "layers"/"config"', where);
  const kind = mt ? (isIndexType(mt) ? 'index' : isManifestType(mt) ? 'manifest' : undefined) : declaredKind ?? (hasManifests ? 'index' : hasLayers ? 'manifest' : undefined);
  if (!kind) throw bad(`unsupported manifest media type ${mt ?? declared ?? '(none)'}`, where);
  if (kind === 'index') {
    if (hasLayers) throw bad('an image index must not carry "layers" or "config"', where);
    if (!Array.isArray(j.manifests)) throw bad('image index has no "manifests" list', where);
    (j.manifests as unknown[]).forEach((d) => checkDescriptor(d, where));
    return { kind, mediaType: mt ?? declared ?? MediaType.OciIndex, index: j as unknown as Index };
  }
  if (hasManifests) throw bad('an image manifest must not carry "manifests"', where);
  checkDescriptor(j.config, where);
  if (!Array.isArray(j.layers)) throw bad('image manifest has no "layers" list', where);
  (j.layers as unknown[]).forEach((d) => checkDescriptor(d, where));
  return { kind, mediaType: mt ?? declared ?? MediaType.OciManifest, manifest: j as unknown as Manifest };
}
