/**
 * The OCI runtime CLI (runc or crun) with `--root <state dir>`: state, start, kill, pause, resume,
 * delete, ps/top, update. detectRuntime() picks one that really runs a container on this host.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EngineError, conflict, errnoCode, notFound, unavailable, throwIfAborted } from '../errors/index.js';
import { bootId } from '../sys/proc.js';
import { which } from '../sys/exec.js';
import type { Resources, RuntimeState, Spec } from './types.js';
import { OCI_VERSION } from './types.js';

export type RuntimeName = 'runc' | 'crun';

export interface RuntimeOptions {
  name: RuntimeName;
  /** absolute path of the binary (default: found on PATH) */
  path: string;
  /** `--root`: where the runtime keeps its container state (ideally on tmpfs, e.g. /run/layerbox/runc) */
  stateDir: string;
}

export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Spawns a program with only stdio (no inherited descriptors), collecting its output. */
export function runCmd(cmd: string, args: string[], opts: { input?: string; signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {}): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], signal: opts.signal, env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if ((e as Error).name === 'AbortError') reject(new EngineError('cancelled', 'CANCELLED', `${cmd} cancelled`, { cause: e }));
      else reject(unavailable('EXEC_FAILED', `cannot run ${cmd}: ${e.message}`, { cause: e, where: cmd, hint: `is ${cmd} installed? scripts/setup.sh installs it` }));
    });
    child.on('close', (code, sig) => resolve({ code: code ?? 128 + (sig ? (osConstants.signals[sig] ?? 0) : 0), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.on('error', () => {}); // EPIPE when the program exits before reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/** Cleans runc's logrus lines (`time="…" level=error msg="…"`) and crun's prefixes into one message. */
export function runtimeMessage(stderr: string): string {
  const msgs: string[] = [];
  for (const line of stderr.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const m = /msg="((?:[^"\\]|\\.)*)"/.exec(t);
    if (m) msgs.push(m[1]!.replace(/\\"/g, '"').replace(/\\\\/g, '\\'));
    else {
      try {
        const j = JSON.parse(t) as { msg?: string };
        msgs.push(j.msg ?? t);
      } catch {
        msgs.push(t);
      }
    }
  }
  return msgs.join('; ');
}

const NOT_EXIST = /does not exist|not found|no such file or directory/i;

export interface TopResult {
  titles: string[];
  processes: string[][];
}

export class Runtime {
  readonly name: RuntimeName;
  readonly path: string;
  readonly stateDir: string;

  constructor(opts: RuntimeOptions) {
    this.name = opts.name;
    this.path = opts.path;
    this.stateDir = opts.stateDir;
  }

  /** global flags, before the command */
  globalArgs(): string[] {
    return ['--root', this.stateDir];
  }

  private async cli(id: string, args: string[], opts: { signal?: AbortSignal; input?: string } = {}): Promise<CmdResult> {
    throwIfAborted(opts.signal);
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const r = await runCmd(this.path, [...this.globalArgs(), ...args], opts);
    if (r.code !== 0) {
      const msg = runtimeMessage(r.stderr) || r.stdout.trim() || `exit status ${r.code}`;
      if (NOT_EXIST.test(msg)) throw notFound('CONTAINER_NOT_FOUND', `${this.name}: container ${id} does not exist in the runtime`, { where: id, cause: msg });
      if (/not running|stopped|not in created state|cannot (?:pause|resume|start)|not paused|is paused|already paused/i.test(msg)) {
        throw conflict('CONTAINER_STATE', `${this.name} ${args[0]} ${id}: ${msg}`, { where: id });
      }
      throw new EngineError('internal', 'RUNTIME_FAILED', `${this.name} ${args[0]} ${id} failed: ${msg}`, { where: id });
    }
    return r;
  }

  /** The runtime's state of the container, or undefined when the runtime does not know it. */
  async state(id: string, opts: { signal?: AbortSignal } = {}): Promise<RuntimeState | undefined> {
    try {
      const r = await this.cli(id, ['state', id], opts);
      return JSON.parse(r.stdout) as RuntimeState;
    } catch (e) {
      if (e instanceof EngineError && e.kind === 'not-found') return undefined;
      throw e;
    }
  }

  async start(id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.cli(id, ['start', id], opts);
  }

  /** Sends a signal (name like SIGTERM/TERM or a number) to the init process, or to every process with `all`. */
  async kill(id: string, signal: string | number = 'SIGTERM', opts: { all?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const sig = typeof signal === 'number' ? String(signal) : signal.toUpperCase().replace(/^SIG/, '');
    await this.cli(id, ['kill', ...(opts.all ? ['--all'] : []), id, sig], opts);
  }

  async pause(id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.cli(id, ['pause', id], opts);
  }

  async resume(id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.cli(id, ['resume', id], opts);
  }

  /** Removes the runtime's record (and cgroups); `force` kills a running container first. Absent is fine. */
  async delete(id: string, opts: { force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    try {
      await this.cli(id, ['delete', ...(opts.force ? ['--force'] : []), id], opts);
    } catch (e) {
      if (e instanceof EngineError && e.kind === 'not-found') return;
      throw e;
    }
  }

  /** Host pids of every process in the container. */
  async pids(id: string, opts: { signal?: AbortSignal } = {}): Promise<number[]> {
    const r = await this.cli(id, ['ps', '--format', 'json', id], opts);
    const v = JSON.parse(r.stdout.trim() || '[]') as unknown;
    return Array.isArray(v) ? v.map(Number).filter((n) => Number.isInteger(n)) : [];
  }

  /** `docker top`: the host's `ps` (default `-ef`) filtered to the container's processes. */
  async top(id: string, psArgs: string[] = ['-ef'], opts: { signal?: AbortSignal } = {}): Promise<TopResult> {
    const pids = new Set(await this.pids(id, opts));
    const r = await runCmd('ps', psArgs, { signal: opts.signal });
    if (r.code !== 0) throw new EngineError('invalid-argument', 'TOP_PS_FAILED', `ps ${psArgs.join(' ')} failed: ${r.stderr.trim()}`, { where: id });
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    const titles = (lines.shift() ?? '').trim().split(/\s+/);
    const pidIndex = titles.indexOf('PID');
    if (pidIndex < 0) throw new EngineError('invalid-argument', 'TOP_NO_PID', `Couldn't find PID field in ps output`, { where: psArgs.join(' ') });
    const processes: string[][] = [];
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (!pids.has(Number(f[pidIndex]))) continue;
      const row = f.slice(0, titles.length - 1);
      row.push(f.slice(titles.length - 1).join(' '));
      processes.push(row);
    }
    return { titles, processes };
  }

  /** Changes cgroup limits of a running container (`docker update`). */
  async update(id: string, resources: Resources, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'layerbox-update-'));
    try {
      const f = join(dir, 'resources.json');
      await writeFile(f, JSON.stringify(resources), { mode: 0o600 });
      await this.cli(id, ['update', '--resources', f, id], opts);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async version(opts: { signal?: AbortSignal } = {}): Promise<string> {
    const r = await runCmd(this.path, ['--version'], opts);
    return r.stdout.split('\n')[0]?.trim() ?? '';
  }
}

interface ProbeCache {
  bootId: string;
  name: RuntimeName;
  path: string;
}

const memo = new Map<string, Promise<Runtime>>();

/**
 * Picks the first runtime of `prefer` (default crun, then runc) that actually runs a trivial
 * container here: crun 1.8 refuses hybrid cgroup hosts ("cgroups in hybrid mode not supported"),
 * so the probe is a real `run`, not a version check. The answer is cached in memory and, with
 * `cacheFile`, on disk for the current boot.
 */
export function detectRuntime(opts: { stateDir: string; prefer?: RuntimeName[]; cacheFile?: string; signal?: AbortSignal }): Promise<Runtime> {
  const prefer = opts.prefer ?? ['crun', 'runc'];
  const key = `${opts.stateDir}|${prefer.join(',')}`;
  let p = memo.get(key);
  if (!p) {
    p = detect(opts.stateDir, prefer, opts.cacheFile, opts.signal);
    memo.set(key, p);
    p.catch(() => memo.delete(key));
  }
  return p;
}

async function detect(stateDir: string, prefer: RuntimeName[], cacheFile: string | undefined, signal?: AbortSignal): Promise<Runtime> {
  const boot = bootId();
  if (cacheFile) {
    try {
      const c = JSON.parse(await readFile(cacheFile, 'utf8')) as ProbeCache;
      if (c.bootId === boot && prefer.includes(c.name) && existsSync(c.path)) return new Runtime({ name: c.name, path: c.path, stateDir });
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT' && !(e instanceof SyntaxError)) throw e;
    }
  }
  const failures: string[] = [];
  for (const name of prefer) {
    const path = await which(name, ['/usr/sbin', '/sbin']);
    if (!path) {
      failures.push(`${name}: not installed`);
      continue;
    }
    const rt = new Runtime({ name, path, stateDir });
    const err = await probe(rt, signal);
    if (err === undefined) {
      if (cacheFile) {
        await writeFile(cacheFile, JSON.stringify({ bootId: boot, name, path } satisfies ProbeCache)).catch(() => {});
      }
      return rt;
    }
    failures.push(`${name}: ${err}`);
  }
  throw unavailable('NO_RUNTIME', `no OCI runtime works on this host (${failures.join('; ')})`, {
    hint: 'install runc (apt-get install runc); crun needs a pure cgroup v1 or v2 host',
  });
}

/** Runs a trivial container with the runtime; returns undefined on success, else the runtime's complaint. */
export async function probe(rt: Runtime, signal?: AbortSignal): Promise<string | undefined> {
  const bin = ['/bin/busybox', '/usr/bin/busybox', '/usr/bin/tini-static'].find((p) => existsSync(p));
  if (!bin) return (await rt.version(signal ? { signal } : {})) ? undefined : 'cannot run --version';
  // busybox picks its applet from argv[0] unless that is "busybox"
  const dest = bin.endsWith('tini-static') ? '/tini' : '/busybox';
  const args = dest === '/tini' ? [dest, '--version'] : [dest, 'true'];
  const dir = await mkdtemp(join(tmpdir(), 'layerbox-probe-'));
  const id = `layerbox-probe-${randomBytes(6).toString('hex')}`;
  try {
    await mkdir(join(dir, 'rootfs'), { recursive: true });
    const spec: Spec = {
      ociVersion: OCI_VERSION,
      process: { terminal: false, user: { uid: 0, gid: 0 }, args, env: ['PATH=/'], cwd: '/' },
      root: { path: join(dir, 'rootfs'), readonly: true },
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc' },
        { destination: dest, type: 'bind', source: bin, options: ['bind', 'ro'] },
      ],
      linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }, { type: 'network' }] },
    };
    await writeFile(join(dir, 'config.json'), JSON.stringify(spec));
    await mkdir(rt.stateDir, { recursive: true, mode: 0o700 });
    const r = await runCmd(rt.path, [...rt.globalArgs(), 'run', '--bundle', dir, id], signal ? { signal } : {});
    if (r.code === 0) return undefined;
    return runtimeMessage(r.stderr) || `exit status ${r.code}`;
  } finally {
    await runCmd(rt.path, [...rt.globalArgs(), 'delete', '--force', id]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
