// The LLM narrative of a campaign-ROI answer: the bounded JSON schema the model is constrained to, our own
// validation of its output, the prompt built from the computed metrics, and grounding of every quoted number.
import { z } from 'zod';
import { AppError } from '../shared/errors.js';
import {
  FactSet,
  collectFacts,
  generateGroundedNarrative,
  type GroundingReport,
  type UngroundedStatement,
} from '../shared/grounding.js';
import type { JsonSchema, LlmClient, LlmUsage } from '../shared/llm_client.js';
import type { GroupWithChange, MarketingMetrics } from './roi.js';

/** The narrative sections the model writes. */
export interface RoiNarrative {
  readonly performance_summary: string;
  readonly channel_analysis: readonly { readonly channel: string; readonly assessment: string }[];
  readonly audience_insights: string | null;
  readonly roi_analysis: string;
  readonly optimisation_recommendations: readonly string[];
}

/** The narrative plus its grounding report, as returned in `llm_analysis`. */
export interface RoiLlmAnalysis extends RoiNarrative {
  readonly grounding: GroundingReport;
  /** 1, or 2 when the first narrative misquoted a number and was regenerated with feedback. */
  readonly generations: number;
  readonly first_attempt_ungrounded: readonly UngroundedStatement[];
  readonly model: string;
}

const LIMITS = {
  summary: 400,
  channelName: 24,
  assessment: 200,
  channels: 6,
  audience: 300,
  roi: 400,
  recommendation: 200,
  recommendations: 4,
} as const;

const boundedString = (maxLength: number) => ({ type: 'string', maxLength }) as const;

/**
 * JSON schema of the narrative. Every string has maxLength and every array maxItems; the nullable string uses
 * oneOf (LLM.md §2.6: `type: ["string","null"]` loses maxLength in the grammar). No numeric fields.
 */
export const ROI_NARRATIVE_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    performance_summary: {
      ...boundedString(LIMITS.summary),
      description: 'Two to four sentences on overall performance',
    },
    channel_analysis: {
      type: 'array',
      maxItems: LIMITS.channels,
      items: {
        type: 'object',
        properties: {
          channel: boundedString(LIMITS.channelName),
          assessment: boundedString(LIMITS.assessment),
        },
        required: ['channel', 'assessment'],
        additionalProperties: false,
      },
    },
    audience_insights: {
      oneOf: [boundedString(LIMITS.audience), { type: 'null' }],
      description: 'null when the data has no audience or segment information',
    },
    roi_analysis: boundedString(LIMITS.roi),
    optimisation_recommendations: {
      type: 'array',
      maxItems: LIMITS.recommendations,
      items: boundedString(LIMITS.recommendation),
    },
  },
  required: [
    'performance_summary',
    'channel_analysis',
    'audience_insights',
    'roi_analysis',
    'optimisation_recommendations',
  ],
  additionalProperties: false,
};

// Lengths in code points, as the grammar counts them (JS .length counts UTF-16 units).
const text = (maxLength: number) =>
  z.string().refine((value) => [...value].length <= maxLength, `at most ${maxLength} characters`);

const narrativeSchema = z
  .object({
    performance_summary: text(LIMITS.summary),
    channel_analysis: z
      .array(z.object({ channel: text(LIMITS.channelName), assessment: text(LIMITS.assessment) }).strict())
      .max(LIMITS.channels),
    audience_insights: text(LIMITS.audience).nullable(),
    roi_analysis: text(LIMITS.roi),
    optimisation_recommendations: z.array(text(LIMITS.recommendation)).max(LIMITS.recommendations),
  })
  .strict();

/** Validates model output against the narrative schema; throws AppError `LLM_OUTPUT_INVALID` saying what is wrong. */
export function validateRoiNarrative(value: unknown): RoiNarrative {
  const parsed = narrativeSchema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
    throw new AppError('LLM_OUTPUT_INVALID', `narrative does not match its schema: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  return parsed.data;
}

/** System prompt shared by every ROI narrative (its evaluated prefix is reused across requests). */
export const ROI_NARRATIVE_SYSTEM = [
  'You are a marketing analyst writing for a finance team.',
  'You receive campaign metrics that were computed by code. Explain what they mean.',
  'Rules: quote only numbers that appear in the DATA, rounded as shown or to fewer digits; show fractions',
  '(ctr, cvr, roi, shares, relative changes) as percentages and roas as a multiple such as 4.2x; never add,',
  'subtract or divide numbers yourself; state the ROI cost basis; set audience_insights to null when the data',
  'has no audience or segment information; keep recommendations concrete and tied to the channel figures.',
].join(' ');

function significant(value: number | null, digits = 4): number | null {
  if (value === null || value === 0) return value;
  return Number(value.toPrecision(digits));
}

function compactGroup(group: GroupWithChange): Record<string, unknown> {
  const change = group.change_vs_previous;
  return {
    spend: group.spend,
    revenue: group.revenue,
    gross_profit: group.gross_profit,
    impressions: group.impressions,
    clicks: group.clicks,
    leads: group.leads,
    conversions: group.conversions,
    ctr: significant(group.ctr),
    cvr: significant(group.cvr),
    cpc: significant(group.cpc),
    cpm: significant(group.cpm),
    cpl: significant(group.cpl),
    cpa: significant(group.cpa),
    roas: significant(group.roas),
    roi: significant(group.roi.value),
    roi_basis: group.roi.basis,
    change_vs_previous:
      change === null
        ? null
        : {
            spend: significant(change.spend.relative_change),
            revenue: significant(change.revenue.relative_change),
            conversions: significant(change.conversions.relative_change),
            roas: significant(change.roas.relative_change),
            cpa: significant(change.cpa.relative_change),
          },
  };
}

/** The user turn: the computed metrics in compact form (overall, channels, the ten largest campaigns). */
export function buildRoiNarrativePrompt(metrics: MarketingMetrics, question: string): string {
  const largestCampaigns = [...metrics.campaigns]
    .sort((left, right) => Number(right.spend) - Number(left.spend))
    .slice(0, 10)
    .map((campaign) => ({
      campaign: campaign.campaign,
      channels: campaign.channels,
      spend: campaign.spend,
      revenue: campaign.revenue,
      roas: significant(campaign.roas),
      roi: significant(campaign.roi.value),
      cpa: significant(campaign.cpa),
    }));
  const data = {
    period: metrics.period.label,
    previous_period: metrics.previous_period?.label ?? null,
    overall: compactGroup(metrics.overall),
    channels: metrics.channels.map((channel) => ({
      channel: channel.channel,
      share_of_spend: significant(channel.share_of_spend),
      share_of_revenue: significant(channel.share_of_revenue),
      ...compactGroup(channel),
    })),
    largest_campaigns: largestCampaigns,
    change_values_are: 'relative changes against the previous period (0.1 = +10 %)',
  };
  return `QUESTION: ${question.slice(0, 500)}\nDATA: ${JSON.stringify(data)}`;
}

/**
 * The facts a campaign-ROI narrative may quote: every number of the metrics. The prompt shows some of them rounded
 * to 4 significant digits; a quote of those digits stays within its own half-unit tolerance of the exact value.
 */
export function roiFacts(metrics: MarketingMetrics): FactSet {
  return new FactSet(collectFacts(metrics));
}

/** A narrated analysis and the usage of each generation. */
export interface NarratedRoi {
  readonly analysis: RoiLlmAnalysis;
  readonly usage: readonly LlmUsage[];
}

/** Writes and grounds the narrative for computed metrics (regenerates once when it misquotes, then flags). */
export async function narrateCampaignRoi(
  llm: LlmClient,
  metrics: MarketingMetrics,
  question: string,
  signal?: AbortSignal,
): Promise<NarratedRoi> {
  const result = await generateGroundedNarrative({
    llm,
    system: ROI_NARRATIVE_SYSTEM,
    prompt: buildRoiNarrativePrompt(metrics, question),
    schema: ROI_NARRATIVE_SCHEMA,
    validate: validateRoiNarrative,
    facts: roiFacts(metrics),
    sectionsOf: (value) => ({ ...value }),
    ...(signal === undefined ? {} : { signal }),
  });
  return {
    analysis: {
      ...result.value,
      grounding: result.grounding,
      generations: result.generations,
      first_attempt_ungrounded: result.firstAttemptUngrounded,
      model: llm.modelName,
    },
    usage: result.usage,
  };
}
