/**
 * Content-addressed blob store: `blobs/sha256/<hex>`, immutable, verified on ingest.
 * Writes go to `ingest/<ref>/data` under a per-ref lock, are hashed while written, and
 * commit = fsync, check size and digest, rename into place, fsync the directory. A blob
 * already present is not written again. A resumed write re-hashes what is on disk.
 * Deletion renames the blob out of the namespace before unlinking it.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, constants as C, type ReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, rmdir, stat, unlink, readdir, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { dataLoss, errnoCode, EngineError, isEngineError, notFound, throwIfAborted, unavailable } from '../errors/index.js';
import { digestHex, parseDigest, sha256, type Digest } from '../oci/digest.js';
import { fsyncDir, tempName } from '../sys/fsutil.js';
import { tryLock, type Lock } from '../sys/lock.js';

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface WriterOptions {
  expected?: { digest?: Digest; size?: number };
  /** Wait for another process holding the same ref instead of failing with 'unavailable'. */
  wait?: boolean;
  signal?: AbortSignal;
}

export class ContentStore {
  readonly blobsDir: string;
  readonly ingestDir: string;

  constructor(readonly root: string) {
    this.blobsDir = join(root, 'blobs', 'sha256');
    this.ingestDir = join(root, 'ingest');
  }

  async init(): Promise<void> {
    await mkdir(this.blobsDir, { recursive: true, mode: 0o700 });
    await mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
  }

  path(d: Digest): string {
    return join(this.blobsDir, digestHex(parseDigest(d)));
  }

  async info(d: Digest): Promise<BlobInfo | undefined> {
    try {
      const st = await stat(this.path(d));
      return { digest: d, size: st.size };
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw e;
    }
  }

  async has(d: Digest): Promise<boolean> {
    return (await this.info(d)) !== undefined;
  }

  /** Reads a small blob whole and verifies it again (manifests, configs): cheap and paranoid. */
  async readBytes(d: Digest, maxSize = 16 << 20): Promise<Buffer> {
    const p = this.path(d);
    let data: Buffer;
    try {
      const st = await stat(p);
      if (st.size > maxSize) throw new EngineError('resource-exhausted', 'BLOB_TOO_LARGE', `blob ${d} is ${st.size} bytes, more than the ${maxSize}-byte limit for this kind of object`);
      data = await readFile(p);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw notFound('BLOB_NOT_FOUND', `blob ${d} is not in the content store`, { where: p });
      throw e;
    }
    if (sha256(data) !== d) {
      throw dataLoss('BLOB_CORRUPT', `blob ${d} is corrupt on disk (its bytes hash to ${sha256(data)})`, { where: p, hint: 'remove the image that uses it and load or pull it again' });
    }
    return data;
  }

  async readJson<T>(d: Digest, maxSize = 4 << 20): Promise<T> {
    return JSON.parse((await this.readBytes(d, maxSize)).toString('utf8')) as T;
  }

  openRead(d: Digest, opts: { start?: number; signal?: AbortSignal } = {}): ReadStream {
    return createReadStream(this.path(d), { start: opts.start, highWaterMark: 1 << 17, signal: opts.signal });
  }

  /** Stores small content in one call (idempotent). */
  async put(data: Uint8Array, expected?: Digest): Promise<Digest> {
    const d = sha256(data);
    if (expected && expected !== d) throw dataLoss('BLOB_DIGEST_MISMATCH', `content digest mismatch: expected ${expected}, got ${d}`);
    if (await this.has(d)) return d;
    for (let attempt = 0; ; attempt++) {
      const w = await this.writer(`put-${digestHex(d)}`, { expected: { digest: d, size: data.length }, wait: true });
      const resumed = w.resumeOffset > 0;
      try {
        if (await this.has(d)) {
          // another process stored it while we waited for the ref
          await w.abort();
          return d;
        }
        // a put killed mid-write left a prefix: send only the rest (never append the whole again)
        await w.write(Buffer.from(data.buffer, data.byteOffset + w.resumeOffset, data.length - w.resumeOffset));
        await w.commit();
        return d;
      } catch (e) {
        await w.abort();
        // the resumed prefix was corrupt (commit caught it and dropped it): once more from the start
        if (resumed && attempt === 0 && isEngineError(e, 'data-loss')) continue;
        throw e;
      }
    }
  }

  /**
   * Adopts a file the caller wrote (and fsynced) on the same file system, whose digest it
   * computed while writing: renamed into place (or dropped when the blob already exists).
   */
  async adopt(file: string, d: Digest, size: number): Promise<void> {
    const st = await stat(file);
    if (st.size !== size) throw dataLoss('BLOB_SIZE_MISMATCH', `file to store has ${st.size} bytes, expected ${size}`, { where: file });
    const target = this.path(d);
    if (await this.has(d)) {
      await unlink(file);
      return;
    }
    await rename(file, target);
    await fsyncDir(this.blobsDir);
  }

  /** Opens a writer for `ref`. Only one writer per ref at a time across processes. */
  async writer(ref: string, opts: WriterOptions = {}): Promise<BlobWriter> {
    const key = ref.replace(/[^a-zA-Z0-9._-]/g, '_').slice(0, 200);
    const dir = join(this.ingestDir, key);
    const lock = await this.lockRef(dir, ref, opts);
    try {
      return await BlobWriter.open(this, dir, lock, opts.expected);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /**
   * Takes the ref's lock in `ingest/<ref>/lock`. The directory can vanish under us (a
   * writer that just committed the same ref removes it once empty): then it is made again.
   */
  private async lockRef(dir: string, ref: string, opts: WriterOptions): Promise<Lock> {
    let delay = 10;
    for (;;) {
      throwIfAborted(opts.signal);
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
      } catch (e) {
        // mkdir -p found the directory (EEXIST), a commit removed it, and mkdir's check that
        // it is a directory failed: it is gone, so make it again
        if (errnoCode(e) === 'ENOENT') continue;
        throw e;
      }
      let lock: Lock | undefined;
      try {
        lock = tryLock(join(dir, 'lock'));
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') continue;
        throw e;
      }
      if (lock) return lock;
      if (!opts.wait) throw unavailable('INGEST_LOCKED', `another layerbox process is writing ${ref}`, { hint: 'retry when it finishes' });
      await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : undefined).catch(() => {});
      delay = Math.min(delay * 2, 100);
    }
  }

  async delete(d: Digest): Promise<void> {
    const p = this.path(d);
    const grave = tempName(p);
    try {
      await rename(p, grave);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw e;
    }
    await unlink(grave);
  }

  async *list(): AsyncGenerator<BlobInfo> {
    for (const name of await readdir(this.blobsDir)) {
      if (!/^[a-f0-9]{64}$/.test(name)) continue;
      const st = await stat(join(this.blobsDir, name)).catch(() => undefined);
      if (st) yield { digest: ('sha256:' + name) as Digest, size: st.size };
    }
  }

  /** Removes leftovers of crashed writers (temp files, stale ingest dirs whose lock is free). */
  async sweep(): Promise<void> {
    for (const name of await readdir(this.blobsDir)) {
      if (name.startsWith('.tmp-')) await rm(join(this.blobsDir, name), { force: true });
    }
    for (const name of await readdir(this.ingestDir).catch(() => [] as string[])) {
      const dir = join(this.ingestDir, name);
      const l = tryLock(join(dir, 'lock'));
      if (!l) continue;
      try {
        // keep partial data: a later writer for the same ref resumes from it
        const st = await stat(join(dir, 'data')).catch(() => undefined);
        if (!st) await rm(dir, { recursive: true, force: true });
      } finally {
        l.release();
      }
    }
  }
}

export class BlobWriter {
  private hash: Hash = createHash('sha256');
  private closed = false;

  private constructor(
    private readonly store: ContentStore,
    private readonly dir: string,
    private readonly lock: Lock,
    private readonly fh: FileHandle,
    public offset: number,
    private readonly expected?: { digest?: Digest; size?: number },
  ) {}

  static async open(store: ContentStore, dir: string, lock: Lock, expected?: { digest?: Digest; size?: number }): Promise<BlobWriter> {
    const data = join(dir, 'data');
    const fh = await open(data, C.O_RDWR | C.O_CREAT, 0o600);
    const w = new BlobWriter(store, dir, lock, fh, 0, expected);
    // Resume: re-hash what a previous writer left (never trust it blindly).
    const st = await fh.stat();
    if (st.size > 0) {
      if (expected?.size !== undefined && st.size > expected.size) {
        await fh.truncate(0);
      } else {
        const buf = Buffer.allocUnsafe(1 << 17);
        let pos = 0;
        while (pos < st.size) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, st.size - pos), pos);
          if (bytesRead <= 0) break;
          w.hash.update(buf.subarray(0, bytesRead));
          pos += bytesRead;
        }
        w.offset = pos;
      }
    }
    return w;
  }

  /** Bytes already on disk from an earlier, interrupted write of the same ref. */
  get resumeOffset(): number {
    return this.offset;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.expected?.size !== undefined && this.offset + chunk.length > this.expected.size) {
      throw dataLoss('BLOB_TOO_LONG', `more bytes than the expected ${this.expected.size}`);
    }
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off, this.offset);
      off += bytesWritten;
      this.offset += bytesWritten;
    }
    this.hash.update(chunk);
  }

  /** fsync, verify size and digest, rename into place, fsync the directory. */
  async commit(): Promise<BlobInfo> {
    const digest = ('sha256:' + this.hash.digest('hex')) as Digest;
    const size = this.offset;
    try {
      if (this.expected?.size !== undefined && size !== this.expected.size) {
        throw dataLoss('BLOB_SIZE_MISMATCH', `blob has ${size} bytes, expected ${this.expected.size}`);
      }
      if (this.expected?.digest && digest !== this.expected.digest) {
        throw dataLoss('BLOB_DIGEST_MISMATCH', `blob digest mismatch: expected ${this.expected.digest}, got ${digest}`);
      }
      await this.fh.sync();
      await this.fh.close();
      this.closed = true;
      const target = this.store.path(digest);
      if (await this.store.has(digest)) await unlink(join(this.dir, 'data'));
      else {
        await rename(join(this.dir, 'data'), target);
        await fsyncDir(this.store.blobsDir);
      }
      this.lock.release();
      await removeIngestDir(this.dir);
      return { digest, size };
    } catch (e) {
      await this.abort();
      throw e;
    } finally {
      this.lock.release();
    }
  }

  /** Drops the partial data. */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => {});
    }
    await unlink(join(this.dir, 'data')).catch(() => {});
    this.lock.release();
    await removeIngestDir(this.dir);
  }

  /** Keeps the partial data for a later resume and releases the ref. */
  async suspend(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.sync().catch(() => {});
      await this.fh.close().catch(() => {});
    }
    this.lock.release();
  }
}

/**
 * Removes an ingest directory once its writer let go of it: only when empty (rmdir), so it
 * never takes away the lock or data of a writer that took the ref in the meantime.
 */
async function removeIngestDir(dir: string): Promise<void> {
  await rmdir(dir).catch(() => {});
}
