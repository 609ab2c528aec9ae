/**
 * docs/RELIABILITY.md item 35 (issue 9.5): `load` and `import` of a stream that never ends, or that
 * declares more than the disk holds, are refused quickly with a clear error — nothing left
 * in tmp/, the store unchanged. `timeout 10 layerbox load < /dev/zero` used to spool 2.9 GB
 * into <root>/tmp in 10 s.
 *
 * The store lives on its own 256 MiB tmpfs, so "before it fills the disk" is checked on a
 * disk that a runaway stream would fill in a second.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, statfsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { once } from 'node:events';
import { BIN, cliEnv, lb, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { encodeHeader, paddingFor } from '../archive/tar/writer.js';
import type { TarHeader } from '../archive/tar/header.js';

const MiB = 1024 * 1024;
const FS_SIZE = 256 * MiB;

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

type Source = { fd: string } | { gen: () => AsyncGenerator<Buffer> };

/** A header declaring `size` bytes, then `fill` bytes without end. */
function declared(size: number, fill: 'zeros' | 'random'): Source {
  return {
    async *gen() {
      yield encodeHeader(fileHeader('huge', size));
      const zeros = Buffer.alloc(MiB);
      for (;;) yield fill === 'zeros' ? zeros : randomBytes(MiB);
    },
  };
}

/** Valid tar entries of 1 MiB of random bytes each (holes cannot save the disk), forever. */
const endlessEntries: Source = {
  async *gen() {
    for (let i = 0; ; i++) yield Buffer.concat([encodeHeader(fileHeader(`f${i}`, MiB)), randomBytes(MiB), paddingFor(MiB)]);
  },
};

interface Run {
  code: number;
  stderr: string;
  ms: number;
  /** bytes the command took from its stdin (generators only) */
  fed: number;
}

/** Runs layerbox with `src` on its stdin; gives up (and fails) after 60 s. */
async function runWith(root: string, args: string[], src: Source): Promise<Run> {
  const t0 = performance.now();
  let fd: number | undefined;
  if ('fd' in src) fd = openSync(src.fd, 'r');
  const child = spawn(process.execPath, [BIN, ...args], { env: cliEnv(root), stdio: [fd ?? 'pipe', 'ignore', 'pipe'] });
  if (fd !== undefined) closeSync(fd);
  const err: Buffer[] = [];
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  const exited = once(child, 'close') as Promise<[number | null, string | null]>;
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  let fed = 0;
  try {
    if ('gen' in src) {
      const stdin = child.stdin!;
      let gone = false;
      stdin.on('error', () => (gone = true)); // EPIPE once the command stops reading
      void exited.then(() => (gone = true));
      for await (const chunk of src.gen()) {
        if (gone || stdin.destroyed) break;
        fed += chunk.length;
        if (!stdin.write(chunk)) {
          await new Promise<void>((r) => {
            const done = () => r();
            stdin.once('drain', done);
            stdin.once('close', done);
            stdin.once('error', done);
            void exited.then(done);
          });
        }
      }
      stdin.destroy();
    }
  } finally {
    var [code, signal] = await exited; // eslint-disable-line no-var
    clearTimeout(killer);
  }
  return { code: code ?? (signal ? 128 : -1), stderr: Buffer.concat(err).toString(), ms: performance.now() - t0, fed };
}

describe('docs/RELIABILITY.md item 35: load and import of endless or oversized streams', () => {
  const t = tempRoot('lb-streams-');
  const root = t.root;
  let baseline: string;
  const state = () =>
    JSON.stringify({
      images: lb(root, ['images', '-qa', '--no-trunc']).stdout,
      snapshots: readdirSync(join(root, 'snapshots')).sort(),
      blobs: readdirSync(join(root, 'blobs', 'sha256')).sort(),
    });

  before(() => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${FS_SIZE},mode=0700`, 'lb-streams', root]);
    const r = lb(root, ['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
    assert.equal(r.code, 0, r.stderr);
    baseline = state();
  });
  after(() => {
    execFileSync('umount', [root]);
    t.cleanup();
  });

  const cases: { what: string; src: Source; args?: string[]; load: RegExp; import: RegExp }[] = [
    {
      what: '/dev/zero',
      src: { fd: '/dev/zero' },
      load: /Error: the input is an empty tar archive \(or only zeros\): it holds no image/,
      import: /Error: the input is not a valid tar archive: tar: more than 16777216 bytes after the end-of-archive marker, and no entry before it: this is not a tar archive \(a stream of zeros\?\)/,
    },
    {
      what: '/dev/urandom',
      src: { fd: '/dev/urandom' },
      load: /Error: the input is not a valid image archive: tar: invalid header checksum at byte 0/,
      import: /Error: the input is not a valid tar archive: tar: invalid header checksum at byte 0/,
    },
    {
      what: 'a tar header declaring a 1 PiB entry, then zeros without end',
      src: declared(1024 ** 5, 'zeros'),
      load: /Error: the archive's entry "huge" declares 1125899906842624 bytes, more than the 68719476736-byte layer quota/,
      import: /Error: layer expands beyond the 68719476736-byte quota \(a decompression bomb\?\): "huge" declares 1125899906842624 bytes/,
    },
    {
      what: 'a tar header declaring 1 GiB (within --max-layer-size, beyond the disk), then random bytes without end',
      src: declared(1024 ** 3, 'random'),
      load: /Error: the archive's entry "huge" declares 1073741824 bytes, more than the \d+ bytes the store can take for it \(\d+ bytes free in .*\/tmp, half of it kept for unpacking, \d+ kept free\)/,
      import: /Error: extracting stdin needs 1073741824 bytes, with \d+ bytes kept free: no space left on device \(\/.*\): free space on that file system/,
    },
    {
      what: 'valid-looking tar entries (1 MiB of random bytes each) that never end',
      src: endlessEntries,
      load: /Error: the archive is larger than the \d+ bytes the store can take for it .*: an endless stream\?/,
      import: /Error: extracting stdin stopped, with \d+ bytes kept free: no space left on device \(\/.*\): free space on that file system/,
    },
    {
      what: 'valid-looking tar entries that never end, with --max-layer-size 32m',
      src: endlessEntries,
      args: ['--max-layer-size', '32m'],
      load: /Error: the archive is larger than the \d+ bytes the store can take for it/,
      import: /Error: layer expands beyond the 33554432-byte quota/,
    },
  ];

  for (const c of cases) {
    for (const cmd of ['load', 'import'] as const) {
      test(`${cmd} < ${c.what}: refused quickly with a clear error, nothing left in tmp/, the store unchanged`, async (tc) => {
        const args = [...(c.args ?? []), ...(cmd === 'load' ? ['load'] : ['import', '-', 'streams/never:1'])];
        const r = await runWith(root, args, c.src);
        const { bavail, bsize } = statfsSync(root);
        tc.diagnostic(`${r.ms.toFixed(0)} ms, ${r.fed ? `${(r.fed / MiB).toFixed(0)} MiB fed, ` : ''}${((bavail * bsize) / MiB).toFixed(0)} MiB free after`);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, c[cmd]);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
        assert.ok(r.ms < 20_000, `took ${r.ms.toFixed(0)} ms`);
        assert.ok(r.fed < FS_SIZE, `${r.fed} bytes were taken in: it did not stop before the disk was full`);
        assert.deepEqual(readdirSync(join(root, 'tmp')), [], 'nothing left in tmp/');
        assert.equal(state(), baseline, 'the store is unchanged');
      });
    }
  }

  test('afterwards the store works: system check is clean, and a real archive still loads from stdin', async () => {
    const c = lb(root, ['system', 'check']);
    assert.equal(c.code, 0, c.stdout + c.stderr);
    const r = await runWith(root, ['load'], { fd: join(FIXTURES, 'busybox-changed.docker.tar') });
    assert.equal(r.code, 0, r.stderr);
    assert.match(lb(root, ['images']).stdout, /bench\/busybox\s+changed/);
    assert.deepEqual(readdirSync(join(root, 'tmp')), []);
  });
});
