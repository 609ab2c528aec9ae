// The file tree: virtualised (only the rows in view are in the DOM) and lazy (a directory's
// entries are fetched from the JSON API when it is opened, a page at a time).
import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, modeString, size } from './util.js';

export const ROW = 24;
const PAGE = 1000;
const OVERSCAN = 12;

const HOW = { overwritten: 'overwritten', whiteout: 'removed (whiteout)', opaque: 'hidden (opaque dir)', replaced: 'replaced (parent became a file)' };
export const hiddenText = (h) => `${HOW[h.how] || h.how} by layer ${h.layer}`;

function Badges({ e, merged }) {
  const out = [];
  if (e.status === 'added' && !merged) out.push(html`<span class="badge added" title="new in this layer">added</span>`);
  if (e.status === 'modified' && !merged)
    out.push(html`<span class="badge modified" title=${`replaces layer ${e.replaces}'s entry: ${(e.reasons || []).join(', ') || 'copied up unchanged'}`}>modified: ${e.reasons && e.reasons.length ? e.reasons.join(', ') : 'copied up'}</span>`);
  if (e.type === 'whiteout') out.push(html`<span class="badge removed" title=${e.replaces !== undefined ? `removes layer ${e.replaces}'s entry` : 'removes nothing below'}>removed</span>`);
  if (e.opaque) out.push(html`<span class="badge opaque" title="opaque directory: hides everything lower layers had inside it">opaque</span>`);
  if (e.implicit) out.push(html`<span class="badge implicit" title="a parent directory the layer's tar did not list">implicit</span>`);
  if (e.hidden) out.push(html`<span class="badge hidden" title=${`by ${e.hidden.by ? '/' + e.hidden.by : ''}`}>${hiddenText(e.hidden)}</span>`);
  if (merged && e.shadows && e.shadows.length)
    out.push(html`<span class="badge shadows" title=${e.shadows.map((s) => `layer ${s.layer}: ${s.type}, ${hiddenText(s.hidden)}`).join('\n')}>shadows ${e.shadows.map((s) => 'L' + s.layer).join(' ')}</span>`);
  return out;
}

/**
 * props: ref (image), layer (number or null: the merged tree), removed, sort,
 * selected (path), onSelect(entry)
 */
export function Tree({ imageRef, layer, removed, sort, selected, onSelect }) {
  const dirs = useRef(new Map()); // path -> { entries, total, loading, error }
  const expanded = useRef(new Set());
  const [version, setVersion] = useState(0);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const box = useRef(null);
  const bump = () => setVersion((v) => v + 1);
  const key = `${imageRef}|${layer}|${removed}|${sort}`;
  const keyRef = useRef(key);

  async function load(path, offset = 0) {
    const d = dirs.current.get(path) || { entries: [], total: 0, loading: false };
    if (d.loading) return;
    d.loading = true;
    dirs.current.set(path, d);
    const k = keyRef.current;
    try {
      const r = await api('tree', { ref: imageRef, path, layer: layer ?? '', removed: removed ? 1 : '', sort, offset, limit: PAGE });
      if (keyRef.current !== k) return;
      d.entries = offset === 0 ? r.entries : d.entries.concat(r.entries);
      d.total = r.total;
      d.error = undefined;
    } catch (e) {
      d.error = e.message;
    } finally {
      d.loading = false;
      bump();
    }
  }

  useEffect(() => {
    keyRef.current = key;
    dirs.current = new Map();
    expanded.current = new Set();
    if (box.current) box.current.scrollTop = 0;
    setScrollTop(0);
    load('/');
  }, [key]);

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight || 600));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const rows = useMemo(() => {
    const out = [];
    const walk = (path, depth) => {
      const d = dirs.current.get(path);
      if (!d) return;
      for (const e of d.entries) {
        out.push({ e, depth });
        if (e.type === 'dir' && expanded.current.has(e.path)) {
          const sub = dirs.current.get(e.path);
          if (!sub || (sub.loading && sub.entries.length === 0)) out.push({ note: 'loading…', depth: depth + 1 });
          else if (sub.error) out.push({ note: sub.error, depth: depth + 1, error: true });
          else walk(e.path, depth + 1);
        }
      }
      if (d.entries.length < d.total) out.push({ more: path, left: d.total - d.entries.length, offset: d.entries.length, depth });
    };
    walk('/', 0);
    return out;
  }, [version]);

  const first = Math.max(0, Math.floor(scrollTop / ROW) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + height) / ROW) + OVERSCAN);

  // a "more" row in view fetches the next page
  useEffect(() => {
    for (let i = first; i < last; i++) {
      const r = rows[i];
      if (r && r.more && !dirs.current.get(r.more)?.loading) load(r.more, r.offset);
    }
  }, [first, last, rows]);

  function toggle(e) {
    onSelect && onSelect(e);
    if (e.type !== 'dir') return;
    if (expanded.current.has(e.path)) expanded.current.delete(e.path);
    else {
      expanded.current.add(e.path);
      if (!dirs.current.has(e.path)) load(e.path);
    }
    bump();
  }

  const root = dirs.current.get('/');
  const merged = layer === null || layer === undefined;
  return html`
    <div class="tree" ref=${box} onScroll=${(ev) => setScrollTop(ev.currentTarget.scrollTop)} data-rows=${rows.length}>
      ${root && root.error ? html`<p class="error">${root.error}</p>` : null}
      ${root && !root.loading && root.total === 0 ? html`<p class="empty">This ${merged ? 'image' : 'layer'} has no entries.</p>` : null}
      <div class="tree-inner" style=${`height:${rows.length * ROW}px`}>
        ${rows.slice(first, last).map((r, k) => {
          const i = first + k;
          const style = `top:${i * ROW}px;padding-left:${8 + r.depth * 18}px`;
          if (r.note) return html`<div class=${'row note' + (r.error ? ' error' : '')} style=${style} key=${'n' + i}>${r.note}</div>`;
          if (r.more) return html`<div class="row more" style=${style} key=${'m' + r.more}>loading ${r.left} more…</div>`;
          const e = r.e;
          const open = expanded.current.has(e.path);
          const cls = ['row', e.type, e.status || '', e.hidden ? 'gone' : '', selected === e.path ? 'selected' : ''].join(' ');
          return html`
            <div class=${cls} style=${style} key=${e.path} data-path=${e.path} data-type=${e.type} data-status=${e.status || ''} data-opaque=${e.opaque ? '1' : ''} data-layer=${e.layer} onClick=${() => toggle(e)} title=${e.path}>
              <span class="caret">${e.type === 'dir' ? (open ? '▾' : '▸') : ''}</span>
              <span class="name">${e.name}${e.type === 'symlink' || e.type === 'hardlink' ? html`<span class="target"> → ${e.target}</span>` : null}</span>
              <span class="badges"><${Badges} e=${e} merged=${merged} /></span>
              <span class="layer" title=${`from layer ${e.layer}`}>L${e.layer}</span>
              <span class="size">${e.type === 'whiteout' ? '' : size(e.size)}</span>
              <span class="mode">${modeString(e.type, e.mode)}</span>
              <span class="owner">${e.uid}:${e.gid}</span>
            </div>
          `;
        })}
      </div>
    </div>
  `;
}
