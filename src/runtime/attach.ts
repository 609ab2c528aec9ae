/**
 * Attaching to conmon: its attach socket (`<dir>/attach`, SOCK_SEQPACKET) carries stdin to the container
 * and stdout/stderr from it, each packet prefixed by a stream byte (1 stdin, 2 stdout, 3 stderr).
 * Node cannot open SOCK_SEQPACKET sockets, so a tiny relay (python3, a layerbox dependency) connects and
 * re-frames the packets on a pipe: [stream:1][length:4 BE][data]. Resizes go through conmon's `ctl` fifo.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { constants as C } from 'node:fs';
import { open } from 'node:fs/promises';
import { EngineError, errnoCode, unavailable } from '../errors/index.js';

/** The relay. argv: <dir holding the socket> <1|0: forward stdin>. Frame type 255 = connected. */
export const RELAY_PY = `
import os, sys, socket, select, struct
d, fwd = sys.argv[1], sys.argv[2] == '1'
dfd = os.open(d, os.O_PATH | os.O_DIRECTORY)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    s.connect('/proc/self/fd/%d/attach' % dfd)
except OSError as e:
    sys.stderr.write('cannot connect to %s/attach: %s\\n' % (d, e.strerror)); sys.exit(2)
os.close(dfd)
def wall(b):
    while b:
        b = b[os.write(1, b):]
wall(struct.pack('>BI', 255, 0))
stdin_open = fwd
while True:
    rr = select.select([s] + ([0] if stdin_open else []), [], [])[0]
    if s in rr:
        data = s.recv(65536)
        if not data:
            break
        wall(struct.pack('>BI', data[0], len(data) - 1) + data[1:])
    if stdin_open and 0 in rr:
        data = os.read(0, 8192)
        if not data:
            stdin_open = False
            s.shutdown(socket.SHUT_WR)
        else:
            s.sendall(data)
`;

export const STREAM_STDIN = 1;
export const STREAM_STDOUT = 2;
export const STREAM_STDERR = 3;

export interface AttachStreams {
  /** forwarded to the container's stdin; its end closes the container's stdin (unless conmon leaves it open) */
  stdin?: NodeJS.ReadableStream | null;
  stdout?: NodeJS.WritableStream | null;
  stderr?: NodeJS.WritableStream | null;
}

export interface Attachment {
  /** resolves when conmon closes the attach connection (the container or exec exited) */
  done: Promise<void>;
  /** stops forwarding and disconnects */
  detach(): void;
}

/**
 * Connects to `<dir>/attach` (the bundle dir of a container, or an exec's dir) and pumps the streams.
 * Resolves once connected, so a caller can attach before `start` and lose no output.
 */
export async function attach(dir: string, streams: AttachStreams, opts: { python?: string; signal?: AbortSignal } = {}): Promise<Attachment> {
  const fwd = !!streams.stdin;
  let child: ChildProcessWithoutNullStreams;
  try {
    child = spawn(opts.python ?? 'python3', ['-c', RELAY_PY, dir, fwd ? '1' : '0'], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  } catch (e) {
    throw unavailable('ATTACH_RELAY', `cannot start the attach relay: ${(e as Error).message}`, { cause: e, hint: 'install python3' });
  }
  const errText: Buffer[] = [];
  child.stderr.on('data', (b: Buffer) => errText.push(b));
  let connectedResolve!: () => void;
  let connectedReject!: (e: unknown) => void;
  const connected = new Promise<void>((res, rej) => {
    connectedResolve = res;
    connectedReject = rej;
  });
  let pending: Buffer = Buffer.alloc(0);
  child.stdout.on('data', (b: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, b]) : b;
    while (pending.length >= 5) {
      const type = pending[0]!;
      const len = pending.readUInt32BE(1);
      if (pending.length < 5 + len) break;
      const data = pending.subarray(5, 5 + len);
      pending = pending.subarray(5 + len);
      if (type === 255) connectedResolve();
      else if (type === STREAM_STDERR) streams.stderr?.write(data);
      else if (type === STREAM_STDOUT) streams.stdout?.write(data);
    }
  });
  const done = new Promise<void>((resolve) => {
    child.on('close', (code) => {
      if (code !== 0) {
        connectedReject(
          new EngineError('unavailable', 'ATTACH_FAILED', Buffer.concat(errText).toString('utf8').trim() || `attach relay exited with ${code}`, {
            where: `${dir}/attach`,
            hint: 'is the container (or exec) still running?',
          }),
        );
      } else connectedResolve();
      resolve();
    });
  });
  child.on('error', (e) =>
    connectedReject(unavailable('ATTACH_RELAY', `cannot start the attach relay (${opts.python ?? 'python3'}): ${e.message}`, { cause: e, hint: 'install python3' })),
  );
  child.stdin.on('error', () => {});

  let onData: ((b: Buffer | string) => void) | undefined;
  let onEnd: (() => void) | undefined;
  const stopInput = () => {
    if (streams.stdin && onData) {
      streams.stdin.removeListener('data', onData);
      streams.stdin.removeListener('end', onEnd!);
      streams.stdin.pause?.();
      onData = undefined;
    }
  };
  const detach = () => {
    stopInput();
    child.kill('SIGKILL');
  };
  opts.signal?.addEventListener('abort', detach, { once: true });
  await connected;
  if (streams.stdin) {
    onData = (b) => {
      if (!child.stdin.destroyed) child.stdin.write(b);
    };
    onEnd = () => child.stdin.end();
    streams.stdin.on('data', onData);
    streams.stdin.on('end', onEnd);
    streams.stdin.resume?.();
  }
  void done.then(stopInput);
  return { done, detach };
}

/** Sets the terminal size of a `-t` container or exec through conmon's control fifo (`<dir>/ctl`). */
export async function resizeTerminal(dir: string, height: number, width: number): Promise<void> {
  const h = Math.max(0, Math.min(1000, Math.floor(height)));
  const w = Math.max(0, Math.min(1000, Math.floor(width)));
  let fh;
  try {
    fh = await open(`${dir}/ctl`, C.O_WRONLY | C.O_NONBLOCK);
  } catch (e) {
    if (errnoCode(e) === 'ENXIO' || errnoCode(e) === 'ENOENT') {
      throw new EngineError('failed-precondition', 'NOT_RUNNING', 'cannot resize: the container is not running', { where: dir, cause: e });
    }
    throw e;
  }
  try {
    await fh.write(`1 ${h} ${w}\n`);
  } finally {
    await fh.close();
  }
}
