/** System commands: system df, info, version, and the generic inspect. */
import { createInterface } from 'node:readline/promises';
import { type Ctx, VERSION, ExitError } from './ctx.js';
import { humanSize, since, table } from './format.js';
import { printInspect } from './images.js';
import { shortId } from '../oci/digest.js';
import { EngineError } from '../errors/index.js';

export function registerSystemCommands(ctx: Ctx): void {
  const p = ctx.program;
  const system = p.command('system').description('Manage layerbox');

  system
    .command('df')
    .description('Show layerbox disk usage')
    .option('-v, --verbose', 'show detailed information on space usage')
    .action(async (o: { verbose?: boolean }) => {
      const engine = await ctx.engine();
      const df = engine.imagesDf();
      if (!o.verbose) {
        const pct = (part: number, total: number) => (total > 0 ? ` (${Math.round((part / total) * 100)}%)` : '');
        ctx.out.write(
          table([
            ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
            ['Images', String(df.rows.length), String(df.active), humanSize(df.total), humanSize(df.reclaimable) + pct(df.reclaimable, df.total)],
            ['Containers', '0', '0', '0B', '0B'],
            ['Local Volumes', '0', '0', '0B', '0B'],
            ['Build Cache', '0', '0', '0B', '0B'],
          ]),
        );
        return;
      }
      ctx.out.write('Images space usage:\n\n');
      const rows: string[][] = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS']];
      for (const r of df.rows) {
        const names = r.image.tags.length ? r.image.tags : [undefined];
        for (const t of names) {
          let repo = '<none>';
          let tag = '<none>';
          if (t) {
            const { parseReference } = await import('../oci/reference.js');
            const ref = parseReference(t);
            repo = ref.familiarName;
            tag = ref.tag ?? '<none>';
          }
          rows.push([repo, tag, shortId(r.image.id), since(r.image.created), humanSize(r.size), humanSize(r.shared), humanSize(r.unique), String(r.containers)]);
        }
      }
      ctx.out.write(table(rows));
      ctx.out.write(`\nTotal size of all layers (each counted once): ${humanSize(df.total)} (${df.total} bytes)\n`);
      ctx.out.write('\nContainers space usage:\n\n');
      ctx.out.write(table([['CONTAINER ID', 'IMAGE', 'COMMAND', 'LOCAL VOLUMES', 'SIZE', 'CREATED', 'STATUS', 'NAMES']]));
      ctx.out.write('\nLocal Volumes space usage:\n\n');
      ctx.out.write(table([['VOLUME NAME', 'LINKS', 'SIZE']]));
      ctx.out.write('\nBuild cache usage: 0B\n');
    });

  system
    .command('check')
    .description('Repair what interrupted commands left behind, then verify every blob, layer and image, and look for leftovers no record explains')
    .option('--repair', 'also remove those leftovers (partial copies, snapshots, directories and mounts of containers that do not exist)')
    .action(async (o: { repair?: boolean }) => {
      const engine = await ctx.engine();
      const r = await engine.check({ repair: !!o.repair });
      for (const x of r.repaired) ctx.out.write(`Repaired: ${x}\n`);
      ctx.out.write(`Checked ${r.blobs} blobs, ${r.layers} layers, ${r.images} images: ${r.problems.length ? r.problems.length + ' problem(s)' : 'no problems'}\n`);
      for (const p of r.problems) ctx.out.write(`  ${p}\n`);
      if (r.problems.length) {
        if (!o.repair) ctx.out.write('Run layerbox system check --repair to remove the leftovers.\n');
        throw new ExitError(1);
      }
    });

  system
    .command('prune')
    .description('Remove unused data')
    .option('-a, --all', 'remove all unused images, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--volumes', 'prune anonymous volumes')
    .action(async (o: { all?: boolean; force?: boolean; volumes?: boolean }) => {
      if (!o.force) {
        const items = ['all stopped containers', ...(o.volumes ? ['all anonymous volumes not used by at least one container'] : []), o.all ? 'all images without at least one container associated to them' : 'all dangling images'];
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        const a = await rl.question(`WARNING! This will remove:\n${items.map((i) => `  - ${i}\n`).join('')}\nAre you sure you want to continue? [y/N] `);
        rl.close();
        if (!/^y(es)?$/i.test(a.trim())) return;
      }
      const engine = await ctx.engine();
      const r = await engine.systemPrune({ all: !!o.all, volumes: !!o.volumes });
      if (r.containers.length) ctx.out.write('Deleted Containers:\n' + r.containers.join('\n') + '\n\n');
      if (r.volumes.length) ctx.out.write('Deleted Volumes:\n' + r.volumes.join('\n') + '\n\n');
      if (r.images.length) {
        ctx.out.write('Deleted Images:\n');
        for (const ev of r.images) ctx.out.write('Untagged' in ev ? `untagged: ${ev.Untagged}\n` : `deleted: ${ev.Deleted}\n`);
        ctx.out.write('\n');
      }
      ctx.out.write(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
    });

  p.command('inspect')
    .description('Return low-level information on layerbox objects')
    .argument('<name...>')
    .option('-f, --format <format>', 'format the output using a Go template')
    .option('--type <type>', 'return JSON for specified type')
    .action(async (names: string[], o: { format?: string; type?: string }) => {
      const engine = await ctx.engine();
      await printInspect(ctx, names, o.format, async (n) => {
        if (o.type === 'image') return engine.inspectImage(n);
        if (o.type === 'container') return (await engine.containers()).inspect(n);
        try {
          return await (await engine.containers()).inspect(n);
        } catch (e) {
          if ((e as { kind?: string }).kind !== 'not-found') throw e;
        }
        try {
          return await engine.inspectImage(n);
        } catch (e) {
          if ((e as { kind?: string }).kind === 'not-found') throw new EngineError('not-found', 'NO_SUCH_OBJECT', `No such object: ${n}`);
          throw e;
        }
      });
    });

  p.command('version')
    .description('Show the layerbox version information')
    .action(async () => {
      ctx.out.write(`Client: layerbox\n Version:    ${VERSION}\n Node:       ${process.version}\n OS/Arch:    linux/${process.arch}\n`);
    });

  const info = async () => {
    const engine = await ctx.engine();
    const images = engine.images.list().length;
    ctx.out.write(`Images: ${images}\nStorage Driver: ${engine.snapshots.name}\nLayerbox Root Dir: ${engine.root}\n`);
  };
  p.command('info').description('Display system-wide information').action(info);
  system.command('info').description('Display system-wide information').action(info);
}
