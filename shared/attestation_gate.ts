// The pre-parse gate every attestation token passes before any cryptography (ATTESTATION.md §5.4 step 1), and the
// mapping from jose's errors to stable reason codes. Used by shared/attestation.ts for evidence, connect and AR tokens.
import { errors as joseErrors } from 'jose';

/** Largest token the gate lets through, in characters (jose sets no limit of its own). */
export const MAX_TOKEN_CHARS = 8192;

/** The one header key set every attestation token type uses. */
export const TOKEN_HEADER_KEYS: readonly string[] = Object.freeze(['alg', 'kid', 'typ']);

/** A key id: the RFC 7638 thumbprint is 43 base64url characters; anything else of this alphabet up to 64 is tolerated. */
export const KID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Compact JWS with an Ed25519 signature (64 bytes = 86 base64url characters) and bounded segments. */
export const ED25519_COMPACT_JWS = /^[A-Za-z0-9_-]{10,2048}\.[A-Za-z0-9_-]{10,6000}\.[A-Za-z0-9_-]{86}$/;

/** Any compact JWS whose three segments use only the base64url alphabet (for the public test-vector suites). */
export const ANY_COMPACT_JWS = /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

/** A verdict of the gate: either the parsed header and claims, or the reason the token was refused. */
export type GateResult =
  | { ok: true; header: Record<string, unknown>; payload: Record<string, unknown> | null }
  | { ok: false; reason: GateReason; detail: string };

/** Reason codes of the pre-parse gate. */
export type GateReason =
  | 'gate.type'
  | 'gate.size'
  | 'gate.encoding'
  | 'gate.noncanonical'
  | 'gate.utf8'
  | 'gate.json'
  | 'gate.header';

/** Options of {@link preParseGate}. */
export interface GateOptions {
  /** Regex the whole token must match (segment alphabet, count and lengths). */
  readonly shape: RegExp;
  /** When set, the decoded header's key set must be exactly these keys, `kid` must match {@link KID_PATTERN}. */
  readonly headerKeys?: readonly string[];
  /** Whether the payload must be a canonical JSON object too (true for JWTs; false for the generic JWS suites). */
  readonly jsonPayload: boolean;
  /** Whether header and payload JSON must survive `JSON.stringify(JSON.parse(s)) === s` (no duplicates, no whitespace). */
  readonly canonicalJson: boolean;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function refuse(reason: GateReason, detail: string): GateResult {
  return { ok: false, reason, detail };
}

type DecodedJson = { ok: true; value: Record<string, unknown> } | { ok: false; result: GateResult };

function decodeJsonObject(segment: string, what: string, canonical: boolean): DecodedJson {
  const bytes = Buffer.from(segment, 'base64url');
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return { ok: false, result: refuse('gate.utf8', `${what} is not strict UTF-8`) };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, result: refuse('gate.json', `${what} is not JSON`) };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, result: refuse('gate.json', `${what} is not a JSON object`) };
  }
  if (canonical && JSON.stringify(value) !== text) {
    return {
      ok: false,
      result: refuse(
        'gate.noncanonical',
        `${what} is not canonical JSON (duplicate members, whitespace or escapes)`,
      ),
    };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/**
 * The pre-parse gate: type and size, the token shape regex, canonical base64url of every segment (re-encoding
 * must give the same text), strict UTF-8, JSON objects that round-trip unchanged, and the exact header key set.
 * Pure and synchronous; it never throws.
 */
export function preParseGate(token: unknown, options: GateOptions): GateResult {
  if (typeof token !== 'string') return refuse('gate.type', 'token is not a string');
  if (token.length > MAX_TOKEN_CHARS)
    return refuse('gate.size', `token longer than ${MAX_TOKEN_CHARS} characters`);
  if (!options.shape.test(token))
    return refuse('gate.encoding', 'token is not compact JWS of the expected shape');
  const segments = token.split('.');
  for (const segment of segments) {
    if (Buffer.from(segment, 'base64url').toString('base64url') !== segment) {
      return refuse('gate.noncanonical', 'a segment is not canonical base64url');
    }
  }
  const [headerSegment, payloadSegment] = segments as [string, string, string];
  const header = decodeJsonObject(headerSegment, 'header', options.canonicalJson);
  if (!header.ok) return header.result;
  if (options.headerKeys !== undefined) {
    const keys = Object.keys(header.value).sort();
    const expected = [...options.headerKeys].sort();
    if (keys.length !== expected.length || keys.some((key, i) => key !== expected[i])) {
      return refuse('gate.header', `header members must be exactly {${expected.join(', ')}}`);
    }
    const kid = header.value.kid;
    if (typeof kid !== 'string' || !KID_PATTERN.test(kid)) {
      return refuse('gate.header', 'kid must be 1-64 base64url characters');
    }
  }
  if (!options.jsonPayload) return { ok: true, header: header.value, payload: null };
  const payload = decodeJsonObject(payloadSegment, 'claims', options.canonicalJson);
  if (!payload.ok) return payload.result;
  return { ok: true, header: header.value, payload: payload.value };
}

/** Claim names whose jose validation failures get their own reason code `claims.<name>`. */
const NAMED_CLAIMS = new Set([
  'typ',
  'iss',
  'sub',
  'aud',
  'exp',
  'iat',
  'nbf',
  'jti',
  'sid',
  'eat_nonce',
  'eat_profile',
  'ueid',
  'meas',
  'swname',
  'swversion',
  'dbgstat',
  'uptime',
  'submods',
  'cnf',
]);

/**
 * Maps anything `jwtVerify`/`compactVerify` threw to a stable reason code. Unknown JOSE errors become
 * `jose.error`; anything that is not a JOSE error (a TypeError for an HMAC key mix-up, a WebCrypto
 * DOMException) becomes `internal.exception`, so the caller fails closed with a reason.
 */
export function joseReason(error: unknown): string {
  if (error instanceof joseErrors.JWTClaimValidationFailed || error instanceof joseErrors.JWTExpired) {
    return NAMED_CLAIMS.has(error.claim) ? `claims.${error.claim}` : 'claims.invalid';
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'jose.alg';
  if (error instanceof joseErrors.JOSENotSupported) return 'jose.unsupported';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'jose.signature';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'jose.no_key';
  if (error instanceof joseErrors.JWKSMultipleMatchingKeys) return 'jose.multiple_keys';
  if (error instanceof joseErrors.JWSInvalid) return 'jose.jws_invalid';
  if (error instanceof joseErrors.JWTInvalid) return 'jose.jwt_invalid';
  if (error instanceof joseErrors.JWKInvalid || error instanceof joseErrors.JWKSInvalid)
    return 'jose.key_invalid';
  if (error instanceof joseErrors.JOSEError) return 'jose.error';
  return 'internal.exception';
}
