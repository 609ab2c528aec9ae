/** The volume endpoints: list, create, inspect, remove, prune (API 1.41's semantics). */
import type { VolumeCreateBody } from '../../engine/index.js';
import { badRequest, sendEmpty } from '../http.js';
import type { Router } from '../router.js';

export function volumeRoutes(r: Router): void {
  r.on('GET', '/volumes', (c) => c.send(200, { Volumes: c.engine.volumes.list({ filters: c.query.filters() }), Warnings: null }));
  r.on('POST', '/volumes/create', async (c) => {
    const body = (await c.json<VolumeCreateBody>('VolumeCreate')) ?? {};
    c.send(201, c.engine.volumes.create(body));
  });
  r.on('POST', '/volumes/prune', async (c) => {
    const filters = c.query.filters();
    // API 1.41 has no `all` filter: its prune removes every unused volume, named ones too
    // (1.42 made anonymous-only the default and added `all`)
    if ('all' in filters) throw badRequest("Invalid filter 'all'");
    c.send(200, await c.engine.volumes.prune({ filters: { ...filters, all: ['true'] } }));
  });
  r.on('GET', '/volumes/:name', (c) => c.send(200, c.engine.volumes.inspect(c.params.name!)));
  r.on('DELETE', '/volumes/:name', async (c) => {
    await c.engine.volumes.remove(c.params.name!, { force: c.query.bool('force') });
    sendEmpty(c.res!);
  });
}
