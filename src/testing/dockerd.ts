/**
 * Test support: a private dockerd (Debian's docker.io, Docker 20.10) to compare layerbox
 * with, on its own data root, exec root, pidfile and socket, without a bridge or iptables
 * rules — it shares nothing with another dockerd or with the tests running beside it.
 * `startDockerd()` gives undefined when docker.io is not installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PrivateDockerd {
  /** runs `docker ARGS` against it (not blocking: servers of the test may answer it) */
  docker(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** its data root (for `du`) */
  dataRoot: string;
  stop(): Promise<void>;
}

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

export function dockerdInstalled(): boolean {
  return have('dockerd') && have('docker');
}

export async function startDockerd(): Promise<PrivateDockerd | undefined> {
  if (!dockerdInstalled()) return undefined;
  // short paths: containerd's socket under the exec root must fit in sun_path
  const dir = mkdtempSync('/tmp/lbd-');
  const sock = join(dir, 'docker.sock');
  const dataRoot = join(dir, 'data');
  const child: ChildProcess = spawn(
    'dockerd',
    ['--data-root', dataRoot, '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'docker.pid'), '-H', `unix://${sock}`, '--bridge=none', '--iptables=false', '--ip-masq=false', '--storage-driver=overlay2'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (b: Buffer) => {
    log = (log + b.toString()).slice(-8000);
  });
  const exited = once(child, 'exit');
  const env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(dir, 'config') };
  const docker = async (args: string[]) => {
    const c = spawn('docker', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout.on('data', (b: Buffer) => out.push(b));
    c.stderr.on('data', (b: Buffer) => err.push(b));
    const [code] = (await once(c, 'close')) as [number | null];
    return { code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    spawnSync('sh', ['-c', `grep -o " ${dir}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if ((await docker(['version', '--format', '{{.Server.Version}}'])).code === 0) return { docker, dataRoot, stop };
    await sleep(200);
  }
  await stop();
  throw new Error(`the private dockerd did not start:\n${log}`);
}
