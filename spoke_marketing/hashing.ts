// Customer-data normalisation and SHA-256 hashing per ad platform (Meta CAPI, Google Ads enhanced
// conversions, TikTok Events API, Snap CAPI). The platforms disagree (phone with or without '+', gmail dots),
// so every rule is keyed by platform and field.
import { createHash } from 'node:crypto';
import { AppError } from '../shared/errors.js';

/** Platforms whose customer-data hashing rules this module implements. */
export type HashPlatform = 'meta' | 'google_ads' | 'tiktok' | 'snap';

/** The hashed fields of each platform, named as the platform's API names them. */
export interface HashedFieldsByPlatform {
  /** Meta Conversions API `user_data` keys. */
  meta: 'em' | 'ph' | 'fn' | 'ln' | 'db' | 'ge' | 'ct' | 'st' | 'zp' | 'country' | 'external_id';
  /** Google Ads `UserIdentifier` / `OfflineUserAddressInfo` hashed fields. */
  google_ads:
    | 'hashed_email'
    | 'hashed_phone_number'
    | 'hashed_first_name'
    | 'hashed_last_name'
    | 'hashed_street_address';
  /** TikTok Events API 2.0 `user` keys. */
  tiktok: 'email' | 'phone' | 'external_id';
  /** Snap Conversions API `user_data` keys. */
  snap: 'em' | 'ph' | 'external_id';
}

/** Any hashed field name of `P`. */
export type HashedField<P extends HashPlatform> = HashedFieldsByPlatform[P];

const SHA256_HEX = /^[a-f0-9]{64}$/i;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Lowercase hex SHA-256 of the UTF-8 bytes of `text`. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** True when `value` already is a 64-character hex SHA-256 digest (any case). */
export function isSha256Hex(value: string): boolean {
  return SHA256_HEX.test(value.trim());
}

function invalid(platform: HashPlatform, field: string, reason: string): never {
  // The raw value is customer data: it never goes into the message or details.
  throw new AppError('VALIDATION_FAILED', `${platform} ${field}: ${reason}`, {
    details: { platform, field },
  });
}

function normalizeEmail(platform: HashPlatform, field: string, raw: string): string {
  const email = raw.trim().toLowerCase();
  if (!EMAIL.test(email)) invalid(platform, field, 'is not an email address');
  return email;
}

/** Google: remove '.' from the local part of gmail.com / googlemail.com addresses only (documented rule). */
function normalizeGoogleEmail(raw: string): string {
  const email = normalizeEmail('google_ads', 'hashed_email', raw);
  const at = email.lastIndexOf('@');
  const domain = email.slice(at + 1);
  if (domain !== 'gmail.com' && domain !== 'googlemail.com') return email;
  return `${email.slice(0, at).replaceAll('.', '')}@${domain}`;
}

/** Digits with the country code, no '+', no international '00' prefix or other leading zeros. */
function phoneDigits(platform: HashPlatform, field: string, raw: string): string {
  if (/[a-z]/i.test(raw)) invalid(platform, field, 'phone number contains letters');
  const digits = raw.replace(/\D/g, '').replace(/^0+/, '');
  if (digits.length < 7 || digits.length > 15) {
    invalid(platform, field, 'phone number must have 7–15 digits including the country code');
  }
  return digits;
}

/** Meta's names and cities: lowercase, no whitespace, punctuation or symbols (cities also drop digits). */
function lettersOnly(raw: string, dropDigits: boolean): string {
  const pattern = dropDigits ? /[\p{P}\p{S}\s\d]/gu : /[\p{P}\p{S}\s]/gu;
  return raw.trim().toLowerCase().normalize('NFC').replace(pattern, '');
}

// prettier-ignore
const US_STATES: Readonly<Record<string, string>> = {
  alabama: 'al', alaska: 'ak', arizona: 'az', arkansas: 'ar', california: 'ca', colorado: 'co',
  connecticut: 'ct', delaware: 'de', districtofcolumbia: 'dc', florida: 'fl', georgia: 'ga', hawaii: 'hi',
  idaho: 'id', illinois: 'il', indiana: 'in', iowa: 'ia', kansas: 'ks', kentucky: 'ky', louisiana: 'la',
  maine: 'me', maryland: 'md', massachusetts: 'ma', michigan: 'mi', minnesota: 'mn', mississippi: 'ms',
  missouri: 'mo', montana: 'mt', nebraska: 'ne', nevada: 'nv', newhampshire: 'nh', newjersey: 'nj',
  newmexico: 'nm', newyork: 'ny', northcarolina: 'nc', northdakota: 'nd', ohio: 'oh', oklahoma: 'ok',
  oregon: 'or', pennsylvania: 'pa', rhodeisland: 'ri', southcarolina: 'sc', southdakota: 'sd',
  tennessee: 'tn', texas: 'tx', utah: 'ut', vermont: 'vt', virginia: 'va', washington: 'wa',
  westvirginia: 'wv', wisconsin: 'wi', wyoming: 'wy', puertorico: 'pr', guam: 'gu',
  americansamoa: 'as', northernmarianaislands: 'mp', usvirginislands: 'vi',
};

/** Meta `st`: US state names become their 2-letter ANSI code; other states lowercase without punctuation. */
function normalizeState(raw: string): string {
  const compact = lettersOnly(raw, true);
  if (compact === '') invalid('meta', 'st', 'is empty');
  return US_STATES[compact] ?? compact;
}

/** Meta `zp`: US ZIP+4 keeps the first five digits; others lowercase without spaces or dashes. */
function normalizeZip(raw: string): string {
  const trimmed = raw.trim();
  const us = /^(\d{5})(?:[-\s]\d{4})?$/.exec(trimmed);
  if (us) return us[1]!;
  const compact = trimmed.toLowerCase().replace(/[\s-]/g, '');
  if (compact === '') invalid('meta', 'zp', 'is empty');
  return compact;
}

const NOT_COUNTRIES = new Set(['AA', 'EU', 'EZ', 'UN', 'ZZ']);
let countryByName: Map<string, string> | undefined;

/** Maps English country names (from ICU) and ISO codes to ISO 3166-1 alpha-2, built once. */
function countryCodes(): Map<string, string> {
  if (countryByName) return countryByName;
  const names = new Intl.DisplayNames(['en'], { type: 'region' });
  const map = new Map<string, string>();
  for (let first = 65; first <= 90; first += 1) {
    for (let second = 65; second <= 90; second += 1) {
      const code = String.fromCharCode(first, second);
      if (NOT_COUNTRIES.has(code) || /^(Q[M-Z]|X[A-JL-Z])$/.test(code)) continue;
      const name = names.of(code);
      if (name === undefined || name === code) continue;
      if (Intl.getCanonicalLocales(`und-${code}`)[0] !== `und-${code}`) continue;
      map.set(code.toLowerCase(), code.toLowerCase());
      map.set(lettersOnly(name, true), code.toLowerCase());
    }
  }
  const aliases: Record<string, string> = {
    usa: 'us',
    unitedstatesofamerica: 'us',
    america: 'us',
    uk: 'gb',
    greatbritain: 'gb',
    england: 'gb',
    scotland: 'gb',
    wales: 'gb',
    northernireland: 'gb',
  };
  for (const [alias, code] of Object.entries(aliases)) map.set(alias, code);
  countryByName = map;
  return map;
}

/** ISO 3166-1 alpha-2 in lowercase from a code or an English country name. */
export function normalizeCountry(raw: string, platform: HashPlatform = 'meta', field = 'country'): string {
  const code = countryCodes().get(lettersOnly(raw, true));
  if (code === undefined)
    invalid(platform, field, 'is not an ISO 3166-1 country code or English country name');
  return code;
}

function normalizeGender(raw: string): string {
  const gender = raw.trim().toLowerCase();
  if (gender === 'm' || gender === 'male') return 'm';
  if (gender === 'f' || gender === 'female') return 'f';
  return invalid('meta', 'ge', 'must be m, f, male or female');
}

/**
 * Meta `db` as YYYYMMDD. Accepts YYYYMMDD, YYYY-MM-DD, YYYY/MM/DD and MM/DD/YYYY (US order; DD/MM/YYYY only
 * when the first number cannot be a month). Rejects impossible dates.
 */
function normalizeBirthDate(raw: string): string {
  const text = raw.trim();
  let year: number;
  let month: number;
  let day: number;
  const isoLike = /^(\d{4})[-/.]?(\d{2})[-/.]?(\d{2})$/.exec(text);
  const usLike = /^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$/.exec(text);
  if (isoLike) {
    [year, month, day] = [Number(isoLike[1]), Number(isoLike[2]), Number(isoLike[3])];
  } else if (usLike) {
    const first = Number(usLike[1]);
    const second = Number(usLike[2]);
    year = Number(usLike[3]);
    [month, day] = first > 12 ? [second, first] : [first, second];
  } else {
    return invalid('meta', 'db', 'date of birth must be YYYYMMDD, YYYY-MM-DD or MM/DD/YYYY');
  }
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    invalid('meta', 'db', 'is not a calendar date');
  }
  return `${String(year).padStart(4, '0')}${String(month).padStart(2, '0')}${String(day).padStart(2, '0')}`;
}

function nonEmpty(platform: HashPlatform, field: string, value: string): string {
  if (value === '') invalid(platform, field, 'is empty');
  return value;
}

/**
 * The string a platform hashes for `field`, normalised exactly as that platform documents:
 * - Meta: `em` trim+lowercase (dots and +tags kept); `ph` digits with country code, no '+'; `fn`/`ln`
 *   lowercase without spaces or punctuation; `ct` also without digits; `st` 2-letter code for US states;
 *   `zp` first 5 digits of a US ZIP; `country` ISO-2 lowercase; `ge` m/f; `db` YYYYMMDD; `external_id` trimmed.
 * - Google Ads: email trim+lowercase, dots removed from the local part for gmail.com/googlemail.com only;
 *   phone E.164 with '+'; names and street address trim+lowercase.
 * - TikTok: email trim+lowercase; phone E.164 with '+'; external_id trim+lowercase.
 * - Snap: `em` trim+lowercase; `ph` digits with country code, no '+'; `external_id` trim+lowercase.
 * Throws VALIDATION_FAILED (without echoing the value) when the input cannot be normalised.
 */
export function normalizeField<P extends HashPlatform>(
  platform: P,
  field: HashedField<P>,
  raw: string,
): string {
  const key = `${platform}.${field as string}`;
  switch (key) {
    case 'meta.em':
    case 'tiktok.email':
    case 'snap.em':
      return normalizeEmail(platform, field, raw);
    case 'meta.ph':
    case 'snap.ph':
      return phoneDigits(platform, field, raw);
    case 'meta.fn':
    case 'meta.ln':
      return nonEmpty(platform, field, lettersOnly(raw, false));
    case 'meta.ct':
      return nonEmpty(platform, field, lettersOnly(raw, true));
    case 'meta.st':
      return normalizeState(raw);
    case 'meta.zp':
      return normalizeZip(raw);
    case 'meta.country':
      return normalizeCountry(raw);
    case 'meta.ge':
      return normalizeGender(raw);
    case 'meta.db':
      return normalizeBirthDate(raw);
    case 'meta.external_id':
      return nonEmpty(platform, field, raw.trim());
    case 'google_ads.hashed_email':
      return normalizeGoogleEmail(raw);
    case 'google_ads.hashed_phone_number':
    case 'tiktok.phone':
      return `+${phoneDigits(platform, field, raw)}`;
    case 'google_ads.hashed_first_name':
    case 'google_ads.hashed_last_name':
    case 'google_ads.hashed_street_address':
    case 'tiktok.external_id':
    case 'snap.external_id':
      return nonEmpty(platform, field, raw.trim().toLowerCase());
    default:
      throw new AppError('BAD_REQUEST', `no hashing rule for ${key}`, { details: { platform, field } });
  }
}

/**
 * SHA-256 hex of the normalised value. A value that already is a 64-hex SHA-256 digest passes through
 * (lowercased), so callers may hand over pre-hashed CRM data.
 */
export function hashField<P extends HashPlatform>(platform: P, field: HashedField<P>, raw: string): string {
  if (isSha256Hex(raw)) return raw.trim().toLowerCase();
  return sha256Hex(normalizeField(platform, field, raw));
}
