/**
 * GET /events: Docker's event stream — one JSON object per line, each written (and sent) as
 * it comes. It reads the store's event log, so it shows what every process did (the CLI
 * too), and waits without holding the database or a request slot: other requests go on.
 */
import type { Router } from '../router.js';

function drained(out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    out.on('drain', done);
    signal.addEventListener('abort', done);
    if (signal.aborted) done();
  });
}

export function eventRoutes(r: Router): void {
  r.on('GET', '/events', async (c) => {
    const since = c.query.str('since');
    const until = c.query.str('until');
    // since, until and filters are checked before the answer starts (a 400 for bad ones)
    const events = c.engine.events({ filters: c.query.filters(), ...(since ? { since } : {}), ...(until ? { until } : {}), signal: c.signal });
    // the head goes at once, as dockerd's: a client waiting for events knows it is connected
    const out = c.stream('application/json');
    for await (const e of events) {
      // a slow reader holds the stream back (the log keeps the events), not memory
      if (!out.write(JSON.stringify(e) + '\n')) await drained(out, c.signal);
    }
    out.end();
  });
}
