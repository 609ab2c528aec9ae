/**
 * unpackLayer when its source fails mid-layer while files are being written behind on the
 * thread pool (issue 10.8: a lying registry's pull died with an uncaught `EBADF: bad file
 * descriptor, write`). The thread pool is kept busy so that the queued writes are still
 * waiting when the source fails — what a loaded 2-core machine did by chance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pbkdf2, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataLoss } from '../errors/index.js';
import { encodeHeader } from './tar/writer.js';
import type { TarHeader } from './tar/header.js';
import { unpackLayer } from './unpack.js';

const fileHeader = (name: string, size: number): TarHeader => ({
  name,
  type: 'file',
  mode: 0o644,
  uid: 0,
  gid: 0,
  size,
  mtime: 1704067200,
  linkname: '',
  uname: '',
  gname: '',
  devmajor: 0,
  devminor: 0,
  xattrs: undefined,
});

/** Occupies every thread of libuv's pool (4 by default) for a while. */
function busyThreadPool(): Promise<unknown[]> {
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  return Promise.all(Array.from({ length: threads }, () => new Promise((r) => pbkdf2('busy', 'pool', 400_000, 32, 'sha256', r))));
}

const openFds = () => readdirSync('/proc/self/fd').length;

test('a layer source that fails while writes are queued behind a busy thread pool: the error, no write after close, no fd reused or leaked', async () => {
  const work = mkdtempSync(join(tmpdir(), 'lb-unpack-race-'));
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
  try {
    const target = join(work, 'root');
    const fdsBefore = openFds();
    const lie = dataLoss('REGISTRY_BLOB_EXTRA_BYTES', 'blob is longer than its descriptor says: extra bytes');
    let queued: Promise<unknown> | undefined;
    async function* source(): AsyncGenerator<Buffer> {
      // a 4 MiB file: written behind; its first MiB is handed to the (busy) thread pool
      yield encodeHeader(fileHeader('big.bin', 4 << 20));
      queued = busyThreadPool();
      yield Buffer.alloc(1 << 20, 0xab);
      throw lie;
    }
    mkdirSync(target);
    await assert.rejects(
      unpackLayer({ source: source(), compression: 'none', target, whiteouts: 'overlay', fresh: true }),
      (e: Error) => e === lie || (e as { cause?: unknown }).cause === lie,
    );
    assert.ok(queued, 'the thread pool was busy when the source failed');
    // the descriptor number the aborted file had is free again: the next open gets it. No
    // write queued for the aborted file may land in this one.
    const other = join(work, 'other');
    const fd = openSync(other, 'w');
    closeSync(fd);
    await queued;
    await new Promise((r) => setImmediate(r));
    assert.equal(statSync(other).size, 0, 'a queued write landed in a file opened after the abort');
    assert.equal(statSync(join(target, 'big.bin')).size, 1 << 20, 'the queued write went to its own file before it was closed');
    assert.equal(openFds(), fdsBefore, 'no descriptor leaked');
    assert.deepEqual(unhandled, [], 'no uncaught error (EBADF)');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    rmSync(work, { recursive: true, force: true });
  }
});

test('a write behind that fails with ENOSPC (a full 1 MiB tmpfs) is the unpack error, not an unhandled rejection', async () => {
  const work = mkdtempSync(join(tmpdir(), 'lb-unpack-enospc-'));
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  const target = join(work, 'root');
  mkdirSync(target);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'lb-unpack-enospc', target]);
  try {
    const size = 4 << 20;
    const data = randomBytes(size);
    async function* source(): AsyncGenerator<Buffer> {
      yield encodeHeader(fileHeader('big.bin', size));
      // small chunks with a turn of the event loop between them: a queued write fails
      // while no later chunk has been chained behind it yet
      for (let off = 0; off < size; off += 64 << 10) {
        yield data.subarray(off, off + (64 << 10));
        await new Promise((r) => setImmediate(r));
      }
      yield Buffer.alloc(1024);
    }
    await assert.rejects(unpackLayer({ source: source(), compression: 'none', target, whiteouts: 'overlay', fresh: true }), { code: 'ENOSPC' });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    execFileSync('umount', [target]);
    rmSync(work, { recursive: true, force: true });
  }
});
