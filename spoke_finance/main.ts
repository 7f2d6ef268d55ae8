// Composition root of the finance spoke, the only place that reads its environment: opens its own model in
// the background and serves the `roi-review` skill, which asks marketing through the hub and computes the
// financial decisions itself. Ctrl-C closes everything in order.
import { join, resolve } from 'node:path';
import process from 'node:process';
import { openSpokeLlm } from '../shared/deferred_llm.js';
import { spokeCodePaths } from '../shared/layout.js';
import { createLogger } from '../shared/log.js';
import { closeOnSignals } from '../shared/shutdown.js';
import { runSpokeProcess } from '../shared/spoke_runtime.js';
import { loadFinanceConfig } from './config.js';
import { createRoiReviewSkill } from './roi_review_skill.js';

const config = loadFinanceConfig(process.env);
const log = createLogger('spoke_finance', config.LOG_LEVEL);
const stateDir = resolve(config.AGENTHUB_STATE_DIR);

const modelSetting = config.MODEL_PATH === undefined || config.MODEL_PATH === '' ? null : config.MODEL_PATH;
const llm = openSpokeLlm({
  modelPath: config.MODEL_PATH,
  cacheDir: config.MODEL_CACHE_DIR ?? join(stateDir, 'models'),
  maxMemoryMb: config.AGENT_MAX_MEMORY_MB,
  maxContextSize: config.LLM_MAX_CONTEXT,
  threads: config.LLM_THREADS,
  log,
});

const spoke = await runSpokeProcess({
  name: 'finance',
  description:
    'Finance analyst: reviews marketing ROI for financial decisions — payback period, CAC, LTV:CAC, NPV of marketing spend and budget reallocation — asking the marketing agent for the campaign analysis.',
  version: '0.1.0',
  skills: [
    createRoiReviewSkill({
      llm,
      discountRateAnnual: config.FINANCE_DISCOUNT_RATE_ANNUAL,
      reallocationMaxShift: config.FINANCE_REALLOCATION_MAX_SHIFT,
      defaultMonthlyChurn: config.FINANCE_DEFAULT_MONTHLY_CHURN ?? null,
      grossMarginFallback: config.FINANCE_GROSS_MARGIN_FALLBACK ?? null,
      peerTimeoutMs: config.FINANCE_MARKETING_TIMEOUT_MS,
      ...(llm === null
        ? { llmUnavailableReason: 'no model is configured for finance (MODEL_PATH is unset)' }
        : {}),
    }),
  ],
  env: process.env,
  codePaths: spokeCodePaths('finance'),
  modelPath: modelSetting,
  readiness: () =>
    llm?.readiness() ?? { ready: true, reason: 'no model configured: answers carry no narrative' },
  handleSignals: false,
});

closeOnSignals(log, async () => {
  await spoke.close({ graceMs: 10_000 });
  await llm?.close();
});
