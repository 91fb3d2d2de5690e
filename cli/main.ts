// `mycontainer`: the front end a person types, as docker or podman:
// containers, networks and volumes (engine/cli) and images (images/cli).
// The OCI runtime with runc's command line is `mycontainer-runtime`
// (cli/runtime.ts): the two share commands' names (run, create, exec, ps)
// with other meanings, as podman and runc do.

import yargs from 'yargs';
import type { Argv } from 'yargs';
import { imageCommands } from '../images/cli/commands';
import { engineCommands } from '../engine/cli/commands';
import { COMMANDS_WITH_ARGV, splitContainerArgv } from '../engine/cli/argv';
import { defaultRunroot } from '../engine/cli/common';
import { reportError } from './report';
import { criCommand } from '../shim/cli';
import { kubeCommand } from '../orchestrator/cli';

export function main(argv: string[]): void {
  if (argv.some((a) => a === '--version' || a === '-v') && !argv.some((a) => !a.startsWith('-'))) {
    const pkg = require('../../package.json') as { version: string };
    process.stdout.write(`mycontainer version ${pkg.version}\n`);
    return;
  }
  let cli: Argv = yargs(argv)
    .scriptName('mycontainer')
    .strict()
    .parserConfiguration({ 'unknown-options-as-args': false, 'halt-at-non-option': false, 'boolean-negation': false, 'greedy-arrays': false })
    .option('root', { type: 'string', default: process.env['MYCONTAINER_ROOT'] ?? '/var/lib/mycontainer', describe: 'store: images, snapshots (podman --root)', global: true })
    .option('runroot', { type: 'string', default: defaultRunroot(), describe: 'state that ends at reboot: the runtime\'s, attach sockets, netns (podman --runroot)', global: true })
    .option('debug', { type: 'boolean', default: false, describe: 'trace every syscall and cgroup write', global: true })
    .version(false)
    .option('version', { type: 'boolean', describe: 'print the version (also -v)' })
    .help('help') // no -h: docker's run takes it for --hostname
    .recommendCommands()
    .fail((msg, err, y) => {
      if (err) reportError(err);
      process.stderr.write(`mycontainer: ${msg}\n\n`);
      y.showHelp((s) => process.stderr.write(s + '\n'));
      process.exit(1);
    });
  // `inspect` and `export` are the engine's: containers first, then images, as docker's.
  const engineFirst = (m: (typeof imageCommands)[number]): boolean => ['inspect', 'export'].includes(String(m.command).split(' ')[0]!);
  for (const c of [...engineCommands, ...imageCommands.filter((m) => !engineFirst(m))]) cli = cli.command(c);
  cli = cli.command(criCommand as never);
  cli = cli.command(kubeCommand as never);
  cli
    .demandCommand(1, 'a command is required')
    .parseAsync()
    .catch((e: unknown) => reportError(e));
}

main(splitContainerArgv(process.argv.slice(2), COMMANDS_WITH_ARGV));
