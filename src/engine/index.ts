/**
 * layerbox as a library: `Engine.open()`, then its services (images, containers, volumes,
 * system), with requests and answers in the Docker Engine API's shapes.
 */
export { Engine, defaultRoot, DEFAULT_ROOT, type EngineOptions } from './engine.js';
export { readDaemonConfig, daemonConfigPath, DEFAULT_CONFIG_FILE, DAEMON_CONFIG_KEYS, type DaemonConfig } from './config.js';
export { EngineError, isEngineError, type ErrorKind } from '../errors/index.js';
export type * from './types.js';
export type { Images, ImageMount, PullOptions } from './images.js';
export type { Containers, RunHandle, StartOptions } from './containers.js';
export { statusText, humanDuration } from './containers.js';
export type { Volumes } from './volumes.js';
export type { Networks } from './networks.js';
export type { System } from './system.js';
export type { Build } from './build.js';
export type { Analysis, ImageExplorer } from './analyze.js';
export { VERSION, API_VERSION, MIN_API_VERSION } from './system.js';
export { operation, drive } from './operation.js';
export { parseFilterArgs } from './filters.js';
export { eventTimestamp, eventFilter, type EventsOptions } from './events.js';
export { parseBind } from './createbody.js';
export { parsePortSpecs, type PortSpecs } from './ports.js';
export { shortId, type Digest } from '../oci/digest.js';
export { parseReference } from '../oci/reference.js';
export { parsePlatform } from '../image/platform.js';
export { trace } from '../sys/trace.js';
export { drainRest, type DrainLimits } from '../sys/drain.js';
