// Dry-run adapters: the exact requests each platform would receive (golden shapes), nothing sent to a
// listening fake server, and housing Special Ad Category rules per platform.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InMemoryConversionUploadLog, type ConversionEvent } from '../../spoke_marketing/conversions.js';
import type {
  AdPlatform,
  AdSetSpec,
  CampaignSpec,
  TargetingSpec,
} from '../../spoke_marketing/platforms/adapter.js';
import { createGooglePlatform } from '../../spoke_marketing/platforms/google.js';
import {
  GOOGLE_HOUSING_RULES_VERIFIED,
  housingTargetingViolations,
} from '../../spoke_marketing/platforms/housing_rules.js';
import type { Clock } from '../../spoke_marketing/platforms/http.js';
import { createMetaPlatform } from '../../spoke_marketing/platforms/meta.js';
import { createTikTokPlatform } from '../../spoke_marketing/platforms/tiktok.js';
import { startFakePlatform, type FakeServer } from './platforms_fake_server.js';

const NOW = Date.UTC(2025, 2, 10, 12);
const clock: Clock = { now: () => NOW, sleep: async () => undefined };

let server: FakeServer;
beforeAll(async () => {
  server = await startFakePlatform(() => ({ status: 200, body: { id: 'should-never-be-used' } }));
});
afterAll(async () => {
  await server.close();
});

const campaign: CampaignSpec = {
  name: 'Maple St listings',
  objective: 'leads',
  specialAdCategory: 'HOUSING',
  countries: ['US'],
  dailyBudgetMinor: 5_000,
  currency: 'USD',
};

const compliantTargeting: TargetingSpec = {
  locations: [
    { kind: 'region', key: '3847', name: 'California' },
    { kind: 'city', key: '2420379', name: 'San Francisco' },
  ],
  interests: [{ id: '6003020834693', name: 'Real estate' }],
};

const lead: ConversionEvent = {
  eventId: 'lead-9',
  eventName: 'Lead',
  eventTimeMs: NOW - 60_000,
  user: { emails: ['buyer@example.com'] },
  clickIds: { gclid: 'Cj0-x', ttclid: 'tt-x' },
  leadId: '9',
};

const PLATFORM_NAMES = ['meta', 'google_ads', 'tiktok'] as const;

/** A dry-run adapter aimed at the listening fake, so any request it sent would show up there. */
function platformNamed(name: (typeof PLATFORM_NAMES)[number]): AdPlatform {
  const deps = { uploadLog: new InMemoryConversionUploadLog(), clock };
  const all = [
    createMetaPlatform(
      { adAccountId: '123', accessToken: 'META-SECRET', datasetId: '555', baseUrl: server.url },
      deps,
    ),
    createGooglePlatform(
      {
        customerId: '123-456-7890',
        developerToken: 'DEV-SECRET',
        accessToken: 'OAUTH-SECRET',
        conversionActionId: '99',
        timeZone: 'America/Los_Angeles',
        baseUrl: server.url,
      },
      deps,
    ),
    createTikTokPlatform(
      { advertiserId: '7000', accessToken: 'TT-SECRET', eventSourceId: 'CRM1', baseUrl: server.url },
      deps,
    ),
  ];
  return all.find((platform) => platform.name === name)!;
}

describe('dry-run adapters', () => {
  it.each(PLATFORM_NAMES)('%s builds a whole plan, records every request and sends none', async (name) => {
    const platform = platformNamed(name);
    expect(platform.mode).toBe('dry-run');
    const created = await platform.createCampaign(campaign);
    expect(created.id).toMatch(new RegExp(`^dry-run:${platform.name}:campaign:`));
    const adSet = await platform.createAdSet({
      campaignId: created.id,
      name: 'Bay Area buyers',
      specialAdCategory: 'HOUSING',
      currency: 'USD',
      optimizationGoal: 'leads',
      targeting:
        platform.name === 'google_ads'
          ? { locations: [{ kind: 'region', key: '21137' }] }
          : compliantTargeting,
    });
    await platform.createAd({
      adSetId: adSet.id,
      name: 'Maple St hero',
      creative: {
        linkUrl: 'https://homes.example.com/maple',
        primaryText: 'Three-bedroom home with a garden, open house Saturday.',
        headline: 'Maple St open house',
        headlines: ['Maple St open house', 'Three bedrooms, garden', 'Tour on Saturday'],
        descriptions: ['Bright three-bedroom home with a garden.', 'Book a tour of Maple St today.'],
        callToAction: 'LEARN_MORE',
        pageId: '4242',
        videoId: 'v-1',
        identityId: 'id-1',
      },
    });
    const insights = await platform.getInsights({
      level: 'campaign',
      since: '2025-03-01',
      until: '2025-03-07',
    });
    expect(insights).toMatchObject({ dryRun: true, rows: [] });
    const upload = await platform.uploadConversions([lead]);
    expect(upload).toMatchObject({ dryRun: true, duplicates: [] });
    expect(upload.accepted).toHaveLength(1);

    const log = platform.requestLog();
    expect(log.length).toBeGreaterThanOrEqual(5);
    expect(log.every((request) => !request.sent && request.attempts === 0)).toBe(true);
    expect(log.every((request) => request.url.startsWith(server.url))).toBe(true);
    expect(JSON.stringify(log)).not.toMatch(/META-SECRET|DEV-SECRET|OAUTH-SECRET|TT-SECRET/);
    expect(server.received).toHaveLength(0);
  });

  it('builds Meta’s Graph API campaign and ad set exactly (HOUSING category, minor-unit budget, 18–65, 15-mile radius)', async () => {
    const meta = createMetaPlatform(
      { adAccountId: '123', accessToken: 'META-SECRET' },
      { uploadLog: new InMemoryConversionUploadLog(), clock },
    );
    const created = await meta.createCampaign(campaign);
    await meta.createAdSet({
      campaignId: created.id,
      name: 'SF buyers',
      specialAdCategory: 'HOUSING',
      dailyBudgetMinor: 2_500,
      currency: 'USD',
      optimizationGoal: 'conversions',
      pixelId: '555',
      startTimeMs: Date.UTC(2025, 3, 1),
      targeting: compliantTargeting,
    });
    const [campaignRequest, adSetRequest] = meta.requestLog();
    expect(campaignRequest).toMatchObject({
      method: 'POST',
      url: 'https://graph.facebook.com/v23.0/act_123/campaigns',
      headers: { 'content-type': 'application/json' },
      body: {
        name: 'Maple St listings',
        objective: 'OUTCOME_LEADS',
        status: 'PAUSED',
        special_ad_categories: ['HOUSING'],
        special_ad_category_country: ['US'],
        daily_budget: 5000,
        access_token: '[REDACTED]',
      },
    });
    expect(adSetRequest!.url).toBe('https://graph.facebook.com/v23.0/act_123/adsets');
    expect(adSetRequest!.body).toEqual({
      name: 'SF buyers',
      campaign_id: created.id,
      status: 'PAUSED',
      billing_event: 'IMPRESSIONS',
      optimization_goal: 'OFFSITE_CONVERSIONS',
      bid_strategy: 'LOWEST_COST_WITHOUT_CAP',
      daily_budget: 2500,
      start_time: '2025-04-01T00:00:00.000Z',
      promoted_object: { pixel_id: '555', custom_event_type: 'LEAD' },
      targeting: {
        geo_locations: {
          regions: [{ key: '3847' }],
          cities: [{ key: '2420379', radius: 15, distance_unit: 'mile' }],
        },
        age_min: 18,
        age_max: 65,
        flexible_spec: [{ interests: [{ id: '6003020834693', name: 'Real estate' }] }],
        targeting_automation: { advantage_audience: 0 },
      },
      access_token: '[REDACTED]',
    });
  });

  it('builds Google Ads mutate operations with micros and no demographic criteria for housing', async () => {
    const google = createGooglePlatform(
      {
        customerId: '1234567890',
        developerToken: 'DEV-SECRET',
        accessToken: 'OAUTH-SECRET',
        loginCustomerId: '111-222-3333',
      },
      { uploadLog: new InMemoryConversionUploadLog(), clock },
    );
    await google.createCampaign(campaign);
    await google.createAdSet({
      campaignId: '42',
      name: 'SF buyers',
      specialAdCategory: 'HOUSING',
      currency: 'USD',
      optimizationGoal: 'leads',
      bidAmountMinor: 150,
      targeting: {
        locations: [
          { kind: 'city', key: '1014221' },
          {
            kind: 'address',
            key: 'office',
            latitude: 37.7749,
            longitude: -122.4194,
            radius: { value: 20, unit: 'mile' },
          },
        ],
      },
    });
    const [campaignRequest, adGroupRequest] = google.requestLog();
    expect(campaignRequest!.url).toBe(
      'https://googleads.googleapis.com/v21/customers/1234567890/googleAds:mutate',
    );
    expect(campaignRequest!.headers).toEqual({
      'content-type': 'application/json',
      authorization: 'Bearer [REDACTED]',
      'developer-token': '[REDACTED]',
      'login-customer-id': '1112223333',
    });
    expect(campaignRequest!.body).toEqual({
      mutateOperations: [
        {
          campaignBudgetOperation: {
            create: {
              resourceName: 'customers/1234567890/campaignBudgets/-1',
              name: 'Maple St listings budget',
              amountMicros: '50000000',
              deliveryMethod: 'STANDARD',
              explicitlyShared: false,
            },
          },
        },
        {
          campaignOperation: {
            create: {
              resourceName: 'customers/1234567890/campaigns/-2',
              name: 'Maple St listings',
              status: 'PAUSED',
              advertisingChannelType: 'SEARCH',
              campaignBudget: 'customers/1234567890/campaignBudgets/-1',
              maximizeConversions: {},
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
    });
    expect(adGroupRequest!.body).toEqual({
      mutateOperations: [
        {
          adGroupOperation: {
            create: {
              resourceName: 'customers/1234567890/adGroups/-1',
              name: 'SF buyers',
              campaign: 'customers/1234567890/campaigns/42',
              status: 'PAUSED',
              type: 'SEARCH_STANDARD',
              cpcBidMicros: '1500000',
            },
          },
        },
        {
          campaignCriterionOperation: {
            create: {
              campaign: 'customers/1234567890/campaigns/42',
              negative: false,
              location: { geoTargetConstant: 'geoTargetConstants/1014221' },
            },
          },
        },
        {
          campaignCriterionOperation: {
            create: {
              campaign: 'customers/1234567890/campaigns/42',
              negative: false,
              proximity: {
                geoPoint: { latitudeInMicroDegrees: 37774900, longitudeInMicroDegrees: -122419400 },
                radius: 20,
                radiusUnits: 'MILES',
              },
            },
          },
        },
      ],
    });
  });

  it('builds TikTok v1.3 campaign and ad group bodies (special_industries, major-unit budget, 18+ all genders)', async () => {
    const tiktok = createTikTokPlatform(
      { advertiserId: '7000', accessToken: 'TT-SECRET' },
      { uploadLog: new InMemoryConversionUploadLog(), clock },
    );
    const created = await tiktok.createCampaign(campaign);
    await tiktok.createAdSet({
      campaignId: created.id,
      name: 'US buyers',
      specialAdCategory: 'HOUSING',
      currency: 'USD',
      dailyBudgetMinor: 2_000,
      optimizationGoal: 'leads',
      targeting: { locations: [{ kind: 'country', key: '6252001' }] },
    });
    const [campaignRequest, adGroupRequest] = tiktok.requestLog();
    expect(campaignRequest).toMatchObject({
      method: 'POST',
      url: 'https://business-api.tiktok.com/open_api/v1.3/campaign/create/',
      headers: { 'access-token': '[REDACTED]' },
      body: {
        advertiser_id: '7000',
        campaign_name: 'Maple St listings',
        objective_type: 'LEAD_GENERATION',
        operation_status: 'DISABLE',
        budget_mode: 'BUDGET_MODE_DAY',
        budget: 50,
        special_industries: ['HOUSING'],
      },
    });
    expect(adGroupRequest!.body).toEqual({
      advertiser_id: '7000',
      campaign_id: created.id,
      adgroup_name: 'US buyers',
      operation_status: 'DISABLE',
      placement_type: 'PLACEMENT_TYPE_NORMAL',
      placements: ['PLACEMENT_TIKTOK'],
      location_ids: ['6252001'],
      age_groups: ['AGE_18_24', 'AGE_25_34', 'AGE_35_44', 'AGE_45_54', 'AGE_55_100'],
      gender: 'GENDER_UNLIMITED',
      targeting_expansion: { expansion_enabled: false },
      budget_mode: 'BUDGET_MODE_DAY',
      budget: 20,
      schedule_type: 'SCHEDULE_FROM_NOW',
      schedule_start_time: '2025-03-10 12:00:00',
      optimization_goal: 'LEAD_GENERATION',
      billing_event: 'OCPM',
      bid_type: 'BID_TYPE_NO_BID',
      pacing: 'PACING_MODE_SMOOTH',
    });
  });

  it('refuses a non-housing ad set under a housing campaign it created', async () => {
    const meta = createMetaPlatform(
      { adAccountId: '123' },
      { uploadLog: new InMemoryConversionUploadLog(), clock },
    );
    const created = await meta.createCampaign(campaign);
    const sneaky: AdSetSpec = {
      campaignId: created.id,
      name: 'narrow',
      specialAdCategory: 'NONE',
      currency: 'USD',
      optimizationGoal: 'leads',
      targeting: { locations: [], ageMin: 30 },
    };
    await expect(meta.createAdSet(sneaky)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(meta.requestLog()).toHaveLength(1);
  });

  it('refuses a housing campaign without countries', async () => {
    const meta = createMetaPlatform(
      { adAccountId: '123' },
      { uploadLog: new InMemoryConversionUploadLog(), clock },
    );
    await expect(meta.createCampaign({ ...campaign, countries: [] })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    expect(meta.requestLog()).toHaveLength(0);
  });
});

describe('housing targeting rules', () => {
  const violating: TargetingSpec = {
    locations: [{ kind: 'postal_code', key: '94110' }],
    ageMin: 21,
    ageMax: 45,
    genders: ['male'],
    lookalikeAudienceIds: ['lal'],
    interestKeywords: ['family homes'],
    targetingExpansion: true,
    parentalStatuses: ['PARENT'],
    maritalStatuses: ['MARRIED'],
  };

  it.each([
    ['meta', ['meta.age_range', 'meta.gender', 'meta.postal_code', 'meta.lookalike']],
    [
      'tiktok',
      [
        'tiktok.age_18_plus',
        'tiktok.gender',
        'tiktok.postal_code',
        'tiktok.lookalike',
        'tiktok.interest_keywords',
        'tiktok.targeting_expansion',
      ],
    ],
    [
      'google_ads',
      [
        'google.age',
        'google.gender',
        'google.parental_status',
        'google.marital_status',
        'google.postal_code',
      ],
    ],
  ] as const)('%s lists every violated rule', (platform, rules) => {
    expect(housingTargetingViolations(platform, violating).map((violation) => violation.rule)).toEqual(rules);
  });

  it.each(['meta', 'tiktok', 'google_ads'] as const)('%s accepts broad, compliant targeting', (platform) => {
    expect(housingTargetingViolations(platform, compliantTargeting)).toEqual([]);
  });

  it('accepts a 25 km radius on Meta (≥ 15 miles) and refuses 24 km', () => {
    const at = (km: number): TargetingSpec => ({
      locations: [{ kind: 'city', key: '1', radius: { value: km, unit: 'kilometer' } }],
    });
    expect(housingTargetingViolations('meta', at(25))).toEqual([]);
    expect(housingTargetingViolations('meta', at(24)).map((violation) => violation.rule)).toEqual([
      'meta.radius_min_15_miles',
    ]);
  });

  it('TikTok refuses an upper age limit even at 65, Meta accepts 65 as 65+', () => {
    expect(housingTargetingViolations('tiktok', { locations: [], ageMax: 65 })).toHaveLength(1);
    expect(housingTargetingViolations('meta', { locations: [], ageMin: 18, ageMax: 65 })).toEqual([]);
  });

  it('says Google’s housing rules are unverified', () => {
    expect(GOOGLE_HOUSING_RULES_VERIFIED).toBe(false);
  });

  it.each(PLATFORM_NAMES)('%s refuses a violating housing ad set before recording anything', async (name) => {
    const platform = platformNamed(name);
    await expect(
      platform.createAdSet({
        campaignId: '1',
        name: 'x',
        specialAdCategory: 'HOUSING',
        currency: 'USD',
        optimizationGoal: 'leads',
        targeting: violating,
      }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(platform.requestLog()).toHaveLength(0);
  });
});
