/**
 * The limits a layer's tar must respect — one definition for what the reader accepts
 * (load, pull, import) and what the writer produces (commit), so that every layer
 * layerbox writes, `save` and `push` carry and any layerbox `load`s and `pull`s back
 * (docs/RELIABILITY.md item 37). Item 7 (node-tar CVE-2024-28863) is why there are limits at all.
 */

/** PAX extended headers and GNU long names: at most 1 MiB. */
export const MAX_EXTENDED_HEADER = 1 << 20;
/** An entry name (or link target): at most PATH_MAX bytes. */
export const MAX_NAME_BYTES = 4096;
/** An entry name: at most this many components (directories and the entry itself). */
export const MAX_NAME_DEPTH = 1024;

/**
 * Bytes accepted after the end-of-archive marker. GNU tar pads to 10 KiB records; Go's
 * archive/tar (Docker) ignores whatever follows, but hashes it into the diffID, so some is
 * kept; an endless stream after the marker is refused.
 */
export const MAX_TRAILER = 16 * 1024 * 1024;

/** Components of a tar name that name something: `a//b/./c/` is 3 deep. */
export function nameDepth(name: string): number {
  let depth = 0;
  let start = 0;
  for (let i = 0; i <= name.length; i++) {
    if (i === name.length || name.charCodeAt(i) === 47) {
      const len = i - start;
      if (len > 0 && !(len === 1 && name.charCodeAt(start) === 46)) depth++;
      start = i + 1;
    }
  }
  return depth;
}

export type NameProblem = { code: 'TAR_NAME_TOO_LONG' | 'TAR_TOO_DEEP' | 'TAR_BAD_NAME'; message: string };

/**
 * What is wrong with an entry name (or, with `depth: false`, a link target), if anything.
 * The message completes "entry name …" / "link target …".
 */
export function nameProblem(name: string, opts: { depth?: boolean; maxBytes?: number; maxDepth?: number } = {}): NameProblem | undefined {
  const maxBytes = opts.maxBytes ?? MAX_NAME_BYTES;
  const maxDepth = opts.maxDepth ?? MAX_NAME_DEPTH;
  if (name.length * 3 > maxBytes && Buffer.byteLength(name) > maxBytes) return { code: 'TAR_NAME_TOO_LONG', message: `longer than ${maxBytes} bytes` };
  if (name.includes('\0')) return { code: 'TAR_BAD_NAME', message: 'contains NUL' };
  if (opts.depth !== false && name.length > maxDepth && nameDepth(name) > maxDepth) return { code: 'TAR_TOO_DEEP', message: `deeper than ${maxDepth} directories` };
  return undefined;
}

/** A long name shortened for a message. */
export function shortName(name: string): string {
  return name.length > 80 ? name.slice(0, 80) + '…' : name;
}
