/**
 * Real containers (root, runc or crun, conmon): what a process inside sees with Docker's defaults
 * and with the flags that change them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { makeKit, runToEnd, type Kit } from './testkit.js';
import { buildSpec } from './spec.js';
import { createContainer, StartError } from './conmon.js';
import { isEngineError } from '../errors/index.js';

let kit: Kit;
before(async () => {
  kit = await makeKit();
});
after(async () => {
  await kit.cleanup();
});

const sh = (cmd: string) => ({ Cmd: ['sh', '-c', cmd] });
const status = (out: string, key: string) => new RegExp(`^${key}:\\s*(\\S+)$`, 'm').exec(out)?.[1];

test('ls / shows the rootfs', async () => {
  const r = await runToEnd(kit, { Cmd: ['ls', '/'] });
  assert.equal(r.exitCode, 0);
  assert.deepEqual(r.stdout.trim().split('\n'), ['bin', 'dev', 'etc', 'home', 'mnt', 'proc', 'root', 'sys', 'tmp']);
});

test('the exit code propagates (exit 3), stderr is kept apart', async () => {
  const r = await runToEnd(kit, sh('echo out; echo err >&2; exit 3'));
  assert.equal(r.exitCode, 3);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
});

test('a missing command fails at create with Docker\'s exit code 127', async () => {
  await assert.rejects(runToEnd(kit, { Cmd: ['/nope'] }), (e) => e instanceof StartError && e.exitCode === 127 && /OCI runtime create failed/.test(e.message));
});

test('capabilities: CapEff/CapPrm/CapBnd are Docker\'s 14 (0xa80425fb); CapInh and CapAmb 0 (CVE-2022-24769)', async () => {
  const r = await runToEnd(kit, { Cmd: ['cat', '/proc/self/status'] });
  assert.equal(status(r.stdout, 'CapEff'), '00000000a80425fb');
  assert.equal(status(r.stdout, 'CapPrm'), '00000000a80425fb');
  assert.equal(status(r.stdout, 'CapBnd'), '00000000a80425fb');
  assert.equal(status(r.stdout, 'CapInh'), '0000000000000000');
  assert.equal(status(r.stdout, 'CapAmb'), '0000000000000000');
  assert.equal(status(r.stdout, 'NoNewPrivs'), '0');
  assert.equal(status(r.stdout, 'Seccomp'), '2');
});

test('cap-drop, cap-add and --privileged change what /proc/self/status shows', async () => {
  const dropped = await runToEnd(kit, { Cmd: ['cat', '/proc/self/status'] }, { capDrop: ['ALL'], capAdd: ['NET_ADMIN', 'chown'] });
  assert.equal(status(dropped.stdout, 'CapEff'), (0x1000n | 0x1n).toString(16).padStart(16, '0'));
  const added = await runToEnd(kit, { Cmd: ['cat', '/proc/self/status'] }, { capAdd: ['SYS_ADMIN'], capDrop: ['MKNOD'] });
  assert.equal(status(added.stdout, 'CapBnd'), ((0xa80425fbn | (1n << 21n)) & ~(1n << 27n)).toString(16).padStart(16, '0'));
  const priv = await runToEnd(kit, { Cmd: ['cat', '/proc/self/status'] }, { privileged: true });
  const host = /^CapBnd:\s*(\S+)$/m.exec(await readFile('/proc/self/status', 'utf8'))![1];
  assert.equal(status(priv.stdout, 'CapEff'), host);
  assert.equal(status(priv.stdout, 'Seccomp'), '0');
});

test('user 1000: the kernel clears the effective set of a non-root process', async () => {
  const r = await runToEnd(kit, sh('id; grep -E "Cap(Eff|Bnd)" /proc/self/status'), { user: 'user' });
  assert.match(r.stdout, /^uid=1000\(user\) gid=1000\(user\) groups=2000\(extra\),2001\(more\)$/m);
  assert.equal(status(r.stdout, 'CapEff'), '0000000000000000');
  assert.equal(status(r.stdout, 'CapBnd'), '00000000a80425fb');
});

test('masked paths read empty (/proc/kcore masked or absent), /proc/sys and /sys are read-only', async () => {
  const r = await runToEnd(
    kit,
    sh(
      'for p in /proc/kcore /proc/keys /proc/timer_list /proc/interrupts; do if [ -e $p ]; then echo "$p $(cat $p | wc -c)"; else echo "$p absent"; fi; done;' +
        ' echo "acpi $(ls /proc/acpi | wc -l) firmware $(ls /sys/firmware | wc -l)";' +
        ' echo 1 > /proc/sys/kernel/domainname && echo procsys-writable; echo 1 > /proc/sysrq-trigger && echo sysrq-writable; touch /sys/x && echo sys-writable; echo done',
    ),
  );
  const lines = r.stdout.trim().split('\n');
  const kcore = lines.find((l) => l.startsWith('/proc/kcore'));
  assert.ok(kcore === '/proc/kcore 0' || kcore === '/proc/kcore absent', kcore); // this VM's kernel has no /proc/kcore
  assert.ok(lines.includes('/proc/keys 0'), r.stdout);
  assert.ok(lines.includes('/proc/timer_list 0'), r.stdout);
  assert.ok(lines.includes('/proc/interrupts 0'), r.stdout);
  assert.ok(lines.includes('acpi 0 firmware 0'), r.stdout);
  assert.ok(!/writable/.test(r.stdout), r.stdout);
  assert.match(r.stderr, /can't create \/proc\/sys\/kernel\/domainname: Read-only file system/);
  assert.match(r.stderr, /touch: \/sys\/x: Read-only file system/);
  const priv = await runToEnd(kit, sh('cat /proc/keys | wc -c; touch /sys/kernel/uevent_helper 2>&1 | grep -c Read-only'), { privileged: true });
  assert.notEqual(priv.stdout.split('\n')[0], '0'); // privileged: /proc/keys not masked
  assert.equal(priv.stdout.split('\n')[1], '0'); // and /sys writable
});

test('mounts inside: /dev tmpfs, /dev/pts newinstance, /dev/shm 64 MiB, /sys ro, cgroups ro', async () => {
  const r = await runToEnd(kit, { Cmd: ['cat', '/proc/self/mountinfo'] });
  const line = (mp: string) => r.stdout.split('\n').find((l) => l.split(' ')[4] === mp) ?? '';
  assert.match(line('/dev'), / - tmpfs tmpfs rw,.*size=65536k,mode=755/);
  assert.match(line('/dev/pts'), / - devpts devpts rw,.*gid=5,mode=620,ptmxmode=666/);
  assert.match(line('/dev/shm'), / - tmpfs shm rw,.*size=65536k/);
  assert.match(line('/sys'), /^\S+ \S+ \S+ \S+ \/sys ro,/);
  assert.match(line('/sys/fs/cgroup/memory'), /^\S+ \S+ \S+ \S+ \/sys\/fs\/cgroup\/memory ro,/);
  assert.match(line('/dev/mqueue'), / - mqueue mqueue/);
});

test('seccomp: keyctl, unshare(CLONE_NEWUSER) and mount get EPERM; unconfined lets the first two through', async () => {
  const r = await runToEnd(kit, { Cmd: ['/bin/probe', 'seccomp'] });
  assert.equal(r.stdout, 'keyctl: EPERM\nunshare: EPERM\nmount: EPERM\n');
  const u = await runToEnd(kit, { Cmd: ['/bin/probe', 'seccomp'] }, { securityOpt: ['seccomp=unconfined'] });
  // without the filter keyctl and user namespaces work; mount still needs CAP_SYS_ADMIN
  assert.equal(u.stdout, 'keyctl: ok\nunshare: ok\nmount: EPERM\n');
});

test('no host file descriptor leaks into the container (only stdio)', async () => {
  const r = await runToEnd(kit, { Cmd: ['/bin/probe', 'fds'] });
  const fds = r.stdout.trim().split('\n').map((l) => l.split(' ')[0]);
  assert.deepEqual(fds, ['0', '1', '2'], r.stdout);
});

test('no-new-privileges shows NoNewPrivs: 1', async () => {
  const r = await runToEnd(kit, { Cmd: ['grep', 'NoNewPrivs', '/proc/self/status'] }, { securityOpt: ['no-new-privileges'] });
  assert.equal(r.stdout, 'NoNewPrivs:\t1\n');
});

test('memory, pids and cpu limits are visible in the container\'s cgroup files', async () => {
  const r = await runToEnd(
    kit,
    sh('cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us; ulimit -n'),
    { memory: 64 * 1024 * 1024, pidsLimit: 50, cpus: 0.5 },
  );
  const [mem, pids, quota, period, nofile] = r.stdout.trim().split('\n');
  assert.equal(mem, String(64 * 1024 * 1024));
  assert.equal(pids, '50');
  assert.equal(quota, '50000');
  assert.equal(period, '100000');
  assert.equal(Number(nofile), Math.min(1048576, Number(/Max open files\s+\S+\s+(\d+)/.exec(await readFile('/proc/self/limits', 'utf8'))![1])));
});

test('unknown user: Docker\'s error, before anything runs', async () => {
  await assert.rejects(runToEnd(kit, { Cmd: ['true'] }, { user: 'xyz' }), (e) => isEngineError(e, 'not-found') && e.message === 'unable to find user xyz: no matching entries in passwd file');
});

test('CVE-2024-21626: an image with WorkingDir=/proc/self/fd/7 (or a symlink to it) does not start', async (t) => {
  await assert.rejects(runToEnd(kit, { Cmd: ['pwd'], WorkingDir: '/proc/self/fd/7' }), (e) => isEngineError(e, 'invalid-argument') && e.code === 'WORKDIR_IN_PROC');
  await symlink('/proc/self/fd/7', join(kit.rootfs, 'escape'));
  await assert.rejects(runToEnd(kit, { Cmd: ['pwd'], WorkingDir: '/escape' }), (e) => isEngineError(e) && e.code === 'WORKDIR_IN_PROC');
  // and a spec written by hand is still run by a runtime that must not follow it (defence in depth):
  const id = kit.newId();
  const { spec } = await buildSpec({ rootfs: kit.rootfs, image: { Cmd: ['pwd'] }, options: {} });
  spec.process.cwd = '/proc/self/fd/7';
  const outcome = await createContainer({ id, runtime: kit.runtime, paths: kit.paths(id), spec }).then(
    () => 'created',
    (e: unknown) => (e instanceof StartError ? 'refused' : String(e)),
  );
  t.diagnostic(`runtime ${kit.runtime.name} with cwd /proc/self/fd/7: ${outcome}`);
  // a fixed runc refuses at create; if created, the init process must not sit on a host directory
  if (outcome === 'created') {
    const cwd = await readlink(`/proc/${(await kit.runtime.state(id))!.pid}/cwd`).catch(() => '');
    assert.ok(!cwd.startsWith('/sys/fs/cgroup'), `runtime let the container start in ${cwd}`);
  } else assert.equal(outcome, 'refused');
});

test('--init runs tini as PID 1; hostname, env, workdir and user reach the process', async () => {
  const r = await runToEnd(kit, sh('cat /proc/1/cmdline | tr "\\0" " "; echo; hostname; echo $FOO $HOSTNAME $HOME; pwd; id -u'), {
    init: true,
    hostname: 'box1',
    env: ['FOO=bar'],
    workdir: '/work',
    user: '1000:2000',
  });
  assert.deepEqual(r.stdout.trim().split('\n').map((l) => l.trim()), ['/dev/init -- sh -c cat /proc/1/cmdline | tr "\\0" " "; echo; hostname; echo $FOO $HOSTNAME $HOME; pwd; id -u', 'box1', 'bar box1 /home/user', '/work', '1000']);
});

test('read-only rootfs, tmpfs and bind mounts', async () => {
  const hostDir = join(kit.dir, 'shared-dir');
  await mkdir(hostDir);
  const r = await runToEnd(kit, sh('touch /x 2>&1; echo hi > /data/f; touch /ro/f 2>&1; echo t > /run/t && cat /run/t'), {
    mounts: [
      { type: 'bind', source: hostDir, destination: '/data' },
      { type: 'bind', source: hostDir, destination: '/ro', readOnly: true },
      { type: 'tmpfs', destination: '/run' },
    ],
  }, { readonlyRootfs: true });
  assert.match(r.stdout, /touch: \/x: Read-only file system/);
  assert.match(r.stdout, /touch: \/ro\/f: Read-only file system/);
  assert.match(r.stdout, /^t$/m);
  assert.equal(await readFile(join(hostDir, 'f'), 'utf8'), 'hi\n');
});
