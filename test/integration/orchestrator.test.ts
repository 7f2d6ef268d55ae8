// spoke_marketing/orchestrator.ts on a real embedded PGlite database with dry-run ad platforms and a scripted
// model: one cycle does every step (requests recorded, none sent; conversions recorded), a second cycle
// records the same conversions as duplicates, an aborted signal stops the cycle with CANCELED, and the
// scheduled-job handlers apply a run key once.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Database } from '../../shared/db.js';
import { AppError, isAppError } from '../../shared/errors.js';
import type { LlmClient, LlmUsage, StructuredRequest, StructuredResult } from '../../shared/llm_client.js';
import { silentLogger } from '../../shared/log.js';
import { LLM_REVIEW_SCHEMA } from '../../spoke_marketing/compliance.js';
import {
  createSqlConversionUploadLog,
  INSERT_TOUCHPOINT,
  type CycleReport,
} from '../../spoke_marketing/orchestrator.js';
import type { AdPlatform } from '../../spoke_marketing/platforms/adapter.js';
import { createGooglePlatform } from '../../spoke_marketing/platforms/google.js';
import { createMetaPlatform } from '../../spoke_marketing/platforms/meta.js';
import { createTikTokPlatform } from '../../spoke_marketing/platforms/tiktok.js';
import {
  selectConversionUploads,
  upsertLeads,
  upsertMetrics,
  type LeadInput,
} from '../../spoke_marketing/store.js';
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

/** A model that names personas, writes clean copy sized to the schema and reviews everything as compliant. */
function scriptedModel(options: { onCall?: (signal: AbortSignal | undefined) => void } = {}): LlmClient & {
  calls: number;
} {
  const model = {
    modelName: 'scripted',
    calls: 0,
    async generateStructured<T>(request: StructuredRequest<T>): Promise<StructuredResult<T>> {
      model.calls += 1;
      options.onCall?.(request.signal);
      if (request.signal?.aborted === true) throw new AppError('CANCELED', 'generation canceled');
      const properties = (
        request.schema as { properties: Record<string, { maxItems?: number; items?: unknown }> }
      ).properties;
      let value: unknown;
      if (request.schema === LLM_REVIEW_SCHEMA) {
        value = { compliant: true, concerns: [] };
      } else if (properties.personas !== undefined) {
        const count = properties.personas.maxItems ?? 1;
        value = {
          personas: Array.from({ length: count }, (_, label) => ({
            clusterLabel: label,
            name: `Segment ${label + 1} homes`,
            description: 'Homes in one price band and location',
            messaging: ['Move-in ready homes near transit'],
          })),
        };
      } else {
        const count = properties.variants!.maxItems ?? 1;
        const limits = (properties.variants!.items as { properties: { headline: { maxLength: number } } })
          .properties;
        const short = limits.headline.maxLength <= 30;
        value = {
          variants: Array.from({ length: count }, (_, index) =>
            short
              ? {
                  headline: `Downtown condo ${index + 1}`,
                  body: `Rooftop deck and walk-in closets, unit ${index + 1}.`,
                  cta: 'Schedule a tour',
                }
              : {
                  headline: `Sunny two-bedroom condo ${index + 1}`,
                  body: `Open kitchen, walk-in closets and a rooftop deck near the park (plan ${index + 1}).`,
                  cta: 'Schedule a tour',
                },
          ),
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
  return model;
}

const GROUPS = [
  { location: 'Downtown', propertyType: 'condo', urgency: 'high', budget: 400_000 },
  { location: 'Northside', propertyType: 'single_family', urgency: 'low', budget: 900_000 },
  { location: 'Riverside', propertyType: 'townhouse', urgency: 'medium', budget: 250_000 },
] as const;

/** 30 leads in three clear groups; three converted in the last days with Google, Meta and TikTok click ids. */
function seedLeads(now: number): LeadInput[] {
  const leads: LeadInput[] = [];
  GROUPS.forEach((group, groupIndex) => {
    for (let index = 0; index < 10; index += 1) {
      leads.push({
        externalId: `crm-${groupIndex}-${index}`,
        createdAt: new Date(now - (20 + index) * DAY_MS).toISOString(),
        email: `buyer${groupIndex}${index}@example.com`,
        attributes: {
          budget_minor: Math.round(group.budget * 100 * (1 + index / 200)),
          location: group.location,
          urgency: group.urgency,
          property_type: group.propertyType,
        },
      });
    }
  });
  const clickIds = [
    { gclid: 'Cj0KCQ-test-gclid' },
    { fbclid: 'IwAR-test-fbclid' },
    { ttclid: 'E.C.P.test-ttclid' },
  ];
  clickIds.forEach((ids, index) => {
    leads[index * 10] = {
      ...leads[index * 10]!,
      ...ids,
      status: 'customer',
      convertedAt: new Date(now - (index + 1) * DAY_MS).toISOString(),
      revenueMinor: 1_250_000,
    };
  });
  return leads;
}

describe('marketing cycle', () => {
  let root: string;
  let db: Database;
  let toolkit: MarketingToolkit;
  let model: ReturnType<typeof scriptedModel>;
  let abortDuringLlm: AbortController | null = null;
  const platforms = {} as { meta: AdPlatform; google: AdPlatform; tiktok: AdPlatform };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'agenthub-cycle-'));
    db = await openDatabase({ dataDir: join(root, 'data', 'marketing'), service: 'marketing' });
    await migrate(db, join(REPO_ROOT, 'spoke_marketing', 'migrations'));
    const now = Date.now();
    const leadIds = await upsertLeads(db, seedLeads(now));
    // Journeys of the three converted leads: a paid click two days before converting, plus an email touch.
    for (const [position, leadIndex] of [0, 10, 20].entries()) {
      const leadId = leadIds[leadIndex]!;
      const convertedAt = now - (position + 1) * DAY_MS;
      const click = [
        ['paid_search', 'gclid', 'Cj0KCQ-test-gclid'],
        ['paid_social', 'fbclid', 'IwAR-test-fbclid'],
        ['paid_social', 'ttclid', 'E.C.P.test-ttclid'],
      ][position]!;
      await db.query(INSERT_TOUCHPOINT, [
        leadId,
        null,
        new Date(convertedAt - 2 * DAY_MS).toISOString(),
        click[0],
        null,
        null,
        null,
        click[1],
        click[2],
        `https://example.com/l?${click[1]}=${click[2]}`,
        null,
      ]);
      await db.query(INSERT_TOUCHPOINT, [
        leadId,
        null,
        new Date(convertedAt - DAY_MS).toISOString(),
        'email',
        'newsletter',
        'email',
        'spring',
        null,
        null,
        'https://example.com/l?utm_medium=email',
        null,
      ]);
    }
    const metrics = [];
    for (let day = 1; day <= 10; day += 1) {
      const date = new Date(now - day * DAY_MS).toISOString().slice(0, 10);
      metrics.push(
        {
          campaign: 'Spring Listings',
          channel: 'search',
          date,
          spendMinor: 20_000,
          impressions: 5000,
          clicks: 200,
          leads: 8,
          conversions: 4,
          revenueMinor: 90_000,
        },
        {
          campaign: 'Open House',
          channel: 'social',
          date,
          spendMinor: 15_000,
          impressions: 9000,
          clicks: 150,
          leads: 5,
          conversions: 2,
          revenueMinor: 30_000,
        },
      );
    }
    await upsertMetrics(db, metrics);

    const uploadLog = createSqlConversionUploadLog(db);
    platforms.meta = createMetaPlatform({ adAccountId: '1234', datasetId: '5678' }, { uploadLog });
    platforms.google = createGooglePlatform(
      { customerId: '123-456-7890', conversionActionId: '987', timeZone: 'America/New_York' },
      { uploadLog },
    );
    platforms.tiktok = createTikTokPlatform({ advertiserId: '4321', eventSourceId: 'PIXEL1' }, { uploadLog });
    model = scriptedModel({
      onCall: () => {
        abortDuringLlm?.abort(new Error('stop'));
      },
    });
    toolkit = createMarketingToolkit({
      db,
      llm: model,
      platforms,
      uploadLog,
      log: silentLogger(),
      seed: 7,
      deployment: {
        linkUrl: 'https://example.com/listings',
        metaPageId: '111222333',
        tiktokIdentityId: 'identity-1',
        tiktokVideoId: 'video-1',
      },
    });
  }, 60_000);

  afterAll(async () => {
    await db?.close();
    await rm(root, { recursive: true, force: true });
  });

  let first: CycleReport;

  it('runs every step once on seeded leads, metrics and touchpoints, deploying in dry-run and recording conversions', async () => {
    first = await toolkit.runCycle({ minClusterSize: 5 }, new AbortController().signal);

    expect(first.steps.map((step) => [step.step, step.status])).toEqual([
      ['discover_personas', 'done'],
      ['generate_creatives', 'done'],
      ['deploy', 'done'],
      ['sync_metrics', 'done'],
      ['optimise_budgets', 'done'],
      ['attribute_conversions', 'done'],
    ]);
    expect(first.ok).toBe(true);
    expect(first.platformModes).toEqual({ meta: 'dry-run', google: 'dry-run', tiktok: 'dry-run' });

    const personas =
      first.steps[0]!.status === 'done' ? (first.steps[0]!.result as { personas: number }) : null;
    expect(personas?.personas).toBe(3);

    const generated =
      first.steps[1]!.status === 'done'
        ? (first.steps[1]!.result as { approvedIds: number[]; creatives: number })
        : null;
    // 3 personas × (2 social + 2 search) variants, all clean.
    expect(generated?.creatives).toBe(12);
    expect(generated?.approvedIds).toHaveLength(12);

    const deploy =
      first.steps[2]!.status === 'done'
        ? (first.steps[2]!.result as {
            platforms: Record<string, { status: string; dryRun: boolean; ads: number }>;
          })
        : null;
    for (const name of ['meta', 'google', 'tiktok']) {
      expect(deploy?.platforms[name]).toMatchObject({ status: 'done', dryRun: true });
    }
    expect(deploy?.platforms.meta!.ads).toBe(6);
    expect(deploy?.platforms.google!.ads).toBe(3);

    // Nothing was sent: every request of every platform was only recorded.
    for (const platform of [platforms.meta, platforms.google, platforms.tiktok]) {
      const log = platform.requestLog();
      expect(log.length).toBeGreaterThan(0);
      expect(log.every((request) => !request.sent && request.attempts === 0)).toBe(true);
    }
    expect(
      platforms.meta
        .requestLog()
        .some((request) => JSON.stringify(request.body).includes('"special_ad_categories":["HOUSING"]')),
    ).toBe(true);
    expect(platforms.meta.requestLog().some((request) => request.url.includes('/insights?'))).toBe(true);

    const campaigns = await db.query<{ id: string; status: string; special_ad_categories: string[] }>(
      'SELECT id, status, special_ad_categories FROM campaigns ORDER BY id',
    );
    expect(campaigns.rows).toHaveLength(3);
    expect(
      campaigns.rows.every((row) => row.status === 'draft' && row.special_ad_categories[0] === 'HOUSING'),
    ).toBe(true);

    const budget =
      first.steps[4]!.status === 'done'
        ? (first.steps[4]!.result as { allocations: { share: number; dailyBudgetMinor: number }[] })
        : null;
    expect(budget?.allocations).toHaveLength(2);
    const shares = budget!.allocations.reduce((sum, allocation) => sum + allocation.share, 0);
    expect(shares).toBeCloseTo(1, 5);
    // No previous allocation: the current total is the average daily spend (200 + 150 dollars).
    expect(budget!.allocations.reduce((sum, allocation) => sum + allocation.dailyBudgetMinor, 0)).toBe(
      35_000,
    );

    const attribution =
      first.steps[5]!.status === 'done'
        ? (first.steps[5]!.result as {
            conversions: number;
            attribution: { totalConversions: number; byChannel: Record<string, unknown> };
            uploads: Record<string, { status: string; accepted: string[]; duplicates: string[] }>;
          })
        : null;
    expect(attribution?.conversions).toBe(3);
    expect(attribution?.attribution.totalConversions).toBe(3);
    expect(Object.keys(attribution!.attribution.byChannel).sort()).toEqual([
      'email',
      'paid_search',
      'paid_social',
    ]);
    for (const name of ['meta', 'google', 'tiktok']) {
      expect(attribution?.uploads[name]).toMatchObject({ status: 'done', duplicates: [] });
      expect(attribution?.uploads[name]!.accepted).toHaveLength(1);
    }
    const uploads = await selectConversionUploads(db);
    expect(uploads).toHaveLength(3);
    expect(uploads.every((upload) => upload.status === 'dry_run')).toBe(true);
    expect(uploads.map((upload) => upload.platform).sort()).toEqual(['google_ads', 'meta', 'tiktok']);
  }, 60_000);

  it('records the same conversions as duplicates on a second cycle, never twice', async () => {
    const second = await toolkit.runCycle({ minClusterSize: 5 }, new AbortController().signal);
    const step = second.steps.find((candidate) => candidate.step === 'attribute_conversions')!;
    expect(step.status).toBe('done');
    const result = (
      step as { result: { uploads: Record<string, { accepted: string[]; duplicates: string[] }> } }
    ).result;
    for (const name of ['meta', 'google', 'tiktok']) {
      expect(result.uploads[name]!.accepted).toEqual([]);
      expect(result.uploads[name]!.duplicates).toHaveLength(1);
    }
    expect(await selectConversionUploads(db)).toHaveLength(3);
    // The second cycle's run keys are its own: personas and budgets were applied again, not skipped.
    expect(second.steps.find((candidate) => candidate.step === 'optimise_budgets')!.status).toBe('done');
  }, 60_000);

  it('stops with CANCELED when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('operator stop'));
    const error = await toolkit.runCycle({}, controller.signal).catch((caught: unknown) => caught);
    expect(isAppError(error, 'CANCELED')).toBe(true);
    expect((error as AppError).details?.completed).toEqual([]);
  });

  it('stops with CANCELED when aborted inside a step, after the steps already done', async () => {
    abortDuringLlm = new AbortController();
    const signal = abortDuringLlm.signal;
    const error = await toolkit.runCycle({ minClusterSize: 5 }, signal).catch((caught: unknown) => caught);
    abortDuringLlm = null;
    expect(isAppError(error, 'CANCELED')).toBe(true);
    // Persona naming is the first model call, so the cycle stops inside its first step.
    expect((error as AppError).message).toMatch(/discover_personas/);
  }, 60_000);

  it('applies a scheduled budget run once per run key through the job handlers', async () => {
    const job = {
      id: 'job-1',
      queue: 'marketing-budget-optimisation',
      name: 'budget-optimisation',
      data: { totalDailyBudgetMinor: 50_000 },
      attempt: 1,
      attemptsAllowed: 3,
      createdAt: Date.now(),
      runKey: 'test:budget:1',
      signal: new AbortController().signal,
    };
    const applied = await toolkit.jobHandlers.budgetOptimisation(job);
    expect(applied.status).toBe('applied');
    expect(applied.summary.totalDailyBudgetMinor).toBe(50_000);
    const again = await toolkit.jobHandlers.budgetOptimisation({ ...job, id: 'job-1-retry', attempt: 2 });
    expect(again.status).toBe('already-applied');
  }, 60_000);
});
