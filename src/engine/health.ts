/**
 * A container's health monitor: one process per run (health-monitor.ts), started with the
 * container by whichever front started it, so that it outlives a CLI command and does not
 * depend on `serve`. Every Interval it runs the probe in the container through the door's
 * exec (so the probe's exec_create/exec_start/exec_die events are logged, as dockerd's),
 * kills it after Timeout, records the result (Docker's rules, container/health.ts) and
 * logs `health_status: …` when the status changes. It ends when the run ends (the
 * container stopped, was removed or started anew) or when its signal aborts; while the
 * container is paused it does not probe, and the status is unhealthy, as dockerd's.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerManager } from '../container/manager.js';
import { applyProbeResult, goDurationString, healthConfig, MAX_OUTPUT, probeCommand, probeInterval, probeTimeout, readHealth, writeHealth, type HealthcheckResult } from '../container/health.js';
import { selfId } from '../sys/proc.js';
import type { ExecResult } from './types.js';

export interface MonitorDeps {
  manager: ContainerManager;
  /** the door's exec (collected output; the signal kills the probe) */
  exec: (cmd: string[], opts: { signal?: AbortSignal; User?: string; WorkingDir?: string }) => Promise<ExecResult>;
}

/** Docker's limitedBuffer: at most 4096 bytes of output, "..." when there was more. */
function limitOutput(b: Buffer): string {
  if (b.length <= MAX_OUTPUT) return b.toString('utf8');
  return b.subarray(0, MAX_OUTPUT).toString('utf8') + '...';
}

export async function runHealthMonitor(d: MonitorDeps, id: string, startedAt: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const cm = d.manager;
  const dir = cm.dir(id);
  const current = async () => {
    // the store may be gone (a test's temporary root): a database file removed under an
    // open connection still answers with what it last held
    if (!existsSync(dir)) return undefined;
    try {
      const c = await cm.get(id);
      return c.state.StartedAt === startedAt && c.state.Running ? c : undefined;
    } catch {
      return undefined; // removed
    }
  };
  let c = await current();
  if (!c) return;
  const cfg = healthConfig(c);
  const cmd = probeCommand(c.config);
  if (!cfg || !cmd) return;
  // the monitor of this run: recorded so that the run's end (cleanup) ends it
  const h0 = readHealth(dir);
  if (!h0 || h0.startedAt !== startedAt) return; // a newer run has its own
  await writeHealth(dir, { ...h0, monitor: selfId() });
  const interval = probeInterval(cfg);
  const timeout = probeTimeout(cfg);
  let wasPaused = false;
  for (;;) {
    try {
      await sleep(interval, undefined, opts.signal ? { signal: opts.signal } : {});
    } catch {
      return; // aborted
    }
    c = await current();
    if (!c) return;
    const h = readHealth(dir);
    if (!h || h.startedAt !== startedAt) return;
    if (c.state.Paused) {
      // dockerd stops the monitor of a paused container (unhealthy until the next result)
      if (!wasPaused && h.Status !== 'unhealthy') await writeHealth(dir, { ...h, Status: 'unhealthy' }).catch(() => {});
      wasPaused = true;
      continue;
    }
    wasPaused = false;
    const start = new Date();
    let result: HealthcheckResult;
    if (cmd.length === 0) {
      const t = (cfg.Test ?? [])[0] ?? '';
      result = { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: -1, Output: `Unknown healthcheck type '${t}' (expected 'CMD') in container ${id}` };
    } else {
      const ac = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        ac.abort();
      }, timeout);
      try {
        const r = await d.exec(cmd, { signal: ac.signal, ...(c.config.User ? { User: c.config.User } : {}), ...(c.config.WorkingDir ? { WorkingDir: c.config.WorkingDir } : {}) });
        result = timedOut
          ? { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: -1, Output: `Health check exceeded timeout (${goDurationString(timeout * 1e6)})` }
          : { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: r.exitCode, Output: limitOutput(Buffer.concat([r.stdout, r.stderr])) };
      } catch (e) {
        // the container stopped under the probe: the run is over
        if (!(await current())) return;
        result = { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: -1, Output: (e as Error).message };
      } finally {
        clearTimeout(timer);
      }
    }
    // the run may have ended while the probe ran: its result is no more
    c = await current();
    if (!c) return;
    const before = readHealth(dir);
    if (!before || before.startedAt !== startedAt) return;
    const after = applyProbeResult(before, result, cfg, startedAt);
    await writeHealth(dir, { ...after, monitor: selfId() });
    if (after.Status !== before.Status) cm.event(c, `health_status: ${after.Status}`);
  }
}
