// The marketing lifecycle and its steps: discover personas → generate creatives → deploy (dry-run) → sync
// metrics → optimise budgets → attribute and upload conversions, each a function the HTTP routes, the skills,
// the scheduled jobs and `agenthub marketing cycle` share; plus the SQL they need beyond store.ts.
import { randomBytes } from 'node:crypto';
import type { Database, Queryable } from '../shared/db.js';
import { AppError, isAppError, toAppError } from '../shared/errors.js';
import { JOB_CONTRACTS, type MetricsSyncData } from '../shared/job_contracts.js';
import type { JobContext } from '../shared/jobs.js';
import type { LlmClient } from '../shared/llm_client.js';
import type { Logger } from '../shared/log.js';
import {
  attribute,
  type AttributionModel,
  type AttributionResult,
  type ConversionPath,
} from './attribution.js';
import { optimizeBudget, type BudgetArm } from './budget.js';
import {
  currencyDigits,
  type AdPlatformName,
  type ConversionEvent,
  type ConversionUploadEntry,
  type ConversionUploadFilter,
  type ConversionUploadLog,
  type ConversionUploadStatus,
} from './conversions.js';
import { generateCreatives, type CreativeFormat, type GuidelineSearch } from './creatives.js';
import type {
  AdPlatform,
  ConversionUploadResult,
  LocationTarget,
  TargetingSpec,
} from './platforms/adapter.js';
import type { RecordedRequest } from './platforms/http.js';
import {
  buildFbc,
  buildJourneys,
  DEFAULT_LOOKBACK,
  type ConversionRecord,
  type Touchpoint,
} from './tracking.js';
import {
  processBudgetOptimisation,
  processMetricsSync,
  processPersonaDiscovery,
  type DiscoveredPersona,
  type MarketingWorkerDeps,
  type ProcessorResult,
} from './workers.js';
import {
  selectActivePersonas,
  selectConversionUploads,
  selectLatestBudgetAllocations,
  selectMetricsByPeriod,
  updateConversionUploadStatus,
  type BudgetAllocationInput,
  type LeadRow,
  type MetricsInput,
  type MetricsRow,
  type PersonaRow,
} from './store.js';

const DAY_MS = 86_400_000;

// ---------------------------------------------------------------------------------------------------------
// Dependencies

/** The three ad platforms (dry-run unless built live). */
export interface MarketingPlatforms {
  readonly meta: AdPlatform;
  readonly google: AdPlatform;
  readonly tiktok: AdPlatform;
}

/** Names of {@link MarketingPlatforms} keys, as the jobs name them. */
export type PlatformKey = keyof MarketingPlatforms;
export const PLATFORM_KEYS: readonly PlatformKey[] = ['meta', 'google', 'tiktok'];

/** What deploying needs besides the creatives; a platform whose ids are missing is skipped with a reason. */
export interface DeploymentSettings {
  /** ISO-2 countries the housing campaigns run in. @defaultValue ['US'] */
  readonly countries: readonly string[];
  /** ISO 4217. @defaultValue 'USD' */
  readonly currency: string;
  /** Landing page of the ads. */
  readonly linkUrl: string;
  /** Daily budget of each new campaign, minor units (Google requires one). @defaultValue 5000 */
  readonly campaignDailyBudgetMinor: number;
  /** Locations per platform; defaults to the whole United States when `countries` is ['US']. */
  readonly locations?: Partial<Record<PlatformKey, readonly LocationTarget[]>>;
  /** Facebook page that runs Meta ads. */
  readonly metaPageId?: string;
  /** TikTok identity and uploaded video the ads use. */
  readonly tiktokIdentityId?: string;
  readonly tiktokVideoId?: string;
}

/** Whole-country location ids of the United States per platform (Meta country code, Google geo target constant, TikTok geoname id). */
const US_LOCATIONS: Readonly<Record<PlatformKey, readonly LocationTarget[]>> = {
  meta: [{ kind: 'country', key: 'US', name: 'United States' }],
  google: [{ kind: 'country', key: '2840', name: 'United States' }],
  tiktok: [{ kind: 'country', key: '6252001', name: 'United States' }],
};

/** Finds personas among leads (personas.ts through the toolkit; a fake in tests). Must honour `signal`. */
export type PersonaDiscoverer = (input: {
  readonly leads: readonly LeadRow[];
  readonly minClusterSize: number;
  readonly minSamples?: number;
  readonly signal: AbortSignal;
}) => Promise<readonly DiscoveredPersona[]>;

/** Everything the steps need. */
export interface MarketingEngineDeps {
  readonly db: Database;
  readonly llm: LlmClient | null;
  readonly retrieval?: GuidelineSearch | null;
  readonly platforms: MarketingPlatforms;
  readonly uploadLog: ConversionUploadLog;
  readonly discoverPersonas: PersonaDiscoverer;
  readonly deployment: DeploymentSettings;
  /** Seed of the budget optimiser's draws. @defaultValue 1 */
  readonly seed?: number;
  readonly log: Logger;
  readonly now: () => Date;
}

function throwIfCanceled(signal: AbortSignal | undefined, what = 'the marketing cycle'): void {
  if (signal?.aborted === true)
    throw new AppError('CANCELED', `${what} was canceled`, { cause: signal.reason });
}

function isCancel(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || isAppError(error, 'CANCELED');
}

function isoDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function errorSummary(error: unknown): {
  code: string;
  message: string;
  details?: Readonly<Record<string, unknown>>;
} {
  const appError = toAppError(error);
  return {
    code: appError.code,
    message: appError.message,
    ...(appError.details === undefined ? {} : { details: appError.details }),
  };
}

function processorJob(name: string, runKey: string, data: Record<string, unknown>, signal: AbortSignal) {
  return { id: runKey, name, data, attempt: 1, runKey, signal };
}

// ---------------------------------------------------------------------------------------------------------
// SQL of the lifecycle (tables of migrations 001–006 that store.ts has no repository for)

export const COUNT_LEADS_SINCE = `SELECT count(*)::int AS n FROM leads WHERE created_at >= $1::timestamptz`;

export const SELECT_UNDEPLOYED_APPROVED_CREATIVES = `
SELECT c.id, c.persona_id, c.headline, c.body, c.call_to_action, c.compliance_report ->> 'format' AS format
FROM creatives c
WHERE c.approved AND NOT EXISTS (SELECT 1 FROM ads a WHERE a.creative_id = c.id)
ORDER BY c.id`;

export const INSERT_CAMPAIGN = `
INSERT INTO campaigns (id, name, channel, platform, external_id, objective, status, special_ad_categories,
                       daily_budget_minor, currency)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text[], $9, $10)`;
export const INSERT_AD_SET = `
INSERT INTO ad_sets (id, campaign_id, name, external_id, status, optimization_goal, targeting)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)`;
export const INSERT_AD = `
INSERT INTO ads (id, ad_set_id, name, external_id, status, creative_id) VALUES ($1, $2, $3, $4, $5, $6)`;

export const SELECT_CAMPAIGNS = `SELECT * FROM campaigns ORDER BY created_at, id`;
export const SELECT_AD_SETS = `SELECT * FROM ad_sets ORDER BY created_at, id`;
export const SELECT_ADS = `SELECT * FROM ads ORDER BY created_at, id`;
/** Per campaign (name) and channel over [$1, $2]: totals and the latest day seen. */
export const SELECT_METRICS_SUMMARY = `
SELECT campaign, channel, currency, min(date)::text AS first_date, max(date)::text AS last_date,
       sum(spend_minor)::bigint AS spend_minor, sum(impressions)::bigint AS impressions,
       sum(clicks)::bigint AS clicks, sum(leads)::bigint AS leads, sum(conversions)::float8 AS conversions,
       sum(revenue_minor)::bigint AS revenue_minor
FROM marketing_metrics WHERE date BETWEEN $1::date AND $2::date
GROUP BY campaign, channel, currency ORDER BY campaign, channel`;

/** Touchpoints (with their lead's conversion) that occurred at or after $1. */
export const SELECT_TOUCHPOINTS_SINCE = `
SELECT t.id, t.lead_id, t.visitor_id, t.occurred_at, t.channel, t.click_id_type, t.click_id
FROM touchpoints t WHERE t.occurred_at >= $1::timestamptz ORDER BY t.occurred_at, t.id`;
/** Touchpoints of one journey: a lead ($1) or a visitor ($2). */
export const SELECT_JOURNEY_TOUCHPOINTS = `
SELECT t.id, t.lead_id, t.visitor_id, t.occurred_at, t.channel, t.click_id_type, t.click_id
FROM touchpoints t
WHERE ($1::bigint IS NOT NULL AND t.lead_id = $1) OR ($1::bigint IS NULL AND t.visitor_id = $2)
ORDER BY t.occurred_at, t.id`;
/** Leads that converted at or after $1 (attribution window). */
export const SELECT_CONVERTED_LEADS_SINCE = `
SELECT * FROM leads WHERE converted_at IS NOT NULL AND converted_at >= $1::timestamptz ORDER BY converted_at, id`;
export const SELECT_LEAD = `SELECT * FROM leads WHERE id = $1`;
/** Stores a touchpoint unless the same journey already has one at that time and URL; returns the id when new. */
export const INSERT_TOUCHPOINT = `
INSERT INTO touchpoints (lead_id, visitor_id, occurred_at, channel, source, medium, campaign, click_id_type,
                         click_id, url, referrer)
SELECT $1, $2, $3::timestamptz, $4, $5, $6, $7, $8, $9, $10, $11
WHERE NOT EXISTS (
  SELECT 1 FROM touchpoints
  WHERE lead_id IS NOT DISTINCT FROM $1 AND visitor_id IS NOT DISTINCT FROM $2
    AND occurred_at = $3::timestamptz AND url IS NOT DISTINCT FROM $10)
RETURNING id`;
export const MARK_LEAD_CONVERTED = `
UPDATE leads SET converted_at = coalesce(converted_at, $2::timestamptz),
                 revenue_minor = coalesce($3, revenue_minor), status = 'customer'
WHERE id = $1`;

/**
 * The idempotent upload log on `conversion_uploads`. A key already `pending` or `sent` is a duplicate; a
 * `failed` one may be recorded again; a `dry_run` one is replaced only by a live upload, so repeated dry
 * runs report duplicates (conversions.ts lets any later record replace a dry run; here a second rehearsal
 * of the same conversion is reported as what it is, a duplicate, while going live still sends it).
 */
export const RECORD_CONVERSION_UPLOAD = `
INSERT INTO conversion_uploads AS u (platform, dedupe_key, payload, status)
VALUES ($1, $2, $3::jsonb, $4)
ON CONFLICT (platform, dedupe_key) DO UPDATE
SET payload = EXCLUDED.payload, status = EXCLUDED.status, error = NULL, response = NULL, updated_at = now()
WHERE u.status = 'failed' OR (u.status = 'dry_run' AND EXCLUDED.status <> 'dry_run')
RETURNING id`;

/** {@link ConversionUploadLog} on the `conversion_uploads` table. */
export function createSqlConversionUploadLog(db: Queryable): ConversionUploadLog {
  return {
    async record(entry: ConversionUploadEntry) {
      const result = await db.query(RECORD_CONVERSION_UPLOAD, [
        entry.platform,
        entry.dedupeKey,
        JSON.stringify(entry.payload),
        entry.status,
      ]);
      return (result.rowCount ?? 0) > 0 ? 'new' : 'duplicate';
    },
    async setStatus(platform: AdPlatformName, dedupeKey: string, status: ConversionUploadStatus) {
      const updated = await updateConversionUploadStatus(db, { platform, dedupeKey, status });
      if (!updated) {
        throw new AppError('NOT_FOUND', `no upload ${platform} ${dedupeKey}`, {
          details: { platform, dedupeKey },
        });
      }
    },
    async list(filter: ConversionUploadFilter = {}) {
      const rows = await selectConversionUploads(db, {
        ...(filter.platform === undefined ? {} : { platform: filter.platform }),
        ...(filter.status === undefined ? {} : { status: filter.status }),
        limit: 100_000,
      });
      const entries = rows.reverse().map((row) => ({
        platform: row.platform as AdPlatformName,
        dedupeKey: row.dedupeKey,
        payload: row.payload,
        status: row.status,
        createdAt: new Date(row.createdAt),
      }));
      return filter.limit === undefined ? entries : entries.slice(0, filter.limit);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Step 1: personas

/** Options of {@link discoverPersonasStep}. */
export interface PersonaDiscoveryOptions {
  readonly minClusterSize: number;
  readonly minSamples?: number;
  /** Days of leads to cluster. */
  readonly lookbackDays: number;
  /** Run key recorded in job_runs (a retried run with the same key applies nothing twice). */
  readonly runKey: string;
}

/** Result of {@link discoverPersonasStep}. */
export interface PersonaDiscoveryOutcome {
  readonly runKey: string;
  readonly status: ProcessorResult['status'];
  readonly leads: number;
  readonly personas: readonly PersonaRow[];
}

/** Leads created in the lookback window. */
export async function countRecentLeads(deps: MarketingEngineDeps, lookbackDays: number): Promise<number> {
  const since = new Date(deps.now().getTime() - lookbackDays * DAY_MS).toISOString();
  const result = await deps.db.query<{ n: number }>(COUNT_LEADS_SINCE, [since]);
  return Number(result.rows[0]?.n ?? 0);
}

/** Clusters recent leads into personas and makes them the active set (the persona-discovery job's processor). */
export async function discoverPersonasStep(
  deps: MarketingEngineDeps,
  options: PersonaDiscoveryOptions,
  signal: AbortSignal,
): Promise<PersonaDiscoveryOutcome> {
  const result = await processPersonaDiscovery(
    processorJob(
      JOB_CONTRACTS.personaDiscovery.name,
      options.runKey,
      { lookbackDays: options.lookbackDays, minClusterSize: options.minClusterSize },
      signal,
    ),
    {
      db: deps.db,
      now: deps.now,
      discoverPersonas: (input) =>
        deps.discoverPersonas({
          ...input,
          ...(options.minSamples === undefined ? {} : { minSamples: options.minSamples }),
        }),
    },
  );
  return {
    runKey: result.runKey,
    status: result.status,
    leads: Number(result.summary.leads ?? 0),
    personas: await selectActivePersonas(deps.db),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Step 3: deploy

interface DeployableCreative {
  readonly id: number;
  readonly personaId: number | null;
  readonly headline: string;
  readonly body: string;
  readonly callToAction: string;
  readonly format: CreativeFormat | null;
}

/** What deploying did on one platform. */
export type PlatformDeployment =
  | {
      readonly status: 'done';
      readonly dryRun: boolean;
      readonly campaignId: string;
      readonly platformCampaignId: string;
      readonly adSets: number;
      readonly ads: number;
      readonly requests: number;
      readonly notes: readonly string[];
    }
  | { readonly status: 'skipped'; readonly reason: string }
  | { readonly status: 'failed'; readonly error: ReturnType<typeof errorSummary> };

/** Targeting every platform's housing rules accept: whole locations, every age and gender, no exclusions. */
export function housingTargeting(platform: PlatformKey, settings: DeploymentSettings): TargetingSpec {
  const configured = settings.locations?.[platform];
  const locations =
    configured ??
    (settings.countries.length === 1 && settings.countries[0] === 'US' ? US_LOCATIONS[platform] : undefined);
  if (locations === undefined || locations.length === 0) {
    throw new AppError(
      'CONFIG_INVALID',
      `no ${platform} locations configured for countries ${settings.countries.join(', ')} (deployment.locations.${platform})`,
    );
  }
  return { locations: [...locations] };
}

const CALLS_TO_ACTION = [
  ['APPLY_NOW', /\bapply\b/i],
  ['GET_QUOTE', /\bquote\b|\bestimate\b|\bvaluation\b/i],
  ['SIGN_UP', /\bsign\s*up\b|\bregister\b|\bsubscribe\b/i],
  ['CONTACT_US', /\bcontact\b|\bcall\b|\bbook\b|\bschedule\b|\btour\b|\bvisit\b/i],
] as const;

/** The platform call-to-action enum closest to the copy's CTA text. */
export function callToActionFor(
  text: string,
): 'LEARN_MORE' | 'CONTACT_US' | 'SIGN_UP' | 'GET_QUOTE' | 'APPLY_NOW' {
  for (const [value, pattern] of CALLS_TO_ACTION) if (pattern.test(text)) return value;
  return 'LEARN_MORE';
}

function platformName(key: PlatformKey): AdPlatformName {
  return key === 'google' ? 'google_ads' : key;
}

function channelOf(key: PlatformKey): string {
  return key === 'google' ? 'search' : 'social';
}

async function deployOnPlatform(
  deps: MarketingEngineDeps,
  key: PlatformKey,
  cycleId: string,
  creatives: readonly DeployableCreative[],
  signal: AbortSignal,
): Promise<PlatformDeployment> {
  const settings = deps.deployment;
  const platform = deps.platforms[key];
  const social = creatives.filter(
    (creative) => creative.format === 'social_post' || creative.format === 'display',
  );
  const search = creatives.filter((creative) => creative.format === 'search_ad');
  if (key === 'meta' && settings.metaPageId === undefined) {
    return { status: 'skipped', reason: 'no Facebook page id is configured (deployment.metaPageId)' };
  }
  if (key === 'tiktok' && (settings.tiktokIdentityId === undefined || settings.tiktokVideoId === undefined)) {
    return {
      status: 'skipped',
      reason:
        'TikTok ads need an identity and an uploaded video (deployment.tiktokIdentityId, tiktokVideoId)',
    };
  }
  // Google runs responsive search ads: per persona, headlines from the approved search variants' headlines
  // and calls to action (≥ 3 distinct, ≤ 30 chars), descriptions from their bodies (≥ 2).
  const googleGroups = new Map<number | null, DeployableCreative[]>();
  for (const creative of search) {
    const group = googleGroups.get(creative.personaId) ?? [];
    group.push(creative);
    googleGroups.set(creative.personaId, group);
  }
  const notes: string[] = [];
  const units: { personaId: number | null; creatives: DeployableCreative[] }[] = [];
  if (key === 'google') {
    for (const [personaId, group] of googleGroups) {
      const headlines = new Set(
        group
          .flatMap((creative) => [creative.headline, creative.callToAction])
          .filter((text) => text.length <= 30),
      );
      const descriptions = group.filter((creative) => creative.body.length <= 90);
      if (headlines.size >= 3 && descriptions.length >= 2)
        units.push({ personaId, creatives: group.slice(0, 4) });
      else
        notes.push(`persona ${personaId ?? 'none'}: a responsive search ad needs 2 approved search variants`);
    }
  } else {
    const byPersona = new Map<number | null, DeployableCreative[]>();
    for (const creative of social) {
      const group = byPersona.get(creative.personaId) ?? [];
      group.push(creative);
      byPersona.set(creative.personaId, group);
    }
    for (const [personaId, group] of byPersona) units.push({ personaId, creatives: group });
  }
  if (units.length === 0) {
    return {
      status: 'skipped',
      reason:
        key === 'google'
          ? `no persona has enough approved search-ad variants${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`
          : 'no approved social or display creatives await deployment',
    };
  }

  const targeting = housingTargeting(key, settings);
  const requestsBefore = platform.requestLog().length;
  const date = isoDate(deps.now());
  const campaign = await platform.createCampaign(
    {
      name: `AgentHub ${date} ${cycleId}`,
      objective: 'leads',
      status: 'PAUSED',
      specialAdCategory: 'HOUSING',
      countries: [...settings.countries],
      dailyBudgetMinor: settings.campaignDailyBudgetMinor,
      currency: settings.currency,
    },
    signal,
  );
  const campaignId = `${cycleId}:${key}`;
  const rows: { adSet: unknown[]; ads: unknown[][] }[] = [];
  for (const unit of units) {
    throwIfCanceled(signal);
    const adSetName = `persona ${unit.personaId ?? 'none'}`;
    const adSet = await platform.createAdSet(
      {
        campaignId: campaign.id,
        name: adSetName,
        specialAdCategory: 'HOUSING',
        currency: settings.currency,
        optimizationGoal: 'leads',
        targeting,
        status: 'PAUSED',
      },
      signal,
    );
    const adSetId = `${campaignId}:persona-${unit.personaId ?? 'none'}`;
    const adRows: unknown[][] = [];
    const ads =
      key === 'google'
        ? [
            {
              name: `rsa persona ${unit.personaId ?? 'none'}`,
              creativeId: unit.creatives[0]!.id,
              creative: {
                linkUrl: settings.linkUrl,
                primaryText: unit.creatives[0]!.body,
                headline: unit.creatives[0]!.headline,
                callToAction: callToActionFor(unit.creatives[0]!.callToAction),
                headlines: [
                  ...new Set(
                    unit.creatives.flatMap((creative) => [creative.headline, creative.callToAction]),
                  ),
                ]
                  .filter((text) => text.length <= 30)
                  .slice(0, 15),
                descriptions: unit.creatives
                  .map((creative) => creative.body)
                  .filter((text) => text.length <= 90)
                  .slice(0, 4),
              },
            },
          ]
        : unit.creatives.map((creative) => ({
            name: `creative ${creative.id}`,
            creativeId: creative.id,
            creative: {
              linkUrl: settings.linkUrl,
              primaryText: creative.body,
              headline: creative.headline,
              callToAction: callToActionFor(creative.callToAction),
              ...(key === 'meta' ? { pageId: settings.metaPageId! } : {}),
              ...(key === 'tiktok'
                ? { identityId: settings.tiktokIdentityId!, videoId: settings.tiktokVideoId! }
                : {}),
            },
          }));
    for (const ad of ads) {
      throwIfCanceled(signal);
      const created = await platform.createAd(
        { adSetId: adSet.id, name: ad.name, status: 'PAUSED', creative: ad.creative },
        signal,
      );
      adRows.push([
        `${adSetId}:creative-${ad.creativeId}`,
        adSetId,
        ad.name,
        created.dryRun ? null : created.id,
        created.dryRun ? 'draft' : 'paused',
        ad.creativeId,
      ]);
    }
    rows.push({
      adSet: [
        adSetId,
        campaignId,
        adSetName,
        adSet.dryRun ? null : adSet.id,
        adSet.dryRun ? 'draft' : 'paused',
        'leads',
        JSON.stringify(targeting),
      ],
      ads: adRows,
    });
  }
  // Dry-run platform ids are per-process counters, so only live ids are stored as external ids.
  await deps.db.transaction(async (tx) => {
    await tx.query(INSERT_CAMPAIGN, [
      campaignId,
      `AgentHub ${date} ${key}`,
      channelOf(key),
      platformName(key),
      campaign.dryRun ? null : campaign.id,
      'leads',
      campaign.dryRun ? 'draft' : 'paused',
      ['HOUSING'],
      settings.campaignDailyBudgetMinor,
      settings.currency,
    ]);
    for (const row of rows) {
      await tx.query(INSERT_AD_SET, row.adSet);
      for (const ad of row.ads) await tx.query(INSERT_AD, ad);
    }
  });
  return {
    status: 'done',
    dryRun: campaign.dryRun,
    campaignId,
    platformCampaignId: campaign.id,
    adSets: rows.length,
    ads: rows.reduce((total, row) => total + row.ads.length, 0),
    requests: platform.requestLog().length - requestsBefore,
    notes,
  };
}

/** Result of {@link deployStep}. */
export interface DeploymentOutcome {
  readonly creatives: number;
  readonly platforms: Readonly<Record<PlatformKey, PlatformDeployment>>;
}

/** Deploys every approved creative not yet in an ad: one HOUSING campaign per platform, an ad set per persona. */
export async function deployStep(
  deps: MarketingEngineDeps,
  cycleId: string,
  signal: AbortSignal,
): Promise<DeploymentOutcome> {
  const result = await deps.db.query<Record<string, unknown>>(SELECT_UNDEPLOYED_APPROVED_CREATIVES);
  const creatives: DeployableCreative[] = result.rows.map((row) => ({
    id: Number(row.id),
    personaId: row.persona_id === null ? null : Number(row.persona_id),
    headline: String(row.headline),
    body: String(row.body),
    callToAction: row.call_to_action === null ? 'Learn more' : String(row.call_to_action),
    format: row.format === null ? null : (String(row.format) as CreativeFormat),
  }));
  const platforms = {} as Record<PlatformKey, PlatformDeployment>;
  for (const key of PLATFORM_KEYS) {
    throwIfCanceled(signal);
    try {
      platforms[key] = await deployOnPlatform(deps, key, cycleId, creatives, signal);
    } catch (error) {
      if (isCancel(error, signal)) throw error;
      platforms[key] = { status: 'failed', error: errorSummary(error) };
    }
  }
  return { creatives: creatives.length, platforms };
}

// ---------------------------------------------------------------------------------------------------------
// Step 4: metrics sync

function insightsToMetrics(
  key: PlatformKey,
  rows: Awaited<ReturnType<AdPlatform['getInsights']>>['rows'],
  currency: string,
  fallbackDate: string,
): MetricsInput[] {
  const digits = currencyDigits(currency);
  return rows.map((row) => ({
    campaign: row.name ?? row.id,
    channel: channelOf(key),
    date: row.date ?? fallbackDate,
    source: key,
    currency,
    spendMinor: Math.round(row.costMicros / 10 ** (6 - digits)),
    impressions: Math.round(row.impressions),
    clicks: Math.round(row.clicks),
    leads: 0,
    conversions: row.conversions,
    revenueMinor: Math.round(row.conversionValue * 10 ** digits),
  }));
}

/** The metrics-sync job's fetcher: campaign insights of one platform (none in dry-run, the request is logged). */
export function createMetricsFetcher(deps: MarketingEngineDeps): MarketingWorkerDeps['fetchMetrics'] {
  return async ({ platform, from, to, signal }) => {
    const insights = await deps.platforms[platform].getInsights(
      { level: 'campaign', since: from, until: to },
      signal,
    );
    return insightsToMetrics(platform, insights.rows, deps.deployment.currency, to);
  };
}

/** Result of {@link syncMetricsStep}. */
export interface MetricsSyncOutcome {
  readonly runKey: string;
  readonly status: ProcessorResult['status'];
  readonly rows: number;
  readonly perPlatform: Readonly<Record<string, number>>;
  readonly requests: number;
  readonly dryRun: Readonly<Record<PlatformKey, boolean>>;
}

/** Pulls recent insights from every platform into marketing_metrics (the metrics-sync job's processor). */
export async function syncMetricsStep(
  deps: MarketingEngineDeps,
  options: {
    readonly lookbackDays: number;
    readonly runKey: string;
    readonly platforms?: MetricsSyncData['platforms'];
  },
  signal: AbortSignal,
): Promise<MetricsSyncOutcome> {
  const before = PLATFORM_KEYS.reduce((total, key) => total + deps.platforms[key].requestLog().length, 0);
  const result = await processMetricsSync(
    processorJob(
      JOB_CONTRACTS.metricsSync.name,
      options.runKey,
      {
        lookbackDays: options.lookbackDays,
        ...(options.platforms === undefined ? {} : { platforms: options.platforms }),
      },
      signal,
    ),
    { db: deps.db, now: deps.now, fetchMetrics: createMetricsFetcher(deps) },
  );
  const after = PLATFORM_KEYS.reduce((total, key) => total + deps.platforms[key].requestLog().length, 0);
  return {
    runKey: result.runKey,
    status: result.status,
    rows: Number(result.summary.rows ?? 0),
    perPlatform: (result.summary.perPlatform ?? {}) as Record<string, number>,
    requests: after - before,
    dryRun: {
      meta: deps.platforms.meta.mode === 'dry-run',
      google: deps.platforms.google.mode === 'dry-run',
      tiktok: deps.platforms.tiktok.mode === 'dry-run',
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Step 5: budgets

/** Default share bounds of the scheduled optimisation: a small floor keeps every arm learning, a ceiling avoids all-in. */
export function defaultShareBounds(armCount: number): { floor: number; ceiling: number } {
  return { floor: Math.min(0.05, 1 / (2 * armCount)), ceiling: armCount >= 2 ? 0.8 : 1 };
}

/** Largest share change per scheduled run once previous shares exist. */
export const DEFAULT_MAX_STEP = 0.15;

/** Aggregates metric rows into one bandit arm per key (conversions rounded, never above clicks). */
export function armsFromMetrics(
  metrics: readonly MetricsRow[],
  keyOf: (row: MetricsRow) => string,
): BudgetArm[] {
  const totals = new Map<
    string,
    { clicks: number; conversions: number; spendMinor: number; revenueMinor: number }
  >();
  for (const row of metrics) {
    const key = keyOf(row);
    const total = totals.get(key) ?? { clicks: 0, conversions: 0, spendMinor: 0, revenueMinor: 0 };
    total.clicks += row.clicks;
    total.conversions += row.conversions;
    total.spendMinor += row.spendMinor;
    total.revenueMinor += row.revenueMinor;
    totals.set(key, total);
  }
  return [...totals].map(([id, total]) => ({
    id,
    clicks: total.clicks,
    conversions: Math.min(total.clicks, Math.round(total.conversions)),
    spendMinor: total.spendMinor,
    revenueMinor: total.revenueMinor,
  }));
}

const ARM_SEPARATOR = ' :: ';

/** The budget-optimisation job's optimiser: one arm per (campaign, channel), Thompson sampling, bounded steps. */
export function createMetricsBudgetOptimiser(
  deps: MarketingEngineDeps,
): MarketingWorkerDeps['optimizeBudget'] {
  return async ({ metrics, totalDailyBudgetMinor, currency, signal }) => {
    throwIfCanceled(signal, 'budget optimisation');
    const rows = metrics.filter((row) => row.currency === currency);
    if (rows.length === 0) {
      throw new AppError('VALIDATION_FAILED', `no ${currency} metrics in the optimisation window`);
    }
    const arms = armsFromMetrics(rows, (row) => `${row.campaign}${ARM_SEPARATOR}${row.channel}`);
    const latest = (await selectLatestBudgetAllocations(deps.db)).filter((row) => row.currency === currency);
    const latestTotal = latest.reduce((total, row) => total + row.dailyBudgetMinor, 0);
    const previous = new Map(
      latest.map((row) => [`${row.campaign}${ARM_SEPARATOR}${row.channel}`, row.dailyBudgetMinor]),
    );
    const sameArms =
      latestTotal > 0 && previous.size === arms.length && arms.every((arm) => previous.has(arm.id));
    const days = new Set(rows.map((row) => row.date)).size;
    const total =
      totalDailyBudgetMinor ??
      (latestTotal > 0
        ? latestTotal
        : Math.round(rows.reduce((sum, row) => sum + row.spendMinor, 0) / Math.max(days, 1)));
    const bounds = defaultShareBounds(arms.length);
    const plan = optimizeBudget({
      arms: sameArms
        ? arms.map((arm) => ({ ...arm, previousShare: previous.get(arm.id)! / latestTotal }))
        : arms,
      totalBudgetMinor: total,
      floors: bounds.floor,
      ceilings: bounds.ceiling,
      ...(sameArms ? { maxStep: DEFAULT_MAX_STEP } : {}),
      seed: deps.seed ?? 1,
    });
    return plan.arms.map((arm): BudgetAllocationInput => {
      const [campaign, channel] = arm.id.split(ARM_SEPARATOR) as [string, string];
      return {
        campaign,
        channel,
        dailyBudgetMinor: arm.amountMinor,
        currency,
        share: arm.share,
        rationale: {
          probabilityBest: arm.probabilityBest,
          rawShare: arm.rawShare,
          recommendation: arm.recommendation,
          conversionRateMean: arm.conversionRate.mean,
          leader: plan.leader,
          confidence: plan.confidence,
          seed: plan.seed,
        },
      };
    });
  };
}

/** Result of {@link optimiseBudgetsStep}. */
export interface BudgetOutcome {
  readonly runKey: string;
  readonly status: ProcessorResult['status'];
  readonly summary: Readonly<Record<string, unknown>>;
  readonly allocations: Awaited<ReturnType<typeof selectLatestBudgetAllocations>>;
}

/** Metric rows in the budget window (the cycle skips the step when there are none). */
export async function metricsInWindow(
  deps: MarketingEngineDeps,
  lookbackDays: number,
): Promise<MetricsRow[]> {
  const now = deps.now();
  return selectMetricsByPeriod(deps.db, {
    from: isoDate(new Date(now.getTime() - lookbackDays * DAY_MS)),
    to: isoDate(now),
  });
}

/** Reallocates daily budgets from stored metrics (the budget-optimisation job's processor). */
export async function optimiseBudgetsStep(
  deps: MarketingEngineDeps,
  options: {
    readonly lookbackDays: number;
    readonly runKey: string;
    readonly totalDailyBudgetMinor?: number;
    readonly currency: string;
  },
  signal: AbortSignal,
): Promise<BudgetOutcome> {
  const result = await processBudgetOptimisation(
    processorJob(
      JOB_CONTRACTS.budgetOptimisation.name,
      options.runKey,
      {
        lookbackDays: options.lookbackDays,
        currency: options.currency,
        ...(options.totalDailyBudgetMinor === undefined
          ? {}
          : { totalDailyBudgetMinor: options.totalDailyBudgetMinor }),
      },
      signal,
    ),
    { db: deps.db, now: deps.now, optimizeBudget: createMetricsBudgetOptimiser(deps) },
  );
  return {
    runKey: result.runKey,
    status: result.status,
    summary: result.summary,
    allocations: await selectLatestBudgetAllocations(deps.db),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Step 6: attribution and conversion uploads

interface TouchRow {
  readonly leadId: number | null;
  readonly visitorId: string | null;
  readonly occurredAtMs: number;
  readonly channel: string;
  readonly clickIdType: string | null;
  readonly clickId: string | null;
}

function touchFromRow(row: Record<string, unknown>): TouchRow {
  const occurred = row.occurred_at instanceof Date ? row.occurred_at : new Date(String(row.occurred_at));
  return {
    leadId: row.lead_id === null ? null : Number(row.lead_id),
    visitorId: row.visitor_id === null ? null : String(row.visitor_id),
    occurredAtMs: occurred.getTime(),
    channel: String(row.channel),
    clickIdType: row.click_id_type === null ? null : String(row.click_id_type),
    clickId: row.click_id === null ? null : String(row.click_id),
  };
}

function journeyKey(touch: Pick<TouchRow, 'leadId' | 'visitorId'>): string {
  return touch.leadId !== null ? `lead:${touch.leadId}` : `visitor:${touch.visitorId ?? ''}`;
}

/** A conversion to upload, platform-neutral, with the journey's click ids. */
export interface PendingConversion {
  readonly eventId: string;
  readonly orderId: string;
  readonly timeMs: number;
  readonly valueMinor?: number;
  readonly currency: string;
  readonly emails: readonly string[];
  readonly phones: readonly string[];
  readonly externalIds: readonly string[];
  readonly clickIds: Readonly<Record<string, { value: string; atMs: number }>>;
}

/** Event names per platform for a closed real-estate lead. */
const EVENT_NAMES: Readonly<Record<PlatformKey, string>> = {
  meta: 'Purchase',
  google: 'purchase',
  tiktok: 'CompletePayment',
};

/** The stable event id of a lead's conversion: the same conversion always dedupes to the same key. */
export function leadConversionEventId(leadId: number, convertedAtMs: number): string {
  return `lead-${leadId}-converted-${convertedAtMs}`;
}

function eventFor(key: PlatformKey, conversion: PendingConversion): ConversionEvent | undefined {
  const ids = conversion.clickIds;
  const clickIds: ConversionEvent['clickIds'] = {};
  if (key === 'meta') {
    const fbclid = ids.fbclid;
    if (fbclid === undefined) return undefined;
    clickIds.fbc = buildFbc(fbclid.value, fbclid.atMs);
  } else if (key === 'google') {
    const google = ids.gclid ?? ids.gbraid ?? ids.wbraid;
    if (google === undefined) return undefined;
    const type = ids.gclid !== undefined ? 'gclid' : ids.gbraid !== undefined ? 'gbraid' : 'wbraid';
    clickIds[type] = google.value;
  } else {
    if (ids.ttclid === undefined) return undefined;
    clickIds.ttclid = ids.ttclid.value;
  }
  return {
    eventId: conversion.eventId,
    eventName: EVENT_NAMES[key],
    eventTimeMs: conversion.timeMs,
    orderId: conversion.orderId,
    ...(conversion.valueMinor === undefined
      ? {}
      : { valueMinor: conversion.valueMinor, currency: conversion.currency }),
    user: {
      ...(conversion.emails.length > 0 ? { emails: [...conversion.emails] } : {}),
      ...(conversion.phones.length > 0 ? { phones: [...conversion.phones] } : {}),
      ...(conversion.externalIds.length > 0 ? { externalIds: [...conversion.externalIds] } : {}),
    },
    clickIds,
    ...(key === 'tiktok' ? { leadId: conversion.orderId } : {}),
  };
}

/** What uploading did on one platform. */
export type PlatformUpload =
  | {
      readonly status: 'done';
      readonly dryRun: boolean;
      readonly accepted: readonly string[];
      readonly duplicates: readonly string[];
      readonly rejected: readonly string[];
      /** Events refused before upload (bad customer data, Meta's 7-day limit), with the reason. */
      readonly refused: readonly { readonly eventId: string; readonly reason: string }[];
      readonly requests: number;
    }
  | { readonly status: 'skipped'; readonly reason: string }
  | { readonly status: 'failed'; readonly error: ReturnType<typeof errorSummary> };

function refusedEventIds(error: AppError, events: readonly ConversionEvent[]): string[] {
  const details = error.details ?? {};
  const named = [
    ...(typeof details.eventId === 'string' ? [details.eventId] : []),
    ...(Array.isArray(details.eventIds)
      ? details.eventIds.filter((id): id is string => typeof id === 'string')
      : []),
  ];
  return named.filter((id) => events.some((event) => event.eventId === id));
}

async function uploadToPlatform(
  platform: AdPlatform,
  events: ConversionEvent[],
  signal: AbortSignal,
): Promise<PlatformUpload> {
  const refused: { eventId: string; reason: string }[] = [];
  let remaining = events;
  for (;;) {
    if (remaining.length === 0) {
      return {
        status: 'done',
        dryRun: platform.mode === 'dry-run',
        accepted: [],
        duplicates: [],
        rejected: [],
        refused,
        requests: 0,
      };
    }
    try {
      const result: ConversionUploadResult = await platform.uploadConversions(remaining, signal);
      return {
        status: 'done',
        dryRun: result.dryRun,
        accepted: result.accepted,
        duplicates: result.duplicates,
        rejected: result.rejected,
        refused,
        requests: result.requests.length,
      };
    } catch (error) {
      if (isCancel(error, signal)) throw error;
      // A builder refusing named events (bad phone, too old for Meta…) drops them, not the whole batch.
      if (!isAppError(error, 'VALIDATION_FAILED')) throw error;
      const ids = refusedEventIds(error, remaining);
      if (ids.length === 0) throw error;
      for (const id of ids) refused.push({ eventId: id, reason: error.message });
      remaining = remaining.filter((event) => !ids.includes(event.eventId));
    }
  }
}

/** Builds each platform's events for `conversions` (only where the journey has that platform's click id) and uploads them idempotently. */
export async function uploadConversions(
  deps: MarketingEngineDeps,
  conversions: readonly PendingConversion[],
  signal: AbortSignal,
): Promise<Record<PlatformKey, PlatformUpload>> {
  const uploads = {} as Record<PlatformKey, PlatformUpload>;
  for (const key of PLATFORM_KEYS) {
    throwIfCanceled(signal);
    const events = conversions
      .map((conversion) => eventFor(key, conversion))
      .filter((event): event is ConversionEvent => event !== undefined);
    if (events.length === 0) {
      uploads[key] = { status: 'skipped', reason: `no conversion has a ${key} click id` };
      continue;
    }
    try {
      uploads[key] = await uploadToPlatform(deps.platforms[key], events, signal);
    } catch (error) {
      if (isCancel(error, signal)) throw error;
      uploads[key] = { status: 'failed', error: errorSummary(error) };
    }
  }
  return uploads;
}

function clickIdsOf(
  lead: Record<string, unknown> | undefined,
  touches: readonly TouchRow[],
): PendingConversion['clickIds'] {
  const found: Record<string, { value: string; atMs: number }> = {};
  const leadCreated =
    lead?.created_at === undefined
      ? 0
      : new Date(
          String(lead.created_at instanceof Date ? lead.created_at.toISOString() : lead.created_at),
        ).getTime();
  for (const type of ['gclid', 'gbraid', 'wbraid', 'fbclid', 'ttclid'] as const) {
    const value = lead?.[type];
    if (typeof value === 'string' && value !== '') found[type] = { value, atMs: leadCreated };
  }
  for (const touch of touches) {
    if (touch.clickIdType !== null && touch.clickId !== null) {
      found[touch.clickIdType] = { value: touch.clickId, atMs: touch.occurredAtMs };
    }
  }
  return found;
}

/** A lead's conversion as a {@link PendingConversion}. */
export function pendingConversionForLead(
  lead: Record<string, unknown>,
  touches: readonly TouchRow[],
  overrides: {
    readonly eventId?: string;
    readonly emails?: readonly string[];
    readonly phones?: readonly string[];
  } = {},
): PendingConversion {
  const id = Number(lead.id);
  const convertedAt =
    lead.converted_at instanceof Date ? lead.converted_at : new Date(String(lead.converted_at));
  const revenue =
    lead.revenue_minor === null || lead.revenue_minor === undefined ? undefined : Number(lead.revenue_minor);
  const text = (value: unknown): string[] =>
    typeof value === 'string' && value.trim() !== '' ? [value] : [];
  return {
    eventId: overrides.eventId ?? leadConversionEventId(id, convertedAt.getTime()),
    orderId: `lead-${id}`,
    timeMs: convertedAt.getTime(),
    ...(revenue === undefined ? {} : { valueMinor: revenue }),
    currency: String(lead.currency ?? 'USD'),
    emails: overrides.emails ?? text(lead.email),
    phones: overrides.phones ?? text(lead.phone),
    externalIds: text(lead.external_id),
    clickIds: clickIdsOf(lead, touches),
  };
}

/** Result of {@link attributeAndUploadStep}. */
export interface AttributionOutcome {
  readonly model: AttributionModel;
  readonly touchpoints: number;
  readonly paths: number;
  readonly attribution: AttributionResult | null;
  readonly unattributedConversions: number;
  readonly conversions: number;
  readonly uploads: Readonly<Record<PlatformKey, PlatformUpload>>;
}

/** Conversion paths of stored touchpoints and lead conversions since `sinceMs`, under the default lookback windows. */
export async function storedJourneys(
  deps: MarketingEngineDeps,
  sinceMs: number,
): Promise<{
  touches: TouchRow[];
  paths: ConversionPath[];
  unattributed: number;
  converted: Record<string, unknown>[];
}> {
  const since = new Date(sinceMs).toISOString();
  const touches = (await deps.db.query<Record<string, unknown>>(SELECT_TOUCHPOINTS_SINCE, [since])).rows.map(
    touchFromRow,
  );
  const converted = (await deps.db.query<Record<string, unknown>>(SELECT_CONVERTED_LEADS_SINCE, [since]))
    .rows;
  const journeyTouches: Touchpoint[] = touches.map((touch) => ({
    userId: journeyKey(touch),
    timeMs: touch.occurredAtMs,
    channel: touch.channel,
  }));
  const conversionRecords: ConversionRecord[] = converted.map((lead) => ({
    userId: `lead:${Number(lead.id)}`,
    timeMs: (lead.converted_at instanceof Date
      ? lead.converted_at
      : new Date(String(lead.converted_at))
    ).getTime(),
    value:
      lead.revenue_minor === null
        ? 0
        : Number(lead.revenue_minor) / 10 ** currencyDigits(String(lead.currency ?? 'USD')),
  }));
  const built = buildJourneys(journeyTouches, conversionRecords, {
    lookback: DEFAULT_LOOKBACK,
    asOfMs: deps.now().getTime(),
  });
  return { touches, paths: built.paths, unattributed: built.unattributedConversions, converted };
}

/** Attributes stored journeys with `model` and uploads the window's lead conversions (idempotent, dry-run by default). */
export async function attributeAndUploadStep(
  deps: MarketingEngineDeps,
  options: { readonly model: AttributionModel; readonly lookbackDays: number },
  signal: AbortSignal,
): Promise<AttributionOutcome> {
  const sinceMs = deps.now().getTime() - options.lookbackDays * DAY_MS;
  const journeys = await storedJourneys(deps, sinceMs);
  throwIfCanceled(signal);
  const attribution = journeys.paths.some((path) => path.conversions > 0)
    ? attribute(journeys.paths, options.model)
    : null;
  const byLead = new Map<number, TouchRow[]>();
  for (const touch of journeys.touches) {
    if (touch.leadId === null) continue;
    const list = byLead.get(touch.leadId) ?? [];
    list.push(touch);
    byLead.set(touch.leadId, list);
  }
  const conversions = journeys.converted.map((lead) =>
    pendingConversionForLead(lead, byLead.get(Number(lead.id)) ?? []),
  );
  const uploads = await uploadConversions(deps, conversions, signal);
  return {
    model: options.model,
    touchpoints: journeys.touches.length,
    paths: journeys.paths.length,
    attribution,
    unattributedConversions: journeys.unattributed,
    conversions: conversions.length,
    uploads,
  };
}

/** Touchpoints of one journey (a lead or a visitor), oldest first. */
export async function journeyTouches(
  db: Queryable,
  journey: { readonly leadId?: number; readonly visitorId?: string },
): Promise<TouchRow[]> {
  const result = await db.query<Record<string, unknown>>(SELECT_JOURNEY_TOUCHPOINTS, [
    journey.leadId ?? null,
    journey.visitorId ?? null,
  ]);
  return result.rows.map(touchFromRow);
}

export { journeyKey, touchFromRow, type TouchRow };

// ---------------------------------------------------------------------------------------------------------
// Campaign listing and the request log

/** GET /marketing/campaigns: campaigns with their ad sets and ads, and a metrics summary per campaign. */
export async function listCampaigns(deps: MarketingEngineDeps, metricsDays = 28) {
  const [campaigns, adSets, ads] = await Promise.all([
    deps.db.query<Record<string, unknown>>(SELECT_CAMPAIGNS),
    deps.db.query<Record<string, unknown>>(SELECT_AD_SETS),
    deps.db.query<Record<string, unknown>>(SELECT_ADS),
  ]);
  const now = deps.now();
  const from = isoDate(new Date(now.getTime() - metricsDays * DAY_MS));
  const summaries = (
    await deps.db.query<Record<string, unknown>>(SELECT_METRICS_SUMMARY, [from, isoDate(now)])
  ).rows.map((row) => ({
    campaign: String(row.campaign),
    channel: String(row.channel),
    currency: String(row.currency),
    firstDate: String(row.first_date),
    lastDate: String(row.last_date),
    spendMinor: Number(row.spend_minor),
    impressions: Number(row.impressions),
    clicks: Number(row.clicks),
    leads: Number(row.leads),
    conversions: Number(row.conversions),
    revenueMinor: Number(row.revenue_minor),
    roas: Number(row.spend_minor) === 0 ? null : Number(row.revenue_minor) / Number(row.spend_minor),
  }));
  const iso = (value: unknown): string | null =>
    value === null || value === undefined
      ? null
      : value instanceof Date
        ? value.toISOString()
        : String(value);
  const known = new Set<string>();
  const listed = campaigns.rows.map((campaign) => {
    const id = String(campaign.id);
    const name = String(campaign.name);
    known.add(id);
    known.add(name);
    return {
      id,
      name,
      channel: String(campaign.channel),
      platform: String(campaign.platform),
      externalId: campaign.external_id === null ? null : String(campaign.external_id),
      status: String(campaign.status),
      specialAdCategories: campaign.special_ad_categories as string[],
      dailyBudgetMinor: campaign.daily_budget_minor === null ? null : Number(campaign.daily_budget_minor),
      currency: String(campaign.currency),
      createdAt: iso(campaign.created_at),
      adSets: adSets.rows
        .filter((adSet) => adSet.campaign_id === id)
        .map((adSet) => ({
          id: String(adSet.id),
          name: String(adSet.name),
          status: String(adSet.status),
          externalId: adSet.external_id === null ? null : String(adSet.external_id),
          targeting: adSet.targeting,
          ads: ads.rows
            .filter((ad) => ad.ad_set_id === adSet.id)
            .map((ad) => ({
              id: String(ad.id),
              name: String(ad.name),
              status: String(ad.status),
              externalId: ad.external_id === null ? null : String(ad.external_id),
              creativeId: ad.creative_id === null ? null : Number(ad.creative_id),
            })),
        })),
      metrics: summaries.filter((summary) => summary.campaign === id || summary.campaign === name),
    };
  });
  return {
    campaigns: listed,
    /** Campaigns known only from imported or synced metrics (no row in `campaigns`). */
    metricsOnly: summaries.filter((summary) => !known.has(summary.campaign)),
    metricsWindow: { from, to: isoDate(now) },
  };
}

/** Every platform's request log (dry-run requests are recorded, never sent), oldest first per platform. */
export function platformRequests(
  deps: Pick<MarketingEngineDeps, 'platforms'>,
  only?: PlatformKey,
): { platform: PlatformKey; mode: string; requests: RecordedRequest[] }[] {
  return PLATFORM_KEYS.filter((key) => only === undefined || key === only).map((key) => ({
    platform: key,
    mode: deps.platforms[key].mode,
    requests: deps.platforms[key].requestLog(),
  }));
}

// ---------------------------------------------------------------------------------------------------------
// The cycle

/** Names of the cycle's steps, in order. */
export const CYCLE_STEPS = [
  'discover_personas',
  'generate_creatives',
  'deploy',
  'sync_metrics',
  'optimise_budgets',
  'attribute_conversions',
] as const;
export type CycleStepName = (typeof CYCLE_STEPS)[number];

/** What one step did. */
export type CycleStepReport =
  | {
      readonly step: CycleStepName;
      readonly status: 'done';
      readonly durationMs: number;
      readonly result: unknown;
    }
  | {
      readonly step: CycleStepName;
      readonly status: 'skipped';
      readonly durationMs: number;
      readonly reason: string;
    }
  | {
      readonly step: CycleStepName;
      readonly status: 'failed';
      readonly durationMs: number;
      readonly error: ReturnType<typeof errorSummary>;
    };

/** The report of one cycle. */
export interface CycleReport {
  readonly cycleId: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  /** True when no step failed. */
  readonly ok: boolean;
  readonly platformModes: Readonly<Record<PlatformKey, string>>;
  readonly steps: readonly CycleStepReport[];
}

/** Options of one cycle; every field has a default. */
export interface CycleOptions {
  /** HDBSCAN minimum cluster size. @defaultValue 5 */
  readonly minClusterSize?: number;
  readonly minSamples?: number;
  /** Days of leads to cluster. @defaultValue 90 */
  readonly leadLookbackDays?: number;
  /** Personas (largest first) that get creatives. @defaultValue 3 */
  readonly maxPersonas?: number;
  /** Formats written per persona. @defaultValue ['social_post', 'search_ad'] */
  readonly formats?: readonly CreativeFormat[];
  /** A/B variants per format. @defaultValue 2 */
  readonly variants?: number;
  /** Days of insights re-pulled. @defaultValue 3 */
  readonly metricsLookbackDays?: number;
  /** Days of metrics the optimiser learns from. @defaultValue 28 */
  readonly budgetLookbackDays?: number;
  /** Total daily budget to split, minor units; default keeps the current total. */
  readonly totalDailyBudgetMinor?: number;
  /** @defaultValue 'linear' */
  readonly attributionModel?: AttributionModel;
  /** Days of touchpoints and conversions attributed and uploaded. @defaultValue 7 (Meta refuses older events) */
  readonly attributionLookbackDays?: number;
}

/** A fresh cycle id: UTC timestamp plus random suffix. */
export function newCycleId(now: Date): string {
  return `cycle-${now.toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
}

type StepOutcome = { skip: string } | { result: unknown };

/**
 * Runs the lifecycle once. Each step is done, skipped with a reason, or failed with an error code (a failed
 * step does not stop later ones); the signal is checked between and inside steps, and an abort rejects
 * with AppError `CANCELED` whose details list the steps completed so far.
 */
export async function runCycle(
  deps: MarketingEngineDeps,
  options: CycleOptions,
  signal: AbortSignal,
): Promise<CycleReport> {
  const startedAt = deps.now();
  const cycleId = newCycleId(startedAt);
  const steps: CycleStepReport[] = [];
  const minClusterSize = options.minClusterSize ?? 5;
  const leadLookbackDays = options.leadLookbackDays ?? 90;
  const log = deps.log.child({ cycleId });

  const run = async (step: CycleStepName, body: () => Promise<StepOutcome>): Promise<void> => {
    if (signal.aborted) {
      throw new AppError('CANCELED', `the marketing cycle was canceled before ${step}`, {
        cause: signal.reason,
        details: {
          cycleId,
          completed: steps.map((report) => ({ step: report.step, status: report.status })),
        },
      });
    }
    const start = performance.now();
    try {
      const outcome = await body();
      const durationMs = Math.round(performance.now() - start);
      steps.push(
        'skip' in outcome
          ? { step, status: 'skipped', durationMs, reason: outcome.skip }
          : { step, status: 'done', durationMs, result: outcome.result },
      );
    } catch (error) {
      if (isCancel(error, signal)) {
        throw new AppError('CANCELED', `the marketing cycle was canceled during ${step}`, {
          cause: error,
          details: {
            cycleId,
            completed: steps.map((report) => ({ step: report.step, status: report.status })),
          },
        });
      }
      log.warn({ err: error, step }, 'marketing cycle step failed');
      steps.push({
        step,
        status: 'failed',
        durationMs: Math.round(performance.now() - start),
        error: errorSummary(error),
      });
    }
  };

  await run('discover_personas', async () => {
    const leads = await countRecentLeads(deps, leadLookbackDays);
    const needed = 2 * minClusterSize;
    if (leads < needed) {
      return {
        skip: `${leads} leads in the last ${leadLookbackDays} days; clustering needs at least ${needed} (2 × min cluster size)`,
      };
    }
    const outcome = await discoverPersonasStep(
      deps,
      {
        minClusterSize,
        ...(options.minSamples === undefined ? {} : { minSamples: options.minSamples }),
        lookbackDays: leadLookbackDays,
        runKey: `${cycleId}:persona-discovery`,
      },
      signal,
    );
    return {
      result: {
        runKey: outcome.runKey,
        leads: outcome.leads,
        personas: outcome.personas.length,
        personaIds: outcome.personas.map((persona) => persona.id),
      },
    };
  });

  await run('generate_creatives', async () => {
    if (deps.llm === null)
      return {
        skip: 'no language model is configured: creative copy needs one (no template copy is produced)',
      };
    const personas = (await selectActivePersonas(deps.db)).slice(0, options.maxPersonas ?? 3);
    if (personas.length === 0) return { skip: 'there are no active personas to write for' };
    const formats = options.formats ?? ['social_post', 'search_ad'];
    const created: number[] = [];
    const approved: number[] = [];
    for (const persona of personas) {
      for (const format of formats) {
        throwIfCanceled(signal);
        const generated = await generateCreatives(
          { db: deps.db, llm: deps.llm, retrieval: deps.retrieval ?? null, log },
          { persona, format, count: options.variants ?? 2, signal },
        );
        created.push(...generated.creatives.map((creative) => creative.id));
        approved.push(...generated.approvedIds);
      }
    }
    return {
      result: {
        personas: personas.length,
        formats,
        creatives: created.length,
        creativeIds: created,
        approvedIds: approved,
      },
    };
  });

  await run('deploy', async () => {
    const outcome = await deployStep(deps, cycleId, signal);
    if (outcome.creatives === 0) return { skip: 'no approved creatives await deployment' };
    const statuses = PLATFORM_KEYS.map((key) => outcome.platforms[key].status);
    if (statuses.every((status) => status === 'failed')) {
      const first = outcome.platforms.meta;
      throw new AppError('UPSTREAM_ERROR', 'deployment failed on every platform', {
        details: { platforms: outcome.platforms, first },
      });
    }
    return { result: outcome };
  });

  await run('sync_metrics', async () => {
    const outcome = await syncMetricsStep(
      deps,
      { lookbackDays: options.metricsLookbackDays ?? 3, runKey: `${cycleId}:metrics-sync` },
      signal,
    );
    return { result: outcome };
  });

  await run('optimise_budgets', async () => {
    const lookbackDays = options.budgetLookbackDays ?? 28;
    const metrics = await metricsInWindow(deps, lookbackDays);
    if (!metrics.some((row) => row.currency === deps.deployment.currency)) {
      return {
        skip: `no ${deps.deployment.currency} metrics in the last ${lookbackDays} days to learn from`,
      };
    }
    const outcome = await optimiseBudgetsStep(
      deps,
      {
        lookbackDays,
        runKey: `${cycleId}:budget-optimisation`,
        currency: deps.deployment.currency,
        ...(options.totalDailyBudgetMinor === undefined
          ? {}
          : { totalDailyBudgetMinor: options.totalDailyBudgetMinor }),
      },
      signal,
    );
    return { result: outcome };
  });

  await run('attribute_conversions', async () => {
    const outcome = await attributeAndUploadStep(
      deps,
      { model: options.attributionModel ?? 'linear', lookbackDays: options.attributionLookbackDays ?? 7 },
      signal,
    );
    if (outcome.touchpoints === 0 && outcome.conversions === 0) {
      return { skip: 'no touchpoints or conversions in the attribution window' };
    }
    return { result: outcome };
  });

  return {
    cycleId,
    startedAt: startedAt.toISOString(),
    finishedAt: deps.now().toISOString(),
    ok: steps.every((step) => step.status !== 'failed'),
    platformModes: {
      meta: deps.platforms.meta.mode,
      google: deps.platforms.google.mode,
      tiktok: deps.platforms.tiktok.mode,
    },
    steps,
  };
}

/** The scheduled jobs' handlers, on the same step functions the cycle uses. */
export function createJobHandlers(deps: MarketingEngineDeps): {
  readonly workerDeps: MarketingWorkerDeps;
  readonly personaDiscovery: (job: JobContext) => Promise<ProcessorResult>;
  readonly budgetOptimisation: (job: JobContext) => Promise<ProcessorResult>;
  readonly metricsSync: (job: JobContext) => Promise<ProcessorResult>;
} {
  const workerDeps: MarketingWorkerDeps = {
    db: deps.db,
    now: deps.now,
    discoverPersonas: (input) => deps.discoverPersonas(input),
    optimizeBudget: createMetricsBudgetOptimiser(deps),
    fetchMetrics: createMetricsFetcher(deps),
  };
  return {
    workerDeps,
    personaDiscovery: (job) => processPersonaDiscovery(job, workerDeps),
    budgetOptimisation: (job) => processBudgetOptimisation(job, workerDeps),
    metricsSync: (job) => processMetricsSync(job, workerDeps),
  };
}
