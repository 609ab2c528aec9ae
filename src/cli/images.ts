/** Image commands: images, image inspect, history, tag, rmi, image prune, load, save, import, image mount. */
import { isEngineError } from '../errors/index.js';
import { parseFilterArgs, parseReference, shortId, type ImageSummary } from '../engine/index.js';
import { byName, command, type CommandSpec } from './command.js';
import { confirm } from './prompt.js';
import { ExitError } from './ctx.js';
import { flag } from './flags.js';
import { formatRows, goTime, humanSize, since, table } from './format.js';
import { printInspect } from './inspect.js';
import { renderOp } from './render.js';

const iso = (unix: number) => (unix > 0 ? new Date(unix * 1000).toISOString() : undefined);

/** One row per repository and tag (and digest with --digests), as the docker CLI's image formatter. */
export function imageRows(images: ImageSummary[], opts: { digests?: boolean; trunc: boolean }) {
  const rows: Record<string, string>[] = [];
  for (const img of images) {
    const id = opts.trunc ? shortId(img.Id) : img.Id;
    const base = {
      Containers: img.Containers < 0 ? 'N/A' : String(img.Containers),
      CreatedAt: goTime(iso(img.Created)),
      CreatedSince: since(iso(img.Created)),
      ID: id,
      SharedSize: img.SharedSize < 0 ? 'N/A' : humanSize(img.SharedSize),
      Size: humanSize(img.Size),
      UniqueSize: img.SharedSize < 0 ? 'N/A' : humanSize(img.Size - img.SharedSize),
      VirtualSize: humanSize(img.VirtualSize),
    };
    const add = (Repository: string, Tag: string, Digest: string) => rows.push({ ...base, Repository, Tag, Digest });
    const dangling = img.RepoTags.length === 1 && img.RepoTags[0] === '<none>:<none>' && img.RepoDigests[0] === '<none>@<none>';
    if (dangling) {
      add('<none>', '<none>', '<none>');
      continue;
    }
    const tags = new Map<string, string[]>();
    const digests = new Map<string, string[]>();
    for (const t of img.RepoTags) {
      try {
        const r = parseReference(t);
        if (r.tag) (tags.get(r.familiarName) ?? tags.set(r.familiarName, []).get(r.familiarName)!).push(r.tag);
      } catch {
        /* not a reference */
      }
    }
    for (const d of img.RepoDigests) {
      const at = d.lastIndexOf('@');
      if (at < 0) continue;
      const repo = d.slice(0, at);
      (digests.get(repo) ?? digests.set(repo, []).get(repo)!).push(d.slice(at + 1));
    }
    for (const [repo, ts] of tags) {
      const ds = opts.digests ? (digests.get(repo) ?? []) : [];
      digests.delete(repo);
      for (const t of ts) {
        if (ds.length === 0) add(repo, t, '<none>');
        else for (const d of ds) add(repo, t, d);
      }
    }
    for (const [repo, ds] of digests) {
      if (opts.digests) for (const d of ds) add(repo, '<none>', d);
      else add(repo, '<none>', '');
    }
  }
  return rows;
}

const imagesCmd = command({
  name: 'images',
  usage: '[OPTIONS] [REPOSITORY[:TAG]]',
  short: 'List images',
  flags: {
    all: flag.bool('all', 'a', 'Show all images (default hides intermediate images)'),
    digests: flag.bool('digests', '', 'Show digests'),
    filter: flag.list('filter', 'f', 'Filter output based on conditions provided', { typeName: 'filter' }),
    format: flag.string('format', '', 'Pretty-print images using a Go template'),
    noTrunc: flag.bool('no-trunc', '', "Don't truncate output"),
    quiet: flag.bool('quiet', 'q', 'Only show image IDs'),
  },
  args: { max: 1 },
  async run(ctx, [repo], o) {
    const engine = await ctx.engine();
    const filters = parseFilterArgs(o.filter);
    if (repo) (filters.reference ??= []).push(repo);
    const images = await engine.images.list({ all: !!o.all, filters });
    const trunc = !o.noTrunc;
    if (o.quiet) {
      const seen = new Set<string>();
      for (const i of images) {
        const id = trunc ? shortId(i.Id) : i.Id;
        if (!seen.has(id)) ctx.out.write(id + '\n');
        seen.add(id);
      }
      return;
    }
    const rows = imageRows(images, { digests: !!o.digests, trunc });
    const fmt = formatRows(o.format, rows, { Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', ID: 'IMAGE ID', CreatedSince: 'CREATED', Size: 'SIZE', CreatedAt: 'CREATED AT', Containers: 'CONTAINERS', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE', VirtualSize: 'VIRTUAL SIZE' });
    if (fmt !== undefined) {
      ctx.out.write(fmt);
      return;
    }
    const head = o.digests ? ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'] : ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];
    ctx.out.write(table([head, ...rows.map((x) => (o.digests ? [x.Repository!, x.Tag!, x.Digest!, x.ID!, x.CreatedSince!, x.Size!] : [x.Repository!, x.Tag!, x.ID!, x.CreatedSince!, x.Size!]))]));
  },
});

const inspect = command({
  name: 'inspect',
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  short: 'Display detailed information on one or more images',
  flags: { format: flag.string('format', 'f', 'Format the output using the given Go template') },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    await printInspect(ctx, names, o.format, (n) => engine.images.inspect(n));
  },
});

const history = command({
  name: 'history',
  usage: '[OPTIONS] IMAGE',
  short: 'Show the history of an image',
  flags: {
    format: flag.string('format', '', 'Pretty-print images using a Go template'),
    human: flag.bool('human', 'H', 'Print sizes and dates in human readable format', { default: true }),
    noTrunc: flag.bool('no-trunc', '', "Don't truncate output"),
    quiet: flag.bool('quiet', 'q', 'Only show image IDs'),
  },
  args: { min: 1, max: 1 },
  async run(ctx, [name], o) {
    const engine = await ctx.engine();
    const rows = await engine.images.history(name!);
    const trunc = !o.noTrunc;
    const id = (s: string) => (s === '<missing>' || !trunc ? s : shortId(s));
    if (o.quiet) {
      for (const r of rows) ctx.out.write(id(r.Id) + '\n');
      return;
    }
    const createdBy = (s: string) => {
      const t = s.replace(/\s+/g, ' ');
      return trunc && [...t].length > 45 ? [...t].slice(0, 44).join('') + '…' : s;
    };
    const objs = rows.map((r) => ({
      ID: id(r.Id),
      CreatedSince: o.human ? since(iso(r.Created)) : (iso(r.Created) ?? ''),
      CreatedAt: iso(r.Created) ?? '',
      CreatedBy: createdBy(r.CreatedBy),
      Size: o.human ? humanSize(r.Size) : String(r.Size),
      Comment: r.Comment,
    }));
    const fmt = formatRows(o.format, objs, { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT', CreatedAt: 'CREATED AT' });
    if (fmt !== undefined) {
      ctx.out.write(fmt);
      return;
    }
    ctx.out.write(table([['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...objs.map((x) => [x.ID, x.CreatedSince, x.CreatedBy, x.Size, x.Comment])]));
  },
});

const tag = command({
  name: 'tag',
  usage: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
  short: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
  args: { min: 2, max: 2 },
  async run(ctx, [src, dst]) {
    (await ctx.engine()).images.tag(src!, dst!);
  },
});

const rmi = command({
  name: 'rmi',
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  short: 'Remove one or more images',
  flags: {
    force: flag.bool('force', 'f', 'Force removal of the image'),
    noPrune: flag.bool('no-prune', '', 'Do not delete untagged parents'),
  },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    let failed = 0;
    let fatal = false;
    for (const n of names) {
      try {
        for (const ev of await engine.images.remove(n, { force: !!o.force, noprune: !!o.noPrune })) ctx.out.write(ev.Untagged ? `Untagged: ${ev.Untagged}\n` : `Deleted: ${ev.Deleted}\n`);
      } catch (e) {
        if (!isEngineError(e)) throw e;
        failed++;
        if (e.kind !== 'not-found') fatal = true;
        process.stderr.write(`Error: ${e.describe()}\n`);
      }
    }
    // Docker: with -f, images that are not there are reported, not a failure
    if (failed && (!o.force || fatal)) throw new ExitError(1);
  },
});

const prune = command({
  name: 'prune',
  usage: '[OPTIONS]',
  short: 'Remove unused images',
  flags: {
    all: flag.bool('all', 'a', 'Remove all unused images, not just dangling ones'),
    filter: flag.list('filter', '', "Provide filter values (e.g. 'until=<timestamp>')", { typeName: 'filter' }),
    force: flag.bool('force', 'f', 'Do not prompt for confirmation'),
  },
  args: { max: 0 },
  async run(ctx, _args, o) {
    const engine = await ctx.engine();
    if (!o.force) {
      const warn = o.all ? 'WARNING! This will remove all images without at least one container associated to them.' : 'WARNING! This will remove all dangling images.';
      if (!(await confirm(`${warn}\nAre you sure you want to continue? [y/N] `))) return;
    }
    const filters = parseFilterArgs(o.filter);
    filters.dangling = [o.all ? 'false' : 'true'];
    const r = await engine.images.prune({ filters });
    if (r.ImagesDeleted.length) {
      ctx.out.write('Deleted Images:\n');
      for (const ev of r.ImagesDeleted) ctx.out.write(ev.Untagged ? `untagged: ${ev.Untagged}\n` : `deleted: ${ev.Deleted}\n`);
      ctx.out.write('\n');
    }
    ctx.out.write(`Total reclaimed space: ${humanSize(r.SpaceReclaimed, 4)}\n`); // Docker: units.HumanSize, 4 digits
  },
});

const load = command({
  name: 'load',
  usage: '[OPTIONS]',
  short: 'Load an image from a tar archive or STDIN',
  flags: {
    input: flag.string('input', 'i', 'Read from tar archive file, instead of STDIN'),
    quiet: flag.bool('quiet', 'q', 'Suppress the load output'),
  },
  args: { max: 0 },
  async run(ctx, _args, o) {
    const engine = await ctx.engine();
    if (!o.input && process.stdin.isTTY) throw new ExitError(1, 'requested load from stdin, but stdin is empty');
    // off a terminal, no progress bars (as the docker CLI); layers already stored still say so
    const mode = o.quiet ? 'quiet' : ctx.out.isTTY ? 'tty' : 'plain';
    await renderOp(engine.images.load(o.input ? { path: o.input } : { stream: process.stdin }), ctx.out, mode);
  },
});

const save = command({
  name: 'save',
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  short: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
  flags: {
    format: flag.string('format', '', 'Archive format: docker-archive, oci-archive or oci-dir', { default: 'docker-archive' }),
    output: flag.string('output', 'o', 'Write to a file, instead of STDOUT'),
  },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    const format = o.format ?? 'docker-archive';
    if (!['docker-archive', 'oci-archive', 'oci-dir'].includes(format)) throw new ExitError(125, `invalid argument "${format}" for "--format" flag: use docker-archive, oci-archive or oci-dir\nSee '${ctx.commandPath} --help'.`);
    if (!o.output && format === 'oci-dir') throw new ExitError(1, '--format oci-dir needs an output directory (-o DIR)');
    if (!o.output && process.stdout.isTTY) throw new ExitError(1, 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
    await engine.images.save(names, o.output ? { path: o.output } : { stream: process.stdout }, { format: format as 'docker-archive' });
  },
});

const importCmd = command({
  name: 'import',
  usage: '[OPTIONS] file|URL|- [REPOSITORY[:TAG]]',
  short: 'Import the contents from a tarball to create a filesystem image',
  flags: {
    change: flag.list('change', 'c', 'Apply Dockerfile instruction to the created image'),
    message: flag.string('message', 'm', 'Set commit message for imported image'),
    platform: flag.string('platform', '', 'Set platform if server is multi-platform capable'),
  },
  args: { min: 1, max: 2 },
  async run(ctx, [file, repo], o) {
    const engine = await ctx.engine();
    const r = await engine.images.import(file === '-' ? { stream: process.stdin } : { path: file! }, {
      ...(repo ? { reference: repo } : {}),
      changes: o.change,
      ...(o.message ? { message: o.message } : {}),
      ...(o.platform ? { platform: o.platform } : {}),
    }).result;
    ctx.out.write(`${r.id}\n`);
  },
});

const mount = command({
  name: 'mount',
  usage: '[IMAGE...]',
  short: "Mount an image's root file system read-only and print its path",
  async run(ctx, names) {
    const engine = await ctx.engine();
    if (names.length === 0) {
      for (const m of engine.images.mounts()) ctx.out.write(`${m.image} ${m.path}\n`);
      return;
    }
    // the mount outlives the command: it is not disposed of here (`image unmount` ends it)
    for (const n of names) ctx.out.write((await engine.images.mount(n)).path + '\n');
  },
});

const unmount = command({
  name: 'unmount',
  aliases: ['umount'],
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  short: "Unmount an image's root file system",
  flags: { force: flag.bool('force', 'f', 'Unmount even if it was mounted several times') },
  args: { min: 1 },
  async run(ctx, names, o) {
    const engine = await ctx.engine();
    for (const n of names) {
      const r = await engine.images.unmount(n, { force: !!o.force });
      if (r.unmounted) ctx.out.write(r.id + '\n');
      else throw new ExitError(1, `Error: image ${n} is not mounted`);
    }
  },
});

export const imageCommands: CommandSpec<any>[] = [history, imagesCmd, importCmd, load, rmi, save, tag];

export const imageGroup = (extra: CommandSpec<any>[]) =>
  command({
    name: 'image',
    short: 'Manage images',
    commands: [history, importCmd, inspect, load, { ...imagesCmd, name: 'ls', aliases: ['images', 'list'] }, mount, prune, ...extra, { ...rmi, name: 'rm', aliases: ['rmi', 'remove'] }, save, tag, unmount].sort(byName),
  });
