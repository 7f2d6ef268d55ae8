// The finance spoke's own settings (on top of the runtime's SPOKE_* variables in shared/spoke_runtime.ts):
// its model and the assumptions of its financial calculations. Only main.ts parses them.
import { z } from 'zod';
import { loadConfig } from '../shared/config.js';

const positiveInt = z.coerce.number().int().positive();
const fraction = z.coerce.number().min(0).max(1);

/** The finance spoke's environment schema. */
export const FinanceConfigSchema = z.object({
  /** The finance spoke's own GGUF model (its narrative); unset or empty → numbers without narrative. @defaultValue none */
  MODEL_PATH: z.string().optional(),
  /** Directory downloaded models are cached in. @defaultValue `<AGENTHUB_STATE_DIR>/models` */
  MODEL_CACHE_DIR: z.string().min(1).optional(),
  /** LLM memory budget in MB, enforced before loading. @defaultValue `7000` */
  AGENT_MAX_MEMORY_MB: positiveInt.default(7000),
  /** Largest context size in tokens. @defaultValue `8192` */
  LLM_MAX_CONTEXT: positiveInt.default(8192),
  /** CPU threads for the model. @defaultValue 1 on hosts with ≤ 2 cores */
  LLM_THREADS: positiveInt.optional(),
  /** Annual discount rate for NPV and discounted LTV (0.1 = 10 %). @defaultValue `0.1` */
  FINANCE_DISCOUNT_RATE_ANNUAL: fraction.default(0.1),
  /** Largest share of one channel's spend a reallocation may move (0.2 = ±20 %). @defaultValue `0.2` */
  FINANCE_REALLOCATION_MAX_SHIFT: fraction.default(0.2),
  /** Monthly churn assumed when a request gives none; unset = unknown (no churn-based payback). @defaultValue none */
  FINANCE_DEFAULT_MONTHLY_CHURN: fraction.optional(),
  /** Gross margin assumed when marketing's rows carry none; unset = do not assume. @defaultValue none */
  FINANCE_GROSS_MARGIN_FALLBACK: fraction.optional(),
  /** How long finance waits for marketing's analysis, in ms. @defaultValue `300000` */
  FINANCE_MARKETING_TIMEOUT_MS: positiveInt.default(300_000),
  /** State directory. @defaultValue `.agenthub` */
  AGENTHUB_STATE_DIR: z.string().min(1).default('.agenthub'),
  /** pino log level. @defaultValue `info` */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** The parsed finance settings. */
export type FinanceConfig = z.infer<typeof FinanceConfigSchema>;

/** Parses the environment; CONFIG_INVALID lists every bad variable. */
export function loadFinanceConfig(env: Record<string, string | undefined>): FinanceConfig {
  return loadConfig(FinanceConfigSchema, env);
}
