/**
 * The content-store behaviour suite (modelled on containerd's core/content/testsuite):
 * every ContentStore implementation must pass it. Cross-process behaviours use real child
 * processes (testdata-child.ts) on the same store root; crashes are real SIGKILLs.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, statSync, readdirSync, existsSync, mkdirSync, openSync, writeSync, closeSync, watch, lstatSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContentStore } from './store.js';
import { isEngineError } from '../errors/index.js';
import { digestHex } from '../oci/digest.js';
import { genBytes, manyBlob, sha, writeResumable } from './testdata-child.js';

const CHILD = join(fileURLToPath(new URL('.', import.meta.url)), 'testdata-child.js');

before(() => {
  // the cross-process tests spawn node children: make sure the helper was compiled beside us
  assert.ok(existsSync(CHILD), `missing ${CHILD}: run tsc first`);
});

const tmpRoots: string[] = [];
function tempDir(prefix = 'lb-content-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmpRoots.push(d);
  return d;
}
after(() => {
  for (const d of tmpRoots) rmSync(d, { recursive: true, force: true });
});

async function newStore(): Promise<ContentStore> {
  const cs = new ContentStore(join(tempDir(), 'root'));
  await cs.init();
  return cs;
}

interface Child {
  proc: ChildProcess;
  events: Record<string, unknown>[];
  /** Resolves with the first event (past or future) for which `pred` holds. */
  next(pred: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

function child(cmd: string, args: Record<string, unknown>): Child {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const proc = spawn(process.execPath, [CHILD, cmd, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'pipe'], env });
  const events: Record<string, unknown>[] = [];
  const waiters: { pred: (e: Record<string, unknown>) => boolean; res: (e: Record<string, unknown>) => void }[] = [];
  let buf = '';
  let err = '';
  proc.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  proc.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      const e = JSON.parse(line) as Record<string, unknown>;
      events.push(e);
      for (const w of waiters.splice(0)) {
        if (w.pred(e)) w.res(e);
        else waiters.push(w);
      }
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => proc.on('exit', (code, signal) => res({ code, signal })));
  return {
    proc,
    events,
    exit,
    stderr: () => err,
    next(pred, timeoutMs = 20000) {
      const found = events.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`child ${cmd}: no matching event within ${timeoutMs} ms; events ${JSON.stringify(events)}; stderr ${err}`)), timeoutMs);
        const done = (e: Record<string, unknown>) => {
          clearTimeout(t);
          res(e);
        };
        waiters.push({ pred, res: done });
        void exit.then(() => {
          setTimeout(() => {
            const f = events.find(pred);
            if (f) done(f);
            else {
              clearTimeout(t);
              rej(new Error(`child ${cmd} exited without a matching event; events ${JSON.stringify(events)}; stderr ${err}`));
            }
          }, 10);
        });
      });
    },
  };
}

async function killHard(c: Child): Promise<void> {
  c.proc.kill('SIGKILL');
  await c.exit; // reaped: its pid is gone from /proc, so its locks are stale
}

function hashFile(p: string): string {
  return 'sha256:' + createHash('sha256').update(readFileSync(p)).digest('hex');
}

/** Every blob file is named by the digest of its bytes; returns the names. */
function assertBlobsMatchNames(cs: ContentStore): string[] {
  const names: string[] = [];
  for (const name of readdirSync(cs.blobsDir)) {
    if (name.startsWith('.tmp-')) continue; // leftovers of an interrupted rename; swept at start-up, never read
    assert.match(name, /^[a-f0-9]{64}$/, `unexpected file ${name} in the blob directory`);
    assert.equal(hashFile(join(cs.blobsDir, name)), 'sha256:' + name, `blob ${name} does not match its name`);
    names.push(name);
  }
  return names;
}

async function rejectsKind(p: Promise<unknown>, kind: string, code?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isEngineError(e), `expected an EngineError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (code) assert.equal(e.code, code, e.message);
    return true;
  });
}

describe('content store: write, commit, read back', () => {
  test('writers with and without expectations commit and read back (containerd Writer)', async () => {
    const cs = await newStore();
    const cases = [
      { ref: 'c1', expected: undefined },
      { ref: 'c2', expected: 'size' },
      { ref: 'c3', expected: 'digest' },
      { ref: 'c4', expected: 'both' },
    ] as const;
    for (const c of cases) {
      const data = genBytes(c.ref, 256);
      const d = sha(data);
      const exp = c.expected === 'size' ? { size: 256 } : c.expected === 'digest' ? { digest: d } : c.expected === 'both' ? { digest: d, size: 256 } : undefined;
      const w = await cs.writer(c.ref, exp ? { expected: exp } : {});
      assert.equal(w.resumeOffset, 0);
      // small writes, like containerd's 32-byte copy buffer
      for (let off = 0; off < data.length; off += 32) await w.write(data.subarray(off, off + 32));
      const info = await w.commit();
      assert.deepEqual(info, { digest: d, size: 256 });
      assert.deepEqual(await cs.info(d), { digest: d, size: 256 });
      assert.ok(await cs.has(d));
      assert.deepEqual(await cs.readBytes(d), data);
      const streamed: Buffer[] = [];
      for await (const b of cs.openRead(d)) streamed.push(b as Buffer);
      assert.deepEqual(Buffer.concat(streamed), data);
      const tail: Buffer[] = [];
      for await (const b of cs.openRead(d, { start: 200 })) tail.push(b as Buffer);
      assert.deepEqual(Buffer.concat(tail), data.subarray(200));
    }
    const listed: string[] = [];
    for await (const b of cs.list()) listed.push(b.digest);
    assert.equal(listed.length, 4);
    // the ingest area is empty once everything is committed
    assert.deepEqual(readdirSync(cs.ingestDir), []);
  });

  test('an empty blob is a blob', async () => {
    const cs = await newStore();
    const d = await cs.put(Buffer.alloc(0));
    assert.equal(d, 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal((await cs.readBytes(d)).length, 0);
  });

  test('missing blobs: info undefined, readBytes not-found, delete a no-op', async () => {
    const cs = await newStore();
    const d = sha(Buffer.from('nope'));
    assert.equal(await cs.info(d), undefined);
    await rejectsKind(cs.readBytes(d), 'not-found', 'BLOB_NOT_FOUND');
    await cs.delete(d);
  });

  test('an invalid digest is refused before a path is built from it', async () => {
    const cs = await newStore();
    for (const bad of ['sha256:../../etc/passwd', 'sha256:' + 'A'.repeat(64), 'md5:abc']) {
      await assert.rejects(cs.info(bad as never));
      assert.throws(() => cs.path(bad as never));
    }
  });

  test('readBytes refuses a blob above the size limit', async () => {
    const cs = await newStore();
    const d = await cs.put(genBytes('big', 4096));
    await rejectsKind(cs.readBytes(d, 1024), 'resource-exhausted', 'BLOB_TOO_LARGE');
  });
});

describe('content store: commit verifies size and digest', () => {
  test('wrong size → data-loss, nothing stored, the ref is free again', async () => {
    const cs = await newStore();
    const data = genBytes('ws', 1000);
    const w = await cs.writer('ws', { expected: { size: 1001 } });
    await w.write(data);
    await rejectsKind(w.commit(), 'data-loss', 'BLOB_SIZE_MISMATCH');
    assert.equal(await cs.has(sha(data)), false);
    assert.deepEqual(readdirSync(cs.blobsDir), []);
    assert.equal(existsSync(join(cs.ingestDir, 'ws')), false, 'the partial data is dropped');
    // the ref can be opened again and starts from zero
    const w2 = await cs.writer('ws', { expected: { size: 1000 } });
    assert.equal(w2.resumeOffset, 0);
    await w2.write(data);
    assert.equal((await w2.commit()).digest, sha(data));
  });

  test('wrong digest → data-loss, nothing stored under either digest', async () => {
    const cs = await newStore();
    const data = genBytes('wd', 1000);
    const other = sha(genBytes('other', 1000));
    const w = await cs.writer('wd', { expected: { digest: other, size: 1000 } });
    await w.write(data);
    await rejectsKind(w.commit(), 'data-loss', 'BLOB_DIGEST_MISMATCH');
    assert.equal(await cs.has(sha(data)), false);
    assert.equal(await cs.has(other), false);
    assert.deepEqual(readdirSync(cs.blobsDir), []);
    assert.deepEqual(readdirSync(cs.ingestDir), []);
  });

  test('more bytes than expected → data-loss on write, nothing stored', async () => {
    const cs = await newStore();
    const w = await cs.writer('long', { expected: { size: 10 } });
    await w.write(Buffer.alloc(8));
    await rejectsKind(w.write(Buffer.alloc(3)), 'data-loss', 'BLOB_TOO_LONG');
    await w.abort();
    assert.deepEqual(readdirSync(cs.blobsDir), []);
    assert.deepEqual(readdirSync(cs.ingestDir), []);
  });

  test('put with an expected digest that does not match → data-loss, nothing stored', async () => {
    const cs = await newStore();
    await rejectsKind(cs.put(Buffer.from('abc'), sha(Buffer.from('abd'))), 'data-loss', 'BLOB_DIGEST_MISMATCH');
    assert.deepEqual(readdirSync(cs.blobsDir), []);
  });
});

describe('content store: idempotence', () => {
  test('put of a present blob does not write it again (inode and mtime unchanged)', async () => {
    const cs = await newStore();
    const data = genBytes('idem', 5000);
    const d = await cs.put(data);
    const p = cs.path(d);
    const st1 = statSync(p);
    await sleep(20);
    assert.equal(await cs.put(data), d);
    assert.equal(await cs.put(data, d), d);
    const st2 = statSync(p);
    assert.equal(st2.ino, st1.ino);
    assert.equal(st2.mtimeMs, st1.mtimeMs);
    assert.equal(st2.ctimeMs, st1.ctimeMs);
  });

  test('a writer committing content that is already present leaves the stored blob alone (containerd CommitExists)', async () => {
    const cs = await newStore();
    const data = genBytes('exists', 3000);
    const d = await cs.put(data);
    const st1 = statSync(cs.path(d));
    await sleep(20);
    for (const expected of [{ digest: d }, undefined]) {
      const w = await cs.writer(`exists-${expected ? 'd' : 'nod'}`, expected ? { expected } : {});
      await w.write(data);
      assert.deepEqual(await w.commit(), { digest: d, size: 3000 });
    }
    const st2 = statSync(cs.path(d));
    assert.equal(st2.ino, st1.ino);
    assert.equal(st2.mtimeMs, st1.mtimeMs);
    assert.deepEqual(readdirSync(cs.blobsDir), [digestHex(d)]);
    assert.deepEqual(readdirSync(cs.ingestDir), []);
  });

  test('adopt of a file whose blob exists drops the file and keeps the blob', async () => {
    const cs = await newStore();
    const data = genBytes('adopt', 777);
    const d = await cs.put(data);
    const ino = statSync(cs.path(d)).ino;
    const f = join(cs.root, 'tmp-adopt');
    writeFileSync(f, data);
    await cs.adopt(f, d, data.length);
    assert.equal(existsSync(f), false);
    assert.equal(statSync(cs.path(d)).ino, ino);
    const g = join(cs.root, 'tmp-adopt2');
    writeFileSync(g, data.subarray(1));
    await rejectsKind(cs.adopt(g, sha(genBytes('x', 1)), data.length), 'data-loss', 'BLOB_SIZE_MISMATCH');
  });
});

describe('content store: one writer per ref', () => {
  test('in one process: a second writer for a held ref is unavailable; another ref is not', async () => {
    const cs = await newStore();
    const w = await cs.writer('held');
    await rejectsKind(cs.writer('held'), 'unavailable', 'INGEST_LOCKED');
    const other = await cs.writer('other');
    await other.abort();
    await w.abort();
    const again = await cs.writer('held');
    await again.abort();
  });

  test('across processes: a second process gets unavailable; with wait it waits, then resumes what the first left', async () => {
    const cs = await newStore();
    const data = genBytes('xproc', 100_000);
    const file = join(cs.root, 'src');
    writeFileSync(file, data);
    const expected = { digest: sha(data), size: data.length };
    const w = await cs.writer('shared', { expected });
    await w.write(data.subarray(0, 40_000));

    const c1 = child('open', { root: cs.root, ref: 'shared' });
    const e1 = await c1.next((e) => e.event === 'error' || e.event === 'opened');
    assert.equal(e1.event, 'error');
    assert.equal(e1.kind, 'unavailable');
    assert.equal(e1.code, 'INGEST_LOCKED');
    await c1.exit;

    const c2 = child('open', { root: cs.root, ref: 'shared', wait: true, expected, file, commit: true });
    await sleep(400);
    assert.equal(c2.events.length, 0, 'the waiting writer must not get the ref while it is held');
    assert.equal(c2.proc.exitCode, null);
    await w.suspend(); // keep the 40 000 bytes for a resume
    const opened = await c2.next((e) => e.event === 'opened' || e.event === 'error');
    assert.equal(opened.event, 'opened', JSON.stringify(opened));
    assert.equal(opened.resumeOffset, 40_000, 'the second writer resumes from what the first wrote');
    const done = await c2.next((e) => e.event === 'committed' || e.event === 'error');
    assert.equal(done.event, 'committed', JSON.stringify(done));
    assert.equal(done.digest, expected.digest);
    await c2.exit;
    assert.deepEqual(await cs.readBytes(expected.digest), data);
    assert.deepEqual(readdirSync(cs.ingestDir), []);
  });

  test('across processes: a writer waiting on a ref gets it after the holder commits (and finds the blob stored)', async () => {
    const cs = await newStore();
    const data = genBytes('xcommit', 50_000);
    const file = join(cs.root, 'src');
    writeFileSync(file, data);
    const expected = { digest: sha(data), size: data.length };
    for (let round = 0; round < 5; round++) {
      const ref = `commit-${round}`;
      const w = await cs.writer(ref, { expected });
      const c = child('open', { root: cs.root, ref, wait: true, expected, file, commit: true });
      await sleep(150 + round * 30);
      await w.write(data);
      await w.commit(); // removes the ingest directory the waiter is polling in
      const ev = await c.next((e) => e.event === 'committed' || e.event === 'error');
      assert.equal(ev.event, 'committed', `round ${round}: ${JSON.stringify(ev)} ${c.stderr()}`);
      assert.equal(ev.digest, expected.digest);
      await c.exit;
      if (round < 4) await cs.delete(expected.digest);
    }
    assert.deepEqual(assertBlobsMatchNames(cs), [digestHex(expected.digest)]);
    assert.deepEqual(readdirSync(cs.ingestDir), []);
  });

  test('a ref directory removed while the next writer makes it (a commit of the same ref removing it at that moment) is made again, never an ENOENT', async () => {
    // The race the cross-process test above met once on a loaded machine: mkdir -p of the ref
    // directory finds it there (EEXIST), the committing writer removes it, and mkdir's check
    // that it is a directory then fails with ENOENT. Here another task removes the empty
    // directory as fast as it can, as a commit does, while writers take and leave the ref.
    const cs = await newStore();
    const dir = join(cs.ingestDir, 'vanish');
    let stop = false;
    let removed = 0;
    const churn = (async () => {
      while (!stop) {
        // only an empty directory goes (a held ref has its lock file in it), as in a commit
        if (await rmdir(dir).then(() => true, () => false)) removed++;
        await mkdir(dir).catch(() => {});
      }
    })();
    try {
      for (let i = 0; i < 1000; i++) {
        const w = await cs.writer('vanish');
        await w.abort();
      }
    } finally {
      stop = true;
      await churn;
    }
    assert.ok(removed > 100, `the directory was removed ${removed} times`);
  });

  test('a lock left by a dead process is broken by the next writer, and by only one of several racing writers', async () => {
    const cs = await newStore();
    for (let round = 0; round < 6; round++) {
      const ref = `race-${round}`;
      // a holder that dies holding the ref
      const holder = child('open', { root: cs.root, ref, hold: true });
      await holder.next((e) => e.event === 'opened');
      await killHard(holder);
      const at = Date.now() + 600;
      const racers = Array.from({ length: 4 }, () => child('race', { root: cs.root, ref, at, holdMs: 150 }));
      await Promise.all(racers.map((r) => r.exit));
      const got = racers.map((r) => r.events.find((e) => e.event === 'held' || e.event === 'error')!);
      const holders = got.filter((e) => e.got === true) as { start: number; end: number }[];
      assert.ok(holders.length >= 1, `round ${round}: nobody took the stale ref: ${JSON.stringify(got)}`);
      // no two processes held the ref at the same time
      holders.sort((a, b) => a.start - b.start);
      for (let i = 1; i < holders.length; i++) {
        assert.ok(holders[i]!.start >= holders[i - 1]!.end, `round ${round}: two processes held ${ref} at once: ${JSON.stringify(holders)}`);
      }
      for (const e of got.filter((e) => e.got !== true)) assert.equal(e.kind, 'unavailable', JSON.stringify(e));
    }
  });
});

describe('content store: resume', () => {
  test('a writer killed mid-write leaves data the next writer re-hashes and continues (resumeOffset)', async () => {
    const cs = await newStore();
    const data = genBytes('resume', 300_000);
    const file = join(cs.root, 'src');
    writeFileSync(file, data);
    const expected = { digest: sha(data), size: data.length };
    const c = child('open', { root: cs.root, ref: 'layer', expected, file, upTo: 123_456, hold: true });
    const wrote = await c.next((e) => e.event === 'wrote');
    assert.equal(wrote.offset, 123_456);
    await killHard(c);

    const w = await cs.writer('layer', { expected });
    assert.equal(w.resumeOffset, 123_456);
    await w.write(data.subarray(w.resumeOffset));
    const info = await w.commit();
    assert.deepEqual(info, expected);
    assert.deepEqual(await cs.readBytes(expected.digest, 1 << 20), data);
    assert.deepEqual(readdirSync(cs.ingestDir), []);
  });

  test('a suspended writer in the same process resumes too (containerd Resume)', async () => {
    const cs = await newStore();
    const data = genBytes('cb', 256);
    const expected = { digest: sha(data), size: 256 };
    const w1 = await cs.writer('cb', { expected });
    await w1.write(data.subarray(0, 128));
    await w1.suspend();
    const w2 = await cs.writer('cb', { expected });
    assert.equal(w2.resumeOffset, 128);
    await w2.write(data.subarray(128));
    assert.deepEqual(await w2.commit(), expected);
  });

  test('partial data longer than the expected size is discarded, not trusted', async () => {
    const cs = await newStore();
    const data = genBytes('trunc', 1000);
    const w1 = await cs.writer('t');
    await w1.write(genBytes('junk', 1500));
    await w1.suspend();
    const w2 = await cs.writer('t', { expected: { digest: sha(data), size: 1000 } });
    assert.equal(w2.resumeOffset, 0);
    await w2.write(data);
    assert.equal((await w2.commit()).digest, sha(data));
  });

  test('a corrupted partial file is detected on commit; nothing is stored; a fresh write then succeeds', async () => {
    const cs = await newStore();
    const data = genBytes('corrupt-partial', 200_000);
    const file = join(cs.root, 'src');
    writeFileSync(file, data);
    const expected = { digest: sha(data), size: data.length };
    const c = child('open', { root: cs.root, ref: 'cp', expected, file, upTo: 100_000, hold: true });
    await c.next((e) => e.event === 'wrote');
    await killHard(c);
    // flip one byte in what the dead writer left
    const partial = join(cs.ingestDir, 'cp', 'data');
    const fd = openSync(partial, 'r+');
    writeSync(fd, Buffer.from([data[5000]! ^ 0xff]), 0, 1, 5000);
    closeSync(fd);

    const w = await cs.writer('cp', { expected });
    assert.equal(w.resumeOffset, 100_000);
    await w.write(data.subarray(w.resumeOffset));
    await rejectsKind(w.commit(), 'data-loss', 'BLOB_DIGEST_MISMATCH');
    assert.equal(await cs.has(expected.digest), false);
    assert.deepEqual(readdirSync(cs.blobsDir), []);
    assert.equal(existsSync(partial), false, 'the corrupt partial is dropped');
    assert.equal(await writeResumable(cs, 'cp', data), expected.digest);
    assert.deepEqual(await cs.readBytes(expected.digest, 1 << 20), data);
  });

  test('put after a put that was killed mid-write succeeds (the partial is resumed or redone, never appended to)', async () => {
    const cs = await newStore();
    const data = genBytes('put-killed', 150_000);
    const file = join(cs.root, 'src');
    writeFileSync(file, data);
    const d = sha(data);
    // what a put killed mid-write leaves: ingest/put-<hex>/data with a prefix, a dead lock
    const c = child('open', { root: cs.root, ref: `put-${digestHex(d)}`, expected: { digest: d, size: data.length }, file, upTo: 60_000, hold: true });
    await c.next((e) => e.event === 'wrote');
    await killHard(c);
    assert.equal(await cs.put(data), d);
    assert.deepEqual(await cs.readBytes(d, 1 << 20), data);
    // and when that prefix is corrupt, put still stores the right bytes
    await cs.delete(d);
    const c2 = child('open', { root: cs.root, ref: `put-${digestHex(d)}`, expected: { digest: d, size: data.length }, file, upTo: 60_000, hold: true });
    await c2.next((e) => e.event === 'wrote');
    await killHard(c2);
    const fd = openSync(join(cs.ingestDir, `put-${digestHex(d)}`, 'data'), 'r+');
    writeSync(fd, Buffer.from('XXXX'), 0, 4, 10);
    closeSync(fd);
    assert.equal(await cs.put(data), d);
    assert.deepEqual(await cs.readBytes(d, 1 << 20), data);
    assert.deepEqual(readdirSync(cs.ingestDir), []);
  });
});

describe('content store: corruption, deletion, sweep, modes', () => {
  test('readBytes detects a blob corrupted on disk', async () => {
    const cs = await newStore();
    const data = Buffer.from(JSON.stringify({ schemaVersion: 2, hello: 'world' }));
    const d = await cs.put(data);
    const p = cs.path(d);
    const fd = openSync(p, 'r+');
    writeSync(fd, Buffer.from('H'), 0, 1, 17);
    closeSync(fd);
    await rejectsKind(cs.readBytes(d), 'data-loss', 'BLOB_CORRUPT');
    await rejectsKind(cs.readJson(d), 'data-loss', 'BLOB_CORRUPT');
    // truncated on disk
    writeFileSync(p, data.subarray(0, 5));
    await rejectsKind(cs.readBytes(d), 'data-loss', 'BLOB_CORRUPT');
  });

  test('delete renames the blob out of the namespace before removing it; open readers keep their bytes', async () => {
    const cs = await newStore();
    const data = genBytes('del', 64 << 10);
    const d = await cs.put(data);
    const name = digestHex(d);
    const seen: string[] = [];
    const watcher = watch(cs.blobsDir, (_ev, f) => {
      if (f) seen.push(f.toString());
    });
    const reader = cs.openRead(d);
    await new Promise<void>((r) => reader.once("readable", () => r()));
    try {
      await cs.delete(d);
      await sleep(100); // let inotify deliver
    } finally {
      watcher.close();
    }
    assert.ok(seen.includes(name), `events: ${JSON.stringify(seen)}`);
    const graves = seen.filter((f) => f.startsWith('.tmp-') && f.includes(name));
    assert.ok(graves.length > 0, `the blob was unlinked in place instead of renamed first: ${JSON.stringify(seen)}`);
    assert.equal(await cs.has(d), false);
    assert.deepEqual(readdirSync(cs.blobsDir), [], 'no grave is left behind');
    const got: Buffer[] = [];
    for await (const b of reader) got.push(b as Buffer);
    assert.deepEqual(Buffer.concat(got), data, 'a reader that had the blob open still reads it whole');
    await cs.delete(d); // deleting a missing blob is a no-op
  });

  test('sweep removes temp leftovers and dead empty ingests, keeps resumable ingests and live writers', async () => {
    const cs = await newStore();
    const keep = await cs.put(Buffer.from('kept blob'));
    // leftovers of an interrupted delete/adopt
    writeFileSync(join(cs.blobsDir, `.tmp-${digestHex(keep)}-123-abcd`), 'grave');
    writeFileSync(join(cs.blobsDir, '.tmp-other-1-ffff'), 'junk');
    // a resumable ingest whose writer died
    const data = genBytes('sweep', 80_000);
    const file = join(cs.root, 'src');
    writeFileSync(file, data);
    const expected = { digest: sha(data), size: data.length };
    const dead = child('open', { root: cs.root, ref: 'resumable', expected, file, upTo: 30_000, hold: true });
    await dead.next((e) => e.event === 'wrote');
    await killHard(dead);
    // an ingest that never got data (killed right after taking the ref)
    mkdirSync(join(cs.ingestDir, 'empty'), { mode: 0o700 });
    writeFileSync(join(cs.ingestDir, 'empty', 'lock'), '999999999 1\n');
    // a live writer in another process
    const live = child('open', { root: cs.root, ref: 'live', file, upTo: 1000, hold: true });
    await live.next((e) => e.event === 'wrote');

    await cs.sweep();

    assert.deepEqual(readdirSync(cs.blobsDir), [digestHex(keep)]);
    assert.deepEqual(readdirSync(cs.ingestDir).sort(), ['live', 'resumable']);
    assert.ok(existsSync(join(cs.ingestDir, 'live', 'lock')), 'a live writer keeps its lock');
    assert.deepEqual(await cs.readBytes(keep), Buffer.from('kept blob'));
    // the resumable ingest is resumed by the next writer
    const w = await cs.writer('resumable', { expected });
    assert.equal(w.resumeOffset, 30_000);
    await w.write(data.subarray(30_000));
    assert.deepEqual(await w.commit(), expected);
    live.proc.stdin!.end();
    await live.exit;
  });

  test('blobs, ingests and their directories are not readable by other users', async () => {
    const cs = await newStore();
    const old = process.umask(0); // even with a permissive umask
    try {
      const cs2 = new ContentStore(join(tempDir(), 'root'));
      await cs2.init();
      for (const store of [cs, cs2]) {
        const d = await store.put(genBytes('mode', 100));
        const w = await store.writer('partial');
        await w.write(Buffer.from('partial'));
        await w.suspend();
        const fromWriter = await writeResumable(store, 'w', genBytes('mode2', 1000));
        for (const p of [store.blobsDir, join(store.root, 'blobs'), store.ingestDir, join(store.ingestDir, 'partial'), join(store.ingestDir, 'partial', 'data'), store.path(d), store.path(fromWriter)]) {
          const mode = lstatSync(p).mode & 0o777;
          assert.equal(mode & 0o077, 0, `${p} has mode ${mode.toString(8)}`);
        }
      }
    } finally {
      process.umask(old);
    }
  });
});

describe('content store: concurrency and crashes', () => {
  test('two processes writing the same content both succeed; the blob exists once with the right bytes', async () => {
    const cs = await newStore();
    for (let round = 0; round < 4; round++) {
      const data = genBytes(`same-${round}`, 2 << 20);
      const file = join(cs.root, `src-${round}`);
      writeFileSync(file, data);
      const d = sha(data);
      // put (same ref in both) and writers under different refs
      const a = child('put', { root: cs.root, file });
      const b = child('put', { root: cs.root, file });
      const c = child('open', { root: cs.root, ref: `x-${round}`, file, commit: true, expected: { digest: d, size: data.length } });
      const e = child('open', { root: cs.root, ref: `y-${round}`, file, commit: true });
      const results = await Promise.all([a, b, c, e].map((x) => x.next((ev) => ev.event === 'put' || ev.event === 'committed' || ev.event === 'error')));
      for (const r of results) assert.notEqual(r.event, 'error', `round ${round}: ${JSON.stringify(results)}`);
      for (const r of results) assert.equal(r.digest, d);
      await Promise.all([a, b, c, e].map((x) => x.exit));
      assert.deepEqual(await cs.readBytes(d, 4 << 20), data);
    }
    assert.equal(assertBlobsMatchNames(cs).length, 4);
    assert.deepEqual(readdirSync(cs.ingestDir), []);
  });

  test('kill -9 at random moments while a process writes many blobs: every stored blob matches its name, and a rerun completes them all', async (tc) => {
    const cs = await newStore();
    const seed = 'many-' + process.pid;
    const count = 24;
    // calibrate: how long a full run takes on this machine
    const cal = await newStore();
    const t0 = Date.now();
    const full = child('many', { root: cal.root, count, seed: seed + '-cal' });
    await full.next((e) => e.event === 'done', 60000);
    await full.exit;
    const span = Date.now() - t0;

    let killedMidway = 0;
    const trials = 24;
    for (let t = 0; t < trials; t++) {
      const c = child('many', { root: cs.root, count, seed });
      const delay = Math.floor(((t + Math.random()) / trials) * span);
      await sleep(delay);
      await killHard(c);
      if (!c.events.some((e) => e.event === 'done')) killedMidway++;
      // after every crash: no blob whose bytes differ from its name
      assertBlobsMatchNames(cs);
      // nothing half-written is visible as a blob: every present blob is one of ours, whole
      const want = new Map(Array.from({ length: count }, (_, i) => [digestHex(sha(manyBlob(seed, i))), i]));
      for (const name of assertBlobsMatchNames(cs)) assert.ok(want.has(name), `unexpected blob ${name}`);
      if (t % 6 === 5) await cs.sweep(); // start-up repair between some crashes
    }
    tc.diagnostic(`${trials} kills over a ${span} ms run: ${killedMidway} landed before the run finished; ${assertBlobsMatchNames(cs).length} of ${count} blobs stored by then`);
    assert.ok(killedMidway >= trials / 2, `only ${killedMidway} of ${trials} kills landed mid-run`);

    // the next run resumes and completes; then every blob is there and correct
    await cs.sweep();
    const last = child('many', { root: cs.root, count, seed });
    await last.next((e) => e.event === 'done' || e.event === 'error', 60000);
    await last.exit;
    assert.ok(last.events.some((e) => e.event === 'done'), JSON.stringify(last.events.filter((e) => e.event === 'error')) + last.stderr());
    for (let i = 0; i < count; i++) {
      const data = manyBlob(seed, i);
      assert.deepEqual(await cs.readBytes(sha(data), 1 << 20), data, `blob ${i}`);
    }
    assert.equal(assertBlobsMatchNames(cs).length, count);
    await cs.sweep();
    assert.deepEqual(readdirSync(cs.ingestDir), []);
    assert.deepEqual(readdirSync(cs.blobsDir).filter((n) => n.startsWith('.tmp-')), []);
  });
});
