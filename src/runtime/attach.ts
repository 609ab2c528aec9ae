/**
 * Attaching to conmon: its attach socket (`<dir>/attach`, SOCK_SEQPACKET) carries stdin to the container
 * and stdout/stderr from it, each packet prefixed by a stream byte (1 stdin, 2 stdout, 3 stderr).
 * Node has no SEQPACKET sockets: the native module connects one and the fd is read and written with
 * fs calls (one packet per read, on the thread pool). Resizes go through conmon's `ctl` fifo.
 */
import { constants as C, read, write, close } from 'node:fs';
import { open } from 'node:fs/promises';
import { EngineError, errnoCode } from '../errors/index.js';
import { seqpacketConnect, shutdownSocket } from '../sys/native.js';

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
export async function attach(dir: string, streams: AttachStreams, opts: { signal?: AbortSignal } = {}): Promise<Attachment> {
  let fd: number;
  try {
    fd = seqpacketConnect(dir, 'attach');
  } catch (e) {
    throw new EngineError('unavailable', 'ATTACH_FAILED', `cannot connect to ${dir}/attach: ${(e as Error).message}`, {
      where: `${dir}/attach`,
      cause: e,
      hint: 'is the container (or exec) still running?',
    });
  }
  let closed = false;
  const finish = () => {
    if (closed) return;
    closed = true;
    stopInput();
    close(fd, () => {});
  };
  // conmon sends at most 8 KiB + 1 per packet; one read returns one packet
  const buf = Buffer.allocUnsafe(65536);
  const done = new Promise<void>((resolve) => {
    const pump = () => {
      read(fd, buf, 0, buf.length, null, (err, n) => {
        if (err || n === 0 || closed) {
          finish();
          resolve();
          return;
        }
        const type = buf[0];
        const data = Buffer.from(buf.subarray(1, n));
        const out = type === STREAM_STDERR ? streams.stderr : type === STREAM_STDOUT ? streams.stdout : undefined;
        if (out && !out.write(data)) out.once('drain', pump);
        else pump();
      });
    };
    pump();
  });

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
    // unblocks the pending read (closing alone would not), then closes
    if (!closed) shutdownSocket(fd, 2);
    finish();
  };
  opts.signal?.addEventListener('abort', detach, { once: true });
  if (streams.stdin) {
    let queue = Promise.resolve();
    onData = (b) => {
      const chunk = typeof b === 'string' ? Buffer.from(b) : b;
      queue = queue.then(
        () =>
          new Promise<void>((res) => {
            if (closed) return res();
            write(fd, chunk, 0, chunk.length, null, () => res());
          }),
      );
    };
    onEnd = () => {
      queue = queue.then(() => {
        if (!closed) shutdownSocket(fd, 1);
      });
    };
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
