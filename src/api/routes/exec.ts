/** Exec: create, start (hijacked, or detached), resize, inspect. */
import type { ExecConfig } from '../../engine/index.js';
import { badRequest } from '../http.js';
import type { RouteCtx, Router } from '../router.js';
import { frame, STDERR, STDOUT } from '../stdcopy.js';
import { isEngineError } from '../../errors/index.js';
import { outputWriter, RAW_STREAM } from './containers.js';

interface ExecStartBody {
  Detach?: boolean;
  Tty?: boolean;
  ConsoleSize?: [number, number] | null;
}

export function execRoutes(r: Router): void {
  r.on('POST', '/containers/:id/exec', async (c) => {
    const body = await c.json<ExecConfig>('ContainerExec');
    if (!body) throw badRequest('No exec command specified');
    c.send(201, await c.engine.containers.createExec(c.params.id!, body));
  });

  r.on('POST', '/exec/:id/start', async (c) => {
    const body = (await c.json<ExecStartBody>('ExecStart')) ?? {};
    const id = c.params.id!;
    const ex = await c.engine.containers.inspectExec(id);
    const size = body.ConsoleSize && body.ConsoleSize.length === 2 ? { height: body.ConsoleSize[0], width: body.ConsoleSize[1] } : undefined;
    if (body.Detach) {
      await c.engine.containers.startExec(id, { detach: true, ...(size ? { consoleSize: size } : {}) });
      c.res!.writeHead(200, { 'Content-Length': '0' });
      c.res!.end();
      return;
    }
    let h: ReturnType<RouteCtx['hijack']> | undefined;
    const out = () => h!.out;
    const tty = ex.ProcessConfig.tty;
    const started = c.engine.containers.startExec(id, {
      streams: {
        get stdin() {
          return ex.OpenStdin ? (h?.input ?? null) : null;
        },
        stdout: ex.OpenStdout ? outputWriter(out, STDOUT, tty, c.signal) : null,
        stderr: ex.OpenStderr ? outputWriter(out, STDERR, tty, c.signal) : null,
      },
      ...(size ? { consoleSize: size } : {}),
      signal: c.signal,
      onReady: () => {
        h = c.hijack(RAW_STREAM);
        // without stdin nothing reads the connection: read it anyway, to see the client leave
        if (!ex.OpenStdin) h.input?.resume();
      },
    });
    try {
      await started;
    } catch (e) {
      if (!h) throw e;
      // hijacked already: dockerd writes why the exec failed (it could not start) on its stdout
      const msg = Buffer.from(`${isEngineError(e) ? e.message : String(e)}\r\n`);
      await new Promise<void>((res) => h!.out.write(tty ? msg : frame(STDOUT, msg), () => res()));
    }
    h?.end();
  });

  r.on('POST', '/exec/:id/resize', async (c) => {
    const h = c.query.int('h');
    const w = c.query.int('w');
    if (h === undefined || w === undefined || h < 0 || w < 0) throw badRequest('invalid terminal size: h and w are non-negative integers');
    await c.engine.containers.resizeExec(c.params.id!, { height: h, width: w });
    c.res!.writeHead(200, { 'Content-Length': '0' });
    c.res!.end();
  });

  r.on('GET', '/exec/:id/json', async (c) => {
    c.send(200, await c.engine.containers.inspectExec(c.params.id!));
  });
}
