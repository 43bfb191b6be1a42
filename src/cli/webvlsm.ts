/**
 * The `webvlsm` command line (package.json "bin"; bin/webvlsm.mjs registers the TypeScript loader
 * and calls `main`). Run it as `npx webvlsm <command> ...` from the repository (npm runs the
 * package's own bin) or `node bin/webvlsm.mjs <command> ...`.
 *
 * Commands live in src/cli/commands/, one file each; to add one, export a Command there and list
 * it in COMMANDS below. Exit codes (command.ts): 0 ok, 1 failure, 2 usage error.
 *
 * `main` never calls process.exit and writes only through `io`, so tests run it in-process.
 */
import { readFileSync } from 'node:fs';
import { type CliIo, type Command, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './commands/command.js';
import { convertCommand } from './commands/convert.js';
import { evalCommand } from './commands/eval.js';
import { inspectCommand } from './commands/inspect.js';
import { segmentCommand } from './commands/segment.js';
import { synthCommand } from './commands/synth.js';
import { trainCommand } from './commands/train.js';

/** The commands, in the order `--help` lists them. */
export const COMMANDS: readonly Command[] = [inspectCommand, convertCommand, segmentCommand, synthCommand, trainCommand, evalCommand];

export const consoleIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function usage(commands: readonly Command[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: webvlsm <command> [arguments]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'options:',
    '  -h, --help     this help; `webvlsm <command> --help` for a command\'s own',
    '  -v, --version  the package version',
    '',
    'exit codes: 0 success, 1 failure (unreadable or corrupt input, refused write), 2 usage error',
  ].join('\n');
}

/** Runs the command line `argv` (without the node and script paths); returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = consoleIo, commands: readonly Command[] = COMMANDS): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined;
    const command = topic === undefined ? undefined : commands.find((c) => c.name === topic);
    if (topic !== undefined && !command) {
      io.err(`webvlsm: unknown command '${topic}'\n\n${usage(commands)}\n`);
      return EXIT_USAGE;
    }
    if (first === undefined) {
      io.err(`${usage(commands)}\n`);
      return EXIT_USAGE;
    }
    io.out(`${command ? command.help : usage(commands)}\n`);
    return EXIT_OK;
  }
  if (first === '-v' || first === '--version') {
    io.out(`webvlsm ${version()}\n`);
    return EXIT_OK;
  }
  const command = commands.find((c) => c.name === first);
  if (!command) {
    const what = first.startsWith('-') ? `unknown option '${first}'` : `unknown command '${first}'`;
    io.err(`webvlsm: ${what}\n\n${usage(commands)}\n`);
    return EXIT_USAGE;
  }
  try {
    return await command.run([...rest], io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`webvlsm ${err.message}\nrun 'webvlsm ${command.name} --help' for usage\n`);
      return EXIT_USAGE;
    }
    const e = err as Error;
    io.err(`webvlsm ${command.name}: ${e?.message ?? String(err)}\n`);
    if (process.env.WEBVLSM_DEBUG && e?.stack) io.err(`${e.stack}\n`);
    return EXIT_FAILURE;
  }
}
