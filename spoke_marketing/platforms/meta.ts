// Meta Marketing API + Conversions API adapter: builds the real Graph API requests (campaigns with
// special_ad_categories, ad sets with targeting, creatives and ads, insights, CAPI events).
import { z } from 'zod';
import { AppError } from '../../shared/errors.js';
import {
  buildMetaEventBatches,
  conversionDedupeKey,
  META_MAX_EVENTS_PER_REQUEST,
  type ConversionEvent,
  type MetaActionSource,
  type MetaServerEvent,
} from '../conversions.js';
import {
  assertIsoDate,
  assertLiveCredentials,
  assertMinorUnits,
  CampaignCategories,
  countOf,
  createPlatformTransport,
  decimalToMicros,
  DryRunIds,
  restrictedGenders,
  uploadIdempotently,
  type AdPlatform,
  type AdSetSpec,
  type AdSpec,
  type CampaignObjective,
  type CampaignSpec,
  type ConversionUploadResult,
  type CreateResult,
  type InsightRow,
  type InsightsQuery,
  type InsightsResult,
  type LocationTarget,
  type OptimizationGoal,
  type PlatformDeps,
  type TargetingSpec,
} from './adapter.js';
import {
  assertHousingCampaign,
  assertHousingTargeting,
  META_HOUSING_MIN_RADIUS_MILES,
} from './housing_rules.js';
import {
  classifyByStatus,
  systemClock,
  type PlatformRequest,
  type PlatformResponse,
  type ResponseClass,
} from './http.js';

/** Meta adapter configuration. */
export interface MetaPlatformConfig {
  /** System-user access token; required in live mode. */
  accessToken?: string;
  /** Ad account id without the `act_` prefix. */
  adAccountId: string;
  /** Pixel / dataset id that receives Conversions API events. */
  datasetId?: string;
  /** Graph API version; default v23.0. */
  apiVersion?: string;
  /** Default https://graph.facebook.com; tests point it at a local fake. */
  baseUrl?: string;
  /** `action_source` of uploaded offline conversions; default system_generated (CRM). */
  actionSource?: MetaActionSource;
  testEventCode?: string;
  /** `actions[].action_type` values counted as conversions in insights; default lead and purchase pixels. */
  conversionActionTypes?: string[];
}

export const META_DEFAULT_API_VERSION = 'v23.0';
const META_DEFAULT_CONVERSION_TYPES = ['lead', 'offsite_conversion.fb_pixel_lead', 'purchase'];
/** Graph API throttling error codes (application, user, page, custom, business-use-case limits). */
const META_RATE_LIMIT_CODES = new Set([
  4, 17, 32, 613, 80000, 80001, 80002, 80003, 80004, 80005, 80006, 80008, 80009, 80014,
]);

const OBJECTIVES: Readonly<Record<CampaignObjective, string>> = {
  awareness: 'OUTCOME_AWARENESS',
  traffic: 'OUTCOME_TRAFFIC',
  engagement: 'OUTCOME_ENGAGEMENT',
  leads: 'OUTCOME_LEADS',
  sales: 'OUTCOME_SALES',
};

const OPTIMIZATION_GOALS: Readonly<Record<OptimizationGoal, string>> = {
  link_clicks: 'LINK_CLICKS',
  leads: 'LEAD_GENERATION',
  conversions: 'OFFSITE_CONVERSIONS',
  reach: 'REACH',
};

const metaErrorBody = z.object({
  error: z.object({ code: z.number(), is_transient: z.boolean().optional() }),
});
const metaCreated = z.object({ id: z.string() });
const metaInsights = z.object({
  data: z.array(
    z
      .object({
        campaign_id: z.string().optional(),
        campaign_name: z.string().optional(),
        adset_id: z.string().optional(),
        adset_name: z.string().optional(),
        ad_id: z.string().optional(),
        ad_name: z.string().optional(),
        date_start: z.string().optional(),
        spend: z.union([z.string(), z.number()]).optional(),
        impressions: z.union([z.string(), z.number()]).optional(),
        clicks: z.union([z.string(), z.number()]).optional(),
        actions: z
          .array(z.object({ action_type: z.string(), value: z.union([z.string(), z.number()]) }))
          .optional(),
        action_values: z
          .array(z.object({ action_type: z.string(), value: z.union([z.string(), z.number()]) }))
          .optional(),
      })
      .passthrough(),
  ),
});

/** Meta reports throttling as HTTP 400/403 with Graph error codes; transient errors say so. */
export function classifyMetaResponse(response: PlatformResponse): ResponseClass {
  const byStatus = classifyByStatus(response);
  if (byStatus !== 'failed') return byStatus;
  const parsed = metaErrorBody.safeParse(response.body);
  if (!parsed.success) return 'failed';
  if (META_RATE_LIMIT_CODES.has(parsed.data.error.code)) return 'rate_limited';
  return parsed.data.error.is_transient === true ? 'server_error' : 'failed';
}

function geoBlock(locations: readonly LocationTarget[], housing: boolean): Record<string, unknown> {
  const block: Record<string, unknown[]> = {};
  const add = (key: string, value: unknown): void => {
    (block[key] ??= []).push(value);
  };
  for (const location of locations) {
    const radius =
      location.radius ??
      (housing ? { value: META_HOUSING_MIN_RADIUS_MILES, unit: 'mile' as const } : undefined);
    const radiusFields = radius === undefined ? {} : { radius: radius.value, distance_unit: radius.unit };
    switch (location.kind) {
      case 'country':
        add('countries', location.key);
        break;
      case 'region':
        add('regions', { key: location.key });
        break;
      case 'city':
        add('cities', { key: location.key, ...radiusFields });
        break;
      case 'address':
        if (location.latitude === undefined || location.longitude === undefined) {
          throw new AppError(
            'VALIDATION_FAILED',
            `address target ${location.key} needs latitude and longitude`,
          );
        }
        add('custom_locations', {
          latitude: location.latitude,
          longitude: location.longitude,
          ...radiusFields,
        });
        break;
      case 'postal_code':
        add('zips', { key: location.key });
        break;
    }
  }
  return block;
}

/** The Graph API `targeting` object for a neutral spec (housing: age 18–65, 15-mile default radius). */
export function metaTargeting(targeting: TargetingSpec, housing: boolean): Record<string, unknown> {
  const genderCodes = restrictedGenders(targeting)?.map((gender) => (gender === 'male' ? 1 : 2));
  const audiences = [...(targeting.customAudienceIds ?? []), ...(targeting.lookalikeAudienceIds ?? [])];
  return {
    geo_locations: geoBlock(targeting.locations, housing),
    ...((targeting.excludedLocations ?? []).length > 0
      ? { excluded_geo_locations: geoBlock(targeting.excludedLocations!, false) }
      : {}),
    age_min: housing ? 18 : (targeting.ageMin ?? 18),
    age_max: housing ? 65 : (targeting.ageMax ?? 65),
    ...(genderCodes === undefined ? {} : { genders: genderCodes }),
    ...((targeting.interests ?? []).length > 0
      ? { flexible_spec: [{ interests: targeting.interests }] }
      : {}),
    ...((targeting.excludedInterests ?? []).length > 0
      ? { exclusions: { interests: targeting.excludedInterests } }
      : {}),
    ...(audiences.length > 0 ? { custom_audiences: audiences.map((id) => ({ id })) } : {}),
    ...((targeting.excludedCustomAudienceIds ?? []).length > 0
      ? { excluded_custom_audiences: targeting.excludedCustomAudienceIds!.map((id) => ({ id })) }
      : {}),
    targeting_automation: { advantage_audience: targeting.targetingExpansion === true ? 1 : 0 },
  };
}

/** Creates the Meta adapter; dry-run unless `deps.mode` is live (which needs an access token). */
export function createMetaPlatform(config: MetaPlatformConfig, deps: PlatformDeps): AdPlatform {
  const mode = deps.mode ?? 'dry-run';
  if (!/^\d+$/.test(config.adAccountId)) {
    throw new AppError('CONFIG_INVALID', 'Meta ad account id must be digits without the act_ prefix');
  }
  assertLiveCredentials('meta', deps, { accessToken: config.accessToken });
  const clock = deps.clock ?? systemClock;
  const transport = createPlatformTransport('meta', deps, [config.accessToken], classifyMetaResponse);
  const base = `${config.baseUrl ?? 'https://graph.facebook.com'}/${config.apiVersion ?? META_DEFAULT_API_VERSION}`;
  const account = `${base}/act_${config.adAccountId}`;
  const token = config.accessToken ?? '';
  const ids = new DryRunIds('meta');
  const categories = new CampaignCategories();

  const post = (url: string, body: Record<string, unknown>): PlatformRequest => ({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json' },
    body: { ...body, access_token: token },
  });

  async function create(kind: string, request: PlatformRequest, signal?: AbortSignal): Promise<CreateResult> {
    const { recorded, response } = await transport.execute(request, signal);
    if (response === undefined) return { id: ids.next(kind), dryRun: true, requests: [recorded] };
    const parsed = metaCreated.safeParse(response.body);
    if (!parsed.success)
      throw new AppError('UPSTREAM_ERROR', `Meta ${kind} response has no id`, {
        details: { body: response.body },
      });
    return { id: parsed.data.id, dryRun: false, requests: [recorded] };
  }

  return {
    name: 'meta',
    mode,

    async createCampaign(spec: CampaignSpec, signal?: AbortSignal) {
      assertHousingCampaign('meta', spec);
      assertMinorUnits('dailyBudgetMinor', spec.dailyBudgetMinor);
      const housing = spec.specialAdCategory === 'HOUSING';
      const result = await create(
        'campaign',
        post(`${account}/campaigns`, {
          name: spec.name,
          objective: OBJECTIVES[spec.objective],
          status: spec.status ?? 'PAUSED',
          special_ad_categories: housing ? ['HOUSING'] : [],
          ...(housing ? { special_ad_category_country: spec.countries } : {}),
          ...(spec.dailyBudgetMinor === undefined ? {} : { daily_budget: spec.dailyBudgetMinor }),
        }),
        signal,
      );
      categories.remember(result.id, spec.specialAdCategory);
      return result;
    },

    async createAdSet(spec: AdSetSpec, signal?: AbortSignal) {
      categories.assertConsistent(spec);
      const housing = spec.specialAdCategory === 'HOUSING';
      if (housing) assertHousingTargeting('meta', spec.targeting);
      assertMinorUnits('dailyBudgetMinor', spec.dailyBudgetMinor);
      assertMinorUnits('bidAmountMinor', spec.bidAmountMinor);
      if (spec.optimizationGoal === 'conversions' && spec.pixelId === undefined) {
        throw new AppError('VALIDATION_FAILED', 'conversion-optimised Meta ad sets need a pixelId');
      }
      return create(
        'adset',
        post(`${account}/adsets`, {
          name: spec.name,
          campaign_id: spec.campaignId,
          status: spec.status ?? 'PAUSED',
          billing_event: 'IMPRESSIONS',
          optimization_goal: OPTIMIZATION_GOALS[spec.optimizationGoal],
          ...(spec.bidAmountMinor === undefined
            ? { bid_strategy: 'LOWEST_COST_WITHOUT_CAP' }
            : { bid_strategy: 'LOWEST_COST_WITH_BID_CAP', bid_amount: spec.bidAmountMinor }),
          ...(spec.dailyBudgetMinor === undefined ? {} : { daily_budget: spec.dailyBudgetMinor }),
          ...(spec.startTimeMs === undefined ? {} : { start_time: new Date(spec.startTimeMs).toISOString() }),
          ...(spec.endTimeMs === undefined ? {} : { end_time: new Date(spec.endTimeMs).toISOString() }),
          ...(spec.pixelId === undefined
            ? {}
            : { promoted_object: { pixel_id: spec.pixelId, custom_event_type: 'LEAD' } }),
          targeting: metaTargeting(spec.targeting, housing),
        }),
        signal,
      );
    },

    async createAd(spec: AdSpec, signal?: AbortSignal) {
      const creative = spec.creative;
      if (creative.pageId === undefined) {
        throw new AppError(
          'VALIDATION_FAILED',
          'Meta ads need creative.pageId (the Facebook page that runs them)',
        );
      }
      const creativeResult = await create(
        'adcreative',
        post(`${account}/adcreatives`, {
          name: `${spec.name} creative`,
          object_story_spec: {
            page_id: creative.pageId,
            link_data: {
              link: creative.linkUrl,
              message: creative.primaryText,
              name: creative.headline,
              ...(creative.description === undefined ? {} : { description: creative.description }),
              ...(creative.imageHash === undefined ? {} : { image_hash: creative.imageHash }),
              call_to_action: { type: creative.callToAction, value: { link: creative.linkUrl } },
            },
          },
        }),
        signal,
      );
      const adResult = await create(
        'ad',
        post(`${account}/ads`, {
          name: spec.name,
          adset_id: spec.adSetId,
          creative: { creative_id: creativeResult.id },
          status: spec.status ?? 'PAUSED',
        }),
        signal,
      );
      return { ...adResult, requests: [...creativeResult.requests, ...adResult.requests] };
    },

    async getInsights(query: InsightsQuery, signal?: AbortSignal): Promise<InsightsResult> {
      assertIsoDate('since', query.since);
      assertIsoDate('until', query.until);
      const level = query.level;
      const params = new URLSearchParams({
        level,
        fields: [
          `${level}_id`,
          `${level}_name`,
          'spend',
          'impressions',
          'clicks',
          'actions',
          'action_values',
        ].join(','),
        time_range: JSON.stringify({ since: query.since, until: query.until }),
        time_increment: '1',
        access_token: token,
      });
      const object = query.objectId ?? `act_${config.adAccountId}`;
      const { recorded, response } = await transport.execute(
        { method: 'GET', url: `${base}/${object}/insights?${params.toString()}`, headers: {} },
        signal,
      );
      if (response === undefined) return { dryRun: true, rows: [], requests: [recorded] };
      const parsed = metaInsights.safeParse(response.body);
      if (!parsed.success) {
        throw new AppError('UPSTREAM_ERROR', 'Meta insights response has an unexpected shape', {
          cause: parsed.error,
        });
      }
      const counted = new Set(config.conversionActionTypes ?? META_DEFAULT_CONVERSION_TYPES);
      const sum = (items: { action_type: string; value: string | number }[] | undefined): number =>
        (items ?? [])
          .filter((item) => counted.has(item.action_type))
          .reduce((total, item) => total + countOf(item.value), 0);
      const rows: InsightRow[] = parsed.data.data.map((row) => {
        const record = row as Record<string, unknown>;
        const name = record[`${level}_name`];
        return {
          id: String(record[`${level}_id`] ?? object),
          ...(typeof name === 'string' ? { name } : {}),
          ...(row.date_start === undefined ? {} : { date: row.date_start }),
          costMicros: decimalToMicros(row.spend),
          impressions: countOf(row.impressions),
          clicks: countOf(row.clicks),
          conversions: sum(row.actions),
          conversionValue: sum(row.action_values),
        };
      });
      return { dryRun: false, rows, requests: [recorded] };
    },

    async uploadConversions(
      events: readonly ConversionEvent[],
      signal?: AbortSignal,
    ): Promise<ConversionUploadResult> {
      if (config.datasetId === undefined) {
        throw new AppError(
          'CONFIG_INVALID',
          'Meta conversion uploads need a datasetId (pixel or offline dataset)',
        );
      }
      const options = {
        actionSource: config.actionSource ?? 'system_generated',
        nowMs: clock.now(),
        ...(config.testEventCode === undefined ? {} : { testEventCode: config.testEventCode }),
      } as const;
      const built = buildMetaEventBatches(events, options).flatMap((body) => body.data);
      const url = `${base}/${config.datasetId}/events`;
      return uploadIdempotently<MetaServerEvent>({
        platform: 'meta',
        transport,
        log: deps.uploadLog,
        prepared: built.map((payload, index) => ({
          dedupeKey: conversionDedupeKey('meta', events[index]!),
          payload,
        })),
        maxPerRequest: META_MAX_EVENTS_PER_REQUEST,
        requestFor: (data) =>
          post(url, {
            data,
            ...(config.testEventCode === undefined ? {} : { test_event_code: config.testEventCode }),
          }),
        now: () => clock.now(),
        ...(signal === undefined ? {} : { signal }),
      });
    },

    requestLog: () => transport.requests(),
  };
}
