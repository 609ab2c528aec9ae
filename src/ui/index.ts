/**
 * The layer explorer: web pages over engine.analysis — the store view (every image as a
 * stack of layers, what they share), an image's page (layers, figures, per-layer and merged
 * trees, wasted files, previews), a compare view — and the JSON API the pages use, which
 * scripts can call too. A front like the CLI: it sees only the engine's door.
 *
 * `createExplorer(engine)` returns a handler to mount under a path prefix (`/ui`):
 * `explore` serves it on its own listener; `serve` (the Engine API server) can mount the
 * same handler. It refuses requests whose Host or Origin is not the listener's own (DNS
 * rebinding), anything but GET/HEAD, and paths with `..`; it reads files only through the
 * analysis (a path must name an entry of the image; nothing outside the snapshots).
 *
 * Front-end stack: Preact with htm, as ES modules straight from node_modules with an import
 * map — no bundler, no build step, nothing from a CDN. Preact is ~5 KB, stable and widely
 * used, with hooks for state; htm gives JSX-like templates in plain tagged strings, so the
 * page's source is what the browser runs. lit would do too; Preact's render-from-state model
 * fits a virtualised tree (render only the visible rows) most simply.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Engine, ImageExplorer } from '../engine/index.js';
import { EngineError, isEngineError } from '../errors/index.js';

export interface ExplorerOptions {
  /** Path prefix the pages and the API live under (default `/ui`). */
  prefix?: string;
  /** Images kept analysed in memory (default 4). */
  cacheSize?: number;
}

export interface Explorer {
  /** Handles a request under the prefix. Returns false, having written nothing, for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** Analyses images in the background, so their pages open at once. */
  warm(names: string[]): void;
  readonly prefix: string;
}

// dist/ui/index.js and dist/bundle/cli.cjs both sit two levels below the package root
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STATIC: Record<string, { file: string; type: string }> = {
  'app.js': { file: `${ROOT}src/ui/static/app.js`, type: 'text/javascript; charset=utf-8' },
  'tree.js': { file: `${ROOT}src/ui/static/tree.js`, type: 'text/javascript; charset=utf-8' },
  'util.js': { file: `${ROOT}src/ui/static/util.js`, type: 'text/javascript; charset=utf-8' },
  'style.css': { file: `${ROOT}src/ui/static/style.css`, type: 'text/css; charset=utf-8' },
  'vendor/preact.mjs': { file: `${ROOT}node_modules/preact/dist/preact.mjs`, type: 'text/javascript; charset=utf-8' },
  'vendor/hooks.mjs': { file: `${ROOT}node_modules/preact/hooks/dist/hooks.mjs`, type: 'text/javascript; charset=utf-8' },
  'vendor/htm.mjs': { file: `${ROOT}node_modules/htm/dist/htm.mjs`, type: 'text/javascript; charset=utf-8' },
  'vendor/htm-preact.mjs': { file: `${ROOT}node_modules/htm/preact/index.mjs`, type: 'text/javascript; charset=utf-8' },
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

const STATUS: Record<string, number> = {
  'not-found': 404,
  'invalid-argument': 400,
  conflict: 409,
  unsupported: 501,
  'failed-precondition': 412,
  unavailable: 503,
  'resource-exhausted': 413,
};

function isLoopback(a: string | undefined): boolean {
  return !!a && (a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.'));
}

/**
 * The Host values a request may carry: the listener's own address (an IP literal) and
 * port, and `localhost` for a loopback listener. A name that resolves elsewhere first and
 * here later (DNS rebinding) carries its own name: refused. Over a unix socket (no port)
 * no other site can reach the listener: anything goes.
 */
function hostAllowed(req: IncomingMessage, host: string | undefined): boolean {
  const port = req.socket.localPort;
  if (port === undefined) return true;
  if (!host) return false;
  let addr = req.socket.localAddress ?? '';
  if (addr.startsWith('::ffff:')) addr = addr.slice(7);
  const allowed = new Set<string>([addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`]);
  if (isLoopback(addr)) for (const h of ['localhost', '127.0.0.1', '[::1]']) allowed.add(`${h}:${port}`);
  return allowed.has(host.toLowerCase());
}

function num(v: string | null, what: string): number | undefined {
  if (v === null || v === '') return undefined;
  if (!/^\d{1,15}$/.test(v)) throw new HttpError(400, `invalid ${what} ${JSON.stringify(v.slice(0, 40))}: give a whole number`, 'BAD_PARAMETER');
  return Number(v);
}

function param(u: URL, name: string): string {
  const v = u.searchParams.get(name);
  if (v === null || v === '') throw new HttpError(400, `missing parameter ${name}`, 'MISSING_PARAMETER');
  return v;
}

/** `..` in a path parameter is refused outright, never resolved. */
function pathParam(u: URL, name = 'path', def?: string): string {
  const v = u.searchParams.get(name) ?? def;
  if (v === undefined || v === '') throw new HttpError(400, `missing parameter ${name}`, 'MISSING_PARAMETER');
  if (v.split('/').includes('..')) throw new HttpError(400, `invalid path ${JSON.stringify(v.slice(0, 200))}: ".." is not allowed`, 'BAD_PATH', 'give an absolute path inside the image, like /etc/passwd');
  if (v.includes('\0')) throw new HttpError(400, 'invalid path: NUL byte', 'BAD_PATH');
  return v;
}

export function createExplorer(engine: Engine, opts: ExplorerOptions = {}): Explorer {
  const prefix = (opts.prefix ?? '/ui').replace(/\/+$/, '');
  const cacheSize = Math.max(1, opts.cacheSize ?? 4);
  const models = new Map<string, Promise<ImageExplorer>>();

  const importMap = JSON.stringify({
    imports: {
      preact: `${prefix}/vendor/preact.mjs`,
      'preact/hooks': `${prefix}/vendor/hooks.mjs`,
      htm: `${prefix}/vendor/htm.mjs`,
      'htm/preact': `${prefix}/vendor/htm-preact.mjs`,
    },
  });
  const mapHash = createHash('sha256').update(importMap).digest('base64');
  const csp = `default-src 'none'; script-src 'self' 'sha256-${mapHash}'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>layerbox explorer</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${prefix}/static/style.css">
<script type="importmap">${importMap}</script>
<script type="module" src="${prefix}/static/app.js"></script>
</head>
<body data-prefix="${prefix}"><div id="app"><p class="loading">Loading…</p></div></body>
</html>
`;

  /** The analysis of a stored image, cached by image ID (an image's layers never change). */
  function model(ref: string): Promise<ImageExplorer> {
    let id: string;
    try {
      id = engine.images.resolve(ref).id;
    } catch (e) {
      return Promise.reject(e);
    }
    let p = models.get(id);
    if (p) {
      models.delete(id);
      models.set(id, p);
      return p;
    }
    p = engine.analysis.open(id);
    p.catch(() => models.delete(id));
    models.set(id, p);
    while (models.size > cacheSize) models.delete(models.keys().next().value!);
    return p;
  }

  function headers(res: ServerResponse, type: string, cache: string): void {
    res.setHeader('Content-Type', type);
    res.setHeader('Cache-Control', cache);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Content-Security-Policy', csp);
  }

  function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string | Buffer, cache = 'no-store'): void {
    const b = typeof body === 'string' ? Buffer.from(body) : body;
    res.statusCode = status;
    headers(res, type, cache);
    res.setHeader('Content-Length', b.length);
    res.end(req.method === 'HEAD' ? undefined : b);
  }

  function json(req: IncomingMessage, res: ServerResponse, status: number, v: unknown): void {
    send(req, res, status, 'application/json; charset=utf-8', JSON.stringify(v));
  }

  async function api(route: string, u: URL): Promise<unknown> {
    switch (route) {
      case 'store':
        return engine.analysis.store();
      case 'image':
        return (await model(param(u, 'ref'))).detail();
      case 'tree': {
        const m = await model(param(u, 'ref'));
        const sort = u.searchParams.get('sort');
        return m.tree({
          path: pathParam(u, 'path', '/'),
          layer: num(u.searchParams.get('layer'), 'layer'),
          offset: num(u.searchParams.get('offset'), 'offset'),
          limit: num(u.searchParams.get('limit'), 'limit'),
          sort: sort === 'size' ? 'size' : 'name',
          removed: u.searchParams.get('removed') === '1',
        });
      }
      case 'entry': {
        const m = await model(param(u, 'ref'));
        return m.entry(pathParam(u), { layer: num(u.searchParams.get('layer'), 'layer') });
      }
      case 'file': {
        const m = await model(param(u, 'ref'));
        const r = m.read(pathParam(u), {
          layer: num(u.searchParams.get('layer'), 'layer'),
          offset: num(u.searchParams.get('offset'), 'offset'),
          length: num(u.searchParams.get('length'), 'length'),
        });
        let text: string | undefined;
        if (!r.data.includes(0)) {
          try {
            // stream: a multi-byte character cut at the end of the window is not an error
            text = new TextDecoder('utf-8', { fatal: true }).decode(r.data, { stream: true });
          } catch {
            text = undefined;
          }
        }
        return { entry: r.entry, size: r.size, offset: r.offset, length: r.data.length, truncated: r.truncated, binary: text === undefined, ...(text !== undefined ? { text } : {}), base64: r.data.toString('base64') };
      }
      case 'search': {
        const m = await model(param(u, 'ref'));
        return m.search(param(u, 'q'), { layer: num(u.searchParams.get('layer'), 'layer'), limit: num(u.searchParams.get('limit'), 'limit'), sort: u.searchParams.get('sort') === 'path' ? 'path' : 'size' });
      }
      case 'compare':
        return engine.analysis.compare(param(u, 'a'), param(u, 'b'));
      default:
        throw new HttpError(404, `no API ${JSON.stringify(route)}`, 'NO_SUCH_API', 'see src/ui/README.md for the API');
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const raw = req.url ?? '/';
    const pathOnly = raw.split('?')[0]!;
    if (pathOnly !== prefix && !pathOnly.startsWith(prefix + '/')) return false;
    try {
      if (!hostAllowed(req, req.headers.host)) {
        throw new HttpError(421, `this explorer does not answer for host ${JSON.stringify(req.headers.host ?? '')}`, 'WRONG_HOST', 'open it through the address it printed (a foreign host name is refused: DNS rebinding)');
      }
      const origin = req.headers.origin;
      if (origin !== undefined && !(origin.startsWith('http://') && hostAllowed(req, origin.slice(7)))) {
        throw new HttpError(403, `requests from origin ${JSON.stringify(origin)} are refused`, 'WRONG_ORIGIN', 'the explorer answers only its own pages');
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        throw new HttpError(405, `method ${req.method} is not allowed: the explorer only reads`, 'METHOD_NOT_ALLOWED');
      }
      let decoded: string;
      try {
        decoded = decodeURIComponent(pathOnly);
      } catch {
        throw new HttpError(400, 'invalid URL encoding', 'BAD_PATH');
      }
      if (decoded.split('/').includes('..') || decoded.includes('\0') || decoded.includes('\\')) {
        throw new HttpError(400, `invalid path ${JSON.stringify(decoded.slice(0, 200))}: ".." is not allowed`, 'BAD_PATH');
      }
      const rest = decoded.slice(prefix.length);
      if (rest === '') {
        res.statusCode = 308;
        res.setHeader('Location', prefix + '/');
        res.end();
        return true;
      }
      if (rest === '/' || rest === '/index.html') {
        send(req, res, 200, 'text/html; charset=utf-8', html);
        return true;
      }
      if (rest.startsWith('/api/')) {
        const u = new URL(raw, 'http://explorer.invalid');
        json(req, res, 200, await api(rest.slice(5), u));
        return true;
      }
      const key = rest.startsWith('/static/') ? rest.slice(8) : rest.startsWith('/vendor/') ? rest.slice(1) : undefined;
      const f = key !== undefined ? STATIC[key] : undefined;
      if (!f) throw new HttpError(404, `no page ${JSON.stringify(rest)}`, 'NOT_FOUND');
      send(req, res, 200, f.type, readFileSync(f.file), 'no-cache');
      return true;
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return true;
      }
      let status = 500;
      let body: { message: string; code: string; hint?: string };
      if (e instanceof HttpError) {
        status = e.status;
        body = { message: e.message, code: e.code, ...(e.hint ? { hint: e.hint } : {}) };
      } else if (isEngineError(e)) {
        status = STATUS[(e as EngineError).kind] ?? 500;
        body = { message: e.message, code: e.code, ...(e.hint ? { hint: e.hint } : {}) };
      } else {
        body = { message: `internal error: ${(e as Error)?.message ?? String(e)}`, code: 'INTERNAL' };
      }
      json(req, res, status, body);
      return true;
    }
  }

  return {
    prefix,
    handle,
    warm(names) {
      for (const n of names) model(n).catch(() => {});
    },
  };
}

export interface ExplorerServer {
  /** The URL of the store view. */
  url: string;
  /** The URL of an image's page. */
  imageUrl(idOrName: string): string;
  server: Server;
  explorer: Explorer;
  close(): Promise<void>;
}

/**
 * `explore`: the explorer on its own listener (127.0.0.1 unless told otherwise; port 0
 * picks a free one). `/` redirects to the pages under the prefix.
 */
export async function listenExplorer(engine: Engine, opts: ExplorerOptions & { host?: string; port?: number } = {}): Promise<ExplorerServer> {
  const explorer = createExplorer(engine, opts);
  const server = createServer((req, res) => {
    void explorer.handle(req, res).then((handled) => {
      if (handled) return;
      if ((req.url ?? '/').split('?')[0] === '/' && hostAllowed(req, req.headers.host)) {
        res.statusCode = 302;
        res.setHeader('Location', explorer.prefix + '/');
        res.end();
        return;
      }
      res.statusCode = 404;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ message: 'not found', code: 'NOT_FOUND' }));
    });
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new EngineError('unavailable', 'LISTEN_FAILED', `cannot listen on ${host}:${opts.port ?? 0}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.message}`, {
          cause: e,
          hint: e.code === 'EADDRINUSE' ? 'choose another --port, or --port 0 for a free one' : 'check --host',
        }),
      ),
    );
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const shown = a.address === '0.0.0.0' || a.address === '::' ? '127.0.0.1' : a.address.includes(':') ? `[${a.address}]` : a.address;
  const base = `http://${shown}:${a.port}${explorer.prefix}/`;
  return {
    url: base,
    imageUrl: (id) => `${base}#/image/${encodeURIComponent(id)}`,
    server,
    explorer,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
