// Channels over one WebSocket (apimachinery's wsstream): each message starts
// with the channel's number, as a byte (binary protocols) or as an ASCII
// digit followed by base64 (base64.channel.k8s.io). There is no per-channel
// end on the wire: the connection's end ends every channel, except that
// v5.channel.k8s.io lets the client close one: the message [255, n].
//
//   client → server   [0] "ls\n"            stdin
//   server → client   [1] "file\n"          stdout
//   client → server   [255, 0]              (v5) stdin is closed
//   server → client   [3] {"status":...}    error channel, then close

import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

export type ChannelType = 'ignore' | 'read' | 'write' | 'readwrite';

/** The CLOSE signal's channel number (remotecommand.StreamClose). */
export const STREAM_CLOSE = 255;

export interface ChannelOptions {
  /** base64.channel.k8s.io framing (text messages). */
  base64: boolean;
  /** Honour [255, n] from the client (v5.channel.k8s.io). */
  closeSignal: boolean;
}

/**
 * One channel as a Duplex. Reading gives what the client sent on it (a
 * channel that is not readable ends at once); writing sends messages (a
 * channel that is not writable swallows them, as wsstream's IgnoreChannel).
 */
export class WsChannel extends Duplex {
  constructor(private readonly conn: WsChannels, readonly num: number, readonly canRead: boolean, readonly canWrite: boolean) {
    super({ allowHalfOpen: true });
    this.on('error', () => undefined);
    if (!canRead) this.push(null);
  }

  override _read(): void {
    this.conn.unblock(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.canWrite) return cb();
    this.conn.send(this.num, chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb(); // no end of a channel on the wire
  }

  /** @internal */
  fromClient(data: Buffer): void {
    if (!this.canRead || this.readableEnded || this.destroyed) return;
    if (!this.push(data)) this.conn.block(this);
  }

  /** @internal */
  endFromClient(): void {
    if (!this.readableEnded && !this.destroyed) this.push(null);
  }
}

export class WsChannels {
  readonly channels: WsChannel[];
  private readonly full = new Set<WsChannel>();
  private closed = false;

  constructor(private readonly ws: WebSocket, types: readonly ChannelType[], private readonly opts: ChannelOptions) {
    this.channels = types.map((t, i) => new WsChannel(this, i, t === 'read' || t === 'readwrite', t === 'write' || t === 'readwrite'));
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => this.onMessage(toBuffer(data), isBinary));
    ws.on('close', () => this.onClose());
    ws.on('error', () => undefined); // 'close' follows
  }

  /** Sends `data` on channel `num`; cb once it is handed to the socket. */
  send(num: number, data: Buffer, cb: (err?: Error | null) => void): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return cb(new Error('connection closed'));
    if (this.opts.base64) {
      this.ws.send(String.fromCharCode(48 + num) + data.toString('base64'), { binary: false }, (e) => cb(e ?? null));
    } else {
      this.ws.send(Buffer.concat([Buffer.from([num]), data]), { binary: true }, (e) => cb(e ?? null));
    }
  }

  /** Closes the WebSocket (normal closure) after what is queued. */
  close(): void {
    if (this.closed) return;
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
    else this.ws.terminate();
  }

  private onMessage(msg: Buffer, isBinary: boolean): void {
    if (msg.length === 0) return;
    let num = msg[0]!;
    let payload = msg.subarray(1);
    if (this.opts.base64) {
      if (isBinary) return;
      num -= 48;
      payload = Buffer.from(payload.toString('latin1'), 'base64');
    }
    if (this.opts.closeSignal && num === STREAM_CLOSE) {
      // one channel number follows the signal
      if (payload.length !== 1) return;
      let target = payload[0]!;
      if (this.opts.base64) target -= 48;
      this.channels[target]?.endFromClient();
      return;
    }
    // a frame for a channel that does not exist is ignored, as wsstream does
    this.channels[num]?.fromClient(payload);
  }

  private onClose(): void {
    this.closed = true;
    // readers see the end; writers get an error on their next write
    for (const c of this.channels) c.endFromClient();
    this.full.clear();
  }

  /** @internal */
  block(c: WsChannel): void {
    this.full.add(c);
    this.ws.pause();
  }

  /** @internal */
  unblock(c: WsChannel): void {
    if (this.full.delete(c) && this.full.size === 0 && !this.closed) this.ws.resume();
  }
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
