/**
 * `system df` counts everything: images (each layer once), containers' writable layers,
 * volumes and their links, the build cache — figures that add up to what the store's files
 * hold, in Docker's rows, columns, units and JSON fields. Where docker.io is installed the
 * same steps run against a private dockerd and the two are compared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { lb, tempRoot } from '../testing/cli.js';
import { FIXTURES } from '../testing/tree.js';
import { startDockerd } from '../testing/dockerd.js';

const BB = 'bench/busybox:latest';

/** The steps: a volume, a container that wrote 3 MiB and exited, one that wrote 5 MiB and runs, one that wrote 2 MiB into the volume. */
async function scenario(run: (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>, tag: string): Promise<void> {
  const ok = async (args: string[]) => {
    const r = await run(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  await ok(['volume', 'create', `v${tag}`]);
  await ok(['run', '--network', 'none', '--name', `a${tag}`, BB, 'sh', '-c', 'dd if=/dev/urandom of=/a bs=1M count=3 2>/dev/null']);
  await ok(['run', '-d', '--network', 'none', '--name', `b${tag}`, BB, 'sh', '-c', 'dd if=/dev/urandom of=/b bs=1M count=5 2>/dev/null; touch /done; sleep 1000']);
  await ok(['run', '--network', 'none', '--name', `c${tag}`, '-v', `v${tag}:/data`, BB, 'sh', '-c', 'dd if=/dev/urandom of=/data/x bs=1M count=2 2>/dev/null']);
  for (let i = 0; i < 100; i++) {
    if ((await run(['exec', `b${tag}`, 'test', '-e', '/done'])).code === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the running container did not finish writing');
}

const rows = (json: string) => json.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);

/** Sum of the sizes of the files under the given directories, a hard-linked file once (what the store's files hold). */
function fileBytes(dirs: string[]): number {
  const r = spawnSync('sh', ['-c', `find ${dirs.join(' ')} \\( -type f -o -type l \\) -printf '%i %s\\n' | sort -u`], { encoding: 'utf8' });
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .reduce((n, l) => n + Number(l.split(' ')[1]), 0);
}

test('system df and df -v: images, containers of known sizes and a volume, as Docker counts them; the figures add up to the store\'s files', async () => {
  const t = tempRoot();
  const lbRun = async (args: string[]) => lb(t.root, args);
  try {
    assert.equal(lb(t.root, ['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]).code, 0);
    await scenario(lbRun, 'x');
    const ours = rows(lb(t.root, ['system', 'df', '--format', '{{json .}}']).stdout);
    assert.deepEqual(ours.map((r) => r.Type), ['Images', 'Containers', 'Local Volumes', 'Build Cache']);
    const [img, ctr, vol, cache] = ours as [Record<string, string>, Record<string, string>, Record<string, string>, Record<string, string>];
    assert.deepEqual([img.TotalCount, img.Active], ['1', '1']);
    assert.deepEqual([ctr.TotalCount, ctr.Active, ctr.Size, ctr.Reclaimable], ['3', '1', '8.389MB', '3.146MB (37%)']);
    assert.deepEqual([vol.TotalCount, vol.Active, vol.Size, vol.Reclaimable], ['1', '1', '2.097MB', '0B (0%)']);
    assert.deepEqual([cache.TotalCount, cache.Size], ['0', '0B']);

    // the engine's exact figures add up to the bytes of the files the store holds for them
    const verbose = lb(t.root, ['system', 'df', '-v']).stdout;
    assert.match(verbose, /^Images space usage:\n\nREPOSITORY +TAG +IMAGE ID +CREATED +SIZE +SHARED SIZE +UNIQUE SIZE +CONTAINERS\nbench\/busybox +latest +[0-9a-f]{12} .* 3\n/);
    const line = (name: string) => verbose.split('\n').find((l) => l.trimEnd().endsWith(` ${name}`))!;
    assert.match(line('ax'), / 0 +3\.15MB +.*Exited \(0\)/);
    assert.match(line('bx'), / 0 +5\.24MB +.*Up /);
    assert.match(line('cx'), / 1 +0B +.*Exited \(0\)/);
    assert.match(verbose, /\nLocal Volumes space usage:\n\nVOLUME NAME +LINKS +SIZE\nvx +1 +2\.097MB\n/);
    const bytes = Number(/each counted once\): .* \((\d+) bytes\)/.exec(verbose)![1]);
    const exact = JSON.parse(spawnSync(process.execPath, ['-e', `
      const { Engine } = await import(${JSON.stringify(new URL('../engine/index.js', import.meta.url).href)});
      const e = await Engine.open({ root: ${JSON.stringify(t.root)} });
      const d = await e.system.df();
      process.stdout.write(JSON.stringify({ layers: d.LayersSize, containers: d.Containers.reduce((n, c) => n + c.SizeRw, 0), volumes: d.Volumes.reduce((n, v) => n + v.UsageData.Size, 0) }));
      e.close();
    `], { encoding: 'utf8', env: { ...process.env, NODE_EXTRA_CA_CERTS: '' }, input: '' }).stdout) as { layers: number; containers: number; volumes: number };
    assert.equal(exact.layers, bytes);
    assert.ok(exact.containers >= 8 * 1024 * 1024 && exact.containers < 8 * 1024 * 1024 + 64 * 1024, `the two containers' writes (${exact.containers})`);
    assert.equal(exact.volumes, 2 * 1024 * 1024);
    // everything the images, containers and volumes hold is in snapshots/ and volumes/; the
    // rest are the containers' init layers (mount points, /etc/mtab), which Docker counts in
    // no row either: a few bytes each
    const db = new Database(join(t.root, 'metadata.db'), { readonly: true });
    const inits = (db.prepare("SELECT id FROM snapshots WHERE key LIKE 'ctr-%-init'").all() as { id: number }[]).map((r) => join(t.root, 'snapshots', String(r.id)));
    db.close();
    assert.equal(inits.length, 3);
    const initBytes = fileBytes(inits);
    assert.ok(initBytes < 3 * 1024, `init layers: ${initBytes} bytes`);
    assert.equal(exact.layers + exact.containers + exact.volumes + initBytes, fileBytes([join(t.root, 'snapshots'), join(t.root, 'volumes')]));
    for (const n of ['ax', 'bx', 'cx']) assert.equal(lb(t.root, ['rm', '-f', n]).code, 0);
  } finally {
    t.cleanup();
  }

  const d = await startDockerd({ prefix: 'lbdf-' });
  if (!d) {
    console.log('# docker.io is not installed: the comparison with Docker was not made');
    return;
  }
  const t2 = tempRoot();
  try {
    assert.equal((await d.docker(['load', '-q', '-i', join(FIXTURES, 'busybox-base.docker.tar')])).code, 0);
    await scenario((a) => d.docker(a), 'y');
    assert.equal(lb(t2.root, ['load', '-q', '-i', join(FIXTURES, 'busybox-base.docker.tar')]).code, 0);
    await scenario(async (a) => lb(t2.root, a), 'y');
    const theirs = rows((await d.docker(['system', 'df', '--format', '{{json .}}'])).stdout);
    const mine = rows(lb(t2.root, ['system', 'df', '--format', '{{json .}}']).stdout);
    assert.deepEqual(mine.map((r) => Object.keys(r).sort()), theirs.map((r) => Object.keys(r).sort()), 'the same JSON fields');
    for (let i = 0; i < theirs.length; i++) {
      const a = mine[i]!;
      const b = theirs[i]!;
      assert.deepEqual([a.Type, a.TotalCount, a.Active], [b.Type, b.TotalCount, b.Active], `${b.Type}: counts`);
      // image bytes are the same image's; container and volume bytes are the same writes
      assert.deepEqual([a.Size, a.Reclaimable], [b.Size, b.Reclaimable], `${b.Type}: sizes`);
    }
    const headers = (s: string) => s.split('\n').filter((l) => /space usage:|usage: |^(REPOSITORY|CONTAINER ID|VOLUME NAME|CACHE ID) /.test(l)).map((l) => l.replace(/ +/g, ' ').replace(/usage: .*/, 'usage:'));
    assert.deepEqual(headers(lb(t2.root, ['system', 'df', '-v']).stdout).filter((l) => !l.startsWith('Total size')), headers((await d.docker(['system', 'df', '-v'])).stdout), 'df -v: the same sections and columns');
    console.log('# compared with dockerd 20.10: rows, fields, counts and sizes agree');
  } finally {
    await d.docker(['rm', '-f', 'ay', 'by', 'cy']);
    await d.stop();
    for (const n of ['ay', 'by', 'cy']) lb(t2.root, ['rm', '-f', n]);
    t2.cleanup();
  }
});
