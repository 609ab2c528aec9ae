/**
 * The image store: images (ID = config digest), their layer chains, tags and repo
 * digests, in the metadata database; configs and manifests in the content store. Every
 * multi-row change is one transaction: an image is listed only once all its layers are
 * committed, and a tag moves atomically.
 */
import type { DB } from '../metadata/db.js';
import { now } from '../metadata/db.js';
import type { ContentStore } from '../content/store.js';
import { conflict, EngineError, invalidArgument, notFound } from '../errors/index.js';
import { parseDigest, type Digest } from '../oci/digest.js';
import { imageIdPrefix, parseReference, type ImageRef } from '../oci/reference.js';
import type { ImageConfig } from '../oci/types.js';
import type { LayerStore } from './layers.js';

export interface ImageRecord {
  id: Digest;
  topLayer: Digest | undefined;
  /** The image this one was committed or built from, when made here. */
  parent: Digest | undefined;
  created: string | undefined;
  stored: string;
  /** Sum of the layers' sizes (Docker's image Size). */
  size: number;
  chain: Digest[];
  tags: string[];
  repoDigests: { repo: string; digest: Digest }[];
}

interface ImageRow {
  id: string;
  top_layer: string | null;
  parent: string | null;
  created: string | null;
  stored: string;
  size: number;
}

export class ImageStore {
  constructor(
    private readonly db: DB,
    readonly content: ContentStore,
    readonly layers: LayerStore,
  ) {}

  private hydrate(r: ImageRow): ImageRecord {
    const chain = (this.db.prepare('SELECT chain_id FROM image_layers WHERE image_id = ? ORDER BY idx').all(r.id) as { chain_id: string }[]).map((x) => x.chain_id as Digest);
    const tags = (this.db.prepare('SELECT name FROM tags WHERE image_id = ? ORDER BY created, name').all(r.id) as { name: string }[]).map((x) => x.name);
    const repoDigests = (this.db.prepare('SELECT repo, digest FROM repo_digests WHERE image_id = ? ORDER BY created').all(r.id) as { repo: string; digest: string }[]).map((x) => ({
      repo: x.repo,
      digest: x.digest as Digest,
    }));
    return this.record(r, chain, tags, repoDigests);
  }

  private record(r: ImageRow, chain: Digest[], tags: string[], repoDigests: ImageRecord['repoDigests']): ImageRecord {
    return { id: r.id as Digest, topLayer: (r.top_layer ?? undefined) as Digest | undefined, parent: (r.parent ?? undefined) as Digest | undefined, created: r.created ?? undefined, stored: r.stored, size: r.size, chain, tags, repoDigests };
  }

  get(id: string): ImageRecord | undefined {
    const r = this.db.prepare('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined;
    return r ? this.hydrate(r) : undefined;
  }

  /** Every image, newest first: four queries in all, not three per image. */
  list(): ImageRecord[] {
    const group = <T extends { image_id: string }>(rows: T[]) => {
      const m = new Map<string, T[]>();
      for (const r of rows) {
        const g = m.get(r.image_id);
        if (g) g.push(r);
        else m.set(r.image_id, [r]);
      }
      return m;
    };
    return this.db.transaction(() => {
      const rows = this.db.prepare('SELECT * FROM images ORDER BY created DESC, stored DESC').all() as ImageRow[];
      const chains = group(this.db.prepare('SELECT image_id, chain_id FROM image_layers ORDER BY image_id, idx').all() as { image_id: string; chain_id: string }[]);
      const tags = group(this.db.prepare('SELECT image_id, name FROM tags ORDER BY image_id, created, name').all() as { image_id: string; name: string }[]);
      const digests = group(this.db.prepare('SELECT image_id, repo, digest FROM repo_digests ORDER BY image_id, created').all() as { image_id: string; repo: string; digest: string }[]);
      return rows.map((r) =>
        this.record(
          r,
          (chains.get(r.id) ?? []).map((x) => x.chain_id as Digest),
          (tags.get(r.id) ?? []).map((x) => x.name),
          (digests.get(r.id) ?? []).map((x) => ({ repo: x.repo, digest: x.digest as Digest })),
        ),
      );
    })();
  }

  async config(id: Digest): Promise<ImageConfig> {
    return this.content.readJson<ImageConfig>(id);
  }

  async configBytes(id: Digest): Promise<Buffer> {
    return this.content.readBytes(id, 8 << 20);
  }

  /**
   * Finds an image the way Docker does: by reference (tag or digest), then by full ID,
   * then by unique ID prefix. Returns the image and, when found by name, the reference.
   */
  resolve(input: string): { image: ImageRecord; ref?: ImageRef } {
    let ref: ImageRef | undefined;
    let refError: unknown;
    try {
      ref = parseReference(input);
    } catch (e) {
      refError = e;
    }
    if (ref) {
      if (ref.digest) {
        const row = this.db.prepare('SELECT image_id FROM repo_digests WHERE repo = ? AND digest = ?').get(ref.name, ref.digest) as { image_id: string } | undefined;
        if (row) return { image: this.get(row.image_id)!, ref };
      } else {
        const full = ref.withDefaultTag().toString();
        const row = this.db.prepare('SELECT image_id FROM tags WHERE name = ?').get(full) as { image_id: string } | undefined;
        if (row) return { image: this.get(row.image_id)!, ref: ref.withDefaultTag() };
      }
    }
    const prefix = imageIdPrefix(input);
    if (prefix !== undefined) {
      const rows = this.db.prepare("SELECT id FROM images WHERE id LIKE ? || '%'").all('sha256:' + prefix) as { id: string }[];
      if (rows.length === 1) return { image: this.get(rows[0]!.id)! };
      if (rows.length > 1) {
        throw invalidArgument('AMBIGUOUS_ID', `short ID ${input} is ambiguous: it matches ${rows.length} images`, { hint: 'give more characters of the ID' });
      }
    }
    if (!ref && refError) throw refError;
    throw notFound('IMAGE_NOT_FOUND', `No such image: ${input}`, { hint: 'see `layerbox images`; load, import or pull it first' });
  }

  /**
   * What `ps` shows for a container made from `name`: the name while it still names the
   * container's image, else the image ID (Docker's rule: the image was removed, or the
   * tag moved).
   */
  displayName(name: string, imageId: string): string {
    if (name === imageId) return name;
    try {
      return this.resolve(name).image.id === imageId ? name : imageId;
    } catch {
      return imageId;
    }
  }

  /**
   * Records an image whose layers are committed. Idempotent for the same ID. Tags given
   * move to this image (their old image keeps its other names or becomes dangling).
   */
  add(
    id: Digest,
    config: ImageConfig,
    chain: Digest[],
    opts: { tags?: ImageRef[]; repoDigests?: { repo: string; digest: Digest; manifest?: Digest }[]; parent?: Digest } = {},
  ): { previous: Map<string, string> } {
    const previous = new Map<string, string>();
    const size = chain.reduce((s, c) => s + (this.layers.get(c)?.size ?? 0), 0);
    const tx = this.db.transaction(() => {
      const exists = this.db.prepare('SELECT 1 FROM images WHERE id = ?').get(id);
      if (!exists) {
        this.db
          .prepare('INSERT INTO images (id, top_layer, parent, created, stored, size) VALUES (?, ?, ?, ?, ?, ?)')
          .run(id, chain.length ? chain[chain.length - 1]! : null, opts.parent ?? null, config.created ?? null, now(), size);
        const ins = this.db.prepare('INSERT INTO image_layers (image_id, idx, chain_id) VALUES (?, ?, ?)');
        chain.forEach((c, i) => ins.run(id, i, c));
      }
      for (const t of opts.tags ?? []) {
        const name = t.withDefaultTag().toString();
        const old = this.db.prepare('SELECT image_id FROM tags WHERE name = ?').get(name) as { image_id: string } | undefined;
        if (old && old.image_id !== id) previous.set(name, old.image_id);
        this.db.prepare('INSERT INTO tags (name, image_id, created) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, created = excluded.created').run(name, id, now());
      }
      for (const rd of opts.repoDigests ?? []) {
        this.db
          .prepare('INSERT INTO repo_digests (repo, digest, image_id, manifest, created) VALUES (?, ?, ?, ?, ?) ON CONFLICT(repo, digest) DO UPDATE SET image_id = excluded.image_id')
          .run(rd.repo, rd.digest, id, rd.manifest ?? null, now());
      }
    });
    tx.immediate();
    return { previous };
  }

  tag(id: Digest, ref: ImageRef): void {
    if (ref.digest) throw invalidArgument('TAG_WITH_DIGEST', 'refusing to create a tag with a digest reference');
    const name = ref.withDefaultTag().toString();
    this.db
      .prepare('INSERT INTO tags (name, image_id, created) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, created = excluded.created')
      .run(name, id, now());
  }

  untag(name: string): boolean {
    return this.db.prepare('DELETE FROM tags WHERE name = ?').run(name).changes > 0;
  }

  removeRepoDigest(repo: string, digest: string): boolean {
    return this.db.prepare('DELETE FROM repo_digests WHERE repo = ? AND digest = ?').run(repo, digest).changes > 0;
  }

  /** Deletes the image row (the caller checked tags and containers). Returns its chain. */
  deleteRecord(id: Digest, opts: { isUsed?: () => string | undefined } = {}): Digest[] {
    const tx = this.db.transaction(() => {
      const img = this.get(id);
      if (!img) throw notFound('IMAGE_NOT_FOUND', `No such image: ${id}`);
      const user = opts.isUsed?.();
      if (user) throw conflict('IMAGE_IN_USE', `conflict: unable to delete ${id.slice(7, 19)} (cannot be forced) - image is being used by running container ${user}`);
      this.db.prepare('DELETE FROM tags WHERE image_id = ?').run(id);
      this.db.prepare('DELETE FROM repo_digests WHERE image_id = ?').run(id);
      this.db.prepare('DELETE FROM image_mounts WHERE image_id = ?').run(id);
      this.db.prepare('DELETE FROM image_layers WHERE image_id = ?').run(id);
      this.db.prepare('DELETE FROM images WHERE id = ?').run(id);
      return img.chain;
    });
    return tx.immediate();
  }

  /** Images whose chain starts with all of `chain` plus at least one more layer. */
  children(img: ImageRecord): ImageRecord[] {
    if (!img.topLayer) return [];
    const rows = this.db
      .prepare('SELECT DISTINCT image_id FROM image_layers WHERE chain_id = ? AND idx = ? AND image_id != ?')
      .all(img.topLayer, img.chain.length - 1, img.id) as { image_id: string }[];
    return rows.map((r) => this.get(r.image_id)!).filter((i) => i && i.chain.length > img.chain.length);
  }

  /** The image whose chain is this image's chain minus its top layer, if stored (Docker's Parent for local builds). */
  blobSources(diffId: string): { digest: Digest; mediaType: string; size: number; registry: string; repository: string }[] {
    return (this.db.prepare('SELECT digest, media_type, size, registry, repository FROM blob_sources WHERE diff_id = ?').all(diffId) as {
      digest: string;
      media_type: string;
      size: number;
      registry: string;
      repository: string;
    }[]).map((r) => ({ digest: parseDigest(r.digest), mediaType: r.media_type, size: r.size, registry: r.registry, repository: r.repository }));
  }

  addBlobSource(diffId: string, digest: string, mediaType: string, size: number, registry = '', repository = ''): void {
    this.db
      .prepare('INSERT OR IGNORE INTO blob_sources (diff_id, digest, media_type, size, registry, repository) VALUES (?, ?, ?, ?, ?, ?)')
      .run(diffId, digest, mediaType, size, registry, repository);
  }
}

export function assertImageConfig(raw: unknown, where: string): ImageConfig {
  const c = raw as ImageConfig;
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw new EngineError('data-loss', 'BAD_CONFIG', 'image config is not a JSON object', { where });
  if (!c.rootfs || c.rootfs.type !== 'layers' || !Array.isArray(c.rootfs.diff_ids)) {
    throw new EngineError('data-loss', 'BAD_CONFIG', 'image config has no rootfs.diff_ids', { where, hint: 'this is not a container image config' });
  }
  for (const d of c.rootfs.diff_ids) parseDigest(d, where);
  if (typeof c.architecture !== 'string' || typeof c.os !== 'string') {
    throw new EngineError('data-loss', 'BAD_CONFIG', 'image config lacks architecture or os', { where });
  }
  return c;
}
