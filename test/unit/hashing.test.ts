// Per-platform normalisation and SHA-256 of customer data against every vector in
// shared/vectors/hashing_vectors.json, plus the rules the vectors do not cover.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  hashField,
  normalizeCountry,
  normalizeField,
  sha256Hex,
  type HashedField,
  type HashPlatform,
} from '../../spoke_marketing/hashing.js';
import { hasShared, sharedPath } from '../helpers/shared_data.js';

interface HashingVector {
  platform: HashPlatform;
  field: string;
  raw: string;
  normalized: string;
  sha256_hex: string;
}

function normalize(platform: HashPlatform, field: string, raw: string): string {
  return normalizeField(platform, field as HashedField<HashPlatform>, raw);
}

function hash(platform: HashPlatform, field: string, raw: string): string {
  return hashField(platform, field as HashedField<HashPlatform>, raw);
}

describe.skipIf(!hasShared('vectors/hashing_vectors.json'))('hashing vectors', () => {
  const { vectors } = JSON.parse(readFileSync(sharedPath('vectors/hashing_vectors.json'), 'utf8')) as {
    vectors: HashingVector[];
  };

  it('covers every platform in the file', () => {
    expect(new Set(vectors.map((vector) => vector.platform))).toEqual(
      new Set(['meta', 'google_ads', 'tiktok', 'snap']),
    );
  });

  it.each(vectors.map((vector) => [vector.platform, vector.field, vector.raw, vector] as const))(
    '%s %s normalises %j and hashes it',
    (platform, field, raw, vector) => {
      expect(normalize(platform, field, raw)).toBe(vector.normalized);
      expect(hash(platform, field, raw)).toBe(vector.sha256_hex);
    },
  );

  it.each(vectors.map((vector) => [vector.platform, vector.field, vector.sha256_hex] as const))(
    '%s %s passes an already-hashed value through',
    (platform, field, digest) => {
      expect(hash(platform, field, digest.toUpperCase())).toBe(digest);
    },
  );
});

describe('platform normalisation rules', () => {
  it.each([
    ['meta', 'ph', '+1 (555) 123-4567', '15551234567'],
    ['meta', 'ph', '0044 20 7946 0958', '442079460958'],
    ['google_ads', 'hashed_phone_number', '0044 20 7946 0958', '+442079460958'],
    ['tiktok', 'phone', '+1 (555) 123-4567', '+15551234567'],
    ['google_ads', 'hashed_email', ' Jane.Doe+ads@GoogleMail.com ', 'janedoe+ads@googlemail.com'],
    ['google_ads', 'hashed_email', 'jane.doe@example.co.uk', 'jane.doe@example.co.uk'],
    ['meta', 'em', 'Jane.Doe@Gmail.com', 'jane.doe@gmail.com'],
    ['meta', 'ln', " O'Brien-Smith ", 'obriensmith'],
    ['meta', 'fn', 'Zoë', 'zoë'],
    ['meta', 'ct', 'St. Louis 2', 'stlouis'],
    ['meta', 'st', 'New York', 'ny'],
    ['meta', 'st', 'Ontario', 'ontario'],
    ['meta', 'zp', 'SW1A 1AA', 'sw1a1aa'],
    ['meta', 'zp', '02139', '02139'],
    ['meta', 'country', 'USA', 'us'],
    ['meta', 'country', 'GB', 'gb'],
    ['meta', 'country', 'Germany', 'de'],
    ['meta', 'ge', 'F', 'f'],
    ['meta', 'db', '1990-01-15', '19900115'],
    ['meta', 'db', '25/12/1980', '19801225'],
    ['meta', 'external_id', ' CRM-42 ', 'CRM-42'],
    ['tiktok', 'external_id', ' CRM-42 ', 'crm-42'],
    ['google_ads', 'hashed_first_name', ' Mary Ann ', 'mary ann'],
  ] as const)('%s %s: %j → %j', (platform, field, raw, expected) => {
    expect(normalize(platform, field, raw)).toBe(expected);
    expect(hash(platform, field, raw)).toBe(sha256Hex(expected));
  });

  it.each([
    ['meta', 'em', 'not-an-email'],
    ['meta', 'ph', '12-34'],
    ['tiktok', 'phone', 'call me 555'],
    ['meta', 'ge', 'other'],
    ['meta', 'db', '02/30/1990'],
    ['meta', 'db', 'last spring'],
    ['meta', 'country', 'Atlantis'],
    ['meta', 'fn', '  ... '],
  ] as const)('%s %s rejects %j without echoing it', (platform, field, raw) => {
    let caught: unknown;
    try {
      normalize(platform, field, raw);
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: 'VALIDATION_FAILED', details: { platform, field } });
    expect((caught as Error).message).not.toContain(raw.trim());
  });

  it('refuses a field the platform does not hash', () => {
    expect(() => normalize('tiktok', 'zp', '12345')).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
  });

  it('maps ISO codes and English names, but not deprecated or private-use codes', () => {
    expect(normalizeCountry('United Kingdom')).toBe('gb');
    expect(() => normalizeCountry('EU')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => normalizeCountry('ZZ')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});
