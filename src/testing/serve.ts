/**
 * Test support: `layerbox serve` on a temporary unix socket and store root, for tests that
 * drive the Engine API with the real clients (the docker CLI, docker-py, dockerode,
 * docker-compose). `startServe()` resolves once `_ping` answers; `env` points a docker CLI
 * (or an SDK: DOCKER_HOST) at it; `stop()` ends it with SIGTERM (as an operator would) and
 * removes what it made, the store root included unless the test gave its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, cliEnv, tempRoot } from './cli.js';
import type { DockerResult } from './dockerd.js';

/** a docker CLI's outcome: the same against layerbox serve as against a private dockerd */
export type ServeResult = DockerResult;

/** Runs a docker CLI (`bin`) with `env`, `input` on its stdin; never throws for an exit code. */
export async function runDocker(bin: string, args: string[], env: NodeJS.ProcessEnv, input: string | Buffer = ''): Promise<ServeResult> {
  const c = spawn(bin, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  c.stdout!.on('data', (b: Buffer) => out.push(b));
  c.stderr!.on('data', (b: Buffer) => err.push(b));
  c.stdin!.on('error', () => {});
  c.stdin!.end(input);
  const [code] = (await once(c, 'close')) as [number | null];
  const bytes = Buffer.concat(out);
  return { code: code ?? -1, stdout: bytes.toString(), out: bytes, stderr: Buffer.concat(err).toString() };
}

export interface RunningServe {
  /** the store root the server uses */
  root: string;
  /** its unix socket path */
  sock: string;
  /** `unix://<sock>` */
  host: string;
  /** env for a docker CLI or SDK talking to it: DOCKER_HOST, a private DOCKER_CONFIG, the classic builder */
  env: NodeJS.ProcessEnv;
  /** the server process */
  child: ChildProcess;
  /** what the server wrote to stderr so far */
  log(): string;
  /** runs `docker ARGS` (default /usr/bin/docker, Debian's 20.10) against it without blocking */
  docker(args: string[], opts?: { input?: string | Buffer; env?: Record<string, string>; bin?: string }): Promise<ServeResult>;
  /** one HTTP request on the socket: status, headers and body */
  request(method: string, path: string, opts?: { body?: string | Buffer; headers?: Record<string, string> }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>;
  stop(): Promise<void>;
}

export interface StartServeOptions {
  /** an existing store root (kept at stop); default a fresh temporary one */
  root?: string;
  /** more `serve` flags (-H tcp://…, --tlsverify, --registry-mirror …) */
  args?: string[];
  /** the daemon.json the server reads (default `{}`: the host's /etc/layerbox/daemon.json is never used) */
  config?: Record<string, unknown>;
  /** more environment for the server */
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** One HTTP request over a unix socket. */
export function unixRequest(
  sock: string,
  method: string,
  path: string,
  opts: { body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, method, path, headers: { Host: 'docker', ...(opts.headers ?? {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export async function startServe(opts: StartServeOptions = {}): Promise<RunningServe> {
  const dir = mkdtempSync('/tmp/lbs-');
  const sock = join(dir, 'api.sock');
  const owned = opts.root ? undefined : tempRoot('lb-serve-');
  const root = opts.root ?? owned!.root;
  const configFile = join(dir, 'daemon.json');
  writeFileSync(configFile, JSON.stringify(opts.config ?? {}));
  const child = spawn(process.execPath, [BIN, '--root', root, 'serve', '-H', `unix://${sock}`, '--config-file', configFile, ...(opts.args ?? [])], {
    env: cliEnv(root, { LAYERBOX_CONFIG_FILE: configFile, ...(opts.env ?? {}) }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (b: Buffer) => {
    log = (log + b.toString()).slice(-64_000);
  });
  const exited = once(child, 'exit');
  // a server that dies under a test (a crash prints its stack to stderr) says so in the
  // test's output, with what it wrote: otherwise the client's "connection reset" is all there is
  let stopping = false;
  child.once('exit', (code, signal) => {
    if (!stopping) process.stderr.write(`# layerbox serve (${sock}) exited unexpectedly (code ${code}, signal ${signal}); its stderr:\n${log.slice(-8000)}\n`);
  });
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(dir, 'docker-config'), DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false', COMPOSE_DOCKER_CLI_BUILD: '0' };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.DOCKER_API_VERSION;
  const docker: RunningServe['docker'] = (args, o = {}) => runDocker(o.bin ?? '/usr/bin/docker', args, { ...env, ...(o.env ?? {}) }, o.input);
  const stop = async () => {
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const ac = new AbortController();
      await Promise.race([exited, sleep(15_000, undefined, { signal: ac.signal }).catch(() => {})]);
      ac.abort();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    rmSync(dir, { recursive: true, force: true });
    owned?.cleanup();
  };
  const handle: RunningServe = { root, sock, host: `unix://${sock}`, env, child, log: () => log, docker, request: (m, p, o) => unixRequest(sock, m, p, o), stop };
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (Date.now() < deadline && child.exitCode === null) {
    const r = await unixRequest(sock, 'GET', '/_ping').catch(() => undefined);
    if (r?.status === 200) return handle;
    const ac = new AbortController();
    await Promise.race([exited, sleep(50, undefined, { signal: ac.signal }).catch(() => {})]);
    ac.abort();
  }
  await stop();
  throw new Error(`layerbox serve did not start:\n${log}`);
}
