/**
 * Docker's stdcopy framing for streams that carry stdout and stderr on one connection
 * (attach, exec, logs without a TTY): an 8-byte header — stream (1 stdout, 2 stderr),
 * three zero bytes, the payload length as big-endian uint32 — then the payload.
 */
import { Writable } from 'node:stream';

export const STDOUT = 1;
export const STDERR = 2;

export function frame(stream: 1 | 2, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
}

/** A Writable that frames what is written to it for `stream` and passes it to `out`. */
export function framedWriter(out: NodeJS.WritableStream, stream: 1 | 2): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (chunk.length === 0) return cb();
      out.write(frame(stream, chunk), (e) => cb(e ?? undefined));
    },
  });
}
