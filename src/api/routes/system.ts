/** _ping, version, info, system df: the handshake and what the docker CLI asks first. */
import { API_VERSION, type AuthConfig } from '../../engine/index.js';
import type { Router } from '../router.js';

/** Never Builder-Version 2: the docker CLI would switch to BuildKit's gRPC session. */
const PING_HEADERS = {
  'Api-Version': API_VERSION,
  Ostype: 'linux',
  'Docker-Experimental': 'false',
  'Builder-Version': '1',
  'Cache-Control': 'no-cache, no-store, must-revalidate',
  Pragma: 'no-cache',
};

const PING_ANSWER = { ...PING_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '2' };

export function systemRoutes(r: Router): void {
  r.on(['GET', 'HEAD'], '/_ping', (c) => {
    c.res!.writeHead(200, PING_ANSWER);
    c.res!.end(c.req.method === 'HEAD' ? undefined : 'OK');
  });
  r.on('GET', '/version', (c) => c.send(200, c.engine.system.version()));
  r.on('GET', '/info', async (c) => c.send(200, await c.engine.system.info()));
  r.on('GET', '/system/df', async (c) => c.send(200, await c.engine.system.df()));
  // checks the credentials against the registry; the client keeps them (nothing is stored here)
  r.on('POST', '/auth', async (c) => c.send(200, await c.engine.checkAuth((await c.json<AuthConfig>('SystemAuth')) ?? {}, { signal: c.signal })));
}
