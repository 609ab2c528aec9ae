/**
 * The Engine API server's listeners: unix sockets (0660, group `layerbox` when it exists),
 * TCP (mutual TLS with --tlsverify, as dockerd; plain TCP only on loopback unless the
 * operator opts in, since the API is root-equivalent) and systemd's sockets (fd://).
 * Requests and upgrades (attach, exec) go to the router; other handlers (the explorer
 * under /ui) may claim a request first. Closing stops accepting, ends open streams and
 * leaves containers running under their conmon.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, isIP, type Socket } from 'node:net';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { EngineError, faultText } from '../errors/index.js';
import { API_VERSION } from '../engine/index.js';
import { sendError } from './http.js';
import { Router, SERVER_HEADER } from './router.js';

export interface TlsOptions {
  /** require and verify client certificates signed by `ca` (dockerd's --tlsverify) */
  verify: boolean;
  ca?: string;
  cert: string;
  key: string;
}

export interface ListenOptions {
  /** unix:///path, tcp://host:port, fd:// or fd://N (dockerd's -H) */
  hosts: string[];
  tls?: TlsOptions;
  /** allow plain TCP on a non-loopback address (the API is root-equivalent: an explicit opt-in) */
  allowInsecureTcp?: boolean;
  /** the unix socket's group (default: `layerbox` when it exists, else root's) */
  group?: string;
  /** a handler that may claim a request before the API's routes (returns true when it answered) */
  before?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
}

export interface RunningServer {
  /** what each listener is bound to (unix:///…, tcp://host:port) */
  addresses: string[];
  close(): Promise<void>;
}

/** A request's unexpected fault, on the server's stderr (the client gets a 500). */
function internalError(req: IncomingMessage, e: unknown): void {
  process.stderr.write(`Error: internal error in ${req.method} ${req.url}: ${faultText(e)}\n`);
}

const isLoopback = (h: string) => h === 'localhost' || h === '::1' || /^127\./.test(h);

function groupId(name: string): number | undefined {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [n, , gid] = line.split(':');
      if (n === name && gid !== undefined) return Number(gid);
    }
  } catch {
    /* no group database */
  }
  return undefined;
}

/** A unix socket path left by a server that is gone can be removed; one in use cannot. */
async function clearStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new EngineError('conflict', 'SOCKET_PATH_TAKEN', `${path} exists and is not a socket`, { hint: 'remove it, or choose another -H unix:///path' });
  const inUse = await new Promise<boolean>((res) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
  if (inUse) throw new EngineError('conflict', 'SOCKET_IN_USE', `another server is listening on ${path}`, { hint: 'stop it, or choose another -H unix:///path' });
  unlinkSync(path);
}

export async function listen(router: Router, opts: ListenOptions): Promise<RunningServer> {
  const servers: { server: Server; address: string; unixPath?: string }[] = [];
  const sockets = new Set<Socket | Duplex>();
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('Api-Version', API_VERSION);
    res.setHeader('Server', SERVER_HEADER);
    res.setHeader('Docker-Experimental', 'false');
    res.setHeader('Ostype', 'linux');
    void (async () => {
      if (opts.before && (await opts.before(req, res).catch(() => false))) return;
      await router.dispatch(req, res, req.socket);
    })().catch((e: unknown) => {
      // a fault of one request (dispatch answers its own errors: this is a bug) ends that
      // request, never the server
      internalError(req, e);
      if (!res.headersSent) sendError(res, e);
      else res.destroy();
    });
  };
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    router.dispatch(req, undefined, socket, head).catch((e: unknown) => {
      internalError(req, e);
      socket.destroy();
    });
  };
  const make = (tls: boolean): Server => {
    const s = tls
      ? createHttpsServer({
          cert: readFileSync(opts.tls!.cert),
          key: readFileSync(opts.tls!.key),
          ...(opts.tls!.ca ? { ca: readFileSync(opts.tls!.ca) } : {}),
          requestCert: opts.tls!.verify,
          rejectUnauthorized: opts.tls!.verify,
          minVersion: 'TLSv1.2',
        })
      : createHttpServer();
    // long polls (wait, events, logs -f, attach) must not time out
    s.requestTimeout = 0;
    s.headersTimeout = 60_000;
    s.keepAliveTimeout = 5_000;
    s.on('request', onRequest);
    s.on('upgrade', onUpgrade);
    s.on('connection', (c: Socket) => {
      sockets.add(c);
      c.once('close', () => sockets.delete(c));
    });
    s.on('clientError', (_e, socket: Duplex) => {
      // random bytes on the socket: a 400 and the connection closed, the server unaffected
      if (!socket.destroyed) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    });
    return s;
  };
  const bind = (server: Server, target: Parameters<Server['listen']>[0]) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(target, () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    for (const host of opts.hosts) {
      if (host.startsWith('unix://')) {
        const path = host.slice('unix://'.length) || '/run/layerbox.sock';
        // a group that is not there is refused before anything listens
        const gid = groupId(opts.group ?? 'layerbox');
        if (gid === undefined && opts.group) throw new EngineError('invalid-argument', 'NO_SUCH_GROUP', `group ${opts.group} does not exist`, { hint: 'create it (groupadd), or leave --group out' });
        mkdirSync(dirname(path), { recursive: true });
        await clearStaleSocket(path);
        const server = make(false);
        // from here on a failure closes it with the others
        servers.push({ server, address: `unix://${path}`, unixPath: path });
        await bind(server, path);
        // root-equivalent: owner and group only
        chmodSync(path, 0o660);
        if (gid !== undefined) chownSync(path, 0, gid);
      } else if (host.startsWith('tcp://')) {
        const u = new URL(host.replace(/^tcp:/, 'http:'));
        const hostname = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
        const port = Number(u.port || (opts.tls ? 2376 : 2375));
        if (!opts.tls && !isLoopback(hostname) && !opts.allowInsecureTcp) {
          throw new EngineError('forbidden', 'INSECURE_TCP', `refusing plain TCP on ${hostname}:${port}: the API is root-equivalent and anyone who reaches it owns this host`, {
            hint: 'use --tlsverify with --tlscacert, --tlscert and --tlskey (mutual TLS), listen on 127.0.0.1 or a unix socket, or pass --insecure-tcp to accept the risk',
          });
        }
        if (opts.tls && !opts.tls.verify && !isLoopback(hostname)) process.stderr.write(`Warning: TLS without --tlsverify on ${hostname}:${port}: any client that reaches it may use the API\n`);
        const server = make(!!opts.tls);
        await bind(server, { host: hostname, port });
        const a = server.address();
        const bound = a && typeof a === 'object' ? `${isIP(a.address) === 6 ? `[${a.address}]` : a.address}:${a.port}` : `${hostname}:${port}`;
        servers.push({ server, address: `tcp://${bound}` });
      } else if (host.startsWith('fd://')) {
        // systemd socket activation: LISTEN_FDS sockets from fd 3 on
        const count = process.env.LISTEN_PID === String(process.pid) ? Number(process.env.LISTEN_FDS ?? 0) : 0;
        const want = host.slice('fd://'.length);
        const fds = want ? [Number(want)] : Array.from({ length: count }, (_, i) => 3 + i);
        if (fds.length === 0 || fds.some((fd) => !Number.isInteger(fd) || fd < 3 || fd >= 3 + count)) {
          throw new EngineError('invalid-argument', 'NO_LISTEN_FDS', `${host}: no socket was passed by systemd (LISTEN_FDS)`, { hint: 'start the server from a systemd socket unit, or use unix:// or tcp://' });
        }
        for (const fd of fds) {
          const server = make(!!opts.tls);
          await bind(server, { fd });
          servers.push({ server, address: `fd://${fd}` });
        }
      } else {
        throw new EngineError('invalid-argument', 'BAD_HOST', `invalid -H ${JSON.stringify(host)}`, { hint: 'use unix:///path, tcp://host:port or fd://' });
      }
    }
  } catch (e) {
    for (const s of servers) {
      if (s.server.listening && s.unixPath && existsSync(s.unixPath)) unlinkSync(s.unixPath);
      s.server.close();
    }
    throw e;
  }
  return {
    addresses: servers.map((s) => s.address),
    async close() {
      // stop accepting; requests under way get a moment to finish
      const closed = Promise.all(servers.map((s) => new Promise<void>((r) => s.server.close(() => r()))));
      for (const s of servers) s.server.closeIdleConnections();
      for (const s of servers) if (s.unixPath && existsSync(s.unixPath)) unlinkSync(s.unixPath);
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000).unref())]);
      // streams still open (events, logs -f, attach): they end with the server
      for (const c of sockets) c.destroy();
      await closed;
    },
  };
}
