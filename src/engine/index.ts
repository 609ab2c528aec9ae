/** layerbox as a library: open a store, then use images, registries, containers and commit from code. */
export { Engine, defaultRoot, DEFAULT_ROOT, type EngineOptions, type ImageSummary } from './engine.js';
export { EngineError, isEngineError, type ErrorKind } from '../errors/index.js';
export type { ImageRecord } from '../image/images.js';
export type { ContainerRecord, HostConfig, ContainerState } from '../container/types.js';
export type { CreateRequest } from '../container/manager.js';
export type { PullEvent } from '../image/pull.js';
export type { PushEvent } from '../image/push.js';
export type { LoadEvent, LoadedImage } from '../image/load.js';
