// Public test vectors through the verifier path: Wycheproof JWS, JWK and Ed25519 suites (read in place from
// ../shared/vectors), RFC 8037 A.4 and RFC 7515 A.5; every invalid vector must be rejected.
import { readFileSync } from 'node:fs';
import { compactVerify, createLocalJWKSet, importJWK, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  ANY_COMPACT_JWS,
  ED25519_COMPACT_JWS,
  PRIVATE_JWK_MEMBERS,
  createAppraiser,
  ed25519Thumbprint,
  joseReason,
  parseReferenceValues,
  parseTrustStore,
  preParseGate,
} from '../../shared/attestation.js';
import { hasShared, sharedPath } from '../helpers/shared_data.js';

interface Vector {
  tcId: number;
  comment: string;
  jws?: string;
  msg?: string;
  sig?: string;
  result: 'valid' | 'invalid' | 'acceptable';
}
interface Group {
  comment?: string;
  public?: JWK | { keys: JWK[] };
  private?: JWK | { keys: JWK[] };
  publicKey?: { pk: string };
  tests: Vector[];
}

function load(file: string): Group[] {
  return (JSON.parse(readFileSync(sharedPath(`vectors/${file}`), 'utf8')) as { testGroups: Group[] })
    .testGroups;
}

function keysOf(set: JWK | { keys: JWK[] } | undefined): JWK[] {
  if (set === undefined) return [];
  return 'keys' in set && Array.isArray(set.keys) ? set.keys : [set as JWK];
}

/** Public keys of a group: its `public` member, else its private keys with every private member removed. */
function publicKeysOf(group: Group): JWK[] {
  if (group.public !== undefined) return keysOf(group.public);
  return keysOf(group.private).map((key) =>
    key.kty === 'oct'
      ? key
      : (Object.fromEntries(Object.entries(key).filter(([m]) => !PRIVATE_JWK_MEMBERS.includes(m))) as JWK),
  );
}

type Outcome = { accepted: true } | { accepted: false; reason: string };

/**
 * The verifier path for generic JWS vectors: the pre-parse gate (size, base64url alphabet, three segments,
 * canonical base64url; the payloads are not JWTs, so no JSON checks), then jose with an algorithm allow-list of
 * the key's own `alg`. Asymmetric keys are resolved with `createLocalJWKSet` exactly as the hub does. A local JWKS
 * refuses symmetric keys by design (our hub therefore never accepts an HS* token at all); to still run the MAC
 * groups' encoding cases through the gate, `mac: 'import'` resolves a group's single symmetric key with importJWK.
 */
async function verifyGeneric(token: unknown, keys: JWK[], mac: 'jwks' | 'import'): Promise<Outcome> {
  const gate = preParseGate(token, { shape: ANY_COMPACT_JWS, jsonPayload: false, canonicalJson: false });
  if (!gate.ok) return { accepted: false, reason: gate.reason };
  const alg = keys[0]?.alg;
  const options = alg === undefined ? {} : { algorithms: [alg] };
  try {
    if (mac === 'import' && keys.length === 1 && keys[0]?.kty === 'oct') {
      await compactVerify(token as string, await importJWK(keys[0], alg ?? 'HS256'), options);
    } else {
      await compactVerify(token as string, createLocalJWKSet({ keys }), options);
    }
    return { accepted: true };
  } catch (error) {
    return { accepted: false, reason: joseReason(error) };
  }
}

describe.skipIf(!hasShared('vectors/wycheproof_json_web_signature_test.json'))(
  'Wycheproof JWS (401 vectors)',
  () => {
    const groups = load('wycheproof_json_web_signature_test.json');
    const vectors = groups.flatMap((group) => group.tests.map((test) => ({ group, test })));
    /** Valid vectors we reject on purpose, each with why. */
    const STRICTER: ReadonlyMap<number, string> = new Map([
      [
        346,
        'rfc7520: the JWK says PS256, the token PS384; jose requires the JWK alg to equal the header alg',
      ],
      [347, 'rfc7520: the JWK says ES521, the token ES512 (same mismatch)'],
      [350, 'rfc7520WithKeyOps: as 346'],
      [351, 'rfc7520WithKeyOps: as 347'],
      [372, '"?" inserted in the header: outside the base64url alphabet, refused by the gate'],
      [373, '"?" inserted in the payload: refused by the gate'],
    ]);
    /** Invalid vectors no correct verifier can reject: byte-identical to valid tc 357 in both Wycheproof repos. */
    const BROKEN: ReadonlyMap<number, string> = new Map([
      [367, 'invalidBase64Padding: the token text equals valid tc 357'],
      [370, 'invalidBase64PaddingInPayload: the token text equals valid tc 357'],
    ]);

    it('holds 401 vectors', () => {
      expect(vectors).toHaveLength(401);
    });

    it('really has tc 367 and 370 byte-identical to valid tc 357 (why they are excluded)', () => {
      const text = (id: number) => vectors.find((v) => v.test.tcId === id)?.test.jws;
      expect(text(367)).toBe(text(357));
      expect(text(370)).toBe(text(357));
    });

    it.each(
      vectors.map(({ group, test }) => ({
        id: test.tcId,
        comment: test.comment,
        result: test.result,
        group,
      })),
    )('tc $id $comment ($result)', async ({ id, result, group }) => {
      const test = group.tests.find((t) => t.tcId === id) as Vector;
      const outcome = await verifyGeneric(test.jws, publicKeysOf(group), 'import');
      if (BROKEN.has(id)) {
        expect(outcome.accepted).toBe(true);
        return;
      }
      const expectAccepted = result === 'valid' && !STRICTER.has(id);
      expect(outcome.accepted, JSON.stringify(outcome)).toBe(expectAccepted);
    });

    it('catches the encoding vectors jose alone accepts in the gate (tc 360, 365, 368 spaces; 375 non-canonical)', async () => {
      const reasons = new Map<number, string>();
      for (const { group, test } of vectors) {
        if (![360, 365, 368, 374, 375].includes(test.tcId)) continue;
        const outcome = await verifyGeneric(test.jws, publicKeysOf(group), 'import');
        reasons.set(test.tcId, outcome.accepted ? 'accepted' : outcome.reason);
      }
      expect(Object.fromEntries(reasons)).toEqual({
        360: 'gate.encoding',
        365: 'gate.encoding',
        368: 'gate.encoding',
        374: 'gate.noncanonical',
        375: 'gate.noncanonical',
      });
    });

    it('rejects every vector, valid or not, once keys come only from a local JWKS and the policy is Ed25519-only', async () => {
      const accepted: number[] = [];
      for (const { group, test } of vectors) {
        const gate = preParseGate(test.jws, {
          shape: ED25519_COMPACT_JWS,
          jsonPayload: false,
          canonicalJson: false,
        });
        if (!gate.ok) continue;
        const ok = await compactVerify(test.jws as string, createLocalJWKSet({ keys: publicKeysOf(group) }), {
          algorithms: ['Ed25519'],
        }).then(
          () => true,
          () => false,
        );
        if (ok) accepted.push(test.tcId);
      }
      expect(accepted).toEqual([]);
    });

    it('rejects rejectWrongUse/KeyOps (tc 353–356) once the key comes from a local JWKS', async () => {
      for (const { group, test } of vectors.filter((v) => v.test.tcId >= 353 && v.test.tcId <= 356)) {
        expect((await verifyGeneric(test.jws, publicKeysOf(group), 'jwks')).accepted).toBe(false);
      }
    });
  },
);

describe.skipIf(!hasShared('vectors/wycheproof_json_web_key_test.json'))(
  'Wycheproof JWK (26 vectors)',
  () => {
    const groups = load('wycheproof_json_web_key_test.json');
    const vectors = groups.flatMap((group) => group.tests.map((test) => ({ group, test })));

    const spokeStore = (keys: JWK[]): unknown => ({
      version: 1,
      spokes: { marketing: { jwks: { keys }, host: '127.0.0.1', apiPort: 8082, attestationPort: 29345 } },
    });

    it.each(
      vectors.map(({ group, test }) => ({
        id: test.tcId,
        comment: test.comment,
        result: test.result,
        group,
      })),
    )(
      'tc $id $comment ($result): the trust store refuses the keyset before any token is verified',
      ({ group }) => {
        // Our trust store admits public Ed25519 signing keys only, so every one of these keysets (RSA, EC, oct,
        // private, duplicate kid) is refused at load with CONFIG_INVALID; none reaches jose.
        expect(() => parseTrustStore(spokeStore(keysOf(group.private)))).toThrow(
          expect.objectContaining({ code: 'CONFIG_INVALID' }),
        );
        expect(() => parseTrustStore(spokeStore(publicKeysOf(group)))).toThrow(
          expect.objectContaining({ code: 'CONFIG_INVALID' }),
        );
      },
    );

    it('shows why the trust store must be that strict: jose + a local JWKS alone accept two invalid keysets', async () => {
      // tc 7 (ROCA-weak RSA modulus) and tc 9 (RSA public exponent 1) verify through createLocalJWKSet on Node 20:
      // neither jose nor WebCrypto checks for them. Every other invalid vector is rejected by the generic path.
      const acceptedInvalid: number[] = [];
      for (const { group, test } of vectors) {
        if (test.result !== 'invalid') continue;
        if ((await verifyGeneric(test.jws, publicKeysOf(group), 'jwks')).accepted)
          acceptedInvalid.push(test.tcId);
      }
      expect(acceptedInvalid).toEqual([7, 9]);
    });
  },
);

describe.skipIf(!hasShared('vectors/wycheproof_ed25519_test.json'))(
  'Wycheproof Ed25519 (151 vectors)',
  () => {
    const groups = load('wycheproof_ed25519_test.json');
    const vectors = groups.flatMap((group) => group.tests.map((test) => ({ group, test })));

    it('holds 151 vectors', () => {
      expect(vectors).toHaveLength(151);
    });

    it.each(
      vectors.map(({ group, test }) => ({
        id: test.tcId,
        comment: test.comment,
        result: test.result,
        group,
      })),
    )('tc $id $comment ($result)', async ({ id, result, group }) => {
      const test = group.tests.find((t) => t.tcId === id) as Vector;
      // The public key goes through the trust store and jose's local JWKS exactly as a spoke key would.
      const x = Buffer.from(group.publicKey?.pk as string, 'hex').toString('base64url');
      const jwk = {
        kty: 'OKP',
        crv: 'Ed25519',
        x,
        kid: ed25519Thumbprint({ kty: 'OKP', crv: 'Ed25519', x }),
      };
      const store = parseTrustStore({
        version: 1,
        spokes: { marketing: { jwks: { keys: [jwk] }, host: 'h', apiPort: 1, attestationPort: 2 } },
      });
      const resolve = createLocalJWKSet(store.spokes.get('marketing')?.jwks ?? { keys: [] });
      const key = await resolve({ alg: 'Ed25519', kid: jwk.kid });
      const signature = Buffer.from(test.sig as string, 'hex');
      // A signature that is not 64 bytes can never pass the evidence gate's 86-character third segment.
      const shapeOk = ED25519_COMPACT_JWS.test(
        `${'a'.repeat(10)}.${'b'.repeat(10)}.${signature.toString('base64url')}`,
      );
      const verified =
        shapeOk &&
        (await crypto.subtle
          .verify('Ed25519', key, signature, Buffer.from(test.msg as string, 'hex'))
          .catch(() => false));
      expect(verified).toBe(result === 'valid');
    });
  },
);

describe('RFC examples', () => {
  // RFC 8037 A.1 key and A.4 signature over "Example of Ed25519 signing" with {"alg":"EdDSA"}.
  const rfc8037Key = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };
  const rfc8037Token =
    'eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg';

  it('RFC 8037 A.4 verifies with an EdDSA-labelled key and the EdDSA alg', async () => {
    const keys = createLocalJWKSet({ keys: [{ ...rfc8037Key, alg: 'EdDSA' }] });
    const { payload } = await compactVerify(rfc8037Token, keys, { algorithms: ['EdDSA'] });
    expect(new TextDecoder().decode(payload)).toBe('Example of Ed25519 signing');
  });

  it('RFC 8037 A.4 is refused under our Ed25519-only policy (jose.alg), and by an Ed25519-labelled keyset', async () => {
    const unlabelled = createLocalJWKSet({ keys: [rfc8037Key] });
    const refused = await compactVerify(rfc8037Token, unlabelled, { algorithms: ['Ed25519'] }).catch(
      (e: unknown) => e,
    );
    expect(joseReason(refused)).toBe('jose.alg');
    const labelled = createLocalJWKSet({ keys: [{ ...rfc8037Key, alg: 'Ed25519' }] });
    const noKey = await compactVerify(rfc8037Token, labelled).catch((e: unknown) => e);
    expect(joseReason(noKey)).toBe('jose.no_key');
  });

  it('RFC 7515 A.5 unsecured JWS is refused by the generic path and by appraise()', async () => {
    const unsecured =
      'eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.';
    const generic = await verifyGeneric(unsecured, [{ ...rfc8037Key, alg: 'Ed25519' }], 'jwks');
    expect(generic).toEqual({ accepted: false, reason: 'jose.alg' });
    const appraiser = createAppraiser({
      trustStore: parseTrustStore({
        version: 1,
        spokes: {
          marketing: {
            jwks: { keys: [{ ...rfc8037Key, kid: ed25519Thumbprint(rfc8037Key) }] },
            host: 'h',
            apiPort: 1,
            attestationPort: 2,
          },
        },
      }),
      referenceValues: parseReferenceValues('{"version":1,"spokes":{}}'),
    });
    expect((await appraiser.appraise('marketing', 'sid-1', unsecured)).reasons).toEqual(['gate.encoding']);
  });
});
