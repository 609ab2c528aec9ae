/**
 * Test support (used by the *.test.ts files only): a tiny busybox rootfs in a temp dir, a static C probe
 * compiled into it, and per-test directories for bundles, logs and exit files. Needs root, runc or crun,
 * conmon, busybox-static, gcc and libc6-dev.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile, readdir, rmdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { detectRuntime, type Runtime } from './runtime.js';
import { Writable } from 'node:stream';
import type { ContainerConfig } from '../oci/types.js';
import { attachContainer, createContainer, startContainer, type ContainerPaths } from './conmon.js';
import { waitExit } from './exit.js';
import { buildSpec, type RunOptions } from './spec.js';
import type { Spec } from './types.js';

export const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/prctl.h>

static void report(const char *what, long r) {
  if (r < 0) printf("%s: %s\n", what, errno == EPERM ? "EPERM" : strerror(errno));
  else printf("%s: ok\n", what);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "seccomp";
  if (strcmp(mode, "seccomp") == 0) {
    /* KEYCTL_JOIN_SESSION_KEYRING = 1 */
    report("keyctl", syscall(SYS_keyctl, 1, 0, 0, 0, 0));
    report("unshare", unshare(CLONE_NEWUSER));
    report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    return 0;
  }
  if (strcmp(mode, "fds") == 0) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int self = dirfd(d);
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.') continue;
      if (atoi(e->d_name) == self) continue;
      char target[4096] = {0};
      char link[300];
      snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
      readlink(link, target, sizeof target - 1);
      printf("%s -> %s\n", e->d_name, target);
    }
    closedir(d);
    return 0;
  }
  return 2;
}
`;

export interface Kit {
  dir: string;
  rootfs: string;
  runtime: Runtime;
  /** fresh paths for a container id */
  paths(id: string): ContainerPaths;
  newId(prefix?: string): string;
  cleanup(): Promise<void>;
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** A rootfs with busybox (+ `busybox --install -s` run by chroot), root and user 1000, and /bin/probe. */
export async function makeRootfs(rootfs: string): Promise<void> {
  for (const d of ['bin', 'etc', 'tmp', 'root', 'home/user', 'proc', 'sys', 'dev', 'mnt']) await mkdir(join(rootfs, d), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
  sh('chroot', [rootfs, '/bin/busybox', '--install', '-s', '/bin']);
  await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n');
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\ntty:x:5:\nuser:x:1000:\nextra:x:2000:user\nmore:x:2001:root,user\n');
  const src = join(rootfs, '..', 'probe.c');
  await writeFile(src, PROBE_C);
  sh('gcc', ['-static', '-O1', '-o', join(rootfs, 'bin/probe'), src]);
}

export async function makeKit(): Promise<Kit> {
  const dir = await mkdtemp(join(tmpdir(), 'layerbox-rt-'));
  const rootfs = join(dir, 'rootfs');
  let runtime: Runtime;
  try {
    await makeRootfs(rootfs);
    runtime = await detectRuntime({ stateDir: join(dir, 'state') });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const ids: string[] = [];
  return {
    dir,
    rootfs,
    runtime,
    newId(prefix = 't') {
      const id = `${prefix}-${randomBytes(5).toString('hex')}`;
      ids.push(id);
      return id;
    },
    paths(id: string): ContainerPaths {
      return { bundleDir: join(dir, 'c', id), logPath: join(dir, 'c', id, 'ctr.log'), exitDir: join(dir, 'exits') };
    },
    async cleanup() {
      for (const id of ids) await runtime.delete(id, { force: true }).catch(() => {});
      await rm(dir, { recursive: true, force: true });
      await removeCgroups(TEST_CGROUP_PARENT);
    },
  };
}

export const TEST_CGROUP_PARENT = 'layerbox-test';

/** Removes leftover (empty) cgroup directories named `parent` in every hierarchy. */
export async function removeCgroups(parent: string): Promise<void> {
  const roots = ['/sys/fs/cgroup', ...(await readdir('/sys/fs/cgroup').catch(() => [] as string[])).map((d) => join('/sys/fs/cgroup', d))];
  for (const r of roots) {
    const p = join(r, parent);
    if (!existsSync(p)) continue;
    for (const child of await readdir(p, { withFileTypes: true }).catch(() => [])) {
      if (child.isDirectory()) await rmdir(join(p, child.name)).catch(() => {});
    }
    await rmdir(p).catch(() => {});
  }
}

export interface RunResult {
  id: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  spec: Spec;
}

/** Collects what is written to it. */
export class Sink extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** `docker run --rm` in miniature: build the spec, create under conmon, attach, start, wait, delete. */
export async function runToEnd(kit: Kit, image: ContainerConfig, options: RunOptions = {}, extra: { readonlyRootfs?: boolean } = {}): Promise<RunResult> {
  const id = kit.newId();
  const { spec } = await buildSpec({ rootfs: kit.rootfs, image, readonlyRootfs: extra.readonlyRootfs, options: { cgroupsPath: `/${TEST_CGROUP_PARENT}/${id}`, ...options } });
  const paths = kit.paths(id);
  await createContainer({ id, runtime: kit.runtime, paths, spec });
  const out = new Sink();
  const err = new Sink();
  const a = await attachContainer(paths, { stdout: out, stderr: err });
  await startContainer(kit.runtime, id);
  const st = await waitExit(paths, id, { timeoutMs: 30_000 });
  await a.done;
  await kit.runtime.delete(id, { force: true });
  if (!st) throw new Error(`container ${id} did not exit`);
  return { id, exitCode: st.exitCode, stdout: out.text(), stderr: err.text(), spec };
}
