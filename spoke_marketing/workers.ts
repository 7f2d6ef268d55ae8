// The marketing spoke's job processors as plain functions with injected collaborators (clustering, optimiser,
// platform reports): each computes outside any transaction, then claims its run key and applies its effects in
// one transaction, so a job killed mid-run and retried never applies twice. Also wires them to a JobRunner.
import type { Database, Queryable } from '../shared/db.js';
import { AppError } from '../shared/errors.js';
import {
  JOB_CONTRACTS,
  marketingSchedules,
  parseJobData,
  type BudgetOptimisationData,
  type MetricsSyncData,
  type PersonaDiscoveryData,
} from '../shared/job_contracts.js';
import type { JobContext, JobRunner } from '../shared/jobs.js';
import {
  assignLeadPersonas,
  claimJobRun,
  insertBudgetAllocations,
  replaceActivePersonas,
  selectJobRun,
  selectLeadsByPeriod,
  selectMetricsByPeriod,
  upsertMetrics,
  type BudgetAllocationInput,
  type LeadRow,
  type MetricsInput,
  type MetricsRow,
  type PersonaInput,
} from './store.js';

/** The job fields a processor reads (a JobRunner's JobContext satisfies it; tests build it by hand). */
export type ProcessorJob = Pick<JobContext, 'id' | 'name' | 'data' | 'attempt' | 'runKey' | 'signal'>;

/** What every processor needs from the database. */
export type ProcessorDb = Queryable & Pick<Database, 'transaction'>;

/** What a processor reports; `already-applied` means a retry or duplicate found its run key recorded. */
export interface ProcessorResult {
  readonly runKey: string;
  readonly status: 'applied' | 'already-applied';
  readonly summary: Readonly<Record<string, unknown>>;
}

const DAY_MS = 86_400_000;

function isoDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function throwIfAborted(signal: AbortSignal): void {
  if (!signal.aborted) return;
  const reason: unknown = signal.reason;
  throw reason instanceof Error ? reason : new AppError('CANCELED', 'the job was cancelled');
}

async function alreadyApplied(db: Queryable, runKey: string): Promise<ProcessorResult | undefined> {
  const run = await selectJobRun(db, runKey);
  return run === undefined ? undefined : { runKey, status: 'already-applied', summary: run.summary };
}

/**
 * Claims the run key and applies `apply` in one transaction; when the key is already claimed (the run was
 * applied by an earlier attempt that died before acknowledging), applies nothing.
 */
async function applyOnce(
  db: ProcessorDb,
  job: ProcessorJob,
  summary: Readonly<Record<string, unknown>>,
  apply: (tx: Queryable) => Promise<void>,
): Promise<ProcessorResult> {
  throwIfAborted(job.signal);
  return db.transaction(async (tx) => {
    const claimed = await claimJobRun(tx, {
      runKey: job.runKey,
      jobName: job.name,
      jobId: job.id,
      attempt: job.attempt,
      summary,
    });
    if (!claimed) return { runKey: job.runKey, status: 'already-applied', summary };
    await apply(tx);
    return { runKey: job.runKey, status: 'applied', summary };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Persona discovery

/** One persona found by clustering, with the leads that belong to it. */
export interface DiscoveredPersona extends PersonaInput {
  readonly leadIds: readonly number[];
}

/** Collaborators of {@link processPersonaDiscovery}. */
export interface PersonaDiscoveryDeps {
  readonly db: ProcessorDb;
  /** Clusters leads into personas (HDBSCAN + naming); must honour `signal`. */
  readonly discoverPersonas: (input: {
    readonly leads: readonly LeadRow[];
    readonly minClusterSize: number;
    readonly signal: AbortSignal;
  }) => Promise<readonly DiscoveredPersona[]>;
  readonly now?: () => Date;
}

/** Clusters recent leads and replaces the active personas (and the leads' persona) once per run key. */
export async function processPersonaDiscovery(
  job: ProcessorJob,
  deps: PersonaDiscoveryDeps,
): Promise<ProcessorResult> {
  const data: PersonaDiscoveryData = parseJobData(JOB_CONTRACTS.personaDiscovery, job.data);
  const done = await alreadyApplied(deps.db, job.runKey);
  if (done !== undefined) return done;
  const now = (deps.now ?? (() => new Date()))();
  const leads = await selectLeadsByPeriod(deps.db, {
    from: new Date(now.getTime() - data.lookbackDays * DAY_MS).toISOString(),
    to: now.toISOString(),
  });
  throwIfAborted(job.signal);
  const personas = await deps.discoverPersonas({
    leads,
    minClusterSize: data.minClusterSize,
    signal: job.signal,
  });
  const summary = { leads: leads.length, personas: personas.length };
  return applyOnce(deps.db, job, summary, async (tx) => {
    const ids = await replaceActivePersonas(tx, job.runKey, personas);
    const assignments = personas.flatMap((persona, index) =>
      persona.leadIds.map((leadId) => ({ leadId, personaId: ids[index]! })),
    );
    await assignLeadPersonas(tx, assignments);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Budget optimisation

/** Collaborators of {@link processBudgetOptimisation}. */
export interface BudgetOptimisationDeps {
  readonly db: ProcessorDb;
  /** Chooses daily budgets from recent metrics (Thompson sampling); must honour `signal`. */
  readonly optimizeBudget: (input: {
    readonly metrics: readonly MetricsRow[];
    readonly totalDailyBudgetMinor: number | undefined;
    readonly currency: string;
    readonly signal: AbortSignal;
  }) => Promise<readonly BudgetAllocationInput[]>;
  readonly now?: () => Date;
}

/** Learns from recent metrics and records one set of budget allocations per run key. */
export async function processBudgetOptimisation(
  job: ProcessorJob,
  deps: BudgetOptimisationDeps,
): Promise<ProcessorResult> {
  const data: BudgetOptimisationData = parseJobData(JOB_CONTRACTS.budgetOptimisation, job.data);
  const done = await alreadyApplied(deps.db, job.runKey);
  if (done !== undefined) return done;
  const now = (deps.now ?? (() => new Date()))();
  const metrics = await selectMetricsByPeriod(deps.db, {
    from: isoDate(new Date(now.getTime() - data.lookbackDays * DAY_MS)),
    to: isoDate(now),
  });
  throwIfAborted(job.signal);
  const allocations = await deps.optimizeBudget({
    metrics,
    totalDailyBudgetMinor: data.totalDailyBudgetMinor,
    currency: data.currency,
    signal: job.signal,
  });
  const summary = {
    metricsRows: metrics.length,
    allocations: allocations.length,
    totalDailyBudgetMinor: allocations.reduce((total, allocation) => total + allocation.dailyBudgetMinor, 0),
  };
  return applyOnce(deps.db, job, summary, async (tx) => {
    await insertBudgetAllocations(tx, job.runKey, allocations);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Metrics sync

/** Collaborators of {@link processMetricsSync}. */
export interface MetricsSyncDeps {
  readonly db: ProcessorDb;
  /** Pulls one platform's daily metrics for [from, to] (dates inclusive); must honour `signal`. */
  readonly fetchMetrics: (input: {
    readonly platform: MetricsSyncData['platforms'][number];
    readonly from: string;
    readonly to: string;
    readonly signal: AbortSignal;
  }) => Promise<readonly MetricsInput[]>;
  readonly now?: () => Date;
}

/** Pulls recent metrics from each platform and upserts them (source = platform) once per run key. */
export async function processMetricsSync(job: ProcessorJob, deps: MetricsSyncDeps): Promise<ProcessorResult> {
  const data: MetricsSyncData = parseJobData(JOB_CONTRACTS.metricsSync, job.data);
  const done = await alreadyApplied(deps.db, job.runKey);
  if (done !== undefined) return done;
  const now = (deps.now ?? (() => new Date()))();
  const from = isoDate(new Date(now.getTime() - data.lookbackDays * DAY_MS));
  const to = isoDate(now);
  const rows: MetricsInput[] = [];
  const perPlatform: Record<string, number> = {};
  for (const platform of data.platforms) {
    throwIfAborted(job.signal);
    const fetched = await deps.fetchMetrics({ platform, from, to, signal: job.signal });
    perPlatform[platform] = fetched.length;
    rows.push(...fetched.map((row) => ({ ...row, source: platform })));
  }
  return applyOnce(deps.db, job, { from, to, rows: rows.length, perPlatform }, async (tx) => {
    await upsertMetrics(tx, rows);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Wiring

/** Everything the three processors need. */
export type MarketingWorkerDeps = PersonaDiscoveryDeps & BudgetOptimisationDeps & MetricsSyncDeps;

/**
 * Upserts the three marketing schedules (cron patterns in `tz`) and starts their processors on `runner`.
 * Safe to call from several replicas: schedules are upserted by id, and run keys keep effects single.
 */
export async function startMarketingJobs(
  runner: JobRunner,
  deps: MarketingWorkerDeps,
  options: { readonly tz?: string; readonly concurrency?: number } = {},
): Promise<void> {
  for (const schedule of marketingSchedules(options.tz)) {
    await runner.schedule(schedule.contract.queue, schedule.id, schedule.repeat, {
      name: schedule.contract.name,
      data: schedule.data,
      retry: schedule.contract.retry,
    });
  }
  const concurrency = options.concurrency ?? 1;
  await runner.process(JOB_CONTRACTS.personaDiscovery.queue, (job) => processPersonaDiscovery(job, deps), {
    concurrency,
  });
  await runner.process(
    JOB_CONTRACTS.budgetOptimisation.queue,
    (job) => processBudgetOptimisation(job, deps),
    {
      concurrency,
    },
  );
  await runner.process(JOB_CONTRACTS.metricsSync.queue, (job) => processMetricsSync(job, deps), {
    concurrency,
  });
}
