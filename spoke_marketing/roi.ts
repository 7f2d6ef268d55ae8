// Campaign-ROI analysis without the narrative: picks the analysed and previous periods, aggregates rows into
// overall / per-channel / per-campaign metrics with change against the previous period, and computes the
// confidence score from sample sizes, data completeness and (when a narrative exists) grounding.
import { AppError } from '../shared/errors.js';
import {
  dayToIsoDate,
  isoDateToDay,
  previousPeriod,
  quarterContaining,
  toCampaignTable,
  type CampaignRow,
  type CampaignTable,
  type PeriodSpan,
} from './campaign_rows.js';
import {
  accumulateWindows,
  conversionSample,
  measuredCellCount,
  metricsOfBlock,
  optionalFieldCounts,
  rollUp,
  roundTo,
  rowsOfBlock,
  spendOfBlock,
  wilsonInterval,
  type GroupMetrics,
  type WindowAccumulators,
} from './metrics.js';

/** A period as reported: the requested span plus the days that actually carry data. */
export interface ReportedPeriod extends PeriodSpan {
  readonly data_from: string;
  readonly data_to: string;
}

/** One metric compared with the previous period (money in currency units as numbers here). */
export interface MetricChange {
  readonly previous: number | null;
  readonly current: number | null;
  /** current − previous. */
  readonly change: number | null;
  /** (current − previous) / previous; null when previous is 0 or missing. */
  readonly relative_change: number | null;
}

/** The metrics compared against the previous period. */
export const CHANGE_METRICS = [
  'spend',
  'impressions',
  'clicks',
  'leads',
  'conversions',
  'revenue',
  'ctr',
  'cvr',
  'cpa',
  'roas',
  'roi',
] as const;

/** Change of each compared metric against the previous period. */
export type PeriodChange = Readonly<Record<(typeof CHANGE_METRICS)[number], MetricChange>>;

/** Group metrics plus the comparison with the previous period (null when that group has no previous rows). */
export type GroupWithChange = GroupMetrics & { readonly change_vs_previous: PeriodChange | null };

/** A channel's metrics. */
export type ChannelMetrics = {
  readonly channel: string;
  readonly share_of_spend: number | null;
  readonly share_of_revenue: number | null;
} & GroupWithChange;

/** A campaign's metrics (a campaign name used in several channels is one campaign). */
export type CampaignMetrics = {
  readonly campaign: string;
  readonly channels: readonly string[];
} & GroupWithChange;

/** Everything computed from the rows: the `marketing_metrics` of a campaign_roi answer. */
export interface MarketingMetrics {
  readonly period: ReportedPeriod;
  /** The period before the analysed one, when the data has rows in it. */
  readonly previous_period: ReportedPeriod | null;
  readonly row_counts: {
    readonly total: number;
    readonly analysed: number;
    readonly previous: number;
    /** Rows in neither period (other dates, or spans that straddle a period edge). */
    readonly outside: number;
  };
  readonly money_format: string;
  readonly overall: GroupWithChange;
  readonly channels: readonly ChannelMetrics[];
  readonly campaigns: readonly CampaignMetrics[];
}

/** Which period to analyse: a span, `'all'` (every row, no comparison), or undefined (latest quarter). */
export type PeriodRequest = PeriodSpan | 'all' | undefined;

/** Inputs of the confidence score besides the metrics. */
export interface ConfidenceInputs {
  /** Share of quoted numbers that were grounded; `null` when no narrative was produced. */
  readonly groundedShare: number | null;
}

/** The confidence score with its parts and weights, all computed in code. */
export interface ConfidenceBreakdown {
  readonly score: number;
  readonly components: {
    /** Spend-weighted mean over channels of max(0, 1 − Wilson 95 % half-width / CVR). */
    readonly sample_size: number;
    /** 0.8 × share of measured cells present + 0.2 × share of optional cells (cost basis, new customers). */
    readonly completeness: number;
    /** Grounded share of quoted numbers; null when there is no narrative (then its weight is redistributed). */
    readonly grounding: number | null;
  };
  readonly weights: {
    readonly sample_size: number;
    readonly completeness: number;
    readonly grounding: number;
  };
}

/** Weights of the confidence components (they sum to 1). */
export const CONFIDENCE_WEIGHTS = Object.freeze({ sample_size: 0.5, completeness: 0.3, grounding: 0.2 });

/** Intermediate state kept for the confidence score and the skill. */
export interface CampaignRoiComputation {
  readonly metrics: MarketingMetrics;
  readonly accumulators: WindowAccumulators;
  readonly table: CampaignTable;
}

function latestDay(table: CampaignTable): number {
  let latest = -Infinity;
  for (let i = 0; i < table.length; i += 1) if (table.toDay[i]! > latest) latest = table.toDay[i]!;
  return latest;
}

function earliestDay(table: CampaignTable): number {
  let earliest = Infinity;
  for (let i = 0; i < table.length; i += 1) if (table.fromDay[i]! < earliest) earliest = table.fromDay[i]!;
  return earliest;
}

function resolvePeriods(
  table: CampaignTable,
  request: PeriodRequest,
): { analysed: PeriodSpan; previous: PeriodSpan | null } {
  if (request === 'all') {
    const from = dayToIsoDate(earliestDay(table));
    const to = dayToIsoDate(latestDay(table));
    return { analysed: { label: `${from}..${to}`, from, to }, previous: null };
  }
  const analysed = request ?? quarterContaining(dayToIsoDate(latestDay(table)));
  return { analysed, previous: previousPeriod(analysed) };
}

function toWindow(period: PeriodSpan): { fromDay: number; toDay: number } {
  return { fromDay: isoDateToDay(period.from)!, toDay: isoDateToDay(period.to)! };
}

function numeric(value: string | number | null): number | null {
  if (value === null) return null;
  return typeof value === 'number' ? value : Number(value);
}

function compare(current: GroupMetrics, previous: GroupMetrics): PeriodChange {
  const entries = CHANGE_METRICS.map((name) => {
    const now = numeric(name === 'roi' ? current.roi.value : current[name]);
    const before = numeric(name === 'roi' ? previous.roi.value : previous[name]);
    const change = now === null || before === null ? null : roundTo(now - before, 6);
    const relative = change === null || before === 0 || before === null ? null : roundTo(change / before, 6);
    return [name, { previous: before, current: now, change, relative_change: relative }] as const;
  });
  return Object.fromEntries(entries) as unknown as PeriodChange;
}

function withChange(accumulators: WindowAccumulators, pairIds: readonly number[]): GroupWithChange {
  const current = metricsOfBlock(rollUp(accumulators, pairIds, 0));
  const previousBlock = rollUp(accumulators, pairIds, 1);
  const change = rowsOfBlock(previousBlock) > 0 ? compare(current, metricsOfBlock(previousBlock)) : null;
  return { ...current, change_vs_previous: change };
}

/**
 * Computes the `marketing_metrics` of a campaign-ROI answer from validated rows (or a prepared table).
 * Throws AppError `VALIDATION_FAILED` when there are no rows or none in the analysed period.
 */
export function computeCampaignRoi(
  input: readonly CampaignRow[] | CampaignTable,
  period?: PeriodRequest,
): CampaignRoiComputation {
  const table = Array.isArray(input)
    ? toCampaignTable(input as readonly CampaignRow[])
    : (input as CampaignTable);
  if (table.length === 0) {
    throw new AppError('VALIDATION_FAILED', 'no campaign rows to analyse', {
      details: { field: 'rows', value: 0 },
    });
  }
  const { analysed, previous } = resolvePeriods(table, period);
  const accumulators = accumulateWindows(
    table,
    toWindow(analysed),
    previous === null ? null : toWindow(previous),
  );
  const [analysedSpan, previousSpan] = accumulators.dataSpan;
  if (analysedSpan === null) {
    const covers = `${dayToIsoDate(earliestDay(table))}..${dayToIsoDate(latestDay(table))}`;
    throw new AppError(
      'VALIDATION_FAILED',
      `no rows in period ${analysed.label} (the data covers ${covers})`,
      {
        details: { field: 'period', value: analysed.label },
      },
    );
  }
  const allPairs = Array.from({ length: accumulators.pairs }, (_, index) => index);
  const overall = withChange(accumulators, allPairs);
  const totalSpend = spendOfBlock(rollUp(accumulators, allPairs, 0));
  const totalRevenue = overall.revenue === null ? 0 : Number(overall.revenue);

  const channels: ChannelMetrics[] = [];
  table.channels.forEach((channel, channelId) => {
    const pairIds = allPairs.filter((pairId) => table.pairChannel[pairId] === channelId);
    const block = rollUp(accumulators, pairIds, 0);
    if (rowsOfBlock(block) === 0) return;
    const share = totalSpend > 0 ? roundTo(spendOfBlock(block) / totalSpend, 6) : null;
    const metrics = withChange(accumulators, pairIds);
    const revenueShare =
      totalRevenue > 0 && metrics.revenue !== null
        ? roundTo(Number(metrics.revenue) / totalRevenue, 6)
        : null;
    channels.push({ channel, share_of_spend: share, share_of_revenue: revenueShare, ...metrics });
  });
  const campaigns: CampaignMetrics[] = [];
  table.campaigns.forEach((campaign, campaignId) => {
    const pairIds = allPairs.filter((pairId) => table.pairCampaign[pairId] === campaignId);
    if (rowsOfBlock(rollUp(accumulators, pairIds, 0)) === 0) return;
    const channelNames = [...new Set(pairIds.map((pairId) => table.channels[table.pairChannel[pairId]!]!))];
    campaigns.push({ campaign, channels: channelNames, ...withChange(accumulators, pairIds) });
  });

  const report = (span: PeriodSpan, data: { fromDay: number; toDay: number }): ReportedPeriod => ({
    ...span,
    data_from: dayToIsoDate(data.fromDay),
    data_to: dayToIsoDate(data.toDay),
  });
  const metrics: MarketingMetrics = {
    period: report(analysed, analysedSpan),
    previous_period: previous !== null && previousSpan !== null ? report(previous, previousSpan) : null,
    row_counts: {
      total: table.length,
      analysed: accumulators.rowsInWindow[0],
      previous: accumulators.rowsInWindow[1],
      outside: accumulators.rowsOutside,
    },
    money_format:
      'decimal strings with 2 places in the currency of the input (exact sums of the input amounts)',
    overall,
    channels,
    campaigns,
  };
  return { metrics, accumulators, table };
}

/**
 * The confidence score in [0, 1]: weighted mean of sample-size adequacy, data completeness and grounding
 * ({@link CONFIDENCE_WEIGHTS}). Without a narrative, grounding is neutral: its weight is spread over the others.
 */
export function computeConfidence(
  computation: CampaignRoiComputation,
  inputs: ConfidenceInputs,
): ConfidenceBreakdown {
  const { accumulators, table } = computation;
  const allPairs = Array.from({ length: accumulators.pairs }, (_, index) => index);
  let weightedPrecision = 0;
  let weightTotal = 0;
  table.channels.forEach((_, channelId) => {
    const block = rollUp(
      accumulators,
      allPairs.filter((pairId) => table.pairChannel[pairId] === channelId),
      0,
    );
    if (rowsOfBlock(block) === 0) return;
    const sample = conversionSample(block);
    const interval = wilsonInterval(
      Math.round(Math.min(sample.conversions, sample.clicks)),
      Math.round(sample.clicks),
    );
    const precision =
      interval === null || interval.estimate === 0
        ? 0
        : Math.max(0, 1 - interval.halfWidth / interval.estimate);
    // Spend-weighted so a tiny test channel does not dominate; +1 micro keeps zero-spend channels counted.
    const weight = spendOfBlock(block) + 1;
    weightedPrecision += precision * weight;
    weightTotal += weight;
  });
  const sampleSize = weightTotal > 0 ? weightedPrecision / weightTotal : 0;

  const overall = rollUp(accumulators, allPairs, 0);
  const rows = rowsOfBlock(overall);
  const optional = optionalFieldCounts(overall);
  const measuredShare = rows > 0 ? measuredCellCount(overall) / (rows * 5) : 0;
  const optionalShare = rows > 0 ? (optional.costBasisRows + optional.newCustomerRows) / (rows * 2) : 0;
  const completeness = 0.8 * measuredShare + 0.2 * optionalShare;

  const grounding = inputs.groundedShare;
  const weights = CONFIDENCE_WEIGHTS;
  const score =
    grounding === null
      ? (weights.sample_size * sampleSize + weights.completeness * completeness) /
        (weights.sample_size + weights.completeness)
      : weights.sample_size * sampleSize +
        weights.completeness * completeness +
        weights.grounding * grounding;
  return {
    score: roundTo(Math.min(1, Math.max(0, score)), 4),
    components: {
      sample_size: roundTo(sampleSize, 4),
      completeness: roundTo(completeness, 4),
      grounding: grounding === null ? null : roundTo(grounding, 4),
    },
    weights,
  };
}
