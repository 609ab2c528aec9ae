/** Docker's ways of printing: human sizes and durations, tab-aligned tables, --format templates. */
import { humanDuration } from '../engine/index.js';

export { humanDuration };

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];

/** go-units HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits. */
export function humanSize(bytes: number, precision = 3): string {
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < UNITS.length - 1) {
    size /= 1000;
    i++;
  }
  return goG(size, precision) + UNITS[i];
}

/** Go's %.*g formatting (no exponent for the ranges used here, trailing zeros dropped). */
function goG(v: number, precision: number): string {
  if (v === 0) return '0';
  let s = v.toPrecision(precision);
  if (s.includes('e')) s = String(Number(s));
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}

export function since(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (!Number.isFinite(t) || t <= 0) return 'N/A';
  return humanDuration(now - t) + ' ago';
}

/** Go's time.Time String() as Docker prints CreatedAt: "2024-01-01 00:00:00 +0000 UTC". */
export function goTime(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000 UTC`;
}

/** text/tabwriter with Docker's settings (minwidth 10, padding 3, pad with spaces). */
export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const cols = Math.max(...rows.map((r) => r.length));
  const widths: number[] = [];
  for (let c = 0; c < cols - 1; c++) {
    const w = Math.max(...rows.map((r) => width(r[c] ?? '')));
    widths.push(Math.max(10, w + 3));
  }
  return rows.map((r) => r.map((cell, c) => (c < r.length - 1 ? cell + ' '.repeat(Math.max(0, widths[c]! - width(cell))) : cell)).join('')).join('\n') + '\n';
}

function width(s: string): number {
  // East Asian wide characters take two cells (tabwriter counts runes; close enough)
  let w = 0;
  for (const ch of s) w += /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/.test(ch) ? 2 : 1;
  return w;
}

/**
 * A small subset of Go templates as the docker CLI uses them with --format:
 * `json` (one JSON object per line), `table ...`, `{{.Field}}`, `{{json .}}`,
 * `{{json .Field}}`, `{{upper .F}}`, `{{lower .F}}`, `\t` and `\n` escapes.
 */
export function renderTemplate(tpl: string, obj: Record<string, unknown>): string {
  return tpl
    .replace(/\\t/g, '\t')
    .replace(/\\n/g, '\n')
    .replace(/\{\{\s*(json|upper|lower|println)?\s*\.([A-Za-z0-9_.]*)\s*\}\}/g, (_m, fn: string | undefined, path: string) => {
      let v: unknown = obj;
      if (path) for (const k of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
      if (fn === 'json') return JSON.stringify(v ?? null);
      const s = v === undefined || v === null ? '<no value>' : typeof v === 'object' ? goValue(v) : String(v);
      if (fn === 'upper') return s.toUpperCase();
      if (fn === 'lower') return s.toLowerCase();
      return s;
    });
}

function goValue(v: unknown): string {
  if (Array.isArray(v)) return '[' + v.map((x) => (typeof x === 'object' ? goValue(x) : String(x))).join(' ') + ']';
  if (v && typeof v === 'object') return 'map[' + Object.entries(v).map(([k, x]) => `${k}:${typeof x === 'object' ? goValue(x) : String(x)}`).join(' ') + ']';
  return String(v);
}

/** Prints rows with --format: "json", "table TEMPLATE", or a template per row. Returns undefined when no format. */
export function formatRows(format: string | undefined, rows: Record<string, unknown>[], headers: Record<string, string>): string | undefined {
  if (!format) return undefined;
  if (format === 'json') return rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
  if (format.startsWith('table')) {
    const tpl = format.slice(5).trim() || Object.keys(headers).map((k) => `{{.${k}}}`).join('\t');
    const headerLine = renderTemplate(tpl, headers);
    const lines = [headerLine, ...rows.map((r) => renderTemplate(tpl, r))];
    return table(lines.map((l) => l.split('\t')));
  }
  return rows.map((r) => renderTemplate(format, r)).join('\n') + (rows.length ? '\n' : '');
}
