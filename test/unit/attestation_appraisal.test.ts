// The hub's appraisal pipeline against the hostile-input catalogue of ATTESTATION.md §3 (rows H, E, G, C, N, R),
// a seeded mutation fuzz and concurrent replays; every case asserts the exact reason code appraise() returns.
import { createPublicKey } from 'node:crypto';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  AR_TYP,
  EVIDENCE_PROFILE,
  EVIDENCE_TYP,
  HUB_ID,
  createAppraiser,
  importSigningKey,
  joseReason,
  newUeid,
  parseReferenceValues,
  parseTrustStore,
  referenceEntryFor,
  signAttestationResult,
  signEvidence,
  spokeIdOf,
  type Appraiser,
  type SigningKey,
} from '../../shared/attestation.js';
import { configDigest, type ConfigFacts, type Measurements } from '../../shared/measure.js';
import {
  b64u,
  deleteAt,
  flipDecodedByte,
  forgeKey,
  forgeToken,
  insertAt,
  nonCanonical,
  replaceAt,
  segments,
  signSegments,
  swapPayload,
  type ForgeKey,
  type ForgeSigner,
} from '../helpers/token_forge.js';
import { seededRandom } from '../helpers/seeded_random.js';

const NOW = new Date(Date.UTC(2026, 0, 15, 12, 0, 0));
const T = NOW.getTime() / 1000;
const SID = 'sid-marketing-1';
const MARKETING = spokeIdOf('marketing');
const FINANCE = spokeIdOf('finance');
const GIB8 = 8 * 1024 ** 3;

function hex(char: string): string {
  return char.repeat(64);
}

function measurements(code: string, facts: Partial<ConfigFacts> = {}): Measurements {
  const allFacts: ConfigFacts = {
    mem_max_bytes: GIB8,
    agent_max_memory_mb: 7000,
    uid: 1000,
    inspector: false,
    ...facts,
  };
  return {
    model: { alg: 'sha-256', digest: hex('a'), size: 4 * 1024 * 1024 },
    code: { alg: 'sha-256', digest: code },
    deps: { alg: 'sha-256', digest: hex('c') },
    config: { ...configDigest(allFacts), facts: allFacts },
    image: { alg: 'sha-256', digest: hex('e'), selfReported: true },
  };
}

const MEAS = measurements(hex('b'));
const FINANCE_MEAS = measurements(hex('f'), { agent_max_memory_mb: 3000 });

let marketing: ForgeKey;
let finance: ForgeKey;
let attacker: ForgeKey;
let es256: ForgeKey;
let hub: ForgeKey;
let marketingKey: SigningKey;
let hubKey: SigningKey;
let referenceText: string;
let trustStore: ReturnType<typeof parseTrustStore>;

function trustJson(marketingKeys: object[]): unknown {
  return {
    version: 1,
    spokes: {
      marketing: { jwks: { keys: marketingKeys }, host: '127.0.0.1', apiPort: 8082, attestationPort: 29345 },
      finance: {
        jwks: { keys: [finance.publicJwk] },
        host: '127.0.0.1',
        apiPort: 8083,
        attestationPort: 29346,
      },
    },
  };
}

beforeAll(async () => {
  marketing = forgeKey();
  finance = forgeKey();
  attacker = forgeKey();
  es256 = forgeKey('ES256');
  hub = forgeKey();
  marketingKey = await importSigningKey(marketing.privateJwk);
  hubKey = await importSigningKey(hub.privateJwk);
  trustStore = parseTrustStore(trustJson([marketing.publicJwk]));
  referenceText = JSON.stringify({
    version: 1,
    spokes: { marketing: referenceEntryFor(MEAS), finance: referenceEntryFor(FINANCE_MEAS) },
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

function newAppraiser(text = referenceText): Appraiser {
  return createAppraiser({ trustStore, referenceValues: parseReferenceValues(text) });
}

function baseHeader(): Record<string, unknown> {
  return { alg: 'Ed25519', typ: EVIDENCE_TYP, kid: marketing.kid };
}

function baseClaims(nonce: string, meas: Measurements = MEAS): Record<string, unknown> {
  return {
    eat_nonce: nonce,
    eat_profile: EVIDENCE_PROFILE,
    sid: SID,
    ueid: newUeid(),
    swname: 'marketing-agent',
    swversion: ['0.1.0'],
    dbgstat: 'disabled',
    uptime: 42,
    meas,
    iss: MARKETING,
    sub: MARKETING,
    aud: HUB_ID,
    iat: T,
    exp: T + 60,
    jti: 'jti-0123456789abcdefghij',
  };
}

/** What a case may change; a value of `undefined` removes that member. */
interface Forge {
  header?: Record<string, unknown> | string;
  claims?: Record<string, unknown> | string;
  signer?: ForgeSigner;
  nonce?: string;
  meas?: Measurements;
}

function forge(ap: Appraiser, f: Forge = {}): string {
  const nonce = f.nonce ?? ap.issueNonce('marketing', SID, NOW);
  const header = typeof f.header === 'string' ? f.header : { ...baseHeader(), ...f.header };
  const claims = typeof f.claims === 'string' ? f.claims : { ...baseClaims(nonce, f.meas), ...f.claims };
  return forgeToken(header, claims, f.signer ?? { kind: 'ed25519', key: marketing.privateKey });
}

async function genuine(
  ap: Appraiser,
  nonce = ap.issueNonce('marketing', SID, NOW),
  meas = MEAS,
): Promise<string> {
  return signEvidence(
    marketingKey,
    {
      spokeName: 'marketing',
      nonce,
      sid: SID,
      measurements: meas,
      ueid: newUeid(),
      swname: 'marketing-agent',
      swversion: '0.1.0',
      dbgstat: 'disabled',
      uptimeSeconds: 42,
    },
    NOW,
  );
}

type Submission = string | { token: unknown; sid?: string; spoke?: string };
interface Row {
  id: string;
  what: string;
  make: (ap: Appraiser) => Submission | Promise<Submission>;
  reasons: string[];
}

async function run(row: Row): Promise<{ status: string; reasons: string[] }> {
  const ap = newAppraiser();
  const made = await row.make(ap);
  const submission = typeof made === 'string' ? { token: made } : made;
  return ap.appraise(submission.spoke ?? 'marketing', submission.sid ?? SID, submission.token, NOW);
}

const SIG86 = 'A'.repeat(86);

function table(rows: Row[]): void {
  it.each(rows)('$id $what → $reasons', async (row) => {
    const result = await run(row);
    expect(result.status).toBe('contraindicated');
    expect(result.reasons).toEqual(row.reasons);
  });
}

describe('genuine evidence', () => {
  it('affirms evidence signed by the spoke for its session, with the nonce the hub issued', async () => {
    const ap = newAppraiser();
    const result = await ap.appraise('marketing', SID, await genuine(ap), NOW);
    expect(result).toMatchObject({
      status: 'affirming',
      reasons: [],
      kid: marketing.kid,
      measurements: MEAS,
    });
    expect(result.policyId).toBe(ap.policyId);
  });

  it('H23 accepts a typ that differs only in case (media types are case-insensitive)', async () => {
    const ap = newAppraiser();
    const result = await ap.appraise(
      'marketing',
      SID,
      forge(ap, { header: { typ: 'SPOKE-EVIDENCE+JWT' } }),
      NOW,
    );
    expect(result.reasons).toEqual([]);
  });

  it('C02 accepts exp = now − tolerance + 1 at the boundary', async () => {
    const ap = newAppraiser();
    const token = forge(ap, { claims: { iat: T - 64, exp: T - 4 } });
    expect((await ap.appraise('marketing', SID, token, NOW)).status).toBe('affirming');
  });

  it('accepts either key while a spoke key is rotated (two kids in the trust store)', async () => {
    const next = forgeKey();
    const rotating = parseTrustStore(trustJson([marketing.publicJwk, next.publicJwk]));
    const ap = createAppraiser({
      trustStore: rotating,
      referenceValues: parseReferenceValues(referenceText),
    });
    const old = await ap.appraise('marketing', SID, forge(ap), NOW);
    const fresh = await ap.appraise(
      'marketing',
      SID,
      forge(ap, { header: { kid: next.kid }, signer: { kind: 'ed25519', key: next.privateKey } }),
      NOW,
    );
    expect([old.status, fresh.status]).toEqual(['affirming', 'affirming']);
  });
});

describe('§3.1 header and algorithm', () => {
  const hmacWithPublicKey = (hash: 'sha256' | 'sha512'): ForgeSigner => ({
    kind: 'hmac',
    hash,
    secret: Buffer.from(marketing.publicJwk.x as string, 'base64url'),
  });
  table([
    {
      id: 'H01',
      what: 'alg none, empty signature',
      make: (ap) => forge(ap, { header: { alg: 'none' }, signer: { kind: 'raw', signature: '' } }),
      reasons: ['gate.encoding'],
    },
    {
      id: 'H01',
      what: 'alg none, 86-char signature',
      make: (ap) => forge(ap, { header: { alg: 'none' }, signer: { kind: 'raw', signature: SIG86 } }),
      reasons: ['jose.alg'],
    },
    ...['None', 'NONE', 'nOnE'].map((alg) => ({
      id: 'H02',
      what: `alg ${alg}`,
      make: (ap: Appraiser) => forge(ap, { header: { alg }, signer: { kind: 'raw', signature: SIG86 } }),
      reasons: ['jose.alg'],
    })),
    {
      id: 'H02',
      what: 'alg ""',
      make: (ap) => forge(ap, { header: { alg: '' }, signer: { kind: 'raw', signature: SIG86 } }),
      reasons: ['jose.jws_invalid'],
    },
    {
      id: 'H03',
      what: 'HS256 keyed with the raw public key (43-char MAC)',
      make: (ap) => forge(ap, { header: { alg: 'HS256' }, signer: hmacWithPublicKey('sha256') }),
      reasons: ['gate.encoding'],
    },
    {
      id: 'H03',
      what: 'HS512 keyed with the raw public key (86-char MAC)',
      make: (ap) => forge(ap, { header: { alg: 'HS512' }, signer: hmacWithPublicKey('sha512') }),
      reasons: ['jose.alg'],
    },
    {
      id: 'H04',
      what: 'HS512 keyed with the SPKI PEM text',
      make: (ap) =>
        forge(ap, {
          header: { alg: 'HS512' },
          signer: {
            kind: 'hmac',
            hash: 'sha512',
            secret: marketing.publicKey.export({ type: 'spki', format: 'pem' }) as string,
          },
        }),
      reasons: ['jose.alg'],
    },
    ...['ed25519', 'EdDSA', 'ES256K', 'RS1'].map((alg) => ({
      id: 'H05',
      what: `alg ${alg}`,
      make: (ap: Appraiser) => forge(ap, { header: { alg } }),
      reasons: ['jose.alg'],
    })),
    ...[
      ['array', ['Ed25519']],
      ['object', { alg: 'Ed25519' }],
      ['number', 1],
    ].map(([what, alg]) => ({
      id: 'H06',
      what: `alg as ${what as string}`,
      make: (ap: Appraiser) => forge(ap, { header: { alg } }),
      reasons: ['jose.jws_invalid'],
    })),
    {
      id: 'H07',
      what: 'ES256 token against the Ed25519 allow-list',
      make: (ap) =>
        forge(ap, {
          header: { alg: 'ES256', kid: es256.kid },
          signer: { kind: 'es256', key: es256.privateKey },
        }),
      reasons: ['jose.alg'],
    },
    {
      id: 'H08',
      what: "embedded jwk with the victim's kid",
      make: (ap) =>
        forge(ap, {
          header: { jwk: attacker.publicJwk },
          signer: { kind: 'ed25519', key: attacker.privateKey },
        }),
      reasons: ['gate.header'],
    },
    {
      id: 'H08',
      what: 'embedded jwk without kid',
      make: (ap) =>
        forge(ap, {
          header: { kid: undefined, jwk: attacker.publicJwk },
          signer: { kind: 'ed25519', key: attacker.privateKey },
        }),
      reasons: ['gate.header'],
    },
    ...['x5u', 'x5c', 'x5t#S256'].map((member) => ({
      id: 'H10',
      what: `header ${member}`,
      make: (ap: Appraiser) =>
        forge(ap, { header: { [member]: member === 'x5c' ? ['MIIB'] : 'https://127.0.0.1:1/cert' } }),
      reasons: ['gate.header'],
    })),
    ...['../../../dev/null', "' OR 1=1 --", 'kid\u0000', 'kid\r\nX-Evil: 1', 'k'.repeat(65)].map((kid) => ({
      id: 'H11',
      what: `kid ${JSON.stringify(kid).slice(0, 24)}`,
      make: (ap: Appraiser) => forge(ap, { header: { kid } }),
      reasons: ['gate.header'],
    })),
    {
      id: 'H11',
      what: 'well-formed kid that is not in the keyset',
      make: (ap) => forge(ap, { header: { kid: attacker.kid } }),
      reasons: ['jose.no_key'],
    },
    {
      id: 'H12',
      what: 'kid of 64 KiB',
      make: (ap) => forge(ap, { header: { kid: 'k'.repeat(65536) } }),
      reasons: ['gate.size'],
    },
    {
      id: 'H12',
      what: 'kid as an array',
      make: (ap) => forge(ap, { header: { kid: [marketing.kid] } }),
      reasons: ['gate.header'],
    },
    {
      id: 'H12',
      what: 'kid as an object',
      make: (ap) => forge(ap, { header: { kid: { id: marketing.kid } } }),
      reasons: ['gate.header'],
    },
    {
      id: 'H13',
      what: 'kid missing while one key matches the alg',
      make: (ap) => forge(ap, { header: { kid: undefined } }),
      reasons: ['gate.header'],
    },
    {
      id: 'H14',
      what: "finance's key and kid with iss/sub marketing",
      make: (ap) =>
        forge(ap, { header: { kid: finance.kid }, signer: { kind: 'ed25519', key: finance.privateKey } }),
      reasons: ['jose.no_key'],
    },
    {
      id: 'H17',
      what: 'crit ["x-unknown"]',
      make: (ap) => forge(ap, { header: { crit: ['x-unknown'], 'x-unknown': 1 } }),
      reasons: ['gate.header'],
    },
    {
      id: 'H18',
      what: 'crit ["b64"], b64 false',
      make: (ap) => forge(ap, { header: { crit: ['b64'], b64: false } }),
      reasons: ['gate.header'],
    },
    {
      id: 'H19',
      what: 'b64 false without crit',
      make: (ap) => forge(ap, { header: { b64: false } }),
      reasons: ['gate.header'],
    },
    {
      id: 'H20',
      what: 'duplicate alg member (none, then Ed25519)',
      make: (ap) =>
        forge(ap, {
          header: `{"alg":"none","typ":"${EVIDENCE_TYP}","kid":"${marketing.kid}","alg":"Ed25519"}`,
        }),
      reasons: ['gate.noncanonical'],
    },
    {
      id: 'H21',
      what: '__proto__ member in the header',
      make: (ap) =>
        forge(ap, {
          header: `{"alg":"Ed25519","typ":"${EVIDENCE_TYP}","kid":"${marketing.kid}","__proto__":{"status":"affirming"}}`,
        }),
      reasons: ['gate.header'],
    },
    {
      id: 'H22',
      what: 'typ missing',
      make: (ap) => forge(ap, { header: { typ: undefined } }),
      reasons: ['gate.header'],
    },
    {
      id: 'H22',
      what: 'typ JWT',
      make: (ap) => forge(ap, { header: { typ: 'JWT' } }),
      reasons: ['claims.typ'],
    },
    {
      id: 'H22',
      what: "the AR's typ on evidence",
      make: (ap) => forge(ap, { header: { typ: AR_TYP } }),
      reasons: ['claims.typ'],
    },
    {
      id: 'H24',
      what: 'hub AR token presented as evidence',
      make: async (ap) => {
        const affirmed = await ap.appraise('marketing', SID, await genuine(ap), NOW);
        return signAttestationResult(hubKey, 'marketing', SID, affirmed, ap.policyId, NOW);
      },
      reasons: ['jose.no_key'],
    },
  ]);

  it('H09 refuses a jku header and never fetches anything', async () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    const result = await run({
      id: 'H09',
      what: 'jku',
      make: (ap) => forge(ap, { header: { jku: 'http://127.0.0.1:9/jwks.json' } }),
      reasons: [],
    });
    expect(result.reasons).toEqual(['gate.header']);
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('H21 keeps __proto__ claims as a rejected unknown member and pollutes nothing', async () => {
    const ap = newAppraiser();
    const nonce = ap.issueNonce('marketing', SID, NOW);
    const claims = JSON.stringify(baseClaims(nonce)).replace(
      /^\{/,
      '{"__proto__":{"status":"affirming","polluted":true},',
    );
    const result = await ap.appraise('marketing', SID, forge(ap, { claims, nonce }), NOW);
    expect(result.reasons).toEqual(['claims.unknown']);
    expect(result.status).toBe('contraindicated');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('status');
  });

  it('H04 maps the TypeError jose throws for an HMAC token on a public key to a reason instead of escaping', async () => {
    const token = forgeToken(
      { alg: 'HS256', typ: EVIDENCE_TYP },
      { sub: 'x' },
      { kind: 'hmac', hash: 'sha256', secret: 'pem' },
    );
    const publicKey = createPublicKey(marketing.publicKey.export({ type: 'spki', format: 'pem' }));
    const error = await jwtVerify(token, publicKey).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(joseReason(error)).toBe('internal.exception');
  });
});

describe('§3.2 structure and encoding', () => {
  const withSig = (sig: (s: string) => string) => async (ap: Appraiser) => {
    const [h, p, s] = segments(await genuine(ap));
    return `${h}.${p}.${sig(s)}`;
  };
  table([
    { id: 'E01', what: 'signature stripped', make: withSig(() => ''), reasons: ['gate.encoding'] },
    {
      id: 'E02',
      what: 'two segments',
      make: async (ap) =>
        segments(await genuine(ap))
          .slice(0, 2)
          .join('.'),
      reasons: ['gate.encoding'],
    },
    {
      id: 'E02',
      what: 'four segments',
      make: async (ap) => `${await genuine(ap)}.${SIG86}`,
      reasons: ['gate.encoding'],
    },
    {
      id: 'E02',
      what: 'five segments (JWE-shaped)',
      make: async (ap) => `${await genuine(ap)}.${SIG86}.${SIG86}`,
      reasons: ['gate.encoding'],
    },
    { id: 'E02', what: 'empty string', make: () => '', reasons: ['gate.encoding'] },
    { id: 'E02', what: '".."', make: () => '..', reasons: ['gate.encoding'] },
    {
      id: 'E03',
      what: 'eat_nonce changed in the payload, signature kept',
      make: async (ap) => {
        const token = await genuine(ap);
        return swapPayload(token, { ...baseClaims(ap.issueNonce('marketing', SID, NOW)) });
      },
      reasons: ['jose.signature'],
    },
    {
      id: 'E04',
      what: 'standard-base64 "+" in the signature',
      make: withSig((s) => replaceAt(s, 10, '+')),
      reasons: ['gate.encoding'],
    },
    {
      id: 'E04',
      what: 'standard-base64 "/" in the payload',
      make: async (ap) => replaceAt(await genuine(ap), 120, '/'),
      reasons: ['gate.encoding'],
    },
    {
      id: 'E05',
      what: '"==" padding on the signature',
      make: withSig((s) => `${s}==`),
      reasons: ['gate.encoding'],
    },
    {
      id: 'E06',
      what: 'space inside the signature',
      make: withSig((s) => insertAt(s, 40, ' ')),
      reasons: ['gate.encoding'],
    },
    {
      id: 'E06',
      what: 'trailing newline',
      make: async (ap) => `${await genuine(ap)}\n`,
      reasons: ['gate.encoding'],
    },
    {
      id: 'E07',
      what: 'space in the header',
      make: async (ap) => insertAt(await genuine(ap), 5, ' '),
      reasons: ['gate.encoding'],
    },
    {
      id: 'E07',
      what: '"*" in the payload',
      make: async (ap) => insertAt(await genuine(ap), 150, '*'),
      reasons: ['gate.encoding'],
    },
    {
      id: 'E07',
      what: '"?" in the header',
      make: async (ap) => insertAt(await genuine(ap), 7, '?'),
      reasons: ['gate.encoding'],
    },
    {
      id: 'E08',
      what: 'signature with non-zero trailing bits',
      make: withSig((s) => nonCanonical(s)),
      reasons: ['gate.noncanonical'],
    },
    {
      id: 'E09',
      what: 'header null (too short a segment)',
      make: (ap) => forge(ap, { header: 'null' }),
      reasons: ['gate.encoding'],
    },
    {
      id: 'E09',
      what: 'header an array',
      make: (ap) => forge(ap, { header: '["alg","Ed25519","typ"]' }),
      reasons: ['gate.json'],
    },
    {
      id: 'E09',
      what: 'header a string',
      make: (ap) => forge(ap, { header: '"spoke-evidence+jwt"' }),
      reasons: ['gate.json'],
    },
    { id: 'E09', what: 'header empty', make: (ap) => forge(ap, { header: '' }), reasons: ['gate.encoding'] },
    {
      id: 'E10',
      what: 'claims a JSON array',
      make: (ap) => forge(ap, { claims: '["eat_nonce","meas"]' }),
      reasons: ['gate.json'],
    },
    {
      id: 'E10',
      what: 'claims a JSON number',
      make: (ap) => forge(ap, { claims: '12345678901234' }),
      reasons: ['gate.json'],
    },
    {
      id: 'E11',
      what: 'invalid UTF-8 in the claims',
      make: (ap) => {
        const payload = Buffer.concat([
          Buffer.from(
            JSON.stringify(baseClaims(ap.issueNonce('marketing', SID, NOW))).slice(0, -1) + ',"x":"',
          ),
          Buffer.from([0xff, 0xfe]),
          Buffer.from('"}'),
        ]);
        return signSegments(b64u(JSON.stringify(baseHeader())), b64u(payload), {
          kind: 'ed25519',
          key: marketing.privateKey,
        });
      },
      reasons: ['gate.utf8'],
    },
    {
      id: 'E12',
      what: 'duplicate sub, the second naming finance',
      make: (ap) =>
        forge(ap, {
          claims: JSON.stringify(baseClaims(ap.issueNonce('marketing', SID, NOW))).replace(
            /\}$/,
            `,"sub":"${FINANCE}"}`,
          ),
        }),
      reasons: ['gate.noncanonical'],
    },
    {
      id: 'E13',
      what: 'signed 1 MiB payload',
      make: (ap) => forge(ap, { claims: { pad: 'x'.repeat(1 << 20) } }),
      reasons: ['gate.size'],
    },
    {
      id: 'E14',
      what: '200 000 levels of nesting in a claim',
      make: (ap) =>
        forge(ap, {
          claims: JSON.stringify(baseClaims(ap.issueNonce('marketing', SID, NOW))).replace(
            /\}$/,
            `,"deep":${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
          ),
        }),
      reasons: ['gate.size'],
    },
    {
      id: 'E15',
      what: 'JSON (flattened) serialisation',
      make: async (ap) => {
        const [h, p, s] = segments(await genuine(ap));
        return JSON.stringify({ protected: h, payload: p, signature: s });
      },
      reasons: ['gate.encoding'],
    },
  ]);

  it('E13 rejects an 8 MiB token with a bad signature before any cryptography, in well under 50 ms', async () => {
    const ap = newAppraiser();
    const huge = `${b64u(JSON.stringify(baseHeader()))}.${'A'.repeat(8 << 20)}.${SIG86}`;
    const started = performance.now();
    const result = await ap.appraise('marketing', SID, huge, NOW);
    expect(result.reasons).toEqual(['gate.size']);
    expect(performance.now() - started).toBeLessThan(50);
  });

  it('rejects evidence that is not a string at all', async () => {
    const ap = newAppraiser();
    for (const token of [undefined, null, 42, { token: 'x' }, ['a.b.c']]) {
      expect((await ap.appraise('marketing', SID, token, NOW)).reasons).toEqual(['gate.type']);
    }
  });
});

/** Ed25519 group order L, little-endian arithmetic on the S half of a signature. */
const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;

function addLToS(signature: string): string {
  const bytes = Buffer.from(signature, 'base64url');
  const s = BigInt(`0x${Buffer.from(bytes.subarray(32)).reverse().toString('hex')}`) + ED25519_L;
  const sBytes = Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse();
  return Buffer.concat([bytes.subarray(0, 32), sBytes]).toString('base64url');
}

describe('§3.3 signatures', () => {
  table([
    {
      id: 'G01',
      what: 'ES256 psychic signature r = s = 0',
      make: (ap) =>
        forge(ap, {
          header: { alg: 'ES256', kid: es256.kid },
          signer: { kind: 'raw', signature: b64u(new Uint8Array(64)) },
        }),
      reasons: ['jose.alg'],
    },
    {
      id: 'G01',
      what: 'Ed25519 all-zero signature',
      make: (ap) => forge(ap, { signer: { kind: 'raw', signature: b64u(new Uint8Array(64)) } }),
      reasons: ['jose.signature'],
    },
    {
      id: 'G02',
      what: 'ES256 signature in DER',
      make: (ap) =>
        forge(ap, {
          header: { alg: 'ES256', kid: es256.kid },
          signer: { kind: 'es256', key: es256.privateKey, encoding: 'der' },
        }),
      reasons: ['gate.encoding'],
    },
    {
      id: 'G04',
      what: 'Ed25519 S + L (non-canonical scalar)',
      make: async (ap) => {
        const [h, p, s] = segments(await genuine(ap));
        return `${h}.${p}.${addLToS(s)}`;
      },
      reasons: ['jose.signature'],
    },
    {
      id: 'G05',
      what: "attacker key carrying the victim's kid",
      make: (ap) => forge(ap, { signer: { kind: 'ed25519', key: attacker.privateKey } }),
      reasons: ['jose.signature'],
    },
  ]);

  it('G03 keys replay on the nonce claim, not on token bytes: a re-signed twin of used evidence is a replay', async () => {
    const ap = newAppraiser();
    const nonce = ap.issueNonce('marketing', SID, NOW);
    const first = await ap.appraise('marketing', SID, await genuine(ap, nonce), NOW);
    const twin = await genuine(ap, nonce);
    expect(first.status).toBe('affirming');
    expect((await ap.appraise('marketing', SID, twin, NOW)).reasons).toEqual(['nonce.replayed']);
  });

  it('G03 ES256 is malleable, (r, n − s) verifies, which is why replay protection cannot key on signatures', async () => {
    const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
    const token = forgeToken(
      { alg: 'ES256', kid: es256.kid },
      { x: 1 },
      { kind: 'es256', key: es256.privateKey },
    );
    const [h, p, s] = segments(token);
    const sig = Buffer.from(s, 'base64url');
    const sValue = BigInt(`0x${sig.subarray(32).toString('hex')}`);
    const twin = Buffer.concat([
      sig.subarray(0, 32),
      Buffer.from((n - sValue).toString(16).padStart(64, '0'), 'hex'),
    ]);
    const keys = createLocalJWKSet({ keys: [es256.publicJwk] });
    await expect(
      jwtVerify(`${h}.${p}.${b64u(twin)}`, keys, { algorithms: ['ES256'] }),
    ).resolves.toBeDefined();
    expect(b64u(twin)).not.toBe(s);
  });
});

describe('§3.4 claims and time', () => {
  table([
    {
      id: 'C01',
      what: 'exp long past',
      make: (ap) => forge(ap, { claims: { iat: T - 70, exp: T - 10 } }),
      reasons: ['claims.exp'],
    },
    {
      id: 'C02',
      what: 'exp = now − tolerance',
      make: (ap) => forge(ap, { claims: { iat: T - 65, exp: T - 5 } }),
      reasons: ['claims.exp'],
    },
    {
      id: 'C03',
      what: 'exp missing',
      make: (ap) => forge(ap, { claims: { exp: undefined } }),
      reasons: ['claims.exp'],
    },
    ...[
      ['string', 'x'],
      ['null', null],
      ['true', true],
      ['object', {}],
    ].map(([what, exp]) => ({
      id: 'C04',
      what: `exp as ${what as string}`,
      make: (ap: Appraiser) => forge(ap, { claims: { exp } }),
      reasons: ['claims.exp'],
    })),
    {
      id: 'C05',
      what: 'exp = 1e308',
      make: (ap) => forge(ap, { claims: { exp: 1e308 } }),
      reasons: ['claims.exp'],
    },
    {
      id: 'C05',
      what: 'exp − iat = 61',
      make: (ap) => forge(ap, { claims: { exp: T + 61 } }),
      reasons: ['claims.lifetime'],
    },
    {
      id: 'C06',
      what: 'float exp (now + 60.25)',
      make: (ap) => forge(ap, { claims: { exp: T + 59.25 } }),
      reasons: ['claims.exp'],
    },
    {
      id: 'C06',
      what: 'float iat',
      make: (ap) => forge(ap, { claims: { iat: T - 0.5 } }),
      reasons: ['claims.iat'],
    },
    {
      id: 'C07',
      what: 'nbf in the future',
      make: (ap) => forge(ap, { claims: { nbf: T + 30 } }),
      reasons: ['claims.nbf'],
    },
    {
      id: 'C07',
      what: 'nbf in the past (not in the profile)',
      make: (ap) => forge(ap, { claims: { nbf: T - 1 } }),
      reasons: ['claims.unknown'],
    },
    {
      id: 'C08',
      what: 'iat in the future beyond tolerance',
      make: (ap) => forge(ap, { claims: { iat: T + 10, exp: T + 60 } }),
      reasons: ['claims.iat'],
    },
    {
      id: 'C08',
      what: 'iat older than maxTokenAge',
      make: (ap) => forge(ap, { claims: { iat: T - 70, exp: T + 30 } }),
      reasons: ['claims.iat'],
    },
    {
      id: 'C09',
      what: 'wrong aud',
      make: (ap) => forge(ap, { claims: { aud: spokeIdOf('finance') } }),
      reasons: ['claims.aud'],
    },
    {
      id: 'C09',
      what: 'aud as an object',
      make: (ap) => forge(ap, { claims: { aud: { 0: HUB_ID, length: 1 } } }),
      reasons: ['claims.aud'],
    },
    {
      id: 'C10',
      what: 'aud = [hub, other]',
      make: (ap) => forge(ap, { claims: { aud: [HUB_ID, 'spiffe://evil/x'] } }),
      reasons: ['claims.aud'],
    },
    {
      id: 'C11',
      what: 'wrong iss',
      make: (ap) => forge(ap, { claims: { iss: FINANCE } }),
      reasons: ['claims.iss'],
    },
    {
      id: 'C11',
      what: 'iss as an array',
      make: (ap) => forge(ap, { claims: { iss: [MARKETING] } }),
      reasons: ['claims.iss'],
    },
    {
      id: 'C12',
      what: 'sub ≠ iss (sub = finance)',
      make: (ap) => forge(ap, { claims: { sub: FINANCE } }),
      reasons: ['claims.sub'],
    },
    ...[
      ['Cyrillic а', 'spiffe://agenthub.internal/spoke/m\u0430rketing'],
      ['full-width', 'spiffe://agenthub.internal/spoke/\uff4darketing'],
      ['trailing space', `${MARKETING} `],
      ['upper case', MARKETING.toUpperCase()],
    ].map(([what, iss]) => ({
      id: 'C13',
      what: `confusable iss/sub (${what as string})`,
      make: (ap: Appraiser) => forge(ap, { claims: { iss, sub: iss } }),
      reasons: ['claims.iss'],
    })),
    {
      id: 'C14',
      what: 'jti missing',
      make: (ap) => forge(ap, { claims: { jti: undefined } }),
      reasons: ['claims.jti'],
    },
    {
      id: 'C14',
      what: 'jti of 65 characters',
      make: (ap) => forge(ap, { claims: { jti: 'j'.repeat(65) } }),
      reasons: ['claims.jti'],
    },
  ]);
});

describe('§3.5 nonce and session binding', () => {
  table([
    {
      id: 'N01',
      what: 'eat_nonce missing',
      make: (ap) => forge(ap, { claims: { eat_nonce: undefined } }),
      reasons: ['claims.eat_nonce'],
    },
    ...[
      ['array', (n: string) => [n]],
      ['number', () => 12345],
      ['null', () => null],
    ].map(([what, f]) => ({
      id: 'N02',
      what: `eat_nonce as ${what as string}`,
      make: (ap: Appraiser) =>
        forge(ap, {
          claims: { eat_nonce: (f as (n: string) => unknown)(ap.issueNonce('marketing', SID, NOW)) },
        }),
      reasons: ['claims.eat_nonce'],
    })),
    {
      id: 'N03',
      what: 'nonce of 42 characters',
      make: (ap) => forge(ap, { claims: { eat_nonce: 'n'.repeat(42) } }),
      reasons: ['claims.eat_nonce'],
    },
    {
      id: 'N03',
      what: 'nonce of 89 characters',
      make: (ap) => forge(ap, { claims: { eat_nonce: 'n'.repeat(89) } }),
      reasons: ['claims.eat_nonce'],
    },
    {
      id: 'N03',
      what: 'nonce not base64url',
      make: (ap) => forge(ap, { claims: { eat_nonce: `${'n'.repeat(41)}+/` } }),
      reasons: ['claims.eat_nonce'],
    },
    {
      id: 'N04',
      what: 'never-issued random nonce',
      make: (ap) => forge(ap, { nonce: b64u(new Uint8Array(32).fill(7)) }),
      reasons: ['nonce.unknown'],
    },
    {
      id: 'N06',
      what: 'nonce issued to finance',
      make: (ap) => forge(ap, { nonce: ap.issueNonce('finance', SID, NOW) }),
      reasons: ['nonce.spoke'],
    },
    {
      id: 'N07',
      what: 'nonce from a previous session',
      make: (ap) => forge(ap, { nonce: ap.issueNonce('marketing', 'sid-before-reconnect', NOW) }),
      reasons: ['nonce.sid'],
    },
    {
      id: 'N08',
      what: 'nonce older than 30 s',
      make: (ap) => forge(ap, { nonce: ap.issueNonce('marketing', SID, new Date(NOW.getTime() - 31_000)) }),
      reasons: ['nonce.expired'],
    },
    {
      id: 'N10',
      what: "evidence sid ≠ the session's sid",
      make: (ap) => forge(ap, { claims: { sid: 'sid-other' } }),
      reasons: ['claims.sid'],
    },
    {
      id: 'N11',
      what: "relay: an impostor session's nonce signed by the genuine spoke for its own sid",
      make: async (ap) => ({
        token: await genuine(ap, ap.issueNonce('marketing', 'sid-impostor', NOW)),
        sid: 'sid-impostor',
      }),
      reasons: ['claims.sid'],
    },
    {
      id: '-',
      what: 'spoke not in the trust store',
      make: (ap) => ({ token: forge(ap), spoke: 'sales' }),
      reasons: ['spoke.unknown'],
    },
    {
      id: '-',
      what: 'malformed session id',
      make: (ap) => ({ token: forge(ap), sid: 'bad sid with spaces' }),
      reasons: ['session.invalid'],
    },
  ]);

  it('N05 rejects the second submission of the same evidence', async () => {
    const ap = newAppraiser();
    const token = await genuine(ap);
    expect((await ap.appraise('marketing', SID, token, NOW)).status).toBe('affirming');
    expect((await ap.appraise('marketing', SID, token, NOW)).reasons).toEqual(['nonce.replayed']);
  });

  it('N09 lets exactly one of 10 concurrent submissions of one evidence win', async () => {
    const ap = newAppraiser();
    const token = await genuine(ap);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => ap.appraise('marketing', SID, token, NOW)),
    );
    expect(results.filter((r) => r.status === 'affirming')).toHaveLength(1);
    const losers = results.filter((r) => r.status !== 'affirming');
    expect(losers).toHaveLength(9);
    for (const loser of losers) expect(['nonce.unknown', 'nonce.replayed']).toContain(loser.reasons[0]);
  });

  it('N12 keeps at most 2 outstanding nonces per spoke under a flood; evicted ones are unknown', async () => {
    const ap = newAppraiser();
    const issued = Array.from({ length: 100 }, () => ap.issueNonce('marketing', SID, NOW));
    ap.issueNonce('finance', SID, NOW);
    expect(ap.outstandingNonces('marketing', NOW)).toBe(2);
    expect(ap.outstandingNonces(undefined, NOW)).toBe(3);
    const result = await ap.appraise('marketing', SID, forge(ap, { nonce: issued[0] }), NOW);
    expect(result.reasons).toEqual(['nonce.unknown']);
    expect((await ap.appraise('marketing', SID, forge(ap, { nonce: issued[99] }), NOW)).status).toBe(
      'affirming',
    );
  });

  it('expires outstanding nonces after their TTL', () => {
    const ap = newAppraiser();
    ap.issueNonce('marketing', SID, NOW);
    expect(ap.outstandingNonces('marketing', new Date(NOW.getTime() + 30_001))).toBe(0);
  });

  it('refuses to issue a nonce for an unknown spoke or a malformed sid', () => {
    const ap = newAppraiser();
    expect(() => ap.issueNonce('sales', SID, NOW)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
    expect(() => ap.issueNonce('marketing', '', NOW)).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
  });
});

describe('§3.6 measurements and policy', () => {
  const withMeas = (change: (m: Measurements) => unknown) => (ap: Appraiser) => {
    const meas = structuredClone(MEAS) as unknown as Record<string, unknown>;
    change(meas as unknown as Measurements);
    return forge(ap, { claims: { meas } });
  };
  const facts = (changes: Partial<ConfigFacts>): Measurements => measurements(hex('b'), changes);
  table([
    {
      id: 'R01',
      what: 'model digest differs (one byte flipped)',
      make: withMeas((m) => (m.model.digest = `0${hex('a').slice(1)}`)),
      reasons: ['meas.model.mismatch'],
    },
    {
      id: 'R01',
      what: 'model size differs',
      make: withMeas((m) => (m.model.size += 1)),
      reasons: ['meas.model.mismatch'],
    },
    {
      id: 'R02',
      what: 'deps component missing',
      make: withMeas((m) => delete (m as Partial<Measurements>).deps),
      reasons: ['meas.schema'],
    },
    {
      id: 'R03',
      what: 'unknown extra component',
      make: withMeas((m) => ((m as unknown as Record<string, unknown>).tpm = m.code)),
      reasons: ['meas.schema'],
    },
    ...[
      ['upper-case', hex('B')],
      ['63 characters', hex('b').slice(1)],
      ['non-hex', hex('g')],
      ['base64', b64u(new Uint8Array(32))],
    ].map(([what, digest]) => ({
      id: 'R04',
      what: `code digest ${what as string}`,
      make: withMeas((m) => (m.code.digest = digest as string)),
      reasons: ['meas.schema'],
    })),
    ...['md5', 'sha-1', 'SHA256'].map((alg) => ({
      id: 'R05',
      what: `alg ${alg}`,
      make: withMeas((m) => ((m.code as { alg: string }).alg = alg)),
      reasons: ['meas.schema'],
    })),
    {
      id: 'R06',
      what: "finance's code digest presented by marketing",
      make: withMeas((m) => (m.code.digest = FINANCE_MEAS.code.digest)),
      reasons: ['meas.code.mismatch'],
    },
    {
      id: 'R07',
      what: 'memory.max unlimited while 8 GiB is expected',
      make: (ap) => forge(ap, { meas: facts({ mem_max_bytes: null }) }),
      reasons: ['config.mem_max.mismatch'],
    },
    {
      id: 'R07',
      what: 'uid 0',
      make: (ap) => forge(ap, { meas: facts({ uid: 0 }) }),
      reasons: ['config.uid.mismatch'],
    },
    {
      id: 'R07',
      what: 'a different LLM memory budget',
      make: (ap) => forge(ap, { meas: facts({ agent_max_memory_mb: 9000 }) }),
      reasons: ['config.agent_max_memory.mismatch'],
    },
    {
      id: 'R07',
      what: 'facts that do not match the config digest',
      make: withMeas((m) => (m.config.facts.uid = 0)),
      reasons: ['config.digest.invalid', 'config.uid.mismatch'],
    },
    {
      id: 'R08',
      what: 'dbgstat enabled',
      make: (ap) => forge(ap, { claims: { dbgstat: 'enabled' } }),
      reasons: ['dbgstat.enabled'],
    },
    {
      id: 'R08',
      what: 'inspector active in the config facts',
      make: (ap) => forge(ap, { meas: facts({ inspector: true }) }),
      reasons: ['config.inspector.enabled'],
    },
    {
      id: 'R09',
      what: 'unknown eat_profile',
      make: (ap) => forge(ap, { claims: { eat_profile: 'tag:evil.example,2026:evidence/v1' } }),
      reasons: ['claims.eat_profile'],
    },
    {
      id: 'R09',
      what: 'old eat_profile version',
      make: (ap) => forge(ap, { claims: { eat_profile: 'tag:agenthub.internal,2025:evidence/v0' } }),
      reasons: ['claims.eat_profile'],
    },
    {
      id: 'R',
      what: 'model, code and deps all wrong at once',
      make: (ap) =>
        forge(ap, {
          meas: {
            ...FINANCE_MEAS,
            config: MEAS.config,
            model: { ...MEAS.model, digest: hex('9') },
            deps: { alg: 'sha-256', digest: hex('8') },
          },
        }),
      reasons: ['meas.model.mismatch', 'meas.code.mismatch', 'meas.deps.mismatch'],
    },
  ]);

  it('R10 contraindicates a spoke whose reference values have expired', async () => {
    const expired = JSON.parse(referenceText) as { spokes: Record<string, Record<string, unknown>> };
    (expired.spokes.marketing as Record<string, unknown>).expires = new Date(
      NOW.getTime() - 1000,
    ).toISOString();
    const ap = newAppraiser(JSON.stringify(expired));
    expect((await ap.appraise('marketing', SID, await genuine(ap), NOW)).reasons).toEqual(['policy.expired']);
  });

  it('R10 contraindicates a trusted spoke with no reference values', async () => {
    const only = JSON.parse(referenceText) as { spokes: Record<string, unknown> };
    delete only.spokes.marketing;
    const ap = newAppraiser(JSON.stringify(only));
    expect((await ap.appraise('marketing', SID, await genuine(ap), NOW)).reasons).toEqual([
      'policy.no_reference',
    ]);
  });

  it('R11 gives an edited reference-values file a different policy id', () => {
    const original = parseReferenceValues(referenceText);
    const edited = parseReferenceValues(`${referenceText}\n`);
    expect(original.policyId).toMatch(/^[0-9a-f]{64}$/);
    expect(edited.policyId).not.toBe(original.policyId);
  });

  it('accepts any of several allowed values of a component (rolling upgrade)', async () => {
    const rolling = JSON.parse(referenceText) as { spokes: { marketing: { code: object[] } } };
    rolling.spokes.marketing.code.push({ alg: 'sha-256', digest: hex('d') });
    const ap = newAppraiser(JSON.stringify(rolling));
    const upgraded = { ...MEAS, code: { alg: 'sha-256' as const, digest: hex('d') } };
    expect((await ap.appraise('marketing', SID, await genuine(ap, undefined, upgraded), NOW)).status).toBe(
      'affirming',
    );
  });
});

describe('seeded mutation fuzz of genuine evidence', () => {
  const ITERATIONS = 5000;
  const alphabet =
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. \n\t*?"{}\u00e9\u0000';
  type Mutation = (token: string, random: () => number) => string;
  const pick = (random: () => number, text: string): string =>
    text[Math.floor(random() * text.length)] as string;
  const position = (token: string, random: () => number): number => Math.floor(random() * token.length);
  const mutations: Record<string, Mutation> = {
    flip: (t, r) => replaceAt(t, position(t, r), pick(r, alphabet)),
    insert: (t, r) => insertAt(t, position(t, r), pick(r, alphabet)),
    delete: (t, r) => deleteAt(t, position(t, r)),
    pad: (t, r) => {
      const parts = t.split('.');
      const which = Math.floor(r() * parts.length);
      parts[which] = `${parts[which] ?? ''}${r() < 0.5 ? '=' : '=='}`;
      return parts.join('.');
    },
    whitespace: (t, r) => insertAt(t, r() < 0.2 ? t.length : position(t, r), pick(r, ' \n\t\r')),
    byte: (t, r) =>
      flipDecodedByte(t, Math.floor(r() * 3) as 0 | 1 | 2, Math.floor(r() * 2048), 1 << Math.floor(r() * 8)),
  };

  it(`never affirms any of ${ITERATIONS} single mutations, each with a fresh nonce`, async () => {
    const random = seededRandom(0x5eed);
    const ap = newAppraiser();
    const names = Object.keys(mutations);
    const byReason = new Map<string, number>();
    let mutated = 0;
    while (mutated < ITERATIONS) {
      const token = await genuine(ap);
      const name = names[Math.floor(random() * names.length)] as string;
      const candidate = (mutations[name] as Mutation)(token, random);
      if (candidate === token) continue;
      mutated += 1;
      const result = await ap.appraise('marketing', SID, candidate, NOW);
      if (result.status === 'affirming')
        throw new Error(`mutation ${name} affirmed: ${JSON.stringify(candidate)}`);
      const reason = result.reasons[0] as string;
      byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
    }
    expect(mutated).toBe(ITERATIONS);
    expect([...byReason.keys()]).toEqual(expect.arrayContaining(['gate.encoding', 'jose.signature']));
    // Without a mutation the same pipeline affirms: the fuzz measures the mutations, not a broken fixture.
    expect((await ap.appraise('marketing', SID, await genuine(ap), NOW)).status).toBe('affirming');
  }, 120_000);
});
