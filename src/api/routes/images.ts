/**
 * The image endpoints: list, create (pull, import), inspect, history, push, tag, delete,
 * get (save), load, prune, search. Image names may hold slashes and colons
 * (`127.0.0.1:5000/a/b:tag`), so `/images/{name}/…` is one wildcard route per method that
 * splits off the last segment, as dockerd's `{name:.*}` routes do.
 */
import { parsePlatform, parseReference, type AuthConfig, type Digest, type ProgressMessage } from '../../engine/index.js';
import { badRequest, HttpError, registryAuth } from '../http.js';
import { streamOperation } from '../jsonstream.js';
import type { RouteCtx, Router } from '../router.js';

/** X-Registry-Auth for this request only: absent or empty is anonymous (dockerd keeps no credentials of its own). */
const authOf = (c: RouteCtx): AuthConfig => registryAuth(c.req) ?? {};

/** `name/json` → [name, "json"]; the name is everything before the last slash. */
function split(rest: string): [string, string] {
  const i = rest.lastIndexOf('/');
  return i < 0 ? [rest, ''] : [rest.slice(0, i), rest.slice(i + 1)];
}

const notFoundPage = () => new HttpError(404, 'page not found');

async function list(c: RouteCtx): Promise<void> {
  const filters = c.query.filters();
  // API < 1.25's `filter=NAME` is the reference filter
  const old = c.query.str('filter');
  if (old) (filters.reference ??= []).push(old);
  c.send(200, await c.engine.images.list({ all: c.query.bool('all'), filters, digests: c.query.bool('digests') }));
}

/** POST /images/create: `fromImage` pulls (every tag when none is named), `fromSrc` imports (`-`: the body). */
async function create(c: RouteCtx): Promise<void> {
  const fromImage = c.query.str('fromImage');
  const fromSrc = c.query.str('fromSrc');
  const tag = c.query.str('tag') ?? '';
  const platform = c.query.str('platform') || undefined;
  if (fromImage !== undefined && fromImage !== '') {
    let ref = parseReference(fromImage);
    if (tag) {
      // the "tag" may be a digest
      ref = tag.includes(':') ? ref.nameOnly().withDigest(tag as Digest) : ref.nameOnly().withTag(tag);
    }
    const opts = { auth: authOf(c), signal: c.signal, ...(platform ? { platform: parsePlatform(platform) } : {}) };
    if (ref.isNameOnly()) await streamOperation(c, c.engine.images.pullRepository(ref.toString(), opts));
    else await streamOperation(c, c.engine.images.pull(ref.toString(), opts));
    return;
  }
  if (fromSrc !== undefined && fromSrc !== '') {
    const repo = c.query.str('repo') ?? '';
    let reference: string | undefined;
    if (repo) reference = tag ? parseReference(repo).nameOnly().withTag(tag).toString() : repo;
    const op = c.engine.images.import(fromSrc === '-' ? { stream: c.req } : { url: fromSrc }, {
      ...(reference ? { reference } : {}),
      changes: c.query.all('changes'),
      ...(c.query.str('message') ? { message: c.query.str('message')! } : {}),
      ...(platform ? { platform } : {}),
      signal: c.signal,
    });
    // dockerd says where it downloads from, then the new image's ID; no layer bars
    await streamOperation(c, op, { map: (m) => (m.status?.startsWith('Downloading from ') ? m : undefined), after: (r) => [{ status: r.id }] });
    return;
  }
  throw badRequest('fromImage or fromSrc is required');
}

/** POST /images/{name}/push?tag=: one tag, or every local tag of the repository when none is given. */
async function push(c: RouteCtx, name: string): Promise<void> {
  const tag = c.query.str('tag') ?? '';
  let ref = parseReference(name);
  if (tag) ref = ref.nameOnly().withTag(tag);
  const all = ref.isNameOnly();
  await streamOperation(c, c.engine.images.push(ref.toString(), { auth: authOf(c), allTags: all, signal: c.signal }));
}

/** GET /images/{name}/get and /images/get?names=…: a docker-archive streamed as it is made. */
async function save(c: RouteCtx, names: string[]): Promise<void> {
  if (names.length === 0) throw badRequest('no image names given');
  // every name is checked before the answer starts: a missing one is a 404, not a cut tar
  for (const n of names) {
    if (!c.engine.images.exists(n)) throw new HttpError(404, 'reference does not exist');
  }
  const out = c.stream('application/x-tar');
  try {
    await c.engine.images.save(names, { stream: out as unknown as import('node:stream').Writable }, { signal: c.signal });
  } catch (e) {
    // the client sees the archive cut short
    c.res?.destroy();
    if (!c.signal.aborted) throw e;
    return;
  }
  c.res?.end();
}

/** POST /images/load?quiet=: the body is an archive; the answer a JSON stream ending in "Loaded image: …". */
async function load(c: RouteCtx): Promise<void> {
  const quiet = c.query.bool('quiet');
  await streamOperation(c, c.engine.images.load({ stream: c.req }, { signal: c.signal }), {
    eager: true,
    map: (m: ProgressMessage) => (quiet && m.stream === undefined ? undefined : m),
  });
}

export function imageRoutes(r: Router): void {
  r.on('GET', '/images/json', list);
  r.on('POST', '/images/create', create);
  r.on('POST', '/images/load', load);
  r.on('GET', '/images/get', (c) => save(c, c.query.all('names')));
  r.on('POST', '/images/prune', async (c) => c.send(200, await c.engine.images.prune({ filters: c.query.filters() })));
  r.on('GET', '/images/search', () => {
    throw new HttpError(501, 'image search is not supported by layerbox: it has no index to search (search the registry itself, e.g. its /v2/_catalog)');
  });
  r.on('GET', '/images/*', async (c) => {
    const [name, what] = split(c.params['*'] ?? '');
    if (!name) throw notFoundPage();
    if (what === 'json') return c.send(200, await c.engine.images.inspect(name));
    if (what === 'history') return c.send(200, await c.engine.images.history(name));
    if (what === 'get') return save(c, [name]);
    throw notFoundPage();
  });
  r.on('POST', '/images/*', async (c) => {
    const [name, what] = split(c.params['*'] ?? '');
    if (!name) throw notFoundPage();
    if (what === 'push') return push(c, name);
    if (what === 'tag') {
      const repo = c.query.str('repo') ?? '';
      if (!repo) throw badRequest('repository name must have at least one component');
      c.engine.images.tag(name, repo, c.query.str('tag') || undefined);
      c.res!.writeHead(201);
      c.res!.end();
      return;
    }
    throw notFoundPage();
  });
  r.on('DELETE', '/images/*', async (c) => {
    const name = c.params['*'] ?? '';
    if (!name) throw notFoundPage();
    c.send(200, await c.engine.images.remove(name, { force: c.query.bool('force'), noprune: c.query.bool('noprune') }));
  });
}
