// Token forge for the attestation tests: signs arbitrary header/payload *strings* with node:crypto (Ed25519, ES256,
// HS256/HS512), so malformed tokens that SignJWT refuses to produce can be built, and mutates compact segments.
import { createHash, createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';

/** base64url without padding of a string (UTF-8) or bytes. */
export function b64u(input: string | Uint8Array): string {
  return Buffer.from(typeof input === 'string' ? Buffer.from(input, 'utf8') : input).toString('base64url');
}

/** A forged key pair: node KeyObjects plus the public JWK (kid = RFC 7638 thumbprint) and the private JWK. */
export interface ForgeKey {
  readonly alg: 'Ed25519' | 'ES256';
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly kid: string;
  readonly publicJwk: JWK;
  readonly privateJwk: JWK;
}

function thumbprint(jwk: JWK): string {
  const members =
    jwk.kty === 'OKP'
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
      : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** Generates an Ed25519 (default) or ES256 key pair with JWKs in the trust-store shape. */
export function forgeKey(alg: 'Ed25519' | 'ES256' = 'Ed25519'): ForgeKey {
  const { privateKey, publicKey } =
    alg === 'Ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = publicKey.export({ format: 'jwk' }) as JWK;
  const priv = privateKey.export({ format: 'jwk' }) as JWK;
  const kid = thumbprint(pub);
  return {
    alg,
    privateKey,
    publicKey,
    kid,
    publicJwk: { ...pub, kid, alg, use: 'sig' },
    privateJwk: { ...priv, kid, alg, use: 'sig' },
  };
}

/** How to produce the third segment. */
export type ForgeSigner =
  | { kind: 'ed25519'; key: KeyObject }
  | { kind: 'es256'; key: KeyObject; encoding?: 'ieee-p1363' | 'der' }
  | { kind: 'hmac'; hash: 'sha256' | 'sha512'; secret: Uint8Array | string }
  | { kind: 'raw'; signature: string };

/** The signing input `h.p` signed as given: header and payload are JSON text (strings) or objects to stringify. */
export function forgeToken(header: string | object, payload: string | object, signer: ForgeSigner): string {
  const h = b64u(typeof header === 'string' ? header : JSON.stringify(header));
  const p = b64u(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return signSegments(h, p, signer);
}

/** Signs already-encoded segments (lets a test sign a non-canonical or otherwise odd segment text). */
export function signSegments(h: string, p: string, signer: ForgeSigner): string {
  const input = Buffer.from(`${h}.${p}`, 'ascii');
  switch (signer.kind) {
    case 'ed25519':
      return `${h}.${p}.${b64u(sign(null, input, signer.key))}`;
    case 'es256':
      return `${h}.${p}.${b64u(sign('sha256', input, { key: signer.key, dsaEncoding: signer.encoding ?? 'ieee-p1363' }))}`;
    case 'hmac':
      return `${h}.${p}.${b64u(createHmac(signer.hash, signer.secret).update(input).digest())}`;
    case 'raw':
      return `${h}.${p}.${signer.signature}`;
  }
}

/** The three segments of a compact token. */
export function segments(token: string): [string, string, string] {
  const parts = token.split('.');
  return [parts[0] ?? '', parts[1] ?? '', parts[2] ?? ''];
}

/** Decodes the payload segment to its JSON text. */
export function payloadText(token: string): string {
  return Buffer.from(segments(token)[1], 'base64url').toString('utf8');
}

/** Replaces the payload (re-encoded from `payload`) and keeps the original header and signature. */
export function swapPayload(token: string, payload: string | object): string {
  const [h, , s] = segments(token);
  return `${h}.${b64u(typeof payload === 'string' ? payload : JSON.stringify(payload))}.${s}`;
}

/** Sets the unused low bits of a segment's last character, giving a non-canonical encoding of the same bytes. */
export function nonCanonical(segment: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const unusedBits = (6 * segment.length) % 8;
  if (unusedBits === 0) throw new Error('segment has no unused bits');
  const last = alphabet.indexOf(segment.at(-1) as string);
  return segment.slice(0, -1) + (alphabet[last | ((1 << unusedBits) - 1)] as string);
}

/** `token` with the character at `index` replaced. */
export function replaceAt(token: string, index: number, char: string): string {
  return token.slice(0, index) + char + token.slice(index + 1);
}

/** `token` with `text` inserted before `index`. */
export function insertAt(token: string, index: number, text: string): string {
  return token.slice(0, index) + text + token.slice(index);
}

/** `token` without the character at `index`. */
export function deleteAt(token: string, index: number): string {
  return token.slice(0, index) + token.slice(index + 1);
}

/** Decodes segment `which` (0 header, 1 payload, 2 signature), XORs one byte with `mask`, re-encodes canonically. */
export function flipDecodedByte(token: string, which: 0 | 1 | 2, byteIndex: number, mask: number): string {
  const parts = segments(token);
  const bytes = Buffer.from(parts[which], 'base64url');
  const at = byteIndex % bytes.length;
  bytes[at] = (bytes[at] as number) ^ (mask & 0xff || 1);
  parts[which] = bytes.toString('base64url');
  return parts.join('.');
}
