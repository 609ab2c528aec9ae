/** Docker's filters (`{key: [values]}`): parsing from the CLI's `-f k=v`, validation, common predicates. */
import { invalidArgument } from '../errors/index.js';
import type { Filters } from './types.js';

/** `-f key=value` arguments, repeated, as a Filters map (the docker CLI's opts.FilterOpt). */
export function parseFilterArgs(args: string[]): Filters {
  const f: Filters = {};
  for (const a of args) {
    const i = a.indexOf('=');
    if (i < 0) throw invalidArgument('BAD_FILTER', 'bad format of filter (expected name=value)', { where: a });
    const k = a.slice(0, i).trim().toLowerCase();
    (f[k] ??= []).push(a.slice(i + 1).trim());
  }
  return f;
}

/** Refuses a key outside `allowed`, with Docker's message. */
export function acceptFilters(f: Filters, allowed: string[]): void {
  for (const k of Object.keys(f)) if (!allowed.includes(k)) throw invalidArgument('INVALID_FILTER', `Invalid filter '${k}'`);
}

/** A true/false filter (dangling): undefined when absent. */
export function boolFilter(f: Filters, key: string): boolean | undefined {
  const v = f[key];
  if (!v?.length) return undefined;
  const set = new Set(v.map((x) => x.toLowerCase()));
  for (const x of set) if (!['true', 'false', '1', '0'].includes(x)) throw invalidArgument('INVALID_FILTER', `Invalid filter '${key}=${x}'`);
  if (set.has('true') || set.has('1')) {
    if (set.has('false') || set.has('0')) throw invalidArgument('INVALID_FILTER', `Invalid filter '${key}': true and false at once`);
    return true;
  }
  return false;
}

/** before/since: the creation time (ms) of the object a value names; the bound of several is the tightest. */
export function timeFilterBound(values: string[] | undefined, createdOf: (name: string) => string | undefined): number | undefined {
  if (!values?.length) return undefined;
  const times = values.map((v) => Date.parse(createdOf(v) ?? '') || 0);
  return times[0];
}

/** Docker's label filter: `key` (present) or `key=value` (equal). */
export function labelMatch(labels: Record<string, string> | null | undefined, filter: string): boolean {
  const i = filter.indexOf('=');
  const k = i < 0 ? filter : filter.slice(0, i);
  if (!labels || !(k in labels)) return false;
  return i < 0 || labels[k] === filter.slice(i + 1);
}

/** Docker's `until` filter value: a timestamp, or a duration before now (10m, 2h). Returns unix ms. */
export function parseUntil(v: string, now = Date.now()): number {
  const rel = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$/.exec(v);
  if (rel) return now - Number(rel[1]) * { ns: 1e-6, us: 1e-3, ms: 1, s: 1e3, m: 6e4, h: 36e5 }[rel[2] as 'ns'];
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw invalidArgument('INVALID_FILTER', `failed to parse value as time or duration: "${v}"`);
  return t;
}
