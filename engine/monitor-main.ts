// Entry point of a container's Node monitor (engine/monitor.ts); bundled as
// dist/bundle/monitor.js. `monitor.js --exited JOB ...` is
// native/mycontainer-monitor execing Node in its place when the container's
// init has exited (engine/launch.ts writes JOB; engine/handoff.ts the rest).

import { Monitor } from './monitor';
import { parseResumed, type MonitorJob, type Resumed } from './handoff';
import { exitCommand } from './launch';
import { Paths } from './containers';
import { messageOf } from '../runtime/sys/errors';

/** `--exited JOB ...`: mycontainer-monitor's return (engine/handoff.ts). */
function parseExited(argv: string[]): { job: MonitorJob; resumed: Resumed } {
  return { job: JSON.parse(argv[0] ?? '') as MonitorJob, resumed: parseResumed(argv.slice(1)) };
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
const m = new Monitor(new Paths(job.root, job.runroot), job.id, { handOffMs: job.handOffMs, exitCommand: exitCommand(job), resumed });
m.main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`monitor: ${messageOf(e)}\n`);
    process.exit(1);
  },
);
