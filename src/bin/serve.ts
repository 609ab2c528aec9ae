/**
 * `layerbox serve`: the Docker Engine API (the api front) and the layer explorer under /ui
 * (the ui front) over one engine, with dockerd's flags and daemon.json. The CLI keeps
 * working daemonless on the same store meanwhile. SIGTERM or SIGINT stop it gracefully:
 * listeners close, streams end, containers keep running under their conmon.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { apiRouter, listen } from '../api/index.js';
import { createExplorer } from '../ui/index.js';
import { DEFAULT_CONFIG_FILE, Engine, daemonConfigPath, readDaemonConfig, type DaemonConfig, type EngineOptions } from '../engine/index.js';
import { command } from '../cli/command.js';
import { ExitError, type Ctx } from '../cli/ctx.js';
import { flag } from '../cli/flags.js';
import { faultText } from '../errors/index.js';

export { DEFAULT_CONFIG_FILE };
export const DEFAULT_SOCKET = 'unix:///run/layerbox.sock';

const serveFlags = {
  host: flag.list('host', 'H', 'Daemon socket(s) to connect to'),
  tls: flag.bool('tls', '', 'Use TLS; implied by --tlsverify'),
  tlsverify: flag.bool('tlsverify', '', 'Use TLS and verify the remote'),
  tlscacert: flag.string('tlscacert', '', 'Trust certs signed only by this CA'),
  tlscert: flag.string('tlscert', '', 'Path to TLS certificate file'),
  tlskey: flag.string('tlskey', '', 'Path to TLS key file'),
  registryMirror: flag.list('registry-mirror', '', 'Preferred Docker registry mirror'),
  insecureRegistry: flag.list('insecure-registry', '', 'Enable insecure registry communication'),
  configFile: flag.string('config-file', '', 'Daemon configuration file', { default: DEFAULT_CONFIG_FILE }),
  group: flag.string('group', 'G', 'Group for the unix socket (default "layerbox" where it exists)'),
  insecureTcp: flag.bool('insecure-tcp', '', 'Allow plain TCP on a non-loopback address (the API is root-equivalent)'),
  dataRoot: flag.string('data-root', '', 'Root of the store (the same as layerbox --root)'),
};

export const serveCmd = command({
  name: 'serve',
  usage: '[OPTIONS]',
  short: 'Serve the Docker Engine API (v1.41) over the store, for the docker CLI, docker-compose and the SDKs',
  flags: serveFlags,
  args: { max: 0 },
  async run(ctx: Ctx, _args, o) {
    // --config-file, else $LAYERBOX_CONFIG_FILE (the file the CLI reads too), else the default
    const { path: configFile, explicit } = o.changed.has('configFile') ? { path: o.configFile ?? DEFAULT_CONFIG_FILE, explicit: true } : daemonConfigPath();
    const { config: file, unknown } = readDaemonConfig(configFile, explicit);
    for (const k of unknown) ctx.err.write(`Warning: ${configFile}: "${k}" is not a setting layerbox serve uses; ignored\n`);
    // dockerd: a setting given both as a flag and in the file is an error
    const both: string[] = [];
    const pick = <T>(flagName: string, changed: boolean, flagValue: T, key: keyof DaemonConfig): T | undefined => {
      if (changed && file[key] !== undefined) both.push(`${flagName}: (from flag: ${JSON.stringify(flagValue)}, from file: ${JSON.stringify(file[key])})`);
      return changed ? flagValue : (file[key] as T | undefined);
    };
    const hosts = pick('hosts', o.host.length > 0, o.host, 'hosts') ?? [DEFAULT_SOCKET];
    const tlsverify = pick('tlsverify', o.changed.has('tlsverify'), o.tlsverify, 'tlsverify') ?? false;
    const tls = tlsverify || (pick('tls', o.changed.has('tls'), o.tls, 'tls') ?? false);
    const certDir = process.env.DOCKER_CERT_PATH ?? join(homedir(), '.docker');
    const tlscacert = pick('tlscacert', o.changed.has('tlscacert'), o.tlscacert, 'tlscacert') ?? join(certDir, 'ca.pem');
    const tlscert = pick('tlscert', o.changed.has('tlscert'), o.tlscert, 'tlscert') ?? join(certDir, 'cert.pem');
    const tlskey = pick('tlskey', o.changed.has('tlskey'), o.tlskey, 'tlskey') ?? join(certDir, 'key.pem');
    const mirrors = pick('registry-mirrors', o.registryMirror.length > 0, o.registryMirror, 'registry-mirrors') ?? [];
    const insecure = pick('insecure-registries', o.insecureRegistry.length > 0, o.insecureRegistry, 'insecure-registries') ?? [];
    const dataRoot = pick('data-root', o.changed.has('dataRoot'), o.dataRoot, 'data-root');
    const group = pick('group', o.changed.has('group'), o.group, 'group');
    if (both.length) throw new ExitError(1, `unable to configure the daemon: the following directives are specified both as a flag and in the configuration file: ${both.join(', ')}`);

    const opts: EngineOptions = {};
    const root = dataRoot ?? (ctx.globals.root as string | undefined);
    if (root) opts.root = root;
    if (ctx.globals.storageDriver) opts.storageDriver = ctx.globals.storageDriver as 'overlay' | 'vfs';
    const insecureAll = [...((ctx.globals.insecureRegistry as string[] | undefined) ?? []), ...insecure];
    if (insecureAll.length) opts.insecureRegistries = insecureAll;
    if (mirrors.length) opts.registryMirrors = mirrors;
    if (ctx.globals.maxLayerSize !== undefined) opts.maxLayerBytes = ctx.globals.maxLayerSize as number;
    // A server's request path runs thousands of times, where a CLI command runs once: V8 is
    // told to optimise a hot function after an eighth of the bytecode budget it waits for by
    // default, so that the first few hundred requests do not run in baseline code (measured:
    // server CPU for ping + images + containers, rounds 2 and 3 of 300 connections,
    // 2.9 → 2.3 and 2.3 → 1.7 ms; dockerd's is 3.4). Before the engine's and the API's code
    // first runs, so their functions get the budget from the start.
    setFlagsFromString('--interrupt-budget=8192');
    const engine = await Engine.open(opts);
    const explorer = createExplorer(engine, { prefix: '/ui' });
    let server;
    try {
      server = await listen(apiRouter(engine), {
        hosts,
        ...(tls ? { tls: { verify: tlsverify, ca: tlscacert, cert: tlscert, key: tlskey } } : {}),
        allowInsecureTcp: !!o.insecureTcp,
        ...(group ? { group } : {}),
        before: (req, res) => explorer.handle(req, res),
      });
    } catch (e) {
      engine.close();
      throw e;
    }
    for (const a of server.addresses) ctx.err.write(`API listen on ${a}\n`);
    // A fault that escapes a request (a stream's 'error' nobody listens to, a rejection nobody
    // awaits) is a bug, but it ends no more than that request: as Go's net/http recovers a
    // handler's panic, the server logs it and keeps serving every other client.
    const fault = (what: string) => (e: unknown) => ctx.err.write(`Error: ${what} (a bug; the server keeps serving): ${faultText(e)}\n`);
    const onRejection = fault('unhandled rejection');
    const onException = fault('uncaught exception');
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    // as dockerd at boot: the containers whose restart policy says so come back (meanwhile
    // the API answers already)
    void engine.containers.restore().then(
      (r) => {
        for (const id of r.started) ctx.err.write(`Restarted container ${id.slice(0, 12)} (restart policy)\n`);
        for (const f of r.failed) ctx.err.write(`Warning: cannot restart container ${f.id.slice(0, 12)}: ${f.error}\n`);
      },
      (e: unknown) => ctx.err.write(`Warning: restoring containers failed: ${(e as Error).message}\n`),
    );
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        resolve();
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    ctx.err.write('Stopping: closing listeners; containers keep running\n');
    await server.close();
    await engine[Symbol.asyncDispose]();
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  },
});
