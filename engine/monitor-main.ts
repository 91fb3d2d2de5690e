// Entry point of a container's Node monitor (engine/monitor.ts); bundled as
// dist/bundle/monitor.js. `monitor.js --exited JOB ...` is
// native/mycontainer-monitor execing Node in its place when the container's
// init has exited (engine/launch.ts writes JOB; engine/handoff.ts the rest).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Monitor } from './monitor';
import { parseResumed, type Resumed } from './handoff';
import { Paths } from './containers';
import { messageOf } from '../runtime/sys/errors';

interface Job {
  root: string;
  runroot: string;
  id: string;
  debug: boolean;
  timing: boolean;
  /** When the container has run this long, native/mycontainer-monitor takes over (<0: never). */
  handOffMs?: number;
}

/** `--exited JOB ...`: mycontainer-monitor's return (engine/handoff.ts). */
function parseExited(argv: string[]): { job: Job; resumed: Resumed } {
  return { job: JSON.parse(argv[0] ?? '') as Job, resumed: parseResumed(argv.slice(1)) };
}

/** How to start this script again: the bundle through its loader (code cache), or the compiled module. */
function scriptArgs(): string[] {
  const script = process.argv[1]!;
  const loader = path.join(path.dirname(script), '..', '..', 'bin', 'lib', 'load.js');
  return path.basename(path.dirname(script)) === 'bundle' && fs.existsSync(loader) ? [loader, script] : [script];
}

if (process.argv[2] !== '--exited') {
  process.stderr.write('usage: monitor --exited JOB --status N ... (run by native/mycontainer-monitor when a container exits)\n');
  process.exit(2);
}
// stderr is monitor.log already: mycontainer-monitor kept it
const { job, resumed } = parseExited(process.argv.slice(3));
if (job.debug) process.env['MYCONTAINER_DEBUG'] = '1';
if (job.timing) process.env['MYCONTAINER_TIMING'] = '1';
process.title = `mycontainer-monitor ${job.id.slice(0, 12)}`;
// Signals for the container reach it through `kill`; the monitor itself ignores them.
for (const s of ['SIGINT', 'SIGHUP', 'SIGPIPE'] as const) process.on(s, () => {});
const exitCommand = [process.execPath, ...process.execArgv, ...scriptArgs(), '--exited', JSON.stringify(job)];
const m = new Monitor(new Paths(job.root, job.runroot), job.id, { handOffMs: job.handOffMs ?? -1, exitCommand, resumed });
m.main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`monitor: ${messageOf(e)}\n`);
    process.exit(1);
  },
);
