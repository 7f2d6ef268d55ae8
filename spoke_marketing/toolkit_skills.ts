// The marketing toolkit's A2A skills: persona discovery, creative generation, budget optimisation,
// attribution, Fair Housing compliance, A/B tests, lifetime value and the marketing cycle. Each reads its
// input from the message's data part (text where natural) and answers a text summary plus the data part.
import type { JsonSchema } from '../shared/llm_client.js';
import { AppError } from '../shared/errors.js';
import type { SkillDefinition, SkillInput, SkillResult } from '../shared/skill.js';
import { ATTRIBUTION_MODELS } from './attribution.js';
import { CREATIVE_FORMATS, MAX_VARIANTS } from './creatives.js';
import type { MarketingOperations } from './toolkit.js';

/** The first data part that is a JSON object, else `{}`. */
export function dataObject(input: SkillInput): Record<string, unknown> {
  for (const part of input.data) {
    if (typeof part === 'object' && part !== null && !Array.isArray(part))
      return { ...(part as Record<string, unknown>) };
  }
  return {};
}

function throwIfCanceled(signal: AbortSignal): void {
  if (signal.aborted) throw new AppError('CANCELED', 'the request was canceled', { cause: signal.reason });
}

const objectSchema = (properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({
  type: 'object',
  properties,
  ...(required.length > 0 ? { required } : {}),
});
const integer = (minimum: number, maximum?: number): JsonSchema => ({
  type: 'integer',
  minimum,
  ...(maximum === undefined ? {} : { maximum }),
});
const shareSchema: JsonSchema = { type: 'number', minimum: 0, maximum: 1 };
const modelSchema: JsonSchema = { type: 'string', enum: [...ATTRIBUTION_MODELS] };

function percent(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}

function money(minor: number, currency = 'USD'): string {
  return `${(minor / 100).toFixed(2)} ${currency}`;
}

/** Builds the eight marketing skills on the toolkit's operations. */
export function createMarketingSkills(operations: MarketingOperations): SkillDefinition[] {
  const personaDiscovery: SkillDefinition = {
    id: 'persona-discovery',
    name: 'Persona discovery',
    description:
      'Discovers buyer personas by clustering stored real-estate leads (HDBSCAN) and lists the active personas with their size, budget and feature summaries; names and messaging come from the model.',
    tags: ['marketing', 'personas', 'segmentation', 'clustering', 'hdbscan', 'leads'],
    examples: [
      'Discover personas from our leads with a minimum cluster size of 15',
      'List the current buyer personas',
    ],
    inputSchema: objectSchema({
      min_cluster_size: integer(2, 10_000),
      min_samples: integer(1, 10_000),
      method: { type: 'string', enum: ['hdbscan'] },
      lookback_days: integer(1, 3650),
    }),
    outputSchema: objectSchema(
      { personas: { type: 'array' }, leads: { type: 'integer' }, run_key: { type: 'string' } },
      ['personas'],
    ),
    async handler(input, context) {
      const data = dataObject(input);
      const sizeInText = /min(?:imum)?[\s_-]*cluster[\s_-]*size\D{0,10}(\d+)/i.exec(input.text);
      if (data.min_cluster_size === undefined && sizeInText !== null)
        data.min_cluster_size = Number(sizeInText[1]);
      if (data.min_cluster_size === undefined) {
        const listed = await operations.listPersonas();
        return {
          text:
            listed.personas.length === 0
              ? 'There are no active personas yet; run discovery with a min_cluster_size.'
              : `${listed.personas.length} active personas: ${listed.personas.map((persona) => `${persona.name} (${persona.size} leads)`).join('; ')}.`,
          data: listed,
        };
      }
      context.progress('clustering leads');
      const result = await operations.discoverPersonas(data, context.signal);
      return {
        text: `Clustered ${result.leads} leads into ${result.personas.length} personas: ${result.personas.map((persona) => `${persona.name} (${persona.size} leads)`).join('; ') || 'none (all noise)'}.`,
        data: result,
      };
    },
  };

  const creativeGeneration: SkillDefinition = {
    id: 'creative-generation',
    name: 'Compliant ad creatives',
    description:
      'Writes real-estate ad copy (social post, search ad, email, display) for a persona as A/B variants, checks every variant for Fair Housing Act compliance and toxicity, stores each with its compliance report and approves only clean ones.',
    tags: ['marketing', 'creatives', 'ad copy', 'fair housing', 'compliance', 'a/b variants'],
    examples: [
      'Write two social post variants for persona 3',
      'Generate search ad copy for the first-time buyer persona',
    ],
    inputSchema: objectSchema(
      {
        persona_id: integer(1),
        format: { type: 'string', enum: [...CREATIVE_FORMATS] },
        count: integer(1, MAX_VARIANTS),
        campaign_id: { type: 'string' },
      },
      ['persona_id', 'format'],
    ),
    outputSchema: objectSchema({ creatives: { type: 'array' }, approvedIds: { type: 'array' } }, [
      'creatives',
    ]),
    async handler(input, context) {
      context.progress('writing and reviewing copy');
      const result = await operations.generateCreatives(dataObject(input), context.signal);
      const approved = result.creatives.filter((creative) => creative.approved);
      const rejected = result.creatives.filter((creative) => !creative.approved);
      const lines = [
        `${approved.length} of ${result.creatives.length} stored ${result.format} creatives are approved for persona ${result.personaId}` +
          (result.regenerated > 0 ? ` (${result.regenerated} regenerated after compliance findings)` : '') +
          '.',
        ...approved.map(
          (creative) =>
            `Approved ${creative.variant} (#${creative.id}): ${creative.headline} — ${creative.body} [${creative.callToAction}]`,
        ),
        ...rejected.map(
          (creative) =>
            `Not approved ${creative.variant} (#${creative.id}): ${creative.compliance.reasons.join('; ')}`,
        ),
      ];
      return { text: lines.join('\n'), data: result, metadata: { model: result.model } };
    },
  };

  const budgetOptimisation: SkillDefinition = {
    id: 'budget-optimisation',
    name: 'Budget optimisation',
    description:
      'Splits a marketing budget across campaigns or channels with Thompson sampling on conversion and revenue data, respecting floors, ceilings and a maximum step; the shares sum to one and the money to the total.',
    tags: ['marketing', 'budget', 'allocation', 'thompson sampling', 'bandit'],
    examples: [
      'Allocate a $10,000 daily budget across these campaigns',
      'Optimise budget between search and social with a 10% floor',
    ],
    inputSchema: objectSchema(
      {
        arms: {
          type: 'array',
          items: objectSchema(
            {
              id: { type: 'string' },
              clicks: integer(0),
              conversions: integer(0),
              spend_minor: integer(0),
              revenue_minor: integer(0),
              previous_share: shareSchema,
            },
            ['id', 'clicks', 'conversions', 'spend_minor', 'revenue_minor'],
          ),
        },
        campaign_ids: { type: 'array', items: { type: 'string' } },
        total_budget_minor: integer(0),
        floors: {},
        ceilings: {},
        max_step: shareSchema,
        seed: integer(0),
      },
      ['total_budget_minor'],
    ),
    outputSchema: objectSchema({ plan: { type: 'object' }, source: { type: 'object' } }, ['plan']),
    async handler(input, context) {
      throwIfCanceled(context.signal);
      const result = await operations.optimizeBudget(dataObject(input));
      const plan = result.plan;
      return {
        text:
          `Budget of ${money(plan.totalBudgetMinor)} split over ${plan.arms.length} arms (leader ${plan.leader}, confidence ${plan.confidence}): ` +
          plan.arms
            .map(
              (arm) => `${arm.id} ${percent(arm.share)} = ${money(arm.amountMinor)} (${arm.recommendation})`,
            )
            .join('; ') +
          '.',
        data: result,
      };
    },
  };

  const attribution: SkillDefinition = {
    id: 'multi-touch-attribution',
    name: 'Multi-touch attribution',
    description:
      'Attributes conversions and revenue to marketing channels from conversion paths or journeys (last-click, first-click, linear, time-decay, position-based, Markov removal effect, Shapley), and tracks landing-page touchpoints with UTM and click ids, recording offline-conversion uploads idempotently.',
    tags: ['marketing', 'attribution', 'markov', 'shapley', 'channels', 'utm', 'conversions'],
    examples: [
      'Which channels drive conversions under the Markov model?',
      'Track this visit and conversion for lead 42',
    ],
    inputSchema: objectSchema({
      model: modelSchema,
      paths: { type: 'array' },
      path_file: { type: 'string' },
      journey_csv: { type: 'string' },
      lead_id: integer(1),
      journey_id: { type: 'string' },
      touchpoints: { type: 'array' },
      conversion: { type: 'object' },
    }),
    outputSchema: objectSchema({ result: { type: 'object' }, attribution: { type: ['object', 'null'] } }),
    async handler(input, context) {
      const data = dataObject(input);
      if (data.touchpoints !== undefined) {
        const tracked = await operations.trackJourney(data, context.signal);
        const credit =
          tracked.attribution === null
            ? 'no conversion to attribute yet'
            : creditLine(tracked.attribution.byChannel);
        return {
          text: `Recorded ${tracked.stored_touchpoints} new touchpoints (${tracked.touchpoints.map((touch) => touch.channel).join(', ')}); ${credit}.`,
          data: tracked,
        };
      }
      if (data.model === undefined) {
        const named = ATTRIBUTION_MODELS.find(
          (model) =>
            input.text.toLowerCase().includes(model.replace('-', ' ')) ||
            input.text.toLowerCase().includes(model),
        );
        if (named !== undefined) data.model = named;
      }
      throwIfCanceled(context.signal);
      const analysed = await operations.analyzeAttribution(data);
      return {
        text: `${analysed.result.model} attribution of ${analysed.result.totalConversions} conversions over ${analysed.paths} paths: ${creditLine(analysed.result.byChannel)}.`,
        data: analysed,
      };
    },
  };

  const compliance: SkillDefinition = {
    id: 'fair-housing-compliance',
    name: 'Fair Housing compliance check',
    description:
      'Checks real-estate advertising text for Fair Housing Act problems (preferences or limitations by race, color, religion, sex, disability, familial status, national origin) and toxicity, with rule ids, citations and an optional model review.',
    tags: ['marketing', 'compliance', 'fair housing', 'hud', 'advertising', 'toxicity'],
    examples: [
      'Is "perfect for young couples, no kids" compliant?',
      'Check this listing text for Fair Housing issues',
    ],
    inputSchema: objectSchema({
      text: { type: 'string', maxLength: 20_000 },
      extra_classes: { type: 'array' },
      llm_review: { type: 'boolean' },
    }),
    outputSchema: objectSchema({ report: { type: 'object' }, llm_review: { type: 'object' } }, ['report']),
    async handler(input, context) {
      const data = dataObject(input);
      if (data.text === undefined) data.text = input.text;
      const result = await operations.checkCompliance(data, context.signal);
      const report = result.report;
      return {
        text: report.compliant
          ? `Compliant${report.needsReview ? ', but some wording needs human review' : ''}: ${report.findings.length} findings, no toxicity hits.`
          : `Not compliant: ${report.findings.map((finding) => `${finding.protectedClass} (${finding.ruleId}${finding.matchedText === '' ? '' : `: "${finding.matchedText}"`})`).join('; ')}${report.toxicity.flagged ? `; toxicity hits ${report.toxicity.matches.length}` : ''}.`,
        data: result,
      };
    },
  };

  const abtest: SkillDefinition = {
    id: 'ab-test-analysis',
    name: 'A/B test analysis',
    description:
      'Analyses an A/B test of conversion rates (z-test, chi-square, confidence interval, Bayesian probability that the variant beats control, peeking warning) and computes the sample size per arm for a minimum detectable effect.',
    tags: ['marketing', 'a/b test', 'experiment', 'statistics', 'sample size'],
    examples: [
      'Control 100/1000 vs variant 130/1000: is it significant?',
      'What sample size do I need for a 2-point lift on a 10% baseline?',
    ],
    inputSchema: objectSchema({
      control: objectSchema({ conversions: integer(0), visitors: integer(1) }, ['conversions', 'visitors']),
      variant: objectSchema({ conversions: integer(0), visitors: integer(1) }, ['conversions', 'visitors']),
      alpha: { type: 'number' },
      looks: integer(1),
      sample_size: objectSchema(
        { baseline: { type: 'number' }, mde_absolute: { type: 'number' }, power: { type: 'number' } },
        ['baseline', 'mde_absolute'],
      ),
    }),
    outputSchema: objectSchema({
      comparison: { type: ['object', 'null'] },
      sample_size: { type: ['object', 'null'] },
    }),
    async handler(input, context) {
      throwIfCanceled(context.signal);
      const result = await operations.abtest(dataObject(input));
      const lines: string[] = [];
      if (result.comparison !== null) {
        const comparison = result.comparison;
        lines.push(
          `Control ${percent(comparison.control.rate)} vs variant ${percent(comparison.variant.rate)}: difference ${percent(comparison.absoluteDifference)}, ` +
            `two-sided p = ${comparison.zTest.pValueTwoSided?.toPrecision(3) ?? 'undefined'}, P(variant > control) = ${percent(comparison.probabilityVariantBeatsControl)}` +
            (comparison.significant === true ? ' (significant).' : ' (not significant).'),
        );
        if (comparison.peeking !== null) lines.push('Warning: repeated looks inflate false positives.');
      }
      if (result.sample_size !== null)
        lines.push(`Sample size: ${result.sample_size.perArm} per arm (${result.sample_size.total} total).`);
      return { text: lines.join(' '), data: result };
    },
  };

  const ltv: SkillDefinition = {
    id: 'customer-lifetime-value',
    name: 'Customer lifetime value',
    description:
      'Computes customer lifetime value: simple and discounted LTV from order value, margin and churn, or BG/NBD and Gamma-Gamma fits on frequency/recency/T/monetary summaries with discounted CLV per customer.',
    tags: ['marketing', 'ltv', 'clv', 'customer value', 'bg/nbd', 'gamma-gamma'],
    examples: [
      'What is the lifetime value with $300 orders, 30% margin and 5% monthly churn?',
      'Fit BG/NBD on these customer summaries',
    ],
    inputSchema: objectSchema({
      rows: {
        type: 'array',
        items: objectSchema({
          frequency: integer(0),
          recency: { type: 'number' },
          T: { type: 'number' },
          monetary_value: { type: 'number' },
        }),
      },
      simple: objectSchema({
        average_order_value_minor: integer(0),
        purchases_per_period: { type: 'number' },
        gross_margin: { type: 'number' },
        churn_rate_per_period: { type: 'number' },
        discount_rate: { type: 'number' },
      }),
      periods: integer(1),
      discount_rate: { type: 'number' },
    }),
    outputSchema: objectSchema({ simple: { type: ['object', 'null'] }, model: { type: ['object', 'null'] } }),
    async handler(input, context) {
      const result = await operations.ltv(dataObject(input), context.signal);
      const lines: string[] = [];
      if (result.simple !== null) {
        lines.push(
          result.simple.ltvMinor === null
            ? 'Simple LTV is unbounded with zero churn.'
            : `Simple LTV ${money(result.simple.ltvMinor)} over ${result.simple.expectedLifetimePeriods?.toFixed(1)} periods` +
                (result.simple.discountedLtvMinor === null
                  ? '.'
                  : `, discounted ${money(result.simple.discountedLtvMinor)}.`),
        );
      }
      if (result.model !== null) {
        const values = result.model.customers
          .map((customer) => customer.clv)
          .filter((value): value is number => value !== null);
        lines.push(
          `BG/NBD fitted on ${result.model.bgNbd.customers} customers` +
            (values.length === 0
              ? ' (no Gamma-Gamma fit: no monetary values or repeat buyers).'
              : `; mean CLV ${(values.reduce((sum, value) => sum + value, 0) / values.length).toFixed(2)} over ${result.model.units.clvPeriods} periods.`),
        );
      }
      return { text: lines.join(' '), data: result };
    },
  };

  const cycle: SkillDefinition = {
    id: 'marketing-cycle',
    name: 'Marketing cycle',
    description:
      'Runs the marketing lifecycle once: discover personas, generate compliant creatives, deploy them to Meta, Google Ads and TikTok (dry-run by default), sync metrics, optimise budgets, attribute conversions and record conversion uploads.',
    tags: ['marketing', 'orchestration', 'lifecycle', 'campaigns', 'deploy', 'automation'],
    examples: ['Run the marketing cycle', 'Run one marketing cycle with three variants per format'],
    inputSchema: objectSchema({
      min_cluster_size: integer(2),
      max_personas: integer(1, 20),
      formats: { type: 'array', items: { type: 'string', enum: [...CREATIVE_FORMATS] } },
      variants: integer(1, MAX_VARIANTS),
      total_daily_budget_minor: integer(0),
      attribution_model: modelSchema,
    }),
    outputSchema: objectSchema(
      { cycleId: { type: 'string' }, ok: { type: 'boolean' }, steps: { type: 'array' } },
      ['cycleId', 'steps'],
    ),
    async handler(input, context): Promise<SkillResult> {
      context.progress('running the marketing cycle');
      const report = await operations.runCycle(dataObject(input), context.signal);
      return {
        text:
          `Marketing cycle ${report.cycleId} ${report.ok ? 'finished' : 'finished with failures'}: ` +
          report.steps
            .map((step) =>
              step.status === 'done'
                ? `${step.step} done`
                : step.status === 'skipped'
                  ? `${step.step} skipped (${step.reason})`
                  : `${step.step} failed (${step.error.code}: ${step.error.message})`,
            )
            .join('; ') +
          '.',
        data: report,
      };
    },
  };

  return [
    personaDiscovery,
    creativeGeneration,
    budgetOptimisation,
    attribution,
    compliance,
    abtest,
    ltv,
    cycle,
  ];
}

function creditLine(byChannel: Record<string, { conversions: number; value: number }>): string {
  const entries = Object.entries(byChannel).sort((a, b) => b[1].conversions - a[1].conversions);
  return entries.length === 0
    ? 'no channel credit'
    : entries
        .map(
          ([channel, credit]) =>
            `${channel} ${credit.conversions.toFixed(2)} conversions / ${credit.value.toFixed(2)} value`,
        )
        .join(', ');
}
