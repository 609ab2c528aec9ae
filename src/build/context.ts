/**
 * The build context: a directory the builder reads COPY and ADD sources from, as Docker's
 * daemon sees it after the client applied `.dockerignore`: an excluded path is not there (a
 * directory stays when something inside it is re-included with `!`). Matching is Docker's,
 * through @balena/dockerignore. A context from a tar stream (plain or compressed) is
 * unpacked with the layer extractor's confinement (names re-rooted, nothing written through
 * a link, limits); one from a URL is downloaded first.
 *
 * Paths are resolved the way Docker resolves them in a context (continuity's RootPath):
 * symlinks are followed but clamped to the context root, so nothing outside it is reached.
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, type Stats } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Readable } from 'node:stream';
import dockerignore, { type Ignore } from '@balena/dockerignore';
import { invalidArgument } from '../errors/index.js';
import { unpackLayer } from '../archive/unpack.js';
import { removeTree } from '../sys/fsutil.js';
import type { ChecksumMemo } from './cache.js';

export interface ContextSource {
  /** a directory on this host */
  dir?: string;
  /** a tar (plain, gzip, bzip2, xz, zstd) of the context */
  tar?: Readable;
}

/** Lexical clean of a context-relative path; undefined when it climbs above the root. */
export function cleanRel(p: string): string | undefined {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

/** .dockerignore lines as Docker's dockerignore.ReadAll reads them. */
export function readDockerignore(text: string): string[] {
  const out: string[] = [];
  for (let line of text.split(/\r?\n/)) {
    if (line.startsWith('#')) continue;
    line = line.trim();
    if (line === '') continue;
    let invert = false;
    if (line.startsWith('!')) {
      invert = true;
      line = line.slice(1).trim();
    }
    if (line.length > 0) {
      const c = cleanRel(line.replace(/^\/+/, '')) ?? line;
      line = c === '' ? '.' : c;
    }
    out.push(invert ? '!' + line : line);
  }
  return out;
}

export class BuildContext {
  private present: Set<string> | undefined;
  private matcher: Ignore | undefined;
  private memo: ChecksumMemo | undefined;
  readonly patterns: string[];

  private constructor(
    readonly root: string,
    private readonly owned: boolean,
    private readonly patternsFromFile = true,
  ) {
    const dockerignore = patternsFromFile;
    let text = '';
    try {
      if (dockerignore) text = readFileSync(join(root, '.dockerignore'), 'utf8');
    } catch {
      /* none */
    }
    this.patterns = readDockerignore(text);
    if (this.patterns.length) {
      this.matcher = ignore().add(this.patterns);
      this.present = this.walkPresent();
    }
  }

  static async open(src: ContextSource, tmpDir: string, opts: { signal?: AbortSignal; maxBytes?: number } = {}): Promise<BuildContext> {
    if (src.dir !== undefined) {
      let st: Stats;
      try {
        st = lstatSync(src.dir);
      } catch {
        throw invalidArgument('BUILD_CONTEXT', `unable to prepare context: path ${JSON.stringify(src.dir)} not found`, { hint: 'give a directory, a URL, or - for a tar on stdin' });
      }
      if (!st.isDirectory()) throw invalidArgument('BUILD_CONTEXT', `unable to prepare context: context must be a directory: ${src.dir}`);
      return new BuildContext(src.dir, false);
    }
    if (!src.tar) return new BuildContext(mkdtempSync(join(tmpDir, `buildctx-${process.pid}-`)), true);
    const dir = mkdtempSync(join(tmpDir, `buildctx-${process.pid}-`));
    try {
      await unpackLayer({ source: src.tar, compression: 'auto', target: dir, whiteouts: 'none', fresh: false, sameOwner: true, where: 'the build context', maxBytes: opts.maxBytes, signal: opts.signal });
    } catch (e) {
      await removeTree(dir).catch(() => {});
      throw e;
    }
    return new BuildContext(dir, true);
  }

  /** A file system that is no build context (an image's root for COPY --from): no .dockerignore. */
  static ofRoot(root: string): BuildContext {
    return new BuildContext(root, false, false);
  }

  async close(): Promise<void> {
    if (this.owned) await removeTree(this.root).catch(() => {});
  }

  /** Excluded by .dockerignore (Docker's fileutils.Matches on the path). */
  ignored(rel: string): boolean {
    return !!this.matcher && rel !== '' && this.matcher.ignores(rel);
  }

  /** Paths kept: not excluded, or a directory with a kept path inside. */
  private walkPresent(): Set<string> {
    const keep = new Set<string>();
    const walk = (rel: string): boolean => {
      let any = false;
      let names: string[];
      try {
        names = readdirSync(rel ? join(this.root, rel) : this.root);
      } catch {
        return false;
      }
      for (const n of names) {
        const r = rel ? `${rel}/${n}` : n;
        const st = lstatSync(join(this.root, r));
        const sub = st.isDirectory() ? walk(r) : false;
        if (!this.ignored(r) || sub) {
          keep.add(r);
          any = true;
        }
      }
      return any;
    };
    walk('');
    return keep;
  }

  /** Is this (clean, relative) path part of the context? */
  has(rel: string): boolean {
    if (rel === '') return true;
    if (!this.present) return true;
    return this.present.has(rel);
  }

  /** lstat of a context path, undefined when absent or excluded. */
  lstat(rel: string): Stats | undefined {
    if (!this.has(rel)) return undefined;
    try {
      return lstatSync(rel === '' ? this.root : join(this.root, rel));
    } catch {
      return undefined;
    }
  }

  /**
   * Resolves a relative path with its symlinks followed, clamped to the context root (as
   * Docker's ResolveScopedPath). Returns the resolved relative path, or undefined if absent.
   */
  resolve(rel: string, opts: { excluded?: boolean } = {}): string | undefined {
    let pending = rel.split('/').filter((c) => c !== '' && c !== '.');
    const done: string[] = [];
    let links = 0;
    while (pending.length) {
      const part = pending.shift()!;
      if (part === '..') {
        done.pop();
        continue;
      }
      const cand = [...done, part].join('/');
      const st = opts.excluded ? lstatOr(join(this.root, cand)) : this.lstat(cand);
      if (!st) return undefined;
      if (st.isSymbolicLink()) {
        if (++links > 255) return undefined;
        const t = readlinkSync(join(this.root, cand));
        if (t.startsWith('/')) done.length = 0;
        pending = [...t.split('/').filter((c) => c !== '' && c !== '.'), ...pending];
        continue;
      }
      done.push(part);
    }
    return done.join('/');
  }

  /**
   * The Dockerfile's text: it reaches the builder even when .dockerignore excludes it (then
   * COPY does not see it). `Dockerfile` falls back to `dockerfile`, as Docker's daemon does.
   */
  readDockerfile(name: string): string {
    const read = (n: string): string | undefined => {
      const r = this.resolve(n.replace(/^\/+/, ''), { excluded: true });
      if (r === undefined || r === '') return undefined;
      const p = join(this.root, r);
      const st = lstatOr(p);
      if (!st?.isFile()) return undefined;
      return readFileSync(p, 'utf8');
    };
    const t = read(name) ?? (name === 'Dockerfile' ? read('dockerfile') : undefined);
    if (t === undefined) throw invalidArgument('BUILD_NO_DOCKERFILE', `Cannot locate specified Dockerfile: ${name}`, { hint: 'name it with -f, relative to the context' });
    return t;
  }

  /** The kept entries under a directory (relative paths, lexical order, directories first then their contents). */
  walk(rel: string, fn: (rel: string, st: Stats) => void): void {
    const st = this.lstat(rel);
    if (!st) return;
    if (rel !== '') fn(rel, st);
    if (!st.isDirectory()) return;
    const names = readdirSync(rel ? join(this.root, rel) : this.root).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      if (this.has(r)) this.walk(r, fn);
    }
  }

  abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  /** A directory context of the host: its files' checksums are memoised across builds (cache.ts). */
  get memoisable(): boolean {
    return !this.owned && this.patternsFromFile && isAbsolute(this.root);
  }

  useMemo(memo: ChecksumMemo): void {
    this.memo = memo;
  }

  /** The cache checksum of an entry (entryHash), through the memo for a regular file with content. */
  entryHash(rel: string, st: Stats): string {
    const abs = this.abs(rel);
    if (this.memo && st.isFile() && st.size > 0) return this.memo.sum(abs, rel, st, () => entryHash(abs, rel, st));
    return entryHash(abs, rel, st);
  }
}

// a CommonJS module (module.exports = factory), typed as if it had a default export
const ignore = dockerignore as unknown as (o?: { ignorecase?: boolean }) => Ignore;

function lstatOr(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

const HASH_BUF = Buffer.allocUnsafe(1 << 20);

/**
 * The cache checksum of one entry: its name, type, mode, owner, size, link target and
 * content — never its times (a `touch` keeps the cache, a `chmod` does not).
 */
export function entryHash(abs: string, rel: string, st: Stats): string {
  const h = createHash('sha256');
  const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
  h.update(`${rel}\0${type}\0${(st.mode & 0o7777).toString(8)}\0${st.uid}:${st.gid}\0${st.isFile() ? st.size : 0}\0`);
  if (st.isSymbolicLink()) h.update(readlinkSync(abs));
  if (st.isFile() && st.size > 0) {
    const fd = openSync(abs, 'r');
    try {
      for (;;) {
        const n = readSync(fd, HASH_BUF, 0, HASH_BUF.length, null);
        if (n <= 0) break;
        h.update(HASH_BUF.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
  }
  return h.digest('hex');
}

export function hashStrings(prefix: string, list: string[]): string {
  return prefix + ':' + createHash('sha256').update(list.join(',')).digest('hex');
}
