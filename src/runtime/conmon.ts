/**
 * Containers under conmon (2.1.x): conmon runs `<runtime> create` (or `exec`), keeps the container's
 * stdio (log file, attach socket, console for -t), writes the exit code, and outlives the caller,
 * so a `-d` container needs no Node process. Podman's protocol: `_OCI_SYNCPIPE` (conmon reports
 * `{"data": pid}` and, for exec, `{"data": exitCode}`), `_OCI_STARTPIPE`, `_OCI_ATTACHPIPE`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { EngineError, invalidArgument, throwIfAborted, unavailable } from '../errors/index.js';
import { attach, resizeTerminal, type AttachStreams, type Attachment } from './attach.js';
import { runtimeMessage, type Runtime } from './runtime.js';
import type { Spec } from './types.js';
import { nap } from './nap.js';

export const CONMON = '/usr/bin/conmon';

/** What the container module provides (and persists) for each container. */
export interface ContainerPaths {
  /** holds config.json; conmon adds `attach` (socket), `ctl` and `winsz` (fifos); we add `pidfile`, `conmon.pid` */
  bundleDir: string;
  /** k8s-file log of the container's output */
  logPath: string;
  /** conmon writes `<exitDir>/<id>` (the exit code) when the container exits; may be shared */
  exitDir: string;
  /** conmon writes `exit` and `oom` here (default: bundleDir) */
  persistDir?: string;
}

export interface ExitStatus {
  /** the exit code (128+N when killed by signal N) */
  exitCode: number;
  oomKilled: boolean;
}

/** A start failure of the container process, with Docker's exit code: 127 not found, 126 not executable, 125 other. */
export class StartError extends EngineError {
  readonly exitCode: number;
  constructor(message: string, where: string) {
    const exitCode = /executable file not found|no such file or directory/i.test(message) ? 127 : /permission denied|exec format error/i.test(message) ? 126 : 125;
    super(exitCode === 125 ? 'internal' : 'invalid-argument', 'START_FAILED', message, { where });
    this.exitCode = exitCode;
  }
}

const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
export function checkId(id: string): string {
  if (!ID_RE.test(id)) throw invalidArgument('INVALID_ID', `invalid container or exec id ${JSON.stringify(id)}`, { where: id });
  return id;
}

export interface SyncMsg {
  data: number;
  message?: string;
}

/** Reads conmon's newline-delimited JSON messages from the sync pipe. */
export class SyncReader {
  private buf = '';
  private queue: SyncMsg[] = [];
  private ended = false;
  private waiter: (() => void) | undefined;

  constructor(stream: Readable) {
    stream.setEncoding('utf8');
    stream.on('data', (s: string) => {
      this.buf += s;
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          const data = Number(j.data ?? j.pid);
          this.queue.push(typeof j.message === 'string' ? { data, message: j.message } : { data });
        } catch {
          this.queue.push({ data: -1, message: `unreadable message from conmon: ${line}` });
        }
      }
      this.waiter?.();
    });
    const end = () => {
      this.ended = true;
      this.waiter?.();
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  }

  async next(signal?: AbortSignal): Promise<SyncMsg | undefined> {
    for (;;) {
      const m = this.queue.shift();
      if (m) return m;
      if (this.ended) return undefined;
      throwIfAborted(signal);
      await nap(undefined, signal, (w) => (this.waiter = w));
      this.waiter = undefined;
    }
  }
}

export interface Spawned {
  child: ChildProcess;
  sync: SyncReader;
  start?: Writable;
  attachPipe?: SyncReader;
  stderr: () => string;
  release: () => void;
}

export function spawnConmon(conmon: string, args: string[], pipes: { start?: boolean; attach?: boolean }): Spawned {
  if (!existsSync(conmon)) {
    throw unavailable('CONMON_MISSING', `conmon not found at ${conmon}`, { where: conmon, hint: 'install Debian\'s conmon package (apt-get install conmon)' });
  }
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', _OCI_SYNCPIPE: '3' };
  if (process.env.TMPDIR) env.TMPDIR = process.env.TMPDIR;
  const stdio: ('ignore' | 'pipe')[] = ['ignore', 'ignore', 'pipe', 'pipe'];
  if (pipes.start || pipes.attach) {
    stdio.push('pipe');
    env._OCI_STARTPIPE = '4';
  }
  if (pipes.attach) {
    stdio.push('pipe');
    env._OCI_ATTACHPIPE = '5';
  }
  // only these descriptors reach conmon (and nothing of ours reaches the container): Node opens
  // everything close-on-exec, and conmon marks the sync/start/attach pipes close-on-exec for the runtime
  const child = spawn(conmon, args, { stdio, env, detached: true });
  const errBuf: Buffer[] = [];
  child.stderr!.on('data', (b: Buffer) => errBuf.push(b));
  child.on('error', () => {});
  for (const st of child.stdio) st?.on('error', () => {}); // EPIPE/ECONNRESET once conmon is gone
  const s: Spawned = {
    child,
    sync: new SyncReader(child.stdio[3] as Readable),
    stderr: () => Buffer.concat(errBuf).toString('utf8').trim(),
    release: () => {
      for (const st of child.stdio) st?.destroy();
      child.unref();
    },
  };
  const fds = child.stdio as unknown as (Readable | Writable | null)[];
  if (pipes.start || pipes.attach) s.start = fds[4] as Writable;
  if (pipes.attach) s.attachPipe = new SyncReader(fds[5] as Readable);
  return s;
}

export function baseArgs(rt: Runtime): string[] {
  const args = ['--api-version', '1', '-r', rt.path, '--full-attach'];
  for (const a of rt.globalArgs()) args.push('--runtime-arg', a);
  return args;
}

export async function failure(s: Spawned, what: string, where: string, msg?: SyncMsg): Promise<never> {
  // give conmon a moment to print why it failed
  await new Promise((r) => setTimeout(r, 20));
  const text = runtimeMessage(msg?.message ?? '') || s.stderr() || 'conmon exited without reporting';
  s.release();
  throw new StartError(`OCI runtime ${what} failed: ${text}`, where);
}

export interface CreateOptions {
  id: string;
  name?: string;
  runtime: Runtime;
  paths: ContainerPaths;
  /** written to `<bundleDir>/config.json` when given (else it must be there) */
  spec?: Spec;
  /** `-t`: conmon takes the console from the runtime and serves it on the attach socket */
  tty?: boolean;
  /** `-i`: conmon keeps a stdin pipe that attach clients write to */
  stdin?: boolean;
  /** keep the container's stdin open when an attached client goes away (Docker: !StdinOnce) */
  leaveStdinOpen?: boolean;
  /** run when the container exits (podman runs `podman container cleanup`); e.g. the engine's cleanup */
  exitCommand?: { path: string; args?: string[]; delaySeconds?: number };
  /** rotate the log past this many bytes */
  logSizeMax?: number;
  conmonPath?: string;
  signal?: AbortSignal;
}

export interface Created {
  /** host pid of the container's init process */
  pid: number;
  /** pid of the conmon that supervises it */
  conmonPid: number;
}

/** `<runtime> create` under conmon; resolves once the container exists (status "created"). */
export async function createContainer(o: CreateOptions): Promise<Created> {
  checkId(o.id);
  throwIfAborted(o.signal);
  const p = o.paths;
  await mkdir(p.bundleDir, { recursive: true, mode: 0o700 });
  await mkdir(p.exitDir, { recursive: true, mode: 0o700 });
  const persist = p.persistDir ?? p.bundleDir;
  await mkdir(persist, { recursive: true, mode: 0o700 });
  if (o.spec) await writeFile(join(p.bundleDir, 'config.json'), JSON.stringify(o.spec, null, 1), { mode: 0o600 });
  // a restarted container must not be taken for exited by its previous run's files
  await removeRunFiles(p, o.id);
  const args = [
    ...baseArgs(o.runtime),
    '-c', o.id, '-u', o.id, '-n', o.name ?? o.id,
    '-b', p.bundleDir,
    '-p', join(p.bundleDir, 'pidfile'),
    '-P', join(p.bundleDir, 'conmon.pid'),
    '-l', `k8s-file:${p.logPath}`,
    '--exit-dir', p.exitDir,
    '--persist-dir', persist,
  ];
  if (o.tty) args.push('-t');
  if (o.stdin) args.push('-i');
  if (o.stdin && o.leaveStdinOpen) args.push('--leave-stdin-open');
  if (o.logSizeMax) args.push('--log-size-max', String(o.logSizeMax));
  if (o.exitCommand) {
    args.push('--exit-command', o.exitCommand.path);
    for (const a of o.exitCommand.args ?? []) args.push('--exit-command-arg', a);
    if (o.exitCommand.delaySeconds !== undefined) args.push('--exit-delay', String(o.exitCommand.delaySeconds));
  }
  const s = spawnConmon(o.conmonPath ?? CONMON, args, {});
  const msg = await s.sync.next(o.signal).catch((e) => {
    s.release();
    throw e;
  });
  if (!msg || msg.data <= 0) return failure(s, 'create', o.id, msg);
  s.release();
  const conmonPid = Number((await readFile(join(p.bundleDir, 'conmon.pid'), 'utf8').catch(() => '0')).trim());
  return { pid: msg.data, conmonPid };
}

const RUN_FILES = ['attach', 'ctl', 'winsz', 'pidfile', 'conmon.pid'];

async function removeRunFiles(p: ContainerPaths, id: string): Promise<void> {
  const persist = p.persistDir ?? p.bundleDir;
  await Promise.all([
    rm(join(p.exitDir, id), { force: true }),
    rm(join(persist, 'exit'), { force: true }),
    rm(join(persist, 'oom'), { force: true }),
    ...RUN_FILES.map((f) => rm(join(p.bundleDir, f), { force: true })),
  ]);
}

/**
 * After the container exited (and its status was read): removes the runtime's record and conmon's
 * sockets, fifos and pid files, so the bundle can be created again (`docker start` of a stopped
 * container). Keeps config.json, the log and the exit status files.
 */
export async function cleanupContainer(rt: Runtime, paths: ContainerPaths, id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  await rt.delete(id, { force: true, signal: opts.signal });
  await Promise.all(RUN_FILES.map((f) => rm(join(paths.bundleDir, f), { force: true })));
}

/** `<runtime> start`: runs the user's process in a created container. */
export async function startContainer(rt: Runtime, id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  try {
    await rt.start(id, opts);
  } catch (e) {
    if (e instanceof EngineError && e.code === 'RUNTIME_FAILED') throw new StartError(`OCI runtime start failed: ${e.message}`, id);
    throw e;
  }
}

/** Attaches to a container's stdio (before start, so no output is lost). */
export function attachContainer(paths: ContainerPaths, streams: AttachStreams, opts: { signal?: AbortSignal } = {}): Promise<Attachment> {
  return attach(paths.bundleDir, streams, opts);
}

export function resizeContainer(paths: ContainerPaths, height: number, width: number): Promise<void> {
  return resizeTerminal(paths.bundleDir, height, width);
}
