/**
 * The layer tar of an overlay container layer, the way Docker 20.10's overlay2 driver with
 * native diff writes it (`archive.TarWithOptions(upper, {WhiteoutFormat: Overlay})`): the
 * upper directory as it is, walked in lexical order (Go's filepath.Walk: each directory's
 * names in byte order, a directory before its contents), the root itself left out, with
 * overlay's metadata turned back into layer whiteouts:
 *
 *  - a whiteout (0/0 character device) becomes `<dir>/.wh.<name>`: an empty regular file,
 *    mode 0600, owner and mtime of the device;
 *  - an opaque directory (`trusted.overlay.opaque=y`) is its directory entry followed by
 *    `<dir>/.wh..wh..opq`: an empty regular file with the directory's permission bits
 *    (mode & 0777), its owner, mtime 0;
 *  - a second name of an inode (nlink > 1) becomes a hard-link entry to the first name in
 *    walk order (whiteouts, which overlayfs makes as links of one shared inode, excepted);
 *  - names without `./`, directories with a trailing `/`, numeric owners (uname/gname
 *    empty), modes with setuid/setgid/sticky, mtimes truncated to whole seconds like
 *    Docker (so no PAX mtime records), symlink targets verbatim, devices and FIFOs;
 *    sockets are skipped (Go's tar cannot write them either);
 *  - xattrs as PAX `SCHILY.xattr.*`, values byte for byte; overlayfs' own (`trusted.overlay.*`,
 *    `user.overlay.*`) never. See `WriteLayerOptions.xattrs` for which others.
 *
 * One pass: headers and file data are packed into fresh 1 MiB chunks (files are read with
 * synchronous 1 MiB reads straight into the chunk), each chunk is hashed (→ diffID), then
 * handed to `out` — awaited when it returns a promise. Chunks are never reused, so `out`
 * may keep them. With `tarsplit`, header and padding bytes are recorded raw and file data
 * as references to the upper-dir paths, so the exact tar can be regenerated from the
 * directory later (tarsplit.ts `regenerateTar`). The caller finishes or aborts the writer.
 *
 * The container must not change the upper directory meanwhile (Docker pauses it for
 * commit): a file that changes size or identity under the reader is refused.
 */
import { closeSync, constants as C, fstatSync, openSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { dataLoss, unsupported, throwIfAborted } from '../errors/index.js';
import type { Digest } from '../oci/digest.js';
import { lgetxattr, llistxattr } from '../sys/native.js';
import type { EntryType, TarHeader } from './tar/header.js';
import { encodeHeader, paddingFor, END_OF_ARCHIVE } from './tar/writer.js';
import type { TarSplitWriter } from './tarsplit.js';
import { MAX_EXTENDED_HEADER, MAX_NAME_BYTES, MAX_NAME_DEPTH, nameDepth, nameProblem, shortName, type NameProblem } from './limits.js';
import { WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from './paths.js';
import { checkExpressible, devMajor, devMinor, floorSeconds, isOpaqueDir, isOverlayXattr, isWhiteout, lstatBig, readNames, type OverlayXattrOptions } from './overlayfs.js';

export interface WriteLayerOptions extends OverlayXattrOptions {
  /** Record the tar as raw bytes + references to upper-dir files (see tarsplit.ts). */
  tarsplit?: TarSplitWriter;
  /**
   * Which xattrs go into the layer. 'portable' (default): all but overlayfs' own and
   * `security.selinux` (a host label, which the pulling host relabels anyway). 'docker':
   * only `security.capability`, exactly what Docker 20.10 records.
   */
  xattrs?: 'portable' | 'docker';
  /** Called for entries left out (sockets). */
  warn?: (msg: string) => void;
  signal?: AbortSignal;
}

export interface WriteLayerResult {
  /** sha256 of the tar (the layer's diffID). */
  diffId: Digest;
  /** Bytes of tar written. */
  size: number;
  /**
   * What the layer holds, as Docker sizes a layer (`docker history`, `system df`): the
   * bytes of its regular files (each hard-linked file once) and of its symlinks' targets —
   * what unpacking the layer counts too.
   */
  contentBytes: number;
  /** Tar entries written (whiteouts and opaque markers included, PAX headers not). */
  entries: number;
}

export type LayerSink = (chunk: Buffer) => void | Promise<void>;

const CHUNK = 1 << 20;
const YIELD_EVERY = 4096;

/** Packs output into 1 MiB chunks; hashes and counts what leaves. */
class ChunkWriter {
  private buf = Buffer.allocUnsafe(CHUNK);
  private pos = 0;
  private readonly hash = createHash('sha256');
  total = 0;

  constructor(
    private readonly out: LayerSink,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** Copies `b` when it fits in the current chunk; false when the caller must use put(). */
  tryPut(b: Buffer): boolean {
    if (b.length > CHUNK - this.pos) return false;
    this.pos += b.copy(this.buf, this.pos);
    return true;
  }

  async put(b: Buffer): Promise<void> {
    let off = 0;
    while (off < b.length) {
      if (this.pos === CHUNK) await this.flush();
      const n = b.copy(this.buf, this.pos, off);
      this.pos += n;
      off += n;
    }
  }

  /** Reads exactly `size` bytes of `fd` into the stream, in reads of at most 1 MiB. */
  async putFile(fd: number, size: number, rel: string, abs: string): Promise<void> {
    let left = size;
    while (left > 0) {
      if (this.pos === CHUNK) await this.flush();
      const n = readSync(fd, this.buf, this.pos, Math.min(CHUNK - this.pos, left), null);
      if (n <= 0) {
        throw dataLoss('LAYER_FILE_CHANGED', `${JSON.stringify('/' + rel)} shrank while the layer was being written (${size - left} of ${size} bytes read)`, {
          where: abs,
          hint: 'stop or pause the container while committing it, then try again',
        });
      }
      this.pos += n;
      left -= n;
    }
  }

  async flush(): Promise<void> {
    throwIfAborted(this.signal);
    if (this.pos === 0) return;
    const chunk = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(CHUNK);
    this.pos = 0;
    this.hash.update(chunk);
    this.total += chunk.length;
    const r = this.out(chunk);
    if (r) await r;
  }

  digest(): Digest {
    return ('sha256:' + this.hash.digest('hex')) as Digest;
  }
}

function header(name: string, type: EntryType, st: BigIntStats, extra: Partial<TarHeader> = {}): TarHeader {
  return {
    name,
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: 0,
    mtime: floorSeconds(st.mtimeNs),
    linkname: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
    xattrs: undefined,
    ...extra,
  };
}

function unwritableName(name: string, p: NameProblem, upper: string) {
  const shown = JSON.stringify('/' + shortName(name));
  if (p.code === 'TAR_TOO_DEEP') {
    return unsupported('LAYER_PATH_TOO_DEEP', `${shown} is ${nameDepth(name)} directories deep: a layer holds paths at most ${MAX_NAME_DEPTH} deep (load and pull refuse deeper ones), so this container cannot be committed`, {
      where: upper,
      hint: 'move the deep tree higher or pack it into an archive inside the container, then commit again',
    });
  }
  if (p.code === 'TAR_NAME_TOO_LONG') {
    return unsupported('LAYER_NAME_TOO_LONG', `${shown} is ${Buffer.byteLength(name)} bytes long: a layer holds paths of at most ${MAX_NAME_BYTES} bytes (load and pull refuse longer ones), so this container cannot be committed`, {
      where: upper,
      hint: 'rename or move the file inside the container, then commit again',
    });
  }
  return unsupported('LAYER_BAD_NAME', `${shown} cannot be put in a layer: its name ${p.message}`, { where: upper });
}

function readLinkTarget(abs: string, rel: string): string {
  const t = readlinkSync(abs);
  if (t.includes('\uFFFD') && !Buffer.from(t, 'utf8').equals(readlinkSync(abs, { encoding: 'buffer' }))) {
    throw unsupported('LAYER_NAME_NOT_UTF8', `the target of the symbolic link ${JSON.stringify('/' + rel)} is not valid UTF-8`, {
      where: abs,
      hint: 'recreate the link inside the container with a UTF-8 target and try again',
    });
  }
  return t;
}

/**
 * Writes the layer tar of the overlay upper directory `upper` to `out`. `lowers` (the
 * image's layer directories, top-most first) are not read: like Docker's native diff, the
 * layer is the upper directory alone; they are taken for symmetry with overlayChanges.
 */
export async function writeLayer(upper: string, lowers: readonly string[], out: LayerSink, opts: WriteLayerOptions = {}): Promise<WriteLayerResult> {
  void lowers;
  throwIfAborted(opts.signal);
  const w = new ChunkWriter(out, opts.signal);
  const ts = opts.tarsplit;
  const dockerXattrs = opts.xattrs === 'docker';
  const xcheck = { ...opts, metacopy: true };
  /** "dev:ino" of multi-link inodes -> first name written */
  const links = new Map<string, string>();
  let entries = 0;
  let contentBytes = 0;
  let ticks = 0;

  const emitHeader = async (h: TarHeader): Promise<void> => {
    // what load and pull would refuse is refused here, at commit (docs/RELIABILITY.md item 37)
    const bad = nameProblem(h.type === 'dir' ? h.name + '/' : h.name);
    if (bad) throw unwritableName(h.name, bad, upper);
    const b = encodeHeader(h);
    if (b[156] === 0x78 && b.length > 512) {
      const paxSize = parseInt(b.toString('latin1', 124, 135), 8);
      if (paxSize > MAX_EXTENDED_HEADER) {
        throw unsupported('LAYER_HEADER_TOO_LARGE', `${JSON.stringify('/' + shortName(h.name))} cannot be put in a layer: its name and extended attributes need a ${paxSize}-byte PAX header, over the ${MAX_EXTENDED_HEADER}-byte limit of load and pull`, {
          where: join(upper, h.name),
          hint: 'remove extended attributes from the file inside the container, then commit again',
        });
      }
    }
    ts?.raw(b);
    if (!w.tryPut(b)) await w.put(b);
    entries++;
  };

  const xattrsOf = (abs: string, names: readonly string[]): Map<string, Buffer> | undefined => {
    let m: Map<string, Buffer> | undefined;
    for (const n of names) {
      if (dockerXattrs ? n !== 'security.capability' : isOverlayXattr(n) || n === 'security.selinux') continue;
      const v = lgetxattr(abs, n);
      if (v === null) continue; // removed meanwhile
      (m ??= new Map()).set(n, v);
    }
    return m;
  };

  const stack: { rel: string; names: string[]; i: number }[] = [{ rel: '', names: readNames(upper, ''), i: 0 }];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.i >= f.names.length) {
      stack.pop();
      continue;
    }
    if (++ticks % YIELD_EVERY === 0) {
      await new Promise((r) => setImmediate(r));
      throwIfAborted(opts.signal);
    }
    const name = f.names[f.i++]!;
    const rel = f.rel === '' ? name : f.rel + '/' + name;
    const abs = join(upper, rel);
    const st = lstatBig(abs);
    if (!st) continue; // removed meanwhile (Docker logs and goes on too)

    if (isWhiteout(st)) {
      await emitHeader(header((f.rel === '' ? '' : f.rel + '/') + WHITEOUT_PREFIX + name, 'file', st, { mode: 0o600 }));
      continue;
    }
    if (name.startsWith(WHITEOUT_PREFIX)) {
      throw unsupported('LAYER_RESERVED_NAME', `${JSON.stringify('/' + rel)} cannot be put in a layer: names starting with ${JSON.stringify(WHITEOUT_PREFIX)} mark deletions in layers`, {
        where: abs,
        hint: 'rename or remove the file inside the container, then commit again',
      });
    }
    const xnames = llistxattr(abs);
    checkExpressible(xnames, abs, rel, xcheck);
    const xattrs = xnames.length > 0 ? xattrsOf(abs, xnames) : undefined;

    if (st.isDirectory()) {
      await emitHeader(header(rel, 'dir', st, { xattrs }));
      if (isOpaqueDir(abs, xnames, opts)) {
        await emitHeader(header(rel + '/' + WHITEOUT_OPAQUE, 'file', st, { mode: Number(st.mode & 0o777n), mtime: 0 }));
      }
      stack.push({ rel, names: readNames(abs, rel), i: 0 });
      continue;
    }
    if (st.isSocket()) {
      opts.warn?.(`skipping socket ${JSON.stringify('/' + rel)}: sockets cannot be put in a layer`);
      continue;
    }
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first !== undefined) {
        await emitHeader(header(rel, 'link', st, { linkname: first, xattrs }));
        continue;
      }
      links.set(key, rel);
    }
    if (st.isFile()) {
      const fd = openSync(abs, C.O_RDONLY | C.O_NOFOLLOW);
      try {
        const fst = fstatSync(fd, { bigint: true });
        if (fst.ino !== st.ino || fst.dev !== st.dev || fst.size !== st.size) {
          throw dataLoss('LAYER_FILE_CHANGED', `${JSON.stringify('/' + rel)} changed while the layer was being written`, {
            where: abs,
            hint: 'stop or pause the container while committing it, then try again',
          });
        }
        const size = Number(st.size);
        contentBytes += size;
        await emitHeader(header(rel, 'file', st, { size, xattrs }));
        if (size > 0) {
          ts?.payload(size, rel);
          await w.putFile(fd, size, rel, abs);
          const pad = paddingFor(size);
          if (pad.length > 0) {
            ts?.raw(pad);
            if (!w.tryPut(pad)) await w.put(pad);
          }
        }
      } finally {
        closeSync(fd);
      }
    } else if (st.isSymbolicLink()) {
      const linkname = readLinkTarget(abs, rel);
      contentBytes += Buffer.byteLength(linkname);
      await emitHeader(header(rel, 'symlink', st, { linkname, xattrs }));
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      await emitHeader(header(rel, st.isCharacterDevice() ? 'char' : 'block', st, { devmajor: devMajor(st.rdev), devminor: devMinor(st.rdev), xattrs }));
    } else if (st.isFIFO()) {
      await emitHeader(header(rel, 'fifo', st, { xattrs }));
    }
  }
  ts?.raw(END_OF_ARCHIVE);
  await w.put(END_OF_ARCHIVE);
  await w.flush();
  return { diffId: w.digest(), size: w.total, contentBytes, entries };
}
