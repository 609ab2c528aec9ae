/**
 * Detach keys (`--detach-keys`, the attach and exec `detachKeys`): Docker's key list
 * ("ctrl-p,ctrl-q" by default) and its escape proxy over an attached stdin. As Docker's
 * (moby/term), a key counts only when it arrives alone — a keystroke, not bytes inside a
 * larger write — and keys held back by a partial match are passed on when the match fails.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { invalidArgument } from '../errors/index.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

const CTRL = ['ctrl-@', ...'abcdefghijklmnopqrstuvwxyz'.split('').map((c) => `ctrl-${c}`), 'ctrl-[', 'ctrl-\\', 'ctrl-]', 'ctrl-^', 'ctrl-_'];

/** "ctrl-p,ctrl-q" → [0x10, 0x11] (moby/term ToBytes); the daemon's message for a bad list. */
export function parseDetachKeys(keys: string): Buffer {
  const out: number[] = [];
  for (const key of keys.split(',')) {
    if (key.length === 1) {
      out.push(key.charCodeAt(0) & 0xff);
      continue;
    }
    const code = CTRL.indexOf(key);
    if (code >= 0) out.push(code);
    else if (key === 'DEL') out.push(127);
    else throw invalidArgument('INVALID_DETACH_KEYS', `Invalid detach keys (${keys}) provided`);
  }
  return Buffer.from(out);
}

/**
 * Passes stdin through, watching for the escape sequence; on a full match it calls `onDetach`
 * (once) and passes nothing more. An empty sequence disables it.
 */
export class EscapeProxy extends Transform {
  private pos = 0;
  private detached = false;

  constructor(
    private readonly keys: Buffer,
    private readonly onDetach: () => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.detached) return cb();
    if (this.keys.length === 0) return cb(null, chunk);
    const held = this.keys.subarray(0, this.pos);
    if (chunk.length !== 1) {
      this.pos = 0;
      return cb(null, held.length ? Buffer.concat([held, chunk]) : chunk);
    }
    if (chunk[0] !== this.keys[this.pos]) {
      this.pos = 0;
      return cb(null, held.length ? Buffer.concat([held, chunk]) : chunk);
    }
    if (this.pos === this.keys.length - 1) {
      this.pos = 0;
      this.detached = true;
      this.onDetach();
      return cb();
    }
    this.pos++;
    cb();
  }

  override _flush(cb: TransformCallback): void {
    const held = this.keys.subarray(0, this.pos);
    this.pos = 0;
    cb(null, held.length && !this.detached ? held : undefined);
  }
}
