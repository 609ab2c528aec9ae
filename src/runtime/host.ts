/** Facts about the host that shape a spec: rlimits, kernel version, capability bounding set, architecture. */
import { readFileSync, readdirSync, lstatSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';

/** The hard limit of a resource for this process, from /proc/self/limits (undefined = unlimited). */
export function hostHardLimit(name: 'Max open files' | 'Max processes'): number | undefined {
  try {
    for (const line of readFileSync('/proc/self/limits', 'utf8').split('\n')) {
      if (!line.startsWith(name)) continue;
      const f = line.slice(name.length).trim().split(/\s+/);
      const hard = f[1];
      if (hard === undefined || hard === 'unlimited') return undefined;
      const n = Number(hard);
      return Number.isFinite(n) ? n : undefined;
    }
  } catch {
    /* not Linux */
  }
  return undefined;
}

/** Kernel version as [major, minor] (from uname -r, e.g. "6.18.44-fc" → [6, 18]). */
export function kernelVersion(): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release());
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

export function kernelAtLeast(v: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(v);
  if (!m) return false;
  const [a, b] = kernelVersion();
  const want = [Number(m[1]), Number(m[2])] as const;
  return a > want[0] || (a === want[0] && b >= want[1]);
}

/** Capability bits present in this process's bounding set (CapBnd of /proc/self/status). */
export function hostBoundingBits(): bigint {
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return BigInt('0x' + m[1]);
  } catch {
    /* fall through */
  }
  return (1n << 41n) - 1n;
}

/** The Go architecture name Docker's seccomp profile uses (`includes.arches`). */
export function goArch(arch: string = process.arch): string {
  switch (arch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    case 'ppc64':
      return 'ppc64le';
    case 'loong64':
      return 'loong64';
    case 'mipsel':
      return 'mipsle';
    default:
      return arch; // arm, arm64, s390x, riscv64, mips
  }
}

/** Go architecture → libseccomp's native architecture name (Docker's goToNative map). */
export const GO_TO_SECCOMP: Record<string, string> = {
  '386': 'SCMP_ARCH_X86',
  amd64: 'SCMP_ARCH_X86_64',
  arm: 'SCMP_ARCH_ARM',
  arm64: 'SCMP_ARCH_AARCH64',
  mips64: 'SCMP_ARCH_MIPS64',
  mips64n32: 'SCMP_ARCH_MIPS64N32',
  mipsel64: 'SCMP_ARCH_MIPSEL64',
  mips64le: 'SCMP_ARCH_MIPSEL64',
  mipsel64n32: 'SCMP_ARCH_MIPSEL64N32',
  mips64len32: 'SCMP_ARCH_MIPSEL64N32',
  ppc: 'SCMP_ARCH_PPC',
  ppc64: 'SCMP_ARCH_PPC64',
  ppc64le: 'SCMP_ARCH_PPC64LE',
  riscv64: 'SCMP_ARCH_RISCV64',
  s390: 'SCMP_ARCH_S390',
  s390x: 'SCMP_ARCH_S390X',
  loong64: 'SCMP_ARCH_LOONGARCH64',
};

export interface HostDevice {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/**
 * Every character and block device under /dev, as libcontainer's HostDevices() lists them
 * for `--privileged` (skipping pts, shm, fd, mqueue and the console; symlinks are not followed).
 */
export function hostDevices(dir = '/dev'): HostDevice[] {
  const out: HostDevice[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(dir, name);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) {
      if (['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev'].includes(name)) continue;
      out.push(...hostDevices(p));
      continue;
    }
    if (name === 'console') continue;
    const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
    if (!type) continue;
    const rdev = st.rdev;
    // glibc's major()/minor() encoding
    const major = ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
    const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    out.push({ path: p, type, major, minor, fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
  }
  return out;
}
