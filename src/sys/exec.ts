/** Spawning helper programs (the only place besides native.ts that reaches outside Node). */
import { spawn, type SpawnOptions } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { EngineError } from '../errors/index.js';

export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export async function run(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { input?: string | Buffer; allowFailure?: boolean; signal?: AbortSignal } = {},
): Promise<RunResult> {
  const { input, allowFailure, ...spawnOpts } = opts;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOpts });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) =>
      reject(
        new EngineError('unavailable', 'EXEC_FAILED', `cannot run ${cmd}: ${e.message}`, {
          cause: e,
          hint: `is ${cmd} installed? scripts/setup.sh installs everything layerbox needs`,
        }),
      ),
    );
    child.on('close', (code, signal) => {
      const r: RunResult = {
        code: code ?? -1,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (!allowFailure && r.code !== 0) {
        reject(
          new EngineError('internal', 'EXEC_NONZERO', `${cmd} ${args.join(' ')} failed (exit ${r.code}${signal ? `, ${signal}` : ''}): ${r.stderr.trim() || r.stdout.trim()}`),
        );
      } else resolve(r);
    });
    if (child.stdin) {
      if (input !== undefined) child.stdin.end(input);
      else child.stdin.end();
    }
  });
}

/** Finds an executable on PATH (or among extra directories). */
export async function which(name: string, extraDirs: string[] = []): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':'), ...extraDirs];
  for (const d of dirs) {
    if (!d) continue;
    const p = `${d}/${name}`;
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/**
 * Starts a program that outlives this process (a container's health monitor): its own
 * session, no stdio, not waited for. Returns its pid, or undefined when it could not start.
 */
export function spawnDetached(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): number | undefined {
  try {
    const child = spawn(cmd, args, { detached: true, stdio: 'ignore', ...(opts.env ? { env: opts.env } : {}) });
    child.on('error', () => {});
    child.unref();
    return child.pid;
  } catch {
    return undefined;
  }
}
