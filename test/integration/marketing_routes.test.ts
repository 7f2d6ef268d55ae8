// The /marketing routes on a real express app (127.0.0.1, port 0) over an embedded PGlite database with a
// scripted model and dry-run platforms: each endpoint's happy path with its numbers checked against the
// algorithm modules, and bad input → 400 naming the field for every endpoint; unknown persona → 404.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Database } from '../../shared/db.js';
import type { LlmClient, LlmUsage, StructuredRequest, StructuredResult } from '../../shared/llm_client.js';
import { silentLogger } from '../../shared/log.js';
import { compareProportions } from '../../spoke_marketing/abtest.js';
import { attribute, parsePathFile, type ConversionPath } from '../../spoke_marketing/attribution.js';
import { optimizeBudget } from '../../spoke_marketing/budget.js';
import { LLM_REVIEW_SCHEMA } from '../../spoke_marketing/compliance.js';
import { simpleLtv } from '../../spoke_marketing/ltv.js';
import { createSqlConversionUploadLog } from '../../spoke_marketing/orchestrator.js';
import { createGooglePlatform } from '../../spoke_marketing/platforms/google.js';
import { createMetaPlatform } from '../../spoke_marketing/platforms/meta.js';
import { createTikTokPlatform } from '../../spoke_marketing/platforms/tiktok.js';
import { upsertLeads, upsertMetrics, type LeadInput } from '../../spoke_marketing/store.js';
import { createMarketingToolkit, type MarketingToolkit } from '../../spoke_marketing/toolkit.js';
import { REPO_ROOT } from '../helpers/shared_data.js';

const DAY_MS = 86_400_000;
const USAGE: LlmUsage = {
  promptTokens: 1,
  reusedPrefixTokens: 0,
  completionTokens: 1,
  timeToFirstTokenMs: 1,
  totalMs: 1,
  generationTokensPerSecond: null,
  attempts: 1,
};

/** Copy the scripted model writes next; the default is clean. */
let nextHeadline = 'Sunny two-bedroom condo downtown';

function scriptedModel(): LlmClient {
  return {
    modelName: 'scripted',
    async generateStructured<T>(request: StructuredRequest<T>): Promise<StructuredResult<T>> {
      const properties = (request.schema as { properties: Record<string, { maxItems?: number }> }).properties;
      let value: unknown;
      if (request.schema === LLM_REVIEW_SCHEMA) value = { compliant: true, concerns: [] };
      else if (properties.personas !== undefined) {
        value = {
          personas: Array.from({ length: properties.personas.maxItems ?? 1 }, (_, label) => ({
            clusterLabel: label,
            name: `Segment ${label + 1} homes`,
            description: 'Homes in one price band and location',
            messaging: ['Move-in ready homes near transit'],
          })),
        };
      } else {
        value = {
          variants: Array.from({ length: properties.variants!.maxItems ?? 1 }, (_, index) => ({
            headline: `${nextHeadline}`.slice(0, 60),
            body: `Open kitchen and walk-in closets near the park (plan ${index + 1}).`,
            cta: 'Schedule a tour',
          })),
        };
      }
      return { value: request.validate(value), rawText: JSON.stringify(value), usage: USAGE };
    },
    async generateText(): Promise<never> {
      throw new Error('not scripted');
    },
    async embed(): Promise<never> {
      throw new Error('not scripted');
    },
    async close() {},
  };
}

function seedLeads(now: number): LeadInput[] {
  const groups = [
    { location: 'Downtown', property_type: 'condo', urgency: 'high', budget: 400_000 },
    { location: 'Northside', property_type: 'single_family', urgency: 'low', budget: 900_000 },
  ];
  return groups.flatMap((group, groupIndex) =>
    Array.from({ length: 8 }, (_, index) => ({
      externalId: `lead-${groupIndex}-${index}`,
      createdAt: new Date(now - (10 + index) * DAY_MS).toISOString(),
      email: `b${groupIndex}${index}@example.com`,
      attributes: { ...group, budget_minor: Math.round(group.budget * 100 * (1 + index / 100)) },
    })),
  );
}

describe('/marketing routes', () => {
  let root: string;
  let db: Database;
  let server: Server;
  let base: string;
  let toolkit: MarketingToolkit;
  let leadIds: number[];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'agenthub-routes-'));
    db = await openDatabase({ dataDir: join(root, 'data', 'marketing'), service: 'marketing' });
    await migrate(db, join(REPO_ROOT, 'spoke_marketing', 'migrations'));
    const now = Date.now();
    leadIds = await upsertLeads(db, seedLeads(now));
    const metrics = [];
    for (let day = 1; day <= 5; day += 1) {
      const date = new Date(now - day * DAY_MS).toISOString().slice(0, 10);
      metrics.push(
        {
          campaign: 'Spring Listings',
          channel: 'search',
          date,
          spendMinor: 20_000,
          impressions: 4000,
          clicks: 200,
          leads: 6,
          conversions: 5,
          revenueMinor: 80_000,
        },
        {
          campaign: 'Open House',
          channel: 'social',
          date,
          spendMinor: 10_000,
          impressions: 8000,
          clicks: 100,
          leads: 3,
          conversions: 1,
          revenueMinor: 20_000,
        },
      );
    }
    await upsertMetrics(db, metrics);
    const uploadLog = createSqlConversionUploadLog(db);
    toolkit = createMarketingToolkit({
      db,
      llm: scriptedModel(),
      platforms: {
        meta: createMetaPlatform({ adAccountId: '1234', datasetId: '5678' }, { uploadLog }),
        google: createGooglePlatform(
          { customerId: '1234567890', conversionActionId: '987', timeZone: 'UTC' },
          { uploadLog },
        ),
        tiktok: createTikTokPlatform({ advertiserId: '4321', eventSourceId: 'PIXEL1' }, { uploadLog }),
      },
      uploadLog,
      log: silentLogger(),
    });
    const app = express();
    toolkit.mountRoutes(app);
    server = await new Promise<Server>((resolve) => {
      const started = app.listen(0, '127.0.0.1', () => resolve(started));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/marketing`;
  }, 60_000);

  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await db?.close();
    await rm(root, { recursive: true, force: true });
  });

  // Response bodies are untyped JSON the assertions walk freely.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Json = Record<string, any>;

  async function call(method: 'GET' | 'POST', path: string, body?: unknown, raw?: string) {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(raw !== undefined ? { body: raw } : body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Json };
  }

  async function expectBadField(path: string, body: unknown, field: string) {
    const { status, body: answer } = await call('POST', path, body);
    expect(status, JSON.stringify(answer)).toBe(400);
    expect(['VALIDATION_FAILED', 'BAD_REQUEST']).toContain(answer.error.code);
    expect(answer.error.message).toContain(field);
    expect(answer.error.details.field).toContain(field);
  }

  let personaId: number;

  it('discovers personas from stored leads and lists them', async () => {
    const { status, body } = await call('POST', '/personas/discover', {
      min_cluster_size: 4,
      method: 'hdbscan',
    });
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body.leads).toBe(16);
    expect(body.personas).toHaveLength(2);
    expect(body.personas.map((persona: { size: number }) => persona.size)).toEqual([8, 8]);
    for (const persona of body.personas) {
      expect(persona.summary.averageBudgetMinor).toBeGreaterThan(0);
      expect(persona.name).toMatch(/^Segment/);
    }
    personaId = body.personas[0].id;
    const listed = await call('GET', '/personas');
    expect(listed.body.personas.map((persona: { id: number }) => persona.id)).toEqual(
      body.personas.map((persona: { id: number }) => persona.id),
    );
  });

  it('answers 400 naming the field for bad persona-discovery input', async () => {
    await expectBadField('/personas/discover', {}, 'min_cluster_size');
    await expectBadField('/personas/discover', { min_cluster_size: 4, method: 'kmeans' }, 'method');
    await expectBadField('/personas/discover', { min_cluster_size: 500 }, 'min_cluster_size');
  });

  it('generates approved creatives, stores the non-compliant ones unapproved and filters the listing', async () => {
    const clean = await call('POST', '/creatives/generate', {
      persona_id: personaId,
      format: 'social_post',
      count: 2,
    });
    expect(clean.status, JSON.stringify(clean.body)).toBe(200);
    expect(clean.body.creatives).toHaveLength(2);
    expect(clean.body.approvedIds).toHaveLength(2);

    nextHeadline = 'Perfect for young couples, no kids';
    const bad = await call('POST', '/creatives/generate', {
      persona_id: personaId,
      format: 'email',
      count: 1,
    });
    nextHeadline = 'Sunny two-bedroom condo downtown';
    expect(bad.status).toBe(200);
    expect(bad.body.approvedIds).toEqual([]);
    expect(bad.body.creatives.every((creative: { approved: boolean }) => !creative.approved)).toBe(true);

    const approved = await call('GET', '/creatives?approved=true');
    expect(approved.body.creatives.map((creative: { id: number }) => creative.id)).toEqual(
      clean.body.approvedIds,
    );
    const nonCompliant = await call('GET', '/creatives?compliance=non_compliant');
    expect(nonCompliant.body.creatives).toHaveLength(2);
    expect(nonCompliant.body.creatives.every((creative: { approved: boolean }) => !creative.approved)).toBe(
      true,
    );
    expect(JSON.stringify(nonCompliant.body.creatives[0].complianceReport)).toContain('familial_status');
  });

  it('answers 404 for an unknown persona and 400 naming the field for bad creative input', async () => {
    const unknown = await call('POST', '/creatives/generate', {
      persona_id: 999_999,
      format: 'social_post',
      count: 1,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('NOT_FOUND');
    await expectBadField('/creatives/generate', { persona_id: personaId, format: 'banner' }, 'format');
    await expectBadField(
      '/creatives/generate',
      { persona_id: personaId, format: 'email', count: 6 },
      'count',
    );
    await expectBadField('/creatives/generate', { format: 'email' }, 'persona_id');
    const badFilter = await call('GET', '/creatives?approved=maybe');
    expect(badFilter.status).toBe(400);
    expect(badFilter.body.error.details.field).toBe('approved');
  });

  it('optimises a budget whose shares sum to 1 within the floors, exactly as optimizeBudget does', async () => {
    const arms = [
      { id: 'search', clicks: 1000, conversions: 50, spend_minor: 100_000, revenue_minor: 400_000 },
      { id: 'social', clicks: 800, conversions: 20, spend_minor: 80_000, revenue_minor: 120_000 },
      { id: 'display', clicks: 500, conversions: 5, spend_minor: 40_000, revenue_minor: 20_000 },
    ];
    const request = {
      arms,
      total_budget_minor: 1_000_000,
      floors: 0.1,
      ceilings: 0.7,
      seed: 11,
      samples: 4000,
    };
    const { status, body } = await call('POST', '/budget/optimize', request);
    expect(status, JSON.stringify(body)).toBe(200);
    const plan = body.plan;
    const shareSum = plan.arms.reduce((sum: number, arm: { share: number }) => sum + arm.share, 0);
    expect(Math.abs(shareSum - 1)).toBeLessThan(1e-9);
    expect(
      plan.arms.every((arm: { share: number }) => arm.share >= 0.1 - 1e-12 && arm.share <= 0.7 + 1e-12),
    ).toBe(true);
    expect(plan.arms.reduce((sum: number, arm: { amountMinor: number }) => sum + arm.amountMinor, 0)).toBe(
      1_000_000,
    );
    const direct = optimizeBudget({
      arms: arms.map((arm) => ({
        id: arm.id,
        clicks: arm.clicks,
        conversions: arm.conversions,
        spendMinor: arm.spend_minor,
        revenueMinor: arm.revenue_minor,
      })),
      totalBudgetMinor: 1_000_000,
      floors: 0.1,
      ceilings: 0.7,
      seed: 11,
      samples: 4000,
    });
    expect(plan).toEqual(JSON.parse(JSON.stringify(direct)));

    const stored = await call('POST', '/budget/optimize', {
      campaign_ids: ['Spring Listings', 'Open House'],
      total_budget_minor: 30_000,
    });
    expect(stored.status, JSON.stringify(stored.body)).toBe(200);
    expect(stored.body.source).toMatchObject({ kind: 'stored metrics', rows: 10 });
    expect(
      stored.body.plan.arms.reduce((sum: number, arm: { amountMinor: number }) => sum + arm.amountMinor, 0),
    ).toBe(30_000);
  });

  it('answers 400 naming the field for bad budget input', async () => {
    await expectBadField(
      '/budget/optimize',
      { arms: [{ id: 'a', clicks: 1, conversions: 0, spend_minor: 1, revenue_minor: 0 }] },
      'total_budget_minor',
    );
    await expectBadField('/budget/optimize', { total_budget_minor: 100 }, 'arms');
    await expectBadField(
      '/budget/optimize',
      {
        arms: [{ id: 'a', clicks: -1, conversions: 0, spend_minor: 1, revenue_minor: 0 }],
        total_budget_minor: 1,
      },
      'arms.0.clicks',
    );
    const unknown = await call('POST', '/budget/optimize', {
      campaign_ids: ['Nope'],
      total_budget_minor: 100,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.details.field).toBe('campaign_ids');
  });

  it('analyses attribution exactly as attribute() on the same paths and path file', async () => {
    const paths: ConversionPath[] = [
      { channels: ['search', 'social', 'email'], conversions: 3, value: 300, nulls: 1 },
      { channels: ['social', 'email'], conversions: 1, value: 80, nulls: 4 },
      { channels: ['search'], conversions: 2, value: 150, nulls: 2 },
    ];
    for (const model of ['linear', 'position-based', 'markov', 'shapley'] as const) {
      const { status, body } = await call('POST', '/attribution/analyze', { model, paths });
      expect(status, JSON.stringify(body)).toBe(200);
      expect(body.result).toEqual(JSON.parse(JSON.stringify(attribute(paths, model))));
    }
    const file =
      'path;total_conversions;total_conversion_value;total_null\nsearch > email;2;200;1\nsocial;1;50;3\n';
    const fromFile = await call('POST', '/attribution/analyze', { model: 'last-click', path_file: file });
    expect(fromFile.body.result).toEqual(
      JSON.parse(JSON.stringify(attribute(parsePathFile(file), 'last-click'))),
    );
  });

  it('answers 400 naming the field for bad attribution-analysis input', async () => {
    await expectBadField(
      '/attribution/analyze',
      { model: 'magic', paths: [{ channels: ['a'], conversions: 1 }] },
      'model',
    );
    await expectBadField('/attribution/analyze', { model: 'linear' }, 'paths');
    await expectBadField(
      '/attribution/analyze',
      { model: 'linear', paths: [{ channels: [], conversions: 1 }] },
      'paths.0.channels',
    );
    await expectBadField('/attribution/analyze', { model: 'linear', path_file: 'nope\n1\n' }, 'path');
  });

  it('tracks a journey with click ids, attributes it and records conversion uploads idempotently in dry-run', async () => {
    const leadId = leadIds[0]!;
    const now = Date.now();
    const request = {
      lead_id: leadId,
      touchpoints: [
        {
          url: 'https://example.com/home?gclid=Cj0-track&utm_source=google&utm_medium=cpc',
          occurred_at: new Date(now - 3 * DAY_MS).toISOString(),
        },
        {
          url: 'https://example.com/home?fbclid=IwAR-track&utm_medium=paid_social&utm_source=facebook',
          occurred_at: new Date(now - 2 * DAY_MS).toISOString(),
        },
      ],
      conversion: {
        occurred_at: new Date(now - DAY_MS).toISOString(),
        value_minor: 500_000,
        currency: 'USD',
      },
      model: 'linear',
    };
    const first = await call('POST', '/attribution/track', request);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body.touchpoints.map((touch: { channel: string }) => touch.channel)).toEqual([
      'paid_search',
      'paid_social',
    ]);
    expect(first.body.stored_touchpoints).toBe(2);
    expect(first.body.attribution.byChannel).toEqual({
      paid_search: { conversions: 0.5, value: 2500 },
      paid_social: { conversions: 0.5, value: 2500 },
    });
    expect(first.body.uploads.google.accepted).toHaveLength(1);
    expect(first.body.uploads.meta.accepted).toHaveLength(1);
    expect(first.body.uploads.tiktok.status).toBe('skipped');

    const second = await call('POST', '/attribution/track', request);
    expect(second.body.stored_touchpoints).toBe(0);
    expect(second.body.uploads.google).toMatchObject({
      accepted: [],
      duplicates: first.body.uploads.google.accepted,
    });
    expect(second.body.uploads.meta).toMatchObject({
      accepted: [],
      duplicates: first.body.uploads.meta.accepted,
    });

    const requests = await call('GET', '/platform-requests?platform=meta');
    const metaLog = requests.body.platforms[0];
    expect(metaLog.mode).toBe('dry-run');
    expect(metaLog.requests.length).toBeGreaterThan(0);
    expect(metaLog.requests.every((recorded: { sent: boolean }) => recorded.sent === false)).toBe(true);
    const uploads = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM conversion_uploads');
    expect(uploads.rows[0]!.n).toBe(2);
  });

  it('answers 400 naming the field for bad tracking input and 404 for an unknown lead', async () => {
    await expectBadField('/attribution/track', { lead_id: leadIds[1] }, 'touchpoints');
    await expectBadField(
      '/attribution/track',
      { lead_id: leadIds[1], touchpoints: [{ url: 'not a url', occurred_at: new Date().toISOString() }] },
      'touchpoints.0.url',
    );
    await expectBadField(
      '/attribution/track',
      { touchpoints: [{ url: 'https://example.com/', occurred_at: new Date().toISOString() }] },
      'lead_id',
    );
    await expectBadField(
      '/attribution/track',
      { journey_id: 'v1', touchpoints: [{ url: 'https://example.com/', occurred_at: 'yesterday' }] },
      'touchpoints.0.occurred_at',
    );
    const unknown = await call('POST', '/attribution/track', {
      lead_id: 999_999,
      touchpoints: [{ url: 'https://example.com/', occurred_at: new Date().toISOString() }],
    });
    expect(unknown.status).toBe(404);
  });

  it('checks compliance and answers 400 without text', async () => {
    const { status, body } = await call('POST', '/compliance/check', {
      text: 'Perfect for young couples, no kids',
    });
    expect(status).toBe(200);
    expect(body.report.compliant).toBe(false);
    expect(
      body.report.findings.map((finding: { protectedClass: string }) => finding.protectedClass),
    ).toContain('familial_status');
    expect(body.llm_review.status).toBe('done');
    const clean = await call('POST', '/compliance/check', {
      text: 'Three-bedroom home with a family room and walk-in closets',
    });
    expect(clean.body.report.compliant).toBe(true);
    await expectBadField('/compliance/check', {}, 'text');
    await expectBadField('/compliance/check', { text: 'x', extra_classes: ['zodiac'] }, 'extra_classes.0');
  });

  it('analyses an A/B test as compareProportions does and answers 400 for impossible counts', async () => {
    const control = { conversions: 100, visitors: 1000 };
    const variant = { conversions: 130, visitors: 1000 };
    const { status, body } = await call('POST', '/abtest', {
      control,
      variant,
      sample_size: { baseline: 0.1, mde_absolute: 0.02 },
    });
    expect(status).toBe(200);
    expect(body.comparison).toEqual(JSON.parse(JSON.stringify(compareProportions(control, variant))));
    expect(body.sample_size.perArm).toBeGreaterThan(0);
    await expectBadField(
      '/abtest',
      { control: { conversions: 5, visitors: 2 }, variant },
      'control.conversions',
    );
    await expectBadField('/abtest', {}, 'control');
  });

  it('computes simple LTV as simpleLtv does, fits BG/NBD on rows, and answers 400 for bad rows', async () => {
    const simple = {
      average_order_value_minor: 30_000,
      purchases_per_period: 0.5,
      gross_margin: 0.3,
      churn_rate_per_period: 0.05,
    };
    const rows = [
      { frequency: 2, recency: 30, T: 40, monetary_value: 20 },
      { frequency: 0, recency: 0, T: 38 },
      { frequency: 5, recency: 35, T: 39, monetary_value: 35 },
      { frequency: 1, recency: 10, T: 37, monetary_value: 12 },
      { frequency: 3, recency: 20, T: 36, monetary_value: 25 },
    ];
    const { status, body } = await call('POST', '/ltv', { simple, rows });
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body.simple).toMatchObject(
      simpleLtv({
        averageOrderValueMinor: 30_000,
        purchasesPerPeriod: 0.5,
        grossMargin: 0.3,
        churnRatePerPeriod: 0.05,
      }),
    );
    expect(body.model.customers).toHaveLength(5);
    expect(body.model.bgNbd.customers).toBe(5);
    await expectBadField('/ltv', { rows: [{ frequency: 1, recency: 1, T: 2 }] }, 'rows');
    await expectBadField(
      '/ltv',
      {
        rows: [
          { frequency: -1, recency: 1, T: 2 },
          { frequency: 1, recency: 1, T: 2 },
        ],
      },
      'rows.0.frequency',
    );
  });

  it('lists campaigns with a metrics summary, and answers 400 for an unknown platform filter', async () => {
    const { status, body } = await call('GET', '/campaigns');
    expect(status).toBe(200);
    const spring = body.metricsOnly.find(
      (summary: { campaign: string }) => summary.campaign === 'Spring Listings',
    );
    expect(spring).toMatchObject({ spendMinor: 100_000, clicks: 1000, revenueMinor: 400_000, roas: 4 });
    const bad = await call('GET', '/platform-requests?platform=snap');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.field).toBe('platform');
  });

  it('answers 400 for malformed JSON and for unknown body fields, and 404 for unknown routes', async () => {
    const malformed = await call('POST', '/compliance/check', undefined, '{"text": ');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('BAD_REQUEST');
    expect(malformed.body.error.details.field).toBe('body');
    await expectBadField('/compliance/check', { text: 'ok', colour: 'red' }, 'colour');
    await expectBadField('/cycle', { variants: 9 }, 'variants');
    const missing = await call('GET', '/nothing-here');
    expect(missing.status).toBe(404);
  });

  it('serves the eight skills with the documented ids', () => {
    expect(toolkit.skills.map((skill) => skill.id)).toEqual([
      'persona-discovery',
      'creative-generation',
      'budget-optimisation',
      'multi-touch-attribution',
      'fair-housing-compliance',
      'ab-test-analysis',
      'customer-lifetime-value',
      'marketing-cycle',
    ]);
  });

  it('answers the compliance skill from the message text', async () => {
    const skill = toolkit.skills.find((candidate) => candidate.id === 'fair-housing-compliance')!;
    const result = await skill.handler(
      { text: 'Adults only, no children', data: [], contextId: 'c', taskId: 't', metadata: {} },
      {
        signal: new AbortController().signal,
        log: silentLogger(),
        progress: () => {},
        callPeer: async () => {
          throw new Error('no peers');
        },
      },
    );
    expect(result.text).toMatch(/^Not compliant/);
    expect(JSON.stringify(result.data)).toContain('familial_status');
  });
});
