// The API key check shared by the hub's and the spokes' HTTP APIs: `Authorization: Bearer <key>` compared in
// constant time.
import { hash, timingSafeEqual } from 'node:crypto';

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
