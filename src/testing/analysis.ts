/**
 * Test support: a hand-built image whose analysis is known exactly, and a generated
 * many-file image for the explorer's scale test.
 *
 * The exact image (4 layers, and an ENV step that makes no layer):
 *   0  /etc/config 100 B, /etc/remove-me 200 B, /app/lib/{a.so 300 B, b.so 400 B},
 *      /rootfile 50 B, /bin/tool 1000 B + hard link /bin/tool-link, /keep.txt 7 B
 *   1  /etc/config rewritten (120 B); /data/big 5000 B + hard link /data/big-link
 *   2  whiteouts of /etc/remove-me, /rootfile (a file of the root) and /data/big (its
 *      hard link stays: the bytes stay visible); /app/lib made opaque, with /app/lib/c.so 30 B
 *   3  empty (an end-of-archive only)
 */
import { randomBytes } from 'node:crypto';
import { layerTar, writeDockerArchive, type LayerEntry } from './images.js';

const bytes = (n: number, c = 'x') => c.repeat(n);

export const EXACT_TAG = 'test/exact:latest';

export function exactLayers(): Buffer[] {
  const l0: LayerEntry[] = [
    { path: 'etc/', type: 'dir' },
    { path: 'etc/config', type: 'file', data: bytes(100, 'a') },
    { path: 'etc/remove-me', type: 'file', data: bytes(200, 'b') },
    { path: 'app/', type: 'dir' },
    { path: 'app/lib/', type: 'dir' },
    { path: 'app/lib/a.so', type: 'file', data: bytes(300, 'c') },
    { path: 'app/lib/b.so', type: 'file', data: bytes(400, 'd') },
    { path: 'rootfile', type: 'file', data: bytes(50, 'e') },
    { path: 'bin/', type: 'dir' },
    { path: 'bin/tool', type: 'file', data: bytes(1000, 'f'), mode: 0o755 },
    { path: 'bin/tool-link', type: 'link', target: 'bin/tool' },
    { path: 'keep.txt', type: 'file', data: 'keep me' },
  ];
  const l1: LayerEntry[] = [
    { path: 'etc/', type: 'dir' },
    { path: 'etc/config', type: 'file', data: bytes(120, 'g') },
    { path: 'data/', type: 'dir' },
    { path: 'data/big', type: 'file', data: bytes(5000, 'h') },
    { path: 'data/big-link', type: 'link', target: 'data/big' },
  ];
  const l2: LayerEntry[] = [
    { path: 'etc/', type: 'dir' },
    { path: 'etc/.wh.remove-me', type: 'file', data: '', mode: 0o600 },
    { path: 'app/', type: 'dir' },
    { path: 'app/lib/', type: 'dir' },
    { path: 'app/lib/.wh..wh..opq', type: 'file', data: '', mode: 0o755 },
    { path: 'app/lib/c.so', type: 'file', data: bytes(30, 'i') },
    { path: '.wh.rootfile', type: 'file', data: '', mode: 0o600 },
    { path: 'data/', type: 'dir' },
    { path: 'data/.wh.big', type: 'file', data: '', mode: 0o600 },
  ];
  return [layerTar(l0), layerTar(l1), layerTar(l2), layerTar([])];
}

/** The exact image as a docker-archive at `path`; returns its ID. */
export function writeExactArchive(path: string): string {
  return writeDockerArchive(path, exactLayers(), EXACT_TAG, {}, {
    history: [
      { created: '2024-01-01T00:00:00Z', created_by: 'ADD base.tar /' },
      { created: '2024-01-01T00:00:00Z', created_by: 'RUN rewrite /etc/config && add /data/big' },
      { created: '2024-01-01T00:00:00Z', created_by: 'ENV X=1', empty_layer: true },
      { created: '2024-01-01T00:00:00Z', created_by: 'RUN rm /etc/remove-me /rootfile /data/big && replace /app/lib' },
      { created: '2024-01-01T00:00:00Z', created_by: 'RUN true' },
    ],
  });
}

/** What `image analyze --json` must say about it (digests aside). */
export const EXACT = {
  sizeBytes: 7207,
  unionBytes: 6157,
  wastedBytes: 1050,
  efficiency: 6157 / 7207,
  userSizeBytes: 5150,
  layers: [
    { index: 0, createdBy: 'ADD base.tar /', sizeBytes: 2057, added: 12, modified: 0, removed: 0, opaque: 0 },
    { index: 1, createdBy: 'RUN rewrite /etc/config && add /data/big', sizeBytes: 5120, added: 3, modified: 2, removed: 0, opaque: 0 },
    { index: 2, createdBy: 'RUN rm /etc/remove-me /rootfile /data/big && replace /app/lib', sizeBytes: 30, added: 1, modified: 4, removed: 3, opaque: 1 },
    { index: 3, createdBy: 'RUN true', sizeBytes: 0, added: 0, modified: 0, removed: 0, opaque: 0 },
  ],
  wasted: [
    { path: '/app/lib/b.so', bytes: 400, layers: [0] },
    { path: '/app/lib/a.so', bytes: 300, layers: [0] },
    { path: '/etc/remove-me', bytes: 200, layers: [0] },
    { path: '/etc/config', bytes: 100, layers: [0] },
    { path: '/rootfile', bytes: 50, layers: [0] },
  ],
};

/**
 * A docker-archive of `files` regular files (`perDir` per directory) spread over `layers`
 * layers; the last layer also rewrites a few files of the first and removes a directory.
 */
export function writeManyFilesArchive(path: string, tag: string, files = 100_000, perDir = 1000, layers = 4): string {
  const tars: Buffer[] = [];
  const dirs = Math.ceil(files / perDir);
  const perLayer = Math.ceil(dirs / layers);
  let made = 0;
  for (let l = 0; l < layers; l++) {
    const entries: LayerEntry[] = [];
    for (let d = l * perLayer; d < Math.min(dirs, (l + 1) * perLayer); d++) {
      const dir = `srv/d${String(d).padStart(4, '0')}`;
      if (entries.length === 0) entries.push({ path: 'srv/', type: 'dir' });
      entries.push({ path: `${dir}/`, type: 'dir' });
      for (let f = 0; f < perDir && made < files; f++, made++) entries.push({ path: `${dir}/f${String(f).padStart(4, '0')}.txt`, type: 'file', data: `file ${d}/${f}\n` });
    }
    if (l === layers - 1) {
      entries.push({ path: 'srv/d0000/', type: 'dir' }, { path: 'srv/d0000/f0000.txt', type: 'file', data: randomBytes(64).toString('hex') });
      entries.push({ path: 'srv/d0001/', type: 'dir' }, { path: 'srv/d0001/.wh..wh..opq', type: 'file', data: '' });
    }
    tars.push(layerTar(entries));
  }
  return writeDockerArchive(path, tars, tag);
}
