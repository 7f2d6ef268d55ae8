// The API key shared by the hub's and the spokes' HTTP APIs: loading it from its setting or file, and checking
// `Authorization: Bearer <key>` in constant time.
import { hash, timingSafeEqual } from 'node:crypto';
import { readConfigText } from './config.js';
import { AppError } from './errors.js';

function digest(value: string): Buffer {
  return hash('sha256', value, 'buffer');
}

/**
 * A matcher of `Authorization` header values against `apiKey`: `Bearer <key>`, compared as SHA-256 digests in
 * constant time (so neither the key nor its length leaks through timing).
 */
export function apiKeyMatcher(apiKey: string): (header: string | undefined) => boolean {
  const expected = digest(apiKey);
  return (header) => {
    const match = typeof header === 'string' ? /^Bearer ([^\s]{1,512})$/.exec(header) : null;
    const presented = match?.[1];
    return presented !== undefined && timingSafeEqual(digest(presented), expected);
  };
}

/** The message of an UNAUTHORIZED answer. */
export const API_KEY_REQUIRED = 'missing or wrong API key (Authorization: Bearer <api key>)';

/**
 * The API key: `value` when set, else the trimmed contents of `file`, else undefined. CONFIG_INVALID when the
 * file cannot be read or the key is shorter than 16 characters; `what` names the key in those messages.
 */
export async function loadApiKey(value: string | undefined, file: string, what: string): Promise<string>;
export async function loadApiKey(
  value: string | undefined,
  file: string | undefined,
  what: string,
): Promise<string | undefined>;
export async function loadApiKey(
  value: string | undefined,
  file: string | undefined,
  what: string,
): Promise<string | undefined> {
  const key = value ?? (file === undefined ? undefined : (await readConfigText(file, `${what} file`)).trim());
  if (key !== undefined && key.length < 16)
    throw new AppError('CONFIG_INVALID', `the ${what} must have at least 16 characters`);
  return key;
}
