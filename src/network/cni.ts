/**
 * A CNI runtime (what libcni does for podman/containerd): runs plugin binaries per the
 * CNI spec — config on stdin, CNI_COMMAND/CNI_CONTAINERID/CNI_NETNS/CNI_IFNAME/CNI_PATH in
 * the environment, result or error JSON on stdout — for a network configuration list,
 * chaining prevResult, passing capability args as runtimeConfig, and caching the ADD
 * result so DEL and CHECK get it (and the exact config and capability args ADD used).
 */
import { spawn } from 'node:child_process';
import { access, constants, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError, type ErrorKind, errnoCode, invalidArgument, unavailable, throwIfAborted, abortError, dataLoss } from '../errors/index.js';
import { writeFileAtomic, mkdirp } from '../sys/fsutil.js';

export const DEFAULT_PLUGIN_DIRS = ['/usr/lib/cni', '/usr/libexec/cni', '/opt/cni/bin', '/usr/local/lib/cni'];

export interface CniPluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface CniConfList {
  cniVersion: string;
  name: string;
  plugins: CniPluginConf[];
}

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
}
export interface CniIPConfig {
  interface?: number;
  address: string;
  gateway?: string;
}
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIPConfig[];
  routes?: { dst: string; gw?: string }[];
  dns?: Record<string, unknown>;
}

export interface CniRuntimeConf {
  containerId: string;
  /** path of the network namespace; '' when it no longer exists (DEL only) */
  netns: string;
  ifName: string;
  /** CNI_ARGS pairs */
  args?: [string, string][];
  /** capability name → value, e.g. { portMappings: [...] } */
  capabilityArgs?: Record<string, unknown>;
}

export interface CniOptions {
  pluginDirs?: string[];
  /** where the ADD results are cached (results/<net>-<id>-<if>) */
  cacheDir: string;
  signal?: AbortSignal;
  /** per plugin invocation; default 60 s */
  timeoutMs?: number;
}

/** libcni's cache file (kind cniCacheV1), plus the netns path. */
export interface CniCacheEntry {
  kind: 'cniCacheV1';
  containerId: string;
  /** the conflist bytes, base64, as libcni stores them */
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  result?: CniResult;
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

// CNI well-known error codes
const CNI_ERR_TRY_AGAIN = 11;

export function validContainerId(id: string): boolean {
  return /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(id) && id.length <= 256;
}

export async function findPlugin(type: string, dirs: readonly string[]): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(type)) {
    throw invalidArgument('CNI_BAD_PLUGIN', `invalid CNI plugin type "${type}"`, { where: type });
  }
  for (const d of dirs) {
    const p = join(d, type);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  throw unavailable('CNI_PLUGIN_MISSING', `failed to find plugin "${type}" in path [${dirs.join(' ')}]`, {
    where: type,
    hint: 'install the CNI plugins (Debian: containernetworking-plugins) or set the plugin directories',
  });
}

function pluginError(type: string, command: CniCommand, code: number, stdout: string, stderr: string): EngineError {
  let msg = stderr.trim() || stdout.trim() || `exit status ${code}`;
  let kind: ErrorKind = 'internal';
  try {
    const j = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
    if (j.msg) msg = j.details ? `${j.msg}: ${j.details}` : j.msg;
    if (j.code === CNI_ERR_TRY_AGAIN) kind = 'unavailable';
  } catch {
    /* not JSON */
  }
  if (/no IP addresses available/i.test(msg)) kind = 'resource-exhausted';
  return new EngineError(kind, 'CNI_PLUGIN_FAILED', `plugin type="${type}" failed (${command.toLowerCase()}): ${msg}`, {
    where: type,
    hint: stderr.trim() && stderr.trim() !== msg ? `plugin stderr: ${stderr.trim()}` : undefined,
  });
}

/** Runs one plugin binary. Returns its parsed result (ADD) or undefined (empty output). */
export async function execPlugin(
  command: CniCommand,
  conf: CniPluginConf & { name: string; cniVersion: string },
  rt: CniRuntimeConf,
  opts: { pluginDirs?: string[]; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<CniResult | undefined> {
  throwIfAborted(opts.signal);
  const dirs = opts.pluginDirs ?? DEFAULT_PLUGIN_DIRS;
  const bin = await findPlugin(conf.type, dirs);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: rt.containerId,
    CNI_NETNS: rt.netns,
    CNI_IFNAME: rt.ifName,
    CNI_PATH: dirs.join(':'),
    CNI_ARGS: (rt.args ?? [['IgnoreUnknown', '1']]).map(([k, v]) => `${k}=${v}`).join(';'),
  };
  const input = JSON.stringify(conf);
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(bin, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let killedFor: 'timeout' | 'abort' | undefined;
    const kill = (why: 'timeout' | 'abort') => {
      killedFor = why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill('timeout'), opts.timeoutMs ?? 60_000);
    const onAbort = () => kill('abort');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(unavailable('CNI_EXEC_FAILED', `cannot run CNI plugin ${bin}: ${e.message}`, { where: bin, cause: e }));
    });
    child.on('close', (c) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (killedFor === 'abort') return reject(abortError(opts.signal));
      if (killedFor === 'timeout') {
        return reject(unavailable('CNI_TIMEOUT', `CNI plugin ${conf.type} (${command}) did not finish in time`, { where: bin }));
      }
      resolve({ code: c ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => {}); // a plugin that exits without reading stdin
    child.stdin.end(input);
  });
  if (code !== 0) throw pluginError(conf.type, command, code, stdout, stderr);
  if (command !== 'ADD' && command !== 'VERSION') return undefined;
  if (stdout.trim() === '') return undefined;
  try {
    return JSON.parse(stdout) as CniResult;
  } catch (e) {
    throw new EngineError('internal', 'CNI_BAD_RESULT', `plugin type="${conf.type}" printed an invalid result: ${(e as Error).message}`, {
      where: bin,
      cause: e,
    });
  }
}

/** libcni buildOneConfig: name, cniVersion, prevResult, runtimeConfig from the capabilities the plugin declares. */
function pluginConfig(list: CniConfList, plugin: CniPluginConf, rt: CniRuntimeConf, prevResult: CniResult | undefined) {
  const conf: CniPluginConf & { name: string; cniVersion: string } = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  if (prevResult) conf.prevResult = prevResult;
  const rc: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on && rt.capabilityArgs && cap in rt.capabilityArgs) rc[cap] = rt.capabilityArgs[cap];
  }
  if (Object.keys(rc).length > 0) conf.runtimeConfig = rc;
  return conf;
}

export function cachePath(cacheDir: string, net: string, id: string, ifName: string): string {
  return join(cacheDir, 'results', `${net}-${id}-${ifName}`);
}

export async function readCache(cacheDir: string, net: string, id: string, ifName: string): Promise<CniCacheEntry | undefined> {
  const p = cachePath(cacheDir, net, id, ifName);
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const c = JSON.parse(text) as CniCacheEntry;
    if (c.kind !== 'cniCacheV1' || c.containerId !== id) throw new Error('not a cniCacheV1 entry for this container');
    return c;
  } catch (e) {
    throw dataLoss('CNI_CACHE_CORRUPT', `the cached CNI result is unreadable: ${(e as Error).message}`, {
      where: p,
      hint: 'remove the file; leftover iptables rules and leases are then removed by the next teardown of this container',
    });
  }
}

async function writeCache(cacheDir: string, entry: CniCacheEntry): Promise<void> {
  await mkdirp(join(cacheDir, 'results'), 0o700);
  await writeFileAtomic(cachePath(cacheDir, entry.networkName, entry.containerId, entry.ifName), JSON.stringify(entry), 0o600);
}

export async function removeCache(cacheDir: string, net: string, id: string, ifName: string): Promise<void> {
  await rm(cachePath(cacheDir, net, id, ifName), { force: true });
}

const decodeList = (c: CniCacheEntry) => JSON.parse(Buffer.from(c.config, 'base64').toString('utf8')) as CniConfList;

/**
 * ADD for every plugin in order, each getting the previous one's result. The cache is
 * written before the first plugin runs and after each one, so a crash at any point leaves
 * enough for DEL. On failure the plugins that ran are deleted again and the error is thrown.
 */
export async function addNetworkList(list: CniConfList, rt: CniRuntimeConf, opts: CniOptions): Promise<CniResult> {
  const entry: CniCacheEntry = {
    kind: 'cniCacheV1',
    containerId: rt.containerId,
    config: Buffer.from(JSON.stringify(list)).toString('base64'),
    ifName: rt.ifName,
    networkName: list.name,
    netns: rt.netns,
    cniArgs: rt.args,
    capabilityArgs: rt.capabilityArgs,
  };
  // every plugin must be there before anything is done (a missing one would also make the DEL
  // that undoes a half-done ADD fail, leaving the cache behind)
  await Promise.all(list.plugins.map((p) => findPlugin(p.type, opts.pluginDirs ?? DEFAULT_PLUGIN_DIRS)));
  await writeCache(opts.cacheDir, entry);
  let prev: CniResult | undefined;
  try {
    for (const plugin of list.plugins) {
      prev = await execPlugin('ADD', pluginConfig(list, plugin, rt, prev), rt, opts);
      entry.result = prev;
      await writeCache(opts.cacheDir, entry);
    }
  } catch (e) {
    await delNetworkList(list, rt, { ...opts, signal: undefined }).catch(() => {});
    throw e;
  }
  if (!prev) throw new EngineError('internal', 'CNI_NO_RESULT', `network ${list.name}: the plugins returned no result`, { where: list.name });
  return prev;
}

/**
 * DEL for every plugin in reverse order with the cached result as prevResult, using the
 * config and capability args cached at ADD (so DEL undoes exactly what ADD did even if the
 * network config changed since). Keeps going past a failing plugin, removes the cache
 * entry only when all succeeded, and throws the first error. With no cache entry (never
 * added, or already deleted) it does nothing: DEL is idempotent.
 */
export async function delNetworkList(list: CniConfList | undefined, rt: CniRuntimeConf, opts: CniOptions): Promise<void> {
  const netName = list?.name;
  const cached = netName ? await readCache(opts.cacheDir, netName, rt.containerId, rt.ifName) : undefined;
  if (!cached) return;
  const useList = decodeList(cached);
  const useRt: CniRuntimeConf = { ...rt, args: cached.cniArgs ?? rt.args, capabilityArgs: cached.capabilityArgs ?? rt.capabilityArgs };
  let first: unknown;
  for (const plugin of [...useList.plugins].reverse()) {
    try {
      await execPlugin('DEL', pluginConfig(useList, plugin, useRt, cached.result), useRt, opts);
    } catch (e) {
      first ??= e;
    }
  }
  if (first) throw first;
  await removeCache(opts.cacheDir, useList.name, rt.containerId, rt.ifName);
}

/** CHECK for every plugin in order with the cached result (spec >= 0.4.0). */
export async function checkNetworkList(list: CniConfList, rt: CniRuntimeConf, opts: CniOptions): Promise<void> {
  const cached = await readCache(opts.cacheDir, list.name, rt.containerId, rt.ifName);
  if (!cached?.result) {
    throw new EngineError('not-found', 'CNI_NOT_ATTACHED', `container ${rt.containerId} is not attached to network ${list.name}`, {
      where: rt.containerId,
    });
  }
  const useList = decodeList(cached);
  const useRt: CniRuntimeConf = { ...rt, capabilityArgs: cached.capabilityArgs ?? rt.capabilityArgs };
  for (const plugin of useList.plugins) await execPlugin('CHECK', pluginConfig(useList, plugin, useRt, cached.result), useRt, opts);
}

/** The CNI loopback plugin on `lo` (not cached: there is nothing to undo but the netns itself). */
export async function loopbackUp(netns: string, containerId: string, opts: { pluginDirs?: string[]; signal?: AbortSignal } = {}): Promise<void> {
  await execPlugin('ADD', { type: 'loopback', name: 'cni-loopback', cniVersion: '1.0.0' }, { containerId, netns, ifName: 'lo' }, opts);
}
