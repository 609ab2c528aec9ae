/** Decompression and compression streams: gzip in-process (zlib), zstd through the zstd program. */
import { spawn } from 'node:child_process';
import { Duplex, PassThrough } from 'node:stream';
import { createGunzip, createGzip, constants as Z } from 'node:zlib';
import { EngineError } from '../errors/index.js';
import type { Compression } from '../oci/mediatypes.js';

function zstdProcess(args: string[], what: string): Duplex {
  const child = spawn('zstd', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const err: Buffer[] = [];
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const d = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on('error', (e) =>
    d.destroy(new EngineError('unavailable', 'ZSTD_MISSING', `cannot run zstd to ${what}: ${e.message}`, { hint: 'install the zstd package (scripts/setup.sh does)' })),
  );
  child.on('close', (code) => {
    if (code !== 0 && code !== null) {
      d.destroy(new EngineError('data-loss', 'ZSTD_FAILED', `zstd could not ${what}: ${Buffer.concat(err).toString().trim() || `exit ${code}`}`));
    }
  });
  d.on('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return d;
}

export function decompressor(c: Compression): Duplex {
  switch (c) {
    case 'gzip':
      return createGunzip({ chunkSize: 1 << 17 });
    case 'zstd':
      return zstdProcess(['-d', '-c', '-q'], 'decompress a layer');
    case 'none':
      return new PassThrough();
  }
}

export function compressor(c: Compression, level?: number): Duplex {
  switch (c) {
    case 'gzip':
      return createGzip({ level: level ?? Z.Z_DEFAULT_COMPRESSION, chunkSize: 1 << 17 });
    case 'zstd':
      return zstdProcess(['-c', '-q', `-${level ?? 3}`, '-T0'], 'compress a layer');
    case 'none':
      return new PassThrough();
  }
}
