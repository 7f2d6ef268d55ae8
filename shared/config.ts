// Environment parsing shared by every service: a zod schema per service, every bad variable listed at once.
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { AppError } from './errors.js';

/**
 * Parses `env` with `schema` and returns a frozen config object. On failure throws `CONFIG_INVALID` whose
 * message names every bad variable and why, so an operator fixes them all in one go.
 */
export function loadConfig<S extends z.ZodTypeAny>(
  schema: S,
  env: Record<string, string | undefined>,
): z.infer<S> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = issue.path.join('.') || '(environment)';
      return `${name}: ${issue.message}`;
    });
    throw new AppError('CONFIG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`, {
      details: { problems },
    });
  }
  return Object.freeze(result.data) as z.infer<S>;
}

/** Reads a configuration file (key, trust store, API key…); CONFIG_INVALID names the file and what it is. */
export async function readConfigText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', `cannot read ${what} ${path}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

/** Reads and parses a JSON configuration file; CONFIG_INVALID when it cannot be read or is not JSON. */
export async function readConfigJson(path: string, what: string): Promise<unknown> {
  const text = await readConfigText(path, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', `${what} ${path} is not JSON`, { cause });
  }
}
