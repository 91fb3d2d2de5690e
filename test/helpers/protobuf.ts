// A small protobuf encoder for tests, writing as Go's gogo does: the wire
// bytes of Kubernetes objects built by hand, and the envelope client-go
// sends them in (the magic "k8s\0", then a runtime.Unknown).

import { MAGIC } from '../../orchestrator/api/protobuf';

export function varint(n: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

export const tag = (no: number, wire: number): Buffer => varint((no << 3) | wire);

/** A length-delimited field: a string, bytes or a message's encoding. */
export function len(no: number, body: string | Buffer): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([tag(no, 2), varint(b.length), b]);
}

export const msg = (no: number, ...fields: Buffer[]): Buffer => len(no, Buffer.concat(fields));
export const int = (no: number, n: number): Buffer => Buffer.concat([tag(no, 0), varint(n)]);
/** A map entry: key = 1, the value's field (number 2) as given. */
export const entry = (no: number, key: string, value: Buffer): Buffer => msg(no, len(1, key), value);

/** The body client-go sends: magic, then runtime.Unknown{typeMeta, raw, contentEncoding, contentType}. */
export function envelope(apiVersion: string, kind: string, ...raw: Buffer[]): Buffer {
  return Buffer.concat([MAGIC, msg(1, len(1, apiVersion), len(2, kind)), len(2, Buffer.concat(raw)), len(3, ''), len(4, '')]);
}
