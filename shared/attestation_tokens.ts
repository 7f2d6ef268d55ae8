// Identities, reason codes, signing keys and the shared verify step (gate → jose) of every attestation token, and the
// hub → spoke WebSocket connect token. Evidence, appraisal and attestation results build on this in attestation.ts.
import { randomBytes } from 'node:crypto';
import {
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type CryptoKey,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { z } from 'zod';
import { AppError } from './errors.js';
import { ED25519_COMPACT_JWS, TOKEN_HEADER_KEYS, joseReason, preParseGate } from './attestation_gate.js';
import { PRIVATE_JWK_MEMBERS, SPOKE_NAME_PATTERN } from './attestation_policy.js';

/** The hub's SPIFFE-style identity: `aud` of evidence, `iss` of connect tokens and attestation results. */
export const HUB_ID = 'spiffe://agenthub.internal/hub';

/** Prefix of every spoke identity. */
export const SPOKE_ID_PREFIX = 'spiffe://agenthub.internal/spoke/';

/** `typ` of the hub → spoke WebSocket connect token. */
export const CONNECT_TYP = 'hub-connect+jwt';
/** `typ` of spoke evidence. */
export const EVIDENCE_TYP = 'spoke-evidence+jwt';
/** `typ` of the hub's attestation-result token. */
export const AR_TYP = 'spoke-ar+jwt';
/** `eat_profile` of evidence. */
export const EVIDENCE_PROFILE = 'tag:agenthub.internal,2026:evidence/v1';
/** `eat_profile` of attestation results. */
export const AR_PROFILE = 'tag:agenthub.internal,2026:ar/v1';

/** Connect token lifetime (s). */
export const CONNECT_TOKEN_LIFETIME_S = 30;
/** Evidence lifetime and `maxTokenAge` (s). */
export const EVIDENCE_LIFETIME_S = 60;
/** Attestation-result lifetime (s). */
export const AR_LIFETIME_S = 300;
/** Clock tolerance for every token (s); hub and spokes share the host clock. */
export const CLOCK_TOLERANCE_S = 5;
/** Default nonce lifetime (ms). */
export const NONCE_TTL_MS = 30_000;
/** Most outstanding nonces per spoke; issuing another evicts the oldest. */
export const MAX_OUTSTANDING_NONCES = 2;

/** A session id as the hub mints it: 1–128 characters of `[A-Za-z0-9._:-]`. */
export const SID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** A nonce as issued by the hub: 32 bytes of base64url. */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** A jti: 22–64 base64url characters. */
export const JTI_PATTERN = /^[A-Za-z0-9_-]{22,64}$/;
/** 64 lower-case hex characters. */
export const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Every reason code `appraise()` (and, where marked, connect-token or AR verification) can report. Callers act on
 * these strings; they are stable.
 */
export const REASON_CODES = Object.freeze({
  'spoke.unknown': 'the spoke is not in the trust store',
  'session.invalid': 'the session id given to appraise() is not a valid sid',
  'gate.type': 'the token is not a string',
  'gate.size': 'the token is longer than 8192 characters',
  'gate.encoding':
    'the token does not match the compact-JWS shape (alphabet, 3 segments, 86-char Ed25519 signature)',
  'gate.noncanonical': 'a segment is not canonical base64url, or header/claims JSON does not round-trip',
  'gate.utf8': 'header or claims are not strict UTF-8',
  'gate.json': 'header or claims are not a JSON object',
  'gate.header': 'header members are not exactly {alg, typ, kid}, or kid is malformed',
  'jose.alg': 'alg is not Ed25519',
  'jose.unsupported': 'jose does not support something the token asks for',
  'jose.signature': 'the signature does not verify',
  'jose.no_key': "no key in this spoke's keyset matches the kid",
  'jose.multiple_keys': 'more than one key matches',
  'jose.jws_invalid': 'jose refused the JWS structure',
  'jose.jwt_invalid': 'jose refused the claims set',
  'jose.key_invalid': 'jose refused the key set',
  'jose.error': 'another jose error',
  'internal.exception': 'a non-JOSE exception (TypeError, DOMException…) during verification: fail closed',
  'claims.typ': 'typ header differs from the token type',
  'claims.iss': 'iss is not the expected issuer',
  'claims.sub': 'sub is not the expected subject',
  'claims.aud': 'aud is not exactly the expected single audience',
  'claims.exp': 'exp missing, expired, not an integer or out of range',
  'claims.iat': 'iat missing, in the future, too old or not an integer',
  'claims.nbf': 'nbf in the future (nbf is not part of the profiles)',
  'claims.jti': 'jti missing or not 22–64 base64url characters',
  'claims.sid': "sid missing, malformed, or not the session's sid",
  'claims.eat_nonce': 'eat_nonce missing or not one 43-character base64url string',
  'claims.eat_profile': 'eat_profile missing or unknown',
  'claims.ueid': 'ueid missing or malformed',
  'claims.swname': 'swname malformed',
  'claims.swversion': 'swversion malformed',
  'claims.dbgstat': 'dbgstat malformed',
  'claims.uptime': 'uptime malformed',
  'claims.unknown': 'a claim outside the profile',
  'claims.invalid': 'another claim check failed',
  'claims.lifetime': 'exp − iat exceeds the profile lifetime',
  'meas.schema': 'meas is missing a component, has an extra one, or a digest/alg is malformed',
  'nonce.unknown': 'the nonce was never issued (or was evicted)',
  'nonce.replayed': 'the nonce was already used',
  'nonce.spoke': 'the nonce was issued to another spoke',
  'nonce.sid': 'the nonce was issued for another session',
  'nonce.expired': 'the nonce is older than its TTL',
  'policy.no_reference': 'the reference values have no entry for this spoke',
  'policy.expired': "the spoke's reference values have expired",
  'meas.model.mismatch': 'model digest or size is not an allowed value',
  'meas.code.mismatch': 'code digest is not an allowed value',
  'meas.deps.mismatch': 'dependency digest is not an allowed value',
  'meas.image.mismatch': 'image digest is not an allowed value (only when the reference lists images)',
  'config.digest.invalid': 'meas.config.digest is not the digest of the reported facts',
  'config.mem_max.mismatch': 'memory.max differs from the reference',
  'config.agent_max_memory.mismatch': 'AGENT_MAX_MEMORY_MB differs from the reference',
  'config.uid.mismatch': 'uid differs from the reference',
  'config.inspector.enabled': 'the Node inspector is active',
  'dbgstat.enabled': 'the evidence says debugging is enabled',
  'connect.missing': 'connect token: no token presented',
  'connect.replayed': 'connect token: jti already used',
  'connect.jti_cache_full': 'connect token: too many unexpired jtis to remember, refused to stay single-use',
  'ar.sid': 'attestation result: issued for another session',
  'ar.submods': 'attestation result: submods do not name exactly the expected spoke, or are malformed',
  'ar.cnf': 'attestation result: cnf is not {jkt: <thumbprint>}',
  'ar.status': 'attestation result: status is not affirming',
  'ar.policy': 'attestation result: appraisal policy id differs from the expected one',
} as const);

/** One of {@link REASON_CODES}. */
export type ReasonCode = keyof typeof REASON_CODES;

/** A spoke's SPIFFE-style id. Throws BAD_REQUEST for a name outside `^[a-z][a-z0-9-]{0,31}$`. */
export function spokeIdOf(name: string): string {
  if (typeof name !== 'string' || !SPOKE_NAME_PATTERN.test(name)) {
    throw new AppError(
      'BAD_REQUEST',
      `invalid spoke name ${JSON.stringify(name)}: must match ${SPOKE_NAME_PATTERN}`,
    );
  }
  return `${SPOKE_ID_PREFIX}${name}`;
}

/** Throws BAD_REQUEST unless `sid` matches {@link SID_PATTERN}. */
export function assertSid(sid: string): void {
  if (typeof sid !== 'string' || !SID_PATTERN.test(sid)) {
    throw new AppError('BAD_REQUEST', `invalid session id: must match ${SID_PATTERN}`);
  }
}

/** A fresh random jti (16 bytes, base64url). */
export function randomJti(): string {
  return randomBytes(16).toString('base64url');
}

/** `now` in whole seconds since the epoch. */
export function epochSeconds(now: Date): number {
  return Math.floor(now.getTime() / 1000);
}

// ---------------------------------------------------------------------------------------------------- keys

/** An Ed25519 signing key: the non-extractable private CryptoKey and its public JWK. */
export interface SigningKey {
  /** RFC 7638 thumbprint of the public key. */
  readonly kid: string;
  /** Non-extractable private key. */
  readonly privateKey: CryptoKey;
  /** Public JWK with `kid`, `alg: "Ed25519"` and `use: "sig"`. */
  readonly publicJwk: JWK;
}

/** A new private Ed25519 JWK (with `kid`, `alg: "Ed25519"`, `use: "sig"`), meant to be written to a 0600 file. */
export async function generateSigningKeyJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('Ed25519', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x } as JWK, 'sha256');
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d, kid, alg: 'Ed25519', use: 'sig' };
}

const privateEd25519Jwk = z
  .object({
    kty: z.literal('OKP'),
    crv: z.literal('Ed25519'),
    x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    d: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    kid: z.string().optional(),
    alg: z.literal('Ed25519').optional(),
    use: z.literal('sig').optional(),
  })
  .passthrough();

/**
 * Imports a private Ed25519 JWK as a non-extractable signing key. Throws CONFIG_INVALID when the JWK is not a
 * private Ed25519 key, its `kid` is not its thumbprint, or `x` does not belong to `d`.
 */
export async function importSigningKey(privateJwk: JWK): Promise<SigningKey> {
  const parsed = privateEd25519Jwk.safeParse(privateJwk);
  if (!parsed.success) throw new AppError('CONFIG_INVALID', 'signing key is not a private Ed25519 JWK');
  const { kty, crv, x, d } = parsed.data;
  const publicPart = { kty, crv, x };
  const kid = await calculateJwkThumbprint(publicPart, 'sha256');
  if (parsed.data.kid !== undefined && parsed.data.kid !== kid) {
    throw new AppError('CONFIG_INVALID', 'signing key kid is not its RFC 7638 thumbprint');
  }
  let privateKey: CryptoKey;
  let publicKey: CryptoKey;
  try {
    // WebCrypto itself refuses a private JWK whose x does not belong to d (DataError).
    privateKey = (await importJWK({ kty, crv, x, d }, 'Ed25519', { extractable: false })) as CryptoKey;
    publicKey = (await importJWK(publicPart, 'Ed25519')) as CryptoKey;
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', 'signing key: not a usable Ed25519 key pair', { cause });
  }
  const probe = new TextEncoder().encode('agenthub key probe');
  const signature = await crypto.subtle.sign('Ed25519', privateKey, probe);
  if (!(await crypto.subtle.verify('Ed25519', publicKey, signature, probe))) {
    throw new AppError('CONFIG_INVALID', 'signing key: public part x does not match private part d');
  }
  return Object.freeze({
    kid,
    privateKey,
    publicJwk: Object.freeze({ ...publicPart, kid, alg: 'Ed25519', use: 'sig' }),
  });
}

/** The public JWKS of `keys` (for `GET /.well-known/jwks.json`, the trust store, the spokes' pinned hub JWKS). */
export function publicJwks(keys: readonly SigningKey[]): { keys: JWK[] } {
  return { keys: keys.map((key) => ({ ...key.publicJwk })) };
}

// ------------------------------------------------------------------------------------------ shared verifying

/**
 * `createLocalJWKSet` that refuses a malformed key set, or one holding private or symmetric key members, with
 * CONFIG_INVALID at creation instead of a jose error at the first lookup.
 */
export function localKeySet(jwks: { keys: JWK[] }, what: string): JWTVerifyGetKey {
  // jose only refuses private members when a key is looked up; refuse them here, at start-up.
  const keys: unknown = (jwks as { keys?: unknown } | null)?.keys;
  if (
    !Array.isArray(keys) ||
    keys.some((k) => typeof k !== 'object' || k === null || PRIVATE_JWK_MEMBERS.some((m) => m in k))
  ) {
    throw new AppError('CONFIG_INVALID', `${what} must be {keys: [...]} of public keys only`);
  }
  try {
    return createLocalJWKSet(jwks);
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', `${what} is not a usable public JWKS`, { cause });
  }
}

/** Outcome of a verification step: a value or reason codes. */
export type Verdict<T> = { ok: true; value: T } | { ok: false; reasons: string[] };

/** Maps zod issues to reason codes: `claims.<claim>`, `claims.unknown`, or the special code of a structured claim. */
export function reasonsFromZod(error: z.ZodError, structured: Readonly<Record<string, string>>): string[] {
  const reasons = new Set<string>();
  for (const issue of error.issues) {
    const head = issue.path[0];
    const special =
      typeof head === 'string' && Object.hasOwn(structured, head) ? structured[head] : undefined;
    if (head === undefined && issue.code === 'unrecognized_keys') reasons.add('claims.unknown');
    else if (special !== undefined) reasons.add(special);
    else if (typeof head === 'string' && `claims.${head}` in REASON_CODES) reasons.add(`claims.${head}`);
    else reasons.add('claims.invalid');
  }
  return [...reasons];
}

/** Token-type specific jose options of {@link gateAndVerify}. */
export interface VerifyOptions {
  typ: string;
  issuer: string;
  audience: string;
  subject?: string;
  requiredClaims: string[];
  maxTokenAge: number;
  now: Date;
}

/**
 * The shared first two layers for every token type: the pre-parse gate (Ed25519 shape, header exactly {alg, typ, kid},
 * canonical JSON), then `jwtVerify` with only `keys`, `algorithms: ['Ed25519']`, clock tolerance 5 s. Never throws.
 */
export async function gateAndVerify(
  token: unknown,
  keys: JWTVerifyGetKey,
  options: VerifyOptions,
): Promise<Verdict<{ header: Record<string, unknown>; payload: Record<string, unknown> }>> {
  const gate = preParseGate(token, {
    shape: ED25519_COMPACT_JWS,
    headerKeys: TOKEN_HEADER_KEYS,
    jsonPayload: true,
    canonicalJson: true,
  });
  if (!gate.ok) return { ok: false, reasons: [gate.reason] };
  try {
    const { payload, protectedHeader } = await jwtVerify(token as string, keys, {
      algorithms: ['Ed25519'],
      typ: options.typ,
      issuer: options.issuer,
      audience: options.audience,
      ...(options.subject === undefined ? {} : { subject: options.subject }),
      requiredClaims: options.requiredClaims,
      maxTokenAge: options.maxTokenAge,
      clockTolerance: CLOCK_TOLERANCE_S,
      currentDate: options.now,
    });
    return { ok: true, value: { header: protectedHeader as Record<string, unknown>, payload } };
  } catch (error) {
    return { ok: false, reasons: [joseReason(error)] };
  }
}

/** An integer NumericDate (no floats, no 1e308). */
export const epochInt = z.number().int().nonnegative().safe();

// --------------------------------------------------------------------------------------------- connect tokens

/** Signs the hub → spoke WebSocket connect token (`hub-connect+jwt`, 30 s, single-use jti, bound to `sid`). */
export async function signConnectToken(
  hubKey: SigningKey,
  spokeName: string,
  sid: string,
  now = new Date(),
): Promise<string> {
  const audience = spokeIdOf(spokeName);
  assertSid(sid);
  const iat = epochSeconds(now);
  return new SignJWT({ sid })
    .setProtectedHeader({ alg: 'Ed25519', typ: CONNECT_TYP, kid: hubKey.kid })
    .setIssuer(HUB_ID)
    .setAudience(audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + CONNECT_TOKEN_LIFETIME_S)
    .setJti(randomJti())
    .sign(hubKey.privateKey);
}

/** Verifies connect tokens on the spoke side; remembers every accepted jti until it expires. */
export interface ConnectTokenVerifier {
  /**
   * Returns the session id of a valid, unused token. Throws AppError UNAUTHORIZED whose message says why and whose
   * `details.reason` is the reason code (`connect.missing`, `connect.replayed`, `claims.exp`, `claims.aud`,
   * `jose.signature`, `gate.*` …).
   */
  verify(token: string | undefined, now?: Date): Promise<{ sid: string }>;
}

const connectClaims = z
  .object({
    sid: z.string().regex(SID_PATTERN),
    iss: z.string(),
    aud: z.string(),
    iat: epochInt,
    exp: epochInt,
    jti: z.string().regex(JTI_PATTERN),
  })
  .strict();

/** Largest number of unexpired connect-token jtis a spoke remembers; beyond it tokens are refused (fail closed). */
export const MAX_REMEMBERED_JTIS = 4096;

/** AppError UNAUTHORIZED naming the reason code, with `details.reason`. */
export function unauthorized(what: string, reason: string): AppError {
  const text = REASON_CODES[reason as ReasonCode] ?? reason;
  return new AppError('UNAUTHORIZED', `${what} rejected: ${reason} (${text})`, { details: { reason } });
}

/** Creates the spoke's connect-token verifier over the pinned hub JWKS, for tokens addressed to `spokeName`. */
export function createConnectTokenVerifier(
  hubJwks: { keys: JWK[] },
  spokeName: string,
): ConnectTokenVerifier {
  const audience = spokeIdOf(spokeName);
  const keys = localKeySet(hubJwks, 'hub JWKS');
  const seen = new Map<string, number>();
  return {
    async verify(token, now = new Date()) {
      if (token === undefined || token === '') throw unauthorized('connect token', 'connect.missing');
      const verdict = await gateAndVerify(token, keys, {
        typ: CONNECT_TYP,
        issuer: HUB_ID,
        audience,
        requiredClaims: ['exp', 'iat', 'jti', 'sid'],
        maxTokenAge: CONNECT_TOKEN_LIFETIME_S,
        now,
      });
      if (!verdict.ok) throw unauthorized('connect token', verdict.reasons[0] as string);
      const claims = connectClaims.safeParse(verdict.value.payload);
      if (!claims.success) throw unauthorized('connect token', reasonsFromZod(claims.error, {})[0] as string);
      if (claims.data.exp - claims.data.iat > CONNECT_TOKEN_LIFETIME_S) {
        throw unauthorized('connect token', 'claims.lifetime');
      }
      // Synchronous from here: check-and-remember cannot interleave with another verify().
      const nowMs = now.getTime();
      for (const [jti, until] of seen) if (until < nowMs) seen.delete(jti);
      if (seen.has(claims.data.jti)) throw unauthorized('connect token', 'connect.replayed');
      if (seen.size >= MAX_REMEMBERED_JTIS) throw unauthorized('connect token', 'connect.jti_cache_full');
      seen.set(claims.data.jti, (claims.data.exp + CLOCK_TOLERANCE_S) * 1000);
      return { sid: claims.data.sid };
    },
  };
}
