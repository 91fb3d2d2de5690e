// SPDY/3.1, the server's side, as client-go's SPDY clients speak it (crictl,
// kubectl, the API server talking to kubelet): github.com/moby/spdystream
// over an HTTP connection upgraded with `Upgrade: SPDY/3.1`.
//
//   client (odd stream ids)                  server (this file)
//   SYN_STREAM id=1 {streamtype: error}  ─▶  onStream(): accept ─▶ SYN_REPLY id=1
//   SYN_STREAM id=3 {streamtype: stdout} ─▶                     ─▶ SYN_REPLY id=3
//   DATA id=5 "input" [FIN]              ─▶  stream 5 readable (FIN: end)
//                                        ◀─  DATA id=3 "output"  (stream.write)
//                                        ◀─  DATA id=3 [FIN]     (stream.end)
//   PING id=1                            ─▶                     ─▶ PING id=1
//   RST_STREAM id=n                      ◀▶  stream destroyed, both ways
//                                        ◀─  GOAWAY (close)
//
// Frames: an 8-byte header. Control frames: 1 bit set, version 15 bits (3),
// type 16 bits, flags 8, length 24. Data frames: 1 bit clear, stream id 31
// bits, flags 8, length 24. Header blocks (SYN_STREAM, SYN_REPLY, HEADERS)
// are one zlib stream per direction for the connection's life, primed with
// the SPDY/3 dictionary and sync-flushed after each block.
//
// Flow control: spdystream, the Go peer, implements none: it ignores
// WINDOW_UPDATE and SETTINGS and never sends WINDOW_UPDATE. So, as kubelet
// (spdystream on both ends), we never wait for a send window. We do send
// WINDOW_UPDATEs for what we receive, so that a peer that honours windows
// (SPDY/3.1 proper, e.g. spdy-transport) is not stalled at 64 KiB.
// Backpressure on input: a stream whose reader is full pauses the socket.

import * as zlib from 'node:zlib';
import * as diagnostics from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { protocol as spdyProtocol } from 'spdy-transport';

const VERSION = 3;
const DICTIONARY = spdyProtocol.spdy.dictionary[3]!;

export const FrameType = {
  SYN_STREAM: 1, SYN_REPLY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, HEADERS: 8, WINDOW_UPDATE: 9,
} as const;
export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes. */
export const RstStatus = {
  PROTOCOL_ERROR: 1, INVALID_STREAM: 2, REFUSED_STREAM: 3, UNSUPPORTED_VERSION: 4, CANCEL: 5, INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7, STREAM_IN_USE: 8, STREAM_ALREADY_CLOSED: 9,
} as const;
/** GOAWAY status codes. */
export const GoawayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** Largest DATA payload we send in one frame (the wire allows 16 MiB). */
const MAX_DATA = 32 * 1024;
/** Received bytes acknowledged with WINDOW_UPDATE once this many accumulate (the initial window is 64 KiB). */
const WINDOW_ACK = 32 * 1024;
/** Diagnostics: a message ({ id }) for each client PING answered. */
export const pingChannel = diagnostics.channel('mycontainer:streaming:spdy-ping');

/** How long a closing connection waits for the client to hang up before dropping it. */
const CLOSE_GRACE_MS = 5000;

export type SpdyHeaders = ReadonlyMap<string, readonly string[]>;

export interface RawFrame {
  control: boolean;
  /** Control frames: version and type. */
  version: number;
  type: number;
  /** Data frames: the stream. */
  streamId: number;
  flags: number;
  payload: Buffer;
}

/** Splits a byte stream into frames; bytes are joined only once a whole frame is there. */
export class FrameReader {
  private readonly chunks: Buffer[] = [];
  private length = 0;

  push(chunk: Buffer): RawFrame[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const out: RawFrame[] = [];
    while (this.length >= 8) {
      const head = this.peek(8);
      const size = 8 + head.readUIntBE(5, 3);
      if (this.length < size) break;
      const frame = this.take(size);
      const w0 = frame.readUInt32BE(0);
      const control = (w0 & 0x80000000) !== 0;
      out.push({
        control,
        version: control ? (w0 >>> 16) & 0x7fff : 0,
        type: control ? w0 & 0xffff : 0,
        streamId: control ? 0 : w0 & 0x7fffffff,
        flags: frame[4]!,
        payload: frame.subarray(8),
      });
    }
    return out;
  }

  /** The first chunk, made at least n bytes long (n <= length). */
  private peek(n: number): Buffer {
    while (this.chunks[0]!.length < n) {
      const [a, b] = this.chunks.splice(0, 2);
      this.chunks.unshift(Buffer.concat([a!, b!]));
    }
    return this.chunks[0]!;
  }

  private take(n: number): Buffer {
    let out: Buffer;
    if (this.chunks[0]!.length >= n) {
      out = this.chunks[0]!.subarray(0, n);
    } else {
      let k = 0;
      for (let got = 0; got < n; k++) got += this.chunks[k]!.length;
      const all = Buffer.concat(this.chunks.splice(0, k));
      this.chunks.unshift(all);
      out = all.subarray(0, n);
    }
    const rest = this.chunks[0]!.subarray(n);
    if (rest.length > 0) this.chunks[0] = rest;
    else this.chunks.shift();
    this.length -= n;
    return out;
  }
}

export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8000 | VERSION, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt8(flags, 4);
  h.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([h, payload]);
}

export function dataFrame(streamId: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(streamId & 0x7fffffff, 0);
  h.writeUInt8(flags, 4);
  h.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([h, payload]);
}

const u32 = (...values: number[]): Buffer => {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, 4 * i));
  return b;
};

/** A SPDY/3 name/value block, uncompressed: count, then length-prefixed names and NUL-joined values. */
export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const parts: Buffer[] = [u32(headers.size)];
  for (const [name, values] of headers) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(values.join('\0'), 'utf8');
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let off = 0;
  const need = (n: number): void => {
    if (off + n > block.length) throw new Error('header block is truncated');
  };
  need(4);
  const count = block.readUInt32BE(off);
  off += 4;
  for (let i = 0; i < count; i++) {
    need(4);
    const nl = block.readUInt32BE(off);
    off += 4;
    need(nl);
    const name = block.toString('utf8', off, off + nl).toLowerCase();
    off += nl;
    need(4);
    const vl = block.readUInt32BE(off);
    off += 4;
    need(vl);
    const values = block.toString('utf8', off, off + vl).split('\0');
    off += vl;
    out.set(name, [...(out.get(name) ?? []), ...values]);
  }
  return out;
}

/**
 * One direction's zlib context, used block after block in order. Node's zlib
 * is asynchronous; each block is written with a sync flush, and its output
 * collected until the write's callback (plus a turn, for chunks the
 * stream buffered instead of emitting at once).
 */
export class HeaderZlib {
  private readonly z: zlib.Inflate | zlib.Deflate;
  private tail: Promise<unknown> = Promise.resolve();
  private failed: Error | null = null;

  constructor(mode: 'inflate' | 'deflate') {
    const opts = { dictionary: DICTIONARY, flush: zlib.constants.Z_SYNC_FLUSH };
    this.z = mode === 'inflate' ? zlib.createInflate(opts) : zlib.createDeflate({ ...opts, level: zlib.constants.Z_DEFAULT_COMPRESSION });
    this.z.on('error', (e: Error) => {
      this.failed = e;
    });
  }

  run(input: Buffer): Promise<Buffer> {
    const p = this.tail.then(() => new Promise<Buffer>((resolve, reject) => {
      if (this.failed) return reject(this.failed);
      const chunks: Buffer[] = [];
      const onData = (c: Buffer): void => void chunks.push(c);
      const onError = (e: Error): void => {
        this.z.off('data', onData);
        reject(e);
      };
      this.z.on('data', onData);
      this.z.once('error', onError);
      this.z.write(input, () => {
        setImmediate(() => {
          this.z.off('data', onData);
          this.z.off('error', onError);
          if (this.failed) reject(this.failed);
          else resolve(Buffer.concat(chunks));
        });
      });
    }));
    this.tail = p.catch(() => undefined);
    return p;
  }

  close(): void {
    this.z.destroy();
  }
}

export interface SpdyConnectionOptions {
  /**
   * A stream the client opened. Return false (or throw) to refuse it: it is
   * reset, as kubelet resets streams its handler rejects; otherwise it gets
   * a SYN_REPLY. Do not write to it before this returns.
   */
  onStream(stream: SpdyStream): boolean | void;
  /** Close the connection after this long without traffic (0: never). */
  idleTimeoutMs?: number;
}

interface Outgoing {
  data: Buffer | Promise<Buffer>;
  cb?: ((err?: Error | null) => void) | undefined;
}

/** Headers in our SYN_REPLY: kubelet sends none; :status lets HTTP-minded SPDY clients (spdy-transport) accept the stream too. */
const REPLY_HEADERS: SpdyHeaders = new Map([[':status', ['200']], [':version', ['HTTP/1.1']]]);

/**
 * The server's end of one SPDY connection. Emits 'close' once, when the
 * socket is gone; every stream has ended or been destroyed by then.
 */
export class SpdyConnection extends EventEmitter {
  private readonly reader = new FrameReader();
  private readonly inflate = new HeaderZlib('inflate');
  private readonly deflate = new HeaderZlib('deflate');
  private readonly streams = new Map<number, SpdyStream>();
  private readonly inq: RawFrame[] = [];
  private processing = false;
  private readonly outq: Outgoing[] = [];
  private pumping = false;
  private lastClientId = 0;
  /** No new streams: we sent GOAWAY, or the client did. */
  private goingAway = false;
  private closing = false;
  /** The client sent its last byte. */
  private peerEnded = false;
  private goawaySent = false;
  private readonly fullStreams = new Set<SpdyStream>();
  private unackedSession = 0;
  /** The socket is gone (or going): nothing more is read or sent. */
  closed = false;

  constructor(private readonly socket: Duplex, head: Buffer, private readonly opts: SpdyConnectionOptions) {
    super();
    socket.on('data', (d: Buffer) => this.onBytes(d));
    socket.on('error', () => undefined); // 'close' follows
    socket.on('end', () => this.onSocketEnd());
    socket.on('close', () => this.onSocketClose());
    const idle = opts.idleTimeoutMs ?? 0;
    const s = socket as Duplex & { setTimeout?: (ms: number, cb: () => void) => void };
    if (idle > 0 && typeof s.setTimeout === 'function') s.setTimeout(idle, () => this.destroy());
    if (head.length > 0) this.onBytes(head);
  }

  /**
   * Ends the connection as kubelet does when a session is over: GOAWAY after
   * everything queued, then the client hangs up (client-go resets its
   * streams and closes). Hanging up first could lose frames a client has
   * read but not yet handled. A client that stays is ended after a grace
   * period; one that already sent its last byte is ended at once.
   */
  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.goingAway = true;
    this.send(controlFrame(FrameType.GOAWAY, 0, u32(this.lastClientId, GoawayStatus.OK)), () => {
      this.goawaySent = true;
      if (this.peerEnded) this.socket.end();
      const t = setTimeout(() => {
        this.socket.end();
        setTimeout(() => this.destroy(), CLOSE_GRACE_MS).unref();
      }, CLOSE_GRACE_MS);
      t.unref();
      this.once('close', () => clearTimeout(t));
    });
  }

  /** Drops the connection at once. */
  destroy(): void {
    if (!this.socket.destroyed) this.socket.destroy();
    this.onSocketClose();
  }

  // ---- input

  private onBytes(d: Buffer): void {
    if (this.closed) return;
    for (const f of this.reader.push(d)) this.inq.push(f);
    void this.process();
  }

  /** Frames are handled strictly in order; only header blocks make a frame wait (for zlib). */
  private async process(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.inq.length > 0 && !this.closed) {
        const r = this.handle(this.inq.shift()!);
        if (r) await r;
      }
    } catch (e) {
      this.protocolError(e);
    } finally {
      this.processing = false;
    }
  }

  private handle(f: RawFrame): Promise<void> | void {
    if (!f.control) return this.onData(f);
    if (f.version !== VERSION) throw new Error(`unsupported SPDY version ${f.version}`);
    const p = f.payload;
    switch (f.type) {
      case FrameType.SYN_STREAM:
        if (p.length < 10) throw new Error('short SYN_STREAM');
        return this.inflate.run(p.subarray(10)).then((block) => this.onSynStream(p.readUInt32BE(0) & 0x7fffffff, f.flags, decodeHeaderBlock(block)));
      case FrameType.SYN_REPLY:
      case FrameType.HEADERS:
        // we open no streams, so neither means anything here; the block is
        // still inflated to keep the shared zlib context in step
        if (p.length < 4) throw new Error('short header frame');
        return this.inflate.run(p.subarray(4)).then(() => {
          if (f.flags & FLAG_FIN) this.streams.get(p.readUInt32BE(0) & 0x7fffffff)?.onRemoteData(Buffer.alloc(0), true);
        });
      case FrameType.RST_STREAM:
        if (p.length < 8) throw new Error('short RST_STREAM');
        this.streams.get(p.readUInt32BE(0) & 0x7fffffff)?.onRemoteReset();
        return;
      case FrameType.PING:
        if (p.length < 4) throw new Error('short PING');
        // odd ids are the client's pings: echo them; even ones would answer ours, and we send none
        if (p.readUInt32BE(0) % 2 === 1) {
          this.send(controlFrame(FrameType.PING, 0, p.subarray(0, 4)));
          if (pingChannel.hasSubscribers) pingChannel.publish({ id: p.readUInt32BE(0) });
        }
        return;
      case FrameType.GOAWAY:
        this.goingAway = true; // no new streams will come; the open ones carry on
        return;
      case FrameType.SETTINGS:
      case FrameType.WINDOW_UPDATE:
      default:
        return; // no send-side flow control (see the top); unknown control frames are ignored, as SPDY says
    }
  }

  private onSynStream(id: number, flags: number, headers: Map<string, string[]>): void {
    if (id % 2 !== 1 || id <= this.lastClientId) {
      // spdystream answers a stream id out of sequence the same way
      this.send(controlFrame(FrameType.RST_STREAM, 0, u32(id, RstStatus.PROTOCOL_ERROR)));
      return;
    }
    this.lastClientId = id;
    if (this.goingAway) {
      this.send(controlFrame(FrameType.RST_STREAM, 0, u32(id, RstStatus.REFUSED_STREAM)));
      return;
    }
    const stream = new SpdyStream(this, id, headers);
    this.streams.set(id, stream);
    let accepted: boolean;
    try {
      accepted = this.opts.onStream(stream) !== false;
    } catch {
      accepted = false;
    }
    if (!accepted) {
      stream.destroy(); // RST_STREAM CANCEL
      return;
    }
    const block = this.deflate.run(encodeHeaderBlock(REPLY_HEADERS)).then((b) => controlFrame(FrameType.SYN_REPLY, 0, Buffer.concat([u32(id), b])));
    this.send(block);
    stream.markReplied();
    if (flags & FLAG_FIN) stream.onRemoteData(Buffer.alloc(0), true);
  }

  private onData(f: RawFrame): void {
    const stream = this.streams.get(f.streamId);
    // data for a stream that is gone (reset, or never was): dropped, as spdystream does
    if (!stream) return;
    stream.onRemoteData(f.payload, (f.flags & FLAG_FIN) !== 0);
    this.unackedSession += f.payload.length;
    if (this.unackedSession >= WINDOW_ACK) {
      this.send(controlFrame(FrameType.WINDOW_UPDATE, 0, u32(0, this.unackedSession)));
      this.unackedSession = 0;
    }
  }

  /** A frame we cannot make sense of: GOAWAY(PROTOCOL_ERROR) and hang up, as spdystream does. */
  private protocolError(e: unknown): void {
    if (this.closed) return;
    this.emit('protocolError', e);
    this.send(controlFrame(FrameType.GOAWAY, 0, u32(this.lastClientId, GoawayStatus.PROTOCOL_ERROR)), () => this.destroy());
    this.closed = true;
  }

  /** The client sent its last byte (it hung up, or half-closed): readers end, and the connection is closed in order. */
  private onSocketEnd(): void {
    this.peerEnded = true;
    if (this.goawaySent) this.socket.end();
    for (const s of [...this.streams.values()]) s.onRemoteData(Buffer.alloc(0), true);
    this.close();
  }

  private closeEmitted = false;

  private onSocketClose(): void {
    this.closed = true;
    for (const s of [...this.streams.values()]) s.onConnectionClosed();
    this.streams.clear();
    this.fullStreams.clear();
    for (const o of this.outq.splice(0)) o.cb?.(new Error('connection closed'));
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.inflate.close();
    this.deflate.close();
    this.emit('close');
  }

  // ---- for SpdyStream

  /** @internal */
  sendStreamData(stream: SpdyStream, data: Buffer, fin: boolean, cb: (err?: Error | null) => void): void {
    if (this.closed) return cb(new Error('connection closed'));
    if (data.length === 0 && !fin) return cb();
    if (data.length === 0) return this.send(dataFrame(stream.id, fin ? FLAG_FIN : 0, data), cb);
    for (let off = 0; off < data.length; off += MAX_DATA) {
      const last = off + MAX_DATA >= data.length;
      this.send(dataFrame(stream.id, last && fin ? FLAG_FIN : 0, data.subarray(off, off + MAX_DATA)), last ? cb : undefined);
    }
  }

  /** @internal */
  resetStream(stream: SpdyStream, status: number): void {
    if (!this.closed) this.send(controlFrame(FrameType.RST_STREAM, 0, u32(stream.id, status)));
    this.forget(stream);
  }

  /** @internal The client's bytes reached the stream's reader: acknowledge them. */
  acknowledge(stream: SpdyStream, n: number): void {
    if (!this.closed && n > 0) this.send(controlFrame(FrameType.WINDOW_UPDATE, 0, u32(stream.id, n)));
  }

  /** @internal */
  forget(stream: SpdyStream): void {
    this.streams.delete(stream.id);
    this.unblock(stream);
  }

  /** @internal The stream's reader is full: stop reading the socket until it drains. */
  block(stream: SpdyStream): void {
    this.fullStreams.add(stream);
    this.socket.pause();
  }

  /** @internal */
  unblock(stream: SpdyStream): void {
    if (this.fullStreams.delete(stream) && this.fullStreams.size === 0 && !this.closed) this.socket.resume();
  }

  // ---- output, in order; a SYN_REPLY waits for zlib and everything after it waits too

  private send(data: Buffer | Promise<Buffer>, cb?: (err?: Error | null) => void): void {
    this.outq.push({ data, cb });
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.outq.length > 0) {
        const item = this.outq[0]!;
        let buf: Buffer;
        try {
          buf = Buffer.isBuffer(item.data) ? item.data : await item.data;
        } catch (e) {
          this.outq.shift();
          item.cb?.(e as Error);
          this.destroy();
          return;
        }
        this.outq.shift();
        if (this.socket.destroyed || !this.socket.writable) {
          item.cb?.(new Error('connection closed'));
          continue;
        }
        this.socket.write(buf, item.cb ? (err?: Error | null) => item.cb!(err ?? null) : undefined);
      }
    } finally {
      this.pumping = false;
    }
  }
}

/**
 * One SPDY stream as a Duplex: what the client sends is read, what is
 * written goes out as DATA frames; end() sends FIN (a half-close), destroy()
 * sends RST_STREAM unless both sides had finished. Errors (a write after the
 * client reset the stream, or after the connection went) are swallowed here:
 * they are expected when a client goes away, and the session sees 'close'.
 */
export class SpdyStream extends Duplex {
  private replied = false;
  private readonly held: { data: Buffer; fin: boolean; cb: (err?: Error | null) => void }[] = [];
  private remoteFinished = false;
  private localFinished = false;
  private resetByPeer = false;
  private dropInput = false;
  private unacked = 0;

  constructor(private readonly conn: SpdyConnection, readonly id: number, readonly headers: SpdyHeaders) {
    super({ allowHalfOpen: true });
    this.on('error', () => undefined);
  }

  /** The first value of a header (names are lowercase), as Go's Header.Get. */
  header(name: string): string | undefined {
    return this.headers.get(name.toLowerCase())?.[0];
  }

  /** For streams we only write to (error, stdout...): whatever the client sends on them is dropped. */
  discardInput(): void {
    this.dropInput = true;
    this.resume();
  }

  /** @internal */
  markReplied(): void {
    this.replied = true;
    for (const h of this.held.splice(0)) this.conn.sendStreamData(this, h.data, h.fin, h.cb);
  }

  /** @internal */
  onRemoteData(data: Buffer, fin: boolean): void {
    if (this.remoteFinished || this.destroyed) return;
    if (data.length > 0 && !this.dropInput) {
      if (!this.push(data)) this.conn.block(this);
    }
    this.unacked += data.length;
    if (this.unacked >= WINDOW_ACK) {
      this.conn.acknowledge(this, this.unacked);
      this.unacked = 0;
    }
    if (fin) {
      this.remoteFinished = true;
      this.push(null);
      if (this.localFinished) this.conn.forget(this);
    }
  }

  /** @internal */
  onRemoteReset(): void {
    this.resetByPeer = true;
    this.remoteFinished = true;
    this.localFinished = true;
    this.conn.forget(this);
    if (!this.readableEnded) this.push(null);
    this.destroy();
  }

  /** @internal The connection is gone: readers see the end, writers an error on their next write. */
  onConnectionClosed(): void {
    this.resetByPeer = true;
    this.localFinished = true;
    for (const h of this.held.splice(0)) h.cb(new Error('connection closed'));
    if (!this.remoteFinished) {
      this.remoteFinished = true;
      this.push(null);
    }
  }

  override _read(): void {
    this.conn.unblock(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.out(chunk, false, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.out(Buffer.alloc(0), true, (err) => {
      this.localFinished = true;
      if (this.remoteFinished) this.conn.forget(this);
      cb(err);
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.resetByPeer && !(this.localFinished && this.remoteFinished)) this.conn.resetStream(this, RstStatus.CANCEL);
    else this.conn.forget(this);
    this.localFinished = true;
    this.remoteFinished = true;
    for (const h of this.held.splice(0)) h.cb(new Error('stream reset'));
    cb(err);
  }

  private out(data: Buffer, fin: boolean, cb: (err?: Error | null) => void): void {
    if (this.resetByPeer) return cb(new Error('stream reset by the client'));
    if (!this.replied) this.held.push({ data, fin, cb });
    else this.conn.sendStreamData(this, data, fin, cb);
  }
}
