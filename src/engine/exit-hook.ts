/**
 * The entry point conmon runs when a container exits: `node exit-hook.js ROOT ID`. It records
 * the exit, releases the container's mount and network, and removes an AutoRemove container;
 * when the restart policy restarts the container, it waits out the back-off (at most a
 * minute) and starts it again (its new conmon runs a new hook at the next exit).
 * A declared entry point of the engine, not a CLI command line, so no front's flags or
 * start-up are involved.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from './engine.js';

const [root, id] = process.argv.slice(2);
// the container (or the whole store: a test's temporary root) may be gone already, removed
// by the command that stopped it: nothing to clean up then, and opening the store must not
// create it again
if (root && id && /^[0-9a-f]{64}$/.test(id) && existsSync(join(root, 'metadata.db')) && existsSync(join(root, 'containers', id))) {
  const engine = await Engine.open({ root });
  try {
    await engine.containers.cleanup(id);
    // a restart policy that restarts it: wait out the back-off here, then start it again
    await engine.containers.restartPending(id);
  } catch (e) {
    process.stderr.write(`layerbox exit hook: ${(e as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    engine.close();
  }
}
