/**
 * Reading off what a stream still sends after its consumer is done with it.
 *
 * A consumer that stops early (a tar reader at the end-of-archive blocks, a handler that has
 * its answer) and destroys its source cuts a sender that is still sending: for an HTTP
 * request that destroys the socket, and the client reads "connection reset by peer" in place
 * of the answer. Reading the rest off and dropping it lets the exchange end cleanly; limits
 * keep an endless or stalled sender from holding on.
 */

export interface DrainLimits {
  /** more than this many bytes left and the stream is given up */
  limitBytes: number;
  /** no end within this many ms and the stream is given up (default: no time limit) */
  waitMs?: number;
  /** aborted: nothing is read, the stream is given up */
  signal?: AbortSignal;
}

/**
 * Reads `it` to its end, dropping what it yields. 'ended' when it ended within the limits;
 * 'cut' when a limit was reached, the signal was aborted, or the stream failed: the caller then
 * destroys the stream (or its socket).
 */
export async function drainRest(it: AsyncIterator<Buffer | string>, limits: DrainLimits): Promise<'ended' | 'cut'> {
  if (limits.signal?.aborted) return 'cut';
  let left = limits.limitBytes;
  let timer: NodeJS.Timeout | undefined;
  const stalled =
    limits.waitMs === undefined ? undefined : new Promise<'stalled'>((resolve) => (timer = setTimeout(() => resolve('stalled'), limits.waitMs)));
  try {
    while (left >= 0) {
      const r = await (stalled ? Promise.race([it.next(), stalled]) : it.next());
      if (r === 'stalled') return 'cut';
      if (r.done) return 'ended';
      left -= r.value.length;
    }
    return 'cut';
  } catch {
    return 'cut'; // the stream failed: nothing of it is kept
  } finally {
    clearTimeout(timer);
  }
}
