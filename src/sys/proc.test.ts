/** Process identities: a live process has one; an exited one, reaped or still a zombie, has none. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, procStart, selfId } from './proc.js';

test('a zombie counts as gone: isAlive is false for an exited child its parent never reaps', async () => {
  // sh starts `sleep 0.1` in the background, then becomes `sleep 5`, which never waits for it
  const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const pid = Number(await new Promise<string>((r) => parent.stdout!.once('data', (b: Buffer) => r(b.toString()))));
    const start = procStart(pid);
    assert.ok(start !== undefined, 'alive at first');
    let state = '';
    for (let i = 0; i < 100 && state !== 'Z'; i++) {
      await sleep(20);
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!;
    }
    assert.equal(state, 'Z', 'the child is a zombie (its /proc entry stays)');
    assert.equal(procStart(pid), undefined);
    assert.equal(isAlive({ pid, start: start! }), false);
  } finally {
    parent.kill('SIGKILL');
  }
  assert.equal(isAlive(selfId()), true);
  assert.equal(procStart(999_999_999), undefined);
});
