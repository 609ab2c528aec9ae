/**
 * POST /build (the classic builder, as dockerd with Builder-Version 1) and /build/prune.
 * The context is the request body: a tar (application/x-tar or application/tar), gzipped
 * or not, or a plain Dockerfile; Docker's query names pass to engine.build as they are.
 * The answer is Docker's build stream: `stream`, `aux.ID`, `errorDetail`/`error`.
 */
import type { AuthConfig, ImageBuildInput, ImageBuildOptions } from '../../engine/index.js';
import { badRequest, HttpError } from '../http.js';
import { streamOperation } from '../jsonstream.js';
import type { RouteCtx, Router } from '../router.js';

/** X-Registry-Config: base64 (url-safe too) JSON `{registry: AuthConfig}` for the FROM pulls of this build. */
function registryConfig(c: RouteCtx): Record<string, AuthConfig> {
  const h = c.req.headers['x-registry-config'];
  if (typeof h !== 'string' || h.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(h.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'));
  } catch {
    throw badRequest('invalid X-Registry-Config header: not base64-encoded JSON');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw badRequest('invalid X-Registry-Config header: a JSON object of registries is expected');
  return v as Record<string, AuthConfig>;
}

function stringMap(c: RouteCtx, name: string): Record<string, string | null> | undefined {
  const v = c.query.json<unknown>(name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => x === null || typeof x === 'string')) throw badRequest(`invalid ${name}: a JSON object of strings is expected`);
  return v as Record<string, string | null>;
}

function buildOptions(c: RouteCtx): ImageBuildOptions {
  const q = c.query;
  const version = q.str('version');
  if (version === '2') throw new HttpError(501, 'BuildKit (build version 2) is not supported by layerbox: use the classic builder (DOCKER_BUILDKIT=0)');
  const o: ImageBuildOptions = { t: q.all('t').filter(Boolean), rm: q.bool('rm', true), registryAuth: registryConfig(c) };
  for (const k of ['dockerfile', 'target', 'remote', 'platform', 'networkmode'] as const) {
    const v = q.str(k);
    if (v) o[k] = v;
  }
  for (const k of ['nocache', 'q', 'forcerm'] as const) if (q.bool(k)) o[k] = true;
  // `pull` may be a bool or (1.41+) an image name to always pull
  const pull = q.str('pull');
  if (pull !== undefined && q.bool('pull')) o.pull = true;
  const args = stringMap(c, 'buildargs');
  if (args) o.buildargs = args;
  const labels = stringMap(c, 'labels');
  if (labels) o.labels = Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, v ?? '']));
  const hosts = q.all('extrahosts').flatMap((h) => h.split(',')).filter(Boolean);
  if (hosts.length) o.extrahosts = hosts;
  return o;
}

export function buildRoutes(r: Router): void {
  r.on('POST', '/build', async (c) => {
    const opts = buildOptions(c);
    const hasBody = c.req.headers['content-length'] !== '0' && (c.req.headers['content-length'] !== undefined || c.req.headers['transfer-encoding'] !== undefined);
    if (!hasBody && !opts.remote) throw badRequest('no build context: send a tar of the context as the body, or give remote=URL');
    const input: ImageBuildInput = hasBody ? { stream: c.req } : {};
    // quiet: dockerd's router writes the ID as the only stream line (the CLI's -q prints it)
    await streamOperation(c, c.engine.build.build(input, opts, { signal: c.signal }), { after: (r) => (opts.q ? [{ stream: `${r.id}\n` }] : []) });
  });
  r.on('POST', '/build/prune', async (c) => {
    c.send(200, await c.engine.build.prune({ all: c.query.bool('all') }));
  });
}
