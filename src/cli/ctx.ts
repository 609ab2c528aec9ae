/** What every command module gets: the program, the engine (opened on first use), the streams. */
import type { Command } from 'commander';
import type { Engine } from '../engine/engine.js';

export const VERSION = '0.1.0';

/** Ends the command with an exit code (and an optional message on stderr). */
export class ExitError extends Error {
  constructor(
    readonly code: number,
    message = '',
  ) {
    super(message);
  }
}

export interface Ctx {
  program: Command;
  engine(): Promise<Engine>;
  /** closes the engine if it was opened */
  close(): void;
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
}
