// Keys, identities, hub→spoke connect tokens, attestation-result tokens (ATTESTATION.md §3.7 rows A01–A03) and the
// trust-store / reference-value parsers (rows H15, H16), each asserting the error code and reason code.
import { SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AR_PROFILE,
  AR_TYP,
  EVIDENCE_TYP,
  HUB_ID,
  createConnectTokenVerifier,
  debugStatus,
  generateSigningKeyJwk,
  importSigningKey,
  newUeid,
  parseReferenceValues,
  parseTrustStore,
  publicJwks,
  signAttestationResult,
  signConnectToken,
  spokeIdOf,
  verifyAttestationResult,
  type AppraisalResult,
  type JWK,
  type SigningKey,
} from '../../shared/attestation.js';
import { AppError } from '../../shared/errors.js';
import { forgeKey, forgeToken, segments, type ForgeKey } from '../helpers/token_forge.js';

const NOW = new Date(Date.UTC(2026, 0, 15, 12, 0, 0));
const T = NOW.getTime() / 1000;
const SID = 'sid-1';
const POLICY = 'ab'.repeat(32);
const at = (seconds: number): Date => new Date(NOW.getTime() + seconds * 1000);

let hubKey: SigningKey;
let oldHubKey: SigningKey;
let spokeKey: SigningKey;
let hubJwks: { keys: JWK[] };
let forged: ForgeKey;

beforeAll(async () => {
  hubKey = await importSigningKey(await generateSigningKeyJwk());
  oldHubKey = await importSigningKey(await generateSigningKeyJwk());
  spokeKey = await importSigningKey(await generateSigningKeyJwk());
  hubJwks = publicJwks([hubKey]);
  forged = forgeKey();
});

async function rejection(
  promise: Promise<unknown>,
): Promise<{ code: string; reason: unknown; message: string }> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  const appError = error as AppError;
  return { code: appError.code, reason: appError.details?.reason, message: appError.message };
}

function affirmingResult(): AppraisalResult {
  return { status: 'affirming', reasons: [], kid: spokeKey.kid, appraisedAt: NOW, policyId: POLICY };
}

describe('identities and keys', () => {
  it('builds spoke ids and refuses names outside ^[a-z][a-z0-9-]{0,31}$', () => {
    expect(spokeIdOf('marketing')).toBe('spiffe://agenthub.internal/spoke/marketing');
    for (const bad of [
      'Marketing',
      '1abc',
      'm\u0430rketing',
      'a'.repeat(33),
      '',
      'a/b',
      'a b',
      '__proto__',
    ]) {
      expect(() => spokeIdOf(bad)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
    }
  });

  it('generates private Ed25519 JWKs whose kid is the RFC 7638 thumbprint, and imports them non-extractable', async () => {
    const jwk = await generateSigningKeyJwk();
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519', use: 'sig' });
    expect(jwk.d).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const key = await importSigningKey(jwk);
    expect(key.kid).toBe(jwk.kid);
    expect(key.privateKey.extractable).toBe(false);
    expect(key.publicJwk).not.toHaveProperty('d');
    expect(publicJwks([key]).keys[0]).toEqual({
      kty: 'OKP',
      crv: 'Ed25519',
      x: jwk.x,
      kid: jwk.kid,
      alg: 'Ed25519',
      use: 'sig',
    });
  });

  it('computes the RFC 8037 A.3 thumbprint for the RFC 8037 A.1 key', async () => {
    const key = await importSigningKey({
      kty: 'OKP',
      crv: 'Ed25519',
      d: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A',
      x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo',
    });
    expect(key.kid).toBe('kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
  });

  it('refuses a signing key whose kid lies, whose x does not match d, or that is not Ed25519', async () => {
    const jwk = await generateSigningKeyJwk();
    const other = await generateSigningKeyJwk();
    await expect(importSigningKey({ ...jwk, kid: other.kid })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
    await expect(importSigningKey({ ...jwk, x: other.x, kid: undefined })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
    await expect(importSigningKey({ kty: 'EC', crv: 'P-256', x: jwk.x, d: jwk.d })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
    await expect(importSigningKey({ kty: jwk.kty, crv: jwk.crv, x: jwk.x })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });

  it('makes one UEID per process (0x01 + 16 bytes) and reports debug status', () => {
    const ueid = newUeid();
    expect(newUeid()).toBe(ueid);
    const bytes = Buffer.from(ueid, 'base64url');
    expect(bytes).toHaveLength(17);
    expect(bytes[0]).toBe(0x01);
    expect(debugStatus()).toBe('disabled');
  });
});

describe('hub → spoke connect tokens', () => {
  it('verifies a fresh token once and returns its sid', async () => {
    const verifier = createConnectTokenVerifier(hubJwks, 'marketing');
    const token = await signConnectToken(hubKey, 'marketing', SID, NOW);
    expect(await verifier.verify(token, at(1))).toEqual({ sid: SID });
  });

  const cases: Array<{
    what: string;
    make: () => Promise<string | undefined>;
    when?: number;
    reason: string;
  }> = [
    { what: 'missing token', make: async () => undefined, reason: 'connect.missing' },
    { what: 'empty token', make: async () => '', reason: 'connect.missing' },
    {
      what: 'expired token',
      make: () => signConnectToken(hubKey, 'marketing', SID, NOW),
      when: 40,
      reason: 'claims.exp',
    },
    {
      what: 'token for another spoke (wrong audience)',
      make: () => signConnectToken(hubKey, 'finance', SID, NOW),
      reason: 'claims.aud',
    },
    {
      what: 'token signed by an unknown key with the hub kid (bad signature)',
      make: async () =>
        forgeToken(
          { alg: 'Ed25519', typ: 'hub-connect+jwt', kid: hubKey.kid },
          { sid: SID, iss: HUB_ID, aud: spokeIdOf('marketing'), iat: T, exp: T + 30, jti: 'j'.repeat(22) },
          { kind: 'ed25519', key: forged.privateKey },
        ),
      reason: 'jose.signature',
    },
    {
      what: 'token signed by a spoke key',
      make: () => signConnectToken(spokeKey, 'marketing', SID, NOW),
      reason: 'jose.no_key',
    },
    {
      what: 'evidence typ on a connect token',
      make: async () =>
        new SignJWT({ sid: SID })
          .setProtectedHeader({ alg: 'Ed25519', typ: EVIDENCE_TYP, kid: hubKey.kid })
          .setIssuer(HUB_ID)
          .setAudience(spokeIdOf('marketing'))
          .setIssuedAt(T)
          .setExpirationTime(T + 30)
          .setJti('j'.repeat(22))
          .sign(hubKey.privateKey),
      reason: 'claims.typ',
    },
    {
      what: 'lifetime above 30 s',
      make: async () =>
        new SignJWT({ sid: SID })
          .setProtectedHeader({ alg: 'Ed25519', typ: 'hub-connect+jwt', kid: hubKey.kid })
          .setIssuer(HUB_ID)
          .setAudience(spokeIdOf('marketing'))
          .setIssuedAt(T)
          .setExpirationTime(T + 3600)
          .setJti('j'.repeat(22))
          .sign(hubKey.privateKey),
      reason: 'claims.lifetime',
    },
    {
      what: 'Bearer prefix left on the token',
      make: async () => `Bearer ${await signConnectToken(hubKey, 'marketing', SID, NOW)}`,
      reason: 'gate.encoding',
    },
  ];

  it.each(cases)('refuses $what with UNAUTHORIZED $reason', async ({ make, when, reason }) => {
    const verifier = createConnectTokenVerifier(hubJwks, 'marketing');
    const result = await rejection(verifier.verify(await make(), at(when ?? 1)));
    expect(result.code).toBe('UNAUTHORIZED');
    expect(result.reason).toBe(reason);
    expect(result.message).toContain(reason);
  });

  it('refuses a replayed jti, also when both uses race', async () => {
    const verifier = createConnectTokenVerifier(hubJwks, 'marketing');
    const token = await signConnectToken(hubKey, 'marketing', SID, NOW);
    const outcomes = await Promise.allSettled([verifier.verify(token, at(1)), verifier.verify(token, at(1))]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect((await rejection(verifier.verify(token, at(2)))).reason).toBe('connect.replayed');
  });

  it('refuses a hub JWKS holding a private key with CONFIG_INVALID', async () => {
    const privateJwks = { keys: [await generateSigningKeyJwk()] };
    expect(() => createConnectTokenVerifier(privateJwks, 'marketing')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    const token = await signAttestationResult(hubKey, 'marketing', SID, affirmingResult(), POLICY, NOW);
    await expect(
      verifyAttestationResult(token, privateJwks, { spokeName: 'marketing', sid: SID }, NOW),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('refuses to sign for a bad spoke name or sid', async () => {
    await expect(signConnectToken(hubKey, 'Bad', SID, NOW)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(signConnectToken(hubKey, 'marketing', 'has space', NOW)).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
  });
});

describe('§3.7 attestation results', () => {
  const affirming = (): AppraisalResult => ({
    status: 'affirming',
    reasons: [],
    kid: spokeKey.kid,
    appraisedAt: NOW,
    policyId: POLICY,
  });
  const expected = { spokeName: 'marketing', sid: SID };

  async function hubSigned(claims: Record<string, unknown>, key = hubKey, typ = AR_TYP): Promise<string> {
    const spokeId = spokeIdOf('marketing');
    return new SignJWT({
      eat_profile: AR_PROFILE,
      'ear.verifier-id': { developer: 'agenthub', build: 'hub@ar-v1' },
      submods: {
        [spokeId]: {
          'ear.status': 'affirming',
          'ear.trustworthiness-vector': {},
          'ear.appraisal-policy-id': `sha256:${POLICY}`,
        },
      },
      cnf: { jkt: spokeKey.kid },
      sid: SID,
      ...claims,
    })
      .setProtectedHeader({ alg: 'Ed25519', typ, kid: key.kid })
      .setIssuer(HUB_ID)
      .setSubject(spokeId)
      .setAudience(HUB_ID)
      .setIssuedAt(T)
      .setExpirationTime(T + 300)
      .setJti('j'.repeat(22))
      .sign(key.privateKey);
  }

  it('round-trips an AR for an affirming appraisal: status, policy id, cnf.jkt, 300 s', async () => {
    const token = await signAttestationResult(hubKey, 'marketing', SID, affirming(), POLICY, NOW);
    const verified = await verifyAttestationResult(
      token,
      hubJwks,
      { ...expected, policyId: POLICY },
      at(299),
    );
    expect(verified).toEqual({
      status: 'affirming',
      policyId: POLICY,
      jkt: spokeKey.kid,
      expiresAt: at(300),
    });
    const header = JSON.parse(Buffer.from(segments(token)[0], 'base64url').toString()) as Record<
      string,
      unknown
    >;
    expect(header).toEqual({ alg: 'Ed25519', typ: AR_TYP, kid: hubKey.kid });
  });

  it('never signs an AR for a contraindicated appraisal', async () => {
    const contra: AppraisalResult = {
      ...affirming(),
      status: 'contraindicated',
      reasons: ['meas.model.mismatch'],
    };
    await expect(signAttestationResult(hubKey, 'marketing', SID, contra, POLICY, NOW)).rejects.toMatchObject({
      code: 'SPOKE_UNATTESTED',
    });
  });

  const rows: Array<{
    id: string;
    what: string;
    make: () => Promise<string>;
    when?: number;
    expect?: typeof expected & { policyId?: string };
    jwks?: () => { keys: JWK[] };
    reason: string;
  }> = [
    {
      id: 'A01',
      what: 'expired AR',
      make: () => signAttestationResult(hubKey, 'marketing', SID, affirming(), POLICY, NOW),
      when: 306,
      reason: 'claims.exp',
    },
    {
      id: 'A01',
      what: 'AR from the previous hub key after rotation',
      make: () => signAttestationResult(oldHubKey, 'marketing', SID, affirming(), POLICY, NOW),
      reason: 'jose.no_key',
    },
    {
      id: 'A01',
      what: 'AR whose ear.status is contraindicated',
      make: () =>
        hubSigned({
          submods: {
            [spokeIdOf('marketing')]: {
              'ear.status': 'contraindicated',
              'ear.trustworthiness-vector': { executables: 96 },
              'ear.appraisal-policy-id': `sha256:${POLICY}`,
            },
          },
        }),
      reason: 'ar.status',
    },
    {
      id: 'A02',
      what: "marketing's AR presented on finance's session (sub)",
      make: () => signAttestationResult(hubKey, 'marketing', SID, affirming(), POLICY, NOW),
      expect: { spokeName: 'finance', sid: SID },
      reason: 'claims.sub',
    },
    {
      id: 'A02',
      what: "marketing's AR presented for another session (sid)",
      make: () => signAttestationResult(hubKey, 'marketing', SID, affirming(), POLICY, NOW),
      expect: { spokeName: 'marketing', sid: 'sid-2' },
      reason: 'ar.sid',
    },
    {
      id: 'A02',
      what: 'AR whose submods name two spokes',
      make: () =>
        hubSigned({
          submods: {
            [spokeIdOf('marketing')]: {
              'ear.status': 'affirming',
              'ear.trustworthiness-vector': {},
              'ear.appraisal-policy-id': `sha256:${POLICY}`,
            },
            [spokeIdOf('finance')]: {
              'ear.status': 'affirming',
              'ear.trustworthiness-vector': {},
              'ear.appraisal-policy-id': `sha256:${POLICY}`,
            },
          },
        }),
      reason: 'ar.submods',
    },
    {
      id: 'A03',
      what: 'AR signed by a spoke key',
      make: () => signAttestationResult(spokeKey, 'marketing', SID, affirming(), POLICY, NOW),
      reason: 'jose.no_key',
    },
    {
      id: 'A03',
      what: 'spoke key also in a (misconfigured) hub JWKS cannot mint ARs with the wrong typ',
      make: () => hubSigned({}, spokeKey, EVIDENCE_TYP),
      jwks: () => publicJwks([hubKey, spokeKey]),
      reason: 'claims.typ',
    },
    {
      id: 'R10',
      what: 'AR issued under a superseded policy',
      make: () => signAttestationResult(hubKey, 'marketing', SID, affirming(), POLICY, NOW),
      expect: { ...expected, policyId: 'cd'.repeat(32) },
      reason: 'ar.policy',
    },
    {
      id: 'H22',
      what: 'evidence typ on an AR',
      make: () => hubSigned({}, hubKey, EVIDENCE_TYP),
      reason: 'claims.typ',
    },
    {
      id: '-',
      what: 'AR with an extra claim',
      make: () => hubSigned({ admin: true }),
      reason: 'claims.unknown',
    },
  ];

  it.each(rows)('$id refuses $what with $reason', async (row) => {
    const token = await row.make();
    const result = await rejection(
      verifyAttestationResult(token, row.jwks?.() ?? hubJwks, row.expect ?? expected, at(row.when ?? 1)),
    );
    expect(result.code).toBe('UNAUTHORIZED');
    expect(result.reason).toBe(row.reason);
  });
});

describe('trust store and reference values', () => {
  const spoke = (keys: unknown[]): unknown => ({
    jwks: { keys },
    host: '127.0.0.1',
    apiPort: 8082,
    attestationPort: 29345,
  });
  const store = (spokes: Record<string, unknown>): unknown => ({ version: 1, spokes });

  it('parses per-spoke keysets and addresses', () => {
    const parsed = parseTrustStore(store({ marketing: spoke([forged.publicJwk]) }));
    expect(parsed.spokes.get('marketing')).toMatchObject({
      host: '127.0.0.1',
      apiPort: 8082,
      attestationPort: 29345,
    });
    expect(parsed.spokes.get('marketing')?.jwks.keys[0]?.kid).toBe(forged.kid);
  });

  const bad: Array<{ id: string; what: string; json: () => unknown }> = [
    {
      id: 'H15',
      what: 'duplicate kid within a spoke',
      json: () => store({ marketing: spoke([forged.publicJwk, forged.publicJwk]) }),
    },
    {
      id: 'H15',
      what: 'the same key for two spokes',
      json: () => store({ marketing: spoke([forged.publicJwk]), finance: spoke([forged.publicJwk]) }),
    },
    { id: 'H16', what: 'a private JWK', json: () => store({ marketing: spoke([forged.privateJwk]) }) },
    {
      id: 'H16',
      what: 'a symmetric key',
      json: () => store({ marketing: spoke([{ kty: 'oct', k: 'c2VjcmV0', kid: 'x' }]) }),
    },
    {
      id: 'H16',
      what: 'use enc',
      json: () => store({ marketing: spoke([{ ...forged.publicJwk, use: 'enc' }]) }),
    },
    {
      id: 'H16',
      what: 'key_ops sign',
      json: () => store({ marketing: spoke([{ ...forged.publicJwk, key_ops: ['sign'] }]) }),
    },
    {
      id: 'H16',
      what: 'alg EdDSA (mismatched with the Ed25519 tokens)',
      json: () => store({ marketing: spoke([{ ...forged.publicJwk, alg: 'EdDSA' }]) }),
    },
    {
      id: 'H16',
      what: 'an ES256 key',
      json: () => store({ marketing: spoke([forgeKey('ES256').publicJwk]) }),
    },
    {
      id: 'H16',
      what: 'a kid that is not the thumbprint',
      json: () => store({ marketing: spoke([{ ...forged.publicJwk, kid: 'A'.repeat(43) }]) }),
    },
    { id: '-', what: 'a bad spoke name', json: () => store({ Marketing: spoke([forged.publicJwk]) }) },
    {
      id: '-',
      what: '__proto__ as a spoke name',
      json: () =>
        JSON.parse(
          `{"version":1,"spokes":{"__proto__":${JSON.stringify(spoke([forged.publicJwk]))}}}`,
        ) as unknown,
    },
    { id: '-', what: 'an extra member', json: () => ({ ...(store({}) as object), extra: 1 }) },
  ];

  it.each(bad)('$id refuses a trust store with $what (CONFIG_INVALID)', ({ json }) => {
    expect(() => parseTrustStore(json())).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('refuses reference values that are not JSON, miss a component or name a bad spoke', () => {
    const entry = {
      model: [{ alg: 'sha-256', digest: 'a'.repeat(64), size: 1 }],
      code: [{ alg: 'sha-256', digest: 'b'.repeat(64) }],
      deps: [{ alg: 'sha-256', digest: 'c'.repeat(64) }],
      config: [{ mem_max_bytes: null, agent_max_memory_mb: null, uid: 1000, inspector: false }],
    };
    expect(
      parseReferenceValues(JSON.stringify({ version: 1, spokes: { marketing: entry } })).spokes.get(
        'marketing',
      )?.code,
    ).toEqual(['b'.repeat(64)]);
    for (const text of [
      '{',
      JSON.stringify({ version: 1, spokes: { marketing: { ...entry, code: [] } } }),
      JSON.stringify({ version: 1, spokes: { 'Bad Name': entry } }),
      JSON.stringify({
        version: 1,
        spokes: { marketing: { ...entry, model: [{ alg: 'md5', digest: 'a'.repeat(64), size: 1 }] } },
      }),
    ]) {
      expect(() => parseReferenceValues(text)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    }
  });
});
