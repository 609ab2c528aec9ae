/** The Docker Engine API v1.41 front: a router over the engine's door and its listeners. */
export { apiRouter } from './routes/index.js';
export { listen, type ListenOptions, type RunningServer, type TlsOptions } from './server.js';
export { Router, type RouteCtx, type Handler } from './router.js';
