/** build: the cache rules, bad input, the build cache in system df and builder prune; the parser and the expansion. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lbp, tempRoot } from '../testing/cli.js';
import { REPO_ROOT } from '../testing/tree.js';
import { layerTar } from '../testing/images.js';
import { processWord, processWords } from './shell.js';
import { parseDockerfile } from './parser.js';
import { parseStages } from './instructions.js';

const BASE = join(REPO_ROOT, 'fixtures', 'busybox-base.docker.tar');
let store: { root: string; cleanup(): void };
const work = mkdtempSync(join(tmpdir(), 'lb-build-'));

before(async () => {
  store = tempRoot('lb-build-test-');
  const l = await lbp(store.root, ['load', '-i', BASE]);
  assert.equal(l.code, 0, l.stderr);
});

after(() => {
  store.cleanup();
  rmSync(work, { recursive: true, force: true });
});

function ctxDir(name: string, files: Record<string, string>): string {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  for (const [f, c] of Object.entries(files)) {
    mkdirSync(join(d, f, '..'), { recursive: true });
    writeFileSync(join(d, f), c);
  }
  return d;
}

const build = (args: string[], opts: { input?: string | Buffer } = {}) => lbp(store.root, ['build', '--network', 'none', ...args], opts);

/** The steps that ran (not from the cache), by step number. */
function ran(stdout: string): number[] {
  const out: number[] = [];
  const steps = stdout.split(/^Step /m).slice(1);
  for (const s of steps) {
    const n = Number(/^(\d+)\//.exec(s)![1]);
    if (!/ ---> Using cache/.test(s) && !/^\d+\/\d+ : FROM /.test(s)) out.push(n);
  }
  return out;
}

test('cache: an unchanged rebuild is all cache hits; a touch keeps it; a chmod or a content change reruns that step and every one after it', async () => {
  const dir = ctxDir('cache', {
    Dockerfile: 'FROM bench/busybox:latest\nENV A=1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy.txt\nCOPY b.txt /b.txt\nRUN ls -l /b.txt > /b.list\n',
    'a.txt': 'a\n',
    'b.txt': 'b\n',
  });
  const first = await build(['-t', 'cache:1', dir]);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(ran(first.stdout), [2, 3, 4, 5, 6]);
  const again = await build(['-t', 'cache:2', dir]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(ran(again.stdout), [], again.stdout);
  assert.equal(/Successfully built (\w+)/.exec(again.stdout)![1], /Successfully built (\w+)/.exec(first.stdout)![1], 'the same image');
  utimesSync(join(dir, 'b.txt'), new Date(), new Date(Date.now() + 5000));
  const touched = await build([dir]);
  assert.deepEqual(ran(touched.stdout), [], 'a touch (mtime only) keeps the cache');
  chmodSync(join(dir, 'b.txt'), 0o600);
  const chmodded = await build([dir]);
  assert.deepEqual(ran(chmodded.stdout), [5, 6], 'a chmod reruns the COPY and what follows');
  writeFileSync(join(dir, 'a.txt'), 'changed\n');
  const changed = await build([dir]);
  assert.deepEqual(ran(changed.stdout), [3, 4, 5, 6], 'a content change reruns from that COPY');
  const none = await build(['--no-cache', dir]);
  assert.deepEqual(ran(none.stdout), [2, 3, 4, 5, 6], '--no-cache runs everything');
});

test('cache: the memo of context checksums notices a same-size change with its mtime put back, and a file renamed over another', async () => {
  const dir = ctxDir('cache-memo', {
    Dockerfile: 'FROM bench/busybox:latest\nCOPY a.txt b.txt /m/\nRUN cat /m/a.txt /m/b.txt\n',
    'a.txt': 'aaaa\n',
    'b.txt': 'bbbb\n',
  });
  // whole seconds, which utimes can put back exactly (to the nanosecond)
  const T = 1_700_000_000;
  for (const f of ['a.txt', 'b.txt']) utimesSync(join(dir, f), T, T);
  // older than the memo's racy window: these checksums are memoised
  await new Promise((r) => setTimeout(r, 2200));
  const first = await build([dir]);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(ran(first.stdout), [2, 3]);
  const again = await build([dir]);
  assert.deepEqual(ran(again.stdout), [], 'unchanged: from the memo, all cache');
  // same size, mtime set back: only the ctime tells
  const a = join(dir, 'a.txt');
  const st = statSync(a, { bigint: true });
  writeFileSync(a, 'AAAA\n');
  utimesSync(a, T, T);
  assert.equal(statSync(a, { bigint: true }).mtimeNs, st.mtimeNs);
  const changed = await build([dir]);
  assert.deepEqual(ran(changed.stdout), [2, 3], changed.stdout);
  assert.match(changed.stdout, /AAAA\nbbbb\n/);
  // a file of the same size and mtime renamed onto b.txt: another inode
  const b = join(dir, 'b.txt');
  writeFileSync(join(dir, 'b.new'), 'BBBB\n');
  utimesSync(join(dir, 'b.new'), T, T);
  renameSync(join(dir, 'b.new'), b);
  const renamed = await build([dir]);
  assert.deepEqual(ran(renamed.stdout), [2, 3], renamed.stdout);
  assert.match(renamed.stdout, /AAAA\nBBBB\n/);
});

test('cache: a changed --build-arg reruns from the first RUN where that ARG is in effect, not before', async () => {
  const dir = ctxDir('cache-args', {
    Dockerfile: 'FROM bench/busybox:latest\nRUN echo before > /before\nARG V=default\nENV E=1\nRUN echo $V > /v\nRUN echo after > /after\n',
  });
  const a = await build(['--build-arg', 'V=one', dir]);
  assert.equal(a.code, 0, a.stderr);
  const b = await build(['--build-arg', 'V=one', dir]);
  assert.deepEqual(ran(b.stdout), []);
  const c = await build(['--build-arg', 'V=two', dir]);
  assert.deepEqual(ran(c.stdout), [5, 6], c.stdout);
  assert.match(c.stdout, /Step 5\/6 : RUN echo \$V > \/v\n ---> Running in/);
});

test('cache: it survives the process (a new CLI process hits), shows as Build Cache in system df, and builder prune clears it', async () => {
  const dir = ctxDir('cache-df', { Dockerfile: 'FROM bench/busybox:latest\nRUN echo x > /x\nLABEL a=b\n' });
  const a = await build([dir]);
  assert.equal(a.code, 0, a.stderr);
  const b = await build([dir]);
  assert.deepEqual(ran(b.stdout), []);
  const df = await lbp(store.root, ['system', 'df', '--format', '{{json .}}']);
  const row = df.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>).find((r) => r.Type === 'Build Cache');
  assert.ok(row && Number(row.TotalCount) > 0, df.stdout);
  const p = await lbp(store.root, ['builder', 'prune', '-f']);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /Total reclaimed space: /);
  const c = await build([dir]);
  assert.deepEqual(ran(c.stdout), [2, 3], 'after the prune the steps run again');
  const pa = await lbp(store.root, ['builder', 'prune', '-a', '-f']);
  assert.equal(pa.code, 0, pa.stderr);
  const df2 = await lbp(store.root, ['system', 'df', '--format', '{{json .}}']);
  const row2 = df2.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>).find((r) => r.Type === 'Build Cache');
  assert.equal(row2?.TotalCount, '0');
});

async function noLeftovers(): Promise<void> {
  const ps = await lbp(store.root, ['ps', '-aq']);
  assert.equal(ps.stdout, '', 'no intermediate container is left');
}

test('bad input: a syntax error names the line and gives a hint; an unknown instruction; nothing is tagged', async () => {
  const dir = ctxDir('bad-syntax', { Dockerfile: 'FROM bench/busybox:latest\nRUN true\nCOPY\n' });
  const r = await build(['-t', 'bad:syntax', dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /dockerfile parse error line 3: COPY requires at least two arguments/);
  const u = await build(['-t', 'bad:syntax', ctxDir('bad-unknown', { Dockerfile: 'FROM bench/busybox:latest\nRUN true\nCOPPY a b\n' })]);
  assert.equal(u.code, 1);
  assert.match(u.stderr, /dockerfile parse error line 3: unknown instruction: COPPY: did you mean COPY\?/);
  const img = await lbp(store.root, ['image', 'inspect', 'bad:syntax']);
  assert.notEqual(img.code, 0, 'no image is tagged');
  const h = await build([ctxDir('bad-heredoc', { Dockerfile: 'FROM bench/busybox:latest\nRUN <<EOF\necho hi\nEOF\n' })]);
  assert.equal(h.code, 1);
  assert.match(h.stderr, /line 2: heredocs \(RUN <<EOF\) are a BuildKit feature/);
  const m = await build([ctxDir('bad-mount', { Dockerfile: 'FROM bench/busybox:latest\nRUN --mount=type=cache,target=/c true\n' })]);
  assert.equal(m.code, 1);
  assert.match(m.stderr, /line 2: the --mount option requires BuildKit/);
  await noLeftovers();
});

test('bad input: COPY of ../x or through a symlink pointing out of the context is refused; a missing stage', async () => {
  const dir = ctxDir('bad-outside', { Dockerfile: 'FROM bench/busybox:latest\nCOPY ../x /x\n' });
  const r = await build(['-t', 'bad:outside', dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /COPY failed: forbidden path outside the build context: \.\.\/x/);
  const l = ctxDir('bad-link', { Dockerfile: 'FROM bench/busybox:latest\nCOPY passwd /stolen\n' });
  symlinkSync('/etc/passwd', join(l, 'passwd'));
  const s = await build(['-t', 'bad:link', l]);
  assert.equal(s.code, 1);
  assert.match(s.stderr, /COPY failed: file not found in build context or excluded by .dockerignore: stat passwd/);
  const ms = await build([ctxDir('bad-stage', { Dockerfile: 'FROM bench/busybox:latest\nCOPY --from=nostage /x /x\n' })]);
  assert.equal(ms.code, 1);
  assert.match(ms.stderr, /invalid from flag value nostage: No such image: nostage/);
  const t = await build(['--target', 'nope', ctxDir('bad-target', { Dockerfile: 'FROM bench/busybox:latest AS a\n' })]);
  assert.equal(t.code, 1);
  assert.match(t.stderr, /failed to reach build target nope in Dockerfile/);
  for (const tag of ['bad:outside', 'bad:link']) assert.notEqual((await lbp(store.root, ['image', 'inspect', tag])).code, 0);
  await noLeftovers();
});

test('bad input: a failing RUN reports its exit code and output, exits with it as docker, and leaves no container', async () => {
  const dir = ctxDir('bad-run', { Dockerfile: 'FROM bench/busybox:latest\nRUN echo before-failing\nRUN false\n' });
  const r = await build(['-t', 'bad:run', dir]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /before-failing/);
  assert.equal(r.stderr.trim(), "The command '/bin/sh -c false' returned a non-zero code: 1");
  const e = await build([ctxDir('bad-run3', { Dockerfile: 'FROM bench/busybox:latest\nRUN echo to-stderr >&2; exit 3\n' })]);
  assert.equal(e.code, 3);
  assert.match(e.stdout, /to-stderr/);
  assert.notEqual((await lbp(store.root, ['image', 'inspect', 'bad:run'])).code, 0);
  await noLeftovers();
});

test('bad input: a context tar with hostile names (../, absolute, through a symlink) lands nowhere outside the context (CVE-2019-14271-style tar breakout)', async () => {
  const outside = join(work, 'escaped');
  const tar = layerTar([
    { path: 'Dockerfile', type: 'file', data: 'FROM bench/busybox:latest\nCOPY . /ctx/\n' },
    { path: '../escaped', type: 'file', data: 'x' },
    { path: 'evil', type: 'symlink', target: work },
    { path: 'evil/escaped', type: 'file', data: 'y' },
  ]);
  const r = await build(['-'], { input: tar });
  const { existsSync } = await import('node:fs');
  assert.ok(!existsSync(outside), 'nothing was written outside the context');
  assert.ok(r.code === 0 || /outside|link|unsafe|refus/i.test(r.stderr), r.stderr);
  await noLeftovers();
});

test('build - reads a Dockerfile (no context) or a tar context from stdin; -f - reads the Dockerfile from stdin; -q prints the ID; --iidfile', async () => {
  const r = await build(['-q', '-'], { input: 'FROM bench/busybox:latest\nLABEL from=stdin\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  const dir = ctxDir('stdin-f', { 'x.txt': 'x\n' });
  const iid = join(work, 'iid');
  const f = await build(['-f', '-', '--iidfile', iid, dir], { input: 'FROM bench/busybox:latest\nCOPY x.txt /\n' });
  assert.equal(f.code, 0, f.stderr);
  const { readFileSync } = await import('node:fs');
  assert.match(readFileSync(iid, 'utf8'), /^sha256:[0-9a-f]{64}$/);
});

test('expansion: Docker\'s ProcessWord and ProcessWords', () => {
  const env = ['A=a', 'EMPTY=', 'SP=x y'];
  assert.equal(processWord('$A ${A} ${A}b', env), 'a a ab');
  assert.equal(processWord('${UNSET:-dflt} ${EMPTY:-e} ${A:-no}', env), 'dflt e a');
  assert.equal(processWord('${A:+set} ${EMPTY:+no}x ${UNSET:+no}', env), 'set x ');
  assert.equal(processWord('\\$A \'$A\' "$A" "\\$A"', env), '$A $A a $A');
  assert.equal(processWord('`$A', env, '`'), '$A');
  assert.deepEqual(processWords('$SP "q r" s', env), ['x', 'y', 'q r', 's']);
  assert.throws(() => processWord('${A', env), /missing ':' in substitution/);
  assert.throws(() => processWord('${', env), /missing '}'/);
  assert.throws(() => processWord('${A:?must be set}', ['A=']), /A: must be set/);
});

test('parser: directives, continuations, comments inside one, empty continuation lines (with a warning), stages and meta ARGs', () => {
  const r = parseDockerfile('# escape=`\nARG X=1\nFROM a AS One\nRUN a `\n# c\n\n  b\nENV K v w\nFROM one\nONBUILD RUN x\n');
  assert.equal(r.escape, '`');
  assert.equal(r.warnings.length, 2);
  const { stages, metaArgs } = parseStages(r.nodes);
  assert.equal(metaArgs.length, 1);
  assert.equal(stages.length, 2);
  assert.equal(stages[0]!.name, 'one');
  const run = stages[0]!.commands[0]!;
  assert.equal(run.kind === 'run' && run.cmdLine[0], 'a   b');
  const env = stages[0]!.commands[1]!;
  assert.deepEqual(env.kind === 'env' && env.pairs, [['K', 'v w']]);
  assert.equal(stages[1]!.commands[0]!.kind, 'onbuild');
  assert.throws(() => parseDockerfile('FROM a\nRUN ["a", 1]\n'), /line 2: when using JSON array syntax/);
  assert.throws(() => parseStages(parseDockerfile('RUN x\n').nodes), /line 1: no build stage in current context/);
});
