/**
 * Test support for store.test.ts: a second process that uses the content store of the same
 * root. `node dist/content/testdata-child.js <command> '<json args>'`; prints one JSON object
 * per line on stdout (events the parent waits for) and exits 0, or is killed by the parent.
 *
 * Commands:
 *   open  {root, ref, wait?, expected?, file?, upTo?, hold?, commit?}
 *         opens a writer for ref, reports resumeOffset, writes bytes [resumeOffset, upTo) of
 *         file, then holds (waits to be killed) or commits.
 *   put   {root, file}        stores the file's bytes with put()
 *   many  {root, count, seed} writes `count` generated blobs (even: writer with resume,
 *         odd: put), reporting each one; the parent kills it at a random moment
 *   race  {root, ref, at, holdMs}  at time `at`, tries once to take the ref; holds it holdMs
 */
import { createCipheriv, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContentStore } from './store.js';
import { isEngineError } from '../errors/index.js';
import type { Digest } from '../oci/digest.js';

/** Deterministic pseudo-random bytes (AES-CTR keystream), so parent and child agree on content. */
export function genBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.alloc(size)), c.final()]);
}

/** The i-th blob of a `many` run: sizes from 1 byte to ~400 KiB. */
export function manyBlob(seed: string, i: number): Buffer {
  const h = createHash('sha256').update(`${seed}/${i}/size`).digest();
  const size = 1 + (h.readUInt32BE(0) % (400 << 10));
  return genBytes(`${seed}/${i}`, size);
}

export const sha = (b: Buffer): Digest => ('sha256:' + createHash('sha256').update(b).digest('hex')) as Digest;

const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

function errInfo(e: unknown) {
  return isEngineError(e) ? { event: 'error', kind: e.kind, code: e.code, message: e.message } : { event: 'error', kind: 'other', message: String(e) };
}

/** Writes `data` through a resumable writer: only the bytes after resumeOffset are sent. */
export async function writeResumable(cs: ContentStore, ref: string, data: Buffer, chunk = 16 << 10): Promise<Digest> {
  const w = await cs.writer(ref, { expected: { digest: sha(data), size: data.length }, wait: true });
  try {
    for (let off = w.resumeOffset; off < data.length; off += chunk) await w.write(data.subarray(off, Math.min(off + chunk, data.length)));
    return (await w.commit()).digest;
  } catch (e) {
    await w.abort();
    throw e;
  }
}

async function main(cmd: string, a: Record<string, unknown>): Promise<void> {
  const cs = new ContentStore(a.root as string);
  await cs.init();
  switch (cmd) {
    case 'open': {
      let w;
      try {
        w = await cs.writer(a.ref as string, { wait: !!a.wait, expected: a.expected as { digest?: Digest; size?: number } | undefined });
      } catch (e) {
        out(errInfo(e));
        return;
      }
      out({ event: 'opened', resumeOffset: w.resumeOffset, pid: process.pid });
      if (a.file) {
        const data = readFileSync(a.file as string);
        const upTo = (a.upTo as number | undefined) ?? data.length;
        for (let off = w.resumeOffset; off < upTo; off += 4096) await w.write(data.subarray(off, Math.min(off + 4096, upTo)));
        out({ event: 'wrote', offset: w.offset });
      }
      if (a.hold) {
        // wait to be killed (or for stdin to close)
        await new Promise<void>((res) => {
          process.stdin.on('end', res).on('close', res).resume();
        });
        await w.suspend();
        return;
      }
      if (a.commit) {
        try {
          const info = await w.commit();
          out({ event: 'committed', digest: info.digest, size: info.size });
        } catch (e) {
          out(errInfo(e));
        }
      } else await w.suspend();
      return;
    }
    case 'put': {
      try {
        out({ event: 'put', digest: await cs.put(readFileSync(a.file as string)) });
      } catch (e) {
        out(errInfo(e));
      }
      return;
    }
    case 'many': {
      const seed = a.seed as string;
      for (let i = 0; i < (a.count as number); i++) {
        const data = manyBlob(seed, i);
        const d = i % 2 === 0 ? await writeResumable(cs, `many-${i}`, data) : await cs.put(data);
        out({ event: 'blob', i, digest: d });
      }
      out({ event: 'done' });
      return;
    }
    case 'race': {
      const at = a.at as number;
      while (Date.now() < at) {
        /* spin to line the racers up */
      }
      let w;
      try {
        w = await cs.writer(a.ref as string);
      } catch (e) {
        out({ ...errInfo(e), got: false });
        return;
      }
      const start = Date.now();
      await sleep(a.holdMs as number);
      const end = Date.now();
      await w.suspend();
      out({ event: 'held', got: true, start, end, pid: process.pid });
      return;
    }
    default:
      throw new Error(`unknown command ${cmd}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv[2]!, JSON.parse(process.argv[3] ?? '{}') as Record<string, unknown>).catch((e) => {
    out(errInfo(e));
    process.exitCode = 1;
  });
}
