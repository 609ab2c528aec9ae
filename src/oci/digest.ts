import { createHash } from 'node:crypto';
import { invalidArgument } from '../errors/index.js';

/** A validated `sha256:<64 lowercase hex>` string. */
export type Digest = string & { readonly __digest: unique symbol };

const SHA256_RE = /^sha256:[a-f0-9]{64}$/;
const GENERIC_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/**
 * Parses a digest string. Only sha256 is accepted; anything else (other algorithms,
 * uppercase hex, wrong length, path characters) is refused *before* any path or URL
 * is built from it (CVE-2024-3727).
 */
export function parseDigest(s: unknown, where?: string): Digest {
  if (typeof s !== 'string') {
    throw invalidArgument('INVALID_DIGEST', `invalid digest: expected a string, got ${typeof s}`, { where });
  }
  if (SHA256_RE.test(s)) return s as Digest;
  const shown = JSON.stringify(s.length > 100 ? s.slice(0, 100) + '…' : s);
  if (!GENERIC_RE.test(s)) {
    throw invalidArgument('INVALID_DIGEST', `invalid digest ${shown}: not of the form algorithm:hex`, { where });
  }
  const [alg, hex] = s.split(':', 2) as [string, string];
  if (alg !== 'sha256') {
    throw invalidArgument('UNSUPPORTED_DIGEST', `unsupported digest algorithm ${JSON.stringify(alg)} in ${shown}`, {
      where,
      hint: 'only sha256 digests are supported',
    });
  }
  throw invalidArgument(
    'INVALID_DIGEST',
    `invalid sha256 digest ${shown}: expected 64 lowercase hex characters, got ${hex.length}${/[A-F]/.test(hex) ? ' with uppercase' : ''}`,
    { where },
  );
}

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && SHA256_RE.test(s);
}

/** The 64-hex part of a digest: safe to use as a file name once parsed. */
export const digestHex = (d: Digest): string => d.slice(7);

export function sha256(data: Uint8Array | string): Digest {
  return ('sha256:' + createHash('sha256').update(data).digest('hex')) as Digest;
}

export const shortId = (d: string): string => d.replace(/^sha256:/, '').slice(0, 12);

/** chainID(L1) = diffID(L1); chainID(L1..Ln) = sha256(chainID(L1..Ln-1) + " " + diffID(Ln)). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  let prev: Digest | undefined;
  for (const d of diffIds) {
    prev = prev === undefined ? d : sha256(`${prev} ${d}`);
    out.push(prev);
  }
  return out;
}

export const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' as Digest;
