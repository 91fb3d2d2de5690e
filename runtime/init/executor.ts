// The runtime's side of the sync channel with native/src/init.c: it sends
// the programs that runtime/init/program.ts writes and reads back what the
// init reports (each op's result with --debug, the sync points, the first
// failure with its message).

import * as net from 'node:net';
import { encodeProgram, OP, REPORT_EACH, type Op } from '../sys/program';
import { RuntimeError, errnoName } from '../sys/errors';
import { trace, tracing } from '../sys/trace';

const ETIMEDOUT = 110;

export class InitExecutor {
  private sock: net.Socket;
  private lines: string[] = [];
  private buf = '';
  private ended = false;
  private waiter: (() => void) | null = null;
  private ops: Op[] = [];
  private pauses = new Map<string, (value: number) => void>();

  /** `fd`: our end of the socketpair the init sees as fd 3; `label` prefixes its trace lines. */
  constructor(fd: number, private readonly label: string) {
    this.sock = new net.Socket({ fd, readable: true, writable: true });
    this.sock.setEncoding('utf8');
    this.sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
      this.wake();
    });
    const end = (): void => {
      this.ended = true;
      this.wake();
    };
    this.sock.on('end', end);
    this.sock.on('close', end);
    this.sock.on('error', end);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /**
   * What to do when the init pauses at `name` (ProgramBuilder.pause) with
   * an fd of its own; the init goes on once it returns, and fails if it throws.
   */
  onPause(name: string, act: (value: number) => void): void {
    this.pauses.set(name, act);
  }

  /** Sends one program; results are read by `until`. */
  run(ops: Op[]): void {
    this.ops = ops;
    this.sock.write(encodeProgram(ops, tracing() ? REPORT_EACH : 0));
  }

  private async line(): Promise<string | null> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return line;
      if (this.ended) return null;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  /** Reads until the init says `name` (a sync point or a report); throws its failure, or EOF. */
  async until(name: string): Promise<void> {
    for (;;) {
      const line = await this.line();
      if (line === null) throw new RuntimeError(`the container init exited before it was ${name === 'created' ? 'created' : `ready for ${name}`}`, { code: 'EINIT' });
      const said = this.handle(line);
      if (said === name) return;
      const pause = said === null ? null : /^(\S+) (-?\d+)$/.exec(said);
      if (pause) {
        const act = this.pauses.get(pause[1] as string);
        if (!act) throw new RuntimeError(`the container init paused at "${pause[1]}", which nothing here answers`, { code: 'EPROTO' });
        act(Number(pause[2]));
        this.sock.write('g');
      }
    }
  }

  /** Traces what the init still reports (the last steps of a foreground `run --debug`) until it execs. */
  async drain(): Promise<void> {
    for (;;) {
      const line = await this.line();
      if (line === null) return this.close();
      try {
        this.handle(line);
      } catch {
        return this.close(); // the init's own stderr says it
      }
    }
  }

  /** One line from the init: traces a result, returns a sync or report name, throws a failure. */
  private handle(line: string): string | null {
    const kind = line[0];
    if (kind === 's' || kind === 'm') return line.slice(2);
    if (kind === 'r') {
      const [, i, result, errno, ...found] = line.split(' ');
      const op = this.ops[Number(i)];
      if (op && tracing()) {
        const r = Number(result);
        const res = r < 0 ? `= -1 ${errnoName(Number(errno))}` : r > 0 && op.note ? `= 0 ${op.note(r)}` : `= ${result}`;
        const call = found.length > 0 ? op.call.replace('<found>', JSON.stringify(found.join(' '))) : op.call;
        trace({ kind: 'syscall', call: `${this.label ? `[${this.label}] ` : ''}${call}`, result: res, why: op.why });
      }
      return null;
    }
    if (kind === 'e') {
      const m = /^e (-?\d+) (\d+) (.*)$/s.exec(line);
      const op = this.ops[Number(m?.[1] ?? -1)];
      const errno = Number(m?.[2] ?? 0);
      const code = op?.code === OP.HOOK ? (errno === ETIMEDOUT ? 'ETIMEDOUT' : 'EHOOK') : errno ? errnoName(errno) : 'EINIT';
      throw new RuntimeError(m?.[3] ?? line, { code });
    }
    return null;
  }

  close(): void {
    this.sock.destroy();
  }

  /** Keeps our end open until this process exits, without keeping it alive: the init's hand-off waits for that EOF. */
  release(): void {
    this.sock.pause();
    this.sock.unref();
  }
}
