// `mycontainer-runtime`: the OCI runtime, with runc's command line (what
// podman's --runtime, containerd's runc shim and people used to runc call).
// Global flags, then the commands of runtime/cli; only this layer and
// cli/main.ts print errors and set the exit code.

import yargs from 'yargs';
import type { Argv } from 'yargs';
import { runtimeCommands, splitExecArgv } from '../runtime/cli/commands';
import { reportError } from './report';
import { setProgram } from '../runtime/log';
import { defaultRoot } from '../runtime/linux/rootless';

export function main(argv: string[]): void {
  setProgram('mycontainer-runtime');
  if (argv.some((a) => a === '--version' || a === '-v') && !argv.some((a) => !a.startsWith('-'))) {
    const pkg = require('../../package.json') as { version: string };
    process.stdout.write(`mycontainer-runtime version ${pkg.version}\nspec: 1.2.1\n`);
    return;
  }
  let cli: Argv = yargs(argv)
    .scriptName('mycontainer-runtime')
    .strict()
    .parserConfiguration({ 'unknown-options-as-args': false, 'halt-at-non-option': false, 'boolean-negation': false })
    // Non-root: $XDG_RUNTIME_DIR/mycontainer or /tmp/mycontainer-<uid>, as runc.
    .option('root', { type: 'string', describe: 'root directory for container state', default: defaultRoot(), global: true })
    .option('log', { type: 'string', describe: 'log file (runc --log)', global: true })
    .option('log-format', { choices: ['text', 'json'] as const, default: 'text' as const, global: true })
    .option('debug', { type: 'boolean', default: false, describe: 'trace every syscall and cgroup write', global: true })
    // runc flags that podman and containerd pass; accepted for compatibility.
    .option('systemd-cgroup', { type: 'boolean', default: false, hidden: true, global: true })
    .option('rootless', { type: 'string', hidden: true, global: true })
    .option('criu', { type: 'string', hidden: true, global: true })
    .version(false)
    .option('version', { alias: 'v', type: 'boolean', describe: 'print the version' })
    .help('help').alias('help', 'h')
    .recommendCommands()
    .fail((msg, err, y) => {
      if (err) reportError(err);
      process.stderr.write(`mycontainer-runtime: ${msg}\n\n`);
      y.showHelp((s) => process.stderr.write(s + '\n'));
      process.exit(1);
    });
  for (const c of runtimeCommands) cli = cli.command(c);
  cli
    .demandCommand(1, 'a command is required')
    .parseAsync()
    .catch((e: unknown) => reportError(e));
}

main(splitExecArgv(process.argv.slice(2)));
