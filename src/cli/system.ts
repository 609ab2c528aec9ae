/** System commands: system df, info, version, and the generic inspect. */
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
    .description('Repair what interrupted commands left behind, then verify every blob, layer and image')
    .action(async () => {
      const engine = await ctx.engine();
      const r = await engine.check();
      ctx.out.write(`Checked ${r.blobs} blobs, ${r.layers} layers, ${r.images} images: ${r.problems.length ? r.problems.length + ' problem(s)' : 'no problems'}\n`);
      for (const p of r.problems) ctx.out.write(`  ${p}\n`);
      if (r.problems.length) throw new ExitError(1);
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
