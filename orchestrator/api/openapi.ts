// OpenAPI v3 discovery, as much as kubectl reads: the root lists one
// document per group version; each document lists the PATCH operation of
// every kind with its `fieldValidation` query parameter, which tells
// kubectl (1.27+) that the server validates fields itself (it then sends
// fieldValidation=Strict instead of validating against a schema it would
// have to download). The schemas of the kinds are not served yet.

import { RESOURCES, groupVersion } from './resources';

/** /openapi/v3: where each group version's document is. */
export function openapiV3Root(): Record<string, unknown> {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const r of RESOURCES) {
    const p = r.group ? `apis/${r.group}/${r.version}` : `api/${r.version}`;
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=mycontainer1` };
  }
  return { paths };
}

/** /openapi/v3/api/v1, /openapi/v3/apis/GROUP/VERSION; null if not ours. */
export function openapiV3Doc(gvPath: string): Record<string, unknown> | null {
  const rs = RESOURCES.filter((r) => (r.group ? `apis/${r.group}/${r.version}` : `api/${r.version}`) === gvPath);
  if (rs.length === 0) return null;
  const paths: Record<string, unknown> = {};
  const param = (name: string): Record<string, unknown> => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } });
  for (const r of rs) {
    const base = `/${gvPath}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.resource}`;
    const gvk = { group: r.group, version: r.version, kind: r.kind };
    const op = (action: string): Record<string, unknown> => ({
      operationId: `${action}${r.kind}`,
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': gvk,
      parameters: [param('dryRun'), param('fieldManager'), param('fieldValidation')],
      responses: { '200': { description: 'OK' } },
    });
    paths[base] = { post: op('post'), get: { ...op('list'), parameters: [] } };
    paths[`${base}/{name}`] = { get: { ...op('get'), parameters: [] }, put: op('put'), patch: op('patch'), delete: { ...op('delete'), parameters: [param('dryRun')] } };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes (mycontainer)', version: groupVersion(rs[0] as { group: string; version: string }) }, paths, components: {} };
}

// OpenAPI v2, as kubectl 1.20-1.29 fetch it: only in protobuf (gnostic's
// openapi_v2.Document, application/com.github.proto-openapi.spec.v2@v1.0+protobuf).
// The same facts as v3's: each kind's PATCH operation with its
// x-kubernetes-group-version-kind and the fieldValidation parameter, and
// no definitions (kubectl then skips its client-side schema check and
// merges with its compiled-in types). Field numbers from gnostic's OpenAPIv2.proto.

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited field (string or message). */
function field(no: number, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([varint((no << 3) | 2), varint(b.length), b]);
}

export function openapiV2Protobuf(): Buffer {
  const paths: Buffer[] = [];
  const queryParam = (name: string): Buffer =>
    // ParametersItem.parameter(1) → Parameter.non_body_parameter(2) → NonBodyParameter.query_parameter_sub_schema(3) → {in(2), name(4), type(6)}
    field(8, field(1, field(2, field(3, Buffer.concat([field(2, 'query'), field(4, name), field(6, 'string')])))));
  for (const r of RESOURCES) {
    const gvPath = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
    const path = `${gvPath}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.resource}/{name}`;
    const gvk = field(13, Buffer.concat([field(1, 'x-kubernetes-group-version-kind'), field(2, field(2, `group: "${r.group}"\nkind: ${r.kind}\nversion: ${r.version}\n`))]));
    const operation = Buffer.concat([field(5, `patch${r.kind}`), queryParam('dryRun'), queryParam('fieldManager'), queryParam('fieldValidation'), gvk]);
    // Paths.path(2) → NamedPathItem{name(1), value(2) → PathItem.patch(8)}
    paths.push(field(2, Buffer.concat([field(1, path), field(2, field(8, operation))])));
  }
  return Buffer.concat([field(1, '2.0'), field(2, Buffer.concat([field(1, 'Kubernetes (mycontainer)'), field(2, 'v1.33.0')])), field(8, Buffer.concat(paths))]);
}
