/** Container commands: create, run, start, ps, stop, kill, restart, pause, unpause, rm, logs, exec, attach, wait, inspect, port, rename, top, prune, diff, commit, cp, export. */
import { createWriteStream, existsSync, writeFileSync } from 'node:fs';
import { isEngineError, EngineError, storageError } from '../errors/index.js';
import { defaultRoot, parseFilterArgs, parseReference, type AttachStreams, type CommitOptions, type ContainerSummary, type Engine, type ExecConfig } from '../engine/index.js';
import { command, type CommandSpec } from './command.js';
import { confirm } from './prompt.js';
import { ExitError, type Ctx } from './ctx.js';
import { flag, type FlagValues } from './flags.js';
import { formatRows, goTime, humanSize, since, table } from './format.js';
import { modeFor, renderOp } from './render.js';
import { createFlags, runFlags, toCreateBody as createBody, readEnvFile, CreateFlagsError } from './runopts.js';
import { printInspect } from './inspect.js';

function terminalSize(): { height: number; width: number } | undefined {
  return process.stdout.isTTY ? { height: process.stdout.rows, width: process.stdout.columns } : undefined;
}

/** Streams for an attached container: raw stdin with -t, restored afterwards. */
function stdioFor(opts: { stdin: boolean; tty: boolean }): { streams: AttachStreams; restore: () => void } {
  const restore: (() => void)[] = [];
  if (opts.stdin && opts.tty && process.stdin.isTTY) {
    process.stdin.setRawMode(true);
    restore.push(() => process.stdin.setRawMode(false));
  }
  return {
    streams: { stdin: opts.stdin ? process.stdin : null, stdout: process.stdout, stderr: process.stderr },
    restore: () => {
      for (const r of restore) r();
      process.stdin.pause();
    },
  };
}

/** Runs `fn` for every name; prints each failure and exits 1 at the end if any failed (Docker's multi-target behaviour). */
export async function each(names: string[], fn: (n: string) => Promise<void>): Promise<void> {
  let failed = 0;
  for (const n of names) {
    try {
      await fn(n);
    } catch (err) {
      const e = storageError(err) ?? err;
      if (!isEngineError(e)) throw e;
      failed++;
      process.stderr.write(`Error response from daemon: ${e.describe()}\n`);
    }
  }
  if (failed) throw new ExitError(1);
}

/** The create body of a run/create line; what the docker CLI refuses itself ends it with 125, as Docker's. */
function toCreateBody(ctx: Ctx, ...a: Parameters<typeof createBody>): ReturnType<typeof createBody> {
  try {
    return createBody(...a);
  } catch (e) {
    if (e instanceof CreateFlagsError) throw new ExitError(125, `layerbox: ${e.message}.\nSee '${ctx.commandPath} --help'.`);
    throw e;
  }
}

/** Errors before the container runs: Docker's `run`/`create` exit 125 (126/127 for an unrunnable command). */
function runError(ctx: Ctx, err: unknown): unknown {
  const e = storageError(err) ?? err;
  if (isEngineError(e)) {
    const code = (e as unknown as { exitCode?: number }).exitCode ?? 125;
    return new ExitError(code, `layerbox: Error response from daemon: ${e.describe()}.\nSee '${ctx.commandPath} --help'.`);
  }
  return e;
}

/** Makes the image present as `--pull` says, showing Docker's "Unable to find image" and the pull on stderr. */
async function ensureImage(ctx: Ctx, engine: Engine, image: string, policy: string | undefined, platform: string | undefined): Promise<void> {
  if (!['missing', 'always', 'never'].includes(policy ?? 'missing')) throw new ExitError(125, `layerbox: invalid pull option: '${policy}': must be one of "always", "missing" or "never".\nSee '${ctx.commandPath} --help'.`);
  const { parsePlatform } = await import('../engine/index.js');
  const op = engine.images.ensure(image, (policy ?? 'missing') as 'missing', platform ? { platform: parsePlatform(platform) } : {});
  await renderOp(op, ctx.err, modeFor(ctx.err));
}

function quoteCommand(cmd: string, trunc: boolean): string {
  let s = cmd;
  if (trunc && [...s].length > 20) s = [...s].slice(0, 19).join('') + '…';
  return JSON.stringify(s);
}

/** `ps` PORTS text, as the docker CLI formats the Ports of a summary. */
export function portsText(ports: ContainerSummary['Ports']): string {
  return ports
    .map((p) => (p.PublicPort !== undefined ? `${p.IP && p.IP.includes(':') ? `[${p.IP}]` : p.IP ?? '0.0.0.0'}:${p.PublicPort}->${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`))
    .join(', ');
}

export function psRows(list: ContainerSummary[], opts: { trunc: boolean; size?: boolean }) {
  const id = (x: string) => (opts.trunc ? x.slice(0, 12) : x);
  return list.map((c) => ({
    Command: quoteCommand(c.Command, opts.trunc),
    CreatedAt: goTime(new Date(c.Created * 1000).toISOString()),
    ID: id(c.Id),
    Image: opts.trunc && c.Image.startsWith('sha256:') ? c.Image.slice(7, 19) : c.Image,
    Labels: Object.entries(c.Labels).map(([k, v]) => `${k}=${v}`).join(','),
    LocalVolumes: String(c.Mounts.filter((m) => m.Type === 'volume').length),
    Mounts: c.Mounts.map((m) => m.Name ?? m.Source).join(','),
    Names: c.Names.map((n) => n.replace(/^\//, '')).join(','),
    Networks: Object.keys(c.NetworkSettings.Networks).join(','),
    Ports: portsText(c.Ports),
    RunningFor: since(new Date(c.Created * 1000).toISOString()),
    Size: opts.size ? `${humanSize(c.SizeRw ?? 0)} (virtual ${humanSize(c.SizeRootFs ?? 0)})` : '0B',
    State: c.State,
    Status: c.Status,
  }));
}

function parseTime(s: string): number {
  const rel = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s);
  if (rel) return Date.now() - Number(rel[1]) * { ms: 1, s: 1e3, m: 6e4, h: 36e5 }[rel[2] as 's'];
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new EngineError('invalid-argument', 'BAD_TIME', `invalid value for "since": failed to parse value as time or duration: "${s}"`);
  return t;
}

const create = command({
  name: 'create',
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
  short: 'Create a new container',
  flags: createFlags(),
  args: { min: 1 },
  interspersed: false,
  async run(ctx, [image, ...args], f) {
    const body = toCreateBody(ctx, image!, args, f);
    const engine = await ctx.engine();
    if (f.cidfile && existsSync(f.cidfile)) throw new ExitError(125, `layerbox: Container ID file found, make sure the other container isn't running or delete ${f.cidfile}.\nSee '${ctx.commandPath} --help'.`);
    try {
      await ensureImage(ctx, engine, image!, f.pull, f.platform);
      const r = await engine.containers.create(body, { ...(f.name !== undefined ? { name: f.name } : {}) });
      for (const w of r.Warnings) ctx.err.write(`WARNING: ${w}\n`);
      if (f.cidfile) writeFileSync(f.cidfile, r.Id);
      ctx.out.write(r.Id + '\n');
    } catch (e) {
      throw runError(ctx, e);
    }
  },
});

const run = command({
  name: 'run',
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
  short: 'Run a command in a new container',
  flags: runFlags(),
  args: { min: 1 },
  interspersed: false,
  async run(ctx, [image, ...args], f) {
    if (f.detach && f.attach.length) throw new ExitError(1, 'Conflicting options: -a and -d');
    if (f.rm && f.restart && f.restart.Name !== '' && f.restart.Name !== 'no') throw new ExitError(1, 'Conflicting options: --restart and --rm');
    const body = toCreateBody(ctx, image!, args, f);
    // Docker checks for a terminal only when it attaches stdin (not with -d)
    if (!f.detach && body.Tty && body.AttachStdin && !process.stdin.isTTY) throw new ExitError(1, 'the input device is not a TTY');
    const engine = await ctx.engine();
    if (f.cidfile && existsSync(f.cidfile)) throw new ExitError(125, `layerbox: Container ID file found, make sure the other container isn't running or delete ${f.cidfile}.\nSee '${ctx.commandPath} --help'.`);
    let handle;
    const io = f.detach ? undefined : stdioFor({ stdin: !!body.AttachStdin, tty: !!body.Tty });
    try {
      await ensureImage(ctx, engine, image!, f.pull, f.platform);
      const size = body.Tty ? terminalSize() : undefined;
      handle = await engine.containers.run(body, {
        ...(f.name !== undefined ? { name: f.name } : {}),
        detach: !!f.detach,
        ...(io ? { attach: { stdin: body.AttachStdin ? io.streams.stdin : null, stdout: body.AttachStdout ? io.streams.stdout : null, stderr: body.AttachStderr ? io.streams.stderr : null } } : {}),
        ...(size ? { consoleSize: size } : {}),
      });
    } catch (e) {
      io?.restore();
      throw runError(ctx, e);
    }
    for (const w of handle.warnings) ctx.err.write(`WARNING: ${w}\n`);
    if (f.cidfile) writeFileSync(f.cidfile, handle.id);
    if (f.detach || !handle.exit) {
      ctx.out.write(handle.id + '\n');
      return;
    }
    const id = handle.id;
    const onResize = () => {
      const s = terminalSize();
      if (s) void engine.containers.resize(id, s).catch(() => {});
    };
    if (body.Tty) process.stdout.on('resize', onResize);
    // without a tty, signals the CLI receives go to the container (Docker's --sig-proxy)
    const proxy = (sig: NodeJS.Signals) => void engine.containers.kill(id, { signal: sig }).catch(() => {});
    const proxied = f.sigProxy !== false && !body.Tty;
    if (proxied) for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, proxy);
    try {
      const code = await handle.exit;
      await handle.attached;
      process.exitCode = code;
    } finally {
      io?.restore();
      if (body.Tty) process.stdout.off('resize', onResize);
      if (proxied) for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, proxy);
    }
  },
});

const start = command({
  name: 'start',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  short: 'Start one or more stopped containers',
  flags: {
    attach: flag.bool('attach', 'a', 'Attach STDOUT/STDERR and forward signals'),
    interactive: flag.bool('interactive', 'i', "Attach container's STDIN"),
  },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    if (o.attach || o.interactive) {
      if (names.length > 1) throw new ExitError(1, 'you cannot start and attach multiple containers at once');
      const info = await engine.containers.attachInfo(names[0]!);
      const io = stdioFor({ stdin: !!o.interactive && info.openStdin, tty: info.tty });
      try {
        const size = info.tty ? terminalSize() : undefined;
        const s = await engine.containers.start(info.id, { attach: io.streams, ...(size ? { consoleSize: size } : {}) });
        process.exitCode = (await engine.containers.wait(info.id)).StatusCode;
        await engine.containers.cleanup(info.id);
        await s.attached?.catch(() => {});
      } finally {
        io.restore();
      }
      return;
    }
    await each(names, async (n) => {
      await engine.containers.start(n);
      ctx.out.write(n + '\n');
    });
  },
});

const ps = command({
  name: 'ps',
  usage: '[OPTIONS]',
  short: 'List containers',
  flags: {
    all: flag.bool('all', 'a', 'Show all containers (default shows just running)'),
    filter: flag.list('filter', 'f', 'Filter output based on conditions provided', { typeName: 'filter' }),
    format: flag.string('format', '', 'Pretty-print containers using a Go template'),
    last: flag.int('last', 'n', 'Show n last created containers (includes all states)', { default: -1 }),
    latest: flag.bool('latest', 'l', 'Show the latest created container (includes all states)'),
    noTrunc: flag.bool('no-trunc', '', "Don't truncate output"),
    quiet: flag.bool('quiet', 'q', 'Only display container IDs'),
    size: flag.bool('size', 's', 'Display total file sizes'),
  },
  args: { max: 0 },
  async run(ctx, _args, o) {
    const engine = await ctx.engine();
    const filters = parseFilterArgs(o.filter);
    const limit = o.latest ? 1 : (o.last ?? -1);
    const list = await engine.containers.list({ all: !!o.all, ...(limit > 0 ? { limit } : {}), size: !!o.size, filters });
    const trunc = !o.noTrunc;
    if (o.quiet) {
      for (const c of list) ctx.out.write((trunc ? c.Id.slice(0, 12) : c.Id) + '\n');
      return;
    }
    const rows = psRows(list, { trunc, size: !!o.size });
    const fmt = formatRows(o.format, rows, { ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', RunningFor: 'CREATED', Status: 'STATUS', Ports: 'PORTS', Names: 'NAMES', Size: 'SIZE', CreatedAt: 'CREATED AT', Labels: 'LABELS', Mounts: 'MOUNTS', Networks: 'NETWORKS', State: 'STATE', LocalVolumes: 'LOCAL VOLUMES' });
    if (fmt !== undefined) {
      ctx.out.write(fmt);
      return;
    }
    const head = ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES', ...(o.size ? ['SIZE'] : [])];
    ctx.out.write(table([head, ...rows.map((r) => [r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names, ...(o.size ? [r.Size] : [])])]));
  },
});

const stop = command({
  name: 'stop',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  short: 'Stop one or more running containers',
  flags: { time: flag.int('time', 't', 'Seconds to wait for stop before killing it', { default: 10 }) },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    await each(names, async (n) => {
      await engine.containers.stop(n, o.changed.has('time') ? { timeout: o.time! } : {});
      ctx.out.write(n + '\n');
    });
  },
});

const kill = command({
  name: 'kill',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  short: 'Kill one or more running containers',
  flags: { signal: flag.string('signal', 's', 'Signal to send to the container', { default: 'KILL' }) },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    await each(names, async (n) => {
      await engine.containers.kill(n, { signal: o.signal ?? 'KILL' });
      ctx.out.write(n + '\n');
    });
  },
});

const restart = command({
  name: 'restart',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  short: 'Restart one or more containers',
  flags: { time: flag.int('time', 't', 'Seconds to wait for stop before killing the container', { default: 10 }) },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    await each(names, async (n) => {
      await engine.containers.restart(n, o.changed.has('time') ? { timeout: o.time! } : {});
      ctx.out.write(n + '\n');
    });
  },
});

const simple = (name: 'pause' | 'unpause', short: string) =>
  command({
    name,
    usage: 'CONTAINER [CONTAINER...]',
    short,
    args: { min: 1 },
    async run(ctx, names) {
      const engine = await ctx.engine();
      await each(names, async (n) => {
        await engine.containers[name](n);
        ctx.out.write(n + '\n');
      });
    },
  });

const rm = command({
  name: 'rm',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  short: 'Remove one or more containers',
  flags: {
    force: flag.bool('force', 'f', 'Force the removal of a running container (uses SIGKILL)'),
    volumes: flag.bool('volumes', 'v', 'Remove anonymous volumes associated with the container'),
  },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    await each(names, async (n) => {
      await engine.containers.remove(n, { force: !!o.force, volumes: !!o.volumes });
      ctx.out.write(n + '\n');
    });
  },
});

const logs = command({
  name: 'logs',
  usage: '[OPTIONS] CONTAINER',
  short: 'Fetch the logs of a container',
  flags: {
    follow: flag.bool('follow', 'f', 'Follow log output'),
    since: flag.string('since', '', 'Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)'),
    tail: flag.string('tail', 'n', 'Number of lines to show from the end of the logs', { default: 'all' }),
    timestamps: flag.bool('timestamps', 't', 'Show timestamps'),
    until: flag.string('until', '', 'Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)'),
  },
  args: { min: 1, max: 1 },
  async run(ctx, [name], o) {
    const engine = await ctx.engine();
    const tail = o.tail === 'all' || o.tail === undefined ? undefined : Number(o.tail);
    for await (const l of engine.containers.logs(name!, {
      follow: !!o.follow,
      ...(tail !== undefined && Number.isFinite(tail) && tail >= 0 ? { tail } : {}),
      ...(o.since ? { since: parseTime(o.since) } : {}),
      ...(o.until ? { until: parseTime(o.until) } : {}),
    })) {
      const line = (o.timestamps ? l.time + ' ' : '') + l.data.toString();
      (l.stream === 'stderr' ? process.stderr : process.stdout).write(line);
    }
  },
});

const execFlags = {
  detach: flag.bool('detach', 'd', 'Detached mode: run command in the background'),
  env: flag.list('env', 'e', 'Set environment variables'),
  envFile: flag.list('env-file', '', 'Read in a file of environment variables'),
  interactive: flag.bool('interactive', 'i', 'Keep STDIN open even if not attached'),
  privileged: flag.bool('privileged', '', 'Give extended privileges to the command'),
  tty: flag.bool('tty', 't', 'Allocate a pseudo-TTY'),
  user: flag.string('user', 'u', 'Username or UID (format: <name|uid>[:<group|gid>])'),
  workdir: flag.string('workdir', 'w', 'Working directory inside the container'),
};

/** The exec-create body the docker CLI sends for these flags. */
export function execConfig(cmd: string[], o: FlagValues<typeof execFlags>): ExecConfig {
  const env = [...o.envFile.flatMap(readEnvFile), ...o.env.map((e) => (e.includes('=') ? e : process.env[e] !== undefined ? `${e}=${process.env[e]}` : e))];
  return {
    User: o.user ?? '',
    Privileged: !!o.privileged,
    Tty: !!o.tty,
    AttachStdin: !!o.interactive && !o.detach,
    AttachStderr: !o.detach,
    AttachStdout: !o.detach,
    DetachKeys: '',
    Detach: !!o.detach,
    Env: env,
    WorkingDir: o.workdir ?? '',
    Cmd: cmd,
  };
}

const exec = command({
  name: 'exec',
  usage: '[OPTIONS] CONTAINER COMMAND [ARG...]',
  short: 'Run a command in a running container',
  flags: execFlags,
  args: { min: 2 },
  interspersed: false,
  async run(ctx, [name, ...cmd], o) {
    const engine = await ctx.engine();
    if (o.tty && o.interactive && !o.detach && !process.stdin.isTTY) throw new ExitError(1, 'the input device is not a TTY');
    const { Id } = await engine.containers.createExec(name!, execConfig(cmd, o));
    const io = stdioFor({ stdin: !!o.interactive && !o.detach, tty: !!o.tty });
    try {
      const size = o.tty ? terminalSize() : undefined;
      const r = await engine.containers.startExec(Id, { detach: !!o.detach, streams: io.streams, ...(size ? { consoleSize: size } : {}) });
      if (r.exitCode !== undefined) process.exitCode = r.exitCode;
    } catch (e) {
      if (isEngineError(e) && e.code === 'START_FAILED') {
        process.stderr.write(`${e.message}\n`);
        throw new ExitError((e as unknown as { exitCode?: number }).exitCode ?? 126);
      }
      throw e;
    } finally {
      io.restore();
    }
  },
});

const attach = command({
  name: 'attach',
  usage: '[OPTIONS] CONTAINER',
  short: 'Attach local standard input, output, and error streams to a running container',
  flags: {
    noStdin: flag.bool('no-stdin', '', 'Do not attach STDIN'),
    sigProxy: flag.bool('sig-proxy', '', 'Proxy all received signals to the process', { default: true }),
  },
  args: { min: 1, max: 1 },
  async run(ctx, [name], o) {
    const engine = await ctx.engine();
    const info = await engine.containers.attachInfo(name!);
    if (!info.running) throw new ExitError(1, 'You cannot attach to a stopped container, start it first');
    const io = stdioFor({ stdin: !o.noStdin && info.openStdin, tty: info.tty });
    try {
      const a = await engine.containers.attach(info.id, io.streams);
      await a.done;
      // the detach keys (ctrl-p ctrl-q): the container runs on, as the docker CLI says
      if (a.detached) throw new ExitError(1, 'read escape sequence');
      process.exitCode = (await engine.containers.wait(info.id)).StatusCode;
    } finally {
      io.restore();
    }
  },
});

const wait = command({
  name: 'wait',
  usage: 'CONTAINER [CONTAINER...]',
  short: 'Block until one or more containers stop, then print their exit codes',
  args: { min: 1 },
  async run(ctx, names) {
    const engine = await ctx.engine();
    await each(names, async (n) => {
      ctx.out.write(`${(await engine.containers.wait(n)).StatusCode}\n`);
    });
  },
});

const inspect = command({
  name: 'inspect',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  short: 'Display detailed information on one or more containers',
  flags: {
    format: flag.string('format', 'f', 'Format the output using the given Go template'),
    size: flag.bool('size', 's', 'Display total file sizes'),
  },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    await printInspect(ctx, names, o.format, (n) => engine.containers.inspect(n, { size: !!o.size }));
  },
});

const port = command({
  name: 'port',
  usage: 'CONTAINER [PRIVATE_PORT[/PROTO]]',
  short: 'List port mappings or a specific mapping for the container',
  args: { min: 1, max: 2 },
  async run(ctx, [name, filter]) {
    const engine = await ctx.engine();
    const lines = await engine.containers.portLines(name!, filter);
    if (filter && lines.length === 0) throw new ExitError(1, `Error: No public port '${filter.includes('/') ? filter : filter + '/tcp'}' published for ${name}`);
    for (const l of lines) ctx.out.write(l + '\n');
  },
});

const rename = command({
  name: 'rename',
  usage: 'CONTAINER NEW_NAME',
  short: 'Rename a container',
  args: { min: 2, max: 2 },
  async run(ctx, [name, nn]) {
    await (await ctx.engine()).containers.rename(name!, nn!);
  },
});

const top = command({
  name: 'top',
  usage: 'CONTAINER [ps OPTIONS]',
  short: 'Display the running processes of a container',
  args: { min: 1 },
  interspersed: false,
  async run(ctx, [name, ...psArgs]) {
    const engine = await ctx.engine();
    const t = await engine.containers.top(name!, psArgs.length ? psArgs.join(' ') : undefined);
    ctx.out.write(table([t.Titles, ...t.Processes]));
  },
});

const prune = command({
  name: 'prune',
  usage: '[OPTIONS]',
  short: 'Remove all stopped containers',
  flags: {
    filter: flag.list('filter', '', 'Provide filter values (e.g. \'until=<timestamp>\')', { typeName: 'filter' }),
    force: flag.bool('force', 'f', 'Do not prompt for confirmation'),
  },
  args: { max: 0 },
  async run(ctx, _args, o) {
    const engine = await ctx.engine();
    if (!o.force && !(await confirm('WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] '))) return;
    const r = await engine.containers.prune({ filters: parseFilterArgs(o.filter) });
    if (r.ContainersDeleted.length) ctx.out.write('Deleted Containers:\n' + r.ContainersDeleted.join('\n') + '\n\n');
    ctx.out.write(`Total reclaimed space: ${humanSize(r.SpaceReclaimed, 4)}\n`); // Docker: units.HumanSize, 4 digits
  },
});

const diff = command({
  name: 'diff',
  usage: 'CONTAINER',
  short: "Inspect changes to files or directories on a container's filesystem",
  args: { min: 1, max: 1 },
  async run(ctx, [name]) {
    const engine = await ctx.engine();
    const letter = ['C', 'A', 'D'];
    ctx.out.write((await engine.containers.changes(name!)).map((ch) => `${letter[ch.Kind]} ${ch.Path}\n`).join(''));
  },
});

const commitFlags = {
  author: flag.string('author', 'a', 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
  change: flag.list('change', 'c', 'Apply Dockerfile instruction to the created image'),
  message: flag.string('message', 'm', 'Commit message'),
  pause: flag.bool('pause', 'p', 'Pause container during commit', { default: true }),
};

/** What the docker CLI asks the daemon to commit: the repository and tag apart, :latest by default. */
export function commitOptions(ref: string | undefined, o: FlagValues<typeof commitFlags>): CommitOptions {
  let repo = '';
  let tag = '';
  if (ref) {
    const r = parseReference(ref);
    if (r.digest) throw new ExitError(1, `refusing to create a tag with a digest reference`);
    repo = r.familiarName;
    tag = r.tag ?? 'latest';
  }
  return { ...(repo ? { repo, tag } : {}), comment: o.message ?? '', author: o.author ?? '', changes: o.change, pause: o.pause !== false };
}

const commit = command({
  name: 'commit',
  usage: '[OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
  short: "Create a new image from a container's changes",
  flags: commitFlags,
  args: { min: 1, max: 2 },
  async run(ctx, [name, ref], o) {
    const engine = await ctx.engine();
    const r = await engine.containers.commit(name!, commitOptions(ref, o));
    ctx.out.write(r.Id + '\n');
  },
});

/** `CONTAINER:PATH` → its parts; a path with a slash before the colon is a local path (docker's rule). */
function splitCpArg(x: string): { container: string; path: string } | undefined {
  const i = x.indexOf(':');
  if (i <= 0 || x.slice(0, i).includes('/')) return undefined;
  return { container: x.slice(0, i), path: x.slice(i + 1) };
}

const cp = command({
  name: 'cp',
  usage: '[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tlayerbox cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
  short: 'Copy files/folders between a container and the local filesystem',
  flags: {
    archive: flag.bool('archive', 'a', 'Archive mode (copy all uid/gid information)'),
    followLink: flag.bool('follow-link', 'L', 'Always follow symbol link in SRC_PATH'),
  },
  args: { min: 2, max: 2 },
  async run(ctx, [src, dest], o) {
    const engine = await ctx.engine();
    const s = splitCpArg(src!);
    const d = splitCpArg(dest!);
    if (s && d) throw new ExitError(1, 'copying between containers is not supported');
    if (!s && !d) throw new ExitError(1, 'must specify at least one container source');
    if (s) await engine.containers.copyFrom(s.container, s.path, dest === '-' ? process.stdout : dest!, { followLink: !!o.followLink });
    else if (src === '-') await engine.containers.copyArchiveTo(d!.container, process.stdin, d!.path, { archive: !!o.archive });
    else await engine.containers.copyTo(d!.container, src!, d!.path, { archive: !!o.archive, followLink: !!o.followLink });
  },
});

const exportCmd = command({
  name: 'export',
  usage: '[OPTIONS] CONTAINER',
  short: "Export a container's filesystem as a tar archive",
  flags: { output: flag.string('output', 'o', 'Write to a file, instead of STDOUT') },
  args: { min: 1, max: 1 },
  async run(ctx, [name], o) {
    const engine = await ctx.engine();
    if (!o.output && process.stdout.isTTY) throw new ExitError(1, 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
    if (o.output) {
      const out = createWriteStream(o.output, { mode: 0o600 });
      await engine.containers.export(name!, out);
      await new Promise<void>((res, rej) => out.end(() => res()).on('error', rej));
    } else await engine.containers.export(name!, process.stdout);
  },
});

/** conmon's exit command of containers made before the exit hook existed (not for users). */
const cleanup = command({
  name: 'cleanup',
  short: 'Release the resources of an exited container',
  hidden: true,
  args: { min: 1, max: 1 },
  async run(ctx, [id]) {
    // possibly after the store was deleted (a test's temporary root): nothing to clean then
    const root = (ctx.globals.root as string | undefined) ?? defaultRoot();
    if (!existsSync(root)) return;
    await (await ctx.engine()).containers.cleanup(id!);
  },
});

const ls = command({ ...ps, name: 'ls', aliases: ['ps', 'list'] });

export const containerCommands: CommandSpec<any>[] = [attach, commit, cp, create, diff, exec, exportCmd, kill, logs, simple('pause', 'Pause all processes within one or more containers'), port, ps, rename, restart, rm, run, start, stop, top, simple('unpause', 'Unpause all processes within one or more containers'), wait];

export const containerGroup = command({
  name: 'container',
  short: 'Manage containers',
  commands: [attach, commit, cp, create, diff, exec, exportCmd, inspect, kill, logs, ls, simple('pause', 'Pause all processes within one or more containers'), port, prune, rename, restart, rm, run, start, stop, top, simple('unpause', 'Unpause all processes within one or more containers'), wait, cleanup],
});
