// spoke_marketing/workers.ts processors called directly (no queue) on PGlite: effects apply once per run key,
// an aborted job applies nothing, bad job data is refused, and metrics sync tags rows with their platform.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Database } from '../../shared/db.js';
import { isAppError } from '../../shared/errors.js';
import { importLeads } from '../../spoke_marketing/importer.js';
import { selectActivePersonas, selectMetricsByPeriod } from '../../spoke_marketing/store.js';
import {
  processMetricsSync,
  processPersonaDiscovery,
  type DiscoveredPersona,
  type ProcessorJob,
} from '../../spoke_marketing/workers.js';
import { REPO_ROOT } from '../helpers/shared_data.js';

const NOW = new Date('2024-12-15T12:00:00Z');

function job(runKey: string, data: unknown, signal = new AbortController().signal): ProcessorJob {
  return { id: runKey, name: 'test-job', data, attempt: 1, runKey, signal };
}

describe('marketing job processors', () => {
  let root: string;
  let db: Database;
  let leadIds: number[];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'agenthub-processors-'));
    db = await openDatabase({ dataDir: join(root, 'data', 'marketing'), service: 'marketing' });
    await migrate(db, join(REPO_ROOT, 'spoke_marketing', 'migrations'));
    await importLeads(
      db,
      [
        'external_id,created_at,attr_budget',
        'A,2024-12-01T00:00:00Z,300000',
        'B,2024-12-02T00:00:00Z,320000',
        'C,2024-12-03T00:00:00Z,900000',
      ].join('\n'),
    );
    leadIds = (await db.query<{ id: string }>('SELECT id FROM leads ORDER BY external_id')).rows.map((row) =>
      Number(row.id),
    );
  });
  afterAll(async () => {
    await db?.close();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  const twoPersonas = (): DiscoveredPersona[] => [
    {
      name: 'First-time buyers',
      size: 2,
      clusterLabel: 0,
      summary: { medianBudget: 310000 },
      leadIds: leadIds.slice(0, 2),
    },
    {
      name: 'Upsizers',
      size: 1,
      clusterLabel: 1,
      summary: { medianBudget: 900000 },
      leadIds: leadIds.slice(2),
    },
  ];

  it('replaces the active personas and assigns leads once per run key', async () => {
    let clusterings = 0;
    const deps = {
      db,
      now: () => NOW,
      discoverPersonas: async (input: { leads: readonly unknown[]; minClusterSize: number }) => {
        clusterings += 1;
        expect(input.leads).toHaveLength(3);
        expect(input.minClusterSize).toBe(2);
        return twoPersonas();
      },
    };
    const first = await processPersonaDiscovery(job('pd-1', { minClusterSize: 2 }), deps);
    expect(first).toMatchObject({ status: 'applied', summary: { leads: 3, personas: 2 } });
    const again = await processPersonaDiscovery(job('pd-1', { minClusterSize: 2 }), deps);
    expect(again.status).toBe('already-applied');
    expect(clusterings).toBe(1);
    const personas = await selectActivePersonas(db);
    expect(personas.map((persona) => [persona.name, persona.discoveryRunKey])).toEqual([
      ['First-time buyers', 'pd-1'],
      ['Upsizers', 'pd-1'],
    ]);
    const assigned = await db.query<{ n: string }>(
      'SELECT count(*) AS n FROM leads WHERE persona_id IS NOT NULL',
    );
    expect(assigned.rows[0]?.n).toBe('3');
  });

  it('applies nothing when the job is aborted during the computation', async () => {
    const controller = new AbortController();
    const outcome = processPersonaDiscovery(job('pd-2', {}, controller.signal), {
      db,
      now: () => NOW,
      discoverPersonas: async () => {
        controller.abort();
        return twoPersonas();
      },
    });
    await expect(outcome).rejects.toThrow();
    const run = await db.query(`SELECT 1 FROM job_runs WHERE run_key = 'pd-2'`);
    expect(run.rows).toHaveLength(0);
    expect((await selectActivePersonas(db)).every((persona) => persona.discoveryRunKey === 'pd-1')).toBe(
      true,
    );
  });

  it('refuses invalid job data with VALIDATION_FAILED (not retried)', async () => {
    const error = await processPersonaDiscovery(job('pd-3', { lookbackDays: -1 }), {
      db,
      discoverPersonas: async () => [],
    }).catch((caught: unknown) => caught);
    expect(isAppError(error, 'VALIDATION_FAILED')).toBe(true);
  });

  it('syncs each platform into rows tagged with that platform', async () => {
    const platformsAsked: string[] = [];
    const result = await processMetricsSync(job('ms-1', { platforms: ['google', 'meta'], lookbackDays: 2 }), {
      db,
      now: () => NOW,
      fetchMetrics: async ({ platform, from, to }) => {
        platformsAsked.push(`${platform} ${from}..${to}`);
        return [
          {
            campaign: 'Q4',
            channel: platform === 'google' ? 'search' : 'social',
            date: '2024-12-14',
            spendMinor: 1000,
            impressions: 100,
            clicks: 10,
            leads: 1,
            conversions: 1,
            revenueMinor: 5000,
          },
        ];
      },
    });
    expect(platformsAsked).toEqual(['google 2024-12-13..2024-12-15', 'meta 2024-12-13..2024-12-15']);
    expect(result).toMatchObject({
      status: 'applied',
      summary: { rows: 2, perPlatform: { google: 1, meta: 1 } },
    });
    const rows = await selectMetricsByPeriod(db, { from: '2024-12-14', to: '2024-12-14' });
    expect(rows.map((row) => [row.channel, row.source])).toEqual([
      ['search', 'google'],
      ['social', 'meta'],
    ]);
  });
});
