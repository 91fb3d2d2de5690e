// `mycontainer`: the front end a person types, as docker or podman. Images
// now (images/cli); containers, networks and volumes as issue 5 lands them.
// The OCI runtime with runc's command line is `mycontainer-runtime`
// (cli/runtime.ts): the two share commands' names (run, create, exec, ps)
// with other meanings, as podman and runc do.

import yargs from 'yargs';
import type { Argv } from 'yargs';
import { imageCommands } from '../images/cli/commands';
import { reportError } from './report';

export function main(argv: string[]): void {
  if (argv.some((a) => a === '--version' || a === '-v') && !argv.some((a) => !a.startsWith('-'))) {
    const pkg = require('../../package.json') as { version: string };
    process.stdout.write(`mycontainer version ${pkg.version}\n`);
    return;
  }
  let cli: Argv = yargs(argv)
    .scriptName('mycontainer')
    .strict()
    .parserConfiguration({ 'unknown-options-as-args': false, 'halt-at-non-option': false, 'boolean-negation': false })
    .option('root', { type: 'string', default: process.env['MYCONTAINER_ROOT'] ?? '/var/lib/mycontainer', describe: 'store: images, snapshots (podman --root)', global: true })
    .option('debug', { type: 'boolean', default: false, describe: 'trace every syscall and cgroup write', global: true })
    .version(false)
    .option('version', { alias: 'v', type: 'boolean', describe: 'print the version' })
    .help('help').alias('help', 'h')
    .recommendCommands()
    .fail((msg, err, y) => {
      if (err) reportError(err);
      process.stderr.write(`mycontainer: ${msg}\n\n`);
      y.showHelp((s) => process.stderr.write(s + '\n'));
      process.exit(1);
    });
  for (const c of imageCommands) cli = cli.command(c);
  cli
    .demandCommand(1, 'a command is required')
    .parseAsync()
    .catch((e: unknown) => reportError(e));
}

main(process.argv.slice(2));
