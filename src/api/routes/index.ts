/** Every route of the Engine API v1.41 that layerbox serves. */
import type { Engine } from '../../engine/index.js';
import { networkRoutes } from './networks.js';
import { Router } from '../router.js';
import { buildRoutes } from './build.js';
import { imageRoutes } from './images.js';
import { systemRoutes } from './system.js';
import { volumeRoutes } from './volumes.js';
import { containerRoutes } from './containers.js';
import { execRoutes } from './exec.js';
import { eventRoutes } from './events.js';

export function apiRouter(engine: Engine): Router {
  const r = new Router(engine);
  networkRoutes(r);
  systemRoutes(r);
  imageRoutes(r);
  volumeRoutes(r);
  buildRoutes(r);
  containerRoutes(r);
  execRoutes(r);
  eventRoutes(r);
  return r;
}
