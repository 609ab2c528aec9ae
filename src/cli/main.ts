/**
 * The `layerbox` command: Docker's verbs, flag grammar, columns and exit codes over the
 * engine, in-process (no daemon). Thin: flags are parsed into the engine's requests and its
 * answers printed; Docker's semantics live in the engine.
 */
import { Engine, VERSION, daemonConfigPath, readDaemonConfig, trace, type EngineOptions } from '../engine/index.js';
import { isEngineError, storageError } from '../errors/index.js';
import { bashCompletion, byName, command, execute, zshCompletion, type CommandSpec } from './command.js';
import { build, builderGroup } from './build.js';
import { containerCommands, containerGroup } from './containers.js';
import { analyze } from './analyze.js';
import { ExitError, type Ctx } from './ctx.js';
import { flag, FlagValueError } from './flags.js';
import { imageCommands, imageGroup } from './images.js';
import { networkGroup } from './networks.js';
import { registryCommands, pull, push } from './registry.js';
import { systemCommands, systemGroup } from './system.js';
import { ramInBytes } from './units.js';
import { volumeGroup } from './volumes.js';
import { events, update } from './events.js';

const globalFlags = {
  root: flag.string('root', '', 'Root of the store (default $LAYERBOX_ROOT or /var/lib/layerbox)'),
  storageDriver: flag.value('storage-driver', '', 'overlay, or vfs (copies) where overlayfs is unavailable', {
    parse: (v) => {
      if (v !== 'overlay' && v !== 'vfs') throw new FlagValueError('use overlay or vfs');
      return v;
    },
  }),
  maxLayerSize: flag.value('max-layer-size', '', 'Refuse layers that expand beyond this size (default 64g)', { typeName: 'bytes', parse: ramInBytes }),
  insecureRegistry: flag.list('insecure-registry', '', 'Allow plain HTTP or unverified TLS for this registry (loopback always is)'),
  debug: flag.bool('debug', 'D', 'Enable debug mode (stack traces of internal errors)'),
  version: flag.bool('version', 'v', 'Print version information and quit'),
};

let root: CommandSpec<typeof globalFlags>;
/** the table the completion scripts describe (the running executable's, extras included) */
let completionRoot: CommandSpec<any> | undefined;

const completion = command({
  name: 'completion',
  short: 'Generate the autocompletion script for the specified shell',
  commands: [
    command({ name: 'bash', usage: '', short: 'Generate the autocompletion script for bash (source it, or put it in /etc/bash_completion.d/layerbox)', args: { max: 0 }, run: (ctx) => void ctx.out.write(bashCompletion(completionRoot ?? root)) }),
    command({ name: 'zsh', usage: '', short: 'Generate the autocompletion script for zsh (put it as _layerbox in a directory of $fpath)', args: { max: 0 }, run: (ctx) => void ctx.out.write(zshCompletion(completionRoot ?? root)) }),
  ],
});

root = command({
  name: 'layerbox',
  short: "A container engine that implements Docker's layered images: content store, overlay snapshots, registries, containers, commit.",
  flags: globalFlags,
  commands: [
    ...[builderGroup, completion, { ...containerGroup, commands: [...containerGroup.commands!, update].sort(byName) }, imageGroup([analyze, build, pull, push]), networkGroup, { ...systemGroup, commands: [...systemGroup.commands!, events].sort(byName) }, volumeGroup],
    ...[build, events, update, ...containerCommands, ...imageCommands, ...registryCommands, ...systemCommands].sort(byName),
  ],
  async run(ctx, _args, o) {
    if (o.version) {
      ctx.out.write(`layerbox version ${VERSION}\n`);
      return;
    }
    const { helpText } = await import('./command.js');
    ctx.out.write(helpText(['layerbox'], completionRoot ?? root));
  },
});

/** The command table; `extra` commands come from the executable that composes fronts (src/bin). */
export function rootCommand(extra: CommandSpec<any>[] = []): CommandSpec<typeof globalFlags> {
  if (extra.length === 0) return root;
  return { ...root, commands: [...root.commands!, ...extra].sort((a, b) => (!!a.commands === !!b.commands ? 0 : a.commands ? -1 : 1) || (a.commands || b.commands ? 0 : byName(a, b))) };
}

function engineOptions(g: Record<string, unknown>): EngineOptions {
  const opts: EngineOptions = {};
  if (g.root) opts.root = g.root as string;
  if (g.storageDriver) opts.storageDriver = g.storageDriver as 'overlay' | 'vfs';
  // the registry keys of daemon.json apply to the CLI as to `serve` (same pulls through either front)
  const { path, explicit } = daemonConfigPath();
  const file = readDaemonConfig(path, explicit).config;
  const insecure = [...((g.insecureRegistry as string[] | undefined) ?? []), ...(file['insecure-registries'] ?? [])];
  if (insecure.length) opts.insecureRegistries = insecure;
  if (file['registry-mirrors']?.length) opts.registryMirrors = file['registry-mirrors'];
  if (g.maxLayerSize !== undefined) opts.maxLayerBytes = g.maxLayerSize as number;
  else if (process.env.LAYERBOX_MAX_LAYER_SIZE) opts.maxLayerBytes = ramInBytes(process.env.LAYERBOX_MAX_LAYER_SIZE);
  return opts;
}

export function makeCtx(): Ctx {
  let engine: Engine | undefined;
  const ctx: Ctx = {
    out: process.stdout,
    err: process.stderr,
    globals: {},
    commandPath: 'layerbox',
    async engine() {
      if (engine) return engine;
      engine = await Engine.open(engineOptions(ctx.globals));
      trace('engine: open');
      return engine;
    },
    close() {
      engine?.close();
      engine = undefined;
    },
  };
  return ctx;
}

export async function main(argv: string[], extra: CommandSpec<any>[] = []): Promise<void> {
  trace('cli: loaded');
  // `layerbox save … | head`: a closed pipe ends the command quietly, like other tools
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const ctx = makeCtx();
  try {
    const table = rootCommand(extra);
    completionRoot = table;
    await execute(table, argv, ctx);
  } catch (e) {
    process.exitCode = report(e, !!ctx.globals.debug || !!process.env.LAYERBOX_DEBUG);
  } finally {
    // registry connections, the database: nothing keeps the process alive after the command
    ctx.close();
  }
}

/** What an error prints and the exit code it gives. Never a JavaScript stack, unless debugging. */
export function report(raw: unknown, debug: boolean): number {
  // a full disk, an I/O error: `… no space left on device (where): free space …`
  const e = storageError(raw) ?? raw;
  if (e instanceof ExitError) {
    if (e.message) process.stderr.write(e.message + '\n');
    return e.code;
  }
  if (isEngineError(e)) {
    process.stderr.write(`Error: ${e.describe()}\n`);
    if (debug && e.cause) process.stderr.write(String((e.cause as Error).stack ?? e.cause) + '\n');
    return 1;
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && err.syscall) {
    process.stderr.write(`Error: ${systemErrorText(err)}\n`);
    if (debug) process.stderr.write(String(err.stack) + '\n');
    return 1;
  }
  process.stderr.write(`Error: internal error: ${(e as Error)?.message ?? String(e)}\n`);
  if (debug) process.stderr.write(String((e as Error)?.stack ?? '') + '\n');
  else process.stderr.write('Run again with LAYERBOX_DEBUG=1 for the details, and report it.\n');
  return 1;
}

/** A system error (ENOSPC, EIO, EACCES, …) in words: what, on which path, what to do. */
function systemErrorText(err: NodeJS.ErrnoException): string {
  const dest = (err as { dest?: string }).dest;
  const where = err.path ? ` (${err.path}${dest ? ' → ' + dest : ''})` : '';
  switch (err.code) {
    case 'ENOSPC':
      return `no space left on device${where}: free space on that file system (layerbox system df shows what the store holds; rm, rmi and prune free it)`;
    case 'EDQUOT':
      return `disk quota exceeded${where}: free space or raise the quota`;
    case 'EIO':
      return `input/output error${where}: the disk or file system failed; check the kernel log (dmesg), then run layerbox system check`;
    case 'EROFS':
      return `read-only file system${where}: the store must be on a writable file system`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied${where}: layerbox needs root`;
    default:
      return `${err.message}`;
  }
}

export { ExitError, VERSION, type Ctx };
