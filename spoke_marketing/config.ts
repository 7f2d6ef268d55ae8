// The marketing spoke's own settings (on top of the runtime's SPOKE_* variables in shared/spoke_runtime.ts):
// model loading, storage and jobs. Only main.ts parses them from the environment.
import { z } from 'zod';
import { loadConfig } from '../shared/config.js';

const positiveInt = z.coerce.number().int().positive();

/** The marketing spoke's environment schema. */
export const MarketingConfigSchema = z.object({
  /** The GGUF model file (or `hf:` URI, resolved by `agenthub up`); unset or empty → no narrative. @defaultValue none */
  MODEL_PATH: z.string().optional(),
  /** Directory downloaded models are cached in. @defaultValue `<AGENTHUB_STATE_DIR>/models` */
  MODEL_CACHE_DIR: z.string().min(1).optional(),
  /** LLM memory budget in MB, enforced before loading (weights + KV cache + overhead). @defaultValue `7000` */
  AGENT_MAX_MEMORY_MB: positiveInt.default(7000),
  /** Largest context size in tokens the budget may choose. @defaultValue `8192` */
  LLM_MAX_CONTEXT: positiveInt.default(8192),
  /** CPU threads for the model. @defaultValue 1 on hosts with ≤ 2 cores, else min(4, cores) */
  LLM_THREADS: positiveInt.optional(),
  /** GPU backend: `false`, `auto`, `cuda`, `vulkan` or `metal`. @defaultValue `false` */
  LLM_GPU: z.enum(['false', 'auto', 'cuda', 'vulkan', 'metal']).default('false'),
  /** PostgreSQL URL of the marketing data; unset → embedded PGlite under the state directory. @defaultValue embedded */
  DATABASE_URL: z.string().url().optional(),
  /** Redis URL for the BullMQ jobs; unset → BullMQ's PostgreSQL backend. @defaultValue PostgreSQL backend */
  REDIS_URL: z.string().url().optional(),
  /** Run the scheduled jobs (persona discovery, budget optimisation, metrics sync) in this process. @defaultValue `true` */
  JOBS_ENABLED: z
    .enum(['true', 'false'])
    .default('true')
    .transform((value) => value === 'true'),
  /** Time zone of the job schedules. @defaultValue `UTC` */
  JOBS_TZ: z.string().min(1).default('UTC'),
  /** State directory (embedded databases live in `<dir>/data`). @defaultValue `.agenthub` */
  AGENTHUB_STATE_DIR: z.string().min(1).default('.agenthub'),
  /** pino log level. @defaultValue `info` */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** The parsed marketing settings. */
export type MarketingConfig = z.infer<typeof MarketingConfigSchema>;

/** Parses the environment; CONFIG_INVALID lists every bad variable. */
export function loadMarketingConfig(env: Record<string, string | undefined>): MarketingConfig {
  return loadConfig(MarketingConfigSchema, env);
}
