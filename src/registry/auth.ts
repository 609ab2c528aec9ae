/**
 * Registry authentication as stacked layers: anonymous → Basic → Bearer (token from the
 * realm named in the registry's `WWW-Authenticate` challenge, per scope).
 *
 * Rules that keep credentials where they belong:
 * - the Authenticator only ever holds the credentials of ONE registry host, looked up
 *   for that host; the client attaches them only to requests on that host's origin;
 * - Basic credentials go to a token realm only because that registry's own challenge
 *   named it, and never over plain HTTP to a non-loopback host (unless the user listed
 *   the realm host in insecure-registries);
 * - a token is fetched at most once per 401 (the caller retries once, then fails).
 */
import { EngineError, type ErrorKind } from '../errors/index.js';
import { findChallenge, type Challenge } from './challenge.js';
import { describeContext, parseErrorBody, redactUrl, registryWhere, sanitize, type RegistryContext } from './errors.js';
import { isInsecureHost, isLoopbackHost, readCapped, readErrorBody, type Transport } from './transport.js';

export interface Credentials {
  username?: string | undefined;
  password?: string | undefined;
  /** OAuth2 refresh token (Docker's `identitytoken`) */
  identityToken?: string | undefined;
  /** a bearer token used as is (Docker's `registrytoken`) */
  registryToken?: string | undefined;
}

/** Something that finds the credentials stored for a registry host (e.g. `CredentialStore`). */
export interface CredentialSource {
  get(registry: string, opts?: { signal?: AbortSignal }): Promise<Credentials | undefined>;
}

export interface AuthOptions {
  /** registry host the credentials belong to (as the user named it) */
  registry: string;
  transport: Transport;
  credentials: CredentialSource | Credentials | undefined;
  /** shortest lifetime assumed for a token (Docker: 60 s) */
  minTokenLifetimeSeconds: number;
  tokenBytes: number;
  errorBodyBytes: number;
  clientId: string;
}

interface CachedToken {
  token: string;
  /** ms since epoch after which the token is not used any more */
  refreshAt: number;
}

/** `repository:<name>:pull` / `repository:<name>:pull,push` */
export function repositoryScope(name: string, push = false): string {
  return `repository:${name}:${push ? 'pull,push' : 'pull'}`;
}

const scopeKey = (scopes: readonly string[]) => [...new Set(scopes)].sort().join(' ');

/** `resource:name:actions` → its parts (the name may contain ':', e.g. a registry host with a port). */
function splitScope(s: string): { resource: string; actions: string[] } | undefined {
  const last = s.lastIndexOf(':');
  if (last <= 0) return undefined;
  return { resource: s.slice(0, last), actions: s.slice(last + 1).split(',').filter(Boolean) };
}

/** Whether tokens granted for `have` scopes can serve a request needing `want`. */
export function covers(have: readonly string[], want: readonly string[]): boolean {
  const granted = new Map<string, Set<string>>();
  for (const h of have) {
    const p = splitScope(h);
    if (!p) continue;
    const set = granted.get(p.resource) ?? new Set<string>();
    p.actions.forEach((a) => set.add(a));
    granted.set(p.resource, set);
  }
  return want.every((w) => {
    const p = splitScope(w);
    const g = p && granted.get(p.resource);
    return !!g && (g.has('*') || p.actions.every((a) => g.has(a)));
  });
}

export class Authenticator {
  private challenges: Challenge[] = [];
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  private creds: Promise<Credentials | undefined> | undefined;

  constructor(private readonly o: AuthOptions) {}

  setChallenges(chs: Challenge[]): void {
    this.challenges = chs;
  }

  get scheme(): 'bearer' | 'basic' | 'none' {
    if (findChallenge(this.challenges, 'bearer')) return 'bearer';
    if (findChallenge(this.challenges, 'basic')) return 'basic';
    return 'none';
  }

  credentials(): Promise<Credentials | undefined> {
    if (!this.creds) {
      const c = this.o.credentials;
      if (c === undefined) this.creds = Promise.resolve(undefined);
      else if (typeof (c as CredentialSource).get === 'function') {
        this.creds = (c as CredentialSource).get(this.o.registry);
        this.creds.catch(() => (this.creds = undefined));
      } else this.creds = Promise.resolve(c as Credentials);
    }
    return this.creds;
  }

  async hasCredentials(): Promise<boolean> {
    const c = await this.credentials();
    return !!c && !!(c.username || c.password || c.identityToken || c.registryToken);
  }

  /** The Authorization header for a request on the registry's origin needing `scopes`. */
  async authorization(scopes: readonly string[], ctx: RegistryContext): Promise<string | undefined> {
    const c = await this.credentials();
    if (c?.registryToken) return `Bearer ${c.registryToken}`;
    const bearer = findChallenge(this.challenges, 'bearer');
    if (bearer) {
      const t = await this.token(bearer, scopes, ctx);
      return t ? `Bearer ${t}` : undefined;
    }
    if (findChallenge(this.challenges, 'basic') && c && (c.username || c.password)) return basicHeader(c);
    return undefined;
  }

  /**
   * Called on a 401 from the registry's origin. Takes the new challenge, forgets the token
   * that was refused, and says whether ONE retry can succeed.
   */
  async onUnauthorized(chs: Challenge[], scopes: readonly string[], sent: string | undefined): Promise<boolean> {
    if (chs.length > 0) this.challenges = chs;
    const bearer = findChallenge(this.challenges, 'bearer');
    const c = await this.credentials();
    if (bearer) {
      // A 401 naming a scope we did not ask for (`error="insufficient_scope"`) means the token was
      // fine but too narrow: the caller asks again with that scope added. Otherwise the token that
      // was sent is refused: forget it (a token another request has fetched since stays).
      const wanted = (bearer.params.scope ?? '').split(' ').filter(Boolean);
      const tooNarrow = wanted.length > 0 && !covers(scopes, wanted);
      if (!tooNarrow) for (const [k, t] of [...this.tokens]) if (`Bearer ${t.token}` === sent) this.tokens.delete(k);
      if (c?.registryToken) return false; // a fixed token cannot be refreshed
      return true;
    }
    if (findChallenge(this.challenges, 'basic')) {
      return !!c && !!(c.username || c.password) && !(sent ?? '').startsWith('Basic ');
    }
    return false;
  }

  /** Shared by concurrent callers, so it runs without any one caller's signal (callers race their own). */
  private async token(ch: Challenge, scopes: readonly string[], ctx: RegistryContext): Promise<string | undefined> {
    const key = scopeKey(scopes);
    const now = Date.now();
    const cached = this.tokens.get(key);
    if (cached && now < cached.refreshAt) return cached.token;
    // a valid token for a wider scope serves too (a push token pulls: no second token request mid-push)
    for (const [k, t] of this.tokens) {
      if (now < t.refreshAt && covers(k.split(' '), scopes)) return t.token;
    }
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(ch, [...new Set(scopes)], ctx);
      this.inflight.set(key, p);
      p.then(
        (t) => {
          this.tokens.set(key, t);
          this.inflight.delete(key);
        },
        () => this.inflight.delete(key),
      );
    }
    return (await p).token;
  }

  /** Validates the realm a challenge names: https, or plain HTTP only to loopback/insecure-listed hosts. */
  realmUrl(ch: Challenge, ctx: RegistryContext): URL {
    const raw = ch.params.realm;
    let u: URL;
    try {
      if (!raw) throw new Error('no realm');
      u = new URL(raw);
    } catch {
      throw authError('unavailable', 'REGISTRY_BAD_CHALLENGE', `the registry's Bearer challenge has no valid realm (${JSON.stringify(sanitize(raw ?? '', 100))})`, ctx);
    }
    if (u.protocol === 'https:') return u;
    if (u.protocol === 'http:' && (isLoopbackHost(u.host) || isInsecureHost(u.host, this.o.transport.opts.insecureRegistries))) return u;
    throw new EngineError(
      'failed-precondition',
      'REGISTRY_INSECURE_REALM',
      `refusing to request a token from ${redactUrl(u)}: the token realm must use HTTPS (plain HTTP is only allowed to loopback hosts) (${describeContext(ctx)})`,
      {
        where: registryWhere(ctx),
        hint: `the registry sent credentials to an unencrypted token server; list ${u.host} in insecure-registries only if you trust the network`,
      },
    );
  }

  private async fetchToken(ch: Challenge, scopes: string[], ctx: RegistryContext): Promise<CachedToken> {
    const realm = this.realmUrl(ch, ctx);
    const c = await this.credentials();
    const signal = undefined;
    const service = ch.params.service;
    const allScopes = [...scopes];
    const started = Date.now();
    let res;
    if (c?.identityToken) {
      // OAuth2 refresh-token grant (Docker's identitytoken)
      const form = new URLSearchParams();
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', c.identityToken);
      form.set('client_id', this.o.clientId);
      if (service) form.set('service', service);
      if (allScopes.length) form.set('scope', allScopes.join(' '));
      res = await this.o.transport.sendWithRetry(
        {
          method: 'POST',
          url: realm,
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: Buffer.from(form.toString()),
          signal,
          authOrigin: realm.origin,
        },
        ctx,
      );
    } else {
      const u = new URL(realm);
      if (service) u.searchParams.set('service', service);
      for (const s of allScopes) u.searchParams.append('scope', s);
      if (c?.username) u.searchParams.set('account', c.username);
      const authz = c && (c.username || c.password) ? basicHeader(c) : undefined;
      res = await this.o.transport.sendWithRetry({ method: 'GET', url: u, headers: { accept: 'application/json' }, signal, authorization: authz, authOrigin: realm.origin }, ctx);
    }
    if (res.status !== 200) {
      const body = await readErrorBody(res, this.o.errorBodyBytes);
      const first = parseErrorBody(body)[0];
      const why = first?.message || `HTTP ${res.status}`;
      const had = await this.hasCredentials();
      if (res.status === 401) {
        throw authError(
          'unauthorized',
          'REGISTRY_UNAUTHORIZED',
          `unauthorized: the token server ${realm.host} refused ${had ? 'the credentials stored' : 'anonymous access'} for ${ctx.registry}: ${why}`,
          ctx,
          had ? `check the credentials for ${ctx.registry} ('layerbox login ${ctx.registry}')` : `log in with 'layerbox login ${ctx.registry}'`,
        );
      }
      if (res.status === 403) {
        throw authError('forbidden', 'REGISTRY_DENIED', `denied: the token server ${realm.host} refused access to ${scopes.join(' ')}: ${why}`, ctx);
      }
      throw authError(res.status >= 500 || res.status === 429 ? 'unavailable' : 'unauthorized', 'REGISTRY_TOKEN_FAILED', `token request to ${redactUrl(realm)} failed with HTTP ${res.status}: ${why}`, ctx);
    }
    const bytes = await readCapped(res, this.o.tokenBytes, (n, declared) =>
      authError(
        'resource-exhausted',
        'REGISTRY_TOKEN_TOO_LARGE',
        `token response from ${redactUrl(realm)} is larger than ${this.o.tokenBytes} bytes (${declared ? 'declared ' : 'at least '}${n}); refusing it`,
        ctx,
      ),
    );
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      if (!j || typeof j !== 'object') throw new Error('not an object');
    } catch {
      throw authError('unavailable', 'REGISTRY_TOKEN_INVALID', `token response from ${redactUrl(realm)} is not a JSON object`, ctx);
    }
    const token = typeof j.token === 'string' && j.token ? j.token : typeof j.access_token === 'string' ? j.access_token : '';
    if (!token || /[\s]/.test(token)) {
      throw authError('unavailable', 'REGISTRY_TOKEN_INVALID', `token response from ${redactUrl(realm)} carries no usable token`, ctx);
    }
    let lifetime = typeof j.expires_in === 'number' && Number.isFinite(j.expires_in) && j.expires_in > 0 ? j.expires_in : 60;
    lifetime = Math.max(lifetime, this.o.minTokenLifetimeSeconds);
    // issued_at: trusted only when it lies between our request's start and now (server clocks drift)
    let issued = started;
    if (typeof j.issued_at === 'string') {
      const t = Date.parse(j.issued_at);
      if (!Number.isNaN(t)) issued = Math.min(Math.max(t, started - 1000), Date.now());
    }
    const ms = lifetime * 1000;
    const margin = Math.min(10_000, ms / 10);
    return { token, refreshAt: issued + ms - margin };
  }
}

function basicHeader(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`, 'utf8').toString('base64');
}

function authError(kind: ErrorKind, code: string, msg: string, ctx: RegistryContext, hint?: string): EngineError {
  return new EngineError(kind, code, `${msg} (${describeContext(ctx)})`, { where: registryWhere(ctx), hint });
}

