/**
 * What every `webvlsm` sub-command implements, and the helpers they share (argument parsing,
 * output, exit codes). To add a command: write src/cli/commands/<name>.ts exporting a Command and
 * add it to COMMANDS in src/cli/webvlsm.ts.
 *
 * Exit codes: 0 success, 1 the command failed (unreadable or corrupt input, refused overwrite, ...),
 * 2 usage error (unknown command or option, wrong number of arguments).
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Where a command writes; tests capture it, the binary writes to stdout / stderr. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Usage line(s) and option descriptions, printed by `webvlsm <name> --help`. */
  help: string;
  /** Runs with the arguments after the command name; returns the exit code. */
  run(args: string[], io: CliIo): Promise<number>;
}

/** A problem with the command line (exit code 2, printed with a pointer to --help). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs (strict), with its errors turned into UsageErrors; `--help` is always accepted. */
export function parseCommandArgs<O extends Options>(
  command: string,
  args: string[],
  options: O,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}`);
  }
}

/** 1234567 -> '1,234,567'. */
export function formatCount(n: number | bigint): string {
  return n.toLocaleString('en-US');
}
