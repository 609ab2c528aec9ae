/** Sleeps up to `ms` (forever when undefined); ends early on `wake()` (handed to `onWake`) or when the signal aborts. */
export function nap(ms: number | undefined, signal: AbortSignal | undefined, onWake: (wake: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    let t: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    if (ms !== undefined) t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    onWake(done);
  });
}
