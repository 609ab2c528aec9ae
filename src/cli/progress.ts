/**
 * Docker-style progress for long work: per-item lines redrawn in place on a terminal
 * ("<id>: Loading layer [=====>    ]  1.2MB/2.15MB"), one plain line per finished step
 * when the output is not a terminal, nothing at all when quiet.
 */
import { humanSize } from './format.js';

export type ProgressMode = 'tty' | 'plain' | 'quiet' | 'json';

export function progressBar(current: number, total: number | undefined, columns: number): string {
  if (current <= 0 && !total) return '';
  if (!total || total <= 0) return humanSize(current).padStart(8);
  let pct = Math.floor(Math.floor((current / total) * 100) / 2);
  if (pct > 50) pct = 50;
  const box = columns > 110 ? `[${'='.repeat(pct)}>${' '.repeat(Math.max(0, 50 - pct))}] ` : '';
  return box + `${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

export class ProgressBoard {
  private ids: string[] = [];
  private lines = new Map<string, string>();
  private lastDraw = 0;
  private pending = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly mode: ProgressMode,
    private readonly out: NodeJS.WriteStream | NodeJS.WritableStream = process.stdout,
  ) {}

  get columns(): number {
    return (this.out as NodeJS.WriteStream).columns ?? 80;
  }

  /** Sets the line of an item. `final` lines are printed in plain mode too. */
  set(id: string, text: string, opts: { final?: boolean; json?: Record<string, unknown> } = {}): void {
    if (this.mode === 'quiet') return;
    if (this.mode === 'json') {
      if (opts.json) this.out.write(JSON.stringify({ id, ...opts.json }) + '\n');
      return;
    }
    if (this.mode === 'plain') {
      if (opts.final) this.out.write(`${id}: ${text}\n`);
      return;
    }
    if (!this.lines.has(id)) {
      this.ids.push(id);
      this.lines.set(id, text);
      this.out.write(`${id}: ${text}\n`);
      return;
    }
    this.lines.set(id, text);
    if (opts.final) this.redraw(id);
    else this.schedule(id);
  }

  /** A line that is not an item (e.g. "Loaded image: …"), printed in every mode but quiet/json. */
  log(text: string): void {
    if (this.mode === 'quiet' || this.mode === 'json') return;
    this.flush();
    this.out.write(text + '\n');
    if (this.mode === 'tty') {
      // items above are finished: stop redrawing them
      this.ids = [];
      this.lines.clear();
    }
  }

  private schedule(id: string): void {
    const now = Date.now();
    if (now - this.lastDraw >= 100) {
      this.redraw(id);
      return;
    }
    this.pending = true;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      if (this.pending) this.redrawAll();
    }, 100);
  }

  private redraw(id: string): void {
    const i = this.ids.indexOf(id);
    if (i < 0) return;
    const up = this.ids.length - i;
    this.out.write(`\x1b[${up}A\r\x1b[2K${id}: ${this.lines.get(id)}\r\x1b[${up}B`);
    this.lastDraw = Date.now();
  }

  private redrawAll(): void {
    this.pending = false;
    for (const id of this.ids) this.redraw(id);
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending && this.mode === 'tty') this.redrawAll();
  }
}
