/**
 * Repository names, tags and digests are checked before any URL is built from them
 * (a name with `..`, `?` or `#` must never reach a request path).
 */
import { invalidArgument } from '../errors/index.js';
import { parseDigest, type Digest } from '../oci/digest.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const REPO_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export function validateRepository(name: unknown, registry?: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 255 || !REPO_RE.test(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.length > 80 ? name.slice(0, 80) + '…' : name) : typeof name;
    throw invalidArgument('INVALID_REPOSITORY', `invalid repository name ${shown}: must be lowercase path components of [a-z0-9] joined by ., _, __ or -`, {
      where: registry,
    });
  }
  return name;
}

export function validateTag(tag: unknown, where?: string): string {
  if (typeof tag !== 'string' || !TAG_RE.test(tag)) {
    const shown = typeof tag === 'string' ? JSON.stringify(tag.slice(0, 140)) : typeof tag;
    throw invalidArgument('INVALID_TAG', `invalid tag ${shown}: at most 128 of [A-Za-z0-9_.-], not starting with . or -`, { where });
  }
  return tag;
}

/** A manifest reference is a digest (anything with `:`) or a tag. */
export function parseManifestReference(ref: unknown, where?: string): { digest: Digest; tag?: undefined } | { tag: string; digest?: undefined } {
  if (typeof ref === 'string' && ref.includes(':')) return { digest: parseDigest(ref, where) };
  return { tag: validateTag(ref, where) };
}
