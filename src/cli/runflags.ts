/** `create`/`run` flags → a CreateRequest, with Docker's parsing rules and messages. */
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { invalidArgument } from '../errors/index.js';
import type { CreateRequest } from '../container/manager.js';
import type { HostConfig, MountSpec } from '../container/types.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export interface RunFlags {
  name?: string;
  env: string[];
  envFile: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  volume: string[];
  mount: string[];
  tmpfs: string[];
  publish: string[];
  publishAll?: boolean;
  expose: string[];
  network: string;
  net?: string;
  hostname?: string;
  domainname?: string;
  readOnly?: boolean;
  capAdd: string[];
  capDrop: string[];
  privileged?: boolean;
  securityOpt: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  init?: boolean;
  rm?: boolean;
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  label: string[];
  stopSignal?: string;
  stopTimeout?: string;
  addHost: string[];
  dns: string[];
  dnsSearch: string[];
  dnsOption: string[];
  groupAdd: string[];
  shmSize?: string;
  ulimit: string[];
  sysctl: string[];
  pull: string;
  platform?: string;
}

export function addRunFlags(cmd: Command, opts: { run: boolean }): Command {
  cmd
    .helpOption('--help', 'display help for command')
    .option('--name <name>', 'assign a name to the container')
    .option('-e, --env <env>', 'set environment variables', collect, [])
    .option('--env-file <file>', 'read in a file of environment variables', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user>', 'username or UID (format: <name|uid>[:<group|gid>])')
    .option('--entrypoint <cmd>', 'overwrite the default ENTRYPOINT of the image')
    .option('-v, --volume <spec>', 'bind mount a volume ([SRC:]DST[:ro|rw])', collect, [])
    .option('--mount <spec>', 'attach a filesystem mount to the container (type=bind|volume|tmpfs,source=…,target=…[,readonly])', collect, [])
    .option('--tmpfs <spec>', 'mount a tmpfs directory (DST[:OPTS])', collect, [])
    .option('-p, --publish <spec>', "publish a container's port(s) to the host", collect, [])
    .option('-P, --publish-all', 'publish all exposed ports to random ports')
    .option('--expose <port>', 'expose a port or a range of ports', collect, [])
    .option('--network <mode>', 'connect a container to a network (bridge, host, none)', 'bridge')
    .option('--net <mode>', 'alias of --network')
    .option('-h, --hostname <name>', 'container host name')
    .option('--domainname <name>', 'container NIS domain name')
    .option('--read-only', "mount the container's root filesystem as read only")
    .option('--cap-add <cap>', 'add Linux capabilities', collect, [])
    .option('--cap-drop <cap>', 'drop Linux capabilities', collect, [])
    .option('--privileged', 'give extended privileges to this container')
    .option('--security-opt <opt>', 'security options', collect, [])
    .option('-m, --memory <bytes>', 'memory limit')
    .option('--cpus <n>', 'number of CPUs')
    .option('--pids-limit <n>', 'tune container pids limit (-1 for unlimited)')
    .option('--init', 'run an init inside the container that forwards signals and reaps processes')
    .option('--rm', 'automatically remove the container when it exits')
    .option('-i, --interactive', 'keep STDIN open even if not attached')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('-l, --label <label>', 'set meta data on a container', collect, [])
    .option('--stop-signal <signal>', 'signal to stop the container')
    .option('--stop-timeout <seconds>', 'timeout (in seconds) to stop a container')
    .option('--add-host <host:ip>', 'add a custom host-to-IP mapping', collect, [])
    .option('--dns <ip>', 'set custom DNS servers', collect, [])
    .option('--dns-search <domain>', 'set custom DNS search domains', collect, [])
    .option('--dns-option <opt>', 'set DNS options', collect, [])
    .option('--group-add <group>', 'add additional groups to join', collect, [])
    .option('--shm-size <bytes>', 'size of /dev/shm')
    .option('--ulimit <limit>', 'ulimit options (name=soft[:hard])', collect, [])
    .option('--sysctl <k=v>', 'sysctl options', collect, [])
    .addOption(new Option('--pull <policy>', 'pull image before creating').choices(['always', 'missing', 'never']).default('missing'))
    .option('--platform <platform>', 'set platform if the image is pulled');
  if (opts.run) cmd.option('-d, --detach', 'run container in background and print container ID');
  return cmd;
}

/** Docker's units.RAMInBytes: 512m, 1g, 1024k, plain bytes. */
export function ramInBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(s.trim());
  if (!m) throw invalidArgument('INVALID_SIZE', `invalid size: '${s}'`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[m[2]!.toLowerCase()]!;
  return Math.floor(Number(m[1]) * mult);
}

/** `--env-file`: KEY=VAL lines, `KEY` alone takes the value from our environment, # comments. */
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
    if (key === '' ) throw invalidArgument('ENV_FILE', `invalid environment variable: ${line}`, { where: `${path}:${i + 1}` });
    if (/\s/.test(key)) throw invalidArgument('ENV_FILE', `variable '${key}' contains whitespaces`, { where: `${path}:${i + 1}` });
    if (eq < 0) {
      if (process.env[key] !== undefined) out.push(`${key}=${process.env[key]}`);
      return;
    }
    out.push(line);
  });
  return out;
}

function parseVolume(spec: string): MountSpec {
  const parts = spec.split(':');
  let src = '';
  let dst: string;
  let mode = '';
  if (parts.length === 1) dst = parts[0]!;
  else if (parts.length === 2) {
    if (parts[1]!.startsWith('/')) [src, dst] = parts as [string, string];
    else {
      dst = parts[0]!;
      mode = parts[1]!;
    }
  } else if (parts.length === 3) [src, dst, mode] = parts as [string, string, string];
  else throw invalidArgument('INVALID_VOLUME', `invalid volume specification: '${spec}'`);
  if (!dst || !dst.startsWith('/')) throw invalidArgument('INVALID_VOLUME', `invalid volume specification: '${spec}': invalid mount config for type "volume": invalid mount path: '${dst}' mount path must be absolute`);
  const opts = mode ? mode.split(',') : [];
  for (const o of opts) if (!['ro', 'rw', 'z', 'Z', 'nocopy', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'consistent', 'cached', 'delegated'].includes(o)) throw invalidArgument('INVALID_VOLUME', `invalid mode: ${o}`);
  const readOnly = opts.includes('ro');
  if (src && (isAbsolute(src) || src.startsWith('.'))) {
    if (!isAbsolute(src)) throw invalidArgument('INVALID_VOLUME', `invalid volume specification: '${spec}': bind source must be an absolute path`);
    return { Type: 'bind', Source: src, Target: dst, ReadOnly: readOnly };
  }
  return { Type: 'volume', Source: src, Target: dst, ReadOnly: readOnly };
}

function parseMount(spec: string): MountSpec {
  const kv = new Map<string, string>();
  for (const field of spec.split(',')) {
    const i = field.indexOf('=');
    const k = (i < 0 ? field : field.slice(0, i)).trim().toLowerCase();
    kv.set(k, i < 0 ? 'true' : field.slice(i + 1));
  }
  const type = (kv.get('type') ?? 'volume') as MountSpec['Type'];
  if (!['bind', 'volume', 'tmpfs'].includes(type)) throw invalidArgument('INVALID_MOUNT', `invalid argument "${spec}" for "--mount" flag: unsupported mount type: ${type}`);
  const target = kv.get('target') ?? kv.get('destination') ?? kv.get('dst') ?? '';
  if (!target) throw invalidArgument('INVALID_MOUNT', `invalid argument "${spec}" for "--mount" flag: target is required`);
  const source = kv.get('source') ?? kv.get('src') ?? '';
  const ro = ['readonly', 'ro'].some((k) => kv.has(k) && kv.get(k) !== 'false' && kv.get(k) !== '0');
  if (type === 'bind' && !source) throw invalidArgument('INVALID_MOUNT', 'invalid mount config for type "bind": field Source must not be empty');
  const m: MountSpec = { Type: type, Source: source, Target: target, ReadOnly: ro };
  if (type === 'tmpfs') {
    const o: string[] = [];
    if (kv.has('tmpfs-size')) o.push(`size=${kv.get('tmpfs-size')}`);
    if (kv.has('tmpfs-mode')) o.push(`mode=${kv.get('tmpfs-mode')}`);
    m.TmpfsOptions = o;
  }
  return m;
}

function splitCommand(s: string): string[] {
  return s === '' ? [''] : [s];
}

export function toCreateRequest(image: string, args: string[], f: RunFlags): CreateRequest {
  const env: string[] = [];
  for (const file of f.envFile) env.push(...readEnvFile(file));
  for (const e of f.env) {
    // -e KEY without a value takes it from our environment (or drops it when unset)
    if (e.includes('=')) env.push(e);
    else if (process.env[e] !== undefined) env.push(`${e}=${process.env[e]}`);
  }
  const mounts: MountSpec[] = [...f.volume.map(parseVolume), ...f.mount.map(parseMount)];
  for (const t of f.tmpfs) {
    const [dst, opts] = t.split(/:(.*)/s) as [string, string | undefined];
    if (!dst.startsWith('/')) throw invalidArgument('INVALID_TMPFS', `invalid tmpfs mount path: ${dst}`);
    mounts.push({ Type: 'tmpfs', Source: '', Target: dst, ReadOnly: false, TmpfsOptions: opts ? opts.split(',') : [] });
  }
  const network = f.net ?? f.network;
  if (!['bridge', 'host', 'none', 'default'].includes(network)) {
    throw invalidArgument('NO_SUCH_NETWORK', `network ${network} not found`, { hint: 'use bridge, host or none' });
  }
  let memory = 0;
  if (f.memory) {
    memory = ramInBytes(f.memory);
    if (memory < 6 * 1024 * 1024) throw invalidArgument('INVALID_MEMORY', 'Minimum memory limit allowed is 6MB');
  }
  let nano = 0;
  if (f.cpus) {
    const n = Number(f.cpus);
    if (!Number.isFinite(n) || n < 0) throw invalidArgument('INVALID_CPUS', `invalid argument "${f.cpus}" for "--cpus" flag: failed to parse ${f.cpus} as a rational number`);
    nano = Math.round(n * 1e9);
  }
  const labels: Record<string, string> = {};
  for (const l of f.label) {
    const i = l.indexOf('=');
    labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  const sysctls: Record<string, string> = {};
  for (const s of f.sysctl) {
    const i = s.indexOf('=');
    if (i <= 0) throw invalidArgument('INVALID_SYSCTL', `invalid argument "${s}" for "--sysctl" flag: sysctl '${s}' is not whitelisted`);
    sysctls[s.slice(0, i)] = s.slice(i + 1);
  }
  const ulimits = f.ulimit.map((u) => {
    const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(u);
    if (!m) throw invalidArgument('INVALID_ULIMIT', `invalid argument "${u}" for "--ulimit" flag: invalid ulimit argument: ${u}`);
    return { Name: m[1]!, Soft: Number(m[2]), Hard: Number(m[3] ?? m[2]) };
  });
  const hc: Partial<HostConfig> = {
    Binds: f.volume,
    Mounts: mounts,
    PortBindings: f.publish,
    PublishAllPorts: !!f.publishAll,
    NetworkMode: (network === 'default' ? 'bridge' : network) as HostConfig['NetworkMode'],
    Privileged: !!f.privileged,
    ReadonlyRootfs: !!f.readOnly,
    CapAdd: f.capAdd,
    CapDrop: f.capDrop,
    SecurityOpt: f.securityOpt,
    Memory: memory,
    NanoCpus: nano,
    PidsLimit: f.pidsLimit ? Number(f.pidsLimit) : 0,
    Init: !!f.init,
    AutoRemove: !!f.rm,
    Dns: f.dns,
    DnsSearch: f.dnsSearch,
    DnsOptions: f.dnsOption,
    ExtraHosts: f.addHost,
    GroupAdd: f.groupAdd,
    ...(f.shmSize ? { ShmSize: ramInBytes(f.shmSize) } : {}),
    Sysctls: sysctls,
    Ulimits: ulimits,
  };
  return {
    image,
    ...(f.name !== undefined ? { name: f.name } : {}),
    ...(args.length ? { cmd: args } : {}),
    ...(f.entrypoint !== undefined ? { entrypoint: splitCommand(f.entrypoint) } : {}),
    env,
    ...(f.workdir ? { workdir: f.workdir } : {}),
    ...(f.user ? { user: f.user } : {}),
    ...(f.hostname ? { hostname: f.hostname } : {}),
    ...(f.domainname ? { domainname: f.domainname } : {}),
    tty: !!f.tty,
    openStdin: !!f.interactive,
    stdinOnce: !!f.interactive,
    ...(Object.keys(labels).length ? { labels } : {}),
    ...(f.stopSignal ? { stopSignal: f.stopSignal } : {}),
    ...(f.stopTimeout ? { stopTimeout: Number(f.stopTimeout) } : {}),
    expose: f.expose,
    hostConfig: hc,
  };
}

