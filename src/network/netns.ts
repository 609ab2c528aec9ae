/**
 * Persistent network namespaces, made the way `ip netns add` makes them: a new netns whose
 * nsfs file is bind-mounted on a file (by a short-lived thread of ours: native newNetns), so
 * it outlives its creator and an OCI runtime can join it by path. Ours live under `<root>/network/netns/<id>`
 * instead of /var/run/netns, so every store (and every test) has its own.
 *
 * No shared-propagation dance as `ip netns` does: unlinking the file after the unmount
 * detaches copies of the mount in other mount namespaces too (Linux >= 3.18).
 */
import { writeFile, rm, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { run } from '../sys/exec.js';
import { mkdirp } from '../sys/fsutil.js';
import { umount2, newNetns, MNT_DETACH } from '../sys/native.js';
import { conflict, errnoCode, internal, throwIfAborted } from '../errors/index.js';

function unescapeMountPath(s: string): string {
  return s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** How many nsfs mounts sit on `path` (0 when it is not a live netns bind mount). */
export async function netnsMountCount(path: string): Promise<number> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  let n = 0;
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f.length < sep + 2) continue;
    if (unescapeMountPath(f[4]!) === path && f[sep + 1] === 'nsfs') n++;
  }
  return n;
}

export async function isNetns(path: string): Promise<boolean> {
  return (await netnsMountCount(path)) > 0;
}

/**
 * Creates a new network namespace pinned at `path` (a regular file is created for the bind
 * mount). Its loopback is down: bring it up with the CNI loopback plugin.
 */
export async function createNetns(path: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  throwIfAborted(opts.signal);
  if (await isNetns(path)) {
    throw conflict('NETNS_EXISTS', 'a network namespace is already mounted there', {
      where: path,
      hint: 'tear down the container network first',
    });
  }
  await mkdirp(dirname(path), 0o700);
  try {
    await writeFile(path, '', { flag: 'wx', mode: 0o444 });
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw e; // a stale file (e.g. after a reboot): reuse it
  }
  try {
    // in-process (no exec): a thread unshares its network namespace and bind-mounts it here
    newNetns(path);
  } catch (e) {
    await rm(path, { force: true }).catch(() => {});
    throw internal('NETNS_CREATE_FAILED', `cannot create a network namespace: ${(e as Error).message}`, {
      where: path,
      cause: e,
      hint: 'creating network namespaces needs root (CAP_SYS_ADMIN)',
    });
  }
}

/** Unmounts and deletes a namespace file. Idempotent: a missing or stale file is fine. */
export async function removeNetns(path: string): Promise<void> {
  for (let i = 0; i < 8 && (await isNetns(path)); i++) {
    try {
      umount2(path, MNT_DETACH);
    } catch (e) {
      const c = errnoCode(e);
      if (c !== 'EINVAL' && c !== 'ENOENT') {
        throw internal('NETNS_UMOUNT_FAILED', `cannot unmount network namespace: ${(e as Error).message}`, { where: path, cause: e });
      }
    }
  }
  if (await isNetns(path)) {
    throw internal('NETNS_UMOUNT_FAILED', 'the network namespace is still mounted after unmounting', { where: path });
  }
  await rm(path, { force: true });
}

/** argv prefix to run a host program inside the namespace: `nsenter --net=<path> --`. */
export function nsenterArgs(path: string): string[] {
  return [`--net=${path}`, '--'];
}

/** Runs a host program inside the namespace (tests, diagnostics). */
export async function execInNetns(path: string, cmd: string, args: string[], opts: { signal?: AbortSignal; allowFailure?: boolean } = {}) {
  return run('nsenter', [...nsenterArgs(path), cmd, ...args], opts);
}
