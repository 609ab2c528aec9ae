/** System commands: system df, system check, system prune, info, version, and the generic inspect. */
import { confirm } from './prompt.js';
import { parseReference, shortId, VERSION, type SystemDf } from '../engine/index.js';
import { EngineError } from '../errors/index.js';
import { command, type CommandSpec } from './command.js';
import { ExitError, type Ctx } from './ctx.js';
import { flag } from './flags.js';
import { formatRows, humanSize, renderTemplate, since, table } from './format.js';
import { printInspect } from './inspect.js';
import { psRows } from './containers.js';

const pct = (part: number, total: number) => (total > 0 ? ` (${Math.floor((part * 100) / total)}%)` : '');

/** The four rows of `system df`, with the docker CLI's arithmetic and units (go-units HumanSize: 4 digits). */
export function dfRows(df: SystemDf): Record<string, string>[] {
  let usedByActive = 0;
  for (const i of df.Images) if (i.Containers > 0 && i.SharedSize >= 0) usedByActive += i.Size - i.SharedSize;
  const imgReclaim = df.LayersSize - usedByActive;
  const active = (s: string) => s === 'running' || s === 'paused' || s === 'restarting';
  let ctrSize = 0;
  let ctrReclaim = 0;
  for (const c of df.Containers) {
    ctrSize += c.SizeRw ?? 0;
    if (!active(c.State)) ctrReclaim += c.SizeRw ?? 0;
  }
  let volSize = 0;
  let volReclaim = 0;
  for (const v of df.Volumes) {
    const s = v.UsageData?.Size ?? -1;
    if (s < 0) continue;
    volSize += s;
    if ((v.UsageData?.RefCount ?? 0) === 0) volReclaim += s;
  }
  let cacheSize = 0;
  let cacheReclaim = 0;
  for (const b of df.BuildCache) {
    if (!b.Shared) cacheSize += b.Size;
    if (!b.InUse && !b.Shared) cacheReclaim += b.Size;
  }
  return [
    { Type: 'Images', TotalCount: String(df.Images.length), Active: String(df.Images.filter((i) => i.Containers > 0).length), Size: humanSize(df.LayersSize, 4), Reclaimable: humanSize(imgReclaim, 4) + pct(imgReclaim, df.LayersSize) },
    { Type: 'Containers', TotalCount: String(df.Containers.length), Active: String(df.Containers.filter((c) => active(c.State)).length), Size: humanSize(ctrSize, 4), Reclaimable: humanSize(ctrReclaim, 4) + pct(ctrReclaim, ctrSize) },
    { Type: 'Local Volumes', TotalCount: String(df.Volumes.length), Active: String(df.Volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length), Size: humanSize(volSize, 4), Reclaimable: humanSize(volReclaim, 4) + pct(volReclaim, volSize) },
    { Type: 'Build Cache', TotalCount: String(df.BuildCache.length), Active: String(df.BuildCache.filter((b) => b.InUse).length), Size: humanSize(cacheSize, 4), Reclaimable: humanSize(cacheReclaim, 4) },
  ];
}

function dfVerbose(df: SystemDf): string {
  let s = 'Images space usage:\n\n';
  const imgs: string[][] = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS']];
  for (const i of df.Images) {
    let repo = '<none>';
    let tag = '<none>';
    const first = i.RepoTags.find((t) => t !== '<none>:<none>');
    if (first) {
      const r = parseReference(first);
      repo = r.familiarName;
      tag = r.tag ?? '<none>';
    }
    const created = i.Created > 0 ? new Date(i.Created * 1000).toISOString() : undefined;
    imgs.push([repo, tag, shortId(i.Id), since(created), humanSize(i.Size, 4), humanSize(i.SharedSize, 4), humanSize(i.Size - i.SharedSize, 4), String(i.Containers)]);
  }
  s += table(imgs);
  s += `\nTotal size of all layers (each counted once): ${humanSize(df.LayersSize)} (${df.LayersSize} bytes)\n`;
  s += '\nContainers space usage:\n\n';
  const rows = psRows(df.Containers, { trunc: true });
  s += table([['CONTAINER ID', 'IMAGE', 'COMMAND', 'LOCAL VOLUMES', 'SIZE', 'CREATED', 'STATUS', 'NAMES'], ...rows.map((r, k) => [r.ID!, r.Image!, r.Command!, r.LocalVolumes!, humanSize(df.Containers[k]!.SizeRw ?? 0), r.RunningFor!, r.Status!, r.Names!])]);
  s += '\nLocal Volumes space usage:\n\n';
  s += table([['VOLUME NAME', 'LINKS', 'SIZE'], ...df.Volumes.map((v) => [v.Name, String(v.UsageData?.RefCount ?? 0), humanSize(Math.max(0, v.UsageData?.Size ?? 0), 4)])]);
  let cache = 0;
  for (const b of df.BuildCache) cache += b.Size;
  s += `\nBuild cache usage: ${humanSize(cache, 4)}\n\n`;
  s += table([['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'LAST USED', 'USAGE', 'SHARED'], ...df.BuildCache.map((b) => [b.ID.slice(0, 12), b.Type, humanSize(b.Size), since(b.CreatedAt), since(b.LastUsedAt ?? undefined), String(b.UsageCount), String(b.Shared)])]);
  return s;
}

const df = command({
  name: 'df',
  usage: '[OPTIONS]',
  short: 'Show layerbox disk usage',
  flags: {
    format: flag.string('format', '', 'Pretty-print images using a Go template'),
    verbose: flag.bool('verbose', 'v', 'Show detailed information on space usage'),
  },
  args: { max: 0 },
  async run(ctx, _args, o) {
    const engine = await ctx.engine();
    const d = await engine.system.df();
    if (o.verbose) {
      ctx.out.write(dfVerbose(d));
      return;
    }
    const rows = dfRows(d);
    const fmt = formatRows(o.format, rows, { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' });
    if (fmt !== undefined) {
      ctx.out.write(fmt);
      return;
    }
    ctx.out.write(table([['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], ...rows.map((r) => [r.Type!, r.TotalCount!, r.Active!, r.Size!, r.Reclaimable!])]));
  },
});

const check = command({
  name: 'check',
  usage: '[OPTIONS]',
  short: 'Repair what interrupted commands left behind, then verify every blob, layer and image, and look for leftovers no record explains',
  flags: { repair: flag.bool('repair', '', 'Also remove those leftovers (partial copies, snapshots, directories and mounts of containers that do not exist)') },
  args: { max: 0 },
  async run(ctx, _a, o) {
    const r = await (await ctx.engine()).system.check({ repair: !!o.repair });
    for (const x of r.repaired) ctx.out.write(`Repaired: ${x}\n`);
    ctx.out.write(`Checked ${r.blobs} blobs, ${r.layers} layers, ${r.images} images: ${r.problems.length ? r.problems.length + ' problem(s)' : 'no problems'}\n`);
    for (const p of r.problems) ctx.out.write(`  ${p}\n`);
    if (r.problems.length) {
      if (!o.repair) ctx.out.write('Run layerbox system check --repair to remove the leftovers.\n');
      throw new ExitError(1);
    }
  },
});

const prune = command({
  name: 'prune',
  usage: '[OPTIONS]',
  short: 'Remove unused data',
  flags: {
    all: flag.bool('all', 'a', 'Remove all unused images not just dangling ones'),
    force: flag.bool('force', 'f', 'Do not prompt for confirmation'),
    volumes: flag.bool('volumes', '', 'Prune volumes'),
  },
  args: { max: 0 },
  async run(ctx, _a, o) {
    if (!o.force) {
      const items = ['all stopped containers', ...(o.volumes ? ['all anonymous volumes not used by at least one container'] : []), o.all ? 'all images without at least one container associated to them' : 'all dangling images'];
      if (!(await confirm(`WARNING! This will remove:\n${items.map((i) => `  - ${i}\n`).join('')}\nAre you sure you want to continue? [y/N] `))) return;
    }
    const r = await (await ctx.engine()).system.prune({ all: !!o.all, volumes: !!o.volumes });
    if (r.ContainersDeleted.length) ctx.out.write('Deleted Containers:\n' + r.ContainersDeleted.join('\n') + '\n\n');
    if (r.VolumesDeleted.length) ctx.out.write('Deleted Volumes:\n' + r.VolumesDeleted.join('\n') + '\n\n');
    if (r.ImagesDeleted.length) {
      ctx.out.write('Deleted Images:\n');
      for (const ev of r.ImagesDeleted) ctx.out.write(ev.Untagged ? `untagged: ${ev.Untagged}\n` : `deleted: ${ev.Deleted}\n`);
      ctx.out.write('\n');
    }
    ctx.out.write(`Total reclaimed space: ${humanSize(r.SpaceReclaimed, 4)}\n`); // Docker: units.HumanSize, 4 digits
  },
});

async function info(ctx: Ctx, format: string | undefined): Promise<void> {
  const i = await (await ctx.engine()).system.info();
  if (format) {
    ctx.out.write((format === 'json' || format === '{{json .}}' ? JSON.stringify(i) : renderTemplate(format, i)) + '\n');
    return;
  }
  ctx.out.write(
    `Containers: ${i.Containers}\n Running: ${i.ContainersRunning}\n Paused: ${i.ContainersPaused}\n Stopped: ${i.ContainersStopped}\nImages: ${i.Images}\n` +
      `Server Version: ${i.ServerVersion}\nStorage Driver: ${i.Driver}\nLogging Driver: ${i.LoggingDriver}\nCgroup Driver: ${i.CgroupDriver}\n` +
      `Kernel Version: ${i.KernelVersion}\nOperating System: ${i.OperatingSystem}\nOSType: ${i.OSType}\nArchitecture: ${i.Architecture}\nCPUs: ${i.NCPU}\n` +
      `Total Memory: ${humanSize(i.MemTotal as number)}\nName: ${i.Name}\nID: ${i.ID}\nLayerbox Root Dir: ${i.DockerRootDir}\n`,
  );
}

const infoFlags = { format: flag.string('format', 'f', 'Format the output using the given Go template') };
const infoCmd = command({ name: 'info', usage: '[OPTIONS]', short: 'Display system-wide information', flags: infoFlags, args: { max: 0 }, run: (ctx, _a, o) => info(ctx, o.format) });

const version = command({
  name: 'version',
  usage: '[OPTIONS]',
  short: 'Show the layerbox version information',
  flags: { format: flag.string('format', 'f', 'Format the output using the given Go template') },
  args: { max: 0 },
  async run(ctx, _a, o) {
    const client = { Version: VERSION, ApiVersion: '1.41', Os: 'linux', Arch: process.arch === 'x64' ? 'amd64' : process.arch, NodeVersion: process.version };
    if (o.format) {
      ctx.out.write(renderTemplate(o.format, { Client: client }) + '\n');
      return;
    }
    ctx.out.write(`Client: layerbox\n Version:    ${VERSION}\n API version: 1.41\n Node:       ${process.version}\n OS/Arch:    linux/${client.Arch}\n`);
  },
});

const inspect = command({
  name: 'inspect',
  usage: '[OPTIONS] NAME|ID [NAME|ID...]',
  short: 'Return low-level information on layerbox objects',
  flags: {
    format: flag.string('format', 'f', 'Format the output using the given Go template'),
    size: flag.bool('size', 's', 'Display total file sizes if the type is container'),
    type: flag.string('type', '', 'Return JSON for specified type'),
  },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    await printInspect(ctx, names, o.format, async (n) => {
      if (o.type === 'image') return engine.images.inspect(n);
      if (o.type === 'container') return engine.containers.inspect(n, { size: !!o.size });
      if (o.type === 'volume') return engine.volumes.inspect(n);
      if (o.type && !['image', 'container', 'volume'].includes(o.type)) throw new EngineError('invalid-argument', 'BAD_TYPE', `"${o.type}" is not a valid value for --type`);
      for (const get of [() => engine.containers.inspect(n, { size: !!o.size }), () => engine.images.inspect(n), async () => engine.volumes.inspect(n)]) {
        try {
          return await get();
        } catch (e) {
          if ((e as { kind?: string }).kind !== 'not-found') throw e;
        }
      }
      throw new EngineError('not-found', 'NO_SUCH_OBJECT', `No such object: ${n}`);
    });
  },
});

export const systemCommands: CommandSpec<any>[] = [infoCmd, inspect, version];

export const systemGroup = command({
  name: 'system',
  short: 'Manage layerbox',
  commands: [check, df, { ...infoCmd }, prune],
});
