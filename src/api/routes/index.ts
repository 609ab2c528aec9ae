/** Every route of the Engine API v1.41 that layerbox serves. */
import type { Engine } from '../../engine/index.js';
import { Router } from '../router.js';
import { systemRoutes } from './system.js';
import { eventRoutes } from './events.js';

export function apiRouter(engine: Engine): Router {
  const r = new Router(engine);
  systemRoutes(r);
  eventRoutes(r);
  return r;
}
