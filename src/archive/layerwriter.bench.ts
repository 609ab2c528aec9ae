/**
 * Speed of writeLayer against `tar -cf - -C UPPER . | sha256sum` on a synthetic upper dir
 * (default ~130 MB in ~2,300 entries, page cache warm). Not a test; run as root or not:
 *
 *   node dist/archive/layerwriter.bench.js [dir] [runs]
 *
 * The directory is created on first use and kept (remove it yourself).
 */
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { run } from '../sys/exec.js';
import { writeLayer } from './layerwriter.js';
import { TarSplitWriter } from './tarsplit.js';

const dir = process.argv[2] ?? join(tmpdir(), 'layerbox-bench-upper');
const runs = Number(process.argv[3] ?? 5);

function build(root: string): void {
  mkdirSync(root, { recursive: true });
  // 100 dirs; 2,200 files: 2,000 small (0-16 KiB), 190 medium (64-512 KiB), 10 large (6 MiB)
  let n = 0;
  const blob = randomBytes(8 << 20);
  for (let d = 0; d < 100; d++) {
    const dd = join(root, `d${String(d).padStart(3, '0')}`);
    mkdirSync(dd);
    for (let f = 0; f < 22; f++, n++) {
      const size = n < 10 ? 6 << 20 : n < 200 ? (64 << 10) + ((n * 2731) % (448 << 10)) : (n * 997) % (16 << 10);
      const fd = openSync(join(dd, `f${f}.bin`), 'w');
      writeSync(fd, blob, (n * 4099) % (blob.length - size), size);
      closeSync(fd);
    }
  }
}

const time = async (f: () => Promise<unknown>): Promise<number> => {
  const t = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t) / 1e6;
};

if (!existsSync(dir)) build(dir);
const du = (await run('du', ['-sb', dir])).stdout.split('\t')[0];
const count = (await run('sh', ['-c', `find '${dir}' | wc -l`])).stdout.trim();
console.log(`upper: ${dir}: ${du} bytes, ${count} entries`);
const tarCmd = `tar -cf - -C '${dir}' . | sha256sum`;
await run('sh', ['-c', tarCmd]); // warm the cache
const results: Record<string, number[]> = { 'tar | sha256sum': [], 'tar > /dev/null (no hash)': [], 'writeLayer (hash only)': [], 'writeLayer -> /dev/null': [], 'writeLayer + tar-split': [] };
for (let i = 0; i < runs; i++) {
  results['tar | sha256sum']!.push(await time(() => run('sh', ['-c', tarCmd])));
  results['tar > /dev/null (no hash)']!.push(await time(() => run('sh', ['-c', `tar -cf - -C '${dir}' . | cat > /dev/null`])));
  results['writeLayer (hash only)']!.push(await time(() => writeLayer(dir, [], () => {})));
  const fd = openSync('/dev/null', 'w');
  results['writeLayer -> /dev/null']!.push(await time(() => writeLayer(dir, [], (c) => void writeSync(fd, c))));
  closeSync(fd);
  const tsPath = join(tmpdir(), `layerbox-bench-${process.pid}.tarsplit`);
  results['writeLayer + tar-split']!.push(
    await time(async () => {
      const ts = new TarSplitWriter(tsPath);
      await writeLayer(dir, [], () => {}, { tarsplit: ts });
      ts.finish();
    }),
  );
  await run('rm', ['-f', tsPath]);
}
const base = Math.min(...results['tar | sha256sum']!);
for (const [k, v] of Object.entries(results)) {
  const best = Math.min(...v);
  console.log(`${k.padEnd(26)} best ${best.toFixed(0).padStart(5)} ms  median ${v.sort((a, b) => a - b)[v.length >> 1]!.toFixed(0).padStart(5)} ms  ${(best / base).toFixed(2)}x`);
}
