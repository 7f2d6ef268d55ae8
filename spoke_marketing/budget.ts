// Thompson-sampling budget optimiser: Beta-Bernoulli conversion rate × Gamma posterior on value per
// conversion ÷ observed CPC gives seeded draws of revenue per unit spent → P(arm is best) → Euclidean
// projection onto {floors, ceilings, max step, Σ = 1} → a money split in integer minor units.
import { AppError } from '../shared/errors.js';
import { createRandom } from './random.js';

/** Observed performance of one arm (campaign, ad set, channel) over the evaluation window. */
export interface BudgetArm {
  readonly id: string;
  readonly clicks: number;
  readonly conversions: number;
  /** Media cost in integer minor units (cents). */
  readonly spendMinor: number;
  /** Attributed conversion value in integer minor units. */
  readonly revenueMinor: number;
  /** Share of the budget this arm received last round (needed when maxStep is set). */
  readonly previousShare?: number;
}

/** A per-arm bound given as one number for every arm or as a map by arm id (missing ids: default). */
export type ShareBound = number | Readonly<Record<string, number>>;

/** Inputs of {@link optimizeBudget}. */
export interface BudgetInput {
  readonly arms: readonly BudgetArm[];
  /** Budget to split, in integer minor units. */
  readonly totalBudgetMinor: number;
  /** Minimum share per arm (default 0). */
  readonly floors?: ShareBound;
  /** Maximum share per arm (default 1). */
  readonly ceilings?: ShareBound;
  /** Largest absolute change of any arm's share versus previousShare (e.g. 0.15). */
  readonly maxStep?: number;
  /** Posterior draws (default 10,000). */
  readonly samples?: number;
  /** PRNG seed; the same seed and input give the same plan (default 1). */
  readonly seed?: number;
}

/** A posterior summary: mean and central 90 % credible interval. */
export interface PosteriorSummary {
  readonly mean: number;
  readonly low: number;
  readonly high: number;
}

/** The plan for one arm. */
export interface ArmAllocation {
  readonly id: string;
  /** Fraction of posterior draws in which this arm had the highest revenue per unit spent. */
  readonly probabilityBest: number;
  /** Unconstrained probability-matching share (= probabilityBest). */
  readonly rawShare: number;
  /** Share after floors, ceilings and max step (Σ = 1). */
  readonly share: number;
  /** Money for this arm in minor units (Σ = totalBudgetMinor exactly). */
  readonly amountMinor: number;
  readonly previousShare: number | null;
  /** Feasible interval this round: [max(floor, prev − step), min(ceiling, prev + step)]. */
  readonly lowerBound: number;
  readonly upperBound: number;
  readonly conversionRate: PosteriorSummary;
  /** Value per conversion in minor units. */
  readonly valuePerConversionMinor: PosteriorSummary;
  /** Cost per click in minor units used for this arm (observed, or pooled when it had no clicks). */
  readonly costPerClickMinor: number;
  /** Revenue per minor unit spent (ROAS), posterior. */
  readonly revenuePerMinorUnit: PosteriorSummary;
  readonly recommendation: 'increase' | 'decrease' | 'hold';
}

/** The optimiser's answer. */
export interface BudgetPlan {
  readonly arms: readonly ArmAllocation[];
  readonly totalBudgetMinor: number;
  readonly seed: number;
  readonly samples: number;
  /** Id of the arm most likely to be best. */
  readonly leader: string;
  /** high ≥ 0.95, medium ≥ 0.75, low otherwise (leader's P(best)). */
  readonly confidence: 'high' | 'medium' | 'low';
  /**
   * 95th percentile of the relative revenue-per-spend lift any arm might still have over the leader
   * (Scott's "value remaining"); below 0.01 the experiment can stop.
   */
  readonly potentialLift95: number;
  /** Arms whose share sits on a bound (floor, ceiling or step). */
  readonly bindingConstraints: readonly string[];
}

const DEFAULT_SAMPLES = 10_000;
const CREDIBLE_LOW = 0.05;
const CREDIBLE_HIGH = 0.95;

function fail(message: string, details?: Record<string, unknown>): never {
  throw new AppError('VALIDATION_FAILED', message, details === undefined ? undefined : { details });
}

function boundFor(bound: ShareBound | undefined, id: string, fallback: number, name: string): number {
  const value = bound === undefined ? fallback : typeof bound === 'number' ? bound : (bound[id] ?? fallback);
  if (!Number.isFinite(value) || value < 0 || value > 1)
    fail(`${name} for arm ${id} must be a share in [0, 1], got ${value}`);
  return value;
}

function validate(input: BudgetInput): void {
  const { arms, totalBudgetMinor } = input;
  if (arms.length === 0) fail('at least one arm is required');
  if (!Number.isSafeInteger(totalBudgetMinor) || totalBudgetMinor < 0) {
    fail(`totalBudgetMinor must be a non-negative integer (minor units), got ${totalBudgetMinor}`);
  }
  const seen = new Set<string>();
  for (const arm of arms) {
    if (typeof arm.id !== 'string' || arm.id === '') fail('every arm needs a non-empty id');
    if (seen.has(arm.id)) fail(`duplicate arm id ${arm.id}`);
    seen.add(arm.id);
    for (const field of ['clicks', 'conversions', 'spendMinor', 'revenueMinor'] as const) {
      const value = arm[field];
      if (!Number.isSafeInteger(value) || value < 0)
        fail(`arm ${arm.id}: ${field} must be a non-negative integer, got ${value}`);
    }
    if (arm.conversions > arm.clicks)
      fail(`arm ${arm.id}: conversions (${arm.conversions}) exceed clicks (${arm.clicks})`);
    if (arm.previousShare !== undefined && !(arm.previousShare >= 0 && arm.previousShare <= 1)) {
      fail(`arm ${arm.id}: previousShare must be in [0, 1], got ${arm.previousShare}`);
    }
  }
  if (input.maxStep !== undefined && !(input.maxStep >= 0 && input.maxStep <= 1)) {
    fail(`maxStep must be in [0, 1], got ${input.maxStep}`);
  }
  const withPrevious = arms.filter((arm) => arm.previousShare !== undefined).length;
  if (withPrevious !== 0 && withPrevious !== arms.length)
    fail('previousShare must be given for every arm or for none');
  if (withPrevious === arms.length) {
    const total = arms.reduce((sum, arm) => sum + arm.previousShare!, 0);
    if (Math.abs(total - 1) > 1e-9) fail(`previous shares must sum to 1, got ${total}`);
  }
  if (input.maxStep !== undefined && withPrevious === 0) fail('maxStep needs previousShare for every arm');
  const samples = input.samples ?? DEFAULT_SAMPLES;
  if (!Number.isInteger(samples) || samples < 100 || samples > 1_000_000)
    fail(`samples must be an integer in [100, 1e6], got ${samples}`);
}

/** Per-arm feasible interval, checked for conflicts; throws VALIDATION_FAILED listing every conflict. */
export function feasibleBounds(input: BudgetInput): { lower: number[]; upper: number[] } {
  const conflicts: string[] = [];
  const lower: number[] = [];
  const upper: number[] = [];
  for (const arm of input.arms) {
    const floor = boundFor(input.floors, arm.id, 0, 'floor');
    const ceiling = boundFor(input.ceilings, arm.id, 1, 'ceiling');
    let low = floor;
    let high = ceiling;
    if (floor > ceiling) conflicts.push(`arm ${arm.id}: floor ${floor} > ceiling ${ceiling}`);
    if (input.maxStep !== undefined && arm.previousShare !== undefined) {
      const stepLow = arm.previousShare - input.maxStep;
      const stepHigh = arm.previousShare + input.maxStep;
      if (floor > stepHigh)
        conflicts.push(
          `arm ${arm.id}: floor ${floor} > previous ${arm.previousShare} + maxStep ${input.maxStep}`,
        );
      if (ceiling < stepLow)
        conflicts.push(
          `arm ${arm.id}: ceiling ${ceiling} < previous ${arm.previousShare} − maxStep ${input.maxStep}`,
        );
      low = Math.max(low, stepLow);
      high = Math.min(high, stepHigh);
    }
    lower.push(Math.max(0, low));
    upper.push(Math.min(1, high));
  }
  const lowerSum = lower.reduce((sum, value) => sum + value, 0);
  const upperSum = upper.reduce((sum, value) => sum + value, 0);
  if (lowerSum > 1 + 1e-12)
    conflicts.push(`lower bounds (floors / previous − maxStep) sum to ${lowerSum.toFixed(6)} > 1`);
  if (upperSum < 1 - 1e-12)
    conflicts.push(`upper bounds (ceilings / previous + maxStep) sum to ${upperSum.toFixed(6)} < 1`);
  if (conflicts.length > 0) {
    throw new AppError('VALIDATION_FAILED', `budget constraints are infeasible: ${conflicts.join('; ')}`, {
      details: { conflicts },
    });
  }
  return { lower, upper };
}

/**
 * Euclidean projection of `weights` onto {lower ≤ x ≤ upper, Σx = 1}: x = clip(w − τ, lower, upper) with τ
 * found by bisection (Σ clip is monotone in τ) and then solved exactly on the free set, so Σx = 1 to
 * ~1e-15. Bounds must be feasible (see {@link feasibleBounds}).
 */
export function projectShares(
  weights: readonly number[],
  lower: readonly number[],
  upper: readonly number[],
): number[] {
  const count = weights.length;
  const clipped = (tau: number): number[] =>
    weights.map((weight, index) => Math.min(upper[index]!, Math.max(lower[index]!, weight - tau)));
  const total = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0);
  let low = Math.min(...weights.map((weight, index) => weight - upper[index]!)) - 1;
  let high = Math.max(...weights.map((weight, index) => weight - lower[index]!)) + 1;
  for (let iteration = 0; iteration < 200 && high - low > 0; iteration += 1) {
    const middle = (low + high) / 2;
    if (middle === low || middle === high) break;
    if (total(clipped(middle)) > 1) low = middle;
    else high = middle;
  }
  let shares = clipped((low + high) / 2);
  // Exact τ on the arms strictly inside their bounds.
  const free = shares.map((share, index) => share > lower[index]! && share < upper[index]!);
  const freeCount = free.filter(Boolean).length;
  if (freeCount > 0) {
    let fixedTotal = 0;
    let freeWeights = 0;
    for (let index = 0; index < count; index += 1) {
      if (free[index]) freeWeights += weights[index]!;
      else fixedTotal += shares[index]!;
    }
    const tau = (freeWeights - (1 - fixedTotal)) / freeCount;
    const exact = shares.map((share, index) => (free[index] ? weights[index]! - tau : share));
    if (exact.every((share, index) => share >= lower[index]! - 1e-15 && share <= upper[index]! + 1e-15))
      shares = exact;
  }
  return shares.map((share, index) => Math.min(upper[index]!, Math.max(lower[index]!, share)));
}

/**
 * Splits `total` minor units by `shares` with the largest-remainder method (Σ = total exactly), then
 * moves single units so that every arm stays within [⌈lower·total⌉, ⌊upper·total⌋].
 */
export function splitMinorUnits(
  shares: readonly number[],
  total: number,
  lower: readonly number[],
  upper: readonly number[],
): number[] {
  const exact = shares.map((share) => share * total);
  const amounts = exact.map((value) => Math.floor(value + 1e-9));
  let remainder = total - amounts.reduce((sum, value) => sum + value, 0);
  const order = exact
    .map((value, index) => ({ index, fraction: value - Math.floor(value + 1e-9) }))
    .sort((a, b) => b.fraction - a.fraction || a.index - b.index);
  for (let position = 0; remainder > 0; position = (position + 1) % order.length) {
    amounts[order[position]!.index]! += 1;
    remainder -= 1;
  }
  while (remainder < 0) {
    const donor = amounts.findIndex((value) => value > 0);
    amounts[donor]! -= 1;
    remainder += 1;
  }
  const minimum = lower.map((share) => Math.ceil(share * total - 1e-9));
  const maximum = upper.map((share) => Math.floor(share * total + 1e-9));
  if (
    minimum.reduce((sum, value) => sum + value, 0) > total ||
    maximum.reduce((sum, value) => sum + value, 0) < total
  ) {
    fail('budget too small to honour the share bounds in whole minor units', { minimum, maximum, total });
  }
  for (let guard = 0; guard < 10 * shares.length * (total + 1); guard += 1) {
    const short = amounts.findIndex((value, index) => value < minimum[index]!);
    const over = amounts.findIndex((value, index) => value > maximum[index]!);
    if (short < 0 && over < 0) return amounts;
    if (short >= 0) {
      const donor = bestIndex(
        amounts,
        (value, index) => value > minimum[index]!,
        (value, index) => value - exact[index]!,
      );
      amounts[short]! += 1;
      amounts[donor]! -= 1;
    } else {
      const receiver = bestIndex(
        amounts,
        (value, index) => value < maximum[index]!,
        (value, index) => exact[index]! - value,
      );
      amounts[over]! -= 1;
      amounts[receiver]! += 1;
    }
  }
  return fail('could not place minor units within the share bounds');
}

function bestIndex(
  values: readonly number[],
  eligible: (value: number, index: number) => boolean,
  score: (value: number, index: number) => number,
): number {
  let best = -1;
  for (let index = 0; index < values.length; index += 1) {
    if (!eligible(values[index]!, index)) continue;
    if (best < 0 || score(values[index]!, index) > score(values[best]!, best)) best = index;
  }
  if (best < 0) fail('could not place minor units within the share bounds');
  return best;
}

function summarise(draws: Float64Array): PosteriorSummary {
  const sorted = Float64Array.from(draws).sort();
  let mean = 0;
  for (const value of draws) mean += value;
  mean /= draws.length;
  const at = (quantile: number): number =>
    sorted[Math.min(sorted.length - 1, Math.floor(quantile * (sorted.length - 1)))]!;
  return { mean, low: at(CREDIBLE_LOW), high: at(CREDIBLE_HIGH) };
}

/**
 * Recommends budget shares by Thompson sampling (randomised probability matching, Scott 2010):
 * per arm, CVR ~ Beta(1 + conversions, 1 + clicks − conversions); value per conversion v = 1/θ with
 * θ ~ Gamma(2 + conversions, rate = pooled value per conversion + revenue) (an exponential-value model
 * shrunk toward the pooled mean by one pseudo-conversion); CPC = spend/clicks (pooled when no clicks).
 * Reward per unit spent = CVR · v / CPC. Shares are P(best) projected onto the constraints.
 */
export function optimizeBudget(input: BudgetInput): BudgetPlan {
  validate(input);
  const { arms, totalBudgetMinor } = input;
  const samples = input.samples ?? DEFAULT_SAMPLES;
  const seed = input.seed ?? 1;
  const { lower, upper } = feasibleBounds(input);
  const random = createRandom(seed);

  const totalClicks = arms.reduce((sum, arm) => sum + arm.clicks, 0);
  const totalSpend = arms.reduce((sum, arm) => sum + arm.spendMinor, 0);
  const totalConversions = arms.reduce((sum, arm) => sum + arm.conversions, 0);
  const totalRevenue = arms.reduce((sum, arm) => sum + arm.revenueMinor, 0);
  const pooledCpc = totalClicks > 0 && totalSpend > 0 ? totalSpend / totalClicks : 1;
  const pooledValue = totalConversions > 0 && totalRevenue > 0 ? totalRevenue / totalConversions : 1;
  const costPerClick = arms.map((arm) =>
    arm.clicks > 0 && arm.spendMinor > 0 ? arm.spendMinor / arm.clicks : pooledCpc,
  );

  const count = arms.length;
  const conversionDraws = arms.map(() => new Float64Array(samples));
  const valueDraws = arms.map(() => new Float64Array(samples));
  const rewardDraws = arms.map(() => new Float64Array(samples));
  const wins = new Array<number>(count).fill(0);
  for (let draw = 0; draw < samples; draw += 1) {
    let bestArm = 0;
    let bestReward = -Infinity;
    for (let index = 0; index < count; index += 1) {
      const arm = arms[index]!;
      const rate = random.beta(1 + arm.conversions, 1 + arm.clicks - arm.conversions);
      const theta = random.gamma(2 + arm.conversions) / (pooledValue + arm.revenueMinor);
      const value = 1 / theta;
      const reward = (rate * value) / costPerClick[index]!;
      conversionDraws[index]![draw] = rate;
      valueDraws[index]![draw] = value;
      rewardDraws[index]![draw] = reward;
      if (reward > bestReward) {
        bestReward = reward;
        bestArm = index;
      }
    }
    wins[bestArm]! += 1;
  }
  const probabilityBest = wins.map((value) => value / samples);
  const leaderIndex = probabilityBest.indexOf(Math.max(...probabilityBest));
  const lift = new Float64Array(samples);
  for (let draw = 0; draw < samples; draw += 1) {
    let best = -Infinity;
    for (let index = 0; index < count; index += 1) best = Math.max(best, rewardDraws[index]![draw]!);
    const leader = rewardDraws[leaderIndex]![draw]!;
    lift[draw] = leader > 0 ? (best - leader) / leader : 0;
  }
  lift.sort();
  const potentialLift95 = lift[Math.min(samples - 1, Math.floor(0.95 * (samples - 1)))]!;

  const shares = projectShares(probabilityBest, lower, upper);
  const amounts = splitMinorUnits(shares, totalBudgetMinor, lower, upper);
  const binding: string[] = [];
  const allocations = arms.map((arm, index): ArmAllocation => {
    const share = shares[index]!;
    if (Math.abs(share - probabilityBest[index]!) > 1e-12) binding.push(arm.id);
    const previous = arm.previousShare ?? null;
    const change = previous === null ? 0 : share - previous;
    return {
      id: arm.id,
      probabilityBest: probabilityBest[index]!,
      rawShare: probabilityBest[index]!,
      share,
      amountMinor: amounts[index]!,
      previousShare: previous,
      lowerBound: lower[index]!,
      upperBound: upper[index]!,
      conversionRate: summarise(conversionDraws[index]!),
      valuePerConversionMinor: summarise(valueDraws[index]!),
      costPerClickMinor: costPerClick[index]!,
      revenuePerMinorUnit: summarise(rewardDraws[index]!),
      recommendation:
        previous === null || Math.abs(change) < 0.005 ? 'hold' : change > 0 ? 'increase' : 'decrease',
    };
  });
  const leaderProbability = probabilityBest[leaderIndex]!;
  return {
    arms: allocations,
    totalBudgetMinor,
    seed,
    samples,
    leader: arms[leaderIndex]!.id,
    confidence: leaderProbability >= 0.95 ? 'high' : leaderProbability >= 0.75 ? 'medium' : 'low',
    potentialLift95,
    bindingConstraints: binding,
  };
}
