// Validation of config.json against the published runtime-spec schema
// (bundled from ../shared/spec by scripts/gen-spec.js). Errors name the field
// as a JSON path, e.g. `process.user.uid: must be integer`.

import Ajv from 'ajv-draft-04';
import type { ErrorObject, ValidateFunction } from 'ajv';
import schemas from './generated/schemas.json';

const bundle = schemas as Record<string, object>;
const cache = new Map<string, ValidateFunction>();

function validator(file: string): ValidateFunction {
  let v = cache.get(file);
  if (v) return v;
  const ajv = new Ajv({ allErrors: true, strict: false });
  const dir = file.slice(0, file.indexOf('/') + 1);
  for (const [name, schema] of Object.entries(bundle)) {
    if (!name.startsWith(dir) || name === file) continue;
    ajv.addSchema(schema, name.slice(dir.length));
  }
  const main = bundle[file];
  if (!main) throw new Error(`no bundled schema ${file}`);
  v = ajv.compile(main);
  cache.set(file, v);
  return v;
}

function fieldOf(e: ErrorObject): string {
  // instancePath is a JSON pointer: /process/user/uid -> process.user.uid
  const parts = e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (e.keyword === 'required') parts.push(String((e.params as { missingProperty: string }).missingProperty));
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out || '(root)';
}

function describe(e: ErrorObject): string {
  if (e.keyword === 'required') return 'is required';
  if (e.keyword === 'enum') return `${e.message ?? 'invalid'}: ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
  return e.message ?? 'is invalid';
}

/** Returns one line per schema violation, each naming the field; empty when valid. */
export function schemaErrors(file: 'oci-runtime/config-schema.json' | 'oci-runtime/state-schema.json' | 'oci-runtime/features-schema.json' | string, doc: unknown): string[] {
  const v = validator(file);
  if (v(doc)) return [];
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of v.errors ?? []) {
    // oneOf/anyOf failures repeat the inner errors; the inner ones are clearer.
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if') continue;
    const line = `${fieldOf(e)}: ${describe(e)}`;
    if (!seen.has(line)) {
      seen.add(line);
      out.push(line);
    }
  }
  return out;
}
