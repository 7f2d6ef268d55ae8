// The hub's two read-only attestation policy files: the trust store (each spoke's pinned public keys and address)
// and the reference values (the allow-list of measurements, whose SHA-256 is the policy id), plus the comparison
// of reported measurements against them (ATTESTATION.md §5.1, §5.4 step 5).
import { createHash } from 'node:crypto';
import type { JWK } from 'jose';
import { z } from 'zod';
import { AppError } from './errors.js';
import { configDigest, type ConfigFacts, type Measurements } from './measure.js';

/** A spoke name: lower-case ASCII, starts with a letter, at most 32 characters. */
export const SPOKE_NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;

/** JWK members that only a private or symmetric key has; a trust store holding any of them is refused. */
export const PRIVATE_JWK_MEMBERS: readonly string[] = Object.freeze([
  'd',
  'p',
  'q',
  'dp',
  'dq',
  'qi',
  'oth',
  'k',
]);

/** One spoke as the hub knows it: its pinned keys and where to reach it. */
export interface TrustedSpoke {
  /** The spoke name (`marketing`). */
  readonly name: string;
  /** Only this spoke's public Ed25519 keys; evidence is verified against these and nothing else. */
  readonly jwks: { keys: JWK[] };
  /** Host name or address the hub dials. */
  readonly host: string;
  /** The spoke's API port (HTTP + the hub's WebSocket link). */
  readonly apiPort: number;
  /** The spoke's attestation port (`POST /v1/evidence`). */
  readonly attestationPort: number;
}

/** The parsed trust store: spoke name → pinned keys and address. */
export interface TrustStore {
  /** Every trusted spoke, by name. */
  readonly spokes: ReadonlyMap<string, TrustedSpoke>;
}

/** RFC 7638 thumbprint of an Ed25519 public JWK (`{"crv","kty","x"}` in lexical order, SHA-256, base64url). */
export function ed25519Thumbprint(jwk: { crv: string; kty: string; x: string }): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  return createHash('sha256').update(canonical).digest('base64url');
}

const publicEd25519Jwk = z
  .object({
    kty: z.literal('OKP'),
    crv: z.literal('Ed25519'),
    x: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'x must be 32 bytes of base64url'),
    kid: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'kid must be the RFC 7638 thumbprint'),
    alg: z.literal('Ed25519').optional(),
    use: z.literal('sig').optional(),
    key_ops: z
      .array(z.string())
      .refine((ops) => ops.length === 1 && ops[0] === 'verify', 'key_ops must be ["verify"]')
      .optional(),
  })
  .strict();

const port = z.number().int().min(1).max(65535);

const trustStoreFile = z
  .object({
    version: z.literal(1),
    spokes: z.record(
      z.string(),
      z
        .object({
          jwks: z.object({ keys: z.array(z.unknown()).min(1).max(8) }).strict(),
          host: z
            .string()
            .min(1)
            .max(253)
            .regex(/^[A-Za-z0-9.:[\]-]+$/, 'host must be a DNS name or an address'),
          apiPort: port,
          attestationPort: port,
        })
        .strict(),
    ),
  })
  .strict();

/**
 * Checks the raw spoke names before zod copies the map: a `__proto__` key would otherwise vanish into the copy's
 * prototype instead of being refused.
 */
function assertSpokeNames(json: unknown, what: string): void {
  if (typeof json !== 'object' || json === null) return;
  const spokes = (json as Record<string, unknown>).spokes;
  if (typeof spokes !== 'object' || spokes === null) return;
  for (const name of Object.keys(spokes)) {
    if (!SPOKE_NAME_PATTERN.test(name)) {
      throw new AppError('CONFIG_INVALID', `${what}: bad spoke name ${JSON.stringify(name)}`);
    }
  }
}

function configInvalid(message: string, details?: Record<string, unknown>): AppError {
  return new AppError('CONFIG_INVALID', `trust store: ${message}`, details === undefined ? {} : { details });
}

/**
 * Parses the trust store (`{version: 1, spokes: {<name>: {jwks: {keys}, host, apiPort, attestationPort}}}`).
 * Throws CONFIG_INVALID for a bad spoke name, any private or symmetric key member, a key that is not a public
 * Ed25519 signing key, a `kid` that is not the key's RFC 7638 thumbprint, or a `kid` used twice anywhere.
 */
export function parseTrustStore(json: unknown): TrustStore {
  assertSpokeNames(json, 'trust store');
  const parsed = trustStoreFile.safeParse(json);
  if (!parsed.success) {
    throw configInvalid(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  const seenKids = new Map<string, string>();
  const spokes = new Map<string, TrustedSpoke>();
  for (const [name, entry] of Object.entries(parsed.data.spokes)) {
    if (!SPOKE_NAME_PATTERN.test(name)) throw configInvalid(`bad spoke name ${JSON.stringify(name)}`);
    const keys: JWK[] = [];
    for (const raw of entry.jwks.keys) {
      if (typeof raw === 'object' && raw !== null) {
        const members = Object.keys(raw).filter((member) => PRIVATE_JWK_MEMBERS.includes(member));
        if (members.length > 0) throw configInvalid(`spoke ${name} has a private key member`, { members });
      }
      const key = publicEd25519Jwk.safeParse(raw);
      if (!key.success) {
        throw configInvalid(
          `spoke ${name}: not a public Ed25519 signing key (${key.error.issues[0]?.message ?? ''})`,
        );
      }
      if (ed25519Thumbprint(key.data) !== key.data.kid) {
        throw configInvalid(`spoke ${name}: kid ${key.data.kid} is not the key's RFC 7638 thumbprint`);
      }
      const owner = seenKids.get(key.data.kid);
      if (owner !== undefined)
        throw configInvalid(`duplicate kid ${key.data.kid} (spokes ${owner} and ${name})`);
      seenKids.set(key.data.kid, name);
      keys.push({ ...key.data, alg: 'Ed25519', use: 'sig' });
    }
    spokes.set(
      name,
      Object.freeze({
        name,
        jwks: { keys },
        host: entry.host,
        apiPort: entry.apiPort,
        attestationPort: entry.attestationPort,
      }),
    );
  }
  return Object.freeze({ spokes });
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const digestValue = z.object({ alg: z.literal('sha-256'), digest: hex64 }).strict();
const configFacts = z
  .object({
    mem_max_bytes: z.number().int().nonnegative().nullable(),
    agent_max_memory_mb: z.number().int().nonnegative().nullable(),
    uid: z.number().int().min(-1),
    inspector: z.boolean(),
  })
  .strict();

const referenceFile = z
  .object({
    version: z.literal(1),
    spokes: z.record(
      z.string(),
      z
        .object({
          expires: z.string().datetime({ offset: true }).optional(),
          model: z.array(digestValue.extend({ size: z.number().int().nonnegative() }).strict()).min(1),
          code: z.array(digestValue).min(1),
          deps: z.array(digestValue).min(1),
          config: z.array(configFacts).min(1),
          image: z.array(digestValue).optional(),
        })
        .strict(),
    ),
  })
  .strict();

/** Allowed values for one spoke; any listed value is accepted (several allow a rolling upgrade). */
export interface SpokeReferenceValues {
  /** After this instant the values are no longer accepted (`policy.expired`); absent → no expiry. */
  readonly expires: Date | null;
  readonly model: ReadonlyArray<{ digest: string; size: number }>;
  readonly code: readonly string[];
  readonly deps: readonly string[];
  readonly config: readonly ConfigFacts[];
  /** Allowed image digests; empty → the self-reported image is informational only. */
  readonly image: readonly string[];
}

/** The parsed reference-values file. */
export interface ReferenceValues {
  /** SHA-256 hex of the exact file text: the appraisal-policy id carried in ARs and compared by the routing gate. */
  readonly policyId: string;
  /** Allowed values per spoke name. */
  readonly spokes: ReadonlyMap<string, SpokeReferenceValues>;
}

/**
 * Parses the reference-values file text:
 * `{version: 1, spokes: {<name>: {expires?, model: [{alg, digest, size}], code: [{alg, digest}], deps: [...],
 * config: [{mem_max_bytes, agent_max_memory_mb, uid, inspector}], image?: [...]}}}`.
 * `policyId` is the SHA-256 of `text` itself. Throws CONFIG_INVALID on bad JSON, schema or spoke name.
 */
export function parseReferenceValues(text: string): ReferenceValues {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', 'reference values: not JSON', { cause });
  }
  assertSpokeNames(json, 'reference values');
  const parsed = referenceFile.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new AppError('CONFIG_INVALID', `reference values: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  const spokes = new Map<string, SpokeReferenceValues>();
  for (const [name, entry] of Object.entries(parsed.data.spokes)) {
    if (!SPOKE_NAME_PATTERN.test(name)) {
      throw new AppError('CONFIG_INVALID', `reference values: bad spoke name ${JSON.stringify(name)}`);
    }
    spokes.set(
      name,
      Object.freeze({
        expires: entry.expires === undefined ? null : new Date(entry.expires),
        model: entry.model.map((m) => ({ digest: m.digest, size: m.size })),
        code: entry.code.map((c) => c.digest),
        deps: entry.deps.map((d) => d.digest),
        config: entry.config,
        image: (entry.image ?? []).map((i) => i.digest),
      }),
    );
  }
  return Object.freeze({ policyId: createHash('sha256').update(text).digest('hex'), spokes });
}

/** Serialises one spoke's allowed values in the file format {@link parseReferenceValues} reads. */
export function referenceEntryFor(measurements: Measurements): Record<string, unknown> {
  return {
    model: [{ alg: 'sha-256', digest: measurements.model.digest, size: measurements.model.size }],
    code: [{ alg: 'sha-256', digest: measurements.code.digest }],
    deps: [{ alg: 'sha-256', digest: measurements.deps.digest }],
    config: [{ ...measurements.config.facts }],
  };
}

const CONFIG_FIELD_REASONS: ReadonlyArray<[keyof ConfigFacts, string]> = [
  ['mem_max_bytes', 'config.mem_max.mismatch'],
  ['agent_max_memory_mb', 'config.agent_max_memory.mismatch'],
  ['uid', 'config.uid.mismatch'],
  ['inspector', 'config.inspector.mismatch'],
];

/**
 * Compares measurements with one spoke's allowed values; returns the reason codes of every mismatch (empty →
 * all components match). The config digest must equal the digest of the reported facts, and the facts are
 * compared field by field with the closest allowed entry. An active inspector is refused whatever the reference says.
 */
export function compareWithReference(
  measurements: Measurements,
  reference: SpokeReferenceValues,
  dbgstat: 'enabled' | 'disabled',
  now: Date,
): string[] {
  const reasons: string[] = [];
  if (reference.expires !== null && now.getTime() >= reference.expires.getTime())
    reasons.push('policy.expired');
  const model = measurements.model;
  if (!reference.model.some((m) => m.digest === model.digest && m.size === model.size)) {
    reasons.push('meas.model.mismatch');
  }
  if (!reference.code.includes(measurements.code.digest)) reasons.push('meas.code.mismatch');
  if (!reference.deps.includes(measurements.deps.digest)) reasons.push('meas.deps.mismatch');
  if (reference.image.length > 0 && !reference.image.includes(measurements.image.digest)) {
    reasons.push('meas.image.mismatch');
  }
  const facts = measurements.config.facts;
  if (configDigest(facts).digest !== measurements.config.digest) reasons.push('config.digest.invalid');
  let closest: string[] | null = null;
  for (const allowed of reference.config) {
    const mismatched = CONFIG_FIELD_REASONS.filter(([field]) => allowed[field] !== facts[field]).map(
      ([, r]) => r,
    );
    if (closest === null || mismatched.length < closest.length) closest = mismatched;
  }
  for (const reason of closest ?? []) {
    if (reason !== 'config.inspector.mismatch') reasons.push(reason);
  }
  if (facts.inspector) reasons.push('config.inspector.enabled');
  if (dbgstat === 'enabled') reasons.push('dbgstat.enabled');
  return reasons;
}
