// spdy-transport publishes no types. The server uses one piece of it: the
// SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00
// §2.6.10.1), a 1.4 KB constant every SPDY/3 peer must share byte for byte;
// its connection cannot serve client-go (see README.md). The tests use its
// client side, an implementation independent of ours.
declare module 'spdy-transport' {
  import type { Duplex } from 'node:stream';
  import type { EventEmitter } from 'node:events';

  export const protocol: {
    spdy: { dictionary: { readonly [version: number]: Buffer } };
  };

  export interface ClientStream extends Duplex {
    readonly id: number;
    on(event: 'response', listener: (status: number, headers: Record<string, string>) => void): this;
    on(event: string | symbol, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
  }

  export interface Connection extends EventEmitter {
    start(version: number): void;
    request(
      opts: { method: string; path: string; host?: string; headers?: Record<string, string> },
      cb?: (err: Error | null, stream: ClientStream) => void,
    ): ClientStream;
    ping(cb: (err: Error | null) => void): void;
    end(cb?: () => void): void;
  }

  export const connection: {
    create(socket: Duplex, opts: { protocol: 'spdy' | 'http2'; isServer: boolean; windowSize?: number }): Connection;
  };
}
