/**
 * Request bodies are checked against the Engine API's own schema (specs/docker-engine-api,
 * generated from Docker's v1.41 spec by scripts/api-schema.py) before they reach the
 * engine: a wrong field type is a 400 that names the field, as dockerd's JSON decoder does.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { badRequest } from './http.js';

// two levels below the package root, from dist/api and from the bundle alike
const SCHEMA = fileURLToPath(new URL('../../specs/docker-engine-api/v1.41.schema.json', import.meta.url));

type Validate = ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string; params?: Record<string, unknown> }[] | null };

let validators: Map<string, Validate> | undefined;

function load(): Map<string, Validate> {
  if (validators) return validators;
  const require = createRequire(import.meta.url);
  const Ajv = require('ajv') as new (o: object) => { addSchema(s: object): void; compile(s: object): Validate };
  const doc = JSON.parse(readFileSync(SCHEMA, 'utf8')) as { $id: string; definitions: object; bodies: Record<string, object> };
  const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: false });
  ajv.addSchema({ $id: doc.$id, definitions: doc.definitions });
  validators = new Map();
  for (const [name, schema] of Object.entries(doc.bodies)) {
    // refs inside bodies point at the definitions document
    const s = JSON.parse(JSON.stringify(schema).replaceAll('"#/definitions/', `"${doc.$id}#/definitions/`)) as object;
    validators.set(name, ajv.compile(s));
  }
  return validators;
}

/** Throws a 400 naming the first field of `body` that does not fit operation `op`'s schema. */
export function checkBody(op: string, body: unknown): void {
  if (body === undefined) return;
  const v = load().get(op);
  if (!v) throw new Error(`no schema for ${op}`);
  if (v(body)) return;
  const e = v.errors?.[0];
  const field = e?.instancePath ? e.instancePath.replace(/^\//, '').replaceAll('/', '.') : 'the body';
  throw badRequest(`invalid ${op} request: ${field} ${e?.message ?? 'is not valid'}`);
}
