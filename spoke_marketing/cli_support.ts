// Plumbing shared by the marketing spoke's CLI commands: strict option parsing with --help and usage errors,
// the `error [CODE]: …` failure line, opening the spoke model, and reaching an embedded database through the
// process that owns it.
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { CliIo } from '../shared/cli/io.js';
import { errorMessage, isAppError } from '../shared/errors.js';
import type { LlmClient } from '../shared/llm_client.js';

/** Prints the problem and the usage to stderr; exit code 2. */
export function usageError(io: CliIo, usage: string, problem: string): number {
  io.stderr(`error: ${problem}\n${usage}\n`);
  return 2;
}

/** Prints `error [CODE]: message` to stderr; exit code 1. */
export function failure(io: CliIo, error: unknown): number {
  const message = errorMessage(error);
  const code = isAppError(error) ? ` [${error.code}]` : '';
  io.stderr(`error${code}: ${message}\n`);
  return 1;
}

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

type CommandOptions = NonNullable<ParseArgsConfig['options']>;
type CommandArgs<O extends CommandOptions, P extends boolean> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O & typeof HELP_OPTION; allowPositionals: P; strict: true }>
>;

/**
 * Strict `parseArgs` over `io.argv` with `--help`/`-h` added: the parsed arguments, or the exit code once the
 * usage has been printed (0 for --help, 2 for a parse error).
 */
export function parseCommandArgs<const O extends CommandOptions, const P extends boolean = false>(
  io: CliIo,
  usage: string,
  options: O,
  allowPositionals?: P,
): CommandArgs<O, P> | number {
  let parsed: CommandArgs<O, P>;
  try {
    parsed = parseArgs({
      args: [...io.argv],
      options: { ...options, ...HELP_OPTION },
      allowPositionals: allowPositionals ?? false,
      strict: true,
    }) as CommandArgs<O, P>;
  } catch (error) {
    return usageError(io, usage, errorMessage(error));
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    io.stdout(`${usage}\n`);
    return 0;
  }
  return parsed;
}

/** Opens the spoke model: `hf:` URIs as given, paths from the cwd; AGENT_MAX_MEMORY_MB caps its memory. */
export async function openSpokeModel(io: CliIo, stateDir: string, setting: string): Promise<LlmClient> {
  const { openLlm } = await import('../shared/llm.js');
  const memory = io.env.AGENT_MAX_MEMORY_MB;
  return openLlm({
    model: setting.startsWith('hf:') ? setting : resolve(io.cwd, setting),
    cacheDir: join(stateDir, 'models'),
    ...(memory === undefined ? {} : { maxMemoryMb: Number(memory) }),
  });
}

/**
 * Runs `open(undefined)`; when that fails with CONFLICT because a live process (the spoke) owns the embedded
 * `dataDir`, notes it and runs `open(ownerConnectionString)` instead, since a second PGlite on the same
 * directory would corrupt it.
 */
export async function openThroughOwner<T>(
  io: CliIo,
  dataDir: string,
  open: (ownerConnectionString: string | undefined) => Promise<T>,
): Promise<T> {
  try {
    return await open(undefined);
  } catch (error) {
    if (!isAppError(error, 'CONFLICT')) throw error;
    const owner = error.details?.ownerConnectionString;
    if (typeof owner !== 'string') throw error;
    io.stderr(`note: ${dataDir} is owned by process ${String(error.details?.ownerPid)}; going through it\n`);
    return open(owner);
  }
}
