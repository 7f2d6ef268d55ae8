// What every `agenthub` sub-command receives: its arguments and the process streams, so commands are
// plain functions that tests call directly.

/** Input and output of one CLI command run. */
export interface CliIo {
  /** Arguments after the command words, e.g. for `agenthub analyze roi --input x.csv` → `['--input', 'x.csv']`. */
  readonly argv: readonly string[];
  /** Environment (the only place commands read it). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Working directory relative paths resolve against. */
  readonly cwd: string;
  /** Writes to standard output (the command adds its own newlines). */
  stdout(text: string): void;
  /** Writes to standard error. */
  stderr(text: string): void;
  /** Aborted on Ctrl-C. */
  readonly signal: AbortSignal;
}

/** A CLI command: resolves to the process exit code (0 success, 1 failure, 2 usage error). */
export type CliCommand = (io: CliIo) => Promise<number>;
