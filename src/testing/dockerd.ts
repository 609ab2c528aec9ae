/**
 * Test support: a private dockerd (Debian's docker.io 20.10) on its own socket, data root
 * and exec root, without a bridge or iptables rules (RUN steps build with --network none),
 * for comparing layerbox's results with Docker's. `startDockerd` returns undefined when
 * docker is not installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PrivateDocker {
  env: NodeJS.ProcessEnv;
  /** runs `docker ARGS` against the private daemon (without blocking: a test's own servers keep answering) */
  docker(args: string[], opts?: { input?: string | Buffer; env?: Record<string, string> }): Promise<{ code: number; stdout: Buffer; stderr: string }>;
  stop(): Promise<void>;
}

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

export async function startDockerd(prefix = 'lb-dockerd-'): Promise<PrivateDocker | undefined> {
  if (!have('dockerd') || !have('docker')) return undefined;
  const root = mkdtempSync(join(tmpdir(), prefix));
  const sock = join(root, 'docker.sock');
  const child: ChildProcess = spawn(
    'dockerd',
    ['--data-root', join(root, 'data'), '--exec-root', join(root, 'exec'), '--pidfile', join(root, 'docker.pid'), '-H', `unix://${sock}`, '--bridge=none', '--iptables=false', '--ip-masq=false', '--storage-driver=overlay2'],
    { stdio: 'ignore', detached: true },
  );
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_API_VERSION: '1.41', DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' };
  const docker: PrivateDocker['docker'] = (args, opts = {}) => {
    const c = spawn('docker', args, { env: { ...env, ...(opts.env ?? {}) }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout.on('data', (b: Buffer) => out.push(b));
    c.stderr.on('data', (b: Buffer) => err.push(b));
    c.stdin.end(opts.input ?? '');
    return new Promise((res) => c.on('close', (code) => res({ code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() })));
  };
  const stop = async () => {
    try {
      process.kill(child.pid!, 'SIGTERM');
    } catch {
      /* gone */
    }
    for (let i = 0; i < 100 && child.exitCode === null && child.signalCode === null; i++) await sleep(100);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    spawnSync('sh', ['-c', `grep -o " ${root}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    rmSync(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  };
  for (let i = 0; i < 150; i++) {
    if ((await docker(['version', '--format', '{{.Server.Version}}'])).code === 0) return { env, docker, stop };
    if (child.exitCode !== null) break;
    await sleep(200);
  }
  await stop();
  return undefined;
}
