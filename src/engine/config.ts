/**
 * daemon.json, dockerd's configuration file, as layerbox reads it: `layerbox serve` takes
 * the keys that apply to a server (hosts, TLS, group, data-root), and both the server and
 * the daemonless CLI take the registry keys (`registry-mirrors`, `insecure-registries`), so
 * that a pull behaves the same through either front. The file is
 * `$LAYERBOX_CONFIG_FILE`, else /etc/layerbox/daemon.json; a missing default file is no
 * configuration, a broken one is an error that names it.
 */
import { readFileSync } from 'node:fs';
import { EngineError } from '../errors/index.js';

export const DEFAULT_CONFIG_FILE = '/etc/layerbox/daemon.json';

/** The daemon.json keys layerbox uses (dockerd's names). */
export interface DaemonConfig {
  hosts?: string[];
  tls?: boolean;
  tlsverify?: boolean;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
  'registry-mirrors'?: string[];
  'insecure-registries'?: string[];
  'data-root'?: string;
  group?: string;
  debug?: boolean;
}

export const DAEMON_CONFIG_KEYS: (keyof DaemonConfig)[] = ['hosts', 'tls', 'tlsverify', 'tlscacert', 'tlscert', 'tlskey', 'registry-mirrors', 'insecure-registries', 'data-root', 'group', 'debug'];

const TYPES: Record<keyof DaemonConfig, 'string' | 'boolean' | 'string[]'> = {
  hosts: 'string[]',
  tls: 'boolean',
  tlsverify: 'boolean',
  tlscacert: 'string',
  tlscert: 'string',
  tlskey: 'string',
  'registry-mirrors': 'string[]',
  'insecure-registries': 'string[]',
  'data-root': 'string',
  group: 'string',
  debug: 'boolean',
};

/** The configuration file in effect: $LAYERBOX_CONFIG_FILE, else /etc/layerbox/daemon.json. */
export function daemonConfigPath(env: NodeJS.ProcessEnv = process.env): { path: string; explicit: boolean } {
  return env.LAYERBOX_CONFIG_FILE ? { path: env.LAYERBOX_CONFIG_FILE, explicit: true } : { path: DEFAULT_CONFIG_FILE, explicit: false };
}

/**
 * Reads daemon.json. A file that is missing is `{}` unless it was named explicitly; one
 * that is not a JSON object, or whose known keys have the wrong type, is an error. Keys
 * layerbox does not use are returned in `unknown` (the server warns about them).
 */
export function readDaemonConfig(path: string, explicit = true): { config: DaemonConfig; unknown: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (!explicit && (e as NodeJS.ErrnoException).code === 'ENOENT') return { config: {}, unknown: [] };
    throw new EngineError('invalid-argument', 'CONFIG_FILE', `unable to read the configuration file: ${(e as Error).message}`, { where: path });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new EngineError('invalid-argument', 'CONFIG_FILE', `unable to parse the configuration file: ${(e as Error).message}`, { where: path, hint: 'daemon.json is a JSON object' });
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new EngineError('invalid-argument', 'CONFIG_FILE', 'the configuration file is not a JSON object', { where: path });
  const cfg = v as Record<string, unknown>;
  const unknown: string[] = [];
  for (const [k, val] of Object.entries(cfg)) {
    const t = TYPES[k as keyof DaemonConfig];
    if (!t) {
      unknown.push(k);
      continue;
    }
    const ok = t === 'string[]' ? Array.isArray(val) && val.every((x) => typeof x === 'string') : typeof val === t;
    if (!ok) throw new EngineError('invalid-argument', 'CONFIG_FILE', `the configuration file has a wrong type for "${k}": ${t === 'string[]' ? 'a list of strings' : `a ${t}`} is expected`, { where: path });
  }
  return { config: cfg as DaemonConfig, unknown };
}
