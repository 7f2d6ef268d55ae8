// Environment parsing shared by every service: a zod schema per service, every bad variable listed at once.
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
