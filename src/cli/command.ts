/**
 * The command table and its runner: cobra's behaviour as the docker CLI configures it —
 * usage lines, help text, argument-count messages and exit codes (125 for flag errors, 1 for
 * a wrong number of arguments or an unknown command) — over the pflag grammar of flags.ts.
 * Help and shell completion are generated from the same table.
 */
import { FlagError, HelpRequested, flag, flagUsages, parseFlags, type FlagSet, type FlagSpec, type FlagValues } from './flags.js';
import { ExitError, type Ctx } from './ctx.js';

export const PROG = 'layerbox';

/** How many positional arguments a command takes (the docker CLI's cli.RequiresMinArgs & co). */
export interface ArgRule {
  min?: number;
  max?: number;
}

export interface CommandSpec<F extends FlagSet = FlagSet> {
  name: string;
  aliases?: string[];
  /** what follows the command path in the usage line: "[OPTIONS] IMAGE [COMMAND] [ARG...]" */
  usage?: string;
  short: string;
  flags?: F;
  args?: ArgRule;
  /** false: the first positional ends the flags (run, create, exec) */
  interspersed?: boolean;
  hidden?: boolean;
  /** management commands list their subcommands apart in the root help */
  commands?: CommandSpec<any>[];
  run?(ctx: Ctx, args: string[], o: FlagValues<F>): Promise<void> | void;
}

/** Declares a command (an identity function that lets TypeScript type `o` from `flags`). */
/**
 * The order of command names (lower-case ASCII: code-point order is the locale's). Not
 * localeCompare: its first call sets up ICU's collator, ~10 ms of every command's start.
 */
export function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function command<F extends FlagSet>(spec: CommandSpec<F>): CommandSpec<F> {
  return spec;
}

function specs(c: CommandSpec<any>): FlagSpec[] {
  return Object.values((c.flags ?? {}) as FlagSet);
}

export function findCommand(list: CommandSpec<any>[], name: string): CommandSpec<any> | undefined {
  return list.find((c) => c.name === name || c.aliases?.includes(name));
}

function plural(n: number): string {
  return n === 1 ? 'argument' : 'arguments';
}

export function useLine(path: string[], c: CommandSpec<any>): string {
  if (c.commands) return `${path.join(' ')}${c.flags && Object.keys(c.flags).length ? ' [OPTIONS]' : ''} COMMAND`;
  return `${path.join(' ')}${c.usage ? ' ' + c.usage : ''}`;
}

/** The docker CLI's usage template, for a command at `path` (["layerbox", "container", "ls"]). */
export function helpText(path: string[], c: CommandSpec<any>, cols = 79): string {
  let s = `\nUsage:  ${useLine(path, c)}\n\n${c.short}\n`;
  if (c.aliases?.length) s += `\nAliases:\n  ${[c.name, ...c.aliases].join(', ')}\n`;
  // run and create define -h (hostname), so they list --help among their flags, as Docker's
  const own = (c.flags ?? {}) as FlagSet;
  const flags: FlagSet = specs(c).some((f) => f.short === 'h') ? { ...own, help: flag.bool('help', '', 'Print usage') } : own;
  if (specs(c).some((f) => !f.hidden)) s += `\nOptions:\n${flagUsages(flags, cols).replace(/\s+$/, '')}\n`;
  if (c.commands) {
    const visible = c.commands.filter((x) => !x.hidden);
    const pad = Math.max(11, ...visible.map((x) => x.name.length));
    const mgmt = visible.filter((x) => x.commands);
    const ops = visible.filter((x) => !x.commands);
    if (mgmt.length) s += `\nManagement Commands:\n${mgmt.map((x) => `  ${x.name.padEnd(pad + 1)}${x.short}\n`).join('')}`;
    if (ops.length) s += `\nCommands:\n${ops.map((x) => `  ${x.name.padEnd(pad)} ${x.short}\n`).join('')}`;
    s += `\nRun '${path.join(' ')} COMMAND --help' for more information on a command.\n`;
  }
  return s;
}

function argError(path: string[], c: CommandSpec<any>, n: number): ExitError | undefined {
  const r = c.args;
  if (!r) return undefined;
  const quoted = `"${path.join(' ')}"`;
  let what: string | undefined;
  if (r.max === 0 && n > 0) what = `${quoted} accepts no arguments.`;
  else if (r.min !== undefined && r.max !== undefined && r.min === r.max && n !== r.min) what = `${quoted} requires exactly ${r.min} ${plural(r.min)}.`;
  else if (r.min !== undefined && r.max !== undefined && (n < r.min || n > r.max)) what = `${quoted} requires at least ${r.min} and at most ${r.max} ${plural(r.max)}.`;
  else if (r.min !== undefined && n < r.min) what = `${quoted} requires at least ${r.min} ${plural(r.min)}.`;
  else if (r.max !== undefined && n > r.max) what = `${quoted} requires at most ${r.max} ${plural(r.max)}.`;
  if (!what) return undefined;
  return new ExitError(1, `${what}\nSee '${path.join(' ')} --help'.\n\nUsage:  ${useLine(path, c)}\n\n${c.short}`);
}

/** What argv means: help to print, or a command to run with its arguments and flag values. */
export type Resolved =
  | { kind: 'help'; path: string[]; cmd: CommandSpec<any>; warning?: string; globals: Record<string, unknown> }
  | { kind: 'run'; path: string[]; cmd: CommandSpec<any>; args: string[]; values: FlagValues<FlagSet>; globals: Record<string, unknown>; warnings: string[] };

/**
 * Walks argv from the root: each command's flags (pflag rules), then its subcommand, down to
 * the command that runs. Throws ExitError with Docker's message and code for flag errors
 * (125), unknown commands and wrong argument counts (1).
 */
export function resolveCommand(root: CommandSpec<any>, argv: string[]): Resolved {
  const path = [PROG];
  let cmd: CommandSpec<any> = root;
  let rest = argv;
  let globals: Record<string, unknown> = {};
  const warnings: string[] = [];
  for (;;) {
    const hasShortH = specs(cmd).some((f) => f.short === 'h');
    // a command with subcommands parses its own flags up to the subcommand's name
    const interspersed = cmd.commands ? false : cmd.interspersed ?? true;
    let parsed;
    try {
      parsed = parseFlags(cmd.flags ?? {}, rest, { interspersed, helpShort: !hasShortH });
    } catch (e) {
      if (e instanceof HelpRequested) return { kind: 'help', path, cmd, ...(e.message ? { warning: e.message } : {}), globals };
      if (e instanceof FlagError) throw new ExitError(125, `${e.message}\nSee '${path.join(' ')} --help'.`);
      throw e;
    }
    warnings.push(...parsed.warnings);
    if (cmd === root) globals = parsed.values as Record<string, unknown>;
    if (cmd.commands) {
      // the root's own flags (--version) or a management command alone
      if (parsed.args.length === 0) return cmd.run ? { kind: 'run', path, cmd, args: [], values: parsed.values, globals, warnings } : { kind: 'help', path, cmd, globals };
      const name = parsed.args[0]!;
      const sub = findCommand(cmd.commands, name);
      if (!sub) {
        if (cmd === root) throw new ExitError(1, `${PROG}: '${name}' is not a ${PROG} command.\nSee '${PROG} --help'`);
        throw new ExitError(1, helpText(path, cmd).replace(/\n$/, ''));
      }
      path.push(sub.name);
      cmd = sub;
      rest = parsed.args.slice(1);
      continue;
    }
    const err = argError(path, cmd, parsed.args.length);
    if (err) throw err;
    return { kind: 'run', path, cmd, args: parsed.args, values: parsed.values, globals, warnings };
  }
}

/** Runs argv against the root command: results go to ctx.out, errors are thrown (ExitError). */
export async function execute(root: CommandSpec<any>, argv: string[], ctx: Ctx): Promise<void> {
  const r = resolveCommand(root, argv);
  ctx.globals = r.globals;
  if (r.kind === 'help') {
    if (r.warning) ctx.err.write(r.warning + '\n');
    ctx.out.write(helpText(r.path, r.cmd));
    return;
  }
  for (const w of r.warnings) ctx.err.write(w + '\n');
  ctx.commandPath = r.path.join(' ');
  await r.cmd.run?.(ctx, r.args, r.values);
}

// ------------------------------------------------------------------ completion

function walk(c: CommandSpec<any>, path: string[], out: { path: string[]; c: CommandSpec<any> }[]): void {
  out.push({ path, c });
  for (const s of c.commands ?? []) if (!s.hidden) for (const n of [s.name, ...(s.aliases ?? [])]) walk(s, [...path, n], out);
}

function flagWords(c: CommandSpec<any>): string[] {
  const w: string[] = [];
  for (const f of specs(c)) {
    if (f.hidden) continue;
    w.push(`--${f.name}`);
    if (f.short) w.push(`-${f.short}`);
  }
  return w.sort();
}

/** A bash completion script: subcommands and flags per command path, from the command table. */
export function bashCompletion(root: CommandSpec<any>): string {
  const all: { path: string[]; c: CommandSpec<any> }[] = [];
  walk(root, [], all);
  const cases = all
    .map(({ path, c }) => {
      const subs = (c.commands ?? []).filter((s) => !s.hidden).map((s) => s.name);
      const words = [...subs, ...flagWords(c)].join(' ');
      const valueFlags = specs(c)
        .filter((f) => f.kind !== 'bool' && !f.hidden)
        .flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]);
      return `    '${path.join(' ')}') words='${words}'; valueflags='${valueFlags.join(' ')}' ;;`;
    })
    .join('\n');
  return `# bash completion for ${PROG} (generated by '${PROG} completion bash')
_${PROG}() {
  local cur prev path="" i w words valueflags
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  # the command path: the words before the cursor that are commands
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    if _${PROG}_words "\${path:+$path }$w" >/dev/null; then path="\${path:+$path }$w"; else break; fi
  done
  _${PROG}_words "$path"
  case " $valueflags " in *" $prev "*) COMPREPLY=($(compgen -f -- "$cur")); return ;; esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
_${PROG}_words() {
  case "$1" in
${cases}
    *) return 1 ;;
  esac
}
complete -o default -F _${PROG} ${PROG}
`;
}

/** A zsh completion script (compdef), from the same table. */
export function zshCompletion(root: CommandSpec<any>): string {
  const all: { path: string[]; c: CommandSpec<any> }[] = [];
  walk(root, [], all);
  const esc = (s: string) => s.replace(/'/g, "'\\''").replace(/:/g, '\\:').replace(/\[/g, '\\[').replace(/\]/g, '\\]');
  const cases = all
    .map(({ path, c }) => {
      const subs = (c.commands ?? []).filter((s) => !s.hidden).map((s) => `'${s.name}:${esc(s.short)}'`);
      const flags = specs(c)
        .filter((f) => !f.hidden)
        .flatMap((f) => {
          const d = esc(f.usage.split('\n')[0]!);
          const arg = f.kind === 'bool' ? '' : `:${f.typeName || 'value'}:_files`;
          return [`'--${f.name}[${d}]${arg}'`, ...(f.short ? [`'-${f.short}[${d}]${arg}'`] : [])];
        });
      return `    '${path.join(' ')}') subs=(${subs.join(' ')}); flags=(${flags.join(' ')}) ;;`;
    })
    .join('\n');
  return `#compdef ${PROG}
# zsh completion for ${PROG} (generated by '${PROG} completion zsh')
_${PROG}() {
  local -a subs flags
  local path="" w i
  for ((i = 2; i < CURRENT; i++)); do
    w="\${words[i]}"
    [[ "$w" == -* ]] && continue
    if _${PROG}_table "\${path:+$path }$w"; then path="\${path:+$path }$w"; else break; fi
  done
  _${PROG}_table "$path"
  if (( \${#subs} )); then _describe -t commands 'command' subs; fi
  _arguments -s $flags '*:file:_files'
}
_${PROG}_table() {
  subs=(); flags=()
  case "$1" in
${cases}
    *) return 1 ;;
  esac
}
compdef _${PROG} ${PROG}
`;
}
