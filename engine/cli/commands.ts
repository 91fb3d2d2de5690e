// Docker's container commands over the engine, one file a verb group:
// run.ts (run, create), lifecycle.ts (start, stop, restart, kill, rm, wait,
// rename, pause, unpause, update), inspect.ts (ps, logs, inspect, port,
// top, stats), exec.ts (exec, attach), network.ts (network, volume),
// system.ts (system, version, info), files.ts (cp, diff, commit, export).
// Each parses docker's flags into a request and makes one library call;
// cli/main.ts registers this list and prints errors.

import type { CommandModule } from 'yargs';
import { runCommands } from './run';
import { lifecycleCommands } from './lifecycle';
import { inspectCommands } from './inspect';
import { execCommands } from './exec';
import { networkCommands } from './network';
import { systemCommands } from './system';
import { fileCommands } from './files';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const engineCommands: CommandModule<any, any>[] = [
  ...runCommands, ...lifecycleCommands, ...inspectCommands, ...execCommands, ...networkCommands, ...systemCommands, ...fileCommands,
];
