/**
 * Test support: starts the REAL Debian `docker-registry` (distribution 2.8.x) on
 * 127.0.0.1 with a free port, a temp storage directory and a temp config, optionally with
 * htpasswd (Basic) auth, token auth (backed by TestTokenServer) and TLS (optionally
 * requiring client certificates).
 *
 * The registry runs under a small shell watchdog that kills it when this process's end of
 * its stdin pipe closes, so a crashed or killed test never leaves a registry running.
 * `requests()` parses the registry's own access log (Apache combined format on stdout).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run } from '../../sys/exec.js';
import { TestTokenServer, type TestUser } from './token-server.js';

export type { TestUser };

export interface StartRegistryOptions {
  auth?: 'none' | 'htpasswd' | 'token';
  /** users for htpasswd/token auth (default one user `testuser` / `testpassword`) */
  users?: TestUser[];
  /** token auth: token lifetime announced and signed (default 300 s) */
  tokenExpirySeconds?: number;
  /** token auth: anonymous requests get pull access */
  anonymousPull?: boolean;
  /** serve HTTPS with a fresh self-signed certificate for 127.0.0.1 */
  tls?: boolean;
  /** with tls: require a client certificate signed by a fresh test client CA */
  clientCerts?: boolean;
}

export interface RequestLogEntry {
  method: string;
  /** request URI as logged (path and query) */
  uri: string;
  path: string;
  status: number;
  bytes: number;
  userAgent: string;
}

export interface TlsMaterial {
  /** PEM of the server's self-signed certificate (its own CA) */
  caPem: string;
  /** client certificate + key signed by the client CA the registry requires (with clientCerts) */
  clientCertPem?: string;
  clientKeyPem?: string;
}

export interface TestRegistry {
  /** `127.0.0.1:<port>` */
  host: string;
  /** `http(s)://127.0.0.1:<port>` */
  url: string;
  users: TestUser[];
  tokenServer?: TestTokenServer;
  tls?: TlsMaterial;
  /**
   * The registry's access log, parsed: every request it has answered so far (it waits for the
   * log to catch up first). Marker requests made for that purpose are left out.
   */
  requests(): Promise<RequestLogEntry[]>;
  /** raw stderr lines (JSON application log) */
  logs(): string[];
  /** writes `<dir>/<host>/ca.crt` (and `client.cert`/`client.key`) as Docker's certs.d expects */
  writeCertsDir(dir: string): Promise<void>;
  stop(): Promise<void>;
}

const REGISTRY_BIN = '/usr/bin/docker-registry';
const live = new Set<{ child: ChildProcess; pid?: number; dir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const r of live) {
      try {
        if (r.pid) process.kill(r.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      try {
        r.child.kill('SIGKILL');
      } catch {
        /* gone */
      }
      rmSync(r.dir, { recursive: true, force: true });
    }
  });
}

/** Removes temp dirs of registries whose test process died by SIGKILL (its registry was already killed by the watchdog). */
function sweepStale(): void {
  let names: string[] = [];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith('layerbox-registry-'));
  } catch {
    return;
  }
  for (const n of names) {
    const d = join(tmpdir(), n);
    let owner: number;
    try {
      owner = Number(readFileSync(join(d, 'owner.pid'), 'utf8'));
    } catch {
      continue;
    }
    if (!owner || owner === process.pid) continue;
    try {
      process.kill(owner, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') rmSync(d, { recursive: true, force: true });
    }
  }
}

async function htpasswdLine(u: TestUser): Promise<string> {
  const r = await run('htpasswd', ['-Bbn', u.user, u.password], {}).catch((e: Error) => {
    throw new Error(`htpasswd failed (is apache2-utils installed? apt-get install apache2-utils): ${e.message}`);
  });
  return r.stdout.trim();
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd });
}

const ACCESS_RE = /^(\S+) \S+ (\S+) \[([^\]]+)\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"/;

export function parseAccessLogLine(line: string): RequestLogEntry | undefined {
  const m = ACCESS_RE.exec(line);
  if (!m) return undefined;
  const uri = m[5]!;
  return { method: m[4]!, uri, path: uri.split('?')[0]!, status: Number(m[6]), bytes: m[7] === '-' ? 0 : Number(m[7]), userAgent: m[9]! };
}

const MARKER = 'layerbox-log-marker';

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  installExitHook();
  sweepStale();
  const auth = opts.auth ?? 'none';
  const users = opts.users ?? [{ user: 'testuser', password: 'testpassword' }];
  const dir = mkdtempSync(join(tmpdir(), 'layerbox-registry-'));
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  const rec: { child: ChildProcess; pid?: number; dir: string } = { child: undefined as unknown as ChildProcess, dir };
  let tokenServer: TestTokenServer | undefined;
  try {
    await mkdir(join(dir, 'data'));
    const cfg: string[] = [
      'version: 0.1',
      'log:',
      '  level: info',
      '  formatter: json',
      '  accesslog:',
      '    disabled: false',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      '  addr: 127.0.0.1:0',
      `  secret: ${randomBytes(16).toString('hex')}`,
    ];
    let tls: TlsMaterial | undefined;
    if (opts.tls) {
      await openssl(
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.crt', '-days', '2',
          '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
        dir,
      );
      tls = { caPem: await readFile(join(dir, 'server.crt'), 'utf8') };
      cfg.push('  tls:', `    certificate: ${join(dir, 'server.crt')}`, `    key: ${join(dir, 'server.key')}`);
      if (opts.clientCerts) {
        await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'clientca.key', '-out', 'clientca.crt', '-days', '2', '-subj', '/CN=layerbox-test-client-ca'], dir);
        await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=layerbox-test-client'], dir);
        await openssl(['x509', '-req', '-in', 'client.csr', '-CA', 'clientca.crt', '-CAkey', 'clientca.key', '-CAcreateserial', '-out', 'client.cert', '-days', '2'], dir);
        tls.clientCertPem = await readFile(join(dir, 'client.cert'), 'utf8');
        tls.clientKeyPem = await readFile(join(dir, 'client.key'), 'utf8');
        cfg.push('    clientcas:', `      - ${join(dir, 'clientca.crt')}`);
      }
    }
    if (auth === 'htpasswd') {
      const lines = await Promise.all(users.map(htpasswdLine));
      await writeFile(join(dir, 'htpasswd'), lines.join('\n') + '\n', { mode: 0o600 });
      cfg.push('auth:', '  htpasswd:', '    realm: layerbox-test-registry', `    path: ${join(dir, 'htpasswd')}`);
    } else if (auth === 'token') {
      await openssl(
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'token.key', '-out', 'token.crt', '-days', '2', '-subj', '/CN=layerbox-test-token-server'],
        dir,
      );
      const service = 'layerbox-test-registry';
      const issuer = 'layerbox-test-token-server';
      tokenServer = await TestTokenServer.start({
        users,
        service,
        issuer,
        keyPem: await readFile(join(dir, 'token.key'), 'utf8'),
        certPem: await readFile(join(dir, 'token.crt'), 'utf8'),
        expiresInSeconds: opts.tokenExpirySeconds,
        anonymousPull: opts.anonymousPull,
      });
      cfg.push('auth:', '  token:', `    realm: ${tokenServer.url}`, `    service: ${service}`, `    issuer: ${issuer}`, `    rootcertbundle: ${join(dir, 'token.crt')}`);
    }
    const cfgPath = join(dir, 'config.yml');
    await writeFile(cfgPath, cfg.join('\n') + '\n');

    // The watchdog: kills the registry when our end of its stdin closes (stop(), or this process dying).
    const script = [
      'exec 3<&0',
      '"$0" serve "$1" </dev/null 3<&- &',
      'pid=$!',
      'echo "layerbox-registry-pid $pid" >&2',
      '( cat <&3 >/dev/null; kill $pid 2>/dev/null ) &',
      'exec 3<&-',
      'wait $pid',
    ].join('\n');
    const child = spawn('/bin/sh', ['-c', script, REGISTRY_BIN, cfgPath], { stdio: ['pipe', 'pipe', 'pipe'] });
    rec.child = child;
    live.add(rec);

    const accessLines: string[] = [];
    const errLines: string[] = [];
    let listening: ((hp: string) => void) | undefined;
    let exited: ((code: number | null) => void) | undefined;
    const listenP = new Promise<string>((resolve) => (listening = resolve));
    const exitP = new Promise<number | null>((resolve) => (exited = resolve));
    child.on('exit', (code) => exited!(code));
    lineReader(child.stdout!, (l) => accessLines.push(l));
    lineReader(child.stderr!, (l) => {
      errLines.push(l);
      const pm = /^layerbox-registry-pid (\d+)$/.exec(l);
      if (pm) rec.pid = Number(pm[1]);
      const m = /listening on (127\.0\.0\.1:\d+)/.exec(l);
      if (m) listening!(m[1]!);
    });
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('docker-registry did not start within 15 s')), 15_000).unref());
    const host = await Promise.race([
      listenP,
      exitP.then((c) => {
        throw new Error(`docker-registry exited (${c}) before listening:\n${errLines.slice(-10).join('\n')}`);
      }),
      timeout,
    ]);
    const scheme = opts.tls ? 'https' : 'http';
    const url = `${scheme}://${host}`;
    const probe = (path: string) => rawGet(`${url}${path}`, tls);
    for (let i = 0; ; i++) {
      try {
        const st = await probe(`/v2/?${MARKER}=ready`);
        if (st === 200 || st === 401) break;
      } catch {
        /* not yet */
      }
      if (i > 150) throw new Error(`docker-registry at ${url} does not answer /v2/`);
      await new Promise((r) => setTimeout(r, 100));
    }
    let markers = 0;
    let stopped = false;

    const reg: TestRegistry = {
      host,
      url,
      users,
      tokenServer,
      tls,
      async requests() {
        const id = `${process.pid}-${++markers}`;
        await probe(`/v2/?${MARKER}=${id}`).catch(() => undefined);
        for (let i = 0; i < 100 && !accessLines.some((l) => l.includes(`${MARKER}=${id}`)); i++) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 20));
        const out: RequestLogEntry[] = [];
        for (const l of accessLines) {
          if (l.includes(MARKER)) continue;
          const e = parseAccessLogLine(l);
          if (e) out.push(e);
        }
        return out;
      },
      logs: () => [...errLines],
      async writeCertsDir(certsDir: string) {
        if (!tls) throw new Error('registry was started without tls');
        const d = join(certsDir, host);
        await mkdir(d, { recursive: true });
        await writeFile(join(d, 'ca.crt'), tls.caPem);
        if (tls.clientCertPem && tls.clientKeyPem) {
          await writeFile(join(d, 'client.cert'), tls.clientCertPem);
          await writeFile(join(d, 'client.key'), tls.clientKeyPem, { mode: 0o600 });
        }
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        child.stdin!.end();
        const done = await Promise.race([exitP.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
        if (!done) {
          if (rec.pid) {
            try {
              process.kill(rec.pid, 'SIGKILL');
            } catch {
              /* gone */
            }
          }
          child.kill('SIGKILL');
          await exitP;
        }
        child.stdout?.destroy();
        child.stderr?.destroy();
        await tokenServer?.stop();
        live.delete(rec);
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return reg;
  } catch (e) {
    if (rec.child) {
      if (rec.pid) {
        try {
          process.kill(rec.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      rec.child.stdin?.end();
      rec.child.kill('SIGKILL');
    }
    live.delete(rec);
    await tokenServer?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

function lineReader(stream: NodeJS.ReadableStream, onLine: (l: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

/** A bare GET (for readiness probes and log markers): status code only. */
function rawGet(url: string, tls: TlsMaterial | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const opts = { timeout: 2000, agent: false as const, ...(tls ? { ca: tls.caPem, cert: tls.clientCertPem, key: tls.clientKeyPem } : {}) };
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, opts, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
