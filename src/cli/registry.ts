/** Registry commands: pull, push, login, logout. */
import { Command, Option } from 'commander';
import { createInterface } from 'node:readline/promises';
import { isEngineError } from '../errors/index.js';
import { parseReference } from '../oci/reference.js';
import { parsePlatform } from '../image/platform.js';
import type { PullEvent } from '../image/pull.js';
import type { PushEvent } from '../image/push.js';
import { ExitError, type Ctx } from './ctx.js';
import { ProgressBoard, progressBar, type ProgressMode } from './progress.js';

function mode(quiet: boolean | undefined, progress: string | undefined): ProgressMode {
  if (quiet) return 'quiet';
  if (progress === 'json') return 'json';
  if (progress === 'plain') return 'plain';
  if (progress === 'tty') return 'tty';
  return process.stdout.isTTY ? 'tty' : 'plain';
}

function pullRenderer(board: ProgressBoard, out: NodeJS.WritableStream): (e: PullEvent) => void {
  return (e) => {
    switch (e.type) {
      case 'pulling-from':
        board.log(`${e.tag}: Pulling from ${e.repository}`);
        if (board.mode === 'json') out.write(JSON.stringify({ status: `Pulling from ${e.repository}`, id: e.tag }) + '\n');
        break;
      case 'layer':
        board.set(e.id, e.status, { final: true, json: { status: e.status } });
        break;
      case 'layer-progress':
        board.set(e.id, `${e.status} ${progressBar(e.current, e.total, board.columns)}`, {
          json: { status: e.status, progressDetail: { current: e.current, total: e.total }, progress: progressBar(e.current, e.total, 120) },
        });
        break;
      case 'digest':
        board.log(`Digest: ${e.digest}`);
        if (board.mode === 'json') out.write(JSON.stringify({ status: `Digest: ${e.digest}` }) + '\n');
        break;
      default:
        break;
    }
  };
}

function pushRenderer(board: ProgressBoard, out: NodeJS.WritableStream): (e: PushEvent) => void {
  return (e) => {
    switch (e.type) {
      case 'repository':
        board.log(`The push refers to repository [${e.name}]`);
        if (board.mode === 'json') out.write(JSON.stringify({ status: `The push refers to repository [${e.name}]` }) + '\n');
        break;
      case 'layer':
        board.set(e.id, e.status, { final: true, json: { status: e.status } });
        break;
      case 'layer-progress':
        board.set(e.id, `${e.status} ${progressBar(e.current, e.total, board.columns)}`, {
          json: { status: e.status, progressDetail: { current: e.current, total: e.total } },
        });
        break;
      case 'pushed':
        board.log(`${e.tag}: digest: ${e.digest} size: ${e.size}`);
        if (board.mode === 'json') out.write(JSON.stringify({ status: `${e.tag}: digest: ${e.digest} size: ${e.size}`, aux: { Tag: e.tag, Digest: e.digest, Size: e.size } }) + '\n');
        break;
    }
  };
}

export function registerRegistryCommands(ctx: Ctx): void {
  const p = ctx.program;
  const image = p.commands.find((c) => c.name() === 'image')!;

  const pull = (cmd: Command) =>
    cmd
      .description('Download an image from a registry, layer by layer')
      .argument('<name>', 'NAME[:TAG|@DIGEST]')
      .option('-a, --all-tags', 'download all tagged images in the repository')
      .option('--platform <platform>', 'pull the image for this platform (os/arch[/variant])')
      .option('-q, --quiet', 'suppress verbose output')
      .addOption(new Option('--progress <type>', 'progress output').choices(['auto', 'tty', 'plain', 'json']).default('auto'))
      .option('--max-concurrent-downloads <n>', 'layers downloaded at once', '3')
      .action(async (name: string, o: { allTags?: boolean; platform?: string; quiet?: boolean; progress: string; maxConcurrentDownloads: string }) => {
        const engine = await ctx.engine();
        let ref = parseReference(name);
        const board = new ProgressBoard(mode(o.quiet, o.progress));
        const platform = o.platform ? parsePlatform(o.platform) : undefined;
        const concurrency = Math.max(1, Number(o.maxConcurrentDownloads) || 3);
        let names: string[];
        if (o.allTags) {
          if (ref.tag || ref.digest) throw new ExitError(1, 'Error: tag can\'t be used with --all-tags/-a');
          names = (await engine.listTags(ref.name)).map((t) => ref.withTag(t).toString());
        } else {
          if (!ref.tag && !ref.digest) {
            board.log('Using default tag: latest');
            ref = ref.withDefaultTag();
          }
          names = [ref.toString()];
        }
        for (const n of names) {
          const r = await engine.pull(n, { ...(platform ? { platform } : {}), concurrency, onEvent: pullRenderer(board, ctx.out), warn: (m) => process.stderr.write(`Warning: ${m}\n`) });
          board.flush();
          const fam = r.ref.digest ? `${r.ref.familiarName}@${r.ref.digest}` : r.ref.familiarString();
          board.log(r.upToDate ? `Status: Image is up to date for ${fam}` : `Status: Downloaded newer image for ${fam}`);
          if (board.mode !== 'json') ctx.out.write(`${r.ref.toString()}\n`);
        }
      });
  pull(p.command('pull'));
  pull(image.command('pull'));

  const push = (cmd: Command) =>
    cmd
      .description('Upload an image to a registry, layer by layer')
      .argument('<name>', 'NAME[:TAG]')
      .option('-a, --all-tags', 'push all tagged images in the repository')
      .option('-q, --quiet', 'suppress verbose output')
      .addOption(new Option('--compression-format <format>', 'compression of new layer blobs').choices(['gzip', 'zstd']).default('gzip'))
      .addOption(new Option('--progress <type>', 'progress output').choices(['auto', 'tty', 'plain', 'json']).default('auto'))
      .action(async (name: string, o: { allTags?: boolean; quiet?: boolean; compressionFormat: 'gzip' | 'zstd'; progress: string }) => {
        const engine = await ctx.engine();
        const board = new ProgressBoard(mode(o.quiet, o.progress));
        let names = [name];
        if (o.allTags) {
          const ref = parseReference(name);
          if (ref.tag || ref.digest) throw new ExitError(1, 'Error: tag can\'t be used with --all-tags/-a');
          names = engine.listImages({ filters: { reference: [ref.familiarName] } }).map((i) => `${ref.name}:${i.tag}`);
          if (!names.length) throw new ExitError(1, `Error: An image does not exist locally with the tag: ${ref.familiarName}`);
        }
        for (const n of names) {
          await engine.push(n, { compression: o.compressionFormat, onEvent: pushRenderer(board, ctx.out) });
          board.flush();
          if (o.quiet) ctx.out.write(`${parseReference(n).withDefaultTag().toString()}\n`);
        }
      });
  push(p.command('push'));
  push(image.command('push'));

  p.command('login')
    .description('Log in to a registry (credentials stored in ~/.docker/config.json, mode 0600)')
    .argument('[server]', 'registry host[:port]', 'docker.io')
    .option('-u, --username <username>', 'username')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'take the password from stdin')
    .action(async (server: string, o: { username?: string; password?: string; passwordStdin?: boolean }) => {
      const engine = await ctx.engine();
      let password = o.password;
      if (o.password && o.passwordStdin) throw new ExitError(1, 'Error: --password and --password-stdin are mutually exclusive');
      if (o.passwordStdin) {
        if (!o.username) throw new ExitError(1, 'Error: Must provide --username with --password-stdin');
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
      } else if (o.password) {
        process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
      }
      let username = o.username;
      if (!username || password === undefined) {
        if (!process.stdin.isTTY) throw new ExitError(1, 'Error: Cannot perform an interactive login from a non TTY device');
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        try {
          if (!username) username = (await rl.question('Username: ')).trim();
          if (password === undefined) password = await rl.question('Password: ');
        } finally {
          rl.close();
        }
      }
      if (!username) throw new ExitError(1, 'Error: Username is required');
      const host = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
      try {
        await engine.login(host, username, password ?? '');
      } catch (e) {
        if (isEngineError(e)) throw new ExitError(1, `Error response from registry ${host}: ${e.describe()}`);
        throw e;
      }
      ctx.out.write('Login Succeeded\n');
    });

  p.command('logout')
    .description('Log out from a registry')
    .argument('[server]', 'registry host[:port]', 'docker.io')
    .action(async (server: string) => {
      const engine = await ctx.engine();
      const host = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
      if (await engine.logout(host)) ctx.out.write(`Removing login credentials for ${host}\n`);
      else ctx.out.write(`Not logged in to ${host}\n`);
    });
}
