// Google Ads API (REST) adapter: googleAds:mutate shapes for budgets, campaigns, ad groups with criteria and
// responsive search ads (money in micros), GAQL reporting, and UploadClickConversions.
import { z } from 'zod';
import { AppError } from '../../shared/errors.js';
import {
  buildGoogleClickConversion,
  conversionDedupeKey,
  currencyDigits,
  GOOGLE_MAX_CONVERSIONS_PER_REQUEST,
  googleConversionActionResource,
  googleCustomerId,
  type ConversionEvent,
  type GoogleClickConversion,
} from '../conversions.js';
import {
  assertIsoDate,
  assertLiveCredentials,
  assertMinorUnits,
  CampaignCategories,
  countOf,
  createPlatformTransport,
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
  type PlatformDeps,
  type TargetingSpec,
} from './adapter.js';
import { assertHousingCampaign, assertHousingTargeting } from './housing_rules.js';
import { systemClock, type PlatformRequest, type PlatformResponse, type RecordedRequest } from './http.js';

/** Google Ads adapter configuration. */
export interface GooglePlatformConfig {
  /** Ads customer id (10 digits, dashes allowed). */
  customerId: string;
  /** Manager account id sent as `login-customer-id` when access goes through an MCC. */
  loginCustomerId?: string;
  /** Required in live mode. */
  developerToken?: string;
  /** OAuth2 access token (the caller refreshes it); required in live mode. */
  accessToken?: string;
  /** UPLOAD_CLICKS conversion action id; required for uploads. */
  conversionActionId?: string;
  /** Account time zone (IANA) for conversion_date_time; required for uploads. */
  timeZone?: string;
  adUserDataConsent?: 'GRANTED' | 'DENIED';
  /** Default v21. */
  apiVersion?: string;
  /** Default https://googleads.googleapis.com. */
  baseUrl?: string;
}

export const GOOGLE_DEFAULT_API_VERSION = 'v21';

/** Google's age-range criteria and the ages each covers. */
const AGE_RANGES: readonly [string, number, number][] = [
  ['AGE_RANGE_18_24', 18, 24],
  ['AGE_RANGE_25_34', 25, 34],
  ['AGE_RANGE_35_44', 35, 44],
  ['AGE_RANGE_45_54', 45, 54],
  ['AGE_RANGE_55_64', 55, 64],
  ['AGE_RANGE_65_UP', 65, Number.POSITIVE_INFINITY],
];

const BIDDING: Readonly<Record<CampaignObjective, Record<string, unknown>>> = {
  awareness: { targetSpend: {} },
  traffic: { targetSpend: {} },
  engagement: { targetSpend: {} },
  leads: { maximizeConversions: {} },
  sales: { maximizeConversions: {} },
};

const mutateResponse = z.object({
  mutateOperationResponses: z.array(
    z.record(z.string(), z.object({ resourceName: z.string() }).passthrough()),
  ),
});
const searchResponse = z.object({
  results: z.array(z.record(z.string(), z.unknown())).optional(),
  nextPageToken: z.string().optional(),
});
const partialFailure = z.object({
  partialFailureError: z
    .object({
      details: z
        .array(
          z
            .object({
              errors: z
                .array(
                  z
                    .object({
                      location: z
                        .object({
                          fieldPathElements: z
                            .array(z.object({ fieldName: z.string(), index: z.number().optional() }))
                            .optional(),
                        })
                        .optional(),
                    })
                    .passthrough(),
                )
                .optional(),
            })
            .passthrough(),
        )
        .optional(),
    })
    .passthrough()
    .optional(),
});

/** Conversion rows (index within the request) named in a Google `partialFailureError`. */
export function googlePartialFailureIndexes(body: unknown): Set<number> {
  const parsed = partialFailure.safeParse(body);
  const indexes = new Set<number>();
  if (!parsed.success) return indexes;
  for (const detail of parsed.data.partialFailureError?.details ?? []) {
    for (const error of detail.errors ?? []) {
      const element = error.location?.fieldPathElements?.find((path) => path.fieldName === 'conversions');
      if (element?.index !== undefined) indexes.add(element.index);
    }
  }
  return indexes;
}

function minorToMicros(amountMinor: number, currency: string): string {
  return String(amountMinor * 10 ** (6 - currencyDigits(currency)));
}

function idOf(resourceName: string): string {
  return resourceName.slice(resourceName.lastIndexOf('/') + 1);
}

/** Creates the Google Ads adapter; dry-run unless `deps.mode` is live (developer + OAuth token needed). */
export function createGooglePlatform(config: GooglePlatformConfig, deps: PlatformDeps): AdPlatform {
  const mode = deps.mode ?? 'dry-run';
  const customerId = googleCustomerId(config.customerId);
  assertLiveCredentials('google_ads', deps, {
    developerToken: config.developerToken,
    accessToken: config.accessToken,
  });
  const clock = deps.clock ?? systemClock;
  const transport = createPlatformTransport('google_ads', deps, [config.developerToken, config.accessToken]);
  const base = `${config.baseUrl ?? 'https://googleads.googleapis.com'}/${config.apiVersion ?? GOOGLE_DEFAULT_API_VERSION}`;
  const customer = `customers/${customerId}`;
  const ids = new DryRunIds('google_ads');
  const categories = new CampaignCategories();
  const headers = {
    'content-type': 'application/json',
    authorization: `Bearer ${config.accessToken ?? ''}`,
    'developer-token': config.developerToken ?? '',
    ...(config.loginCustomerId === undefined
      ? {}
      : { 'login-customer-id': googleCustomerId(config.loginCustomerId) }),
  };
  const post = (path: string, body: unknown): PlatformRequest => ({
    method: 'POST',
    url: `${base}/${path}`,
    headers: { ...headers },
    body,
  });

  /** Sends one googleAds:mutate and returns the resource name of the result under `resultKey`. */
  async function mutate(
    kind: string,
    operations: Record<string, unknown>[],
    resultKey: string,
    signal?: AbortSignal,
  ): Promise<CreateResult> {
    const { recorded, response } = await transport.execute(
      post(`${customer}/googleAds:mutate`, { mutateOperations: operations }),
      signal,
    );
    if (response === undefined) return { id: ids.next(kind), dryRun: true, requests: [recorded] };
    const parsed = mutateResponse.safeParse(response.body);
    const result = parsed.success
      ? parsed.data.mutateOperationResponses.find((entry) => entry[resultKey] !== undefined)?.[resultKey]
      : undefined;
    if (result === undefined) {
      throw new AppError('UPSTREAM_ERROR', `Google Ads mutate response has no ${resultKey}`, {
        details: { body: response.body },
      });
    }
    return { id: idOf(result.resourceName), dryRun: false, requests: [recorded] };
  }

  function locationCriterion(
    campaign: string,
    location: LocationTarget,
    negative: boolean,
  ): Record<string, unknown> {
    if (location.kind === 'address') {
      if (
        location.latitude === undefined ||
        location.longitude === undefined ||
        location.radius === undefined
      ) {
        throw new AppError(
          'VALIDATION_FAILED',
          `address target ${location.key} needs latitude, longitude and radius`,
        );
      }
      return {
        campaignCriterionOperation: {
          create: {
            campaign,
            negative,
            proximity: {
              geoPoint: {
                latitudeInMicroDegrees: Math.round(location.latitude * 1e6),
                longitudeInMicroDegrees: Math.round(location.longitude * 1e6),
              },
              radius: location.radius.value,
              radiusUnits: location.radius.unit === 'mile' ? 'MILES' : 'KILOMETERS',
            },
          },
        },
      };
    }
    if (!/^\d+$/.test(location.key)) {
      throw new AppError(
        'VALIDATION_FAILED',
        `Google location key must be a geo target constant id, got ${location.key}`,
      );
    }
    return {
      campaignCriterionOperation: {
        create: { campaign, negative, location: { geoTargetConstant: `geoTargetConstants/${location.key}` } },
      },
    };
  }

  function demographicCriteria(adGroup: string, targeting: TargetingSpec): Record<string, unknown>[] {
    const criteria: Record<string, unknown>[] = [];
    const min = targeting.ageMin ?? 18;
    const max = targeting.ageMax ?? Number.POSITIVE_INFINITY;
    const ranges = AGE_RANGES.filter(([, low, high]) => high >= min && low <= max);
    if (ranges.length < AGE_RANGES.length) {
      for (const [type] of ranges)
        criteria.push({ adGroupCriterionOperation: { create: { adGroup, ageRange: { type } } } });
    }
    for (const gender of restrictedGenders(targeting) ?? []) {
      criteria.push({
        adGroupCriterionOperation: { create: { adGroup, gender: { type: gender.toUpperCase() } } },
      });
    }
    for (const type of targeting.parentalStatuses ?? []) {
      criteria.push({ adGroupCriterionOperation: { create: { adGroup, parentalStatus: { type } } } });
    }
    for (const audience of targeting.customAudienceIds ?? []) {
      criteria.push({
        adGroupCriterionOperation: {
          create: { adGroup, userList: { userList: `${customer}/userLists/${audience}` } },
        },
      });
    }
    return criteria;
  }

  function assertTranslatable(spec: AdSetSpec): void {
    const targeting = spec.targeting;
    const unsupported = [
      ['interests', targeting.interests],
      ['interestKeywords', targeting.interestKeywords],
      ['excludedInterests', targeting.excludedInterests],
      ['lookalikeAudienceIds', targeting.lookalikeAudienceIds],
      ['excludedCustomAudienceIds', targeting.excludedCustomAudienceIds],
      ['maritalStatuses', targeting.maritalStatuses],
    ]
      .filter(([, value]) => Array.isArray(value) && value.length > 0)
      .map(([name]) => name as string);
    if (spec.dailyBudgetMinor !== undefined)
      unsupported.push('dailyBudgetMinor (Google budgets are per campaign)');
    if (unsupported.length > 0) {
      throw new AppError(
        'VALIDATION_FAILED',
        `Google search ad groups cannot express: ${unsupported.join(', ')}`,
        {
          details: { unsupported },
        },
      );
    }
  }

  async function search(
    query: string,
    signal?: AbortSignal,
  ): Promise<{ rows: Record<string, unknown>[]; requests: RecordedRequest[] }> {
    const rows: Record<string, unknown>[] = [];
    const requests: RecordedRequest[] = [];
    let pageToken: string | undefined;
    do {
      const { recorded, response } = await transport.execute(
        post(`${customer}/googleAds:search`, { query, ...(pageToken === undefined ? {} : { pageToken }) }),
        signal,
      );
      requests.push(recorded);
      if (response === undefined) return { rows, requests };
      const parsed = searchResponse.safeParse(response.body);
      if (!parsed.success) {
        throw new AppError('UPSTREAM_ERROR', 'Google Ads search response has an unexpected shape', {
          cause: parsed.error,
        });
      }
      rows.push(...(parsed.data.results ?? []));
      pageToken = parsed.data.nextPageToken;
    } while (pageToken !== undefined && pageToken !== '');
    return { rows, requests };
  }

  return {
    name: 'google_ads',
    mode,

    async createCampaign(spec: CampaignSpec, signal?: AbortSignal) {
      assertHousingCampaign('google_ads', spec);
      assertMinorUnits('dailyBudgetMinor', spec.dailyBudgetMinor);
      if (spec.dailyBudgetMinor === undefined) {
        throw new AppError(
          'VALIDATION_FAILED',
          'Google campaigns need dailyBudgetMinor (budgets are per campaign)',
        );
      }
      const budget = `${customer}/campaignBudgets/-1`;
      const result = await mutate(
        'campaign',
        [
          {
            campaignBudgetOperation: {
              create: {
                resourceName: budget,
                name: `${spec.name} budget`,
                amountMicros: minorToMicros(spec.dailyBudgetMinor, spec.currency),
                deliveryMethod: 'STANDARD',
                explicitlyShared: false,
              },
            },
          },
          {
            campaignOperation: {
              create: {
                resourceName: `${customer}/campaigns/-2`,
                name: spec.name,
                status: spec.status ?? 'PAUSED',
                advertisingChannelType: 'SEARCH',
                campaignBudget: budget,
                ...BIDDING[spec.objective],
                networkSettings: {
                  targetGoogleSearch: true,
                  targetSearchNetwork: true,
                  targetContentNetwork: false,
                },
                containsEuPoliticalAdvertising: 'DOES_NOT_CONTAIN_EU_POLITICAL_ADVERTISING',
              },
            },
          },
        ],
        'campaignResult',
        signal,
      );
      categories.remember(result.id, spec.specialAdCategory);
      return result;
    },

    async createAdSet(spec: AdSetSpec, signal?: AbortSignal) {
      categories.assertConsistent(spec);
      if (spec.specialAdCategory === 'HOUSING') assertHousingTargeting('google_ads', spec.targeting);
      assertTranslatable(spec);
      assertMinorUnits('bidAmountMinor', spec.bidAmountMinor);
      const campaign = `${customer}/campaigns/${spec.campaignId}`;
      const adGroup = `${customer}/adGroups/-1`;
      return mutate(
        'adgroup',
        [
          {
            adGroupOperation: {
              create: {
                resourceName: adGroup,
                name: spec.name,
                campaign,
                status: spec.status === 'ACTIVE' ? 'ENABLED' : 'PAUSED',
                type: 'SEARCH_STANDARD',
                ...(spec.bidAmountMinor === undefined
                  ? {}
                  : { cpcBidMicros: minorToMicros(spec.bidAmountMinor, spec.currency) }),
              },
            },
          },
          ...spec.targeting.locations.map((location) => locationCriterion(campaign, location, false)),
          ...(spec.targeting.excludedLocations ?? []).map((location) =>
            locationCriterion(campaign, location, true),
          ),
          ...demographicCriteria(adGroup, spec.targeting),
        ],
        'adGroupResult',
        signal,
      );
    },

    async createAd(spec: AdSpec, signal?: AbortSignal) {
      const creative = spec.creative;
      const headlines = creative.headlines ?? [creative.headline];
      const descriptions = creative.descriptions ?? [creative.description ?? creative.primaryText];
      const problems: string[] = [];
      if (headlines.length < 3 || headlines.length > 15) problems.push('3–15 headlines');
      if (headlines.some((headline) => headline.length > 30))
        problems.push('headlines of at most 30 characters');
      if (descriptions.length < 2 || descriptions.length > 4) problems.push('2–4 descriptions');
      if (descriptions.some((description) => description.length > 90))
        problems.push('descriptions of at most 90 characters');
      if (problems.length > 0) {
        throw new AppError('VALIDATION_FAILED', `responsive search ads need ${problems.join(', ')}`, {
          details: { problems },
        });
      }
      return mutate(
        'ad',
        [
          {
            adGroupAdOperation: {
              create: {
                adGroup: `${customer}/adGroups/${spec.adSetId}`,
                status: spec.status === 'ACTIVE' ? 'ENABLED' : 'PAUSED',
                ad: {
                  name: spec.name,
                  finalUrls: [creative.linkUrl],
                  responsiveSearchAd: {
                    headlines: headlines.map((text) => ({ text })),
                    descriptions: descriptions.map((text) => ({ text })),
                  },
                },
              },
            },
          },
        ],
        'adGroupAdResult',
        signal,
      );
    },

    async getInsights(query: InsightsQuery, signal?: AbortSignal): Promise<InsightsResult> {
      assertIsoDate('since', query.since);
      assertIsoDate('until', query.until);
      if (query.objectId !== undefined && !/^\d+$/.test(query.objectId)) {
        throw new AppError('VALIDATION_FAILED', 'Google objectId must be a numeric campaign id');
      }
      const [resource, idField, nameField] =
        query.level === 'campaign'
          ? ['campaign', 'campaign.id', 'campaign.name']
          : query.level === 'adset'
            ? ['ad_group', 'ad_group.id', 'ad_group.name']
            : ['ad_group_ad', 'ad_group_ad.ad.id', 'ad_group_ad.ad.name'];
      const gaql = [
        `SELECT ${idField}, ${nameField}, segments.date, metrics.cost_micros, metrics.impressions, metrics.clicks, metrics.conversions, metrics.conversions_value`,
        `FROM ${resource}`,
        `WHERE segments.date BETWEEN '${query.since}' AND '${query.until}'`,
        ...(query.objectId === undefined ? [] : [`AND campaign.id = ${query.objectId}`]),
      ].join(' ');
      const { rows, requests } = await search(gaql, signal);
      if (transport.mode === 'dry-run') return { dryRun: true, rows: [], requests };
      const pick = (row: Record<string, unknown>, path: string): unknown =>
        path.split('.').reduce<unknown>((value, key) => {
          const camel = key.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
          return value !== null && typeof value === 'object'
            ? (value as Record<string, unknown>)[camel]
            : undefined;
        }, row);
      const insightRows: InsightRow[] = rows.map((row) => {
        const name = pick(row, nameField);
        const date = pick(row, 'segments.date');
        return {
          id: String(pick(row, idField)),
          ...(typeof name === 'string' ? { name } : {}),
          ...(typeof date === 'string' ? { date } : {}),
          costMicros: countOf(pick(row, 'metrics.cost_micros')),
          impressions: countOf(pick(row, 'metrics.impressions')),
          clicks: countOf(pick(row, 'metrics.clicks')),
          conversions: countOf(pick(row, 'metrics.conversions')),
          conversionValue: countOf(pick(row, 'metrics.conversions_value')),
        };
      });
      return { dryRun: false, rows: insightRows, requests };
    },

    async uploadConversions(
      events: readonly ConversionEvent[],
      signal?: AbortSignal,
    ): Promise<ConversionUploadResult> {
      if (config.conversionActionId === undefined || config.timeZone === undefined) {
        throw new AppError(
          'CONFIG_INVALID',
          'Google conversion uploads need conversionActionId and timeZone',
        );
      }
      const options = {
        customerId,
        conversionActionId: config.conversionActionId,
        timeZone: config.timeZone,
        ...(config.adUserDataConsent === undefined ? {} : { adUserDataConsent: config.adUserDataConsent }),
      };
      const action = googleConversionActionResource(customerId, config.conversionActionId);
      const prepared = events.map((event) => ({
        dedupeKey: conversionDedupeKey('google_ads', event, action),
        payload: buildGoogleClickConversion(event, options),
      }));
      return uploadIdempotently<GoogleClickConversion>({
        platform: 'google_ads',
        transport,
        log: deps.uploadLog,
        prepared,
        maxPerRequest: GOOGLE_MAX_CONVERSIONS_PER_REQUEST,
        requestFor: (conversions) =>
          post(`${customer}:uploadClickConversions`, { conversions, partialFailure: true }),
        rejectedIndexes: (response: PlatformResponse) => googlePartialFailureIndexes(response.body),
        now: () => clock.now(),
        ...(signal === undefined ? {} : { signal }),
      });
    },

    requestLog: () => transport.requests(),
  };
}
