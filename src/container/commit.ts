/**
 * `diff` and `commit`. The container's writable layer (its overlay upper dir) is walked
 * once: the walk writes Docker's layer tar into a hash (the diffID) and a tar-split record,
 * while the upper dir is copied into the new layer's snapshot (cp -a, reflinks where the
 * file system has them) — the committed image is runnable at once, and the layer is never
 * extracted from a tar again. A running container is paused for the walk (Docker's `-p`).
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { failedPrecondition, unsupported } from '../errors/index.js';
import { sha256, type Digest } from '../oci/digest.js';
import { parseRepositoryTag } from '../oci/reference.js';
import type { ContainerConfig, ImageConfig } from '../oci/types.js';
import { overlayChanges, type Change } from '../archive/changes.js';
import { writeLayer } from '../archive/layerwriter.js';
import { TarSplitWriter } from '../archive/tarsplit.js';
import { applyChanges } from '../image/changes.js';
import type { ImageStore } from '../image/images.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { run } from '../sys/exec.js';
import type { ContainerManager } from './manager.js';
import type { ContainerRecord } from './types.js';

export interface CommitOptions {
  author?: string;
  message?: string;
  changes?: string[];
  /** pause a running container during the commit (default true, as Docker) */
  pause?: boolean;
  /** REPO[:TAG] */
  reference?: string;
  /**
   * `build`: the new image's config is the caller's, made from the parent's config and the
   * layer's diffID; a layer without changes is left out of the chain (Docker's empty_layer).
   */
  buildConfig?: (parent: ImageConfig, diffId: Digest, empty: boolean) => ImageConfig;
}

/** The diffID of a tar with no entries (1024 zero bytes): Docker's empty layer. */
export const EMPTY_LAYER_DIFF_ID = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef' as Digest;

export interface CommitDeps {
  images: ImageStore;
  snapshots: Snapshotter;
  containers: ContainerManager;
  tmpDir: string;
}

function layerDirs(deps: CommitDeps, c: ContainerRecord): { upper: string; lowers: string[] } {
  const m = deps.snapshots.mounts(c.snapshot)[0];
  if (deps.snapshots.name !== 'overlay' || !m || m.type !== 'overlay' || !m.upper) {
    throw unsupported('COMMIT_NEEDS_OVERLAY', 'diff and commit read the container\'s overlay upper directory; this store uses the vfs driver', {
      hint: 'use a store with the overlay storage driver',
    });
  }
  return { upper: m.upper, lowers: m.lowers ?? [] };
}

/** `docker diff`: A/C/D changes of the writable layer against the image, in Docker's order. */
export async function containerChanges(deps: CommitDeps, ref: string): Promise<Change[]> {
  const c = await deps.containers.get(ref);
  const { upper, lowers } = layerDirs(deps, c);
  return overlayChanges(upper, lowers);
}

export async function commitContainer(deps: CommitDeps, ref: string, opts: CommitOptions = {}): Promise<{ id: Digest; tag?: string }> {
  // validate everything before any work: no partial image on bad input
  const target = opts.reference ? parseRepositoryTag(opts.reference) : undefined;
  applyChanges({}, opts.changes ?? []); // throws on an invalid instruction
  const c = await deps.containers.get(ref);
  const { upper, lowers } = layerDirs(deps, c);
  const image = deps.images.get(c.imageId);
  if (!image) throw failedPrecondition('COMMIT_NO_IMAGE', `the image of container ${c.name} is gone`);
  const parentConfig = await deps.images.config(image.id);

  let paused = opts.pause !== false && c.state.Running && !c.state.Paused;
  if (paused) await deps.containers.pause(c.id);
  const resume = async () => {
    if (!paused) return;
    paused = false;
    await deps.containers.unpause(c.id).catch(() => {});
  };
  const key = `commit-${randomBytes(8).toString('hex')}`;
  const tsPath = join(deps.tmpDir, `${key}.tarsplit`);
  let tarsplit: TarSplitWriter | undefined;
  try {
    // the copy and the walk read the same (frozen) upper dir at the same time. A stopped
    // container's upper dir does not change until the container is written again: the new
    // layer shares its inodes (cp -al, metadata only), and the container takes a private
    // copy before its next write (ContainerManager.ensureMounted). A running one, paused
    // only for the commit, gets a real copy.
    const shared = !c.state.Running;
    const dir = await deps.snapshots.prepare(key, undefined, { temporary: true });
    tarsplit = new TarSplitWriter(tsPath);
    if (shared) deps.containers.markUpperShared(c.id);
    const copying = run('cp', shared ? ['-a', '-l', upper + '/.', dir + '/'] : ['-a', '--reflink=auto', upper + '/.', dir + '/']);
    copying.catch(() => {});
    let tarSize = 0;
    const w = await writeLayer(upper, lowers, (chunk) => {
      tarSize += chunk.length;
    }, { tarsplit });
    await copying;
    const ts = tarsplit.finish();
    tarsplit = undefined;
    // the layer is captured: the container runs on while the image is recorded
    await resume();

    const empty = !!opts.buildConfig && w.diffId === EMPTY_LAYER_DIFF_ID;
    let lease: { chainIds: Digest[]; release(): void };
    if (empty) {
      await deps.snapshots.remove(key);
      await rm(tsPath, { force: true });
      lease = { chainIds: image.chain, release: deps.images.layers.lease(image.chain) };
    } else lease = await deps.images.layers.adoptPrepared(image.chain, key, { diffId: w.diffId as Digest, size: w.size, tarSize, tarsplit: { path: tsPath, ...ts } });
    try {
      const config = opts.buildConfig ? opts.buildConfig(parentConfig, w.diffId as Digest, empty) : newConfig(parentConfig, c, w.diffId as Digest, opts);
      const bytes = Buffer.from(JSON.stringify(config));
      const id = sha256(bytes);
      await deps.images.content.put(bytes, id);
      deps.images.add(id, config, lease.chainIds, { ...(target ? { tags: [target] } : {}), parent: image.id });
      return { id, ...(target ? { tag: target.familiarString() } : {}) };
    } finally {
      lease.release();
    }
  } catch (e) {
    tarsplit?.abort();
    await rm(tsPath, { force: true });
    if (deps.snapshots.stat(key)) await deps.snapshots.remove(key).catch(() => {});
    throw e;
  } finally {
    await resume();
  }
}

/** The committed image's config: Docker's rules (container config as the new Config, -c on top). */
function newConfig(parent: ImageConfig, c: ContainerRecord, diffId: Digest, opts: CommitOptions): ImageConfig {
  const created = new Date().toISOString();
  // the container's config (its Cmd, Env, …) becomes the image's, minus what is per-container
  const base: ContainerConfig = { ...c.config };
  delete base.Hostname;
  delete base.Domainname;
  delete base.AttachStdin;
  delete base.AttachStdout;
  delete base.AttachStderr;
  delete base.Tty;
  delete base.OpenStdin;
  delete base.StdinOnce;
  base.Image = c.imageId;
  const config = applyChanges(base, opts.changes ?? []);
  const createdBy = [...(c.config.Entrypoint ?? []), ...(c.config.Cmd ?? [])].join(' ');
  const history = [...(parent.history ?? []), { created, created_by: createdBy, ...(opts.author ? { author: opts.author } : {}), ...(opts.message ? { comment: opts.message } : {}) }];
  return {
    architecture: parent.architecture,
    ...(parent.variant ? { variant: parent.variant } : {}),
    ...(opts.author ? { author: opts.author } : {}),
    ...(opts.message ? { comment: opts.message } : {}),
    config,
    container: c.id,
    container_config: c.config,
    created,
    docker_version: 'layerbox',
    history,
    os: parent.os,
    rootfs: { type: 'layers', diff_ids: [...parent.rootfs.diff_ids, diffId] },
  };
}
