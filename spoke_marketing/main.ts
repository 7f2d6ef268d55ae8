// Composition root of the marketing spoke, the only place that reads its environment: opens the model in
// the background, the marketing toolkit (database, platform adapters, retrieval) and the scheduled jobs, and
// serves the ROI skill, the toolkit skills and the /marketing routes through the shared spoke runtime.
// The spoke listens and gets attested at once; what needs the database waits for it. Ctrl-C closes in order.
import { join, resolve } from 'node:path';
import process from 'node:process';
import { openSpokeLlm } from '../shared/deferred_llm.js';
import { createJobRunner, type JobRunner } from '../shared/jobs.js';
import { MARKETING_QUEUES } from '../shared/job_contracts.js';
import { spokeCodePaths } from '../shared/layout.js';
import { createLogger } from '../shared/log.js';
import { closeOnSignals } from '../shared/shutdown.js';
import { runSpokeProcess } from '../shared/spoke_runtime.js';
import { parseCampaignRecords } from './campaign_rows.js';
import { loadMarketingConfig } from './config.js';
import { jobsDataDir, marketingDataDir } from './data_commands.js';
import { createCampaignRoiSkill } from './roi_skill.js';
import { createMarketingRouter } from './routes.js';
import { selectLatestMetricsDate, selectMetricsByPeriod } from './store.js';
import { openMarketingToolkit, type MarketingOperations } from './toolkit.js';
import { createMarketingSkills } from './toolkit_skills.js';
import { startMarketingJobs } from './workers.js';

const config = loadMarketingConfig(process.env);
const log = createLogger('spoke_marketing', config.LOG_LEVEL);
const stateDir = resolve(config.AGENTHUB_STATE_DIR);

const modelSetting = config.MODEL_PATH === undefined || config.MODEL_PATH === '' ? null : config.MODEL_PATH;
const llm = openSpokeLlm({
  modelPath: config.MODEL_PATH,
  cacheDir: config.MODEL_CACHE_DIR ?? join(stateDir, 'models'),
  maxMemoryMb: config.AGENT_MAX_MEMORY_MB,
  maxContextSize: config.LLM_MAX_CONTEXT,
  threads: config.LLM_THREADS,
  gpu: config.LLM_GPU === 'false' ? false : config.LLM_GPU,
  log,
});

// The toolkit (database with migrations, upload log, dry-run platform adapters, retrieval) opens while the
// spoke already serves and is attested: an embedded PGlite blocks for seconds while it starts. A toolkit
// that cannot open ends the process, so `agenthub up` reports it.
const toolkitReady = openMarketingToolkit({
  dataDir: marketingDataDir(stateDir),
  llm,
  log,
  ...(config.DATABASE_URL === undefined ? {} : { databaseUrl: config.DATABASE_URL }),
});
toolkitReady.then(
  (toolkit) => log.info({ database: toolkit.db.kind }, 'marketing toolkit ready'),
  (error: unknown) => {
    log.fatal({ err: error }, 'the marketing toolkit could not be opened');
    log.flush();
    process.exit(1);
  },
);

/** The toolkit's operations, each waiting for the toolkit to be open before it runs. */
const operations = new Proxy({} as MarketingOperations, {
  get(_target, name) {
    return async (...args: unknown[]): Promise<unknown> => {
      const { operations: ready } = await toolkitReady;
      const operation = ready[name as keyof MarketingOperations] as (
        ...inputs: unknown[]
      ) => Promise<unknown>;
      return operation.apply(ready, args);
    };
  },
});

/** Stored metrics of a period, in the row shape the ROI computation validates. */
async function loadStoredRows(period: { from: string; to: string }) {
  const { db } = await toolkitReady;
  const stored = await selectMetricsByPeriod(db, period);
  return parseCampaignRecords(
    stored.map((row) => ({
      campaign: row.campaign,
      channel: row.channel,
      date: row.date,
      spend: row.spend,
      impressions: row.impressions,
      clicks: row.clicks,
      leads: row.leads,
      conversions: row.conversions,
      revenue: row.revenue,
      new_customers: row.newCustomers,
      margin: row.margin,
      cost_of_goods: row.costOfGoods,
    })),
    { source: 'stored metrics' },
  );
}

const spoke = await runSpokeProcess({
  name: 'marketing',
  description:
    'Marketing analyst for real-estate campaigns: campaign ROI and channel performance with computed metrics and a grounded narrative, personas, compliant creatives, budgets, attribution.',
  version: '0.1.0',
  skills: [
    createCampaignRoiSkill({
      llm,
      loadStoredRows,
      latestStoredDate: async () => selectLatestMetricsDate((await toolkitReady).db),
      ...(llm === null ? { llmUnavailableReason: 'no model is configured (MODEL_PATH is unset)' } : {}),
    }),
    ...createMarketingSkills(operations),
  ],
  env: process.env,
  codePaths: spokeCodePaths('marketing'),
  modelPath: modelSetting,
  readiness: () =>
    llm?.readiness() ?? { ready: true, reason: 'no model configured: answers carry no narrative' },
  extraRoutes: (app) => {
    app.use('/marketing', createMarketingRouter(operations, log.child({ module: 'routes' })));
  },
  handleSignals: false,
});

/** The scheduled jobs: Redis when REDIS_URL is set, else BullMQ's PostgreSQL backend (server or embedded). */
const jobsReady: Promise<JobRunner | null> = config.JOBS_ENABLED
  ? toolkitReady.then(async (toolkit) => {
      const runner = await createJobRunner({
        queues: MARKETING_QUEUES,
        log: log.child({ module: 'jobs' }),
        ...(config.REDIS_URL !== undefined
          ? { redisUrl: config.REDIS_URL }
          : config.DATABASE_URL !== undefined
            ? { databaseUrl: config.DATABASE_URL }
            : { dataDir: jobsDataDir(stateDir) }),
      });
      await startMarketingJobs(runner, toolkit.jobHandlers.workerDeps, { tz: config.JOBS_TZ });
      log.info({ backend: runner.backend, tz: config.JOBS_TZ }, 'marketing jobs scheduled');
      return runner;
    })
  : Promise.resolve(null);
jobsReady.catch((error: unknown) => log.error({ err: error }, 'the marketing jobs could not be started'));

closeOnSignals(log, async () => {
  await spoke.close({ graceMs: 10_000 });
  await (await jobsReady.catch(() => null))?.close();
  await (await toolkitReady).close();
  await llm?.close();
});
