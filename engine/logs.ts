// Container logs in the CRI log format, as kubelet reads them and conmon
// writes them, so that the CRI server can reuse these files:
//
//   2016-10-06T00:17:09.669794202Z stdout F a whole line
//   2016-10-06T00:17:09.669794202Z stderr P the first part of a longer one
//
// P marks a partial line: output that did not end in a newline when it was
// written (or a line longer than MAX_LINE). Readers join P parts up to the
// next F. Rotation by size: container.log → container.log.1 → ... up to
// maxFiles files in all.

import * as fs from 'node:fs';

export type Stream = 'stdout' | 'stderr';

const MAX_LINE = 16 * 1024;

/** RFC 3339 with nanoseconds, as CRI wants; Date has milliseconds, hrtime gives the rest. */
export function rfc3339Nano(now = Date.now()): string {
  const iso = new Date(now).toISOString(); // 2016-10-06T00:17:09.669Z
  const sub = String(process.hrtime.bigint() % 1000000n).padStart(6, '0');
  return `${iso.slice(0, 23)}${sub}Z`;
}

export class CriLogWriter {
  private fd: number;
  private size: number;

  constructor(readonly file: string, readonly maxSize: number, readonly maxFiles: number) {
    this.fd = fs.openSync(file, 'a', 0o640);
    this.size = fs.fstatSync(this.fd).size;
  }

  write(stream: Stream, data: Buffer): void {
    let text = data.toString('utf8');
    const ts = rfc3339Nano();
    const lines: string[] = [];
    while (text.length > 0) {
      const nl = text.indexOf('\n');
      if (nl >= 0 && nl <= MAX_LINE) {
        lines.push(`${ts} ${stream} F ${text.slice(0, nl)}\n`);
        text = text.slice(nl + 1);
      } else {
        const part = text.slice(0, MAX_LINE);
        lines.push(`${ts} ${stream} P ${part}\n`);
        text = text.slice(part.length);
      }
    }
    // One write per file: rotation falls between lines, never inside one.
    let batch = '';
    let batchSize = 0;
    for (const l of lines) {
      const n = Buffer.byteLength(l);
      if (this.maxSize > 0 && this.size + batchSize + n > this.maxSize && this.size + batchSize > 0) {
        this.flush(batch);
        batch = '';
        batchSize = 0;
        this.rotate();
      }
      batch += l;
      batchSize += n;
    }
    this.flush(batch);
  }

  private flush(s: string): void {
    if (s === '') return;
    const b = Buffer.from(s);
    fs.writeSync(this.fd, b);
    this.size += b.length;
  }

  private rotate(): void {
    fs.closeSync(this.fd);
    const keep = Math.max(1, this.maxFiles);
    for (let i = keep - 1; i >= 1; i--) {
      const from = i === 1 ? this.file : `${this.file}.${i - 1}`;
      try {
        fs.renameSync(from, `${this.file}.${i}`);
      } catch {
        // not there yet
      }
    }
    if (keep === 1) fs.rmSync(this.file, { force: true });
    this.fd = fs.openSync(this.file, 'a', 0o640);
    this.size = 0;
  }

  /** Opens the path anew (kubelet renamed the file to rotate it: CRI ReopenContainerLog). */
  reopen(): void {
    const fd = fs.openSync(this.file, 'a', 0o640);
    fs.closeSync(this.fd);
    this.fd = fd;
    this.size = fs.fstatSync(fd).size;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

export interface LogEntry {
  time: string;
  stream: Stream;
  /** The line, joined from its P parts, with its newline when it had one. */
  text: string;
}

/** Parses CRI log text; `pending` carries P parts across calls (per stream). */
export function parseCri(text: string, pending: Map<Stream, LogEntry> = new Map()): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const a = line.indexOf(' ');
    const b = line.indexOf(' ', a + 1);
    const c = line.indexOf(' ', b + 1);
    if (a < 0 || b < 0 || c < 0) continue;
    const time = line.slice(0, a);
    const stream = line.slice(a + 1, b) as Stream;
    const tag = line.slice(b + 1, c);
    const content = line.slice(c + 1);
    const prev = pending.get(stream);
    if (tag === 'P') {
      pending.set(stream, { time: prev?.time ?? time, stream, text: (prev?.text ?? '') + content });
      continue;
    }
    pending.delete(stream);
    out.push({ time: prev?.time ?? time, stream, text: (prev?.text ?? '') + content + '\n' });
  }
  return out;
}

/** Every log file of a container, oldest first. */
export function logFiles(file: string): string[] {
  const rotated: string[] = [];
  for (let i = 1; fs.existsSync(`${file}.${i}`); i++) rotated.unshift(`${file}.${i}`);
  return fs.existsSync(file) ? [...rotated, file] : rotated;
}

export function readAll(file: string): LogEntry[] {
  const pending = new Map<Stream, LogEntry>();
  const out: LogEntry[] = [];
  for (const f of logFiles(file)) out.push(...parseCri(fs.readFileSync(f, 'utf8'), pending));
  // a trailing partial line is output too, as docker logs shows it
  for (const p of pending.values()) out.push(p);
  return out;
}

export interface FollowOptions {
  /** Called for each entry, in order. */
  onEntry: (e: LogEntry) => void;
  /** Polled: following stops once this is false and the file has no more. */
  stillRunning: () => boolean;
  /** Where to start reading in the current file (bytes). */
  offset: number;
}

/**
 * Follows container.log from `offset` until the container stops. Polls
 * (every 100 ms): fs.watch misses writes on some filesystems, and a
 * rotation replaces the file under us (then we go on from the new one).
 */
export async function follow(file: string, opts: FollowOptions): Promise<void> {
  let pos = opts.offset;
  let ino = statIno(file);
  const pending = new Map<Stream, LogEntry>();
  const buf = Buffer.alloc(64 * 1024);
  let rest = '';
  for (;;) {
    const running = opts.stillRunning();
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      if (!running) return;
      await sleep(100);
      continue;
    }
    try {
      const st = fs.fstatSync(fd);
      if (st.ino !== ino || st.size < pos) {
        ino = st.ino;
        pos = 0; // rotated: the new file starts from scratch
      }
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        if (n <= 0) break;
        pos += n;
        const text = rest + buf.subarray(0, n).toString('utf8');
        const cut = text.lastIndexOf('\n');
        rest = text.slice(cut + 1);
        for (const e of parseCri(text.slice(0, cut + 1), pending)) opts.onEntry(e);
      }
    } finally {
      fs.closeSync(fd);
    }
    if (!running) return;
    await sleep(100);
  }
}

function statIno(file: string): number {
  try {
    return fs.statSync(file).ino;
  } catch {
    return -1;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
