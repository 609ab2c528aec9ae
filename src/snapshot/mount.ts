/** Turns snapshot mounts (data) into real mounts, and back. */
import { mount, mountOverlay, umount2, MS_BIND, MS_RDONLY, MS_REMOUNT, MNT_DETACH } from '../sys/native.js';
import { EngineError, errnoCode } from '../errors/index.js';
import type { Mount } from './snapshotter.js';
import { OverlaySnapshotter } from './overlay.js';
import { VfsSnapshotter } from './vfs.js';
import type { DB } from '../metadata/db.js';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** The kernel's OVL_MAX_STACK: an overlay mount takes at most this many lower directories. */
export const OVERLAY_MAX_LOWERS = 500;

export function mountAll(mounts: Mount[], target: string): void {
  for (const m of mounts) {
    if (m.type === 'overlay' && m.lowers && m.lowers.length > OVERLAY_MAX_LOWERS) {
      // the kernel answers EINVAL, which reads like a missing overlayfs: say what it is
      throw new EngineError('failed-precondition', 'MOUNT_TOO_MANY_LAYERS', `max depth exceeded: cannot mount ${target}: it stacks ${m.lowers.length} layers and overlayfs mounts at most ${OVERLAY_MAX_LOWERS} lower layers`, {
        where: target,
        hint: 'flatten the image (export a container of it and import the tarball), or rebuild it with fewer layers',
      });
    }
    try {
      if (m.type === 'bind') {
        mount(m.source!, target, null, MS_BIND, null);
        if (m.readonly) mount(null, target, null, MS_BIND | MS_REMOUNT | MS_RDONLY, null);
      } else {
        mountOverlay(target, m.lowers!, { upper: m.upper, work: m.work, readonly: m.readonly });
      }
    } catch (e) {
      throw new EngineError('unavailable', 'MOUNT_FAILED', `cannot mount the ${m.type} file system at ${target}: ${(e as Error).message}`, {
        cause: e,
        where: target,
        hint: m.type === 'overlay' ? 'overlayfs needs root and a kernel with overlay support; use --storage-driver vfs otherwise' : undefined,
      });
    }
  }
}

export function unmount(target: string, opts: { detach?: boolean } = {}): void {
  try {
    umount2(target, opts.detach ? MNT_DETACH : 0);
  } catch (e) {
    const c = errnoCode(e);
    if (c === 'EINVAL' || c === 'ENOENT') return; // not mounted
    if (c === 'EBUSY' && !opts.detach) {
      umount2(target, MNT_DETACH);
      return;
    }
    throw e;
  }
}

/** Does this kernel mount overlayfs here (needs root, a supporting fs, the module)? */
export function overlaySupported(root: string): boolean {
  const d = mkdtempSync(join(root, '.overlay-check-'));
  try {
    for (const x of ['l1', 'l2', 'u', 'w', 'm']) mkdirSync(join(d, x));
    writeFileSync(join(d, 'l1', 'f'), 'x');
    mountOverlay(join(d, 'm'), [join(d, 'l1'), join(d, 'l2')], { upper: join(d, 'u'), work: join(d, 'w') });
    umount2(join(d, 'm'), 0);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

export type StorageDriver = 'overlay' | 'vfs';

export function createSnapshotter(db: DB, root: string, driver: StorageDriver) {
  return driver === 'overlay' ? new OverlaySnapshotter(db, root) : new VfsSnapshotter(db, root);
}
