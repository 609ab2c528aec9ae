/**
 * Test support: a private dockerd (docker.io) to compare layerbox with Docker on the same
 * machine. Its own data root, exec root, pid file and unix socket; no bridge, no iptables
 * rules (nothing shared with other tests or agents). Undefined when docker is not installed.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PrivateDocker {
  env: NodeJS.ProcessEnv;
  /** runs the docker CLI against this daemon */
  docker(args: string[], opts?: { input?: string | Buffer }): { code: number; stdout: string; stderr: string };
  stop(): Promise<void>;
}

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

export function dockerInstalled(): boolean {
  return have('dockerd') && have('docker');
}

/** Starts a private dockerd; resolves once it answers, or undefined when docker is not installed. */
export async function startPrivateDocker(name: string, opts: { timeoutMs?: number } = {}): Promise<PrivateDocker | undefined> {
  if (!dockerInstalled()) return undefined;
  const dir = mkdtempSync(join(tmpdir(), `${name}-docker-`));
  const sock = join(dir, 'docker.sock');
  const child = spawn(
    'dockerd',
    [
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'docker.pid'),
      '-H', `unix://${sock}`,
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
      '--storage-driver=overlay2',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  const log: Buffer[] = [];
  child.stderr!.on('data', (b: Buffer) => log.push(b));
  const exited = once(child, 'exit');
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_API_VERSION: '1.41', DOCKER_CONFIG: join(dir, 'cli') };
  delete env.NODE_EXTRA_CA_CERTS;
  const docker = (args: string[], o: { input?: string | Buffer } = {}) => {
    const r: SpawnSyncReturns<Buffer> = spawnSync('docker', args, { env, input: o.input, maxBuffer: 256 << 20 });
    return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGTERM');
      const killer = setTimeout(() => child.exitCode === null && process.kill(child.pid!, 'SIGKILL'), 20_000);
      await exited;
      clearTimeout(killer);
    }
    // the containerd it started ends with it; anything left that belongs to this exec root is ours
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(join(dir, 'exec'))) process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    spawnSync('sh', ['-c', `grep -o " ${dir}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`dockerd exited at start-up:\n${Buffer.concat(log).toString().slice(-2000)}`);
    }
    if (existsSync(sock) && docker(['version', '--format', '{{.Server.Version}}']).code === 0) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`dockerd did not answer within ${opts.timeoutMs ?? 60_000} ms:\n${Buffer.concat(log).toString().slice(-2000)}`);
    }
    await sleep(100);
  }
  return { env, docker, stop };
}
