/**
 * Image references as Docker 20.10 reads them (github.com/docker/distribution/reference:
 * ParseNormalizedNamed, ParseAnyReference, FamiliarName/FamiliarString, TagNameOnly,
 * FamiliarMatch), written from the grammar:
 *
 *   reference        := name [ ":" tag ] [ "@" digest ]
 *   name             := [ domain "/" ] remote-name
 *   domain           := host [ ":" port ]
 *   host             := domain-name | "[" ipv6 "]"          ; ipv6 = [a-fA-F0-9:]+ (no zone)
 *   domain-name      := domain-component ( "." domain-component )*
 *   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *   port             := [0-9]+
 *   remote-name      := path-component ( "/" path-component )*
 *   path-component   := [a-z0-9]+ ( separator [a-z0-9]+ )*
 *   separator        := [._] | "__" | "-"+
 *   tag              := [\w][\w.-]{0,127}
 *   digest           := algorithm ":" [0-9a-fA-F]{32,}  ; then validated (only sha256 is accepted)
 *
 * The parser is hand-written around small linear regular expressions, so arbitrary
 * input cannot make it backtrack badly.
 */
import { invalidArgument, type EngineError } from '../errors/index.js';
import { isDigest, parseDigest, type Digest } from './digest.js';

/** The registry a familiar name lives on (`busybox` → `docker.io/library/busybox`). */
export const DEFAULT_DOMAIN = 'docker.io';
/** Old name of Docker Hub's index; normalised to {@link DEFAULT_DOMAIN}. */
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
/** The host that actually serves Docker Hub's registry API. */
export const DEFAULT_REGISTRY_HOST = 'registry-1.docker.io';
/** Namespace of Docker Hub's official images. */
export const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
/** Longest repository name (domain + "/" + path, normalised) Docker 20.10 accepts. */
export const NAME_TOTAL_LENGTH_MAX = 255;

const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const TAG_RE = /^\w[\w.-]{0,127}$/;
const DIGEST_GRAMMAR_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
/** go-digest's own (stricter) shape check, used only to choose between its two error messages. */
const GO_DIGEST_SHAPE_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;
const ID_PREFIX_RE = /^(?:sha256:)?([a-f0-9]{1,64})$/;
/** Hex lengths of the algorithms dockerd registers (go-digest: sha256, sha384, sha512). */
const KNOWN_ALGORITHMS: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

const FORMAT_HINT = 'a reference is [registry[:port]/]name[:tag][@sha256:<hex>], e.g. busybox:latest';

function refError(message: string, input: string, hint?: string, cause?: unknown): EngineError {
  return invalidArgument('INVALID_REFERENCE', message, { where: input, hint, cause });
}

/**
 * A parsed, normalised image reference. Produced only by {@link parseReference} and the
 * other functions of this module, so its fields always satisfy the grammar.
 */
export interface ImageRef {
  /** Registry, normalised: `docker.io`, `localhost:5000`, `[::1]:5000`, `ghcr.io`. */
  readonly domain: string;
  /** Repository path inside the registry: `library/busybox`, `a/b`. */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: Digest | undefined;
  /** `domain/path`, e.g. `docker.io/library/busybox`. */
  readonly name: string;
  /** The name as `docker images` shows it: `busybox`, `user/repo`, `localhost:5000/a/b`. */
  readonly familiarName: string;
  /** Normalised full form: `docker.io/library/busybox:latest[@sha256:…]`. */
  toString(): string;
  /** Familiar full form, as in RepoTags/RepoDigests: `busybox:latest`, `busybox@sha256:…`. */
  familiarString(): string;
  /** Same reference with tag `latest` when it has neither tag nor digest (TagNameOnly). */
  withDefaultTag(): ImageRef;
  /** Same name with `tag` (validated; a digest is kept). */
  withTag(tag: string): ImageRef;
  /** Same name (and tag) with `digest`. */
  withDigest(digest: Digest): ImageRef;
  /** The name alone, without tag or digest (TrimNamed). */
  nameOnly(): ImageRef;
  /** When both tag and digest are present, drops the tag (what Docker stores and pulls by). */
  favorDigest(): ImageRef;
  /** True when neither tag nor digest is set. */
  isNameOnly(): boolean;
  equals(other: ImageRef): boolean;
  /** JSON form is the normalised string. */
  toJSON(): string;
}

class Ref implements ImageRef {
  constructor(
    readonly domain: string,
    readonly path: string,
    readonly tag: string | undefined,
    readonly digest: Digest | undefined,
  ) {}

  get name(): string {
    return `${this.domain}/${this.path}`;
  }

  get familiarName(): string {
    if (this.domain !== DEFAULT_DOMAIN) return this.name;
    if (this.path.startsWith(OFFICIAL_REPO_PREFIX)) {
      const rest = this.path.slice(OFFICIAL_REPO_PREFIX.length);
      if (!rest.includes('/')) return rest;
    }
    return this.path;
  }

  private suffix(): string {
    return (this.tag !== undefined ? `:${this.tag}` : '') + (this.digest !== undefined ? `@${this.digest}` : '');
  }

  toString(): string {
    return this.name + this.suffix();
  }

  familiarString(): string {
    return this.familiarName + this.suffix();
  }

  withDefaultTag(): ImageRef {
    return this.isNameOnly() ? new Ref(this.domain, this.path, DEFAULT_TAG, undefined) : this;
  }

  withTag(tag: string): ImageRef {
    if (typeof tag !== 'string' || !TAG_RE.test(tag)) {
      throw invalidArgument('INVALID_REFERENCE', 'invalid tag format', {
        where: String(tag),
        hint: 'a tag is up to 128 letters, digits, _, . and -, not starting with . or -',
      });
    }
    return new Ref(this.domain, this.path, tag, this.digest);
  }

  withDigest(digest: Digest): ImageRef {
    return new Ref(this.domain, this.path, this.tag, parseDigest(digest, this.name));
  }

  nameOnly(): ImageRef {
    return this.isNameOnly() ? this : new Ref(this.domain, this.path, undefined, undefined);
  }

  favorDigest(): ImageRef {
    return this.tag !== undefined && this.digest !== undefined
      ? new Ref(this.domain, this.path, undefined, this.digest)
      : this;
  }

  isNameOnly(): boolean {
    return this.tag === undefined && this.digest === undefined;
  }

  equals(other: ImageRef): boolean {
    return this.toString() === other.toString();
  }

  toJSON(): string {
    return this.toString();
  }
}

export function isImageRef(x: unknown): x is ImageRef {
  return x instanceof Ref;
}

/** True if `tag` is a valid tag (`[\w][\w.-]{0,127}`). */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/**
 * The domain/remainder split Docker 20.10 applies before parsing: the first component is a
 * registry only when it contains `.` or `:` or is exactly `localhost`; otherwise Docker Hub
 * is assumed, and a single-component Hub name goes under `library/`.
 */
function splitDockerDomain(s: string): [domain: string, remainder: string] {
  const slash = s.indexOf('/');
  let domain: string;
  let remainder: string;
  const first = slash < 0 ? '' : s.slice(0, slash);
  if (slash < 0 || (!/[.:]/.test(first) && first !== 'localhost')) {
    domain = DEFAULT_DOMAIN;
    remainder = s;
  } else {
    domain = first;
    remainder = s.slice(slash + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return [domain, remainder];
}

interface GrammarMatch {
  /** everything before `:tag` / `@digest` */
  name: string;
  domain: string | undefined;
  path: string;
  tag: string | undefined;
  digest: string | undefined;
}

const isRemoteName = (p: string): boolean => p.split('/').every((c) => PATH_COMPONENT_RE.test(c));

/**
 * Matches the whole reference grammar (distribution's anchored ReferenceRegexp plus the
 * domain/path capture of anchoredNameRegexp), or returns undefined.
 */
function matchGrammar(s: string): GrammarMatch | undefined {
  let left = s;
  let digest: string | undefined;
  const at = s.indexOf('@');
  if (at >= 0) {
    digest = s.slice(at + 1);
    left = s.slice(0, at);
    if (!DIGEST_GRAMMAR_RE.test(digest)) return undefined;
  }
  // Colons in a name only occur in its domain, which is always followed by a "/": a colon
  // after the last "/" can only introduce the tag.
  let name = left;
  let tag: string | undefined;
  const colon = left.lastIndexOf(':');
  if (colon > left.lastIndexOf('/')) {
    tag = left.slice(colon + 1);
    name = left.slice(0, colon);
    if (!TAG_RE.test(tag)) return undefined;
  }
  if (name === '') return undefined;
  const slash = name.indexOf('/');
  if (slash >= 0) {
    const domain = name.slice(0, slash);
    const path = name.slice(slash + 1);
    if (DOMAIN_RE.test(domain) && isRemoteName(path)) return { name, domain, path, tag, digest };
  }
  if (isRemoteName(name)) return { name, domain: undefined, path: name, tag, digest };
  return undefined;
}

/** go-digest's validation of a digest that passed the reference grammar, with its wording. */
function validateDigest(d: string, input: string): Digest {
  const colon = d.indexOf(':');
  const alg = d.slice(0, colon);
  const hex = d.slice(colon + 1);
  const expected = KNOWN_ALGORITHMS[alg];
  const hint = 'a digest is sha256: followed by 64 lowercase hex characters';
  if (expected === undefined) {
    throw refError(
      GO_DIGEST_SHAPE_RE.test(d) ? 'unsupported digest algorithm' : 'invalid checksum digest format',
      input,
      hint,
    );
  }
  if (hex.length !== expected) throw refError('invalid checksum digest length', input, hint);
  if (!/^[a-f0-9]+$/.test(hex)) throw refError('invalid checksum digest format', input, hint);
  if (alg !== 'sha256') {
    // dockerd accepts sha384/sha512 here; layerbox content-addresses with sha256 only.
    throw refError('unsupported digest algorithm', input, 'only sha256 digests are supported');
  }
  try {
    return parseDigest(d, input);
  } catch (e) {
    throw refError('invalid checksum digest format', input, hint, e);
  }
}

/**
 * Parses a reference the user typed, normalising it like Docker (ParseNormalizedNamed):
 * `busybox` → `docker.io/library/busybox`, `user/repo` → `docker.io/user/repo`,
 * `index.docker.io/x` → `docker.io/library/x`, `localhost:5000/a/b:1.2`,
 * `name@sha256:<64hex>`, `name:tag@sha256:<64hex>` (both kept). No default tag is added:
 * call `.withDefaultTag()` where Docker applies TagNameOnly (pull, run, create, push).
 *
 * Throws EngineError invalid-argument `INVALID_REFERENCE` (where = the input) with Docker's
 * wording: `invalid reference format`, `invalid reference format: repository name must be
 * lowercase`, `repository name must not be more than 255 characters`, `invalid repository
 * name (<s>), cannot specify 64-byte hexadecimal strings`, `invalid checksum digest length`,
 * `invalid checksum digest format`, `unsupported digest algorithm`.
 */
export function parseReference(s: string): ImageRef {
  if (typeof s !== 'string') throw refError('invalid reference format', String(s), FORMAT_HINT);
  if (IDENTIFIER_RE.test(s)) {
    throw refError(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`, s,
      'a 64-hex string is an image ID, not a repository name; refer to the image as sha256:<id>');
  }
  const [domain, remainder] = splitDockerDomain(s);
  const colon = remainder.indexOf(':');
  const remote = colon >= 0 ? remainder.slice(0, colon) : remainder;
  if (remote.toLowerCase() !== remote) {
    throw refError('invalid reference format: repository name must be lowercase', s,
      'use lowercase letters in the repository name (tags may contain uppercase)');
  }
  const full = `${domain}/${remainder}`;
  const m = matchGrammar(full);
  // (distribution's Parse also retries lowercased input to report "repository name must be
  // lowercase"; after the check above, uppercase can only remain in the domain, tag or
  // digest, where the grammar allows it, so that retry can never succeed here.)
  if (m === undefined) throw refError('invalid reference format', s, FORMAT_HINT);
  if (m.name.length > NAME_TOTAL_LENGTH_MAX) {
    throw refError(`repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`, s,
      'the limit counts the registry and the path together, e.g. docker.io/library/<name>');
  }
  if (m.domain === undefined) {
    // Docker would keep such a name with an empty domain (e.g. "foo_bar.com/x": the first
    // component looks like a host but is not a valid one). We refuse it: every ImageRef
    // names a registry.
    throw refError('invalid reference format', s, `"${s.slice(0, s.indexOf('/'))}" is not a valid registry host`);
  }
  const digest = m.digest === undefined ? undefined : validateDigest(m.digest, s);
  return new Ref(m.domain, m.path, m.tag, digest);
}

/** What ParseAnyReference yields: an image ID (digest) or a named reference. */
export type AnyReference = { kind: 'id'; id: Digest } | { kind: 'name'; ref: ImageRef };

/**
 * Like Docker's ParseAnyReference: a bare 64-hex string or a `sha256:<64hex>` digest is an
 * image ID; anything else is parsed by {@link parseReference}. Note that Docker's image
 * lookup (GetImage) then tries, for a `name` result, the reference store first and the
 * image-ID prefix search (with the *original* string) second — see {@link imageIdPrefix}.
 */
export function parseAnyReference(s: string): AnyReference {
  if (typeof s === 'string' && IDENTIFIER_RE.test(s)) return { kind: 'id', id: parseDigest(`sha256:${s}`, s) };
  if (isDigest(s)) return { kind: 'id', id: s };
  return { kind: 'name', ref: parseReference(s) };
}

/**
 * Like {@link parseReference}, for commands that name a *target* (tag, commit, import,
 * build -t, the API's repo/tag parameters). With `tag` (a separate, non-empty tag argument,
 * as in `POST /images/{name}/tag?repo=&tag=`) any tag or digest in `repo` is replaced by it
 * (Docker's WithTag(TrimNamed(ref), tag)). Refuses digests (`refusing to create a tag with
 * a digest reference`) and the name `sha256` (`refusing to create an ambiguous tag using
 * digest algorithm as name`); returns the reference with the default tag applied.
 */
export function parseRepositoryTag(repo: string, tag?: string): ImageRef {
  let ref = parseReference(repo);
  if (tag !== undefined && tag !== '') ref = ref.nameOnly().withTag(tag);
  if (ref.digest !== undefined) {
    throw refError('refusing to create a tag with a digest reference', repo, 'give a tag (name:tag) instead of a digest');
  }
  if (ref.familiarName === 'sha256') {
    throw refError('refusing to create an ambiguous tag using digest algorithm as name', repo,
      'sha256:<hex> refers to image IDs; choose another repository name');
  }
  return ref.withDefaultTag();
}

/** True for a full image ID: `sha256:<64hex>` or bare `<64hex>`. */
export function isFullImageId(s: string): boolean {
  return typeof s === 'string' && (IDENTIFIER_RE.test(s) || isDigest(s));
}

/**
 * The lowercase hex an image-ID prefix search would use, or undefined when `s` cannot match
 * any image ID. Docker (image store → digestset.Lookup) accepts `<hex>` or `sha256:<hex>`
 * with 1 to 64 lowercase hex digits; a prefix matching several IDs is an error (ambiguous),
 * and the search only runs after the string failed to resolve as a name.
 */
export function imageIdPrefix(s: string): string | undefined {
  if (typeof s !== 'string') return undefined;
  return ID_PREFIX_RE.exec(s)?.[1];
}

/** True if `s` is a full image ID or could be an image-ID prefix (see {@link imageIdPrefix}). */
export function isImageIdLike(s: string): boolean {
  return imageIdPrefix(s) !== undefined;
}

/** The host to contact for a normalised domain: Docker Hub is served by registry-1.docker.io. */
export function registryHost(domain: string): string {
  return domain === DEFAULT_DOMAIN || domain === LEGACY_DEFAULT_DOMAIN ? DEFAULT_REGISTRY_HOST : domain;
}

/** Splits `host[:port]` / `[v6][:port]` into the host (without brackets) and the port. */
function splitHostPort(domain: string): { host: string; port: string | undefined } {
  if (domain.startsWith('[')) {
    const end = domain.indexOf(']');
    if (end < 0) return { host: domain, port: undefined };
    const rest = domain.slice(end + 1);
    return { host: domain.slice(1, end), port: rest.startsWith(':') ? rest.slice(1) : undefined };
  }
  const colon = domain.lastIndexOf(':');
  return colon < 0 ? { host: domain, port: undefined } : { host: domain.slice(0, colon), port: domain.slice(colon + 1) };
}

function isIPv4Loopback(host: string): boolean {
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  // Go's net.ParseIP refuses octets with leading zeros, so "127.0.0.01" is not an address.
  return m !== null && m.slice(1).every((o) => Number(o) <= 255 && (o === '0' || !o.startsWith('0')));
}

function isIPv6Loopback(host: string): boolean {
  if (!/^[0-9a-fA-F:]+$/.test(host)) return false;
  const halves = host.split('::');
  if (halves.length > 2) return false;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if ([...head, ...tail].some((g) => g.length < 1 || g.length > 4)) return false;
  const n = head.length + tail.length;
  if (halves.length === 1 ? n !== 8 : n > 7) return false;
  const all = [...head, ...Array<string>(8 - n).fill('0'), ...tail].map((g) => parseInt(g, 16));
  return all.slice(0, 7).every((v) => v === 0) && all[7] === 1;
}

/**
 * True when the registry is on this machine: `localhost`, 127.0.0.0/8 or `[::1]` (any
 * spelling), with or without a port. Docker treats these as insecure registries by default
 * (127.0.0.0/8 and ::1/128 are its default insecure CIDRs; `localhost` resolves into them).
 */
export function isLocalhostRegistry(domain: string): boolean {
  const { host, port } = splitHostPort(domain);
  if (port !== undefined && !/^[0-9]+$/.test(port)) return false;
  if (host.toLowerCase() === 'localhost') return true;
  return isIPv4Loopback(host) || isIPv6Loopback(host);
}

// ---------------------------------------------------------------------------------------
// Go's path.Match, and `docker images --filter reference=PATTERN`
// ---------------------------------------------------------------------------------------

function badPattern(pattern: string): EngineError {
  return invalidArgument('INVALID_PATTERN', 'syntax error in pattern', {
    where: pattern,
    hint: 'patterns use *, ? and [...] classes ([^...] negates); escape special characters with \\',
  });
}

/** Splits off the leading stars and the next star-free chunk (stars inside [...] excluded). */
function scanChunk(pattern: string): { star: boolean; chunk: string; rest: string } {
  let p = pattern;
  let star = false;
  while (p.startsWith('*')) {
    p = p.slice(1);
    star = true;
  }
  let inRange = false;
  let i = 0;
  for (; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      if (i + 1 < p.length) i++;
    } else if (c === '[') {
      inRange = true;
    } else if (c === ']') {
      inRange = false;
    } else if (c === '*' && !inRange) {
      break;
    }
  }
  return { star, chunk: p.slice(0, i), rest: p.slice(i) };
}

const cpLen = (cp: number): number => (cp > 0xffff ? 2 : 1);

/** One character (after an optional backslash) of a [...] class; throws on a bad class. */
function classChar(chunk: string, i: number, pattern: string): [cp: number, next: number] {
  if (i >= chunk.length || chunk[i] === '-' || chunk[i] === ']') throw badPattern(pattern);
  if (chunk[i] === '\\') {
    i++;
    if (i >= chunk.length) throw badPattern(pattern);
  }
  const cp = chunk.codePointAt(i)!;
  const next = i + cpLen(cp);
  if (next >= chunk.length) throw badPattern(pattern);
  return [cp, next];
}

/**
 * Matches `chunk` against the start of `s`; returns the rest of `s`, or undefined. Like Go,
 * keeps reading the chunk after a mismatch so that a malformed chunk always throws.
 */
function matchChunk(chunk: string, s: string, pattern: string): string | undefined {
  let failed = false;
  let c = 0;
  let si = 0;
  while (c < chunk.length) {
    if (!failed && si >= s.length) failed = true;
    const ch = chunk[c];
    if (ch === '[') {
      let r = -1;
      if (!failed) {
        r = s.codePointAt(si)!;
        si += cpLen(r);
      }
      c++;
      let negated = false;
      if (c < chunk.length && chunk[c] === '^') {
        negated = true;
        c++;
      }
      let match = false;
      let nrange = 0;
      for (;;) {
        if (c < chunk.length && chunk[c] === ']' && nrange > 0) {
          c++;
          break;
        }
        let lo: number;
        [lo, c] = classChar(chunk, c, pattern);
        let hi = lo;
        if (chunk[c] === '-') [hi, c] = classChar(chunk, c + 1, pattern);
        if (lo <= r && r <= hi) match = true;
        nrange++;
      }
      if (match === negated) failed = true;
    } else if (ch === '?') {
      if (!failed) {
        if (s[si] === '/') failed = true;
        si += cpLen(s.codePointAt(si)!);
      }
      c++;
    } else {
      if (ch === '\\') {
        c++;
        if (c >= chunk.length) throw badPattern(pattern);
      }
      if (!failed) {
        if (chunk[c] !== s[si]) failed = true;
        si++;
      }
      c++;
    }
  }
  return failed ? undefined : s.slice(si);
}

/**
 * Go's `path.Match(pattern, name)`: `*` matches any run of non-`/` characters, `?` one
 * non-`/` character, `[...]`/`[^...]` a class with ranges, `\` escapes. Throws EngineError
 * invalid-argument `INVALID_PATTERN` ("syntax error in pattern") for a malformed pattern.
 */
export function pathMatch(pattern: string, name: string): boolean {
  let p = pattern;
  let n = name;
  outer: while (p.length > 0) {
    const scanned = scanChunk(p);
    const { star, chunk } = scanned;
    p = scanned.rest;
    if (star && chunk === '') return !n.includes('/');
    const t = matchChunk(chunk, n, pattern);
    if (t !== undefined && (t.length === 0 || p.length > 0)) {
      n = t;
      continue;
    }
    if (star) {
      for (let i = 0; i < n.length && n[i] !== '/'; i++) {
        const t2 = matchChunk(chunk, n.slice(i + 1), pattern);
        if (t2 !== undefined) {
          if (p.length === 0 && t2.length > 0) continue;
          n = t2;
          continue outer;
        }
      }
    }
    // No match; still report a malformed remainder of the pattern, as Go does.
    while (p.length > 0) {
      const rest = scanChunk(p);
      p = rest.rest;
      matchChunk(rest.chunk, '', pattern);
    }
    return false;
  }
  return n.length === 0;
}

/**
 * `docker images --filter reference=PATTERN` for one of an image's references (Docker's
 * FamiliarMatch): path.Match against the familiar string (`busybox:latest`,
 * `user/app@sha256:…`), then against the familiar name (`busybox`). Throws INVALID_PATTERN
 * for a malformed pattern.
 */
export function matchReferenceFilter(pattern: string, ref: ImageRef): boolean {
  return pathMatch(pattern, ref.familiarString()) || pathMatch(pattern, ref.familiarName);
}
