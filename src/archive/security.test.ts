/**
 * The security corpus (test/security/, built by make-corpus.mjs) against the layer applier
 * and the image store. docs/RELIABILITY.md items 1–9 (+17 for the store's state after refusals).
 *
 * Applier level: every layer archive is unpacked with `unpackLayer` into `work/root/`
 * beside `work/victim/` and `work/root-evil/` — overlay whiteouts into an empty root, and
 * delete-mode whiteouts over a pre-populated lower copy that holds hostile symlinks of its
 * own. After each run nothing outside `work/root/` may have changed (content, mode, owner,
 * link count, ctime, xattrs), nor a canary in /tmp or the host /etc names the archives aim
 * at; the outcome must be exactly the case's: refused with its EngineError code, or
 * contained where the check says.
 *
 * Store level: the same layers wrapped in docker-archives, and OCI layouts with hostile
 * digests or tampered blobs, go through the real CLI.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  cpSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { gunzipSync, gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { EngineError } from '../errors/index.js';
import { parseDigest } from '../oci/digest.js';
import { lgetxattr, llistxattr, lsetxattr } from '../sys/native.js';
import { unpackLayer, type UnpackResult } from './unpack.js';
import { FIXTURES, REPO_ROOT } from '../testing/tree.js';
import { BIN, cliEnv, lb, tempRoot } from '../testing/cli.js';

// ------------------------------------------------------------------ the corpus module

const CORPUS = join(REPO_ROOT, 'test', 'security');

interface Case {
  file: string;
  item: number | string;
  kind?: 'oci-archive';
  what: string;
  expect: { refused?: string; contained?: string };
  build(): Buffer;
}

interface Corpus {
  CASES: Case[];
  buildCorpus(): Map<string, Buffer>;
  readme(): string;
  zeroFileTar(size?: number, chunk?: number, name?: string): AsyncGenerator<Buffer>;
  gzipBomb(o?: { maxChunks?: number; entries?: boolean; onClose?: () => void }): AsyncGenerator<Buffer>;
  tar(parts: Buffer[], o?: { end?: boolean }): Buffer;
  file(name: string, content?: string | Buffer, o?: Record<string, unknown>): Buffer;
  dir(name: string, o?: Record<string, unknown>): Buffer;
  header(o: Record<string, unknown>): Buffer;
  pax(records: [string, string | Buffer][], o?: Record<string, unknown>): Buffer;
  imageConfig(diffIds: string[]): Buffer;
  sha256(data: Buffer | string): string;
}

const corpus = (await import(pathToFileURL(join(CORPUS, 'make-corpus.mjs')).href)) as Corpus;
const CASES = corpus.CASES;
const isLayerCase = (c: Case) => c.kind === undefined && c.file.endsWith('.tar');

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** How each refusal must read (the EngineError message, and the CLI's `Error:` line). */
const MESSAGES: Record<string, RegExp> = {
  LAYER_BAD_WHITEOUT: /invalid whiteout entry/,
  LAYER_BAD_HARDLINK: /hard link/,
  LAYER_SYMLINK_LOOP: /too many levels of symbolic links/,
  LAYER_BAD_DEVICE: /impossible numbers/,
  LAYER_TOO_DEEP: /resolves to a path (deeper|longer) than/,
  LAYER_TOO_LARGE: /quota/,
  TAR_HEADER_TOO_LARGE: /exceeds the 1048576-byte limit/,
  TAR_NAME_TOO_LONG: /longer than 4096 bytes/,
  TAR_TOO_DEEP: /deeper than 1024/,
  TAR_TRUNCATED: /truncated/,
  TAR_BAD_CHECKSUM: /invalid header checksum/,
  TAR_BAD_NUMBER: /negative/,
  TAR_BAD_NAME: /NUL/,
  TAR_BAD_XATTR: /entry "f" has (xattr name "user\.a\\u0000b" contains NUL|xattr name .* is longer than 255 bytes)/,
  TAR_SPARSE: /sparse/,
  BLOB_DIGEST_MISMATCH: /digest mismatch/,
  DIFFID_MISMATCH: /diffID mismatch/,
  INVALID_DIGEST: /invalid (sha256 )?digest/,
  UNSUPPORTED_DIGEST: /unsupported digest algorithm/,
};

// ------------------------------------------------------------------ the harness

type Mode = 'overlay' | 'delete' | 'overlay-lower';

interface Work {
  dir: string;
  root: string;
  victim: string;
  mode: Mode;
}

/** Host paths the archives aim at (absolute names, `../../` from the root): must not change. */
const CANARY = '/tmp/layerbox-sec-canary';
const OUTSIDE = [CANARY, '/tmp/layerbox-sec-new', '/tmp/escape-dotdot', '/etc/layerbox-security-abs', '/etc/layerbox-29136', '/etc/x', '/etc/passwd', '/etc/layerbox-canary'];

function makeWork(mode: Mode): Work {
  const dir = mkdtempSync(join(tmpdir(), 'lb-sec-'));
  const root = join(dir, 'root');
  const victim = join(dir, 'victim');
  mkdirSync(root, { mode: 0o755 });
  chmodSync(root, 0o755);
  mkdirSync(join(victim, 'sub'), { recursive: true, mode: 0o755 });
  writeFileSync(join(victim, 'x'), 'victim x\n', { mode: 0o644 });
  writeFileSync(join(victim, 'y'), 'victim y\n', { mode: 0o640 });
  writeFileSync(join(victim, 'sub', 'z'), 'victim z\n', { mode: 0o600 });
  lsetxattr(join(victim, 'x'), 'user.victim', Buffer.from('1'));
  mkdirSync(join(dir, 'root-evil'));
  writeFileSync(join(dir, 'root-evil', 'x'), 'root-evil x\n');
  if (mode !== 'overlay') populateLower(root, victim);
  return { dir, root, victim, mode };
}

/** The lower layer copy for delete mode: ordinary content, and hostile symlinks pointing out. */
function populateLower(root: string, victim: string): void {
  const f = (rel: string, content: string) => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), content);
  };
  f('etc/passwd', 'lower passwd\n');
  f('lowerdir/keep', 'keep\n');
  f('opq/lower1', 'lower1\n');
  f('opq/sub/lower2', 'lower2\n');
  f('wh/lowerfile', 'lowerfile\n');
  f('wh/lowerdir/inner', 'inner\n');
  symlinkSync('../victim', join(root, 'escape'));
  symlinkSync(victim, join(root, 'escape-abs'));
  symlinkSync('../victim/x', join(root, 'lowerf'));
}

function describePath(p: string): string {
  let st;
  try {
    st = lstatSync(p);
  } catch {
    return 'absent';
  }
  const parts = [`mode=${st.mode.toString(8)}`, `uid=${st.uid}`, `gid=${st.gid}`, `size=${st.size}`, `nlink=${st.nlink}`, `ino=${st.ino}`, `mtime=${st.mtimeMs}`, `ctime=${st.ctimeMs}`];
  if (st.isFile()) parts.push(`sha=${sha(readFileSync(p))}`);
  if (st.isSymbolicLink()) parts.push(`link=${readlinkSync(p)}`);
  for (const x of llistxattr(p).sort()) parts.push(`xattr ${x}=${lgetxattr(p, x)?.toString('hex')}`);
  return parts.join(' ');
}

/** Everything in work/ except root/, plus the host paths the archives aim at. */
function outsideState(w: Work): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(w.dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === 'root') continue;
      const p = join(w.dir, r);
      out.push(`${r}: ${describePath(p)}`);
      if (lstatSync(p).isDirectory()) walk(r);
    }
  };
  out.push(`.: ${describePath(w.dir)}`);
  walk('');
  for (const p of OUTSIDE) out.push(`${p}: ${describePath(p)}`);
  return out;
}

interface Outcome {
  result?: UnpackResult;
  error?: unknown;
  warnings: string[];
}

async function unpack(source: NodeJS.ReadableStream | AsyncIterable<Buffer> | Buffer[], w: Work, extra: Partial<Parameters<typeof unpackLayer>[0]> = {}): Promise<Outcome> {
  const warnings: string[] = [];
  const tsdir = mkdtempSync(join(tmpdir(), 'lb-sec-ts-'));
  try {
    const result = await unpackLayer({
      source: Array.isArray(source) ? chunks(source) : (source as AsyncIterable<Buffer>),
      compression: 'auto',
      target: w.root,
      whiteouts: w.mode === 'delete' ? 'delete' : 'overlay',
      fresh: w.mode === 'overlay',
      tarsplitPath: join(tsdir, 'layer.tarsplit'),
      warn: (m) => warnings.push(m),
      ...extra,
    });
    return { result, warnings };
  } catch (error) {
    return { error, warnings };
  } finally {
    rmSync(tsdir, { recursive: true, force: true });
  }
}

async function* chunks(bufs: Buffer[]): AsyncGenerator<Buffer> {
  for (const b of bufs) yield b;
}

function assertRefused(o: Outcome, code: string): EngineError {
  assert.ok(o.error, `expected the archive to be refused with ${code}, but it was applied`);
  if (!(o.error instanceof EngineError)) assert.fail(`expected EngineError ${code}, got ${(o.error as Error)?.stack ?? String(o.error)}`);
  const e = o.error;
  assert.equal(e.code, code, `wrong error: ${e.code}: ${e.message}`);
  const re = MESSAGES[code];
  assert.ok(re, `no message pattern for ${code}`);
  assert.match(e.describe(), re);
  return e;
}

function assertApplied(o: Outcome): UnpackResult {
  if (o.error) assert.fail(`expected the archive to be applied (contained), but it failed: ${(o.error as Error)?.stack ?? String(o.error)}`);
  return o.result!;
}

// ------------------------------------------------------------------ small assertions on the root

const at = (w: Work, rel: string) => join(w.root, rel);
const st = (w: Work, rel: string) => lstatSync(at(w, rel));

function isFile(w: Work, rel: string, content?: string): void {
  const s = st(w, rel);
  assert.ok(s.isFile(), `${rel} should be a regular file`);
  if (content !== undefined) assert.equal(readFileSync(at(w, rel), 'utf8'), content, `${rel} content`);
}
function isDir(w: Work, rel: string, mode?: number): void {
  const s = st(w, rel);
  assert.ok(s.isDirectory(), `${rel} should be a directory`);
  if (mode !== undefined) assert.equal(s.mode & 0o7777, mode, `${rel} mode`);
}
function isSymlink(w: Work, rel: string, target: string): void {
  const s = st(w, rel);
  assert.ok(s.isSymbolicLink(), `${rel} should be a symlink`);
  assert.equal(readlinkSync(at(w, rel)), target, `${rel} target`);
}
function isAbsent(w: Work, rel: string): void {
  assert.ok(!existsSync(at(w, rel)) && !isLink(at(w, rel)), `${rel} should not exist`);
}
function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
function isWhiteout(w: Work, rel: string): void {
  const s = lstatSync(at(w, rel), { bigint: true });
  assert.ok(s.isCharacterDevice() && s.rdev === 0n, `${rel} should be an overlay whiteout (0/0 char device)`);
}
function sameInode(w: Work, a: string, b: string): void {
  assert.equal(st(w, a).ino, st(w, b).ino, `${a} and ${b} should be one inode`);
}
function xattrNames(w: Work, rel: string): string[] {
  return llistxattr(at(w, rel))
    .filter((n) => n.startsWith('user.') || n.startsWith('trusted.'))
    .sort();
}
function opaque(w: Work, rel: string): boolean {
  return lgetxattr(at(w, rel), 'trusted.overlay.opaque')?.toString() === 'y';
}
/** glibc's dev_t encoding. */
function devNumbers(rdev: bigint): [number, number] {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return [Number(major), Number(minor)];
}

// ------------------------------------------------------------------ what "contained" means, per case

type Check = (w: Work, o: Outcome) => void;

const CONTAINED: Record<string, Check> = {
  'item1-dotdot-names.tar': (w) => {
    isFile(w, 'escape-dotdot', 'evil\n');
    isFile(w, 'layerbox-sec-new', 'evil\n');
    isFile(w, 'c', 'evil\n');
    isFile(w, 'victim/x', 'evil\n');
  },
  'item1-absolute-names.tar': (w) => {
    isFile(w, 'etc/layerbox-security-abs', 'evil\n');
    isFile(w, 'tmp/layerbox-sec-canary', 'evil\n');
    isFile(w, 'layerbox-sec-new', 'evil\n');
  },
  'item1-many-slashes.tar': (w) => {
    isFile(w, 'slashes/file', 'x\n');
    isFile(w, 'a/b/c', 'x\n');
    isDir(w, '', 0o755);
  },
  'item1-dot-entries.tar': (w) => {
    isDir(w, '', 0o755);
    isFile(w, 'dotfile', 'x\n');
    isFile(w, 'd/f', 'x\n');
    isDir(w, 'd', 0o750);
    if (w.mode === 'overlay') assert.deepEqual(readdirSync(w.root).sort(), ['d', 'dotfile']);
  },
  'CVE-2021-29136-root-symlink.tar': (w) => {
    isDir(w, '', 0o755);
    isFile(w, 'etc/layerbox-29136', 'inside\n');
    isFile(w, 'x', 'inside\n');
    if (w.mode === 'overlay') assert.deepEqual(readdirSync(w.root).sort(), ['etc', 'x']);
  },
  'item2-write-through-symlink.tar': (w) => {
    isSymlink(w, 'link', '../victim');
    isFile(w, 'victim/file', 'evil\n');
    isFile(w, 'victim/x', 'evil\n');
  },
  'item2-nested-symlink.tar': (w) => {
    isSymlink(w, 'dir/link', '../../victim');
    isFile(w, 'victim/new/file', 'evil\n');
  },
  'item2-absolute-symlink.tar': (w) => {
    isSymlink(w, 'localetc', '/etc');
    isFile(w, 'etc/x', 'inside\n');
    isFile(w, 'etc/passwd', 'inside\n');
  },
  'item2-symlink-chain.tar': (w) => {
    isFile(w, 'victim/f', 'evil\n');
    isFile(w, 'victim/g', 'evil\n');
  },
  'item2-through-lower-symlinks.tar': (w) => {
    if (w.mode === 'overlay') {
      isFile(w, 'escape/pwned', 'evil\n');
      isFile(w, 'escape-abs/pwned', 'evil\n');
    } else {
      isSymlink(w, 'escape', '../victim');
      isSymlink(w, 'escape-abs', w.victim);
      isFile(w, 'victim/pwned', 'evil\n');
      isFile(w, join(w.victim, 'pwned'), 'evil\n');
    }
  },
  'item3-hardlink-through-symlink-inside.tar': (w) => {
    isFile(w, 'h', 'inside\n');
    sameInode(w, 'h', 'real/f');
  },
  'item3-hardlink-to-symlink.tar': (w) => {
    isSymlink(w, 'h', '../victim/x');
    sameInode(w, 'h', 's');
  },
  'CVE-2021-32760-chmod-through-link.tar': (w) => {
    isSymlink(w, 'h', '../victim/x');
    sameInode(w, 'h', 's');
    isFile(w, 't', 'replaced\n');
    assert.equal(st(w, 't').mode & 0o7777, 0o4777);
  },
  'item4-file-over-symlink.tar': (w) => {
    isFile(w, 'f', 'replaced\n');
    isFile(w, 'lowerf', 'replaced\n');
    isDir(w, 'ds', 0o700);
    isFile(w, 'ds/inner', 'inside\n');
    isFile(w, 'hl', 'replaced\n');
    sameInode(w, 'hl', 'f');
  },
  'item4-file-then-dir.tar': (w) => {
    isDir(w, 'a', 0o711);
    isFile(w, 'a/inner', 'inner\n');
  },
  'item4-dir-then-file.tar': (w) => {
    isFile(w, 'b', 'last\n');
    assert.equal(st(w, 'b').mode & 0o7777, 0o600);
  },
  'item4-dir-over-dir.tar': (w) => {
    isDir(w, 'd', 0o750);
    isFile(w, 'd/keep', 'keep\n');
    const s = st(w, 'd');
    assert.equal(s.uid, 2);
    assert.equal(s.gid, 2);
    assert.equal(Math.floor(s.mtimeMs / 1000), 1600000000);
    assert.equal(lgetxattr(at(w, 'd'), 'user.layerbox')?.toString(), 'merged');
    isDir(w, 'lowerdir', 0o711);
    if (w.mode === 'delete') isFile(w, 'lowerdir/keep', 'keep\n');
  },
  'item4-symlink-over-dir.tar': (w) => {
    isSymlink(w, 'd', '../victim');
    isFile(w, 'victim/g', 'evil\n');
  },
  'item5-whiteout-own-directory.tar': (w) => {
    if (w.mode === 'overlay') {
      isWhiteout(w, 'wh/lowerfile');
      isWhiteout(w, 'victim');
      isWhiteout(w, 'escape/x');
    } else {
      isAbsent(w, 'wh/lowerfile');
      isFile(w, 'wh/lowerdir/inner', 'inner\n');
      isSymlink(w, 'escape', '../victim');
      isAbsent(w, 'victim/x');
    }
  },
  'item5-whiteout-link.tar': (w) => {
    if (w.mode === 'delete') {
      isAbsent(w, 'escape');
      isAbsent(w, 'escape-abs');
    } else {
      isWhiteout(w, 'escape');
      isWhiteout(w, 'escape-abs');
    }
  },
  'item5-whiteout-same-layer.tar': (w) => {
    isFile(w, 'wh/mine', 'mine\n');
    if (w.mode === 'delete') {
      isAbsent(w, 'wh/lowerdir');
      isFile(w, 'wh/lowerfile', 'lowerfile\n');
    } else isWhiteout(w, 'wh/lowerdir');
  },
  'item5-opaque-after-entries.tar': (w) => opaqueOutcome(w),
  'item5-opaque-before-entries.tar': (w) => opaqueOutcome(w),
  'item5-opaque-nested-markers.tar': (w) => {
    if (w.mode === 'overlay') {
      assert.ok(opaque(w, 'opq') && opaque(w, 'opq/sub'), 'both directories opaque');
    } else {
      isDir(w, 'opq');
      isDir(w, 'opq/sub');
      assert.deepEqual(readdirSync(at(w, 'opq')), ['sub']);
      assert.deepEqual(readdirSync(at(w, 'opq/sub')), []);
    }
  },
  'item5-opaque-then-symlink.tar': (w) => {
    isSymlink(w, 'opq', '../victim');
  },
  'item5-whiteout-then-symlink-chmod.tar': (w) => {
    // delete: the whiteout removed the lower lowerdir (and this layer's lowerdir/sub with it);
    // overlay: lowerdir is this layer's own directory, so the whiteout does not apply. Either
    // way the symlink replaces it last, and the deferred chmod of lowerdir/sub is dropped.
    isSymlink(w, 'lowerdir', '../victim');
  },
  'item6-overlay-xattrs.tar': (w, o) => {
    for (const rel of ['xd', 'xf', 'xg']) assert.deepEqual(xattrNames(w, rel), ['user.layerbox.ok'], `${rel} xattrs`);
    assert.ok(o.warnings.some((m) => /dropping xattr trusted\.overlay\.opaque/.test(m)), 'a warning names the dropped xattr');
  },
  'item8-device-limits.tar': (w) => {
    const max = lstatSync(at(w, 'dev/max'), { bigint: true });
    assert.ok(max.isCharacterDevice());
    assert.deepEqual(devNumbers(max.rdev), [4095, 0xfffff]);
    const z = lstatSync(at(w, 'dev/zero0'), { bigint: true });
    assert.ok(z.isBlockDevice());
    assert.deepEqual(devNumbers(z.rdev), [0, 0]);
    assert.ok(st(w, 'dev/fifo').isFIFO());
  },
  'item8-pax-global-header.tar': (w) => {
    isFile(w, 'global-normal', 'normal\n');
    assert.equal(st(w, 'global-normal').uid, 0);
    assert.deepEqual(xattrNames(w, 'global-normal'), []);
    assert.ok(!opaque(w, ''), 'the global header\'s overlay xattr is not applied to the root');
    if (w.mode === 'overlay') assert.deepEqual(readdirSync(w.root), ['global-normal']);
  },
};

function opaqueOutcome(w: Work): void {
  isFile(w, 'opq/new1', 'new1\n');
  isFile(w, 'opq/sub/new2', 'new2\n');
  if (w.mode === 'overlay') assert.ok(opaque(w, 'opq'), 'root/opq carries trusted.overlay.opaque=y');
  else {
    isAbsent(w, 'opq/lower1');
    isAbsent(w, 'opq/sub/lower2');
    assert.deepEqual(readdirSync(at(w, 'opq')).sort(), ['new1', 'sub']);
  }
}

/** Modes to run each case in (default: overlay into an empty root, delete over the lower copy). */
const EXTRA_MODES: Record<string, Mode[]> = {
  // the lower's symlinks exist only with a lower copy: show an overlay whiteout replaces the link too
  'item5-whiteout-link.tar': ['overlay-lower'],
};

// ------------------------------------------------------------------ tests

before(() => {
  writeFileSync(CANARY, 'canary\n');
});
after(() => {
  rmSync(CANARY, { force: true });
});

test('the committed corpus is what make-corpus.mjs builds, and every archive has a test', () => {
  const built = corpus.buildCorpus();
  for (const [name, bytes] of built) {
    const p = join(CORPUS, name);
    assert.ok(existsSync(p), `${name} is missing: run node test/security/make-corpus.mjs`);
    assert.ok(readFileSync(p).equals(bytes), `${name} is stale: run node test/security/make-corpus.mjs`);
  }
  assert.equal(readFileSync(join(CORPUS, 'README.md'), 'utf8'), corpus.readme(), 'README.md is stale');
  const onDisk = readdirSync(CORPUS).filter((n) => /\.(tar|gz)$/.test(n));
  assert.deepEqual(onDisk.sort(), [...built.keys()].sort(), 'files in test/security without a case');
  for (const c of CASES) {
    if (c.expect.refused) assert.ok(MESSAGES[c.expect.refused], `${c.file}: no message pattern for ${c.expect.refused}`);
    else if (isLayerCase(c)) assert.ok(CONTAINED[c.file], `${c.file}: contained, but no check says where`);
  }
  // every item of docs/RELIABILITY.md 1–9 has cases
  for (let i = 1; i <= 9; i++) assert.ok(CASES.some((c) => c.item === i), `no case for item ${i}`);
});

describe('applier: every layer of the corpus, contained or refused', () => {
  for (const c of CASES.filter(isLayerCase)) {
    for (const mode of ['overlay', 'delete', ...(EXTRA_MODES[c.file] ?? [])] as Mode[]) {
      test(`${c.file} [${mode}] item ${c.item}: ${c.what}`, async (t) => {
        const w = makeWork(mode);
        try {
          const beforeState = outsideState(w);
          const o = await unpack(createReadStream(join(CORPUS, c.file)), w);
          assert.deepEqual(outsideState(w), beforeState, 'something outside the root changed');
          if (c.expect.refused) {
            const e = assertRefused(o, c.expect.refused);
            t.diagnostic(`refused: ${e.code}: ${e.describe()}`);
          } else {
            assertApplied(o);
            CONTAINED[c.file]!(w, o);
          }
        } finally {
          rmSync(w.dir, { recursive: true, force: true });
        }
      });
    }
  }
});

describe('applier as a plain-archive extractor (cp - into a container: whiteouts off, owners off, into a populated tree)', () => {
  for (const c of CASES.filter(isLayerCase)) {
    test(`${c.file} [none] item ${c.item}: nothing outside the root changes`, async () => {
      const w = makeWork('delete'); // a populated tree with hostile links pointing out
      try {
        const beforeState = outsideState(w);
        const o = await unpack(createReadStream(join(CORPUS, c.file)), w, { whiteouts: 'none', fresh: false, sameOwner: false, tarsplitPath: undefined });
        assert.deepEqual(outsideState(w), beforeState, 'something outside the root changed');
        // what the layer extractor refuses for its own safety, the plain extractor refuses too
        if (c.expect.refused && !c.expect.refused.includes('WHITEOUT')) assertRefused(o, c.expect.refused);
      } finally {
        rmSync(w.dir, { recursive: true, force: true });
      }
    });
  }
});

describe('applier: the same hostile layers gzip-compressed', () => {
  for (const c of CASES.filter((c) => isLayerCase(c) && c.expect.refused && !c.expect.refused.startsWith('TAR_TRUNCATED'))) {
    test(`${c.file}.gz is refused with ${c.expect.refused}`, async () => {
      const w = makeWork('overlay');
      try {
        const beforeState = outsideState(w);
        const o = await unpack([gzipSync(readFileSync(join(CORPUS, c.file)))], w);
        assert.deepEqual(outsideState(w), beforeState);
        assertRefused(o, c.expect.refused!);
      } finally {
        rmSync(w.dir, { recursive: true, force: true });
      }
    });
  }
});

test('blob-digest-mismatch.tar.gz: a layer whose bytes do not match the digest it is expected under is refused (BLOB_DIGEST_MISMATCH)', async () => {
  const blob = readFileSync(join(CORPUS, 'blob-digest-mismatch.tar.gz'));
  const claimed = Buffer.from(blob);
  claimed[9] = 0xff; // the manifest describes the same tar gzipped with another OS byte
  const digest = parseDigest(corpus.sha256(claimed));
  for (const mode of ['overlay', 'delete'] as Mode[]) {
    const w = makeWork(mode);
    try {
      const beforeState = outsideState(w);
      const o = await unpack(createReadStream(join(CORPUS, 'blob-digest-mismatch.tar.gz')), w, { expected: { digest, size: blob.length }, expectedDiffId: parseDigest(corpus.sha256(gunzipSync(blob))) });
      assert.deepEqual(outsideState(w), beforeState);
      const e = assertRefused(o, 'BLOB_DIGEST_MISMATCH');
      assert.ok(e.message.includes(digest), 'the message names the expected digest');
      assert.ok(e.message.includes(corpus.sha256(blob)), 'and the digest the bytes have');
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  }
});

test('truncated and short inputs: an empty stream is an empty layer, a cut header or payload is TAR_TRUNCATED', async () => {
  const w = makeWork('overlay');
  try {
    const o = await unpack([Buffer.alloc(0)], w);
    assert.equal(assertApplied(o).stats.entries, 0);
    const cut = readFileSync(join(CORPUS, 'item1-dotdot-names.tar'));
    for (const n of [100, 512 + 3, 1024 + 511]) {
      const r = await unpack([cut.subarray(0, n)], makeFreshRoot(w));
      assertRefused(r, 'TAR_TRUNCATED');
    }
    // a gzip stream cut short
    const gz = gzipSync(cut);
    const r = await unpack([gz.subarray(0, gz.length - 20)], makeFreshRoot(w));
    assert.ok(r.error instanceof EngineError, String(r.error));
    assert.ok(['LAYER_TRUNCATED', 'LAYER_DECOMPRESS', 'TAR_TRUNCATED'].includes(r.error.code), r.error.code);
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

function makeFreshRoot(w: Work): Work {
  rmSync(w.root, { recursive: true, force: true });
  mkdirSync(w.root);
  return w;
}

test('item 9: hostile digest strings are refused by parseDigest (CVE-2024-3727)', () => {
  const a64 = 'a'.repeat(64);
  const cases: [unknown, string][] = [
    ['sha256:../../x', 'INVALID_DIGEST'],
    ['sha256:../../../layerbox-canary', 'INVALID_DIGEST'],
    [`sha256:${a64}/../../x`, 'INVALID_DIGEST'],
    [`sha256:${'a'.repeat(32)}/${'a'.repeat(31)}`, 'INVALID_DIGEST'],
    [`sha256:${'A'.repeat(64)}`, 'INVALID_DIGEST'],
    [`sha256:${'a'.repeat(63)}`, 'INVALID_DIGEST'],
    [`sha256:${'a'.repeat(65)}`, 'INVALID_DIGEST'],
    [`sha256:${a64}\n`, 'INVALID_DIGEST'],
    [`sha256:${a64}\0`, 'INVALID_DIGEST'],
    [` sha256:${a64}`, 'INVALID_DIGEST'],
    [`SHA256:${a64}`, 'INVALID_DIGEST'],
    ['sha256:', 'INVALID_DIGEST'],
    ['', 'INVALID_DIGEST'],
    [a64, 'INVALID_DIGEST'],
    [42, 'INVALID_DIGEST'],
    [null, 'INVALID_DIGEST'],
    [`md5:${'a'.repeat(32)}`, 'UNSUPPORTED_DIGEST'],
    [`sha512:${'a'.repeat(128)}`, 'UNSUPPORTED_DIGEST'],
    [`sha384:${'a'.repeat(96)}`, 'UNSUPPORTED_DIGEST'],
  ];
  for (const [s, code] of cases) {
    assert.throws(
      () => parseDigest(s, 'test'),
      (e: unknown) => e instanceof EngineError && e.code === code && MESSAGES[code]!.test(e.message),
      `${JSON.stringify(s)} should be refused with ${code}`,
    );
  }
  assert.equal(parseDigest(`sha256:${a64}`), `sha256:${a64}`);
});

test('item 7: 8 GiB of zeros stream through unpackLayer without memory growth and land as a sparse file', async (t) => {
  const w = makeWork('overlay');
  try {
    const size = 8 * GiB;
    let max = 0;
    let n = 0;
    let total = 0;
    async function* sampled(): AsyncGenerator<Buffer> {
      for await (const c of corpus.zeroFileTar(size)) {
        total += c.length;
        if (++n % 64 === 0) max = Math.max(max, process.memoryUsage().rss);
        yield c;
      }
    }
    const tarSize = 512 + 512 + 512 + size + 1024; // PAX header, its record block, the file's header, zeros, end
    (globalThis as { gc?: () => void }).gc?.();
    const base = process.memoryUsage().rss;
    const t0 = performance.now();
    // the store passes the blob size: the same path (and hashing strategy) as a real load
    const o = await unpack(sampled(), w, { compression: 'none', expected: { size: tarSize }, tarsplitPath: undefined });
    const ms = performance.now() - t0;
    const r = assertApplied(o);
    assert.equal(total, tarSize);
    assert.equal(r.tarSize, tarSize);
    const s = statSync(at(w, 'zeros'));
    assert.equal(s.size, size);
    assert.ok(s.blocks * 512 < MiB, `the file should be sparse, it has ${s.blocks} blocks`);
    const growth = max - base;
    t.diagnostic(`8 GiB of zeros: ${(ms / 1000).toFixed(1)} s (${((size / MiB / ms) * 1000).toFixed(0)} MiB/s), peak RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    assert.ok(growth < 128 * MiB, `RSS grew by ${(growth / MiB).toFixed(0)} MiB while streaming 8 GiB`);
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('item 7: zero runs of any size become holes without changing any file\'s bytes', async () => {
  const z = (n: number) => Buffer.alloc(n);
  const files: [string, Buffer][] = [
    ['zero-10', z(10)],
    ['zero-5000', z(5000)],
    ['zero-1MiB', z(MiB)],
    ['zeros-then-data', Buffer.concat([z(300_000), Buffer.from('data\n')])],
    ['data-then-zeros', Buffer.concat([Buffer.from('data\n'), z(300_000)])],
    ['zero-data-zero', Buffer.concat([z(1536), Buffer.from('x'), z(70_000), Buffer.from('y'), z(3)])],
    ['empty', z(0)],
  ];
  const layer = corpus.tar(files.map(([n, b]) => corpus.file(n, b)));
  // fed in odd-sized pieces, and gzip-compressed, so chunk boundaries fall everywhere
  const pieces: Buffer[] = [];
  for (let off = 0, i = 0; off < layer.length; i++) {
    const n = [1, 511, 1536, 4095, 4097, 65_537][i % 6]!;
    pieces.push(layer.subarray(off, off + n));
    off += n;
  }
  for (const input of [pieces, [gzipSync(layer)]]) {
    const w = makeWork('overlay');
    try {
      const r = assertApplied(await unpack(input, w));
      assert.equal(r.diffId, corpus.sha256(layer));
      for (const [n, b] of files) assert.equal(sha(readFileSync(at(w, n))), sha(b), `${n} content`);
      assert.ok(statSync(at(w, 'zero-1MiB')).blocks * 512 < 64 * 1024, 'an all-zero file is sparse');
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  }
});

test('item 7: a gzip bomb whose file declares 1 TiB is refused at that header with LAYER_TOO_LARGE, the source closed', async () => {
  const w = makeWork('overlay');
  try {
    let closed = false;
    let compressed = 0;
    const bomb = corpus.gzipBomb({ onClose: () => (closed = true) });
    async function* counted(): AsyncGenerator<Buffer> {
      try {
        for await (const c of bomb) {
          compressed += c.length;
          yield c;
        }
      } finally {
        await bomb.return(undefined);
      }
    }
    const quota = 512 * MiB;
    const e = assertRefused(await unpack(counted(), w, { maxBytes: quota, where: 'gzip bomb' }), 'LAYER_TOO_LARGE');
    assert.match(e.message, new RegExp(`${quota}-byte quota.*"bomb" declares 1099511627776 bytes`));
    assert.ok(compressed < 64 * 1024, `read ${compressed} compressed bytes before refusing`);
    assert.ok(closed, 'unpackLayer stopped reading and closed the source');
    assert.ok(!existsSync(at(w, 'bomb')), 'nothing was created for it');
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('item 7: a gzip bomb of ever more 1 MiB files stops at the maxBytes quota with LAYER_TOO_LARGE, memory flat, the source closed', async (t) => {
  const w = makeWork('overlay');
  try {
    let closed = false;
    let compressed = 0;
    let max = 0;
    let n = 0;
    const bomb = corpus.gzipBomb({ entries: true, onClose: () => (closed = true) });
    async function* sampled(): AsyncGenerator<Buffer> {
      try {
        for await (const c of bomb) {
          compressed += c.length;
          if (++n % 64 === 0) max = Math.max(max, process.memoryUsage().rss);
          yield c;
        }
      } finally {
        await bomb.return(undefined);
      }
    }
    const quota = 512 * MiB;
    const base = process.memoryUsage().rss;
    const t0 = performance.now();
    const o = await unpack(sampled(), w, { maxBytes: quota, where: 'gzip bomb' });
    const ms = performance.now() - t0;
    const e = assertRefused(o, 'LAYER_TOO_LARGE');
    assert.match(e.message, new RegExp(`${quota}-byte quota`));
    assert.ok(compressed < 2 * MiB, `read ${compressed} compressed bytes for a ${quota}-byte quota`);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(closed, 'unpackLayer stopped reading and closed the source');
    const growth = max - base;
    t.diagnostic(`gzip bomb: stopped after ${compressed} compressed bytes in ${ms.toFixed(0)} ms, peak RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    assert.ok(growth < 128 * MiB, `RSS grew by ${(growth / MiB).toFixed(0)} MiB`);
    // the partially written file is sparse too
    const s = statSync(at(w, 'bomb'));
    assert.ok(s.blocks * 512 < MiB);
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ store level, through the CLI

/** A docker-archive (what `docker save` writes) holding one image with one layer. */
function dockerArchive(layer: Buffer, tag: string, diffId?: string): Buffer {
  const d = diffId ?? corpus.sha256(layer[0] === 0x1f && layer[1] === 0x8b ? gunzipSync(layer) : layer);
  const config = corpus.imageConfig([d]);
  const cfg = corpus.sha256(config).slice(7);
  const lhex = corpus.sha256(layer).slice(7);
  const manifest = JSON.stringify([{ Config: `${cfg}.json`, RepoTags: [tag], Layers: [`${lhex}/layer.tar`] }]);
  return corpus.tar([corpus.dir(lhex), corpus.file(`${lhex}/layer.tar`, layer), corpus.file(`${cfg}.json`, config), corpus.file('manifest.json', manifest)]);
}

interface SnapshotRow {
  id: number;
  key: string;
  kind: string;
}

/** docs/RELIABILITY.md item 17's invariants: committed snapshots only, blobs match their names, nothing temporary left. */
function assertStoreConsistent(root: string): void {
  const db = new Database(join(root, 'metadata.db'), { readonly: true, fileMustExist: true });
  let snaps: SnapshotRow[];
  let layers: { chain_id: string; snapshot: string }[];
  try {
    snaps = db.prepare('SELECT id, key, kind FROM snapshots').all() as SnapshotRow[];
    layers = db.prepare('SELECT chain_id, snapshot FROM layers').all() as { chain_id: string; snapshot: string }[];
  } finally {
    db.close();
  }
  for (const s of snaps) assert.equal(s.kind, 'committed', `snapshot ${s.key} (${s.id}) is left ${s.kind}`);
  const ids = new Set(snaps.map((s) => String(s.id)));
  for (const name of readdirSync(join(root, 'snapshots'))) {
    assert.ok(ids.has(name), `snapshots/${name} is not a committed snapshot`);
    assert.ok(existsSync(join(root, 'snapshots', name, 'fs')));
  }
  const keys = new Set(snaps.map((s) => s.key));
  for (const l of layers) assert.ok(keys.has(l.snapshot), `layer ${l.chain_id} has no committed snapshot`);
  const blobs = join(root, 'blobs', 'sha256');
  for (const name of readdirSync(blobs)) assert.equal(sha(readFileSync(join(blobs, name))), name, `blob ${name} does not match its name`);
  for (const d of ['tmp', 'ingest']) {
    if (existsSync(join(root, d))) assert.deepEqual(readdirSync(join(root, d)).filter((n) => !n.endsWith('.lock')), [], `${d}/ holds leftovers`);
  }
}

function images(root: string): string[] {
  const r = lb(root, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).sort();
}

function assertLoadRefused(root: string, input: string, code: string, mustMention?: string): string {
  const r = lb(root, ['load', '-i', input]);
  assert.notEqual(r.code, 0, `load of ${input} should fail:\n${r.stdout}${r.stderr}`);
  const line = r.stderr.split('\n').find((l) => l.startsWith('Error: '));
  assert.ok(line, `no "Error:" line in ${JSON.stringify(r.stderr)}`);
  assert.match(line, MESSAGES[code]!, `message for ${code}`);
  if (mustMention) assert.ok(line.includes(mustMention), `the message should mention ${mustMention}: ${line}`);
  assert.ok(!r.stdout.includes('Loaded image'), 'nothing reported as loaded');
  return line;
}

describe('store: hostile images through `layerbox load`', () => {
  const store = tempRoot('lb-sec-store-');
  const scratch = mkdtempSync(join(tmpdir(), 'lb-sec-archives-'));
  let baseline: string[] = [];
  after(() => {
    store.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('a normal image loads first (its layer must survive what follows)', () => {
    const r = lb(store.root, ['load', '-i', join(FIXTURES, 'busybox-base.docker.tar')]);
    assert.equal(r.code, 0, r.stderr);
    baseline = images(store.root);
    assert.equal(baseline.length, 1);
    assertStoreConsistent(store.root);
  });

  const refusedLayers = CASES.filter((c) => isLayerCase(c) && c.expect.refused);
  for (const c of refusedLayers) {
    test(`docker-archive with layer ${c.file} is refused (${c.expect.refused}); nothing new is listed`, (t) => {
      const p = join(scratch, `${c.file}.docker.tar`);
      writeFileSync(p, dockerArchive(readFileSync(join(CORPUS, c.file)), `security/${c.file.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}:latest`));
      const line = assertLoadRefused(store.root, p, c.expect.refused!);
      t.diagnostic(line);
      assert.deepEqual(images(store.root), baseline);
      assertStoreConsistent(store.root);
    });
  }

  test('a gzip-compressed hostile layer is refused the same way', () => {
    const p = join(scratch, 'whiteout-dotdot-gz.docker.tar');
    writeFileSync(p, dockerArchive(gzipSync(readFileSync(join(CORPUS, 'item5-whiteout-dotdot.tar'))), 'security/gz:latest'));
    assertLoadRefused(store.root, p, 'LAYER_BAD_WHITEOUT');
    assert.deepEqual(images(store.root), baseline);
    assertStoreConsistent(store.root);
  });

  test('a gzip bomb layer stops at --max-layer-size (LAYER_TOO_LARGE)', () => {
    const head = Buffer.concat([corpus.pax([['size', String(1024 ** 4)]]), corpus.header({ name: 'bomb', type: '0', size: 0 })]);
    const layer = gzipSync(Buffer.concat([head, Buffer.alloc(64 * MiB)]), { level: 9 });
    assert.ok(layer.length < 256 * 1024);
    const p = join(scratch, 'bomb.docker.tar');
    writeFileSync(p, dockerArchive(layer, 'security/bomb:latest', `sha256:${'0'.repeat(64)}`));
    const r = lb(store.root, ['load', '-i', p], { env: { LAYERBOX_MAX_LAYER_SIZE: '8m' } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error: layer expands beyond the 8388608-byte quota/);
    assert.deepEqual(images(store.root), baseline);
    assertStoreConsistent(store.root);
  });

  test('a layer whose tar differs from the config diff_id is refused (DIFFID_MISMATCH)', () => {
    const p = join(scratch, 'diffid.docker.tar');
    writeFileSync(p, dockerArchive(readFileSync(join(CORPUS, 'item1-dotdot-names.tar')), 'security/diffid:latest', `sha256:${'1'.repeat(64)}`));
    assertLoadRefused(store.root, p, 'DIFFID_MISMATCH', `sha256:${'1'.repeat(64)}`);
    assert.deepEqual(images(store.root), baseline);
    assertStoreConsistent(store.root);
  });

  for (const c of CASES.filter((c) => c.kind === 'oci-archive')) {
    test(`oci-archive ${c.file} is refused (${c.expect.refused})`, () => {
      assertLoadRefused(store.root, join(CORPUS, c.file), c.expect.refused!);
      assert.deepEqual(images(store.root), baseline);
      assertStoreConsistent(store.root);
    });
    test(`OCI layout directory from ${c.file} is refused (${c.expect.refused}) without touching a path built from the digest`, () => {
      const base = mkdtempSync(join(scratch, 'layout-'));
      const layout = join(base, 'layout');
      mkdirSync(layout);
      const x = spawnSync('tar', ['-xf', join(CORPUS, c.file), '-C', layout]);
      assert.equal(x.status, 0, x.stderr.toString());
      // where `blobs/sha256/../../../layerbox-canary` would lead
      const canary = join(base, 'layerbox-canary');
      writeFileSync(canary, '{"schemaVersion":2}');
      const canaryBefore = describePath(canary);
      const log = join(base, 'strace.log');
      const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=%file', '-o', log, process.execPath, BIN, 'load', '-i', layout], { env: cliEnv(store.root), timeout: 60_000 });
      const stderr = r.stderr.toString();
      assert.notEqual(r.status, 0, stderr);
      assert.match(stderr, MESSAGES[c.expect.refused!]!);
      const touched = readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.includes('layerbox-canary') || l.includes('sha256/..') || /sha256\/[0-9a-f]{63}"|[0-9A-F]{64}/.test(l));
      assert.deepEqual(touched, [], 'a path was built from the hostile digest');
      assert.equal(describePath(canary), canaryBefore);
      assert.deepEqual(images(store.root), baseline);
      assertStoreConsistent(store.root);
    });
  }

  for (const [label, blob, offset] of [
    ['its gzip header (still valid gzip)', 'e9c2f5bb981852996c3d3977ba7f4c7c2bb279e9933be4c077a4e645c3604443', 9],
    ['the middle of its compressed data', 'e9c2f5bb981852996c3d3977ba7f4c7c2bb279e9933be4c077a4e645c3604443', 600],
  ] as const) {
    test(`busybox-changed.oci with a byte flipped in ${label} of layer ${blob.slice(0, 12)} is refused, naming the digest`, (t) => {
      const dir = join(scratch, `busybox-flipped-${offset}.oci`);
      cpSync(join(FIXTURES, 'busybox-changed.oci'), dir, { recursive: true });
      const p = join(dir, 'blobs', 'sha256', blob);
      chmodSync(p, 0o644);
      const bytes = readFileSync(p);
      bytes[offset] ^= 0xff;
      writeFileSync(p, bytes);
      const r = lb(store.root, ['load', '-i', dir]);
      assert.notEqual(r.code, 0);
      const line = r.stderr.split('\n').find((l) => l.startsWith('Error: '));
      assert.ok(line, r.stderr);
      t.diagnostic(line);
      assert.ok(line.includes(`sha256:${blob}`), `the message names the layer digest: ${line}`);
      assert.match(line, /digest mismatch|not valid gzip data/);
      assert.deepEqual(images(store.root), baseline, 'no partial image listed');
      assertStoreConsistent(store.root);
    });
  }

  test('afterwards the store is consistent, `system check` agrees, and normal loads still work', () => {
    assertStoreConsistent(store.root);
    const chk = lb(store.root, ['system', 'check']);
    assert.equal(chk.code, 0, chk.stdout + chk.stderr);
    assert.match(chk.stdout, /no problems/);
    const r = lb(store.root, ['load', '-i', join(FIXTURES, 'busybox-changed.docker.tar')]);
    assert.equal(r.code, 0, r.stderr);
    const r2 = lb(store.root, ['load', '-i', join(FIXTURES, 'busybox-changed.oci')]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(images(store.root).length, 3);
    assertStoreConsistent(store.root);
  });

  test('a contained hostile layer loads, and its entries stay inside its snapshot', () => {
    const p = join(scratch, 'contained.docker.tar');
    const layer = corpus.tar([
      ...[readFileSync(join(CORPUS, 'CVE-2021-29136-root-symlink.tar')), readFileSync(join(CORPUS, 'item2-write-through-symlink.tar'))].map((b) => b.subarray(0, b.length - 1024)),
    ]);
    writeFileSync(p, dockerArchive(layer, 'security/contained:latest'));
    const snapsBefore = new Set(readdirSync(join(store.root, 'snapshots')));
    const r = lb(store.root, ['load', '-i', p]);
    assert.equal(r.code, 0, r.stderr);
    const added = readdirSync(join(store.root, 'snapshots')).filter((n) => !snapsBefore.has(n));
    assert.equal(added.length, 1);
    const snap = join(store.root, 'snapshots', added[0]!);
    // `../victim` from the snapshot's fs/ would be snapshots/<n>/victim: it must not exist
    assert.deepEqual(readdirSync(snap).filter((n) => n !== 'fs' && n !== 'work'), []);
    const fs = join(snap, 'fs');
    assert.equal(readFileSync(join(fs, 'victim', 'x'), 'utf8'), 'evil\n');
    assert.equal(readFileSync(join(fs, 'etc', 'layerbox-29136'), 'utf8'), 'inside\n');
    assert.equal(readlinkSync(join(fs, 'link')), '../victim');
    assert.ok(!existsSync('/etc/layerbox-29136'));
    assertStoreConsistent(store.root);
  });
});
