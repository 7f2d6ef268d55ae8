// Deterministic finance formulas over marketing's campaign-ROI metrics: payback (simple and with churn), CAC
// (paid-media and blended), LTV and LTV:CAC, marginal-ROAS ordering, NPV with monthly discounting, and a bounded
// budget reallocation in exact cents with its estimated effect. Every missing input gives null with a reason.
import { z } from 'zod';
import { AppError } from '../shared/errors.js';

/** A value that may be unavailable, with the reason when it is. */
export interface Maybe<T> {
  readonly value: T | null;
  /** Why the value is null (absent when it is not). */
  readonly reason?: string;
}

function some<T>(value: T): Maybe<T> {
  return { value };
}

function none<T>(reason: string): Maybe<T> {
  return { value: null, reason };
}

/** Rounds for stable JSON output. */
export function round(value: number, decimals = 6): number {
  const factor = 10 ** decimals;
  const rounded = Math.round(value * factor) / factor;
  return Object.is(rounded, -0) ? 0 : rounded;
}

// ---------------------------------------------------------------------------------------------------------
// Money at the edges: decimal strings ↔ integer cents

/** Parses a non-negative or negative decimal string ("1234.56") into integer cents (half away from zero). */
export function decimalToCents(text: string): number {
  const match = /^(-)?(\d+)(?:\.(\d+))?$/.exec(text);
  if (match === null)
    throw new AppError('VALIDATION_FAILED', `not a decimal amount: ${JSON.stringify(text)}`, {
      details: { value: text },
    });
  const fraction = (match[3] ?? '').padEnd(3, '0');
  let cents = Number(match[2]) * 100 + Number(fraction.slice(0, 2));
  if (Number(fraction[2]) >= 5) cents += 1;
  if (!Number.isSafeInteger(cents))
    throw new AppError('VALIDATION_FAILED', `amount out of range: ${text}`, { details: { value: text } });
  return match[1] === '-' ? -cents : cents;
}

/** Formats integer cents as a decimal string with 2 places. */
export function centsToDecimal(cents: number): string {
  const magnitude = Math.abs(cents);
  const text = `${Math.floor(magnitude / 100)}.${String(magnitude % 100).padStart(2, '0')}`;
  return cents < 0 ? `-${text}` : text;
}

// ---------------------------------------------------------------------------------------------------------
// Payback

/** Payback of one customer's acquisition cost from monthly gross margin. */
export interface PaybackResult {
  /** CAC / monthly margin per customer, in months (fractional); ignores churn. */
  readonly simple_months: Maybe<number>;
  /** Smallest whole n with Σ_{t=1..n} m·r^(t−1) ≥ CAC, r = 1 − monthly churn; null when not within the horizon. */
  readonly with_churn_months: Maybe<number>;
  readonly horizon_months: number;
}

/**
 * Payback period. `cac` and `monthlyMargin` in currency units per customer; `monthlyChurn` a fraction in [0, 1).
 * With churn the cumulative margin approaches m / churn, so payback never happens when CAC ≥ m / churn; the
 * search also stops at `horizonMonths`.
 */
export function paybackPeriod(
  cac: number | null,
  monthlyMargin: number | null,
  monthlyChurn: number | null,
  horizonMonths = 60,
): PaybackResult {
  const missing =
    cac === null
      ? 'CAC is unavailable'
      : monthlyMargin === null
        ? 'monthly gross margin per customer is unavailable'
        : monthlyMargin <= 0
          ? 'monthly gross margin per customer is not positive, so the cost is never paid back'
          : null;
  if (missing !== null || cac === null || monthlyMargin === null) {
    return {
      simple_months: none(missing!),
      with_churn_months: none(missing!),
      horizon_months: horizonMonths,
    };
  }
  const simple = some(round(cac / monthlyMargin, 4));
  if (monthlyChurn === null) {
    return {
      simple_months: simple,
      with_churn_months: none('no monthly churn rate given'),
      horizon_months: horizonMonths,
    };
  }
  const retention = 1 - monthlyChurn;
  let cumulative = 0;
  for (let month = 1; month <= horizonMonths; month += 1) {
    cumulative += monthlyMargin * retention ** (month - 1);
    if (cumulative >= cac * (1 - 1e-12)) {
      return { simple_months: simple, with_churn_months: some(month), horizon_months: horizonMonths };
    }
  }
  const lifetime = monthlyChurn > 0 ? monthlyMargin / monthlyChurn : Infinity;
  const reason =
    lifetime < cac
      ? `never paid back: lifetime margin m / churn = ${round(lifetime, 2)} is below CAC ${round(cac, 2)}`
      : `not paid back within the ${horizonMonths}-month horizon`;
  return { simple_months: simple, with_churn_months: none(reason), horizon_months: horizonMonths };
}

// ---------------------------------------------------------------------------------------------------------
// CAC

/** Where the customer count came from. */
export type CustomersBasis = 'new_customers' | 'conversions_proxy';

/** Customer acquisition cost on two stated bases. */
export interface CacResult {
  /** Media spend / customers. Includes only the ad spend in the campaign rows. */
  readonly paid_media: Maybe<number>;
  /** (media spend + other acquisition costs: sales, tools, agency) / customers. */
  readonly blended: Maybe<number>;
  readonly customers: number | null;
  readonly customers_basis: CustomersBasis | null;
  readonly included_costs: { readonly paid_media: string; readonly blended: string };
}

/** CAC paid-media and blended. Amounts in currency units; `otherAcquisitionCosts` null when not supplied. */
export function customerAcquisitionCost(
  mediaSpend: number,
  otherAcquisitionCosts: number | null,
  customers: number | null,
  customersBasis: CustomersBasis | null,
): CacResult {
  const included = {
    paid_media: 'ad spend of the analysed campaign rows',
    blended: 'ad spend plus other acquisition costs supplied with the request (sales, tools, agency)',
  };
  const base = { customers, customers_basis: customersBasis, included_costs: included };
  if (customers === null || customers <= 0) {
    const reason = customers === null ? 'no new-customer or conversion counts' : 'no customers were acquired';
    return { ...base, paid_media: none(reason), blended: none(reason) };
  }
  return {
    ...base,
    paid_media: some(round(mediaSpend / customers, 4)),
    blended:
      otherAcquisitionCosts === null
        ? none('no non-media acquisition costs were supplied')
        : some(round((mediaSpend + otherAcquisitionCosts) / customers, 4)),
  };
}

// ---------------------------------------------------------------------------------------------------------
// LTV

/** Lifetime value of a customer from monthly margin and churn. */
export interface LtvResult {
  /** m / churn: undiscounted margin over a geometric lifetime of 1 / churn months. */
  readonly simple: Maybe<number>;
  /** Σ_{t≥1} m·r^(t−1) / (1+d)^(t−1) = m·(1+d) / (1+d−r): first month undiscounted, monthly rate d. */
  readonly discounted: Maybe<number>;
  readonly monthly_margin_per_customer: number | null;
  readonly monthly_churn: number | null;
  readonly monthly_discount_rate: number;
}

/** LTV simple and discounted (margin-based, with retention r = 1 − churn). */
export function lifetimeValue(
  monthlyMargin: number | null,
  monthlyChurn: number | null,
  monthlyDiscountRate: number,
): LtvResult {
  const base = {
    monthly_margin_per_customer: monthlyMargin,
    monthly_churn: monthlyChurn,
    monthly_discount_rate: round(monthlyDiscountRate, 8),
  };
  if (monthlyMargin === null) {
    return {
      ...base,
      simple: none('monthly gross margin per customer is unavailable'),
      discounted: none('monthly gross margin per customer is unavailable'),
    };
  }
  if (monthlyChurn === null) {
    return {
      ...base,
      simple: none('no monthly churn rate given'),
      discounted: none('no monthly churn rate given'),
    };
  }
  const retention = 1 - monthlyChurn;
  const simple =
    monthlyChurn > 0
      ? some(round(monthlyMargin / monthlyChurn, 4))
      : none<number>('zero churn gives an unbounded undiscounted lifetime');
  const denominator = 1 + monthlyDiscountRate - retention;
  const discounted =
    denominator > 0
      ? some(round((monthlyMargin * (1 + monthlyDiscountRate)) / denominator, 4))
      : none<number>('zero churn and zero discount rate give an unbounded value');
  return { ...base, simple, discounted };
}

/** LTV:CAC with the LTV and CAC bases it divides. */
export interface LtvToCac extends Maybe<number> {
  readonly basis: string;
}

/** LTV / CAC, preferring discounted LTV and paid-media CAC. Rule of thumb ≥ 3 is a convention, not a standard. */
export function ltvToCac(ltv: LtvResult, cac: CacResult): LtvToCac {
  const ltvValue = ltv.discounted.value ?? ltv.simple.value;
  const ltvBasis = ltv.discounted.value !== null ? 'discounted LTV' : 'simple LTV';
  const basis = `${ltvBasis} / paid-media CAC`;
  if (ltvValue === null) return { value: null, reason: ltv.discounted.reason ?? 'LTV unavailable', basis };
  if (cac.paid_media.value === null || cac.paid_media.value === 0) {
    return { value: null, reason: cac.paid_media.reason ?? 'CAC is zero', basis };
  }
  return { value: round(ltvValue / cac.paid_media.value, 4), basis };
}

// ---------------------------------------------------------------------------------------------------------
// Marginal ROAS

/** A channel's spend and revenue in the analysed and previous periods (currency units). */
export interface ChannelResponse {
  readonly channel: string;
  readonly spend: number;
  readonly revenue: number | null;
  readonly previousSpend: number | null;
  readonly previousRevenue: number | null;
}

/** How a marginal ROAS was estimated. */
export type MarginalRoasBasis = 'period_over_period' | 'average_roas_fallback';

/** One channel's marginal ROAS estimate. */
export interface MarginalRoas {
  readonly channel: string;
  readonly value: number | null;
  readonly basis: MarginalRoasBasis;
  readonly reason?: string;
}

/**
 * Marginal ROAS per channel, best first (nulls last): Δrevenue / Δspend between the previous and analysed period
 * when both exist and spend moved by at least `minSpendChangeShare` of the previous spend; otherwise the
 * average ROAS, labelled as a fallback (it overstates the return of extra spend on a saturating channel).
 */
export function marginalRoasOrder(
  channels: readonly ChannelResponse[],
  minSpendChangeShare = 0.05,
): MarginalRoas[] {
  const estimates = channels.map((channel): MarginalRoas => {
    const fallback = (reason: string): MarginalRoas => ({
      channel: channel.channel,
      value:
        channel.revenue === null || channel.spend === 0 ? null : round(channel.revenue / channel.spend, 6),
      basis: 'average_roas_fallback',
      reason:
        channel.revenue === null || channel.spend === 0
          ? `${reason}; no revenue or spend for a ROAS either`
          : reason,
    });
    if (channel.previousSpend === null || channel.previousRevenue === null || channel.revenue === null) {
      return fallback('no previous period for this channel');
    }
    const deltaSpend = channel.spend - channel.previousSpend;
    if (channel.previousSpend === 0 || Math.abs(deltaSpend) < minSpendChangeShare * channel.previousSpend) {
      return fallback(`spend changed by less than ${minSpendChangeShare * 100}% against the previous period`);
    }
    return {
      channel: channel.channel,
      value: round((channel.revenue - channel.previousRevenue) / deltaSpend, 6),
      basis: 'period_over_period',
    };
  });
  return estimates.sort((left, right) => {
    if (left.value === null) return right.value === null ? 0 : 1;
    if (right.value === null) return -1;
    return right.value - left.value;
  });
}

// ---------------------------------------------------------------------------------------------------------
// NPV

/** Effective monthly rate of an annual rate: (1 + annual)^(1/12) − 1. */
export function monthlyRate(annualRate: number): number {
  return (1 + annualRate) ** (1 / 12) - 1;
}

/** NPV of the period's spend and margin. */
export interface NpvResult extends Maybe<number> {
  readonly annual_discount_rate: number;
  readonly monthly_discount_rate: number;
  readonly months: number;
  readonly convention: string;
}

const NPV_CONVENTION =
  'monthly discounting at (1 + annual)^(1/12) − 1; spend paid in equal parts at the start of each month of the ' +
  'period (t = 0 … M−1), gross margin received in equal parts at the end of each month (t = 1 … M); no margin ' +
  'after the period is counted';

/** NPV = Σ_t −spend/M /(1+d)^t (t = 0..M−1) + Σ_t margin/M /(1+d)^t (t = 1..M). Amounts in currency units. */
export function campaignNpv(
  spend: number,
  grossMargin: number | null,
  months: number,
  annualRate: number,
): NpvResult {
  const rate = monthlyRate(annualRate);
  const base = {
    annual_discount_rate: annualRate,
    monthly_discount_rate: round(rate, 8),
    months,
    convention: NPV_CONVENTION,
  };
  if (grossMargin === null)
    return {
      ...base,
      value: null,
      reason: 'gross margin unavailable (no margin or cost of goods, and no assumed margin)',
    };
  let npv = 0;
  for (let month = 0; month < months; month += 1) {
    npv -= spend / months / (1 + rate) ** month;
    npv += grossMargin / months / (1 + rate) ** (month + 1);
  }
  return { ...base, value: round(npv, 2) };
}

// ---------------------------------------------------------------------------------------------------------
// Budget reallocation

/** A channel's current budget and its marginal return. */
export interface BudgetChannel {
  readonly channel: string;
  readonly spendCents: number;
  readonly marginalRoas: number | null;
}

/** The proposal for one channel. */
export interface ReallocatedChannel {
  readonly channel: string;
  readonly current: string;
  readonly proposed: string;
  readonly change: string;
  readonly marginal_roas: number | null;
}

/** A reallocation with its estimated effect. */
export interface Reallocation {
  readonly channels: readonly ReallocatedChannel[];
  readonly moves: readonly { readonly from: string; readonly to: string; readonly amount: string }[];
  readonly total: string;
  readonly max_shift: number;
  readonly expected_effect: {
    readonly delta_revenue: string;
    readonly delta_margin: string | null;
    readonly label: 'estimate';
    readonly assumption: string;
  };
  /** Why nothing moves, when nothing does. */
  readonly reason?: string;
}

/**
 * Moves budget from the lowest to the highest marginal-ROAS channels, each channel changing by at most
 * `maxShift` of its current spend (bounds floored to whole cents), while a donor's mROAS is below the
 * recipient's. Every transfer is a whole number of cents, so the total is unchanged exactly. Channels without
 * an mROAS keep their budget. Effect: Δrevenue = Σ Δspend × mROAS; Δmargin = Δrevenue × gross-margin rate.
 */
export function reallocateBudget(
  channels: readonly BudgetChannel[],
  maxShift: number,
  grossMarginRate: number | null,
): Reallocation {
  if (!(maxShift >= 0 && maxShift <= 1)) {
    throw new AppError(
      'CONFIG_INVALID',
      `reallocation max shift must be a fraction in [0, 1] (got ${maxShift})`,
    );
  }
  const delta = new Map<string, number>(channels.map((channel) => [channel.channel, 0]));
  const eligible = channels
    .filter((channel) => channel.marginalRoas !== null && channel.spendCents > 0)
    .sort((left, right) => left.marginalRoas! - right.marginalRoas!);
  const capacity = new Map(
    eligible.map((channel) => [channel.channel, Math.floor(channel.spendCents * maxShift)]),
  );
  const moves: { from: string; to: string; amountCents: number }[] = [];
  let low = 0;
  let high = eligible.length - 1;
  while (low < high) {
    const donor = eligible[low]!;
    const recipient = eligible[high]!;
    if (!(donor.marginalRoas! < recipient.marginalRoas!)) break;
    const amount = Math.min(capacity.get(donor.channel)!, capacity.get(recipient.channel)!);
    if (amount > 0) {
      moves.push({ from: donor.channel, to: recipient.channel, amountCents: amount });
      capacity.set(donor.channel, capacity.get(donor.channel)! - amount);
      capacity.set(recipient.channel, capacity.get(recipient.channel)! - amount);
      delta.set(donor.channel, delta.get(donor.channel)! - amount);
      delta.set(recipient.channel, delta.get(recipient.channel)! + amount);
    }
    if (capacity.get(donor.channel) === 0) low += 1;
    if (capacity.get(recipient.channel) === 0) high -= 1;
  }
  const totalCents = channels.reduce((sum, channel) => sum + channel.spendCents, 0);
  let deltaRevenue = 0;
  const proposed = channels.map((channel): ReallocatedChannel => {
    const change = delta.get(channel.channel)!;
    if (change !== 0) deltaRevenue += (change / 100) * channel.marginalRoas!;
    return {
      channel: channel.channel,
      current: centsToDecimal(channel.spendCents),
      proposed: centsToDecimal(channel.spendCents + change),
      change: centsToDecimal(change),
      marginal_roas: channel.marginalRoas,
    };
  });
  const deltaRevenueCents = Math.round(deltaRevenue * 100);
  const reason =
    moves.length > 0
      ? undefined
      : eligible.length < 2
        ? 'fewer than two channels have a marginal ROAS'
        : maxShift === 0
          ? 'the maximum shift is 0'
          : 'every channel has the same marginal ROAS';
  return {
    channels: proposed,
    moves: moves.map((move) => ({ from: move.from, to: move.to, amount: centsToDecimal(move.amountCents) })),
    total: centsToDecimal(totalCents),
    max_shift: maxShift,
    expected_effect: {
      delta_revenue: centsToDecimal(deltaRevenueCents),
      delta_margin:
        grossMarginRate === null ? null : centsToDecimal(Math.round(deltaRevenueCents * grossMarginRate)),
      label: 'estimate',
      assumption:
        "each channel's marginal ROAS holds over the shifted amount (no saturation or carry-over effects)",
    },
    ...(reason === undefined ? {} : { reason }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Reading marketing's answer (a trust boundary: it arrived over the hub)

const money = z.string().regex(/^-?\d+(?:\.\d+)?$/);
const changeSchema = z
  .object({ previous: z.number().nullable(), current: z.number().nullable() })
  .passthrough();
const groupSchema = z
  .object({
    rows: z.number(),
    spend: money,
    revenue: money.nullable(),
    gross_profit: money.nullable(),
    conversions: z.number().nullable(),
    new_customers: z.number().nullable(),
    roas: z.number().nullable(),
    roi: z.object({ value: z.number().nullable(), basis: z.string() }).passthrough(),
    change_vs_previous: z.object({ spend: changeSchema, revenue: changeSchema }).passthrough().nullable(),
  })
  .passthrough();
const periodSchema = z.object({ label: z.string(), from: z.string(), to: z.string() }).passthrough();
const marketingAnswerSchema = z
  .object({
    analysis_type: z.literal('campaign_roi'),
    marketing_metrics: z
      .object({
        period: periodSchema,
        previous_period: periodSchema.nullable(),
        overall: groupSchema,
        channels: z.array(groupSchema.extend({ channel: z.string() })),
      })
      .passthrough(),
    collaboration_ready: z.boolean(),
    confidence_score: z.number().min(0).max(1),
  })
  .passthrough();

/** The parts of a campaign_roi answer the finance formulas read. */
export type MarketingAnswerView = z.infer<typeof marketingAnswerSchema>;

/** Parses marketing's answer; throws AppError `UPSTREAM_ERROR` naming what is missing when it is malformed. */
export function parseMarketingAnswer(data: unknown): MarketingAnswerView {
  const parsed = marketingAnswerSchema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 5)
      .map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new AppError(
      'UPSTREAM_ERROR',
      `marketing's campaign_roi answer is malformed: ${problems.join('; ')}`,
      {
        details: { problems },
      },
    );
  }
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------------------
// Finance metrics from marketing's metrics

/** Assumptions the finance metrics need beyond marketing's data; each is reported with the result. */
export interface FinanceAssumptions {
  /** Annual discount rate, e.g. 0.1. */
  readonly discountRateAnnual: number;
  /** Maximum share of a channel's spend the reallocation may move, e.g. 0.2. */
  readonly reallocationMaxShift: number;
  /** Monthly churn of acquired customers (fraction); null when unknown (LTV and churn payback are then null). */
  readonly monthlyChurn: number | null;
  /** Non-media acquisition costs of the period (currency units) for blended CAC; null when not supplied. */
  readonly otherAcquisitionCosts: number | null;
  /** Gross margin fraction to assume when marketing's rows carry no margin or cost of goods; null = do not assume. */
  readonly grossMarginFallback: number | null;
  /** Monthly gross margin per customer, when known directly; otherwise derived (see {@link FinanceMetrics}). */
  readonly monthlyMarginPerCustomer: number | null;
  /** Months searched for payback. @defaultValue 60 */
  readonly horizonMonths?: number;
  /** Smallest relative spend change for a period-over-period mROAS. @defaultValue 0.05 */
  readonly minSpendChangeShare?: number;
}

/** The finance metrics of an roi_review answer. */
export interface FinanceMetrics {
  readonly period: {
    readonly label: string;
    readonly from: string;
    readonly to: string;
    readonly months: number;
  };
  readonly gross_margin: {
    readonly rate: number | null;
    readonly source: 'marketing_gross_profit' | 'assumed' | 'unavailable';
    readonly gross_profit: string | null;
  };
  readonly monthly_margin_per_customer: Maybe<number> & { readonly basis: string };
  readonly cac: CacResult;
  readonly payback: PaybackResult;
  readonly ltv: LtvResult;
  readonly ltv_to_cac: LtvToCac;
  readonly marginal_roas_order: readonly MarginalRoas[];
  readonly npv: NpvResult;
  readonly reallocation: Reallocation;
  readonly assumptions: FinanceAssumptions;
}

function monthsIn(from: string, to: string): number {
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
  return Math.max(1, Math.round(days / (365.25 / 12)));
}

/** Computes every finance metric from marketing's answer and the assumptions. */
export function computeFinanceMetrics(
  marketing: MarketingAnswerView,
  assumptions: FinanceAssumptions,
): FinanceMetrics {
  const metrics = marketing.marketing_metrics;
  const overall = metrics.overall;
  const months = monthsIn(metrics.period.from, metrics.period.to);
  const spend = decimalToCents(overall.spend) / 100;
  const revenue = overall.revenue === null ? null : decimalToCents(overall.revenue) / 100;

  let grossMargin: FinanceMetrics['gross_margin'];
  let grossProfit: number | null;
  if (overall.gross_profit !== null && revenue !== null && revenue > 0) {
    grossProfit = decimalToCents(overall.gross_profit) / 100;
    grossMargin = {
      rate: round(grossProfit / revenue, 6),
      source: 'marketing_gross_profit',
      gross_profit: overall.gross_profit,
    };
  } else if (assumptions.grossMarginFallback !== null && revenue !== null) {
    grossProfit = revenue * assumptions.grossMarginFallback;
    grossMargin = {
      rate: assumptions.grossMarginFallback,
      source: 'assumed',
      gross_profit: centsToDecimal(Math.round(grossProfit * 100)),
    };
  } else {
    grossProfit = null;
    grossMargin = { rate: null, source: 'unavailable', gross_profit: null };
  }

  const customersBasis: CustomersBasis | null =
    overall.new_customers !== null
      ? 'new_customers'
      : overall.conversions !== null
        ? 'conversions_proxy'
        : null;
  const customers = overall.new_customers ?? overall.conversions;
  const cac = customerAcquisitionCost(spend, assumptions.otherAcquisitionCosts, customers, customersBasis);

  let monthlyMargin: FinanceMetrics['monthly_margin_per_customer'];
  if (assumptions.monthlyMarginPerCustomer !== null) {
    monthlyMargin = { value: assumptions.monthlyMarginPerCustomer, basis: 'supplied with the request' };
  } else if (grossProfit !== null && customers !== null && customers > 0) {
    monthlyMargin = {
      value: round(grossProfit / customers / months, 4),
      basis: `period gross profit / ${customersBasis === 'new_customers' ? 'new customers' : 'conversions'} / ${months} months`,
    };
  } else {
    monthlyMargin = {
      value: null,
      reason: grossProfit === null ? 'gross margin unavailable' : 'no customers acquired',
      basis: 'period gross profit / customers / months',
    };
  }

  const monthlyDiscount = monthlyRate(assumptions.discountRateAnnual);
  const payback = paybackPeriod(
    cac.paid_media.value,
    monthlyMargin.value,
    assumptions.monthlyChurn,
    assumptions.horizonMonths ?? 60,
  );
  const ltv = lifetimeValue(monthlyMargin.value, assumptions.monthlyChurn, monthlyDiscount);

  const order = marginalRoasOrder(
    metrics.channels.map((channel) => ({
      channel: channel.channel,
      spend: decimalToCents(channel.spend) / 100,
      revenue: channel.revenue === null ? null : decimalToCents(channel.revenue) / 100,
      previousSpend: channel.change_vs_previous?.spend.previous ?? null,
      previousRevenue: channel.change_vs_previous?.revenue.previous ?? null,
    })),
    assumptions.minSpendChangeShare ?? 0.05,
  );
  const mroasByChannel = new Map(order.map((item) => [item.channel, item.value]));
  const reallocation = reallocateBudget(
    metrics.channels.map((channel) => ({
      channel: channel.channel,
      spendCents: decimalToCents(channel.spend),
      marginalRoas: mroasByChannel.get(channel.channel) ?? null,
    })),
    assumptions.reallocationMaxShift,
    grossMargin.rate,
  );
  return {
    period: { label: metrics.period.label, from: metrics.period.from, to: metrics.period.to, months },
    gross_margin: grossMargin,
    monthly_margin_per_customer: monthlyMargin,
    cac,
    payback,
    ltv,
    ltv_to_cac: ltvToCac(ltv, cac),
    marginal_roas_order: order,
    npv: campaignNpv(spend, grossProfit, months, assumptions.discountRateAnnual),
    reallocation,
    assumptions,
  };
}
