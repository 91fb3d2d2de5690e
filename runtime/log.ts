// runc's --log: warnings and errors also go to a file, as text or JSON
// (conmon parses the JSON), under the name of the binary that was run.
// The runtime's CLI sets it; cli/report.ts prints errors through it.

import { appendFileSync } from 'node:fs';

let logFile: string | undefined;
let logFormat: 'text' | 'json' = 'text';
let program = 'mycontainer';

/** The name errors and warnings start with: the binary that was run. */
export function setProgram(name: string): void {
  program = name;
}

export function programName(): string {
  return program;
}

/** A --log file was given: warnings then go there only, as runc's do. */
export function hasLog(): boolean {
  return logFile !== undefined;
}

export function setLog(file: string | undefined, format: 'text' | 'json'): void {
  logFile = file;
  logFormat = format;
}

function format(level: string, msg: string): string {
  const time = new Date().toISOString();
  return logFormat === 'json' ? JSON.stringify({ level, msg, time }) : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
}

/** Writes a line to --log in runc's formats (conmon parses the JSON one). */
export function logLine(level: 'debug' | 'info' | 'warning' | 'error', msg: string): void {
  if (!logFile) return;
  try {
    appendFileSync(logFile, format(level, msg) + '\n');
  } catch {
    // The log is best effort; stderr still gets the error.
  }
}

/**
 * A runc-style `level=debug` line (--debug) to runc's log destination: the
 * --log file, else stderr (runc's default), in --log-format.
 */
export function debugLine(msg: string): void {
  if (logFile) logLine('debug', msg);
  else process.stderr.write(format('debug', msg) + '\n');
}
