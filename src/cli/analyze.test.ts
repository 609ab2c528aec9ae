/** `image analyze` on a hand-built image whose analysis is known exactly, and dive's CI rules at their thresholds. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lb, tempRoot } from '../testing/cli.js';
import { EXACT, EXACT_TAG, writeExactArchive } from '../testing/analysis.js';

const t = tempRoot('lb-analyze-');
const archive = join(t.root, 'exact.tar');
let id = '';

before(() => {
  id = writeExactArchive(archive);
  const r = lb(t.root, ['load', '-i', archive]);
  assert.equal(r.code, 0, r.stderr);
});
after(() => t.cleanup());

function analyzeJson(args: string[]) {
  const r = lb(t.root, ['image', 'analyze', '--json', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('image analyze --json gives the exact sizes, efficiency, per-layer counts and wasted list', () => {
  const a = analyzeJson([EXACT_TAG]);
  assert.equal(a.image, EXACT_TAG);
  assert.equal(a.id, id);
  assert.equal(a.sizeBytes, EXACT.sizeBytes);
  assert.equal(a.unionBytes, EXACT.unionBytes);
  assert.equal(a.wastedBytes, EXACT.wastedBytes);
  assert.equal(a.efficiency, EXACT.efficiency);
  assert.deepEqual(
    a.layers.map((l: Record<string, unknown>) => ({ index: l.index, createdBy: l.createdBy, sizeBytes: l.sizeBytes, added: l.added, modified: l.modified, removed: l.removed, opaque: l.opaque })),
    EXACT.layers,
  );
  assert.deepEqual(a.wasted, EXACT.wasted);
  for (const l of a.layers) assert.match(l.diffID, /^sha256:[0-9a-f]{64}$/);
  // a docker-archive load keeps no compressed blob: no digest is known
  assert.deepEqual(a.layers.map((l: { digest: unknown }) => l.digest), [null, null, null, null]);
  // the empty layer is the empty tar: 1024 zero bytes
  assert.equal(a.layers[3].diffID, 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
  assert.deepEqual(Object.keys(a), ['image', 'id', 'sizeBytes', 'unionBytes', 'wastedBytes', 'efficiency', 'layers', 'wasted']);
});

test('image analyze reads docker-archive:, oci-archive: and oci: images in place, with the same figures', () => {
  const want = analyzeJson([EXACT_TAG]);
  const ociArchive = join(t.root, 'exact.oci.tar');
  const ociDir = join(t.root, 'exact.oci');
  assert.equal(lb(t.root, ['save', '--format', 'oci-archive', '-o', ociArchive, EXACT_TAG]).code, 0);
  assert.equal(lb(t.root, ['save', '--format', 'oci-dir', '-o', ociDir, EXACT_TAG]).code, 0);
  for (const name of [`docker-archive:${archive}`, `oci-archive:${ociArchive}`, `oci:${ociDir}`]) {
    const a = analyzeJson([name]);
    assert.equal(a.image, name);
    assert.equal(a.id, id, name);
    for (const k of ['sizeBytes', 'unionBytes', 'wastedBytes', 'efficiency', 'wasted'] as const) assert.deepEqual(a[k], want[k], `${name}: ${k}`);
    assert.deepEqual(
      a.layers.map((l: Record<string, unknown>) => ({ ...l, digest: null })),
      want.layers,
      name,
    );
  }
  // the archive's layer blobs are what the digests name (docker-archive: the plain tars)
  assert.deepEqual(analyzeJson([`docker-archive:${archive}`]).layers.map((l: { digest: string; diffID: string }) => l.digest === l.diffID), [true, true, true, true]);
  // nothing was loaded
  const images = lb(t.root, ['images', '-q']).stdout.trim().split('\n');
  assert.equal(images.length, 1);
});

test('image analyze prints a readable summary', () => {
  const r = lb(t.root, ['image', 'analyze', EXACT_TAG]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Total size: +7\.21kB \(7207 bytes of files in 4 layers\)/);
  assert.match(r.stdout, /In the union: 6\.16kB \(6157 bytes\)/);
  assert.match(r.stdout, /Wasted: +1\.05kB \(1050 bytes\)/);
  assert.match(r.stdout, /Efficiency: +85\.43 %/);
  assert.match(r.stdout, /400B +0 +\/app\/lib\/b\.so/);
});

function ci(args: string[]) {
  return lb(t.root, ['image', 'analyze', '--ci', ...args, EXACT_TAG]);
}

const status = (out: string, rule: string) => new RegExp(`^  (PASS|FAIL|SKIP): ${rule}`, 'm').exec(out)?.[1];

test('--ci: each rule passes just inside its threshold and fails just outside it; exit 1 on a failure', () => {
  const e = EXACT.efficiency; // 0.8543…
  const user = EXACT.wastedBytes / EXACT.userSizeBytes; // 0.2038…
  const ok = ci(['--lowest-efficiency', (e - 0.0001).toFixed(4), '--highest-wasted-bytes', '1050', '--highest-user-wasted-percent', (user + 0.0001).toFixed(4)]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.equal(status(ok.stdout, 'lowestEfficiency'), 'PASS');
  assert.equal(status(ok.stdout, 'highestWastedBytes'), 'PASS');
  assert.equal(status(ok.stdout, 'highestUserWastedPercent'), 'PASS');
  assert.match(ok.stdout, /^Result:PASS \[Total:3\] \[Passed:3\] \[Failed:0\] \[Warn:0\] \[Skipped:0\]$/m);

  const eff = ci(['--lowest-efficiency', (e + 0.0001).toFixed(4), '--highest-user-wasted-percent', '1']);
  assert.equal(eff.code, 1);
  assert.equal(status(eff.stdout, 'lowestEfficiency'), 'FAIL');
  assert.match(eff.stdout, /image efficiency is too low \(efficiency=0\.8543\d* < threshold=0\.8544\)/);
  assert.equal(status(eff.stdout, 'highestWastedBytes'), 'SKIP'); // dive's default: disabled

  const wasted = ci(['--lowest-efficiency', '0', '--highest-wasted-bytes', '1049', '--highest-user-wasted-percent', '1']);
  assert.equal(wasted.code, 1);
  assert.equal(status(wasted.stdout, 'highestWastedBytes'), 'FAIL');
  assert.match(wasted.stdout, /wasted-bytes=1050 > threshold=1049/);
  assert.equal(status(wasted.stdout, 'lowestEfficiency'), 'PASS');

  const userPct = ci(['--lowest-efficiency', '0', '--highest-user-wasted-percent', (user - 0.0001).toFixed(4)]);
  assert.equal(userPct.code, 1);
  assert.equal(status(userPct.stdout, 'highestUserWastedPercent'), 'FAIL');

  // dive's defaults: efficiency 0.9 (fails here), user wasted 0.1 (fails), wasted bytes disabled
  const defaults = ci([]);
  assert.equal(defaults.code, 1);
  assert.equal(status(defaults.stdout, 'lowestEfficiency'), 'FAIL');
  assert.equal(status(defaults.stdout, 'highestUserWastedPercent'), 'FAIL');
  assert.equal(status(defaults.stdout, 'highestWastedBytes'), 'SKIP');
});

test('--ci: Docker size units for --highest-wasted-bytes; .dive-ci keys in a --ci-config file, flags win', () => {
  const k = ci(['--lowest-efficiency', '0', '--highest-user-wasted-percent', '1', '--highest-wasted-bytes', '1k']);
  assert.equal(k.code, 1); // 1k = 1024 < 1050
  assert.match(k.stdout, /threshold=1024\)/);
  const file = join(t.root, 'dive-ci.yaml');
  writeFileSync(
    file,
    `# dive CI rules
rules:
  # If the efficiency is measured below X%, mark as failed.
  lowestEfficiency: 0.85
  # If the amount of wasted space is at least X or larger than X, mark as failed.
  highestWastedBytes: "1.05KB"
  highestUserWastedPercent: 0.21
`,
  );
  const pass = ci(['--ci-config', file]);
  assert.equal(pass.code, 0, pass.stdout); // 1.05KB = 1050 (SI, as go-humanize): not above
  assert.match(pass.stdout, /Result:PASS/);
  const fail = ci(['--ci-config', file, '--lowest-efficiency', '0.86']);
  assert.equal(fail.code, 1);
  assert.equal(status(fail.stdout, 'lowestEfficiency'), 'FAIL');
  writeFileSync(file, 'rules:\n  highestWastedBytes: 1KiB\n  lowestEfficiency: disabled\n  highestUserWastedPercent: disabled\n');
  const kib = ci(['--ci-config', file]);
  assert.equal(kib.code, 1);
  assert.match(kib.stdout, /threshold=1024\)/);
  assert.equal(status(kib.stdout, 'lowestEfficiency'), 'SKIP');
  writeFileSync(file, 'rules:\n  lowestEfficency: 0.5\n');
  const typo = ci(['--ci-config', file]);
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /unknown rule "lowestEfficency"/);
});

test('image analyze: an unknown image, a bad flag value and a missing archive are clear errors', () => {
  const r = lb(t.root, ['image', 'analyze', 'no/such:image']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /No such image: no\/such:image/);
  const f = lb(t.root, ['image', 'analyze', '--ci', '--lowest-efficiency', 'high', EXACT_TAG]);
  assert.equal(f.code, 125);
  assert.match(f.stderr, /invalid argument "high" for "--lowest-efficiency" flag/);
  const m = lb(t.root, ['image', 'analyze', 'oci-archive:/nonexistent.tar']);
  assert.equal(m.code, 1);
  assert.match(m.stderr, /no such file or directory/);
  const both = lb(t.root, ['image', 'analyze', '--ci', '--json', EXACT_TAG]);
  assert.equal(both.code, 125);
});
