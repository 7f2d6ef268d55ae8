// The finance spoke's `roi-review` skill: asks marketing for a campaign-ROI analysis through the hub, turns its
// metrics into payback, CAC, LTV, marginal-ROAS order, NPV and a budget reallocation, and narrates them with a
// grounded LLM narrative. When marketing cannot answer, it says so and computes nothing that depends on it.
import { z } from 'zod';
import {
  AppError,
  ERROR_TABLE,
  type ErrorCode,
  errorMessage,
  isAppError,
  toAppError,
} from '../shared/errors.js';
import {
  FactSet,
  collectFacts,
  generateGroundedNarrative,
  groundedShare,
  type GroundingReport,
  type UngroundedStatement,
} from '../shared/grounding.js';
import type { JsonSchema, LlmClient, LlmUsage } from '../shared/llm_client.js';
import type { SkillDefinition, SkillInput, SkillResult } from '../shared/skill.js';
import {
  computeFinanceMetrics,
  parseMarketingAnswer,
  round,
  type FinanceAssumptions,
  type FinanceMetrics,
  type MarketingAnswerView,
} from './finance.js';

/** Dependencies and settings of the roi-review skill. */
export interface RoiReviewSkillDeps {
  /** The finance spoke's language model; null when none is configured. */
  readonly llm: LlmClient | null;
  /** Annual discount rate for NPV and discounted LTV, e.g. 0.1. */
  readonly discountRateAnnual: number;
  /** Maximum share of a channel's spend a reallocation may move, e.g. 0.2. */
  readonly reallocationMaxShift: number;
  /** Monthly churn assumed when the request gives none; null = unknown. @defaultValue null */
  readonly defaultMonthlyChurn?: number | null;
  /** Gross margin assumed when marketing's rows carry none; null = do not assume. @defaultValue null */
  readonly grossMarginFallback?: number | null;
  /** How long to wait for marketing, in ms. @defaultValue 300000 */
  readonly peerTimeoutMs?: number;
  /** Why there is no LLM, reported in answers. */
  readonly llmUnavailableReason?: string;
}

/** How the marketing request went. */
export type MarketingStatus =
  | { readonly status: 'ok'; readonly collaboration_ready: boolean }
  | { readonly status: 'unavailable' | 'invalid_answer'; readonly code: ErrorCode; readonly message: string };

/** The narrative of a review. */
export interface RoiReviewNarrative {
  readonly summary: string;
  readonly payback_and_cac: string;
  readonly ltv_and_efficiency: string;
  readonly budget_recommendation: string;
  readonly risks_and_caveats: string;
}

/** The narrative with its grounding report. */
export interface RoiReviewLlmAnalysis extends RoiReviewNarrative {
  readonly grounding: GroundingReport;
  readonly generations: number;
  readonly first_attempt_ungrounded: readonly UngroundedStatement[];
  readonly model: string;
}

/** The data part of an roi_review answer. */
export interface RoiReviewAnswer {
  readonly analysis_type: 'roi_review';
  readonly marketing_task_id: string | null;
  readonly marketing_status: MarketingStatus;
  /** null when marketing did not answer: nothing here is computed without its data. */
  readonly finance_metrics: FinanceMetrics | null;
  readonly llm_analysis: RoiReviewLlmAnalysis | null;
  readonly llm_unavailable_reason?: string;
  readonly confidence_score: number;
  readonly confidence: {
    readonly components: {
      readonly marketing: number | null;
      readonly finance_completeness: number | null;
      readonly grounding: number | null;
    };
    readonly weights: {
      readonly marketing: number;
      readonly finance_completeness: number;
      readonly grounding: number;
    };
  };
  readonly sources: readonly {
    readonly agent: 'marketing';
    readonly skill: string;
    readonly task_id: string;
    readonly period: string;
    readonly confidence_score: number;
    readonly collaboration_ready: boolean;
  }[];
}

/** Id of the skill in the agent card. */
export const ROI_REVIEW_SKILL_ID = 'roi-review';

/** Weights of the review's confidence (they sum to 1; grounding's weight is spread over the others without a narrative). */
export const REVIEW_CONFIDENCE_WEIGHTS = Object.freeze({
  marketing: 0.6,
  finance_completeness: 0.25,
  grounding: 0.15,
});

const LIMIT = 500;
const bounded = { type: 'string', maxLength: LIMIT } as const;

/** Bounded JSON schema of the review narrative (strings only; numbers come from the code). */
export const ROI_REVIEW_NARRATIVE_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    summary: bounded,
    payback_and_cac: bounded,
    ltv_and_efficiency: bounded,
    budget_recommendation: bounded,
    risks_and_caveats: bounded,
  },
  required: [
    'summary',
    'payback_and_cac',
    'ltv_and_efficiency',
    'budget_recommendation',
    'risks_and_caveats',
  ],
  additionalProperties: false,
};

const textField = z.string().refine((value) => [...value].length <= LIMIT, `at most ${LIMIT} characters`);
const narrativeSchema = z
  .object({
    summary: textField,
    payback_and_cac: textField,
    ltv_and_efficiency: textField,
    budget_recommendation: textField,
    risks_and_caveats: textField,
  })
  .strict();

/** Validates the review narrative; throws AppError `LLM_OUTPUT_INVALID`. */
export function validateRoiReviewNarrative(value: unknown): RoiReviewNarrative {
  const parsed = narrativeSchema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
    throw new AppError(
      'LLM_OUTPUT_INVALID',
      `review narrative does not match its schema: ${problems.join('; ')}`,
      { details: { problems } },
    );
  }
  return parsed.data;
}

/** System prompt of the review narrative. */
export const ROI_REVIEW_SYSTEM = [
  'You are a finance analyst reviewing marketing ROI for a budget decision.',
  'You receive finance metrics computed by code from marketing campaign data. Explain them.',
  'Rules: quote only numbers that appear in the DATA (rounded as shown or to fewer digits); never calculate new',
  'numbers; say which CAC basis you discuss; call the reallocation effect an estimate; when a value is null, say it',
  'is unavailable and why, using the given reason; LTV:CAC of 3 is a rule of thumb, not a standard.',
].join(' ');

const assumptionsSchema = z
  .object({
    monthly_churn: z.number().min(0).max(1).optional(),
    other_acquisition_costs: z.union([z.number().min(0), z.string().regex(/^\d+(?:\.\d+)?$/)]).optional(),
    gross_margin: z.number().min(0).max(1).optional(),
    monthly_margin_per_customer: z.number().min(0).optional(),
  })
  .strict();

/** A percentage in question text: "3%", "2.5 %", "3 percent"; the number is the group named `percent`. */
const PERCENT = String.raw`(?<percent>\d{1,3}(?:\.\d+)?)\s*(?:%|percent\b)`;
/** "monthly churn is 3%", "churn of 3% a month", "churn rate: 3% per month". */
const CHURN_THEN_PERCENT = new RegExp(
  String.raw`\b(monthly\s+)?churn(?:\s+rate)?(?:\s+(?:of|is|at|was|would be|=))?\s*:?\s*` +
    PERCENT +
    String.raw`(\s*(?:a|per|\/|each)\s*month|\s+monthly)?`,
  'i',
);
/** "3% monthly churn", "3% churn per month". */
const PERCENT_THEN_CHURN = new RegExp(
  PERCENT + String.raw`\s+(monthly\s+)?churn(\s+(?:a|per|each)\s+month)?`,
  'i',
);

/**
 * The monthly churn rate stated in question text ("what if monthly churn is 3%?"), as a fraction; undefined
 * when the text states none. A churn rate not said to be monthly, or over 100 %, is VALIDATION_FAILED: the
 * review needs the monthly rate and does not guess it from an annual one.
 */
export function monthlyChurnInText(text: string): number | undefined {
  const match = CHURN_THEN_PERCENT.exec(text) ?? PERCENT_THEN_CHURN.exec(text);
  if (match === null) return undefined;
  const percent = Number(match.groups!.percent);
  const stated = match[0];
  // Said to be monthly: "monthly" before churn, or "a month" / "per month" / "monthly" after the rate.
  const monthly = match.slice(1).some((group) => group !== undefined && /month/i.test(group));
  if (!monthly) {
    throw new AppError(
      'VALIDATION_FAILED',
      `"${stated}": say that the churn rate is monthly ("monthly churn ${percent}%"); the review needs the monthly rate`,
      { details: { field: 'assumptions.monthly_churn', value: stated } },
    );
  }
  if (percent > 100) {
    throw new AppError('VALIDATION_FAILED', `"${stated}": a churn rate is at most 100%`, {
      details: { field: 'assumptions.monthly_churn', value: stated },
    });
  }
  return percent / 100;
}

/** Marketing-unavailable codes: the hub could not deliver or marketing could not answer in time. */
function isMarketingUnavailable(error: unknown): error is AppError {
  return isAppError(error) && error.code !== 'CANCELED' && ERROR_TABLE[error.code].retryable;
}

function readRequest(
  input: SkillInput,
  deps: RoiReviewSkillDeps,
): { forward: Record<string, unknown> | undefined; assumptions: FinanceAssumptions } {
  let forward: Record<string, unknown> | undefined;
  let supplied: z.infer<typeof assumptionsSchema> = {};
  for (const part of input.data) {
    if (part === null || typeof part !== 'object' || Array.isArray(part)) continue;
    const { assumptions, ...rest } = part as Record<string, unknown>;
    if (assumptions !== undefined) {
      const parsed = assumptionsSchema.safeParse(assumptions);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new AppError('VALIDATION_FAILED', `assumptions.${issue.path.join('.')}: ${issue.message}`, {
          details: { field: `assumptions.${issue.path.join('.')}`, value: assumptions },
        });
      }
      supplied = parsed.data;
    }
    // Forward only what marketing's skill reads: its rows, CSV and period.
    const forwarded = Object.fromEntries(
      Object.entries(rest).filter(([key]) => key === 'rows' || key === 'csv' || key === 'period'),
    );
    if (forward === undefined && Object.keys(forwarded).length > 0) forward = forwarded;
  }
  const other = supplied.other_acquisition_costs;
  const churnInText = monthlyChurnInText(input.text);
  if (
    churnInText !== undefined &&
    supplied.monthly_churn !== undefined &&
    churnInText !== supplied.monthly_churn
  ) {
    throw new AppError(
      'VALIDATION_FAILED',
      `monthly churn given twice: ${supplied.monthly_churn} in assumptions and ${churnInText} in the text`,
      { details: { field: 'assumptions.monthly_churn', value: [supplied.monthly_churn, churnInText] } },
    );
  }
  return {
    forward,
    assumptions: {
      discountRateAnnual: deps.discountRateAnnual,
      reallocationMaxShift: deps.reallocationMaxShift,
      monthlyChurn: supplied.monthly_churn ?? churnInText ?? deps.defaultMonthlyChurn ?? null,
      otherAcquisitionCosts: other === undefined ? null : Number(other),
      grossMarginFallback: supplied.gross_margin ?? deps.grossMarginFallback ?? null,
      monthlyMarginPerCustomer: supplied.monthly_margin_per_customer ?? null,
    },
  };
}

function financeCompleteness(metrics: FinanceMetrics): number {
  const values = [
    metrics.payback.simple_months.value,
    metrics.payback.with_churn_months.value,
    metrics.cac.paid_media.value,
    metrics.cac.blended.value,
    metrics.ltv.discounted.value,
    metrics.ltv_to_cac.value,
    metrics.npv.value,
    metrics.marginal_roas_order.some((item) => item.basis === 'period_over_period') ? 1 : null,
  ];
  return values.filter((value) => value !== null).length / values.length;
}

function unavailableAnswer(status: MarketingStatus, reason: string): RoiReviewAnswer {
  return {
    analysis_type: 'roi_review',
    marketing_task_id: null,
    marketing_status: status,
    finance_metrics: null,
    llm_analysis: null,
    llm_unavailable_reason: reason,
    confidence_score: 0,
    confidence: {
      components: { marketing: null, finance_completeness: null, grounding: null },
      weights: REVIEW_CONFIDENCE_WEIGHTS,
    },
    sources: [],
  };
}

function describeMaybe(
  label: string,
  value: number | null,
  unit: string,
  reason: string | undefined,
): string {
  return value === null ? `${label} unavailable (${reason ?? 'no data'})` : `${label} ${value}${unit}`;
}

/** A plain-text summary of the computed figures (the narrative is appended when grounded). */
export function summarizeRoiReview(answer: RoiReviewAnswer): string {
  const status = answer.marketing_status;
  if (status.status !== 'ok') {
    return (
      `Marketing's campaign analysis is unavailable (${status.code}: ${status.message}). ` +
      'No finance metrics were computed, because payback, CAC, LTV, NPV and the reallocation all depend on it.'
    );
  }
  const metrics = answer.finance_metrics!;
  const best = metrics.marginal_roas_order[0];
  const lines = [
    `ROI review for ${metrics.period.label}: ` +
      [
        describeMaybe('paid-media CAC', metrics.cac.paid_media.value, '', metrics.cac.paid_media.reason),
        describeMaybe(
          'payback',
          metrics.payback.simple_months.value,
          ' months',
          metrics.payback.simple_months.reason,
        ),
        describeMaybe('LTV:CAC', metrics.ltv_to_cac.value, '', metrics.ltv_to_cac.reason),
        describeMaybe('NPV', metrics.npv.value, '', metrics.npv.reason),
      ].join('; ') +
      '.',
  ];
  if (best !== undefined && best.value !== null) {
    lines.push(`Highest marginal ROAS: ${best.channel} (${best.value}, ${best.basis}).`);
  }
  const moves = metrics.reallocation.moves;
  lines.push(
    moves.length === 0
      ? `No reallocation: ${metrics.reallocation.reason ?? 'nothing to move'}.`
      : `Reallocation (estimate): ${moves.map((move) => `${move.amount} from ${move.from} to ${move.to}`).join(', ')}; ` +
          `expected Δrevenue ${metrics.reallocation.expected_effect.delta_revenue}.`,
  );
  lines.push(`Confidence ${answer.confidence_score.toFixed(2)}.`);
  const analysis = answer.llm_analysis;
  if (analysis === null) lines.push(`No narrative: ${answer.llm_unavailable_reason ?? 'no model'}.`);
  else if (analysis.grounding.ungrounded.length === 0) lines.push(analysis.summary);
  else
    lines.push(
      `The narrative quoted numbers that match no computed value (${analysis.grounding.ungrounded.map((item) => item.number).join(', ')}); it is flagged.`,
    );
  return lines.join('\n');
}

/** Creates the `roi-review` skill. */
export function createRoiReviewSkill(deps: RoiReviewSkillDeps): SkillDefinition {
  return {
    id: ROI_REVIEW_SKILL_ID,
    name: 'ROI review (finance)',
    description:
      'Reviews marketing ROI for a budget decision: asks the marketing agent for campaign-ROI analysis, then computes ' +
      'payback period, CAC (paid-media and blended), LTV and LTV:CAC, marginal-ROAS ordering of channels, NPV and a ' +
      'bounded budget reallocation with its estimated effect.',
    tags: ['finance', 'roi', 'payback', 'cac', 'ltv', 'npv', 'budget', 'spend'],
    examples: ['Review Q4 2025 marketing ROI: payback, CAC and where to move budget'],
    inputSchema: {
      type: 'object',
      properties: {
        rows: { type: 'array', items: { type: 'object' } },
        csv: { type: 'string' },
        period: { oneOf: [{ type: 'string' }, { type: 'object' }] },
        assumptions: {
          type: 'object',
          properties: {
            monthly_churn: { type: 'number', minimum: 0, maximum: 1 },
            other_acquisition_costs: { oneOf: [{ type: 'number' }, { type: 'string' }] },
            gross_margin: { type: 'number', minimum: 0, maximum: 1 },
            monthly_margin_per_customer: { type: 'number', minimum: 0 },
          },
        },
      },
    },
    outputSchema: {
      type: 'object',
      properties: {
        analysis_type: { const: 'roi_review' },
        marketing_task_id: { oneOf: [{ type: 'string' }, { type: 'null' }] },
        marketing_status: { type: 'object' },
        finance_metrics: { oneOf: [{ type: 'object' }, { type: 'null' }] },
        llm_analysis: { oneOf: [{ type: 'object' }, { type: 'null' }] },
        confidence_score: { type: 'number', minimum: 0, maximum: 1 },
        sources: { type: 'array' },
      },
      required: [
        'analysis_type',
        'marketing_task_id',
        'finance_metrics',
        'llm_analysis',
        'confidence_score',
        'sources',
      ],
    },
    async handler(input, context): Promise<SkillResult> {
      const started = performance.now();
      const { forward, assumptions } = readRequest(input, deps);
      context.progress('asking marketing for campaign-ROI analysis through the hub');
      const text = input.text.trim() === '' ? 'Campaign ROI analysis for a finance review' : input.text;
      let marketingTaskId: string;
      let marketing: MarketingAnswerView;
      const peerStarted = performance.now();
      try {
        const response = await context.callPeer({
          tenant: 'marketing',
          skill: 'campaign-roi-analysis',
          text,
          ...(forward === undefined ? {} : { data: forward }),
          // Marketing reads a follow-up ("and the quarter before?") against this conversation's period.
          contextId: input.contextId,
          timeoutMs: deps.peerTimeoutMs ?? 300_000,
        });
        marketingTaskId = response.taskId;
        try {
          marketing = parseMarketingAnswer(response.data);
        } catch (error) {
          const appError = toAppError(error, 'UPSTREAM_ERROR');
          const answer = unavailableAnswer(
            { status: 'invalid_answer', code: appError.code, message: appError.message },
            'no narrative without marketing data',
          );
          return {
            text: summarizeRoiReview(answer),
            data: { ...answer, marketing_task_id: response.taskId },
            metadata: { marketing_task_id: response.taskId },
          };
        }
      } catch (error) {
        if (context.signal.aborted)
          throw new AppError('CANCELED', 'roi review was canceled', { cause: error });
        if (!isMarketingUnavailable(error)) throw error;
        const answer = unavailableAnswer(
          { status: 'unavailable', code: error.code, message: error.message },
          'no narrative without marketing data',
        );
        return { text: summarizeRoiReview(answer), data: answer, metadata: { marketing_error: error.code } };
      }
      const peerMs = performance.now() - peerStarted;
      if (context.signal.aborted) throw new AppError('CANCELED', 'roi review was canceled');

      const metrics = computeFinanceMetrics(marketing, assumptions);
      let analysis: RoiReviewLlmAnalysis | null = null;
      let unavailableReason: string | undefined;
      let usage: readonly LlmUsage[] = [];
      const narrativeStarted = performance.now();
      if (deps.llm === null) {
        unavailableReason =
          deps.llmUnavailableReason ?? 'no language model is configured for the finance spoke';
      } else {
        try {
          const facts = new FactSet([...collectFacts(metrics), ...collectFacts(marketing.marketing_metrics)]);
          const data = { finance_metrics: metrics, marketing_overall: marketing.marketing_metrics.overall };
          const result = await generateGroundedNarrative({
            llm: deps.llm,
            system: ROI_REVIEW_SYSTEM,
            prompt: `QUESTION: ${text.slice(0, 500)}\nDATA: ${JSON.stringify(data)}`,
            schema: ROI_REVIEW_NARRATIVE_SCHEMA,
            validate: validateRoiReviewNarrative,
            facts,
            sectionsOf: (value) => ({ ...value }),
            signal: context.signal,
          });
          analysis = {
            ...result.value,
            grounding: result.grounding,
            generations: result.generations,
            first_attempt_ungrounded: result.firstAttemptUngrounded,
            model: deps.llm.modelName,
          };
          usage = result.usage;
        } catch (error) {
          if (context.signal.aborted || isAppError(error, 'CANCELED')) throw error;
          unavailableReason = `the language model produced no usable narrative: ${errorMessage(error)}`;
        }
      }
      const narrativeMs = performance.now() - narrativeStarted;

      const weights = REVIEW_CONFIDENCE_WEIGHTS;
      const completeness = financeCompleteness(metrics);
      const grounding = analysis === null ? null : groundedShare(analysis.grounding);
      const score =
        grounding === null
          ? (weights.marketing * marketing.confidence_score + weights.finance_completeness * completeness) /
            (weights.marketing + weights.finance_completeness)
          : weights.marketing * marketing.confidence_score +
            weights.finance_completeness * completeness +
            weights.grounding * grounding;
      const answer: RoiReviewAnswer = {
        analysis_type: 'roi_review',
        marketing_task_id: marketingTaskId,
        marketing_status: { status: 'ok', collaboration_ready: marketing.collaboration_ready },
        finance_metrics: metrics,
        llm_analysis: analysis,
        ...(unavailableReason === undefined ? {} : { llm_unavailable_reason: unavailableReason }),
        confidence_score: round(score, 4),
        confidence: {
          components: {
            marketing: marketing.confidence_score,
            finance_completeness: round(completeness, 4),
            grounding: grounding === null ? null : round(grounding, 4),
          },
          weights,
        },
        sources: [
          {
            agent: 'marketing',
            skill: 'campaign-roi-analysis',
            task_id: marketingTaskId,
            period: marketing.marketing_metrics.period.label,
            confidence_score: marketing.confidence_score,
            collaboration_ready: marketing.collaboration_ready,
          },
        ],
      };
      return {
        text: summarizeRoiReview(answer),
        data: answer,
        metadata: {
          marketing_task_id: marketingTaskId,
          timings_ms: {
            marketing: Math.round(peerMs),
            narrative: Math.round(narrativeMs),
            total: Math.round(performance.now() - started),
          },
          llm:
            deps.llm === null
              ? null
              : {
                  model: deps.llm.modelName,
                  generations: usage.length,
                  prompt_tokens: usage.reduce((sum, item) => sum + item.promptTokens, 0),
                  completion_tokens: usage.reduce((sum, item) => sum + item.completionTokens, 0),
                  total_ms: usage.reduce((sum, item) => sum + item.totalMs, 0),
                  usage,
                },
          grounding: analysis?.grounding ?? null,
        },
      };
    },
  };
}
