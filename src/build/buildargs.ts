/**
 * Build arguments as Docker's classic builder keeps them (builder/dockerfile/buildargs.go):
 * the `--build-arg` values, the ARGs declared before the first FROM (meta args, for FROM
 * and for a stage's bare `ARG X`), the ARGs declared in the current stage (allowed), and
 * which ones any stage referenced (for the unused build-arg warning). The proxy variables
 * are predefined: allowed without an ARG, and kept out of the RUN cache key unless declared.
 */
export const BUILTIN_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy']);

export class BuildArgs {
  allowed = new Map<string, string | undefined>();
  meta = new Map<string, string | undefined>();
  referenced = new Set<string>();

  /** `--build-arg K=V` (a value) or `--build-arg K` with no value in the environment (undefined). */
  constructor(readonly fromOptions: ReadonlyMap<string, string | undefined>) {}

  clone(): BuildArgs {
    const b = new BuildArgs(this.fromOptions);
    b.allowed = new Map(this.allowed);
    b.meta = new Map(this.meta);
    b.referenced = new Set(this.referenced);
    return b;
  }

  mergeReferenced(o: BuildArgs): void {
    for (const k of o.referenced) this.referenced.add(k);
  }

  resetAllowed(): void {
    this.allowed = new Map();
  }

  addMetaArg(key: string, value: string | undefined): void {
    this.meta.set(key, value);
  }

  addArg(key: string, value: string | undefined): void {
    this.allowed.set(key, value);
    this.referenced.add(key);
  }

  isReferencedOrNotBuiltin(key: string): boolean {
    return this.allowed.has(key) || !BUILTIN_ARGS.has(key);
  }

  private get(key: string, mapping: Map<string, string | undefined>): string | undefined {
    const opt = this.fromOptions.get(key);
    if (opt !== undefined) return opt;
    const def = mapping.get(key);
    if (def === undefined) return this.meta.get(key);
    return def;
  }

  private all(mapping: Map<string, string | undefined>): Map<string, string> {
    const m = new Map<string, string>();
    for (const key of new Set([...mapping.keys(), ...BUILTIN_ARGS])) {
      const v = this.get(key, mapping);
      if (v !== undefined) m.set(key, v);
    }
    return m;
  }

  allAllowed(): Map<string, string> {
    return this.all(this.allowed);
  }

  allMeta(): Map<string, string> {
    return this.all(this.meta);
  }

  /** FilterAllowed: KEY=VALUE of the args in effect that the config's Env does not set. */
  filterAllowed(env: readonly string[]): string[] {
    const keys = new Set(env.map((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e)));
    const out: string[] = [];
    for (const [k, v] of this.allAllowed()) if (!keys.has(k)) out.push(`${k}=${v}`);
    return out;
  }

  /** "[Warning] One or more build-args [X Y] were not consumed" */
  unused(): string[] {
    return [...this.fromOptions.keys()].filter((k) => !BUILTIN_ARGS.has(k) && !this.referenced.has(k)).sort();
  }
}
