// The `campaign-roi-analysis` A2A skill: reads campaign rows from the request (data part rows/CSV, CSV text,
// or a named period served from stored rows), computes the metrics, narrates them with the LLM when one is
// configured (grounded), and returns the campaign_roi answer with a confidence score computed in code. A
// follow-up in the same conversation (A2A contextId) that names no period and sends no rows asks about the
// period its conversation last asked about, or about one named relative to it ("and the quarter before?").
import { AppError, errorMessage, isAppError } from '../shared/errors.js';
import type { LlmClient, LlmUsage } from '../shared/llm_client.js';
import type { SkillDefinition, SkillInput, SkillResult } from '../shared/skill.js';
import { groundedShare } from '../shared/grounding.js';
import { RecentMap } from '../shared/recent_map.js';
import {
  findMonthInText,
  findQuarterInText,
  findRelativePeriod,
  findYearlessPeriod,
  isoDateToDay,
  mentionsPeriod,
  parseCampaignCsv,
  parseCampaignRecords,
  parsePeriodLabel,
  previousPeriod,
  shiftPeriod,
  type CampaignRow,
  type PeriodSpan,
} from './campaign_rows.js';
import {
  computeCampaignRoi,
  computeConfidence,
  type ConfidenceBreakdown,
  type MarketingMetrics,
  type PeriodRequest,
} from './roi.js';
import { narrateCampaignRoi, type RoiLlmAnalysis } from './roi_narrative.js';

/** The data part of a campaign-ROI answer. */
export interface CampaignRoiAnswer {
  readonly analysis_type: 'campaign_roi';
  readonly marketing_metrics: MarketingMetrics;
  readonly llm_analysis: RoiLlmAnalysis | null;
  /** Why there is no narrative (no model configured, or the model failed); absent when there is one. */
  readonly llm_unavailable_reason?: string;
  /** True when the metrics are valid and the narrative is grounded or absent. */
  readonly collaboration_ready: boolean;
  readonly confidence_score: number;
  readonly confidence: ConfidenceBreakdown;
}

/** What {@link analyzeCampaignRoi} needs besides the rows. */
export interface AnalyzeCampaignRoiOptions {
  readonly llm: LlmClient | null;
  readonly period?: PeriodRequest;
  /** The user's question, given to the narrator. */
  readonly question?: string;
  readonly signal?: AbortSignal;
  /** Why there is no LLM, reported when `llm` is null. */
  readonly llmUnavailableReason?: string;
}

/** An answer with the usage and timings that go into task metadata. */
export interface AnalyzedCampaignRoi {
  readonly answer: CampaignRoiAnswer;
  readonly usage: readonly LlmUsage[];
  readonly timingsMs: { readonly metrics: number; readonly narrative: number };
}

const NO_LLM_REASON =
  'no language model is configured for this spoke; the metrics are computed without a narrative';

function throwIfCanceled(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw new AppError('CANCELED', 'campaign-ROI analysis was canceled', { cause: signal.reason });
  }
}

/** Computes metrics, narrative (when an LLM is given) and confidence for validated rows. */
export async function analyzeCampaignRoi(
  rows: readonly CampaignRow[],
  options: AnalyzeCampaignRoiOptions,
): Promise<AnalyzedCampaignRoi> {
  throwIfCanceled(options.signal);
  const metricsStart = performance.now();
  const computation = computeCampaignRoi(rows, options.period);
  const metricsMs = performance.now() - metricsStart;
  throwIfCanceled(options.signal);

  let analysis: RoiLlmAnalysis | null = null;
  let unavailableReason: string | undefined;
  let usage: readonly LlmUsage[] = [];
  const narrativeStart = performance.now();
  if (options.llm === null) {
    unavailableReason = options.llmUnavailableReason ?? NO_LLM_REASON;
  } else {
    try {
      const narrated = await narrateCampaignRoi(
        options.llm,
        computation.metrics,
        options.question ?? 'Analyse campaign performance for an ROI calculation.',
        options.signal,
      );
      analysis = narrated.analysis;
      usage = narrated.usage;
    } catch (error) {
      // A cancel stops the whole task; any other model failure still leaves the computed metrics useful.
      if (options.signal?.aborted === true || isAppError(error, 'CANCELED')) throw error;
      const reason = errorMessage(error);
      unavailableReason = `the language model produced no usable narrative: ${reason}`;
    }
  }
  const narrativeMs = performance.now() - narrativeStart;

  const confidence = computeConfidence(computation, {
    groundedShare: analysis === null ? null : groundedShare(analysis.grounding),
  });
  const answer: CampaignRoiAnswer = {
    analysis_type: 'campaign_roi',
    marketing_metrics: computation.metrics,
    llm_analysis: analysis,
    ...(unavailableReason === undefined ? {} : { llm_unavailable_reason: unavailableReason }),
    collaboration_ready: analysis === null || analysis.grounding.ungrounded.length === 0,
    confidence_score: confidence.score,
    confidence,
  };
  return { answer, usage, timingsMs: { metrics: metricsMs, narrative: narrativeMs } };
}

// ---------------------------------------------------------------------------------------------------------
// Request parsing

/** Rows and period found in a request. */
interface RequestRows {
  readonly rows: CampaignRow[] | null;
  readonly period: PeriodRequest;
}

function periodFromData(value: unknown): PeriodRequest {
  if (value === undefined || value === null) return undefined;
  if (value === 'all') return 'all';
  if (typeof value === 'string') {
    const parsed = parsePeriodLabel(value);
    if (parsed !== null) return parsed;
  } else if (typeof value === 'object') {
    const { from, to } = value as { from?: unknown; to?: unknown };
    if (
      typeof from === 'string' &&
      typeof to === 'string' &&
      isoDateToDay(from) !== null &&
      isoDateToDay(to) !== null &&
      from <= to
    ) {
      return { label: `${from}..${to}`, from, to };
    }
  }
  throw new AppError(
    'VALIDATION_FAILED',
    `period must be "YYYY-Qn", "YYYY-MM", "YYYY-MM-DD", "all" or {from, to} ISO dates (got ${JSON.stringify(value)})`,
    { details: { field: 'period', value } },
  );
}

/** Splits message text into the prose and a CSV block that starts at a header naming campaign and spend. */
function splitCsvFromText(text: string): { prose: string; csv: string | null } {
  const lines = text.split(/\r?\n/);
  const headerIndex = lines.findIndex(
    (line) => /campaign/i.test(line) && /spend|cost/i.test(line) && line.includes(','),
  );
  if (headerIndex < 0) return { prose: text, csv: null };
  return { prose: lines.slice(0, headerIndex).join('\n'), csv: lines.slice(headerIndex).join('\n') };
}

function readRequest(input: SkillInput): RequestRows & { readonly prose: string } {
  let rows: CampaignRow[] | null = null;
  let period: PeriodRequest;
  input.data.forEach((part, index) => {
    if (part === null || typeof part !== 'object' || Array.isArray(part)) return;
    const data = part as { rows?: unknown; csv?: unknown; period?: unknown };
    if (rows === null && data.rows !== undefined) {
      if (!Array.isArray(data.rows)) {
        throw new AppError(
          'VALIDATION_FAILED',
          `data part ${index + 1}: rows must be an array of row objects`,
          {
            details: { field: 'rows', value: typeof data.rows },
          },
        );
      }
      rows = parseCampaignRecords(data.rows, { source: 'rows' });
    } else if (rows === null && data.csv !== undefined) {
      if (typeof data.csv !== 'string') {
        throw new AppError('VALIDATION_FAILED', `data part ${index + 1}: csv must be a string`, {
          details: { field: 'csv', value: typeof data.csv },
        });
      }
      rows = parseCampaignCsv(data.csv, { source: 'CSV' });
    }
    if (period === undefined && data.period !== undefined) period = periodFromData(data.period);
  });
  const { prose, csv } = splitCsvFromText(input.text);
  if (rows === null && csv !== null) rows = parseCampaignCsv(csv, { source: 'CSV in the message text' });
  if (period === undefined) period = findQuarterInText(prose) ?? findMonthInText(prose) ?? undefined;
  return { rows, period, prose };
}

/** Dependencies of the campaign-ROI skill. */
export interface CampaignRoiSkillDeps {
  /** The spoke's language model; null when none is configured (answers then carry no narrative). */
  readonly llm: LlmClient | null;
  /** Loads stored campaign rows for a date range (inclusive); used when a request names a period but sends no rows. */
  readonly loadStoredRows?: (period: { from: string; to: string }) => Promise<CampaignRow[]>;
  /** The latest date with stored campaign data (ISO), or null when none: resolves "Q4" or "last quarter". */
  readonly latestStoredDate?: () => Promise<string | null>;
  /** Why there is no LLM (e.g. the model file is missing), reported in answers. */
  readonly llmUnavailableReason?: string;
}

/** Id of the skill in the agent card. */
export const CAMPAIGN_ROI_SKILL_ID = 'campaign-roi-analysis';

/** Conversations whose last stored-data period is remembered for follow-ups (about the most recent ones). */
const REMEMBERED_CONVERSATIONS = 10_000;
/**
 * The period of a follow-up that names none itself, from the period its conversation last asked about
 * (`asked`): that period when the follow-up says nothing about periods, or the one it names relative to it
 * ("the quarter before"); undefined when the follow-up mentions a period it cannot read, or says nothing about
 * periods and `asked` is unknown. A relative period with no `asked` to count from is VALIDATION_FAILED.
 */
function followUpPeriod(prose: string, asked: PeriodSpan | undefined): PeriodSpan | undefined {
  const relative = findRelativePeriod(prose);
  // A follow-up that mentions a period it cannot read is refused, not answered about the earlier one.
  if (relative === null) return mentionsPeriod(prose) ? undefined : asked;
  if (asked === undefined) {
    throw new AppError(
      'VALIDATION_FAILED',
      `"${relative.phrase}" counts from the period this conversation last asked about, and it has asked about none: ` +
        'name a period such as "Q4 2025"',
      { details: { field: 'period', value: relative.phrase } },
    );
  }
  return shiftPeriod(asked, relative);
}

function formatMoney(text: string | null): string {
  if (text === null) return 'n/a';
  const [whole, fraction] = text.split('.');
  return `${whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${fraction}`;
}

function formatPercent(value: number | null): string {
  return value === null ? 'n/a' : `${(value * 100).toFixed(1)}%`;
}

function formatMultiple(value: number | null): string {
  return value === null ? 'n/a' : `${value.toFixed(2)}x`;
}

/** A plain-text summary built from computed numbers only (the narrative is appended when grounded). */
export function summarizeCampaignRoi(answer: CampaignRoiAnswer): string {
  const { marketing_metrics: metrics, llm_analysis: analysis } = answer;
  const overall = metrics.overall;
  const lines = [
    `Campaign ROI for ${metrics.period.label} (${metrics.period.data_from} to ${metrics.period.data_to}, ` +
      `${metrics.row_counts.analysed} rows): spend ${formatMoney(overall.spend)}, revenue ${formatMoney(overall.revenue)}, ` +
      `ROAS ${formatMultiple(overall.roas)}, ROI ${formatPercent(overall.roi.value)} (${overall.roi.basis}), ` +
      `CTR ${formatPercent(overall.ctr)}, CVR ${formatPercent(overall.cvr)}.`,
  ];
  const ranked = [...metrics.channels].filter((channel) => channel.roas !== null);
  ranked.sort((left, right) => right.roas! - left.roas!);
  if (ranked.length > 0) {
    lines.push(
      `ROAS by channel: ${ranked.map((channel) => `${channel.channel} ${formatMultiple(channel.roas)}`).join(', ')}.`,
    );
  }
  const revenueChange = overall.change_vs_previous?.revenue.relative_change ?? null;
  if (metrics.previous_period !== null) {
    lines.push(`Revenue change against ${metrics.previous_period.label}: ${formatPercent(revenueChange)}.`);
  }
  lines.push(
    `Confidence ${answer.confidence_score.toFixed(2)} (computed from sample sizes, completeness and grounding).`,
  );
  if (analysis === null) {
    lines.push(`No narrative: ${answer.llm_unavailable_reason ?? NO_LLM_REASON}.`);
  } else if (analysis.grounding.ungrounded.length === 0) {
    lines.push(analysis.performance_summary);
  } else {
    const numbers = analysis.grounding.ungrounded.map((item) => item.number).join(', ');
    lines.push(
      `The narrative quoted numbers that match no computed metric (${numbers}); it is flagged and not repeated here.`,
    );
  }
  return lines.join('\n');
}

/** Creates the `campaign-roi-analysis` skill. */
export function createCampaignRoiSkill(deps: CampaignRoiSkillDeps): SkillDefinition {
  const periodOfConversation = new RecentMap<string, PeriodSpan>(REMEMBERED_CONVERSATIONS);
  return {
    id: CAMPAIGN_ROI_SKILL_ID,
    name: 'Campaign ROI analysis',
    description:
      'Analyses campaign performance and ROI from campaign rows (spend, impressions, clicks, leads, conversions, ' +
      'revenue): CTR, CPC, CPM, CVR, CPA, CPL, ROAS and ROI with its cost basis, per channel and campaign, the funnel, ' +
      'change against the previous period, a grounded narrative and a confidence score.',
    tags: ['marketing', 'roi', 'campaigns', 'channels', 'funnel'],
    examples: [
      'Analyse Q4 2025 campaign performance for an ROI calculation',
      'What was our ROAS by channel last quarter?',
    ],
    inputSchema: {
      type: 'object',
      properties: {
        rows: { type: 'array', items: { type: 'object' }, description: 'campaign rows' },
        csv: { type: 'string', description: 'campaign rows as CSV with a header line' },
        period: {
          oneOf: [
            { type: 'string', description: 'YYYY-Qn, YYYY-MM, YYYY-MM-DD or "all"' },
            {
              type: 'object',
              properties: {
                from: { type: 'string', format: 'date' },
                to: { type: 'string', format: 'date' },
              },
              required: ['from', 'to'],
            },
          ],
        },
      },
    },
    outputSchema: {
      type: 'object',
      properties: {
        analysis_type: { const: 'campaign_roi' },
        marketing_metrics: { type: 'object' },
        llm_analysis: { oneOf: [{ type: 'object' }, { type: 'null' }] },
        llm_unavailable_reason: { type: 'string' },
        collaboration_ready: { type: 'boolean' },
        confidence_score: { type: 'number', minimum: 0, maximum: 1 },
      },
      required: [
        'analysis_type',
        'marketing_metrics',
        'llm_analysis',
        'collaboration_ready',
        'confidence_score',
      ],
    },
    async handler(input, context): Promise<SkillResult> {
      const started = performance.now();
      throwIfCanceled(context.signal);
      const request = readRequest(input);
      let rows = request.rows;
      let period = request.period;
      let source: 'request' | 'stored' = 'request';
      if (rows === null) {
        const yearless = period === undefined ? findYearlessPeriod(request.prose) : null;
        if (yearless !== null && deps.latestStoredDate !== undefined) {
          const latest = await deps.latestStoredDate();
          if (latest !== null) period = yearless(latest);
        }
        if (period === undefined && yearless === null) {
          period = followUpPeriod(request.prose, periodOfConversation.get(input.contextId));
        }
        if (period === undefined || period === 'all') {
          throw new AppError(
            'VALIDATION_FAILED',
            'no campaign rows: send {rows:[…]} or {csv:"…"} in a data part, CSV text, or name a period such as "Q4 2025"',
            { details: { field: 'rows', value: null } },
          );
        }
        if (deps.loadStoredRows === undefined) {
          throw new AppError(
            'VALIDATION_FAILED',
            `no campaign rows in the request and no stored campaign data is configured for period ${period.label}`,
            { details: { field: 'rows', value: null, period: period.label } },
          );
        }
        context.progress(`loading stored campaign rows for ${period.label}`);
        rows = await deps.loadStoredRows({ from: previousPeriod(period).from, to: period.to });
        if (rows.length === 0) {
          const latest = (await deps.latestStoredDate?.()) ?? null;
          throw new AppError(
            'VALIDATION_FAILED',
            `no stored campaign rows for ${period.label} or the period before it` +
              (latest === null
                ? ' (import some with `agenthub import metrics FILE`)'
                : ` (the latest stored data is from ${latest})`),
            { details: { field: 'period', value: period.label, latestStoredDate: latest } },
          );
        }
        source = 'stored';
        periodOfConversation.set(input.contextId, period);
      }
      const parseMs = performance.now() - started;
      context.progress(`computing metrics over ${rows.length} rows`);
      const analyzed = await analyzeCampaignRoi(rows, {
        llm: deps.llm,
        period,
        question: request.prose.trim() === '' ? undefined : request.prose,
        signal: context.signal,
        ...(deps.llmUnavailableReason === undefined
          ? {}
          : { llmUnavailableReason: deps.llmUnavailableReason }),
      });
      const { answer } = analyzed;
      const usage = analyzed.usage;
      return {
        text: summarizeCampaignRoi(answer),
        data: answer,
        metadata: {
          rows_source: source,
          rows: rows.length,
          timings_ms: {
            read_rows: Math.round(parseMs),
            metrics: Math.round(analyzed.timingsMs.metrics),
            narrative: Math.round(analyzed.timingsMs.narrative),
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
                  reused_prefix_tokens: usage.reduce((sum, item) => sum + item.reusedPrefixTokens, 0),
                  total_ms: usage.reduce((sum, item) => sum + item.totalMs, 0),
                  usage,
                },
          grounding: answer.llm_analysis?.grounding ?? null,
          confidence: answer.confidence,
        },
      };
    },
  };
}
