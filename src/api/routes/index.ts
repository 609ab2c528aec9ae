/** Every route of the Engine API v1.41 that layerbox serves. */
import type { Engine } from '../../engine/index.js';
import { networkRoutes } from './networks.js';
import { Router } from '../router.js';
import { systemRoutes } from './system.js';

export function apiRouter(engine: Engine): Router {
  const r = new Router(engine);
  networkRoutes(r);
  systemRoutes(r);
  return r;
}
