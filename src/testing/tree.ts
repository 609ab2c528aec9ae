/** Test support: walk a directory tree into entries shaped like fixtures/*.expected.json. */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export interface TreeEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  mode: string;
  uid: number;
  gid: number;
  size: number;
  mtime?: number;
  sha256?: string;
  linkTarget?: string;
  ino?: number;
  hardlinkTo?: string;
}

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = join(REPO_ROOT, 'fixtures');

export function walkTree(root: string, opts: { hash?: boolean } = {}): TreeEntry[] {
  const out: TreeEntry[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel + '/' + name;
      const full = join(root, p);
      const st = lstatSync(full);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'socket';
      const e: TreeEntry = { path: p, type, mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), uid: st.uid, gid: st.gid, size: type === 'file' ? st.size : 0, mtime: Math.floor(st.mtimeMs / 1000), ino: st.ino };
      if (type === 'file' && opts.hash !== false) e.sha256 = createHash('sha256').update(readFileSync(full)).digest('hex');
      if (type === 'symlink') e.linkTarget = readlinkSync(full);
      out.push(e);
      if (type === 'dir') walk(p);
    }
  };
  walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export interface Expected {
  image: { id: string; rootfsLayers: string[]; cmd: string[]; env: string[] };
  count: number;
  entries: (TreeEntry & { dockerInitLayer?: boolean })[];
}

export function readExpected(name: string): Expected {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as Expected;
}

/**
 * Compares a walked tree with Docker's expected listing: every entry not marked
 * dockerInitLayer, with type, mode, uid, gid, size, link target and sha256; hard links
 * must share an inode. Directories from the init layer are compared for existence only.
 * Returns a list of differences (empty when equal).
 */
export function compareWithExpected(actual: TreeEntry[], expected: Expected): string[] {
  const diffs: string[] = [];
  const byPath = new Map(actual.map((e) => [e.path, e]));
  // the issue's rule: exactly the entries not marked dockerInitLayer; the init layer's
  // entries are Docker's per-container additions (those that are directories of the
  // image, like /etc and /dev, exist here too, with the image's own metadata)
  const wanted = expected.entries.filter((e) => !e.dockerInitLayer);
  const initPaths = new Set(expected.entries.filter((e) => e.dockerInitLayer).map((e) => e.path));
  const wantedPaths = new Set(wanted.map((e) => e.path));
  for (const w of wanted) {
    const a = byPath.get(w.path);
    if (!a) {
      diffs.push(`missing ${w.path}`);
      continue;
    }
    for (const k of ['type', 'mode', 'uid', 'gid', 'size'] as const) {
      if (a[k] !== w[k]) diffs.push(`${w.path}: ${k} ${JSON.stringify(a[k])}, want ${JSON.stringify(w[k])}`);
    }
    if (w.sha256 && a.sha256 !== w.sha256) diffs.push(`${w.path}: sha256 ${a.sha256}, want ${w.sha256}`);
    if (w.linkTarget !== undefined && a.linkTarget !== w.linkTarget) diffs.push(`${w.path}: link ${a.linkTarget}, want ${w.linkTarget}`);
    if (w.hardlinkTo) {
      const other = byPath.get(w.hardlinkTo);
      if (!other || other.ino !== a.ino) diffs.push(`${w.path}: not a hard link of ${w.hardlinkTo}`);
    }
  }
  for (const a of actual) {
    if (wantedPaths.has(a.path)) continue;
    if (initPaths.has(a.path) && a.type === 'dir') continue;
    diffs.push(`unexpected ${a.path} (${a.type})`);
  }
  return diffs;
}
