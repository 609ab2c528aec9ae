/** Test support: build image archives (docker-archive) from in-memory layer descriptions. */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { encodeHeader, paddingFor, END_OF_ARCHIVE } from '../archive/tar/writer.js';
import type { TarHeader } from '../archive/tar/header.js';

export type LayerEntry =
  | { path: string; type: 'file'; data: Buffer | string; mode?: number; uid?: number; gid?: number }
  | { path: string; type: 'dir'; mode?: number; uid?: number; gid?: number }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'link'; target: string };

const h = (e: LayerEntry, size: number): TarHeader => ({
  name: e.path,
  type: e.type,
  mode: 'mode' in e && e.mode !== undefined ? e.mode : e.type === 'dir' ? 0o755 : 0o644,
  uid: 'uid' in e ? (e.uid ?? 0) : 0,
  gid: 'gid' in e ? (e.gid ?? 0) : 0,
  size,
  mtime: 1704067200,
  linkname: e.type === 'symlink' || e.type === 'link' ? e.target : '',
  uname: '',
  gname: '',
  devmajor: 0,
  devminor: 0,
  xattrs: undefined,
});

export function layerTar(entries: LayerEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'file' ? Buffer.from(e.data) : Buffer.alloc(0);
    parts.push(encodeHeader(h(e, data.length)), data, paddingFor(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

/** A layer of `files` files of `size` random bytes each under `dir/`. */
export function randomLayer(dir: string, files: number, size: number): LayerEntry[] {
  const out: LayerEntry[] = [{ path: dir + '/', type: 'dir' }];
  for (let i = 0; i < files; i++) out.push({ path: `${dir}/f${i}.bin`, type: 'file', data: randomBytes(size) });
  return out;
}

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** Writes a docker-archive (docker save layout) with the given layers and tag. Returns the image ID. `top` adds or replaces top-level config fields (history, …). */
export function writeDockerArchive(path: string, layers: Buffer[], tag: string, cfg: Record<string, unknown> = {}, top: Record<string, unknown> = {}): string {
  const diffIds = layers.map(sha);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], ...cfg },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `layer ${i}` })),
      ...top,
    }),
  );
  const id = sha(config);
  const fd = openSync(path, 'w');
  const put = (name: string, data: Buffer) => {
    writeSync(fd, encodeHeader(h({ path: name, type: 'file', data }, data.length)));
    writeSync(fd, data);
    writeSync(fd, paddingFor(data.length));
  };
  const names = layers.map((l, i) => {
    const n = `${diffIds[i]!.slice(7)}/layer.tar`;
    put(n, l);
    return n;
  });
  put(`${id.slice(7)}.json`, config);
  put('manifest.json', Buffer.from(JSON.stringify([{ Config: `${id.slice(7)}.json`, RepoTags: [tag], Layers: names }])));
  writeSync(fd, END_OF_ARCHIVE);
  closeSync(fd);
  return id;
}
