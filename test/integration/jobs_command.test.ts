// `agenthub jobs` (spoke_marketing/data_commands.ts): lists the marketing schedules, last runs and failures
// of the embedded queue by going through the process that owns it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_CONTRACTS, marketingSchedules } from '../../shared/job_contracts.js';
import { createJobRunner, type JobRunner } from '../../shared/jobs.js';
import { jobsCommand, jobsDataDir } from '../../spoke_marketing/data_commands.js';
import { captureIo } from '../helpers/cli_io.js';

describe('agenthub jobs', () => {
  let root: string;
  let runner: JobRunner;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'agenthub-jobs-cmd-'));
    runner = await createJobRunner({ dataDir: jobsDataDir(join(root, 'state')) });
    for (const schedule of marketingSchedules('Europe/Paris')) {
      await runner.schedule(schedule.contract.queue, schedule.id, schedule.repeat, {
        name: schedule.contract.name,
        data: schedule.data,
        retry: schedule.contract.retry,
      });
    }
    await runner.process(JOB_CONTRACTS.metricsSync.queue, async () => {
      throw new Error('Google Ads API quota exhausted');
    });
    await runner.enqueue(JOB_CONTRACTS.metricsSync.queue, { name: JOB_CONTRACTS.metricsSync.name, data: {} });
  });
  afterAll(async () => {
    await runner?.close({ graceMs: 1000 });
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('says so when no queue exists yet', async () => {
    const io = captureIo(['--state-dir', join(root, 'empty')], root);
    expect(await jobsCommand(io)).toBe(0);
    expect(io.out.join('')).toContain('no job queue yet');
  });

  it('lists schedules and failures through the owning process', async () => {
    const deadline = Date.now() + 20_000;
    while ((await runner.failures()).length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const io = captureIo(['--state-dir', join(root, 'state'), '--json'], root);
    expect(await jobsCommand(io)).toBe(0);
    const report = JSON.parse(io.out.join(''));
    expect(report.backend).toBe('postgres');
    expect(report.schedules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: 'persona-discovery-daily', cron: '0 0 7 * * *', tz: 'Europe/Paris' }),
        expect.objectContaining({ id: 'budget-optimisation-hourly', cron: '0 0 * * * *' }),
        expect.objectContaining({ id: 'metrics-sync-every-15-minutes', every: 900_000 }),
      ]),
    );
    expect(report.failures).toEqual([
      expect.objectContaining({ name: 'metrics-sync', failedReason: 'Google Ads API quota exhausted' }),
    ]);

    const text = captureIo(['--state-dir', join(root, 'state')], root);
    expect(await jobsCommand(text)).toBe(0);
    expect(text.out.join('')).toContain("cron '0 0 7 * * *' Europe/Paris");
    expect(text.out.join('')).toContain(
      'metrics-sync  failed after 1 attempt(s): Google Ads API quota exhausted',
    );
  });
});
