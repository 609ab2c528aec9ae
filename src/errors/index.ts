/**
 * One error type for the whole engine. `kind` is closed (the API maps it to an HTTP
 * status, the CLI to an exit code); `code` is a stable machine-readable identifier;
 * the message says what went wrong, `where` says on what, `hint` what to do next.
 */
export type ErrorKind =
  | 'not-found'
  | 'invalid-argument'
  | 'conflict'
  | 'unauthorized'
  | 'forbidden'
  | 'unavailable'
  | 'data-loss'
  | 'resource-exhausted'
  | 'failed-precondition'
  | 'unsupported'
  | 'cancelled'
  | 'internal';

export interface EngineErrorOptions {
  /** the object the error is about: a path, an image reference, a registry URL, a digest */
  where?: string;
  /** what the user can do about it */
  hint?: string;
  cause?: unknown;
}

export class EngineError extends Error {
  override readonly name = 'EngineError';
  readonly kind: ErrorKind;
  readonly code: string;
  readonly where: string | undefined;
  readonly hint: string | undefined;

  constructor(kind: ErrorKind, code: string, message: string, opts: EngineErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.kind = kind;
    this.code = code;
    this.where = opts.where;
    this.hint = opts.hint;
  }

  /** `<what> (<where>): <what to do>` — the line the CLI prints after `Error: `. */
  describe(): string {
    let s = this.message;
    if (this.where && !s.includes(this.where)) s += ` (${this.where})`;
    if (this.hint) s += `: ${this.hint}`;
    return s;
  }
}

export const isEngineError = (e: unknown, kind?: ErrorKind): e is EngineError =>
  e instanceof EngineError && (kind === undefined || e.kind === kind);

export const notFound = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('not-found', code, message, opts);
export const invalidArgument = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('invalid-argument', code, message, opts);
export const conflict = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('conflict', code, message, opts);
export const unavailable = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('unavailable', code, message, opts);
export const dataLoss = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('data-loss', code, message, opts);
export const unsupported = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('unsupported', code, message, opts);
export const internal = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('internal', code, message, opts);

/** Node's system errors carry `code` (ENOENT, EEXIST, ...). */
export function errnoCode(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

export function abortError(signal?: AbortSignal): EngineError {
  return new EngineError('cancelled', 'CANCELLED', 'operation cancelled', { cause: signal?.reason });
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError(signal);
}

export const failedPrecondition = (code: string, message: string, opts?: EngineErrorOptions) =>
  new EngineError('failed-precondition', code, message, opts);
