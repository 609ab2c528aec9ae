/** Test support: validate JSON against the OCI image-spec schemas (fixtures/oci-schema, draft-04). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { FIXTURES } from './tree.js';

type Validate = ((x: unknown) => boolean) & { errors?: unknown };
interface AjvLike {
  addSchema(s: object): void;
  addFormat(name: string, re: RegExp): void;
  getSchema(id: string): Validate | undefined;
}

let ajv: AjvLike | undefined;

function stripIds(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(stripIds);
  if (x && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (k !== 'id') out[k] = stripIds(v);
    return out;
  }
  return x;
}

function load(): AjvLike {
  if (ajv) return ajv;
  const require = createRequire(import.meta.url);
  const Ajv = require('ajv-draft-04') as new (o: object) => AjvLike;
  const a = new Ajv({ strict: false, allErrors: true });
  a.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i);
  a.addFormat('uri', /^[a-z][a-z0-9+.-]*:[^\s]*$/i);
  const dir = join(FIXTURES, 'oci-schema');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    // nested draft-04 "id"s would move the base URI; the files reference each other by name
    const s = stripIds(JSON.parse(readFileSync(join(dir, f), 'utf8'))) as Record<string, unknown>;
    s.id = `https://oci.test/${f}`;
    delete s.$schema;
    a.addSchema(s);
  }
  return (ajv = a);
}

export type OciSchema = 'image-manifest-schema' | 'image-index-schema' | 'config-schema' | 'image-layout-schema' | 'content-descriptor';

/** Returns [] when valid, else the validation errors. */
export function validateOci(kind: OciSchema, doc: unknown): unknown[] {
  const v = load().getSchema(`https://oci.test/${kind}.json`);
  if (!v) throw new Error(`no schema ${kind}`);
  return v(doc) ? [] : ((v.errors as unknown[]) ?? ['invalid']);
}
