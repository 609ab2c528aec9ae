/** Registry commands: pull, push, login, logout. */
import { createInterface } from 'node:readline/promises';
import { isEngineError } from '../errors/index.js';
import { parsePlatform, parseReference } from '../engine/index.js';
import { command, type CommandSpec } from './command.js';
import { ExitError } from './ctx.js';
import { flag } from './flags.js';
import { modeFor, renderOp } from './render.js';

const progress = () => flag.string('progress', '', 'Progress output: auto, tty, plain or json', { default: 'auto' });

export const pull = command({
  name: 'pull',
  usage: '[OPTIONS] NAME[:TAG|@DIGEST]',
  short: 'Pull an image or a repository from a registry',
  flags: {
    allTags: flag.bool('all-tags', 'a', 'Download all tagged images in the repository'),
    maxConcurrentDownloads: flag.int('max-concurrent-downloads', '', 'Layers downloaded at once', { default: 3 }),
    platform: flag.string('platform', '', 'Set platform if server is multi-platform capable'),
    progress: progress(),
    quiet: flag.bool('quiet', 'q', 'Suppress verbose output'),
  },
  args: { min: 1, max: 1 },
  async run(ctx, [name], o) {
    const engine = await ctx.engine();
    let ref = parseReference(name!);
    const mode = modeFor(ctx.out, o.quiet, o.progress);
    const platform = o.platform ? parsePlatform(o.platform) : undefined;
    const concurrency = Math.max(1, o.maxConcurrentDownloads ?? 3);
    let names: string[];
    if (o.allTags) {
      if (ref.tag || ref.digest) throw new ExitError(1, "tag can't be used with --all-tags/-a");
      names = (await engine.images.remoteTags(ref.name)).map((t) => ref.withTag(t).toString());
    } else {
      if (!ref.tag && !ref.digest) {
        if (mode !== 'quiet' && mode !== 'json') ctx.out.write('Using default tag: latest\n');
        ref = ref.withDefaultTag();
      }
      names = [ref.toString()];
    }
    for (const n of names) {
      const r = await renderOp(engine.images.pull(n, { ...(platform ? { platform } : {}), concurrency }), ctx.out, mode);
      if (mode !== 'json') ctx.out.write(`${r.reference}\n`);
    }
  },
});

export const push = command({
  name: 'push',
  usage: '[OPTIONS] NAME[:TAG]',
  short: 'Push an image or a repository to a registry',
  flags: {
    allTags: flag.bool('all-tags', 'a', 'Push all tagged images in the repository'),
    compressionFormat: flag.string('compression-format', '', 'Compression of new layer blobs: gzip or zstd', { default: 'gzip' }),
    progress: progress(),
    quiet: flag.bool('quiet', 'q', 'Suppress verbose output'),
  },
  args: { min: 1, max: 1 },
  async run(ctx, [name], o) {
    const engine = await ctx.engine();
    const compression = o.compressionFormat ?? 'gzip';
    if (compression !== 'gzip' && compression !== 'zstd') throw new ExitError(125, `invalid argument "${compression}" for "--compression-format" flag: use gzip or zstd\nSee '${ctx.commandPath} --help'.`);
    const mode = modeFor(ctx.out, o.quiet, o.progress);
    let names = [name!];
    if (o.allTags) {
      const ref = parseReference(name!);
      if (ref.tag || ref.digest) throw new ExitError(1, "tag can't be used with --all-tags/-a");
      names = (await engine.images.list({ filters: { reference: [ref.familiarName] } })).flatMap((i) => i.RepoTags).map((t) => `${ref.name}:${parseReference(t).tag}`);
      if (!names.length) throw new ExitError(1, `An image does not exist locally with the tag: ${ref.familiarName}`);
    }
    for (const n of names) {
      await renderOp(engine.images.push(n, { compression }), ctx.out, mode);
      if (o.quiet) ctx.out.write(`${parseReference(n).withDefaultTag().toString()}\n`);
    }
  },
});

const host = (server: string) => server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');

const login = command({
  name: 'login',
  usage: '[OPTIONS] [SERVER]',
  short: 'Log in to a registry',
  flags: {
    password: flag.string('password', 'p', 'Password'),
    passwordStdin: flag.bool('password-stdin', '', 'Take the password from stdin'),
    username: flag.string('username', 'u', 'Username'),
  },
  args: { max: 1 },
  async run(ctx, [server], o) {
    const engine = await ctx.engine();
    let password = o.password;
    if (o.password !== undefined && o.passwordStdin) throw new ExitError(1, '--password and --password-stdin are mutually exclusive');
    if (o.passwordStdin) {
      if (!o.username) throw new ExitError(1, 'Must provide --username with --password-stdin');
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    } else if (o.password !== undefined) {
      process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    }
    let username = o.username;
    if (!username || password === undefined) {
      if (!process.stdin.isTTY) throw new ExitError(1, 'Cannot perform an interactive login from a non TTY device');
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      try {
        if (!username) username = (await rl.question('Username: ')).trim();
        if (password === undefined) password = await rl.question('Password: ');
      } finally {
        rl.close();
      }
    }
    if (!username) throw new ExitError(1, 'Username is required');
    const h = host(server ?? 'docker.io');
    try {
      await engine.login(h, username, password ?? '');
    } catch (e) {
      if (isEngineError(e)) throw new ExitError(1, `Error response from registry ${h}: ${e.describe()}`);
      throw e;
    }
    ctx.out.write('Login Succeeded\n');
  },
});

const logout = command({
  name: 'logout',
  usage: '[SERVER]',
  short: 'Log out from a registry',
  args: { max: 1 },
  async run(ctx, [server]) {
    const engine = await ctx.engine();
    const h = host(server ?? 'docker.io');
    if (await engine.logout(h)) ctx.out.write(`Removing login credentials for ${h}\n`);
    else ctx.out.write(`Not logged in to ${h}\n`);
  },
});

export const registryCommands: CommandSpec<any>[] = [login, logout, pull, push];
