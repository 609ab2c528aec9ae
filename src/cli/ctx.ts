/** What every command gets: the streams, the global flags, and the engine (opened on first use). */
import type { Engine } from '../engine/index.js';

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
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
  /** the root command's parsed flags */
  globals: Record<string, unknown>;
  /** "layerbox run": for messages that say "See 'layerbox run --help'." */
  commandPath: string;
  engine(): Promise<Engine>;
  /** closes the engine if it was opened */
  close(): void;
}
