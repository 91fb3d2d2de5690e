// The CRI socket's front door: grpc-go clients (crictl, critest, older
// kubelets) dialling a unix socket send the socket's path as the HTTP/2
// `:authority` ("/run/mycontainer/cri.sock"). Node's HTTP/2 (nghttp2) rejects
// that as malformed and resets every stream (PROTOCOL_ERROR), as hyper/h2
// does; containerd does not mind because grpc-go is on both ends.
// Kubernetes fixed its own clients later (kubernetes#112597: "localhost"),
// but the clients in the field still send paths.
//
// So the public socket is served here: the client's frames are parsed, each
// header block (HEADERS + CONTINUATION) is decoded with the client's HPACK
// state, an :authority that is not a valid authority becomes "localhost",
// and the block is re-encoded as literals that never touch the server's
// dynamic table; every other frame, and everything the server sends, passes
// through untouched. The gRPC server itself listens on a socket in a 0700
// directory that only this process reaches.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

// hpack.js: the HPACK decoder (RFC 7541) of node-spdy's stack; no types published
// eslint-disable-next-line @typescript-eslint/no-var-requires
const hpack = require('hpack.js') as {
  decompressor: { create(o: { table: { size: number } }): HpackDecompressor };
};
interface HpackDecompressor {
  write(b: Buffer): void;
  execute(cb?: (e: Error | null) => void): void;
  read(): { name: string; value: string } | null;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const MAX_FRAME = 16384;

/** RFC 3986 authority characters, as nghttp2 checks them. */
const validAuthority = (v: string): boolean => /^[A-Za-z0-9\-._~!$&'()*+,;=:%@[\]]*$/.test(v);

function hpackInt(value: number, prefixBits: number, first: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function hpackString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return Buffer.concat([hpackInt(b.length, 7, 0), b]);
}

/** Literal header fields without indexing, new names: the server's table stays empty. */
export function encodeLiterals(headers: readonly { name: string; value: string }[]): Buffer {
  return Buffer.concat(headers.flatMap((h) => [Buffer.from([0]), hpackString(h.name), hpackString(h.value)]));
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** Rewrites one client→server byte stream. */
export class AuthorityRewriter {
  private buf: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private readonly decoder = hpack.decompressor.create({ table: { size: 4096 } });
  private pending: { stream: number; flags: number; priority: Buffer | null; block: Buffer[] } | null = null;

  /** Bytes in; the bytes to forward out. Throws on a malformed stream. */
  push(data: Buffer): Buffer {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    const out: Buffer[] = [];
    if (!this.prefaceSeen) {
      if (this.buf.length < PREFACE.length) return Buffer.alloc(0);
      out.push(this.buf.subarray(0, PREFACE.length));
      this.buf = this.buf.subarray(PREFACE.length);
      this.prefaceSeen = true;
    }
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const type = this.buf[3]!;
      const flags = this.buf[4]!;
      const stream = this.buf.readUInt32BE(5) & 0x7fffffff;
      const payload = this.buf.subarray(9, 9 + len);
      const whole = this.buf.subarray(0, 9 + len);
      this.buf = this.buf.subarray(9 + len);
      if (type === HEADERS) {
        let p = payload;
        let pad = 0;
        if (flags & PADDED) {
          pad = p[0]!;
          p = p.subarray(1);
        }
        let priority: Buffer | null = null;
        if (flags & PRIORITY) {
          priority = Buffer.from(p.subarray(0, 5));
          p = p.subarray(5);
        }
        p = p.subarray(0, p.length - pad);
        this.pending = { stream, flags, priority, block: [Buffer.from(p)] };
      } else if (type === CONTINUATION && this.pending) {
        this.pending.block.push(Buffer.from(payload));
      } else {
        out.push(whole);
        continue;
      }
      if (flags & END_HEADERS) out.push(this.rewrite());
    }
    return Buffer.concat(out);
  }

  private rewrite(): Buffer {
    const p = this.pending!;
    this.pending = null;
    this.decoder.write(Buffer.concat(p.block));
    this.decoder.execute();
    const headers: { name: string; value: string }[] = [];
    for (let h = this.decoder.read(); h !== null; h = this.decoder.read()) headers.push({ name: h.name, value: h.value });
    for (const h of headers) if (h.name === ':authority' && !validAuthority(h.value)) h.value = 'localhost';
    const block = encodeLiterals(headers);
    const first = block.subarray(0, MAX_FRAME - (p.priority ? 5 : 0));
    const out = [frame(HEADERS, (p.flags & END_STREAM) | (p.priority ? PRIORITY : 0) | (first.length === block.length ? END_HEADERS : 0), p.stream, p.priority ? Buffer.concat([p.priority, first]) : first)];
    for (let off = first.length; off < block.length; off += MAX_FRAME) {
      const part = block.subarray(off, off + MAX_FRAME);
      out.push(frame(CONTINUATION, off + MAX_FRAME >= block.length ? END_HEADERS : 0, p.stream, part));
    }
    return Buffer.concat(out);
  }
}

/** Serves `publicSocket`, forwarding each connection to `backend` through an AuthorityRewriter. */
export function authorityProxy(publicSocket: string, backend: string): net.Server {
  const server = net.createServer((client) => {
    const upstream = net.connect(backend);
    const rw = new AuthorityRewriter();
    client.on('data', (d: Buffer) => {
      try {
        const out = rw.push(d);
        if (out.length > 0) upstream.write(out);
      } catch {
        client.destroy();
        upstream.destroy();
      }
    });
    upstream.on('data', (d: Buffer) => client.write(d));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return server;
}

/** The gRPC server's own socket, in a directory only root may enter. */
export function backendSocket(runroot: string): string {
  const dir = path.join(runroot, 'cri-grpc');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  return path.join(dir, `backend-${process.pid}.sock`);
}
