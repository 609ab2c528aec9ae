/** Docker's JSON views of an image: `image inspect` and `history`. */
import { join } from 'node:path';
import type { ContainerConfig, ImageConfig } from '../oci/types.js';
import { parseReference } from '../oci/reference.js';
import type { ImageRecord, ImageStore } from './images.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';

/** A container config with every field Docker prints, in Docker's order. */
export function dockerContainerConfig(c: ContainerConfig | undefined): Record<string, unknown> {
  const x = c ?? {};
  const out: Record<string, unknown> = {
    Hostname: x.Hostname ?? '',
    Domainname: x.Domainname ?? '',
    User: x.User ?? '',
    AttachStdin: x.AttachStdin ?? false,
    AttachStdout: x.AttachStdout ?? false,
    AttachStderr: x.AttachStderr ?? false,
  };
  if (x.ExposedPorts && Object.keys(x.ExposedPorts).length) out.ExposedPorts = x.ExposedPorts;
  Object.assign(out, {
    Tty: x.Tty ?? false,
    OpenStdin: x.OpenStdin ?? false,
    StdinOnce: x.StdinOnce ?? false,
    Env: x.Env ?? null,
    Cmd: x.Cmd ?? null,
  });
  if (x.Healthcheck) out.Healthcheck = x.Healthcheck;
  if (x.ArgsEscaped) out.ArgsEscaped = x.ArgsEscaped;
  Object.assign(out, {
    Image: x.Image ?? '',
    Volumes: x.Volumes ?? null,
    WorkingDir: x.WorkingDir ?? '',
    Entrypoint: x.Entrypoint ?? null,
    OnBuild: x.OnBuild ?? null,
    Labels: x.Labels ?? null,
  });
  if (x.StopSignal) out.StopSignal = x.StopSignal;
  if (x.StopTimeout !== undefined) out.StopTimeout = x.StopTimeout;
  if (x.Shell) out.Shell = x.Shell;
  return out;
}

export function familiarTag(full: string): string {
  try {
    return parseReference(full).familiarString();
  } catch {
    return full;
  }
}

export function repoDigestStrings(img: ImageRecord): string[] {
  return img.repoDigests.map((r) => {
    try {
      return parseReference(r.repo).familiarName + '@' + r.digest;
    } catch {
      return `${r.repo}@${r.digest}`;
    }
  });
}

export interface InspectExtras {
  parent?: string;
  lastTagTime?: string;
}

export function inspectImage(store: ImageStore, snaps: Snapshotter, img: ImageRecord, config: ImageConfig, extras: InspectExtras = {}): Record<string, unknown> {
  const graph: Record<string, string> = {};
  if (img.topLayer) {
    const layers = img.chain.map((c) => store.layers.get(c)!);
    const dirs = layers.map((l) => snaps.fsDir(l.snapshot)).reverse();
    if (snaps.name === 'overlay') {
      graph.UpperDir = dirs[0]!;
      if (dirs.length > 1) graph.LowerDir = dirs.slice(1).join(':');
      graph.WorkDir = join(dirs[0]!, '..', 'work');
      graph.MergedDir = join(dirs[0]!, '..', 'merged');
    } else {
      graph.Dir = dirs[0]!;
    }
  }
  const out: Record<string, unknown> = {
    Id: img.id,
    RepoTags: img.tags.map(familiarTag),
    RepoDigests: repoDigestStrings(img),
    Parent: extras.parent ?? '',
    // dockerd 20.10: without a comment of its own, the last history entry's
    Comment: config.comment || config.history?.[config.history.length - 1]?.comment || '',
    Created: config.created ?? '0001-01-01T00:00:00Z',
    Container: config.container ?? '',
    ContainerConfig: dockerContainerConfig(config.container_config),
    DockerVersion: config.docker_version ?? '',
    Author: config.author ?? '',
    Config: config.config ? dockerContainerConfig(config.config) : null,
    Architecture: config.architecture,
  };
  if (config.variant) out.Variant = config.variant;
  Object.assign(out, {
    Os: config.os,
    Size: img.size,
    VirtualSize: img.size,
    GraphDriver: { Data: graph, Name: snaps.name },
    RootFS: { Type: 'layers', Layers: config.rootfs.diff_ids },
    Metadata: { LastTagTime: extras.lastTagTime ?? '0001-01-01T00:00:00Z' },
  });
  return out;
}

export interface HistoryRow {
  id: string; // image ID or "<missing>"
  created: string | undefined;
  createdBy: string;
  size: number;
  comment: string;
  tags: string[];
}

/**
 * `docker history`: newest first. Each non-empty history entry consumes the next layer.
 * The top row is the image itself; going down, the row where a locally known parent
 * image's history ends carries that parent's ID (images made here by commit or build),
 * the others show "<missing>", as Docker does for pulled images.
 */
export async function imageHistory(store: ImageStore, img: ImageRecord, config: ImageConfig): Promise<HistoryRow[]> {
  const hist = config.history ?? [];
  const rows: HistoryRow[] = [];
  let layer = 0;
  for (const h of hist) {
    let size = 0;
    if (!h.empty_layer) {
      const c = img.chain[layer];
      size = c ? (store.layers.get(c)?.size ?? 0) : 0;
      layer++;
    }
    rows.push({ id: '<missing>', created: h.created, createdBy: h.created_by ?? '', size, comment: h.comment ?? '', tags: [] });
  }
  if (hist.length === 0) {
    for (const c of img.chain) rows.push({ id: '<missing>', created: config.created, createdBy: '', size: store.layers.get(c)?.size ?? 0, comment: '', tags: [] });
  }
  if (rows.length === 0) return rows;
  rows[rows.length - 1]!.id = img.id;
  rows[rows.length - 1]!.tags = img.tags.map(familiarTag);
  let p = img.parent ? store.get(img.parent) : undefined;
  while (p) {
    const pc = await store.config(p.id).catch(() => undefined);
    const n = pc?.history?.length ?? 0;
    if (!pc || n === 0 || n > rows.length) break;
    rows[n - 1]!.id = p.id;
    rows[n - 1]!.tags = p.tags.map(familiarTag);
    p = p.parent ? store.get(p.parent) : undefined;
  }
  return rows.reverse();
}
