/**
 * Tar-split: what a layer tar holds besides file payloads (headers, PAX records, padding,
 * end-of-archive), recorded while the layer is extracted, so the exact tar — and thus its
 * diffID — can be regenerated later from the snapshot's files (for save and push) without
 * keeping a second copy of the layer. Same idea as Docker's tar-split metadata.
 *
 * Format: "LBTS1\n", then gzip members, each holding records:
 *   'R' u32be len, bytes                 raw archive bytes
 *   'F' u64be size, u16be len, path      `size` payload bytes read from the file at `path`
 * The file is written with writeSync in chunks (never the whole layer in memory).
 */
import { closeSync, fsyncSync, openSync, writeSync, constants as C, readSync, fstatSync, readFileSync, statSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { createGunzip, gunzipSync, gzipSync, constants as Z } from 'node:zlib';
import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { dataLoss } from '../errors/index.js';
import type { Digest } from '../oci/digest.js';

const MAGIC = Buffer.from('LBTS1\n');
/** scanTarSplit decompresses records up to this size in one call, into at most SYNC_MAX_OUT bytes. */
const SYNC_MAX_IN = 512 << 10;
const SYNC_MAX_OUT = 64 << 20;
const FLUSH_AT = 1 << 20;

export class TarSplitWriter {
  private fd: number;
  private parts: Buffer[] = [];
  private partBytes = 0;
  private pendingRaw: Buffer[] = [];
  private pendingRawBytes = 0;
  private readonly hash: Hash = createHash('sha256');
  private written = 0;
  /** false once some payload could not be tied to a file that keeps it. */
  reproducible = true;
  readonly payloadPaths = new Set<string>();

  constructor(readonly path: string) {
    this.fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_TRUNC, 0o600);
    this.out(MAGIC);
  }

  raw(chunk: Buffer): void {
    this.pendingRaw.push(Buffer.from(chunk));
    this.pendingRawBytes += chunk.length;
    if (this.pendingRawBytes >= FLUSH_AT) this.flushRaw();
  }

  payload(size: number, relPath: string): void {
    this.flushRaw();
    const p = Buffer.from(relPath, 'utf8');
    const rec = Buffer.alloc(1 + 8 + 2);
    rec[0] = 0x46; // 'F'
    rec.writeBigUInt64BE(BigInt(size), 1);
    rec.writeUInt16BE(p.length, 9);
    this.push(rec);
    this.push(p);
    this.payloadPaths.add(relPath);
  }

  /** A path (or subtree) that held recorded payload was removed or replaced. */
  invalidate(relPath: string): void {
    if (!this.reproducible) return;
    if (this.payloadPaths.has(relPath)) {
      this.reproducible = false;
      return;
    }
    const prefix = relPath === '' ? '' : relPath + '/';
    for (const p of this.payloadPaths) {
      if (p.startsWith(prefix)) {
        this.reproducible = false;
        return;
      }
    }
  }

  private flushRaw(): void {
    if (this.pendingRawBytes === 0) return;
    const body = Buffer.concat(this.pendingRaw, this.pendingRawBytes);
    this.pendingRaw = [];
    this.pendingRawBytes = 0;
    const h = Buffer.alloc(5);
    h[0] = 0x52; // 'R'
    h.writeUInt32BE(body.length, 1);
    this.push(h);
    this.push(body);
  }

  private push(b: Buffer): void {
    this.parts.push(b);
    this.partBytes += b.length;
    if (this.partBytes >= FLUSH_AT) this.flushMember();
  }

  private flushMember(): void {
    if (this.partBytes === 0) return;
    const z = gzipSync(Buffer.concat(this.parts, this.partBytes), { level: 1, strategy: Z.Z_DEFAULT_STRATEGY });
    this.parts = [];
    this.partBytes = 0;
    this.out(z);
  }

  private out(b: Buffer): void {
    let off = 0;
    while (off < b.length) off += writeSync(this.fd, b, off, b.length - off);
    this.hash.update(b);
    this.written += b.length;
  }

  /** Flushes, fsyncs and closes. Returns digest and size of the file. */
  finish(): { digest: Digest; size: number } {
    this.flushRaw();
    this.flushMember();
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    return { digest: ('sha256:' + this.hash.digest('hex')) as Digest, size: this.written };
  }

  abort(): void {
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        /* ignore */
      }
      this.fd = -1;
    }
  }
}

/**
 * Regenerates the layer tar from a tar-split file and the snapshot directory `fsRoot`.
 * Yields the exact bytes; the caller verifies the diffID. A file whose size changed is
 * reported as data loss.
 */
export async function* regenerateTar(tarsplitPath: string, fsRoot: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<Buffer> {
  const src = createReadStream(tarsplitPath, { highWaterMark: 1 << 16, signal: opts.signal });
  let magicLeft = MAGIC.length;
  const gunzip = createGunzip();
  // strip the magic, pipe the rest into gunzip
  const feeder = (async () => {
    try {
      for await (const c of src) {
        let chunk = c as Buffer;
        if (magicLeft > 0) {
          const take = Math.min(magicLeft, chunk.length);
          if (!chunk.subarray(0, take).equals(MAGIC.subarray(MAGIC.length - magicLeft, MAGIC.length - magicLeft + take))) {
            throw dataLoss('TARSPLIT_CORRUPT', 'layer metadata (tar-split) is corrupt', { where: tarsplitPath });
          }
          magicLeft -= take;
          chunk = chunk.subarray(take);
          if (chunk.length === 0) continue;
        }
        if (!gunzip.write(chunk)) await new Promise((r) => gunzip.once('drain', r));
      }
      gunzip.end();
    } catch (e) {
      gunzip.destroy(e as Error);
    }
  })();
  let buf: Buffer = Buffer.alloc(0);
  const it = gunzip[Symbol.asyncIterator]();
  let done = false;
  async function fill(n: number): Promise<boolean> {
    while (buf.length < n && !done) {
      const r = await it.next();
      if (r.done) {
        done = true;
        break;
      }
      buf = buf.length === 0 ? (r.value as Buffer) : Buffer.concat([buf, r.value as Buffer]);
    }
    return buf.length >= n;
  }
  const fileBuf = Buffer.allocUnsafe(1 << 17);
  for (;;) {
    if (!(await fill(1))) break;
    const kind = buf[0];
    if (kind === 0x52) {
      if (!(await fill(5))) throw dataLoss('TARSPLIT_CORRUPT', 'layer metadata (tar-split) is truncated', { where: tarsplitPath });
      const len = buf.readUInt32BE(1);
      if (!(await fill(5 + len))) throw dataLoss('TARSPLIT_CORRUPT', 'layer metadata (tar-split) is truncated', { where: tarsplitPath });
      yield Buffer.from(buf.subarray(5, 5 + len));
      buf = buf.subarray(5 + len);
    } else if (kind === 0x46) {
      if (!(await fill(11))) throw dataLoss('TARSPLIT_CORRUPT', 'layer metadata (tar-split) is truncated', { where: tarsplitPath });
      const size = Number(buf.readBigUInt64BE(1));
      const plen = buf.readUInt16BE(9);
      if (!(await fill(11 + plen))) throw dataLoss('TARSPLIT_CORRUPT', 'layer metadata (tar-split) is truncated', { where: tarsplitPath });
      const rel = buf.toString('utf8', 11, 11 + plen);
      buf = buf.subarray(11 + plen);
      const full = join(fsRoot, rel);
      const fd = openSync(full, C.O_RDONLY | C.O_NOFOLLOW);
      try {
        const st = fstatSync(fd);
        if (st.size !== size) {
          throw dataLoss('LAYER_CHANGED', `layer file changed on disk: ${rel} is ${st.size} bytes, the layer recorded ${size}`, { where: full, hint: 'the snapshot was modified outside layerbox; remove the image and load or pull it again' });
        }
        let left = size;
        let pos = 0;
        while (left > 0) {
          const n = readSync(fd, fileBuf, 0, Math.min(fileBuf.length, left), pos);
          if (n <= 0) throw dataLoss('LAYER_CHANGED', `layer file ${rel} is shorter than recorded`, { where: full });
          yield Buffer.from(fileBuf.subarray(0, n));
          left -= n;
          pos += n;
        }
      } finally {
        closeSync(fd);
      }
    } else {
      throw dataLoss('TARSPLIT_CORRUPT', 'layer metadata (tar-split) is corrupt', { where: tarsplitPath });
    }
  }
  await feeder;
}

/**
 * Reads a tar-split record without touching the files: `raw` gets the archive's non-payload
 * bytes in archive order (headers, PAX records, padding), `payload` the size and path of each
 * file payload between them. `image analyze` reads a layer's headers this way. A small
 * record is decompressed in one call; a large one streams (the record of a 100,000-file
 * layer is ~100 MB uncompressed), records split across chunks reassembled without copying
 * their bodies. `stream` forces streaming.
 */
export async function scanTarSplit(tarsplitPath: string, on: { raw(chunk: Buffer): void; payload(size: number, rel: string): void }, opts: { signal?: AbortSignal; stream?: boolean } = {}): Promise<void> {
  const corrupt = (what: string) => dataLoss('TARSPLIT_CORRUPT', `layer metadata (tar-split) is ${what}`, { where: tarsplitPath });
  const small = !opts.stream && statSync(tarsplitPath).size <= SYNC_MAX_IN;
  // states: 0 kind byte, 1 R length (4), 2 R body, 3 F head (10), 4 F path
  let state = 0;
  const head = Buffer.alloc(10);
  let have = 0;
  let need = 0;
  let size = 0;
  let path: Buffer = Buffer.alloc(0);
  // 'data' events hand over each chunk as it comes (an async iterator would concatenate)
  const consume = (b: Buffer) => {
    let pos = 0;
    while (pos < b.length) {
      switch (state) {
        case 0: {
          const k = b[pos++];
          if (k === 0x52) {
            state = 1;
            have = 0;
            need = 4;
          } else if (k === 0x46) {
            state = 3;
            have = 0;
            need = 10;
          } else throw corrupt('corrupt');
          break;
        }
        case 1:
        case 3: {
          const take = Math.min(need - have, b.length - pos);
          b.copy(head, have, pos, pos + take);
          have += take;
          pos += take;
          if (have < need) break;
          if (state === 1) {
            need = head.readUInt32BE(0);
            state = need === 0 ? 0 : 2;
          } else {
            size = Number(head.readBigUInt64BE(0));
            need = head.readUInt16BE(8);
            path = Buffer.alloc(need);
            have = 0;
            state = 4;
            if (need === 0) {
              on.payload(size, '');
              state = 0;
            }
          }
          break;
        }
        case 2: {
          const take = Math.min(need, b.length - pos);
          on.raw(b.subarray(pos, pos + take));
          need -= take;
          pos += take;
          if (need === 0) state = 0;
          break;
        }
        case 4: {
          const take = Math.min(need - have, b.length - pos);
          b.copy(path, have, pos, pos + take);
          have += take;
          pos += take;
          if (have === need) {
            on.payload(size, path.toString('utf8'));
            state = 0;
          }
          break;
        }
      }
    }
  };
  // a small record (most layers') is decompressed in one synchronous call: a stream's
  // round trips through the thread pool cost more than the work in a fresh process
  if (small) {
    const whole = readFileSync(tarsplitPath);
    if (!whole.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt('corrupt');
    let out: Buffer | undefined;
    try {
      out = gunzipSync(whole.subarray(MAGIC.length), { maxOutputLength: SYNC_MAX_OUT });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ERR_BUFFER_TOO_LARGE') throw corrupt(`unreadable (${(e as Error).message})`);
    }
    if (out) {
      consume(out);
      if (state !== 0) throw corrupt('truncated');
      return;
    }
    return scanTarSplit(tarsplitPath, on, { ...opts, stream: true });
  }
  const src = createReadStream(tarsplitPath, { highWaterMark: 1 << 17, signal: opts.signal });
  const gunzip = createGunzip({ chunkSize: 1 << 17 });
  let magicLeft = MAGIC.length;
  const feeder = (async () => {
    try {
      for await (const c of src) {
        let chunk = c as Buffer;
        if (magicLeft > 0) {
          const take = Math.min(magicLeft, chunk.length);
          if (!chunk.subarray(0, take).equals(MAGIC.subarray(MAGIC.length - magicLeft, MAGIC.length - magicLeft + take))) throw corrupt('corrupt');
          magicLeft -= take;
          chunk = chunk.subarray(take);
          if (chunk.length === 0) continue;
        }
        if (!gunzip.write(chunk)) await new Promise((r) => (gunzip.once('drain', r), gunzip.once('close', r)));
        if (gunzip.destroyed) return;
      }
      gunzip.end();
    } catch (e) {
      gunzip.destroy(e as Error);
    }
  })();
  try {
    await new Promise<void>((resolve, reject) => {
      gunzip.on('data', (b: Buffer) => {
        try {
          consume(b);
        } catch (e) {
          reject(e);
          gunzip.destroy();
        }
      });
      gunzip.once('end', () => resolve());
      gunzip.once('error', reject);
      gunzip.once('close', () => resolve());
    });
  } finally {
    src.destroy();
    gunzip.destroy();
    await feeder;
  }
  if (state !== 0) throw corrupt('truncated');
}
