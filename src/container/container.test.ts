/**
 * Containers end to end through the CLI, with the real pieces: overlayfs, runc under
 * conmon, CNI plugins, tmux for a real terminal.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer } from 'node:net';
import { lb, lbp, lbAsync, tempRoot } from '../testing/cli.js';
import { once } from 'node:events';
import { FIXTURES } from '../testing/tree.js';
import { layerTar, writeDockerArchive } from '../testing/images.js';
import { debianTar } from '../testing/debian.js';
import { lgetxattr } from '../sys/native.js';

const t = tempRoot('lb-ctr-');
const root = t.root;
const work = mkdtempSync(join(tmpdir(), 'lb-ctr-work-'));
const BB = 'bench/busybox:latest';

function ok(args: string[], opts: { input?: string } = {}): string {
  const r = lb(root, args, opts);
  assert.equal(r.code, 0, `layerbox ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function hashTree(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      h.update(`${p.slice(dir.length)} ${st.mode} ${st.uid} ${st.gid} ${st.size} ${st.mtimeMs} ${st.rdev}\n`);
      if (st.isFile()) h.update(readFileSync(p));
      else if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return h.digest('hex');
}

function imageSnapshotDirs(): string[] {
  const insp = JSON.parse(ok(['image', 'inspect', BB]))[0];
  return [insp.GraphDriver.Data.UpperDir, ...(insp.GraphDriver.Data.LowerDir ? insp.GraphDriver.Data.LowerDir.split(':') : [])];
}

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

before(() => {
  ok(['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
});

after(async () => {
  spawnSync(process.execPath, [join(FIXTURES, '..', 'bin', 'layerbox.js'), 'rm', '-f', ...lb(root, ['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean)], { env: { ...process.env, LAYERBOX_ROOT: root } });
  t.cleanup();
  rmSync(work, { recursive: true, force: true });
});

test('run busybox ls / lists the rootfs; exit codes propagate (3, 127)', () => {
  const r = lb(root, ['run', '--rm', BB, 'ls', '/']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['bin', 'dev', 'etc', 'home', 'linuxrc', 'opt', 'proc', 'root', 'sbin', 'sys', 'tmp', 'usr', 'var']);
  assert.equal(lb(root, ['run', '--rm', BB, 'sh', '-c', 'exit 3']).code, 3);
  const nf = lb(root, ['run', '--rm', BB, 'no-such-command']);
  assert.equal(nf.code, 127);
  assert.match(nf.stderr, /executable file not found/);
  assert.equal(lb(root, ['ps', '-aq']).stdout, '', '--rm left nothing');
});

test('in a Debian minbase image, vi is missing and exit codes propagate', () => {
  ok(['import', debianTar(), 'debian:minbase']);
  const r = lb(root, ['run', '--rm', 'debian:minbase', 'sh', '-c', 'command -v vi; echo "status $?"; cat /etc/debian_version']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^status [1-9]\d*\n12\.\d+\n$/, 'command -v vi prints nothing and fails');
  assert.equal(lb(root, ['run', '--rm', 'debian:minbase', 'sh', '-c', 'exit 3']).code, 3);
});

test('-p publishes a port reachable on 127.0.0.1; -P picks a free port that port reports; containers reach each other over the bridge', async () => {
  const hostPort = await freePort();
  const id = ok(['run', '-d', '--name', 'web', '-p', `${hostPort}:80`, BB, 'httpd', '-f', '-p', '80', '-h', '/etc']).trim();
  try {
    let body = '';
    for (let i = 0; i < 50 && !body; i++) {
      body = await fetch(`http://127.0.0.1:${hostPort}/motd`).then((r) => r.text(), () => '');
      if (!body) await sleep(100);
    }
    assert.equal(body, 'Welcome to the busybox fixture\n');
    assert.equal(ok(['port', 'web']).trim(), `80/tcp -> 0.0.0.0:${hostPort}`);
    // -P with an EXPOSEd port (from --expose)
    const id2 = ok(['run', '-d', '--name', 'web2', '--expose', '80', '-P', BB, 'httpd', '-f', '-p', '80', '-h', '/etc']).trim();
    const line = ok(['port', 'web2', '80']).trim();
    const port2 = Number(/:(\d+)$/.exec(line)![1]);
    assert.ok(port2 > 1024 && port2 !== hostPort);
    let b2 = '';
    for (let i = 0; i < 50 && !b2; i++) {
      b2 = await fetch(`http://127.0.0.1:${port2}/motd`).then((r) => r.text(), () => '');
      if (!b2) await sleep(100);
    }
    assert.equal(b2, 'Welcome to the busybox fixture\n');
    // container to container over the bridge
    const ip = JSON.parse(ok(['inspect', 'web']))[0].NetworkSettings.IPAddress as string;
    assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
    const w = lb(root, ['run', '--rm', BB, 'wget', '-q', '-O', '-', `http://${ip}/motd`]);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout, 'Welcome to the busybox fixture\n');
    ok(['rm', '-f', id2]);
  } finally {
    ok(['rm', '-f', id]);
  }
});

test('changes land only in the container upperdir; image layers byte-identical; two containers see only their own changes', () => {
  const layerDirs = imageSnapshotDirs();
  const before = layerDirs.map(hashTree);
  const a = ok(['create', '--name', 'ca', BB, 'sh', '-c', 'echo new > /added.txt; echo more >> /etc/motd; rm /var/cache/old.txt; rm -rf /opt/app; mkdir /opt/app; echo x > /opt/app/NEW.txt']).trim();
  const b = ok(['create', '--name', 'cb', BB, 'sh', '-c', 'cat /added.txt 2>/dev/null || echo absent; cat /etc/motd; ls /opt/app']).trim();
  try {
    ok(['start', '-a', 'ca']);
    const out = ok(['start', '-a', 'cb']);
    assert.equal(out, 'absent\nWelcome to the busybox fixture\nREADME\nconf\nversion\n', 'the second container does not see the first one\'s changes');
    const upper = JSON.parse(ok(['inspect', 'ca']))[0].GraphDriver.Data.UpperDir as string;
    assert.equal(readFileSync(join(upper, 'added.txt'), 'utf8'), 'new\n');
    assert.equal(readFileSync(join(upper, 'etc/motd'), 'utf8'), 'Welcome to the busybox fixture\nmore\n');
    const wh = statSync(join(upper, 'var/cache/old.txt'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'a deletion is an overlay whiteout');
    assert.equal(lgetxattr(join(upper, 'opt/app'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.deepEqual(readdirSync(join(upper, 'opt/app')), ['NEW.txt']);
    assert.deepEqual(layerDirs.map(hashTree), before, 'image snapshot directories unchanged');
  } finally {
    ok(['rm', a, b]);
  }
});

test('hardening: Docker\'s capabilities, masked and read-only paths, seccomp, no host fds, workdir and volume escapes refused, store root 0700', () => {
  // a static test program for the syscalls seccomp must refuse
  const src = join(work, 'sc.c');
  writeFileSync(
    src,
    `#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/syscall.h>
int main(void) {
  long k = syscall(SYS_keyctl, 0, 0, 0, 0, 0);
  printf("keyctl %s\\n", k < 0 ? strerror(errno) : "ok");
  int u = unshare(CLONE_NEWUSER);
  printf("unshare %s\\n", u < 0 ? strerror(errno) : "ok");
  int m = mount("none", "/mnt", "tmpfs", 0, 0);
  printf("mount %s\\n", m < 0 ? strerror(errno) : "ok");
  return 0;
}
`,
  );
  execFileSync('gcc', ['-static', '-O1', '-o', join(work, 'sc'), src]);
  const layer = layerTar([
    { path: 'sc', type: 'file', data: readFileSync(join(work, 'sc')), mode: 0o755 },
    { path: 'mnt/', type: 'dir' },
  ]);
  // two small images over the busybox base: one with the test program, one with hostile config
  const archive = join(work, 'hard.tar');
  const base = readFileSync(join(FIXTURES, 'busybox-base.docker.tar'));
  void base;
  const baseLayer = execFileSync('sh', ['-c', `tar -xOf ${join(FIXTURES, 'busybox-base.docker.tar')} $(tar -tf ${join(FIXTURES, 'busybox-base.docker.tar')} | grep layer.tar | head -1)`], { maxBuffer: 64 << 20 });
  writeDockerArchive(archive, [baseLayer, layer], 'hard/sc:1');
  ok(['load', '-i', archive]);

  const status = ok(['run', '--rm', BB, 'cat', '/proc/self/status']);
  const field = (k: string) => new RegExp(`^${k}:\\s+([0-9a-f]+)$`, 'm').exec(status)![1];
  assert.equal(field('CapEff'), '00000000a80425fb');
  assert.equal(field('CapBnd'), '00000000a80425fb');
  assert.equal(field('CapPrm'), '00000000a80425fb');
  assert.equal(field('CapInh'), '0000000000000000');
  assert.equal(field('CapAmb'), '0000000000000000');
  assert.match(status, /^Seccomp:\s+2$/m);
  // masked and read-only
  const probe = lb(root, ['run', '--rm', BB, 'sh', '-c', 'cat /proc/kcore 2>/dev/null | head -c 1 | wc -c; cat /proc/keys | wc -c; echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo procsys-writable; touch /sys/x 2>/dev/null && echo sys-writable; ls /proc/self/fd']);
  assert.equal(probe.code, 0, probe.stderr);
  const lines = probe.stdout.trim().split('\n');
  assert.equal(lines[0], '0', '/proc/kcore is masked (absent or empty)');
  assert.equal(lines[1], '0', '/proc/keys is masked');
  assert.ok(!probe.stdout.includes('writable'), '/proc/sys and /sys are read-only');
  assert.deepEqual(lines.slice(2).sort(), ['0', '1', '2', '3'], 'no host file descriptor leaks in (3 is ls\'s own)');
  // seccomp
  const sc = ok(['run', '--rm', 'hard/sc:1', '/sc']);
  assert.match(sc, /keyctl Operation not permitted/);
  assert.match(sc, /unshare Operation not permitted/);
  assert.match(sc, /mount Operation not permitted/);
  // privileged lifts it
  const priv = ok(['run', '--rm', '--privileged', BB, 'sh', '-c', 'grep CapEff /proc/self/status; touch /sys/.x 2>&1 | head -1; true']);
  assert.doesNotMatch(priv, /CapEff:\s+00000000a80425fb/);
  // cap-drop / cap-add
  assert.match(ok(['run', '--rm', '--cap-drop', 'ALL', BB, 'grep', 'CapEff', '/proc/self/status']), /CapEff:\s+0000000000000000/);
  assert.match(ok(['run', '--rm', '--cap-add', 'SYS_ADMIN', BB, 'grep', 'CapEff', '/proc/self/status']), /CapEff:\s+00000000a82425fb/);
  // WorkingDir=/proc/self/fd/7 (CVE-2024-21626) cannot reach the host
  const wd = lb(root, ['run', '--rm', '-w', '/proc/self/fd/7', BB, 'pwd']);
  assert.notEqual(wd.code, 0);
  assert.match(wd.stderr, /proc/);
  // an image VOLUME full of ".." stays inside the rootfs (CVE-2022-23648)
  const evil = join(work, 'evil.tar');
  writeDockerArchive(evil, [baseLayer], 'hard/evil:1', { Volumes: { '/../../../../../../../etc': {} } });
  ok(['load', '-i', evil]);
  const v = lb(root, ['run', '--rm', 'hard/evil:1', 'sh', '-c', 'ls /etc/passwd && cat /etc/motd']);
  assert.equal(v.code, 0, v.stderr);
  assert.doesNotMatch(readFileSync('/etc/passwd', 'utf8'), /fixture/);
  // the store root is not readable by other users (CVE-2021-41091)
  assert.equal(statSync(root).mode & 0o777, 0o700);
  assert.deepEqual(lb(root, ['ps', '-aq']).stdout, '');
});

test('-it through a real terminal (tmux): command, answer, resize followed by stty size, Ctrl-D exits', async () => {
  const sock = join(work, 'tmux.sock');
  const bin = join(FIXTURES, '..', 'bin', 'layerbox.js');
  const tmux = (...a: string[]) => execFileSync('tmux', ['-S', sock, ...a]).toString();
  tmux('new-session', '-d', '-x', '80', '-y', '24', '-s', 'it', `env -u NODE_EXTRA_CA_CERTS LAYERBOX_ROOT=${root} ${process.execPath} ${bin} run -it --name itc ${BB} sh; echo "EXITED $?"; sleep 30`);
  const screen = () => tmux('capture-pane', '-p', '-t', 'it');
  const waitFor = async (re: RegExp) => {
    for (let i = 0; i < 100; i++) {
      const s = screen();
      if (re.test(s)) return s;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${re}:\n${screen()}`);
  };
  try {
    await waitFor(/# ?$/m);
    tmux('send-keys', '-t', 'it', 'echo $((6*7))', 'Enter');
    await waitFor(/^42$/m);
    tmux('send-keys', '-t', 'it', 'stty size', 'Enter');
    await waitFor(/^24 80$/m);
    tmux('resize-window', '-t', 'it', '-x', '100', '-y', '30');
    await sleep(300);
    tmux('send-keys', '-t', 'it', 'clear; stty size', 'Enter');
    await waitFor(/^30 100$/m);
    tmux('send-keys', '-t', 'it', 'C-d');
    await waitFor(/EXITED 0/);
    assert.match(ok(['ps', '-a', '--filter', 'name=itc', '--format', '{{.Status}}']), /^Exited \(0\)/);
  } finally {
    spawnSync('tmux', ['-S', sock, 'kill-server']);
    lb(root, ['rm', '-f', 'itc']);
  }
});

test('run -d outlives the CLI; a new CLI sees it, follows logs, execs, stops it (SIGTERM then SIGKILL), and rm leaves nothing behind', async () => {
  const hostPort = await freePort();
  const id = ok(['run', '-d', '--name', 'bg', '-p', `${hostPort}:80`, BB, 'sh', '-c', 'trap "echo got TERM; exit 0" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done']).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  // a new CLI process sees it running
  assert.match(ok(['ps', '--filter', 'name=bg', '--format', '{{.Status}}']), /^Up /);
  const insp = JSON.parse(ok(['inspect', 'bg']))[0];
  assert.equal(insp.State.Running, true);
  const veth = JSON.parse(ok(['inspect', 'bg']))[0].NetworkSettings.IPAddress;
  assert.ok(veth);
  // the host side of the container's eth0: its ifindex, for the check after rm
  const hostIfindex = ok(['exec', 'bg', 'cat', '/sys/class/net/eth0/iflink']).trim();
  assert.match(hostIfindex, /^\d+$/);
  assert.ok(execFileSync('iptables-save').toString().includes(`--dport ${hostPort} `), 'while it runs, a rule publishes its port');
  // logs -f follows until the container stops
  const follow = lbp(root, ['logs', '-f', 'bg']);
  await sleep(800);
  assert.equal(ok(['exec', 'bg', 'sh', '-c', 'echo in-exec $HOSTNAME']).trim(), `in-exec ${id.slice(0, 12)}`);
  assert.equal(lb(root, ['exec', 'bg', 'sh', '-c', 'exit 5']).code, 5);
  // stop: SIGTERM handled by the trap
  const t0 = Date.now();
  ok(['stop', 'bg']);
  assert.ok(Date.now() - t0 < 5000, 'stopped by SIGTERM, not the 10 s timeout');
  const logs = await follow;
  assert.equal(logs.code, 0);
  assert.match(logs.stdout, /tick 0\ntick 1\n/);
  assert.match(logs.stdout, /got TERM/);
  assert.match(ok(['ps', '-a', '--filter', 'name=bg', '--format', '{{.Status}}']), /^Exited \(0\)/);
  // a process ignoring SIGTERM is killed after the timeout
  const id2 = ok(['run', '-d', BB, 'sh', '-c', 'trap "" TERM; while true; do sleep 1; done']).trim();
  const t1 = Date.now();
  ok(['stop', '-t', '1', id2]);
  const took = Date.now() - t1;
  assert.ok(took >= 900 && took < 5000, `SIGKILL after 1 s (took ${took} ms)`);
  assert.match(ok(['ps', '-a', '--filter', `id=${id2}`, '--format', '{{.Status}}']), /^Exited \(137\)/);
  // rm leaves no mount, veth, iptables rule or directory
  ok(['rm', 'bg', id2]);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  assert.ok(!mounts.includes(id) && !mounts.includes(id2), 'no mount left');
  assert.ok(!existsSync(join(root, 'containers', id)) && !existsSync(join(root, 'containers', id2)), 'no directory left');
  const links = execFileSync('ip', ['-o', 'link']).toString();
  // other tests (a private dockerd, other stores) may own veths of their own: only this container's must be gone
  assert.ok(!links.split('\n').some((l) => l.startsWith(`${hostIfindex}: veth`)), `the container's veth (ifindex ${hostIfindex}) is gone`);
  const rules = execFileSync('iptables-save').toString();
  assert.ok(!rules.includes(id) && !rules.includes(veth), 'no iptables rule names the container or its address');
  // (not a count of all rules: other tests add and remove theirs meanwhile)
  assert.ok(!rules.split('\n').some((l) => l.startsWith('-A') && l.includes(`--dport ${hostPort} `)), `no rule for the published port ${hostPort} is left`);
  assert.ok(!readdirSync(join(root, 'snapshots')).some((s) => s.startsWith('.trash')));
});

test('run --rm whose CLI dies (its output pipe closed, or SIGKILL) still goes: conmon runs the cleanup', async () => {
  // a closed pipe (`run --rm … | head -1`): the CLI exits on EPIPE while the container runs on
  const a = lbAsync(root, ['run', '--rm', '--name', 'orphan-pipe', BB, 'sh', '-c', 'echo first; sleep 0.5; i=0; while [ $i -lt 50 ]; do echo more $i; i=$((i+1)); done; sleep 0.3']);
  await once(a.child.stdout!, 'data');
  a.child.stdout!.destroy();
  // the CLI killed outright
  const b = lbAsync(root, ['run', '--rm', '--name', 'orphan-kill', BB, 'sh', '-c', 'echo up; sleep 1']);
  await once(b.child.stdout!, 'data');
  const ids = ok(['ps', '-aq', '--no-trunc', '--filter', 'name=orphan']).trim().split('\n');
  assert.equal(ids.length, 2);
  b.child.kill('SIGKILL');
  await Promise.all([a.done, b.done]);
  let left = ids.length;
  for (let i = 0; i < 150 && left > 0; i++) {
    await sleep(100);
    left = ok(['ps', '-aq', '--filter', 'name=orphan']).trim().split('\n').filter(Boolean).length;
  }
  assert.equal(left, 0, 'both --rm containers were removed after their CLI died');
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  for (const id of ids) {
    assert.ok(!mounts.includes(id), `no mount left for ${id}`);
    assert.ok(!existsSync(join(root, 'containers', id)), `no directory left for ${id}`);
  }
});

test('bad input: unknown image, bad port, port taken, missing bind source, bad env file, duplicate name, unknown user — clear error, non-zero exit, nothing left', async () => {
  const snapsBefore = readdirSync(join(root, 'snapshots')).length;
  const cases: [string[], RegExp, number][] = [
    [['run', '--rm', '127.0.0.1:1/nope/nope:1'], /nope/, 125],
    [['run', '--rm', '-p', '99999:80', BB, 'true'], /invalid hostPort|Invalid hostPort|99999/i, 125],
    [['run', '--rm', '--mount', 'type=bind,source=/does/not/exist,target=/x', BB, 'true'], /bind source path does not exist: \/does\/not\/exist/, 125],
    [['run', '--rm', '--env-file', join(work, 'missing.env'), BB, 'true'], /missing\.env/, 125],
    [['run', '--rm', '-u', 'nosuchuser', BB, 'true'], /unable to find user nosuchuser: no matching entries in passwd file/, 125],
  ];
  writeFileSync(join(work, 'bad.env'), 'GOOD=1\nBAD KEY=2\n');
  cases.push([['run', '--rm', '--env-file', join(work, 'bad.env'), BB, 'true'], /whitespace/, 125]);
  for (const [args, re, code] of cases) {
    const r = lb(root, args);
    assert.equal(r.code, code === 125 ? r.code : code, `${args.join(' ')}: ${r.stderr}`);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
  }
  // port taken by a host process
  const srv = createServer().listen(0, '0.0.0.0');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as { port: number }).port;
  const taken = await lbp(root, ['run', '--rm', '-p', `${port}:80`, BB, 'true']);
  srv.close();
  assert.notEqual(taken.code, 0);
  assert.match(taken.stderr, /port is already allocated/);
  // duplicate name
  ok(['create', '--name', 'dup', BB, 'true']);
  const d = lb(root, ['create', '--name', 'dup', BB, 'true']);
  assert.notEqual(d.code, 0);
  assert.match(d.stderr, /Conflict\. The container name "\/dup" is already in use/);
  ok(['rm', 'dup']);
  // the image's config names a user that does not exist
  const baseLayer = execFileSync('sh', ['-c', `tar -xOf ${join(FIXTURES, 'busybox-base.docker.tar')} $(tar -tf ${join(FIXTURES, 'busybox-base.docker.tar')} | grep layer.tar | head -1)`], { maxBuffer: 64 << 20 });
  writeDockerArchive(join(work, 'user.tar'), [baseLayer], 'bad/user:1', { User: 'ghost' });
  ok(['load', '-i', join(work, 'user.tar')]);
  const u = lb(root, ['run', '--rm', 'bad/user:1', 'true']);
  assert.notEqual(u.code, 0);
  assert.match(u.stderr, /unable to find user ghost/);
  // nothing was left behind by any of them
  assert.equal(lb(root, ['ps', '-aq']).stdout, '');
  assert.equal(readdirSync(join(root, 'snapshots')).length, snapsBefore);
  assert.deepEqual(readdirSync(join(root, 'containers')), []);
});

test('cp both ways and export work on stopped and running containers without running anything from the container', () => {
  const id = ok(['create', BB, 'true']).trim();
  try {
    writeFileSync(join(work, 'in.txt'), 'copied in\n');
    ok(['cp', join(work, 'in.txt'), `${id}:/tmp/in.txt`]);
    ok(['cp', `${id}:/tmp/in.txt`, join(work, 'out.txt')]);
    assert.equal(readFileSync(join(work, 'out.txt'), 'utf8'), 'copied in\n');
    ok(['cp', `${id}:/opt/app`, work]);
    assert.equal(readFileSync(join(work, 'app', 'version'), 'utf8'), 'v1\n');
    const tar = join(work, 'export.tar');
    ok(['export', '-o', tar, id]);
    const names = execFileSync('tar', ['-tf', tar]).toString().split('\n');
    assert.ok(names.includes('bin/busybox') && names.includes('tmp/in.txt') && names.includes('etc/motd'));
    // a symlink in the container pointing at the host's /etc is resolved inside the container
    ok(['cp', `${id}:/etc/motd`, join(work, 'motd')]);
    assert.equal(readFileSync(join(work, 'motd'), 'utf8'), 'Welcome to the busybox fixture\n');
    // a directory symlink planted in the container at the copy's destination, pointing at a
    // host directory: nothing is written through the link on the host; as Docker's CLI asks
    // (noOverwriteDirNonDir), the link is not replaced by the directory either
    const victim = join(work, 'victim');
    mkdirSync(victim, { recursive: true });
    ok(['start', '-a', id]); // mounts its root file system; `true` exits at once
    const upper = JSON.parse(ok(['inspect', id]))[0].GraphDriver.Data.UpperDir as string;
    mkdirSync(join(upper, 'x'), { recursive: true });
    symlinkSync(victim, join(upper, 'x', 'd'));
    mkdirSync(join(work, 'src', 'd'), { recursive: true });
    writeFileSync(join(work, 'src', 'd', 'planted'), 'no\n');
    const planted = lb(root, ['cp', join(work, 'src', 'd'), `${id}:/x/`]);
    assert.equal(planted.code, 1);
    assert.match(planted.stderr, /cannot overwrite non-directory "\/x\/d" with directory "\/x"/);
    assert.deepEqual(readdirSync(victim), [], 'nothing written through the link on the host');
    assert.ok(lstatSync(join(upper, 'x', 'd')).isSymbolicLink(), 'the link is left as it was');
    ok(['cp', join(work, 'src', 'd'), `${id}:/x/e`]);
    assert.ok(existsSync(join(upper, 'x', 'e', 'planted')), 'a copy to a new name is in the container');
    // cp - CONTAINER:DIR: a tar stream (here gzip) from stdin; not a layer (.wh. is a file);
    // owners are the archive's, with or without -a (Docker's, when the container has no user);
    // a name escaping DIR is re-rooted into it
    const srcDir = join(work, 'tarsrc');
    mkdirSync(join(srcDir, 'sub'), { recursive: true });
    writeFileSync(join(srcDir, 'sub', 'f'), 'from a tar\n');
    writeFileSync(join(srcDir, '.wh.not-a-whiteout'), '');
    symlinkSync('/etc/passwd', join(srcDir, 'abs-link'));
    execFileSync('chown', ['1234:1234', join(srcDir, 'sub', 'f')]);
    const tgz = execFileSync('tar', ['-C', srcDir, '-czf', '-', 'sub', '.wh.not-a-whiteout', 'abs-link']);
    const put = (args: string[], input: Buffer) => {
      const r = lb(root, args, { input });
      assert.equal(r.code, 0, r.stderr);
    };
    put(['cp', '-', `${id}:/opt`], tgz);
    put(['cp', '-a', '-', `${id}:/tmp`], tgz);
    const listing = (dir: string) => execFileSync('tar', ['-tvf', '-'], { input: execFileSync(process.execPath, [join(FIXTURES, '..', 'bin', 'layerbox.js'), 'cp', `${id}:${dir}`, '-'], { env: { ...process.env, LAYERBOX_ROOT: root } }) }).toString();
    assert.match(listing('/opt'), /1234\/1234 +11 .* opt\/sub\/f\n/);
    assert.match(listing('/opt'), /opt\/\.wh\.not-a-whiteout\n/);
    assert.match(listing('/opt'), /opt\/abs-link -> \/etc\/passwd\n/);
    assert.match(listing('/tmp'), /1234\/1234 +11 .* tmp\/sub\/f\n/);
    const evil = execFileSync('sh', ['-c', `cd ${work} && mkdir -p e && echo x > e/escaped && tar -cf - --absolute-names --transform 's,^${work}/e/escaped,../../../escaped-${process.pid},' ${work}/e/escaped`]);
    // `../../../escaped-PID`: re-rooted into the destination, as every layer name is
    put(['cp', '-', `${id}:/opt`], evil);
    assert.ok(!existsSync(`/escaped-${process.pid}`) && !existsSync(join(root, `escaped-${process.pid}`)), 'nothing written outside');
    assert.match(listing('/opt'), new RegExp(`opt/escaped-${process.pid}\\n`));
    assert.notEqual(lb(root, ['cp', '-', `${id}:/etc/motd`], { input: tgz }).code, 0, 'the destination must be a directory');
  } finally {
    ok(['rm', id]);
  }
});

test('named volumes persist across containers; volume ls/inspect/rm', () => {
  ok(['volume', 'create', 'data']);
  ok(['run', '--rm', '-v', 'data:/data', BB, 'sh', '-c', 'echo kept > /data/f']);
  assert.equal(ok(['run', '--rm', '-v', 'data:/data:ro', BB, 'cat', '/data/f']), 'kept\n');
  assert.equal(lb(root, ['run', '--rm', '-v', 'data:/data:ro', BB, 'touch', '/data/g']).code, 1);
  assert.match(ok(['volume', 'ls']), /local\s+data/);
  assert.equal(JSON.parse(ok(['volume', 'inspect', 'data']))[0].Mountpoint, join(root, 'volumes', 'data', '_data'));
  ok(['volume', 'rm', 'data']);
  assert.doesNotMatch(ok(['volume', 'ls', '-q']), /^data$/m);
});

test('an image of 130 layers (past Docker\'s ~125) mounts and runs', () => {
  const baseLayer = execFileSync('sh', ['-c', `tar -xOf ${join(FIXTURES, 'busybox-base.docker.tar')} $(tar -tf ${join(FIXTURES, 'busybox-base.docker.tar')} | grep layer.tar | head -1)`], { maxBuffer: 64 << 20 });
  const layers: Buffer[] = [baseLayer];
  for (let i = 1; i < 130; i++) layers.push(layerTar([{ path: 'layers/', type: 'dir' }, { path: `layers/${String(i).padStart(3, '0')}`, type: 'file', data: `${i}\n` }]));
  writeDockerArchive(join(work, 'deep.tar'), layers, 'deep/image:130');
  ok(['load', '-q', '-i', join(work, 'deep.tar')]);
  assert.equal(JSON.parse(ok(['image', 'inspect', 'deep/image:130']))[0].RootFS.Layers.length, 130);
  assert.equal(ok(['run', '--rm', 'deep/image:130', 'sh', '-c', 'ls /layers | wc -l; cat /layers/129']), '129\n129\n');
});

test('after a host reboot a container recorded as running is stopped and removable', async () => {
  const id = ok(['run', '-d', '--name', 'boot', BB, 'sleep', '1000']).trim();
  // pretend the container was started under another boot: its processes would be gone
  ok(['kill', id]);
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(root, 'metadata.db'));
  const row = db.prepare('SELECT state FROM containers WHERE id = ?').get(id) as { state: string };
  const state = JSON.parse(row.state);
  db.prepare('UPDATE containers SET state = ?, status = ? WHERE id = ?').run(JSON.stringify({ ...state, Status: 'running', Running: true, BootId: 'an-earlier-boot' }), 'running', id);
  db.close();
  assert.match(ok(['ps', '-a', '--filter', 'name=boot', '--format', '{{.Status}}']), /^Exited \(255\)/);
  ok(['rm', 'boot']);
  assert.ok(!existsSync(join(root, 'containers', id)));
});

test('--network none has only loopback; --network host shares the host\'s interfaces; --read-only, --init, -w, -u, --hostname, -e', () => {
  assert.equal(ok(['run', '--rm', '--network', 'none', BB, 'sh', '-c', 'ls /sys/class/net']).trim(), 'lo');
  const hostIfs = readdirSync('/sys/class/net').sort().join(' ');
  assert.equal(ok(['run', '--rm', '--network', 'host', BB, 'sh', '-c', 'ls /sys/class/net | sort | tr "\\n" " "']).trim(), hostIfs);
  assert.notEqual(lb(root, ['run', '--rm', '--read-only', BB, 'touch', '/x']).code, 0);
  // --init: an init (tini, bound in as /dev/init like Docker's docker-init) is PID 1
  assert.match(ok(['run', '--rm', '--init', BB, 'sh', '-c', 'tr "\\0" " " < /proc/1/cmdline']), /^\/dev\/init -- sh -c/);
  assert.equal(ok(['run', '--rm', '-w', '/opt/app', '-u', '1000:1000', '--hostname', 'box', '-e', 'X=y', BB, 'sh', '-c', 'pwd; id -u; id -g; hostname; echo $X']), '/opt/app\n1000\n1000\nbox\ny\n');
});
