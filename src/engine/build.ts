/**
 * engine.build: `docker build` (POST /build) and the build cache (`builder prune`,
 * POST /build/prune, the Build Cache of `system df`). The request is a context — a tar
 * stream (plain or compressed; a plain Dockerfile is taken as a context holding only it),
 * a directory, or a URL (`remote`) — and Docker's build options by their query-parameter
 * names. The answer is an Operation whose messages are Docker's build stream:
 * `{stream: "Step 1/3 : FROM busybox\n"}`, `{aux: {ID: "sha256:…"}}`, and at a failure
 * `{errorDetail: {message, code?}, error}` (then `result` rejects with the same error).
 */
import { Readable } from 'node:stream';
import { invalidArgument, isEngineError } from '../errors/index.js';
import { parseReference, parseRepositoryTag, type ImageRef } from '../oci/reference.js';
import type { Digest } from '../oci/digest.js';
import { BuildCacheStore, ChecksumMemo } from '../build/cache.js';
import type { Core } from './core.js';
import { operation } from './operation.js';
import { trace } from '../sys/trace.js';
import type { AuthConfig, BuildCachePruneResponse, BuildCacheRecord, BuildResponse, ImageBuildInput, ImageBuildOptions, Operation, ProgressMessage } from './types.js';

const NETWORK_MODES = ['default', 'bridge', 'host', 'none'];

/** Reads the first bytes of a stream and gives them back in front of the rest. */
async function peek(stream: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const chunks: Buffer[] = [];
  let got = 0;
  const it = stream[Symbol.asyncIterator]();
  let done = false;
  while (got < n) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    chunks.push(b);
    got += b.length;
  }
  const head = Buffer.concat(chunks);
  const rest = (async function* () {
    yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value as Buffer;
    }
  })();
  return { head, stream: Readable.from(rest, { objectMode: false }) };
}

/** A tar, or a compressed stream (gzip, bzip2, xz, zstd). */
function looksLikeArchive(head: Buffer): boolean {
  if (head.length === 0) return false;
  const m = (b: number[]) => b.every((x, i) => head[i] === x);
  if (m([0x1f, 0x8b]) || m([0x42, 0x5a, 0x68]) || m([0xfd, 0x37, 0x7a, 0x58, 0x5a]) || m([0x28, 0xb5, 0x2f, 0xfd])) return true;
  return head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
}

function buildArgMap(args: Record<string, string | null | undefined> | undefined): Map<string, string | undefined> {
  const m = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(args ?? {})) m.set(k, v === null ? undefined : v);
  return m;
}

/** The entry of an X-Registry-Config map for the registry of image `name` (anonymous when none). */
function authFor(map: Record<string, AuthConfig>, name: string): AuthConfig {
  const domain = parseReference(name).domain;
  const host = (k: string) => {
    const h = k.trim().replace(/^https?:\/\//, '').split('/')[0]!.toLowerCase();
    return ['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'].includes(h) ? 'docker.io' : h;
  };
  for (const [k, v] of Object.entries(map)) if (host(k) === domain && v && typeof v === 'object') return v;
  return {};
}

/** The Build Cache rows of `system df`. */
export function buildCacheDf(core: Core): BuildCacheRecord[] {
  const cache = new BuildCacheStore(core.db);
  const rows = cache.rows();
  if (rows.length === 0) return [];
  const all = core.images.list();
  const byId = new Map(all.map((i) => [i.id as string, i]));
  const shared = protectedImages(core, false);
  return rows.map((r) => {
    const img = byId.get(r.image_id);
    const parent = r.parent ? byId.get(r.parent) : undefined;
    const own = img && img.chain.length > (parent?.chain.length ?? 0) ? core.layers.size(img.chain[img.chain.length - 1]!) : 0;
    return {
      ID: r.image_id.replace(/^sha256:/, '').slice(0, 25),
      Parent: r.parent.replace(/^sha256:/, '').slice(0, 25),
      Type: 'regular',
      Description: r.description,
      InUse: !!core.imageUsage.container(r.image_id as Digest),
      Shared: shared.has(r.image_id),
      Size: own,
      CreatedAt: r.created,
      LastUsedAt: r.last_used,
      UsageCount: r.usage_count,
    };
  });
}

/** Images a prune keeps: named ones (and, unless `all`, everything they are built on), and those containers use. */
function protectedImages(core: Core, all: boolean): Set<string> {
  const list = core.images.list();
  const byId = new Map(list.map((i) => [i.id as string, i]));
  const keep = new Set<string>();
  for (const i of list) {
    const named = i.tags.length > 0 || i.repoDigests.length > 0;
    if (!named && !core.imageUsage.container(i.id)) continue;
    let cur: typeof i | undefined = i;
    // `all` still keeps an image's ancestors: its record names its parent
    while (cur && !keep.has(cur.id)) {
      keep.add(cur.id);
      cur = cur.parent ? byId.get(cur.parent) : undefined;
    }
  }
  void all;
  return keep;
}

export class Build {
  constructor(private readonly core: Core) {}

  /**
   * POST /build. `input`: a context tar stream (`{stream}`), a directory (`{dir}`), or none
   * with `opts.remote` (a URL to a tarball or to a Dockerfile). Returns the build stream;
   * `result` is the image ID and the tags given.
   */
  build(input: ImageBuildInput, opts: ImageBuildOptions = {}, ctl: { signal?: AbortSignal } = {}): Operation<BuildResponse> {
    return operation(async (emit) => {
      try {
        return await this.run(input, opts, ctl, emit);
      } catch (e) {
        const message = isEngineError(e) ? e.message : (e as Error).message;
        const code = (e as { exitCode?: number }).exitCode;
        emit({ errorDetail: { message, ...(code !== undefined ? { code } : {}) }, error: message });
        throw e;
      }
    });
  }

  private async run(input: ImageBuildInput, opts: ImageBuildOptions, ctl: { signal?: AbortSignal }, emit: (m: ProgressMessage) => void): Promise<BuildResponse> {
    // everything that can be refused is refused before any work
    const tags: ImageRef[] = (opts.t ?? []).map((t) => {
      try {
        return parseRepositoryTag(t);
      } catch (e) {
        if (isEngineError(e)) throw invalidArgument('BUILD_TAG', `invalid argument "${t}" for "-t, --tag" flag: ${e.message}`, { hint: 'a tag is NAME[:TAG], lower case' });
        throw e;
      }
    });
    const network = opts.networkmode || 'default';
    if (!NETWORK_MODES.includes(network)) throw invalidArgument('BUILD_NETWORK', `network mode ${JSON.stringify(network)} is not supported for builds`, { hint: 'use default, bridge, host or none' });
    for (const h of opts.extrahosts ?? []) {
      if (!/^[^:\s]+:[0-9a-fA-F.:]+$/.test(h)) throw invalidArgument('BUILD_ADD_HOST', `invalid IP address in add-host: ${JSON.stringify(h)}`, { hint: 'give HOST:IP' });
    }
    let platform: { os: string; architecture: string; variant?: string } | undefined;
    if (opts.platform) {
      const [os, architecture, variant] = opts.platform.split('/');
      if (!os || !architecture) throw invalidArgument('BUILD_PLATFORM', `invalid platform ${JSON.stringify(opts.platform)}`, { hint: 'give OS/ARCH[/VARIANT], e.g. linux/amd64' });
      platform = { os, architecture, ...(variant ? { variant } : {}) };
    }
    trace('build: begin');
    await this.core.repair();
    trace('build: store repaired');
    const { Builder } = await import('../build/builder.js');
    const { BuildContext } = await import('../build/context.js');
    let dockerfileText = opts.dockerfileContent;
    let src: { dir?: string; tar?: Readable } = {};
    if ('dir' in input && input.dir !== undefined) src = { dir: input.dir };
    else if ('stream' in input && input.stream) {
      const p = await peek(input.stream, 512);
      if (looksLikeArchive(p.head)) src = { tar: p.stream };
      else {
        const chunks: Buffer[] = [];
        for await (const c of p.stream) chunks.push(Buffer.from(c as Buffer));
        dockerfileText ??= Buffer.concat(chunks).toString('utf8');
      }
    } else if (opts.remote) {
      if (/^(git@|git:\/\/|github\.com\/)|\.git(#|$)/.test(opts.remote)) throw invalidArgument('BUILD_REMOTE', `git contexts are not supported: ${opts.remote}`, { hint: 'give a directory, a tar stream or the URL of a tarball' });
      if (!/^https?:\/\//.test(opts.remote)) throw invalidArgument('BUILD_REMOTE', `remoteURL (${opts.remote}) could not be recognized as URL`);
      let res: Response;
      try {
        res = await fetch(opts.remote, { ...(ctl.signal ? { signal: ctl.signal } : {}) });
      } catch (e) {
        throw invalidArgument('BUILD_REMOTE', `unable to prepare context: unable to download remote context ${opts.remote}: ${(e as Error).message}`);
      }
      if (res.status >= 400) throw invalidArgument('BUILD_REMOTE', `unable to prepare context: unable to download remote context ${opts.remote}: status ${res.status}`);
      const body = Readable.fromWeb(res.body as never);
      if ((res.headers.get('content-type') ?? '').startsWith('text/plain')) {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(Buffer.from(c as Buffer));
        dockerfileText ??= Buffer.concat(chunks).toString('utf8');
      } else src = { tar: body };
    }
    const context = await BuildContext.open(src, this.core.tmpDir, { ...(ctl.signal ? { signal: ctl.signal } : {}), ...(this.core.options.maxLayerBytes ? { maxBytes: this.core.options.maxLayerBytes } : {}) });
    // a directory of the host: its files' checksums from the last build, while unchanged
    const memo = context.memoisable ? new ChecksumMemo(this.core.db, context.root) : undefined;
    if (memo) context.useMemo(memo);
    trace('build: context open');
    try {
      const name = opts.dockerfile || 'Dockerfile';
      if (dockerfileText === undefined) dockerfileText = context.readDockerfile(name);
      const core = this.core;
      const builder = new Builder(
        {
          images: core.images,
          snapshots: core.snapshots,
          containers: () => core.containers(),
          cache: new BuildCacheStore(core.db),
          tmpDir: core.tmpDir,
          resolveImage: (n) => core.resolveImage(n),
          pull: async (n, o) => {
            await core.pull(n, { ...o, ...(opts.registryAuth ? { auth: authFor(opts.registryAuth, n) } : {}) });
          },
        },
        {
          context,
          dockerfile: dockerfileText,
          dockerfileName: name,
          tags,
          buildArgs: buildArgMap(opts.buildargs),
          labels: opts.labels ?? {},
          ...(opts.target ? { target: opts.target } : {}),
          noCache: !!opts.nocache,
          pull: !!opts.pull,
          rm: opts.rm ?? true,
          forceRm: !!opts.forcerm,
          networkMode: network,
          extraHosts: opts.extrahosts ?? [],
          ...(platform ? { platform } : {}),
          quiet: !!opts.q,
          ...(ctl.signal ? { signal: ctl.signal } : {}),
        },
        { stream: (text) => emit({ stream: text }), aux: (id) => emit({ aux: { ID: id } }) },
      );
      const r = await builder.run();
      trace('build: built');
      return { id: r.id, tags: r.tags, warnings: r.warnings };
    } finally {
      try {
        memo?.flush();
      } catch (e) {
        trace(`build: checksum memo not stored: ${(e as Error).message}`); // a cache: the build stands
      } finally {
        await context.close();
      }
    }
  }

  /** The Build Cache rows of `system df`. */
  cache(): BuildCacheRecord[] {
    return buildCacheDf(this.core);
  }

  /**
   * POST /build/prune (`builder prune`): removes the build cache — the intermediate images
   * builds made that nothing named is built on and no container uses (with `all`, every
   * cache entry is dropped, though named images and their ancestors stay as images).
   */
  async prune(opts: { all?: boolean } = {}): Promise<BuildCachePruneResponse> {
    await this.core.repair();
    const cache = new BuildCacheStore(this.core.db);
    const rows = cache.rows();
    const keep = protectedImages(this.core, !!opts.all);
    const victims = [...new Set(rows.map((r) => r.image_id))].filter((id) => !keep.has(id));
    if (opts.all) cache.clear();
    else cache.remove(victims);
    const sizes = new Map(this.core.layers.all().map((l) => [l.chainId as string, l.size]));
    const depth = (id: string): number => {
      let n = 0;
      let cur = this.core.images.get(id);
      while (cur?.parent && n < 10000) {
        n++;
        cur = this.core.images.get(cur.parent);
      }
      return n;
    };
    const order = victims.map((id) => [id, depth(id)] as const).sort((a, b) => b[1] - a[1]);
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const [id] of order) {
      const img = this.core.images.get(id);
      if (!img || img.tags.length || img.repoDigests.length) continue;
      if (this.core.images.list().some((i) => i.parent === id)) continue;
      try {
        const ev = await this.core.removeImage(id, { noPrune: true });
        for (const e of ev) if ('Deleted' in e && sizes.has(e.Deleted)) reclaimed += sizes.get(e.Deleted)!;
        deleted.push(id.replace(/^sha256:/, '').slice(0, 25));
      } catch (e) {
        if (isEngineError(e, 'conflict')) continue;
        throw e;
      }
    }
    return { CachesDeleted: deleted, SpaceReclaimed: reclaimed };
  }
}

export { looksLikeArchive };
