// TikTok API for Business (v1.3) adapter: campaign/adgroup/ad creation with special_industries, the
// integrated report, and Events API 2.0 uploads; TikTok reports errors in a 200 body's `code`.
import { z } from 'zod';
import { AppError } from '../../shared/errors.js';
import {
  buildTikTokEventsBodies,
  conversionDedupeKey,
  currencyDigits,
  TIKTOK_MAX_EVENTS_PER_REQUEST,
  type ConversionEvent,
  type TikTokEvent,
  type TikTokEventSource,
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
  type OptimizationGoal,
  type PlatformDeps,
  type TargetingSpec,
} from './adapter.js';
import { assertHousingCampaign, assertHousingTargeting } from './housing_rules.js';
import {
  classifyByStatus,
  systemClock,
  type PlatformRequest,
  type PlatformResponse,
  type ResponseClass,
} from './http.js';

/** TikTok adapter configuration. */
export interface TikTokPlatformConfig {
  advertiserId: string;
  /** Long-term access token; required in live mode. */
  accessToken?: string;
  /** Pixel code or event set id for Events API uploads. */
  eventSourceId?: string;
  /** Default crm (offline CRM conversions). */
  eventSource?: TikTokEventSource;
  testEventCode?: string;
  /** Default v1.3. */
  apiVersion?: string;
  /** Default https://business-api.tiktok.com/open_api. */
  baseUrl?: string;
}

export const TIKTOK_DEFAULT_API_VERSION = 'v1.3';
/** TikTok body code for "request frequency too high"; codes ≥ 50000 are internal errors (retryable). */
const TIKTOK_RATE_LIMIT_CODES = new Set([40100]);

const OBJECTIVES: Readonly<Record<CampaignObjective, string>> = {
  awareness: 'REACH',
  traffic: 'TRAFFIC',
  engagement: 'ENGAGEMENT',
  leads: 'LEAD_GENERATION',
  sales: 'WEB_CONVERSIONS',
};

const GOALS: Readonly<Record<OptimizationGoal, { optimization_goal: string; billing_event: string }>> = {
  link_clicks: { optimization_goal: 'CLICK', billing_event: 'CPC' },
  leads: { optimization_goal: 'LEAD_GENERATION', billing_event: 'OCPM' },
  conversions: { optimization_goal: 'CONVERT', billing_event: 'OCPM' },
  reach: { optimization_goal: 'REACH', billing_event: 'CPM' },
};

const AGE_GROUPS: readonly [string, number, number][] = [
  ['AGE_18_24', 18, 24],
  ['AGE_25_34', 25, 34],
  ['AGE_35_44', 35, 44],
  ['AGE_45_54', 45, 54],
  ['AGE_55_100', 55, 100],
];

const envelope = z.object({ code: z.number(), message: z.string().optional(), data: z.unknown().optional() });
const reportData = z.object({
  list: z.array(
    z.object({
      dimensions: z.record(z.string(), z.union([z.string(), z.number()])),
      metrics: z.record(z.string(), z.union([z.string(), z.number()])),
    }),
  ),
  page_info: z.object({ page: z.number(), total_page: z.number() }).optional(),
});

/** TikTok answers HTTP 200 with `code` ≠ 0 on failure; rate limits and internal errors are retried. */
export function classifyTikTokResponse(response: PlatformResponse): ResponseClass {
  const byStatus = classifyByStatus(response);
  if (byStatus !== 'ok') return byStatus;
  const parsed = envelope.safeParse(response.body);
  if (!parsed.success) return 'failed';
  if (parsed.data.code === 0) return 'ok';
  if (TIKTOK_RATE_LIMIT_CODES.has(parsed.data.code)) return 'rate_limited';
  return parsed.data.code >= 50000 ? 'server_error' : 'failed';
}

function minorToMajor(amountMinor: number, currency: string): number {
  return amountMinor / 10 ** currencyDigits(currency);
}

/** `YYYY-MM-DD HH:MM:SS` in UTC, TikTok's schedule format. */
function tiktokTime(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 19).replace('T', ' ');
}

function targetingFields(targeting: TargetingSpec): Record<string, unknown> {
  const locations = targeting.locations.filter((location) => location.kind !== 'postal_code');
  const zips = targeting.locations.filter((location) => location.kind === 'postal_code');
  const unsupported = [
    ...(targeting.excludedLocations?.length ? ['excludedLocations'] : []),
    ...(targeting.excludedInterests?.length ? ['excludedInterests'] : []),
    ...(targeting.locations.some((location) => location.radius !== undefined) ? ['location radius'] : []),
  ];
  if (unsupported.length > 0) {
    throw new AppError('VALIDATION_FAILED', `TikTok ad groups cannot express: ${unsupported.join(', ')}`, {
      details: { unsupported },
    });
  }
  const min = targeting.ageMin ?? 18;
  const max = targeting.ageMax ?? 100;
  const ageGroups = AGE_GROUPS.filter(([, low, high]) => high >= min && low <= max).map(([group]) => group);
  const genders = restrictedGenders(targeting);
  const gender =
    genders === undefined ? 'GENDER_UNLIMITED' : genders[0] === 'male' ? 'GENDER_MALE' : 'GENDER_FEMALE';
  const audiences = [...(targeting.customAudienceIds ?? []), ...(targeting.lookalikeAudienceIds ?? [])];
  return {
    location_ids: locations.map((location) => location.key),
    ...(zips.length > 0 ? { zipcode_ids: zips.map((zip) => zip.key) } : {}),
    age_groups: ageGroups,
    gender,
    ...(targeting.interests?.length
      ? { interest_category_ids: targeting.interests.map((interest) => interest.id) }
      : {}),
    ...(targeting.interestKeywords?.length ? { interest_keyword_ids: targeting.interestKeywords } : {}),
    ...(audiences.length > 0 ? { audience_ids: audiences } : {}),
    ...(targeting.excludedCustomAudienceIds?.length
      ? { excluded_audience_ids: targeting.excludedCustomAudienceIds }
      : {}),
    targeting_expansion: { expansion_enabled: targeting.targetingExpansion === true },
  };
}

/** Creates the TikTok adapter; dry-run unless `deps.mode` is live (access token needed). */
export function createTikTokPlatform(config: TikTokPlatformConfig, deps: PlatformDeps): AdPlatform {
  const mode = deps.mode ?? 'dry-run';
  if (!/^\d+$/.test(config.advertiserId))
    throw new AppError('CONFIG_INVALID', 'TikTok advertiser id must be digits');
  assertLiveCredentials('tiktok', deps, { accessToken: config.accessToken });
  const clock = deps.clock ?? systemClock;
  const transport = createPlatformTransport('tiktok', deps, [config.accessToken], classifyTikTokResponse);
  const base = `${config.baseUrl ?? 'https://business-api.tiktok.com/open_api'}/${config.apiVersion ?? TIKTOK_DEFAULT_API_VERSION}`;
  const headers = { 'content-type': 'application/json', 'access-token': config.accessToken ?? '' };
  const ids = new DryRunIds('tiktok');
  const categories = new CampaignCategories();
  const post = (path: string, body: Record<string, unknown>): PlatformRequest => ({
    method: 'POST',
    url: `${base}/${path}`,
    headers: { ...headers },
    body,
  });

  async function create(
    kind: string,
    idField: string,
    request: PlatformRequest,
    signal?: AbortSignal,
  ): Promise<CreateResult> {
    const { recorded, response } = await transport.execute(request, signal);
    if (response === undefined) return { id: ids.next(kind), dryRun: true, requests: [recorded] };
    const data = envelope.parse(response.body).data as Record<string, unknown> | undefined;
    const direct = data?.[idField];
    const listed = Array.isArray(data?.[`${idField}s`]) ? (data[`${idField}s`] as unknown[])[0] : undefined;
    const id = direct ?? listed;
    if (id === undefined) {
      throw new AppError('UPSTREAM_ERROR', `TikTok ${kind} response has no ${idField}`, {
        details: { body: response.body },
      });
    }
    return { id: String(id), dryRun: false, requests: [recorded] };
  }

  return {
    name: 'tiktok',
    mode,

    async createCampaign(spec: CampaignSpec, signal?: AbortSignal) {
      assertHousingCampaign('tiktok', spec);
      assertMinorUnits('dailyBudgetMinor', spec.dailyBudgetMinor);
      const result = await create(
        'campaign',
        'campaign_id',
        post('campaign/create/', {
          advertiser_id: config.advertiserId,
          campaign_name: spec.name,
          objective_type: OBJECTIVES[spec.objective],
          operation_status: spec.status === 'ACTIVE' ? 'ENABLE' : 'DISABLE',
          ...(spec.dailyBudgetMinor === undefined
            ? { budget_mode: 'BUDGET_MODE_INFINITE' }
            : { budget_mode: 'BUDGET_MODE_DAY', budget: minorToMajor(spec.dailyBudgetMinor, spec.currency) }),
          ...(spec.specialAdCategory === 'HOUSING' ? { special_industries: ['HOUSING'] } : {}),
        }),
        signal,
      );
      categories.remember(result.id, spec.specialAdCategory);
      return result;
    },

    async createAdSet(spec: AdSetSpec, signal?: AbortSignal) {
      categories.assertConsistent(spec);
      if (spec.specialAdCategory === 'HOUSING') assertHousingTargeting('tiktok', spec.targeting);
      assertMinorUnits('dailyBudgetMinor', spec.dailyBudgetMinor);
      assertMinorUnits('bidAmountMinor', spec.bidAmountMinor);
      return create(
        'adgroup',
        'adgroup_id',
        post('adgroup/create/', {
          advertiser_id: config.advertiserId,
          campaign_id: spec.campaignId,
          adgroup_name: spec.name,
          operation_status: spec.status === 'ACTIVE' ? 'ENABLE' : 'DISABLE',
          placement_type: 'PLACEMENT_TYPE_NORMAL',
          placements: ['PLACEMENT_TIKTOK'],
          ...targetingFields(spec.targeting),
          ...(spec.dailyBudgetMinor === undefined
            ? {}
            : { budget_mode: 'BUDGET_MODE_DAY', budget: minorToMajor(spec.dailyBudgetMinor, spec.currency) }),
          ...(spec.startTimeMs === undefined
            ? { schedule_type: 'SCHEDULE_FROM_NOW', schedule_start_time: tiktokTime(clock.now()) }
            : {
                schedule_type: spec.endTimeMs === undefined ? 'SCHEDULE_FROM_NOW' : 'SCHEDULE_START_END',
                schedule_start_time: tiktokTime(spec.startTimeMs),
              }),
          ...(spec.endTimeMs === undefined ? {} : { schedule_end_time: tiktokTime(spec.endTimeMs) }),
          ...GOALS[spec.optimizationGoal],
          ...(spec.bidAmountMinor === undefined
            ? { bid_type: 'BID_TYPE_NO_BID' }
            : { bid_type: 'BID_TYPE_CUSTOM', bid_price: minorToMajor(spec.bidAmountMinor, spec.currency) }),
          ...(spec.pixelId === undefined ? {} : { pixel_id: spec.pixelId }),
          pacing: 'PACING_MODE_SMOOTH',
        }),
        signal,
      );
    },

    async createAd(spec: AdSpec, signal?: AbortSignal) {
      const creative = spec.creative;
      if (creative.videoId === undefined || creative.identityId === undefined) {
        throw new AppError('VALIDATION_FAILED', 'TikTok ads need creative.videoId and creative.identityId');
      }
      return create(
        'ad',
        'ad_id',
        post('ad/create/', {
          advertiser_id: config.advertiserId,
          adgroup_id: spec.adSetId,
          creatives: [
            {
              ad_name: spec.name,
              ad_format: 'SINGLE_VIDEO',
              ad_text: creative.primaryText,
              video_id: creative.videoId,
              identity_id: creative.identityId,
              identity_type: 'CUSTOMIZED_USER',
              call_to_action: creative.callToAction,
              landing_page_url: creative.linkUrl,
              operation_status: spec.status === 'ACTIVE' ? 'ENABLE' : 'DISABLE',
            },
          ],
        }),
        signal,
      );
    },

    async getInsights(query: InsightsQuery, signal?: AbortSignal): Promise<InsightsResult> {
      assertIsoDate('since', query.since);
      assertIsoDate('until', query.until);
      const [dataLevel, idDimension, nameMetric] =
        query.level === 'campaign'
          ? ['AUCTION_CAMPAIGN', 'campaign_id', 'campaign_name']
          : query.level === 'adset'
            ? ['AUCTION_ADGROUP', 'adgroup_id', 'adgroup_name']
            : ['AUCTION_AD', 'ad_id', 'ad_name'];
      const rows: InsightRow[] = [];
      const requests = [];
      for (let page = 1, totalPages = 1; page <= totalPages; page += 1) {
        const params = new URLSearchParams({
          advertiser_id: config.advertiserId,
          report_type: 'BASIC',
          data_level: dataLevel,
          dimensions: JSON.stringify([idDimension, 'stat_time_day']),
          metrics: JSON.stringify([nameMetric, 'spend', 'impressions', 'clicks', 'conversion']),
          start_date: query.since,
          end_date: query.until,
          page: String(page),
          page_size: '1000',
          ...(query.objectId === undefined
            ? {}
            : {
                filtering: JSON.stringify([
                  {
                    field_name: 'campaign_ids',
                    filter_type: 'IN',
                    filter_value: JSON.stringify([query.objectId]),
                  },
                ]),
              }),
        });
        const { recorded, response } = await transport.execute(
          {
            method: 'GET',
            url: `${base}/report/integrated/get/?${params.toString()}`,
            headers: { ...headers },
          },
          signal,
        );
        requests.push(recorded);
        if (response === undefined) return { dryRun: true, rows: [], requests };
        const parsed = reportData.safeParse(envelope.parse(response.body).data);
        if (!parsed.success) {
          throw new AppError('UPSTREAM_ERROR', 'TikTok report response has an unexpected shape', {
            cause: parsed.error,
          });
        }
        totalPages = parsed.data.page_info?.total_page ?? 1;
        for (const entry of parsed.data.list) {
          const name = entry.metrics[nameMetric];
          const day = entry.dimensions['stat_time_day'];
          rows.push({
            id: String(entry.dimensions[idDimension]),
            ...(name === undefined ? {} : { name: String(name) }),
            ...(day === undefined ? {} : { date: String(day).slice(0, 10) }),
            costMicros: decimalToMicros(entry.metrics['spend']),
            impressions: countOf(entry.metrics['impressions']),
            clicks: countOf(entry.metrics['clicks']),
            conversions: countOf(entry.metrics['conversion']),
            conversionValue: 0,
          });
        }
      }
      return { dryRun: false, rows, requests };
    },

    async uploadConversions(
      events: readonly ConversionEvent[],
      signal?: AbortSignal,
    ): Promise<ConversionUploadResult> {
      if (config.eventSourceId === undefined) {
        throw new AppError(
          'CONFIG_INVALID',
          'TikTok conversion uploads need an eventSourceId (pixel or event set)',
        );
      }
      const options = {
        eventSource: config.eventSource ?? 'crm',
        eventSourceId: config.eventSourceId,
        ...(config.testEventCode === undefined ? {} : { testEventCode: config.testEventCode }),
      } as const;
      const built = buildTikTokEventsBodies(events, options).flatMap((body) => body.data);
      return uploadIdempotently<TikTokEvent>({
        platform: 'tiktok',
        transport,
        log: deps.uploadLog,
        prepared: built.map((payload, index) => ({
          dedupeKey: conversionDedupeKey('tiktok', events[index]!),
          payload,
        })),
        maxPerRequest: TIKTOK_MAX_EVENTS_PER_REQUEST,
        requestFor: (data) =>
          post('event/track/', {
            event_source: options.eventSource,
            event_source_id: options.eventSourceId,
            ...(options.testEventCode === undefined ? {} : { test_event_code: options.testEventCode }),
            data,
          }),
        now: () => clock.now(),
        ...(signal === undefined ? {} : { signal }),
      });
    },

    requestLog: () => transport.requests(),
  };
}
