/**
 * Test support for snapshotter.test.ts: another layerbox process on the same store root.
 * `node dist/snapshot/testdata-child.js <command> '<json args>'`; prints one JSON object per
 * line on stdout and exits 0, or is killed by the parent.
 *
 * Commands (all take {root, driver}):
 *   prepare-temp {key, committed}  commits `committed`, prepares temporary `key` with files, holds
 *   remove       {key}             reports 'start', removes the snapshot, reports 'removed'
 *   ensure       {layers: [{tar, diffId}], chunkDelayMs}  LayerStore.ensure of the chain
 *   import       {tar, chunkDelayMs}                     LayerStore.importBase of one tar
 */
import { createReadStream, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDatabase } from '../metadata/db.js';
import { ContentStore } from '../content/store.js';
import { createSnapshotter, type StorageDriver } from './mount.js';
import { LayerStore, type LayerSource } from '../image/layers.js';
import { isEngineError } from '../errors/index.js';
import type { Digest } from '../oci/digest.js';

const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

/** A layer source that streams a tar file slowly, so two processes overlap. */
export function slowTar(path: string, chunkDelayMs: number): LayerSource {
  return {
    compression: 'auto',
    where: path,
    async open() {
      async function* gen(): AsyncGenerator<Buffer> {
        for await (const c of createReadStream(path, { highWaterMark: 32 << 10 })) {
          if (chunkDelayMs > 0) await sleep(chunkDelayMs);
          yield c as Buffer;
        }
      }
      return gen();
    },
  };
}

async function main(cmd: string, a: Record<string, unknown>): Promise<void> {
  const root = a.root as string;
  const db = openDatabase(root);
  const sn = createSnapshotter(db, root, a.driver as StorageDriver);
  try {
    switch (cmd) {
      case 'prepare-temp': {
        const committed = a.committed as string;
        const d1 = await sn.prepare(`${committed}-active`, undefined);
        writeFileSync(join(d1, 'committed-file'), 'kept');
        sn.commit(committed, `${committed}-active`);
        const dir = await sn.prepare(a.key as string, committed, { temporary: true });
        mkdirSync(join(dir, 'half'), { recursive: true });
        for (let i = 0; i < 50; i++) writeFileSync(join(dir, 'half', `f${i}`), `partial ${i}`);
        out({ event: 'ready', pid: process.pid });
        await new Promise<void>((res) => process.stdin.on('end', res).on('close', res).resume());
        return;
      }
      case 'remove': {
        out({ event: 'start' });
        await sn.remove(a.key as string);
        out({ event: 'removed' });
        return;
      }
      case 'ensure': {
        const content = new ContentStore(root);
        await content.init();
        const layers = new LayerStore(db, content, sn, root);
        const specs = a.layers as { tar: string; diffId: Digest }[];
        const events: string[] = [];
        const lease = await layers.ensure(
          specs.map((s) => s.diffId),
          (i) => slowTar(specs[i]!.tar, (a.chunkDelayMs as number) ?? 0),
          {
            onEvent: (e) => {
              if (e.type === 'progress') return;
              events.push(`${e.type}:${e.index}`);
              out({ event: 'layer', type: e.type, index: e.index });
            },
          },
        );
        out({ event: 'done', chainIds: lease.chainIds, events });
        lease.release();
        return;
      }
      case 'import': {
        const content = new ContentStore(root);
        await content.init();
        const layers = new LayerStore(db, content, sn, root);
        const r = await layers.importBase(slowTar(a.tar as string, (a.chunkDelayMs as number) ?? 0));
        out({ event: 'done', chainIds: r.chainIds, diffId: r.diffId });
        r.release();
        return;
      }
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  } finally {
    db.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv[2]!, JSON.parse(process.argv[3] ?? '{}') as Record<string, unknown>).catch((e) => {
    out(isEngineError(e) ? { event: 'error', kind: e.kind, code: e.code, message: e.message } : { event: 'error', kind: 'other', message: String((e as Error)?.stack ?? e) });
    process.exitCode = 1;
  });
}
