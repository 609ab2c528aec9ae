/**
 * Operation: a long piece of work whose progress is an async iterable of ProgressMessage and
 * whose outcome is `result`. The work starts when either is first used; a consumer that
 * only awaits `result` gets no messages queued for it; one that iterates gets every message
 * from the start, then the iteration ends (or throws the work's error).
 */
import type { Operation, ProgressMessage } from './types.js';

export function operation<R>(work: (emit: (m: ProgressMessage) => void) => Promise<R>): Operation<R> {
  let started: Promise<R> | undefined;
  const queue: ProgressMessage[] = [];
  let listening = false;
  let wake: (() => void) | undefined;
  let finished = false;
  const start = (): Promise<R> => {
    if (!started) {
      started = (async () => {
        try {
          return await work((m) => {
            if (!listening) return;
            queue.push(m);
            wake?.();
          });
        } finally {
          finished = true;
          wake?.();
        }
      })();
      // awaited by whoever wants it; never an unhandled rejection because of the iterator
      started.catch(() => {});
    }
    return started;
  };
  return {
    get result() {
      return start();
    },
    [Symbol.asyncIterator](): AsyncIterator<ProgressMessage> {
      listening = true;
      const done = start();
      return {
        async next(): Promise<IteratorResult<ProgressMessage>> {
          for (;;) {
            if (queue.length) return { value: queue.shift()!, done: false };
            if (finished) {
              await done; // throws the work's error to the loop
              return { value: undefined, done: true };
            }
            await new Promise<void>((r) => (wake = r));
            wake = undefined;
          }
        },
      };
    },
  };
}

/** Runs an operation to its end, handing each message to `onMessage` (a front's renderer). */
export async function drive<R>(op: Operation<R>, onMessage?: (m: ProgressMessage) => void): Promise<R> {
  if (onMessage) for await (const m of op) onMessage(m);
  return op.result;
}
