// Housing Special Ad Category targeting rules per platform (MARKETING.md §6.4), checked on the neutral
// targeting spec before any request is built, recorded or sent; a violation lists every broken rule.
import { AppError } from '../../shared/errors.js';
import type { AdPlatformName } from '../conversions.js';
import { restrictedGenders, type CampaignSpec, type LocationTarget, type TargetingSpec } from './adapter.js';

/** One broken rule. */
export interface HousingViolation {
  platform: AdPlatformName;
  /** Stable id, e.g. `meta.age_range`. */
  rule: string;
  message: string;
}

/** Meta's minimum radius around a city, address or pin for housing ads. */
export const META_HOUSING_MIN_RADIUS_MILES = 15;
const KILOMETERS_PER_MILE = 1.609344;

/**
 * Google's housing rules are not verified against Google's current "Personalized advertising" policy
 * (MARKETING.md §6.4); the conservative set applied here — no targeting by age, gender, parental status,
 * marital status or ZIP/postal code — is a superset of what the notes describe.
 */
export const GOOGLE_HOUSING_RULES_VERIFIED = false;

function radiusMiles(location: LocationTarget): number | undefined {
  if (location.radius === undefined) return undefined;
  return location.radius.unit === 'mile'
    ? location.radius.value
    : location.radius.value / KILOMETERS_PER_MILE;
}

function postalCodes(targeting: TargetingSpec): LocationTarget[] {
  return targeting.locations.filter((location) => location.kind === 'postal_code');
}

function metaViolations(targeting: TargetingSpec): string[][] {
  const found: string[][] = [];
  const ageMin = targeting.ageMin ?? 18;
  const ageMax = targeting.ageMax ?? 65;
  if (ageMin !== 18 || ageMax < 65) {
    found.push([
      'meta.age_range',
      `age must be 18–65+ for housing ads (got ${ageMin}–${targeting.ageMax ?? '65+'})`,
    ]);
  }
  if (restrictedGenders(targeting) !== undefined)
    found.push(['meta.gender', 'housing ads must target all genders']);
  const zips = postalCodes(targeting);
  if (zips.length > 0) {
    found.push([
      'meta.postal_code',
      `ZIP/postal-code targeting is not allowed (${zips.map((zip) => zip.key).join(', ')})`,
    ]);
  }
  if ((targeting.excludedLocations ?? []).length > 0) {
    found.push(['meta.location_exclusion', 'location exclusions are not allowed for housing ads']);
  }
  const narrow = targeting.locations.filter((location) => {
    if (location.kind !== 'city' && location.kind !== 'address') return false;
    const miles = radiusMiles(location);
    return miles !== undefined && miles < META_HOUSING_MIN_RADIUS_MILES - 1e-9;
  });
  if (narrow.length > 0) {
    found.push([
      'meta.radius_min_15_miles',
      `city/address targets need a radius of at least ${META_HOUSING_MIN_RADIUS_MILES} miles (${narrow.map((location) => location.name ?? location.key).join(', ')})`,
    ]);
  }
  if ((targeting.lookalikeAudienceIds ?? []).length > 0) {
    found.push(['meta.lookalike', 'lookalike audiences are not allowed for housing ads']);
  }
  if ((targeting.excludedInterests ?? []).length > 0) {
    found.push(['meta.detailed_exclusion', 'detailed-targeting exclusions are not allowed for housing ads']);
  }
  return found;
}

function tiktokViolations(targeting: TargetingSpec): string[][] {
  const found: string[][] = [];
  if ((targeting.ageMin ?? 18) !== 18 || targeting.ageMax !== undefined) {
    found.push(['tiktok.age_18_plus', 'age must be 18+ with no other age limit for special ad categories']);
  }
  if (restrictedGenders(targeting) !== undefined)
    found.push(['tiktok.gender', 'gender targeting is not allowed']);
  if (postalCodes(targeting).length > 0)
    found.push(['tiktok.postal_code', 'ZIP-code targeting is not allowed']);
  if ((targeting.lookalikeAudienceIds ?? []).length > 0) {
    found.push(['tiktok.lookalike', 'lookalike audiences are not allowed']);
  }
  if ((targeting.interestKeywords ?? []).length > 0) {
    found.push(['tiktok.interest_keywords', 'interest keywords and hashtag targeting are not allowed']);
  }
  if (targeting.targetingExpansion === true) {
    found.push(['tiktok.targeting_expansion', 'automatic targeting and targeting expansion are not allowed']);
  }
  return found;
}

function googleViolations(targeting: TargetingSpec): string[][] {
  const found: string[][] = [];
  if ((targeting.ageMin ?? 18) > 18 || targeting.ageMax !== undefined) {
    found.push(['google.age', 'age targeting is not allowed for housing ads']);
  }
  if (restrictedGenders(targeting) !== undefined)
    found.push(['google.gender', 'gender targeting is not allowed for housing ads']);
  if ((targeting.parentalStatuses ?? []).length > 0) {
    found.push(['google.parental_status', 'parental-status targeting is not allowed for housing ads']);
  }
  if ((targeting.maritalStatuses ?? []).length > 0) {
    found.push(['google.marital_status', 'marital-status targeting is not allowed for housing ads']);
  }
  if (postalCodes(targeting).length > 0) {
    found.push(['google.postal_code', 'ZIP/postal-code targeting is not allowed for housing ads']);
  }
  return found;
}

/** Every housing rule `targeting` breaks on `platform` (empty when compliant). */
export function housingTargetingViolations(
  platform: AdPlatformName,
  targeting: TargetingSpec,
): HousingViolation[] {
  const found =
    platform === 'meta'
      ? metaViolations(targeting)
      : platform === 'tiktok'
        ? tiktokViolations(targeting)
        : googleViolations(targeting);
  return found.map(([rule, message]) => ({ platform, rule: rule!, message: message! }));
}

/** Throws FORBIDDEN listing every violated rule (in message and `details.violations`). */
export function assertHousingTargeting(platform: AdPlatformName, targeting: TargetingSpec): void {
  const violations = housingTargetingViolations(platform, targeting);
  if (violations.length === 0) return;
  throw new AppError(
    'FORBIDDEN',
    `housing ad targeting breaks ${violations.length} ${platform} rule(s): ${violations.map((violation) => `${violation.rule} (${violation.message})`).join('; ')}`,
    { details: { platform, violations } },
  );
}

/** A housing campaign must name the countries it runs in (Meta `special_ad_category_country`). */
export function assertHousingCampaign(platform: AdPlatformName, spec: CampaignSpec): void {
  if (spec.specialAdCategory !== 'HOUSING') return;
  const invalid = spec.countries.filter((country) => !/^[A-Z]{2}$/.test(country));
  if (spec.countries.length === 0 || invalid.length > 0) {
    throw new AppError(
      'VALIDATION_FAILED',
      `housing campaign "${spec.name}" needs ISO-2 countries (got ${spec.countries.join(', ') || 'none'})`,
      {
        details: { platform, countries: spec.countries },
      },
    );
  }
}
