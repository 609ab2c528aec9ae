/**
 * Test support: `layerbox serve` on a temporary unix socket over a given store root (the
 * tests of events, restart policies and healthchecks need the server's start-up — restoring
 * containers — and its /events, not a full API client kit). `stop()` ends it with SIGTERM.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, cliEnv } from './cli.js';

export interface LiteServe {
  sock: string;
  /** DOCKER_HOST and a private DOCKER_CONFIG for a docker CLI */
  env: NodeJS.ProcessEnv;
  log(): string;
  get(path: string): Promise<{ status: number; body: string }>;
  stop(): Promise<void>;
}

export function getUnix(sock: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, path, headers: { Host: 'docker' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function serveLite(root: string, opts: { timeoutMs?: number } = {}): Promise<LiteServe> {
  const dir = mkdtempSync('/tmp/lbsl-');
  const sock = join(dir, 'api.sock');
  const config = join(dir, 'daemon.json');
  writeFileSync(config, '{}');
  const child = spawn(process.execPath, [BIN, '--root', root, 'serve', '-H', `unix://${sock}`, '--config-file', config], { env: cliEnv(root), stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const exited = once(child, 'exit');
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(dir, 'docker-config'), DOCKER_CLI_HINTS: 'false' };
  delete env.DOCKER_API_VERSION;
  delete env.NODE_EXTRA_CA_CERTS;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (Date.now() < deadline && child.exitCode === null) {
    const r = await getUnix(sock, '/_ping').catch(() => undefined);
    if (r?.status === 200) return { sock, env, log: () => log, get: (p) => getUnix(sock, p), stop };
    await sleep(50);
  }
  await stop();
  throw new Error(`layerbox serve did not start:\n${log}`);
}
