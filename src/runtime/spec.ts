/**
 * buildSpec: rootfs + image config + `docker run`-like options → OCI runtime config.json with
 * Docker 20.10's default hardening. buildExecProcess: the process.json of `docker exec`.
 */
import { existsSync } from 'node:fs';
import { cpus as hostCpus } from 'node:os';
import { invalidArgument, unavailable, EngineError } from '../errors/index.js';
import type { ContainerConfig } from '../oci/types.js';
import { capabilitySets, tweakCaps, grantableCaps } from './caps.js';
import { checkWorkdir, commandLine, hasEnv, isProcPath, mergeContainerConfig, processEnv, replaceOrAppendEnv, workdirInProc, type ConfigOverrides } from './config.js';
import { defaultDeviceRules, privilegedDevices } from './devices.js';
import { hostHardLimit } from './host.js';
import { MASKED_PATHS, READONLY_PATHS, planMounts, type EtcFiles, type MountInput } from './mounts.js';
import { ensureDirInRoot, resolveInRootRel } from './rootfs.js';
import { defaultSeccomp, loadSeccompProfile, parseSeccompProfile, translateSeccomp } from './seccomp.js';
import { OCI_VERSION, type Namespace, type Process, type Resources, type Rlimit, type Seccomp, type Spec } from './types.js';
import { resolveGroupAdds, resolveUser, type ExecUser } from './user.js';

export type NetworkMode =
  /** share the host's network namespace (`--network host`) */
  | { mode: 'host' }
  /** a new, empty network namespace (`--network none`, and the default when no path is given) */
  | { mode: 'none' }
  /** join a prepared namespace (CNI): e.g. /run/netns/<name> */
  | { mode: 'path'; path: string };

export interface Ulimit {
  /** nofile, nproc, core, memlock, … (RLIMIT_ suffix, any case) */
  name: string;
  soft: number;
  hard: number;
}

export interface RunOptions extends ConfigOverrides {
  groupAdd?: string[];
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  /** `no-new-privileges[:true|false]`, `seccomp=unconfined`, `seccomp=<file>`, `apparmor=…`, `label=…` */
  securityOpt?: string[];
  /** alias of BuildSpecInput.readonlyRootfs (`--read-only`) */
  readOnly?: boolean;
  /** `-m`, bytes */
  memory?: number;
  /** `--memory-swap`, bytes of memory+swap; -1 unlimited; default 2 × memory where swap accounting exists */
  memorySwap?: number;
  /** `--cpus` */
  cpus?: number;
  /** `--pids-limit` (≤ 0: unlimited) */
  pidsLimit?: number;
  /** `--cpu-shares` (relative weight) */
  cpuShares?: number;
  /** `--cpu-period` / `--cpu-quota`, microseconds (instead of `cpus`) */
  cpuPeriod?: number;
  cpuQuota?: number;
  /** `--cpuset-cpus`, `--cpuset-mems` */
  cpusetCpus?: string;
  cpusetMems?: string;
  /** `--memory-reservation`, bytes (soft limit) */
  memoryReservation?: number;
  /** `--blkio-weight` (10 to 1000) */
  blkioWeight?: number;
  /** `--shm-size`, bytes (default 64 MiB) */
  shmSize?: number;
  mounts?: MountInput[];
  /** host files bind-mounted at /etc/hosts, /etc/hostname, /etc/resolv.conf */
  etcFiles?: EtcFiles;
  /** default: a new empty network namespace */
  network?: NetworkMode;
  /** `--init`: true = the host's tini-static (Docker's docker-init), or a path to an init binary */
  init?: boolean | string;
  annotations?: Record<string, string>;
  /** e.g. `/layerbox/<id>` (absolute: under each hierarchy's root; relative: under the engine's own cgroup) */
  cgroupsPath?: string;
  sysctls?: Record<string, string>;
  ulimits?: Ulimit[];
  /** initial terminal size for `-t` */
  consoleSize?: { height: number; width: number };
}

export interface BuildSpecInput {
  /** absolute path of the prepared root file system (overlay mount or plain directory) */
  rootfs: string;
  readonlyRootfs?: boolean;
  /** the image config's `config` */
  image: ContainerConfig | undefined;
  options: RunOptions;
}

export interface BuiltSpec {
  spec: Spec;
  /** the merged Config (`docker inspect` .Config) — persist it: exec needs Env and Hostname */
  config: ContainerConfig;
  /** the resolved user of the container process */
  user: ExecUser;
}

export const INIT_CANDIDATES = ['/usr/bin/tini-static', '/usr/libexec/docker/docker-init', '/usr/bin/docker-init', '/usr/sbin/docker-init'];
export const NOFILE_CAP = 1048576;

/** The init binary for `--init` (Debian's tini-static, bound in as /dev/init like Docker's docker-init). */
export function findInit(explicit?: string): string {
  const candidates = explicit ? [explicit] : INIT_CANDIDATES;
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw unavailable('INIT_MISSING', `no init binary for --init: ${candidates.join(', ')} not found`, {
      where: candidates[0],
      hint: 'install Debian\'s tini package (apt-get install tini), which provides /usr/bin/tini-static',
    });
  }
  return found;
}

interface SecurityOpts {
  noNewPrivileges: boolean;
  seccomp: 'default' | 'unconfined' | { file: string } | { json: string };
}

export function parseSecurityOpts(opts: readonly string[] = []): SecurityOpts {
  const out: SecurityOpts = { noNewPrivileges: false, seccomp: 'default' };
  for (const raw of opts) {
    const o = raw.trim();
    if (o === 'no-new-privileges') {
      out.noNewPrivileges = true;
      continue;
    }
    const m = /^([a-z-]+)[=:](.*)$/.exec(o);
    if (!m) throw invalidArgument('SECURITY_OPT_INVALID', `Invalid --security-opt: ${JSON.stringify(raw)}`, { where: raw });
    const [, key, value] = m as unknown as [string, string, string];
    switch (key) {
      case 'no-new-privileges':
        if (value !== 'true' && value !== 'false') throw invalidArgument('SECURITY_OPT_INVALID', `invalid --security-opt 2: ${JSON.stringify(raw)}`, { where: raw });
        out.noNewPrivileges = value === 'true';
        break;
      case 'seccomp':
        // the docker CLI sends the profile's content (it reads `seccomp=FILE` itself); a path works too
        out.seccomp = value === 'unconfined' ? 'unconfined' : value.trimStart().startsWith('{') ? { json: value } : { file: value };
        break;
      case 'apparmor':
      case 'label':
        break; // no AppArmor/SELinux profile is applied by layerbox; accepted for compatibility
      default:
        throw invalidArgument('SECURITY_OPT_INVALID', `Invalid --security-opt: ${JSON.stringify(raw)}`, { where: raw });
    }
  }
  return out;
}

/** RLIMIT_NOFILE = min(1048576, host hard limit): the runtime can never be asked to raise a hard limit. */
export function defaultRlimits(ulimits: readonly Ulimit[] = []): Rlimit[] {
  const hostNofile = hostHardLimit('Max open files');
  const nofile = Math.min(NOFILE_CAP, hostNofile ?? NOFILE_CAP);
  const out = new Map<string, Rlimit>([['RLIMIT_NOFILE', { type: 'RLIMIT_NOFILE', soft: nofile, hard: nofile }]]);
  for (const u of ulimits) {
    const type = 'RLIMIT_' + u.name.toUpperCase().replace(/^RLIMIT_/, '');
    if (u.soft > u.hard) throw invalidArgument('ULIMIT_INVALID', `ulimit soft limit must be less than or equal to hard limit: ${u.soft} > ${u.hard}`, { where: u.name });
    const hostHard = type === 'RLIMIT_NOFILE' ? hostNofile : type === 'RLIMIT_NPROC' ? hostHardLimit('Max processes') : undefined;
    if (hostHard !== undefined && u.hard > hostHard) {
      throw new EngineError('failed-precondition', 'ULIMIT_ABOVE_HOST', `ulimit ${u.name}=${u.soft}:${u.hard} exceeds the host's hard limit ${hostHard}`, {
        where: u.name,
        hint: `use at most ${hostHard}; raising a hard limit needs CAP_SYS_RESOURCE, which the engine lacks`,
      });
    }
    out.set(type, { type, soft: u.soft, hard: u.hard });
  }
  return [...out.values()];
}

export function swapAccounting(): boolean {
  return existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes') || existsSync('/sys/fs/cgroup/cgroup.controllers');
}

export function buildResources(o: RunOptions): Resources {
  const r: Resources = {};
  if (o.memory !== undefined && o.memory > 0) {
    if (o.memory < 6 * 1024 * 1024) throw invalidArgument('MEMORY_TOO_LOW', 'Minimum memory limit allowed is 6MB', { where: String(o.memory) });
    r.memory = { limit: o.memory };
    if (o.memorySwap !== undefined && o.memorySwap !== 0) {
      if (o.memorySwap > 0 && o.memorySwap < o.memory) throw invalidArgument('MEMORY_SWAP_TOO_LOW', 'Minimum memoryswap limit should be larger than memory limit, see usage', { where: String(o.memorySwap) });
      r.memory.swap = o.memorySwap;
    } else if (swapAccounting()) r.memory.swap = o.memory * 2;
  }
  if (o.cpus !== undefined && o.cpus !== 0) {
    const n = hostCpus().length;
    if (o.cpus < 0.01 || o.cpus > n) throw invalidArgument('CPUS_OUT_OF_RANGE', `Range of CPUs is from 0.01 to ${n}.00, as there are only ${n} CPUs available`, { where: String(o.cpus) });
    r.cpu = { quota: Math.round(o.cpus * 100000), period: 100000 };
  }
  if (o.pidsLimit !== undefined && o.pidsLimit > 0) r.pids = { limit: o.pidsLimit };
  if (o.cpuShares) (r.cpu ??= {}).shares = o.cpuShares;
  if (o.cpuQuota && !r.cpu?.quota) Object.assign((r.cpu ??= {}), { quota: o.cpuQuota, period: o.cpuPeriod || 100000 });
  else if (o.cpuPeriod && !r.cpu?.quota) (r.cpu ??= {}).period = o.cpuPeriod;
  if (o.cpusetCpus) (r.cpu ??= {}).cpus = o.cpusetCpus;
  if (o.cpusetMems) (r.cpu ??= {}).mems = o.cpusetMems;
  if (o.memoryReservation) (r.memory ??= {}).reservation = o.memoryReservation;
  if (o.blkioWeight) r.blockIO = { weight: o.blkioWeight };
  return r;
}

async function seccompFor(sec: SecurityOpts, privileged: boolean, caps: string[], signal?: AbortSignal): Promise<Seccomp | undefined> {
  // Docker: --privileged runs without seccomp, whatever profile was asked for
  if (privileged || sec.seccomp === 'unconfined') return undefined;
  if (sec.seccomp === 'default') return defaultSeccomp(caps);
  if ('json' in sec.seccomp) return translateSeccomp(parseSeccompProfile(sec.seccomp.json, 'the --security-opt seccomp= profile'), { caps });
  return translateSeccomp(await loadSeccompProfile(sec.seccomp.file, { signal }), { caps });
}

/** Validates the working directory lexically and inside the rootfs, then creates it if missing. */
export async function prepareWorkdir(rootfs: string, dir: string | undefined): Promise<string> {
  const wd = checkWorkdir(dir);
  const resolved = await resolveInRootRel(rootfs, wd);
  if (isProcPath(resolved)) throw workdirInProc(wd, resolved);
  await ensureDirInRoot(rootfs, wd);
  return wd;
}

/**
 * The OCI config for `input`. Reads /etc/passwd and /etc/group of the rootfs (safely inside it) and
 * creates the working directory there when it is missing (as Docker does); nothing else is written.
 */
export async function buildSpec(input: BuildSpecInput, opts: { signal?: AbortSignal } = {}): Promise<BuiltSpec> {
  const o = input.options;
  const readonlyRootfs = !!(input.readonlyRootfs || o.readOnly);
  const privileged = !!o.privileged;
  const config = mergeContainerConfig(input.image, o);
  const args = commandLine(config);
  const sec = parseSecurityOpts(o.securityOpt);
  const caps = tweakCaps({ capAdd: o.capAdd, capDrop: o.capDrop, privileged });
  const user = await resolveUser(input.rootfs, config.User);
  const extraGids = await resolveGroupAdds(input.rootfs, o.groupAdd ?? []);
  const cwd = await prepareWorkdir(input.rootfs, config.WorkingDir);
  const tty = !!o.tty;

  const env = processEnv(config, tty);
  if (!hasEnv(env, 'HOME')) env.push(`HOME=${user.home || '/'}`);

  const initPath = o.init ? findInit(typeof o.init === 'string' ? o.init : undefined) : undefined;
  const processArgs = initPath ? ['/dev/init', '--', ...args] : args;

  const process: Process = {
    terminal: tty,
    user: { uid: user.uid, gid: user.gid, additionalGids: [...new Set([...user.additionalGids, ...extraGids])] },
    args: processArgs,
    env,
    cwd,
    capabilities: capabilitySets(caps),
    rlimits: defaultRlimits(o.ulimits),
    noNewPrivileges: sec.noNewPrivileges,
    oomScoreAdj: 0,
  };
  if (process.user.additionalGids!.length === 0) delete process.user.additionalGids;
  if (tty && o.consoleSize) process.consoleSize = { ...o.consoleSize };

  const namespaces: Namespace[] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  const net = o.network ?? { mode: 'none' };
  if (net.mode === 'path') namespaces.push({ type: 'network', path: net.path });
  else if (net.mode === 'none') namespaces.push({ type: 'network' });

  const plan = planMounts({ mounts: o.mounts, etcFiles: o.etcFiles, readonlyRootfs, privileged, initPath, shmSize: o.shmSize });
  const resources = buildResources(o);
  const devs = privileged ? privilegedDevices() : { devices: [], rules: defaultDeviceRules() };
  resources.devices = devs.rules;

  const sysctl: Record<string, string> = {};
  if (net.mode !== 'host') {
    sysctl['net.ipv4.ip_unprivileged_port_start'] = '0';
    sysctl['net.ipv4.ping_group_range'] = '0 2147483647';
  }
  Object.assign(sysctl, o.sysctls ?? {});

  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process,
    root: { path: input.rootfs, readonly: readonlyRootfs },
    mounts: plan.mounts,
    linux: {
      namespaces,
      devices: devs.devices,
      resources,
      maskedPaths: privileged ? [] : [...MASKED_PATHS],
      readonlyPaths: privileged ? [] : [...READONLY_PATHS],
      sysctl,
    },
  };
  if (config.Hostname) spec.hostname = config.Hostname;
  if (config.Domainname) spec.domainname = config.Domainname;
  if (o.annotations && Object.keys(o.annotations).length > 0) spec.annotations = { ...o.annotations };
  if (o.cgroupsPath) spec.linux.cgroupsPath = o.cgroupsPath;
  if (plan.rootfsPropagation) spec.linux.rootfsPropagation = plan.rootfsPropagation;
  const seccomp = await seccompFor(sec, privileged, caps, opts.signal);
  if (seccomp) spec.linux.seccomp = seccomp;
  return { spec, config, user };
}

export interface ExecOptions {
  args: string[];
  /** `-e` of the exec */
  env?: string[];
  /** `-w` */
  workdir?: string;
  /** `-u` */
  user?: string;
  tty?: boolean;
  privileged?: boolean;
  consoleSize?: { height: number; width: number };
}

/**
 * process.json for `docker exec`: the container's env (daemon defaults + Config.Env) plus the exec's,
 * its user and cwd unless overridden, the container's capabilities, no_new_privs and rlimits.
 */
export async function buildExecProcess(
  container: { spec: Spec; config: ContainerConfig; rootfs: string },
  e: ExecOptions,
): Promise<Process> {
  if (e.args.length === 0) throw invalidArgument('NO_COMMAND', 'No exec command specified');
  const base = container.spec.process;
  const tty = !!e.tty;
  let user = base.user;
  let home: string | undefined;
  if (e.user !== undefined && e.user !== '') {
    const u = await resolveUser(container.rootfs, e.user);
    user = { uid: u.uid, gid: u.gid, ...(u.additionalGids.length ? { additionalGids: u.additionalGids } : {}) };
    home = u.home;
  } else {
    home = base.env.find((v) => v.startsWith('HOME='))?.slice(5);
  }
  const cwd = checkWorkdir(e.workdir || base.cwd);
  const resolved = await resolveInRootRel(container.rootfs, cwd);
  if (isProcPath(resolved)) throw workdirInProc(cwd, resolved);

  const env = replaceOrAppendEnv(processEnv(container.config, tty), e.env ?? []);
  if (!hasEnv(env, 'HOME')) env.push(`HOME=${home || '/'}`);
  const p: Process = {
    terminal: tty,
    user,
    args: [...e.args],
    env,
    cwd,
    capabilities: e.privileged ? capabilitySets(grantableCaps()) : base.capabilities,
    noNewPrivileges: base.noNewPrivileges,
    oomScoreAdj: base.oomScoreAdj ?? 0,
  };
  if (base.rlimits) p.rlimits = base.rlimits;
  if (base.apparmorProfile) p.apparmorProfile = base.apparmorProfile;
  if (tty && e.consoleSize) p.consoleSize = { ...e.consoleSize };
  return p;
}
