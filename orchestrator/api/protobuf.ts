// Kubernetes' protobuf bodies (application/vnd.kubernetes.protobuf), as
// client-go's typed clients send them (kubectl 1.33's `create deployment`,
// `create configmap`...): the magic "k8s\0", then a runtime.Unknown whose
// `raw` is the object in the wire format of k8s.io/api's generated.proto.
// Here: the wire format (varints, length-delimited, fixed32/64), the
// envelope, and a decoder that turns a message into the JSON kubectl
// would have sent, driven by a schema table (protobuf-schema.ts).
//
// Go's protobuf (gogo) writes every non-pointer field, empty or not, so
// zero scalars are dropped where the JSON field is `omitempty`, as
// encoding/json would; pointers are written only when set, so what
// arrives of them is kept. Embedded structs are never omitted by
// encoding/json, so an empty message stays `{}` (kubectl's `"resources":{}`).

/** A malformed body, or a field the schema does not know (`unknownField`); `path` is where in the object (JSON style). */
export class ProtobufError extends Error {
  constructor(message: string, readonly path: string, readonly unknownField = false) {
    super(message);
    this.name = 'ProtobufError';
  }
}

/** The four bytes before every Kubernetes protobuf document. */
export const MAGIC = Buffer.from('k8s\0', 'latin1');

/** Wire types: varint, fixed64, length-delimited, fixed32 (groups, 3 and 4, are not used by Kubernetes). */
export type WireType = 0 | 1 | 2 | 5;

export interface WireField {
  no: number;
  wire: WireType;
  /** The varint or the little-endian fixed value (0 for length-delimited). */
  value: bigint;
  /** The payload of a length-delimited field (empty otherwise). */
  bytes: Buffer;
}

/** One varint at POS: its value and the position after it. */
export function readVarint(buf: Buffer, pos: number, path = ''): [bigint, number] {
  let v = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    const b = buf[pos++];
    if (b === undefined) throw new ProtobufError('truncated varint', path);
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [BigInt.asUintN(64, v), pos];
  }
  throw new ProtobufError('varint longer than 10 bytes', path);
}

/** The fields of one message, in wire order. */
export function readFields(buf: Buffer, path = ''): WireField[] {
  const out: WireField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, next] = readVarint(buf, pos, path);
    pos = next;
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (no === 0 || no > 0x1fffffff) throw new ProtobufError(`invalid field number ${no}`, path);
    if (wire === 0) {
      const [v, after] = readVarint(buf, pos, path);
      out.push({ no, wire, value: v, bytes: Buffer.alloc(0) });
      pos = after;
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      if (pos + size > buf.length) throw new ProtobufError(`truncated fixed${size * 8} in field ${no}`, path);
      const value = wire === 1 ? buf.readBigUInt64LE(pos) : BigInt(buf.readUInt32LE(pos));
      out.push({ no, wire, value, bytes: Buffer.alloc(0) });
      pos += size;
    } else if (wire === 2) {
      const [len, start] = readVarint(buf, pos, path);
      if (len > BigInt(buf.length - start)) throw new ProtobufError(`field ${no} is longer (${len} bytes) than what is left of the message`, path);
      pos = start + Number(len);
      out.push({ no, wire, value: 0n, bytes: buf.subarray(start, pos) });
    } else {
      throw new ProtobufError(`wire type ${wire} of field ${no} is not supported`, path);
    }
  }
  return out;
}

/**
 * Whether a field carries nothing: 0, or an empty string or message, or a
 * message of such fields only (what gogo writes for an empty struct it
 * does not skip). A string that happens to parse as such a message is
 * taken as empty too; Kubernetes' strings never look like that.
 */
export function isZero(f: WireField, depth = 0): boolean {
  if (f.wire !== 2) return f.value === 0n;
  if (f.bytes.length === 0) return true;
  if (depth > 32) return false; // no Kubernetes struct nests empty ones this deep; a body crafted to would exhaust the stack
  try {
    return readFields(f.bytes).every((g) => isZero(g, depth + 1));
  } catch {
    return false;
  }
}

/** A varint as a signed 64-bit integer (int32 and int64 both sign-extend to ten bytes). */
export function toInt(v: bigint, path: string): number {
  const n = BigInt.asIntN(64, v);
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) throw new ProtobufError(`integer ${n} is out of JSON's safe range`, path);
  return Number(n);
}

/** runtime.Unknown: typeMeta{apiVersion=1, kind=2}=1, raw=2, contentEncoding=3, contentType=4. */
export interface Envelope {
  apiVersion: string;
  kind: string;
  raw: Buffer;
  contentEncoding: string;
  contentType: string;
}

export function readEnvelope(body: Buffer): Envelope {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new ProtobufError('the body does not start with the Kubernetes protobuf prefix "k8s\\0"', '');
  }
  const env: Envelope = { apiVersion: '', kind: '', raw: Buffer.alloc(0), contentEncoding: '', contentType: '' };
  for (const f of readFields(body.subarray(MAGIC.length))) {
    if (f.wire !== 2) {
      if (isZero(f)) continue;
      throw new ProtobufError(`field ${f.no} of the runtime.Unknown envelope is not understood by this server`, '', true);
    }
    if (f.no === 1) {
      for (const t of readFields(f.bytes)) {
        if (t.wire === 2 && t.no === 1) env.apiVersion = t.bytes.toString('utf8');
        else if (t.wire === 2 && t.no === 2) env.kind = t.bytes.toString('utf8');
        else if (!isZero(t)) throw new ProtobufError(`field ${t.no} of runtime.TypeMeta is not understood by this server`, '', true);
      }
    } else if (f.no === 2) env.raw = f.bytes;
    else if (f.no === 3) env.contentEncoding = f.bytes.toString('utf8');
    else if (f.no === 4) env.contentType = f.bytes.toString('utf8');
    else if (!isZero(f)) throw new ProtobufError(`field ${f.no} of the runtime.Unknown envelope is not understood by this server`, '', true);
  }
  return env;
}

// ---- schema-driven decoding ----

/**
 * A field's value: string, int (int32/int64), bool, bytes (base64 in JSON),
 * quantity (resource.Quantity: one string), intstr (IntOrString: type,
 * intVal, strVal), time (metav1.Time: seconds; RFC 3339 in JSON), fieldsV1
 * (managedFields' raw JSON), or a message of the table by its short name.
 */
export type ValueType = 'string' | 'int' | 'bool' | 'bytes' | 'quantity' | 'intstr' | 'time' | 'fieldsV1' | { message: string };

export interface FieldSchema {
  /** The JSON name; '' for a struct embedded inline (Volume's VolumeSource): its fields join the parent's. */
  json: string;
  type: ValueType;
  /** one value, a repeated field (JSON array), or a map<string, type> (JSON object). */
  shape: 'one' | 'list' | 'map';
  /** Keep a zero value: the JSON field has no omitempty, or the Go field is a pointer (written only when set). */
  keep: boolean;
}

export interface MessageSchema {
  /** The full name, as in OpenAPI ("io.k8s.api.core.v1.PodSpec"), for messages. */
  name: string;
  /** By field number, in the Go struct's order (the JSON's). */
  fields: ReadonlyMap<number, FieldSchema>;
}

export type Schema = ReadonlyMap<string, MessageSchema>;

type Json = string | number | boolean | Json[] | { [k: string]: Json };

function at(path: string, json: string): string {
  return path ? `${path}.${json}` : json;
}

function expectLen(f: WireField, what: string, path: string): Buffer {
  if (f.wire !== 2) throw new ProtobufError(`${what} was sent with wire type ${f.wire}, not length-delimited`, path);
  return f.bytes;
}

/** Go's zero time.Time (0001-01-01T00:00:00Z) in seconds since the epoch. */
const GO_ZERO_TIME = -62135596800;

/** Seconds since the epoch as metav1.Time writes them in JSON: RFC 3339, UTC, whole seconds. */
function rfc3339(seconds: number, path: string): string {
  const d = new Date(seconds * 1000);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() > 9999) throw new ProtobufError(`time ${seconds} s is out of RFC 3339's range`, path);
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A small message the table handles by hand (Quantity, IntOrString, Time, FieldsV1): its fields, none unknown. */
function smallMessage(buf: Buffer, name: string, known: Record<number, WireType>, path: string): Map<number, WireField> {
  const got = new Map<number, WireField>();
  for (const f of readFields(buf, path)) {
    if (known[f.no] === undefined) {
      if (isZero(f)) continue;
      throw new ProtobufError(`field ${f.no} of ${name} is not understood by this server`, path, true);
    }
    if (f.wire !== known[f.no]) throw new ProtobufError(`field ${f.no} of ${name} has wire type ${f.wire}`, path);
    got.set(f.no, f);
  }
  return got;
}

/** One value of TYPE from F; undefined for a zero Time (JSON null, which we leave out). */
function decodeValue(schema: Schema, type: ValueType, f: WireField, path: string): Json | undefined {
  if (typeof type === 'object') return decodeMessage(schema, type.message, expectLen(f, `message ${type.message}`, path), path);
  switch (type) {
    case 'string':
      return expectLen(f, 'a string', path).toString('utf8');
    case 'bytes':
      return expectLen(f, 'bytes', path).toString('base64');
    case 'int':
    case 'bool':
      if (f.wire !== 0) throw new ProtobufError(`a${type === 'int' ? 'n integer' : ' bool'} was sent with wire type ${f.wire}, not varint`, path);
      return type === 'int' ? toInt(f.value, path) : f.value !== 0n;
    case 'quantity': {
      const q = smallMessage(expectLen(f, 'a quantity', path), 'io.k8s.apimachinery.pkg.api.resource.Quantity', { 1: 2 }, path).get(1);
      return q ? q.bytes.toString('utf8') : '0';
    }
    case 'intstr': {
      const m = smallMessage(expectLen(f, 'an IntOrString', path), 'io.k8s.apimachinery.pkg.util.intstr.IntOrString', { 1: 0, 2: 0, 3: 2 }, path);
      if ((m.get(1)?.value ?? 0n) === 1n) return m.get(3)?.bytes.toString('utf8') ?? '';
      return toInt(m.get(2)?.value ?? 0n, path);
    }
    case 'time': {
      const buf = expectLen(f, 'a time', path);
      if (buf.length === 0) return undefined; // the zero time: gogo writes it empty, JSON says null
      const m = smallMessage(buf, 'io.k8s.apimachinery.pkg.apis.meta.v1.Time', { 1: 0, 2: 0 }, path);
      const seconds = toInt(m.get(1)?.value ?? 0n, path);
      return seconds === GO_ZERO_TIME ? undefined : rfc3339(seconds, path); // nanoseconds: metav1.Time drops them too
    }
    case 'fieldsV1': {
      const raw = smallMessage(expectLen(f, 'fieldsV1', path), 'io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1', { 1: 2 }, path).get(1);
      try {
        return raw ? (JSON.parse(raw.bytes.toString('utf8')) as Json) : {};
      } catch {
        throw new ProtobufError('fieldsV1 is not JSON', path);
      }
    }
  }
}

/** The values of a repeated field: length-delimited ones are one each; ints and bools may also come packed. */
function decodeList(schema: Schema, type: ValueType, f: WireField, path: string): Json[] {
  if ((type === 'int' || type === 'bool') && f.wire === 2) {
    const out: Json[] = [];
    for (let pos = 0; pos < f.bytes.length; ) {
      const [v, next] = readVarint(f.bytes, pos, path);
      out.push(type === 'int' ? toInt(v, path) : v !== 0n);
      pos = next;
    }
    return out;
  }
  const v = decodeValue(schema, type, f, path);
  return v === undefined ? [] : [v];
}

/** A map entry: key = 1 (string), value = 2. */
function decodeEntry(schema: Schema, type: ValueType, f: WireField, path: string): [string, Json] {
  let key = '';
  let value: Json | undefined;
  for (const e of readFields(expectLen(f, 'a map entry', path), path)) {
    if (e.no === 1) key = expectLen(e, 'a map key', path).toString('utf8');
    else if (e.no === 2) value = decodeValue(schema, type, e, `${path}[${key}]`);
    else if (!isZero(e)) throw new ProtobufError(`field ${e.no} of a map entry is not understood by this server`, path, true);
  }
  // An absent value is the zero value of its type.
  if (value === undefined) value = type === 'quantity' ? '0' : type === 'int' ? 0 : type === 'bool' ? false : typeof type === 'object' ? {} : '';
  return [key, value];
}

/** A zero scalar that encoding/json's omitempty leaves out (Quantity, IntOrString and messages are structs: never). */
function omitted(spec: FieldSchema, v: Json): boolean {
  if (spec.shape !== 'one' || spec.keep) return false;
  const scalar = spec.type === 'string' || spec.type === 'int' || spec.type === 'bool' || spec.type === 'bytes';
  return scalar && (v === '' || v === 0 || v === false);
}

/** The message TYPE (a short name of SCHEMA) in BUF, as the JSON object Kubernetes' Go types marshal to. */
export function decodeMessage(schema: Schema, type: string, buf: Buffer, path = ''): { [k: string]: Json } {
  const m = schema.get(type);
  if (!m) throw new ProtobufError(`message ${type} is not in the schema`, path);
  const values = new Map<number, Json>();
  for (const f of readFields(buf, path)) {
    const spec = m.fields.get(f.no);
    if (!spec) {
      if (isZero(f)) continue; // a field newer than our table, left empty: nothing lost
      throw new ProtobufError(`field ${f.no} of ${m.name} is not understood by this server`, path, true);
    }
    const where = spec.json ? at(path, spec.json) : path;
    if (spec.shape === 'list') {
      const list = (values.get(f.no) ?? []) as Json[];
      for (const v of decodeList(schema, spec.type, f, `${where}[${list.length}]`)) list.push(v);
      values.set(f.no, list);
    } else if (spec.shape === 'map') {
      const map = (values.get(f.no) ?? {}) as { [k: string]: Json };
      const [k, v] = decodeEntry(schema, spec.type, f, where);
      // defineProperty: a key "__proto__" is a key like any other, not the object's prototype
      Object.defineProperty(map, k, { value: v, enumerable: true, writable: true, configurable: true });
      values.set(f.no, map);
    } else {
      const v = decodeValue(schema, spec.type, f, where);
      if (v === undefined) values.delete(f.no);
      else values.set(f.no, v);
    }
  }
  const out: { [k: string]: Json } = {};
  for (const [no, spec] of m.fields) {
    const v = values.get(no);
    if (v === undefined) continue;
    if (omitted(spec, v)) continue;
    if (spec.json === '') Object.assign(out, v as { [k: string]: Json });
    else out[spec.json] = v;
  }
  return out;
}
