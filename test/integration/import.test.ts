// spoke_marketing/importer.ts on PGlite and on the real PostgreSQL 15: valid files land, one bad row imports
// nothing and the error names the line and the field, re-imports replace instead of doubling.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Database, type Queryable } from '../../shared/db.js';
import { isAppError, type AppError } from '../../shared/errors.js';
import { importFile, importLeads, importMetrics, parseMetrics } from '../../spoke_marketing/importer.js';
import { selectLeadsByPeriod, selectMetricsByPeriod } from '../../spoke_marketing/store.js';
import { REPO_ROOT } from '../helpers/shared_data.js';
import { createScratchDatabase, postgresReachable } from '../helpers/postgres.js';

const MIGRATIONS = join(REPO_ROOT, 'spoke_marketing', 'migrations');

interface Engine {
  readonly db: Database;
  dispose(): Promise<void>;
}

async function pgliteEngine(): Promise<Engine> {
  const root = await mkdtemp(join(tmpdir(), 'agenthub-import-'));
  const db = await openDatabase({ dataDir: join(root, 'data', 'marketing'), service: 'marketing' });
  await migrate(db, MIGRATIONS);
  return {
    db,
    dispose: async () => {
      await db.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

async function postgresEngine(): Promise<Engine> {
  const scratch = await createScratchDatabase('agenthub_test');
  const db = await openDatabase({ databaseUrl: scratch.url, service: 'marketing' });
  await migrate(db, MIGRATIONS, { skipVector: true });
  return {
    db,
    dispose: async () => {
      await db.close();
      await scratch.drop();
    },
  };
}

const METRICS_CSV = [
  'date,campaign,channel,spend,impressions,clicks,leads,conversions,revenue,currency',
  '2024-10-01,Q4 Search,search,120.50,10000,300,12,4,980.00,USD',
  '2024-10-01,Q4 Social,social,80.25,20000,150,6,1.5,210.10,USD',
  '2024-10-02,Q4 Search,search,99.99,9000,280,10,3,700,USD',
].join('\n');

async function metricsCount(db: Queryable): Promise<number> {
  const result = await db.query<{ n: string }>('SELECT count(*) AS n FROM marketing_metrics');
  return Number(result.rows[0]?.n);
}

async function expectValidationError(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.catch((caught: unknown) => caught);
  expect(isAppError(error, 'VALIDATION_FAILED')).toBe(true);
  return error as AppError;
}

const engines: [string, () => Promise<Engine>, boolean][] = [
  ['PGlite', pgliteEngine, true],
  ['PostgreSQL 15', postgresEngine, await postgresReachable('PostgreSQL import tests')],
];

describe.each(engines)('importing on %s', (_name, start, available) => {
  let engine: Engine;
  let root: string;

  beforeAll(async () => {
    if (!available) return;
    engine = await start();
    root = await mkdtemp(join(tmpdir(), 'agenthub-import-files-'));
  });
  afterAll(async () => {
    await engine?.dispose();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it.skipIf(!available)(
    'imports a metrics CSV and reads it back by period in exact minor units',
    async () => {
      const path = join(root, 'metrics.csv');
      await writeFile(path, METRICS_CSV);
      expect(await importFile(engine.db, 'metrics', path)).toEqual({
        kind: 'metrics',
        source: 'metrics.csv',
        rows: 3,
      });
      const rows = await selectMetricsByPeriod(engine.db, { from: '2024-10-01', to: '2024-10-01' });
      expect(rows).toEqual([
        expect.objectContaining({
          campaign: 'Q4 Search',
          channel: 'search',
          date: '2024-10-01',
          spend: 120.5,
          spendMinor: 12050,
          impressions: 10000,
          clicks: 300,
          leads: 12,
          conversions: 4,
          revenue: 980,
          revenueMinor: 98000,
          currency: 'USD',
        }),
        expect.objectContaining({
          campaign: 'Q4 Social',
          spendMinor: 8025,
          conversions: 1.5,
          revenueMinor: 21010,
        }),
      ]);
    },
  );

  it.skipIf(!available)('replaces a re-imported day instead of doubling it', async () => {
    await importMetrics(engine.db, METRICS_CSV.replace('120.50', '130.00'), { source: 'again.csv' });
    const rows = await selectMetricsByPeriod(engine.db, {
      from: '2024-10-01',
      to: '2024-10-02',
      campaign: 'Q4 Search',
    });
    expect(rows.map((row) => row.spendMinor)).toEqual([13000, 9999]);
    expect(await metricsCount(engine.db)).toBe(3);
  });

  it.skipIf(!available)('imports nothing when one row is bad, naming its line and field', async () => {
    const before = await metricsCount(engine.db);
    const lines = ['date,campaign,channel,spend,impressions,clicks'];
    for (let day = 1; day <= 600; day += 1) {
      const date = new Date(Date.UTC(2025, 0, 1) + day * 86_400_000).toISOString().slice(0, 10);
      lines.push(`${date},Bulk,search,1.00,100,${day === 431 ? 'many' : '5'}`);
    }
    const error = await expectValidationError(
      importMetrics(engine.db, lines.join('\n'), { source: 'bulk.csv' }),
    );
    expect(error.message).toContain('bulk.csv line 432, field clicks: must be a whole number');
    expect(error.message).toContain('nothing was imported');
    expect(error.details).toMatchObject({ line: 432, field: 'clicks' });
    expect(await metricsCount(engine.db)).toBe(before);
  });

  it.skipIf(!available)('rolls back every batch when the database fails part-way', async () => {
    const before = await metricsCount(engine.db);
    const lines = ['date,campaign,channel,spend'];
    for (let day = 0; day < 1200; day += 1) {
      const date = new Date(Date.UTC(2026, 0, 1) + day * 86_400_000).toISOString().slice(0, 10);
      lines.push(`${date},Rollback,search,2.00`);
    }
    let statements = 0;
    const failingOnSecondBatch = {
      transaction: <T>(fn: (tx: Queryable) => Promise<T>) =>
        engine.db.transaction((tx) =>
          fn({
            query: (text, params) => {
              statements += 1;
              if (statements === 2) return Promise.reject(new Error('disk full (injected)'));
              return tx.query(text, params);
            },
          }),
        ),
    };
    await expect(importMetrics(failingOnSecondBatch, lines.join('\n'))).rejects.toThrow(
      'disk full (injected)',
    );
    expect(await metricsCount(engine.db)).toBe(before);
  });

  it.skipIf(!available)(
    'names the line of a bad element in a JSON array and rejects unknown columns',
    async () => {
      const json = `[
  {"date": "2024-11-01", "campaign": "J", "channel": "email", "spend": 10},
  {
    "date": "2024-11-31", "campaign": "J", "channel": "email", "spend": 10
  }
]`;
      const error = await expectValidationError(
        importMetrics(engine.db, json, { source: 'm.json', format: 'json' }),
      );
      expect(error.message).toContain('m.json line 3, field date: must be a calendar date YYYY-MM-DD');
      const unknownColumn = await expectValidationError(
        importMetrics(engine.db, 'date,campaign,channel,spend,cost\n2024-11-01,J,email,1,2', {
          source: 'u.csv',
        }),
      );
      expect(unknownColumn.message).toContain('u.csv line 2, field cost: is not a known column');
    },
  );

  it.skipIf(!available)('refuses amounts finer than the currency and duplicate days in one file', () => {
    expect(() =>
      parseMetrics('date,campaign,channel,spend,currency\n2024-10-01,A,search,1.234,USD', {
        source: 'x.csv',
      }),
    ).toThrow('x.csv line 2, field spend: has more decimal places than USD allows (2)');
    expect(
      parseMetrics('date,campaign,channel,spend,currency\n2024-10-01,A,search,1234,JPY')[0]?.spendMinor,
    ).toBe(1234);
    expect(() =>
      parseMetrics('date,campaign,channel,spend\n2024-10-01,A,search,1\n2024-10-01,A,search,2', {
        source: 'd.csv',
      }),
    ).toThrow('d.csv line 3, field campaign: repeats the campaign, channel, date and source of line 2');
  });

  it.skipIf(!available)(
    'imports leads with attribution and attributes, updating known external ids',
    async () => {
      const csv = [
        'external_id,created_at,email,campaign,channel,utm_source,utm_medium,gclid,first_touch_channel,first_touch_at,last_touch_channel,last_touch_at,attr_budget,attr_city',
        'L-1,2024-10-03T10:00:00Z,Ann@Example.com,Q4 Search,search,google,cpc,Cj0KCQ-AbC,social,2024-10-01T09:00:00Z,search,2024-10-03T09:59:00Z,450000,Austin',
        'L-2,2024-10-04,,Q4 Social,social,facebook,paid,,,,,,,Denver',
      ].join('\n');
      expect((await importLeads(engine.db, csv, { source: 'leads.csv' })).rows).toBe(2);
      expect(
        (await importLeads(engine.db, csv.replace('Austin', 'Dallas'), { source: 'leads.csv' })).rows,
      ).toBe(2);
      const leads = await selectLeadsByPeriod(engine.db, {
        from: '2024-10-01T00:00:00Z',
        to: '2024-11-01T00:00:00Z',
      });
      expect(leads).toHaveLength(2);
      expect(leads[0]).toMatchObject({
        externalId: 'L-1',
        email: 'ann@example.com',
        gclid: 'Cj0KCQ-AbC',
        utmSource: 'google',
        firstTouchChannel: 'social',
        lastTouchChannel: 'search',
        status: 'new',
        attributes: { budget: 450000, city: 'Dallas' },
      });
      expect(leads[1]).toMatchObject({ externalId: 'L-2', createdAt: '2024-10-04T00:00:00.000Z' });
    },
  );

  it.skipIf(!available)(
    'rejects a lead whose last touch precedes its first, naming the line and field',
    async () => {
      const csv = [
        'external_id,created_at,first_touch_at,last_touch_at,email',
        'L-9,2024-10-03T10:00:00Z,2024-10-02T00:00:00Z,2024-10-03T00:00:00Z,ok@example.com',
        'L-10,2024-10-03T10:00:00Z,,,not-an-email',
        'L-11,2024-10-03T10:00:00Z,2024-10-03T00:00:00Z,2024-10-02T00:00:00Z,late@example.com',
      ].join('\n');
      const error = await expectValidationError(importLeads(engine.db, csv, { source: 'bad_leads.csv' }));
      expect(error.message).toContain('bad_leads.csv line 3, field email: must be an email address');
      expect(error.message).toContain('bad_leads.csv line 4, field last_touch_at: is before first_touch_at');
      const leads = await selectLeadsByPeriod(engine.db, {
        from: '2024-10-01T00:00:00Z',
        to: '2024-11-01T00:00:00Z',
      });
      expect(leads.map((lead) => lead.externalId)).toEqual(['L-1', 'L-2']);
    },
  );
});
