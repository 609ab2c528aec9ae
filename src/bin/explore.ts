/**
 * `layerbox explore`: the web layer explorer (the ui front) on a local listener, as a command
 * of the CLI front. Composed here, above both fronts, so that neither imports the other.
 */
import type { Engine } from '../engine/index.js';
import { listenExplorer } from '../ui/index.js';
import { command } from '../cli/command.js';
import { ExitError, type Ctx } from '../cli/ctx.js';
import { flag } from '../cli/flags.js';

async function waitForSignal(): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

export async function explore(ctx: Ctx, names: string[], o: { port?: number; host?: string }, until: () => Promise<void> = waitForSignal): Promise<void> {
  const engine: Engine = await ctx.engine();
  const ids = names.map((n) => engine.images.resolve(n).id); // an unknown image fails before anything listens
  const port = o.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ExitError(125, `invalid argument "${port}" for "--port" flag: a port is 0-65535\nSee '${ctx.commandPath} --help'.`);
  const s = await listenExplorer(engine, { host: o.host ?? '127.0.0.1', port });
  s.explorer.warm(ids);
  ctx.out.write(`${ids.length ? s.imageUrl(ids[0]!) : s.url}\n`);
  for (const id of ids.slice(1)) ctx.out.write(`${s.imageUrl(id)}\n`);
  ctx.err.write('Serving the layer explorer; press Ctrl-C to stop.\n');
  await until();
  await s.close();
}

export const exploreCmd = command({
  name: 'explore',
  usage: '[OPTIONS] [IMAGE...]',
  short: "Serve a local web explorer of the store's images and their layers, and print its URL",
  flags: {
    port: flag.int('port', 'p', 'Port to listen on (0 picks a free one)', { default: 0 }),
    host: flag.string('host', '', 'Address to listen on', { default: '127.0.0.1', defaultText: '"127.0.0.1"' }),
  },
  async run(ctx, names, o) {
    await explore(ctx, names, { port: o.port ?? 0, host: o.host ?? '127.0.0.1' });
  },
});
