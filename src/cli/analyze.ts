/**
 * `image analyze`: an image's sizes, union bytes, wasted bytes and efficiency, per layer and
 * per wasted file (`--json`: engine.analysis's JSON), with dive's CI rules (`--ci`). (`explore`,
 * the web explorer, is src/bin/explore.ts: it composes this front with the ui front.)
 */
import { readFileSync } from 'node:fs';
import { shortId, type ImageAnalysis } from '../engine/index.js';
import { EngineError } from '../errors/index.js';
import { command } from './command.js';
import { ExitError } from './ctx.js';
import { flag, FlagValueError } from './flags.js';
import { humanSize, table } from './format.js';
import { ramInBytes } from './units.js';

// ------------------------------------------------------------------ CI rules (dive's)

type Rule = 'lowestEfficiency' | 'highestWastedBytes' | 'highestUserWastedPercent';
/** dive's defaults (its `rules.*` settings). */
const DEFAULTS: Record<Rule, string> = { lowestEfficiency: '0.9', highestWastedBytes: 'disabled', highestUserWastedPercent: '0.1' };

const ratio = (raw: string): string => {
  if (raw === 'disabled') return raw;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) throw new FlagValueError(`strconv.ParseFloat: parsing ${JSON.stringify(raw)}: invalid syntax`);
  return raw;
};

const bytesFlag = (raw: string): string => {
  if (raw === 'disabled') return raw;
  return String(ramInBytes(raw));
};

/**
 * go-humanize's ParseBytes, which dive uses for highestWastedBytes in `.dive-ci`: SI units
 * (kB = 1000, MB = 1000²), IEC units (KiB = 1024, MiB = 1024²), a single letter is SI.
 */
export function parseHumanBytes(s: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$/.exec(s.replace(/,/g, ''));
  if (!m) throw new Error(`strconv.ParseFloat: parsing ${JSON.stringify(s)}: invalid syntax`);
  const u = m[2]!.toLowerCase();
  const si = ['', 'k', 'm', 'g', 't', 'p', 'e'];
  let mult: number | undefined;
  const base = u.replace(/b$/, '');
  if (u === '' || u === 'b') mult = 1;
  else if (base.endsWith('i') && si.includes(base.slice(0, -1)) && base.length === 2) mult = 1024 ** si.indexOf(base.slice(0, -1));
  else if (si.includes(base)) mult = 1000 ** si.indexOf(base);
  if (mult === undefined) throw new Error(`unhandled size name: ${m[2]}`);
  return Math.floor(Number(m[1]) * mult);
}

/**
 * A `.dive-ci` file: YAML with a `rules:` mapping of the three keys (comments, quotes and a
 * flat `rules.key: value` form are accepted; nothing else of YAML is needed).
 */
export function parseCiConfig(text: string, where: string): Partial<Record<Rule, string>> {
  const out: Partial<Record<Rule, string>> = {};
  let inRules = false;
  const keys = new Set<string>(Object.keys(DEFAULTS));
  text.split(/\r?\n/).forEach((line, i) => {
    const noComment = line.replace(/(^|\s)#.*$/, '');
    if (noComment.trim() === '') return;
    const m = /^(\s*)([A-Za-z.]+)\s*:\s*(.*?)\s*$/.exec(noComment);
    if (!m) throw new EngineError('invalid-argument', 'CI_CONFIG_SYNTAX', `${where}:${i + 1}: cannot read ${JSON.stringify(line.trim())}`, { hint: 'a .dive-ci file is `rules:` followed by indented `key: value` lines' });
    const indented = m[1]!.length > 0;
    let key = m[2]!;
    let value = m[3]!.replace(/^(['"])(.*)\1$/, '$2');
    if (!indented) {
      if (key === 'rules' && value === '') {
        inRules = true;
        return;
      }
      inRules = false;
      if (!key.startsWith('rules.')) return; // other settings of dive's config: not ours
      key = key.slice(6);
    } else if (!inRules) return;
    if (!keys.has(key)) throw new EngineError('invalid-argument', 'CI_CONFIG_KEY', `${where}:${i + 1}: unknown rule ${JSON.stringify(key)}`, { hint: `the rules are ${[...keys].join(', ')}` });
    if (value === '') value = 'disabled';
    out[key as Rule] = value;
  });
  return out;
}

export interface RuleResult {
  rule: Rule;
  status: 'PASS' | 'FAIL' | 'SKIP';
  message: string;
}

/** dive's three rules, with its comparisons and messages. */
export function evaluateCi(a: ImageAnalysis, config: Record<Rule, string>): RuleResult[] {
  const userBytes = a.layers.slice(1).reduce((s, l) => s + l.sizeBytes, 0);
  const userWasted = userBytes > 0 ? a.wastedBytes / userBytes : a.wastedBytes > 0 ? Infinity : 0;
  const out: RuleResult[] = [];
  for (const rule of ['highestUserWastedPercent', 'highestWastedBytes', 'lowestEfficiency'] as Rule[]) {
    const v = config[rule];
    if (v === 'disabled') {
      out.push({ rule, status: 'SKIP', message: 'rule disabled' });
      continue;
    }
    const bad = (why: string) => out.push({ rule, status: 'FAIL', message: `invalid config value (${JSON.stringify(v)}): ${why}` });
    if (rule === 'highestWastedBytes') {
      let t: number;
      try {
        t = /^\d+$/.test(v) ? Number(v) : parseHumanBytes(v);
      } catch (e) {
        bad((e as Error).message);
        continue;
      }
      if (a.wastedBytes > t) out.push({ rule, status: 'FAIL', message: `too many bytes wasted (wasted-bytes=${a.wastedBytes} > threshold=${t})` });
      else out.push({ rule, status: 'PASS', message: '' });
      continue;
    }
    const t = Number(v);
    if (v.trim() === '' || !Number.isFinite(t)) {
      bad('invalid syntax');
      continue;
    }
    if (rule === 'lowestEfficiency') {
      if (t > a.efficiency) out.push({ rule, status: 'FAIL', message: `image efficiency is too low (efficiency=${a.efficiency} < threshold=${t})` });
      else out.push({ rule, status: 'PASS', message: '' });
    } else {
      if (t < userWasted) out.push({ rule, status: 'FAIL', message: `too many bytes wasted, relative to the user bytes added (%-user-wasted-bytes=${userWasted} > threshold=${t})` });
      else out.push({ rule, status: 'PASS', message: '' });
    }
  }
  return out;
}

// ------------------------------------------------------------------ image analyze

const pct = (r: number) => `${(Math.floor(r * 10000) / 100).toFixed(2)} %`;
const oneLine = (s: string, n = 60) => {
  const t = s.replace(/\s+/g, ' ').trim();
  return [...t].length > n ? [...t].slice(0, n - 1).join('') + '…' : t;
};

function summary(a: ImageAnalysis): string {
  let s = `Image: ${a.image} (${shortId(a.id)})\n`;
  s += `  Total size:   ${humanSize(a.sizeBytes)} (${a.sizeBytes} bytes of files in ${a.layers.length} layer${a.layers.length === 1 ? '' : 's'})\n`;
  s += `  In the union: ${humanSize(a.unionBytes)} (${a.unionBytes} bytes)\n`;
  s += `  Wasted:       ${humanSize(a.wastedBytes)} (${a.wastedBytes} bytes)\n`;
  s += `  Efficiency:   ${pct(a.efficiency)}\n\nLayers:\n`;
  s += table([
    ['#', 'SIZE', 'ADDED', 'MODIFIED', 'REMOVED', 'OPAQUE', 'DIFF ID', 'CREATED BY'],
    ...a.layers.map((l) => [String(l.index), humanSize(l.sizeBytes), String(l.added), String(l.modified), String(l.removed), String(l.opaque), shortId(l.diffID), oneLine(l.createdBy)]),
  ]);
  s += '\nWasted (stored in a layer, hidden by a later one; largest first):\n';
  if (a.wasted.length === 0) s += '  none\n';
  else s += table([['BYTES', 'LAYERS', 'PATH'], ...a.wasted.slice(0, 20).map((w) => [humanSize(w.bytes), w.layers.join(','), w.path])]);
  if (a.wasted.length > 20) s += `  … and ${a.wasted.length - 20} more (--json lists them all)\n`;
  return s;
}

export const analyze = command({
  name: 'analyze',
  usage: '[OPTIONS] IMAGE',
  short: "Show what an image's layers store, what the union shows and what is wasted (also docker-archive:PATH, oci:PATH, oci-archive:PATH)",
  flags: {
    json: flag.bool('json', '', 'Print the analysis as JSON'),
    ci: flag.bool('ci', '', "Check dive's CI rules: print each as PASS or FAIL, exit 1 when one fails"),
    ciConfig: flag.string('ci-config', '', 'A .dive-ci file with the rules (default ./.dive-ci when it exists)'),
    lowestEfficiency: flag.value('lowest-efficiency', '', 'CI: fail below this efficiency (ratio 0-1, or "disabled"; default 0.9)', { parse: ratio, typeName: 'ratio' }),
    highestWastedBytes: flag.value('highest-wasted-bytes', '', 'CI: fail above this many wasted bytes (bytes, or Docker\'s units: 20m; or "disabled", the default)', { parse: bytesFlag, typeName: 'bytes' }),
    highestUserWastedPercent: flag.value('highest-user-wasted-percent', '', 'CI: fail above this ratio of wasted bytes to the bytes of all layers but the first (default 0.1)', { parse: ratio, typeName: 'ratio' }),
  },
  args: { min: 1, max: 1 },
  async run(ctx, [name], o) {
    if (o.json && o.ci) throw new ExitError(125, `--json and --ci cannot be combined\nSee '${ctx.commandPath} --help'.`);
    const engine = await ctx.engine();
    const a = await engine.analysis.analyze(name!);
    if (o.json) {
      ctx.out.write(JSON.stringify(a, null, 2) + '\n');
      return;
    }
    if (!o.ci) {
      ctx.out.write(summary(a));
      return;
    }
    const config: Record<Rule, string> = { ...DEFAULTS };
    const file = o.ciConfig || '.dive-ci';
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if (o.ciConfig) throw new EngineError('invalid-argument', 'CI_CONFIG_UNREADABLE', `cannot read the CI config ${file}: ${(e as Error).message}`);
    }
    if (text !== undefined) Object.assign(config, parseCiConfig(text, file));
    if (o.lowestEfficiency !== undefined) config.lowestEfficiency = o.lowestEfficiency;
    if (o.highestWastedBytes !== undefined) config.highestWastedBytes = o.highestWastedBytes;
    if (o.highestUserWastedPercent !== undefined) config.highestUserWastedPercent = o.highestUserWastedPercent;
    const results = evaluateCi(a, config);
    let s = summary(a) + '\nResults:\n';
    for (const r of results) s += `  ${r.status}: ${r.rule}${r.message ? ': ' + r.message : ''}\n`;
    const n = (st: string) => results.filter((r) => r.status === st).length;
    const failed = n('FAIL') > 0;
    s += `Result:${failed ? 'FAIL' : 'PASS'} [Total:${results.length}] [Passed:${n('PASS')}] [Failed:${n('FAIL')}] [Warn:0] [Skipped:${n('SKIP')}]\n`;
    ctx.out.write(s);
    if (failed) throw new ExitError(1);
  },
});

// ------------------------------------------------------------------ explore
