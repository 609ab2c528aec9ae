/** buildSpec and its parts, without running a container (rootfs files are real, in a temp dir). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile, readFile, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { buildSpec, buildExecProcess, defaultRlimits, parseSecurityOpts, NOFILE_CAP } from './spec.js';
import { mergeContainerConfig, replaceOrAppendEnv, processEnv, commandLine } from './config.js';
import { DOCKER_DEFAULT_CAPS, capMask, tweakCaps, grantableCaps } from './caps.js';
import { translateSeccomp, defaultSeccomp } from './seccomp.js';
import { DOCKER_DEFAULT_SECCOMP } from './seccomp-default.js';
import { resolveExecUser, parsePasswd, parseGroup, resolveUser } from './user.js';
import { resolveInRoot, resolveInRootRel } from './rootfs.js';
import { mergeTmpfsOptions, planMounts, MASKED_PATHS, READONLY_PATHS } from './mounts.js';
import { imageVolumes } from './volumes.js';
import { hostHardLimit } from './host.js';
import { isEngineError } from '../errors/index.js';
import { FIXTURES } from '../testing/tree.js';
import type { Spec } from './types.js';

// the copies in the repo: fixtures/docker-seccomp (moby/profiles) and fixtures/oci-runtime-schema (runtime-spec), see their SOURCE files
const SECCOMP_JSON = join(FIXTURES, 'docker-seccomp', 'default.json');
const RUNTIME_SCHEMA = join(FIXTURES, 'oci-runtime-schema');
let dir: string;
let rootfs: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'layerbox-spec-'));
  rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n');
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nuser:x:1000:\nextra:x:2000:user\nmore:x:2001:root,user\n');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const spec = async (options: Parameters<typeof buildSpec>[0]['options'], image: Parameters<typeof buildSpec>[0]['image'] = { Cmd: ['sh'] }, readonlyRootfs = false): Promise<Spec> =>
  (await buildSpec({ rootfs, image, options, readonlyRootfs })).spec;

test('default capabilities are exactly Docker 20.10\'s 14, inheritable and ambient empty (CVE-2022-24769)', async () => {
  const s = await spec({});
  const caps = s.process.capabilities!;
  assert.deepEqual(caps.bounding, [...DOCKER_DEFAULT_CAPS]);
  assert.deepEqual(caps.permitted, [...DOCKER_DEFAULT_CAPS]);
  assert.deepEqual(caps.effective, [...DOCKER_DEFAULT_CAPS]);
  assert.deepEqual(caps.inheritable, []);
  assert.deepEqual(caps.ambient, []);
  assert.equal(capMask(caps.bounding), 0xa80425fbn);
});

test('cap-add/cap-drop/ALL/privileged follow TweakCapabilities; unknown names are refused', () => {
  assert.deepEqual(tweakCaps({ capDrop: ['ALL'], capAdd: ['net_admin', 'CAP_CHOWN'] }), ['CAP_NET_ADMIN', 'CAP_CHOWN']);
  assert.deepEqual(tweakCaps({ capDrop: ['chown', 'NET_RAW'] }), DOCKER_DEFAULT_CAPS.filter((c) => c !== 'CAP_CHOWN' && c !== 'CAP_NET_RAW'));
  assert.ok(tweakCaps({ capAdd: ['SYS_ADMIN'] }).includes('CAP_SYS_ADMIN'));
  const all = tweakCaps({ capAdd: ['ALL'], capDrop: ['MKNOD'] });
  assert.ok(!all.includes('CAP_MKNOD') && all.includes('CAP_SYS_ADMIN'));
  assert.deepEqual(tweakCaps({ privileged: true }), grantableCaps());
  assert.throws(() => tweakCaps({ capAdd: ['FLY'] }), (e) => isEngineError(e, 'invalid-argument') && e.message === 'unknown capability: "CAP_FLY"');
  // a bounding set without CAP_SYS_RESOURCE (this sandbox's) cannot grant it: clear error, not a runc failure
  const noRes = ((1n << 41n) - 1n) & ~(1n << 24n);
  assert.throws(() => tweakCaps({ capAdd: ['SYS_RESOURCE'] }, noRes), (e) => isEngineError(e) && e.code === 'CAPABILITY_NOT_GRANTABLE');
  assert.ok(!tweakCaps({ privileged: true }, noRes).includes('CAP_SYS_RESOURCE'));
});

test('env: image env + -e with Docker\'s merge; PATH default; HOSTNAME, TERM for tty; HOME from passwd', async () => {
  const cfg = mergeContainerConfig({ Env: ['PATH=/img/bin', 'A=image', 'B=image'] }, { env: ['B=user', 'C=user'], hostname: 'h1', tty: true });
  assert.deepEqual(cfg.Env, ['B=user', 'C=user', 'PATH=/img/bin', 'A=image']);
  assert.deepEqual(processEnv(cfg, true), ['PATH=/img/bin', 'HOSTNAME=h1', 'TERM=xterm', 'B=user', 'C=user', 'A=image']);
  assert.deepEqual(replaceOrAppendEnv(['A=1', 'B=2'], ['A', 'C=3']), ['B=2', 'C=3']);
  const s = await spec({ user: 'user' }, { Cmd: ['sh'], Env: ['X=1'] });
  assert.deepEqual(s.process.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'X=1', 'HOME=/home/user']);
});

test('cmd/entrypoint: Docker\'s merge rules', () => {
  const img = { Entrypoint: ['/ep'], Cmd: ['default'] };
  assert.deepEqual(commandLine(mergeContainerConfig(img, {})), ['/ep', 'default']);
  assert.deepEqual(commandLine(mergeContainerConfig(img, { cmd: ['x'] })), ['/ep', 'x']);
  assert.deepEqual(commandLine(mergeContainerConfig(img, { entrypoint: ['/other'] })), ['/other']);
  assert.deepEqual(commandLine(mergeContainerConfig(img, { entrypoint: [''], cmd: ['ls'] })), ['ls']);
  assert.deepEqual(commandLine(mergeContainerConfig(img, { entrypoint: [] })), ['default']);
  assert.throws(() => commandLine(mergeContainerConfig({}, {})), (e) => isEngineError(e) && e.message === 'No command specified');
});

test('user: name, uid, uid:gid, name:group, supplementary groups, Docker\'s unknown-user message', async () => {
  const pw = parsePasswd('root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n');
  const gr = parseGroup('root:x:0:\nuser:x:1000:\nextra:x:2000:user\nmore:x:2001:root,user\n');
  assert.deepEqual(resolveExecUser('', pw, gr), { uid: 0, gid: 0, additionalGids: [2001], home: '/root', name: 'root' });
  assert.deepEqual(resolveExecUser('user', pw, gr), { uid: 1000, gid: 1000, additionalGids: [2000, 2001], home: '/home/user', name: 'user' });
  assert.deepEqual(resolveExecUser('1000', pw, gr), { uid: 1000, gid: 1000, additionalGids: [2000, 2001], home: '/home/user', name: 'user' });
  assert.deepEqual(resolveExecUser('1234:5678', pw, gr), { uid: 1234, gid: 5678, additionalGids: [], home: '/' });
  assert.deepEqual(resolveExecUser('user:extra', pw, gr), { uid: 1000, gid: 2000, additionalGids: [], home: '/home/user', name: 'user' });
  assert.throws(() => resolveExecUser('xyz', pw, gr), (e) => isEngineError(e, 'not-found') && e.message === 'unable to find user xyz: no matching entries in passwd file');
  assert.throws(() => resolveExecUser('user:nogroup', pw, gr), (e) => isEngineError(e, 'not-found') && e.message === 'unable to find group nogroup: no matching entries in group file');
  assert.throws(() => resolveExecUser('xyz', undefined, undefined), (e) => isEngineError(e) && /no matching entries in passwd file/.test(e.message));
  await assert.rejects(spec({ user: 'xyz' }), (e) => isEngineError(e) && e.message === 'unable to find user xyz: no matching entries in passwd file');
  const s = await spec({ user: 'user', groupAdd: ['42', 'root'] });
  assert.deepEqual(s.process.user, { uid: 1000, gid: 1000, additionalGids: [2000, 2001, 42, 0] });
});

test('/etc/passwd is read inside the rootfs: an escaping symlink resolves within it', async () => {
  const r2 = join(dir, 'evil-root');
  await mkdir(join(r2, 'etc'), { recursive: true });
  await mkdir(join(dir, 'victim'), { recursive: true });
  await writeFile(join(dir, 'victim', 'passwd'), 'evil:x:666:666::/:/bin/sh\n');
  // absolute and relative links that would reach ../victim/passwd on the host
  await symlink('/../../victim/passwd', join(r2, 'etc/passwd'));
  await symlink('../../../victim/passwd', join(r2, 'etc/group'));
  await assert.rejects(resolveUser(r2, 'evil'), (e) => isEngineError(e, 'not-found'));
  assert.equal(await resolveInRoot(r2, '/etc/passwd'), join(r2, 'victim/passwd'));
  assert.equal(await resolveInRootRel(r2, '/etc/group'), '/victim/passwd');
  // the same names inside the rootfs are what counts
  await mkdir(join(r2, 'victim'));
  await writeFile(join(r2, 'victim', 'passwd'), 'inside:x:7:7::/home/inside:/bin/sh\n');
  assert.equal((await resolveUser(r2, 'inside')).uid, 7);
});

test('CVE-2024-21626: WorkingDir in /proc (directly or through a symlink) is refused; relative refused; missing created', async () => {
  for (const wd of ['/proc/self/fd/7', '/proc/1/cwd', '/proc/thread-self/fd/8/..', '/x/../proc/self/fd/7']) {
    await assert.rejects(spec({}, { Cmd: ['sh'], WorkingDir: wd }), (e) => isEngineError(e, 'invalid-argument') && e.code === 'WORKDIR_IN_PROC', wd);
  }
  await assert.rejects(spec({ workdir: '/proc/self/fd/7' }), (e) => isEngineError(e) && e.code === 'WORKDIR_IN_PROC');
  await symlink('/proc/self/fd/7', join(rootfs, 'sneaky'));
  await assert.rejects(spec({}, { Cmd: ['sh'], WorkingDir: '/sneaky' }), (e) => isEngineError(e) && e.code === 'WORKDIR_IN_PROC');
  await assert.rejects(spec({ workdir: 'rel/dir' }), (e) => isEngineError(e) && e.message === "the working directory 'rel/dir' is invalid, it needs to be an absolute path");
  const s = await spec({ workdir: '/new/work/dir' });
  assert.equal(s.process.cwd, '/new/work/dir');
  assert.ok((await stat(join(rootfs, 'new/work/dir'))).isDirectory());
  await writeFile(join(rootfs, 'afile'), '');
  await assert.rejects(spec({ workdir: '/afile' }), (e) => isEngineError(e) && e.message === 'Cannot mkdir: /afile is not a directory');
  await assert.rejects(
    buildExecProcess({ spec: s, config: { Cmd: ['sh'] }, rootfs }, { args: ['ls'], workdir: '/sneaky' }),
    (e) => isEngineError(e) && e.code === 'WORKDIR_IN_PROC',
  );
});

test('masked and read-only paths, mounts, namespaces, devices: Docker 20.10\'s defaults', async () => {
  const s = await spec({});
  assert.deepEqual(s.linux.maskedPaths, [...MASKED_PATHS]);
  for (const p of ['/proc/acpi', '/proc/asound', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/sched_debug', '/proc/scsi', '/proc/timer_list', '/proc/timer_stats', '/sys/firmware', '/sys/devices/virtual/powercap']) {
    assert.ok(s.linux.maskedPaths!.includes(p), p);
  }
  assert.deepEqual(s.linux.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  assert.deepEqual(s.linux.readonlyPaths, [...READONLY_PATHS]);
  const m = Object.fromEntries(s.mounts.map((x) => [x.destination, x]));
  assert.deepEqual(m['/dev']!.options, ['nosuid', 'strictatime', 'mode=755', 'size=65536k']);
  assert.deepEqual(m['/dev/pts']!.options, ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
  assert.ok(m['/dev/shm']!.options!.includes('size=67108864'));
  assert.ok(m['/sys']!.options!.includes('ro'));
  assert.equal(m['/sys/fs/cgroup']!.type, 'cgroup');
  assert.ok(m['/sys/fs/cgroup']!.options!.includes('ro'));
  assert.equal(m['/dev/mqueue']!.type, 'mqueue');
  assert.deepEqual(s.linux.namespaces.map((n) => n.type).sort(), ['ipc', 'mount', 'network', 'pid', 'uts']);
  const rules = s.linux.resources!.devices!;
  assert.deepEqual(rules[0], { allow: false, access: 'rwm' });
  assert.ok(rules.some((r) => r.allow && r.type === 'c' && r.major === 1 && r.minor === 3 && r.access === 'rwm'));
  assert.ok(rules.some((r) => r.allow && r.type === 'c' && r.major === 136 && r.minor === undefined));
  assert.deepEqual(s.linux.devices, []);
  assert.equal(s.process.oomScoreAdj, 0);
  assert.equal(s.process.noNewPrivileges, false);
  assert.equal(s.linux.sysctl!['net.ipv4.ip_unprivileged_port_start'], '0');
  const host = await spec({ network: { mode: 'host' } });
  assert.ok(!host.linux.namespaces.some((n) => n.type === 'network'));
  assert.equal(host.linux.sysctl!['net.ipv4.ping_group_range'], undefined);
  const joined = await spec({ network: { mode: 'path', path: '/run/netns/x' } });
  assert.deepEqual(joined.linux.namespaces.find((n) => n.type === 'network'), { type: 'network', path: '/run/netns/x' });
});

test('--privileged lifts caps, masks, read-only paths, seccomp and device limits; /sys and cgroup writable', async () => {
  const s = await spec({ privileged: true, securityOpt: ['seccomp=unconfined'] });
  assert.deepEqual(s.linux.maskedPaths, []);
  assert.deepEqual(s.linux.readonlyPaths, []);
  assert.equal(s.linux.seccomp, undefined);
  assert.deepEqual(s.linux.resources!.devices, [{ allow: true, access: 'rwm' }]);
  assert.ok(s.linux.devices!.some((d) => d.path === '/dev/null' && d.type === 'c' && d.major === 1 && d.minor === 3));
  const m = Object.fromEntries(s.mounts.map((x) => [x.destination, x]));
  assert.ok(!m['/sys']!.options!.includes('ro'));
  assert.ok(!m['/sys/fs/cgroup']!.options!.includes('ro'));
  assert.deepEqual(s.process.capabilities!.bounding, grantableCaps());
  assert.equal((await spec({ privileged: true })).linux.seccomp, undefined);
});

test('security options: no-new-privileges, seccomp=unconfined, seccomp=<file>, invalid', async () => {
  assert.equal((await spec({ securityOpt: ['no-new-privileges'] })).process.noNewPrivileges, true);
  assert.equal((await spec({ securityOpt: ['no-new-privileges:true'] })).process.noNewPrivileges, true);
  assert.equal((await spec({ securityOpt: ['seccomp=unconfined'] })).linux.seccomp, undefined);
  const f = join(dir, 'profile.json');
  await writeFile(f, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chmod'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }));
  const s = await spec({ securityOpt: [`seccomp=${f}`] });
  assert.deepEqual(s.linux.seccomp, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chmod'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] });
  await assert.rejects(spec({ securityOpt: [`seccomp=${join(dir, 'missing.json')}`] }), (e) => isEngineError(e, 'not-found'));
  assert.throws(() => parseSecurityOpts(['bogus']), (e) => isEngineError(e) && e.message === 'Invalid --security-opt: "bogus"');
});

test('the embedded seccomp profile is Docker\'s default.json, verbatim', async () => {
  const json = JSON.parse(await readFile(SECCOMP_JSON, 'utf8'));
  assert.deepEqual(JSON.parse(JSON.stringify(DOCKER_DEFAULT_SECCOMP)), json);
});

test('seccomp translation: arches, caps, minKernel, errnoRet (keyctl, unshare, mount are not allowed by default)', () => {
  const s = defaultSeccomp([...DOCKER_DEFAULT_CAPS]);
  assert.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(s.defaultErrnoRet, 1);
  assert.deepEqual(s.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  const allowed = new Set(s.syscalls!.filter((c) => c.action === 'SCMP_ACT_ALLOW' && !c.args).flatMap((c) => c.names));
  for (const n of ['keyctl', 'unshare', 'mount', 'umount2', 'setns', 'bpf', 'clone3']) assert.ok(!allowed.has(n), n);
  assert.ok(allowed.has('read') && allowed.has('arch_prctl') && allowed.has('ptrace') && allowed.has('chroot'));
  assert.ok(!allowed.has('s390_runtime_instr') && !allowed.has('riscv_flush_icache'));
  const clone = s.syscalls!.find((c) => c.names.includes('clone') && c.args);
  assert.deepEqual(clone?.args, [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }]);
  assert.deepEqual(s.syscalls!.find((c) => c.names.includes('clone3')), { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  // with CAP_SYS_ADMIN: mount/unshare/setns allowed, clone unrestricted, clone3 no longer ENOSYS
  const admin = translateSeccomp(DOCKER_DEFAULT_SECCOMP, { caps: [...DOCKER_DEFAULT_CAPS, 'CAP_SYS_ADMIN'] });
  const allowedAdmin = new Set(admin.syscalls!.filter((c) => c.action === 'SCMP_ACT_ALLOW' && !c.args).flatMap((c) => c.names));
  assert.ok(allowedAdmin.has('mount') && allowedAdmin.has('unshare') && allowedAdmin.has('clone3'));
  assert.ok(!admin.syscalls!.some((c) => c.names.includes('clone3') && c.action === 'SCMP_ACT_ERRNO'));
  // an old kernel loses the minKernel 4.8 block (ptrace)
  const old = translateSeccomp(DOCKER_DEFAULT_SECCOMP, { caps: [...DOCKER_DEFAULT_CAPS], kernelAtLeast: () => false });
  assert.ok(!old.syscalls!.some((c) => c.names.includes('ptrace')));
  // another architecture
  const arm = translateSeccomp(DOCKER_DEFAULT_SECCOMP, { caps: [...DOCKER_DEFAULT_CAPS], arch: 'arm64' });
  assert.deepEqual(arm.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  assert.ok(arm.syscalls!.some((c) => c.names.includes('arm_fadvise64_64')) && !arm.syscalls!.some((c) => c.names.includes('arch_prctl')));
});

test('rlimits: RLIMIT_NOFILE = min(1048576, host hard limit); ulimits above the host\'s hard limit are refused early', () => {
  const hard = hostHardLimit('Max open files');
  const want = Math.min(NOFILE_CAP, hard ?? NOFILE_CAP);
  assert.deepEqual(defaultRlimits(), [{ type: 'RLIMIT_NOFILE', soft: want, hard: want }]);
  if (hard !== undefined) {
    assert.throws(() => defaultRlimits([{ name: 'nofile', soft: 1, hard: hard + 1 }]), (e) => isEngineError(e) && e.code === 'ULIMIT_ABOVE_HOST');
  }
  assert.deepEqual(defaultRlimits([{ name: 'nofile', soft: 100, hard: 200 }]), [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }]);
});

test('user mounts: binds, volumes, tmpfs, /etc files, read-only rootfs, depth order, `..` cleaned', () => {
  const plan = planMounts({
    readonlyRootfs: true,
    mounts: [
      { type: 'bind', source: '/srv/a', destination: '/data/../data/x/y', readOnly: true },
      { type: 'volume', source: '/var/lib/layerbox/volumes/v/_data', destination: '/data' },
      { type: 'tmpfs', destination: '/run', options: ['size=1m', 'exec'] },
    ],
    etcFiles: { hosts: '/c/hosts', hostname: '/c/hostname', resolvConf: '/c/resolv.conf' },
  });
  const users = plan.mounts.filter((m) => !['proc', 'devpts', 'sysfs', 'cgroup', 'mqueue'].includes(m.type!) && m.source !== 'shm' && m.destination !== '/dev');
  assert.deepEqual(users.map((m) => m.destination), ['/data', '/run', '/etc/resolv.conf', '/etc/hostname', '/etc/hosts', '/data/x/y']);
  assert.deepEqual(users[0]!.options, ['rbind', 'rprivate']);
  assert.deepEqual(users[1]!.options, ['nosuid', 'nodev', 'rprivate', 'size=1m', 'exec']);
  assert.deepEqual(users[2]!.options, ['rbind', 'ro', 'rprivate']);
  assert.deepEqual(users[5]!.options, ['rbind', 'ro', 'rprivate']);
  assert.deepEqual(mergeTmpfsOptions(['noexec', 'nosuid', 'size=1m', 'exec', 'size=2m']), ['nosuid', 'exec', 'size=2m']);
  assert.throws(() => planMounts({ mounts: [{ type: 'tmpfs', destination: '/../' }] }), (e) => isEngineError(e) && /can't be '\/'/.test(e.message));
  assert.throws(
    () => planMounts({ mounts: [{ type: 'tmpfs', destination: '/a' }, { type: 'tmpfs', destination: '/b/../a' }] }),
    (e) => isEngineError(e) && e.message === 'Duplicate mount point: /a',
  );
  const shm = planMounts({ mounts: [{ type: 'tmpfs', destination: '/dev/shm', options: ['size=1g'] }] });
  assert.equal(shm.mounts.filter((m) => m.destination === '/dev/shm').length, 1);
});

test('CVE-2022-23648: image Volumes with `..` or symlinks resolve inside the rootfs', async () => {
  const r = join(dir, 'vol-root');
  await mkdir(join(r, 'etc'), { recursive: true });
  await symlink('/../../../../etc', join(r, 'data'));
  const v = await imageVolumes({ Volumes: { '/../../../etc/secrets': {}, '/data/x': {}, 'rel': {} } }, r);
  assert.deepEqual(v, [
    { destination: '/etc/secrets', sourceInRootfs: join(r, 'etc/secrets') },
    { destination: '/data/x', sourceInRootfs: join(r, 'etc/x') },
    { destination: '/rel', sourceInRootfs: join(r, 'rel') },
  ]);
});

test('--init binds tini-static as /dev/init and runs it as PID 1; resources; annotations; cgroupsPath', async () => {
  assert.ok(existsSync('/usr/bin/tini-static'), 'Debian\'s tini package must be installed');
  const s = await spec({ init: true, memory: 64 << 20, cpus: 0.5, pidsLimit: 50, annotations: { a: 'b' }, cgroupsPath: '/layerbox/x' }, { Cmd: ['sleep', '1'] });
  assert.deepEqual(s.process.args, ['/dev/init', '--', 'sleep', '1']);
  assert.deepEqual(s.mounts.at(-1), { destination: '/dev/init', type: 'bind', source: '/usr/bin/tini-static', options: ['bind', 'ro'] });
  assert.equal(s.linux.resources!.memory!.limit, 64 << 20);
  assert.deepEqual(s.linux.resources!.cpu, { quota: 50000, period: 100000 });
  assert.deepEqual(s.linux.resources!.pids, { limit: 50 });
  assert.deepEqual(s.annotations, { a: 'b' });
  assert.equal(s.linux.cgroupsPath, '/layerbox/x');
  await assert.rejects(spec({ memory: 1024 }), (e) => isEngineError(e) && e.message === 'Minimum memory limit allowed is 6MB');
});

test('exec process: container env + exec env, user and cwd overrides, container capabilities', async () => {
  const built = await buildSpec({ rootfs, image: { Cmd: ['sh'], Env: ['A=1'] }, options: { hostname: 'box', securityOpt: ['no-new-privileges'] } });
  const p = await buildExecProcess({ spec: built.spec, config: built.config, rootfs }, { args: ['id'], env: ['B=2', 'A=3'], user: 'user', workdir: '/tmp', tty: true });
  assert.deepEqual(p.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=box', 'TERM=xterm', 'A=3', 'B=2', 'HOME=/home/user']);
  assert.deepEqual(p.user, { uid: 1000, gid: 1000, additionalGids: [2000, 2001] });
  assert.equal(p.cwd, '/tmp');
  assert.equal(p.terminal, true);
  assert.equal(p.noNewPrivileges, true);
  assert.deepEqual(p.capabilities, built.spec.process.capabilities);
  const q = await buildExecProcess({ spec: built.spec, config: built.config, rootfs }, { args: ['id'] });
  assert.deepEqual(q.user, built.spec.process.user);
  assert.ok(q.env.includes('HOME=/root'));
});

test('the generated config.json validates against the runtime-spec JSON schema', async () => {
  const require = createRequire(import.meta.url);
  const Ajv = require('ajv-draft-04') as new (o: object) => { addSchema(s: object, k: string): void; getSchema(k: string): ((d: unknown) => boolean) & { errors?: unknown } };
  const ajv = new Ajv({ allErrors: true, strict: false });
  const schemaDir = RUNTIME_SCHEMA;
  for (const f of (await readdir(schemaDir)).filter((n) => n.endsWith('.json'))) ajv.addSchema(JSON.parse(await readFile(join(schemaDir, f), 'utf8')), f);
  const validate = ajv.getSchema('config-schema.json')!;
  for (const s of [
    await spec({}),
    await spec({ privileged: true }),
    await spec({ tty: true, consoleSize: { height: 30, width: 100 }, memory: 64 << 20, cpus: 1, pidsLimit: 10, init: true, user: 'user', mounts: [{ type: 'tmpfs', destination: '/run' }] }),
  ]) {
    assert.ok(validate(JSON.parse(JSON.stringify(s))), JSON.stringify(validate.errors, null, 1));
  }
});
