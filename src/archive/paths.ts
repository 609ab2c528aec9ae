/**
 * Path rules for layer entries. A name is cleaned as if the layer root were `/`:
 * leading slashes, `.` components and `..` above the root are dropped, so nothing can
 * name a place outside the root (docs/RELIABILITY.md item 1, containerd's fs.RootPath rule).
 */

/** Cleans an archive name into root-relative components ([] = the root itself). */
export function cleanComponents(name: string): string[] {
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      out.pop();
      continue;
    }
    out.push(c);
  }
  return out;
}

export function cleanRel(name: string): string {
  return cleanComponents(name).join('/');
}

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const WHITEOUT_OPAQUE = '.wh..wh..opq';
