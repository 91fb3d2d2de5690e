import { appendFileSync } from 'node:fs';
import { messageOf } from '../runtime/sys/errors';

let logFile: string | undefined;
let program = 'mycontainer';

/** The name errors and warnings start with: the binary that was run. */
export function setProgram(name: string): void {
  program = name;
}

export function programName(): string {
  return program;
}
let logFormat: 'text' | 'json' = 'text';

export function setLog(file: string | undefined, format: 'text' | 'json'): void {
  logFile = file;
  logFormat = format;
}

/** Writes a line to --log in runc's formats (conmon parses the JSON one). */
export function logLine(level: 'debug' | 'info' | 'warning' | 'error', msg: string): void {
  if (!logFile) return;
  const time = new Date().toISOString();
  const line = logFormat === 'json' ? JSON.stringify({ level, msg, time }) : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
  try {
    appendFileSync(logFile, line + '\n');
  } catch {
    // The log is best effort; stderr still gets the error.
  }
}

/** The one place errors are printed: stderr, plus --log if set. */
export function reportError(e: unknown): never {
  const msg = messageOf(e);
  logLine('error', msg);
  process.stderr.write(`${program}: ${msg}\n`);
  if (process.env['MYCONTAINER_STACK'] && e instanceof Error) process.stderr.write(`${e.stack ?? ''}\n`);
  process.exit(typeof e === 'object' && e !== null && 'exitCode' in e ? Number((e as { exitCode: number }).exitCode) : 1);
}
