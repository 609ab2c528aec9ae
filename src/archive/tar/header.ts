/** Tar header model shared by the reader and the writer (POSIX ustar + PAX, GNU long names). */

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  /** Path as written in the archive (after PAX / GNU long-name records). Not sanitised. */
  name: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch; may be fractional (PAX). */
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes (PAX SCHILY.xattr.*), raw bytes. */
  xattrs: Map<string, Buffer> | undefined;
}

export const BLOCK = 512;

export const TYPEFLAG: Record<EntryType, string> = {
  file: '0',
  link: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

export function blockPadding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}
