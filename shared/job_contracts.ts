// The jobs contract shared by producers, workers and the CLI: queue names, job names, zod job-data schemas,
// retry policies and the marketing schedules (persona discovery daily, budget optimisation hourly, metrics sync).
import { z } from 'zod';
import { AppError } from './errors.js';

/** How often a schedule fires: a fixed interval, or a six-field cron pattern (with seconds) in a time zone. */
export type Repeat = { readonly every: number } | { readonly cron: string; readonly tz?: string };

/** How a failed job is retried. */
export interface RetryPolicy {
  /** Total tries including the first. */
  readonly attempts: number;
  /** Delay before retry n is `delayMs × 2^(n-1)` (exponential) or `delayMs` (fixed). */
  readonly backoff: { readonly type: 'exponential' | 'fixed'; readonly delayMs: number };
}

/** One kind of job: where it is queued, what it is called, what its data must look like, how it retries. */
export interface JobContract<S extends z.ZodTypeAny = z.ZodTypeAny> {
  readonly queue: string;
  readonly name: string;
  readonly schema: S;
  readonly retry: RetryPolicy;
}

/** Every job may carry an explicit run key; without one the job id is the run key (stable across retries). */
const runKey = z.string().min(1).max(200).optional();

/** Persona discovery: cluster recent leads (HDBSCAN) and replace the active personas. */
export const personaDiscoveryDataSchema = z
  .object({
    /** Days of leads to cluster. */
    lookbackDays: z.number().int().min(1).max(3650).default(90),
    /** HDBSCAN minimum cluster size. */
    minClusterSize: z.number().int().min(2).max(10_000).default(15),
    runKey,
  })
  .strict();

/** Budget optimisation: reallocate daily budgets across campaigns and channels (Thompson sampling). */
export const budgetOptimisationDataSchema = z
  .object({
    /** Total daily budget to allocate, minor units; absent → keep the current total. */
    totalDailyBudgetMinor: z.number().int().min(0).optional(),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/)
      .default('USD'),
    /** Days of metrics the optimiser learns from. */
    lookbackDays: z.number().int().min(1).max(365).default(28),
    runKey,
  })
  .strict();

/** Ad platforms whose reports the metrics sync pulls. */
export const SYNC_PLATFORMS = ['meta', 'google', 'tiktok'] as const;

/** Metrics sync: pull recent daily metrics from the ad platforms and upsert them. */
export const metricsSyncDataSchema = z
  .object({
    platforms: z
      .array(z.enum(SYNC_PLATFORMS))
      .min(1)
      .default([...SYNC_PLATFORMS]),
    /** Days back from today to re-pull (platforms restate recent days). */
    lookbackDays: z.number().int().min(1).max(90).default(3),
    runKey,
  })
  .strict();

export type PersonaDiscoveryData = z.infer<typeof personaDiscoveryDataSchema>;
export type BudgetOptimisationData = z.infer<typeof budgetOptimisationDataSchema>;
export type MetricsSyncData = z.infer<typeof metricsSyncDataSchema>;

const DEFAULT_RETRY: RetryPolicy = { attempts: 3, backoff: { type: 'exponential', delayMs: 30_000 } };

/** The marketing spoke's jobs. Queue names avoid ':' (BullMQ forbids it). */
export const JOB_CONTRACTS = {
  personaDiscovery: {
    queue: 'marketing-persona-discovery',
    name: 'persona-discovery',
    schema: personaDiscoveryDataSchema,
    retry: DEFAULT_RETRY,
  },
  budgetOptimisation: {
    queue: 'marketing-budget-optimisation',
    name: 'budget-optimisation',
    schema: budgetOptimisationDataSchema,
    retry: DEFAULT_RETRY,
  },
  metricsSync: {
    queue: 'marketing-metrics-sync',
    name: 'metrics-sync',
    schema: metricsSyncDataSchema,
    retry: { attempts: 5, backoff: { type: 'exponential', delayMs: 10_000 } },
  },
} as const satisfies Record<string, JobContract>;

/** Every queue the marketing spoke uses (the `jobs` command lists these). */
export const MARKETING_QUEUES: readonly string[] = Object.values(JOB_CONTRACTS).map(
  (contract) => contract.queue,
);

/** A recurring job. */
export interface ScheduleDefinition {
  /** Scheduler id, unique within its queue; re-upserting the same id replaces rather than duplicates. */
  readonly id: string;
  readonly contract: JobContract;
  readonly repeat: Repeat;
  /** Job data (before schema defaults). */
  readonly data: Readonly<Record<string, unknown>>;
}

/** Persona discovery: every day at 07:00 in the spoke's time zone (six-field cron: s m h dom mon dow). */
export const PERSONA_DISCOVERY_CRON = '0 0 7 * * *';
/** Budget optimisation: at the top of every hour. */
export const BUDGET_OPTIMISATION_CRON = '0 0 * * * *';
/** Metrics sync: every 15 minutes. */
export const METRICS_SYNC_EVERY_MS = 15 * 60 * 1000;

/**
 * The marketing schedules. `tz` is an IANA zone (e.g. `Europe/Paris`) applied to the cron patterns, so
 * "07:00" means 07:00 local time across daylight-saving changes.
 */
export function marketingSchedules(tz = 'UTC'): readonly ScheduleDefinition[] {
  if (!isValidTimeZone(tz)) {
    throw new AppError(
      'CONFIG_INVALID',
      `unknown time zone ${JSON.stringify(tz)} (expected an IANA name like Europe/Paris)`,
      {
        details: { tz },
      },
    );
  }
  return [
    {
      id: 'persona-discovery-daily',
      contract: JOB_CONTRACTS.personaDiscovery,
      repeat: { cron: PERSONA_DISCOVERY_CRON, tz },
      data: {},
    },
    {
      id: 'budget-optimisation-hourly',
      contract: JOB_CONTRACTS.budgetOptimisation,
      repeat: { cron: BUDGET_OPTIMISATION_CRON, tz },
      data: {},
    },
    {
      id: 'metrics-sync-every-15-minutes',
      contract: JOB_CONTRACTS.metricsSync,
      repeat: { every: METRICS_SYNC_EVERY_MS },
      data: {},
    },
  ];
}

/** True when `tz` is an IANA time zone this runtime knows. */
function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * Validates job data against its contract (job data crosses a trust boundary: it was serialised into the
 * queue, possibly by another version). Throws `VALIDATION_FAILED` naming the fields; retrying cannot fix it.
 */
export function parseJobData<S extends z.ZodTypeAny>(contract: JobContract<S>, data: unknown): z.infer<S> {
  const result = contract.schema.safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join('.') || '(data)'}: ${issue.message}`,
    );
    throw new AppError('VALIDATION_FAILED', `invalid ${contract.name} job data: ${problems.join('; ')}`, {
      details: { job: contract.name, problems },
    });
  }
  return result.data as z.infer<S>;
}
