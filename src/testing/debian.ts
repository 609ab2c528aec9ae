/** Test support: a Debian bookworm minbase rootfs (debootstrap, cached between runs on a machine). */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const CACHE = process.env.LAYERBOX_CACHE || '/var/cache/layerbox';

/** The rootfs directory; built with debootstrap --variant=minbase when not cached. */
export function debianRootfs(): string {
  const dir = join(CACHE, 'bookworm-minbase');
  if (existsSync(join(dir, 'etc', 'debian_version'))) return dir;
  mkdirSync(CACHE, { recursive: true });
  const tmp = dir + '.tmp';
  rmSync(tmp, { recursive: true, force: true });
  execFileSync('debootstrap', ['--variant=minbase', 'bookworm', tmp, 'http://deb.debian.org/debian'], { stdio: 'ignore' });
  renameSync(tmp, dir);
  return dir;
}

/** A tar of the rootfs (numeric owners), cached beside it. */
export function debianTar(): string {
  const dir = debianRootfs();
  const tar = join(CACHE, 'bookworm-minbase.tar');
  if (!existsSync(tar)) {
    execFileSync('tar', ['--numeric-owner', '-C', dir, '-cf', tar + '.tmp', '.']);
    renameSync(tar + '.tmp', tar);
  }
  return tar;
}
