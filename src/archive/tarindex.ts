/**
 * Random access into an uncompressed tar file (docker-archive, oci-archive): reads the
 * headers only, seeking over payloads, and returns where each entry's bytes are.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream, type ReadStream } from 'node:fs';
import { invalidArgument, notFound } from '../errors/index.js';
import { TarParser } from './tar/reader.js';
import type { TarHeader } from './tar/header.js';
import { cleanRel } from './paths.js';

export interface IndexedEntry {
  header: TarHeader;
  /** Offset of the payload in the file. */
  offset: number;
}

export class TarIndex {
  private constructor(
    readonly path: string,
    readonly entries: Map<string, IndexedEntry>,
  ) {}

  static async build(path: string): Promise<TarIndex> {
    const fh = await open(path, 'r');
    try {
      return new TarIndex(path, await indexEntries(fh));
    } finally {
      await fh.close();
    }
  }

  /** Looks up an entry by cleaned name, following symlinks and hard links inside the archive. */
  resolve(name: string, depth = 0): IndexedEntry {
    const e = this.entries.get(cleanRel(name));
    if (!e) throw notFound('ARCHIVE_ENTRY_MISSING', `the archive has no ${JSON.stringify(name)}`, { where: this.path, hint: 'the archive is incomplete or not an image archive' });
    if (depth > 16) throw invalidArgument('ARCHIVE_LINK_LOOP', `too many links resolving ${JSON.stringify(name)} in the archive`, { where: this.path });
    if (e.header.type === 'symlink') {
      const base = cleanRel(name).split('/').slice(0, -1).join('/');
      const target = e.header.linkname.startsWith('/') ? e.header.linkname : (base ? base + '/' : '') + e.header.linkname;
      return this.resolve(target, depth + 1);
    }
    if (e.header.type === 'link') return this.resolve(e.header.linkname, depth + 1);
    if (e.header.type !== 'file') throw invalidArgument('ARCHIVE_NOT_A_FILE', `${JSON.stringify(name)} in the archive is not a file`, { where: this.path });
    return e;
  }

  has(name: string): boolean {
    return this.entries.has(cleanRel(name));
  }

  async read(name: string, maxSize: number): Promise<Buffer> {
    const e = this.resolve(name);
    if (e.header.size > maxSize) {
      throw invalidArgument('ARCHIVE_ENTRY_TOO_LARGE', `${JSON.stringify(name)} in the archive is ${e.header.size} bytes, more than the ${maxSize}-byte limit`, { where: this.path });
    }
    const fh = await open(this.path, 'r');
    try {
      const buf = Buffer.alloc(e.header.size);
      const { bytesRead } = await fh.read(buf, 0, buf.length, e.offset);
      if (bytesRead !== buf.length) throw invalidArgument('ARCHIVE_TRUNCATED', `the archive is truncated inside ${JSON.stringify(name)}`, { where: this.path });
      return buf;
    } finally {
      await fh.close();
    }
  }

  stream(name: string, signal?: AbortSignal): { stream: ReadStream; size: number } {
    const e = this.resolve(name);
    if (e.header.size === 0) return { stream: createReadStream('/dev/null'), size: 0 };
    return { stream: createReadStream(this.path, { start: e.offset, end: e.offset + e.header.size - 1, highWaterMark: 1 << 20, signal }), size: e.header.size };
  }
}

async function indexEntries(fh: FileHandle): Promise<Map<string, IndexedEntry>> {
  const size = (await fh.stat()).size;
  const out = new Map<string, IndexedEntry>();
  let pos = 0;
  let current: TarHeader | undefined;
  const parser = new TarParser({
    onEntry: (h) => {
      current = h;
    },
    onData: () => {},
    onEnd: () => {},
  });
  const block = Buffer.alloc(512);
  while (pos < size && !parser.ended) {
    const { bytesRead } = await fh.read(block, 0, 512, pos);
    if (bytesRead < 512) break;
    pos += 512;
    current = undefined;
    parser.write(block);
    if (current) {
      const h: TarHeader = current;
      out.set(cleanRel(h.name), { header: h, offset: pos });
      pos += parser.skipEntryData();
      continue;
    }
    // an extended header (PAX / GNU long name): feed its payload to the parser
    // (the parser asks for exactly size+padding bytes, all consumed below)
    let guard = 0;
    while (!current && !parser.ended && pos < size && parser.inExtendedHeader) {
      const { bytesRead: n } = await fh.read(block, 0, 512, pos);
      if (n < 512) break;
      pos += 512;
      parser.write(block);
      if (++guard > 4096) throw invalidArgument('ARCHIVE_BAD_HEADER', 'tar: extended header too large', { where: 'archive' });
    }
  }
  if (pos > size) throw invalidArgument('ARCHIVE_TRUNCATED', 'the archive is truncated');
  return out;
}

