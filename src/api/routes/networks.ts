/** Networks: list, inspect, create, remove, connect, disconnect, prune (dockerd's statuses: 201 create, 204 remove, 200 otherwise). */
import type { NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest } from '../../engine/index.js';
import { badRequest, sendEmpty } from '../http.js';
import type { Router } from '../router.js';

export function networkRoutes(r: Router): void {
  r.on('GET', '/networks', async (c) => c.send(200, await c.engine.networks.list({ filters: c.query.filters() })));
  r.on('GET', '/networks/:id', async (c) => c.send(200, await c.engine.networks.inspect(c.params.id!)));
  r.on('POST', '/networks/create', async (c) => {
    const body = await c.json<NetworkCreateRequest>('NetworkCreate');
    if (!body) throw badRequest('a network create request needs a body with the network\'s Name');
    c.send(201, await c.engine.networks.create(body, { signal: c.signal }));
  });
  r.on('DELETE', '/networks/:id', async (c) => {
    await c.engine.networks.remove(c.params.id!, { signal: c.signal });
    sendEmpty(c.res!);
  });
  r.on('POST', '/networks/:id/connect', async (c) => {
    const body = await c.json<NetworkConnectRequest>('NetworkConnect');
    if (!body) throw badRequest('a connect request needs a body naming the Container');
    await c.engine.networks.connect(c.params.id!, body);
    sendEmpty(c.res!, 200);
  });
  r.on('POST', '/networks/:id/disconnect', async (c) => {
    const body = await c.json<NetworkDisconnectRequest>('NetworkDisconnect');
    if (!body) throw badRequest('a disconnect request needs a body naming the Container');
    await c.engine.networks.disconnect(c.params.id!, body);
    sendEmpty(c.res!, 200);
  });
  r.on('POST', '/networks/prune', async (c) => {
    const r = await c.engine.networks.prune({ filters: c.query.filters(), signal: c.signal });
    // dockerd says null when it removed nothing
    c.send(200, { NetworksDeleted: r.NetworksDeleted.length ? r.NetworksDeleted : null });
  });
}
