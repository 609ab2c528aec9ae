/** Docker 20.10's default mounts, masked and read-only paths, and the user's binds, volumes and tmpfs. */
import { isAbsolute } from 'node:path';
import { invalidArgument } from '../errors/index.js';
import { cleanContainerPath } from './rootfs.js';
import type { Mount } from './types.js';

export const MASKED_PATHS: readonly string[] = [
  '/proc/acpi', '/proc/asound', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/sched_debug', '/proc/scsi', '/proc/timer_list', '/proc/timer_stats', '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const SHM_SIZE = 64 * 1024 * 1024;

/** moby oci.DefaultLinuxSpec mounts, with /dev/shm as a private 64 MiB tmpfs (IpcMode "private"). */
export function defaultMounts(opts: { shmSize?: number } = {}): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${opts.shmSize ?? SHM_SIZE}`] },
  ];
}

export type Propagation = 'rprivate' | 'private' | 'rshared' | 'shared' | 'rslave' | 'slave';

export type MountInput =
  /** a host directory or file (`-v /host:/ctr`, `--mount type=bind`); named volumes are binds of their directory */
  | { type: 'bind' | 'volume'; source: string; destination: string; readOnly?: boolean; propagation?: Propagation; nonRecursive?: boolean }
  /** `--tmpfs /ctr[:opts]` */
  | { type: 'tmpfs'; destination: string; options?: string[]; readOnly?: boolean };

/** The files Docker bind-mounts for networking: /etc/hosts, /etc/hostname, /etc/resolv.conf (host paths). */
export interface EtcFiles {
  hosts?: string;
  hostname?: string;
  resolvConf?: string;
}

const FLAG_PAIRS: Record<string, string> = {
  ro: 'rw', rw: 'ro', exec: 'noexec', noexec: 'exec', suid: 'nosuid', nosuid: 'suid', dev: 'nodev', nodev: 'dev',
  atime: 'noatime', noatime: 'atime', diratime: 'nodiratime', nodiratime: 'diratime', relatime: 'norelatime',
  norelatime: 'relatime', strictatime: 'nostrictatime', nostrictatime: 'strictatime', sync: 'async', async: 'sync',
};

/** moby's MergeTmpfsOptions: later options override earlier ones (`exec` cancels `noexec`, size=… replaces size=…). */
export function mergeTmpfsOptions(options: readonly string[]): string[] {
  const out: string[] = [];
  const seenKeys = new Set<string>();
  const seenFlags = new Set<string>();
  for (let i = options.length - 1; i >= 0; i--) {
    const o = options[i]!.trim();
    if (!o) continue;
    const eq = o.indexOf('=');
    if (eq > 0) {
      const k = o.slice(0, eq);
      if (seenKeys.has(k)) continue;
      seenKeys.add(k);
    } else {
      const other = FLAG_PAIRS[o];
      if (seenFlags.has(o) || (other && seenFlags.has(other))) continue;
      seenFlags.add(o);
    }
    out.unshift(o);
  }
  return out;
}

/** The destination of a user mount: absolute, cleaned lexically (CVE-2022-23648: `..` stays inside), never `/`. */
export function mountDestination(dest: string): string {
  if (!dest.startsWith('/')) {
    throw invalidArgument('MOUNT_DESTINATION_RELATIVE', `invalid mount config: destination ${JSON.stringify(dest)} is not an absolute path`, { where: dest });
  }
  const clean = cleanContainerPath(dest);
  if (clean === '/') throw invalidArgument('MOUNT_DESTINATION_ROOT', "invalid mount config: destination can't be '/'", { where: dest });
  return clean;
}

function userMount(m: MountInput): Mount {
  const destination = mountDestination(m.destination);
  if (m.type === 'tmpfs') {
    const opts = mergeTmpfsOptions(['noexec', 'nosuid', 'nodev', 'rprivate', ...(m.readOnly ? ['ro'] : []), ...(m.options ?? [])]);
    return { destination, type: 'tmpfs', source: 'tmpfs', options: opts };
  }
  if (!isAbsolute(m.source)) {
    throw invalidArgument('MOUNT_SOURCE_RELATIVE', `invalid mount config: source ${JSON.stringify(m.source)} is not an absolute path`, { where: m.source });
  }
  const opts = [m.nonRecursive ? 'bind' : 'rbind'];
  if (m.readOnly) opts.push('ro');
  opts.push(m.propagation ?? 'rprivate');
  return { destination, type: 'bind', source: m.source, options: opts };
}

export interface MountPlan {
  mounts: Mount[];
  /** set when a user mount asks for shared or slave propagation */
  rootfsPropagation?: string;
}

/**
 * Default mounts (minus those a user mount replaces; all of /dev/* when /dev itself is replaced),
 * then the user's mounts sorted by depth, then /etc files and /dev/init. Read-only rootfs adds `ro`
 * to the default mounts Docker makes read-only; --privileged makes /sys and the cgroup mount writable.
 */
export function planMounts(opts: {
  mounts?: readonly MountInput[];
  etcFiles?: EtcFiles;
  readonlyRootfs?: boolean;
  privileged?: boolean;
  initPath?: string;
  shmSize?: number;
}): MountPlan {
  const ro = !!opts.readonlyRootfs;
  const user: Mount[] = (opts.mounts ?? []).map(userMount);
  const etc: [keyof EtcFiles, string][] = [
    ['resolvConf', '/etc/resolv.conf'],
    ['hostname', '/etc/hostname'],
    ['hosts', '/etc/hosts'],
  ];
  for (const [key, dest] of etc) {
    const src = opts.etcFiles?.[key];
    if (!src || user.some((m) => m.destination === dest)) continue;
    user.push({ destination: dest, type: 'bind', source: src, options: ['rbind', ...(ro ? ['ro'] : []), 'rprivate'] });
  }
  const seen = new Set<string>();
  for (const m of user) {
    if (seen.has(m.destination)) throw invalidArgument('MOUNT_DUPLICATE', `Duplicate mount point: ${m.destination}`, { where: m.destination });
    seen.add(m.destination);
  }
  const depth = (p: string) => p.split('/').length;
  user.sort((a, b) => depth(a.destination) - depth(b.destination));

  const mountDev = seen.has('/dev');
  const defaults = defaultMounts({ shmSize: opts.shmSize })
    .filter((m) => !seen.has(m.destination) && !(mountDev && m.destination.startsWith('/dev/')))
    .map((m) => {
      let options = [...(m.options ?? [])];
      if (ro && !['/proc', '/dev/pts', '/dev/shm', '/dev/mqueue', '/dev'].includes(m.destination) && !options.includes('ro')) options.push('ro');
      if (opts.privileged && (m.destination === '/sys' || m.type === 'cgroup')) options = options.filter((o) => o !== 'ro');
      return { ...m, options };
    });
  const mounts = [...defaults, ...user];
  if (opts.initPath) mounts.push({ destination: '/dev/init', type: 'bind', source: opts.initPath, options: ['bind', 'ro'] });

  const plan: MountPlan = { mounts };
  const props = (opts.mounts ?? []).map((m) => ('propagation' in m ? m.propagation : undefined));
  if (props.some((p) => p === 'shared' || p === 'rshared')) plan.rootfsPropagation = 'shared';
  else if (props.some((p) => p === 'slave' || p === 'rslave')) plan.rootfsPropagation = 'rslave';
  return plan;
}
