/**
 * The image's `Volumes`: where they go in the container and where their initial content is in the
 * rootfs. Both are resolved inside the rootfs (CVE-2022-23648: `/../../etc` or a symlink to `/etc`
 * must name the container's /etc, never the host's).
 */
import type { ContainerConfig } from '../oci/types.js';
import { mountDestination } from './mounts.js';
import { resolveInRoot } from './rootfs.js';

export interface ImageVolume {
  /** cleaned container path, for the mount destination */
  destination: string;
  /** host path of that directory inside the rootfs (copy its content into a new volume from here) */
  sourceInRootfs: string;
}

export async function imageVolumes(config: ContainerConfig | undefined, rootfs: string): Promise<ImageVolume[]> {
  const out: ImageVolume[] = [];
  const seen = new Set<string>();
  for (const raw of Object.keys(config?.Volumes ?? {})) {
    const destination = mountDestination(raw.startsWith('/') ? raw : '/' + raw);
    if (seen.has(destination)) continue;
    seen.add(destination);
    out.push({ destination, sourceInRootfs: await resolveInRoot(rootfs, destination) });
  }
  return out;
}
