/** `rmi` and `image prune`, following Docker 20.10's ImageDelete rules and messages. */
import { conflict } from '../errors/index.js';
import { shortId, type Digest } from '../oci/digest.js';
import { parseReference } from '../oci/reference.js';
import type { ImageRecord, ImageStore } from './images.js';

export type RemoveEvent = { Untagged: string } | { Deleted: string };

export interface ImageUsage {
  /** a container using the image: its ID, and whether it runs */
  container(id: Digest): { id: string; running: boolean } | undefined;
  /** called before the image's record and layers go (image mounts, …) */
  beforeDelete?(img: ImageRecord): Promise<void>;
}

export interface RemoveOptions {
  force?: boolean;
  noPrune?: boolean;
}

interface Ref {
  digest: boolean;
  /** normalised repository name */
  repo: string;
  /** tags: full normalised name:tag; digests: repo@digest */
  key: string;
  familiar: string;
}

function refsOf(img: ImageRecord): Ref[] {
  const out: Ref[] = [];
  for (const t of img.tags) {
    try {
      const r = parseReference(t);
      out.push({ digest: false, repo: r.name, key: t, familiar: r.familiarString() });
    } catch {
      out.push({ digest: false, repo: t, key: t, familiar: t });
    }
  }
  for (const d of img.repoDigests) {
    let fam = d.repo;
    try {
      fam = parseReference(d.repo).familiarName;
    } catch {
      /* keep */
    }
    out.push({ digest: true, repo: d.repo, key: `${d.repo}@${d.digest}`, familiar: `${fam}@${d.digest}` });
  }
  // Docker's reference store lists an image's references in lexical order of their full names
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** At most one tag, and every reference within one repository. */
function isSingleReference(refs: Ref[]): boolean {
  const tags = refs.filter((r) => !r.digest);
  if (tags.length > 1) return false;
  return new Set(refs.map((r) => r.repo)).size <= 1;
}

function dropRef(store: ImageStore, r: Ref): void {
  if (r.digest) {
    const at = r.key.lastIndexOf('@');
    store.removeRepoDigest(r.key.slice(0, at), r.key.slice(at + 1));
  } else store.untag(r.key);
}

const C_HARD = 1;
const C_SOFT = 2;
const C_ACTIVE_REF = 4;

function checkConflict(store: ImageStore, img: ImageRecord, usage: ImageUsage, mask: number): ReturnType<typeof conflict> | undefined {
  const id = shortId(img.id);
  if (mask & C_HARD) {
    if (store.list().some((i) => i.parent === img.id)) {
      return conflict('IMAGE_HAS_CHILDREN', `conflict: unable to delete ${id} (cannot be forced) - image has dependent child images`);
    }
    const u = usage.container(img.id);
    if (u?.running) return conflict('IMAGE_IN_USE', `conflict: unable to delete ${id} (cannot be forced) - image is being used by running container ${shortId(u.id)}`);
  }
  if (mask & C_ACTIVE_REF && refsOf(img).length > 1) {
    return conflict('IMAGE_MULTIPLE_REFS', `conflict: unable to delete ${id} (must be forced) - image is referenced in multiple repositories`, { hint: 'remove the tags one by one, or use -f' });
  }
  if (mask & C_SOFT) {
    const u = usage.container(img.id);
    if (u && !u.running) return conflict('IMAGE_IN_USE', `conflict: unable to delete ${id} (must be forced) - image is being used by stopped container ${shortId(u.id)}`, { hint: 'remove the container first, or use -f' });
  }
  return undefined;
}

/** Removes one image reference the way `docker rmi NAME` does. */
export async function removeImage(store: ImageStore, name: string, usage: ImageUsage, opts: RemoveOptions = {}): Promise<RemoveEvent[]> {
  const { image, ref } = store.resolve(name);
  const out: RemoveEvent[] = [];
  let refs = refsOf(image);
  let quiet = false;
  // Docker's isImageIDPrefix: the input is a prefix of the ID, with or without "sha256:"
  const byId = ref === undefined || image.id.startsWith(name) || image.id.slice(7).startsWith(name);
  if (!byId && ref) {
    if (!opts.force && isSingleReference(refs)) {
      const u = usage.container(image.id);
      if (u) {
        throw conflict('IMAGE_IN_USE', `conflict: unable to remove repository reference "${name}" (must force) - container ${shortId(u.id)} is using its referenced image ${shortId(image.id)}`, {
          hint: 'remove the container first, or use -f',
        });
      }
    }
    const key = ref.digest ? `${ref.name}@${ref.digest}` : ref.withDefaultTag().toString();
    const r = refs.find((x) => x.key === key)!;
    dropRef(store, r);
    out.push({ Untagged: r.familiar });
    refs = refs.filter((x) => x !== r);
    if (!r.digest && !refs.some((x) => !x.digest && x.repo === r.repo)) {
      // the last tag of a repository takes that repository's digest references along
      for (const d of refs.filter((x) => x.digest && x.repo === r.repo)) {
        dropRef(store, d);
        out.push({ Untagged: d.familiar });
      }
      refs = refs.filter((x) => !(x.digest && x.repo === r.repo));
    }
    if (refs.length > 0) return out;
    quiet = true;
  } else if (isSingleReference(refs)) {
    const c = checkConflict(store, image, usage, C_HARD | (opts.force ? 0 : C_SOFT));
    if (c) throw c;
    for (const r of refs) {
      dropRef(store, r);
      out.push({ Untagged: r.familiar });
    }
  }
  await deleteHelper(store, store.get(image.id)!, usage, out, !!opts.force, !opts.noPrune, quiet);
  return out;
}

async function deleteHelper(store: ImageStore, img: ImageRecord, usage: ImageUsage, out: RemoveEvent[], force: boolean, prune: boolean, quiet: boolean): Promise<void> {
  const c = checkConflict(store, img, usage, C_HARD | (force ? 0 : C_SOFT | C_ACTIVE_REF));
  if (c) {
    // Docker's imageIsDangling: no reference and no child image
    const dangling = img.tags.length === 0 && img.repoDigests.length === 0 && !store.list().some((i) => i.parent === img.id);
    if (quiet && (!dangling || usage.container(img.id))) return;
    throw c;
  }
  for (const r of refsOf(img)) {
    dropRef(store, r);
    out.push({ Untagged: r.familiar });
  }
  await usage.beforeDelete?.(img);
  const chain = store.deleteRecord(img.id);
  out.push({ Deleted: img.id });
  const removed = await store.layers.release(chain);
  for (const l of removed) out.push({ Deleted: l });
  await store.content.delete(img.id).catch(() => {});
  if (!prune || !img.parent) return;
  const parent = store.get(img.parent);
  if (parent && parent.tags.length === 0 && parent.repoDigests.length === 0) {
    await deleteHelper(store, parent, usage, out, false, true, true);
  }
}

/**
 * `image prune` as Docker 20.10's ImagesPrune: the candidates are the images without
 * child images (dangling mode), or every image but untagged parents (`-a`). A candidate
 * with references is removed reference by reference, like `rmi REF` each (in -a mode, or
 * when none of them is a tag); one without, like `rmi ID`. A refusal (a container uses
 * it, a child image) skips that reference and the prune goes on — an image used by a
 * container may so lose all but its last tag, as with Docker. The space reclaimed is the
 * size of the layers deleted.
 */
export async function pruneImages(store: ImageStore, usage: ImageUsage, opts: { all?: boolean } = {}): Promise<{ events: RemoveEvent[]; reclaimed: number }> {
  const events: RemoveEvent[] = [];
  const sizes = new Map(store.layers.all().map((l) => [l.chainId as string, l.size]));
  const all = store.list();
  const hasChildren = (img: ImageRecord) => all.some((k) => k.parent === img.id);
  const candidates = all.filter((i) => (opts.all ? refsOf(i).length > 0 || !hasChildren(i) : !hasChildren(i)));
  const attempt = async (name: string): Promise<void> => {
    try {
      events.push(...(await removeImage(store, name, usage)));
    } catch (e) {
      const kind = (e as { kind?: string }).kind;
      if (kind === 'conflict' || kind === 'not-found') return; // Docker's imageDeleteFailed: skip it
      throw e;
    }
  };
  for (const c of candidates) {
    const img = store.get(c.id);
    if (!img) continue; // gone with an image removed before it
    // Docker's reference store lists an image's references in lexical order
    const refs = refsOf(img).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    if (refs.length === 0) await attempt(img.id.slice(7));
    else if (opts.all || refs.every((r) => r.digest)) for (const r of refs) await attempt(r.key);
  }
  let reclaimed = 0;
  for (const e of events) if ('Deleted' in e && sizes.has(e.Deleted)) reclaimed += sizes.get(e.Deleted)!;
  return { events, reclaimed };
}
