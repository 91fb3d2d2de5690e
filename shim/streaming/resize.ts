// The resize stream (SPDY) or channel 4 (WebSocket): client-go writes one
// JSON object per size, {"Width":80,"Height":24}, with a json.Encoder
// (newline after each); a message or frame may hold part of one, or several.

import type { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { TerminalSize } from './types';

/** Splits a byte stream into top-level JSON objects. */
export class JsonObjects {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private scanned = 0;

  push(chunk: string): unknown[] {
    this.buf += chunk;
    const out: unknown[] = [];
    for (let i = this.scanned; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') {
        this.inString = true;
      } else if (c === '{') {
        if (this.depth++ === 0) this.start = i;
      } else if (c === '}' && this.depth > 0) {
        if (--this.depth === 0) {
          try {
            out.push(JSON.parse(this.buf.slice(this.start, i + 1)));
          } catch {
            // not JSON after all: skipped, as a decoder error would end kubelet's loop
          }
          this.buf = this.buf.slice(i + 1);
          i = -1;
        }
      }
    }
    this.scanned = this.buf.length;
    if (this.depth === 0) {
      this.buf = '';
      this.scanned = 0;
    }
    return out;
  }
}

/** Field names matched without regard to case, as Go's encoding/json does. */
export function terminalSizeOf(v: unknown): TerminalSize | null {
  if (typeof v !== 'object' || v === null) return null;
  let width: unknown;
  let height: unknown;
  for (const [k, val] of Object.entries(v)) {
    if (k.toLowerCase() === 'width') width = val;
    else if (k.toLowerCase() === 'height') height = val;
  }
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 65535;
  return ok(width) && ok(height) ? { width, height } : null;
}

/** Reads sizes from `source` and emits each as 'resize' on `target`. */
export function pumpResizes(source: Readable, target: EventEmitter): void {
  const objects = new JsonObjects();
  source.setEncoding('utf8');
  source.on('data', (s: string) => {
    for (const o of objects.push(s)) {
      const size = terminalSizeOf(o);
      if (size) target.emit('resize', size);
    }
  });
  source.on('error', () => undefined);
}
