/**
 * Tar header encoding: POSIX ustar, with a PAX extended header when a field does not fit
 * (long or non-ASCII names, large numbers, fractional times, xattrs). Produces bytes only;
 * callers stream payloads and padding themselves.
 */
import { BLOCK, TYPEFLAG, blockPadding, type TarHeader } from './header.js';

const ZERO = Buffer.alloc(BLOCK * 2);

export function paddingFor(size: number): Buffer {
  return ZERO.subarray(0, blockPadding(size));
}

export const END_OF_ARCHIVE = ZERO;

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e || s.charCodeAt(i) < 0x20) return false;
  return true;
}

function writeOctal(b: Buffer, off: number, len: number, v: number): boolean {
  // len-1 octal digits + NUL
  const s = Math.floor(v).toString(8);
  if (s.length > len - 1 || v < 0) return false;
  b.write(s.padStart(len - 1, '0'), off, len - 1, 'latin1');
  b[off + len - 1] = 0;
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "%d %s=%s\n" where %d counts the whole record including itself
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body]);
}

/** Splits a name into ustar prefix (≤155) + name (≤100) at a '/', or undefined. */
function splitUstar(name: string): [string, string] | undefined {
  if (Buffer.byteLength(name) <= 100) return ['', name];
  if (Buffer.byteLength(name) > 256) return undefined;
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) return [prefix, rest];
  }
  return undefined;
}

function ustarBlock(h: TarHeader, name: string, prefix: string, linkname: string, typeflag: string, size: number, pax: Map<string, Buffer> | undefined): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'utf8');
  writeOctal(b, 100, 8, h.mode & 0o7777);
  if (!writeOctal(b, 108, 8, h.uid)) pax?.set('uid', Buffer.from(String(h.uid)));
  if (!writeOctal(b, 116, 8, h.gid)) pax?.set('gid', Buffer.from(String(h.gid)));
  if (!writeOctal(b, 124, 12, size)) pax?.set('size', Buffer.from(String(size)));
  const mt = Math.floor(h.mtime);
  if (!writeOctal(b, 136, 12, mt)) pax?.set('mtime', Buffer.from(String(h.mtime)));
  b.write(typeflag, 156, 1, 'latin1');
  b.write(linkname, 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 8, 'latin1');
  b.write(h.uname ?? '', 265, 32, 'utf8');
  b.write(h.gname ?? '', 297, 32, 'utf8');
  if (h.type === 'char' || h.type === 'block') {
    writeOctal(b, 329, 8, h.devmajor);
    writeOctal(b, 337, 8, h.devminor);
  }
  b.write(prefix, 345, 155, 'utf8');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

/** Encodes the header block(s) for an entry (PAX header first when needed). */
export function encodeHeader(h: TarHeader): Buffer {
  const pax = new Map<string, Buffer>();
  let name = h.name;
  let prefix = '';
  if (h.type === 'dir' && !name.endsWith('/')) name += '/';
  const split = isAscii(name) ? splitUstar(name) : undefined;
  if (split) [prefix, name] = split;
  else {
    pax.set('path', Buffer.from(name, 'utf8'));
    name = asciiFallback(name).slice(0, 99);
    prefix = '';
  }
  let linkname = h.linkname ?? '';
  if (!isAscii(linkname) || Buffer.byteLength(linkname) > 100) {
    pax.set('linkpath', Buffer.from(linkname, 'utf8'));
    linkname = asciiFallback(linkname).slice(0, 99);
  }
  if (h.mtime !== Math.floor(h.mtime) || h.mtime < 0) pax.set('mtime', Buffer.from(String(h.mtime)));
  if (h.xattrs) for (const [k, v] of h.xattrs) pax.set('SCHILY.xattr.' + k, v);
  const size = h.type === 'file' ? h.size : 0;
  const main = ustarBlock(h, name, prefix, linkname, TYPEFLAG[h.type], size, pax);
  if (pax.size === 0) return main;
  const records = Buffer.concat([...pax].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => paxRecord(k, v)));
  const paxHeader: TarHeader = { ...h, type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', size: records.length, mtime: Math.max(0, Math.floor(h.mtime)), xattrs: undefined, devmajor: 0, devminor: 0, linkname: '' };
  const paxName = ('PaxHeaders.0/' + asciiFallback(h.name.split('/').filter(Boolean).pop() ?? 'x')).slice(0, 99);
  const xblock = ustarBlock(paxHeader, paxName, '', '', 'x', records.length, undefined);
  return Buffer.concat([xblock, records, paddingFor(records.length), main]);
}

function asciiFallback(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '_');
}
