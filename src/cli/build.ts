/** `build` and `builder prune`: the docker CLI's flags over engine.build. */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { confirm } from './prompt.js';
import { isAbsolute, relative, resolve } from 'node:path';
import type { ImageBuildInput, ImageBuildOptions, ProgressMessage } from '../engine/index.js';
import { isEngineError } from '../errors/index.js';
import { command } from './command.js';
import { ExitError } from './ctx.js';
import { flag } from './flags.js';
import { humanSize } from './format.js';

function kv(list: string[], env: boolean): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const s of list) {
    const i = s.indexOf('=');
    if (i >= 0) out[s.slice(0, i)] = s.slice(i + 1);
    else out[s] = env ? (process.env[s] ?? null) : '';
  }
  return out;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const build = command({
  name: 'build',
  usage: '[OPTIONS] PATH | URL | -',
  short: 'Build an image from a Dockerfile',
  flags: {
    addHost: flag.list('add-host', '', 'Add a custom host-to-IP mapping (host:ip)', { typeName: 'list' }),
    buildArg: flag.list('build-arg', '', 'Set build-time variables', { typeName: 'list' }),
    file: flag.string('file', 'f', "Name of the Dockerfile (Default is 'PATH/Dockerfile')"),
    forceRm: flag.bool('force-rm', '', 'Always remove intermediate containers'),
    iidfile: flag.string('iidfile', '', 'Write the image ID to the file'),
    label: flag.list('label', '', 'Set metadata for an image', { typeName: 'list' }),
    network: flag.string('network', '', 'Set the networking mode for the RUN instructions during build', { default: 'default' }),
    noCache: flag.bool('no-cache', '', 'Do not use cache when building the image'),
    platform: flag.string('platform', '', 'Set platform if server is multi-platform capable'),
    progress: flag.string('progress', '', 'Set type of progress output (auto, plain, tty)', { default: 'auto' }),
    pull: flag.bool('pull', '', 'Always attempt to pull a newer version of the image'),
    quiet: flag.bool('quiet', 'q', 'Suppress the build output and print image ID on success'),
    rm: flag.bool('rm', '', 'Remove intermediate containers after a successful build', { default: true }),
    tag: flag.list('tag', 't', "Name and optionally a tag in the 'name:tag' format", { typeName: 'list' }),
    target: flag.string('target', '', 'Set the target build stage to build.'),
  },
  args: { min: 1, max: 1 },
  async run(ctx, args, o) {
    const where = args[0]!;
    if (o.progress && !['auto', 'plain', 'tty'].includes(o.progress)) throw new ExitError(125, `invalid argument "${o.progress}" for "--progress" flag: use auto, plain or tty`);
    const opts: ImageBuildOptions = {
      t: o.tag,
      buildargs: kv(o.buildArg, true),
      labels: kv(o.label, false) as Record<string, string>,
      nocache: o.noCache,
      pull: o.pull,
      q: o.quiet,
      rm: o.rm,
      forcerm: o.forceRm,
      networkmode: o.network ?? 'default',
      extrahosts: o.addHost,
      ...(o.target ? { target: o.target } : {}),
      ...(o.platform ? { platform: o.platform } : {}),
    };
    let input: ImageBuildInput = {};
    if (where === '-') {
      if (o.file === '-') throw new ExitError(125, 'invalid argument: can\'t use stdin for both build context and dockerfile');
      input = { stream: process.stdin };
      if (o.file) opts.dockerfile = o.file;
    } else if (/^https?:\/\//.test(where)) {
      opts.remote = where;
      if (o.file === '-') opts.dockerfileContent = await readStdin();
      else if (o.file) opts.dockerfile = o.file;
    } else {
      let st;
      try {
        st = statSync(where);
      } catch {
        throw new ExitError(1, `unable to prepare context: path ${JSON.stringify(where)} not found`);
      }
      if (!st.isDirectory()) throw new ExitError(1, `unable to prepare context: context must be a directory: ${where}`);
      input = { dir: resolve(where) };
      if (o.file === '-') opts.dockerfileContent = await readStdin();
      else if (o.file) {
        // -f is relative to the current directory; a file outside the context is sent along
        const abs = resolve(o.file);
        const rel = relative(resolve(where), abs);
        if (rel.startsWith('..') || isAbsolute(rel)) {
          try {
            opts.dockerfileContent = readFileSync(abs, 'utf8');
          } catch {
            throw new ExitError(1, `unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${abs}: no such file or directory`);
          }
        } else opts.dockerfile = rel;
      }
    }
    const engine = await ctx.engine();
    const op = engine.build.build(input, opts);
    let errorMessage: ProgressMessage | undefined;
    for await (const m of (async function* () {
      try {
        for await (const x of op) yield x;
      } catch {
        /* the error message came first */
      }
    })()) {
      if (m.errorDetail || m.error) {
        errorMessage = m;
        continue;
      }
      if (m.stream) ctx.out.write(m.stream);
    }
    let r;
    try {
      r = await op.result;
    } catch (e) {
      const code = (e as { exitCode?: number }).exitCode;
      if (code !== undefined) throw new ExitError(code || 1, errorMessage?.errorDetail?.message ?? (e as Error).message);
      if (isEngineError(e)) throw e;
      throw e;
    }
    if (o.quiet) ctx.out.write(r.id + '\n');
    if (o.iidfile) writeFileSync(o.iidfile, r.id);
  },
});

const prune = command({
  name: 'prune',
  usage: '[OPTIONS]',
  short: 'Remove build cache',
  flags: {
    all: flag.bool('all', 'a', 'Remove all unused build cache, not just dangling ones'),
    filter: flag.list('filter', '', "Provide filter values (e.g. 'until=24h')", { typeName: 'filter' }),
    force: flag.bool('force', 'f', 'Do not prompt for confirmation'),
    keepStorage: flag.string('keep-storage', '', 'Amount of disk space to keep for cache', { typeName: 'bytes' }),
  },
  args: { max: 0 },
  async run(ctx, _args, o) {
    if (o.filter.length) throw new ExitError(125, 'build cache filters are not supported yet');
    if (!o.force) {
      const warn = o.all ? 'WARNING! This will remove all build cache.' : 'WARNING! This will remove all dangling build cache.';
      if (!(await confirm(`${warn} Are you sure you want to continue? [y/N] `))) return;
    }
    const engine = await ctx.engine();
    const r = await engine.build.prune({ all: o.all });
    if (r.CachesDeleted.length) ctx.out.write(`Deleted build cache objects:\n${r.CachesDeleted.join('\n')}\n\n`);
    ctx.out.write(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`);
  },
});

export const builderGroup = command({
  name: 'builder',
  short: 'Manage builds',
  commands: [build, prune],
});
