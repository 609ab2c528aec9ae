/** Image commands: load, import, save, images, image inspect, history, tag, rmi, image prune, image mount. */
import { Command, Option } from 'commander';
import { createInterface } from 'node:readline/promises';
import { isEngineError } from '../errors/index.js';
import { shortId } from '../oci/digest.js';
import type { LoadEvent } from '../image/load.js';
import type { LayerEvent } from '../image/layers.js';
import { ExitError, type Ctx } from './ctx.js';
import { formatRows, goTime, humanSize, since, table } from './format.js';
import { ProgressBoard, progressBar, type ProgressMode } from './progress.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

function progressMode(quiet?: boolean): ProgressMode {
  if (quiet) return 'quiet';
  return process.stdout.isTTY ? 'tty' : 'plain';
}

/** Renders layer events the way `docker load` does. */
function layerRenderer(board: ProgressBoard, verb: string): (e: LayerEvent | LoadEvent) => void {
  return (e) => {
    const id = shortId(e.diffId || ('digest' in e && e.digest) || '');
    if (!id) return;
    switch (e.type) {
      case 'exists':
        board.set(id, 'Already exists', { final: true });
        break;
      case 'waiting':
        board.set(id, 'Waiting (another layerbox process is unpacking this layer)');
        break;
      case 'start':
        board.set(id, `${verb} ${progressBar(0, e.total, board.columns)}`);
        break;
      case 'progress':
        board.set(id, `${verb} ${progressBar(e.current, e.total, board.columns)}`);
        break;
      case 'done':
        board.set(id, board.mode === 'tty' ? `${verb} ${progressBar(e.size, e.size, board.columns)}` : `${verb} complete (${humanSize(e.size)})`, { final: true });
        break;
    }
  };
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const a = await rl.question(question);
    return /^y(es)?$/i.test(a.trim());
  } finally {
    rl.close();
  }
}

export function registerImageCommands(ctx: Ctx): void {
  const p = ctx.program;
  const image = p.command('image').description('Manage images');

  // ---------------------------------------------------------------- load
  const load = (cmd: Command) =>
    cmd
      .description('Load an image from a tar archive or STDIN (docker-archive, OCI layout, oci-archive)')
      .option('-i, --input <file>', 'read from tar archive file (or an OCI layout directory), instead of STDIN')
      .option('-q, --quiet', 'suppress the load output')
      .action(async (o: { input?: string; quiet?: boolean }) => {
        const engine = await ctx.engine();
        if (!o.input && process.stdin.isTTY) {
          throw new ExitError(1, 'Error: requested load from stdin, but stdin is empty');
        }
        const board = new ProgressBoard(progressMode(o.quiet));
        const loaded = await engine.load(o.input ? { path: o.input } : { stream: process.stdin }, { onEvent: layerRenderer(board, 'Loading layer'), warn: (m) => process.stderr.write(`Warning: ${m}\n`) });
        board.flush();
        for (const img of loaded) {
          for (const m of img.moved) board.log(`The image ${m.tag} already exists, renaming the old one with ID ${m.from} to empty string`);
          if (img.tags.length === 0) ctx.out.write(`Loaded image ID: ${img.id}\n`);
          for (const t of img.tags) ctx.out.write(`Loaded image: ${t}\n`);
        }
      });
  load(p.command('load'));
  load(image.command('load'));

  // ---------------------------------------------------------------- import
  const imp = (cmd: Command) =>
    cmd
      .description('Import the contents from a tarball to create a filesystem image')
      .argument('<file>', 'tarball path, or - for STDIN')
      .argument('[repository]', 'REPOSITORY[:TAG]')
      .option('-c, --change <instruction>', 'apply Dockerfile instruction to the created image', collect, [])
      .option('-m, --message <message>', 'set commit message for imported image')
      .option('--platform <platform>', 'set platform if server is multi-platform capable')
      .action(async (file: string, repo: string | undefined, o: { change: string[]; message?: string; platform?: string }) => {
        const engine = await ctx.engine();
        const r = await engine.import(file === '-' ? { stream: process.stdin } : { path: file }, {
          ...(repo ? { reference: repo } : {}),
          changes: o.change,
          ...(o.message ? { message: o.message } : {}),
          ...(o.platform ? { platform: o.platform } : {}),
        });
        ctx.out.write(`${r.id}\n`);
      });
  imp(p.command('import'));
  imp(image.command('import'));

  // ---------------------------------------------------------------- save
  const save = (cmd: Command) =>
    cmd
      .description('Save one or more images to a tar archive (streamed to STDOUT by default)')
      .argument('<image...>')
      .option('-o, --output <file>', 'write to a file (a directory for --format oci-dir), instead of STDOUT')
      .addOption(new Option('--format <format>', 'archive format').choices(['docker-archive', 'oci-archive', 'oci-dir']).default('docker-archive'))
      .action(async (names: string[], o: { output?: string; format: 'docker-archive' | 'oci-archive' | 'oci-dir' }) => {
        const engine = await ctx.engine();
        if (!o.output && o.format === 'oci-dir') throw new ExitError(1, 'Error: --format oci-dir needs an output directory (-o DIR)');
        if (!o.output && process.stdout.isTTY) throw new ExitError(1, 'Error: cowardly refusing to save to a terminal. Use the -o flag or redirect');
        await engine.save(names, o.output ? { path: o.output } : { stream: process.stdout }, { format: o.format });
      });
  save(p.command('save'));
  save(image.command('save'));

  // ---------------------------------------------------------------- images
  const ls = (cmd: Command) =>
    cmd
      .description('List images')
      .argument('[repository]', 'REPOSITORY[:TAG] to show')
      .option('-a, --all', 'show all images (default hides intermediate images)')
      .option('-q, --quiet', 'only show image IDs')
      .option('--digests', 'show digests')
      .option('--no-trunc', "don't truncate output")
      .option('-f, --filter <filter>', 'filter output based on conditions provided (reference=PATTERN, dangling=true|false)', collect, [])
      .option('--format <format>', 'pretty-print images using a Go template, or json')
      .action(async (repo: string | undefined, o: { all?: boolean; quiet?: boolean; digests?: boolean; trunc: boolean; filter: string[]; format?: string }) => {
        const engine = await ctx.engine();
        const filters: { reference?: string[]; dangling?: boolean } = {};
        for (const f of o.filter) {
          const [k, ...rest] = f.split('=');
          const v = rest.join('=');
          if (k === 'reference') (filters.reference ??= []).push(v);
          else if (k === 'dangling') {
            if (v !== 'true' && v !== 'false') throw new ExitError(1, `Error: invalid filter 'dangling=${v}'`);
            filters.dangling = v === 'true';
          } else throw new ExitError(1, `Error: invalid filter '${k}'`);
        }
        if (repo) (filters.reference ??= []).push(repo);
        const rows = engine.listImages({ all: o.all, filters });
        const id = (d: string) => (o.trunc ? shortId(d) : d);
        if (o.quiet) {
          for (const r of rows) ctx.out.write(id(r.id) + '\n');
          return;
        }
        const objs = rows.map((r) => ({
          Containers: 'N/A',
          CreatedAt: goTime(r.created),
          CreatedSince: since(r.created),
          Digest: r.digest,
          ID: id(r.id),
          Repository: r.repository,
          SharedSize: 'N/A',
          Size: humanSize(r.size),
          Tag: r.tag,
          UniqueSize: 'N/A',
          VirtualSize: humanSize(r.size),
        }));
        const fmt = formatRows(o.format, objs, { Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', ID: 'IMAGE ID', CreatedSince: 'CREATED', Size: 'SIZE' });
        if (fmt !== undefined) {
          ctx.out.write(fmt);
          return;
        }
        const head = o.digests ? ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'] : ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];
        const body = objs.map((x) => (o.digests ? [x.Repository, x.Tag, x.Digest, x.ID, x.CreatedSince, x.Size] : [x.Repository, x.Tag, x.ID, x.CreatedSince, x.Size]));
        ctx.out.write(table([head, ...body]));
      });
  ls(p.command('images'));
  ls(image.command('ls').alias('list'));

  // ---------------------------------------------------------------- inspect
  image
    .command('inspect')
    .description('Display detailed information on one or more images')
    .argument('<image...>')
    .option('-f, --format <format>', 'format the output using a Go template')
    .action(async (names: string[], o: { format?: string }) => {
      const engine = await ctx.engine();
      await printInspect(ctx, names, o.format, (n) => engine.inspectImage(n));
    });

  // ---------------------------------------------------------------- history
  const history = (cmd: Command) =>
    cmd
      .description('Show the history of an image')
      .argument('<image>')
      .option('-H, --human', 'print sizes and dates in human readable format', true)
      .option('--no-human', 'print sizes and dates in raw form')
      .option('-q, --quiet', 'only show image IDs')
      .option('--no-trunc', "don't truncate output")
      .option('--format <format>', 'pretty-print history using a Go template, or json')
      .action(async (name: string, o: { human: boolean; quiet?: boolean; trunc: boolean; format?: string }) => {
        const engine = await ctx.engine();
        const rows = await engine.history(name);
        const id = (s: string) => (s === '<missing>' || !o.trunc ? s : shortId(s));
        if (o.quiet) {
          for (const r of rows) ctx.out.write(id(r.id) + '\n');
          return;
        }
        const createdBy = (s: string) => {
          const t = s.replace(/\s+/g, ' ');
          return o.trunc && [...t].length > 45 ? [...t].slice(0, 44).join('') + '…' : s;
        };
        const objs = rows.map((r) => ({
          ID: id(r.id),
          CreatedSince: o.human ? since(r.created) : r.created ?? '',
          CreatedAt: r.created ?? '',
          CreatedBy: createdBy(r.createdBy),
          Size: o.human ? humanSize(r.size) : String(r.size),
          Comment: r.comment,
        }));
        const fmt = formatRows(o.format, objs, { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' });
        if (fmt !== undefined) {
          ctx.out.write(fmt);
          return;
        }
        ctx.out.write(table([['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...objs.map((x) => [x.ID, x.CreatedSince, x.CreatedBy, x.Size, x.Comment])]));
      });
  history(p.command('history'));
  history(image.command('history'));

  // ---------------------------------------------------------------- tag
  const tag = (cmd: Command) =>
    cmd
      .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
      .argument('<source>', 'SOURCE_IMAGE[:TAG]')
      .argument('<target>', 'TARGET_IMAGE[:TAG]')
      .action(async (src: string, dst: string) => {
        (await ctx.engine()).tag(src, dst);
      });
  tag(p.command('tag'));
  tag(image.command('tag'));

  // ---------------------------------------------------------------- rmi
  const rmi = (cmd: Command) =>
    cmd
      .description('Remove one or more images')
      .argument('<image...>')
      .option('-f, --force', 'force removal of the image')
      .option('--no-prune', 'do not delete untagged parents')
      .action(async (names: string[], o: { force?: boolean; prune: boolean }) => {
        const engine = await ctx.engine();
        let failed = 0;
        let fatal = false;
        for (const n of names) {
          try {
            for (const ev of await engine.removeImage(n, { force: o.force, noPrune: !o.prune })) {
              ctx.out.write('Untagged' in ev ? `Untagged: ${ev.Untagged}\n` : `Deleted: ${ev.Deleted}\n`);
            }
          } catch (e) {
            if (!isEngineError(e)) throw e;
            failed++;
            if (e.kind !== 'not-found') fatal = true;
            process.stderr.write(`Error: ${e.describe()}\n`);
          }
        }
        // Docker: with -f, images that are not there are reported, not a failure
        if (failed && (!o.force || fatal)) throw new ExitError(1);
      });
  rmi(p.command('rmi'));
  rmi(image.command('rm').alias('remove'));

  // ---------------------------------------------------------------- prune
  image
    .command('prune')
    .description('Remove unused images')
    .option('-a, --all', 'remove all unused images, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (o: { all?: boolean; force?: boolean }) => {
      const engine = await ctx.engine();
      if (!o.force) {
        const warn = o.all ? 'WARNING! This will remove all images without at least one container associated to them.' : 'WARNING! This will remove all dangling images.';
        if (!(await confirm(`${warn}\nAre you sure you want to continue? [y/N] `))) return;
      }
      const { events, reclaimed } = await engine.pruneImages({ all: o.all });
      if (events.length) {
        ctx.out.write('Deleted Images:\n');
        for (const ev of events) ctx.out.write('Untagged' in ev ? `untagged: ${ev.Untagged}\n` : `deleted: ${ev.Deleted}\n`);
        ctx.out.write('\n');
      }
      ctx.out.write(`Total reclaimed space: ${humanSize(reclaimed, 4)}\n`); // Docker: units.HumanSize, 4 digits
    });

  // ---------------------------------------------------------------- mount
  image
    .command('mount')
    .description("Mount an image's root file system read-only (overlayfs) and print its path")
    .argument('[image...]')
    .action(async (names: string[]) => {
      const engine = await ctx.engine();
      if (names.length === 0) {
        for (const m of engine.imageMounts.list()) {
          const img = engine.images.get(m.imageId);
          ctx.out.write(`${img?.tags[0] ? img.tags[0] : m.imageId} ${m.path}\n`);
        }
        return;
      }
      for (const n of names) ctx.out.write((await engine.mountImage(n)) + '\n');
    });
  image
    .command('unmount')
    .alias('umount')
    .description("Unmount an image's root file system")
    .argument('<image...>')
    .option('-f, --force', 'unmount even if it was mounted several times')
    .action(async (names: string[], o: { force?: boolean }) => {
      const engine = await ctx.engine();
      for (const n of names) {
        const img = engine.resolveImage(n);
        if (await engine.unmountImage(n, { force: o.force })) ctx.out.write(img.id + '\n');
        else throw new ExitError(1, `Error: image ${n} is not mounted`);
      }
    });
}

export async function printInspect(ctx: Ctx, names: string[], format: string | undefined, get: (n: string) => Promise<Record<string, unknown>>): Promise<void> {
  const results: Record<string, unknown>[] = [];
  let failed = 0;
  for (const n of names) {
    try {
      results.push(await get(n));
    } catch (e) {
      if (!isEngineError(e)) throw e;
      failed++;
      process.stderr.write(`Error: ${e.describe()}\n`);
    }
  }
  if (format) {
    const { renderTemplate } = await import('./format.js');
    for (const r of results) ctx.out.write(format === 'json' ? JSON.stringify(r) + '\n' : renderTemplate(format, r) + '\n');
  } else {
    ctx.out.write(JSON.stringify(results, null, 4) + '\n');
  }
  if (failed) throw new ExitError(1);
}
