/**
 * Docker seccomp profile → runtime-spec `linux.seccomp`, as moby's profiles/seccomp setupSeccomp does it:
 * architectures from `archMap` for this machine, syscall blocks filtered by `includes`/`excludes`
 * (Go arch names, capabilities of the final bounding set, minimum kernel version).
 */
import { readFile } from 'node:fs/promises';
import { invalidArgument, errnoCode, notFound } from '../errors/index.js';
import { GO_TO_SECCOMP, goArch, kernelAtLeast } from './host.js';
import { DOCKER_DEFAULT_SECCOMP } from './seccomp-default.js';
import type { Seccomp, SeccompArg, SeccompSyscall } from './types.js';

interface Filter {
  arches?: string[] | null;
  caps?: string[] | null;
  minKernel?: string | null;
}

export interface DockerSeccompSyscall {
  name?: string;
  names?: string[];
  action: string;
  errnoRet?: number;
  args?: (SeccompArg & { valueTwo?: number })[] | null;
  comment?: string;
  includes?: Filter;
  excludes?: Filter;
}

export interface DockerSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures: string[] | null }[] | null;
  listenerPath?: string;
  listenerMetadata?: string;
  flags?: string[];
  syscalls?: DockerSeccompSyscall[] | null;
}

export interface TranslateOptions {
  /** the container's final capability bounding set (CAP_… names) */
  caps: readonly string[];
  /** Go architecture name; defaults to this machine's */
  arch?: string;
  /** kernel check; defaults to this machine's kernel */
  kernelAtLeast?: (v: string) => boolean;
}

export function translateSeccomp(profile: DockerSeccompProfile, opts: TranslateOptions): Seccomp {
  const arch = opts.arch ?? goArch();
  const atLeast = opts.kernelAtLeast ?? kernelAtLeast;
  if (profile.architectures?.length && profile.archMap?.length) {
    throw invalidArgument('SECCOMP_PROFILE_INVALID', "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'");
  }
  const out: Seccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  const archs: string[] = [...(profile.architectures ?? [])];
  const native = GO_TO_SECCOMP[arch];
  if (native && profile.archMap) {
    for (const a of profile.archMap) {
      if (a.architecture === native) archs.push(a.architecture, ...(a.subArchitectures ?? []));
    }
  }
  if (archs.length > 0) out.architectures = archs;
  if (profile.flags?.length) out.flags = [...profile.flags];
  if (profile.listenerPath) out.listenerPath = profile.listenerPath;
  if (profile.listenerMetadata) out.listenerMetadata = profile.listenerMetadata;

  const syscalls: SeccompSyscall[] = [];
  for (const call of profile.syscalls ?? []) {
    const ex = call.excludes ?? {};
    const inc = call.includes ?? {};
    if (ex.arches?.length && ex.arches.includes(arch)) continue;
    if (ex.caps?.length && ex.caps.some((c) => opts.caps.includes(c))) continue;
    if (ex.minKernel && atLeast(ex.minKernel)) continue;
    if (inc.arches?.length && !inc.arches.includes(arch)) continue;
    if (inc.caps?.length && !inc.caps.every((c) => opts.caps.includes(c))) continue;
    if (inc.minKernel && !atLeast(inc.minKernel)) continue;
    if (call.name && call.names?.length) {
      throw invalidArgument('SECCOMP_PROFILE_INVALID', "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'");
    }
    const names = call.name ? [call.name] : [...(call.names ?? [])];
    const sc: SeccompSyscall = { names, action: call.action };
    if (call.errnoRet !== undefined) sc.errnoRet = call.errnoRet;
    if (call.args?.length) {
      sc.args = call.args.map((a) => {
        const r: SeccompArg = { index: a.index, value: a.value, op: a.op };
        if (a.valueTwo !== undefined && a.valueTwo !== 0) r.valueTwo = a.valueTwo;
        return r;
      });
    }
    syscalls.push(sc);
  }
  out.syscalls = syscalls;
  return out;
}

/** Docker's default profile, translated for this machine and the given capability set. */
export function defaultSeccomp(caps: readonly string[]): Seccomp {
  return translateSeccomp(DOCKER_DEFAULT_SECCOMP, { caps });
}

/** Reads a `--security-opt seccomp=<file>` profile (Docker's format; plain runtime-spec profiles work too). */
export async function loadSeccompProfile(path: string, opts: { signal?: AbortSignal } = {}): Promise<DockerSeccompProfile> {
  let text: string;
  try {
    text = await readFile(path, { encoding: 'utf8', signal: opts.signal });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw notFound('SECCOMP_PROFILE_MISSING', `opening seccomp profile (${path}) failed: no such file`, { where: path, cause: e });
    throw e;
  }
  return parseSeccompProfile(text, path);
}

/** A profile's JSON text (Docker's format, or a runtime-spec profile) checked for a defaultAction. */
export function parseSeccompProfile(text: string, where: string): DockerSeccompProfile {
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch (e) {
    throw invalidArgument('SECCOMP_PROFILE_INVALID', `decoding seccomp profile failed: ${(e as Error).message}`, { where, cause: e });
  }
  if (!p || typeof p !== 'object' || typeof (p as DockerSeccompProfile).defaultAction !== 'string') {
    throw invalidArgument('SECCOMP_PROFILE_INVALID', 'decoding seccomp profile failed: it has no defaultAction', { where });
  }
  return p as DockerSeccompProfile;
}
