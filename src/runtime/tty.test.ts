/**
 * `-it` through a real pseudo terminal: a small Node program (what the CLI will do) runs a container
 * with a tty inside a tmux window; keys are sent with tmux, the screen read with capture-pane, and the
 * window resized to check that the container's terminal follows.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeKit, TEST_CGROUP_PARENT, type Kit } from './testkit.js';

let kit: Kit;
const socket = `layerbox-test-${randomBytes(4).toString('hex')}`;
before(async () => {
  kit = await makeKit();
});
after(async () => {
  spawnSync('tmux', ['-L', socket, 'kill-server']);
  await kit.cleanup();
});

const tmux = (...args: string[]) => {
  const r = spawnSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

async function screenShows(re: RegExp, ms = 10_000): Promise<string> {
  const end = Date.now() + ms;
  let screen = '';
  while (Date.now() < end) {
    screen = tmux('capture-pane', '-p', '-t', 'ctr');
    if (re.test(screen)) return screen;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`screen never matched ${re}:\n${screen}`);
}

test('-it: a shell on a real terminal; keys, Ctrl-C, stty size, resize, exit code', async () => {
  const index = new URL('./index.js', import.meta.url).href;
  const id = kit.newId('tty');
  const paths = kit.paths(id);
  const result = join(kit.dir, 'tty-result.json');
  const script = join(kit.dir, 'tty-run.mjs');
  await writeFile(
    script,
    `import { writeFileSync } from 'node:fs';
import { buildSpec, createContainer, attachContainer, resizeContainer, startContainer, waitExit, Runtime } from ${JSON.stringify(index)};
const [rootfs, rtName, rtPath, stateDir, id, pathsJson, resultFile] = process.argv.slice(2);
const paths = JSON.parse(pathsJson);
const runtime = new Runtime({ name: rtName, path: rtPath, stateDir });
const size = { height: process.stdout.rows, width: process.stdout.columns };
const { spec } = await buildSpec({ rootfs, image: { Cmd: ['sh'] }, options: { tty: true, stdin: true, consoleSize: size, hostname: 'ttybox', cgroupsPath: '/${TEST_CGROUP_PARENT}/' + id } });
await createContainer({ id, runtime, paths, spec, tty: true, stdin: true });
process.stdin.setRawMode(true);
const a = await attachContainer(paths, { stdin: process.stdin, stdout: process.stdout });
await resizeContainer(paths, size.height, size.width);
process.stdout.on('resize', () => resizeContainer(paths, process.stdout.rows, process.stdout.columns).catch(() => {}));
await startContainer(runtime, id);
const st = await waitExit(paths, id);
await a.done;
process.stdin.setRawMode(false);
writeFileSync(resultFile, JSON.stringify(st));
process.exit(0);
`,
  );
  const rt = kit.runtime;
  const cmd = [process.execPath, script, kit.rootfs, rt.name, rt.path, rt.stateDir, id, JSON.stringify(paths), result].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  tmux('new-session', '-d', '-s', 'ctr', '-x', '100', '-y', '30', `env -u NODE_EXTRA_CA_CERTS ${cmd}`);
  tmux('set-option', '-t', 'ctr', 'remain-on-exit', 'on');
  await screenShows(/^\/ #\s*$/m);

  tmux('send-keys', '-t', 'ctr', 'stty size; hostname; tty', 'Enter');
  let screen = await screenShows(/^\/dev\/pts\/0$/m);
  assert.match(screen, /^30 100\nttybox\n\/dev\/pts\/0$/m);

  // Ctrl-C reaches the foreground process in the container (raw mode end to end)
  tmux('send-keys', '-t', 'ctr', 'sleep 100; echo not-interrupted', 'Enter');
  await new Promise((r) => setTimeout(r, 300));
  tmux('send-keys', '-t', 'ctr', 'C-c');
  tmux('send-keys', '-t', 'ctr', 'echo after-$((6*7))', 'Enter');
  screen = await screenShows(/^after-42$/m);
  assert.doesNotMatch(screen, /^not-interrupted$/m);

  tmux('resize-window', '-t', 'ctr', '-x', '120', '-y', '40');
  await new Promise((r) => setTimeout(r, 200));
  tmux('send-keys', '-t', 'ctr', 'clear; stty size', 'Enter');
  await screenShows(/^40 120$/m);

  tmux('send-keys', '-t', 'ctr', 'exit 7', 'Enter');
  const end = Date.now() + 10_000;
  let text = '';
  while (Date.now() < end) {
    text = await readFile(result, 'utf8').catch(() => '');
    if (text) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(JSON.parse(text), { exitCode: 7, oomKilled: false });
  await rt.delete(id);
});
