/** The device cgroup: deny all, then Docker's allow list (and runc's, written out so every runtime gets it). */
import { hostDevices } from './host.js';
import type { Device, DeviceCgroup } from './types.js';

const c = (major: number | null, minor: number | null, access = 'rwm', allow = true): DeviceCgroup => ({ allow, type: 'c', major, minor, access });

/**
 * moby oci.DefaultLinuxSpec (null, zero, urandom, random, tty, console allowed; fuse denied) followed by
 * runc's AllowedDevices (mknod of any device, full, pts, ptmx, tun), which runc appends by itself.
 */
export function defaultDeviceRules(): DeviceCgroup[] {
  const rules: DeviceCgroup[] = [
    { allow: false, access: 'rwm' },
    c(1, 5), // /dev/zero
    c(1, 3), // /dev/null
    c(1, 9), // /dev/urandom
    c(1, 8), // /dev/random
    c(5, 0), // /dev/tty
    c(5, 1), // /dev/console
    c(10, 229, 'rwm', false), // /dev/fuse
    c(null, null, 'm'), // mknod any char device
    { allow: true, type: 'b' as const, major: null, minor: null, access: 'm' }, // mknod any block device
    c(1, 7), // /dev/full
    c(136, null), // /dev/pts/*
    c(5, 2), // /dev/ptmx
    c(10, 200), // /dev/net/tun
  ];
  return rules.map(stripNull);
}

function stripNull(r: DeviceCgroup): DeviceCgroup {
  const out: DeviceCgroup = { allow: r.allow };
  if (r.type) out.type = r.type;
  if (r.major !== null && r.major !== undefined) out.major = r.major;
  if (r.minor !== null && r.minor !== undefined) out.minor = r.minor;
  if (r.access) out.access = r.access;
  return out;
}

/** `--privileged`: every host device is created in the container and the cgroup allows everything. */
export function privilegedDevices(): { devices: Device[]; rules: DeviceCgroup[] } {
  const devices: Device[] = hostDevices().map((d) => ({ type: d.type, path: d.path, major: d.major, minor: d.minor, fileMode: d.fileMode, uid: d.uid, gid: d.gid }));
  return { devices, rules: [{ allow: true, access: 'rwm' }] };
}
