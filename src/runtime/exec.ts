/**
 * `docker exec` under conmon: `conmon --exec --exec-process-spec` runs `<runtime> exec`. Each exec has its
 * own directory (conmon's `-b`: attach socket, ctl/winsz fifos; `--persist-dir`: the `exit` file).
 * Foreground: `--exec-attach` with the attach and start pipes, so nothing is lost before we attach;
 * conmon reports the pid, then the exit code, on the sync pipe.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError, errnoCode, throwIfAborted } from '../errors/index.js';
import { attach, resizeTerminal, type AttachStreams, type Attachment } from './attach.js';
import { baseArgs, checkId, CONMON, failure, spawnConmon } from './conmon.js';
import type { Runtime } from './runtime.js';
import type { Process } from './types.js';

export interface ExecRequest {
  containerId: string;
  /** unique per exec (used by conmon as the session id) */
  execId: string;
  runtime: Runtime;
  /** per-exec directory: process.json, attach socket, ctl/winsz fifos, pid, exit, exec.log */
  execDir: string;
  /** from buildExecProcess */
  process: Process;
  /** `-d`: return once started; the exit code lands in `<execDir>/exit` */
  detach?: boolean;
  /** foreground streams (stdin only with `-i`) */
  streams?: AttachStreams;
  /** called once attached and before the process starts (e.g. to set the terminal size) */
  onAttached?: (resize: (height: number, width: number) => Promise<void>) => void | Promise<void>;
  /** called with the host pid of the process once it runs */
  onStarted?: (pid: number) => void;
  conmonPath?: string;
  signal?: AbortSignal;
}

export interface ExecResult {
  pid: number;
  /** foreground only */
  exitCode?: number;
}

/** `docker exec`: `conmon --exec` runs `<runtime> exec` with the process spec. */
export async function execInContainer(r: ExecRequest): Promise<ExecResult> {
  checkId(r.containerId);
  checkId(r.execId);
  throwIfAborted(r.signal);
  await mkdir(r.execDir, { recursive: true, mode: 0o700 });
  const spec = join(r.execDir, 'process.json');
  await writeFile(spec, JSON.stringify(r.process), { mode: 0o600 });
  const foreground = !r.detach;
  const args = [
    ...baseArgs(r.runtime),
    '-c', r.containerId, '-u', r.execId, '-n', r.execId,
    '-b', r.execDir,
    '-p', join(r.execDir, 'pid'),
    '-l', `k8s-file:${join(r.execDir, 'exec.log')}`,
    '--persist-dir', r.execDir,
    '--exec', '--exec-process-spec', spec,
  ];
  if (r.process.terminal) args.push('-t');
  if (foreground && r.streams?.stdin) args.push('-i');
  if (foreground) args.push('--exec-attach');
  const s = spawnConmon(r.conmonPath ?? CONMON, args, { attach: foreground });
  try {
    let attachment: Attachment | undefined;
    if (foreground) {
      s.start!.write('0');
      const ready = await s.attachPipe!.next(r.signal);
      if (!ready || ready.data < 0) return await failure(s, 'exec', r.containerId, ready);
      attachment = await attach(r.execDir, r.streams ?? {}, { signal: r.signal });
      await r.onAttached?.((h, w) => resizeTerminal(r.execDir, h, w));
      s.start!.write('1');
    }
    const started = await s.sync.next(r.signal);
    if (!started || started.data <= 0) {
      attachment?.detach();
      return await failure(s, 'exec', r.containerId, started);
    }
    r.onStarted?.(started.data);
    if (!foreground) return { pid: started.data };
    const ended = await s.sync.next(r.signal);
    let exitCode: number;
    if (ended && ended.data >= 0 && ended.message === undefined) exitCode = ended.data;
    else {
      const st = await readFile(join(r.execDir, 'exit'), 'utf8').catch(() => '');
      exitCode = Number(st.trim());
      if (st === '' || !Number.isInteger(exitCode)) {
        attachment?.detach();
        throw new EngineError('data-loss', 'EXEC_EXIT_UNKNOWN', `exec ${r.execId} ended without an exit code${ended?.message ? `: ${ended.message}` : ''}`, { where: r.execDir });
      }
    }
    // output still in flight reaches the streams before the attach connection closes
    if (attachment) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([attachment.done, new Promise((res) => (timer = setTimeout(res, 5000)))]);
      clearTimeout(timer);
    }
    attachment?.detach();
    return { pid: started.data, exitCode };
  } finally {
    s.release();
  }
}

/** The exit code of a detached exec, once it has exited. */
export async function readExecExit(execDir: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(join(execDir, 'exit'), 'utf8')).trim());
    return Number.isInteger(n) ? n : undefined;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}
