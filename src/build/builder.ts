/**
 * The Dockerfile builder, following Docker 20.10's classic builder (builder/dockerfile:
 * builder.go, evaluator.go, dispatchers.go, internals.go). Each instruction makes an image
 * of the store, the child of the previous one:
 *
 *  - RUN runs in a container made by the container manager (the same hardening, network,
 *    user and mounts as `run`), with the ARGs in effect in its environment; its writable layer
 *    becomes the step's layer through commit's code;
 *  - COPY, ADD and WORKDIR change a snapshot of the image mounted with overlayfs (no
 *    container), and its upper directory becomes the layer;
 *  - the other instructions change only the config: a history entry with `empty_layer`.
 *
 * A step is looked up in the build cache first (its parent image and its probe config); the
 * first miss of a stage turns the cache off for the rest of it. The output is the classic
 * builder's text (`Step 2/5 : RUN …`, ` ---> Using cache`, ` ---> Running in …`, …).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { PassThrough } from 'node:stream';
import { EngineError, failedPrecondition, invalidArgument, notFound, throwIfAborted, unsupported } from '../errors/index.js';
import { sha256, shortId, type Digest } from '../oci/digest.js';
import type { ImageRef } from '../oci/reference.js';
import type { ContainerConfig, HistoryEntry, ImageConfig } from '../oci/types.js';
import type { ImageRecord, ImageStore } from '../image/images.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { mountAll, unmount } from '../snapshot/mount.js';
import { writeLayer } from '../archive/layerwriter.js';
import { TarSplitWriter } from '../archive/tarsplit.js';
import type { ContainerManager } from '../container/manager.js';
import { commitContainer, EMPTY_LAYER_DIFF_ID } from '../container/commit.js';
import { ensureDirInRoot } from '../runtime/rootfs.js';
import { BuildArgs } from './buildargs.js';
import { BuildCacheStore, cacheKey } from './cache.js';
import { BuildContext } from './context.js';
import { normalizeDest, parseChown, performCopy, sourceInfos, sourcesHash, type CopyInfo } from './copy.js';
import { parseInstruction, parseStages, type ArgCommand, type Command, type Stage } from './instructions.js';
import { parseDockerfile, type ParseResult } from './parser.js';
import { goQuote, goQuoteRune, goQuoteSlice, processWord, processWords } from './shell.js';
import { download } from './remote.js';
import { trace } from '../sys/trace.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface BuilderDeps {
  images: ImageStore;
  snapshots: Snapshotter;
  containers(): Promise<ContainerManager>;
  cache: BuildCacheStore;
  tmpDir: string;
  /** a stored image by name or ID (throws not-found) */
  resolveImage(name: string): ImageRecord;
  /** fetches an image from its registry (FROM of an image not stored, --pull) */
  pull?(name: string, opts: { signal?: AbortSignal }): Promise<void>;
}

export interface BuildRequest {
  context: BuildContext;
  dockerfile: string;
  dockerfileName: string;
  tags: ImageRef[];
  buildArgs: Map<string, string | undefined>;
  labels: Record<string, string>;
  target?: string;
  noCache?: boolean;
  pull?: boolean;
  /** remove intermediate containers after a successful build (default true) */
  rm?: boolean;
  /** always remove them */
  forceRm?: boolean;
  /** bridge (default), host or none */
  networkMode?: string;
  extraHosts?: string[];
  platform?: { os: string; architecture: string; variant?: string };
  quiet?: boolean;
  signal?: AbortSignal;
}

export interface BuildOutput {
  /** build output text (Docker's `stream`) */
  stream(text: string): void;
  /** the ID of each stage's image (Docker's `aux`) */
  aux(id: string): void;
}

export interface BuildResult {
  id: Digest;
  tags: string[];
  warnings: string[];
}

interface State {
  runConfig: ContainerConfig;
  imageId: string;
  maintainer: string;
  cmdSet: boolean;
  stageName: string;
  buildArgs: BuildArgs;
  os: string;
  architecture: string;
  variant?: string;
  /** the cache is off for the rest of the stage after its first miss */
  cacheBusted: boolean;
}

/** Docker's container.Config as a fresh builder has it (every field, in Go's order). */
function emptyConfig(): ContainerConfig {
  return { Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false, OpenStdin: false, StdinOnce: false, Env: null, Cmd: null, Image: '', Volumes: null, WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: null };
}

const ORDER = ['Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'ExposedPorts', 'Tty', 'OpenStdin', 'StdinOnce', 'Env', 'Cmd', 'Healthcheck', 'ArgsEscaped', 'Image', 'Volumes', 'WorkingDir', 'Entrypoint', 'NetworkDisabled', 'MacAddress', 'OnBuild', 'Labels', 'StopSignal', 'StopTimeout', 'Shell'];
const OMIT_EMPTY = new Set(['ExposedPorts', 'Healthcheck', 'ArgsEscaped', 'NetworkDisabled', 'MacAddress', 'StopSignal', 'StopTimeout', 'Shell']);

/** A deep copy in the JSON shape Go writes (field order, omitempty fields left out when empty). */
export function copyConfig(c: ContainerConfig): ContainerConfig {
  const src = JSON.parse(JSON.stringify(c)) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of ORDER) {
    const v = src[k];
    if (OMIT_EMPTY.has(k)) {
      if (v === undefined || v === null || v === false || v === '' || v === 0 || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0)) continue;
      out[k] = v;
    } else out[k] = v ?? (emptyConfig() as Record<string, unknown>)[k] ?? null;
  }
  for (const k of Object.keys(src)) if (!(k in out) && !ORDER.includes(k)) out[k] = src[k];
  return out as ContainerConfig;
}

function shellOf(c: ContainerConfig): string[] {
  return c.Shell?.length ? [...c.Shell] : ['/bin/sh', '-c'];
}

/** Go's time.Duration.String() */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(ns);
  let s: string;
  if (u < 1e9) {
    const [div, unit] = u < 1e3 ? [1, 'ns'] : u < 1e6 ? [1e3, 'µs'] : [1e6, 'ms'];
    s = trimFrac(u / div) + unit;
  } else {
    const h = Math.floor(u / 3600e9);
    u -= h * 3600e9;
    const m = Math.floor(u / 60e9);
    u -= m * 60e9;
    s = (h ? `${h}h` : '') + (h || m ? `${m}m` : '') + trimFrac(u / 1e9) + 's';
  }
  return (neg ? '-' : '') + s;
}

function trimFrac(v: number): string {
  return v.toFixed(9).replace(/\.?0+$/, '');
}

/** nat.ParsePortSpecs for EXPOSE: "80", "80/udp", "8000-8002/tcp" → "80/tcp", … */
function exposedPorts(ports: string[]): string[] {
  const out: string[] = [];
  for (const p of ports) {
    const [range, proto = 'tcp'] = p.split('/') as [string, string?];
    const m = /^(\d+)(?:-(\d+))?$/.exec(range.includes(':') ? range.slice(range.lastIndexOf(':') + 1) : range);
    if (!m || !/^(tcp|udp|sctp)$/i.test(proto)) throw invalidArgument('BUILD_EXPOSE', `Invalid containerPort: ${range}`, { hint: 'EXPOSE PORT[/PROTO] or START-END[/PROTO]' });
    const a = Number(m[1]);
    const b = m[2] ? Number(m[2]) : a;
    if (a > 65535 || b > 65535 || b < a) throw invalidArgument('BUILD_EXPOSE', `Invalid containerPort: ${range}`);
    for (let i = a; i <= b; i++) out.push(`${i}/${proto.toLowerCase()}`);
  }
  return out;
}

const SIGNALS = new Set(['ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR', 'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ']);

function checkSignal(s: string): void {
  if (/^\d+$/.test(s)) {
    if (Number(s) === 0 || Number(s) > 64) throw invalidArgument('BUILD_STOPSIGNAL', `Invalid signal: ${s}`);
    return;
  }
  const n = s.toUpperCase().replace(/^SIG/, '');
  if (SIGNALS.has(n) || /^RTMIN(\+\d+)?$|^RTMAX(-\d+)?$/.test(n)) return;
  throw invalidArgument('BUILD_STOPSIGNAL', `Invalid signal: ${s}`, { hint: 'a signal name (SIGTERM) or number' });
}

function isURL(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function isEngineErr(e: unknown): e is EngineError {
  return e instanceof EngineError;
}

/** A step error as Docker words it ("COPY failed: …"), the code kept for RUN's exit status. */
function stepError(prefix: string, e: unknown): never {
  if (isEngineErr(e)) {
    if (prefix && !e.message.startsWith(prefix)) e.message = `${prefix}${e.message}`;
    throw e;
  }
  throw e;
}

/** A RUN whose command failed: Docker's message, and its exit code (errorDetail.code). */
export class BuildRunError extends EngineError {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super('failed-precondition', 'BUILD_RUN_FAILED', message);
  }
}

export class Builder {
  private readonly mounts = new Map<string, { path: string; ctx: BuildContext }>();
  private readonly containersMade = new Set<string>();
  private readonly warnings: string[] = [];

  constructor(
    private readonly d: BuilderDeps,
    private readonly req: BuildRequest,
    private readonly out: BuildOutput,
  ) {
    if (d.snapshots.name !== 'overlay') {
      throw unsupported('BUILD_NEEDS_OVERLAY', 'build writes its layers from overlayfs upper directories; this store uses the vfs driver', { hint: 'use a store with the overlay storage driver' });
    }
  }

  private print(s: string): void {
    if (!this.req.quiet) this.out.stream(s);
  }

  async run(): Promise<BuildResult> {
    if (this.req.dockerfile.length === 0) throw invalidArgument('BUILD_EMPTY_DOCKERFILE', `the Dockerfile (${this.req.dockerfileName}) cannot be empty`);
    const parsed: ParseResult = parseDockerfile(this.req.dockerfile);
    const { stages: all, metaArgs } = parseStages(parsed.nodes);
    let stages = all;
    if (this.req.target) {
      const ix = stages.findIndex((s) => s.name === this.req.target!.toLowerCase());
      if (ix < 0) throw invalidArgument('BUILD_TARGET', `failed to reach build target ${this.req.target} in Dockerfile`, { hint: 'name the stage with FROM … AS NAME' });
      stages = stages.slice(0, ix + 1);
    }
    if (stages.length === 0) throw invalidArgument('BUILD_NO_STAGE', 'No image was generated. Is your Dockerfile empty?');
    for (const k of Object.keys(this.req.labels).sort()) {
      stages[stages.length - 1]!.commands.push({ kind: 'label', pairs: [[k, this.req.labels[k]!]], noExpand: true, code: `LABEL ${k}=${this.req.labels[k]}`, line: 0 });
    }
    for (const w of parsed.warnings) this.warnings.push(w);
    if (parsed.warnings.length) this.print(parsed.warnings.join('\n') + '\n');
    let ok = false;
    try {
      const r = await this.dispatchAll(stages, metaArgs, parsed.escape);
      ok = true;
      return r;
    } finally {
      try {
        this.d.cache.flushUses();
      } finally {
        await this.cleanup(!ok);
      }
    }
  }

  private async dispatchAll(stages: Stage[], metaArgs: ArgCommand[], escape: string): Promise<BuildResult> {
    const buildArgs = new BuildArgs(this.req.buildArgs);
    const total = metaArgs.length + stages.length + stages.reduce((n, s) => n + s.commands.length, 0);
    let step = 1;
    for (const m of metaArgs) {
      this.print(`Step ${step++}/${total} : ${m.code}\n`);
      const env = [...buildArgs.allAllowed()].map(([k, v]) => `${k}=${v}`);
      for (const a of m.args) {
        const key = processWord(a.key, env, escape);
        const value = a.value === undefined ? undefined : processWord(a.value, env, escape);
        buildArgs.addArg(key, value);
        buildArgs.addMetaArg(key, value);
      }
    }
    const results: { name: string; imageId: string }[] = [];
    let state: State | undefined;
    for (const stage of stages) {
      if (stage.name && results.some((r) => r.name === stage.name)) throw invalidArgument('BUILD_STAGE_NAME', `${stage.name} stage name already used`);
      this.print(`Step ${step++}/${total} : ${stage.code}\n`);
      const args = buildArgs.clone();
      args.resetAllowed();
      state = await this.initializeStage(stage, args, results, escape);
      this.print(` ---> ${shortId(state.imageId)}\n`);
      for (const cmd of stage.commands) {
        throwIfAborted(this.req.signal);
        this.print(`Step ${step++}/${total} : ${cmd.code}\n`);
        await this.dispatch(state, cmd, results, escape);
        trace(`build: step ${step - 1} ${cmd.kind}`);
        this.print(` ---> ${shortId(state.imageId)}\n`);
      }
      if (state.imageId) this.out.aux(state.imageId);
      buildArgs.mergeReferenced(state.buildArgs);
      results.push({ name: stage.name, imageId: state.imageId });
    }
    const unused = buildArgs.unused();
    if (unused.length) {
      const w = `[Warning] One or more build-args [${unused.join(' ')}] were not consumed`;
      this.warnings.push(w);
      this.print(w + '\n');
    }
    if (!state?.imageId) throw invalidArgument('BUILD_NO_IMAGE', 'No image was generated. Is your Dockerfile empty?');
    const id = state.imageId as Digest;
    this.print(`Successfully built ${shortId(id)}\n`);
    const tags: string[] = [];
    for (const t of this.req.tags) {
      this.d.images.tag(id, t);
      tags.push(t.familiarString());
      this.print(`Successfully tagged ${t.familiarString()}\n`);
    }
    return { id, tags, warnings: this.warnings };
  }

  // ------------------------------------------------------------------ stages

  private async getImage(name: string, opts: { pull?: boolean } = {}): Promise<ImageRecord> {
    if (opts.pull && this.d.pull) await this.d.pull(name, { ...(this.req.signal ? { signal: this.req.signal } : {}) });
    try {
      return this.d.resolveImage(name);
    } catch (e) {
      if (!(isEngineErr(e) && e.kind === 'not-found') || !this.d.pull || opts.pull) throw e;
    }
    await this.d.pull(name, { ...(this.req.signal ? { signal: this.req.signal } : {}) });
    return this.d.resolveImage(name);
  }

  private async initializeStage(stage: Stage, buildArgs: BuildArgs, results: { name: string; imageId: string }[], escape: string): Promise<State> {
    const meta = [...buildArgs.allMeta()].map(([k, v]) => `${k}=${v}`);
    let platform = this.req.platform;
    if (stage.platform) {
      const p = processWord(stage.platform, meta, escape);
      const [os, architecture, variant] = p.split('/');
      if (!os || !architecture) throw invalidArgument('BUILD_PLATFORM', `failed to parse platform ${p}: unknown operating system or architecture`, { hint: 'give OS/ARCH[/VARIANT], e.g. linux/amd64' });
      platform = { os, architecture, ...(variant ? { variant } : {}) };
    }
    const name = processWord(stage.baseName, meta, escape);
    if (name === '') throw invalidArgument('BUILD_FROM', `base name (${stage.baseName}) should not be blank`);
    const state: State = {
      runConfig: emptyConfig(),
      imageId: '',
      maintainer: '',
      cmdSet: false,
      stageName: stage.name,
      buildArgs,
      os: platform?.os ?? 'linux',
      architecture: platform?.architecture ?? hostArch(),
      ...(platform?.variant ? { variant: platform.variant } : {}),
      cacheBusted: false,
    };
    const prev = results.find((r) => r.name !== '' && r.name === name.toLowerCase());
    if (name !== 'scratch' || prev) {
      const img = prev ? this.d.resolveImage(prev.imageId) : await this.getImage(name, { pull: !!this.req.pull });
      const cfg = await this.d.images.config(img.id);
      state.imageId = img.id;
      state.runConfig = copyConfig({ ...emptyConfig(), ...(cfg.config ?? {}) });
      state.os = cfg.os;
      state.architecture = cfg.architecture;
      if (cfg.variant) state.variant = cfg.variant;
      else delete state.variant;
    }
    if (!(state.runConfig.Env ?? []).some((e) => e.startsWith('PATH='))) state.runConfig.Env = [...(state.runConfig.Env ?? []), `PATH=${DEFAULT_PATH}`];
    state.runConfig.OpenStdin = false;
    state.runConfig.StdinOnce = false;
    state.runConfig.Image = state.imageId;
    const triggers = state.runConfig.OnBuild ?? [];
    if (triggers.length) {
      state.runConfig.OnBuild = null;
      this.print(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}\n`);
      for (const t of triggers) {
        state.runConfig.Image = state.imageId;
        const parsed = parseDockerfile(t);
        if (parsed.nodes.length !== 1) throw invalidArgument('BUILD_ONBUILD', 'onbuild trigger should be a single expression');
        const c = parseInstruction(parsed.nodes[0]!);
        if ('baseName' in c) throw invalidArgument('BUILD_ONBUILD', 'FROM isn\'t allowed as an ONBUILD trigger');
        await this.dispatch(state, c, results, escape);
      }
    }
    return state;
  }

  // ------------------------------------------------------------------ dispatch

  private async dispatch(state: State, cmd: Command, results: { name: string; imageId: string }[], escape: string): Promise<void> {
    const rc = state.runConfig;
    const envs = [...(rc.Env ?? []), ...state.buildArgs.filterAllowed(rc.Env ?? [])];
    const ex = (w: string) => processWord(w, envs, escape);
    try {
      switch (cmd.kind) {
        case 'env': {
          let msg = 'ENV';
          for (const [k0, v0] of cmd.pairs) {
            const k = ex(k0);
            const v = ex(v0);
            const nv = `${k}=${v}`;
            msg += ' ' + nv;
            const env = rc.Env ?? [];
            const i = env.findIndex((e) => e.split('=')[0] === k);
            if (i >= 0) env[i] = nv;
            else env.push(nv);
            rc.Env = env;
          }
          return await this.commitMeta(state, msg);
        }
        case 'maintainer':
          state.maintainer = cmd.value;
          return await this.commitMeta(state, 'MAINTAINER ' + cmd.value);
        case 'label': {
          rc.Labels ??= {};
          let msg = 'LABEL';
          for (const [k0, v0] of cmd.pairs) {
            const [k, v] = cmd.noExpand ? [k0, v0] : [ex(k0), ex(v0)];
            rc.Labels[k] = v;
            msg += ` ${k}=${v}`;
          }
          return await this.commitMeta(state, msg);
        }
        case 'add':
        case 'copy':
          return await this.dispatchCopy(state, { ...cmd, paths: cmd.paths.map(ex), chown: ex(cmd.chown) }, results);
        case 'onbuild':
          rc.OnBuild = [...(rc.OnBuild ?? []), cmd.expression];
          return await this.commitMeta(state, 'ONBUILD ' + cmd.expression);
        case 'workdir':
          return await this.dispatchWorkdir(state, ex(cmd.path));
        case 'run':
          return await this.dispatchRun(state, cmd);
        case 'cmd': {
          const c = cmd.cmdLine && cmd.prependShell ? [...shellOf(rc), ...cmd.cmdLine] : cmd.cmdLine;
          rc.Cmd = c;
          delete rc.ArgsEscaped;
          await this.commitMeta(state, `CMD ${goQuoteSlice(c)}`);
          if (cmd.cmdLine && cmd.cmdLine.length) state.cmdSet = true;
          return;
        }
        case 'entrypoint': {
          const c = cmd.cmdLine && cmd.prependShell ? [...shellOf(rc), ...cmd.cmdLine] : cmd.cmdLine;
          rc.Entrypoint = c;
          delete rc.ArgsEscaped;
          if (!state.cmdSet) rc.Cmd = null;
          return await this.commitMeta(state, `ENTRYPOINT ${goQuoteSlice(c)}`);
        }
        case 'healthcheck': {
          const old = rc.Healthcheck as { Test?: string[] } | undefined;
          if (old?.Test?.length && old.Test[0] !== 'NONE') this.print(`Note: overriding previous HEALTHCHECK: [${old.Test.join(' ')}]\n`);
          const h = cmd.health;
          rc.Healthcheck = { ...h };
          const msg = `HEALTHCHECK &{${goQuoteSlice(h.Test)} ${goQuote(goDuration(h.Interval ?? 0))} ${goQuote(goDuration(h.Timeout ?? 0))} ${goQuote(goDuration(h.StartPeriod ?? 0))} ${goQuoteRune(h.Retries ?? 0)}}`;
          return await this.commitMeta(state, msg);
        }
        case 'expose': {
          const ports: string[] = [];
          for (const p of cmd.ports) ports.push(...processWords(p, envs, escape));
          const specs = exposedPorts(ports);
          rc.ExposedPorts ??= {};
          for (const p of specs) rc.ExposedPorts[p] = {};
          return await this.commitMeta(state, 'EXPOSE ' + ports.join(' '));
        }
        case 'user':
          rc.User = ex(cmd.user);
          return await this.commitMeta(state, `USER ${rc.User}`);
        case 'volume': {
          const vols = cmd.volumes.map(ex);
          rc.Volumes ??= {};
          for (const v of vols) {
            if (v === '') throw invalidArgument('BUILD_VOLUME', 'VOLUME specified can not be an empty string');
            rc.Volumes[v] = {};
          }
          return await this.commitMeta(state, `VOLUME [${vols.join(' ')}]`);
        }
        case 'stopsignal': {
          const s = ex(cmd.signal);
          checkSignal(s);
          rc.StopSignal = s;
          return await this.commitMeta(state, `STOPSIGNAL ${s}`);
        }
        case 'arg': {
          const parts: string[] = [];
          for (const a of cmd.args) {
            const key = ex(a.key);
            const value = a.value === undefined ? undefined : ex(a.value);
            parts.push(value === undefined ? key : `${key}=${value}`);
            state.buildArgs.addArg(key, value);
          }
          return await this.commitMeta(state, 'ARG ' + parts.join(' '));
        }
        case 'shell':
          rc.Shell = [...cmd.shell];
          return await this.commitMeta(state, `SHELL [${cmd.shell.join(' ')}]`);
      }
    } finally {
      state.runConfig.Image = state.imageId;
    }
  }

  // ------------------------------------------------------------------ images

  private probe(state: State, probe: ContainerConfig): boolean {
    if (this.req.noCache || state.cacheBusted) return false;
    const hit = this.d.cache.lookup(state.imageId, cacheKey(probe));
    if (!hit) {
      state.cacheBusted = true;
      return false;
    }
    this.print(' ---> Using cache\n');
    state.imageId = hit;
    return true;
  }

  private async parentConfig(state: State): Promise<{ config: ImageConfig; image: ImageRecord | undefined }> {
    if (!state.imageId) {
      return { config: { architecture: state.architecture, os: state.os, ...(state.variant ? { variant: state.variant } : {}), rootfs: { type: 'layers', diff_ids: [] }, history: [] }, image: undefined };
    }
    const image = this.d.resolveImage(state.imageId);
    return { config: await this.d.images.config(image.id), image };
  }

  /** NewChildImage: the step's image config. */
  private childConfig(state: State, parent: ImageConfig, probe: ContainerConfig, diffId: Digest | undefined, containerId: string): ImageConfig {
    const created = new Date().toISOString();
    const empty = diffId === undefined || diffId === EMPTY_LAYER_DIFF_ID;
    const h: HistoryEntry = { created, ...(state.maintainer ? { author: state.maintainer } : {}), created_by: (probe.Cmd ?? []).join(' '), ...(empty ? { empty_layer: true } : {}) };
    return {
      architecture: parent.architecture,
      ...(state.maintainer ? { author: state.maintainer } : {}),
      config: copyConfig(state.runConfig),
      container: containerId,
      container_config: copyConfig(probe),
      created,
      docker_version: 'layerbox',
      history: [...(parent.history ?? []), h],
      os: parent.os,
      rootfs: { type: 'layers', diff_ids: [...parent.rootfs.diff_ids, ...(empty ? [] : [diffId!])] },
      ...(parent.variant ? { variant: parent.variant } : {}),
    };
  }

  private async storeImage(state: State, config: ImageConfig, chain: Digest[], probe: ContainerConfig): Promise<void> {
    const bytes = Buffer.from(JSON.stringify(config));
    const id = sha256(bytes);
    await this.d.images.content.put(bytes, id);
    const parent = state.imageId;
    this.d.images.add(id, config, chain, parent ? { parent: parent as Digest } : {});
    this.d.cache.record(parent, cacheKey(probe), id, (probe.Cmd ?? []).join(' '));
    state.imageId = id;
  }

  /** commit(): a config-only step (Docker: a container with no changes → empty_layer). */
  private async commitMeta(state: State, comment: string): Promise<void> {
    const probe = copyConfig({ ...state.runConfig, Cmd: [...shellOf(state.runConfig), '#(nop) ', comment] });
    if (this.probe(state, probe)) return;
    const { config, image } = await this.parentConfig(state);
    await this.storeImage(state, this.childConfig(state, config, probe, undefined, ''), image?.chain ?? [], probe);
  }

  /**
   * A step that changes files without a container: an overlay snapshot of the image is
   * mounted, changed by `fn`, and its upper directory becomes the layer.
   */
  private async fsStep(state: State, probe: ContainerConfig, fn: (rootfs: string) => Promise<void>): Promise<void> {
    const { config, image } = await this.parentConfig(state);
    const top = image?.topLayer ? this.d.images.layers.get(image.topLayer)?.snapshot : undefined;
    const key = `build-${randomBytes(8).toString('hex')}`;
    const tsPath = join(this.d.tmpDir, `${key}.tarsplit`);
    await this.d.snapshots.prepare(key, top, { temporary: true });
    let tarsplit: TarSplitWriter | undefined;
    let adopted = false;
    try {
      const mp = mkdtempSync(join(this.d.tmpDir, `buildmnt-${process.pid}-`));
      try {
        mountAll(this.d.snapshots.mounts(key), mp);
        try {
          await fn(mp);
          trace('build: files changed');
        } finally {
          unmount(mp);
        }
      } finally {
        rmdirSync(mp);
      }
      const upper = this.d.snapshots.fsDir(key);
      tarsplit = new TarSplitWriter(tsPath);
      let tarSize = 0;
      const w = await writeLayer(upper, [], (c) => void (tarSize += c.length), { tarsplit, ...(this.req.signal ? { signal: this.req.signal } : {}) });
      const ts = tarsplit.finish();
      tarsplit = undefined;
      trace('build: layer written');
      const parentChain = image?.chain ?? [];
      let chain = parentChain;
      let release: () => void;
      if (w.diffId === EMPTY_LAYER_DIFF_ID) {
        await this.d.snapshots.remove(key);
        await rm(tsPath, { force: true });
        release = this.d.images.layers.lease(parentChain);
      } else {
        const lease = await this.d.images.layers.adoptPrepared(parentChain, key, { diffId: w.diffId, size: w.contentBytes, tarSize, tarsplit: { path: tsPath, ...ts } });
        chain = lease.chainIds;
        release = lease.release;
      }
      adopted = true;
      try {
        await this.storeImage(state, this.childConfig(state, config, probe, w.diffId, ''), chain, probe);
      } finally {
        release();
      }
    } finally {
      tarsplit?.abort();
      if (!adopted) {
        await rm(tsPath, { force: true });
        if (this.d.snapshots.stat(key)) await this.d.snapshots.remove(key).catch(() => {});
      }
    }
  }

  private async dispatchWorkdir(state: State, path: string): Promise<void> {
    if (path === '') throw invalidArgument('BUILD_WORKDIR', 'cannot normalize nothing');
    const rc = state.runConfig;
    rc.WorkingDir = path.startsWith('/') ? path : posix.join('/', rc.WorkingDir ?? '', path);
    const probe = copyConfig({ ...rc, Cmd: [...shellOf(rc), '#(nop) WORKDIR ' + rc.WorkingDir] });
    if (this.probe(state, probe)) return;
    const wd = rc.WorkingDir;
    await this.fsStep(state, probe, async (rootfs) => {
      await ensureDirInRoot(rootfs, wd);
    });
  }

  // ------------------------------------------------------------------ COPY / ADD

  private async imageSource(ref: string, results: { name: string; imageId: string }[]): Promise<BuildContext> {
    let id: string;
    const byName = results.find((r) => r.name !== '' && r.name === ref.toLowerCase());
    if (byName) id = byName.imageId;
    else if (/^\d+$/.test(ref)) {
      const ix = Number(ref);
      if (ix === results.length) throw invalidArgument('BUILD_COPY_FROM', `invalid from flag value ${ref}: refers to current build stage`);
      if (ix > results.length) throw invalidArgument('BUILD_COPY_FROM', `invalid from flag value ${ref}: index out of bounds`);
      id = results[ix]!.imageId;
    } else {
      try {
        id = (await this.getImage(ref)).id;
      } catch (e) {
        if (isEngineErr(e)) {
          // neither a stage nor a stored image, and pulling it failed too
          throw notFound('BUILD_COPY_FROM', `invalid from flag value ${ref}: No such image: ${ref}`, {
            cause: e,
            hint: `no stage before this one is named ${ref}, no image of that name is stored${e.kind === 'not-found' ? '' : `, and pulling it failed (${e.message})`}`,
          });
        }
        throw e;
      }
    }
    const have = this.mounts.get(id);
    if (have) return have.ctx;
    const path = mkdtempSync(join(this.d.tmpDir, `buildsrc-${process.pid}-`));
    const img = id ? this.d.resolveImage(id) : undefined;
    const top = img?.topLayer ? this.d.images.layers.get(img.topLayer) : undefined;
    if (top) mountAll(this.d.snapshots.mounts(top.snapshot), path);
    const ctx = BuildContext.ofRoot(path);
    this.mounts.set(id, { path, ctx: ctx });
    return ctx;
  }

  private async dispatchCopy(state: State, cmd: Extract<Command, { kind: 'add' | 'copy' }>, results: { name: string; imageId: string }[]): Promise<void> {
    const name = cmd.kind === 'add' ? 'ADD' : 'COPY';
    if (!state.imageId && state.runConfig.Image === undefined) throw failedPrecondition('BUILD_NO_FROM', 'Please provide a source image with `from` prior to commit');
    let chmod: number | undefined;
    if (cmd.chmod) {
      if (!/^[0-7]{1,4}$/.test(cmd.chmod)) throw invalidArgument('BUILD_CHMOD', `invalid chmod parameter ${JSON.stringify(cmd.chmod)}: an octal mode is expected`, { hint: 'e.g. --chmod=0755' });
      chmod = Number.parseInt(cmd.chmod, 8);
    }
    const dest = cmd.paths[cmd.paths.length - 1]!;
    const sources = cmd.paths.slice(0, -1);
    const fromImage = cmd.kind === 'copy' && cmd.from !== '';
    const infos: CopyInfo[] = [];
    const downloads: string[] = [];
    try {
      try {
        const ctx = fromImage ? await this.imageSource(cmd.from, results) : this.req.context;
        for (const s of sources) {
          if (isURL(s)) {
            if (cmd.kind === 'copy') throw invalidArgument('BUILD_COPY_URL', "source can't be a URL for COPY", { hint: 'use ADD to download a file' });
            const dl = await download(s, this.d.tmpDir, { ...(this.req.signal ? { signal: this.req.signal } : {}) });
            downloads.push(dl.dir);
            if (dl.name === '' && dest.endsWith('/')) throw invalidArgument('BUILD_ADD_URL', `cannot determine filename for source ${s}`);
            this.print('\n');
            const c = BuildContext.ofRoot(dl.dir);
            // a download's checksum is the bare hash (remote.Hash), as Docker writes it
            infos.push(...sourceInfos(c, [dl.name || '__unnamed__'], { fromImage: false }).map((i) => ({ ...i, hash: i.hash.replace(/^file:/, ''), noDecompress: true })));
            continue;
          }
          infos.push(...sourceInfos(ctx, [s], { fromImage }));
        }
        if (infos.length > 1 && !dest.endsWith('/')) {
          throw invalidArgument('BUILD_COPY_DEST', `When using ${name} with more than one source file, the destination must be a directory and end with a /`);
        }
      } catch (e) {
        stepError(`${name} failed: `, e);
      }
      const chownComment = cmd.chown ? `--chown=${cmd.chown}` : '';
      const chmodComment = chmod !== undefined ? `--chmod=${cmd.chmod} ` : '';
      const comment = `${name} ${chownComment}${chmodComment}${sourcesHash(infos)} in ${dest} `;
      trace(`build: ${name} sources hashed`);
      const probe = copyConfig({ ...state.runConfig, Cmd: [...shellOf(state.runConfig), '#(nop) ' + comment] });
      if (this.probe(state, probe)) return;
      const destPath = normalizeDest(state.runConfig.WorkingDir ?? '', dest);
      await this.fsStep(state, probe, async (rootfs) => {
        let identity = fromImage && !cmd.chown ? undefined : { uid: 0, gid: 0 };
        if (cmd.chown) identity = await parseChown(rootfs, cmd.chown);
        for (const info of infos) {
          try {
            await performCopy(rootfs, info, destPath, { identity, ...(chmod !== undefined ? { chmod } : {}), decompress: cmd.kind === 'add', ...(this.req.signal ? { signal: this.req.signal } : {}) });
          } catch (e) {
            stepError(`failed to copy files: `, e);
          }
        }
      });
    } finally {
      for (const d of downloads) await rm(d, { recursive: true, force: true });
    }
  }

  // ------------------------------------------------------------------ RUN

  private async dispatchRun(state: State, cmd: Extract<Command, { kind: 'run' }>): Promise<void> {
    if (!state.imageId) throw failedPrecondition('BUILD_RUN_SCRATCH', 'RUN needs a base image with a shell or the program to run; FROM scratch has none', { hint: 'COPY a program in first, or build FROM an image' });
    const rc = state.runConfig;
    const cmdFromArgs = cmd.prependShell ? [...shellOf(rc), ...cmd.cmdLine] : [...cmd.cmdLine];
    const buildArgs = state.buildArgs.filterAllowed(rc.Env ?? []);
    let saveCmd = cmdFromArgs;
    if (buildArgs.length > 0) {
      const tmp = buildArgs.filter((e) => state.buildArgs.isReferencedOrNotBuiltin(e.split('=')[0]!)).sort();
      saveCmd = [`|${tmp.length}`, ...tmp, ...cmdFromArgs];
    }
    const probe = copyConfig({ ...rc, Cmd: saveCmd, ...(saveCmd.length ? { Entrypoint: null } : {}) });
    delete probe.ArgsEscaped;
    if (this.probe(state, probe)) return;
    const cm = await this.d.containers();
    const netMode = this.req.networkMode && this.req.networkMode !== 'default' ? this.req.networkMode : 'bridge';
    const c = await cm.create({
      image: state.imageId,
      cmd: cmdFromArgs,
      entrypoint: [''],
      env: [...(rc.Env ?? []), ...buildArgs],
      ...(rc.WorkingDir ? { workdir: rc.WorkingDir } : {}),
      user: rc.User ?? '',
      hostConfig: { NetworkMode: netMode as 'bridge', ExtraHosts: this.req.extraHosts ?? [] },
    });
    this.containersMade.add(c.id);
    this.print(` ---> Running in ${c.id.slice(0, 12)}\n`);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.on('data', (b: Buffer) => this.print(b.toString()));
    stderr.on('data', (b: Buffer) => this.print(b.toString()));
    let code: number;
    try {
      const started = await cm.start(c.id, { attach: { stdin: null, stdout, stderr } });
      code = await cm.waitAndCleanup(c.id);
      await started.attached?.catch(() => {});
    } catch (e) {
      await this.removeContainers();
      throw e;
    }
    if (code !== 0) {
      await this.removeContainers();
      throw new BuildRunError(`The command '${cmdFromArgs.join(' ')}' returned a non-zero code: ${code}`, code);
    }
    const r = await commitContainer({ images: this.d.images, snapshots: this.d.snapshots, containers: cm, tmpDir: this.d.tmpDir }, c.id, {
      pause: false,
      buildConfig: (parent, diffId, empty) => this.childConfig(state, parent, probe, empty ? undefined : diffId, c.id),
    });
    const parent = state.imageId;
    this.d.cache.record(parent, cacheKey(probe), r.id, saveCmd.join(' '));
    state.imageId = r.id;
    if (this.req.rm !== false || this.req.forceRm) await this.removeContainers();
  }

  private async removeContainers(): Promise<void> {
    if (this.containersMade.size === 0) return;
    const cm = await this.d.containers();
    for (const id of this.containersMade) {
      await cm.remove(id, { force: true, volumes: true }).catch(() => {});
      this.print(`Removing intermediate container ${id.slice(0, 12)}\n`);
    }
    this.containersMade.clear();
  }

  private async cleanup(failed: boolean): Promise<void> {
    // a failed build leaves no intermediate container (as --force-rm); --rm=false keeps them after a success
    if (this.containersMade.size && (failed || this.req.rm !== false || this.req.forceRm)) {
      const cm = await this.d.containers();
      for (const id of this.containersMade) await cm.remove(id, { force: true, volumes: true }).catch(() => {});
      this.containersMade.clear();
    }
    for (const { path } of this.mounts.values()) {
      unmount(path, { detach: true });
      try {
        rmdirSync(path);
      } catch {
        /* busy: swept with the tmp dir */
      }
    }
    this.mounts.clear();
  }
}

function hostArch(): string {
  const m: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return m[process.arch] ?? process.arch;
}

