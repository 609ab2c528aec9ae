/**
 * Docker's healthchecks (daemon/health.go): the probe (Config.Healthcheck: CMD or CMD-SHELL),
 * its defaults (interval 30 s, timeout 30 s, 3 retries, no start period), the state after
 * each result (starting → healthy at the first success, unhealthy after Retries failures
 * in a row, failures within StartPeriod of the start not counted while starting), the last
 * five results, and "unhealthy" once the monitor stopped (the container stopped or was
 * paused), as dockerd reports it.
 *
 * The state lives beside the container (`containers/<id>/health.json`), written only by the
 * container's monitor (and by `start`, which resets it): its own file, so that no other
 * writer of the container's record can undo a result, nor a result a state change.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../sys/fsutil.js';
import type { ContainerConfig } from '../oci/types.js';
import type { ContainerRecord } from './types.js';

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface HealthcheckResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface HealthFile {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthcheckResult[];
  /** the run these results belong to (the container's StartedAt) */
  startedAt: string;
  /** the monitor process (pid and start time): ended when the container stops */
  monitor?: { pid: number; start: number };
}

export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  Retries?: number;
  StartPeriod?: number;
}

export const DEFAULT_INTERVAL_NS = 30e9;
export const DEFAULT_TIMEOUT_NS = 30e9;
export const DEFAULT_RETRIES = 3;
export const MAX_LOG_ENTRIES = 5;
/** probe output kept (Docker's maxOutputLen) */
export const MAX_OUTPUT = 4096;

export const healthPath = (containerDir: string) => join(containerDir, 'health.json');

export function healthConfig(c: { config: ContainerConfig }): HealthConfig | undefined {
  const h = c.config.Healthcheck as HealthConfig | undefined;
  return h && typeof h === 'object' ? h : undefined;
}

/** The probe's argv (CMD-SHELL through the container's shell), or undefined when there is no healthcheck (none, NONE). */
export function probeCommand(config: ContainerConfig): string[] | undefined {
  const h = config.Healthcheck as HealthConfig | undefined;
  const test = h?.Test;
  if (!test?.length || test[0] === 'NONE') return undefined;
  if (test[0] === 'CMD') return test.slice(1);
  if (test[0] === 'CMD-SHELL') return [...(config.Shell?.length ? config.Shell : ['/bin/sh', '-c']), ...test.slice(1)];
  // Docker: Unknown healthcheck type; the monitor reports it as a failing probe
  return [];
}

export function readHealth(containerDir: string): HealthFile | undefined {
  try {
    const h = JSON.parse(readFileSync(healthPath(containerDir), 'utf8')) as HealthFile;
    return h && typeof h === 'object' && typeof h.Status === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

export async function writeHealth(containerDir: string, h: HealthFile): Promise<void> {
  await writeFileAtomic(healthPath(containerDir), JSON.stringify(h), 0o600);
}

/**
 * State.Health as inspect shows it: the monitor's state while the container runs; once it
 * stopped (or is paused, restarting) "unhealthy", as dockerd's CloseMonitorChannel leaves it.
 */
export function healthView(c: ContainerRecord, h: HealthFile | undefined): { Status: HealthStatus; FailingStreak: number; Log: HealthcheckResult[] } | undefined {
  if (!h) return undefined;
  const live = c.state.Running && !c.state.Paused && h.startedAt === c.state.StartedAt;
  return { Status: live ? h.Status : 'unhealthy', FailingStreak: h.FailingStreak, Log: h.Log };
}

const ns = (v: number | undefined, dflt: number) => (v && v > 0 ? v : dflt);

export const probeInterval = (h: HealthConfig) => ns(h.Interval, DEFAULT_INTERVAL_NS) / 1e6;
export const probeTimeout = (h: HealthConfig) => ns(h.Timeout, DEFAULT_TIMEOUT_NS) / 1e6;

/**
 * handleProbeResult: the result joins the log (the last five kept); success makes the
 * container healthy; a failure counts towards unhealthy unless the container is still
 * starting within its start period. Returns the new state.
 */
export function applyProbeResult(h: HealthFile, r: HealthcheckResult, cfg: HealthConfig, startedAt: string): HealthFile {
  const retries = cfg.Retries && cfg.Retries > 0 ? cfg.Retries : DEFAULT_RETRIES;
  const log = [...h.Log, r].slice(-MAX_LOG_ENTRIES);
  let status = h.Status;
  let streak = h.FailingStreak;
  if (r.ExitCode === 0) {
    streak = 0;
    status = 'healthy';
  } else {
    let count = true;
    if (status === 'starting') {
      const sinceStart = Date.parse(r.Start) - Date.parse(startedAt);
      if (sinceStart < ns(cfg.StartPeriod, 0) / 1e6) count = false;
    }
    if (count) {
      streak++;
      if (streak >= retries) status = 'unhealthy';
    }
  }
  return { ...h, Status: status, FailingStreak: streak, Log: log };
}

/** Go's time.Duration String() for whole milliseconds and more (30s, 1m30s, 500ms, 1.5s). */
export function goDurationString(nanos: number): string {
  if (nanos === 0) return '0s';
  if (nanos < 1e3) return `${nanos}ns`;
  if (nanos < 1e6) return `${trim(nanos / 1e3)}µs`;
  if (nanos < 1e9) return `${trim(nanos / 1e6)}ms`;
  let s = nanos / 1e9;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${trim(s)}s`;
}

const trim = (v: number) => String(Number(v.toFixed(9)));

/** Docker's merge of the user's Healthcheck with the image's: zero fields (and an empty Test) come from the image. */
export function mergeHealthcheck(user: HealthConfig | undefined, image: HealthConfig | undefined): HealthConfig | undefined {
  if (!user) return image;
  if (!image) return user;
  return {
    ...user,
    Test: user.Test?.length ? user.Test : image.Test,
    ...((user.Interval ?? 0) === 0 && image.Interval ? { Interval: image.Interval } : {}),
    ...((user.Timeout ?? 0) === 0 && image.Timeout ? { Timeout: image.Timeout } : {}),
    ...((user.StartPeriod ?? 0) === 0 && image.StartPeriod ? { StartPeriod: image.StartPeriod } : {}),
    ...((user.Retries ?? 0) === 0 && image.Retries ? { Retries: image.Retries } : {}),
  };
}
