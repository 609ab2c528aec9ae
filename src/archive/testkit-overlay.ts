/**
 * Test support for changes.test.ts and layerwriter.test.ts: real overlayfs mounts over
 * layer directories unpacked with `unpackLayer`, changed through the mount, unmounted, then
 * inspected. Needs root. Mounts use sys/native directly (snapshot/ sits above archive/).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountOverlay, umount2, MNT_DETACH } from '../sys/native.js';
import { run } from '../sys/exec.js';
import { errnoCode } from '../errors/index.js';
import { TarParser } from './tar/reader.js';
import { unpackLayer } from './unpack.js';
import { FIXTURES, walkTree, type TreeEntry } from '../testing/tree.js';

/** A buffer as a stream source. */
export async function* chunks(b: Buffer, size = 1 << 16): AsyncGenerator<Buffer> {
  for (let off = 0; off < b.length; off += size) yield b.subarray(off, off + size);
}

/** The files of a (small) tar, in memory. */
export function tarFiles(tar: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let name = '';
  let parts: Buffer[] = [];
  const p = new TarParser({
    onEntry: (h) => {
      name = h.type === 'file' ? h.name : '';
      parts = [];
    },
    onData: (c) => parts.push(Buffer.from(c)),
    onEnd: () => {
      if (name) files.set(name, Buffer.concat(parts));
    },
  });
  p.write(tar);
  p.end();
  return files;
}

/** The layer tars of a `docker save` archive, bottom first. */
export function dockerArchiveLayers(path: string): Buffer[] {
  const files = tarFiles(readFileSync(path));
  const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8')) as { Layers: string[] }[];
  return manifest[0]!.Layers.map((l) => files.get(l)!);
}

/** The change script the fixture container ran (from fixtures/make-fixtures.sh). */
export function fixtureScript(): string {
  const sh = readFileSync(join(FIXTURES, 'make-fixtures.sh'), 'utf8');
  const start = sh.indexOf(`sh -euc '\n`);
  const end = sh.indexOf(`\n'\n`, start);
  if (start < 0 || end < 0) throw new Error('make-fixtures.sh: change script not found');
  return sh.slice(start + `sh -euc '\n`.length, end + 1);
}

export const PATH_ENV = '/usr/sbin:/usr/bin:/sbin:/bin';

export class OverlayLab {
  readonly root: string;
  readonly upper: string;
  readonly work: string;
  readonly merged: string;
  private mounted = false;
  private n = 0;

  constructor(prefix = 'lb-ovl-') {
    this.root = mkdtempSync(join(tmpdir(), prefix));
    this.upper = join(this.root, 'upper');
    this.work = join(this.root, 'work');
    this.merged = join(this.root, 'merged');
    for (const d of [this.upper, this.work, this.merged]) mkdirSync(d);
  }

  /** A new directory under the lab root. */
  dir(name: string): string {
    const d = join(this.root, name);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** Unpacks a layer tar into a fresh lower directory (overlay whiteouts), returns it. */
  async lower(tar: Buffer, name = `lower${this.n++}`): Promise<string> {
    const d = this.dir(name);
    await unpackLayer({ source: chunks(tar), compression: 'none', target: d, whiteouts: 'overlay', fresh: true });
    return d;
  }

  /** The base image of the fixtures as a lower directory. */
  async busyboxBase(): Promise<string> {
    return this.lower(dockerArchiveLayers(join(FIXTURES, 'busybox-base.docker.tar'))[0]!, 'base');
  }

  mount(lowers: string[]): void {
    mountOverlay(this.merged, lowers, { upper: this.upper, work: this.work });
    this.mounted = true;
  }

  /** Runs a busybox shell script chrooted into the merged view (the lowers must hold busybox). */
  async sh(script: string): Promise<void> {
    await run('chroot', [this.merged, '/bin/busybox', 'sh', '-euc', script], { env: { PATH: PATH_ENV } });
  }

  /** The merged view as walkTree sees it (call while mounted). */
  mergedTree(): TreeEntry[] {
    return walkTree(this.merged);
  }

  unmount(): void {
    if (!this.mounted) return;
    try {
      umount2(this.merged, 0);
    } catch (e) {
      if (errnoCode(e) !== 'EBUSY') throw e;
      umount2(this.merged, MNT_DETACH);
    }
    this.mounted = false;
  }

  cleanup(): void {
    this.unmount();
    rmSync(this.root, { recursive: true, force: true });
  }
}
