/**
 * Docker's JSON message stream (jsonmessage): an engine Operation's progress written as one
 * JSON object per line (`\r\n`, as dockerd's stream formatter ends them). The 200 and its
 * headers go out with the first message, so that an operation that fails before it has
 * said anything (a missing image, a refused login) gets its proper status and
 * `{"message": …}`, as dockerd answers when its output was not flushed yet; a failure
 * after that is the stream's last line, `{"errorDetail": {"message": …}, "error": …}`.
 * A client that goes away aborts the operation (its signal); nothing more is written.
 */
import type { Operation, ProgressMessage } from '../engine/index.js';
import { drainBody, errorReply } from './http.js';
import type { RouteCtx } from './router.js';

export interface JsonStream {
  /** writes one message (starting the 200 answer if needed); resolves when the socket took it */
  write(m: ProgressMessage | Record<string, unknown>): Promise<void>;
  /** starts the 200 answer now (dockerd's load and build flush their headers before the work) */
  begin(): void;
  /** whether the answer has started */
  readonly started: boolean;
  /** ends the answer (a 200 with an empty stream if nothing was written) */
  end(): void;
  /** a failure: thrown back to the router before the answer started, else the stream's last line */
  fail(e: unknown): void;
}

export function jsonStream(c: RouteCtx): JsonStream {
  let out: NodeJS.WritableStream | undefined;
  let sentError = false;
  const start = () => (out ??= c.stream('application/json'));
  const s: JsonStream = {
    begin() {
      start();
    },
    get started() {
      return out !== undefined;
    },
    async write(m) {
      if (c.signal.aborted) return;
      if ('error' in m && m.error !== undefined) sentError = true;
      const w = start();
      if (!w.write(JSON.stringify(m) + '\r\n')) {
        await new Promise<void>((resolve) => {
          const done = () => {
            c.signal.removeEventListener('abort', done);
            w.removeListener('drain', done);
            resolve();
          };
          w.once('drain', done);
          c.signal.addEventListener('abort', done, { once: true });
        });
      }
    },
    end() {
      start().end();
    },
    fail(e) {
      if (!out) throw e;
      if (!c.signal.aborted && !sentError) {
        const { message } = errorReply(e);
        out.write(JSON.stringify({ errorDetail: { message }, error: message }) + '\r\n');
      }
      out.end();
    },
  };
  return s;
}

/**
 * Streams `op`'s messages (each passed through `map`, which may drop one by returning
 * undefined) and then `after(result)`'s, and ends the answer. `eager` starts the answer
 * first (then every failure is in the stream). Returns the result, or
 * undefined when the operation failed (the failure is answered here, as jsonStream says).
 */
export async function streamOperation<R>(
  c: RouteCtx,
  op: Operation<R>,
  opts: { map?: (m: ProgressMessage) => ProgressMessage | undefined; after?: (r: R) => ProgressMessage[]; eager?: boolean } = {},
): Promise<R | undefined> {
  const s = jsonStream(c);
  if (opts.eager) s.begin();
  let r: R;
  try {
    for await (const m of op) {
      // an operation that reports its own failure (build) before saying anything else:
      // left to fail() below, which answers with the error's status instead of a 200
      if (m.error !== undefined && !s.started) continue;
      const x = opts.map ? opts.map(m) : m;
      if (x) await s.write(x);
    }
    r = await op.result;
  } catch (e) {
    // what the client still sends is read first: an answer cut by a reset helps nobody
    if (s.started) await drainBody(c.req);
    s.fail(e);
    return undefined;
  }
  for (const m of opts.after?.(r) ?? []) await s.write(m);
  await drainBody(c.req);
  s.end();
  return r;
}
