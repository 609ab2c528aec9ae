/**
 * `docker stats` in Docker's JSON (types.StatsJSON of Docker 20.10): a sample of the
 * container's cgroup (v1 or v2) and network namespace, with the previous sample's CPU
 * figures as precpu_stats, so that a client computes CPU % from one message as the docker
 * CLI does. A container that is not running gives the zero sample with its name and ID.
 */
import { availableParallelism, totalmem } from 'node:os';
import { netnsCounters, readCgroupStats, systemCpuUsage, type BlkioEntry } from '../runtime/index.js';
import type { ContainerStats, CpuStats } from './types.js';

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function zeroCpu(): CpuStats {
  return { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
}

function blkio(entries: BlkioEntry[] | undefined) {
  return entries?.length ? entries.map((e) => ({ major: e.major, minor: e.minor, op: e.op, value: e.value })) : null;
}

/** The zero sample Docker sends for a container that is not running. */
export function emptyStats(name: string, id: string): ContainerStats {
  return {
    read: ZERO_TIME,
    preread: ZERO_TIME,
    pids_stats: {},
    blkio_stats: { io_service_bytes_recursive: null, io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null, io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: zeroCpu(),
    precpu_stats: zeroCpu(),
    memory_stats: {},
    name,
    id,
  };
}

/**
 * One sample of a running container (`cgroupsPath` as in its spec, `pid` its init's host
 * pid, for the network namespace); undefined when its cgroup is gone (it exited).
 */
export async function sampleStats(o: { name: string; id: string; cgroupsPath: string; pid: number; network: boolean; prev?: { read: string; cpu: CpuStats } }): Promise<ContainerStats | undefined> {
  const [cg, system, nets] = await Promise.all([readCgroupStats(o.cgroupsPath), systemCpuUsage(), o.network && o.pid > 0 ? netnsCounters(o.pid) : Promise.resolve({})]);
  if (!cg) return undefined;
  const read = new Date().toISOString();
  const online = cg.cpu.perCpu.length || availableParallelism();
  const cpu: CpuStats = {
    cpu_usage: {
      total_usage: cg.cpu.total,
      ...(cg.cpu.perCpu.length ? { percpu_usage: cg.cpu.perCpu } : {}),
      usage_in_kernelmode: cg.cpu.kernel,
      usage_in_usermode: cg.cpu.user,
    },
    system_cpu_usage: system,
    online_cpus: online,
    throttling_data: { periods: cg.cpu.throttling.periods, throttled_periods: cg.cpu.throttling.throttledPeriods, throttled_time: cg.cpu.throttling.throttledTime },
  };
  // an unlimited container's limit is the host's memory, as dockerd reports it
  const host = totalmem();
  const limit = cg.memory.limit === undefined || cg.memory.limit > host ? host : cg.memory.limit;
  const s: ContainerStats = {
    read,
    preread: o.prev?.read ?? ZERO_TIME,
    pids_stats: { current: cg.pids.current, ...(cg.pids.limit !== undefined ? { limit: cg.pids.limit } : {}) },
    blkio_stats: {
      io_service_bytes_recursive: blkio(cg.blkio.serviceBytes),
      io_serviced_recursive: blkio(cg.blkio.serviced),
      io_queue_recursive: null,
      io_service_time_recursive: null,
      io_wait_time_recursive: null,
      io_merged_recursive: null,
      io_time_recursive: null,
      sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpu,
    precpu_stats: o.prev?.cpu ?? zeroCpu(),
    memory_stats: {
      usage: cg.memory.usage,
      ...(cg.memory.maxUsage !== undefined ? { max_usage: cg.memory.maxUsage } : {}),
      stats: cg.memory.stats,
      ...(cg.memory.failcnt !== undefined ? { failcnt: cg.memory.failcnt } : {}),
      limit,
    },
    name: o.name,
    id: o.id,
  };
  if (Object.keys(nets).length) s.networks = nets;
  return s;
}
