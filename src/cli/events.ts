/** `events` (Docker's text lines or a --format template) and `update` (the restart policy, and resources). */
import { eventTimestamp, parseFilterArgs, type ContainerUpdateBody, type EngineEvent } from '../engine/index.js';
import { command } from './command.js';
import { each } from './containers.js';
import { ExitError } from './ctx.js';
import { flag, FlagValueError } from './flags.js';
import { renderTemplate } from './format.js';
import { nanoCpus, ramInBytes, restartPolicy } from './units.js';

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Go's rfc3339NanoFixed in local time ("2006-01-02T15:04:05.000000000Z07:00"), as the docker CLI prints event times. */
export function eventTimeText(timeNano: number): string {
  const us = Math.round(timeNano / 1000);
  const ms = Math.floor(us / 1000);
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  const frac = `${pad(ms % 1000, 3)}${pad(us % 1000, 3)}000`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${frac}${zone}`;
}

/** The docker CLI's line: `TIME TYPE ACTION ID (k=v, …)`, attributes sorted by key. */
export function eventLine(e: EngineEvent): string {
  let s = `${e.timeNano ? eventTimeText(e.timeNano) : eventTimeText(e.time * 1e9)} ${e.Type} ${e.Action} ${e.Actor.ID}`;
  const keys = Object.keys(e.Actor.Attributes).sort();
  if (keys.length) s += ` (${keys.map((k) => `${k}=${e.Actor.Attributes[k]}`).join(', ')})`;
  return s + '\n';
}

/** The template's view of an event: Go's field names (.Status, .ID, .Actor.Attributes …); `json .` gives the wire form. */
function templateView(e: EngineEvent): Record<string, unknown> {
  const v: Record<string, unknown> = { Status: e.status ?? '', ID: e.id ?? '', From: e.from ?? '', Type: e.Type, Action: e.Action, Actor: e.Actor, Scope: e.scope, Time: e.time, TimeNano: e.timeNano };
  Object.defineProperty(v, 'toJSON', { value: () => e, enumerable: false });
  return v;
}

const eventFlags = {
  filter: flag.list('filter', 'f', 'Filter output based on conditions provided', { typeName: 'filter' }),
  format: flag.string('format', '', 'Format the output using the given Go template'),
  since: flag.string('since', '', 'Show all events created since timestamp'),
  until: flag.string('until', '', 'Stream events until this timestamp'),
};

export const events = command({
  name: 'events',
  usage: '[OPTIONS]',
  short: 'Get real time events from the server',
  flags: eventFlags,
  args: { max: 0 },
  async run(ctx, _args, o) {
    const filters = parseFilterArgs(o.filter);
    // as the docker CLI: durations and dates become timestamps here, against this clock
    const now = Date.now();
    let since: string | undefined;
    let until: string | undefined;
    try {
      since = o.since ? eventTimestamp(o.since, now) : undefined;
      until = o.until ? eventTimestamp(o.until, now) : undefined;
    } catch (e) {
      throw new ExitError(1, (e as Error).message);
    }
    const engine = await ctx.engine();
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      for await (const e of engine.events({ filters, ...(since ? { since } : {}), ...(until ? { until } : {}), signal: ac.signal })) {
        ctx.out.write(o.format ? renderTemplate(o.format, templateView(e)) + '\n' : eventLine(e));
      }
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
});

function policyOf(v: string): { Name: string; MaximumRetryCount: number } {
  try {
    return restartPolicy(v);
  } catch (e) {
    if (e instanceof FlagValueError) throw new ExitError(1, e.message);
    throw e;
  }
}

const bytes = (name: string, short: string, usage: string) => flag.value(name, short, usage, { typeName: 'bytes', parse: ramInBytes });

export const update = command({
  name: 'update',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  short: 'Update configuration of one or more containers',
  flags: {
    blkioWeight: flag.uint('blkio-weight', '', 'Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)', { typeName: 'uint16' }),
    cpuPeriod: flag.int('cpu-period', '', 'Limit CPU CFS (Completely Fair Scheduler) period'),
    cpuQuota: flag.int('cpu-quota', '', 'Limit CPU CFS (Completely Fair Scheduler) quota'),
    cpuShares: flag.int('cpu-shares', 'c', 'CPU shares (relative weight)'),
    cpus: flag.value('cpus', '', 'Number of CPUs', { typeName: 'decimal', parse: nanoCpus }),
    cpusetCpus: flag.string('cpuset-cpus', '', 'CPUs in which to allow execution (0-3, 0,1)'),
    cpusetMems: flag.string('cpuset-mems', '', 'MEMs in which to allow execution (0-3, 0,1)'),
    kernelMemory: bytes('kernel-memory', '', 'Kernel memory limit'),
    memory: bytes('memory', 'm', 'Memory limit'),
    memoryReservation: bytes('memory-reservation', '', 'Memory soft limit'),
    memorySwap: flag.value('memory-swap', '', "Swap limit equal to memory plus swap: '-1' to enable unlimited swap", { typeName: 'bytes', parse: (v) => (v === '-1' ? -1 : ramInBytes(v)) }),
    pidsLimit: flag.int('pids-limit', '', 'Tune container pids limit (set -1 for unlimited)'),
    restart: flag.string('restart', '', 'Restart policy to apply when a container exits'),
  },
  args: { min: 1 },
  async run(ctx, names, o) {
    if (o.changed.size === 0) throw new ExitError(1, 'you must provide one or more flags when using this command');
    const body: ContainerUpdateBody = {
      ...(o.changed.has('blkioWeight') ? { BlkioWeight: o.blkioWeight! } : {}),
      ...(o.changed.has('cpuPeriod') ? { CpuPeriod: o.cpuPeriod! } : {}),
      ...(o.changed.has('cpuQuota') ? { CpuQuota: o.cpuQuota! } : {}),
      ...(o.changed.has('cpuShares') ? { CpuShares: o.cpuShares! } : {}),
      ...(o.changed.has('cpus') ? { NanoCpus: o.cpus! } : {}),
      ...(o.changed.has('cpusetCpus') ? { CpusetCpus: o.cpusetCpus! } : {}),
      ...(o.changed.has('cpusetMems') ? { CpusetMems: o.cpusetMems! } : {}),
      ...(o.changed.has('kernelMemory') ? { KernelMemory: o.kernelMemory! } : {}),
      ...(o.changed.has('memory') ? { Memory: o.memory! } : {}),
      ...(o.changed.has('memoryReservation') ? { MemoryReservation: o.memoryReservation! } : {}),
      ...(o.changed.has('memorySwap') ? { MemorySwap: o.memorySwap! } : {}),
      ...(o.changed.has('pidsLimit') ? { PidsLimit: o.pidsLimit! } : {}),
      // the docker CLI parses the policy; the daemon checks it
      ...(o.restart ? { RestartPolicy: policyOf(o.restart) } : {}),
    };
    const engine = await ctx.engine();
    await each(names, async (n) => {
      const r = await engine.containers.update(n, body);
      for (const w of r.Warnings) ctx.err.write(`${w}\n`);
      ctx.out.write(n + '\n');
    });
  },
});
