/** engine.images: list, inspect, history, pull, push, tag, remove, prune, load, save, import, mount. */
import { Readable, type Writable } from 'node:stream';
import { EngineError, invalidArgument, isEngineError, notFound } from '../errors/index.js';
import type { Digest } from '../oci/digest.js';
import { matchReferenceFilter, parseReference, type ImageRef } from '../oci/reference.js';
import type { ImageConfig, Platform } from '../oci/types.js';
import type { ImageRecord } from '../image/images.js';
import type { SaveFormat } from '../image/save.js';
import type { Core } from './core.js';
import { acceptFilters, boolFilter, labelMatch, timeFilterBound } from './filters.js';
import { operation } from './operation.js';
import { layerMessage, pullMessage, pushMessage } from './progress.js';
import type {
  AuthConfig,
  Filters,
  HistoryItem,
  ImageDeleteResponseItem,
  ImageListOptions,
  ImagePruneResponse,
  ImageSummary,
  LoadResult,
  Operation,
  PullResult,
  ProgressMessage,
  PushResult,
} from './types.js';

export interface PullOptions {
  platform?: Platform;
  concurrency?: number;
  /** credentials for this pull only (X-Registry-Auth); `{}` is anonymous */
  auth?: AuthConfig;
  signal?: AbortSignal;
}

const unix = (iso: string | undefined): number => {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(t) && t > 0 ? Math.floor(t / 1000) : 0;
};

/** `busybox:latest` for `docker.io/library/busybox:latest`: the RepoTags form. */
function familiar(name: string): string {
  try {
    return parseReference(name).familiarString();
  } catch {
    return name;
  }
}

/** An image's root file system mounted read-only; disposing of it unmounts it. */
export interface ImageMount extends AsyncDisposable {
  readonly path: string;
}

/**
 * An image's labels by its ID, which is its config's digest: a config never changes, so what
 * was read (and verified) once holds for the process's life. The list reads no blob for an
 * image it has seen: `GET /images/json` in a long-lived server, or one `images` call. Bounded;
 * the oldest entry goes first.
 */
class LabelCache {
  private readonly m = new Map<Digest, Readonly<Record<string, string>>>();
  constructor(private readonly max = 4096) {}

  async get(id: Digest, read: () => Promise<ImageConfig>): Promise<Record<string, string>> {
    const hit = this.m.get(id);
    if (hit) return { ...hit };
    const labels = Object.freeze({ ...((await read()).config?.Labels ?? {}) });
    if (this.m.size >= this.max) this.m.delete(this.m.keys().next().value!);
    this.m.set(id, labels);
    return { ...labels };
  }
}

export class Images {
  private readonly labels = new LabelCache();

  constructor(private readonly core: Core) {}

  /** The stored image a name, ID or ID prefix refers to. */
  resolve(name: string): ImageRecord {
    return this.core.resolveImage(name);
  }

  exists(name: string): boolean {
    try {
      this.core.resolveImage(name);
      return true;
    } catch (e) {
      if ((e as { kind?: string }).kind === 'not-found') return false;
      throw e;
    }
  }

  async config(name: string): Promise<ImageConfig> {
    return this.core.imageConfig(name);
  }

  async summary(image: ImageRecord, opts: { tags?: string[]; containers?: number; shared?: number } = {}): Promise<ImageSummary> {
    let labels: Record<string, string> = {};
    try {
      labels = await this.labels.get(image.id, () => this.core.images.config(image.id));
    } catch {
      /* a config the check will report */
    }
    const tags = opts.tags ?? image.tags;
    // API 1.41: an image with neither tag nor digest says so with these placeholders
    const none = tags.length === 0 && image.repoDigests.length === 0;
    return {
      Id: image.id,
      ParentId: image.parent ?? '',
      RepoTags: none ? ['<none>:<none>'] : tags.map(familiar),
      RepoDigests: none ? ['<none>@<none>'] : image.repoDigests.map((d) => `${familiar(d.repo)}@${d.digest}`),
      Created: unix(image.created),
      Size: image.size,
      SharedSize: opts.shared ?? -1,
      VirtualSize: image.size,
      Labels: labels ?? {},
      Containers: opts.containers ?? -1,
    };
  }

  /** GET /images/json: Docker's rules for `all`, and the filters reference, dangling, label, before, since. */
  async list(opts: ImageListOptions = {}): Promise<ImageSummary[]> {
    const f: Filters = opts.filters ?? {};
    acceptFilters(f, ['reference', 'dangling', 'label', 'before', 'since']);
    const dangling = boolFilter(f, 'dangling');
    const all = this.core.images.list();
    const parents = new Set(all.map((i) => i.parent).filter(Boolean));
    const before = timeFilterBound(f.before, (n) => this.resolve(n).created);
    const since = timeFilterBound(f.since, (n) => this.resolve(n).created);
    const out: ImageSummary[] = [];
    for (const image of all) {
      const isDangling = image.tags.length === 0;
      // without -a, untagged intermediate images (parents of others) are hidden
      if (!opts.all && isDangling && parents.has(image.id) && dangling === undefined) continue;
      if (dangling !== undefined && dangling !== isDangling) continue;
      const created = Date.parse(image.created ?? '') || 0;
      if (before !== undefined && !(created < before)) continue;
      if (since !== undefined && !(created > since)) continue;
      let tags = image.tags;
      if (f.reference?.length) {
        tags = image.tags.filter((t) => {
          const r = parseReference(t);
          return f.reference!.some((p) => matchReferenceFilter(p, r));
        });
        if (tags.length === 0) continue;
      }
      const s = await this.summary(image, { tags });
      if (f.label?.length && !f.label.every((l) => labelMatch(s.Labels, l))) continue;
      out.push(s);
    }
    return out;
  }

  async inspect(name: string): Promise<Record<string, unknown>> {
    return this.core.inspectImage(name);
  }

  async history(name: string): Promise<HistoryItem[]> {
    return (await this.core.history(name)).map((r) => ({
      Id: r.id,
      Created: unix(r.created),
      CreatedBy: r.createdBy,
      Tags: r.tags.length ? r.tags : null,
      Size: r.size,
      Comment: r.comment,
    }));
  }

  /**
   * Pulls an image (the reference as given; no tag means :latest) with Docker's progress
   * messages, ending with "Status: Downloaded newer image for …" or "…is up to date…".
   * `auth` (a request's X-Registry-Auth) is used for this pull only: never stored, and the
   * stored credentials are not used meanwhile. docker.io references go through the
   * registry mirrors first.
   */
  pull(name: string, opts: PullOptions = {}): Operation<PullResult> {
    return operation(async (emit) => {
      let ref = parseReference(name);
      if (!ref.tag && !ref.digest) ref = ref.withDefaultTag();
      const r = await this.pullOne(ref.toString(), opts, emit);
      const fam = r.ref.digest ? `${r.ref.familiarName}@${r.ref.digest}` : r.ref.familiarString();
      this.core.imageEvent(fam, r.ref.familiarName, 'pull', r.id);
      emit({ status: r.upToDate ? `Status: Image is up to date for ${fam}` : `Status: Downloaded newer image for ${fam}` });
      return { reference: r.ref.toString(), id: r.id, digest: r.digest, upToDate: r.upToDate };
    });
  }

  /**
   * `pull -a`, and POST /images/create with a name but no tag: every tag of the repository,
   * then one "Status: Downloaded newer image for NAME" (or "Image is up to date") for all.
   */
  pullRepository(name: string, opts: PullOptions = {}): Operation<PullResult[]> {
    return operation(async (emit) => {
      const ref = parseReference(name);
      if (ref.tag || ref.digest) throw invalidArgument('PULL_ALL_TAGGED', "tag can't be used with --all-tags/-a");
      const tags = await this.core.listTags(ref.name, { ...(opts.auth ? { auth: opts.auth } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
      const out: PullResult[] = [];
      for (const t of tags) {
        const r = await this.pullOne(ref.withTag(t).toString(), opts, emit);
        out.push({ reference: r.ref.toString(), id: r.id, digest: r.digest, upToDate: r.upToDate });
      }
      const upToDate = out.every((r) => r.upToDate);
      emit({ status: upToDate ? `Status: Image is up to date for ${ref.familiarName}` : `Status: Downloaded newer image for ${ref.familiarName}` });
      return out;
    });
  }

  private async pullOne(name: string, opts: PullOptions, emit: (m: ProgressMessage) => void) {
    try {
      return await this.pullFrom(name, opts, emit);
    } catch (e) {
      // dockerd's words for a tag or digest the registry does not have
      if (isEngineError(e, 'not-found') && e.code === 'REGISTRY_MANIFEST_UNKNOWN') {
        throw notFound('MANIFEST_UNKNOWN', `manifest for ${parseReference(name).familiarString()} not found: manifest unknown: ${e.message.split(': ')[0]}`, { cause: e });
      }
      throw e;
    }
  }

  private pullFrom(name: string, opts: PullOptions, emit: (m: ProgressMessage) => void) {
    return this.core.pull(name, {
      ...(opts.platform ? { platform: opts.platform } : {}),
      ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
      ...(opts.auth ? { auth: opts.auth } : {}),
      onEvent: (e) => {
        const m = pullMessage(e);
        if (m) emit(m);
      },
      warn: (m) => emit({ status: `Warning: ${m}` }),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  /** The tags of a repository on its registry (`pull -a`). */
  async remoteTags(name: string): Promise<string[]> {
    return this.core.listTags(name);
  }

  /**
   * Makes an image present per a pull policy: `missing` pulls only when it is not stored
   * (with Docker's "Unable to find image … locally" first), `always` pulls, `never` refuses.
   */
  ensure(name: string, policy: 'missing' | 'always' | 'never' = 'missing', opts: { platform?: Platform; signal?: AbortSignal } = {}): Operation<ImageRecord> {
    return operation(async (emit) => {
      const have = this.exists(name);
      if (have && policy !== 'always') return this.resolve(name);
      if (!have && policy === 'never') throw notFound('NO_SUCH_IMAGE', `No such image: ${name}`);
      let ref: ImageRef;
      try {
        ref = parseReference(name);
      } catch (e) {
        if (!have) throw notFound('NO_SUCH_IMAGE', `No such image: ${name}`, { cause: e });
        throw e;
      }
      if (ref.familiarName === name.replace(/^sha256:/, '') && /^[0-9a-f]{12,64}$/.test(name.replace(/^sha256:/, '')) && !have) {
        throw notFound('NO_SUCH_IMAGE', `No such image: ${name}`);
      }
      if (!have) emit({ status: `Unable to find image '${ref.digest || ref.tag ? ref.familiarString() : ref.withDefaultTag().familiarString()}' locally` });
      const op = this.pull(name, opts);
      for await (const m of op) emit(m);
      const r = await op.result;
      return this.core.images.get(r.id)!;
    });
  }

  /**
   * Pushes NAME[:TAG] (no tag: latest). `auth` as for pull: this push only. With `allTags`
   * (POST /images/{name}/push without a tag), every local tag of the repository, one after
   * the other; the answer is the last tag's.
   */
  push(name: string, opts: { compression?: 'gzip' | 'zstd'; auth?: AuthConfig; allTags?: boolean; signal?: AbortSignal } = {}): Operation<PushResult> {
    return operation(async (emit) => {
      let names = [name];
      if (opts.allTags) {
        const ref = parseReference(name);
        if (ref.tag || ref.digest) throw invalidArgument('PUSH_ALL_TAGGED', "tag can't be used with --all-tags/-a");
        names = this.core.images
          .list()
          .flatMap((i) => i.tags)
          .filter((t) => parseReference(t).name === ref.name)
          .sort();
        if (!names.length) throw notFound('NO_SUCH_IMAGE', `An image does not exist locally with the tag: ${ref.familiarName}`);
      }
      let last: PushResult | undefined;
      // dockerd names the repository first, whatever happens next
      const first = parseReference(names[0]!);
      emit({ status: `The push refers to repository [${first.name}]` });
      for (const n of names) {
        try {
          await this.core.push(n, {
            ...(opts.compression ? { compression: opts.compression } : {}),
            ...(opts.auth ? { auth: opts.auth } : {}),
            onEvent: (e) => {
              if (e.type === 'repository') return;
              for (const m of pushMessage(e)) emit(m);
              if (e.type === 'pushed') {
                last = { tag: e.tag, digest: e.digest, size: e.size };
                const repo = parseReference(n).familiarName;
                this.core.imageEvent(`${repo}:${e.tag}`, repo, 'push', `${repo}:${e.tag}`);
              }
            },
            ...(opts.signal ? { signal: opts.signal } : {}),
          });
        } catch (e) {
          if (isEngineError(e, 'not-found') && (e.code === 'IMAGE_NOT_FOUND' || e.code === 'PUSH_NO_TAG')) {
            throw notFound('PUSH_NO_TAG', `tag does not exist: ${parseReference(n).withDefaultTag().familiarString()}`, { cause: e, hint: 'tag an image with that name first' });
          }
          throw e;
        }
      }
      return last!;
    });
  }

  /** Tags an image as `target` (NAME[:TAG]); a separate `tag` replaces target's (POST /images/{name}/tag?repo=&tag=). */
  tag(source: string, target: string, tag?: string): void {
    this.core.tag(source, target, tag);
  }

  async remove(name: string, opts: { force?: boolean; noprune?: boolean } = {}): Promise<ImageDeleteResponseItem[]> {
    return this.core.removeImage(name, { force: !!opts.force, noPrune: !!opts.noprune });
  }

  /** Docker's image prune: dangling images, or with dangling=false every image no container uses. */
  async prune(opts: { filters?: Filters } = {}): Promise<ImagePruneResponse> {
    const f = opts.filters ?? {};
    acceptFilters(f, ['dangling', 'until', 'label']);
    const dangling = boolFilter(f, 'dangling');
    const r = await this.core.pruneImages({ all: dangling === false });
    return { ImagesDeleted: r.events, SpaceReclaimed: r.reclaimed };
  }

  load(input: { path?: string; stream?: Readable }, opts: { signal?: AbortSignal } = {}): Operation<LoadResult> {
    return operation(async (emit) => {
      const loaded = await this.core.load(input, {
        onEvent: (e) => {
          const m = layerMessage(e);
          if (m) emit(m);
        },
        warn: (m) => emit({ stream: `Warning: ${m}\n` }),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      for (const img of loaded) {
        for (const m of img.moved) emit({ stream: `The image ${m.tag} already exists, renaming the old one with ID ${m.from} to empty string\n` });
        if (img.tags.length === 0) emit({ stream: `Loaded image ID: ${img.id}\n` });
        for (const t of img.tags) emit({ stream: `Loaded image: ${t}\n` });
      }
      return { images: loaded.map((i) => ({ id: i.id, tags: i.tags })) };
    });
  }

  async save(names: string[], out: { path?: string; stream?: Writable }, opts: { format?: SaveFormat; signal?: AbortSignal } = {}): Promise<void> {
    await this.core.save(names, out, opts);
  }

  /**
   * `import`: a root file system tarball (file, stream, or an http(s) URL — `host/path`
   * without a scheme is http, as dockerd reads fromSrc) as a one-layer image.
   */
  import(
    input: { path?: string; stream?: Readable; url?: string },
    opts: { reference?: string; changes?: string[]; message?: string; platform?: string; signal?: AbortSignal } = {},
  ): Operation<{ id: Digest; tag?: string }> {
    return operation(async (emit) => {
      let source: { path?: string; stream?: Readable } = input;
      if (input.url !== undefined) {
        const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(input.url) ? input.url : `http://${input.url}`;
        if (!/^https?:\/\//i.test(url)) throw invalidArgument('IMPORT_URL', `unsupported URL scheme in ${JSON.stringify(input.url)}`, { hint: 'give an http(s) URL, a file, or - for the request body' });
        emit({ status: `Downloading from ${url}` });
        let res: Response;
        try {
          res = await fetch(url, { ...(opts.signal ? { signal: opts.signal } : {}) });
        } catch (e) {
          throw new EngineError('unavailable', 'IMPORT_URL', `Get ${JSON.stringify(url)}: ${(e as Error).message}`, { cause: e });
        }
        if (res.status >= 400 || !res.body) throw new EngineError('unavailable', 'IMPORT_URL', `Get ${JSON.stringify(url)}: status ${res.status}`);
        source = { stream: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream) };
      }
      return this.core.import(source, {
        ...opts,
        onEvent: (e) => {
          const m = layerMessage(e, 'Importing');
          if (m) emit(m);
        },
      });
    });
  }

  /** Mounts an image read-only; the mount stays (for `image mount`) unless disposed of. */
  async mount(name: string): Promise<ImageMount> {
    const path = await this.core.mountImage(name);
    return { path, [Symbol.asyncDispose]: async () => void (await this.core.unmountImage(name)) };
  }

  async unmount(name: string, opts: { force?: boolean } = {}): Promise<{ id: string; unmounted: boolean }> {
    const img = this.resolve(name);
    return { id: img.id, unmounted: await this.core.unmountImage(name, opts) };
  }

  mounts(): { image: string; path: string }[] {
    return this.core.imageMounts.list().map((m) => {
      const img = this.core.images.get(m.imageId);
      return { image: img?.tags[0] ?? m.imageId, path: m.path };
    });
  }
}

