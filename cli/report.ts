// The one place errors are printed, for both binaries; the program name and
// runc's --log file are the runtime's (runtime/log.ts).

import { messageOf } from '../runtime/sys/errors';
import { logLine, programName } from '../runtime/log';

/** The one place errors are printed: stderr, plus --log if set. */
export function reportError(e: unknown): never {
  const msg = messageOf(e);
  logLine('error', msg);
  try {
    process.stderr.write(`${programName()}: ${msg}\n`);
  } catch {
    // stderr may be closed or read-only (a shim's /dev/null): --log has it
  }
  if (process.env['MYCONTAINER_STACK'] && e instanceof Error) process.stderr.write(`${e.stack ?? ''}\n`);
  process.exit(typeof e === 'object' && e !== null && 'exitCode' in e ? Number((e as { exitCode: number }).exitCode) : 1);
}
