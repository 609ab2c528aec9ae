#!/usr/bin/env node
/**
 * Builds layerbox's security corpus: one hostile archive per case, byte by byte.
 *
 * Tar headers are written here by hand (ustar fields, checksums, PAX records, GNU long
 * names, base-256 numbers) so the archives can hold what tar programs refuse to write:
 * `..` names, absolute names, links out of the root, invalid whiteouts, oversized headers,
 * impossible device numbers, truncated data. Gzip members are hand-built too (stored
 * deflate blocks + CRC-32) so the bytes are the same with every zlib.
 *
 *   node test/security/make-corpus.mjs           writes every archive and README.md here
 *   node test/security/make-corpus.mjs --check   exits 1 if a committed file is stale
 *
 * The two large cases (8 GiB of zeros, a gzip bomb) are never files: `zeroFileTar()` and
 * `gzipBomb()` generate them as streams for the test (src/archive/security.test.ts).
 * No dependencies: plain Node ESM.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateRawSync, constants as Z } from 'node:zlib';

export const HERE = dirname(fileURLToPath(import.meta.url));
/** Every entry gets this mtime, so the archives are reproducible. */
export const MTIME = 1700000000;
export const BLOCK = 512;
export const END = Buffer.alloc(2 * BLOCK);

// ------------------------------------------------------------------ raw tar headers

const b = (s) => (Buffer.isBuffer(s) ? s : Buffer.from(String(s), 'utf8'));

/** `len`-byte numeric field: a number as octal (NUL-terminated), a bigint as GNU base-256, a Buffer as is. */
function numField(v, len, what) {
  if (Buffer.isBuffer(v)) {
    if (v.length !== len) throw new Error(`${what}: raw field must be ${len} bytes`);
    return v;
  }
  if (typeof v === 'bigint') return base256(v, len);
  const s = Math.floor(v).toString(8);
  if (s.length > len - 1 || v < 0) throw new Error(`${what}: ${v} does not fit in ${len - 1} octal digits (use a bigint for base-256)`);
  return Buffer.from(s.padStart(len - 1, '0') + '\0', 'latin1');
}

/** GNU base-256: big-endian two's complement with the top bit of the first byte set. */
export function base256(v, len) {
  const out = Buffer.alloc(len);
  let x = v < 0n ? (1n << BigInt(8 * len)) + v : v;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  out[0] |= 0x80;
  return out;
}

function put(block, off, len, value, what) {
  const v = b(value);
  if (v.length > len) throw new Error(`${what} ${JSON.stringify(String(value).slice(0, 40))} is ${v.length} bytes, the field holds ${len} (use PAX or a GNU long name)`);
  v.copy(block, off);
}

/**
 * One 512-byte header block. Fields: name, mode, uid, gid, size, mtime, type (typeflag
 * character), linkname, uname, gname, devmajor, devminor, prefix, magic ('ustar' = POSIX,
 * 'gnu' = old GNU, 'v7' = none), checksum (override: a wrong one).
 */
export function header(o) {
  const h = Buffer.alloc(BLOCK);
  const type = o.type ?? '0';
  put(h, 0, 100, o.name ?? '', 'name');
  h.set(numField(o.mode ?? (type === '5' ? 0o755 : 0o644), 8, 'mode'), 100);
  h.set(numField(o.uid ?? 0, 8, 'uid'), 108);
  h.set(numField(o.gid ?? 0, 8, 'gid'), 116);
  h.set(numField(o.size ?? 0, 12, 'size'), 124);
  h.set(numField(o.mtime ?? MTIME, 12, 'mtime'), 136);
  h.write(type, 156, 1, 'latin1');
  put(h, 157, 100, o.linkname ?? '', 'linkname');
  const magic = o.magic ?? 'ustar';
  if (magic === 'ustar') h.write('ustar\x0000', 257, 8, 'latin1');
  else if (magic === 'gnu') h.write('ustar  \x00', 257, 8, 'latin1');
  if (magic !== 'v7') {
    put(h, 265, 32, o.uname ?? 'root', 'uname');
    put(h, 297, 32, o.gname ?? 'root', 'gname');
    h.set(numField(o.devmajor ?? 0, 8, 'devmajor'), 329);
    h.set(numField(o.devminor ?? 0, 8, 'devminor'), 337);
    if (magic === 'ustar') put(h, 345, 155, o.prefix ?? '', 'prefix');
  }
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  const ck = o.checksum ?? sum;
  h.write(ck.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

export const pad = (n) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

/** Header + payload + padding. `size` may be overridden to lie about the payload. */
export function entry(o, data = Buffer.alloc(0)) {
  const d = b(data);
  return Buffer.concat([header({ size: d.length, ...o }), d, pad(d.length)]);
}

export const file = (name, content = '', o = {}) => entry({ name, type: '0', ...o }, content);
export const dir = (name, o = {}) => entry({ name: name.endsWith('/') ? name : name + '/', type: '5', ...o });
export const symlink = (name, target, o = {}) => entry({ name, type: '2', linkname: target, mode: 0o777, ...o });
export const hardlink = (name, target, o = {}) => entry({ name, type: '1', linkname: target, ...o });
export const chardev = (name, devmajor, devminor, o = {}) => entry({ name, type: '3', devmajor, devminor, mode: 0o666, ...o });
export const blockdev = (name, devmajor, devminor, o = {}) => entry({ name, type: '4', devmajor, devminor, mode: 0o660, ...o });

/** One PAX record, `"%d %s=%s\n"` where %d counts the whole record, itself included. */
export function paxRecord(key, value) {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), b(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body]);
}

/** A PAX extended header ('x', for the next entry) or global header ('g'). */
export function pax(records, o = {}) {
  const data = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
  const type = o.type ?? 'x';
  return entry({ name: o.name ?? (type === 'g' ? 'pax_global_header' : 'PaxHeaders.0/entry'), type, mode: 0o644, uname: '', gname: '', ...o, ...{ type } }, data);
}

/** A GNU long name ('L') or long link name ('K') for the next entry. */
export function gnuLong(kind, value) {
  const data = Buffer.concat([b(value), Buffer.from([0])]);
  return entry({ name: '././@LongLink', type: kind, mode: 0o644, magic: 'gnu', uname: '', gname: '' }, data);
}

/** Concatenates entries and ends the archive with two zero blocks (unless `end: false`). */
export function tar(parts, o = {}) {
  return Buffer.concat([...parts.flat(), ...(o.end === false ? [] : [END])]);
}

// ------------------------------------------------------------------ gzip by hand

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf, crc = 0) {
  let c = ~crc >>> 0;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** A gzip member of stored (uncompressed) deflate blocks: identical bytes with every zlib. */
export function gzipStored(data) {
  const parts = [Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])];
  let off = 0;
  do {
    const n = Math.min(0xffff, data.length - off);
    const last = off + n >= data.length;
    const h = Buffer.alloc(5);
    h[0] = last ? 1 : 0;
    h.writeUInt16LE(n, 1);
    h.writeUInt16LE(~n & 0xffff, 3);
    parts.push(h, data.subarray(off, off + n));
    off += n;
  } while (off < data.length);
  const t = Buffer.alloc(8);
  t.writeUInt32LE(crc32(data), 0);
  t.writeUInt32LE(data.length >>> 0, 4);
  parts.push(t);
  return Buffer.concat(parts);
}

// ------------------------------------------------------------------ streams for the large cases

/**
 * An uncompressed layer holding one regular file of `size` zero bytes (8 GiB by default:
 * over the 11-digit octal limit, so the size travels in a PAX record). Each chunk is a
 * fresh buffer: if anything downstream kept chunks, the process's memory would grow.
 */
export async function* zeroFileTar(size = 8 * 1024 ** 3, chunk = 1 << 20, name = 'zeros') {
  yield Buffer.concat([pax([['size', String(size)]]), header({ name, type: '0', size: 0 })]);
  let left = size;
  while (left > 0) {
    const n = Math.min(chunk, left);
    yield Buffer.allocUnsafe(n).fill(0);
    left -= n;
  }
  yield Buffer.concat([pad(size), END]);
}

/**
 * An endless gzip stream of a tar whose single file claims 1 TiB of zeros (with
 * `entries`: of a tar of ever more 1 MiB files of zeros, none claiming much). zlib makes two
 * independent (full-flushed, byte-aligned, non-final) deflate pieces once: the tar header
 * and 1 MiB of zeros (~1 KiB compressed); the zero piece is then repeated — each ~1 KiB
 * chunk inflates to 1 MiB. Stops after `maxChunks` pieces (so a failing test ends) without
 * a gzip trailer: a decompressor that got that far reports a truncated stream.
 * `onClose` runs when the consumer stops reading (return()) or the stream ends.
 */
export async function* gzipBomb(o = {}) {
  const maxChunks = o.maxChunks ?? 64 * 1024;
  const flush = { finishFlush: Z.Z_FULL_FLUSH };
  // o.entries: no entry declares a huge size; each piece is a new 1 MiB file of zeros
  const head = o.entries ? Buffer.alloc(0) : Buffer.concat([pax([['size', String(1024 ** 4)]]), header({ name: 'bomb', type: '0', size: 0 })]);
  const z = deflateRawSync(o.entries ? Buffer.concat([header({ name: 'bomb', type: '0', size: 1 << 20 }), Buffer.alloc(1 << 20)]) : Buffer.alloc(1 << 20), flush);
  try {
    yield Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), deflateRawSync(head, flush)]);
    for (let i = 0; i < maxChunks; i++) yield Buffer.from(z);
  } finally {
    o.onClose?.();
  }
}

// ------------------------------------------------------------------ OCI image layouts

export const sha256 = (data) => 'sha256:' + createHash('sha256').update(data).digest('hex');
const json = (v) => Buffer.from(JSON.stringify(v));

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** A minimal image config for layers with these diffIDs. */
export function imageConfig(diffIds) {
  return json({
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/true'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map(() => ({ created: '2023-11-14T22:13:20Z', created_by: 'layerbox security corpus' })),
  });
}

/**
 * An oci-archive (tar of an OCI image layout). `blobs` are stored under the name given
 * (normally their digest, but a case may lie); `index` is index.json.
 */
export function ociArchive(index, blobs) {
  const parts = [file('oci-layout', '{"imageLayoutVersion":"1.0.0"}'), file('index.json', json(index)), dir('blobs'), dir('blobs/sha256')];
  for (const [digest, bytes] of blobs) parts.push(file(`blobs/sha256/${digest.replace(/^sha256:/, '')}`, bytes));
  return tar(parts);
}

/** One image: a gzip layer, its config and manifest; `mutate` may rewrite the manifest's descriptors. */
function ociImage(layerTar, o = {}) {
  const layerGz = gzipStored(layerTar);
  const config = imageConfig([sha256(layerTar)]);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: o.configDigest ?? sha256(config), size: config.length },
    layers: [{ mediaType: OCI_LAYER_GZ, digest: o.layerDigest ?? sha256(layerGz), size: layerGz.length }],
  };
  const mbytes = json(manifest);
  const storedLayer = o.tamper ? o.tamper(layerGz) : layerGz;
  const blobs = [
    [sha256(config), config],
    [sha256(layerGz), storedLayer],
    [sha256(mbytes), mbytes],
  ];
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: OCI_MANIFEST, digest: o.indexDigest ?? sha256(mbytes), size: mbytes.length, annotations: { 'org.opencontainers.image.ref.name': `${o.name ?? 'security/case'}:latest` } }],
  };
  return ociArchive(index, blobs);
}

const innocentLayer = () => tar([dir('app'), file('app/hello.txt', 'hello\n')]);

// ------------------------------------------------------------------ the cases

/** A hex string of `n` characters (deterministic). */
const hex = (n, seed = 'layerbox') => createHash('sha512').update(seed).digest('hex').repeat(4).slice(0, n);

const MiB = 1 << 20;
const deep = (n) => Array.from({ length: n }, () => 'a').join('/');

/**
 * Each case: file name (after the CVE or the RELIABILITY item it mirrors), the item, a
 * one-line description, the expected outcome (`refused: CODE` or `contained: where`), and
 * the bytes. `kind` is 'layer' (a layer tar for the applier) or 'oci-archive'.
 */
export const CASES = [
  // ---------------------------------------------------------------- item 1: names
  {
    file: 'item1-dotdot-names.tar',
    item: 1,
    what: 'names with `..`: `../escape-dotdot`, `../../layerbox-sec-new`, `a/../../b/../../c`, `../victim/x`',
    expect: { contained: 'root/escape-dotdot, root/layerbox-sec-new, root/c, root/victim/x; ../victim/x untouched' },
    build: () => tar([file('../escape-dotdot', 'evil\n'), file('../../layerbox-sec-new', 'evil\n'), file('a/../../b/../../c', 'evil\n'), file('../victim/x', 'evil\n')]),
  },
  {
    file: 'item1-absolute-names.tar',
    item: 1,
    what: 'absolute names: `/etc/layerbox-security-abs`, `/tmp/layerbox-sec-canary`, `/../../layerbox-sec-new`',
    expect: { contained: 'root/etc/layerbox-security-abs, root/tmp/layerbox-sec-canary, root/layerbox-sec-new; the host /etc and /tmp untouched' },
    build: () => tar([file('/etc/layerbox-security-abs', 'evil\n'), file('/tmp/layerbox-sec-canary', 'evil\n'), file('/../../layerbox-sec-new', 'evil\n')]),
  },
  {
    file: 'item1-many-slashes.tar',
    item: 1,
    what: 'names with runs of slashes: `////slashes/file`, `a//b///c`, `//`',
    expect: { contained: 'root/slashes/file, root/a/b/c; `//` names the root' },
    build: () => tar([file('////slashes/file', 'x\n'), file('a//b///c', 'x\n'), dir('//', { mode: 0o755 })]),
  },
  {
    file: 'item1-dot-entries.tar',
    item: 1,
    what: '`.`, `./`, `/.` entries (the root itself), `./dotfile`, `/./d/./f`, `d/.`, a file named `.`',
    expect: { contained: 'the root stays a 0755 directory; root/dotfile, root/d/f; a file named `.` is ignored' },
    build: () => tar([dir('.', { mode: 0o755 }), dir('./', { mode: 0o755 }), dir('/.', { mode: 0o755 }), file('./dotfile', 'x\n'), file('/./d/./f', 'x\n'), dir('d/.', { mode: 0o750 }), file('.', 'evil\n'), file('/.', 'evil\n')]),
  },
  {
    file: 'CVE-2021-29136-root-symlink.tar',
    item: 1,
    what: 'a symlink entry for the root itself (`.` -> `/`, `./` -> `/`, `/` -> `../victim`), then `./etc/layerbox-29136` and `./x`',
    expect: { contained: 'the root symlinks are ignored; root/etc/layerbox-29136 and root/x land inside; the root is still a directory' },
    build: () => tar([symlink('.', '/'), symlink('./', '/'), symlink('/', '../victim'), file('./etc/layerbox-29136', 'inside\n'), file('./x', 'inside\n')]),
  },
  {
    file: 'item1-nul-in-name.tar',
    item: 1,
    what: 'a PAX path with a NUL byte (`ok\\0/../../layerbox-sec-new`)',
    expect: { refused: 'TAR_BAD_NAME' },
    build: () => tar([pax([['path', Buffer.from('ok\0/../../layerbox-sec-new')]]), file('placeholder', 'x\n')]),
  },
  // ---------------------------------------------------------------- item 2: symlinks
  {
    file: 'item2-write-through-symlink.tar',
    item: 2,
    what: '`link -> ../victim`, then `link/file` and `link/x`',
    expect: { contained: 'root/victim/file, root/victim/x (the link resolved inside the root); ../victim untouched' },
    build: () => tar([symlink('link', '../victim'), file('link/file', 'evil\n'), file('link/x', 'evil\n')]),
  },
  {
    file: 'item2-nested-symlink.tar',
    item: 2,
    what: '`dir/link -> ../../victim`, then `dir/link/new/file`',
    expect: { contained: 'root/victim/new/file' },
    build: () => tar([dir('dir'), symlink('dir/link', '../../victim'), file('dir/link/new/file', 'evil\n')]),
  },
  {
    file: 'item2-absolute-symlink.tar',
    item: 2,
    what: '`localetc -> /etc`, then `localetc/x` and `localetc/passwd`',
    expect: { contained: 'root/etc/x, root/etc/passwd; the host /etc untouched' },
    build: () => tar([symlink('localetc', '/etc'), file('localetc/x', 'inside\n'), file('localetc/passwd', 'inside\n')]),
  },
  {
    file: 'item2-symlink-chain.tar',
    item: 2,
    what: '`a -> b`, `b -> /../../victim`, `up -> ..`, then `a/f` and `up/up/victim/g`',
    expect: { contained: 'root/victim/f and root/victim/g' },
    build: () => tar([symlink('a', 'b'), symlink('b', '/../../victim'), symlink('up', '..'), file('a/f', 'evil\n'), file('up/up/victim/g', 'evil\n')]),
  },
  {
    file: 'item2-symlink-loop.tar',
    item: 2,
    what: '`loop1 -> loop2`, `loop2 -> loop1`, then `loop1/f`',
    expect: { refused: 'LAYER_SYMLINK_LOOP' },
    build: () => tar([symlink('loop1', 'loop2'), symlink('loop2', 'loop1'), file('loop1/f', 'x\n')]),
  },
  {
    file: 'item2-through-lower-symlinks.tar',
    item: 2,
    what: 'entries under names that are hostile symlinks in the lower layer: `escape/pwned` (escape -> ../victim), `escape-abs/pwned` (escape-abs -> the victim\'s absolute path)',
    expect: { contained: 'overlay: root/escape/pwned, root/escape-abs/pwned; delete: root/victim/pwned and root/<victim path>/pwned' },
    build: () => tar([file('escape/pwned', 'evil\n'), file('escape-abs/pwned', 'evil\n')]),
  },
  // ---------------------------------------------------------------- item 3: hard links
  {
    file: 'item3-hardlink-dotdot.tar',
    item: 3,
    what: 'hard link `h -> ../victim/x`',
    expect: { refused: 'LAYER_BAD_HARDLINK' },
    build: () => tar([hardlink('h', '../victim/x')]),
  },
  {
    file: 'item3-hardlink-rooted-dotdot.tar',
    item: 3,
    what: 'hard link `h -> /../victim/x`',
    expect: { refused: 'LAYER_BAD_HARDLINK' },
    build: () => tar([hardlink('h', '/../victim/x')]),
  },
  {
    file: 'item3-hardlink-sibling-prefix.tar',
    item: 3,
    what: 'hard link `h -> ../root-evil/x` (a sibling whose name starts with the root\'s)',
    expect: { refused: 'LAYER_BAD_HARDLINK' },
    build: () => tar([hardlink('h', '../root-evil/x')]),
  },
  {
    file: 'item3-hardlink-through-symlink.tar',
    item: 3,
    what: '`link -> ../victim`, then hard link `h -> link/x`',
    expect: { refused: 'LAYER_BAD_HARDLINK' },
    build: () => tar([symlink('link', '../victim'), hardlink('h', 'link/x')]),
  },
  {
    file: 'item3-hardlink-through-symlink-inside.tar',
    item: 3,
    what: '`real/f`, `s -> /real`, then hard link `h -> s/f`',
    expect: { contained: 'root/h is a hard link of root/real/f' },
    build: () => tar([dir('real'), file('real/f', 'inside\n'), symlink('s', '/real'), hardlink('h', 's/f')]),
  },
  {
    file: 'item3-hardlink-to-symlink.tar',
    item: 3,
    what: '`s -> ../victim/x`, then hard link `h -> s`',
    expect: { contained: 'root/h is the symlink itself (same inode as root/s), not the victim' },
    build: () => tar([symlink('s', '../victim/x'), hardlink('h', 's')]),
  },
  {
    file: 'CVE-2021-32760-chmod-through-link.tar',
    item: 3,
    what: '`s -> ../victim/x`, hard link `h -> s` with mode 04777 and uid 4242; `t -> ../victim/y` then a file `t` with mode 04777',
    expect: { contained: 'the victim keeps its modes and owners; root/h is a symlink, root/t a 04777 regular file' },
    build: () => tar([symlink('s', '../victim/x'), hardlink('h', 's', { mode: 0o4777, uid: 4242, gid: 4242 }), symlink('t', '../victim/y'), file('t', 'replaced\n', { mode: 0o4777 })]),
  },
  {
    file: 'item3-hardlink-to-directory.tar',
    item: 3,
    what: 'hard link `h -> d` where `d` is a directory',
    expect: { refused: 'LAYER_BAD_HARDLINK' },
    build: () => tar([dir('d'), hardlink('h', 'd')]),
  },
  {
    file: 'item3-hardlink-to-root.tar',
    item: 3,
    what: 'hard link `h -> ../..` (the root)',
    expect: { refused: 'LAYER_BAD_HARDLINK' },
    build: () => tar([hardlink('h', '../..')]),
  },
  // ---------------------------------------------------------------- item 4: replacing
  {
    file: 'item4-file-over-symlink.tar',
    item: 4,
    what: '`f -> ../victim/x`, then a file `f`; a file `lowerf` over the lower layer\'s `lowerf -> ../victim/x`; a directory `ds/` over `ds -> ../victim`; a hard link `hl` over `hl -> ../victim/y`',
    expect: { contained: 'root/f and root/lowerf regular files, root/ds a directory, root/hl a link of root/f; the victim untouched' },
    build: () =>
      tar([
        symlink('f', '../victim/x'),
        file('f', 'replaced\n'),
        file('lowerf', 'replaced\n'),
        symlink('ds', '../victim'),
        dir('ds', { mode: 0o700 }),
        file('ds/inner', 'inside\n'),
        symlink('hl', '../victim/y'),
        hardlink('hl', 'f'),
      ]),
  },
  {
    file: 'item4-file-then-dir.tar',
    item: 4,
    what: 'a file `a`, then a directory `a/` and `a/inner`',
    expect: { contained: 'root/a is a directory holding inner' },
    build: () => tar([file('a', 'first\n'), dir('a', { mode: 0o711 }), file('a/inner', 'inner\n')]),
  },
  {
    file: 'item4-dir-then-file.tar',
    item: 4,
    what: 'a directory `b/` with `b/child`, then a file `b`',
    expect: { contained: 'root/b is a regular file' },
    build: () => tar([dir('b'), file('b/child', 'child\n'), file('b', 'last\n', { mode: 0o600 })]),
  },
  {
    file: 'item4-dir-over-dir.tar',
    item: 4,
    what: '`d/` (0700, uid 1) with `d/keep`, then `d/` again (0750, uid 2, mtime 1600000000, xattr user.layerbox=merged); `lowerdir/` (0711) over the lower layer\'s lowerdir',
    expect: { contained: 'root/d keeps `keep` and takes the later metadata; root/lowerdir keeps the lower `keep`' },
    build: () =>
      tar([
        dir('d', { mode: 0o700, uid: 1, gid: 1 }),
        file('d/keep', 'keep\n'),
        pax([['SCHILY.xattr.user.layerbox', 'merged']]),
        dir('d', { mode: 0o750, uid: 2, gid: 2, mtime: 1600000000 }),
        dir('lowerdir', { mode: 0o711 }),
      ]),
  },
  {
    file: 'item4-symlink-over-dir.tar',
    item: 4,
    what: 'a directory `d/` (0777) with `d/f`, then `d -> ../victim`, then `d/g`',
    expect: { contained: 'root/d is the symlink; root/victim/g; the victim keeps its modes' },
    build: () => tar([dir('d', { mode: 0o777 }), file('d/f', 'x\n'), symlink('d', '../victim'), file('d/g', 'evil\n')]),
  },
  // ---------------------------------------------------------------- item 5: whiteouts
  { file: 'item5-whiteout-empty.tar', item: 5, what: 'whiteout `.wh.`', expect: { refused: 'LAYER_BAD_WHITEOUT' }, build: () => tar([file('.wh.')]) },
  { file: 'item5-whiteout-dot.tar', item: 5, what: 'whiteout `.wh..`', expect: { refused: 'LAYER_BAD_WHITEOUT' }, build: () => tar([file('.wh..')]) },
  { file: 'item5-whiteout-dotdot.tar', item: 5, what: 'whiteout `.wh...` (would delete the parent)', expect: { refused: 'LAYER_BAD_WHITEOUT' }, build: () => tar([file('.wh...')]) },
  { file: 'item5-whiteout-nested-dot.tar', item: 5, what: 'whiteout `x/.wh..`', expect: { refused: 'LAYER_BAD_WHITEOUT' }, build: () => tar([dir('x'), file('x/.wh..')]) },
  {
    file: 'item5-whiteout-own-directory.tar',
    item: 5,
    what: '`wh/.wh.lowerfile`, `dir/../.wh.victim`, `escape/.wh.x` (escape -> ../victim in the lower layer)',
    expect: { contained: 'only root/wh/lowerfile and root/victim are hidden (overlay: 0/0 devices; delete: removed); the victim untouched' },
    build: () => tar([file('wh/.wh.lowerfile'), file('dir/../.wh.victim'), file('escape/.wh.x')]),
  },
  {
    file: 'item5-whiteout-link.tar',
    item: 5,
    what: '`.wh.escape` and `.wh.escape-abs`, whiteouts of the lower layer\'s symlinks to the victim',
    expect: { contained: 'the links are gone (delete) or replaced by 0/0 devices (overlay); their targets untouched' },
    build: () => tar([file('.wh.escape'), file('.wh.escape-abs')]),
  },
  {
    file: 'item5-whiteout-same-layer.tar',
    item: 5,
    what: '`wh/mine`, then `wh/.wh.mine`; `wh/.wh.lowerdir`',
    expect: { contained: 'root/wh/mine survives; root/wh/lowerdir hidden' },
    build: () => tar([file('wh/mine', 'mine\n'), file('wh/.wh.mine'), file('wh/.wh.lowerdir')]),
  },
  {
    file: 'item5-opaque-after-entries.tar',
    item: 5,
    what: '`opq/new1`, `opq/sub/new2`, then `opq/.wh..wh..opq`',
    expect: { contained: 'new1 and new2 survive; overlay: trusted.overlay.opaque=y on root/opq; delete: lower1 and lower2 removed' },
    build: () => tar([dir('opq'), file('opq/new1', 'new1\n'), file('opq/sub/new2', 'new2\n'), file('opq/.wh..wh..opq')]),
  },
  {
    file: 'item5-opaque-before-entries.tar',
    item: 5,
    what: '`opq/.wh..wh..opq`, then `opq/new1`, `opq/sub/new2`',
    expect: { contained: 'same as after-entries' },
    build: () => tar([file('opq/.wh..wh..opq'), file('opq/new1', 'new1\n'), file('opq/sub/new2', 'new2\n')]),
  },
  {
    file: 'item5-opaque-nested-markers.tar',
    item: 5,
    what: '`opq/.wh..wh..opq` and `opq/sub/.wh..wh..opq`, nothing else',
    expect: { contained: 'overlay: both directories opaque; delete: opq/sub stays as an empty directory, lower files gone' },
    build: () => tar([file('opq/.wh..wh..opq'), file('opq/sub/.wh..wh..opq')]),
  },
  {
    file: 'item5-opaque-then-symlink.tar',
    item: 5,
    what: '`opq/.wh..wh..opq`, then `opq -> ../victim` (the deferred opaque clean-up must not follow the link)',
    expect: { contained: 'root/opq is the symlink; the victim untouched' },
    build: () => tar([file('opq/.wh..wh..opq'), symlink('opq', '../victim')]),
  },
  {
    file: 'item5-whiteout-then-symlink-chmod.tar',
    item: 5,
    what: '`lowerdir/sub/` (0777), `.wh.lowerdir`, then `lowerdir -> ../victim` (the deferred chmod of lowerdir/sub must not follow the link)',
    expect: { contained: 'root/lowerdir is the symlink; victim/sub keeps mode 0755' },
    build: () => tar([dir('lowerdir/sub', { mode: 0o777, mtime: 1000000000 }), file('.wh.lowerdir'), symlink('lowerdir', '../victim')]),
  },
  // ---------------------------------------------------------------- item 6: xattrs
  {
    file: 'item6-overlay-xattrs.tar',
    item: 6,
    what: 'xattrs trusted.overlay.opaque, trusted.overlay.redirect, trusted.overlay.metacopy, user.overlay.whiteout, user.overlay.opaque beside user.layerbox.ok',
    expect: { contained: 'only user.layerbox.ok is set' },
    build: () =>
      tar([
        pax([['SCHILY.xattr.trusted.overlay.opaque', 'y'], ['SCHILY.xattr.user.layerbox.ok', '1']]),
        dir('xd'),
        pax([['SCHILY.xattr.trusted.overlay.redirect', '/etc'], ['SCHILY.xattr.trusted.overlay.metacopy', ''], ['SCHILY.xattr.user.layerbox.ok', '1']]),
        file('xf', 'x\n'),
        pax([['SCHILY.xattr.user.overlay.whiteout', 'y'], ['SCHILY.xattr.user.overlay.opaque', 'y'], ['SCHILY.xattr.user.layerbox.ok', '1']]),
        file('xg', 'x\n'),
      ]),
  },
  {
    file: 'item6-xattr-name-with-NUL.tar',
    item: 6,
    what: 'a PAX record SCHILY.xattr.user.a\\0b (a NUL inside the xattr name) on `f`',
    expect: { refused: 'TAR_BAD_XATTR' },
    build: () => tar([file('before', 'x\n'), pax([['SCHILY.xattr.user.a\0b', '1']]), file('f', 'x\n')]),
  },
  {
    file: 'item6-xattr-name-too-long.tar',
    item: 6,
    what: 'an xattr name of 300 bytes (the kernel allows 255)',
    expect: { refused: 'TAR_BAD_XATTR' },
    build: () => tar([pax([['SCHILY.xattr.user.' + 'n'.repeat(295), '1']]), file('f', 'x\n')]),
  },
  // ---------------------------------------------------------------- item 7: limits
  {
    file: 'item7-pax-header-over-1MiB.tar',
    item: 7,
    what: 'a PAX header of 1 MiB + 1 byte',
    expect: { refused: 'TAR_HEADER_TOO_LARGE' },
    build: () => {
      const rec = paxRecord('comment', 'a'.repeat(MiB));
      return tar([entry({ name: 'PaxHeaders.0/big', type: 'x', size: rec.length }, rec), file('big', 'x\n')]);
    },
  },
  {
    file: 'item7-gnu-longname-over-1MiB.tar',
    item: 7,
    what: 'a GNU long name (L) of 1 MiB + 1 byte',
    expect: { refused: 'TAR_HEADER_TOO_LARGE' },
    build: () => tar([gnuLong('L', 'n'.repeat(MiB)), file('short', 'x\n')]),
  },
  {
    file: 'item7-gnu-longlink-over-1MiB.tar',
    item: 7,
    what: 'a GNU long link name (K) of 1 MiB + 1 byte',
    expect: { refused: 'TAR_HEADER_TOO_LARGE' },
    build: () => tar([gnuLong('K', 'l'.repeat(MiB)), symlink('s', 'short')]),
  },
  {
    file: 'item7-name-over-4KiB.tar',
    item: 7,
    what: 'a PAX path of 5000 bytes',
    expect: { refused: 'TAR_NAME_TOO_LONG' },
    build: () => tar([pax([['path', 'n'.repeat(5000)]]), file('short', 'x\n')]),
  },
  {
    file: 'CVE-2024-28863-deep-directories.tar',
    item: 7,
    what: 'a name 1100 directories deep (node-tar CVE-2024-28863)',
    expect: { refused: 'TAR_TOO_DEEP' },
    build: () => tar([pax([['path', deep(1100) + '/f']]), file('short', 'x\n')]),
  },
  {
    file: 'CVE-2024-28863-deep-via-symlinks.tar',
    item: 7,
    what: 'directories 1000 deep, `s` -> their bottom, then 1000 more under `s/` (each name under the limit, the resolved path 2000 deep)',
    expect: { refused: 'LAYER_TOO_DEEP' },
    build: () => tar([pax([['path', deep(1000)]]), dir('placeholder'), pax([['path', 's'], ['linkpath', deep(1000)]]), symlink('placeholder2', 'x'), pax([['path', 's/' + deep(1000)]]), dir('placeholder3')]),
  },
  {
    file: 'item7-resolved-path-too-long.tar',
    item: 7,
    what: 'a 3015-byte directory path, `s` -> it, then `s/` + the same path (each name under 4096 bytes, the resolved path over)',
    expect: { refused: 'LAYER_TOO_DEEP' },
    build: () => {
      const long = Array.from({ length: 15 }, () => 'd'.repeat(200)).join('/');
      return tar([pax([['path', long]]), dir('placeholder'), pax([['linkpath', long]]), symlink('s', 'x'), pax([['path', 's/' + long]]), dir('placeholder3')]);
    },
  },
  {
    file: 'item7-gnu-sparse.tar',
    item: 7,
    what: 'a GNU sparse file (type S)',
    expect: { refused: 'TAR_SPARSE' },
    build: () => tar([entry({ name: 'sparse', type: 'S', magic: 'gnu' }, 'x'.repeat(512))]),
  },
  {
    file: 'item7-pax-sparse.tar',
    item: 7,
    what: 'a PAX GNU.sparse file claiming a 1 TiB real size',
    expect: { refused: 'TAR_SPARSE' },
    build: () => tar([pax([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.realsize', String(1024 ** 4)], ['GNU.sparse.name', 'sparse']]), file('GNUSparseFile.0/sparse', '1\n0\n512\n')]),
  },
  {
    file: 'item7-huge-size-truncated.tar',
    item: 7,
    what: 'a file whose PAX size says 1 PiB, followed by 1 KiB of data and the end (refused at its header: more than the layer quota)',
    expect: { refused: 'LAYER_TOO_LARGE' },
    build: () => tar([pax([['size', String(1024 ** 5)]]), header({ name: 'huge', size: 0 }), Buffer.alloc(1024, 0x61)], { end: false }),
  },
  // ---------------------------------------------------------------- item 8: devices, global headers
  { file: 'item8-device-major-too-large.tar', item: 8, what: 'a character device 4096:0 (majors have 12 bits)', expect: { refused: 'LAYER_BAD_DEVICE' }, build: () => tar([chardev('dev/bad', 4096, 0)]) },
  { file: 'item8-device-minor-too-large.tar', item: 8, what: 'a block device 8:1048576 (minors have 20 bits)', expect: { refused: 'LAYER_BAD_DEVICE' }, build: () => tar([blockdev('dev/bad', 8, 0x100000)]) },
  { file: 'item8-device-base256-huge.tar', item: 8, what: 'a character device whose major is 2^40 (base-256)', expect: { refused: 'LAYER_BAD_DEVICE' }, build: () => tar([chardev('dev/bad', 1n << 40n, 0)]) },
  { file: 'item8-device-negative.tar', item: 8, what: 'a character device whose minor is -1 (base-256)', expect: { refused: 'TAR_BAD_NUMBER' }, build: () => tar([chardev('dev/bad', 1, -1n)]) },
  {
    file: 'item8-device-limits.tar',
    item: 8,
    what: 'devices at the limits: char 4095:1048575, block 0:0, a FIFO',
    expect: { contained: 'root/dev/max (4095:1048575), root/dev/zero0, root/dev/fifo' },
    build: () => tar([chardev('dev/max', 4095, 0xfffff), blockdev('dev/zero0', 0, 0), entry({ name: 'dev/fifo', type: '6', mode: 0o600 })]),
  },
  {
    file: 'item8-pax-global-header.tar',
    item: 8,
    what: 'a PAX global header (path=../../layerbox-sec-new, size=1048576, uid=4242, an overlay xattr), then `global-normal`',
    expect: { contained: 'root/global-normal with its own name, size and owner; the global header ignored' },
    build: () =>
      tar([
        pax([['path', '../../layerbox-sec-new'], ['linkpath', '/etc/passwd'], ['size', '1048576'], ['uid', '4242'], ['SCHILY.xattr.trusted.overlay.opaque', 'y']], { type: 'g' }),
        file('global-normal', 'normal\n'),
      ]),
  },
  // ---------------------------------------------------------------- malformed archives
  {
    file: 'truncated-file-data.tar',
    item: 'archive',
    what: 'a file header for 1000 bytes followed by 100',
    expect: { refused: 'TAR_TRUNCATED' },
    build: () => Buffer.concat([header({ name: 'cut', size: 1000 }), Buffer.alloc(100, 0x62)]),
  },
  {
    file: 'truncated-header.tar',
    item: 'archive',
    what: 'one complete entry, then 300 bytes of the next header',
    expect: { refused: 'TAR_TRUNCATED' },
    build: () => Buffer.concat([file('first', 'first\n'), header({ name: 'second', size: 0 }).subarray(0, 300)]),
  },
  {
    file: 'bad-checksum.tar',
    item: 'archive',
    what: 'a header whose checksum is wrong',
    expect: { refused: 'TAR_BAD_CHECKSUM' },
    build: () => tar([entry({ name: 'f', checksum: 1234 }, 'x\n')]),
  },
  {
    file: 'blob-digest-mismatch.tar.gz',
    item: 'archive',
    what: 'a gzip layer; the test expects it under the digest of the same tar gzipped with another header byte',
    expect: { refused: 'BLOB_DIGEST_MISMATCH' },
    build: () => gzipStored(innocentLayer()),
  },
  // ---------------------------------------------------------------- item 9: digests (OCI layouts)
  {
    file: 'CVE-2024-3727-index-digest-traversal.oci.tar',
    item: 9,
    kind: 'oci-archive',
    what: 'index.json names the manifest `sha256:../../../layerbox-canary`',
    expect: { refused: 'INVALID_DIGEST' },
    build: () => ociImage(innocentLayer(), { indexDigest: 'sha256:../../../layerbox-canary', name: 'security/index-traversal' }),
  },
  {
    file: 'CVE-2024-3727-layer-digest-traversal.oci.tar',
    item: 9,
    kind: 'oci-archive',
    what: 'a (valid) manifest whose layer digest is `sha256:../../../layerbox-canary`',
    expect: { refused: 'INVALID_DIGEST' },
    build: () => ociImage(innocentLayer(), { layerDigest: 'sha256:../../../layerbox-canary', name: 'security/layer-traversal' }),
  },
  {
    file: 'CVE-2024-3727-config-digest-traversal.oci.tar',
    item: 9,
    kind: 'oci-archive',
    what: 'a (valid) manifest whose config digest is `sha256:../../../layerbox-canary`',
    expect: { refused: 'INVALID_DIGEST' },
    build: () => ociImage(innocentLayer(), { configDigest: 'sha256:../../../layerbox-canary', name: 'security/config-traversal' }),
  },
  {
    file: 'item9-digest-uppercase.oci.tar',
    item: 9,
    kind: 'oci-archive',
    what: 'index.json names the manifest with uppercase hex',
    expect: { refused: 'INVALID_DIGEST' },
    build: () => ociImage(innocentLayer(), { indexDigest: 'sha256:' + hex(64).toUpperCase(), name: 'security/uppercase' }),
  },
  {
    file: 'item9-digest-wrong-length.oci.tar',
    item: 9,
    kind: 'oci-archive',
    what: 'index.json names the manifest with 63 hex characters',
    expect: { refused: 'INVALID_DIGEST' },
    build: () => ociImage(innocentLayer(), { indexDigest: 'sha256:' + hex(63), name: 'security/wrong-length' }),
  },
  {
    file: 'item9-digest-md5.oci.tar',
    item: 9,
    kind: 'oci-archive',
    what: 'index.json names the manifest `md5:<32 hex>`',
    expect: { refused: 'UNSUPPORTED_DIGEST' },
    build: () => ociImage(innocentLayer(), { indexDigest: 'md5:' + hex(32), name: 'security/md5' }),
  },
  {
    file: 'oci-layer-digest-mismatch.oci.tar',
    item: 'archive',
    kind: 'oci-archive',
    what: 'a layer blob stored under its manifest digest, one byte changed (the gzip header\'s OS byte: still valid gzip, same tar)',
    expect: { refused: 'BLOB_DIGEST_MISMATCH' },
    build: () =>
      ociImage(innocentLayer(), {
        name: 'security/digest-mismatch',
        tamper: (gz) => {
          const t = Buffer.from(gz);
          t[9] = 0xff;
          return t;
        },
      }),
  },
];

/** Builds every case: Map file name -> bytes. */
export function buildCorpus() {
  const out = new Map();
  for (const c of CASES) {
    if (out.has(c.file)) throw new Error(`duplicate case file ${c.file}`);
    out.set(c.file, c.build());
  }
  return out;
}

function outcome(e) {
  return e.refused ? `refused: \`${e.refused}\`` : `contained: ${e.contained}`;
}

export function readme() {
  const rows = CASES.map((c) => `| ${c.item} | \`${c.file}\` | ${c.what.replace(/\|/g, '\\|')} | ${outcome(c.expect).replace(/\|/g, '\\|')} |`);
  return `# Security corpus

Hostile archives for layerbox's extraction and loading paths, one per case, built byte by byte
by \`make-corpus.mjs\` (raw ustar headers, PAX records, GNU long names, base-256 numbers,
hand-built gzip), so they can hold what tar programs refuse to write. Each file is named after
the CVE it mirrors or the item of \`RELIABILITY.md\` (items 1–9) it tests. Regenerate with
\`node test/security/make-corpus.mjs\` (this README included); the test fails when a committed
file differs from what the script builds.

The test is \`src/archive/security.test.ts\`:

* **Applier level** — every layer archive is extracted with \`unpackLayer\` into \`work/root/\`
  twice: overlay whiteouts into an empty root (\`fresh\`), and delete-mode whiteouts over a
  pre-populated lower copy (which holds hostile symlinks of its own: \`escape -> ../victim\`,
  \`escape-abs -> <absolute path of victim>\`, \`lowerf -> ../victim/x\`). Beside the root lie
  \`work/victim/\` and \`work/root-evil/\`; after every run, everything in \`work/\` outside
  \`root/\` (content, mode, owner, link count, ctime, xattrs), a canary in /tmp and the host
  /etc names the archives aim at must be unchanged, and the outcome must be exactly the one
  below: refused with that \`EngineError\` code, or contained where it says.
* **Store level** — layers from this corpus wrapped in docker-archives, and the \`.oci.tar\`
  cases, go through the real CLI (\`layerbox load\`): refused with a clear message and a
  non-zero exit, nothing new listed, no temporary snapshot left, every blob's bytes match its
  name, and a normal load still works afterwards.

Two cases are not files, because they are large: the test generates them as streams.

| Item | Case | Input | Expected |
|---|---|---|---|
| 7 | 8 GiB of zeros (stream: \`zeroFileTar()\`) | one regular file of 8 GiB of zeros, size in a PAX record | contained: the file is 8 GiB long but sparse (no blocks), and the process's memory does not grow |
| 7 | gzip bomb (stream: \`gzipBomb()\`) | an endless gzip stream (each ~1 KiB inflates to 1 MiB) of a tar claiming a 1 TiB file | refused: \`LAYER_TOO_LARGE\` at that header (it declares more than the \`maxBytes\` quota), the source closed |
| 7 | gzip bomb of files (stream: \`gzipBomb({ entries: true })\`) | the same, of ever more 1 MiB files of zeros | refused: \`LAYER_TOO_LARGE\` at the \`maxBytes\` quota, memory flat, the source closed |

| Item | File | Input | Expected |
|---|---|---|---|
${rows.join('\n')}

What the corpus found (fixed in \`src/archive/apply.ts\` and \`unpack.ts\`):

* \`item5-opaque-then-symlink.tar\` (delete mode): the deferred opaque clean-up followed a
  symlink that replaced the opaque directory later in the same layer, and deleted the files
  of the directory the link pointed at (outside the root).
* \`item5-whiteout-then-symlink-chmod.tar\` (delete mode): after a whiteout removed a
  directory, its subdirectory's deferred chmod/utimes still ran — through a symlink that
  took the directory's name — on a directory outside the root.
* \`item5-opaque-nested-markers.tar\` (delete mode): nested opaque markers crashed with ENOENT.
* \`CVE-2024-28863-deep-via-symlinks.tar\`, \`item7-resolved-path-too-long.tar\`: names under the
  tar limits resolved, through the layer's symlinks, to a tree 2000 directories deep (or past
  PATH_MAX): now \`LAYER_TOO_DEEP\`.
* \`item6-xattr-name-with-NUL.tar\`: a NUL inside a \`SCHILY.xattr.\` name reached \`lsetxattr\` and
  died with an uncaught \`TypeError: string argument contains NUL\`; an over-long name gave a
  bare ERANGE. Both are now \`TAR_BAD_XATTR\`, naming the entry (in \`tar/reader.ts\`).
* Every refused layer left its tar-split file in \`<root>/tmp\`; refusals did not say which
  layer they were about; zero chunks under 4 KiB from the decompressor were written, not
  holes (a gzip bomb allocated a block per MiB).

Digest strings (item 9) are also checked directly against \`parseDigest\` (\`sha256:../../x\`,
uppercase hex, 63 and 65 characters, \`md5:\`, \`sha512:\`, empty, embedded \`/\` or newline), and
the \`.oci.tar\` cases are unpacked into OCI layout directories and loaded from there under
\`strace\`: no path built from the hostile digest is ever touched.
`;
}

function main() {
  const check = process.argv.includes('--check');
  const files = buildCorpus();
  files.set('README.md', Buffer.from(readme()));
  let stale = 0;
  for (const [name, bytes] of files) {
    const p = join(HERE, name);
    if (check) {
      if (!existsSync(p) || !readFileSync(p).equals(bytes)) {
        console.error(`stale: ${name}`);
        stale++;
      }
    } else writeFileSync(p, bytes);
  }
  if (check) process.exit(stale ? 1 : 0);
  console.log(`wrote ${files.size} files to ${HERE}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
