/** Volume commands: volume create, ls, inspect, rm, prune. */
import { confirm } from './prompt.js';
import { parseFilterArgs } from '../engine/index.js';
import { command } from './command.js';
import { each } from './containers.js';
import { flag } from './flags.js';
import { formatRows, humanSize, table } from './format.js';
import { printInspect } from './inspect.js';

function kv(list: string[]): Record<string, string> {
  return Object.fromEntries(list.map((l) => [l.split('=')[0]!, l.split('=').slice(1).join('=')]));
}

const create = command({
  name: 'create',
  usage: '[OPTIONS] [VOLUME]',
  short: 'Create a volume',
  flags: {
    driver: flag.string('driver', 'd', 'Specify volume driver name', { default: 'local' }),
    label: flag.list('label', '', 'Set metadata for a volume'),
    name: flag.string('name', '', 'Specify volume name', { hidden: true }),
    opt: flag.list('opt', 'o', 'Set driver specific options', { typeName: 'map', defaultText: 'map[]' }),
  },
  args: { max: 1 },
  async run(ctx, [name], o) {
    const engine = await ctx.engine();
    const n = name ?? o.name;
    ctx.out.write(engine.volumes.create({ ...(n ? { Name: n } : {}), Driver: o.driver ?? 'local', Labels: kv(o.label), DriverOpts: kv(o.opt) }).Name + '\n');
  },
});

const ls = command({
  name: 'ls',
  aliases: ['list'],
  usage: '[OPTIONS]',
  short: 'List volumes',
  flags: {
    filter: flag.list('filter', 'f', "Provide filter values (e.g. 'dangling=true')", { typeName: 'filter' }),
    format: flag.string('format', '', 'Pretty-print volumes using a Go template'),
    quiet: flag.bool('quiet', 'q', 'Only display volume names'),
  },
  args: { max: 0 },
  async run(ctx, _a, o) {
    const engine = await ctx.engine();
    const vols = engine.volumes.list({ filters: parseFilterArgs(o.filter) });
    if (o.quiet) {
      for (const v of vols) ctx.out.write(v.Name + '\n');
      return;
    }
    const rows = vols.map((v) => ({ Driver: v.Driver, Name: v.Name, Mountpoint: v.Mountpoint, Scope: v.Scope, Labels: Object.entries(v.Labels).map(([k, x]) => `${k}=${x}`).join(',') }));
    const fmt = formatRows(o.format, rows, { Driver: 'DRIVER', Name: 'VOLUME NAME', Mountpoint: 'MOUNTPOINT', Scope: 'SCOPE', Labels: 'LABELS' });
    if (fmt !== undefined) ctx.out.write(fmt);
    else ctx.out.write(table([['DRIVER', 'VOLUME NAME'], ...rows.map((r) => [r.Driver, r.Name])]));
  },
});

const inspect = command({
  name: 'inspect',
  usage: '[OPTIONS] VOLUME [VOLUME...]',
  short: 'Display detailed information on one or more volumes',
  flags: { format: flag.string('format', 'f', 'Format the output using the given Go template') },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    await printInspect(ctx, names, o.format, async (n) => engine.volumes.inspect(n));
  },
});

const rm = command({
  name: 'rm',
  aliases: ['remove'],
  usage: '[OPTIONS] VOLUME [VOLUME...]',
  short: 'Remove one or more volumes',
  flags: { force: flag.bool('force', 'f', 'Force the removal of one or more volumes') },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    await each(names, async (n) => {
      await engine.volumes.remove(n, { force: !!o.force });
      ctx.out.write(n + '\n');
    });
  },
});

const prune = command({
  name: 'prune',
  usage: '[OPTIONS]',
  short: 'Remove all unused local volumes',
  flags: {
    all: flag.bool('all', 'a', 'Remove all unused volumes, not just anonymous ones'),
    filter: flag.list('filter', '', "Provide filter values (e.g. 'label=<label>')", { typeName: 'filter' }),
    force: flag.bool('force', 'f', 'Do not prompt for confirmation'),
  },
  args: { max: 0 },
  async run(ctx, _a, o) {
    const engine = await ctx.engine();
    if (!o.force) {
      if (!(await confirm('WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] '))) return;
    }
    const filters = parseFilterArgs(o.filter);
    if (o.all) filters.all = ['true'];
    const r = await engine.volumes.prune({ filters });
    if (r.VolumesDeleted.length) ctx.out.write('Deleted Volumes:\n' + r.VolumesDeleted.join('\n') + '\n\n');
    ctx.out.write(`Total reclaimed space: ${humanSize(r.SpaceReclaimed, 4)}\n`); // Docker: units.HumanSize, 4 digits
  },
});

export const volumeGroup = command({ name: 'volume', short: 'Manage volumes', commands: [create, inspect, ls, prune, rm] });
