/**
 * Test support: a private dockerd (Debian's docker.io, Docker 20.10) to compare layerbox
 * with, on its own data root, exec root, pid file and unix socket, without a bridge or
 * iptables rules: it shares nothing with another dockerd or with the tests beside it.
 * `startDockerd()` gives undefined when docker.io is not installed.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as bytes (docker save) */
  out: Buffer;
}

export interface PrivateDockerd {
  /** DOCKER_HOST and friends for a docker CLI talking to it */
  env: NodeJS.ProcessEnv;
  /** its unix socket */
  sock: string;
  /** its data root (for `du`) */
  dataRoot: string;
  /** runs `docker ARGS` against it without blocking (a test's own servers keep answering) */
  docker(args: string[], opts?: { input?: string | Buffer; env?: Record<string, string> }): Promise<DockerResult>;
  /** the same, blocking (for tests with no server of their own in the process) */
  dockerSync(args: string[], opts?: { input?: string | Buffer }): DockerResult;
  stop(): Promise<void>;
}

/** Runs `docker ARGS` against `d`; fails the test unless it exits 0. Its stdout, trimmed. */
export async function dockerOk(d: PrivateDockerd, args: string[]): Promise<string> {
  const r = await d.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

export function dockerdInstalled(): boolean {
  return have('dockerd') && have('docker');
}

/** `args`: more dockerd flags (--registry-mirror, --insecure-registry, …). */
export async function startDockerd(opts: { prefix?: string; timeoutMs?: number; args?: string[] } = {}): Promise<PrivateDockerd | undefined> {
  if (!dockerdInstalled()) return undefined;
  // short paths: containerd's socket under the exec root must fit in sun_path
  const dir = mkdtempSync(`/tmp/${opts.prefix ?? 'lbd-'}`);
  const sock = join(dir, 'docker.sock');
  const dataRoot = join(dir, 'data');
  const child: ChildProcess = spawn(
    'dockerd',
    ['--data-root', dataRoot, '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'docker.pid'), '-H', `unix://${sock}`, '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--storage-driver=overlay2', ...(opts.args ?? [])],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  let log = '';
  child.stderr!.on('data', (b: Buffer) => {
    log = (log + b.toString()).slice(-8000);
  });
  const exited = once(child, 'exit');
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_API_VERSION: '1.41', DOCKER_CONFIG: join(dir, 'config'), DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' };
  delete env.NODE_EXTRA_CA_CERTS;
  const docker: PrivateDockerd['docker'] = async (args, o = {}) => {
    const c = spawn('docker', args, { env: { ...env, ...(o.env ?? {}) }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout.on('data', (b: Buffer) => out.push(b));
    c.stderr.on('data', (b: Buffer) => err.push(b));
    c.stdin.end(o.input ?? '');
    const [code] = (await once(c, 'close')) as [number | null];
    const bytes = Buffer.concat(out);
    return { code: code ?? -1, stdout: bytes.toString(), out: bytes, stderr: Buffer.concat(err).toString() };
  };
  const dockerSync: PrivateDockerd['dockerSync'] = (args, o = {}) => {
    const r = spawnSync('docker', args, { env, input: o.input, maxBuffer: 256 << 20 });
    return { code: r.status ?? -1, stdout: r.stdout.toString(), out: r.stdout, stderr: r.stderr.toString() };
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
    // the containerd it started ends with it; anything left that belongs to this exec root is ours
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(join(dir, 'exec'))) process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    spawnSync('sh', ['-c', `grep -o " ${dir}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (existsSync(sock) && (await docker(['version', '--format', '{{.Server.Version}}'])).code === 0) return { env, sock, dataRoot, docker, dockerSync, stop };
    await sleep(200);
  }
  await stop();
  throw new Error(`the private dockerd did not start:\n${log}`);
}
