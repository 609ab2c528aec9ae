/**
 * ADD's download of a URL (builder/dockerfile/copy.go downloadSource): into a fresh
 * directory, the file named after the URL's path (or the Content-Disposition filename),
 * mode 0600, its mtime the Last-Modified header (the Unix epoch without one).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, utimesSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EngineError } from '../errors/index.js';

export interface Downloaded {
  dir: string;
  /** '' when neither the URL nor the response names the file */
  name: string;
}

function filenameFor(url: URL, disposition: string | null): string {
  const p = decodeURIComponent(url.pathname);
  if (p !== '' && !p.endsWith('/')) {
    const b = posix.basename(p);
    if (b) return b;
  }
  const m = disposition ? /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition) : null;
  if (m && !m[1]!.endsWith('/')) return posix.basename(m[1]!);
  return '';
}

export async function download(src: string, tmpDir: string, opts: { signal?: AbortSignal } = {}): Promise<Downloaded> {
  let res: Response;
  try {
    res = await fetch(src, { redirect: 'follow', ...(opts.signal ? { signal: opts.signal } : {}) });
  } catch (e) {
    throw new EngineError('unavailable', 'BUILD_ADD_DOWNLOAD', `error downloading ${src}: ${(e as Error).message}`, { cause: e, hint: 'check the URL and that this host reaches it' });
  }
  if (res.status >= 400) {
    const body = (await res.text().catch(() => '')).slice(0, 200);
    throw new EngineError('unavailable', 'BUILD_ADD_DOWNLOAD', `failed to GET ${src} with status ${res.status} ${res.statusText}: ${body}`);
  }
  const name = filenameFor(new URL(src), res.headers.get('content-disposition'));
  const dir = join(tmpDir, `builddl-${process.pid}-${randomBytes(6).toString('hex')}`);
  mkdirSync(dir, { mode: 0o700 });
  const file = join(dir, name || '__unnamed__');
  try {
    await pipeline(res.body ? Readable.fromWeb(res.body as never) : Readable.from([]), createWriteStream(file, { mode: 0o600, flags: 'wx' }));
    const lm = res.headers.get('last-modified');
    const t = lm ? Date.parse(lm) : NaN;
    const when = Number.isFinite(t) && t > 0 ? new Date(t) : new Date(0);
    utimesSync(file, when, when);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return { dir, name };
}
