/**
 * Docker's credentials file (`~/.docker/config.json`, or `$DOCKER_CONFIG/config.json`):
 * `auths` entries (base64 `auth`, `identitytoken`), `credsStore` and `credHelpers`
 * (`docker-credential-<name> get|store|erase`, Docker's stdin/stdout JSON protocol).
 *
 * Lookup keys are Docker's: `https://index.docker.io/v1/` for Docker Hub, otherwise
 * `host[:port]`; entries stored with a scheme or a path (`https://host:5000/v2/`) match
 * their host. Credentials are only ever returned for the host asked about.
 *
 * Writes keep unknown keys, go through a temp file + fsync + rename (mode 0600) in a
 * 0700 directory, and follow a symlinked config.json to its target instead of
 * replacing the link.
 */
import { access, constants as FS, readFile, lstat, readlink, mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { EngineError, errnoCode } from '../errors/index.js';
import { run } from '../sys/exec.js';
import { writeFileAtomic } from '../sys/fsutil.js';
import { acquireLock } from '../sys/lock.js';
import type { Credentials, CredentialSource } from './auth.js';

export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
const HUB_NAMES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

export interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  email?: string;
  serveraddress?: string;
  [k: string]: unknown;
}

export interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

/** `https://host:5000/v2/` → `host:5000` (Docker's ConvertToHostname). */
export function convertToHostname(s: string): string {
  let h = s.trim();
  if (h.startsWith('http://')) h = h.slice(7);
  else if (h.startsWith('https://')) h = h.slice(8);
  return h.split('/')[0]!.toLowerCase();
}

/** The key Docker stores a registry's credentials under. */
export function credentialKey(registry: string): string {
  const h = convertToHostname(registry);
  if (HUB_NAMES.has(h)) return DOCKER_HUB_KEY;
  return h;
}

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  return join(dir, 'config.json');
}

export interface CredentialStoreOptions {
  /** config.json path; default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` */
  configPath?: string;
  /** environment for credential helpers (PATH is used to find them); default process.env */
  env?: NodeJS.ProcessEnv;
}

interface HelperReply {
  ServerURL?: string;
  Username?: string;
  Secret?: string;
}

const HELPER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const NOT_FOUND_RE = /credentials not found/i;

export class CredentialStore implements CredentialSource {
  readonly configPath: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(opts: CredentialStoreOptions = {}) {
    this.env = opts.env ?? process.env;
    this.configPath = opts.configPath ?? defaultConfigPath(this.env);
  }

  /** The parsed config file, `{}` when there is none. */
  async read(): Promise<DockerConfigFile> {
    let text: string;
    try {
      text = await readFile(this.configPath, 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return {};
      throw new EngineError('failed-precondition', 'CREDENTIALS_UNREADABLE', `cannot read ${this.configPath}: ${(e as Error).message}`, { where: this.configPath, cause: e });
    }
    if (text.trim() === '') return {};
    try {
      const j = JSON.parse(text) as unknown;
      if (!j || typeof j !== 'object' || Array.isArray(j)) throw new Error('not a JSON object');
      return j as DockerConfigFile;
    } catch (e) {
      throw new EngineError('failed-precondition', 'CREDENTIALS_INVALID', `${this.configPath} is not valid JSON: ${(e as Error).message}`, {
        where: this.configPath,
        hint: 'fix or remove the file, then log in again',
      });
    }
  }

  private helperFor(cfg: DockerConfigFile, key: string): string | undefined {
    const host = convertToHostname(key);
    const h = cfg.credHelpers?.[key] ?? cfg.credHelpers?.[host] ?? (key === DOCKER_HUB_KEY ? cfg.credHelpers?.['docker.io'] : undefined) ?? cfg.credsStore;
    return h || undefined;
  }

  /** Credentials stored for `registry` (host[:port] or `docker.io`), or undefined. */
  async get(registry: string, opts: { signal?: AbortSignal } = {}): Promise<Credentials | undefined> {
    const cfg = await this.read();
    const key = credentialKey(registry);
    const helper = this.helperFor(cfg, key);
    if (helper) return this.helperGet(helper, key, opts.signal);
    const auths = cfg.auths ?? {};
    let entry = Object.prototype.hasOwnProperty.call(auths, key) ? auths[key] : undefined;
    if (!entry) {
      const want = convertToHostname(key);
      for (const [k, v] of Object.entries(auths)) {
        if (credentialKey(k) === key || convertToHostname(k) === want) {
          entry = v;
          break;
        }
      }
    }
    if (!entry || typeof entry !== 'object') return undefined;
    return this.decodeEntry(entry, key);
  }

  private decodeEntry(e: AuthEntry, key: string): Credentials | undefined {
    const out: Credentials = {};
    if (typeof e.auth === 'string' && e.auth !== '') {
      const dec = Buffer.from(e.auth, 'base64').toString('utf8');
      const i = dec.indexOf(':');
      if (i < 0 || !/^[A-Za-z0-9+/=\s]*$/.test(e.auth)) {
        throw new EngineError('failed-precondition', 'CREDENTIALS_INVALID', `invalid auth entry for ${key} in ${this.configPath}`, {
          where: this.configPath,
          hint: `log in to ${key} again`,
        });
      }
      out.username = dec.slice(0, i);
      out.password = dec.slice(i + 1).replace(/\0+$/, '');
    } else {
      if (typeof e.username === 'string' && e.username) out.username = e.username;
      if (typeof e.password === 'string' && e.password) out.password = e.password;
    }
    if (typeof e.identitytoken === 'string' && e.identitytoken) out.identityToken = e.identitytoken;
    if (typeof e.registrytoken === 'string' && e.registrytoken) out.registryToken = e.registrytoken;
    return out.username || out.password || out.identityToken || out.registryToken ? out : undefined;
  }

  /** Stores credentials for `registry` (through its credential helper when one is configured). */
  async store(registry: string, creds: Credentials, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const key = credentialKey(registry);
    await this.update(async (cfg) => {
      const helper = this.helperFor(cfg, key);
      cfg.auths ??= {};
      if (helper) {
        const token = creds.identityToken;
        const payload = JSON.stringify({ ServerURL: key, Username: token ? '<token>' : creds.username ?? '', Secret: token ?? creds.password ?? '' });
        await this.runHelper(helper, 'store', payload, opts.signal);
        cfg.auths[key] = {};
      } else {
        const entry: AuthEntry = {};
        if (creds.username !== undefined || creds.password !== undefined) {
          entry.auth = Buffer.from(`${creds.username ?? ''}:${creds.password ?? ''}`, 'utf8').toString('base64');
        }
        if (creds.identityToken) entry.identitytoken = creds.identityToken;
        if (creds.registryToken) entry.registrytoken = creds.registryToken;
        cfg.auths[key] = entry;
      }
    }, opts.signal);
  }

  /** Removes the credentials stored for `registry` (also entries stored with a scheme or path). */
  async erase(registry: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const key = credentialKey(registry);
    await this.update(async (cfg) => {
      const helper = this.helperFor(cfg, key);
      if (helper) await this.runHelper(helper, 'erase', key, opts.signal, true);
      if (cfg.auths) {
        for (const k of Object.keys(cfg.auths)) if (k === key || credentialKey(k) === key) delete cfg.auths[k];
      }
    }, opts.signal);
  }

  /** Read-modify-write under a lock, written atomically to the symlink's target. */
  private async update(fn: (cfg: DockerConfigFile) => Promise<void>, signal?: AbortSignal): Promise<void> {
    const target = await resolveSymlinkTarget(this.configPath);
    await mkdir(dirname(this.configPath), { recursive: true, mode: 0o700 });
    if (target !== this.configPath) await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    const lock = await acquireLock(`${target}.lock`, { signal, timeoutMs: 30_000, what: 'the credentials file' });
    try {
      const cfg = await this.read();
      await fn(cfg);
      await writeFileAtomic(target, JSON.stringify(cfg, null, '\t') + '\n', 0o600);
    } finally {
      lock.release();
    }
  }

  private async helperPath(name: string): Promise<string> {
    if (!HELPER_NAME_RE.test(name)) {
      throw new EngineError('failed-precondition', 'CREDENTIALS_HELPER_INVALID', `invalid credential helper name ${JSON.stringify(name)}`, { where: this.configPath });
    }
    const bin = `docker-credential-${name}`;
    const p = await findOnPath(bin, this.env.PATH);
    if (!p) {
      throw new EngineError('failed-precondition', 'CREDENTIALS_HELPER_MISSING', `credential helper ${bin} not found on PATH`, {
        where: this.configPath,
        hint: `install ${bin} or remove "${name}" from credsStore/credHelpers`,
      });
    }
    return p;
  }

  private async runHelper(name: string, action: 'get' | 'store' | 'erase', input: string, signal?: AbortSignal, tolerateNotFound = false) {
    const bin = await this.helperPath(name);
    const r = await run(bin, [action], { input, allowFailure: true, env: this.env, signal });
    if (r.code !== 0) {
      const out = (r.stdout.trim() || r.stderr.trim()).slice(0, 300);
      if (tolerateNotFound && NOT_FOUND_RE.test(out)) return r;
      throw new EngineError('unavailable', 'CREDENTIALS_HELPER_FAILED', `docker-credential-${name} ${action} failed (exit ${r.code}): ${out}`, { where: bin });
    }
    return r;
  }

  private async helperGet(name: string, key: string, signal?: AbortSignal): Promise<Credentials | undefined> {
    const bin = await this.helperPath(name);
    const r = await run(bin, ['get'], { input: key, allowFailure: true, env: this.env, signal });
    if (r.code !== 0) {
      if (NOT_FOUND_RE.test(r.stdout) || NOT_FOUND_RE.test(r.stderr)) return undefined;
      throw new EngineError('unavailable', 'CREDENTIALS_HELPER_FAILED', `docker-credential-${name} get failed (exit ${r.code}): ${(r.stdout.trim() || r.stderr.trim()).slice(0, 300)}`, { where: bin });
    }
    let j: HelperReply;
    try {
      j = JSON.parse(r.stdout) as HelperReply;
    } catch {
      throw new EngineError('unavailable', 'CREDENTIALS_HELPER_FAILED', `docker-credential-${name} get returned invalid JSON`, { where: bin });
    }
    if (!j.Secret && !j.Username) return undefined;
    if (j.Username === '<token>') return { identityToken: j.Secret ?? '' };
    return { username: j.Username ?? '', password: j.Secret ?? '' };
  }
}

/** Follows a chain of symlinks at `p` (final component only) to the file that should be written. */
export async function resolveSymlinkTarget(p: string): Promise<string> {
  let cur = resolve(p);
  for (let i = 0; i < 40; i++) {
    let st;
    try {
      st = await lstat(cur);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return cur;
      throw e;
    }
    if (!st.isSymbolicLink()) return cur;
    cur = resolve(dirname(cur), await readlink(cur));
  }
  throw new EngineError('failed-precondition', 'CREDENTIALS_SYMLINK_LOOP', `too many levels of symbolic links at ${p}`, { where: p });
}

async function findOnPath(bin: string, pathVar: string | undefined): Promise<string | undefined> {
  for (const d of (pathVar ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (!d || !d.startsWith('/')) continue; // never a relative PATH entry
    const p = join(d, bin);
    try {
      await access(p, FS.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}
