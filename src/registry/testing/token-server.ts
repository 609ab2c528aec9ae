/**
 * TEST TOKEN SERVER — for tests only, never for production.
 *
 * A small Docker-token-auth issuer (https://distribution.github.io/distribution/spec/auth/token/)
 * that the REAL docker-registry trusts through `auth.token.rootcertbundle`: it checks Basic
 * credentials against a fixed user list and issues ES256 JWTs (with the signing
 * certificate in the `x5c` header) granting the requested scopes. It also speaks the
 * OAuth2 POST flow (grant_type=password / refresh_token) that Docker's `identitytoken` uses.
 *
 * Test knobs: `expiresInSeconds` (short lifetimes for refresh tests) and `expireNext(n)`,
 * which makes the next n tokens already expired while the response claims a normal
 * lifetime (the registry then answers 401, as it would for any stale token).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface TestUser {
  user: string;
  password: string;
}

export interface TokenServerOptions {
  users: TestUser[];
  service: string;
  issuer: string;
  /** PEM of the EC P-256 signing key and its self-signed certificate */
  keyPem: string;
  certPem: string;
  expiresInSeconds?: number;
  /** grant `pull` to anonymous requests (default: anonymous requests get no access) */
  anonymousPull?: boolean;
}

export interface TokenRequestRecord {
  method: string;
  /** authenticated user, or undefined for anonymous */
  user: string | undefined;
  scopes: string[];
  grantType?: string | undefined;
  status: number;
  /** whether an Authorization header arrived */
  hadAuthorization: boolean;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export class TestTokenServer {
  private server!: Server;
  private key: KeyObject;
  private certDerB64: string;
  private expiredToIssue = 0;
  private readonly refreshTokens = new Map<string, string>();
  readonly requests: TokenRequestRecord[] = [];
  url = '';
  expiresInSeconds: number;

  private constructor(private readonly o: TokenServerOptions) {
    this.key = createPrivateKey(o.keyPem);
    this.certDerB64 = new X509Certificate(o.certPem).raw.toString('base64');
    this.expiresInSeconds = o.expiresInSeconds ?? 300;
  }

  static async start(o: TokenServerOptions): Promise<TestTokenServer> {
    const s = new TestTokenServer(o);
    s.server = createServer((req, res) => {
      s.handle(req, res).catch((e: unknown) => {
        res.statusCode = 500;
        res.end(String(e));
      });
    });
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    s.url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}/token`;
    return s;
  }

  /** The next `n` tokens are issued already expired (beyond any leeway) though the response claims the usual lifetime. */
  expireNext(n: number): void {
    this.expiredToIssue = n;
  }

  private checkBasic(h: string | undefined): { user?: string; bad: boolean } {
    if (!h) return { bad: false };
    const m = /^Basic\s+(\S+)$/i.exec(h);
    if (!m) return { bad: true };
    const dec = Buffer.from(m[1]!, 'base64').toString('utf8');
    const i = dec.indexOf(':');
    const user = dec.slice(0, i);
    const pw = dec.slice(i + 1);
    const ok = this.o.users.some((u) => u.user === user && u.password === pw);
    return ok ? { user, bad: false } : { bad: true };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/token') {
      res.statusCode = 404;
      res.end();
      return;
    }
    let scopes = url.searchParams.getAll('scope');
    let user: string | undefined;
    let grantType: string | undefined;
    let refreshOut: string | undefined;
    const record = (status: number) =>
      this.requests.push({ method: req.method ?? '', user, scopes, grantType, status, hadAuthorization: req.headers.authorization !== undefined });
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      grantType = form.get('grant_type') ?? undefined;
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      if (grantType === 'password') {
        const u = this.o.users.find((x) => x.user === form.get('username') && x.password === form.get('password'));
        if (!u) return this.deny(res, record);
        user = u.user;
        if (form.get('access_type') === 'offline') {
          refreshOut = randomBytes(16).toString('hex');
          this.refreshTokens.set(refreshOut, user);
        }
      } else if (grantType === 'refresh_token') {
        user = this.refreshTokens.get(form.get('refresh_token') ?? '');
        if (!user) return this.deny(res, record);
      } else {
        res.statusCode = 400;
        record(400);
        res.end('{"errors":[{"code":"UNSUPPORTED","message":"unsupported grant_type"}]}');
        return;
      }
    } else {
      const b = this.checkBasic(req.headers.authorization);
      if (b.bad) return this.deny(res, record);
      user = b.user;
    }
    const access = scopes.flatMap((s) => {
      const first = s.indexOf(':');
      const last = s.lastIndexOf(':');
      if (first < 0 || last <= first) return [];
      const type = s.slice(0, first);
      const name = s.slice(first + 1, last);
      const wanted = s.slice(last + 1).split(',');
      const granted = user ? wanted.filter((a) => a === 'pull' || a === 'push' || a === 'delete' || a === '*') : this.o.anonymousPull ? wanted.filter((a) => a === 'pull') : [];
      return granted.length ? [{ type, name, actions: granted }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const expired = this.expiredToIssue > 0;
    if (expired) this.expiredToIssue--;
    const exp = expired ? now - 3600 : now + this.expiresInSeconds;
    const header = { typ: 'JWT', alg: 'ES256', x5c: [this.certDerB64] };
    const claims = {
      iss: this.o.issuer,
      sub: user ?? '',
      aud: this.o.service,
      exp,
      nbf: expired ? now - 7200 : now - 10,
      iat: expired ? now - 7200 : now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign('sha256', Buffer.from(signingInput), { key: this.key, dsaEncoding: 'ieee-p1363' });
    const token = `${signingInput}.${b64url(sig)}`;
    const body: Record<string, unknown> = {
      expires_in: this.expiresInSeconds,
      issued_at: new Date().toISOString(),
    };
    if (req.method === 'POST') {
      body.access_token = token;
      body.scope = scopes.join(' ');
      if (refreshOut) body.refresh_token = refreshOut;
    } else body.token = token;
    res.setHeader('content-type', 'application/json');
    record(200);
    res.end(JSON.stringify(body));
  }

  private deny(res: ServerResponse, record: (s: number) => void): void {
    res.statusCode = 401;
    res.setHeader('content-type', 'application/json');
    record(401);
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}');
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
