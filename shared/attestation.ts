// Software attestation between hub (verifier, relying party) and spokes (attesters), ATTESTATION.md §5: spoke evidence,
// the hub's appraisal pipeline with its nonce store, and attestation-result tokens. Keys, identities and connect tokens
// live in attestation_tokens.ts, policy files in attestation_policy.ts, the pre-parse gate in attestation_gate.ts; all
// are re-exported here, so callers import from this file only.
import { randomBytes } from 'node:crypto';
import { SignJWT, type JWK, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { AppError } from './errors.js';
import { compareWithReference, type ReferenceValues, type TrustStore } from './attestation_policy.js';
import {
  AR_LIFETIME_S,
  AR_PROFILE,
  AR_TYP,
  EVIDENCE_LIFETIME_S,
  EVIDENCE_PROFILE,
  EVIDENCE_TYP,
  HEX64,
  HUB_ID,
  JTI_PATTERN,
  MAX_OUTSTANDING_NONCES,
  NONCE_PATTERN,
  NONCE_TTL_MS,
  SID_PATTERN,
  assertSid,
  epochInt,
  epochSeconds,
  gateAndVerify,
  localKeySet,
  randomJti,
  reasonsFromZod,
  spokeIdOf,
  unauthorized,
  type SigningKey,
} from './attestation_tokens.js';
import { inspectorActive, type Measurements } from './measure.js';

export type { JWK } from 'jose';
export {
  ANY_COMPACT_JWS,
  ED25519_COMPACT_JWS,
  KID_PATTERN,
  MAX_TOKEN_CHARS,
  TOKEN_HEADER_KEYS,
  joseReason,
  preParseGate,
  type GateOptions,
  type GateReason,
  type GateResult,
} from './attestation_gate.js';
export {
  PRIVATE_JWK_MEMBERS,
  SPOKE_NAME_PATTERN,
  compareWithReference,
  ed25519Thumbprint,
  parseReferenceValues,
  parseTrustStore,
  referenceEntryFor,
  type ReferenceValues,
  type SpokeReferenceValues,
  type TrustStore,
  type TrustedSpoke,
} from './attestation_policy.js';
export {
  AR_LIFETIME_S,
  AR_PROFILE,
  AR_TYP,
  CLOCK_TOLERANCE_S,
  CONNECT_TOKEN_LIFETIME_S,
  CONNECT_TYP,
  EVIDENCE_LIFETIME_S,
  EVIDENCE_PROFILE,
  EVIDENCE_TYP,
  HUB_ID,
  MAX_OUTSTANDING_NONCES,
  MAX_REMEMBERED_JTIS,
  NONCE_TTL_MS,
  REASON_CODES,
  SID_PATTERN,
  SPOKE_ID_PREFIX,
  createConnectTokenVerifier,
  generateSigningKeyJwk,
  importSigningKey,
  publicJwks,
  signConnectToken,
  spokeIdOf,
  type ConnectTokenVerifier,
  type ReasonCode,
  type SigningKey,
} from './attestation_tokens.js';

// ------------------------------------------------------------------------------------------------- evidence

/** What a spoke puts into its evidence. */
export interface EvidenceInput {
  spokeName: string;
  /** The hub's nonce, echoed as `eat_nonce`. */
  nonce: string;
  /** The spoke's live authenticated hub session; the spoke MUST sign only for that sid (defeats relays). */
  sid: string;
  measurements: Measurements;
  /** {@link newUeid} of this process. */
  ueid: string;
  swname: string;
  swversion: string;
  dbgstat: 'enabled' | 'disabled';
  uptimeSeconds: number;
}

let processUeid: string | undefined;

/** This process's UEID: base64url(0x01 ‖ 16 random bytes), made once per process; a change means a restart. */
export function newUeid(): string {
  processUeid ??= Buffer.concat([Buffer.from([0x01]), randomBytes(16)]).toString('base64url');
  return processUeid;
}

/**
 * `enabled` when the inspector is open or `--inspect*` appears in execArgv or NODE_OPTIONS. Never claims
 * "disabled since boot": on Node 20 SIGUSR1 can open the inspector later.
 */
export function debugStatus(): 'enabled' | 'disabled' {
  return inspectorActive() ? 'enabled' : 'disabled';
}

function measClaim(m: Measurements): Measurements {
  const facts = m.config.facts;
  return {
    model: { alg: m.model.alg, digest: m.model.digest, size: m.model.size },
    code: { alg: m.code.alg, digest: m.code.digest },
    deps: { alg: m.deps.alg, digest: m.deps.digest },
    config: {
      alg: m.config.alg,
      digest: m.config.digest,
      facts: {
        mem_max_bytes: facts.mem_max_bytes,
        agent_max_memory_mb: facts.agent_max_memory_mb,
        uid: facts.uid,
        inspector: facts.inspector,
      },
    },
    image: { alg: m.image.alg, digest: m.image.digest, selfReported: true },
  };
}

/** Signs evidence (`spoke-evidence+jwt`, profile evidence/v1, `exp = iat + 60`). */
export async function signEvidence(
  spokeKey: SigningKey,
  input: EvidenceInput,
  now = new Date(),
): Promise<string> {
  const spokeId = spokeIdOf(input.spokeName);
  assertSid(input.sid);
  if (!NONCE_PATTERN.test(input.nonce))
    throw new AppError('BAD_REQUEST', 'nonce must be 43 base64url characters');
  const iat = epochSeconds(now);
  return new SignJWT({
    eat_nonce: input.nonce,
    eat_profile: EVIDENCE_PROFILE,
    sid: input.sid,
    ueid: input.ueid,
    swname: input.swname,
    swversion: [input.swversion],
    dbgstat: input.dbgstat,
    uptime: Math.max(0, Math.floor(input.uptimeSeconds)),
    meas: measClaim(input.measurements),
  })
    .setProtectedHeader({ alg: 'Ed25519', typ: EVIDENCE_TYP, kid: spokeKey.kid })
    .setIssuer(spokeId)
    .setSubject(spokeId)
    .setAudience(HUB_ID)
    .setIssuedAt(iat)
    .setExpirationTime(iat + EVIDENCE_LIFETIME_S)
    .setJti(randomJti())
    .sign(spokeKey.privateKey);
}

const digestSchema = z.object({ alg: z.literal('sha-256'), digest: z.string().regex(HEX64) }).strict();
const measSchema = z
  .object({
    model: digestSchema.extend({ size: z.number().int().nonnegative().safe() }).strict(),
    code: digestSchema,
    deps: digestSchema,
    config: digestSchema
      .extend({
        facts: z
          .object({
            mem_max_bytes: z.number().int().nonnegative().safe().nullable(),
            agent_max_memory_mb: z.number().int().nonnegative().safe().nullable(),
            uid: z.number().int().min(-1).safe(),
            inspector: z.boolean(),
          })
          .strict(),
      })
      .strict(),
    image: digestSchema.extend({ selfReported: z.literal(true) }).strict(),
  })
  .strict();

/** The registered claims evidence and attestation results both carry (jose has checked iss, sub, aud, exp, iat). */
const registeredClaims = {
  iss: z.string(),
  sub: z.string(),
  aud: z.string(),
  iat: epochInt,
  exp: epochInt,
  jti: z.string().regex(JTI_PATTERN),
};

const evidenceClaims = z
  .object({
    ...registeredClaims,
    eat_nonce: z.string().regex(NONCE_PATTERN),
    eat_profile: z.literal(EVIDENCE_PROFILE),
    sid: z.string().regex(SID_PATTERN),
    ueid: z
      .string()
      .regex(/^[A-Za-z0-9_-]{23}$/)
      .refine((u) => Buffer.from(u, 'base64url')[0] === 0x01, 'ueid must be a random-type UEID (0x01)'),
    swname: z.string().regex(/^[A-Za-z0-9._@/+-]{1,64}$/),
    swversion: z.tuple([z.string().regex(/^[A-Za-z0-9.+_-]{1,32}$/)]),
    dbgstat: z.enum(['enabled', 'disabled']),
    uptime: epochInt,
    meas: measSchema,
  })
  .strict();

// ------------------------------------------------------------------------------------------------ appraisal

/** Outcome of one appraisal. */
export type AttestationStatus = 'affirming' | 'contraindicated';

/** What `appraise()` found. Reasons are {@link ReasonCode}s; empty exactly when the status is affirming. */
export interface AppraisalResult {
  status: AttestationStatus;
  reasons: string[];
  /** The evidence key's kid (only once the signature verified). */
  kid?: string;
  /** The evidence jti (for the audit log; never the raw token). */
  jti?: string;
  ueid?: string;
  measurements?: Measurements;
  appraisedAt: Date;
  /** The policy id the evidence was appraised under. */
  policyId: string;
}

/** The hub's verifier: issues nonces and appraises evidence against the trust store and reference values. */
export interface Appraiser {
  /** SHA-256 hex of the reference-values file text. */
  readonly policyId: string;
  /**
   * A fresh nonce (32 random bytes, base64url) bound to `(spokeName, sid)` for `nonceTtlMs`. At most 2 stay
   * outstanding per spoke: issuing a third evicts the oldest. Throws BAD_REQUEST for an unknown spoke or bad sid.
   */
  issueNonce(spokeName: string, sid: string, now?: Date): string;
  /** Appraises evidence for the spoke's session. Never throws: every failure is `contraindicated` with reasons. */
  appraise(spokeName: string, sid: string, evidence: unknown, now?: Date): Promise<AppraisalResult>;
  /** Number of outstanding (unexpired, unused) nonces, for one spoke or in total. */
  outstandingNonces(spokeName?: string, now?: Date): number;
}

/** Options of {@link createAppraiser}. */
export interface AppraiserOptions {
  trustStore: TrustStore;
  referenceValues: ReferenceValues;
  /** Nonce lifetime in ms; default 30 000. */
  nonceTtlMs?: number;
}

interface NonceRecord {
  spoke: string;
  sid: string;
  issuedMs: number;
  expiresMs: number;
}

/** Creates the hub's appraiser. One `createLocalJWKSet` per spoke: evidence is checked against its own keys only. */
export function createAppraiser(options: AppraiserOptions): Appraiser {
  const { trustStore, referenceValues } = options;
  const nonceTtlMs = options.nonceTtlMs ?? NONCE_TTL_MS;
  const keysets = new Map<string, JWTVerifyGetKey>();
  for (const [name, spoke] of trustStore.spokes)
    keysets.set(name, localKeySet(spoke.jwks, `trust store keys of ${name}`));
  const nonces = new Map<string, NonceRecord>();
  // Consumed nonces are remembered until they would have expired, so a replay is told apart from a made-up nonce.
  const consumed = new Map<string, number>();

  const sweep = (nowMs: number): void => {
    for (const [nonce, record] of nonces) if (record.expiresMs < nowMs) nonces.delete(nonce);
    for (const [nonce, until] of consumed) if (until < nowMs) consumed.delete(nonce);
  };

  const contraindicated = (
    reasons: string[],
    now: Date,
    extra: Partial<AppraisalResult> = {},
  ): AppraisalResult => ({
    status: 'contraindicated',
    reasons,
    appraisedAt: now,
    policyId: referenceValues.policyId,
    ...extra,
  });

  const appraiseOrThrow = async (
    spokeName: string,
    sid: string,
    evidence: unknown,
    now: Date,
  ): Promise<AppraisalResult> => {
    const keys = keysets.get(spokeName);
    if (keys === undefined) return contraindicated(['spoke.unknown'], now);
    if (typeof sid !== 'string' || !SID_PATTERN.test(sid)) return contraindicated(['session.invalid'], now);
    const spokeId = spokeIdOf(spokeName);

    const verdict = await gateAndVerify(evidence, keys, {
      typ: EVIDENCE_TYP,
      issuer: spokeId,
      audience: HUB_ID,
      subject: spokeId,
      requiredClaims: ['exp', 'iat', 'jti', 'sub', 'eat_nonce', 'eat_profile', 'ueid', 'meas', 'sid'],
      maxTokenAge: EVIDENCE_LIFETIME_S,
      now,
    });
    if (!verdict.ok) return contraindicated(verdict.reasons, now);
    const kid = verdict.value.header.kid as string;

    const parsed = evidenceClaims.safeParse(verdict.value.payload);
    if (!parsed.success)
      return contraindicated(reasonsFromZod(parsed.error, { meas: 'meas.schema' }), now, { kid });
    const claims = parsed.data;
    const identified = { kid, jti: claims.jti, ueid: claims.ueid };
    if (claims.exp - claims.iat > EVIDENCE_LIFETIME_S)
      return contraindicated(['claims.lifetime'], now, identified);
    if (claims.sid !== sid) return contraindicated(['claims.sid'], now, identified);

    // Nonce: looked up and deleted with no await in between, so concurrent submissions cannot both win.
    const nowMs = now.getTime();
    const record = nonces.get(claims.eat_nonce);
    nonces.delete(claims.eat_nonce);
    let nonceReason: string | null = null;
    if (record === undefined) {
      nonceReason = consumed.has(claims.eat_nonce) ? 'nonce.replayed' : 'nonce.unknown';
    } else {
      consumed.set(claims.eat_nonce, record.expiresMs + EVIDENCE_LIFETIME_S * 1000);
      if (record.spoke !== spokeName) nonceReason = 'nonce.spoke';
      else if (record.sid !== sid) nonceReason = 'nonce.sid';
      else if (nowMs > record.expiresMs) nonceReason = 'nonce.expired';
    }
    sweep(nowMs);
    const measured = { ...identified, measurements: claims.meas };
    if (nonceReason !== null) return contraindicated([nonceReason], now, measured);

    const reference = referenceValues.spokes.get(spokeName);
    if (reference === undefined) return contraindicated(['policy.no_reference'], now, measured);
    const reasons = compareWithReference(claims.meas, reference, claims.dbgstat, now);
    if (reasons.length > 0) return contraindicated(reasons, now, measured);
    return {
      status: 'affirming',
      reasons: [],
      appraisedAt: now,
      policyId: referenceValues.policyId,
      ...measured,
    };
  };

  return {
    policyId: referenceValues.policyId,
    issueNonce(spokeName, sid, now = new Date()) {
      if (!trustStore.spokes.has(spokeName)) {
        throw new AppError(
          'BAD_REQUEST',
          `cannot issue a nonce: spoke ${JSON.stringify(spokeName)} is not trusted`,
        );
      }
      assertSid(sid);
      const nowMs = now.getTime();
      sweep(nowMs);
      const mine = [...nonces]
        .filter(([, r]) => r.spoke === spokeName)
        .sort((a, b) => a[1].issuedMs - b[1].issuedMs);
      while (mine.length >= MAX_OUTSTANDING_NONCES) nonces.delete((mine.shift() as [string, NonceRecord])[0]);
      const nonce = randomBytes(32).toString('base64url');
      nonces.set(nonce, { spoke: spokeName, sid, issuedMs: nowMs, expiresMs: nowMs + nonceTtlMs });
      return nonce;
    },
    async appraise(spokeName, sid, evidence, now = new Date()) {
      try {
        return await appraiseOrThrow(spokeName, sid, evidence, now);
      } catch {
        return contraindicated(['internal.exception'], now);
      }
    },
    outstandingNonces(spokeName, now = new Date()) {
      const nowMs = now.getTime();
      let count = 0;
      for (const record of nonces.values()) {
        if (record.expiresMs >= nowMs && (spokeName === undefined || record.spoke === spokeName)) count += 1;
      }
      return count;
    },
  };
}

// ------------------------------------------------------------------------------------- attestation results

/** AR4SI trustworthiness claim values used in ARs. */
export const AR4SI = Object.freeze({ affirming: 2, warning: 32, contraindicated: 96, noClaim: 0 });

/** `ear.verifier-id` of the hub's attestation results. */
export const AR_VERIFIER_ID = Object.freeze({ developer: 'agenthub', build: 'hub@ar-v1' });

/**
 * Signs an EAR-shaped attestation result (`spoke-ar+jwt`, 300 s) for an affirming appraisal. Throws
 * SPOKE_UNATTESTED for any other status (publish the status instead: nothing to replay), BAD_REQUEST for a
 * result without a kid or a policy id that is not 64 hex characters.
 */
export async function signAttestationResult(
  hubKey: SigningKey,
  spokeName: string,
  sid: string,
  result: AppraisalResult,
  policyId: string,
  now = new Date(),
): Promise<string> {
  const spokeId = spokeIdOf(spokeName);
  assertSid(sid);
  if (result.status !== 'affirming' || result.reasons.length > 0) {
    throw new AppError(
      'SPOKE_UNATTESTED',
      `attestation results are issued only for affirming spokes (${spokeName})`,
    );
  }
  if (result.kid === undefined)
    throw new AppError('BAD_REQUEST', 'an affirming result must name the evidence kid');
  if (!HEX64.test(policyId))
    throw new AppError('BAD_REQUEST', 'policyId must be 64 lower-case hex characters');
  const iat = epochSeconds(now);
  const vector = {
    configuration: AR4SI.affirming,
    executables: AR4SI.affirming,
    'file-system': AR4SI.affirming,
    'sourced-data': AR4SI.noClaim,
  };
  return new SignJWT({
    eat_profile: AR_PROFILE,
    'ear.verifier-id': { ...AR_VERIFIER_ID },
    submods: {
      [spokeId]: {
        'ear.status': 'affirming',
        'ear.trustworthiness-vector': vector,
        'ear.appraisal-policy-id': `sha256:${policyId}`,
      },
    },
    cnf: { jkt: result.kid },
    sid,
  })
    .setProtectedHeader({ alg: 'Ed25519', typ: AR_TYP, kid: hubKey.kid })
    .setIssuer(HUB_ID)
    .setSubject(spokeId)
    .setAudience(HUB_ID)
    .setIssuedAt(iat)
    .setExpirationTime(iat + AR_LIFETIME_S)
    .setJti(randomJti())
    .sign(hubKey.privateKey);
}

const ar4si = z.number().int().min(-128).max(127);
const arClaims = z
  .object({
    eat_profile: z.literal(AR_PROFILE),
    'ear.verifier-id': z.object({ developer: z.string().max(64), build: z.string().max(64) }).strict(),
    submods: z.record(
      z.string(),
      z
        .object({
          'ear.status': z.enum(['affirming', 'warning', 'contraindicated', 'none']),
          'ear.trustworthiness-vector': z.record(z.string(), ar4si),
          'ear.appraisal-policy-id': z.string().regex(/^sha256:[0-9a-f]{64}$/),
        })
        .strict(),
    ),
    cnf: z.object({ jkt: z.string().regex(/^[A-Za-z0-9_-]{43}$/) }).strict(),
    sid: z.string().regex(SID_PATTERN),
    ...registeredClaims,
  })
  .strict();

/** What a verified attestation result says. */
export interface VerifiedAttestationResult {
  status: AttestationStatus;
  /** Policy id (64 hex, without the `sha256:` prefix). */
  policyId: string;
  /** Thumbprint of the spoke's evidence key (`cnf.jkt`), for proof of possession. */
  jkt: string;
  expiresAt: Date;
}

/**
 * Verifies an attestation result for a passport consumer: gate, the hub JWKS only, `typ`, single `aud` = hub,
 * `sub` = the expected spoke, 300 s, `sid` = the expected session, exactly one submod for that spoke whose status
 * is affirming, and (when given) the expected policy id. Throws UNAUTHORIZED with `details.reason`.
 */
export async function verifyAttestationResult(
  token: string,
  hubJwks: { keys: JWK[] },
  expected: { spokeName: string; sid: string; policyId?: string },
  now = new Date(),
): Promise<VerifiedAttestationResult> {
  const spokeId = spokeIdOf(expected.spokeName);
  const verdict = await gateAndVerify(token, localKeySet(hubJwks, 'hub JWKS'), {
    typ: AR_TYP,
    issuer: HUB_ID,
    audience: HUB_ID,
    subject: spokeId,
    requiredClaims: ['exp', 'iat', 'jti', 'sid', 'submods', 'eat_profile', 'cnf'],
    maxTokenAge: AR_LIFETIME_S,
    now,
  });
  if (!verdict.ok) throw unauthorized('attestation result', verdict.reasons[0] as string);
  const parsed = arClaims.safeParse(verdict.value.payload);
  if (!parsed.success)
    throw unauthorized(
      'attestation result',
      reasonsFromZod(parsed.error, { submods: 'ar.submods', cnf: 'ar.cnf' })[0] as string,
    );
  const claims = parsed.data;
  if (claims.exp - claims.iat > AR_LIFETIME_S) throw unauthorized('attestation result', 'claims.lifetime');
  if (claims.sid !== expected.sid) throw unauthorized('attestation result', 'ar.sid');
  const names = Object.keys(claims.submods);
  const submod = Object.hasOwn(claims.submods, spokeId) ? claims.submods[spokeId] : undefined;
  if (names.length !== 1 || submod === undefined) throw unauthorized('attestation result', 'ar.submods');
  if (submod['ear.status'] !== 'affirming') throw unauthorized('attestation result', 'ar.status');
  const policyId = submod['ear.appraisal-policy-id'].slice('sha256:'.length);
  if (expected.policyId !== undefined && expected.policyId !== policyId) {
    throw unauthorized('attestation result', 'ar.policy');
  }
  return { status: 'affirming', policyId, jkt: claims.cnf.jkt, expiresAt: new Date(claims.exp * 1000) };
}
