// Entry point of a container's monitor (engine/monitor.ts); bundled as
// dist/bundle/monitor.js. Started as `monitor.js --standby`: it boots, then
// reads its container from fd 3 (one JSON line: root, runroot, id, attach,
// debug), points its stderr at the container's monitor.log, and runs. EOF
// on fd 3 first means the CLI gave up (a failed create): it exits.
// `monitor.js --exited JOB ...` is native/mycontainer-monitor execing Node
// back when the container has exited (engine/monitor.ts, Resumed).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Monitor } from './monitor';
import { parseResumed, type Resumed } from './handoff';
import { Paths } from './containers';
import { messageOf } from '../runtime/sys/errors';
import * as sys from '../runtime/sys/libc';

interface Job {
  root: string;
  runroot: string;
  id: string;
  attach: boolean;
  debug: boolean;
  timing: boolean;
  /** When the container has run this long, native/mycontainer-monitor takes over (<0: never). */
  handOffMs?: number;
}

/** One line from fd 3, read synchronously: nothing else is to be done until it comes. */
function readJob(): Job | null {
  // Blocking reads: a standby kept warm by a server may wait long, and
  // should sleep meanwhile rather than poll.
  try {
    sys.setNonblock(3, false);
  } catch {
    // not ours to change: poll below
  }
  const buf = Buffer.alloc(4096);
  let text = '';
  const wait = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(3, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(wait, 0, 0, 5);
        continue;
      }
      return null;
    }
    if (n === 0) return null;
    text += buf.subarray(0, n).toString();
    const nl = text.indexOf('\n');
    if (nl >= 0) return JSON.parse(text.slice(0, nl)) as Job;
  }
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

let job: Job | null;
let resumed: Resumed | undefined;
if (process.argv[2] === '--standby') {
  job = readJob();
  if (!job) process.exit(0);
  const log = fs.openSync(path.join(job.root, 'containers', job.id, 'monitor.log'), 'a', 0o600);
  sys.dup2(log, 2, 'the monitor\'s diagnostics go to the container\'s monitor.log');
  fs.closeSync(log);
} else if (process.argv[2] === '--exited') {
  // stderr is monitor.log already: mycontainer-monitor kept it
  ({ job, resumed } = parseExited(process.argv.slice(3)));
} else {
  process.stderr.write('usage: monitor --standby (the container comes on fd 3)\n');
  process.exit(2);
}
if (job.debug) process.env['MYCONTAINER_DEBUG'] = '1';
if (job.timing) process.env['MYCONTAINER_TIMING'] = '1';
process.title = `mycontainer-monitor ${job.id.slice(0, 12)}`;
// Signals for the container reach it through `kill`; the monitor itself ignores them.
for (const s of ['SIGINT', 'SIGHUP', 'SIGPIPE'] as const) process.on(s, () => {});
const exitCommand = [process.execPath, ...process.execArgv, ...scriptArgs(), '--exited', JSON.stringify(job)];
const m = new Monitor(new Paths(job.root, job.runroot), job.id, { attachFirst: job.attach, handOffMs: job.handOffMs ?? -1, exitCommand, resumed });
m.main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`monitor: ${messageOf(e)}\n`);
    process.exit(1);
  },
);
