// Validation of config.json against the published runtime-spec schema
// (bundled from ../shared/spec by scripts/gen-spec.js). Errors name the field
// as a JSON path, e.g. `process.user.uid: must be integer`.

import type { ErrorObject } from 'ajv';
// Compiled ahead of time by scripts/gen-spec.js (ajv standalone): compiling
// the schema with ajv on every CLI call would cost ~0.4 s.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const validators = require('./generated/validators') as Record<string, Validator>;

type Validator = ((doc: unknown) => boolean) & { errors?: ErrorObject[] | null };

const byFile: Record<string, Validator> = {
  'oci-runtime/config-schema.json': validators['config'] as Validator,
  'oci-runtime/state-schema.json': validators['state'] as Validator,
  'oci-runtime/features-schema.json': validators['features'] as Validator,
};

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
export function schemaErrors(file: 'oci-runtime/config-schema.json' | 'oci-runtime/state-schema.json' | 'oci-runtime/features-schema.json', doc: unknown): string[] {
  const v = byFile[file];
  if (!v) throw new Error(`no validator for ${file}`);
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
