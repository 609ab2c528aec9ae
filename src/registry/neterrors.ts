/** Network failures: which are worth retrying, which are TLS problems, and how to say so. */
import { EngineError, abortError, errnoCode } from '../errors/index.js';
import { describeContext, redactUrl, registryWhere, type RegistryContext } from './errors.js';

const TLS_VERIFY_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_REVOKED',
  'HOSTNAME_MISMATCH',
  'INVALID_CA',
]);

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

function codes(e: unknown): string[] {
  const out: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur; i++) {
    const c = errnoCode(cur);
    if (c) out.push(c);
    cur = (cur as { cause?: unknown }).cause;
  }
  return out;
}

/** The messages of an error and its causes, one line, OpenSSL noise reduced to its reason. */
export function messages(e: unknown): string {
  const out: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur; i++) {
    if (cur instanceof Error && cur.message) {
      let m = cur.message.replace(/\s+/g, ' ').trim();
      const ssl = /SSL routines:[^:]*:([^:]+)/.exec(m);
      if (ssl) m = ssl[1]!.trim();
      if (!out.includes(m)) out.push(m);
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return out.join(': ');
}

/**
 * - `tls-verify`: the server's certificate was not accepted;
 * - `tls-alert`: the server speaks TLS but refused the handshake (e.g. it wants a client certificate);
 * - `tls-protocol`: no TLS on the other side (e.g. a plain-HTTP server) or a broken handshake;
 * - `transient`: resets, refusals, timeouts — worth retrying.
 */
export type NetErrorClass = 'tls-verify' | 'tls-alert' | 'tls-protocol' | 'transient' | 'fatal';

export function classifyNetworkError(e: unknown): NetErrorClass {
  if (e instanceof EngineError) return 'fatal';
  const cs = codes(e);
  if (cs.some((c) => TLS_VERIFY_CODES.has(c))) return 'tls-verify';
  const msg = messages(e);
  if (cs.some((c) => /^ERR_SSL_.*ALERT/.test(c)) || /alert (certificate|handshake|bad certificate|unknown ca|access denied)/i.test(msg)) return 'tls-alert';
  if (
    cs.some((c) => c === 'EPROTO' || c.startsWith('ERR_SSL_')) ||
    /wrong version number|packet length too long|unknown protocol|ssl3_get_record|tlsv1 alert|sslv3 alert/i.test(msg)
  ) {
    return 'tls-protocol';
  }
  if (cs.some((c) => TRANSIENT_CODES.has(c))) return 'transient';
  if (/other side closed|socket hang up|terminated/i.test(msg)) return 'transient';
  return 'fatal';
}

export function isTransientNetworkError(e: unknown): boolean {
  return classifyNetworkError(e) === 'transient';
}

/** A network failure as an EngineError naming the (redacted) URL and the registry context. */
export function networkError(e: unknown, requestUrl: URL, ctx: RegistryContext, signal?: AbortSignal): EngineError {
  if (signal?.aborted) return abortError(signal);
  if (e instanceof EngineError) return e;
  const url = (e as { layerboxUrl?: URL } | undefined)?.layerboxUrl ?? requestUrl;
  const cls = classifyNetworkError(e);
  const code = codes(e)[0];
  const detail = `${messages(e) || String(e)}${code && !messages(e).includes(code) ? ` (${code})` : ''}`;
  if (cls === 'tls-alert') {
    return new EngineError('failed-precondition', 'REGISTRY_TLS', `TLS handshake with ${redactUrl(url)} was refused by the server: ${detail} (${describeContext(ctx)})`, {
      where: registryWhere(ctx),
      hint: `if the registry requires a client certificate, put client.cert and client.key in /etc/docker/certs.d/${url.host}/`,
      cause: e,
    });
  }
  if (cls === 'tls-verify' || cls === 'tls-protocol') {
    return new EngineError(
      'failed-precondition',
      'REGISTRY_TLS',
      `TLS connection to ${redactUrl(url)} failed: ${detail} (${describeContext(ctx)})`,
      {
        where: registryWhere(ctx),
        hint: `if the registry uses a private CA, put it in /etc/docker/certs.d/${url.host}/ca.crt; or list ${url.host} in insecure-registries`,
        cause: e,
      },
    );
  }
  // With TLS 1.3 a server that wants a client certificate just closes the connection after the handshake.
  const closedOnTls = url.protocol === 'https:' && codes(e).includes('UND_ERR_SOCKET');
  return new EngineError('unavailable', 'REGISTRY_UNREACHABLE', `cannot reach ${redactUrl(url)}: ${detail} (${describeContext(ctx)})`, {
    where: registryWhere(ctx),
    hint: closedOnTls
      ? `check that the registry is up; if it requires a client certificate, put client.cert and client.key in /etc/docker/certs.d/${url.host}/`
      : 'check that the registry is up and reachable; the request was retried',
    cause: e,
  });
}
