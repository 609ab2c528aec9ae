/**
 * `run` and `create` flags → a container-create body, as the docker CLI builds it
 * (docker/cli cli/command/container/opts.go): the CLI parses what Docker's CLI parses
 * (sizes, CPUs, ports, env files, labels, mounts, restart policy) and the engine checks
 * the rest, as the daemon does.
 */
import type { EndpointSettings } from '../engine/index.js';
import { ExitError } from './ctx.js';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { invalidArgument } from '../errors/index.js';
import { parsePortSpecs, type ContainerCreateBody, type HealthConfig, type HostConfig, type Mount } from '../engine/index.js';
import { flag, FlagValueError, type FlagValues } from './flags.js';
import { goDuration, nanoCpus, ramInBytes, restartPolicy } from './units.js';

const duration = (name: string, usage: string) => flag.value(name, '', usage, { typeName: 'duration', defaultText: '0s', parse: goDuration });

const bytes = (name: string, short: string, usage: string) => flag.value(name, short, usage, { typeName: 'bytes', parse: ramInBytes });

function validateAttach(v: string): string {
  if (!['stdin', 'stdout', 'stderr'].includes(v.toLowerCase())) throw new FlagValueError('valid streams are STDIN, STDOUT and STDERR');
  return v.toLowerCase();
}

function validateExtraHost(v: string): string {
  const i = v.indexOf(':');
  if (i <= 0 || v.slice(i + 1) === '') throw new FlagValueError(`bad format for add-host: ${JSON.stringify(v)}`);
  return v;
}

function validateIP(v: string): string {
  if (!isIP(v.trim())) throw new FlagValueError(`${v} is not an ip address`);
  return v.trim();
}

function validateSysctl(v: string): string {
  const i = v.indexOf('=');
  if (i <= 0) throw new FlagValueError(`sysctl '${v}' is not whitelisted`);
  const k = v.slice(0, i);
  const ok = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'].includes(k) || k.startsWith('fs.mqueue.') || k.startsWith('net.');
  if (!ok) throw new FlagValueError(`sysctl '${v}' is not whitelisted`);
  return v;
}

const ULIMITS = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];

function parseUlimit(v: string): { Name: string; Soft: number; Hard: number } {
  const m = /^([^=]+)=(-?\d+)(?::(-?\d+))?$/.exec(v);
  if (!m) throw new FlagValueError(`invalid ulimit argument: ${v}`);
  if (!ULIMITS.includes(m[1]!)) throw new FlagValueError(`invalid ulimit type: ${m[1]}`);
  const soft = Number(m[2]);
  const hard = m[3] !== undefined ? Number(m[3]) : soft;
  if (soft > hard) throw new FlagValueError(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { Name: m[1]!, Soft: soft, Hard: hard };
}

/** opts.MountOpt: `type=bind,source=/x,target=/y,readonly`. */
function parseMount(v: string): Mount {
  const m: Mount = { Type: 'volume', Target: '' };
  let hasType = false;
  for (const field of v.split(',')) {
    const i = field.indexOf('=');
    const key = (i < 0 ? field : field.slice(0, i)).trim().toLowerCase();
    const val = i < 0 ? undefined : field.slice(i + 1);
    if (val === undefined && !['readonly', 'ro', 'volume-nocopy', 'bind-nonrecursive'].includes(key)) throw new FlagValueError(`invalid field '${field}' must be a key=value pair`);
    const bool = () => {
      if (val === undefined) return true;
      if (['true', '1'].includes(val.toLowerCase())) return true;
      if (['false', '0'].includes(val.toLowerCase())) return false;
      throw new FlagValueError(`invalid value for ${key}: ${val}`);
    };
    switch (key) {
      case 'type':
        if (!['bind', 'volume', 'tmpfs', 'npipe'].includes(val!)) throw new FlagValueError(`invalid value for ${key}: ${val}`);
        m.Type = val as Mount['Type'];
        hasType = true;
        break;
      case 'source':
      case 'src':
        m.Source = val!;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.Target = val!;
        break;
      case 'readonly':
      case 'ro':
        m.ReadOnly = bool();
        break;
      case 'consistency':
        m.Consistency = val!;
        break;
      case 'bind-propagation':
        (m.BindOptions ??= {}).Propagation = val!;
        break;
      case 'bind-nonrecursive':
        (m.BindOptions ??= {}).NonRecursive = bool();
        break;
      case 'volume-nocopy':
        (m.VolumeOptions ??= {}).NoCopy = bool();
        break;
      case 'volume-label': {
        const j = val!.indexOf('=');
        ((m.VolumeOptions ??= {}).Labels ??= {})[j < 0 ? val! : val!.slice(0, j)] = j < 0 ? '' : val!.slice(j + 1);
        break;
      }
      case 'volume-driver':
        ((m.VolumeOptions ??= {}).DriverConfig ??= {}).Name = val!;
        break;
      case 'tmpfs-size':
        (m.TmpfsOptions ??= {}).SizeBytes = ramInBytes(val!);
        break;
      case 'tmpfs-mode':
        if (!/^[0-7]+$/.test(val!)) throw new FlagValueError(`invalid value for ${key}: ${val}`);
        (m.TmpfsOptions ??= {}).Mode = parseInt(val!, 8);
        break;
      default:
        throw new FlagValueError(`unexpected key '${key}' in '${field}'`);
    }
  }
  void hasType;
  if (!m.Target) throw new FlagValueError('target is required');
  return m;
}

/** The flags of `create` and `run` (run adds -d, --rm stays on both, as Docker). */
export function createFlags() {
  return {
    addHost: flag.values('add-host', '', 'Add a custom host-to-IP mapping (host:ip)', { parse: validateExtraHost }),
    attach: flag.values('attach', 'a', 'Attach to STDIN, STDOUT or STDERR', { parse: validateAttach }),
    capAdd: flag.list('cap-add', '', 'Add Linux capabilities'),
    capDrop: flag.list('cap-drop', '', 'Drop Linux capabilities'),
    cidfile: flag.string('cidfile', '', 'Write the container ID to the file'),
    cpus: flag.value('cpus', '', 'Number of CPUs', { typeName: 'decimal', parse: nanoCpus }),
    dns: flag.values('dns', '', 'Set custom DNS servers', { parse: validateIP }),
    dnsOption: flag.list('dns-option', '', 'Set DNS options'),
    dnsOpt: flag.list('dns-opt', '', 'Set DNS options', { hidden: true }),
    dnsSearch: flag.list('dns-search', '', 'Set custom DNS search domains'),
    domainname: flag.string('domainname', '', 'Container NIS domain name'),
    entrypoint: flag.string('entrypoint', '', 'Overwrite the default ENTRYPOINT of the image'),
    env: flag.list('env', 'e', 'Set environment variables'),
    envFile: flag.list('env-file', '', 'Read in a file of environment variables'),
    expose: flag.list('expose', '', 'Expose a port or a range of ports'),
    groupAdd: flag.list('group-add', '', 'Add additional groups to join'),
    healthCmd: flag.string('health-cmd', '', 'Command to run to check health'),
    healthInterval: duration('health-interval', 'Time between running the check (ms|s|m|h) (default 0s)'),
    healthRetries: flag.int('health-retries', '', 'Consecutive failures needed to report unhealthy'),
    healthStartPeriod: duration('health-start-period', 'Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)'),
    healthTimeout: duration('health-timeout', 'Maximum time to allow one check to run (ms|s|m|h) (default 0s)'),
    hostname: flag.string('hostname', 'h', 'Container host name'),
    init: flag.bool('init', '', 'Run an init inside the container that forwards signals and reaps processes'),
    interactive: flag.bool('interactive', 'i', 'Keep STDIN open even if not attached'),
    label: flag.list('label', 'l', 'Set meta data on a container'),
    labelFile: flag.list('label-file', '', 'Read in a line delimited file of labels'),
    memory: bytes('memory', 'm', 'Memory limit'),
    mount: flag.values('mount', '', 'Attach a filesystem mount to the container', { typeName: 'mount', parse: parseMount }),
    name: flag.string('name', '', 'Assign a name to the container'),
    network: flag.string('network', '', 'Connect a container to a network', { typeName: 'network', default: 'default' }),
    noHealthcheck: flag.bool('no-healthcheck', '', 'Disable any container-specified HEALTHCHECK'),
    net: flag.string('net', '', 'Connect a container to a network', { hidden: true }),
    networkAlias: flag.list('network-alias', '', 'Add network-scoped alias for the container'),
    netAlias: flag.list('net-alias', '', 'Add network-scoped alias for the container', { hidden: true }),
    ip: flag.string('ip', '', 'IPv4 address (e.g., 172.30.100.104)'),
    pidsLimit: flag.int('pids-limit', '', 'Tune container pids limit (set -1 for unlimited)'),
    platform: flag.string('platform', '', 'Set platform if server is multi-platform capable'),
    privileged: flag.bool('privileged', '', 'Give extended privileges to this container'),
    publish: flag.list('publish', 'p', "Publish a container's port(s) to the host"),
    publishAll: flag.bool('publish-all', 'P', 'Publish all exposed ports to random ports'),
    pull: flag.string('pull', '', 'Pull image before creating ("always"|"missing"|"never")', { default: 'missing' }),
    readOnly: flag.bool('read-only', '', "Mount the container's root filesystem as read only"),
    restart: flag.value('restart', '', 'Restart policy to apply when a container exits', { default: { Name: 'no', MaximumRetryCount: 0 }, defaultText: '"no"', parse: restartPolicy }),
    rm: flag.bool('rm', '', 'Automatically remove the container when it exits'),
    securityOpt: flag.list('security-opt', '', 'Security Options'),
    shmSize: bytes('shm-size', '', 'Size of /dev/shm'),
    stopSignal: flag.string('stop-signal', '', 'Signal to stop a container', { default: 'SIGTERM' }),
    stopTimeout: flag.int('stop-timeout', '', 'Timeout (in seconds) to stop a container'),
    sysctl: flag.values('sysctl', '', 'Sysctl options', { typeName: 'map', defaultText: 'map[]', parse: validateSysctl }),
    tmpfs: flag.list('tmpfs', '', 'Mount a tmpfs directory'),
    tty: flag.bool('tty', 't', 'Allocate a pseudo-TTY'),
    ulimit: flag.values('ulimit', '', 'Ulimit options', { typeName: 'ulimit', defaultText: '[]', parse: parseUlimit }),
    user: flag.string('user', 'u', 'Username or UID (format: <name|uid>[:<group|gid>])'),
    volume: flag.list('volume', 'v', 'Bind mount a volume'),
    workdir: flag.string('workdir', 'w', 'Working directory inside the container'),
  };
}

export function runFlags() {
  return {
    ...createFlags(),
    detach: flag.bool('detach', 'd', 'Run container in background and print container ID'),
    sigProxy: flag.bool('sig-proxy', '', 'Proxy received signals to the process', { default: true }),
  };
}

export type CreateFlagValues = FlagValues<ReturnType<typeof createFlags>>;

/** `--env-file`: KEY=VAL lines, `KEY` alone takes the value from our environment, # comments (opts.ParseEnvFile). */
export function readEnvFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw invalidArgument('ENV_FILE', `open ${path}: no such file or directory`);
  }
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (key === '') throw invalidArgument('ENV_FILE', `invalid environment variable: ${line}`, { where: `${path}:${i + 1}` });
    if (/\s/.test(key)) throw invalidArgument('ENV_FILE', `variable '${key}' contains whitespaces`, { where: `${path}:${i + 1}` });
    if (eq < 0) {
      if (process.env[key] !== undefined) out.push(`${key}=${process.env[key]}`);
      return;
    }
    out.push(line);
  });
  return out;
}

function readLabelFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw invalidArgument('LABEL_FILE', `open ${path}: no such file or directory`);
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** opts.ValidateEnv: `KEY` alone takes our value when we have one. */
function envValue(e: string): string {
  if (e.includes('=')) return e;
  const v = process.env[e];
  return v === undefined ? e : `${e}=${v}`;
}

/** The docker CLI passes the environment through a map: one entry per name, the last one wins. */
function dedupeEnv(list: string[]): string[] {
  const m = new Map<string, string>();
  for (const e of list) {
    const k = e.split('=')[0]!;
    m.delete(k);
    m.set(k, e);
  }
  return [...m.values()];
}

function kvMap(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    out[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

/** A run/create line the docker CLI refuses before it asks the daemon (its exit code is 125). */
export class CreateFlagsError extends Error {}

/** The docker CLI's Healthcheck from the --health-* flags (and --no-healthcheck). */
export function healthConfigOf(f: CreateFlagValues): HealthConfig | undefined {
  const cmd = f.healthCmd ?? '';
  const interval = f.healthInterval ?? 0;
  const timeout = f.healthTimeout ?? 0;
  const startPeriod = f.healthStartPeriod ?? 0;
  const retries = f.healthRetries ?? 0;
  const any = cmd !== '' || interval !== 0 || timeout !== 0 || startPeriod !== 0 || retries !== 0;
  if (f.noHealthcheck) {
    if (any) throw new CreateFlagsError('--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  if (!any) return undefined;
  if (interval < 0) throw new CreateFlagsError('--health-interval cannot be negative');
  if (timeout < 0) throw new CreateFlagsError('--health-timeout cannot be negative');
  if (retries < 0) throw new CreateFlagsError('--health-retries cannot be negative');
  if (startPeriod < 0) throw new CreateFlagsError('--health-start-period cannot be negative');
  return { ...(cmd ? { Test: ['CMD-SHELL', cmd] } : {}), Interval: interval, Timeout: timeout, StartPeriod: startPeriod, Retries: retries };
}

/** The create body the docker CLI sends for these flags, image and command. */
export function toCreateBody(image: string, args: string[], f: CreateFlagValues & { detach?: boolean }): ContainerCreateBody {
  const attach = new Set(f.attach);
  let attachStdin = attach.has('stdin');
  let attachStdout = attach.has('stdout');
  let attachStderr = attach.has('stderr');
  if (f.interactive) attachStdin = true;
  if (attach.size === 0) {
    attachStdout = true;
    attachStderr = true;
  }
  const health = healthConfigOf(f);
  const ports = parsePortSpecs(f.publish, f.expose);
  const binds: string[] = [];
  const volumes: Record<string, object> = {};
  for (const v of f.volume) {
    const parts = v.split(':');
    const hasSource = parts.length >= 2 && (parts[1]!.startsWith('/') || parts.length === 3);
    if (!hasSource) {
      volumes[v] = {};
      continue;
    }
    let host = parts[0]!;
    // a relative host path (./x, .) is made absolute by the CLI, as Docker's
    if (host === '.' || host.startsWith('./')) host = resolvePath(host);
    binds.push([host, ...parts.slice(1)].join(':'));
  }
  const tmpfs: Record<string, string> = {};
  for (const t of f.tmpfs) {
    const i = t.indexOf(':');
    tmpfs[i < 0 ? t : t.slice(0, i)] = i < 0 ? '' : t.slice(i + 1);
  }
  const env = dedupeEnv([...f.envFile.flatMap(readEnvFile), ...f.env.map(envValue)]);
  const labels = kvMap([...f.labelFile.flatMap(readLabelFile), ...f.label]);
  const securityOpt = f.securityOpt.map((o) => {
    // the docker CLI sends a seccomp profile's content, not its path
    const m = /^seccomp[=:](.*)$/.exec(o);
    if (!m || m[1] === 'unconfined' || m[1] === 'builtin') return o;
    try {
      return `seccomp=${JSON.stringify(JSON.parse(readFileSync(m[1]!, 'utf8')))}`;
    } catch (e) {
      throw invalidArgument('SECCOMP_PROFILE', `opening seccomp profile (${m[1]}) failed: ${(e as Error).message}`);
    }
  });
  const network = f.net ?? f.network ?? 'default';
  const hc: HostConfig = {
    Binds: binds.length ? binds : null,
    ContainerIDFile: f.cidfile ?? '',
    LogConfig: { Type: '', Config: {} },
    NetworkMode: network,
    PortBindings: ports.PortBindings,
    RestartPolicy: f.restart!,
    AutoRemove: !!f.rm,
    VolumeDriver: '',
    VolumesFrom: null,
    CapAdd: f.capAdd.length ? f.capAdd : null,
    CapDrop: f.capDrop.length ? f.capDrop : null,
    CgroupnsMode: '',
    Dns: f.dns,
    DnsOptions: [...f.dnsOption, ...f.dnsOpt],
    DnsSearch: f.dnsSearch,
    ExtraHosts: f.addHost.length ? f.addHost : null,
    GroupAdd: f.groupAdd.length ? f.groupAdd : null,
    IpcMode: '',
    Cgroup: '',
    Links: null,
    OomScoreAdj: 0,
    PidMode: '',
    Privileged: !!f.privileged,
    PublishAllPorts: !!f.publishAll,
    ReadonlyRootfs: !!f.readOnly,
    SecurityOpt: securityOpt.length ? securityOpt : null,
    ...(Object.keys(tmpfs).length ? { Tmpfs: tmpfs } : {}),
    UTSMode: '',
    UsernsMode: '',
    ShmSize: f.shmSize ?? 0,
    ...(f.sysctl.length ? { Sysctls: kvMap(f.sysctl) } : {}),
    ConsoleSize: [0, 0],
    Isolation: '',
    Memory: f.memory ?? 0,
    MemorySwappiness: -1,
    NanoCpus: f.cpus ?? 0,
    PidsLimit: f.changed.has('pidsLimit') ? f.pidsLimit! : null,
    Ulimits: f.ulimit.length ? f.ulimit : null,
    ...(f.mount.length ? { Mounts: f.mount } : {}),
    ...(f.changed.has('init') ? { Init: !!f.init } : {}),
  };
  const body: ContainerCreateBody = {
    Hostname: f.hostname ?? '',
    Domainname: f.domainname ?? '',
    User: f.user ?? '',
    AttachStdin: f.detach ? false : attachStdin,
    AttachStdout: f.detach ? false : attachStdout,
    AttachStderr: f.detach ? false : attachStderr,
    ...(Object.keys(ports.ExposedPorts).length ? { ExposedPorts: ports.ExposedPorts } : {}),
    Tty: !!f.tty,
    OpenStdin: !!f.interactive,
    StdinOnce: !f.detach && !!f.interactive && attachStdin,
    Env: env,
    Cmd: args.length ? args : null,
    Image: image,
    Volumes: Object.keys(volumes).length ? volumes : null,
    WorkingDir: f.workdir ?? '',
    Entrypoint: f.entrypoint !== undefined && f.entrypoint !== '' ? [f.entrypoint] : f.changed.has('entrypoint') ? [''] : null,
    OnBuild: null,
    Labels: labels,
    ...(f.changed.has('stopSignal') ? { StopSignal: f.stopSignal } : {}),
    ...(f.changed.has('stopTimeout') ? { StopTimeout: f.stopTimeout } : {}),
    ...(health ? { Healthcheck: health } : {}),
    HostConfig: hc,
    NetworkingConfig: { EndpointsConfig: endpointsConfig(network, [...f.networkAlias, ...f.netAlias], f.ip, `layerbox ${'sigProxy' in f ? 'run' : 'create'}`) },
  };
  return body;
}

/**
 * NetworkingConfig.EndpointsConfig as the docker CLI 20.10 fills it: the aliases and address
 * go with the network named (it refuses aliases on a built-in one itself).
 */
function endpointsConfig(network: string, aliases: string[], ip: string | undefined, commandPath: string): Record<string, EndpointSettings> {
  const userDefined = !['default', 'bridge', 'host', 'none'].includes(network) && !network.startsWith('container:');
  // the docker CLI 20.10 refuses aliases on a built-in network it is told (the default one it lets through)
  if (aliases.length && !userDefined && network !== 'default') throw new ExitError(125, `layerbox: network-scoped aliases are only supported for user-defined networks.\nSee '${commandPath} --help'.`);
  // an address goes with the network named (the default one, unnamed, takes none); the daemon decides
  if (network === 'default' || (!aliases.length && !ip)) return {};
  return { [network]: { ...(ip ? { IPAMConfig: { IPv4Address: ip } } : {}), ...(aliases.length ? { Aliases: aliases } : {}) } };
}
