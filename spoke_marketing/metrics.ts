// Marketing KPI formulas (MARKETING.md §1) and the columnar aggregation behind them: one pass over a
// CampaignTable fills per-(campaign, channel) accumulators for the analysed and previous windows, which roll up
// to overall / per-channel / per-campaign metrics. Zero denominators give null, never NaN or Infinity.
import { AppError } from '../shared/errors.js';
import type { MEASURED_FIELDS } from './campaign_rows.js';
import { MICROS_PER_UNIT, type CampaignTable } from './campaign_rows.js';

// ---------------------------------------------------------------------------------------------------------
// Formulas (money in currency units; counts as numbers)

/** numerator / denominator, or `null` when either is missing, the denominator is 0 or the result is not finite. */
export function ratio(numerator: number | null, denominator: number | null): number | null {
  if (numerator === null || denominator === null || denominator === 0) return null;
  const value = numerator / denominator;
  return Number.isFinite(value) ? value : null;
}

/** Click-through rate: clicks / impressions. */
export const ctr = (clicks: number | null, impressions: number | null): number | null =>
  ratio(clicks, impressions);
/** Average cost per click: spend / clicks. */
export const cpc = (spend: number | null, clicks: number | null): number | null => ratio(spend, clicks);
/** Cost per thousand impressions: spend / impressions × 1000. */
export function cpm(spend: number | null, impressions: number | null): number | null {
  const perImpression = ratio(spend, impressions);
  return perImpression === null ? null : perImpression * 1000;
}
/** Conversion rate: conversions / clicks (Google: per interaction). */
export const cvr = (conversions: number | null, clicks: number | null): number | null =>
  ratio(conversions, clicks);
/** Cost per lead: spend / leads. */
export const cpl = (spend: number | null, leads: number | null): number | null => ratio(spend, leads);
/** Cost per acquisition (conversion): spend / conversions. */
export const cpa = (spend: number | null, conversions: number | null): number | null =>
  ratio(spend, conversions);
/** Return on ad spend: revenue / spend (a multiple, 4.0 = 4.0×). */
export const roas = (revenue: number | null, spend: number | null): number | null => ratio(revenue, spend);

/** Finance ROI with cost of goods: (revenue − (COGS + ad spend)) / (COGS + ad spend). Google Ads help 14090. */
export function roiAdSpendPlusCogs(revenue: number, costOfGoods: number, adSpend: number): number | null {
  const totalCost = costOfGoods + adSpend;
  return ratio(revenue - totalCost, totalCost);
}

/** ROI when only gross margin is known: (revenue × margin − ad spend) / ad spend = (gross profit − spend) / spend. */
export function roiMarginAdjusted(grossProfit: number, adSpend: number): number | null {
  return ratio(grossProfit - adSpend, adSpend);
}

/** ROI on ad spend alone (no product cost known): (revenue − ad spend) / ad spend = ROAS − 1. */
export function roiAdSpendOnly(revenue: number, adSpend: number): number | null {
  return ratio(revenue - adSpend, adSpend);
}

/** A two-sided Wilson score interval for a binomial proportion. */
export interface WilsonInterval {
  readonly estimate: number;
  readonly low: number;
  readonly high: number;
  readonly halfWidth: number;
}

/**
 * Wilson score interval of `successes` out of `trials` at normal quantile `z` (1.96 ≈ 95 %). `null` when there
 * are no trials. Successes above trials (view-through conversions) are capped at trials.
 */
export function wilsonInterval(successes: number, trials: number, z = 1.96): WilsonInterval | null {
  if (!(trials > 0)) return null;
  const p = Math.min(1, Math.max(0, successes / trials));
  const z2 = z * z;
  const denominator = 1 + z2 / trials;
  const centre = (p + z2 / (2 * trials)) / denominator;
  const halfWidth = (z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / denominator;
  return {
    estimate: p,
    low: Math.max(0, centre - halfWidth),
    high: Math.min(1, centre + halfWidth),
    halfWidth,
  };
}

/** Rounds to `decimals` places for stable JSON (ratios are reported to 6 places). */
export function roundTo(value: number, decimals = 6): number {
  const factor = 10 ** decimals;
  const rounded = Math.round(value * factor) / factor;
  return Object.is(rounded, -0) ? 0 : rounded;
}

function roundOrNull(value: number | null, decimals = 6): number | null {
  return value === null ? null : roundTo(value, decimals);
}

/**
 * Formats integer micro-units as a decimal string with 2 places (half to even), e.g. 1234567890 → "1234.57".
 * Throws when the amount is beyond the exactly representable range (≈ 9 billion currency units).
 */
export function microsToDecimal(micros: number): string {
  const whole = Math.round(micros);
  if (!Number.isSafeInteger(whole)) {
    throw new AppError(
      'VALIDATION_FAILED',
      `a money total (${micros / MICROS_PER_UNIT}) exceeds the exact range of ${Number.MAX_SAFE_INTEGER / MICROS_PER_UNIT} currency units`,
      { details: { field: 'money_total', value: micros / MICROS_PER_UNIT } },
    );
  }
  const negative = whole < 0;
  const magnitude = Math.abs(whole);
  let cents = Math.floor(magnitude / 10_000);
  const remainder = magnitude - cents * 10_000;
  if (remainder > 5_000 || (remainder === 5_000 && cents % 2 === 1)) cents += 1;
  const units = Math.floor(cents / 100);
  const text = `${units}.${String(cents % 100).padStart(2, '0')}`;
  return negative && cents !== 0 ? `-${text}` : text;
}

/** Micro-units to currency units as a number (for ratios and narration). */
export function microsToUnits(micros: number): number {
  return micros / MICROS_PER_UNIT;
}

// ---------------------------------------------------------------------------------------------------------
// Accumulators: one block of ACC_FIELDS float64 per (pair, window). Money in micro-units: sums of integers stay
// exact in float64 up to 2^53, and microsToDecimal refuses anything beyond.

const ROWS = 0;
const SPEND = 1;
const IMPR = 2;
const IMPR_N = 3;
const IMPR_SPEND = 4;
const CLK = 5;
const CLK_N = 6;
const CLK_SPEND = 7;
const LEAD = 8;
const LEAD_N = 9;
const LEAD_SPEND = 10;
const CONV = 11;
const CONV_N = 12;
const CONV_SPEND = 13;
const REV = 14;
const REV_N = 15;
const REV_SPEND = 16;
const CTR_CLK = 17; // clicks over rows reporting clicks and impressions
const CTR_IMPR = 18;
const CVR_CONV = 19; // conversions over rows reporting conversions and clicks
const CVR_CLK = 20;
const CL_LEAD = 21; // leads over rows reporting leads and clicks
const CL_CLK = 22;
const LC_CONV = 23; // conversions over rows reporting conversions and leads
const LC_LEAD = 24;
const COGS_N = 25; // rows reporting revenue and cost of goods
const COGS = 26;
const GP_N = 27; // rows reporting revenue and either cost of goods or margin
const GP = 28;
const NC = 29;
const NC_N = 30;
const NC_SPEND = 31;
/** Number of float64 accumulators per (group, window). */
export const ACC_FIELDS = 32;

/** A window of days `[fromDay, toDay]` (days since 1970-01-01, inclusive). */
export interface DayWindow {
  readonly fromDay: number;
  readonly toDay: number;
}

/** Result of one pass over a table. */
export interface WindowAccumulators {
  /** Number of (campaign, channel) pairs in the table. */
  readonly pairs: number;
  /** `pairs × 2 × ACC_FIELDS`; window 0 = analysed, 1 = previous. */
  readonly values: Float64Array;
  /** Rows counted in each window. */
  readonly rowsInWindow: readonly [number, number];
  /** Rows in neither window (other periods, or spans that straddle a window edge). */
  readonly rowsOutside: number;
  /** First and last day with data in each window (`null` when the window has no rows). */
  readonly dataSpan: readonly [DayWindow | null, DayWindow | null];
}

/**
 * The hot path: one pass over the table assigning each row to the analysed window, the previous window or
 * neither (a row counts only when its whole span lies inside a window), adding its cells into its pair's
 * block. No allocation per row.
 */
export function accumulateWindows(
  table: CampaignTable,
  analysed: DayWindow,
  previous: DayWindow | null,
): WindowAccumulators {
  const pairs = table.pairChannel.length;
  const values = new Float64Array(pairs * 2 * ACC_FIELDS);
  const { pair, fromDay, toDay, spendMicros, impressions, clicks, leads, conversions } = table;
  const { revenueMicros, margin, costOfGoodsMicros, newCustomers } = table;
  const a0 = analysed.fromDay;
  const a1 = analysed.toDay;
  const hasPrevious = previous !== null;
  const p0 = hasPrevious ? previous.fromDay : 0;
  const p1 = hasPrevious ? previous.toDay : -1;
  let inAnalysed = 0;
  let inPrevious = 0;
  let outside = 0;
  let minA = Infinity;
  let maxA = -Infinity;
  let minP = Infinity;
  let maxP = -Infinity;
  for (let i = 0; i < table.length; i += 1) {
    const from = fromDay[i]!;
    const to = toDay[i]!;
    let window: number;
    if (from >= a0 && to <= a1) {
      window = 0;
      inAnalysed += 1;
      if (from < minA) minA = from;
      if (to > maxA) maxA = to;
    } else if (from >= p0 && to <= p1) {
      window = 1;
      inPrevious += 1;
      if (from < minP) minP = from;
      if (to > maxP) maxP = to;
    } else {
      outside += 1;
      continue;
    }
    const base = (pair[i]! * 2 + window) * ACC_FIELDS;
    const spend = spendMicros[i]!;
    const impr = impressions[i]!;
    const clk = clicks[i]!;
    const lead = leads[i]!;
    const conv = conversions[i]!;
    const rev = revenueMicros[i]!;
    values[base + ROWS]! += 1;
    values[base + SPEND]! += spend;
    // x === x is false only for NaN (a missing cell).
    const hasImpr = impr === impr;
    const hasClk = clk === clk;
    const hasLead = lead === lead;
    const hasConv = conv === conv;
    if (hasImpr) {
      values[base + IMPR]! += impr;
      values[base + IMPR_N]! += 1;
      values[base + IMPR_SPEND]! += spend;
    }
    if (hasClk) {
      values[base + CLK]! += clk;
      values[base + CLK_N]! += 1;
      values[base + CLK_SPEND]! += spend;
      if (hasImpr) {
        values[base + CTR_CLK]! += clk;
        values[base + CTR_IMPR]! += impr;
      }
      if (hasConv) {
        values[base + CVR_CONV]! += conv;
        values[base + CVR_CLK]! += clk;
      }
      if (hasLead) {
        values[base + CL_LEAD]! += lead;
        values[base + CL_CLK]! += clk;
      }
    }
    if (hasLead) {
      values[base + LEAD]! += lead;
      values[base + LEAD_N]! += 1;
      values[base + LEAD_SPEND]! += spend;
      if (hasConv) {
        values[base + LC_CONV]! += conv;
        values[base + LC_LEAD]! += lead;
      }
    }
    if (hasConv) {
      values[base + CONV]! += conv;
      values[base + CONV_N]! += 1;
      values[base + CONV_SPEND]! += spend;
    }
    if (rev === rev) {
      values[base + REV]! += rev;
      values[base + REV_N]! += 1;
      values[base + REV_SPEND]! += spend;
      const cogs = costOfGoodsMicros[i]!;
      if (cogs === cogs) {
        values[base + COGS_N]! += 1;
        values[base + COGS]! += cogs;
        values[base + GP_N]! += 1;
        values[base + GP]! += rev - cogs;
      } else {
        const m = margin[i]!;
        if (m === m) {
          values[base + GP_N]! += 1;
          values[base + GP]! += rev * m;
        }
      }
    }
    const nc = newCustomers[i]!;
    if (nc === nc) {
      values[base + NC]! += nc;
      values[base + NC_N]! += 1;
      values[base + NC_SPEND]! += spend;
    }
  }
  return {
    pairs,
    values,
    rowsInWindow: [inAnalysed, inPrevious],
    rowsOutside: outside,
    dataSpan: [
      inAnalysed > 0 ? { fromDay: minA, toDay: maxA } : null,
      inPrevious > 0 ? { fromDay: minP, toDay: maxP } : null,
    ],
  };
}

/** Sums the blocks of the given pairs in one window into a fresh block. */
export function rollUp(
  accumulators: WindowAccumulators,
  pairIds: Iterable<number>,
  window: 0 | 1,
): Float64Array {
  const block = new Float64Array(ACC_FIELDS);
  for (const pairId of pairIds) {
    const base = (pairId * 2 + window) * ACC_FIELDS;
    for (let field = 0; field < ACC_FIELDS; field += 1) block[field]! += accumulators.values[base + field]!;
  }
  return block;
}

// ---------------------------------------------------------------------------------------------------------
// Derived metrics of one group

/** Which costs the ROI divides by. */
export type RoiBasis = 'ad_spend_plus_cogs' | 'margin_adjusted' | 'ad_spend_only';

/** ROI with its cost basis stated. */
export interface RoiFigure {
  readonly value: number | null;
  readonly basis: RoiBasis;
  readonly formula: string;
}

/** One step of the funnel: the share of `from` that became `to`. */
export interface FunnelStep {
  readonly from: 'impressions' | 'clicks' | 'leads';
  readonly to: 'clicks' | 'leads' | 'conversions';
  readonly rate: number | null;
}

/** The funnel impressions → clicks → leads → conversions with step rates. */
export interface Funnel {
  readonly impressions: number | null;
  readonly clicks: number | null;
  readonly leads: number | null;
  readonly conversions: number | null;
  readonly steps: readonly FunnelStep[];
}

/** Metrics of one group (overall, a channel, a campaign) in one window. Money amounts are decimal strings. */
export interface GroupMetrics {
  readonly rows: number;
  readonly spend: string;
  readonly impressions: number | null;
  readonly clicks: number | null;
  readonly leads: number | null;
  readonly conversions: number | null;
  readonly revenue: string | null;
  /** Revenue minus cost of goods (or × margin); `null` unless every revenue row carries one of them. */
  readonly gross_profit: string | null;
  readonly new_customers: number | null;
  readonly ctr: number | null;
  readonly cpc: number | null;
  readonly cpm: number | null;
  readonly cvr: number | null;
  readonly cpl: number | null;
  readonly cpa: number | null;
  readonly roas: number | null;
  readonly roi: RoiFigure;
  readonly funnel: Funnel;
  /** Share of rows that report each measured field (1 = complete). Ratios use only rows reporting both sides. */
  readonly coverage: Readonly<Record<(typeof MEASURED_FIELDS)[number], number>>;
}

const ROI_FORMULAS: Readonly<Record<RoiBasis, string>> = {
  ad_spend_plus_cogs: '(revenue - (cost_of_goods + spend)) / (cost_of_goods + spend)',
  margin_adjusted: '(revenue * margin - spend) / spend',
  ad_spend_only: '(revenue - spend) / spend',
};

function sumOrNull(block: Float64Array, sum: number, count: number, decimals = 6): number | null {
  return block[count]! > 0 ? roundTo(block[sum]!, decimals) : null;
}

/** The ROI of a block, choosing the richest cost basis every revenue row supports. */
export function roiOfBlock(block: Float64Array): RoiFigure {
  const revenueRows = block[REV_N]!;
  const revenue = microsToUnits(block[REV]!);
  const spend = microsToUnits(block[REV_SPEND]!);
  if (revenueRows > 0 && block[COGS_N] === revenueRows) {
    const value = roiAdSpendPlusCogs(revenue, microsToUnits(block[COGS]!), spend);
    return {
      value: roundOrNull(value),
      basis: 'ad_spend_plus_cogs',
      formula: ROI_FORMULAS.ad_spend_plus_cogs,
    };
  }
  if (revenueRows > 0 && block[GP_N] === revenueRows) {
    const value = roiMarginAdjusted(microsToUnits(block[GP]!), spend);
    return { value: roundOrNull(value), basis: 'margin_adjusted', formula: ROI_FORMULAS.margin_adjusted };
  }
  const value = revenueRows > 0 ? roiAdSpendOnly(revenue, spend) : null;
  return { value: roundOrNull(value), basis: 'ad_spend_only', formula: ROI_FORMULAS.ad_spend_only };
}

/** Computes every KPI of one accumulated block. */
export function metricsOfBlock(block: Float64Array): GroupMetrics {
  const rows = block[ROWS]!;
  const share = (count: number): number => (rows > 0 ? roundTo(block[count]! / rows, 6) : 0);
  const impressions = sumOrNull(block, IMPR, IMPR_N, 0);
  const clicks = sumOrNull(block, CLK, CLK_N, 0);
  const leads = sumOrNull(block, LEAD, LEAD_N, 0);
  const conversions = sumOrNull(block, CONV, CONV_N, 4);
  const revenueRows = block[REV_N]!;
  const unitsOver = (spendField: number, countField: number, nField: number): number | null =>
    block[nField]! > 0 ? ratio(microsToUnits(block[spendField]!), block[countField]!) : null;
  const clickToLead = block[CL_CLK]! > 0 ? ratio(block[CL_LEAD]!, block[CL_CLK]!) : null;
  const leadToConversion = block[LC_LEAD]! > 0 ? ratio(block[LC_CONV]!, block[LC_LEAD]!) : null;
  const rateImprToClick = ctr(block[CTR_CLK]!, block[CTR_IMPR]!);
  const grossProfitComplete = revenueRows > 0 && block[GP_N] === revenueRows;
  const cpmValue = block[IMPR_N]! > 0 ? cpm(microsToUnits(block[IMPR_SPEND]!), block[IMPR]!) : null;
  return {
    rows,
    spend: microsToDecimal(block[SPEND]!),
    impressions,
    clicks,
    leads,
    conversions,
    revenue: revenueRows > 0 ? microsToDecimal(block[REV]!) : null,
    gross_profit: grossProfitComplete ? microsToDecimal(block[GP]!) : null,
    new_customers: sumOrNull(block, NC, NC_N, 4),
    ctr: roundOrNull(rateImprToClick),
    cpc: roundOrNull(unitsOver(CLK_SPEND, CLK, CLK_N)),
    cpm: roundOrNull(cpmValue),
    cvr: roundOrNull(cvr(block[CVR_CONV]!, block[CVR_CLK]!)),
    cpl: roundOrNull(unitsOver(LEAD_SPEND, LEAD, LEAD_N)),
    cpa: roundOrNull(unitsOver(CONV_SPEND, CONV, CONV_N)),
    roas: revenueRows > 0 ? roundOrNull(roas(block[REV]!, block[REV_SPEND]!)) : null,
    roi: roiOfBlock(block),
    funnel: {
      impressions,
      clicks,
      leads,
      conversions,
      steps: [
        { from: 'impressions', to: 'clicks', rate: roundOrNull(rateImprToClick) },
        { from: 'clicks', to: 'leads', rate: roundOrNull(clickToLead) },
        { from: 'leads', to: 'conversions', rate: roundOrNull(leadToConversion) },
      ],
    },
    coverage: {
      impressions: share(IMPR_N),
      clicks: share(CLK_N),
      leads: share(LEAD_N),
      conversions: share(CONV_N),
      revenue: share(REV_N),
    },
  };
}

/** Conversions and clicks over rows reporting both (the CVR sample), for sample-size confidence. */
export function conversionSample(block: Float64Array): {
  readonly conversions: number;
  readonly clicks: number;
} {
  return { conversions: block[CVR_CONV]!, clicks: block[CVR_CLK]! };
}

/** Spend of a block in micro-units. */
export function spendOfBlock(block: Float64Array): number {
  return block[SPEND]!;
}

/** Rows of a block. */
export function rowsOfBlock(block: Float64Array): number {
  return block[ROWS]!;
}

/** Present cells of the optional fields in a block: [rows with margin or cost of goods, rows with new customers]. */
export function optionalFieldCounts(block: Float64Array): {
  readonly costBasisRows: number;
  readonly newCustomerRows: number;
} {
  return { costBasisRows: block[GP_N]!, newCustomerRows: block[NC_N]! };
}

/** Present cells of the measured fields in a block (sum over fields; the maximum is rows × 5). */
export function measuredCellCount(block: Float64Array): number {
  return block[IMPR_N]! + block[CLK_N]! + block[LEAD_N]! + block[CONV_N]! + block[REV_N]!;
}
