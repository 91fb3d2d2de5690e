// Entry point of a container's monitor (engine/monitor.ts); bundled as
// dist/bundle/monitor.js.

import { Monitor } from './monitor';
import { Paths } from './containers';
import { messageOf } from '../runtime/sys/errors';

const [root, runroot, id, flag] = process.argv.slice(2);
if (!root || !runroot || !id) {
  process.stderr.write('usage: monitor ROOT RUNROOT ID [--attach]\n');
  process.exit(2);
}
process.title = `mycontainer-monitor ${id.slice(0, 12)}`;
// Signals for the container reach it through `kill`; the monitor itself ignores them.
for (const s of ['SIGINT', 'SIGHUP', 'SIGPIPE'] as const) process.on(s, () => {});
const m = new Monitor(new Paths(root, runroot), id, flag === '--attach');
m.main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`monitor: ${messageOf(e)}\n`);
    process.exit(1);
  },
);
