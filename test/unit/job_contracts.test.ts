// shared/job_contracts.ts: queue and job names, job-data schemas with their defaults, and the marketing
// schedules (persona discovery 07:00 local, budget optimisation hourly, metrics sync every 15 minutes).
import { CronExpressionParser } from 'cron-parser';
import { describe, expect, it } from 'vitest';
import { isAppError } from '../../shared/errors.js';
import {
  JOB_CONTRACTS,
  MARKETING_QUEUES,
  marketingSchedules,
  parseJobData,
  PERSONA_DISCOVERY_CRON,
  type JobContract,
} from '../../shared/job_contracts.js';

describe('marketing job contracts', () => {
  it('names one queue per job, without the ":" BullMQ forbids', () => {
    expect(MARKETING_QUEUES).toEqual([
      'marketing-persona-discovery',
      'marketing-budget-optimisation',
      'marketing-metrics-sync',
    ]);
    for (const queue of MARKETING_QUEUES) expect(queue).not.toContain(':');
  });

  it('schedules persona discovery daily at 07:00, budget optimisation hourly, metrics sync every 15 minutes', () => {
    const schedules = marketingSchedules('Europe/Paris');
    expect(schedules.map((schedule) => [schedule.contract.name, schedule.repeat])).toEqual([
      ['persona-discovery', { cron: '0 0 7 * * *', tz: 'Europe/Paris' }],
      ['budget-optimisation', { cron: '0 0 * * * *', tz: 'Europe/Paris' }],
      ['metrics-sync', { every: 900_000 }],
    ]);
    expect(new Set(schedules.map((schedule) => schedule.id)).size).toBe(3);
  });

  it.each([
    ['Europe/Paris', '2024-03-30T12:00:00Z', '2024-03-31T05:00:00.000Z'], // the day clocks go forward: 07:00 CEST
    ['Europe/Paris', '2024-01-10T06:30:00Z', '2024-01-11T06:00:00.000Z'], // 07:30 CET already passed today
    ['America/New_York', '2024-07-01T10:00:00Z', '2024-07-01T11:00:00.000Z'], // 06:00 EDT → 07:00 EDT same day
    ['UTC', '2024-07-01T06:59:59Z', '2024-07-01T07:00:00.000Z'],
  ])('persona discovery in %s after %s next runs at %s', (tz, after, expected) => {
    const next = CronExpressionParser.parse(PERSONA_DISCOVERY_CRON, {
      tz,
      currentDate: new Date(after),
    }).next();
    expect(next.toDate().toISOString()).toBe(expected);
  });

  it('refuses an unknown time zone with CONFIG_INVALID', () => {
    const error = (() => {
      try {
        marketingSchedules('Mars/Olympus_Mons');
        return undefined;
      } catch (caught) {
        return caught;
      }
    })();
    expect(isAppError(error, 'CONFIG_INVALID')).toBe(true);
  });

  it('fills defaults and keeps an explicit run key', () => {
    expect(parseJobData(JOB_CONTRACTS.personaDiscovery, {})).toEqual({
      lookbackDays: 90,
      minClusterSize: 15,
    });
    expect(parseJobData(JOB_CONTRACTS.budgetOptimisation, { runKey: 'hour-2024-10-01T10' })).toEqual({
      currency: 'USD',
      lookbackDays: 28,
      runKey: 'hour-2024-10-01T10',
    });
    expect(parseJobData(JOB_CONTRACTS.metricsSync, { platforms: ['google'] })).toEqual({
      platforms: ['google'],
      lookbackDays: 3,
    });
  });

  it.each<[string, Record<string, unknown>, JobContract, string]>([
    ['persona-discovery', { lookbackDays: 0 }, JOB_CONTRACTS.personaDiscovery, 'lookbackDays'],
    ['budget-optimisation', { currency: 'usd' }, JOB_CONTRACTS.budgetOptimisation, 'currency'],
    ['metrics-sync', { platforms: ['myspace'] }, JOB_CONTRACTS.metricsSync, 'platforms.0'],
    ['metrics-sync', { surprise: true }, JOB_CONTRACTS.metricsSync, 'Unrecognized key'],
  ])('rejects %s data %j with VALIDATION_FAILED naming the field', (_name, data, contract, field) => {
    let error: unknown;
    try {
      parseJobData(contract, data);
    } catch (caught) {
      error = caught;
    }
    expect(isAppError(error, 'VALIDATION_FAILED')).toBe(true);
    expect((error as Error).message).toContain(field);
  });

  it('retries every job with exponential backoff', () => {
    for (const contract of Object.values(JOB_CONTRACTS)) {
      expect(contract.retry.attempts).toBeGreaterThan(1);
      expect(contract.retry.backoff.type).toBe('exponential');
    }
  });
});
