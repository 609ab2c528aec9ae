/**
 * The entry point of a container's health monitor: `node health-monitor.js ROOT ID STARTED_AT`,
 * started (detached, its own session) with the run of the container it probes, by whichever
 * process started it; it ends with that run (health.ts). SIGTERM ends it at once.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from './engine.js';

const [root, id, startedAt] = process.argv.slice(2);
if (root && id && startedAt && /^[0-9a-f]{64}$/.test(id) && existsSync(join(root, 'metadata.db')) && existsSync(join(root, 'containers', id))) {
  const ac = new AbortController();
  process.on('SIGTERM', () => ac.abort());
  process.on('SIGINT', () => ac.abort());
  const engine = await Engine.open({ root });
  try {
    await engine.containers.monitorHealth(id, startedAt, { signal: ac.signal });
  } catch (e) {
    if (!ac.signal.aborted) {
      process.stderr.write(`layerbox health monitor: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  } finally {
    engine.close();
  }
}
