/**
 * The stores' progress events as Docker's daemon words them in its JSON progress stream
 * (what `docker pull`, `push` and `load` receive), so that the CLI and the API server show
 * the same thing.
 */
import { shortId } from '../oci/digest.js';
import type { PullEvent } from '../image/pull.js';
import type { PushEvent } from '../image/push.js';
import type { LayerEvent } from '../image/layers.js';
import type { ProgressMessage } from './types.js';

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** go-units' HumanSize, which JSONProgress uses: 4 significant digits (`1.057MB`, `655.4kB`). */
function humanSize(bytes: number): string {
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  let s = v.toPrecision(4);
  if (s.includes('e')) s = String(Number(s));
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s + UNITS[i];
}

/** jsonmessage's JSONProgress.String() at its full width: `[==>    ]  1.2MB/3.4MB`. */
export function progressText(current: number, total: number | undefined, width = 110): string {
  if (current <= 0 && !total) return '';
  if (!total || total <= 0) return humanSize(current).padStart(8);
  let pct = Math.floor(Math.floor((current / total) * 100) / 2);
  if (pct > 50) pct = 50;
  const bar = width > 110 ? `[${'='.repeat(pct)}>${' '.repeat(Math.max(0, 50 - pct))}] ` : '';
  return bar + `${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

function withProgress(id: string, status: string, current: number, total: number | undefined): ProgressMessage {
  return { id, status, progressDetail: { current, ...(total ? { total } : {}) }, progress: progressText(current, total, 120) };
}

export function pullMessage(e: PullEvent): ProgressMessage | undefined {
  switch (e.type) {
    case 'pulling-from':
      return { id: e.tag, status: `Pulling from ${e.repository}` };
    case 'layer':
      return { id: e.id, status: e.status, progressDetail: {} };
    case 'layer-progress':
      return withProgress(e.id, e.status, e.current, e.total);
    case 'digest':
      return { status: `Digest: ${e.digest}` };
    case 'status':
      return { status: e.message };
    default:
      return undefined;
  }
}

export function pushMessage(e: PushEvent): ProgressMessage[] {
  switch (e.type) {
    case 'repository':
      return [{ status: `The push refers to repository [${e.name}]` }];
    case 'layer':
      return [{ id: e.id, status: e.status, progressDetail: {} }];
    case 'layer-progress':
      return [withProgress(e.id, e.status, e.current, e.total)];
    case 'pushed':
      return [{ status: `${e.tag}: digest: ${e.digest} size: ${e.size}` }, { progressDetail: {}, aux: { Tag: e.tag, Digest: e.digest, Size: e.size } }];
  }
}

/** `load` and `import`: one line per layer, "Loading layer" with its bar (Docker's wording). */
export function layerMessage(e: LayerEvent, verb = 'Loading layer'): ProgressMessage | undefined {
  const id = shortId(e.diffId || ('digest' in e && e.digest) || '');
  if (!id) return undefined;
  switch (e.type) {
    case 'exists':
      return { id, status: 'Already exists', progressDetail: {} };
    case 'waiting':
      return { id, status: 'Waiting (another layerbox process is unpacking this layer)', progressDetail: {} };
    case 'start':
      return withProgress(id, verb, 0, e.total);
    case 'progress':
      return withProgress(id, verb, e.current, e.total);
    case 'done':
      return withProgress(id, verb, e.size, e.size);
  }
}
