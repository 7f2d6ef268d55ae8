// Composition root of the marketing spoke, the only place that reads its environment: opens the model in
// the background, the marketing database (PostgreSQL or embedded PGlite) with its migrations, and serves the
// marketing skills and /marketing routes through the shared spoke runtime. Ctrl-C closes everything in order.
import { join, resolve } from 'node:path';
import process from 'node:process';
import { openDatabase, migrate } from '../shared/db.js';
import { createDeferredLlm, type DeferredLlm } from '../shared/deferred_llm.js';
import { REPO_ROOT, spokeCodePaths } from '../shared/layout.js';
import { openLlm } from '../shared/llm.js';
import { createLogger } from '../shared/log.js';
import { runSpokeProcess } from '../shared/spoke_runtime.js';
import { parseCampaignRecords } from './campaign_rows.js';
import { loadMarketingConfig } from './config.js';
import { createCampaignRoiSkill } from './roi_skill.js';
import { selectMetricsByPeriod } from './store.js';

const config = loadMarketingConfig(process.env);
const log = createLogger('spoke_marketing', config.LOG_LEVEL);
const stateDir = resolve(config.AGENTHUB_STATE_DIR);

const modelSetting = config.MODEL_PATH === undefined || config.MODEL_PATH === '' ? null : config.MODEL_PATH;
const llm: DeferredLlm | null =
  modelSetting === null
    ? null
    : createDeferredLlm(
        openLlm({
          model: modelSetting,
          cacheDir: config.MODEL_CACHE_DIR ?? join(stateDir, 'models'),
          maxMemoryMb: config.AGENT_MAX_MEMORY_MB,
          maxContextSize: config.LLM_MAX_CONTEXT,
          gpu: config.LLM_GPU === 'false' ? false : config.LLM_GPU,
          log,
          ...(config.LLM_THREADS === undefined ? {} : { threads: config.LLM_THREADS }),
        }),
        modelSetting,
      );

// The database opens while the spoke already serves and gets attested (an embedded PGlite takes seconds to
// start); only the skills that read stored data wait for it. A database that cannot open ends the process.
const databaseReady = (async () => {
  const db = await openDatabase({
    service: 'marketing',
    log,
    ...(config.DATABASE_URL === undefined
      ? { dataDir: join(stateDir, 'data', 'marketing') }
      : { databaseUrl: config.DATABASE_URL }),
  });
  const migrations = await migrate(db, resolve(REPO_ROOT, 'spoke_marketing', 'migrations'), {
    skipVector: !db.hasVector,
  });
  log.info(
    { applied: migrations.applied, skipped: migrations.skipped, database: db.kind },
    'marketing database ready',
  );
  return db;
})();
databaseReady.catch((error: unknown) => {
  log.fatal({ err: error }, 'the marketing database could not be opened');
  log.flush();
  process.exit(1);
});

/** Stored metrics of a period, in the row shape the ROI computation validates. */
async function loadStoredRows(period: { from: string; to: string }) {
  const stored = await selectMetricsByPeriod(await databaseReady, period);
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
      ...(llm === null ? { llmUnavailableReason: 'no model is configured (MODEL_PATH is unset)' } : {}),
    }),
  ],
  env: process.env,
  codePaths: spokeCodePaths('marketing'),
  modelPath: modelSetting,
  readiness: () =>
    llm?.readiness() ?? { ready: true, reason: 'no model configured: answers carry no narrative' },
  handleSignals: false,
});

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  await spoke.close({ graceMs: 10_000 });
  await llm?.close();
  await (await databaseReady).close();
  log.info('stopped');
  log.flush();
  process.exit(0);
}
process.once('SIGINT', (signal) => void shutdown(signal));
process.once('SIGTERM', (signal) => void shutdown(signal));
