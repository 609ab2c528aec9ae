/**
 * Test support for crash and full-disk tests: what a store holds that none of its recorded
 * containers explains (orphans), and its disk usage for "back to the baseline" checks.
 */
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

function alive(pid: number, start: number | null): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return start === null || Number(fields[19]) === start;
  } catch {
    return false;
  }
}

function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === prefix || m.startsWith(prefix + '/'));
}

const list = (d: string): string[] => (existsSync(d) ? readdirSync(d) : []);

/**
 * Everything in the store at `root` that belongs to no container of `ids` (the containers
 * `ps -a` lists) or to no live process: container records still 'creating' or 'removing',
 * snapshots (rows and directories) of other containers, temporary snapshots of dead
 * processes, snapshots being removed, partial copies in snapshot directories, container
 * directories, mounts, network namespaces and attachments. [] when the store is clean.
 */
export function storeOrphans(root: string, ids: Iterable<string>): string[] {
  const known = new Set(ids);
  const out: string[] = [];
  // disk first, then the database (a record always precedes what it owns)
  const snapDirs = list(join(root, 'snapshots'));
  const ctrDirs = list(join(root, 'containers'));
  const mounts = mountsUnder(root);
  const netns = list(join(root, 'network', 'netns'));
  // (temporary files of a killed writer are swept by the next repair, not orphans of a container)
  const attachments = list(join(root, 'network', 'attachments')).filter((n) => !n.startsWith('.tmp-')).map((n) => n.replace(/\.json$/, ''));
  const db = new Database(join(root, 'metadata.db'), { fileMustExist: true, timeout: 30000 });
  try {
    for (const r of db.prepare('SELECT id, status FROM containers').all() as { id: string; status: string }[]) {
      if (r.status === 'creating' || r.status === 'removing') out.push(`container record ${r.id} still '${r.status}'`);
    }
    const rows = db.prepare('SELECT id, key, kind, owner_pid, owner_start FROM snapshots').all() as { id: number; key: string; kind: string; owner_pid: number | null; owner_start: number | null }[];
    const byId = new Map(rows.map((r) => [String(r.id), r]));
    for (const r of rows) {
      const m = /^ctr-([0-9a-f]{64})/.exec(r.key);
      if (m && !known.has(m[1]!)) out.push(`snapshot ${r.key} of no container`);
      if (r.kind === 'removing') out.push(`snapshot ${r.id} still being removed`);
      if (r.owner_pid !== null && !alive(r.owner_pid, r.owner_start)) out.push(`temporary snapshot ${r.key} of dead process ${r.owner_pid}`);
    }
    for (const d of snapDirs) {
      const r = byId.get(d);
      if (!r) {
        out.push(`snapshot directory ${d} without a record`);
        continue;
      }
      for (const e of list(join(root, 'snapshots', d))) if (e !== 'fs' && e !== 'work') out.push(`snapshots/${d}/${e}: a partial copy`);
    }
  } finally {
    db.close();
  }
  for (const d of ctrDirs) if (!known.has(d)) out.push(`containers/${d} of no container`);
  for (const m of mounts) {
    const rel = m.slice(root.length + 1).split('/');
    if (rel[0] === 'containers' && known.has(rel[1]!)) continue;
    if (rel[0] === 'network' && rel[1] === 'netns' && known.has(rel[2]!)) continue;
    if (rel[0] === 'mounts') continue; // image mounts
    out.push(`mount ${m} of no container`);
  }
  for (const n of netns) if (!known.has(n)) out.push(`network namespace ${n} of no container`);
  for (const a of attachments) if (!known.has(a)) out.push(`network attachment ${a} of no container`);
  return out;
}

/** conmon processes that run containers of this store, by container ID. */
export function conmonsOf(root: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv[0]?.endsWith('conmon') || !argv.some((a) => a.startsWith(root + '/'))) continue;
    const i = argv.findIndex((a) => a === '--cid' || a === '-c');
    out.push(i >= 0 ? argv[i + 1]! : `pid ${pid}`);
  }
  return out;
}

/**
 * The store's usage, to compare with a baseline: every path in it (directories included),
 * and the bytes its files occupy. The database is left out of the bytes (its freed pages
 * are reused, not returned) and its WAL and index files out of the paths; the space
 * reserve counts by its size.
 */
export function storeUsage(root: string): { paths: string[]; bytes: number; sizes: Record<string, number> } {
  const paths: string[] = [];
  const sizes: Record<string, number> = {};
  let bytes = 0;
  // delayed allocation: blocks (and extent blocks) are counted once written back
  spawnSync('sync', ['-f', root]);
  const mounted = new Set(mountsUnder(root));
  const walk = (rel: string) => {
    for (const name of list(join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (/^metadata\.db-(wal|shm)$/.test(r)) continue;
      const st = lstatSync(join(root, r));
      paths.push(r);
      if (st.isDirectory()) {
        // what a mount shows is not the store's (a container's root file system)
        if (!mounted.has(join(root, r))) walk(r);
        continue;
      }
      if (!r.startsWith('metadata.db')) {
        // the reserve counts by its size: where its blocks lie (and its extent blocks) varies
        const b = r === 'space-reserve' ? st.size : st.blocks * 512;
        bytes += b;
        sizes[r] = b;
      }
    }
  };
  walk('');
  return { paths: paths.sort(), bytes, sizes };
}
