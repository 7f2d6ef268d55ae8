// Live mode against local fake platforms: retry with backoff and Retry-After, give-up errors with the
// status, idempotent conversion uploads, and housing rules that stop a request before it is sent.
import { afterEach, describe, expect, it } from 'vitest';
import { InMemoryConversionUploadLog, type ConversionEvent } from '../../spoke_marketing/conversions.js';
import type { AdSetSpec, PlatformDeps } from '../../spoke_marketing/platforms/adapter.js';
import { createGooglePlatform } from '../../spoke_marketing/platforms/google.js';
import type { Clock } from '../../spoke_marketing/platforms/http.js';
import { createMetaPlatform } from '../../spoke_marketing/platforms/meta.js';
import { createTikTokPlatform } from '../../spoke_marketing/platforms/tiktok.js';
import { startFakePlatform, type FakeReply, type FakeServer } from './platforms_fake_server.js';

const NOW = Date.UTC(2025, 2, 10, 12);

/** Frozen clock: sleeping advances time instantly and is recorded, so tests never wait. */
function fakeClock(): Clock & { slept: number[] } {
  let now = NOW;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  };
}

const servers: FakeServer[] = [];
async function fake(reply: (index: number) => FakeReply): Promise<FakeServer> {
  const server = await startFakePlatform(reply);
  servers.push(server);
  return server;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function liveDeps(clock: Clock, maxAttempts = 4): PlatformDeps {
  return {
    mode: 'live',
    uploadLog: new InMemoryConversionUploadLog(),
    clock,
    retry: { maxAttempts, baseDelayMs: 100, maxDelayMs: 1_000, random: () => 0.5 },
    rateLimit: { capacity: 100, refillPerSecond: 100 },
  };
}

const housingCampaign = {
  name: 'Maple St open house',
  objective: 'leads' as const,
  specialAdCategory: 'HOUSING' as const,
  countries: ['US'],
  dailyBudgetMinor: 5_000,
  currency: 'USD',
};

const lead: ConversionEvent = {
  eventId: 'lead-1',
  eventName: 'Lead',
  eventTimeMs: NOW - 3_600_000,
  orderId: 'crm-1',
  user: { emails: ['buyer@example.com'], phones: ['+1 555 123 4567'] },
  clickIds: { gclid: 'Cj0-gclid' },
  leadId: '42',
};

describe('live mode against fake platforms', () => {
  it('retries a 429, honouring Retry-After, then succeeds (Meta)', async () => {
    const server = await fake((index) =>
      index === 0
        ? { status: 429, headers: { 'retry-after': '2' }, body: { error: { code: 17 } } }
        : { status: 200, body: { id: '2384' } },
    );
    const clock = fakeClock();
    const meta = createMetaPlatform(
      { adAccountId: '123', accessToken: 'SECRET-META', baseUrl: server.url },
      liveDeps(clock),
    );
    const result = await meta.createCampaign(housingCampaign);
    expect(result).toMatchObject({ id: '2384', dryRun: false });
    expect(server.received).toHaveLength(2);
    expect(clock.slept).toEqual([2_000]);
    expect(server.received[1]!.path).toBe('/v23.0/act_123/campaigns');
    expect(server.received[1]!.body).toMatchObject({
      access_token: 'SECRET-META',
      special_ad_categories: ['HOUSING'],
    });
    const [logged] = meta.requestLog();
    expect(logged).toMatchObject({ sent: true, attempts: 2, status: 200 });
    expect(JSON.stringify(meta.requestLog())).not.toContain('SECRET-META');
  });

  it('treats Meta throttling codes in a 400 body as rate limiting', async () => {
    const server = await fake((index) =>
      index < 2
        ? { status: 400, body: { error: { code: 80004, message: 'too many calls' } } }
        : { status: 200, body: { id: '9' } },
    );
    const clock = fakeClock();
    const meta = createMetaPlatform(
      { adAccountId: '123', accessToken: 't', baseUrl: server.url },
      liveDeps(clock),
    );
    await expect(meta.createCampaign(housingCampaign)).resolves.toMatchObject({ id: '9' });
    expect(clock.slept).toEqual([50, 100]);
  });

  it('gives up on 5xx after max attempts with UPSTREAM_ERROR and the status, backing off with jitter (Google)', async () => {
    const server = await fake(() => ({ status: 503, body: { error: { status: 'UNAVAILABLE' } } }));
    const clock = fakeClock();
    const google = createGooglePlatform(
      { customerId: '123-456-7890', developerToken: 'DEV-TOKEN', accessToken: 'OAUTH', baseUrl: server.url },
      liveDeps(clock, 4),
    );
    await expect(google.createCampaign(housingCampaign)).rejects.toMatchObject({
      code: 'UPSTREAM_ERROR',
      details: { platform: 'google_ads', status: 503, attempts: 4 },
    });
    expect(server.received).toHaveLength(4);
    expect(clock.slept).toEqual([50, 100, 200]);
    expect(server.received[0]!.headers['developer-token']).toBe('DEV-TOKEN');
    expect(server.received[0]!.headers['authorization']).toBe('Bearer OAUTH');
  });

  it('gives up on persistent 429 with RATE_LIMITED and the server’s Retry-After', async () => {
    const server = await fake(() => ({ status: 429, headers: { 'retry-after': '1' } }));
    const clock = fakeClock();
    const google = createGooglePlatform(
      { customerId: '1234567890', developerToken: 'd', accessToken: 'a', baseUrl: server.url },
      liveDeps(clock, 3),
    );
    await expect(google.createCampaign(housingCampaign)).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      retryAfterSeconds: 1,
      details: { status: 429, attempts: 3 },
    });
    expect(server.received).toHaveLength(3);
    expect(clock.slept).toEqual([1_000, 1_000]);
  });

  it('stops at once when Retry-After is beyond the policy’s limit', async () => {
    const server = await fake(() => ({ status: 429, headers: { 'retry-after': '3600' } }));
    const tiktok = createTikTokPlatform(
      { advertiserId: '7000', accessToken: 'tt', baseUrl: server.url },
      liveDeps(fakeClock()),
    );
    await expect(tiktok.createCampaign(housingCampaign)).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      retryAfterSeconds: 3600,
    });
    expect(server.received).toHaveLength(1);
  });

  it('retries TikTok’s 200-with-code-40100 and reads the id from data', async () => {
    const server = await fake((index) =>
      index === 0
        ? { status: 200, body: { code: 40100, message: 'Too many requests' } }
        : { status: 200, body: { code: 0, message: 'OK', data: { campaign_id: '1800' } } },
    );
    const tiktok = createTikTokPlatform(
      { advertiserId: '7000', accessToken: 'TT-SECRET', baseUrl: server.url },
      liveDeps(fakeClock()),
    );
    await expect(tiktok.createCampaign(housingCampaign)).resolves.toMatchObject({ id: '1800' });
    expect(server.received[1]!.headers['access-token']).toBe('TT-SECRET');
    expect(server.received[1]!.path).toBe('/v1.3/campaign/create/');
  });

  it('does not retry a non-retryable 400 and reports the platform’s body', async () => {
    const server = await fake(() => ({
      status: 400,
      body: { error: { code: 100, message: 'Invalid parameter' } },
    }));
    const meta = createMetaPlatform(
      { adAccountId: '123', accessToken: 't', baseUrl: server.url },
      liveDeps(fakeClock()),
    );
    await expect(meta.createCampaign(housingCampaign)).rejects.toMatchObject({
      code: 'UPSTREAM_ERROR',
      details: { status: 400, attempts: 1, body: { error: { code: 100 } } },
    });
    expect(server.received).toHaveLength(1);
  });

  it('retries network errors and then reports UPSTREAM_ERROR', async () => {
    const server = await fake(() => ({ status: 200 }));
    const url = server.url;
    await servers.splice(0)[0]!.close();
    const clock = fakeClock();
    const meta = createMetaPlatform(
      { adAccountId: '123', accessToken: 't', baseUrl: url },
      liveDeps(clock, 2),
    );
    await expect(meta.createCampaign(housingCampaign)).rejects.toMatchObject({
      code: 'UPSTREAM_ERROR',
      details: { attempts: 2 },
    });
    expect(clock.slept).toHaveLength(1);
  });

  it('refuses housing targeting that breaks rules before sending anything, listing every rule', async () => {
    const server = await fake(() => ({ status: 200, body: { id: '1' } }));
    const meta = createMetaPlatform(
      { adAccountId: '123', accessToken: 't', baseUrl: server.url },
      liveDeps(fakeClock()),
    );
    const adSet: AdSetSpec = {
      campaignId: '77',
      name: 'young families near schools',
      specialAdCategory: 'HOUSING',
      currency: 'USD',
      optimizationGoal: 'leads',
      targeting: {
        locations: [
          { kind: 'postal_code', key: 'US:94110' },
          { kind: 'city', key: '2420379', name: 'San Francisco', radius: { value: 10, unit: 'kilometer' } },
        ],
        excludedLocations: [{ kind: 'region', key: '3847' }],
        ageMin: 25,
        ageMax: 40,
        genders: ['female'],
        lookalikeAudienceIds: ['lal-1'],
        excludedInterests: [{ id: '6003' }],
      },
    };
    let caught: unknown;
    try {
      await meta.createAdSet(adSet);
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: 'FORBIDDEN' });
    const rules = (caught as { details: { violations: { rule: string }[] } }).details.violations.map(
      (v) => v.rule,
    );
    expect(rules).toEqual([
      'meta.age_range',
      'meta.gender',
      'meta.postal_code',
      'meta.location_exclusion',
      'meta.radius_min_15_miles',
      'meta.lookalike',
      'meta.detailed_exclusion',
    ]);
    for (const rule of rules) expect((caught as Error).message).toContain(rule);
    expect(server.received).toHaveLength(0);
    expect(meta.requestLog()).toHaveLength(0);
  });

  it('uploads conversions once: a re-upload is all duplicates and sends nothing (Meta)', async () => {
    const server = await fake(() => ({ status: 200, body: { events_received: 1 } }));
    const deps = liveDeps(fakeClock());
    const meta = createMetaPlatform(
      {
        adAccountId: '123',
        accessToken: 't',
        datasetId: '555',
        baseUrl: server.url,
        actionSource: 'system_generated',
      },
      deps,
    );
    const first = await meta.uploadConversions([lead]);
    expect(first).toMatchObject({ dryRun: false, accepted: ['Lead:lead-1'], duplicates: [] });
    const second = await meta.uploadConversions([lead]);
    expect(second).toMatchObject({ accepted: [], duplicates: ['Lead:lead-1'], requests: [] });
    expect(server.received).toHaveLength(1);
    expect(server.received[0]!.path).toBe('/v23.0/555/events');
    expect((server.received[0]!.body as { data: unknown[] }).data).toHaveLength(1);
    expect(await deps.uploadLog.list({ platform: 'meta' })).toMatchObject([
      { dedupeKey: 'Lead:lead-1', status: 'sent' },
    ]);
  });

  it('marks Google partial failures failed so only they are uploaded again', async () => {
    const server = await fake((index) =>
      index === 0
        ? {
            status: 200,
            body: {
              partialFailureError: {
                code: 3,
                details: [
                  { errors: [{ location: { fieldPathElements: [{ fieldName: 'conversions', index: 1 }] } }] },
                ],
              },
              results: [{ gclid: 'Cj0-gclid' }, {}],
            },
          }
        : { status: 200, body: { results: [{}] } },
    );
    const deps = liveDeps(fakeClock());
    const google = createGooglePlatform(
      {
        customerId: '1234567890',
        developerToken: 'd',
        accessToken: 'a',
        conversionActionId: '99',
        timeZone: 'America/New_York',
        baseUrl: server.url,
      },
      deps,
    );
    const second = { ...lead, eventId: 'lead-2', orderId: 'crm-2', clickIds: { gbraid: 'gb-2' } };
    const first = await google.uploadConversions([lead, second]);
    expect(first.rejected).toEqual(['customers/1234567890/conversionActions/99:order:crm-2']);
    const retry = await google.uploadConversions([lead, second]);
    expect(retry.accepted).toEqual(['customers/1234567890/conversionActions/99:order:crm-2']);
    expect(retry.duplicates).toEqual(['customers/1234567890/conversionActions/99:order:crm-1']);
    expect(server.received.map((request) => request.path)).toEqual([
      '/v21/customers/1234567890:uploadClickConversions',
      '/v21/customers/1234567890:uploadClickConversions',
    ]);
    expect(server.received[0]!.body).toMatchObject({ partialFailure: true });
  });

  it('marks a batch failed when the upload gives up, so it can be retried later', async () => {
    const server = await fake(() => ({ status: 500 }));
    const deps = liveDeps(fakeClock(), 2);
    const tiktok = createTikTokPlatform(
      { advertiserId: '7000', accessToken: 'tt', eventSourceId: 'CRM1', baseUrl: server.url },
      deps,
    );
    await expect(tiktok.uploadConversions([lead])).rejects.toMatchObject({ code: 'UPSTREAM_ERROR' });
    expect(await deps.uploadLog.list()).toMatchObject([{ platform: 'tiktok', status: 'failed' }]);
  });

  it('parses insights into exact micros (Meta spend strings, Google costMicros, TikTok spend)', async () => {
    const metaServer = await fake(() => ({
      status: 200,
      body: {
        data: [
          {
            campaign_id: '1',
            campaign_name: 'Spring',
            date_start: '2025-03-01',
            spend: '12.34',
            impressions: '1000',
            clicks: '25',
            actions: [
              { action_type: 'lead', value: '3' },
              { action_type: 'link_click', value: '25' },
            ],
          },
        ],
      },
    }));
    const meta = createMetaPlatform(
      { adAccountId: '123', accessToken: 'TOKEN', baseUrl: metaServer.url },
      liveDeps(fakeClock()),
    );
    const metaRows = await meta.getInsights({ level: 'campaign', since: '2025-03-01', until: '2025-03-07' });
    expect(metaRows.rows).toEqual([
      {
        id: '1',
        name: 'Spring',
        date: '2025-03-01',
        costMicros: 12_340_000,
        impressions: 1000,
        clicks: 25,
        conversions: 3,
        conversionValue: 0,
      },
    ]);
    expect(metaServer.received[0]!.path).toContain('/v23.0/act_123/insights?level=campaign');
    expect(metaRows.requests[0]!.url).not.toContain('TOKEN');

    const googleServer = await fake((index) => ({
      status: 200,
      body:
        index === 0
          ? {
              results: [
                {
                  campaign: { id: '5', name: 'Search' },
                  segments: { date: '2025-03-01' },
                  metrics: {
                    costMicros: '4500000',
                    impressions: '300',
                    clicks: '12',
                    conversions: 2,
                    conversionsValue: 900,
                  },
                },
              ],
              nextPageToken: 'page-2',
            }
          : { results: [] },
    }));
    const google = createGooglePlatform(
      { customerId: '1234567890', developerToken: 'd', accessToken: 'a', baseUrl: googleServer.url },
      liveDeps(fakeClock()),
    );
    const googleRows = await google.getInsights({
      level: 'campaign',
      since: '2025-03-01',
      until: '2025-03-07',
    });
    expect(googleRows.rows).toEqual([
      {
        id: '5',
        name: 'Search',
        date: '2025-03-01',
        costMicros: 4_500_000,
        impressions: 300,
        clicks: 12,
        conversions: 2,
        conversionValue: 900,
      },
    ]);
    expect(googleServer.received).toHaveLength(2);
    expect(googleServer.received[1]!.body).toMatchObject({ pageToken: 'page-2' });

    const tiktokServer = await fake(() => ({
      status: 200,
      body: {
        code: 0,
        data: {
          list: [
            {
              dimensions: { campaign_id: '8', stat_time_day: '2025-03-01 00:00:00' },
              metrics: {
                campaign_name: 'Reels',
                spend: '7.5',
                impressions: '800',
                clicks: '9',
                conversion: '1',
              },
            },
          ],
          page_info: { page: 1, total_page: 1 },
        },
      },
    }));
    const tiktok = createTikTokPlatform(
      { advertiserId: '7000', accessToken: 'tt', baseUrl: tiktokServer.url },
      liveDeps(fakeClock()),
    );
    const tiktokRows = await tiktok.getInsights({
      level: 'campaign',
      since: '2025-03-01',
      until: '2025-03-07',
    });
    expect(tiktokRows.rows).toEqual([
      {
        id: '8',
        name: 'Reels',
        date: '2025-03-01',
        costMicros: 7_500_000,
        impressions: 800,
        clicks: 9,
        conversions: 1,
        conversionValue: 0,
      },
    ]);
  });

  it('refuses live mode without credentials, naming each missing one', () => {
    expect(() =>
      createGooglePlatform(
        { customerId: '1234567890' },
        { mode: 'live', uploadLog: new InMemoryConversionUploadLog() },
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        details: { platform: 'google_ads', missing: ['developerToken', 'accessToken'] },
      }),
    );
  });
});
