/** Test support: run the real `layerbox` executable against a temporary store root. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './tree.js';

export const BIN = join(REPO_ROOT, 'bin', 'layerbox.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function cliEnv(root: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LAYERBOX_ROOT: root, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export function lb(root: string, args: string[], opts: { input?: string | Buffer; env?: Record<string, string> } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: cliEnv(root, opts.env), input: opts.input, maxBuffer: 256 << 20 });
  return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Like lb, without blocking the event loop (for tests whose servers run in this process). */
export function lbp(root: string, args: string[], opts: { input?: string | Buffer; env?: Record<string, string> } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { env: cliEnv(root, opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  child.stdin.end(opts.input ?? '');
  return new Promise((res) => child.on('close', (code) => res({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() })));
}

export function lbAsync(root: string, args: string[], opts: { env?: Record<string, string> } = {}): { child: ReturnType<typeof spawn>; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [BIN, ...args], { env: cliEnv(root, opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  const done = new Promise<CliResult>((res) => child.on('close', (code, sig) => res({ code: code ?? (sig ? 128 : -1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() })));
  return { child, done };
}

export function tempRoot(prefix = 'lb-test-'): { root: string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  return {
    root,
    cleanup() {
      // unmount anything a test left mounted under the root before deleting it
      spawnSync('sh', ['-c', `grep -o " ${root}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
      // a container's exit hook (run by conmon) may still be closing the store: retry
      rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}
