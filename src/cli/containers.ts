/** Container commands: create, run, start, ps, stop, kill, restart, pause, unpause, rm, logs, exec, attach, wait, inspect, port, rename, top, prune, volume. */
import { Command } from 'commander';
import { createWriteStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { defaultRoot } from '../engine/engine.js';
import { EngineError, isEngineError } from '../errors/index.js';
import type { AttachStreams } from '../runtime/index.js';
import type { ContainerRecord } from '../container/types.js';
import type { ContainerManager } from '../container/manager.js';
import type { Volume } from '../container/volumes.js';
import type { NetworkAttachment } from '../network/index.js';
import { ExitError, type Ctx } from './ctx.js';
import { formatRows, goTime, humanDuration, humanSize, since, table } from './format.js';
import { addRunFlags, toCreateRequest, type RunFlags } from './runflags.js';
import { printInspect } from './images.js';
import { ProgressBoard } from './progress.js';
import type { PullEvent } from '../image/pull.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

function commandString(c: ContainerRecord): string {
  const parts = [...(c.config.Entrypoint ?? []), ...(c.config.Cmd ?? [])];
  return parts.join(' ');
}

/** Docker's ps STATUS column. */
function statusText(c: ContainerRecord, nowMs = Date.now()): string {
  const s = c.state;
  const ago = (iso: string) => humanDuration(nowMs - Date.parse(iso));
  switch (s.Status) {
    case 'running':
      return `Up ${ago(s.StartedAt)}`;
    case 'paused':
      return `Up ${ago(s.StartedAt)} (Paused)`;
    case 'exited':
      return `Exited (${s.ExitCode}) ${ago(s.FinishedAt)} ago`;
    case 'created':
      return 'Created';
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    default:
      return s.Status;
  }
}

function portsText(net: NetworkAttachment | undefined, c: ContainerRecord): string {
  const out: string[] = [];
  const published = new Set<string>();
  for (const p of net?.ports ?? []) {
    published.add(`${p.containerPort}/${p.proto}`);
    out.push(`${p.hostIP || '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.proto}`);
  }
  for (const e of Object.keys(c.config.ExposedPorts ?? {})) if (!published.has(e)) out.push(e);
  return out.join(', ');
}



/** Docker's CLI: daemon-side errors of `run` exit 125. */
class RunError extends ExitError {}

function terminalSize(): { height: number; width: number } | undefined {
  return process.stdout.isTTY ? { height: process.stdout.rows, width: process.stdout.columns } : undefined;
}

function quoteCommand(c: ContainerRecord, trunc: boolean): string {
  let s = commandString(c);
  if (trunc && [...s].length > 20) s = [...s].slice(0, 19).join('') + '…';
  return JSON.stringify(s);
}

/** Streams for an attached container: raw stdin with -t, resize on SIGWINCH. */
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

function pullHooks() {
  return (name: string) => {
    process.stderr.write(`Unable to find image '${name.includes(':') || name.includes('@') ? name : name + ':latest'}' locally\n`);
    const board = new ProgressBoard(process.stderr.isTTY ? 'tty' : 'plain', process.stderr);
    return {
      onEvent: (e: PullEvent) => {
        if (e.type === 'pulling-from') board.log(`${e.tag}: Pulling from ${e.repository}`);
        else if (e.type === 'layer') board.set(e.id, e.status, { final: true });
        else if (e.type === 'digest') board.log(`Digest: ${e.digest}`);
      },
      done: () => board.flush(),
    };
  };
}

export function registerContainerCommands(ctx: Ctx): void {
  const p = ctx.program;
  const container = p.command('container').description('Manage containers');

  // ---------------------------------------------------------------- create / run
  const create = (cmd: Command) =>
    addRunFlags(cmd.description('Create a new container').argument('<image>').argument('[command...]').passThroughOptions(), { run: false }).action(async (image: string, args: string[], f: RunFlags) => {
      const engine = await ctx.engine();
      const cm = await engine.containers();
      engine.onMissingImage = pullHooks();
      const c = await wrap125(() => cm.create(toCreateRequest(image, args, f)));
      ctx.out.write(c.id + '\n');
    });
  create(p.command('create'));
  create(container.command('create'));

  const run = (cmd: Command) =>
    addRunFlags(cmd.description('Run a command in a new container').argument('<image>').argument('[command...]').passThroughOptions(), { run: true }).action(async (image: string, args: string[], f: RunFlags) => {
      const engine = await ctx.engine();
      const cm = await engine.containers();
      engine.onMissingImage = pullHooks();
      if (f.tty && !process.stdin.isTTY && f.interactive) throw new RunError(1, 'the input device is not a TTY');
      const req = toCreateRequest(image, args, f);
      const c = await wrap125(() => cm.create(req));
      if (f.detach) {
        await startOrRemove(cm, c.id, {});
        ctx.out.write(c.id + '\n');
        return;
      }
      const io = stdioFor({ stdin: !!f.interactive, tty: !!f.tty });
      const size = f.tty ? terminalSize() : undefined;
      let started: Awaited<ReturnType<ContainerManager['start']>>;
      try {
        started = await startOrRemove(cm, c.id, { attach: io.streams, ...(size ? { consoleSize: size } : {}) });
      } catch (e) {
        io.restore();
        throw e;
      }
      const onResize = () => {
        const s = terminalSize();
        if (s) void cm.resize(c.id, s.height, s.width);
      };
      if (f.tty) process.stdout.on('resize', onResize);
      // without a tty, signals the CLI receives go to the container (Docker's --sig-proxy)
      const proxy = (sig: NodeJS.Signals) => void cm.kill(c.id, sig).catch(() => {});
      if (!f.tty) for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, proxy);
      try {
        const code = await cm.waitAndCleanup(c.id);
        await started.attached?.catch(() => {});
        process.exitCode = code;
      } finally {
        io.restore();
        if (f.tty) process.stdout.off('resize', onResize);
        for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, proxy);
      }
    });
  run(p.command('run'));
  run(container.command('run'));

  // ---------------------------------------------------------------- start
  const start = (cmd: Command) =>
    cmd
      .description('Start one or more stopped containers')
      .argument('<container...>')
      .option('-a, --attach', 'attach STDOUT/STDERR and forward signals')
      .option('-i, --interactive', "attach container's STDIN")
      .action(async (names: string[], o: { attach?: boolean; interactive?: boolean }) => {
        const engine = await ctx.engine();
        const cm = await engine.containers();
        if (o.attach || o.interactive) {
          if (names.length > 1) throw new ExitError(1, 'Error: you cannot start and attach multiple containers at once');
          const c = await cm.get(names[0]!);
          const io = stdioFor({ stdin: !!o.interactive && !!c.config.OpenStdin, tty: !!c.config.Tty });
          try {
            const s = await cm.start(names[0]!, { attach: io.streams, ...(c.config.Tty && terminalSize() ? { consoleSize: terminalSize()! } : {}) });
            process.exitCode = await cm.waitAndCleanup(s.c.id);
            await s.attached?.catch(() => {});
          } finally {
            io.restore();
          }
          return;
        }
        await each(names, async (n) => {
          await cm.start(n);
          ctx.out.write(n + '\n');
        });
      });
  start(p.command('start'));
  start(container.command('start'));

  // ---------------------------------------------------------------- ps
  const ps = (cmd: Command) =>
    cmd
      .description('List containers')
      .option('-a, --all', 'show all containers (default shows just running)')
      .option('-q, --quiet', 'only display container IDs')
      .option('--no-trunc', "don't truncate output")
      .option('-n, --last <n>', 'show n last created containers (includes all states)')
      .option('-l, --latest', 'show the latest created container (includes all states)')
      .option('-s, --size', 'display total file sizes')
      .option('-f, --filter <filter>', 'filter output based on conditions provided', collect, [])
      .option('--format <format>', 'pretty-print containers using a Go template, or json')
      .action(async (o: { all?: boolean; quiet?: boolean; trunc: boolean; last?: string; latest?: boolean; size?: boolean; filter: string[]; format?: string }) => {
        const engine = await ctx.engine();
        const cm = await engine.containers();
        let list = await cm.list();
        const all = o.all || o.last !== undefined || o.latest;
        const filters = o.filter.map((f) => {
          const i = f.indexOf('=');
          if (i < 0) throw new ExitError(1, `Error: bad format of filter (expected name=value)`);
          return [f.slice(0, i), f.slice(i + 1)] as const;
        });
        if (!all && !filters.some(([k]) => k === 'status')) list = list.filter((c) => c.state.Running);
        for (const [k, v] of filters) {
          list = list.filter((c) => {
            switch (k) {
              case 'status':
                return c.state.Status === v;
              case 'name':
                return c.name.includes(v);
              case 'id':
                return c.id.startsWith(v);
              case 'ancestor':
                return c.imageName === v || c.imageId === v || c.imageId.slice(7).startsWith(v);
              case 'label': {
                const [lk, lv] = v.split('=');
                const labels = c.config.Labels ?? {};
                return lk! in labels && (lv === undefined || labels[lk!] === lv);
              }
              case 'exited':
                return c.state.Status === 'exited' && String(c.state.ExitCode) === v;
              default:
                throw new ExitError(1, `Error: invalid filter '${k}'`);
            }
          });
        }
        if (o.latest) list = list.slice(0, 1);
        if (o.last !== undefined) list = list.slice(0, Number(o.last));
        const id = (x: string) => (o.trunc ? x.slice(0, 12) : x);
        if (o.quiet) {
          for (const c of list) ctx.out.write(id(c.id) + '\n');
          return;
        }
        const rows: Record<string, unknown>[] = [];
        for (const c of list) {
          const net = c.state.Running ? await cm.attachment(c.id) : undefined;
          rows.push({
            Command: quoteCommand(c, o.trunc),
            CreatedAt: goTime(c.created),
            ID: id(c.id),
            Image: ((n) => (n === c.imageId && o.trunc ? n.slice(7, 19) : n))(engine.images.displayName(c.imageName, c.imageId)),
            Labels: Object.entries(c.config.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
            LocalVolumes: '0',
            Mounts: c.hostConfig.Mounts.map((m) => m.Source || m.Target).join(','),
            Names: c.name,
            Networks: c.hostConfig.NetworkMode,
            Ports: portsText(net, c),
            RunningFor: since(c.created),
            Size: o.size ? humanSize(engine.snapshots.usage(c.snapshot).size) : '0B',
            State: c.state.Status,
            Status: statusText(c),
          });
        }
        const fmt = formatRows(o.format, rows, { ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', RunningFor: 'CREATED', Status: 'STATUS', Ports: 'PORTS', Names: 'NAMES' });
        if (fmt !== undefined) {
          ctx.out.write(fmt);
          return;
        }
        const head = ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES', ...(o.size ? ['SIZE'] : [])];
        ctx.out.write(table([head, ...rows.map((r) => [r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names, ...(o.size ? [r.Size] : [])].map(String))]));
      });
  ps(p.command('ps'));
  ps(container.command('ls').alias('list').alias('ps'));

  // ---------------------------------------------------------------- stop / kill / restart / pause / unpause / rm
  const simple = (name: string, desc: string, fn: (n: string, o: Record<string, string | boolean | undefined>) => Promise<void>, extra?: (c: Command) => Command) => {
    for (const parent of [p, container]) {
      let cmd = parent.command(name).description(desc).argument('<container...>');
      if (extra) cmd = extra(cmd);
      cmd.action(async (names: string[], o: Record<string, string | boolean | undefined>) => {
        await ctx.engine();
        await each(names, async (n) => {
          await fn(n, o);
          ctx.out.write(n + '\n');
        });
      });
    }
  };
  simple('stop', 'Stop one or more running containers', async (n, o) => void (await (await (await ctx.engine()).containers()).stop(n, o.time !== undefined ? Number(o.time) : undefined)), (c) => c.option('-t, --time <seconds>', 'seconds to wait for stop before killing it'));
  simple('kill', 'Kill one or more running containers', async (n, o) => (await (await ctx.engine()).containers()).kill(n, (o.signal as string) ?? 'SIGKILL'), (c) => c.option('-s, --signal <signal>', 'signal to send to the container', 'SIGKILL'));
  simple(
    'restart',
    'Restart one or more containers',
    async (n, o) => {
      const e = await (await ctx.engine()).containers();
      await e.stop(n, o.time !== undefined ? Number(o.time) : undefined);
      await e.start(n);
    },
    (c) => c.option('-t, --time <seconds>', 'seconds to wait for stop before killing the container'),
  );
  simple('pause', 'Pause all processes within one or more containers', async (n) => (await (await ctx.engine()).containers()).pause(n));
  simple('unpause', 'Unpause all processes within one or more containers', async (n) => (await (await ctx.engine()).containers()).unpause(n));
  for (const parent of [p, container]) {
    parent
      .command(parent === p ? 'rm' : 'rm')
      .description('Remove one or more containers')
      .argument('<container...>')
      .option('-f, --force', 'force the removal of a running container (uses SIGKILL)')
      .option('-v, --volumes', 'remove anonymous volumes associated with the container')
      .action(async (names: string[], o: { force?: boolean; volumes?: boolean }) => {
        const engine = await ctx.engine();
        const cm = await engine.containers();
        await each(names, async (n) => {
          await cm.remove(n, { force: o.force, volumes: o.volumes });
          ctx.out.write(n + '\n');
        });
      });
  }

  // ---------------------------------------------------------------- logs
  const logs = (cmd: Command) =>
    cmd
      .description('Fetch the logs of a container')
      .argument('<container>')
      .option('-f, --follow', 'follow log output')
      .option('-n, --tail <n>', 'number of lines to show from the end of the logs', 'all')
      .option('-t, --timestamps', 'show timestamps')
      .option('--since <time>', 'show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)')
      .option('--until <time>', 'show logs before a timestamp or relative')
      .action(async (name: string, o: { follow?: boolean; tail: string; timestamps?: boolean; since?: string; until?: string }) => {
        const engine = await ctx.engine();
        const cm = await engine.containers();
        const tail = o.tail === 'all' ? undefined : Number(o.tail);
        for await (const l of cm.logs(name, { follow: o.follow, ...(tail !== undefined && tail >= 0 ? { tail } : {}), ...(o.since ? { since: parseTime(o.since) } : {}), ...(o.until ? { until: parseTime(o.until) } : {}) })) {
          const line = (o.timestamps ? l.time + ' ' : '') + l.data.toString();
          (l.stream === 'stderr' ? process.stderr : process.stdout).write(line);
        }
      });
  logs(p.command('logs'));
  logs(container.command('logs'));

  // ---------------------------------------------------------------- exec
  const exec = (cmd: Command) =>
    cmd
      .description('Run a command in a running container')
      .argument('<container>')
      .argument('<command...>')
      .passThroughOptions()
      .option('-i, --interactive', 'keep STDIN open even if not attached')
      .option('-t, --tty', 'allocate a pseudo-TTY')
      .option('-d, --detach', 'detached mode: run command in the background')
      .option('-e, --env <env>', 'set environment variables', collect, [])
      .option('-w, --workdir <dir>', 'working directory inside the container')
      .option('-u, --user <user>', 'username or UID (format: <name|uid>[:<group|gid>])')
      .option('--privileged', 'give extended privileges to the command')
      .action(async (name: string, args: string[], o: { interactive?: boolean; tty?: boolean; detach?: boolean; env: string[]; workdir?: string; user?: string; privileged?: boolean }) => {
        const engine = await ctx.engine();
        const cm = await engine.containers();
        const io = stdioFor({ stdin: !!o.interactive, tty: !!o.tty });
        try {
          const size = o.tty ? terminalSize() : undefined;
          const r = await cm.exec(name, {
            args,
            env: o.env.map((e) => (e.includes('=') ? e : `${e}=${process.env[e] ?? ''}`)),
            ...(o.workdir ? { workdir: o.workdir } : {}),
            ...(o.user ? { user: o.user } : {}),
            tty: !!o.tty,
            privileged: !!o.privileged,
            detach: !!o.detach,
            streams: io.streams,
            ...(size ? { consoleSize: size } : {}),
          });
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
      });
  exec(p.command('exec'));
  exec(container.command('exec'));

  // ---------------------------------------------------------------- attach / wait
  const attach = (cmd: Command) =>
    cmd
      .description("Attach local standard input, output, and error streams to a running container")
      .argument('<container>')
      .option('--no-stdin', 'do not attach STDIN')
      .action(async (name: string, o: { stdin: boolean }) => {
        const engine = await ctx.engine();
        const cm = await engine.containers();
        const c = await cm.get(name);
        const io = stdioFor({ stdin: o.stdin && !!c.config.OpenStdin, tty: !!c.config.Tty });
        try {
          const a = await cm.attach(name, io.streams);
          await a.done;
          process.exitCode = await cm.wait(c.id);
        } finally {
          io.restore();
        }
      });
  attach(p.command('attach'));
  attach(container.command('attach'));

  const wait = (cmd: Command) =>
    cmd
      .description('Block until one or more containers stop, then print their exit codes')
      .argument('<container...>')
      .action(async (names: string[]) => {
        const engine = await ctx.engine();
        const cm = await engine.containers();
        await each(names, async (n) => {
          ctx.out.write(`${await cm.wait(n)}\n`);
        });
      });
  wait(p.command('wait'));
  wait(container.command('wait'));

  // ---------------------------------------------------------------- inspect (containers)
  container
    .command('inspect')
    .description('Display detailed information on one or more containers')
    .argument('<container...>')
    .option('-f, --format <format>', 'format the output using a Go template')
    .action(async (names: string[], o: { format?: string }) => {
      const engine = await ctx.engine();
      const cm = await engine.containers();
      await printInspect(ctx, names, o.format, (n) => cm.inspect(n));
    });

  // ---------------------------------------------------------------- port / rename / top / prune
  const port = (cmd: Command) =>
    cmd
      .description('List port mappings or a specific mapping for the container')
      .argument('<container>')
      .argument('[port]', 'PRIVATE_PORT[/PROTO]')
      .action(async (name: string, filter: string | undefined) => {
        const engine = await ctx.engine();
        const cm = await engine.containers();
        const lines = await cm.ports(name, filter);
        if (filter && lines.length === 0) throw new ExitError(1, `Error: No public port '${filter.includes('/') ? filter : filter + '/tcp'}' published for ${name}`);
        for (const l of lines) ctx.out.write(l + '\n');
      });
  port(p.command('port'));
  port(container.command('port'));

  const rename = (cmd: Command) =>
    cmd
      .description('Rename a container')
      .argument('<container>')
      .argument('<new-name>')
      .action(async (name: string, nn: string) => {
        (await (await ctx.engine()).containers()).rename(name, nn);
      });
  rename(p.command('rename'));
  rename(container.command('rename'));

  const top = (cmd: Command) =>
    cmd
      .description('Display the running processes of a container')
      .argument('<container>')
      .argument('[ps-options...]')
      .passThroughOptions()
      .action(async (name: string, psArgs: string[]) => {
        const engine = await ctx.engine();
        const cm = await engine.containers();
        const t = await cm.top(name, psArgs.length ? psArgs : undefined);
        ctx.out.write(table([t.titles, ...t.processes]));
      });
  top(p.command('top'));
  top(container.command('top'));

  container
    .command('prune')
    .description('Remove all stopped containers')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (o: { force?: boolean }) => {
      const engine = await ctx.engine();
      const cm = await engine.containers();
      if (!o.force) {
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        const a = await rl.question('WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ');
        rl.close();
        if (!/^y(es)?$/i.test(a.trim())) return;
      }
      const r = await cm.prune();
      if (r.removed.length) ctx.out.write('Deleted Containers:\n' + r.removed.join('\n') + '\n\n');
      ctx.out.write('Total reclaimed space: 0B\n');
    });

  // conmon runs this when a container exits (not for users; hidden from help)
  container
    .command('cleanup', { hidden: true })
    .argument('<container>')
    .action(async (id: string) => {
      // run by conmon, possibly after the store was deleted (a test's temporary root):
      // nothing to clean then, and opening the engine must not create the root again
      const g = ctx.program.opts<{ root?: string }>();
      if (!existsSync(g.root ?? defaultRoot())) return;
      await (await (await ctx.engine()).containers()).cleanup(id);
    });

  // ---------------------------------------------------------------- diff / commit
  const diff = (cmd: Command) =>
    cmd
      .description("Inspect changes to files or directories on a container's filesystem")
      .argument('<container>')
      .action(async (name: string) => {
        const engine = await ctx.engine();
        ctx.out.write((await engine.diff(name)).map((ch) => `${ch.kind} ${ch.path}\n`).join(""));
      });
  diff(p.command('diff'));
  diff(container.command('diff'));

  const commit = (cmd: Command) =>
    cmd
      .description("Create a new image from a container's changes")
      .argument('<container>')
      .argument('[repository]', 'REPOSITORY[:TAG]')
      .option('-a, --author <author>', 'author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
      .option('-m, --message <message>', 'commit message')
      .option('-c, --change <instruction>', 'apply Dockerfile instruction to the created image', collect, [])
      .option('-p, --pause [bool]', 'pause container during commit', 'true')
      .action(async (name: string, repo: string | undefined, o: { author?: string; message?: string; change: string[]; pause: string | boolean }) => {
        const engine = await ctx.engine();
        const pause = !(o.pause === 'false' || o.pause === false || o.pause === '0');
        const r = await engine.commit(name, { ...(o.author ? { author: o.author } : {}), ...(o.message ? { message: o.message } : {}), changes: o.change, pause, ...(repo ? { reference: repo } : {}) });
        ctx.out.write(r.id + '\n');
      });
  commit(p.command('commit'));
  commit(container.command('commit'));

  // ---------------------------------------------------------------- cp / export
  const cp = (cmd: Command) =>
    cmd
      .description('Copy files/folders between a container and the local filesystem (- for a tar stream)')
      .argument('<src>', 'CONTAINER:SRC_PATH or SRC_PATH|-')
      .argument('<dest>', 'DEST_PATH|- or CONTAINER:DEST_PATH')
      .option('-a, --archive', 'archive mode (copy all uid/gid information)')
      .action(async (src: string, dest: string, o: { archive?: boolean }) => {
        const engine = await ctx.engine();
        const cm = await engine.containers();
        const split = (x: string) => {
          const i = x.indexOf(':');
          // a path with a slash before the colon is a local path (docker's rule)
          if (i <= 0 || x.slice(0, i).includes('/')) return undefined;
          return { container: x.slice(0, i), path: x.slice(i + 1) };
        };
        const s = split(src);
        const d = split(dest);
        if (s && d) throw new ExitError(1, 'Error: copying between containers is not supported');
        if (!s && !d) throw new ExitError(1, 'Error: must specify at least one container source');
        if (s) {
          if (dest === '-') await cm.copyFrom(s.container, s.path, process.stdout, o);
          else await cm.copyFrom(s.container, s.path, dest, o);
        } else {
          if (src === '-') await cm.copyArchiveTo(d!.container, process.stdin, d!.path, o);
          else await cm.copyTo(d!.container, src, d!.path, o);
        }
      });
  cp(p.command('cp'));
  cp(container.command('cp'));

  const exportCmd = (cmd: Command) =>
    cmd
      .description("Export a container's filesystem as a tar archive")
      .argument('<container>')
      .option('-o, --output <file>', 'write to a file, instead of STDOUT')
      .action(async (name: string, o: { output?: string }) => {
        const engine = await ctx.engine();
        const cm = await engine.containers();
        if (!o.output && process.stdout.isTTY) throw new ExitError(1, 'Error: cowardly refusing to save to a terminal. Use the -o flag or redirect');
        if (o.output) {
          const out = createWriteStream(o.output, { mode: 0o600 });
          await cm.export(name, out);
          await new Promise<void>((res, rej) => out.end(() => res()).on('error', rej));
        } else await cm.export(name, process.stdout);
      });
  exportCmd(p.command('export'));
  exportCmd(container.command('export'));

  // ---------------------------------------------------------------- volumes
  const volume = p.command('volume').description('Manage volumes');
  volume
    .command('create')
    .description('Create a volume')
    .argument('[name]')
    .option('--label <label>', 'set metadata for a volume', collect, [])
    .action(async (name: string | undefined, o: { label: string[] }) => {
      const engine = await ctx.engine();
      const cm = await engine.containers();
      const labels = Object.fromEntries(o.label.map((l) => [l.split('=')[0]!, l.split('=').slice(1).join('=')]));
      ctx.out.write(cm.volumes.create(name, labels).Name + '\n');
    });
  volume
    .command('ls')
    .alias('list')
    .description('List volumes')
    .option('-q, --quiet', 'only display volume names')
    .option('--format <format>', 'pretty-print volumes using a Go template, or json')
    .action(async (o: { quiet?: boolean; format?: string }) => {
      const engine = await ctx.engine();
      const cm = await engine.containers();
      const vols = cm.volumes.list();
      if (o.quiet) {
        for (const v of vols) ctx.out.write(v.Name + '\n');
        return;
      }
      const rows = vols.map((v) => ({ Driver: v.Driver, Name: v.Name, Mountpoint: v.Mountpoint, Scope: v.Scope, Labels: Object.entries(v.Labels).map(([k, x]) => `${k}=${x}`).join(',') }));
      const fmt = formatRows(o.format, rows, { Driver: 'DRIVER', Name: 'VOLUME NAME' });
      if (fmt !== undefined) ctx.out.write(fmt);
      else ctx.out.write(table([['DRIVER', 'VOLUME NAME'], ...rows.map((r) => [r.Driver, r.Name])]));
    });
  volume
    .command('inspect')
    .description('Display detailed information on one or more volumes')
    .argument('<volume...>')
    .option('-f, --format <format>', 'format the output using a Go template')
    .action(async (names: string[], o: { format?: string }) => {
      const engine = await ctx.engine();
      const cm = await engine.containers();
      await printInspect(ctx, names, o.format, async (n) => {
        const v: Partial<Volume> = { ...cm.volumes.get(n) };
        delete v.anonymous;
        return v as Record<string, unknown>;
      });
    });
  volume
    .command('rm')
    .alias('remove')
    .description('Remove one or more volumes')
    .argument('<volume...>')
    .option('-f, --force', 'force the removal of one or more volumes')
    .action(async (names: string[], o: { force?: boolean }) => {
      const engine = await ctx.engine();
      const cm = await engine.containers();
      await each(names, async (n) => {
        await cm.volumes.remove(n, { force: o.force });
        ctx.out.write(n + '\n');
      });
    });
  volume
    .command('prune')
    .description('Remove unused local volumes')
    .option('-a, --all', 'remove all unused volumes, not just anonymous ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (o: { all?: boolean; force?: boolean }) => {
      const engine = await ctx.engine();
      const cm = await engine.containers();
      const r = await cm.volumes.prune({ all: o.all });
      if (r.removed.length) ctx.out.write('Deleted Volumes:\n' + r.removed.join('\n') + '\n\n');
      ctx.out.write(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
    });
}

/** Runs `fn` for every name; prints each failure and exits 1 at the end if any failed (Docker's multi-target behaviour). */
async function each(names: string[], fn: (n: string) => Promise<void>): Promise<void> {
  let failed = 0;
  for (const n of names) {
    try {
      await fn(n);
    } catch (e) {
      if (!isEngineError(e)) throw e;
      failed++;
      process.stderr.write(`Error response from daemon: ${e.describe()}\n`);
    }
  }
  if (failed) throw new ExitError(1);
}

/** Errors before the container runs: Docker's `run`/`create` exit 125 (126/127 for an unrunnable command). */
async function wrap125<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isEngineError(e)) {
      const code = (e as unknown as { exitCode?: number }).exitCode ?? 125;
      throw new ExitError(code, `layerbox: Error response from daemon: ${e.describe()}.\nSee 'layerbox run --help'.`);
    }
    throw e;
  }
}

async function startOrRemove(cm: ContainerManager, id: string, opts: Parameters<ContainerManager['start']>[1]) {
  try {
    return await cm.start(id, opts);
  } catch (e) {
    // `run` that cannot start leaves nothing behind
    await cm.remove(id, { force: true, volumes: true }).catch(() => {});
    return wrap125(() => Promise.reject(e));
  }
}

function parseTime(s: string): number {
  const rel = /^(\d+)([smhd])$/.exec(s);
  if (rel) return Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new EngineError('invalid-argument', 'BAD_TIME', `invalid time value ${JSON.stringify(s)}`);
  return t;
}

