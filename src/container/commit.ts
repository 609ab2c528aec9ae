/**
 * `diff` and `commit`. A container's changes since its image are its overlay upper dir —
 * over the layer of its last commit, if it was committed before: a stopped container that
 * is committed continues on the new layer (which holds exactly its changes) with an empty
 * upper dir, so the commit copies no data, takes no space, and the next start copies
 * nothing either (Snapshotter.setLower, ContainerManager.continueOnLocked). Docker's second
 * commit of a container holds every change since the image in one layer: the upper dir is
 * merged over the first commit's layer as hard links (snapshot/merge.ts).
 *
 * The new layer's files are made first (hard links of the stopped container's files; a
 * copy of a running one's, paused meanwhile as Docker's `-p`); one walk of them then
 * writes Docker's layer tar into a hash (the diffID) and a tar-split record — the committed
 * image is runnable at once, and the layer is never extracted from a tar again.
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { errnoCode, failedPrecondition, storageError, unsupported } from '../errors/index.js';
import { sha256, type Digest } from '../oci/digest.js';
import { parseRepositoryTag } from '../oci/reference.js';
import type { ContainerConfig, ImageConfig } from '../oci/types.js';
import { overlayChanges, type Change } from '../archive/changes.js';
import { writeLayer } from '../archive/layerwriter.js';
import { TarSplitWriter } from '../archive/tarsplit.js';
import { applyChanges } from '../image/changes.js';
import type { ImageStore } from '../image/images.js';
import type { Snapshotter, Stack } from '../snapshot/snapshotter.js';
import { linkTree, mergeLayers, withChanges } from '../snapshot/merge.js';
import { umount2 } from '../sys/native.js';
import type { StoreSpace } from '../metadata/space.js';
import { checkLayerCount } from '../image/layers.js';
import { run } from '../sys/exec.js';
import { removeTree } from '../sys/fsutil.js';
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
   * POST /commit's body: the new image's config instead of the container's; the changes
   * apply to it, and what it leaves unset is taken from the container's (Docker's merge)
   */
  config?: ContainerConfig;
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
  space?: StoreSpace;
}

function layerStack(deps: { snapshots: Snapshotter }, c: ContainerRecord): Stack {
  if (deps.snapshots.name !== 'overlay' || deps.snapshots.mounts(c.snapshot)[0]?.type !== 'overlay') {
    throw unsupported('COMMIT_NEEDS_OVERLAY', 'diff and commit read the container\'s overlay upper directory; this store uses the vfs driver', {
      hint: 'use a store with the overlay storage driver',
    });
  }
  return deps.snapshots.stack(c.snapshot);
}

/** `docker diff`: A/C/D changes of the container against its image, in Docker's order. */
export async function containerChanges(deps: CommitDeps, ref: string): Promise<Change[]> {
  const c = await deps.containers.get(ref);
  return withChanges(layerStack(deps, c), deps.tmpDir, (dir, lowers) => overlayChanges(dir, lowers));
}

export async function commitContainer(deps: CommitDeps, ref: string, opts: CommitOptions = {}): Promise<{ id: Digest; tag?: string }> {
  // validate everything before any work: no partial image on bad input
  const target = opts.reference ? parseRepositoryTag(opts.reference) : undefined;
  applyChanges({}, opts.changes ?? []); // throws on an invalid instruction
  const c0 = await deps.containers.get(ref);
  layerStack(deps, c0);
  const image = deps.images.get(c0.imageId);
  if (!image) throw failedPrecondition('COMMIT_NO_IMAGE', `the image of container ${c0.name} is gone`);
  checkLayerCount(image.chain.length + 1, `the image committed from ${c0.name}`, 'would have'); // before any work
  const parentConfig = await deps.images.config(image.id);
  deps.space?.require(`cannot commit container ${c0.name}`);
  try {
    if (!c0.state.Running) {
      const r = await deps.containers.withLock(c0.id, async () => {
        const c = await deps.containers.get(c0.id);
        if (c.state.Running) return undefined; // started meanwhile: committed running, below
        return commitStopped(deps, c, image.chain, parentConfig, opts, target);
      });
      if (r) return r;
    }
    return await commitRunning(deps, await deps.containers.get(c0.id), image.chain, parentConfig, opts, target);
  } catch (e) {
    throw storageError(e, undefined, `cannot commit container ${c0.name}`) ?? e;
  }
}

type Target = ReturnType<typeof parseRepositoryTag> | undefined;

/** The layer's files are in the temporary snapshot `key`: walk them, record the layer and the image. */
async function record(
  deps: CommitDeps,
  c: ContainerRecord,
  key: string,
  dir: string,
  lowers: string[],
  chain: Digest[],
  parentConfig: ImageConfig,
  opts: CommitOptions,
  target: Target,
  then?: (chainId: Digest) => Promise<void>,
): Promise<{ id: Digest; tag?: string }> {
  const tsPath = join(deps.tmpDir, `${key}.tarsplit`);
  let tarsplit: TarSplitWriter | undefined = new TarSplitWriter(tsPath);
  try {
    let tarSize = 0;
    const w = await writeLayer(dir, lowers, (chunk) => {
      tarSize += chunk.length;
    }, { tarsplit });
    const ts = tarsplit.finish();
    tarsplit = undefined;
    // build: a step that changed nothing adds no layer (Docker's empty_layer)
    const empty = !!opts.buildConfig && w.diffId === EMPTY_LAYER_DIFF_ID;
    let lease: { chainIds: Digest[]; release(): void };
    if (empty) {
      await deps.snapshots.remove(key);
      await rm(tsPath, { force: true });
      lease = { chainIds: chain, release: deps.images.layers.lease(chain) };
    } else lease = await deps.images.layers.adoptPrepared(chain, key, { diffId: w.diffId as Digest, size: w.contentBytes, tarSize, tarsplit: { path: tsPath, ...ts } });
    try {
      const config = opts.buildConfig ? opts.buildConfig(parentConfig, w.diffId as Digest, empty) : newConfig(parentConfig, c, w.diffId as Digest, opts);
      const bytes = Buffer.from(JSON.stringify(config));
      const id = sha256(bytes);
      await deps.images.content.put(bytes, id);
      deps.images.add(id, config, lease.chainIds, { ...(target ? { tags: [target] } : {}), parent: c.imageId as Digest });
      if (!empty) await then?.(lease.chainIds[lease.chainIds.length - 1]!);
      return { id, ...(target ? { tag: target.familiarString() } : {}) };
    } finally {
      lease.release();
    }
  } catch (e) {
    tarsplit?.abort();
    await rm(tsPath, { force: true });
    throw e;
  }
}

/** Unmounts `path` if mounted, without detaching; false when it is busy. */
function unmountNow(path: string): boolean {
  try {
    umount2(path, 0);
  } catch (e) {
    const c = errnoCode(e);
    if (c === 'EBUSY') return false;
    if (c !== 'EINVAL' && c !== 'ENOENT') throw e;
  }
  return true;
}

/**
 * A stopped container (its lock held): the new layer is made of the container's own inodes
 * (hard links; merged over the layer it continues on, if any), then the container moves on
 * to the new layer with an empty upper dir. The upper dir is marked shared before the first
 * link exists, so nothing ever writes into a layer's file.
 */
async function commitStopped(deps: CommitDeps, c: ContainerRecord, chain: Digest[], parentConfig: ImageConfig, opts: CommitOptions, target: Target) {
  // its root file system must not stay mounted (a lazily detached mount could still write
  // into the upper dir): when something holds it busy, commit it like a running one
  if (!unmountNow(deps.containers.rootfs(c.id))) return commitRunning(deps, c, chain, parentConfig, { ...opts, pause: false }, target);
  const stack = deps.snapshots.stack(c.snapshot);
  const key = `commit-${randomBytes(8).toString('hex')}`;
  const wasShared = !!c.state.UpperShared;
  deps.containers.markUpperShared(c.id);
  let recorded = false;
  try {
    const dir = await deps.snapshots.prepare(key, undefined, { temporary: true });
    if (stack.lower) await mergeLayers(stack.lower, stack.upper, dir, stack.lowers);
    else await linkTree(stack.upper, dir, { into: true });
    return await record(deps, c, key, dir, stack.lowers, chain, parentConfig, opts, target, async (chainId) => {
      recorded = true;
      // the image is recorded: a failure here (a full disk) leaves the upper dir marked
      // shared, and the next start or write redoes the move (or copies, if the layer could
      // not even be recorded under the container)
      await deps.containers.continueOnLocked(c.id, chainId).catch(() => {});
    });
  } catch (e) {
    if (deps.snapshots.stat(key)) await deps.snapshots.remove(key).catch(() => {});
    // nothing shares the upper dir's inodes any more: no copy needed before the next write
    if (!recorded && !wasShared) {
      try {
        deps.containers.markUpperShared(c.id, false);
      } catch {
        /* a full disk: the next start makes a needless private copy, nothing worse */
      }
    }
    throw e;
  }
}

/**
 * A running container, paused for the copy (Docker's -p): its upper dir is copied (cp -a,
 * reflinks where the file system has them) into the new layer — merged over the layer it
 * continues on, if any — and it runs on as it was.
 */
async function commitRunning(deps: CommitDeps, c: ContainerRecord, chain: Digest[], parentConfig: ImageConfig, opts: CommitOptions, target: Target) {
  const stack = deps.snapshots.stack(c.snapshot);
  const key = `commit-${randomBytes(8).toString('hex')}`;
  const scratch = join(deps.tmpDir, `commit-${process.pid}-${randomBytes(4).toString('hex')}`);
  let paused = opts.pause !== false && c.state.Running && !c.state.Paused;
  if (paused) await deps.containers.pause(c.id);
  const resume = async () => {
    if (!paused) return;
    paused = false;
    await deps.containers.unpause(c.id).catch(() => {});
  };
  try {
    const dir = await deps.snapshots.prepare(key, undefined, { temporary: true });
    const copyTo = stack.lower ? scratch : dir;
    if (stack.lower) mkdirSync(scratch, { mode: 0o700 });
    await run('cp', ['-a', '--reflink=auto', stack.upper + '/.', copyTo + '/']);
    // the layer is captured: the container runs on while the image is recorded
    await resume();
    if (stack.lower) {
      await mergeLayers(stack.lower, scratch, dir, stack.lowers);
      await removeTree(scratch);
    }
    return await record(deps, c, key, dir, stack.lowers, chain, parentConfig, opts, target);
  } catch (e) {
    await removeTree(scratch).catch(() => {});
    if (deps.snapshots.stat(key)) await deps.snapshots.remove(key).catch(() => {});
    throw e;
  } finally {
    await resume();
  }
}

/**
 * Docker's merge of a commit's config with the container's (daemon/commit.go): what the
 * given config leaves unset comes from the container; ports, volumes and labels are
 * merged, and environment variables it does not name are added.
 */
export function mergeConfig(user: ContainerConfig, ctr: ContainerConfig): ContainerConfig {
  if (!user.User) user.User = ctr.User ?? '';
  if (!user.ExposedPorts || Object.keys(user.ExposedPorts).length === 0) {
    if (ctr.ExposedPorts) user.ExposedPorts = ctr.ExposedPorts;
  } else for (const p of Object.keys(ctr.ExposedPorts ?? {})) user.ExposedPorts[p] ??= {};
  if (!user.Env?.length) {
    if (ctr.Env) user.Env = ctr.Env;
  } else {
    const keys = new Set(user.Env.map((e) => e.split('=')[0]));
    for (const e of ctr.Env ?? []) if (!keys.has(e.split('=')[0])) user.Env.push(e);
  }
  user.Labels = { ...(ctr.Labels ?? {}), ...(user.Labels ?? {}) };
  if (!user.Entrypoint?.length) {
    if (!user.Cmd?.length && ctr.Cmd) user.Cmd = ctr.Cmd;
    if (user.Entrypoint === undefined || user.Entrypoint === null) {
      if (ctr.Entrypoint) user.Entrypoint = ctr.Entrypoint;
    }
  }
  if (ctr.Healthcheck && !user.Healthcheck) user.Healthcheck = ctr.Healthcheck;
  if (!user.WorkingDir && ctr.WorkingDir) user.WorkingDir = ctr.WorkingDir;
  if (!user.Volumes || Object.keys(user.Volumes).length === 0) {
    if (ctr.Volumes) user.Volumes = ctr.Volumes;
  } else Object.assign(user.Volumes, ctr.Volumes ?? {});
  if (!user.StopSignal && ctr.StopSignal) user.StopSignal = ctr.StopSignal;
  return user;
}

/** The committed image's config: Docker's rules (container config as the new Config, -c on top). */
function newConfig(parent: ImageConfig, c: ContainerRecord, diffId: Digest, opts: CommitOptions): ImageConfig {
  const created = new Date().toISOString();
  // the container's config (its Cmd, Env, …) becomes the image's, minus what is per-container
  const base: ContainerConfig = opts.config ? { ...opts.config } : { ...c.config };
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
  if (opts.config) mergeConfig(config, c.config);
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
