// The layer explorer's pages: the store view (#/), an image's page (#/image/REF) and the
// compare view (#/compare/A/B). Preact + htm, straight from node_modules: no build step.
import { render } from 'preact';
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { Tree, hiddenText } from './tree.js';
import { api, date, hexDump, hue, imageName, modeString, oneLine, pct, short, size } from './util.js';

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const f = () => setHash(location.hash);
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return hash;
}

/** Fetches once per key; returns { data, error }. */
function useApi(route, params, deps) {
  const [state, setState] = useState({ data: undefined, error: undefined });
  useEffect(() => {
    let live = true;
    setState({ data: undefined, error: undefined });
    if (params === null) return undefined;
    api(route, params).then(
      (data) => live && setState({ data, error: undefined }),
      (error) => live && setState({ data: undefined, error }),
    );
    return () => {
      live = false;
    };
  }, deps);
  return state;
}

function Problem({ error }) {
  return html`<div class="problem" role="alert"><strong>${error.message}</strong>${error.hint ? html`<p>${error.hint}</p>` : null}<p><a href="#/">Back to the store</a></p></div>`;
}

function Figure({ label, value, sub, cls }) {
  return html`<div class=${'figure ' + (cls || '')} data-figure=${label}><div class="label">${label}</div><div class="value">${value}</div>${sub ? html`<div class="sub">${sub}</div>` : null}</div>`;
}

// ------------------------------------------------------------------ the store view

function Stack({ img, layersById, hover, setHover, maxSize }) {
  const blocks = [...img.chain].reverse(); // the base at the bottom
  return html`
    <div class="stack" aria-label=${`layers of ${imageName(img)}`}>
      ${blocks.map((c) => {
        const l = layersById.get(c);
        const h = 16 + Math.round((34 * Math.log10((l?.size || 0) + 1)) / Math.log10(maxSize + 10));
        const shared = l && l.refCount > 1;
        return html`
          <div class=${'block' + (shared ? ' shared' : '') + (hover === c ? ' hover' : '')} style=${`height:${h}px;--h:${hue(c)}`} data-chain=${c} data-refs=${l?.refCount ?? 0}
            onMouseEnter=${() => setHover(c)} onMouseLeave=${() => setHover(null)} title=${`${short(c)} · ${size(l?.size)} · ${oneLine(l?.createdBy || '', 200) || 'no history'}${shared ? ` · shared by ${l.refCount} images` : ''}`}>
            <span class="bl-id">${short(c)}</span>
            <span class="bl-size">${size(l?.size)}</span>
            ${shared ? html`<span class="bl-shared">shared ×${l.refCount}</span>` : null}
          </div>
        `;
      })}
    </div>
  `;
}

function StoreView() {
  const { data, error } = useApi('store', {}, []);
  const [hover, setHover] = useState(null);
  const [a, setA] = useState('');
  const [b, setB] = useState('');
  if (error) return html`<${Problem} error=${error} />`;
  if (!data) return html`<p class="loading">Reading the store…</p>`;
  const layersById = new Map(data.layers.map((l) => [l.chainID, l]));
  const shared = data.layers.filter((l) => l.refCount > 1);
  const maxSize = Math.max(1, ...data.layers.map((l) => l.size));
  const sum = data.images.reduce((s, i) => s + i.size, 0);
  const tagsOf = new Map(data.images.map((i) => [i.id, imageName(i)]));
  return html`
    <section class="store">
      <h1>The store</h1>
      <div class="figures">
        <${Figure} label="Images" value=${data.images.length} />
        <${Figure} label="Layers" value=${data.layers.length} sub=${`${shared.length} shared by several images`} />
        <${Figure} label="On disk" value=${size(data.layersSize)} sub="every layer once" />
        <${Figure} label="Without sharing" value=${size(sum)} sub=${`sharing saves ${size(Math.max(0, sum - data.layersSize))}`} />
      </div>
      <h2>Images, as stacks of layers</h2>
      <p class="hint">The base is at the bottom. A layer has the same colour wherever it appears: it is stored once, however many images use it. Point at one to find it in every stack.</p>
      <div class="images">
        ${data.images.map(
          (img) => html`
            <div class="image-card" data-image=${img.id}>
              <a class="title" href=${`#/image/${encodeURIComponent(img.id)}`}>${imageName(img)}</a>
              <div class="id">${short(img.id)}${img.tags.length > 1 ? ` · also ${img.tags.slice(1).join(', ')}` : ''}</div>
              <${Stack} img=${img} layersById=${layersById} hover=${hover} setHover=${setHover} maxSize=${maxSize} />
              <dl class="usage">
                <dt>Size</dt><dd data-k="size">${size(img.size)}</dd>
                <dt>Shared</dt><dd data-k="shared">${size(img.sharedSize)}</dd>
                <dt>Own</dt><dd data-k="unique">${size(img.uniqueSize)}</dd>
                <dt>Containers</dt><dd>${img.containers}</dd>
                <dt>rmi frees</dt><dd data-k="rmi">${img.containers > 0 ? html`nothing <small>(in use)</small>` : size(img.rmiFrees)}</dd>
              </dl>
            </div>
          `,
        )}
      </div>
      ${data.images.length > 1
        ? html`<div class="compare-pick">
            Compare
            <select value=${a} onChange=${(e) => setA(e.currentTarget.value)} aria-label="first image"><option value="">…</option>${data.images.map((i) => html`<option value=${i.id}>${imageName(i)}</option>`)}</select>
            with
            <select value=${b} onChange=${(e) => setB(e.currentTarget.value)} aria-label="second image"><option value="">…</option>${data.images.map((i) => html`<option value=${i.id}>${imageName(i)}</option>`)}</select>
            ${a && b ? html`<a class="button" href=${`#/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`}>Compare</a>` : null}
          </div>`
        : null}
      <h2>Layers</h2>
      <table class="layers-table">
        <thead><tr><th>chain ID</th><th>diff ID</th><th>created by</th><th class="num">size</th><th class="num">refs</th><th>used by</th></tr></thead>
        <tbody>
          ${data.layers.map(
            (l) => html`
              <tr class=${(l.refCount > 1 ? 'shared' : '') + (hover === l.chainID ? ' hover' : '')} data-chain=${l.chainID} onMouseEnter=${() => setHover(l.chainID)} onMouseLeave=${() => setHover(null)}>
                <td><span class="swatch" style=${`--h:${hue(l.chainID)}`}></span><code>${short(l.chainID)}</code></td>
                <td><code>${short(l.diffID)}</code></td>
                <td class="cmd" title=${l.createdBy}>${oneLine(l.createdBy, 70) || html`<em>no history</em>`}</td>
                <td class="num">${size(l.size)}</td>
                <td class="num" data-k="refs">${l.refCount}</td>
                <td>${l.images.map((id) => html`<a class="chip" href=${`#/image/${encodeURIComponent(id)}`}>${tagsOf.get(id) || short(id)}</a>`)}</td>
              </tr>
            `,
          )}
        </tbody>
      </table>
    </section>
  `;
}

// ------------------------------------------------------------------ an image's page

function Preview({ imageRef, entry, layer }) {
  const [offset, setOffset] = useState(0);
  const [hex, setHex] = useState(false);
  const isFile = entry.type === 'file' || entry.type === 'hardlink';
  useEffect(() => setOffset(0), [entry.path, layer]);
  const { data, error } = useApi('file', isFile ? { ref: imageRef, path: entry.path, layer: layer ?? '', offset } : null, [imageRef, entry.path, layer, offset, isFile]);
  if (!isFile) return null;
  if (error) return html`<p class="error">${error.message}</p>`;
  if (!data) return html`<p class="loading">Reading…</p>`;
  const showHex = hex || data.binary;
  return html`
    <div class="preview">
      <div class="preview-bar">
        <span>${data.length ? `bytes ${data.offset}–${data.offset + data.length - 1} of ${data.size}` : 'empty file'}</span>
        ${!data.binary ? html`<label><input type="checkbox" checked=${hex} onChange=${(e) => setHex(e.currentTarget.checked)} /> hex</label>` : html`<span class="badge">binary</span>`}
        ${data.offset > 0 ? html`<button onClick=${() => setOffset(Math.max(0, data.offset - 65536))}>previous</button>` : null}
        ${data.truncated ? html`<button onClick=${() => setOffset(data.offset + data.length)}>next 64 KiB</button>` : null}
      </div>
      <pre class=${showHex ? 'hex' : 'text'} data-preview>${showHex ? hexDump(data.base64, data.offset) : data.text}</pre>
    </div>
  `;
}

function Details({ imageRef, entry, layer, detail }) {
  const [full, setFull] = useState(null);
  useEffect(() => {
    setFull(null);
    if (!entry || entry.status !== 'modified' || !(entry.type === 'file' || entry.type === 'hardlink')) return;
    let live = true;
    api('entry', { ref: imageRef, path: entry.path, layer: layer ?? '' }).then((r) => live && setFull(r), () => {});
    return () => {
      live = false;
    };
  }, [imageRef, entry && entry.path, layer]);
  if (!entry) return html`<aside class="details empty"><p>Select an entry to see where it comes from, what it shadows, and its content.</p></aside>`;
  const l = detail.layerDetails[entry.layer];
  const reasons = entry.reasons || [];
  const content = full && full.contentChanged !== undefined ? (full.contentChanged === true ? 'the bytes differ' : full.contentChanged === false ? 'the bytes are the same' : 'bytes not compared') : null;
  return html`
    <aside class="details" data-details=${entry.path}>
      <h3><code>${entry.path}</code></h3>
      <dl>
        <dt>type</dt><dd>${entry.type}${entry.opaque ? ' (opaque directory)' : ''}${entry.implicit ? ' (implicit)' : ''}</dd>
        ${entry.target !== undefined ? html`<dt>${entry.type === 'hardlink' ? 'links to' : 'target'}</dt><dd><code>${entry.target}</code></dd>` : null}
        ${entry.type !== 'whiteout' ? html`<dt>size</dt><dd>${size(entry.size)} <small>(${entry.size} bytes${entry.type === 'dir' ? ' below' : ''})</small></dd>` : null}
        <dt>mode</dt><dd><code>${modeString(entry.type, entry.mode)}</code> ${entry.mode}</dd>
        <dt>owner</dt><dd>${entry.uid}:${entry.gid}</dd>
        <dt>modified</dt><dd>${date(entry.mtime)}</dd>
        <dt>layer</dt><dd>${entry.layer}${l ? html` <small title=${l.createdBy}>${oneLine(l.createdBy, 60)}</small>` : null}</dd>
        ${entry.status ? html`<dt>in its layer</dt><dd data-k="status">${entry.status}${entry.status === 'modified' ? html` — replaces layer ${entry.replaces}'s entry: <strong data-k="reasons">${reasons.length ? reasons.join(', ') : 'copied up unchanged'}</strong>${content ? html`; ${content}` : null}` : null}${entry.type === 'whiteout' ? (entry.replaces !== undefined ? ` — removes layer ${entry.replaces}'s entry` : ' — removes nothing below') : ''}</dd>` : null}
        ${entry.hidden ? html`<dt>hidden</dt><dd class="gone-text">${hiddenText(entry.hidden)} (<code>/${entry.hidden.by}</code>)</dd>` : null}
      </dl>
      ${entry.shadows && entry.shadows.length
        ? html`<h4>Shadows</h4><ul class="shadows">${entry.shadows.map((s) => html`<li>layer ${s.layer}: ${s.type}${s.type === 'file' ? ', ' + size(s.size) : ''} — ${hiddenText(s.hidden)}</li>`)}</ul>`
        : null}
      ${detail.readable ? html`<${Preview} imageRef=${imageRef} entry=${entry} layer=${layer} />` : null}
    </aside>
  `;
}

function Search({ imageRef, layer, onSelect }) {
  const [q, setQ] = useState('');
  const [sort, setSort] = useState('size');
  const [res, setRes] = useState(null);
  useEffect(() => {
    if (!q) return setRes(null);
    let live = true;
    const t = setTimeout(() => api('search', { ref: imageRef, q, layer: layer ?? '', sort, limit: 500 }).then((r) => live && setRes(r), (e) => live && setRes({ error: e.message })), 150);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [q, sort, layer, imageRef]);
  return html`
    <div class="search">
      <div class="toolbar">
        <input type="search" placeholder="Search by path…" value=${q} onInput=${(e) => setQ(e.currentTarget.value)} aria-label="search by path" />
        <label>sort <select value=${sort} onChange=${(e) => setSort(e.currentTarget.value)}><option value="size">by size</option><option value="path">by path</option></select></label>
        ${res && !res.error ? html`<span class="count">${res.total} match${res.total === 1 ? '' : 'es'}${res.total > res.entries.length ? `, first ${res.entries.length}` : ''}</span>` : null}
      </div>
      ${res && res.error ? html`<p class="error">${res.error}</p>` : null}
      ${res && !res.error
        ? html`<table class="results"><tbody>${res.entries.map(
            (e) => html`<tr onClick=${() => onSelect(e)} data-path=${e.path}><td><code>${e.path}</code></td><td>${e.type}</td><td class="num">${size(e.size)}</td><td>L${e.layer}</td></tr>`,
          )}</tbody></table>`
        : null}
    </div>
  `;
}

function ImagePage({ imageRef }) {
  const { data, error } = useApi('image', { ref: imageRef }, [imageRef]);
  const [layer, setLayer] = useState(null);
  const [tab, setTab] = useState('files');
  const [removed, setRemoved] = useState(false);
  const [sort, setSort] = useState('name');
  const [selected, setSelected] = useState(null);
  useEffect(() => setSelected(null), [layer, imageRef]);
  if (error) return html`<${Problem} error=${error} />`;
  if (!data) return html`<p class="loading">Analysing the layers…</p>`;
  const eff = data.efficiency;
  return html`
    <section class="image-page" data-image=${data.id}>
      <h1>${data.tags[0] || short(data.id)} <small>${short(data.id)}</small></h1>
      ${data.tags.length > 1 ? html`<p class="hint">also ${data.tags.slice(1).join(', ')}</p>` : null}
      <div class="figures">
        <${Figure} label="Size" value=${size(data.sizeBytes)} sub=${`${data.sizeBytes} bytes of files in ${data.layers.length} layers`} />
        <${Figure} label="In the union" value=${size(data.unionBytes)} sub=${`${data.unionEntries} entries visible`} />
        <${Figure} label="Wasted" value=${size(data.wastedBytes)} sub=${`${data.wastedFiles} files hidden by later layers`} cls=${data.wastedBytes > 0 ? 'warn' : ''} />
        <${Figure} label="Efficiency" value=${pct(eff)} sub=${html`<span class="meter"><span style=${`width:${Math.round(eff * 100)}%`}></span></span>`} />
      </div>
      <h2>Layers</h2>
      <table class="layer-list">
        <thead><tr><th>#</th><th>created by</th><th class="num">size</th><th class="num">changes</th><th>digest</th><th>diff ID</th><th class="num">compressed</th><th class="num">uncompressed</th></tr></thead>
        <tbody>
          <tr class=${'merged-row' + (layer === null ? ' selected' : '')} onClick=${() => setLayer(null)} data-layer="merged">
            <td>∪</td><td colspan="7"><strong>The merged root file system</strong> — what a container sees: every layer, top-most wins</td>
          </tr>
          ${data.layerDetails.map(
            (l) => html`
              <tr class=${layer === l.index ? 'selected' : ''} onClick=${() => setLayer(l.index)} data-layer=${l.index}>
                <td><span class="swatch" style=${`--h:${hue(l.chainID || l.diffID)}`}></span>${l.index}</td>
                <td class="cmd" title=${l.createdBy}>${oneLine(l.createdBy, 70) || html`<em>no history</em>`}</td>
                <td class="num">${size(l.sizeBytes)}</td>
                <td class="num changes"><span class="c-added" title="added">+${l.added}</span> <span class="c-modified" title="modified">~${l.modified}</span> <span class="c-removed" title="removed (whiteouts)">−${l.removed}</span>${l.opaque ? html` <span class="c-opaque" title="opaque directories">◼${l.opaque}</span>` : null}</td>
                <td><code title=${l.digest || 'no compressed blob known'}>${short(l.digest)}</code></td>
                <td><code title=${l.diffID}>${short(l.diffID)}</code></td>
                <td class="num">${size(l.compressedBytes)}</td>
                <td class="num">${size(l.tarBytes)}</td>
              </tr>
            `,
          )}
        </tbody>
      </table>
      <div class="tabs" role="tablist">
        <button role="tab" class=${tab === 'files' ? 'on' : ''} onClick=${() => setTab('files')}>Files</button>
        <button role="tab" class=${tab === 'wasted' ? 'on' : ''} onClick=${() => setTab('wasted')}>Wasted (${data.wastedFiles})</button>
        <button role="tab" class=${tab === 'search' ? 'on' : ''} onClick=${() => setTab('search')}>Search</button>
      </div>
      <div class="workspace">
        <div class="main">
          ${tab === 'files'
            ? html`
                <div class="toolbar">
                  <strong data-view>${layer === null ? 'Merged tree' : `Layer ${layer}`}</strong>
                  ${layer === null ? html`<label><input type="checkbox" checked=${removed} onChange=${(e) => setRemoved(e.currentTarget.checked)} /> show removed</label>` : html`<span class="hint">what this layer stores, against the layers below</span>`}
                  <label>sort <select value=${sort} onChange=${(e) => setSort(e.currentTarget.value)}><option value="name">by name</option><option value="size">by size</option></select></label>
                </div>
                <div class="tree-head"><span class="name">name</span><span class="layer">layer</span><span class="size">size</span><span class="mode">mode</span><span class="owner">owner</span></div>
                <${Tree} imageRef=${data.id} layer=${layer} removed=${removed} sort=${sort} selected=${selected && selected.path} onSelect=${setSelected} />
              `
            : tab === 'wasted'
              ? html`<table class="results wasted"><thead><tr><th>path</th><th class="num">bytes</th><th>stored in layers</th></tr></thead><tbody>
                  ${data.wasted.length === 0 ? html`<tr><td colspan="3">Nothing is wasted: no layer stores a file that a later one hides.</td></tr>` : null}
                  ${data.wastedFiles > data.wasted.length ? html`<tr><td colspan="3" class="hint">the ${data.wasted.length} largest of ${data.wastedFiles}: <code>layerbox image analyze --json</code> lists them all</td></tr>` : null}
                  ${data.wasted.map((w) => html`<tr data-path=${w.path} onClick=${() => api('entry', { ref: data.id, path: w.path, layer: w.layers[0] }).then((e) => { setLayer(w.layers[0]); setTimeout(() => setSelected(e), 0); })}><td><code>${w.path}</code></td><td class="num">${size(w.bytes)}</td><td>${w.layers.join(', ')}</td></tr>`)}
                </tbody></table>`
              : html`<${Search} imageRef=${data.id} layer=${layer} onSelect=${setSelected} />`}
        </div>
        <${Details} imageRef=${data.id} entry=${selected} layer=${layer} detail=${data} />
      </div>
    </section>
  `;
}

// ------------------------------------------------------------------ compare

function ComparePage({ a, b }) {
  const { data, error } = useApi('compare', { a, b }, [a, b]);
  if (error) return html`<${Problem} error=${error} />`;
  if (!data) return html`<p class="loading">Comparing…</p>`;
  const side = (l) =>
    l
      ? html`<div class="cmp-layer" style=${`--h:${hue(l.chainID)}`}><span class="swatch"></span><code>${short(l.chainID)}</code> <span class="size">${size(l.size)}</span><div class="cmd" title=${l.createdBy}>${oneLine(l.createdBy, 60) || html`<em>no history</em>`}</div></div>`
      : html`<div class="cmp-none">—</div>`;
  return html`
    <section class="compare">
      <h1>Compare</h1>
      <p class="summary" data-k="summary">${data.sharedLayers} layer${data.sharedLayers === 1 ? '' : 's'} shared (${size(data.sharedBytes)}, stored once); aligned by chain ID, the base first.</p>
      <table class="cmp">
        <thead><tr><th>#</th><th><a href=${`#/image/${encodeURIComponent(data.a.id)}`}>${imageName(data.a)}</a></th><th></th><th><a href=${`#/image/${encodeURIComponent(data.b.id)}`}>${imageName(data.b)}</a></th></tr></thead>
        <tbody>
          ${data.rows.map(
            (r) => html`<tr class=${r.shared ? 'shared' : 'differs'} data-shared=${r.shared ? '1' : '0'} data-index=${r.index}>
              <td>${r.index}</td><td>${side(r.a)}</td><td class="link">${r.shared ? html`<span class="badge shared-badge">shared</span>` : '≠'}</td><td>${side(r.b)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </section>
  `;
}

// ------------------------------------------------------------------ the app

function App() {
  const hash = useHash();
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  let page;
  if (parts[0] === 'image' && parts[1]) page = html`<${ImagePage} imageRef=${parts[1]} key=${parts[1]} />`;
  else if (parts[0] === 'compare' && parts[1] && parts[2]) page = html`<${ComparePage} a=${parts[1]} b=${parts[2]} />`;
  else page = html`<${StoreView} />`;
  return html`
    <header class="top"><a href="#/" class="brand">layerbox <span>explorer</span></a><nav><a href="#/">Store</a></nav></header>
    <main>${page}</main>
  `;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
