/** Linux capabilities: Docker 20.10's default set, --cap-add/--cap-drop/--privileged (TweakCapabilities). */
import { EngineError, invalidArgument } from '../errors/index.js';
import { hostBoundingBits } from './host.js';
import type { Capabilities } from './types.js';

/** All capabilities by bit number (capability.h, up to CAP_CHECKPOINT_RESTORE = 40). */
export const ALL_CAPS: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Docker's default capabilities (moby oci/caps/defaults.go), in Docker's order. */
export const DOCKER_DEFAULT_CAPS: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** The capabilities this host can grant at all (known and in the engine's own bounding set). */
export function grantableCaps(bounding: bigint = hostBoundingBits()): string[] {
  return ALL_CAPS.filter((_, bit) => (bounding >> BigInt(bit)) & 1n);
}

/** `net_admin`, `CAP_NET_ADMIN`, `Net_Admin` → `CAP_NET_ADMIN`; `all` → `ALL`; unknown → error. */
export function normalizeCaps(caps: readonly string[]): string[] {
  return caps.map((raw) => {
    let c = raw.trim().toUpperCase();
    if (c === 'ALL') return c;
    if (!c.startsWith('CAP_')) c = 'CAP_' + c;
    if (!ALL_CAPS.includes(c)) {
      throw invalidArgument('UNKNOWN_CAPABILITY', `unknown capability: "${c}"`, {
        where: raw,
        hint: 'use a name from capabilities(7), e.g. NET_ADMIN, or ALL',
      });
    }
    return c;
  });
}

/** The resulting capability list, as Docker's TweakCapabilities computes it. */
export function tweakCaps(opts: { capAdd?: readonly string[]; capDrop?: readonly string[]; privileged?: boolean }, bounding?: bigint): string[] {
  const grantable = grantableCaps(bounding);
  if (opts.privileged) return grantable;
  const adds = normalizeCaps(opts.capAdd ?? []);
  const drops = normalizeCaps(opts.capDrop ?? []);
  let caps: string[];
  if (adds.includes('ALL')) caps = grantable.filter((c) => !drops.includes(c));
  else if (drops.includes('ALL')) caps = [...adds];
  else caps = [...DOCKER_DEFAULT_CAPS.filter((c) => !drops.includes(c)), ...adds];
  caps = [...new Set(caps)];
  const missing = caps.filter((c) => !grantable.includes(c));
  if (missing.length > 0) {
    throw new EngineError('failed-precondition', 'CAPABILITY_NOT_GRANTABLE', `cannot grant ${missing.join(', ')}: the engine's own capability bounding set lacks ${missing.length > 1 ? 'them' : 'it'}`, {
      where: missing.join(','),
      hint: 'run the engine with that capability, or drop the --cap-add',
    });
  }
  return caps;
}

/** Docker's process capability sets: bounding = permitted = effective; inheritable and ambient empty (CVE-2022-24769). */
export function capabilitySets(caps: readonly string[]): Capabilities {
  return { bounding: [...caps], effective: [...caps], permitted: [...caps], inheritable: [], ambient: [] };
}

/** The bit mask a capability list produces in /proc/<pid>/status (for tests and inspect). */
export function capMask(caps: readonly string[]): bigint {
  let m = 0n;
  for (const c of caps) {
    const bit = ALL_CAPS.indexOf(c);
    if (bit >= 0) m |= 1n << BigInt(bit);
  }
  return m;
}
