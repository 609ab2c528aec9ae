/** TLS material per registry host from Docker's certs.d directory. */
import { readFile, readdir } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { EngineError, errnoCode } from '../errors/index.js';

export interface HostTls {
  ca?: string[];
  cert?: string;
  key?: string;
}

let systemRoots: string[] | undefined;
async function systemCAs(): Promise<string[]> {
  if (systemRoots) return systemRoots;
  const roots = [...rootCertificates];
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (extra) {
    try {
      roots.push(await readFile(extra, 'utf8'));
    } catch {
      /* Node itself warns about an unreadable NODE_EXTRA_CA_CERTS */
    }
  }
  systemRoots = roots;
  return roots;
}

/**
 * Reads `<certsDir>/<host[:port]>/` like Docker: every `*.crt` is an extra CA (added to the
 * system roots), every `*.cert` must have a `*.key` of the same name and vice versa.
 */
export async function loadCertsDir(certsDir: string, host: string): Promise<HostTls> {
  const dir = `${certsDir}/${host.replace(/[/\\]/g, '_')}`;
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return {};
    throw new EngineError('failed-precondition', 'REGISTRY_CERTS_DIR', `cannot read TLS material for ${host}: ${(e as Error).message}`, {
      where: dir,
      cause: e,
    });
  }
  const out: HostTls = {};
  const cas: string[] = [];
  for (const n of names) {
    if (n.endsWith('.crt')) cas.push(await readFile(`${dir}/${n}`, 'utf8'));
    else if (n.endsWith('.cert')) {
      const keyName = n.slice(0, -5) + '.key';
      if (!names.includes(keyName)) {
        throw new EngineError('failed-precondition', 'REGISTRY_CERTS_DIR', `missing key ${keyName} for client certificate ${n}`, {
          where: dir,
          hint: 'CA certificates must use the extension .crt; client certificates need a .cert and a .key of the same name',
        });
      }
      if (out.cert === undefined) {
        out.cert = await readFile(`${dir}/${n}`, 'utf8');
        out.key = await readFile(`${dir}/${keyName}`, 'utf8');
      }
    } else if (n.endsWith('.key')) {
      const certName = n.slice(0, -4) + '.cert';
      if (!names.includes(certName)) {
        throw new EngineError('failed-precondition', 'REGISTRY_CERTS_DIR', `missing client certificate ${certName} for key ${n}`, { where: dir });
      }
    }
  }
  if (cas.length > 0) out.ca = [...(await systemCAs()), ...cas];
  return out;
}
