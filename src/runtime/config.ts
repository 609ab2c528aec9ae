/**
 * Docker's merge of the image's container config with `docker run` flags (daemon/create merge(),
 * CreateDaemonEnvironment, ReplaceOrAppendEnvValues, getEntrypointAndArgs), and the working-directory
 * checks that keep a hostile image from escaping through it (CVE-2024-21626).
 */
import { invalidArgument, EngineError } from '../errors/index.js';
import type { ContainerConfig } from '../oci/types.js';
import { cleanContainerPath } from './rootfs.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ConfigOverrides {
  /** `docker run IMAGE CMD...` */
  cmd?: string[];
  /**
   * `--entrypoint`. `['']` (the CLI's `--entrypoint ""`) resets it and drops the image's Cmd; `[]` (API)
   * resets it but keeps the image's Cmd; a non-empty list replaces it and drops the image's Cmd.
   */
  entrypoint?: string[];
  /** `-e K=V` (the CLI expands `-e K` from its own environment; a bare `K` here unsets K) */
  env?: string[];
  /** `-w` */
  workdir?: string;
  /** `-u` */
  user?: string;
  hostname?: string;
  domainname?: string;
  tty?: boolean;
  stdin?: boolean;
  labels?: Record<string, string>;
  stopSignal?: string;
}

const envKey = (e: string) => {
  const i = e.indexOf('=');
  return i < 0 ? e : e.slice(0, i);
};

/** moby container.ReplaceOrAppendEnvValues: overrides replace same-key defaults in place or append; a value without `=` unsets. */
export function replaceOrAppendEnv(defaults: readonly string[], overrides: readonly string[]): string[] {
  const out: (string | null)[] = [...defaults];
  const index = new Map<string, number>();
  out.forEach((e, i) => index.set(envKey(e!), i));
  for (const v of overrides) {
    if (!v.includes('=')) {
      const i = index.get(v);
      if (i !== undefined) out[i] = null;
      continue;
    }
    const i = index.get(envKey(v));
    if (i !== undefined) out[i] = v;
    else out.push(v);
  }
  return out.filter((e): e is string => e !== null && e !== '');
}

/** moby daemon merge(): user env first, then every image variable the user did not set. */
export function mergeEnv(imageEnv: readonly string[] | null | undefined, userEnv: readonly string[] | undefined): string[] {
  const user = [...(userEnv ?? [])];
  if (user.length === 0) return [...(imageEnv ?? [])];
  const keys = new Set(user.map(envKey));
  for (const e of imageEnv ?? []) if (!keys.has(envKey(e))) user.push(e);
  return user;
}

/** The container's Config as `docker inspect` shows it: the image's config with the run flags applied. */
export function mergeContainerConfig(image: ContainerConfig | undefined, o: ConfigOverrides): ContainerConfig {
  const img = image ?? {};
  const cfg: ContainerConfig = { ...img };
  cfg.Env = mergeEnv(img.Env, o.env);
  const userEntrypoint = o.entrypoint;
  const userCmd = o.cmd && o.cmd.length > 0 ? [...o.cmd] : undefined;
  if (userEntrypoint !== undefined && userEntrypoint.length > 0) {
    // an explicit entrypoint (even `--entrypoint ""`) drops the image's Cmd
    cfg.Entrypoint = userEntrypoint.length === 1 && userEntrypoint[0] === '' ? null : [...userEntrypoint];
    cfg.Cmd = userCmd ?? null;
  } else {
    cfg.Cmd = userCmd ?? img.Cmd ?? null;
    cfg.Entrypoint = userEntrypoint !== undefined ? null : (img.Entrypoint ?? null);
  }
  if (o.workdir !== undefined && o.workdir !== '') cfg.WorkingDir = o.workdir;
  if (o.user !== undefined) cfg.User = o.user;
  if (o.hostname !== undefined) cfg.Hostname = o.hostname;
  if (o.domainname !== undefined) cfg.Domainname = o.domainname;
  cfg.Tty = !!o.tty;
  cfg.OpenStdin = !!o.stdin;
  if (o.labels) cfg.Labels = { ...(img.Labels ?? {}), ...o.labels };
  if (o.stopSignal) cfg.StopSignal = o.stopSignal;
  return cfg;
}

/** argv of the container process: Entrypoint + Cmd. */
export function commandLine(cfg: ContainerConfig): string[] {
  const args = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])];
  if (args.length === 0) {
    throw invalidArgument('NO_COMMAND', 'No command specified', { hint: 'give a command after the image name, or use an image with a CMD or ENTRYPOINT' });
  }
  return args;
}

/** CreateDaemonEnvironment + the container's env: PATH, HOSTNAME, TERM (tty) as defaults. */
export function processEnv(cfg: ContainerConfig, tty: boolean, extra: readonly string[] = []): string[] {
  const defaults = [`PATH=${DEFAULT_PATH}`];
  if (cfg.Hostname) defaults.push(`HOSTNAME=${cfg.Hostname}`);
  if (tty) defaults.push('TERM=xterm');
  return replaceOrAppendEnv(replaceOrAppendEnv(defaults, cfg.Env ?? []), extra);
}

export function hasEnv(env: readonly string[], key: string): boolean {
  return env.some((e) => envKey(e) === key);
}

/** A path under /proc can only be a trick: /proc/self/fd/N, /proc/<pid>/cwd, /proc/thread-self/root … */
export function isProcPath(containerPath: string): boolean {
  const p = cleanContainerPath(containerPath);
  return p === '/proc' || p.startsWith('/proc/');
}

/**
 * The working directory, lexically: absolute and not in /proc (CVE-2024-21626 — a leaked host fd
 * reached as /proc/self/fd/N would put the process's cwd on the host). Returns the cleaned path.
 */
export function checkWorkdir(dir: string | undefined): string {
  const wd = dir === undefined || dir === '' ? '/' : dir;
  if (!wd.startsWith('/')) {
    throw invalidArgument('WORKDIR_RELATIVE', `the working directory '${wd}' is invalid, it needs to be an absolute path`, { where: wd });
  }
  if (isProcPath(wd)) throw workdirInProc(wd, wd);
  return cleanContainerPath(wd);
}

export function workdirInProc(wd: string, resolved: string): EngineError {
  return new EngineError('invalid-argument', 'WORKDIR_IN_PROC', `the working directory '${wd}' is invalid: it resolves into /proc (${resolved}), which could reach a host file descriptor (CVE-2024-21626)`, {
    where: wd,
    hint: 'use a working directory in the container file system',
  });
}
