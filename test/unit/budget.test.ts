// Thompson-sampling budget optimiser: seeded property tests over multi-round simulations (Σ = 1, floors,
// ceilings, max step, exact money), determinism, convergence to the best arm, projection and feasibility.
import { describe, expect, it } from 'vitest';
import {
  feasibleBounds,
  optimizeBudget,
  projectShares,
  splitMinorUnits,
  type BudgetArm,
} from '../../spoke_marketing/budget.js';
import { createRandom, type SeededRandom } from '../../spoke_marketing/random.js';

interface TrueArm {
  readonly id: string;
  readonly conversionRate: number;
  readonly costPerClickMinor: number;
  readonly valuePerConversionMinor: number;
}

const THREE_ARMS: readonly TrueArm[] = [
  { id: 'search', conversionRate: 0.04, costPerClickMinor: 100, valuePerConversionMinor: 5000 },
  { id: 'social', conversionRate: 0.05, costPerClickMinor: 100, valuePerConversionMinor: 5000 },
  { id: 'display', conversionRate: 0.045, costPerClickMinor: 100, valuePerConversionMinor: 5000 },
];

function binomial(random: SeededRandom, trials: number, probability: number): number {
  let successes = 0;
  for (let trial = 0; trial < trials; trial += 1) if (random.next() < probability) successes += 1;
  return successes;
}

interface SimulationOptions {
  readonly seed: number;
  readonly rounds: number;
  readonly dailyBudgetMinor: number;
  readonly floors?: number;
  readonly ceilings?: number;
  readonly maxStep?: number;
  readonly samples?: number;
  readonly onRound?: (
    round: number,
    plan: ReturnType<typeof optimizeBudget>,
    previous: readonly number[] | null,
  ) => void;
}

/** Runs the optimiser day after day against simulated arms; returns the last plan's shares. */
function simulate(truth: readonly TrueArm[], options: SimulationOptions): number[] {
  const world = createRandom(options.seed * 7919 + 13);
  const totals = truth.map(() => ({ clicks: 0, conversions: 0, spendMinor: 0, revenueMinor: 0 }));
  let previous: number[] | null = null;
  let shares = truth.map(() => 1 / truth.length);
  for (let round = 0; round < options.rounds; round += 1) {
    const arms: BudgetArm[] = truth.map((arm, index) => ({
      id: arm.id,
      ...totals[index]!,
      ...(previous === null ? {} : { previousShare: previous[index]! }),
    }));
    const plan = optimizeBudget({
      arms,
      totalBudgetMinor: options.dailyBudgetMinor,
      ...(options.floors === undefined ? {} : { floors: options.floors }),
      ...(options.ceilings === undefined ? {} : { ceilings: options.ceilings }),
      ...(options.maxStep === undefined || previous === null ? {} : { maxStep: options.maxStep }),
      samples: options.samples ?? 2000,
      seed: options.seed * 1000 + round,
    });
    options.onRound?.(round, plan, previous);
    shares = plan.arms.map((arm) => arm.share);
    plan.arms.forEach((allocation, index) => {
      const arm = truth[index]!;
      const clicks = Math.floor(allocation.amountMinor / arm.costPerClickMinor);
      const conversions = binomial(world, clicks, arm.conversionRate);
      const total = totals[index]!;
      total.clicks += clicks;
      total.conversions += conversions;
      total.spendMinor += clicks * arm.costPerClickMinor;
      total.revenueMinor += conversions * arm.valuePerConversionMinor;
    });
    previous = shares;
  }
  return shares;
}

describe('optimizeBudget — constraints hold at every round of a simulation', () => {
  it.each([1, 2, 3])('seed %i: Σ = 1, floors 0.10, ceilings 0.80, |step| ≤ 0.15, money exact', (seed) => {
    let rounds = 0;
    simulate(THREE_ARMS, {
      seed,
      rounds: 25,
      dailyBudgetMinor: 300_001,
      floors: 0.1,
      ceilings: 0.8,
      maxStep: 0.15,
      onRound: (_round, plan, previous) => {
        rounds += 1;
        const shares = plan.arms.map((arm) => arm.share);
        expect(Math.abs(shares.reduce((sum, share) => sum + share, 0) - 1)).toBeLessThanOrEqual(1e-12);
        expect(plan.arms.reduce((sum, arm) => sum + arm.amountMinor, 0)).toBe(300_001);
        plan.arms.forEach((arm, index) => {
          expect(arm.share).toBeGreaterThanOrEqual(0.1 - 1e-12);
          expect(arm.share).toBeLessThanOrEqual(0.8 + 1e-12);
          expect(arm.amountMinor).toBeGreaterThanOrEqual(Math.ceil(0.1 * 300_001));
          expect(arm.amountMinor).toBeLessThanOrEqual(Math.floor(0.8 * 300_001));
          expect(Number.isInteger(arm.amountMinor)).toBe(true);
          if (previous !== null)
            expect(Math.abs(arm.share - previous[index]!)).toBeLessThanOrEqual(0.15 + 1e-12);
        });
      },
    });
    expect(rounds).toBe(25);
  });

  it('reaches the constrained corner for a clear winner (≈ 0.10 / 0.80 / 0.10)', () => {
    const shares = simulate(THREE_ARMS, {
      seed: 4,
      rounds: 40,
      dailyBudgetMinor: 300_000,
      floors: 0.1,
      ceilings: 0.8,
      maxStep: 0.15,
    });
    expect(shares[1]).toBeCloseTo(0.8, 6);
  });
});

describe('optimizeBudget — convergence and determinism', () => {
  it('without constraints the best arm gets > 95 % of the budget after 60 rounds (mean over 5 seeds)', () => {
    const finalShares = [1, 2, 3, 4, 5].map(
      (seed) => simulate(THREE_ARMS, { seed, rounds: 60, dailyBudgetMinor: 300_000, samples: 1000 })[1]!,
    );
    const mean = finalShares.reduce((sum, share) => sum + share, 0) / finalShares.length;
    expect(mean).toBeGreaterThan(0.95);
  });

  it('is deterministic for a seed and changes with the seed', () => {
    const input = {
      arms: [
        { id: 'a', clicks: 1000, conversions: 40, spendMinor: 100_000, revenueMinor: 200_000 },
        { id: 'b', clicks: 1000, conversions: 45, spendMinor: 100_000, revenueMinor: 225_000 },
      ],
      totalBudgetMinor: 99_999,
      seed: 42,
    };
    expect(optimizeBudget(input)).toEqual(optimizeBudget(input));
    expect(optimizeBudget({ ...input, seed: 43 }).arms[0]!.probabilityBest).not.toBe(
      optimizeBudget(input).arms[0]!.probabilityBest,
    );
  });

  it('gives identical arms without data the prior split (within Monte-Carlo error)', () => {
    const plan = optimizeBudget({
      arms: ['a', 'b', 'c', 'd'].map((id) => ({
        id,
        clicks: 0,
        conversions: 0,
        spendMinor: 0,
        revenueMinor: 0,
      })),
      totalBudgetMinor: 1_000_000,
      samples: 40_000,
      seed: 9,
    });
    for (const arm of plan.arms) expect(Math.abs(arm.share - 0.25)).toBeLessThan(0.015);
    expect(plan.confidence).toBe('low');
  });

  it('ranks by revenue per unit spent, not by conversion rate alone', () => {
    const plan = optimizeBudget({
      arms: [
        // higher CVR but four times the CPC
        { id: 'expensive', clicks: 5000, conversions: 400, spendMinor: 2_000_000, revenueMinor: 2_000_000 },
        { id: 'cheap', clicks: 5000, conversions: 250, spendMinor: 500_000, revenueMinor: 1_250_000 },
      ],
      totalBudgetMinor: 100_000,
      seed: 3,
    });
    expect(plan.leader).toBe('cheap');
    const cheap = plan.arms[1]!;
    expect(cheap.revenuePerMinorUnit.mean).toBeCloseTo(2.5, 1);
    expect(cheap.revenuePerMinorUnit.low).toBeLessThan(cheap.revenuePerMinorUnit.mean);
    expect(cheap.conversionRate.mean).toBeCloseTo(251 / 5002, 3);
    expect(plan.confidence).toBe('high');
    expect(plan.potentialLift95).toBeLessThan(0.01);
  });
});

describe('projection, feasibility and money split', () => {
  it('projection is exact: Σ = 1 to 1e-12 and bounds hold for random inputs', () => {
    const random = createRandom(5);
    for (let trial = 0; trial < 500; trial += 1) {
      const count = 2 + Math.floor(random.next() * 6);
      const weights = Array.from({ length: count }, () => random.next());
      const total = weights.reduce((sum, value) => sum + value, 0);
      const normalised = weights.map((value) => value / total);
      const lower = Array.from({ length: count }, () => (random.next() * 0.5) / count);
      const upper = lower.map((value) => Math.min(1, value + 0.1 + random.next() * 0.9));
      if (upper.reduce((sum, value) => sum + value, 0) < 1) continue;
      const shares = projectShares(normalised, lower, upper);
      expect(Math.abs(shares.reduce((sum, value) => sum + value, 0) - 1)).toBeLessThanOrEqual(1e-12);
      shares.forEach((share, index) => {
        expect(share).toBeGreaterThanOrEqual(lower[index]!);
        expect(share).toBeLessThanOrEqual(upper[index]!);
      });
    }
  });

  it('projection of an already-feasible point is the point itself', () => {
    expect(projectShares([0.2, 0.3, 0.5], [0, 0, 0], [1, 1, 1])).toEqual([0.2, 0.3, 0.5]);
  });

  it('lists every conflicting constraint in one VALIDATION_FAILED', () => {
    const arms = [
      { id: 'a', clicks: 1, conversions: 0, spendMinor: 1, revenueMinor: 0, previousShare: 0.5 },
      { id: 'b', clicks: 1, conversions: 0, spendMinor: 1, revenueMinor: 0, previousShare: 0.5 },
    ];
    try {
      feasibleBounds({
        arms,
        totalBudgetMinor: 100,
        floors: { a: 0.9, b: 0.3 },
        ceilings: { a: 0.8 },
        maxStep: 0.1,
      });
      expect.unreachable('infeasible constraints must throw');
    } catch (error) {
      expect(error).toMatchObject({ code: 'VALIDATION_FAILED' });
      const conflicts = (error as { details: { conflicts: string[] } }).details.conflicts;
      expect(conflicts).toEqual(
        expect.arrayContaining([
          expect.stringContaining('arm a: floor 0.9 > ceiling 0.8'),
          expect.stringContaining('arm a: floor 0.9 > previous 0.5 + maxStep 0.1'),
          expect.stringContaining('lower bounds'),
        ]),
      );
    }
    expect(() => optimizeBudget({ arms, totalBudgetMinor: 100, floors: 0.6 })).toThrow(
      /lower bounds .* sum to 1\.200000 > 1/,
    );
  });

  it('largest remainder sums exactly and re-checks the bounds after rounding', () => {
    expect(splitMinorUnits([1 / 3, 1 / 3, 1 / 3], 100, [0, 0, 0], [1, 1, 1])).toEqual([34, 33, 33]);
    // floors of 1/3 each on 100 units: ⌈33.33⌉ = 34 three times is impossible → clear error.
    expect(() => splitMinorUnits([1 / 3, 1 / 3, 1 / 3], 100, [1 / 3, 1 / 3, 1 / 3], [1, 1, 1])).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
    const amounts = splitMinorUnits([0.105, 0.795, 0.1], 1000, [0.1, 0.1, 0.1], [0.8, 0.8, 0.8]);
    expect(amounts.reduce((sum, value) => sum + value, 0)).toBe(1000);
    expect(amounts).toEqual([105, 795, 100]);
  });

  it.each([
    [{ totalBudgetMinor: 10.5 }, /totalBudgetMinor/],
    [{ maxStep: 0.1 }, /maxStep needs previousShare/],
    [{ samples: 10 }, /samples/],
  ])('rejects bad input %j', (patch, message) => {
    const base = {
      arms: [{ id: 'a', clicks: 10, conversions: 1, spendMinor: 100, revenueMinor: 500 }],
      totalBudgetMinor: 1000,
    };
    expect(() => optimizeBudget({ ...base, ...patch })).toThrow(message);
  });

  it('rejects more conversions than clicks and duplicate ids', () => {
    const arm = { id: 'a', clicks: 1, conversions: 2, spendMinor: 1, revenueMinor: 0 };
    expect(() => optimizeBudget({ arms: [arm], totalBudgetMinor: 1 })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
    const ok = { ...arm, conversions: 0 };
    expect(() => optimizeBudget({ arms: [ok, ok], totalBudgetMinor: 1 })).toThrow(/duplicate/);
  });
});

describe('seeded samplers (random.ts)', () => {
  it('repeat the same sequence for the same seed', () => {
    const first = createRandom(123);
    const second = createRandom(123);
    const a = Array.from({ length: 5 }, () => [
      first.next(),
      first.normal(),
      first.gamma(0.7),
      first.beta(2, 3),
    ]);
    const b = Array.from({ length: 5 }, () => [
      second.next(),
      second.normal(),
      second.gamma(0.7),
      second.beta(2, 3),
    ]);
    expect(b).toEqual(a);
    expect(createRandom(124).next()).not.toBe(createRandom(123).next());
  });

  it.each([
    [0.3, 0.3, 0.3],
    [1, 1, 1],
    [5, 5, 5],
  ])('Gamma(%f) has mean %f and variance %f (within 4 standard errors)', (shape, mean, variance) => {
    const random = createRandom(77);
    const draws = 100_000;
    let sum = 0;
    let sumSquares = 0;
    for (let draw = 0; draw < draws; draw += 1) {
      const value = random.gamma(shape);
      sum += value;
      sumSquares += value * value;
    }
    const sampleMean = sum / draws;
    expect(Math.abs(sampleMean - mean)).toBeLessThan(4 * Math.sqrt(variance / draws));
    expect(Math.abs(sumSquares / draws - sampleMean ** 2 - variance) / variance).toBeLessThan(0.05);
  });

  it('Beta(2, 5) has mean 2/7 and uniforms lie in [0, 1)', () => {
    const random = createRandom(8);
    let sum = 0;
    for (let draw = 0; draw < 50_000; draw += 1) {
      const uniform = random.next();
      expect(uniform >= 0 && uniform < 1).toBe(true);
      sum += random.beta(2, 5);
    }
    expect(sum / 50_000).toBeCloseTo(2 / 7, 2);
  });
});
