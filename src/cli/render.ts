/**
 * Draws the engine's progress messages the way the docker CLI draws a JSON progress stream
 * (moby's jsonmessage.DisplayJSONMessagesStream): on a terminal, one line per layer ID
 * redrawn in place; otherwise one line per message that carries no progress bar; quiet
 * mode keeps only `stream` text (what `load -q` prints); json mode prints the messages.
 */
import type { Operation, ProgressMessage } from '../engine/index.js';
import { humanSize } from './format.js';

export type ProgressMode = 'tty' | 'plain' | 'quiet' | 'json';

/** jsonmessage's JSONProgress.String() for a terminal of `width` columns. */
export function progressBar(current: number, total: number | undefined, width: number): string {
  if (current <= 0 && !(total && total > 0)) return '';
  if (!total || total <= 0) return humanSize(current).padStart(8);
  let pct = Math.floor(Math.floor((current / total) * 100) / 2);
  if (pct > 50) pct = 50;
  const bar = width > 110 ? `[${'='.repeat(pct)}>${' '.repeat(Math.max(0, 50 - pct))}] ` : '';
  return bar + `${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

export class ProgressRenderer {
  private ids = new Map<string, number>();

  constructor(
    readonly mode: ProgressMode,
    private readonly out: NodeJS.WritableStream & { columns?: number } = process.stdout,
  ) {}

  private get width(): number {
    return this.out.columns ?? 80;
  }

  /** Renders one message; throws the error a message carries (as the docker CLI does). */
  write(m: ProgressMessage): void {
    if (m.error || m.errorDetail) throw new Error(m.errorDetail?.message ?? m.error);
    if (this.mode === 'json') {
      this.out.write(JSON.stringify(m) + '\n');
      return;
    }
    if (this.mode === 'quiet') {
      if (m.stream) this.out.write(m.stream);
      return;
    }
    if (m.aux) return;
    const tty = this.mode === 'tty';
    const hasProgress = m.progressDetail !== undefined;
    let diff = 0;
    if (m.id && hasProgress) {
      let line = this.ids.get(m.id);
      if (line === undefined) {
        line = this.ids.size;
        this.ids.set(m.id, line);
        if (tty) this.out.write('\n');
      }
      diff = this.ids.size - line;
      if (tty) this.out.write(`\x1b[${diff}A`);
    } else {
      this.ids.clear();
    }
    this.display(m, tty);
    if (m.id && tty && diff) this.out.write(`\x1b[${diff}B`);
  }

  private display(m: ProgressMessage, tty: boolean): void {
    const bar = m.progressDetail ? progressBar(m.progressDetail.current ?? 0, m.progressDetail.total, this.width) : '';
    let endl = '';
    if (tty && !m.stream && m.progressDetail) {
      this.out.write('\x1b[2K\r');
      endl = '\r';
    } else if (m.progressDetail && bar !== '') {
      return; // no progress bars off a terminal
    }
    let s = m.id ? `${m.id}: ` : '';
    if (m.progressDetail && tty) s += `${m.status ?? ''} ${bar}${endl}`;
    else if (m.stream) s += `${m.stream}${endl}`;
    else s += `${m.status ?? ''}${endl}\n`;
    this.out.write(s);
  }
}

/** The mode for an output stream: tty when it is a terminal, unless quiet. */
export function modeFor(out: NodeJS.WriteStream, quiet?: boolean, progress?: string): ProgressMode {
  if (quiet) return 'quiet';
  if (progress === 'json' || progress === 'plain' || progress === 'tty') return progress;
  return out.isTTY ? 'tty' : 'plain';
}

/** Runs an operation to its end, drawing its messages on `out` in `mode`. */
export async function renderOp<R>(op: Operation<R>, out: NodeJS.WriteStream, mode: ProgressMode): Promise<R> {
  const r = new ProgressRenderer(mode, out);
  for await (const m of op) r.write(m);
  return op.result;
}
