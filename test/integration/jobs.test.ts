// shared/jobs.ts on every backend (Redis, BullMQ's PostgreSQL backend on PostgreSQL 15, and on an embedded
// PGlite): schedules fire, retries back off exponentially, failures are kept, the AbortSignal reaches handlers.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, isAppError } from '../../shared/errors.js';
import { createJobRunner, schemaForPrefix, UnrecoverableError, type JobRunner } from '../../shared/jobs.js';
import { postgresReachable } from '../helpers/postgres.js';

const REDIS_URL = process.env.AGENTHUB_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const POSTGRES_URL = process.env.AGENTHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function redisReachable(): Promise<boolean> {
  const client = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    console.warn(`skipping Redis job tests: ${REDIS_URL} is not reachable`);
    return false;
  } finally {
    client.disconnect();
  }
}

async function waitFor(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface Backend {
  readonly runner: JobRunner;
  dispose(): Promise<void>;
}

async function redisBackend(prefix: string): Promise<Backend> {
  const runner = await createJobRunner({ redisUrl: REDIS_URL, prefix });
  return {
    runner,
    dispose: async () => {
      await runner.close({ graceMs: 2000 });
      const client = new Redis(REDIS_URL);
      const keys = await client.keys(`${prefix}:*`);
      if (keys.length > 0) await client.del(...keys);
      client.disconnect();
    },
  };
}

async function postgresBackend(prefix: string): Promise<Backend> {
  const runner = await createJobRunner({ databaseUrl: POSTGRES_URL, prefix });
  return {
    runner,
    dispose: async () => {
      await runner.close({ graceMs: 2000 });
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schemaForPrefix(prefix)}" CASCADE`);
      await client.end();
    },
  };
}

async function pgliteBackend(prefix: string): Promise<Backend> {
  const root = await mkdtemp(join(tmpdir(), 'agenthub-jobs-'));
  const runner = await createJobRunner({ dataDir: join(root, 'data', 'jobs'), prefix });
  return {
    runner,
    dispose: async () => {
      await runner.close({ graceMs: 2000 });
      await rm(root, { recursive: true, force: true });
    },
  };
}

const backends: [string, (prefix: string) => Promise<Backend>, boolean][] = [
  ['Redis', redisBackend, await redisReachable()],
  ['PostgreSQL 15', postgresBackend, await postgresReachable('PostgreSQL job tests', POSTGRES_URL)],
  ['embedded PGlite', pgliteBackend, true],
];

describe.each(backends)('job runner on %s', (name, start, available) => {
  const prefix = `test-${randomUUID()}`;
  let backend: Backend;

  beforeAll(async () => {
    if (available) backend = await start(prefix);
  });
  afterAll(async () => {
    await backend?.dispose();
  });

  it.skipIf(!available)(`reports its backend`, () => {
    expect(backend.runner.backend).toBe(
      { Redis: 'redis', 'PostgreSQL 15': 'postgres', 'embedded PGlite': 'pglite' }[name],
    );
  });

  it.skipIf(!available)(
    'fires an interval schedule repeatedly and a re-upsert does not duplicate it',
    async () => {
      const queue = `every-${randomUUID()}`;
      const runs: number[] = [];
      await backend.runner.process(queue, async (job) => {
        runs.push(Date.now());
        return job.name;
      });
      await backend.runner.schedule(queue, 'tick', { every: 400 }, { name: 'tick', data: { n: 1 } });
      await backend.runner.schedule(queue, 'tick', { every: 400 }, { name: 'tick', data: { n: 2 } });
      await waitFor('three interval runs', () => runs.length >= 3);
      const schedules = (await backend.runner.listSchedules()).filter((schedule) => schedule.queue === queue);
      expect(schedules).toEqual([
        expect.objectContaining({
          id: 'tick',
          jobName: 'tick',
          every: 400,
          cron: null,
          nextRunAt: expect.any(String),
        }),
      ]);
      expect(await backend.runner.unschedule(queue, 'tick')).toBe(true);
    },
  );

  it.skipIf(!available)('fires a cron schedule in a time zone', async () => {
    const queue = `cron-${randomUUID()}`;
    const seen: string[] = [];
    await backend.runner.process(queue, async (job) => {
      seen.push(job.id);
    });
    await backend.runner.schedule(
      queue,
      'each-second',
      { cron: '* * * * * *', tz: 'Europe/Paris' },
      { name: 'c', data: {} },
    );
    await waitFor('two cron runs', () => seen.length >= 2);
    const schedule = (await backend.runner.listSchedules()).find((entry) => entry.queue === queue);
    expect(schedule).toMatchObject({ cron: '* * * * * *', tz: 'Europe/Paris' });
    expect(new Set(seen).size).toBe(seen.length);
    await backend.runner.unschedule(queue, 'each-second');
  });

  it.skipIf(!available)('retries a failing job with exponential backoff and then completes it', async () => {
    const queue = `retry-${randomUUID()}`;
    const attempts: { attempt: number; at: number; runKey: string }[] = [];
    await backend.runner.process(queue, async (job) => {
      attempts.push({ attempt: job.attempt, at: Date.now(), runKey: job.runKey });
      if (job.attempt < 3) throw new Error(`transient failure ${job.attempt}`);
      return 'done';
    });
    const id = await backend.runner.enqueue(queue, {
      name: 'flaky',
      data: {},
      retry: { attempts: 3, backoff: { type: 'exponential', delayMs: 300 } },
    });
    await waitFor('completion', async () => (await backend.runner.getJob(queue, id))?.state === 'completed');
    expect(attempts.map((entry) => entry.attempt)).toEqual([1, 2, 3]);
    expect(new Set(attempts.map((entry) => entry.runKey))).toEqual(new Set([`${queue}:${id}`]));
    const firstGap = attempts[1]!.at - attempts[0]!.at;
    const secondGap = attempts[2]!.at - attempts[1]!.at;
    expect(firstGap).toBeGreaterThanOrEqual(280);
    expect(secondGap).toBeGreaterThanOrEqual(580);
    expect(secondGap).toBeGreaterThan(firstGap * 1.4);
    const job = await backend.runner.getJob(queue, id);
    expect(job).toMatchObject({ state: 'completed', attemptsMade: 3, returnValue: 'done' });
    expect(
      (await backend.runner.recentRuns(50)).some((run) => run.id === id && run.state === 'completed'),
    ).toBe(true);
  });

  it.skipIf(!available)('keeps a job that exhausted its attempts for inspection', async () => {
    const queue = `fail-${randomUUID()}`;
    await backend.runner.process(queue, async () => {
      throw new Error('platform API is down');
    });
    const id = await backend.runner.enqueue(queue, {
      name: 'doomed',
      data: { campaign: 'Q4' },
      retry: { attempts: 2, backoff: { type: 'fixed', delayMs: 100 } },
    });
    await waitFor('failure', async () => (await backend.runner.getJob(queue, id))?.state === 'failed');
    const failures = await backend.runner.failures(50);
    expect(failures.find((failure) => failure.id === id)).toMatchObject({
      queue,
      name: 'doomed',
      state: 'failed',
      attemptsMade: 2,
      failedReason: 'platform API is down',
      data: { campaign: 'Q4' },
    });
  });

  it.skipIf(!available)('does not retry what a retry cannot fix', async () => {
    const queue = `unrecoverable-${randomUUID()}`;
    let calls = 0;
    await backend.runner.process(queue, async (job) => {
      calls += 1;
      if (job.name === 'bad-data') throw new AppError('VALIDATION_FAILED', 'lookbackDays: must be ≥ 1');
      throw new UnrecoverableError('account disabled');
    });
    const retry = { attempts: 3, backoff: { type: 'fixed' as const, delayMs: 50 } };
    const badData = await backend.runner.enqueue(queue, { name: 'bad-data', data: {}, retry });
    const disabled = await backend.runner.enqueue(queue, { name: 'disabled', data: {}, retry });
    await waitFor('both failed', async () => {
      const states = await Promise.all([badData, disabled].map((id) => backend.runner.getJob(queue, id)));
      return states.every((job) => job?.state === 'failed');
    });
    expect(calls).toBe(2);
    expect((await backend.runner.getJob(queue, badData))?.attemptsMade).toBe(1);
  });

  it.skipIf(!available)('aborts the job signal when close outlives its grace period', async () => {
    const own = await start(`test-${randomUUID()}`);
    const queue = `abort-${randomUUID()}`;
    let started = false;
    let abortedWith: unknown;
    await own.runner.process(queue, (job) => {
      started = true;
      return new Promise((_resolve, reject) => {
        job.signal.addEventListener('abort', () => {
          abortedWith = job.signal.reason;
          reject(job.signal.reason as Error);
        });
      });
    });
    await own.runner.enqueue(queue, {
      name: 'long',
      data: {},
      retry: { attempts: 3, backoff: { type: 'fixed', delayMs: 1000 } },
    });
    await waitFor('the job to start', () => started);
    const closedAt = Date.now();
    await own.dispose();
    // Handlers see the runner's CANCELED error, not BullMQ's bare reason string.
    expect(isAppError(abortedWith, 'CANCELED')).toBe(true);
    expect((abortedWith as Error).message).toBe('the job runner is closing');
    expect(Date.now() - closedAt).toBeLessThan(15_000);
  });
});
