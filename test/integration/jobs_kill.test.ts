// A worker process killed mid-job: the job is retried by another worker and its effects apply exactly once,
// whether the kill came before the effects were committed or after (before BullMQ heard the job finished).
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, readDataDirOwner, type Database } from '../../shared/db.js';
import { JOB_CONTRACTS } from '../../shared/job_contracts.js';
import {
  createJobRunner,
  schemaForPrefix,
  type JobRunner,
  type JobRunnerOptions,
} from '../../shared/jobs.js';
import { processBudgetOptimisation, type ProcessorResult } from '../../spoke_marketing/workers.js';
import { REPO_ROOT } from '../helpers/shared_data.js';

const REDIS_URL = process.env.AGENTHUB_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const POSTGRES_URL = process.env.AGENTHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const QUEUE = JOB_CONTRACTS.budgetOptimisation.queue;
const LOCK_MS = 1500;

const ALLOCATIONS = [
  { campaign: 'Q4 Search', channel: 'search', dailyBudgetMinor: 60_000, share: 0.6 },
  { campaign: 'Q4 Social', channel: 'social', dailyBudgetMinor: 40_000, share: 0.4 },
];

/** The worker process: processes budget optimisation jobs, then hangs at the point the job name says. */
const CHILD_SOURCE = `
import { openDatabase } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'shared', 'db.ts')).href)};
import { createJobRunner } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'shared', 'jobs.ts')).href)};
import { processBudgetOptimisation } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'spoke_marketing', 'workers.ts')).href)};
const config = JSON.parse(process.env.KILL_TEST_CONFIG);
const db = await openDatabase({ databaseUrl: config.marketingUrl, service: 'doomed-worker' });
const runner = await createJobRunner(config.jobs);
const forever = () => new Promise(() => {});
await runner.process(config.queue, async (job) => {
  const result = await processBudgetOptimisation(job, {
    db,
    optimizeBudget: async () => {
      if (job.name === 'killed-while-computing') {
        process.send({ event: 'computing', id: job.id });
        await forever();
      }
      return config.allocations;
    },
  });
  if (job.name === 'killed-after-commit') {
    process.send({ event: 'applied', id: job.id });
    await forever();
  }
  return result;
}, { concurrency: 2, lockDurationMs: config.lockMs, stalledIntervalMs: config.lockMs });
process.send({ event: 'ready' });
`;

async function reachable(kind: 'redis' | 'postgres'): Promise<boolean> {
  try {
    if (kind === 'redis') {
      const client = new Redis(REDIS_URL, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      await client.connect();
      client.disconnect();
    } else {
      const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 2000 });
      await client.connect();
      await client.end();
    }
    return true;
  } catch {
    console.warn(`skipping the ${kind} kill test: server not reachable`);
    return false;
  }
}

function waitForMessages(child: ChildProcess, wanted: readonly string[], timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const pending = new Set(wanted);
    const timer = setTimeout(
      () => reject(new Error(`child never reported ${[...pending].join(', ')}`)),
      timeoutMs,
    );
    const onMessage = (message: unknown) => {
      pending.delete((message as { event: string }).event);
      if (pending.size === 0) {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve();
      }
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
  });
}

async function waitFor(what: string, predicate: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface QueueSetup {
  /** The survivor's runner (owns an embedded queue database when there is one). */
  readonly runner: JobRunner;
  /** What the doomed child passes to createJobRunner to reach the same queue. */
  readonly childJobs: JobRunnerOptions;
  dispose(): Promise<void>;
}

const setups: [string, (root: string, prefix: string) => Promise<QueueSetup>, boolean][] = [
  [
    'Redis',
    async (_root, prefix) => ({
      runner: await createJobRunner({ redisUrl: REDIS_URL, prefix }),
      childJobs: { redisUrl: REDIS_URL, prefix },
      dispose: async () => {
        const client = new Redis(REDIS_URL);
        const keys = await client.keys(`${prefix}:*`);
        if (keys.length > 0) await client.del(...keys);
        client.disconnect();
      },
    }),
    await reachable('redis'),
  ],
  [
    'PostgreSQL 15',
    async (_root, prefix) => ({
      runner: await createJobRunner({ databaseUrl: POSTGRES_URL, prefix }),
      childJobs: { databaseUrl: POSTGRES_URL, prefix },
      dispose: async () => {
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${schemaForPrefix(prefix)}" CASCADE`);
        await client.end();
      },
    }),
    await reachable('postgres'),
  ],
  [
    'embedded PGlite (the child goes through the owner socket)',
    async (root, prefix) => {
      const dataDir = join(root, 'data', `jobs-${prefix}`);
      const runner = await createJobRunner({ dataDir, prefix });
      const owner = await readDataDirOwner(dataDir);
      return {
        runner,
        childJobs: { databaseUrl: owner?.connectionString ?? '', prefix },
        dispose: async () => {},
      };
    },
    true,
  ],
];

describe('a job whose worker process is killed', () => {
  let root: string;
  let db: Database;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'agenthub-kill-'));
    db = await openDatabase({ dataDir: join(root, 'data', 'marketing'), service: 'marketing' });
    await migrate(db, join(REPO_ROOT, 'spoke_marketing', 'migrations'));
    await writeFile(join(root, 'child.mts'), CHILD_SOURCE);
  });
  afterAll(async () => {
    await db?.close();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it.for(setups)(
    'on %s is retried elsewhere and applies exactly once',
    async ([, setUp, available], context) => {
      context.skip(!available, 'server not reachable');
      const prefix = `test-${randomUUID()}`;
      const setup = await setUp(root, prefix);
      const child = fork(join(root, 'child.mts'), [], {
        cwd: REPO_ROOT,
        execArgv: ['--import', 'tsx'],
        env: {
          ...process.env,
          KILL_TEST_CONFIG: JSON.stringify({
            marketingUrl: db.connectionString,
            jobs: setup.childJobs,
            queue: QUEUE,
            lockMs: LOCK_MS,
            allocations: ALLOCATIONS,
          }),
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      try {
        await waitForMessages(child, ['ready']);
        const computingId = await setup.runner.enqueue(QUEUE, { name: 'killed-while-computing', data: {} });
        const committedId = await setup.runner.enqueue(QUEUE, { name: 'killed-after-commit', data: {} });
        await waitForMessages(child, ['computing', 'applied']);
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;

        const appliedBeforeKill = await db.query<{ run_key: string }>(
          `SELECT run_key FROM job_runs WHERE run_key LIKE $1`,
          [`${QUEUE}:%`],
        );
        expect(appliedBeforeKill.rows.map((row) => row.run_key)).toEqual([`${QUEUE}:${committedId}`]);

        const survivorRuns: string[] = [];
        await setup.runner.process(
          QUEUE,
          async (job) => {
            survivorRuns.push(job.name);
            return processBudgetOptimisation(job, { db, optimizeBudget: async () => ALLOCATIONS });
          },
          { concurrency: 2, lockDurationMs: LOCK_MS, stalledIntervalMs: 300 },
        );
        await waitFor('both jobs to complete', async () => {
          const jobs = await Promise.all(
            [computingId, committedId].map((id) => setup.runner.getJob(QUEUE, id)),
          );
          return jobs.every((job) => job?.state === 'completed');
        });
        expect(survivorRuns.sort()).toEqual(['killed-after-commit', 'killed-while-computing']);
        const results = await Promise.all(
          [computingId, committedId].map(
            async (id) => (await setup.runner.getJob(QUEUE, id))?.returnValue as ProcessorResult,
          ),
        );
        expect(results.map((result) => result.status)).toEqual(['applied', 'already-applied']);

        const allocations = await db.query<{ run_key: string; n: string }>(
          `SELECT run_key, count(*) AS n FROM budget_allocations WHERE run_key = ANY($1) GROUP BY run_key ORDER BY run_key`,
          [[`${QUEUE}:${computingId}`, `${QUEUE}:${committedId}`]],
        );
        expect(allocations.rows.map((row) => Number(row.n))).toEqual([
          ALLOCATIONS.length,
          ALLOCATIONS.length,
        ]);
        await db.query(`DELETE FROM job_runs WHERE run_key LIKE $1`, [`${QUEUE}:%`]);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await setup.runner.close({ graceMs: 2000 });
        await setup.dispose();
      }
    },
  );
});
