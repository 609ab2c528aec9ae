/** `import`: a root file system tarball becomes a one-layer image, like `docker import`. */
import type { Readable } from 'node:stream';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { EngineError, invalidArgument } from '../errors/index.js';
import { sha256, type Digest } from '../oci/digest.js';
import type { ImageRef } from '../oci/reference.js';
import type { ImageConfig } from '../oci/types.js';
import { applyChanges } from './changes.js';
import type { ImageStore } from './images.js';
import type { EnsureOptions, LayerStore } from './layers.js';
import { hostPlatform } from './platform.js';

export interface ImportOptions extends EnsureOptions {
  ref?: ImageRef;
  changes?: string[];
  message?: string;
  /** How the source is named in the default comment ("-" for stdin). */
  sourceName: string;
  platform?: { os: string; architecture: string; variant?: string };
}

export async function importImage(images: ImageStore, layers: LayerStore, input: { path?: string; stream?: Readable }, opts: ImportOptions): Promise<{ id: Digest; tag?: string }> {
  // validate -c before any work
  const cfg = applyChanges({}, opts.changes ?? []);
  if (input.path) {
    await stat(input.path).catch((e) => {
      throw invalidArgument('IMPORT_NO_INPUT', `open ${input.path}: no such file or directory`, { cause: e });
    });
  }
  const where = input.path ?? 'stdin';
  const lease = await layers
    .importBase(
      {
        where,
        compression: 'auto',
        open: async (signal) => (input.path ? createReadStream(input.path, { highWaterMark: 1 << 17, signal }) : input.stream!),
      },
      opts,
    )
    .catch((e: unknown) => {
      if (e instanceof EngineError && e.code.startsWith('TAR_')) {
        throw invalidArgument('IMPORT_BAD_ARCHIVE', `the input is not a valid tar archive: ${e.message}`, { where, cause: e, hint: 'give a root file system tarball (tar, tar.gz, tar.zst)' });
      }
      throw e;
    });
  try {
    const created = new Date().toISOString();
    const comment = opts.message || `Imported from ${opts.sourceName}`;
    const p = opts.platform ?? hostPlatform();
    const config: ImageConfig = {
      architecture: p.architecture,
      ...(p.variant && p.architecture !== 'arm64' ? { variant: p.variant } : {}),
      comment,
      config: cfg,
      container_config: {},
      created,
      docker_version: 'layerbox',
      history: [{ created, comment }],
      os: p.os,
      rootfs: { type: 'layers', diff_ids: [lease.diffId] },
    };
    const bytes = Buffer.from(JSON.stringify(config));
    const id = sha256(bytes);
    await images.content.put(bytes, id);
    images.add(id, config, lease.chainIds, { tags: opts.ref ? [opts.ref] : [] });
    return { id, ...(opts.ref ? { tag: opts.ref.familiarString() } : {}) };
  } finally {
    lease.release();
  }
}
