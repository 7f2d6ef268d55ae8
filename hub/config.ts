// The hub's configuration: one zod schema over the environment, every field with its default and unit.
// Only hub/main.ts calls loadHubConfig(process.env); everything else receives the frozen object.
import { z } from 'zod';
import { loadConfig } from '../shared/config.js';

const positiveMs = (defaultValue: number) =>
  z.coerce.number().int().min(1).max(86_400_000).default(defaultValue);
const optionalPath = z.string().min(1).optional();

/** The hub's environment schema. Names are the environment variables; values are parsed and defaulted. */
export const HubConfigSchema = z
  .object({
    /** Interface the HTTP server binds to. @defaultValue `127.0.0.1` */
    HUB_HOST: z.string().min(1).default('127.0.0.1'),
    /** TCP port of the hub's HTTP server (0 = any free port). @defaultValue `8080` */
    HUB_PORT: z.coerce.number().int().min(0).max(65_535).default(8080),
    /** Base URL the hub advertises in its agent card. @defaultValue `http://<HUB_HOST>:<port>` */
    HUB_PUBLIC_URL: z.string().url().optional(),
    /** Directory with keys, trust store and reference values (local enrolment). @defaultValue `.agenthub` */
    AGENTHUB_STATE_DIR: z.string().min(1).default('.agenthub'),
    /** Hub private signing key (JWK file). @defaultValue the file created by local enrolment in the state dir */
    HUB_KEY_FILE: optionalPath,
    /** Trust store: per spoke its JWKS, host, API and attestation ports. @defaultValue from local enrolment */
    TRUST_STORE_FILE: optionalPath,
    /** Reference values (allow-list) file; its SHA-256 is the policy id. @defaultValue from local enrolment */
    REFERENCE_VALUES_FILE: optionalPath,
    /** API key callers present as `Authorization: Bearer`. Takes precedence over API_KEY_FILE. */
    API_KEY: z.string().min(16).optional(),
    /** File holding the API key. @defaultValue the key created by local enrolment */
    API_KEY_FILE: optionalPath,
    /** Re-attestation period per replica, in ms (also run on every (re)connect). @defaultValue `60000` */
    REATTEST_INTERVAL_MS: positiveMs(60_000),
    /** An affirming result older than this stops routing, in ms (ATTESTATION.md §5.7). @defaultValue `90000` */
    ATTESTATION_MAX_AGE_MS: positiveMs(90_000),
    /** Time allowed for a spoke's evidence endpoint to answer, in ms. @defaultValue `5000` */
    EVIDENCE_TIMEOUT_MS: positiveMs(5_000),
    /** WebSocket ping period on each link, in ms; a link without a pong for one period is terminated. @defaultValue `20000` */
    PING_INTERVAL_MS: positiveMs(20_000),
    /** First reconnect delay after a link drops, in ms (doubles per failure, full jitter). @defaultValue `250` */
    RECONNECT_MIN_MS: positiveMs(250),
    /** Largest reconnect delay, in ms. @defaultValue `10000` */
    RECONNECT_MAX_MS: positiveMs(10_000),
    /** How often spoke host names are re-resolved to find replicas, in ms. @defaultValue `30000` */
    DNS_REFRESH_MS: positiveMs(30_000),
    /** Requests waiting per spoke when every replica is at capacity; more → QUEUE_FULL. @defaultValue `64` */
    QUEUE_LIMIT: z.coerce.number().int().min(0).max(100_000).default(64),
    /** Concurrent requests per replica until its heartbeat declares its capacity. @defaultValue `4` */
    DEFAULT_REPLICA_CAPACITY: z.coerce.number().int().min(1).max(10_000).default(4),
    /** Total deadline of a routed request when the caller gives none, in ms. @defaultValue `120000` */
    DEFAULT_DEADLINE_MS: positiveMs(120_000),
    /** Longest silence (no event from the spoke) before DEADLINE_EXCEEDED, in ms. @defaultValue `60000` */
    IDLE_TIMEOUT_MS: positiveMs(60_000),
    /** How long a messageId is remembered for dedupe, in ms. @defaultValue `600000` */
    DEDUPE_TTL_MS: positiveMs(600_000),
    /** Events kept per task for replay (SubscribeToTask afterSeq, Last-Event-ID). @defaultValue `2000` */
    TASK_EVENT_LIMIT: z.coerce.number().int().min(16).max(1_000_000).default(2_000),
    /** Hub tasks kept in memory (with their event logs); the oldest finished ones are dropped first. @defaultValue `10000` */
    TASK_LIMIT: z.coerce.number().int().min(100).max(1_000_000).default(10_000),
    /** Grace period for in-flight requests on shutdown before they fail, in ms. @defaultValue `5000` */
    SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
    /** Comma-separated exact origins allowed to call the chat endpoint from a browser. @defaultValue none */
    CHAT_ALLOWED_ORIGINS: z
      .string()
      .default('')
      .transform((value) =>
        value
          .split(',')
          .map((origin) => origin.trim())
          .filter((origin) => origin.length > 0),
      ),
    /** PostgreSQL URL of the hub's task store. @defaultValue unset (embedded PGlite under `<AGENTHUB_STATE_DIR>/data/hub` when the store is `database`) */
    DATABASE_URL: z.string().url().optional(),
    /**
     * Where tasks, event logs, conversations and the attestation audit live: `database` (they survive a restart;
     * `agenthub up` sets it) or `memory`. @defaultValue `database` when DATABASE_URL is set, else `memory`
     */
    HUB_TASK_STORE: z.enum(['memory', 'database']).optional(),
    /** pino log level. @defaultValue `info` */
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .refine((config) => config.RECONNECT_MIN_MS <= config.RECONNECT_MAX_MS, {
    message: 'RECONNECT_MIN_MS must not exceed RECONNECT_MAX_MS',
    path: ['RECONNECT_MIN_MS'],
  });

/** The parsed, frozen hub configuration. */
export type HubConfig = z.infer<typeof HubConfigSchema>;

/** Parses the environment; throws CONFIG_INVALID listing every bad variable. */
export function loadHubConfig(env: Record<string, string | undefined>): HubConfig {
  return loadConfig(HubConfigSchema, env);
}

/** The configuration with every default applied, for tests and embedders that override a few fields. */
export function hubConfigWith(overrides: Record<string, string | undefined> = {}): HubConfig {
  return loadHubConfig(overrides);
}
