import { invalidArgument } from '../errors/index.js';
import type { Platform } from '../oci/types.js';

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', mips64el: 'mips64le' };

export function hostPlatform(): Platform {
  const architecture = ARCH[process.arch] ?? process.arch;
  const p: Platform = { os: 'linux', architecture };
  if (architecture === 'arm') p.variant = 'v7';
  if (architecture === 'arm64') p.variant = 'v8';
  return p;
}

/** Parses `os/arch[/variant]` (Docker's --platform). */
export function parsePlatform(s: string): Platform {
  const parts = s.toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[a-z0-9._-]+$/.test(x))) {
    throw invalidArgument('INVALID_PLATFORM', `"${s}": unknown operating system or architecture: invalid argument`, { hint: 'use os/arch[/variant], e.g. linux/amd64' });
  }
  const p: Platform = { os: parts[0]!, architecture: parts[1] === 'x86_64' ? 'amd64' : parts[1] === 'aarch64' ? 'arm64' : parts[1]! };
  if (parts[2]) p.variant = parts[2];
  return p;
}

export function platformString(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Does a manifest's platform satisfy the wanted one (variant only compared when both have it, arm64 v8 default)? */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  const norm = (p: Platform) => p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined);
  const hv = norm(have);
  const wv = norm(want);
  return !hv || !wv || hv === wv;
}
