// The marketing toolkit's one entry point: createMarketingToolkit(deps) gives the A2A skills, the /marketing
// routes, the lifecycle and the scheduled-job handlers, all on one set of operations whose inputs are parsed
// here (zod, snake_case fields, 400 naming the field); openMarketingToolkit builds the deps from settings.
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type express from 'express';
import { z } from 'zod';
import { migrate, openDatabase, type Database } from '../shared/db.js';
import { AppError, isAppError } from '../shared/errors.js';
import { REPO_ROOT } from '../shared/layout.js';
import type { LlmClient } from '../shared/llm_client.js';
import type { Logger } from '../shared/log.js';
import type { SkillDefinition } from '../shared/skill.js';
import {
  compareProportions,
  sampleSizePerArm,
  SAMPLE_SIZE_FORMULAS,
  type SampleSizeFormula,
} from './abtest.js';
import {
  ATTRIBUTION_MODELS,
  attribute,
  parseJourneyCsv,
  parsePathFile,
  type AttributionModel,
  type ConversionPath,
} from './attribution.js';
import { optimizeBudget, type BudgetArm } from './budget.js';
import {
  applyLlmReview,
  checkCompliance,
  EXTRA_CLASSES,
  MAX_COMPLIANCE_TEXT_LENGTH,
  reviewWithLlm,
} from './compliance.js';
import type { ConversionUploadLog } from './conversions.js';
import {
  CREATIVE_FORMATS,
  generateCreatives,
  MAX_VARIANTS,
  type CreativeComplianceRecord,
  type GuidelineSearch,
} from './creatives.js';
import {
  bgNbdConditionalExpectedPurchases,
  bgNbdProbabilityAlive,
  customerLifetimeValue,
  discountedLtv,
  fitBgNbd,
  fitGammaGamma,
  gammaGammaExpectedAverageValue,
  simpleLtv,
} from './ltv.js';
import {
  armsFromMetrics,
  countRecentLeads,
  createJobHandlers,
  createSqlConversionUploadLog,
  discoverPersonasStep,
  journeyKey,
  journeyTouches,
  listCampaigns,
  MARK_LEAD_CONVERTED,
  INSERT_TOUCHPOINT,
  pendingConversionForLead,
  PLATFORM_KEYS,
  platformRequests,
  runCycle,
  SELECT_LEAD,
  uploadConversions,
  type CycleOptions,
  type CycleReport,
  type DeploymentSettings,
  type MarketingEngineDeps,
  type MarketingPlatforms,
  type PersonaDiscoverer,
  type PlatformKey,
} from './orchestrator.js';
import { discoverPersonas, URGENCY_LEVELS, type LeadFeatures, type Urgency } from './personas.js';
import { createGooglePlatform } from './platforms/google.js';
import { createMetaPlatform } from './platforms/meta.js';
import { createTikTokPlatform } from './platforms/tiktok.js';
import type { PlatformMode } from './platforms/http.js';
import { createGuidelineRetriever, LlmEmbeddings } from './retrieval.js';
import { createMarketingRouter } from './routes.js';
import { selectActivePersonas, selectCreatives, selectMetricsByPeriod, type LeadRow } from './store.js';
import { buildJourneys, DEFAULT_LOOKBACK, inferChannel, parseLandingUrl } from './tracking.js';
import { createMarketingSkills } from './toolkit_skills.js';

// ---------------------------------------------------------------------------------------------------------
// Dependencies and the entry point

/** What the toolkit is built on. */
export interface MarketingToolkitDeps {
  /** The marketing database, migrations applied. */
  readonly db: Database;
  /** Null when no model is configured: copy generation then answers MODEL_NOT_FOUND, the rest still works. */
  readonly llm: LlmClient | null;
  /** Brand-guideline search (retrieval.ts); without it copy is written without guidelines (and says so). */
  readonly retrieval?: GuidelineSearch | null;
  /** Ad-platform adapters, dry-run unless built live. */
  readonly platforms: MarketingPlatforms;
  /** The idempotent upload log; {@link createSqlConversionUploadLog} in production. */
  readonly uploadLog: ConversionUploadLog;
  /** Seed of the budget optimiser's scheduled runs. @defaultValue 1 */
  readonly seed?: number;
  readonly log: Logger;
  readonly now?: () => Date;
  /** Deployment settings (landing page, page/identity ids…). @defaultValue {@link DEFAULT_DEPLOYMENT} */
  readonly deployment?: Partial<DeploymentSettings>;
  /** Persona clustering; defaults to personas.ts on the leads' attributes ({@link leadFeatures}). */
  readonly discoverPersonas?: PersonaDiscoverer;
}

/** Deployment defaults: US housing campaigns of $50/day pointing at the brokerage's site. */
export const DEFAULT_DEPLOYMENT: DeploymentSettings = {
  countries: ['US'],
  currency: 'USD',
  linkUrl: 'https://example.com/listings',
  campaignDailyBudgetMinor: 5000,
};

/** The assembled toolkit. */
export interface MarketingToolkit {
  /** The A2A skills (persona-discovery, creative-generation, …, marketing-cycle). */
  readonly skills: SkillDefinition[];
  /** Mounts `/marketing/*` on the spoke's API app (pass to startSpoke's `extraRoutes`). */
  mountRoutes(app: express.Express): void;
  /** Runs the lifecycle once. */
  runCycle(options: CycleOptions, signal: AbortSignal): Promise<CycleReport>;
  /** Processors of the scheduled jobs (each `(job) => result`), on the same step functions as the cycle. */
  readonly jobHandlers: ReturnType<typeof createJobHandlers>;
  /** The operations behind routes and skills (for tests and other callers). */
  readonly operations: MarketingOperations;
}

/** Builds the toolkit. main.ts: `skills: toolkit.skills`, `extraRoutes: toolkit.mountRoutes`, jobs via `startMarketingJobs(runner, toolkit.jobHandlers.workerDeps)`. */
export function createMarketingToolkit(deps: MarketingToolkitDeps): MarketingToolkit {
  const engine: MarketingEngineDeps = {
    db: deps.db,
    llm: deps.llm,
    retrieval: deps.retrieval ?? null,
    platforms: deps.platforms,
    uploadLog: deps.uploadLog,
    discoverPersonas: deps.discoverPersonas ?? createLeadPersonaDiscoverer(deps.llm, deps.log),
    deployment: { ...DEFAULT_DEPLOYMENT, ...deps.deployment },
    ...(deps.seed === undefined ? {} : { seed: deps.seed }),
    log: deps.log.child({ module: 'marketing-toolkit' }),
    now: deps.now ?? (() => new Date()),
  };
  const operations = createMarketingOperations(engine);
  const router = createMarketingRouter(operations, engine.log);
  return {
    skills: createMarketingSkills(operations),
    mountRoutes: (app) => {
      app.use('/marketing', router);
    },
    runCycle: (options, signal) => runCycle(engine, options, signal),
    jobHandlers: createJobHandlers(engine),
    operations,
  };
}

/** Settings of {@link openMarketingToolkit}. */
export interface OpenMarketingToolkitOptions {
  /** PostgreSQL URL; unset → embedded PGlite in `dataDir`. */
  readonly databaseUrl?: string;
  /** Embedded data directory, normally `<state>/data/marketing`. */
  readonly dataDir: string;
  readonly llm: LlmClient | null;
  /** @defaultValue 'dry-run' */
  readonly platformMode?: PlatformMode;
  /** Ad-account ids and tokens; ids default to placeholders that only dry-run accepts sensibly. */
  readonly credentials?: {
    readonly metaAdAccountId?: string;
    readonly metaAccessToken?: string;
    readonly metaDatasetId?: string;
    readonly googleCustomerId?: string;
    readonly googleDeveloperToken?: string;
    readonly googleAccessToken?: string;
    readonly googleConversionActionId?: string;
    readonly googleTimeZone?: string;
    readonly tiktokAdvertiserId?: string;
    readonly tiktokAccessToken?: string;
    readonly tiktokEventSourceId?: string;
  };
  readonly deployment?: Partial<DeploymentSettings>;
  readonly seed?: number;
  readonly log: Logger;
}

/** Placeholder account ids used in dry-run when none are configured (requests are only recorded). */
export const DRY_RUN_ACCOUNTS = {
  metaAdAccountId: '1000000000',
  metaDatasetId: '2000000000',
  googleCustomerId: '1234567890',
  googleConversionActionId: '3000000000',
  googleTimeZone: 'UTC',
  tiktokAdvertiserId: '4000000000',
  tiktokEventSourceId: 'DRYRUNPIXEL',
} as const;

/**
 * Opens the marketing database (migrations applied), the SQL upload log, the platform adapters (dry-run
 * unless `platformMode` is live, which needs real credentials) and brand-guideline retrieval when a model
 * and pgvector are present, and builds the toolkit. `close()` closes the database (not the model).
 */
export async function openMarketingToolkit(
  options: OpenMarketingToolkitOptions,
): Promise<MarketingToolkit & { readonly db: Database; close(): Promise<void> }> {
  const db = await openDatabase({
    service: 'marketing',
    log: options.log,
    ...(options.databaseUrl === undefined || options.databaseUrl === ''
      ? { dataDir: options.dataDir }
      : { databaseUrl: options.databaseUrl }),
  });
  try {
    await migrate(db, resolve(REPO_ROOT, 'spoke_marketing', 'migrations'), { skipVector: !db.hasVector });
    const uploadLog = createSqlConversionUploadLog(db);
    const mode = options.platformMode ?? 'dry-run';
    const credentials = options.credentials ?? {};
    const live = mode === 'live';
    const pick = (value: string | undefined, placeholder: string): string =>
      value ?? (live ? '' : placeholder);
    const platformDeps = { mode, uploadLog };
    const platforms: MarketingPlatforms = {
      meta: createMetaPlatform(
        {
          adAccountId: pick(credentials.metaAdAccountId, DRY_RUN_ACCOUNTS.metaAdAccountId),
          datasetId: pick(credentials.metaDatasetId, DRY_RUN_ACCOUNTS.metaDatasetId),
          ...(credentials.metaAccessToken === undefined ? {} : { accessToken: credentials.metaAccessToken }),
        },
        platformDeps,
      ),
      google: createGooglePlatform(
        {
          customerId: pick(credentials.googleCustomerId, DRY_RUN_ACCOUNTS.googleCustomerId),
          conversionActionId: pick(
            credentials.googleConversionActionId,
            DRY_RUN_ACCOUNTS.googleConversionActionId,
          ),
          timeZone: credentials.googleTimeZone ?? DRY_RUN_ACCOUNTS.googleTimeZone,
          ...(credentials.googleDeveloperToken === undefined
            ? {}
            : { developerToken: credentials.googleDeveloperToken }),
          ...(credentials.googleAccessToken === undefined
            ? {}
            : { accessToken: credentials.googleAccessToken }),
        },
        platformDeps,
      ),
      tiktok: createTikTokPlatform(
        {
          advertiserId: pick(credentials.tiktokAdvertiserId, DRY_RUN_ACCOUNTS.tiktokAdvertiserId),
          eventSourceId: pick(credentials.tiktokEventSourceId, DRY_RUN_ACCOUNTS.tiktokEventSourceId),
          ...(credentials.tiktokAccessToken === undefined
            ? {}
            : { accessToken: credentials.tiktokAccessToken }),
        },
        platformDeps,
      ),
    };
    const retrieval =
      options.llm !== null && db.hasVector
        ? createGuidelineRetriever({
            db,
            embeddings: new LlmEmbeddings(options.llm),
            modelName: options.llm.modelName,
            log: options.log,
          })
        : null;
    const toolkit = createMarketingToolkit({
      db,
      llm: options.llm,
      retrieval,
      platforms,
      uploadLog,
      log: options.log,
      ...(options.seed === undefined ? {} : { seed: options.seed }),
      ...(options.deployment === undefined ? {} : { deployment: options.deployment }),
    });
    return { ...toolkit, db, close: () => db.close() };
  } catch (error) {
    await db.close();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Persona features from stored leads

const BUDGET_KEYS = ['budget_minor', 'budgetMinor'] as const;
const BUDGET_MAJOR_KEYS = ['budget', 'max_budget', 'price_max'] as const;

/**
 * Clustering features of a stored lead, read from its attributes: budget (`budget_minor`, or `budget` /
 * `max_budget` / `price_max` in major units), `location` (or `city`, else the lead's campaign market is
 * unknown), optional `region`, `urgency` (low/medium/high/immediate) and `property_type`. A lead missing
 * any of budget, location, urgency or property type is left out (reported, never guessed).
 */
export function leadFeatures(lead: LeadRow): LeadFeatures | string {
  const attributes = lead.attributes;
  const numberOf = (value: unknown): number | undefined => {
    const number = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
    return Number.isFinite(number) && number > 0 ? number : undefined;
  };
  let budgetMinor: number | undefined;
  for (const key of BUDGET_KEYS) budgetMinor ??= numberOf(attributes[key]);
  if (budgetMinor === undefined) {
    for (const key of BUDGET_MAJOR_KEYS) {
      const major = numberOf(attributes[key]);
      if (major !== undefined) {
        budgetMinor = Math.round(major * 100);
        break;
      }
    }
  }
  const text = (...keys: string[]): string | undefined => {
    for (const key of keys) {
      const value = attributes[key];
      if (typeof value === 'string' && value.trim() !== '') return value.trim();
    }
    return undefined;
  };
  const location = text('location', 'city', 'neighborhood', 'neighbourhood');
  const urgency = text('urgency')?.toLowerCase();
  const propertyType = text('property_type', 'propertyType');
  const region = text('region');
  const missing = [
    ...(budgetMinor === undefined ? ['budget'] : []),
    ...(location === undefined ? ['location'] : []),
    ...(urgency === undefined || !(URGENCY_LEVELS as readonly string[]).includes(urgency) ? ['urgency'] : []),
    ...(propertyType === undefined ? ['property_type'] : []),
  ];
  if (missing.length > 0) return `lead ${lead.id} lacks ${missing.join(', ')}`;
  return {
    id: lead.id,
    budgetMinor: Math.round(budgetMinor!),
    location: location!,
    ...(region === undefined ? {} : { region }),
    urgency: urgency as Urgency,
    propertyType: propertyType!,
  };
}

/** personas.ts on stored leads: features from attributes, names from the LLM (or rules without one). */
export function createLeadPersonaDiscoverer(llm: LlmClient | null, log: Logger): PersonaDiscoverer {
  return async ({ leads, minClusterSize, minSamples, signal }) => {
    const features: LeadFeatures[] = [];
    const excluded: string[] = [];
    for (const lead of leads) {
      const extracted = leadFeatures(lead);
      if (typeof extracted === 'string') excluded.push(extracted);
      else features.push(extracted);
    }
    if (excluded.length > 0) {
      log.info(
        { excluded: excluded.length, examples: excluded.slice(0, 3) },
        'leads without clustering features left out',
      );
    }
    const personas = await discoverPersonas(
      features,
      { minClusterSize, ...(minSamples === undefined ? {} : { minSamples }), method: 'hdbscan' },
      llm,
      signal,
    );
    return personas.map((persona) => ({
      name: persona.name,
      description: persona.description,
      clusterLabel: persona.clusterLabel,
      size: persona.summary.size,
      summary: {
        ...persona.summary,
        messaging: persona.messaging,
        nameSource: persona.nameSource,
        leadsConsidered: leads.length,
        leadsWithoutFeatures: excluded.length,
      },
      leadIds: persona.leadIds.map(Number),
    }));
  };
}

// ---------------------------------------------------------------------------------------------------------
// Input parsing

/** Parses `value` with `schema`; on failure a VALIDATION_FAILED error whose message names the first bad field. */
export function parseInput<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({
    field:
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => [...issue.path, key].join('.')).join(', ')
        : issue.path.join('.') || '(body)',
    message: issue.message,
  }));
  const first = issues[0]!;
  throw new AppError('VALIDATION_FAILED', `${what}: ${first.field}: ${first.message}`, {
    details: { field: first.field, issues },
  });
}

const positiveId = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const minorAmount = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const currencyCode = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code like USD');
const isoDateTime = z
  .string()
  .refine(
    (value) => /^\d{4}-\d{2}-\d{2}T/.test(value) && !Number.isNaN(Date.parse(value)),
    'must be an ISO 8601 date-time',
  );
const share = z.number().min(0).max(1);
const shareBound = z.union([share, z.record(z.string(), share)]);
const attributionModel = z.enum(ATTRIBUTION_MODELS as [AttributionModel, ...AttributionModel[]]);

export const personaDiscoveryRequest = z
  .object({
    min_cluster_size: z.number().int().min(2).max(10_000),
    min_samples: z.number().int().min(1).max(10_000).optional(),
    method: z.literal('hdbscan').default('hdbscan'),
    lookback_days: z.number().int().min(1).max(3650).default(365),
  })
  .strict();

export const creativeRequest = z
  .object({
    persona_id: positiveId,
    format: z.enum(CREATIVE_FORMATS),
    count: z.number().int().min(1).max(MAX_VARIANTS).default(2),
    campaign_id: z.string().min(1).max(200).optional(),
  })
  .strict();

export const creativeListRequest = z
  .object({
    approved: z.enum(['true', 'false']).optional(),
    compliance: z.enum(['compliant', 'non_compliant']).optional(),
    persona_id: positiveId.optional(),
    campaign_id: z.string().min(1).optional(),
  })
  .strict();

const budgetArmInput = z
  .object({
    id: z.string().min(1).max(200),
    clicks: minorAmount,
    conversions: minorAmount,
    spend_minor: minorAmount,
    revenue_minor: minorAmount,
    previous_share: share.optional(),
  })
  .strict();

export const budgetRequest = z
  .object({
    arms: z.array(budgetArmInput).min(1).max(200).optional(),
    campaign_ids: z.array(z.string().min(1)).min(1).max(200).optional(),
    lookback_days: z.number().int().min(1).max(365).default(28),
    previous_shares: z.record(z.string(), share).optional(),
    total_budget_minor: minorAmount,
    floors: shareBound.optional(),
    ceilings: shareBound.optional(),
    max_step: share.optional(),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .default(1),
    samples: z.number().int().min(100).max(200_000).optional(),
  })
  .strict()
  .refine((value) => (value.arms === undefined) !== (value.campaign_ids === undefined), {
    message: 'give exactly one of arms or campaign_ids',
    path: ['arms'],
  });

export const trackRequest = z
  .object({
    lead_id: positiveId.optional(),
    journey_id: z.string().min(1).max(200).optional(),
    touchpoints: z
      .array(
        z
          .object({
            url: z.string().min(1).max(4000),
            occurred_at: isoDateTime,
            referrer: z.string().max(4000).optional(),
            interaction: z.enum(['click', 'view']).default('click'),
          })
          .strict(),
      )
      .min(1)
      .max(200),
    conversion: z
      .object({
        occurred_at: isoDateTime,
        value_minor: minorAmount.optional(),
        currency: currencyCode.default('USD'),
        email: z.string().email().optional(),
        phone: z.string().min(5).max(32).optional(),
        event_id: z.string().min(1).max(200).optional(),
      })
      .strict()
      .optional(),
    model: attributionModel.default('linear'),
  })
  .strict()
  .refine((value) => (value.lead_id === undefined) !== (value.journey_id === undefined), {
    message: 'give exactly one of lead_id or journey_id',
    path: ['lead_id'],
  });

const pathInput = z
  .object({
    channels: z.array(z.string().min(1).max(200)).min(1).max(500),
    conversions: z.number().min(0),
    value: z.number().min(0).default(0),
    nulls: z.number().min(0).default(0),
    touch_times: z.array(z.number()).optional(),
    conversion_time: z.number().optional(),
  })
  .strict();

export const attributionRequest = z
  .object({
    model: attributionModel,
    paths: z.array(pathInput).min(1).max(100_000).optional(),
    path_file: z.string().min(1).max(20_000_000).optional(),
    journey_csv: z.string().min(1).max(20_000_000).optional(),
    half_life_hours: z.number().positive().optional(),
    markov_order: z.number().int().min(1).max(4).optional(),
  })
  .strict()
  .refine(
    (value) =>
      [value.paths, value.path_file, value.journey_csv].filter((item) => item !== undefined).length === 1,
    { message: 'give exactly one of paths, path_file or journey_csv', path: ['paths'] },
  );

export const complianceRequest = z
  .object({
    text: z.string().min(1).max(MAX_COMPLIANCE_TEXT_LENGTH),
    extra_classes: z.array(z.enum(EXTRA_CLASSES)).optional(),
    llm_review: z.boolean().default(true),
  })
  .strict();

const armCounts = z
  .object({ conversions: z.number().int().min(0), visitors: z.number().int().positive() })
  .strict()
  .refine((arm) => arm.conversions <= arm.visitors, {
    message: 'conversions exceed visitors',
    path: ['conversions'],
  });

export const abtestRequest = z
  .object({
    control: armCounts.optional(),
    variant: armCounts.optional(),
    alpha: z.number().gt(0).lt(1).optional(),
    confidence: z.number().gt(0).lt(1).optional(),
    looks: z.number().int().min(1).max(500).optional(),
    interim: z.boolean().optional(),
    sample_size: z
      .object({
        baseline: z.number().gt(0).lt(1),
        mde_absolute: z.number().gt(0).lt(1),
        alpha: z.number().gt(0).lt(1).optional(),
        power: z.number().gt(0).lt(1).optional(),
        formula: z
          .enum(Object.keys(SAMPLE_SIZE_FORMULAS) as [SampleSizeFormula, ...SampleSizeFormula[]])
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((value) => (value.control === undefined) === (value.variant === undefined), {
    message: 'give both control and variant',
    path: ['control'],
  })
  .refine((value) => value.control !== undefined || value.sample_size !== undefined, {
    message: 'give control and variant counts, or sample_size',
    path: ['control'],
  });

export const ltvRequest = z
  .object({
    rows: z
      .array(
        z
          .object({
            id: z.union([z.string(), z.number()]).optional(),
            frequency: z.number().int().min(0),
            recency: z.number().min(0),
            T: z.number().positive(),
            monetary_value: z.number().min(0).optional(),
          })
          .strict(),
      )
      .min(2)
      .max(100_000)
      .optional(),
    time_unit: z.string().min(1).max(20).default('week'),
    horizon: z.number().positive().default(52),
    periods: z.number().int().min(1).max(600).default(12),
    units_per_period: z.number().positive().default(4.345),
    discount_rate: z.number().min(0).max(10).default(0.01),
    simple: z
      .object({
        average_order_value_minor: minorAmount,
        purchases_per_period: z.number().min(0),
        gross_margin: z.number().min(-1).max(1),
        churn_rate_per_period: z.number().min(0).max(1),
        discount_rate: z.number().min(0).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((value) => value.rows !== undefined || value.simple !== undefined, {
    message: 'give rows (RFM summaries) or simple',
    path: ['rows'],
  });

export const cycleRequest = z
  .object({
    min_cluster_size: z.number().int().min(2).max(10_000).optional(),
    min_samples: z.number().int().min(1).max(10_000).optional(),
    max_personas: z.number().int().min(1).max(20).optional(),
    formats: z.array(z.enum(CREATIVE_FORMATS)).min(1).max(4).optional(),
    variants: z.number().int().min(1).max(MAX_VARIANTS).optional(),
    total_daily_budget_minor: minorAmount.optional(),
    attribution_model: attributionModel.optional(),
    attribution_lookback_days: z.number().int().min(1).max(90).optional(),
  })
  .strict();

export const platformRequestsQuery = z
  .object({ platform: z.enum(PLATFORM_KEYS as [PlatformKey, ...PlatformKey[]]).optional() })
  .strict();

/** Converts the snake_case cycle request to {@link CycleOptions}. */
export function cycleOptionsFrom(input: z.infer<typeof cycleRequest>): CycleOptions {
  return {
    ...(input.min_cluster_size === undefined ? {} : { minClusterSize: input.min_cluster_size }),
    ...(input.min_samples === undefined ? {} : { minSamples: input.min_samples }),
    ...(input.max_personas === undefined ? {} : { maxPersonas: input.max_personas }),
    ...(input.formats === undefined ? {} : { formats: input.formats }),
    ...(input.variants === undefined ? {} : { variants: input.variants }),
    ...(input.total_daily_budget_minor === undefined
      ? {}
      : { totalDailyBudgetMinor: input.total_daily_budget_minor }),
    ...(input.attribution_model === undefined ? {} : { attributionModel: input.attribution_model }),
    ...(input.attribution_lookback_days === undefined
      ? {}
      : { attributionLookbackDays: input.attribution_lookback_days }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Operations (what routes and skills call; each takes unparsed input)

/** The marketing operations; every `input` is parsed here, so routes and skills share validation. */
export type MarketingOperations = ReturnType<typeof createMarketingOperations>;

/** Builds the operations on the engine deps. */
export function createMarketingOperations(deps: MarketingEngineDeps) {
  const personaById = async (id: number) => {
    const persona = (await selectActivePersonas(deps.db)).find((candidate) => candidate.id === id);
    if (persona === undefined) {
      throw new AppError('NOT_FOUND', `persona ${id} is not an active persona`, {
        details: { field: 'persona_id', value: id },
      });
    }
    return persona;
  };

  return {
    /** POST /marketing/personas/discover */
    async discoverPersonas(input: unknown, signal: AbortSignal) {
      const request = parseInput(personaDiscoveryRequest, input, 'persona discovery');
      const leads = await countRecentLeads(deps, request.lookback_days);
      const minimum = Math.max(request.min_cluster_size, request.min_samples ?? 0);
      if (leads < minimum) {
        throw new AppError(
          'BAD_REQUEST',
          `min_cluster_size: ${leads} leads in the last ${request.lookback_days} days, fewer than min_cluster_size/min_samples ${minimum}`,
          { details: { field: 'min_cluster_size', leads, minimum } },
        );
      }
      const outcome = await discoverPersonasStep(
        deps,
        {
          minClusterSize: request.min_cluster_size,
          ...(request.min_samples === undefined ? {} : { minSamples: request.min_samples }),
          lookbackDays: request.lookback_days,
          runKey: `http:persona-discovery:${randomUUID()}`,
        },
        signal,
      );
      return {
        method: request.method,
        run_key: outcome.runKey,
        leads: outcome.leads,
        personas: outcome.personas,
      };
    },

    /** GET /marketing/personas */
    async listPersonas() {
      return { personas: await selectActivePersonas(deps.db) };
    },

    /** POST /marketing/creatives/generate */
    async generateCreatives(input: unknown, signal: AbortSignal) {
      const request = parseInput(creativeRequest, input, 'creative generation');
      const persona = await personaById(request.persona_id);
      return generateCreatives(
        { db: deps.db, llm: deps.llm, retrieval: deps.retrieval ?? null, log: deps.log },
        {
          persona,
          format: request.format,
          count: request.count,
          ...(request.campaign_id === undefined ? {} : { campaignId: request.campaign_id }),
          signal,
        },
      );
    },

    /** GET /marketing/creatives */
    async listCreatives(input: unknown) {
      const request = parseInput(creativeListRequest, input, 'creative listing');
      const rows = await selectCreatives(deps.db, {
        ...(request.campaign_id === undefined ? {} : { campaignId: request.campaign_id }),
        ...(request.approved === undefined ? {} : { approved: request.approved === 'true' }),
      });
      const creatives = rows
        .filter((row) => request.persona_id === undefined || row.personaId === request.persona_id)
        .filter((row) => {
          if (request.compliance === undefined) return true;
          const record = row.complianceReport as Partial<CreativeComplianceRecord>;
          const compliant = record.report?.compliant === true && record.report.needsReview !== true;
          return request.compliance === 'compliant' ? compliant : !compliant;
        });
      return { creatives };
    },

    /** POST /marketing/budget/optimize */
    async optimizeBudget(input: unknown) {
      const request = parseInput(budgetRequest, input, 'budget optimisation');
      let arms: BudgetArm[];
      let source: Record<string, unknown>;
      if (request.arms !== undefined) {
        arms = request.arms.map((arm) => ({
          id: arm.id,
          clicks: arm.clicks,
          conversions: arm.conversions,
          spendMinor: arm.spend_minor,
          revenueMinor: arm.revenue_minor,
          ...(arm.previous_share === undefined ? {} : { previousShare: arm.previous_share }),
        }));
        source = { kind: 'arms' };
      } else {
        const now = deps.now();
        const from = new Date(now.getTime() - request.lookback_days * 86_400_000).toISOString().slice(0, 10);
        const to = now.toISOString().slice(0, 10);
        const wanted = new Set(request.campaign_ids!);
        const metrics = (await selectMetricsByPeriod(deps.db, { from, to })).filter((row) =>
          wanted.has(row.campaign),
        );
        const found = armsFromMetrics(metrics, (row) => row.campaign);
        const missing = [...wanted].filter((id) => !found.some((arm) => arm.id === id));
        if (missing.length > 0) {
          throw new AppError(
            'NOT_FOUND',
            `campaign_ids: no metrics from ${from} to ${to} for ${missing.join(', ')}`,
            {
              details: { field: 'campaign_ids', missing, from, to },
            },
          );
        }
        arms = found.map((arm) =>
          request.previous_shares?.[arm.id] === undefined
            ? arm
            : { ...arm, previousShare: request.previous_shares[arm.id]! },
        );
        source = { kind: 'stored metrics', from, to, rows: metrics.length };
      }
      const plan = optimizeBudget({
        arms,
        totalBudgetMinor: request.total_budget_minor,
        ...(request.floors === undefined ? {} : { floors: request.floors }),
        ...(request.ceilings === undefined ? {} : { ceilings: request.ceilings }),
        ...(request.max_step === undefined ? {} : { maxStep: request.max_step }),
        ...(request.samples === undefined ? {} : { samples: request.samples }),
        seed: request.seed,
      });
      return { source, plan };
    },

    /** POST /marketing/attribution/track */
    async trackJourney(input: unknown, signal: AbortSignal) {
      const request = parseInput(trackRequest, input, 'attribution tracking');
      let lead: Record<string, unknown> | undefined;
      if (request.lead_id !== undefined) {
        lead = (await deps.db.query<Record<string, unknown>>(SELECT_LEAD, [request.lead_id])).rows[0];
        if (lead === undefined) {
          throw new AppError('NOT_FOUND', `lead ${request.lead_id} does not exist`, {
            details: { field: 'lead_id' },
          });
        }
      }
      const parsedTouches = request.touchpoints.map((touch, index) => {
        let landing;
        try {
          landing = parseLandingUrl(touch.url);
        } catch (error) {
          throw new AppError('VALIDATION_FAILED', `touchpoints.${index}.url: not a valid absolute URL`, {
            cause: error,
            details: { field: `touchpoints.${index}.url` },
          });
        }
        const inference = inferChannel(landing, touch.referrer);
        const clickIdType = Object.keys(landing.clickIds)[0];
        return { touch, landing, inference, clickIdType };
      });
      const stored = await deps.db.transaction(async (tx) => {
        let inserted = 0;
        for (const { touch, landing, inference, clickIdType } of parsedTouches) {
          const result = await tx.query(INSERT_TOUCHPOINT, [
            request.lead_id ?? null,
            request.journey_id ?? null,
            touch.occurred_at,
            inference.channel,
            landing.utm.utm_source ?? inference.platform ?? null,
            landing.utm.utm_medium ?? null,
            landing.utm.utm_campaign ?? null,
            clickIdType ?? null,
            clickIdType === undefined ? null : landing.clickIds[clickIdType as keyof typeof landing.clickIds],
            landing.href,
            touch.referrer ?? null,
          ]);
          inserted += result.rowCount ?? 0;
        }
        if (request.conversion !== undefined && request.lead_id !== undefined) {
          await tx.query(MARK_LEAD_CONVERTED, [
            request.lead_id,
            request.conversion.occurred_at,
            request.conversion.value_minor ?? null,
          ]);
        }
        return inserted;
      });
      const journey = {
        ...(request.lead_id === undefined ? {} : { leadId: request.lead_id }),
        ...(request.journey_id === undefined ? {} : { visitorId: request.journey_id }),
      };
      const touches = await journeyTouches(deps.db, journey);
      const userId = journeyKey({ leadId: request.lead_id ?? null, visitorId: request.journey_id ?? null });
      // Only a conversion in this request changed the lead since it was read above.
      if (request.lead_id !== undefined && request.conversion !== undefined) {
        lead = (await deps.db.query<Record<string, unknown>>(SELECT_LEAD, [request.lead_id])).rows[0];
      }
      const conversionTimeMs =
        request.conversion !== undefined
          ? Date.parse(request.conversion.occurred_at)
          : lead?.converted_at instanceof Date
            ? lead.converted_at.getTime()
            : undefined;
      const valueMinor =
        request.conversion?.value_minor ??
        (lead?.revenue_minor === null || lead?.revenue_minor === undefined
          ? undefined
          : Number(lead.revenue_minor));
      const currency = request.conversion?.currency ?? String(lead?.currency ?? 'USD');
      const journeys = buildJourneys(
        touches.map((touch) => ({ userId, timeMs: touch.occurredAtMs, channel: touch.channel })),
        conversionTimeMs === undefined
          ? []
          : [{ userId, timeMs: conversionTimeMs, value: (valueMinor ?? 0) / 100 }],
        { lookback: DEFAULT_LOOKBACK, asOfMs: Math.max(deps.now().getTime(), conversionTimeMs ?? 0) },
      );
      const attribution = journeys.paths.some((path) => path.conversions > 0)
        ? attribute(journeys.paths, request.model)
        : null;
      let uploads: Awaited<ReturnType<typeof uploadConversions>> | null = null;
      if (conversionTimeMs !== undefined) {
        const conversionLead = lead ?? {
          id: 0,
          converted_at: new Date(conversionTimeMs),
          revenue_minor: valueMinor ?? null,
          currency,
          external_id: request.journey_id,
        };
        const pending = pendingConversionForLead(conversionLead, touches, {
          ...(request.conversion?.event_id === undefined
            ? lead === undefined
              ? { eventId: `journey-${request.journey_id}-converted-${conversionTimeMs}` }
              : {}
            : { eventId: request.conversion.event_id }),
          ...(request.conversion?.email === undefined ? {} : { emails: [request.conversion.email] }),
          ...(request.conversion?.phone === undefined ? {} : { phones: [request.conversion.phone] }),
        });
        uploads = await uploadConversions(
          deps,
          [lead === undefined ? { ...pending, orderId: `journey-${request.journey_id}` } : pending],
          signal,
        );
      }
      return {
        journey: userId,
        touchpoints: parsedTouches.map(({ touch, landing, inference }) => ({
          url: landing.href,
          occurred_at: touch.occurred_at,
          channel: inference.channel,
          evidence: inference.evidence,
          platform: inference.platform ?? null,
          utm: landing.utm,
          click_ids: landing.clickIds,
        })),
        stored_touchpoints: stored,
        journey_touchpoints: touches.length,
        paths: journeys.paths,
        attribution,
        uploads,
      };
    },

    /** POST /marketing/attribution/analyze */
    async analyzeAttribution(input: unknown) {
      const request = parseInput(attributionRequest, input, 'attribution analysis');
      let paths: ConversionPath[];
      if (request.paths !== undefined) {
        paths = request.paths.map((path) => ({
          channels: path.channels,
          conversions: path.conversions,
          value: path.value,
          nulls: path.nulls,
          ...(path.touch_times === undefined ? {} : { touchTimes: path.touch_times }),
          ...(path.conversion_time === undefined ? {} : { conversionTime: path.conversion_time }),
        }));
      } else {
        const field = request.path_file !== undefined ? 'path_file' : 'journey_csv';
        try {
          paths =
            field === 'path_file'
              ? parsePathFile(request.path_file!, field)
              : parseJourneyCsv(request.journey_csv!, field);
        } catch (error) {
          if (!isAppError(error, 'VALIDATION_FAILED')) throw error;
          throw new AppError('VALIDATION_FAILED', error.message, {
            cause: error,
            details: { ...error.details, field },
          });
        }
      }
      const result = attribute(paths, request.model, {
        ...(request.half_life_hours === undefined ? {} : { halfLifeMs: request.half_life_hours * 3_600_000 }),
        ...(request.markov_order === undefined ? {} : { markovOrder: request.markov_order }),
      });
      return { paths: paths.length, result };
    },

    /** POST /marketing/compliance/check */
    async checkCompliance(input: unknown, signal: AbortSignal) {
      const request = parseInput(complianceRequest, input, 'compliance check');
      const rules = checkCompliance(request.text, {
        ...(request.extra_classes === undefined ? {} : { extraClasses: request.extra_classes }),
        now: deps.now,
      });
      if (!request.llm_review || deps.llm === null) {
        return {
          report: rules,
          llm_review: request.llm_review
            ? { status: 'absent', reason: 'no language model is configured' }
            : { status: 'not requested' },
        };
      }
      const review = await reviewWithLlm(request.text, deps.llm, signal);
      return { report: applyLlmReview(rules, review), llm_review: { status: 'done', ...review } };
    },

    /** POST /marketing/abtest */
    async abtest(input: unknown) {
      const request = parseInput(abtestRequest, input, 'A/B test analysis');
      return {
        comparison:
          request.control === undefined
            ? null
            : compareProportions(request.control, request.variant!, {
                ...(request.alpha === undefined ? {} : { alpha: request.alpha }),
                ...(request.confidence === undefined ? {} : { confidence: request.confidence }),
                ...(request.looks === undefined ? {} : { looks: request.looks }),
                ...(request.interim === undefined ? {} : { interim: request.interim }),
              }),
        sample_size:
          request.sample_size === undefined
            ? null
            : sampleSizePerArm({
                baseline: request.sample_size.baseline,
                mdeAbsolute: request.sample_size.mde_absolute,
                ...(request.sample_size.alpha === undefined ? {} : { alpha: request.sample_size.alpha }),
                ...(request.sample_size.power === undefined ? {} : { power: request.sample_size.power }),
                ...(request.sample_size.formula === undefined
                  ? {}
                  : { formula: request.sample_size.formula }),
              }),
      };
    },

    /** POST /marketing/ltv */
    async ltv(input: unknown, signal: AbortSignal) {
      const request = parseInput(ltvRequest, input, 'lifetime value');
      let simple = null;
      if (request.simple !== undefined) {
        const computed = simpleLtv({
          averageOrderValueMinor: request.simple.average_order_value_minor,
          purchasesPerPeriod: request.simple.purchases_per_period,
          grossMargin: request.simple.gross_margin,
          churnRatePerPeriod: request.simple.churn_rate_per_period,
        });
        simple = {
          ...computed,
          discountedLtvMinor:
            request.simple.discount_rate === undefined
              ? null
              : discountedLtv({
                  marginPerPeriodMinor: computed.marginPerPeriodMinor,
                  retentionRate: 1 - request.simple.churn_rate_per_period,
                  discountRate: request.simple.discount_rate,
                }),
        };
      }
      let model = null;
      if (request.rows !== undefined) {
        if (signal.aborted) throw new AppError('CANCELED', 'lifetime value was canceled');
        const customers = request.rows.map((row, index) => ({
          id: row.id === undefined ? String(index + 1) : String(row.id),
          frequency: row.frequency,
          recency: row.recency,
          T: row.T,
          ...(row.monetary_value === undefined ? {} : { monetaryValue: row.monetary_value }),
        }));
        const purchase = fitBgNbd(customers, { timeUnit: request.time_unit });
        const hasMonetary = customers.every(
          (customer) => customer.frequency === 0 || customer.monetaryValue !== undefined,
        );
        const spend =
          hasMonetary && customers.some((customer) => customer.frequency > 0)
            ? fitGammaGamma(customers)
            : null;
        model = {
          units: {
            timeUnit: request.time_unit,
            horizonTimeUnits: request.horizon,
            clvPeriods: request.periods,
            timeUnitsPerPeriod: request.units_per_period,
            discountRatePerPeriod: request.discount_rate,
            money: 'same unit as monetary_value',
          },
          bgNbd: purchase,
          gammaGamma: spend,
          customers: customers.map((customer) => ({
            id: customer.id,
            probabilityAlive: bgNbdProbabilityAlive(purchase.parameters, customer),
            expectedPurchases: bgNbdConditionalExpectedPurchases(
              purchase.parameters,
              customer,
              request.horizon,
            ),
            expectedAverageValue:
              spend === null ? null : gammaGammaExpectedAverageValue(spend.parameters, customer),
            clv:
              spend === null
                ? null
                : customerLifetimeValue(purchase.parameters, spend.parameters, customer, {
                    periods: request.periods,
                    timeUnitsPerPeriod: request.units_per_period,
                    discountRatePerPeriod: request.discount_rate,
                  }),
          })),
        };
      }
      return { simple, model };
    },

    /** GET /marketing/campaigns */
    async listCampaigns() {
      return listCampaigns(deps);
    },

    /** GET /marketing/platform-requests */
    async platformRequests(input: unknown) {
      const request = parseInput(platformRequestsQuery, input, 'platform requests');
      return { platforms: platformRequests(deps, request.platform) };
    },

    /** POST /marketing/cycle */
    async runCycle(input: unknown, signal: AbortSignal) {
      return runCycle(deps, cycleOptionsFrom(parseInput(cycleRequest, input, 'marketing cycle')), signal);
    },
  };
}
