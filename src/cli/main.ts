/**
 * The `layerbox` command: Docker's verbs, flags, columns and exit codes over the engine
 * library, in-process (no daemon). Thin: parsing and printing only.
 */
import { Command, CommanderError, Option } from 'commander';
import { EngineError, isEngineError, storageError } from '../errors/index.js';
import { Engine, type EngineOptions } from '../engine/engine.js';
import { ExitError, VERSION, type Ctx } from './ctx.js';
import { trace } from '../sys/trace.js';
import { registerImageCommands } from './images.js';
import { registerSystemCommands } from './system.js';
import { registerRegistryCommands } from './registry.js';
import { registerContainerCommands } from './containers.js';

export interface GlobalOptions {
  root?: string;
  storageDriver?: 'overlay' | 'vfs';
  maxLayerSize?: string;
  insecureRegistry?: string[];
}


function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(s.trim());
  if (!m) throw new EngineError('invalid-argument', 'BAD_SIZE', `invalid size: ${JSON.stringify(s)}`, { hint: 'e.g. 512m, 8g' });
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase()]!;
  return Math.floor(Number(m[1]) * mult);
}

export function buildProgram(): { program: Command; ctx: Ctx } {
  const program = new Command('layerbox');
  let engine: Engine | undefined;
  const ctx: Ctx = {
    program,
    out: process.stdout,
    err: process.stderr,
    async engine() {
      if (engine) return engine;
      const g = program.opts<GlobalOptions>();
      const opts: EngineOptions = {};
      if (g.root) opts.root = g.root;
      if (g.storageDriver) opts.storageDriver = g.storageDriver;
      if (g.insecureRegistry?.length) opts.insecureRegistries = g.insecureRegistry;
      const max = g.maxLayerSize ?? process.env.LAYERBOX_MAX_LAYER_SIZE;
      if (max) opts.maxLayerBytes = parseSize(max);
      engine = await Engine.open(opts);
      trace('engine: open');
      return engine;
    },
    close() {
      engine?.close();
      engine = undefined;
    },
  };
  program
    .description('A container engine that implements Docker\'s layered images: content store, overlay snapshots, registries, containers, commit.')
    .usage('[OPTIONS] COMMAND')
    .option('--root <dir>', 'store root (default $LAYERBOX_ROOT or /var/lib/layerbox)')
    .addOption(new Option('--storage-driver <driver>', 'overlay, or vfs (copies) where overlayfs is unavailable').choices(['overlay', 'vfs']))
    .option('--max-layer-size <size>', 'refuse layers that expand beyond this size (default 64g)')
    .option('--insecure-registry <host>', 'allow plain HTTP / unverified TLS for this registry (repeatable; loopback is always allowed)', (v: string, prev: string[] = []) => [...prev, v])
    .version(VERSION, '-v, --version', 'print the version')
    .helpOption('--help', 'display help for command')
    .showHelpAfterError(false)
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(s.replace(/^error: /, '')),
    })
    .exitOverride();
  program.enablePositionalOptions();
  registerImageCommands(ctx);
  registerRegistryCommands(ctx);
  registerContainerCommands(ctx);
  registerSystemCommands(ctx);
  program.on('command:*', (ops: string[]) => {
    process.stderr.write(`layerbox: '${ops[0]}' is not a layerbox command.\nSee 'layerbox --help'\n`);
    throw new ExitError(1);
  });
  return { program, ctx };
}


export async function main(argv: string[]): Promise<void> {
  trace('cli: loaded');
  // `layerbox save … | head`: a closed pipe ends the command quietly, like other tools
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const { program, ctx } = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    process.exitCode = handleError(e);
  } finally {
    // registry connections, the database: nothing keeps the process alive after the command
    ctx.close();
  }
}

export function handleError(e: unknown): number {
  if (e instanceof ExitError) {
    if (e.message) process.stderr.write(e.message + '\n');
    return e.code;
  }
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    // usage errors: Docker's CLI exits 125 on flag errors
    return e.exitCode === 0 ? 0 : 125;
  }
  // a full disk, an I/O error: Docker's `… no space left on device (where): free space …`
  const storage = storageError(e);
  if (storage) e = storage;
  if (isEngineError(e)) {
    process.stderr.write(`Error: ${e.describe()}\n`);
    if (process.env.LAYERBOX_DEBUG && e.cause) process.stderr.write(String((e.cause as Error).stack ?? e.cause) + '\n');
    return 1;
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && err.syscall) {
    process.stderr.write(`Error: ${err.message}\n`);
    return 1;
  }
  // an unexpected failure: its message; the JavaScript stack only with LAYERBOX_DEBUG=1
  process.stderr.write(`Error: ${(e as Error)?.message ?? String(e)}\n`);
  if (process.env.LAYERBOX_DEBUG && (e as Error)?.stack) process.stderr.write(`${(e as Error).stack}\n`);
  return 1;
}

export { ExitError, VERSION, type Ctx };
