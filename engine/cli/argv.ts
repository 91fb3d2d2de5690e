// `run [opts] IMAGE [CMD...]`, `exec [opts] CTR CMD...`: the container's
// command line follows ours, and its flags (`sh -c`) must not be read as
// ours. cli/main.ts splits argv with this before yargs sees it.

/** Commands whose trailing words are the container's command line. */
export const COMMANDS_WITH_ARGV = ['run', 'create', 'exec'];

/** Boolean flags of run/create/exec (they take no value: the rest take one). */
const BOOLEAN_FLAGS = new Set([
  '-d', '--detach', '-i', '--interactive', '-t', '--tty', '--rm', '-P', '--publish-all', '--read-only', '--privileged',
  '--init', '-q', '--quiet', '--debug', '--help', '--sig-proxy', '--no-stdin', '-a', '--attach',
]);
const SHORT_BOOLEANS = new Set(['d', 'i', 't', 'P', 'q', 'a']);

/** Inserts "--" after the first positional that follows the command name. */
export function splitContainerArgv(argv: string[], commands: readonly string[]): string[] {
  let i = 0;
  // global options before the command name
  while (i < argv.length && argv[i]!.startsWith('-')) i += argv[i]!.includes('=') || argv[i] === '--debug' ? 1 : 2;
  if (i >= argv.length || !commands.includes(argv[i]!)) return argv;
  // `container run` and the like
  i++;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv;
    if (!a.startsWith('-') || a === '-') return [...argv.slice(0, i + 1), '--', ...argv.slice(i + 1)];
    if (a.startsWith('--')) {
      if (a.includes('=') || BOOLEAN_FLAGS.has(a)) continue;
      i++; // its value
      continue;
    }
    // -it, -dit, -p 80:80, -e A=B
    const letters = a.slice(1);
    if ([...letters].every((l) => SHORT_BOOLEANS.has(l))) continue;
    if (letters.length === 1) i++;
  }
  return argv;
}
