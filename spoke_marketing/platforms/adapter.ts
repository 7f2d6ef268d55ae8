// The one `AdPlatform` interface (campaigns, ad sets, ads, insights, conversion uploads) with its
// platform-neutral specs, and the helpers every adapter shares: idempotent uploads, dry-run ids, money.
import { AppError } from '../../shared/errors.js';
import type {
  AdPlatformName,
  ConversionEvent,
  ConversionUploadLog,
  ConversionUploadStatus,
} from '../conversions.js';
import {
  createFetchSender,
  PlatformTransport,
  systemClock,
  TokenBucket,
  type Clock,
  type HttpSender,
  type PlatformMode,
  type PlatformRequest,
  type PlatformResponse,
  type RecordedRequest,
  type ResponseClass,
  type RetryPolicy,
} from './http.js';

/** `HOUSING` turns on the platform's Special Ad Category and the housing targeting rules. */
export type SpecialAdCategory = 'HOUSING' | 'NONE';

/** What a campaign optimises for, mapped to each platform's objective enum. */
export type CampaignObjective = 'awareness' | 'traffic' | 'engagement' | 'leads' | 'sales';

/** A campaign in platform-neutral form. Budgets are integer minor units of `currency`. */
export interface CampaignSpec {
  name: string;
  objective: CampaignObjective;
  /** Default PAUSED: nothing spends until someone turns it on. */
  status?: 'PAUSED' | 'ACTIVE';
  /** Required, so housing is never forgotten. */
  specialAdCategory: SpecialAdCategory;
  /** ISO-2 countries the ads run in (Meta `special_ad_category_country`). */
  countries: string[];
  /** Campaign-level daily budget (Google always needs one; Meta/TikTok optional). */
  dailyBudgetMinor?: number;
  currency: string;
}

/** A targeted place. `key` is the platform's location id (Meta key, Google geo target constant, TikTok location id). */
export interface LocationTarget {
  kind: 'country' | 'region' | 'city' | 'address' | 'postal_code';
  key: string;
  name?: string;
  /** For city and address; housing on Meta needs ≥ 15 miles. */
  radius?: { value: number; unit: 'mile' | 'kilometer' };
  /** For address (pin) targets. */
  latitude?: number;
  longitude?: number;
}

/** Audience targeting in platform-neutral form; the housing rules check this before translation. */
export interface TargetingSpec {
  locations: LocationTarget[];
  excludedLocations?: LocationTarget[];
  /** Undefined means no lower bound beyond the platform minimum (18). */
  ageMin?: number;
  /** Undefined means no upper bound (Meta 65 means 65+). */
  ageMax?: number;
  /** Undefined or 'all' means every gender. */
  genders?: 'all' | ('male' | 'female')[];
  interests?: { id: string; name?: string }[];
  /** TikTok interest keywords / hashtags. */
  interestKeywords?: string[];
  /** Detailed-targeting exclusions. */
  excludedInterests?: { id: string; name?: string }[];
  customAudienceIds?: string[];
  excludedCustomAudienceIds?: string[];
  lookalikeAudienceIds?: string[];
  /** Let the platform widen the audience (Meta Advantage audience, TikTok targeting expansion). */
  targetingExpansion?: boolean;
  /** Google demographics, e.g. PARENT, NOT_A_PARENT. */
  parentalStatuses?: string[];
  /** Google demographics (where available). */
  maritalStatuses?: string[];
}

/** The genders `targeting` narrows to, or undefined when it reaches every gender. */
export function restrictedGenders(targeting: TargetingSpec): ('male' | 'female')[] | undefined {
  const genders = targeting.genders;
  if (genders === undefined || genders === 'all') return undefined;
  return genders.includes('male') && genders.includes('female') ? undefined : genders;
}

/** What an ad set (Google ad group) optimises for. */
export type OptimizationGoal = 'link_clicks' | 'leads' | 'conversions' | 'reach';

/** An ad set / ad group in platform-neutral form. */
export interface AdSetSpec {
  campaignId: string;
  name: string;
  /** Must match the campaign's; required so the housing rules always run when they should. */
  specialAdCategory: SpecialAdCategory;
  dailyBudgetMinor?: number;
  currency: string;
  optimizationGoal: OptimizationGoal;
  /** Max bid in minor units (Google: CPC bid). */
  bidAmountMinor?: number;
  startTimeMs?: number;
  endTimeMs?: number;
  targeting: TargetingSpec;
  status?: 'PAUSED' | 'ACTIVE';
  /** Meta pixel / dataset id for conversion optimisation. */
  pixelId?: string;
}

/** Call to action shared by the platforms' enums. */
export type CallToAction = 'LEARN_MORE' | 'CONTACT_US' | 'SIGN_UP' | 'GET_QUOTE' | 'APPLY_NOW';

/** An ad in platform-neutral form; each platform reads the creative fields it needs. */
export interface AdSpec {
  adSetId: string;
  name: string;
  status?: 'PAUSED' | 'ACTIVE';
  creative: {
    linkUrl: string;
    primaryText: string;
    headline: string;
    description?: string;
    callToAction: CallToAction;
    /** Meta: Facebook page id. */
    pageId?: string;
    /** Meta: uploaded image hash. */
    imageHash?: string;
    /** TikTok: uploaded video id and identity. */
    videoId?: string;
    identityId?: string;
    /** Google responsive search ad: 3–15 headlines, 2–4 descriptions (headline/description used when absent). */
    headlines?: string[];
    descriptions?: string[];
  };
}

/** Insights request; dates are inclusive `YYYY-MM-DD` in the account time zone. */
export interface InsightsQuery {
  level: 'campaign' | 'adset' | 'ad';
  since: string;
  until: string;
  /** Restrict to one object (Meta object id, Google campaign id, TikTok campaign id). */
  objectId?: string;
}

/** One insights row, normalised; cost is exact integer micros of the account currency. */
export interface InsightRow {
  id: string;
  name?: string;
  date?: string;
  costMicros: number;
  impressions: number;
  clicks: number;
  conversions: number;
  conversionValue: number;
}

/** Outcome of a create call. In dry-run `id` is a synthetic `dry-run:…` id so a plan can be chained. */
export interface CreateResult {
  id: string;
  dryRun: boolean;
  requests: RecordedRequest[];
}

/** Outcome of an insights call (no rows in dry-run). */
export interface InsightsResult {
  dryRun: boolean;
  rows: InsightRow[];
  requests: RecordedRequest[];
}

/** Outcome of a conversion upload. */
export interface ConversionUploadResult {
  dryRun: boolean;
  /** Dedupe keys recorded now (sent in live mode). */
  accepted: string[];
  /** Dedupe keys skipped because they were already pending or sent. */
  duplicates: string[];
  /** Dedupe keys the platform rejected individually (marked failed, so they may be uploaded again). */
  rejected: string[];
  requests: RecordedRequest[];
  /** Platform responses (e.g. Google `partialFailureError`), live mode only. */
  responses: unknown[];
}

/** One ad platform. Dry-run by default: requests are built, checked and recorded, never sent. */
export interface AdPlatform {
  readonly name: AdPlatformName;
  readonly mode: PlatformMode;
  createCampaign(spec: CampaignSpec, signal?: AbortSignal): Promise<CreateResult>;
  createAdSet(spec: AdSetSpec, signal?: AbortSignal): Promise<CreateResult>;
  createAd(spec: AdSpec, signal?: AbortSignal): Promise<CreateResult>;
  getInsights(query: InsightsQuery, signal?: AbortSignal): Promise<InsightsResult>;
  uploadConversions(
    events: readonly ConversionEvent[],
    signal?: AbortSignal,
  ): Promise<ConversionUploadResult>;
  /** Every request built so far, oldest first, secrets redacted. */
  requestLog(): RecordedRequest[];
}

/** Dependencies every adapter factory takes. */
export interface PlatformDeps {
  /** Default dry-run: nothing is sent. */
  mode?: PlatformMode;
  uploadLog: ConversionUploadLog;
  /** Live-mode sender; default fetch. */
  sender?: HttpSender;
  clock?: Clock;
  retry?: Partial<RetryPolicy>;
  /** Token bucket; default burst 10, 5 requests per second. */
  rateLimit?: { capacity: number; refillPerSecond: number };
}

/** The transport an adapter sends through, with its secrets redacted from the log. */
export function createPlatformTransport(
  platform: AdPlatformName,
  deps: PlatformDeps,
  secrets: readonly (string | undefined)[],
  classify?: (response: PlatformResponse) => ResponseClass,
): PlatformTransport {
  const mode = deps.mode ?? 'dry-run';
  const clock = deps.clock ?? systemClock;
  return new PlatformTransport({
    platform,
    mode,
    secrets: secrets.filter((secret): secret is string => secret !== undefined && secret !== ''),
    ...(mode === 'live' ? { sender: deps.sender ?? createFetchSender() } : {}),
    bucket: new TokenBucket({ ...(deps.rateLimit ?? { capacity: 10, refillPerSecond: 5 }), clock }),
    ...(deps.retry === undefined ? {} : { retry: deps.retry }),
    clock,
    ...(classify === undefined ? {} : { classify }),
  });
}

/** Refuses live mode without the credentials it needs, naming each missing one. */
export function assertLiveCredentials(
  platform: AdPlatformName,
  deps: PlatformDeps,
  credentials: Readonly<Record<string, string | undefined>>,
): void {
  if ((deps.mode ?? 'dry-run') !== 'live') return;
  const missing = Object.entries(credentials)
    .filter(([, value]) => value === undefined || value === '')
    .map(([name]) => name);
  if (missing.length > 0) {
    throw new AppError('CONFIG_INVALID', `${platform} live mode needs ${missing.join(', ')}`, {
      details: { platform, missing },
    });
  }
}

/** Issues `dry-run:<platform>:<kind>:<n>` ids so dry-run plans chain campaign → ad set → ad. */
export class DryRunIds {
  readonly #platform: AdPlatformName;
  #next = 1;
  constructor(platform: AdPlatformName) {
    this.#platform = platform;
  }
  next(kind: string): string {
    return `dry-run:${this.#platform}:${kind}:${this.#next++}`;
  }
}

/** Remembers which campaigns this adapter created as housing, to refuse a non-housing ad set under one. */
export class CampaignCategories {
  readonly #categories = new Map<string, SpecialAdCategory>();
  remember(campaignId: string, category: SpecialAdCategory): void {
    this.#categories.set(campaignId, category);
  }
  assertConsistent(spec: AdSetSpec): void {
    const known = this.#categories.get(spec.campaignId);
    if (known === 'HOUSING' && spec.specialAdCategory !== 'HOUSING') {
      throw new AppError(
        'FORBIDDEN',
        `ad set "${spec.name}" must be HOUSING: campaign ${spec.campaignId} is a housing Special Ad Category campaign`,
        { details: { campaignId: spec.campaignId, violations: [{ rule: 'housing.campaign_category' }] } },
      );
    }
  }
}

/** Exact integer micros from a decimal string such as Meta's `"12.34"` spend. */
export function decimalToMicros(text: string | number | undefined): number {
  if (text === undefined || text === '') return 0;
  const value = String(text).trim();
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(value);
  if (!match) throw new AppError('UPSTREAM_ERROR', `platform returned a non-decimal amount "${value}"`);
  const fraction = (match[3] ?? '').padEnd(6, '0');
  if (fraction.length > 6 && /[1-9]/.test(fraction.slice(6))) {
    throw new AppError('UPSTREAM_ERROR', `amount "${value}" has more than 6 decimal places`);
  }
  const micros = Number(match[2]) * 1_000_000 + Number(fraction.slice(0, 6));
  return match[1] === '-' ? -micros : micros;
}

/** A count field that platforms send as a string or number. */
export function countOf(value: unknown): number {
  if (value === undefined || value === null || value === '') return 0;
  const number = Number(value);
  if (!Number.isFinite(number)) throw new AppError('UPSTREAM_ERROR', `platform returned a non-numeric count`);
  return number;
}

/** Refuses negative or fractional minor-unit money before it reaches a request. */
export function assertMinorUnits(name: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new AppError('VALIDATION_FAILED', `${name} must be a non-negative integer number of minor units`, {
      details: { [name]: value },
    });
  }
}

/** `YYYY-MM-DD`, validated. */
export function assertIsoDate(name: string, value: string): void {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) {
    throw new AppError('VALIDATION_FAILED', `${name} must be YYYY-MM-DD`, { details: { [name]: value } });
  }
}

/** One conversion payload ready to upload, with its dedupe key. */
export interface PreparedConversion<P> {
  dedupeKey: string;
  payload: P;
}

/**
 * Idempotent upload: records every prepared conversion in the log (`dry_run` in dry-run, `pending` live),
 * skips duplicates, sends the new ones in batches of `maxPerRequest` built by `requestFor`, then marks them
 * sent, or failed (this batch and every later unsent one) when a batch fails, so a retry may record them again.
 */
export async function uploadIdempotently<P>(input: {
  platform: AdPlatformName;
  transport: PlatformTransport;
  log: ConversionUploadLog;
  prepared: readonly PreparedConversion<P>[];
  maxPerRequest: number;
  requestFor: (payloads: P[]) => PlatformRequest;
  /** Throws when a 2xx response still reports a failure for the whole batch. */
  checkResponse?: (response: PlatformResponse) => void;
  /** Positions (within the batch) a 2xx response reports as rejected, e.g. Google partial failures. */
  rejectedIndexes?: (response: PlatformResponse) => ReadonlySet<number>;
  now: () => number;
  signal?: AbortSignal;
}): Promise<ConversionUploadResult> {
  const dryRun = input.transport.mode === 'dry-run';
  const status: ConversionUploadStatus = dryRun ? 'dry_run' : 'pending';
  const accepted: PreparedConversion<P>[] = [];
  const duplicates: string[] = [];
  for (const item of input.prepared) {
    const outcome = await input.log.record({
      platform: input.platform,
      dedupeKey: item.dedupeKey,
      payload: item.payload,
      status,
      createdAt: new Date(input.now()),
    });
    if (outcome === 'new') accepted.push(item);
    else duplicates.push(item.dedupeKey);
  }
  const result: ConversionUploadResult = {
    dryRun,
    accepted: accepted.map((item) => item.dedupeKey),
    duplicates,
    rejected: [],
    requests: [],
    responses: [],
  };
  for (let start = 0; start < accepted.length; start += input.maxPerRequest) {
    const batch = accepted.slice(start, start + input.maxPerRequest);
    try {
      const { recorded, response } = await input.transport.execute(
        input.requestFor(batch.map((item) => item.payload)),
        input.signal,
      );
      result.requests.push(recorded);
      if (response !== undefined) {
        input.checkResponse?.(response);
        result.responses.push(response.body);
        const rejected = input.rejectedIndexes?.(response) ?? new Set<number>();
        for (const [position, item] of batch.entries()) {
          const outcome = rejected.has(position) ? 'failed' : 'sent';
          await input.log.setStatus(input.platform, item.dedupeKey, outcome);
          if (outcome === 'failed') result.rejected.push(item.dedupeKey);
        }
      }
    } catch (error) {
      for (const item of accepted.slice(start))
        await input.log.setStatus(input.platform, item.dedupeKey, 'failed');
      throw error;
    }
  }
  return result;
}
