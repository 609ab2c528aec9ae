// Small helpers shared by the explorer's views: the JSON API, sizes, modes, colours.

export const PREFIX = document.body.dataset.prefix || '/ui';

/** GET a JSON API route; an error answer becomes an Error with the server's message and hint. */
export async function api(route, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const res = await fetch(`${PREFIX}/api/${route}?${q}`, { headers: { Accept: 'application/json' } });
  const body = await res.json().catch(() => ({ message: `HTTP ${res.status}` }));
  if (!res.ok) {
    const e = new Error(body.message || `HTTP ${res.status}`);
    e.hint = body.hint;
    e.status = res.status;
    throw e;
  }
  return body;
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];
/** Docker's human sizes: decimal units, 3 significant digits. */
export function size(n) {
  if (n === null || n === undefined) return '—';
  let v = n;
  let i = 0;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : Number(v.toPrecision(3))}${UNITS[i]}`;
}

export const pct = (r) => `${(Math.floor(r * 1000) / 10).toFixed(1)}%`;
export const short = (d) => (d ? d.replace(/^sha256:/, '').slice(0, 12) : '—');

const TYPE_CHAR = { dir: 'd', symlink: 'l', char: 'c', block: 'b', fifo: 'p', whiteout: 'c', file: '-', hardlink: '-' };
/** `-rwxr-xr-x` from a type and octal permission bits ("4755"). */
export function modeString(type, mode) {
  const m = parseInt(mode, 8);
  const rwx = (b, s, ch) => `${b & 4 ? 'r' : '-'}${b & 2 ? 'w' : '-'}${s ? (b & 1 ? ch : ch.toUpperCase()) : b & 1 ? 'x' : '-'}`;
  return (
    (TYPE_CHAR[type] || '?') +
    rwx((m >> 6) & 7, m & 0o4000, 's') +
    rwx((m >> 3) & 7, m & 0o2000, 's') +
    rwx(m & 7, m & 0o1000, 't')
  );
}

/** A stable hue per layer (chainID): the same layer has the same colour in every stack. */
export function hue(id) {
  let h = 0;
  for (let i = 7; i < Math.min(id.length, 23); i++) h = (h * 31 + id.charCodeAt(i)) % 360;
  return h;
}

export const oneLine = (s, n = 80) => {
  const t = (s || '').replace(/\s+/g, ' ').trim();
  return t.length > n ? t.slice(0, n - 1) + '…' : t;
};

export const imageName = (img) => (img.tags && img.tags.length ? img.tags[0] : short(img.id));

export const date = (unix) => (unix ? new Date(unix * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—');

/** A classic hex dump (offset, 16 bytes, ASCII) of base64 data starting at `offset`. */
export function hexDump(b64, offset = 0) {
  const bin = atob(b64);
  const lines = [];
  for (let i = 0; i < bin.length; i += 16) {
    const chunk = bin.slice(i, i + 16);
    const hex = [...chunk].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(' ');
    const ascii = [...chunk].map((c) => (c.charCodeAt(0) >= 32 && c.charCodeAt(0) < 127 ? c : '.')).join('');
    lines.push(`${(offset + i).toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n');
}
