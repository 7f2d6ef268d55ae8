// The project's job runner over BullMQ: Redis when REDIS_URL is set, otherwise BullMQ's PostgreSQL backend on
// the PostgreSQL server (DATABASE_URL) or on an embedded PGlite instance dedicated to the queue. Schedules,
// retries with backoff, failed jobs kept for inspection, AbortSignal per job, graceful close.
import {
  Queue as RedisQueue,
  UnrecoverableError,
  Worker as RedisWorker,
  createPostgresBackend,
  withBackend,
  type Job,
  type JobsOptions,
  type JobSchedulerJson,
} from 'bullmq';
import { openDatabase, redactUrl, type Database } from './db.js';
import { AppError, isAppError } from './errors.js';
import type { Repeat, RetryPolicy } from './job_contracts.js';
import { silentLogger, type Logger } from './log.js';

export { UnrecoverableError } from 'bullmq';
export type { Repeat, RetryPolicy } from './job_contracts.js';

/** Where the queue lives. */
export type JobBackend = 'redis' | 'postgres' | 'pglite';

/** A job to run: its name, its data and how it retries. */
export interface JobTemplate {
  readonly name: string;
  readonly data: unknown;
  readonly retry?: RetryPolicy;
}

/** What a handler receives for one attempt of one job. */
export interface JobContext<D = unknown> {
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  readonly data: D;
  /** 1 for the first try, 2 for the first retry… */
  readonly attempt: number;
  readonly attemptsAllowed: number;
  /** Milliseconds since the epoch when the job was created (for a scheduled job: when it was due). */
  readonly createdAt: number;
  /**
   * Identifies this run across retries and redeliveries: `data.runKey` when given, else `queue:jobId`. Write
   * it in the same transaction as the job's effects so a retried run never applies twice.
   */
  readonly runKey: string;
  /** Aborted when the job is cancelled, its lock is lost, or the runner closes past its grace period. */
  readonly signal: AbortSignal;
}

/** A job processor. Throw {@link UnrecoverableError} (or AppError `VALIDATION_FAILED`) for what a retry cannot fix. */
export type JobHandler<D = unknown, R = unknown> = (job: JobContext<D>) => Promise<R>;

/** Options of {@link JobRunner.process}. */
export interface ProcessOptions {
  /** Jobs of this queue run at once in this process. @defaultValue 1 */
  readonly concurrency?: number;
  /** Lock time in ms a worker holds (and renews) on an active job; a dead worker's job is retried after it. @defaultValue 30000 */
  readonly lockDurationMs?: number;
  /** How often stalled (lock-expired) jobs are looked for, ms. @defaultValue 30000 */
  readonly stalledIntervalMs?: number;
}

/** Options of {@link JobRunner.enqueue}. */
export interface EnqueueOptions {
  /** A caller-chosen id: enqueuing the same id twice adds the job once. */
  readonly jobId?: string;
  readonly delayMs?: number;
}

/** A recurring job as stored by the backend. */
export interface ScheduleInfo {
  readonly queue: string;
  readonly id: string;
  readonly jobName: string;
  readonly every: number | null;
  readonly cron: string | null;
  readonly tz: string | null;
  /** ISO time of the next run, when known. */
  readonly nextRunAt: string | null;
}

/** State of one job. */
export type JobState = 'completed' | 'failed' | 'active' | 'waiting' | 'delayed' | 'unknown';

/** One job as the runner reports it. */
export interface JobRunInfo {
  readonly queue: string;
  readonly id: string;
  readonly name: string;
  readonly state: JobState;
  readonly attemptsMade: number;
  readonly createdAt: string;
  readonly finishedAt: string | null;
  readonly failedReason: string | null;
  readonly data: unknown;
  readonly returnValue: unknown;
}

/** The small job interface the services use; BullMQ stays behind it. */
export interface JobRunner {
  readonly backend: JobBackend;
  /** Creates or replaces the schedule `id` of `queue` (re-upserting never duplicates it). */
  schedule(queue: string, id: string, repeat: Repeat, template: JobTemplate): Promise<void>;
  /** Removes a schedule; false when it did not exist. */
  unschedule(queue: string, id: string): Promise<boolean>;
  /** Adds one job; returns its id. */
  enqueue(queue: string, template: JobTemplate, options?: EnqueueOptions): Promise<string>;
  /** Starts processing `queue` in this process with `handler`. */
  process<D = unknown, R = unknown>(
    queue: string,
    handler: JobHandler<D, R>,
    options?: ProcessOptions,
  ): Promise<void>;
  /** Schedules of every queue this runner knows. */
  listSchedules(): Promise<ScheduleInfo[]>;
  /** Latest finished jobs (completed or failed), newest first. */
  recentRuns(limit?: number): Promise<JobRunInfo[]>;
  /** Failed jobs kept for inspection, newest first. */
  failures(limit?: number): Promise<JobRunInfo[]>;
  /** One job, if it is still kept. */
  getJob(queue: string, id: string): Promise<JobRunInfo | undefined>;
  /**
   * Stops taking jobs, waits up to `graceMs` for active ones, then aborts their signals (they are retried
   * later), and closes every connection (and the embedded queue database).
   */
  close(options?: { readonly graceMs?: number }): Promise<void>;
}

/** Options of {@link createJobRunner}. */
export interface JobRunnerOptions {
  /** Redis URL: use BullMQ on Redis. Takes precedence over the database options. */
  readonly redisUrl?: string;
  /** PostgreSQL URL: use BullMQ's PostgreSQL backend on that server. */
  readonly databaseUrl?: string;
  /** Neither URL: BullMQ's PostgreSQL backend on an embedded PGlite in this directory (used only for jobs). */
  readonly dataDir?: string;
  /**
   * Namespace of the queues: the Redis key prefix, or the PostgreSQL schema `bullmq_<prefix>` (so tests and
   * tenants sharing a server do not see each other's jobs). @defaultValue Redis `agenthub`, PostgreSQL `bullmq`
   */
  readonly prefix?: string;
  /** Queues to report in listSchedules/recentRuns/failures besides the ones used through this runner. */
  readonly queues?: readonly string[];
  readonly log?: Logger;
  /** Default grace period of close(), ms. @defaultValue 30000 */
  readonly closeGraceMs?: number;
}

/** Connections the embedded queue database accepts: every Queue and Worker opens a small pool plus a LISTEN client. */
const EMBEDDED_QUEUE_MAX_CONNECTIONS = 200;
/** Pool size of each BullMQ Queue/Worker on PostgreSQL. */
const POSTGRES_POOL_MAX = 3;
const DEFAULT_REMOVE_ON_COMPLETE = { count: 500 };
const DEFAULT_KEEP_FAILED = { count: 5000 };

interface BullQueue {
  add(name: string, data: unknown, opts?: JobsOptions): Promise<Job>;
  upsertJobScheduler(
    id: string,
    repeat: { every?: number; pattern?: string; tz?: string },
    template: { name: string; data: unknown; opts?: Omit<JobsOptions, 'jobId' | 'repeat' | 'delay'> },
  ): Promise<unknown>;
  removeJobScheduler(id: string): Promise<boolean>;
  getJobSchedulers(start?: number, end?: number, asc?: boolean): Promise<JobSchedulerJson[]>;
  getJobs(types: string[], start?: number, end?: number, asc?: boolean): Promise<Job[]>;
  getJob(id: string): Promise<Job | undefined>;
  waitUntilReady(): Promise<unknown>;
  close(): Promise<void>;
}

interface BullWorker {
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'failed', listener: (job: Job | undefined, error: Error) => void): unknown;
  waitUntilReady(): Promise<unknown>;
  cancelAllJobs(reason?: string): void;
  close(force?: boolean): Promise<void>;
}

type BullProcessor = (job: Job, token?: string, signal?: AbortSignal) => Promise<unknown>;

interface BullFactory {
  queue(name: string): BullQueue;
  worker(name: string, processor: BullProcessor, options: ProcessOptions): BullWorker;
}

/**
 * Creates a job runner. Redis when `redisUrl` is set; else BullMQ's PostgreSQL backend on `databaseUrl`; else
 * on an embedded PGlite in `dataDir`. On PGlite, BullMQ's `-c search_path=…` startup option is ignored (every
 * socket connection shares one backend), so the runner sets the session's search_path itself; that is also
 * why the queue gets its own PGlite instance: BullMQ's unqualified `metrics`/`event` tables would otherwise
 * resolve against the application's tables.
 */
export async function createJobRunner(options: JobRunnerOptions): Promise<JobRunner> {
  const log = (options.log ?? silentLogger()).child({ module: 'jobs' });
  if (options.redisUrl !== undefined && options.redisUrl !== '') {
    const redisUrl = options.redisUrl;
    const prefix = options.prefix ?? 'agenthub';
    const factory: BullFactory = {
      queue: (name) =>
        new RedisQueue(name, { connection: { url: redisUrl }, prefix }) as unknown as BullQueue,
      worker: (name, processor, processOptions) =>
        new RedisWorker(name, processor, {
          connection: { url: redisUrl },
          prefix,
          ...workerSettings(processOptions),
        }) as unknown as BullWorker,
    };
    log.info({ url: redactUrl(redisUrl), prefix }, 'job runner on Redis');
    return buildRunner('redis', factory, options, log, async () => {});
  }
  const schema = options.prefix === undefined ? 'bullmq' : schemaForPrefix(options.prefix);
  if (options.databaseUrl !== undefined && options.databaseUrl !== '') {
    const factory = postgresFactory({ connectionString: options.databaseUrl, schema });
    log.info({ url: redactUrl(options.databaseUrl), schema }, 'job runner on PostgreSQL');
    return buildRunner('postgres', factory, options, log, async () => {});
  }
  if (options.dataDir === undefined || options.dataDir === '') {
    throw new AppError('CONFIG_INVALID', 'createJobRunner needs a redisUrl, a databaseUrl or a dataDir', {});
  }
  const queueDb: Database = await openDatabase({
    dataDir: options.dataDir,
    service: 'jobs',
    withVector: false,
    poolMax: 1,
    maxConnections: EMBEDDED_QUEUE_MAX_CONNECTIONS,
    log,
  });
  try {
    await queueDb.query(`SET search_path TO ${quoteIdentifier(schema)}, public`);
  } catch (error) {
    await queueDb.close();
    throw error;
  }
  const factory = postgresFactory({ connectionString: queueDb.connectionString, schema });
  log.info({ dataDir: options.dataDir, schema }, 'job runner on embedded PGlite');
  return buildRunner('pglite', factory, options, log, () => queueDb.close());
}

function postgresFactory(connection: { connectionString: string; schema: string }): BullFactory {
  const { Queue, Worker } = withBackend(createPostgresBackend);
  const connectionConfig = () => ({
    connectionString: connection.connectionString,
    schema: connection.schema,
    migrate: true,
    max: POSTGRES_POOL_MAX,
  });
  return {
    queue: (name) => new Queue(name, { connection: connectionConfig() }) as unknown as BullQueue,
    worker: (name, processor, processOptions) =>
      new Worker(name, processor, {
        connection: connectionConfig(),
        ...workerSettings(processOptions),
      }) as unknown as BullWorker,
  };
}

function workerSettings(options: ProcessOptions): {
  concurrency: number;
  lockDuration: number;
  stalledInterval: number;
  autorun: boolean;
} {
  return {
    concurrency: options.concurrency ?? 1,
    lockDuration: options.lockDurationMs ?? 30_000,
    stalledInterval: options.stalledIntervalMs ?? 30_000,
    autorun: true,
  };
}

/** `test-1234…` → `bullmq_test_1234…` (a valid, unquoted-safe PostgreSQL identifier of at most 63 bytes). */
export function schemaForPrefix(prefix: string): string {
  const cleaned = prefix.toLowerCase().replace(/[^a-z0-9_]+/g, '_');
  return `bullmq_${cleaned}`.slice(0, 63);
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function jobOptions(retry: RetryPolicy | undefined): JobsOptions {
  return {
    attempts: retry?.attempts ?? 1,
    ...(retry === undefined ? {} : { backoff: { type: retry.backoff.type, delay: retry.backoff.delayMs } }),
    removeOnComplete: DEFAULT_REMOVE_ON_COMPLETE,
    removeOnFail: DEFAULT_KEEP_FAILED,
  };
}

function isoOrNull(millis: number | undefined | null): string | null {
  return millis === undefined || millis === null || !Number.isFinite(millis)
    ? null
    : new Date(millis).toISOString();
}

/**
 * Why a job's signal fired, as the AppError handlers see: the runner's own CANCELED error when it is closing
 * (BullMQ cancels the jobs then with a bare string), else a CANCELED error naming the job and BullMQ's reason.
 */
function cancelError(jobId: string | undefined, reason: unknown, closing: AbortSignal): AppError {
  if (isAppError(reason)) return reason;
  if (closing.aborted && isAppError(closing.reason)) return closing.reason;
  const why = typeof reason === 'string' && reason !== '' ? `: ${reason}` : '';
  return new AppError('CANCELED', `job ${jobId ?? ''} was cancelled${why}`);
}

function runKeyOf(queue: string, job: Job): string {
  const data = job.data as { runKey?: unknown } | null;
  return typeof data?.runKey === 'string' && data.runKey !== '' ? data.runKey : `${queue}:${job.id ?? ''}`;
}

function buildRunner(
  backend: JobBackend,
  factory: BullFactory,
  options: JobRunnerOptions,
  log: Logger,
  closeBackend: () => Promise<void>,
): JobRunner {
  const queues = new Map<string, BullQueue>();
  const workers: BullWorker[] = [];
  const closing = new AbortController();
  let closed: Promise<void> | undefined;

  const queueFor = async (name: string): Promise<BullQueue> => {
    if (closing.signal.aborted) throw new AppError('SPOKE_UNAVAILABLE', 'the job runner is closing');
    let queue = queues.get(name);
    if (queue === undefined) {
      queue = factory.queue(name);
      queues.set(name, queue);
      await queue.waitUntilReady();
    }
    return queue;
  };

  const knownQueueNames = (): string[] => [...new Set([...(options.queues ?? []), ...queues.keys()])];

  const describeJob = async (queueName: string, job: Job): Promise<JobRunInfo> => {
    let state: JobState = 'unknown';
    const reported = await job.getState().catch(() => undefined);
    if (
      reported === 'completed' ||
      reported === 'failed' ||
      reported === 'active' ||
      reported === 'delayed'
    ) {
      state = reported;
    } else if (reported === 'waiting' || reported === 'waiting-children' || reported === 'prioritized') {
      state = 'waiting';
    }
    return {
      queue: queueName,
      id: job.id ?? '',
      name: job.name,
      state,
      attemptsMade: job.attemptsMade,
      createdAt: isoOrNull(job.timestamp) ?? '',
      finishedAt: isoOrNull(job.finishedOn),
      failedReason: job.failedReason ?? null,
      data: job.data,
      returnValue: job.returnvalue ?? null,
    };
  };

  const listJobs = async (types: string[], limit: number): Promise<JobRunInfo[]> => {
    const perQueue = await Promise.all(
      knownQueueNames().map(async (name) => {
        const queue = await queueFor(name);
        const jobs = await queue.getJobs(types, 0, limit - 1, false);
        return Promise.all(jobs.map((job) => describeJob(name, job)));
      }),
    );
    return perQueue
      .flat()
      .sort((a, b) => (b.finishedAt ?? b.createdAt).localeCompare(a.finishedAt ?? a.createdAt))
      .slice(0, limit);
  };

  return {
    backend,

    async schedule(queueName, id, repeat, template) {
      const queue = await queueFor(queueName);
      const repeatOptions =
        'every' in repeat
          ? { every: repeat.every }
          : { pattern: repeat.cron, ...(repeat.tz === undefined ? {} : { tz: repeat.tz }) };
      await queue.upsertJobScheduler(id, repeatOptions, {
        name: template.name,
        data: template.data,
        opts: jobOptions(template.retry),
      });
    },

    async unschedule(queueName, id) {
      return (await queueFor(queueName)).removeJobScheduler(id);
    },

    async enqueue(queueName, template, enqueueOptions = {}) {
      const queue = await queueFor(queueName);
      const job = await queue.add(template.name, template.data, {
        ...jobOptions(template.retry),
        ...(enqueueOptions.jobId === undefined ? {} : { jobId: enqueueOptions.jobId }),
        ...(enqueueOptions.delayMs === undefined ? {} : { delay: enqueueOptions.delayMs }),
      });
      return job.id ?? '';
    },

    async process<D, R>(queueName: string, handler: JobHandler<D, R>, processOptions: ProcessOptions = {}) {
      if (closing.signal.aborted) throw new AppError('SPOKE_UNAVAILABLE', 'the job runner is closing');
      await queueFor(queueName);
      const processor: BullProcessor = async (job, _token, bullSignal) => {
        const controller = new AbortController();
        const abort = (reason: unknown) => {
          if (!controller.signal.aborted) controller.abort(reason);
        };
        const onBullAbort = () => abort(cancelError(job.id, bullSignal?.reason, closing.signal));
        bullSignal?.addEventListener('abort', onBullAbort, { once: true });
        if (bullSignal?.aborted === true) onBullAbort();
        const context: JobContext<D> = {
          id: job.id ?? '',
          queue: queueName,
          name: job.name,
          data: job.data as D,
          attempt: job.attemptsMade + 1,
          attemptsAllowed: job.opts.attempts ?? 1,
          createdAt: job.timestamp,
          runKey: runKeyOf(queueName, job),
          signal: controller.signal,
        };
        try {
          return await handler(context);
        } catch (error) {
          // Invalid job data cannot be fixed by a retry: BullMQ fails it at once.
          if (isAppError(error, 'VALIDATION_FAILED')) throw new UnrecoverableError(error.message);
          throw error;
        } finally {
          bullSignal?.removeEventListener('abort', onBullAbort);
        }
      };
      const worker = factory.worker(queueName, processor, processOptions);
      worker.on('error', (error) => log.warn({ err: error, queue: queueName }, 'job worker error'));
      worker.on('failed', (job, error) =>
        log.warn(
          { queue: queueName, jobId: job?.id, attemptsMade: job?.attemptsMade, err: error },
          'job attempt failed',
        ),
      );
      workers.push(worker);
      await worker.waitUntilReady();
    },

    async listSchedules() {
      const perQueue = await Promise.all(
        knownQueueNames().map(async (name) => {
          const schedulers = await (await queueFor(name)).getJobSchedulers(0, -1, true);
          return schedulers.map((scheduler): ScheduleInfo => ({
            queue: name,
            id: scheduler.key,
            jobName: scheduler.name,
            every: scheduler.every ?? null,
            cron: scheduler.pattern ?? null,
            tz: scheduler.tz ?? null,
            nextRunAt: isoOrNull(scheduler.next),
          }));
        }),
      );
      return perQueue.flat();
    },

    recentRuns: (limit = 20) => listJobs(['completed', 'failed'], limit),

    failures: (limit = 20) => listJobs(['failed'], limit),

    async getJob(queueName, id) {
      const job = await (await queueFor(queueName)).getJob(id);
      return job === undefined || job === null ? undefined : describeJob(queueName, job);
    },

    close(closeOptions = {}) {
      closed ??= (async () => {
        closing.abort(new AppError('CANCELED', 'the job runner is closing'));
        const graceMs = closeOptions.graceMs ?? options.closeGraceMs ?? 30_000;
        await Promise.all(
          workers.map(async (worker) => {
            let timer: NodeJS.Timeout | undefined;
            const graceful = worker.close();
            const expired = new Promise<'expired'>((resolve) => {
              timer = setTimeout(() => resolve('expired'), graceMs);
            });
            const outcome = await Promise.race([graceful.then(() => 'closed' as const), expired]);
            clearTimeout(timer);
            if (outcome === 'expired') {
              log.warn(
                { graceMs },
                'active jobs outlived the grace period; aborting them (they will be retried)',
              );
              worker.cancelAllJobs('the job runner is closing');
              await worker.close(true);
            }
          }),
        );
        await Promise.all([...queues.values()].map((queue) => queue.close()));
        await closeBackend();
      })();
      return closed;
    },
  };
}
