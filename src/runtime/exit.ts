/**
 * Exit status of a container under conmon: `<exitDir>/<id>` (conmon's exit file) and `<persistDir>/oom`,
 * readable from any process; `docker wait` and `docker stop` (stop signal, then SIGKILL).
 */
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError, abortError, errnoCode } from '../errors/index.js';
import type { ContainerPaths, ExitStatus } from './conmon.js';
import type { Runtime } from './runtime.js';
import { nap } from './nap.js';

/** The pid of the conmon supervising the container, when it is still alive. */
export function conmonPid(paths: ContainerPaths): number | undefined {
  try {
    const pid = Number(readFileSync(join(paths.bundleDir, 'conmon.pid'), 'utf8').trim());
    if (!pid) return undefined;
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    return comm === 'conmon' ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The recorded exit status, or undefined while the container has not exited. */
export async function readExit(paths: ContainerPaths, id: string): Promise<ExitStatus | undefined> {
  let text: string;
  try {
    text = await readFile(join(paths.exitDir, id), 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  const exitCode = Number(text.trim());
  if (!Number.isInteger(exitCode)) return undefined; // being written
  return { exitCode, oomKilled: existsSync(join(paths.persistDir ?? paths.bundleDir, 'oom')) };
}

/** Waits until a file appears (fs.watch on its directory, with polling as a fallback). */
async function waitFor<T>(dir: string, check: () => Promise<T | undefined>, opts: { signal?: AbortSignal; timeoutMs?: number; pollMs?: number; onIdle?: () => Promise<void> }): Promise<T | undefined> {
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  try {
    watcher = watch(dir, () => wake?.());
    watcher.on('error', () => {});
  } catch {
    /* polling */
  }
  try {
    for (;;) {
      const v = await check();
      if (v !== undefined) return v;
      if (opts.signal?.aborted) throw abortError(opts.signal);
      if (Date.now() >= deadline) return undefined;
      await opts.onIdle?.();
      await nap(Math.min(opts.pollMs ?? 250, Math.max(0, deadline - Date.now())), opts.signal, (w) => (wake = w));
      wake = undefined;
    }
  } finally {
    watcher?.close();
  }
}

/**
 * Waits for the container to exit and returns its status (`docker wait`). Works from any process:
 * it reads conmon's exit file. Resolves undefined on timeout. If conmon died without writing one,
 * fails with data-loss.
 */
export async function waitExit(paths: ContainerPaths, id: string, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ExitStatus | undefined> {
  let checks = 0;
  return waitFor(paths.exitDir, () => readExit(paths, id), {
    ...opts,
    onIdle: async () => {
      if (++checks % 4 !== 0 || conmonPid(paths) !== undefined) return;
      const st = await readExit(paths, id);
      if (st) return;
      throw new EngineError('data-loss', 'EXIT_UNKNOWN', `the monitor of container ${id} is gone and recorded no exit code`, {
        where: paths.exitDir,
        hint: 'the container is treated as stopped; remove it or start it again',
      });
    },
  });
}

/**
 * `docker stop`: the stop signal (default SIGTERM), then SIGKILL after `timeoutSeconds`; returns the exit status.
 */
export async function stopContainer(
  rt: Runtime,
  paths: ContainerPaths,
  id: string,
  opts: { stopSignal?: string; timeoutSeconds?: number; signal?: AbortSignal; onSignal?: (sig: string) => void } = {},
): Promise<ExitStatus | undefined> {
  const done = await readExit(paths, id);
  if (done) return done;
  const timeout = opts.timeoutSeconds ?? 10;
  const stopSignal = opts.stopSignal ?? 'SIGTERM';
  if (await killQuietly(rt, id, stopSignal)) opts.onSignal?.(stopSignal);
  if (timeout > 0) {
    const st = await waitExit(paths, id, { timeoutMs: timeout * 1000, signal: opts.signal });
    if (st) return st;
  }
  if (await killQuietly(rt, id, 'SIGKILL')) opts.onSignal?.('SIGKILL');
  return waitExit(paths, id, { timeoutMs: 30_000, signal: opts.signal });
}

/** Sends a signal; false when the container had stopped or gone already. */
async function killQuietly(rt: Runtime, id: string, sig: string): Promise<boolean> {
  try {
    await rt.kill(id, sig);
    return true;
  } catch (e) {
    // already stopped, or already gone: the exit file tells the rest
    if (e instanceof EngineError && (e.kind === 'conflict' || e.kind === 'not-found')) return false;
    throw e;
  }
}
