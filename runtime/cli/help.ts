// runc's help and version, in urfave/cli's layout: `NAME:`, `USAGE:`,
// `VERSION:`, `COMMANDS:`, `GLOBAL OPTIONS:` (what scripts and runc's own
// bats suite read), under the name the binary was run as (a `runc` symlink
// to us says "runc").

import * as path from 'node:path';
import yargs from 'yargs';
import type { CommandModule } from 'yargs';

/** The spec version we validate against and write (see features). */
export const SPEC_VERSION = '1.2.1';

/** The name the binary was invoked as: `runc` through a symlink, else ours. */
export function invokedName(argv1: string | undefined = process.argv[1]): string {
  const base = argv1 ? path.basename(argv1) : '';
  return base && !/\.(c|m)?js$/.test(base) ? base : 'mycontainer-runtime';
}

function packageVersion(): string {
  // dist/runtime/cli/help.js → the repository's package.json (inlined in the bundle).
  return (require('../../../package.json') as { version: string }).version;
}

/** runc's `-v`: `<name> version X`, then commit, spec and the language runtime. */
export function versionText(name: string): string {
  const v = packageVersion();
  return `${name} version ${v}\ncommit: mycontainer-${v}\nspec: ${SPEC_VERSION}\nnode: ${process.version}\n`;
}

/** Global flags: those taking a value (runc's), and the boolean ones. */
export const GLOBAL_WITH_VALUE = new Set(['--root', '--log', '--log-format', '--criu', '--rootless']);
const GLOBAL_BOOLEAN = new Set(['--debug', '--systemd-cgroup']);

export type HelpRequest = { kind: 'none' } | { kind: 'version' } | { kind: 'help'; command?: string };

/**
 * What to print instead of running a command: `-v`/`--version` or
 * `-h`/`--help` among the global flags (`--root X -v` included), no command
 * at all (runc prints its help), `help [command]`, `h`, or `<command> -h`.
 */
export function helpRequest(argv: readonly string[]): HelpRequest {
  let i = 0;
  let version = false;
  let help = false;
  while (i < argv.length) {
    const t = argv[i] as string;
    if (t === '-v' || t === '--version') version = true;
    else if (t === '-h' || t === '--help') help = true;
    else if (GLOBAL_WITH_VALUE.has(t)) i++;
    else if (!(GLOBAL_BOOLEAN.has(t) || (t.startsWith('--') && t.includes('=') && GLOBAL_WITH_VALUE.has(t.slice(0, t.indexOf('=')))))) break;
    i++;
  }
  if (help) return { kind: 'help' };
  if (version) return { kind: 'version' };
  const cmd = argv[i];
  if (cmd === undefined) return { kind: 'help' };
  if (cmd === 'help' || cmd === 'h') return argv[i + 1] ? { kind: 'help', command: argv[i + 1] as string } : { kind: 'help' };
  for (const t of argv.slice(i + 1)) {
    if (t === '--') break; // exec's own command follows
    if (t === '-h' || t === '--help') return { kind: 'help', command: cmd };
  }
  return { kind: 'none' };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Cmd = CommandModule<any, any>;

const usageOf = (c: Cmd): string => String((Array.isArray(c.command) ? c.command[0] : c.command) ?? '');
const nameOf = (c: Cmd): string => usageOf(c).split(' ')[0] as string;
const aliasesOf = (c: Cmd): string[] => (c.aliases === undefined ? [] : typeof c.aliases === 'string' ? [c.aliases] : [...c.aliases]);

const GLOBAL_OPTIONS: [string, string][] = [
  ['--debug', 'enable debug logging (runc\'s level=debug lines, and a trace of every syscall and cgroup write)'],
  ['--log value', 'set the log file to write logs to (default is \'/dev/stderr\')'],
  ['--log-format value', 'set the log format (\'text\' (default), or \'json\') (default: "text")'],
  ['--root value', 'root directory for storage of container state (this should be located in tmpfs)'],
  ['--criu value', 'accepted for compatibility; checkpoint and restore are not supported'],
  ['--systemd-cgroup', 'accepted for compatibility (cgroupsPath "slice:prefix:name" is read as a path)'],
  ['--rootless value', 'accepted for compatibility (\'true\', \'false\', or \'auto\') (default: "auto")'],
  ['--help, -h', 'show help'],
  ['--version, -v', 'print the version'],
];

function table(rows: [string, string][]): string {
  const w = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `   ${a.padEnd(w)}  ${b}`.trimEnd()).join('\n');
}

/** `<name> --help`: runc's layout. */
export function mainHelp(name: string, commands: readonly Cmd[], defaultRoot: string): string {
  const cmds: [string, string][] = commands.map((c) => [[nameOf(c), ...aliasesOf(c)].join(', '), String(c.describe ?? '')]);
  cmds.push(['help, h', 'Shows a list of commands or help for one command']);
  const globals = GLOBAL_OPTIONS.map(([a, b]): [string, string] => (a === '--root value' ? [a, `${b} (default: "${defaultRoot}")`] : [a, b]));
  return `NAME:
   ${name} - Open Container Initiative runtime

${name} is mycontainer's OCI runtime, with runc's command line: it runs
containers from bundles (a directory with a "config.json" and a root
filesystem), as a child of the process supervisor that calls it.

To start a new instance of a container:

    # ${name} run [ -b bundle ] <container-id>

USAGE:
   ${name} [global options] command [command options] [arguments...]

VERSION:
   ${versionText(name).replace(/^.* version /, '').trimEnd()}

COMMANDS:
${table(cmds)}

GLOBAL OPTIONS:
${table(globals)}
`;
}

/** `<name> <command> --help`: NAME, USAGE, then the command's options as yargs lists them. */
export async function commandHelp(name: string, commands: readonly Cmd[], wanted: string): Promise<string | null> {
  const c = commands.find((x) => nameOf(x) === wanted || aliasesOf(x).includes(wanted));
  if (!c) return null;
  const words = usageOf(c).split(' ');
  const args = words.slice(1).map((w) => w.replace(/^\[(.*)\]$/, '[$1]')).join(' ');
  const options: string = await new Promise((resolve) => {
    void yargs([])
      .scriptName(name)
      .version(false)
      .help('help').alias('help', 'h')
      .wrap(null)
      .command({ ...c, handler: () => {} })
      .parse([nameOf(c), '--help'], {}, (_err, _argv, output) => resolve(output));
  });
  // yargs: "usage line", blank, description, blank, then sections.
  const body = options.split('\n\n').filter((s) => /^(Positionals|Options):/.test(s))
    .map((s) => s.replace(/^Positionals:/, 'ARGUMENTS:').replace(/^Options:/, 'OPTIONS:').replace(/\n {2}/g, '\n   '))
    .join('\n\n');
  return `NAME:
   ${name} ${nameOf(c)} - ${String(c.describe ?? '')}

USAGE:
   ${name} ${nameOf(c)} [command options]${args ? ' ' + args : ''}
${body ? '\n' + body + '\n' : ''}`;
}
