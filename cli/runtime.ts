// `mycontainer-runtime`: the OCI runtime, with runc's command line (what
// podman's --runtime, containerd's runc shim and people used to runc call).
// Global flags, then the commands of runtime/cli; only this layer and
// cli/main.ts print errors and set the exit code. Help and version are
// runc's layout (runtime/cli/help.ts), printed before yargs sees the line.

import yargs from 'yargs';
import type { Argv } from 'yargs';
import { runtimeCommands, splitExecArgv } from '../runtime/cli/commands';
import { commandHelp, helpRequest, invokedName, mainHelp, versionText } from '../runtime/cli/help';
import { reportError } from './report';
import { setLog, setProgram } from '../runtime/log';
import { defaultRoot } from '../runtime/linux/rootless';

/** --log and --log-format, read before anything can fail, so that every failure reaches the file. */
function earlyLog(argv: readonly string[]): void {
  const value = (flag: string): string | undefined => {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i] as string;
      if (a === flag || a === `-${flag}`) return argv[i + 1];
      if (a.startsWith(`${flag}=`) || a.startsWith(`-${flag}=`)) return a.slice(a.indexOf('=') + 1);
    }
    return undefined;
  };
  const format = value('--log-format');
  setLog(value('--log'), format === 'json' ? 'json' : 'text');
}

export async function main(argv: string[]): Promise<void> {
  setProgram('mycontainer-runtime');
  earlyLog(argv);
  // containerd's shim may hand us a read-only /dev/null as stderr: a write
  // error there must not kill the runtime, and nothing may fail unlogged.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  process.on('uncaughtException', (e) => reportError(e));
  const asked = helpRequest(argv);
  if (asked.kind === 'version') {
    process.stdout.write(versionText(invokedName()));
    return;
  }
  if (asked.kind === 'help') {
    const name = invokedName();
    const text = asked.command === undefined ? mainHelp(name, runtimeCommands, defaultRoot()) : await commandHelp(name, runtimeCommands, asked.command);
    if (text === null) {
      process.stderr.write(`No help topic for '${asked.command ?? ''}'\n`);
      process.exitCode = 3;
      return;
    }
    process.stdout.write(text);
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
    .option('debug', { type: 'boolean', default: false, describe: 'runc\'s level=debug lines, and a trace of every syscall and cgroup write', global: true })
    // runc flags that podman and containerd pass; accepted for compatibility.
    .option('systemd-cgroup', { type: 'boolean', default: false, hidden: true, global: true })
    .option('rootless', { type: 'string', hidden: true, global: true })
    .option('criu', { type: 'string', hidden: true, global: true })
    .version(false)
    .help(false)
    .recommendCommands()
    .fail((msg, err, y) => {
      if (err) reportError(err);
      process.stderr.write(`mycontainer-runtime: ${msg}\n\n`);
      y.showHelp((s) => process.stderr.write(s + '\n'));
      process.exit(1);
    });
  for (const c of runtimeCommands) cli = cli.command(c);
  await cli
    .demandCommand(1, 'a command is required')
    .parseAsync()
    .catch((e: unknown) => reportError(e));
}

void main(splitExecArgv(process.argv.slice(2)));
