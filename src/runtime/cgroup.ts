/**
 * A container's resource usage from its cgroup, for `docker stats`: cgroup v1 (one hierarchy
 * per controller, as on this hybrid host where runc puts the controllers on v1) or v2 (one
 * unified hierarchy), found from the cgroups path the spec gave (`/layerbox/<id>`). Network
 * counters come from the container's network namespace, read through its init process
 * (`/proc/<pid>/net/dev`). Values are raw numbers; the engine shapes them as Docker's stats.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = '/sys/fs/cgroup';

export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

export interface NetCounters {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

export interface CgroupStats {
  version: 1 | 2;
  cpu: {
    /** nanoseconds */
    total: number;
    perCpu: number[];
    kernel: number;
    user: number;
    throttling: { periods: number; throttledPeriods: number; throttledTime: number };
  };
  memory: {
    usage: number;
    maxUsage?: number;
    failcnt?: number;
    /** bytes; undefined when unlimited */
    limit?: number;
    stats: Record<string, number>;
  };
  pids: { current: number; limit?: number };
  blkio: { serviceBytes: BlkioEntry[]; serviced: BlkioEntry[] };
}

async function text(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

const num = (s: string | undefined): number => {
  const n = Number((s ?? '').trim());
  return Number.isFinite(n) ? n : 0;
};

/** "key value" lines → a map (memory.stat, cpu.stat, cpuacct.stat). */
function keyed(s: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (s ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** A v1 limit file: the kernel's "unlimited" is a page-rounded INT64_MAX. */
function v1Limit(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s.trim());
  return !Number.isFinite(n) || n >= 2 ** 62 ? undefined : n;
}

/** blkio v1: "MAJ:MIN Op value" lines (the "Total N" summary line has two fields and is left out, as runc does). */
function blkioV1(s: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (s ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3) continue;
    const [maj, min] = f[0]!.split(':').map(Number);
    if (!Number.isInteger(maj) || !Number.isInteger(min)) continue;
    out.push({ major: maj!, minor: min!, op: f[1]!, value: num(f[2]) });
  }
  return out;
}

/** io.stat (v2): "MAJ:MIN rbytes=… wbytes=… rios=… wios=…" → Docker's read/write entries. */
function ioV2(s: string | undefined): { serviceBytes: BlkioEntry[]; serviced: BlkioEntry[] } {
  const serviceBytes: BlkioEntry[] = [];
  const serviced: BlkioEntry[] = [];
  for (const line of (s ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 2) continue;
    const [maj, min] = f[0]!.split(':').map(Number);
    if (!Number.isInteger(maj) || !Number.isInteger(min)) continue;
    const kv = Object.fromEntries(f.slice(1).map((x) => x.split('=') as [string, string]));
    const e = (op: string, v: string | undefined) => ({ major: maj!, minor: min!, op, value: num(v) });
    serviceBytes.push(e('read', kv.rbytes), e('write', kv.wbytes));
    serviced.push(e('read', kv.rios), e('write', kv.wios));
  }
  return { serviceBytes, serviced };
}

/** The container's cgroup directory of a v1 controller, or of the v2 hierarchy. */
function v1Dir(controller: string, cgroupsPath: string): string {
  return join(ROOT, controller, cgroupsPath);
}

/** Whether the container's cgroup is on v1 controllers (hybrid or legacy hosts) or on v2. */
export function cgroupVersion(cgroupsPath: string): 1 | 2 | undefined {
  if (existsSync(join(v1Dir('memory', cgroupsPath), 'memory.usage_in_bytes')) || existsSync(join(v1Dir('cpuacct', cgroupsPath), 'cpuacct.usage'))) return 1;
  if (existsSync(join(ROOT, cgroupsPath, 'cgroup.procs'))) return 2;
  return undefined;
}

/** Reads the usage of the cgroup at `cgroupsPath` (e.g. `/layerbox/<id>`); undefined when it does not exist (the container is not running). */
export async function readCgroupStats(cgroupsPath: string): Promise<CgroupStats | undefined> {
  const version = cgroupVersion(cgroupsPath);
  if (version === 1) {
    const cpuacct = v1Dir('cpuacct', cgroupsPath);
    const mem = v1Dir('memory', cgroupsPath);
    const pids = v1Dir('pids', cgroupsPath);
    const blkio = v1Dir('blkio', cgroupsPath);
    const [usage, percpu, cstat, throttle, mUsage, mMax, mFail, mLimit, mStat, pCur, pMax, bBytes, bIos] = await Promise.all([
      text(join(cpuacct, 'cpuacct.usage')),
      text(join(cpuacct, 'cpuacct.usage_percpu')),
      text(join(cpuacct, 'cpuacct.stat')),
      text(join(v1Dir('cpu', cgroupsPath), 'cpu.stat')),
      text(join(mem, 'memory.usage_in_bytes')),
      text(join(mem, 'memory.max_usage_in_bytes')),
      text(join(mem, 'memory.failcnt')),
      text(join(mem, 'memory.limit_in_bytes')),
      text(join(mem, 'memory.stat')),
      text(join(pids, 'pids.current')),
      text(join(pids, 'pids.max')),
      text(join(blkio, 'blkio.throttle.io_service_bytes_recursive')),
      text(join(blkio, 'blkio.throttle.io_serviced_recursive')),
    ]);
    // cpuacct.stat counts USER_HZ ticks (100 per second on Linux)
    const ticks = keyed(cstat);
    const th = keyed(throttle);
    const limit = v1Limit(mLimit);
    const pidsLimit = pMax === undefined || pMax.trim() === 'max' ? undefined : num(pMax);
    return {
      version,
      cpu: {
        total: num(usage),
        perCpu: (percpu ?? '').trim().split(/\s+/).filter(Boolean).map(Number),
        kernel: (ticks.system ?? 0) * 1e7,
        user: (ticks.user ?? 0) * 1e7,
        throttling: { periods: th.nr_periods ?? 0, throttledPeriods: th.nr_throttled ?? 0, throttledTime: th.throttled_time ?? 0 },
      },
      memory: { usage: num(mUsage), maxUsage: num(mMax), failcnt: num(mFail), ...(limit !== undefined ? { limit } : {}), stats: keyed(mStat) },
      pids: { current: num(pCur), ...(pidsLimit !== undefined ? { limit: pidsLimit } : {}) },
      blkio: { serviceBytes: blkioV1(bBytes), serviced: blkioV1(bIos) },
    };
  }
  if (version === 2) {
    const dir = join(ROOT, cgroupsPath);
    const [cstat, mCur, mMax, mStat, pCur, pMax, io] = await Promise.all(
      ['cpu.stat', 'memory.current', 'memory.max', 'memory.stat', 'pids.current', 'pids.max', 'io.stat'].map((f) => text(join(dir, f))),
    );
    const c = keyed(cstat);
    const limit = mMax === undefined || mMax.trim() === 'max' ? undefined : num(mMax);
    const pidsLimit = pMax === undefined || pMax.trim() === 'max' ? undefined : num(pMax);
    return {
      version,
      cpu: {
        total: (c.usage_usec ?? 0) * 1000,
        perCpu: [],
        kernel: (c.system_usec ?? 0) * 1000,
        user: (c.user_usec ?? 0) * 1000,
        throttling: { periods: c.nr_periods ?? 0, throttledPeriods: c.nr_throttled ?? 0, throttledTime: (c.throttled_usec ?? 0) * 1000 },
      },
      memory: { usage: num(mCur), ...(limit !== undefined ? { limit } : {}), stats: keyed(mStat) },
      pids: { current: num(pCur), ...(pidsLimit !== undefined ? { limit: pidsLimit } : {}) },
      blkio: ioV2(io),
    };
  }
  return undefined;
}

/** The host's CPU time in nanoseconds (the first line of /proc/stat, as Docker's system_cpu_usage). */
export async function systemCpuUsage(): Promise<number> {
  const s = (await text('/proc/stat')) ?? '';
  const line = s.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return 0;
  // user nice system idle iowait irq softirq (steal and guest are not counted, as Docker)
  const f = line.trim().split(/\s+/).slice(1, 8).map(Number);
  return f.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) * 1e7;
}

/** Interface counters of the network namespace process `pid` lives in, without `lo`. */
export async function netnsCounters(pid: number): Promise<Record<string, NetCounters>> {
  const s = await text(`/proc/${pid}/net/dev`);
  const out: Record<string, NetCounters> = {};
  for (const line of (s ?? '').split('\n').slice(2)) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const name = line.slice(0, i).trim();
    if (!name || name === 'lo') continue;
    const f = line.slice(i + 1).trim().split(/\s+/).map(Number);
    out[name] = { rx_bytes: f[0] ?? 0, rx_packets: f[1] ?? 0, rx_errors: f[2] ?? 0, rx_dropped: f[3] ?? 0, tx_bytes: f[8] ?? 0, tx_packets: f[9] ?? 0, tx_errors: f[10] ?? 0, tx_dropped: f[11] ?? 0 };
  }
  return out;
}
