/**
 * A store on a small ext4 file system (a loop device, 1 KiB blocks as mkfs gives small
 * file systems): a container that wrote half the disk is committed and restarted without a
 * copy or any extra space; ENOSPC at random points of commit, start, pull and load is rolled
 * back with Docker's message; on a full disk the commands that free space and those that
 * only read keep working, and none dies of SIGBUS.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, cliEnv, lb, lbp, tempRoot, type CliResult } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { layerTar, randomLayer, writeDockerArchive } from '../testing/images.js';
import { loopFs } from '../testing/loopfs.js';
import { storeOrphans, storeUsage } from '../testing/store.js';
import { startRegistry, type TestRegistry } from '../registry/testing/registries.js';

const disk = loopFs(55);
const root = join(disk.mnt, 'store');
const work = mkdtempSync(join(tmpdir(), 'lb-space-work-'));
const BB = 'bench/busybox:latest';
const MiB = 1 << 20;

function ok(args: string[]): string {
  const r = lb(root, args);
  assert.equal(r.code, 0, `layerbox ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Never a JavaScript stack, never a raw SQLite error, never a signal (SIGBUS is 135). */
function clean(r: CliResult, what: string): void {
  assert.notEqual(r.code, 135, `${what}: killed by SIGBUS`);
  assert.doesNotMatch(r.stderr, /^\s+at .*:\d+:\d+\)?$/m, `${what}: a stack trace:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /SqliteError/, `${what}: a raw SQLite error:\n${r.stderr}`);
}

/** Docker's wording: `… no space left on device (<path>): free space …`. */
function noSpace(r: CliResult, what: string): void {
  clean(r, what);
  assert.notEqual(r.code, 0, `${what}: succeeded`);
  assert.match(r.stderr, /no space left on device \(\/[^)]*\): free space on that file system/, `${what}: not an ENOSPC message:\n${r.stderr}`);
}

/** On a (nearly) full disk: the commands that only read and those that free space work. */
function freeingWorks(what: string, all = false): void {
  for (const args of all ? [['ps', '-a'], ['images'], ['system', 'check'], ['system', 'df']] : [['ps', '-a'], ['system', 'check']]) {
    const r = lb(root, args);
    clean(r, `${what}: ${args.join(' ')}`);
    assert.equal(r.code, 0, `${what}: ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  }
}

const ids = () => ok(['ps', '-aq', '--no-trunc']).split('\n').filter(Boolean);
const images = () => ok(['images', '-qa', '--no-trunc']).split('\n').filter(Boolean).sort();

/**
 * ENOSPC at random points of `op`: the disk is filled to leave each of `leaves` bytes (a
 * random amount within each range) before it runs. A failure must be Docker's ENOSPC error
 * and leave the store as it was; `intact` checks nothing was lost, `done` checks and undoes
 * a success.
 */
async function inject(
  name: string,
  leaves: [number, number][],
  o: { prep: () => string | Promise<string>; op: (ctx: string) => string[]; intact: (ctx: string) => void; done: (ctx: string) => void },
): Promise<{ failed: number; succeeded: number }> {
  let failed = 0;
  let succeeded = 0;
  for (const [lo, hi] of leaves) {
    const leave = Math.floor(lo + Math.random() * (hi - lo));
    const ctx = await o.prep();
    const usage = storeUsage(root);
    const imgs = images();
    disk.fill(leave);
    const r = await lbp(root, o.op(ctx));
    const what = `${name} with ${leave} bytes free`;
    clean(r, what);
    freeingWorks(what);
    disk.unfill();
    if (r.code === 0) {
      succeeded++;
      o.done(ctx);
      continue;
    }
    failed++;
    noSpace(r, what);
    // rolled back: no image, layer, snapshot, file or mount of the failed command is left
    assert.deepEqual(images(), imgs, `${what}: an image was left`);
    assert.deepEqual(storeOrphans(root, ids()), [], `${what}: orphans`);
    const now = storeUsage(root);
    assert.deepEqual(now.paths, usage.paths, `${what}: files were left`);
    const changed = Object.keys(now.sizes).filter((k) => now.sizes[k] !== usage.sizes[k]).map((k) => `${k}: ${usage.sizes[k]} -> ${now.sizes[k]}`);
    assert.equal(now.bytes, usage.bytes, `${what}: space was not given back (${changed.join(', ')})`);
    o.intact(ctx);
  }
  return { failed, succeeded };
}

let registry: TestRegistry | undefined;

before(() => {
  ok(['load', '-q', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
});

after(async () => {
  const left = lb(root, ['ps', '-aq']).stdout.split('\n').filter(Boolean);
  if (left.length) lb(root, ['rm', '-f', ...left]);
  await registry?.stop();
  disk.cleanup();
  rmSync(work, { recursive: true, force: true });
});

test('a 55 MB store: a container that wrote 30 MB is committed and restarted with no copy and no extra space; on the full disk ps, rm, rmi, system check and system prune work', () => {
  const script = 'test -e /big || dd if=/dev/urandom of=/big bs=1M count=30 2>/dev/null; sha256sum /big > /sum; echo run >> /runs';
  ok(['run', '--name', 'writer', '--network', 'none', BB, 'sh', '-c', script]);
  const f0 = disk.free();
  ok(['commit', 'writer', 'test/writer:1']);
  const f1 = disk.free();
  assert.ok(f0 - f1 < MiB, `commit took ${f0 - f1} bytes`);
  // the restart continues on the committed layer: nothing is copied
  ok(['start', '-a', 'writer']);
  const f2 = disk.free();
  assert.ok(f1 - f2 < MiB, `the restart took ${f1 - f2} bytes`);
  // nothing is lost: the image has the file, the container both runs
  assert.equal(ok(['run', '--rm', '--network', 'none', 'test/writer:1', 'sh', '-c', 'sha256sum /big | cmp - /sum && cat /runs']), 'run\n');
  const exported = spawnSync(process.execPath, [BIN, 'export', 'writer'], { env: cliEnv(root), maxBuffer: 64 * MiB });
  assert.equal(exported.status, 0, exported.stderr.toString());
  const files = execFileSync('tar', ['-xO', '-f', '-', 'runs'], { input: exported.stdout }).toString();
  assert.equal(files, 'run\nrun\n');
  assert.deepEqual(ok(['diff', 'writer']).split('\n').filter(Boolean).sort(), ['A /big', 'A /runs', 'A /sum']);
  assert.match(ok(['system', 'check']), /no problems/);

  // the disk full to the last block
  disk.fill(0);
  freeingWorks('full disk', true);
  noSpace(lb(root, ['run', '--rm', '--network', 'none', BB, 'true']), 'run on the full disk');
  // rmi -f of the committed image: the container keeps its layer alive
  ok(['rmi', '-f', 'test/writer:1']);
  assert.equal(lb(root, ['inspect', 'writer']).code, 0);
  ok(['rm', '-f', 'writer']);
  ok(['system', 'prune', '-f', '-a']);
  assert.match(ok(['system', 'check']), /no problems/);
  disk.unfill();
  assert.deepEqual(images(), []);
  assert.deepEqual(storeOrphans(root, []), []);
  // the 30 MB of the layer, the image and the container are given back
  assert.ok(disk.free() > f0 + 28 * MiB, `only ${disk.free()} bytes free after removing everything (${f0} before the commit)`);
  ok(['load', '-q', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
});

test('ENOSPC at random points of commit (running and stopped), start, pull and load is rolled back, with Docker\'s message; the freeing commands work on that disk', async () => {
  // commit of a running container: its 6 MB upper dir is copied
  const running = await inject(
    'commit of a running container',
    [[0, 64 << 10], [300 << 10, 1.5 * MiB], [1.5 * MiB, 3 * MiB], [3 * MiB, 5 * MiB], [9 * MiB, 10 * MiB]],
    {
      prep: async () => {
        const id = ok(['run', '-d', '--network', 'none', BB, 'sh', '-c', 'dd if=/dev/urandom of=/data bs=1M count=6 2>/dev/null; sha256sum /data > /sum; touch /ready; sleep 1000']).trim();
        const upper = JSON.parse(ok(['inspect', id]))[0].GraphDriver.Data.UpperDir as string;
        for (let i = 0; i < 200 && !existsSync(join(upper, 'ready')); i++) await sleep(25);
        return id;
      },
      op: (id) => ['commit', id, 'test/running:1'],
      intact: (id) => {
        assert.equal(lb(root, ['exec', id, 'sh', '-c', 'sha256sum /data | cmp - /sum']).code, 0, 'the container\'s data is intact');
        ok(['rm', '-f', id]);
      },
      done: (id) => {
        assert.equal(ok(['run', '--rm', '--network', 'none', 'test/running:1', 'sh', '-c', 'sha256sum /data | cmp - /sum && echo same']), 'same\n');
        ok(['rm', '-f', id]);
        ok(['rmi', 'test/running:1']);
      },
    },
  );
  // commit of a stopped container: hard links, no data copied
  const stopped = await inject(
    'commit of a stopped container',
    [[0, 64 << 10], [260 << 10, 400 << 10], [400 << 10, 800 << 10], [1 * MiB, 2 * MiB]],
    {
      prep: () => {
        const id = ok(['create', '--network', 'none', BB, 'sh', '-c', 'test -e /data || { dd if=/dev/urandom of=/data bs=1M count=2 2>/dev/null; sha256sum /data > /sum; }; sha256sum /data | cmp - /sum']).trim();
        ok(['start', '-a', id]);
        return id;
      },
      op: (id) => ['commit', id, 'test/stopped:1'],
      intact: (id) => {
        ok(['start', '-a', id]);
        ok(['rm', id]);
      },
      done: (id) => {
        ok(['start', '-a', id]);
        ok(['run', '--rm', '--network', 'none', 'test/stopped:1']);
        ok(['rm', id]);
        ok(['rmi', 'test/stopped:1']);
      },
    },
  );
  // start: the bundle, the etc files, conmon's files, and the anonymous volume it fills from
  // the image (2 MB at /data)
  const vol = ok(['run', '--network', 'none', BB, 'sh', '-c', 'mkdir /data; dd if=/dev/urandom of=/data/blob bs=1M count=2 2>/dev/null; sha256sum /data/blob > /sum']).trim() || ok(['ps', '-lq']).trim();
  ok(['commit', vol, 'test/vol:1']);
  ok(['rm', vol]);
  ok(['rm', '-v', ok(['create', '-v', '/data', 'test/vol:1']).trim()]); // the volumes directory exists from here on
  const start = await inject(
    'start',
    [[0, 32 << 10], [260 << 10, 700 << 10], [700 << 10, 1.3 * MiB], [1.3 * MiB, 2 * MiB], [4 * MiB, 5 * MiB]],
    {
      prep: () => ok(['create', '-v', '/data', 'test/vol:1', 'sh', '-c', 'sha256sum /data/blob | cmp - /sum && echo same']).trim(),
      op: (id) => ['start', id],
      intact: (id) => {
        assert.equal(ok(['start', '-a', id]), 'same\n');
        ok(['rm', '-v', id]);
      },
      done: (id) => {
        ok(['rm', '-f', '-v', id]);
      },
    },
  );
  ok(['rmi', 'test/vol:1']);
  // pull and load of an image with a 5 MB layer
  const t = tempRoot('lb-space-src-');
  registry = await startRegistry({ auth: 'none' });
  const archive = join(work, 'big.tar');
  const ref = `${registry.host}/space/big:1`;
  try {
    writeDockerArchive(archive, [layerTar(randomLayer('big', 20, 256 << 10))], ref);
    assert.equal(lb(t.root, ['load', '-q', '-i', archive]).code, 0);
    const p = await lbp(t.root, ['push', ref]);
    assert.equal(p.code, 0, p.stderr);
  } finally {
    t.cleanup();
  }
  const big = {
    prep: () => '',
    intact: () => assert.equal(lb(root, ['image', 'inspect', ref]).code, 1, 'no image half stored'),
    done: () => {
      const path = ok(['image', 'mount', ref]).trim();
      try {
        assert.equal(readdirSync(join(path, 'big')).length, 20);
      } finally {
        ok(['image', 'unmount', ref]);
      }
      ok(['rmi', ref]);
    },
  };
  // the last leaves room for the layer (5 MiB), its download (pull keeps the blob while it unpacks) and the 5% the extractor keeps free
  const leaves: [number, number][] = [[0, 64 << 10], [300 << 10, 1.5 * MiB], [1.5 * MiB, 4.5 * MiB], [14 * MiB, 15 * MiB]];
  const pull = await inject('pull', leaves, { ...big, op: () => ['pull', '-q', ref] });
  const load = await inject('load', leaves, { ...big, op: () => ['load', '-q', '-i', archive] });
  for (const [name, r] of Object.entries({ running, stopped, start, pull, load })) {
    assert.ok(r.failed >= 1 && r.succeeded >= 1, `${name}: ${r.failed} failed, ${r.succeeded} succeeded — expected both`);
  }
});

test('no SIGBUS on a full disk with 1 KiB blocks (the -shm index extended into holes): ps and system check work at every free size, with or without the reserve', () => {
  for (const reserve of [true, false]) {
    for (const k of [0, 2, 4, 6, 8, 12, 16, 32, 64, 96, 128]) {
      if (!reserve) {
        try {
          unlinkSync(join(root, 'space-reserve'));
        } catch {
          /* gone */
        }
      }
      disk.fill(k << 10);
      for (const args of [['ps', '-a'], ['system', 'check']]) {
        const r = lb(root, args);
        clean(r, `${args.join(' ')} with ${k} KiB free${reserve ? '' : ', no reserve'}`);
        // with the reserve the commands work; without it reads work and a write may be refused cleanly
        if (reserve) assert.equal(r.code, 0, `${args.join(' ')} with ${k} KiB free:\n${r.stdout}${r.stderr}`);
        else if (r.code !== 0) noSpace(r, `${args.join(' ')} with ${k} KiB free, no reserve`);
      }
      disk.unfill();
    }
  }
  // the reserve is made again once there is room
  ok(['ps']);
  assert.ok(storeUsage(root).paths.includes('space-reserve'));
});
