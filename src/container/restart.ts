/**
 * Docker's restart policies (restartmanager): no, always, unless-stopped, on-failure[:N],
 * with the back-off of dockerd — 100 ms, doubled at each restart up to one minute, back to
 * 100 ms once the container ran 10 s. Daemonless: the decision is made by whoever records
 * the exit (conmon's exit hook, or the foreground CLI, whichever is first); conmon's exit
 * hook then waits out the back-off and starts the container again. A manual stop or kill
 * cancels the restart of that exit; for unless-stopped it is remembered (across a reboot
 * and `serve` restarts, as dockerd's HasBeenManuallyStopped).
 */
export interface Policy {
  Name: string;
  MaximumRetryCount?: number;
}

export const BACKOFF_START_MS = 100;
export const BACKOFF_MAX_MS = 60_000;
/** a run at least this long resets the back-off */
export const BACKOFF_RESET_AFTER_MS = 10_000;

export const hasPolicy = (p: Policy | undefined): boolean => !!p && p.Name !== '' && p.Name !== 'no';

/** The next back-off after a run of `ranMs`, given the previous one (0: none yet). */
export function nextBackoff(prevMs: number, ranMs: number): number {
  let t = ranMs >= BACKOFF_RESET_AFTER_MS ? 0 : prevMs;
  if (t === 0) t = BACKOFF_START_MS;
  else if (t < BACKOFF_MAX_MS) t *= 2;
  return Math.min(t, BACKOFF_MAX_MS);
}

/**
 * restartManager.ShouldRestart's policy part: always; unless-stopped unless stopped by
 * hand; on-failure for a non-zero exit while under the retry cap (0: no cap).
 */
export function policyRestarts(p: Policy | undefined, exitCode: number, manuallyStopped: boolean, restartCount: number): boolean {
  switch (p?.Name) {
    case 'always':
      return true;
    case 'unless-stopped':
      return !manuallyStopped;
    case 'on-failure': {
      const max = p.MaximumRetryCount ?? 0;
      return (max === 0 || restartCount < max) && exitCode !== 0;
    }
    default:
      return false;
  }
}
