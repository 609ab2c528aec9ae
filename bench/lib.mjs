// Shared benchmark helpers: paired runs (A B A B …), medians, peak RSS, settled disk,
// a private dockerd, and a results table with ratios. Plain Node, no dependencies.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, appendFileSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
export const LB = join(REPO, 'bin', 'layerbox.js');
export const RESULTS = join(REPO, 'bench', 'results');
export const CACHE = process.env.LAYERBOX_CACHE || '/var/cache/layerbox';

export const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS; // costs ~0.12 s per Node start on this machine (ANCHORS.md)

export const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Runs a shell command, returns wall seconds and peak RSS (KiB) of the largest process (GNU time). */
export function timed(cmd, opts = {}) {
  const r = spawnSync('/usr/bin/time', ['-f', '__TIME__ %e %M', 'sh', '-c', cmd], { env: { ...env, ...(opts.env || {}) }, encoding: 'utf8', maxBuffer: 1 << 28 });
  const m = /__TIME__ ([\d.]+) (\d+)/.exec(r.stderr);
  if (r.status !== 0 && !opts.allowFail) throw new Error(`failed (${r.status}): ${cmd}\n${r.stderr.slice(-2000)}`);
  return { seconds: m ? Number(m[1]) : NaN, rssKiB: m ? Number(m[2]) : NaN, stdout: r.stdout };
}

export function sh(cmd, opts = {}) {
  const r = spawnSync('sh', ['-c', cmd], { env: { ...env, ...(opts.env || {}) }, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`failed (${r.status}): ${cmd}\n${r.stderr.slice(-2000)}`);
  return r.stdout;
}

export const median = (xs) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** ext4 without a journal skips recently deleted inodes for ~60 s (ANCHORS.md): settle before timing. */
export function settle(seconds) {
  const s = Number(seconds ?? process.env.BENCH_SETTLE ?? 65);
  sh('sync');
  if (s > 0) spawnSync('sleep', [String(s)]);
}

/**
 * Paired comparison: for each round, every contender runs once (after its `prepare`), in
 * rotating order. Returns per-contender medians and ratios to `base` (median of per-round ratios).
 */
export function paired(contenders, rounds, { base, settleEach = true, settleSeconds } = {}) {
  const res = Object.fromEntries(contenders.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    const order = contenders.map((_, i) => contenders[(i + r) % contenders.length]);
    for (const c of order) {
      c.prepare?.();
      if (settleEach) settle(settleSeconds);
      const t = c.run();
      res[c.name].push(t);
      process.stderr.write(`  round ${r + 1} ${c.name}: ${t.seconds}s, ${Math.round(t.rssKiB / 1024)} MiB\n`);
    }
  }
  const out = {};
  for (const c of contenders) {
    const ts = res[c.name];
    out[c.name] = { median: median(ts.map((t) => t.seconds)), rssMiB: Math.max(...ts.map((t) => t.rssKiB)) / 1024, runs: ts.map((t) => t.seconds) };
  }
  if (base && res[base]) {
    for (const c of contenders) {
      const ratios = res[c.name].map((t, i) => t.seconds / res[base][i].seconds);
      out[c.name].ratioToBase = median(ratios);
      out[c.name].ratios = ratios;
    }
  }
  return out;
}

/**
 * Where the timed stores live. `BENCH_FS=journal` (the default for pull and load): a fresh
 * ext4 *with* a journal on a loop device, so the root file system's quirk (no journal: the
 * inode allocator skips inodes deleted in the last 60-360 s, ANCHORS.md) does not make
 * whoever runs first after a removal slow — runs are then comparable without settling.
 * `BENCH_FS=root`: a directory on the root file system (settled before each run).
 * Returns { dir, journal, cleanup }.
 */
export function benchFs(name) {
  if ((process.env.BENCH_FS ?? 'journal') === 'root' || !have('mkfs.ext4') || !have('losetup')) {
    return { dir: sh(`mktemp -d /var/tmp/lb-bench-${name}-XXXXXX`).trim(), journal: false, cleanup() {} };
  }
  const img = `/var/tmp/lb-bench-${name}.img`;
  const dir = `/var/tmp/lb-bench-${name}.fs`;
  sh(`umount -l ${dir} 2>/dev/null; rm -f ${img}; truncate -s ${process.env.BENCH_FS_SIZE ?? '12G'} ${img} && mkfs.ext4 -q -F ${img} && mkdir -p ${dir} && mount -o loop ${img} ${dir}`);
  return {
    dir,
    journal: true,
    cleanup() {
      sh(`umount ${dir} || umount -l ${dir}; rm -f ${img}; rmdir ${dir}`, { allowFail: true });
    },
  };
}

/**
 * podman on its own root (rlimits within the host's hard limits, runc: ANCHORS.md), or
 * undefined when podman is not installed. { cmd, env } for sh/timed.
 */
export function podmanAt(storeRoot, runRoot, confDir) {
  if (!have('podman')) return undefined;
  const conf = join(confDir, 'containers.conf');
  writeFileSync(conf, `[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\n`);
  return { cmd: `podman --root ${storeRoot} --runroot ${runRoot} --storage-driver overlay`, env: { CONTAINERS_CONF: conf } };
}

/** A private dockerd (Debian's docker.io) on its own socket and data root, or undefined. */
export function startDockerd(dataRoot = '/tmp/layerbox-bench-docker') {
  if (!have('dockerd') || !have('docker')) return undefined;
  const root = dataRoot;
  const sock = `${root}.sock`;
  mkdirSync(root, { recursive: true });
  const child = spawn('dockerd', ['--data-root', root, '--host', `unix://${sock}`, '--pidfile', `${root}.pid`, '--exec-root', `${root}-exec`, '--storage-driver=overlay2'], { stdio: 'ignore', detached: true });
  const denv = { DOCKER_HOST: `unix://${sock}`, DOCKER_API_VERSION: '1.41' };
  for (let i = 0; i < 100; i++) {
    if (spawnSync('docker', ['info'], { env: { ...env, ...denv } }).status === 0) {
      return { env: denv, pid: child.pid, stop: () => { try { process.kill(child.pid, 'SIGTERM'); } catch {} spawnSync('sleep', ['2']); } };
    }
    spawnSync('sleep', ['0.2']);
  }
  try { process.kill(child.pid, 'SIGKILL'); } catch {}
  return undefined;
}

/** The Debian bookworm minbase rootfs (debootstrap), cached between runs. */
export function debianRootfs() {
  const dir = join(CACHE, 'bookworm-minbase');
  if (!existsSync(join(dir, 'etc', 'debian_version'))) {
    mkdirSync(CACHE, { recursive: true });
    rmSync(dir, { recursive: true, force: true });
    process.stderr.write('bench: debootstrap --variant=minbase bookworm (once, cached in ' + dir + ')\n');
    execFileSync('debootstrap', ['--variant=minbase', 'bookworm', dir + '.tmp', 'http://deb.debian.org/debian'], { stdio: 'inherit' });
    execFileSync('mv', [dir + '.tmp', dir]);
  }
  return dir;
}

export function report(name, title, lines) {
  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, `${name}.md`);
  const text = `# ${title}\n\n${new Date().toISOString()} — ${sh('uname -r').trim()}, ${sh('nproc').trim()} cores, Node ${process.version}\n\n${lines.join('\n')}\n`;
  writeFileSync(file, text);
  process.stdout.write(text);
  return file;
}

export function fmtRow(name, r) {
  return `| ${name} | ${r.median.toFixed(3)} | ${r.ratioToBase !== undefined ? r.ratioToBase.toFixed(2) : ''} | ${r.rssMiB.toFixed(0)} | ${r.runs.map((x) => x.toFixed(2)).join(' ')} |`;
}

export { appendFileSync };
