// A/B-test statistics for conversion rates: pooled two-proportion z-test, 2×2 chi-square (plain and Yates),
// Bayesian P(variant > control) in closed form, sample size and MDE (formula named), sample-ratio-mismatch
// check, and the false-positive inflation caused by peeking at interim results.
import { AppError } from '../shared/errors.js';
import { chiSquareSurvival, logBeta, normalPdf, normalQuantile, normalSurvival } from './random.js';

/** Observed counts of one arm. */
export interface ArmCounts {
  /** Visitors (trials) that converted; integer, 0 ≤ conversions ≤ visitors. */
  readonly conversions: number;
  /** Visitors (trials) exposed to the arm; positive integer. */
  readonly visitors: number;
}

/** A test statistic with its p-value; both null when the statistic is undefined (e.g. no conversions at all). */
export interface TestStatistic {
  readonly statistic: number | null;
  readonly pValue: number | null;
}

function assertArm(arm: ArmCounts, name: string): void {
  const { conversions, visitors } = arm;
  if (!Number.isInteger(visitors) || visitors <= 0) {
    throw new AppError('VALIDATION_FAILED', `${name} visitors must be a positive integer, got ${visitors}`, {
      details: { arm: name, field: 'visitors', value: visitors },
    });
  }
  if (!Number.isInteger(conversions) || conversions < 0 || conversions > visitors) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${name} conversions must be an integer between 0 and visitors (${visitors}), got ${conversions}`,
      { details: { arm: name, field: 'conversions', value: conversions } },
    );
  }
}

function assertProbability(value: number, name: string, options: { open?: boolean } = {}): void {
  const ok = options.open === false ? value >= 0 && value <= 1 : value > 0 && value < 1;
  if (!Number.isFinite(value) || !ok) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${name} must be a probability strictly between 0 and 1, got ${value}`,
      {
        details: { field: name, value },
      },
    );
  }
}

/**
 * Pooled two-proportion z-test of variant vs control: z = (p₂ − p₁)/√(p̂(1−p̂)(1/n₁ + 1/n₂)), p̂ pooled.
 * `pValueOneSided` is P(Z ≥ z), the alternative "variant converts better".
 */
export function twoProportionZTest(
  control: ArmCounts,
  variant: ArmCounts,
): { z: number | null; pValueTwoSided: number | null; pValueOneSided: number | null } {
  assertArm(control, 'control');
  assertArm(variant, 'variant');
  const pooled = (control.conversions + variant.conversions) / (control.visitors + variant.visitors);
  const standardError = Math.sqrt(pooled * (1 - pooled) * (1 / control.visitors + 1 / variant.visitors));
  if (!(standardError > 0)) return { z: null, pValueTwoSided: null, pValueOneSided: null };
  const z = (variant.conversions / variant.visitors - control.conversions / control.visitors) / standardError;
  return { z, pValueTwoSided: 2 * normalSurvival(Math.abs(z)), pValueOneSided: normalSurvival(z) };
}

/**
 * Pearson chi-square on the 2×2 table (converted / not converted × arm), 1 degree of freedom. With
 * `yates`, each observed count moves toward its expected count by min(0.5, |O − E|), as SciPy's
 * `chi2_contingency(correction=True)` does. Without correction χ² equals z² of the pooled z-test.
 */
export function chiSquare2x2(
  control: ArmCounts,
  variant: ArmCounts,
  options: { yates?: boolean } = {},
): TestStatistic {
  assertArm(control, 'control');
  assertArm(variant, 'variant');
  const observed = [
    [control.conversions, control.visitors - control.conversions],
    [variant.conversions, variant.visitors - variant.conversions],
  ];
  const total = control.visitors + variant.visitors;
  const columnTotals = [
    control.conversions + variant.conversions,
    total - control.conversions - variant.conversions,
  ];
  const rowTotals = [control.visitors, variant.visitors];
  if (columnTotals.some((value) => value === 0)) return { statistic: null, pValue: null };
  let statistic = 0;
  for (let row = 0; row < 2; row += 1) {
    for (let column = 0; column < 2; column += 1) {
      const expected = (rowTotals[row]! * columnTotals[column]!) / total;
      let count = observed[row]![column]!;
      if (options.yates === true) {
        const gap = expected - count;
        count += Math.sign(gap) * Math.min(0.5, Math.abs(gap));
      }
      statistic += ((count - expected) * (count - expected)) / expected;
    }
  }
  return { statistic, pValue: chiSquareSurvival(statistic, 1) };
}

/** Parameters of a Beta distribution. */
export interface BetaParameters {
  readonly alpha: number;
  readonly beta: number;
}

/**
 * P(p_B > p_A) for independent p_A ~ Beta(a.alpha, a.beta), p_B ~ Beta(b.alpha, b.beta), by Evan Miller's
 * closed form ("Formulas for Bayesian A/B Testing"), summed in log space:
 * Σ_{i=0}^{α_B−1} B(α_A+i, β_A+β_B) / ((β_B+i) B(1+i, β_B) B(α_A, β_A)). Needs an integer α_B.
 */
export function probabilityBBeatsA(a: BetaParameters, b: BetaParameters): number {
  for (const [name, value] of Object.entries({
    alphaA: a.alpha,
    betaA: a.beta,
    alphaB: b.alpha,
    betaB: b.beta,
  })) {
    if (!(value > 0) || !Number.isFinite(value)) {
      throw new AppError(
        'VALIDATION_FAILED',
        `Beta parameter ${name} must be positive and finite, got ${value}`,
      );
    }
  }
  if (!Number.isInteger(b.alpha)) {
    throw new AppError('VALIDATION_FAILED', `the closed form needs an integer alpha for B, got ${b.alpha}`);
  }
  const constant = logBeta(a.alpha, a.beta);
  let total = 0;
  for (let i = 0; i < b.alpha; i += 1) {
    total += Math.exp(
      logBeta(a.alpha + i, a.beta + b.beta) - Math.log(b.beta + i) - logBeta(1 + i, b.beta) - constant,
    );
  }
  return Math.min(1, Math.max(0, total));
}

/** Peeking: how often a null effect reaches p < α at least once over K equally spaced looks. */
export interface PeekingWarning {
  readonly looks: number;
  readonly nominalAlpha: number;
  /** P(at least one nominal two-sided p < α across the looks | no true effect). */
  readonly actualFalsePositiveRate: number;
  readonly message: string;
}

/** The largest number of looks {@link peekingFalsePositiveRate} computes (the cost grows as looks²). */
export const MAX_LOOKS = 500;

/**
 * Family-wise false-positive rate of repeated two-sided significance tests at level `alpha` over `looks`
 * equally spaced looks at accumulating data (Armitage, McPherson & Rowe 1969). Computed exactly (to
 * about 1e-5) by recursive numerical integration of the partial-sum density over the continuation
 * region |S_k| ≤ z·√k with Simpson's rule. K = 2, 5, 10, 100 give 0.083, 0.142, 0.193, 0.374.
 */
export function peekingFalsePositiveRate(looks: number, alpha = 0.05): number {
  if (!Number.isInteger(looks) || looks < 1 || looks > MAX_LOOKS) {
    throw new AppError(
      'VALIDATION_FAILED',
      `looks must be an integer between 1 and ${MAX_LOOKS}, got ${looks}`,
      {
        details: { field: 'looks', value: looks },
      },
    );
  }
  assertProbability(alpha, 'alpha');
  if (looks === 1) return alpha;
  const critical = normalQuantile(1 - alpha / 2);
  // Step 0.1 agrees with step 0.05 to 1e-6 for K ≤ 100; the kernel is cut where φ < 1e-18.
  const targetStep = 0.1;
  const kernelReach = 9;
  const grid = (look: number): { nodes: Float64Array; weights: Float64Array } => {
    const bound = critical * Math.sqrt(look);
    let intervals = Math.ceil((2 * bound) / targetStep);
    if (intervals % 2 === 1) intervals += 1;
    const step = (2 * bound) / intervals;
    const nodes = new Float64Array(intervals + 1);
    const weights = new Float64Array(intervals + 1);
    for (let index = 0; index <= intervals; index += 1) {
      nodes[index] = -bound + index * step;
      const simpson = index === 0 || index === intervals ? 1 : index % 2 === 1 ? 4 : 2;
      weights[index] = (simpson * step) / 3;
    }
    return { nodes, weights };
  };
  let previous = grid(1);
  let density = previous.nodes.map((node) => normalPdf(node));
  for (let look = 2; look <= looks; look += 1) {
    const current = grid(look);
    const next = new Float64Array(current.nodes.length);
    for (let target = 0; target < current.nodes.length; target += 1) {
      let sum = 0;
      const t = current.nodes[target]!;
      const sourceCount = previous.nodes.length;
      const sourceStep = previous.nodes[1]! - previous.nodes[0]!;
      const origin = previous.nodes[0]!;
      const first = Math.max(0, Math.floor((t - kernelReach - origin) / sourceStep));
      const last = Math.min(sourceCount - 1, Math.ceil((t + kernelReach - origin) / sourceStep));
      for (let source = first; source <= last; source += 1) {
        const massAtSource = previous.weights[source]! * density[source]!;
        if (massAtSource === 0) continue;
        sum += massAtSource * normalPdf(t - previous.nodes[source]!);
      }
      next[target] = sum;
    }
    previous = current;
    density = next;
  }
  let survive = 0;
  for (let index = 0; index < density.length; index += 1)
    survive += previous.weights[index]! * density[index]!;
  return 1 - survive;
}

function peekingWarning(looks: number, alpha: number): PeekingWarning {
  const rate = peekingFalsePositiveRate(looks, alpha);
  return {
    looks,
    nominalAlpha: alpha,
    actualFalsePositiveRate: rate,
    message:
      `Interim look: with ${looks} look(s) at a nominal ${(alpha * 100).toFixed(1)}% level, the chance of a ` +
      `false "significant" result is ${(rate * 100).toFixed(1)}%. Fix the sample size in advance or use a ` +
      `sequential design (O'Brien-Fleming / alpha spending, mSPRT).`,
  };
}

/** Options of {@link compareProportions}. */
export interface CompareOptions {
  /** Two-sided significance level; default 0.05. */
  readonly alpha?: number;
  /** Confidence level of the difference interval; default 0.95. */
  readonly confidence?: number;
  /** Number of looks taken so far (including this one); default 1. */
  readonly looks?: number;
  /** True when this analysis is an interim look (the test is still running). */
  readonly interim?: boolean;
  /** Integer Beta prior shared by both arms; default Beta(1, 1) (uniform). */
  readonly prior?: BetaParameters;
}

/** The full comparison of a variant against a control. */
export interface ProportionComparison {
  readonly control: ArmCounts & { readonly rate: number };
  readonly variant: ArmCounts & { readonly rate: number };
  /** p_variant − p_control. */
  readonly absoluteDifference: number;
  /** (p_variant − p_control) / p_control; null when the control rate is 0. */
  readonly relativeLift: number | null;
  readonly zTest: { z: number | null; pValueTwoSided: number | null; pValueOneSided: number | null };
  /** Wald interval of the difference with the unpooled standard error. */
  readonly differenceInterval: { readonly confidence: number; readonly low: number; readonly high: number };
  readonly chiSquare: TestStatistic;
  readonly chiSquareYates: TestStatistic;
  /** P(p_variant > p_control | data) under the prior. */
  readonly probabilityVariantBeatsControl: number;
  readonly prior: BetaParameters;
  readonly alpha: number;
  /** Two-sided z-test p < alpha (null when undefined). Read together with `peeking`. */
  readonly significant: boolean | null;
  /** Present when the analysis is an interim look or more than one look was taken. */
  readonly peeking: PeekingWarning | null;
}

/** Runs every frequentist and Bayesian comparison of two arms and attaches a peeking warning when due. */
export function compareProportions(
  control: ArmCounts,
  variant: ArmCounts,
  options: CompareOptions = {},
): ProportionComparison {
  assertArm(control, 'control');
  assertArm(variant, 'variant');
  const alpha = options.alpha ?? 0.05;
  const confidence = options.confidence ?? 0.95;
  const looks = options.looks ?? 1;
  const prior = options.prior ?? { alpha: 1, beta: 1 };
  assertProbability(alpha, 'alpha');
  assertProbability(confidence, 'confidence');
  if (!Number.isInteger(prior.alpha) || prior.alpha < 1 || !(prior.beta > 0)) {
    throw new AppError(
      'VALIDATION_FAILED',
      'prior alpha must be a positive integer and prior beta positive',
      {
        details: { prior },
      },
    );
  }
  const controlRate = control.conversions / control.visitors;
  const variantRate = variant.conversions / variant.visitors;
  const difference = variantRate - controlRate;
  const standardError = Math.sqrt(
    (controlRate * (1 - controlRate)) / control.visitors +
      (variantRate * (1 - variantRate)) / variant.visitors,
  );
  const critical = normalQuantile(1 - (1 - confidence) / 2);
  const zTest = twoProportionZTest(control, variant);
  const peekingDue = options.interim === true || looks > 1;
  return {
    control: { ...control, rate: controlRate },
    variant: { ...variant, rate: variantRate },
    absoluteDifference: difference,
    relativeLift: controlRate === 0 ? null : difference / controlRate,
    zTest,
    differenceInterval: {
      confidence,
      low: difference - critical * standardError,
      high: difference + critical * standardError,
    },
    chiSquare: chiSquare2x2(control, variant),
    chiSquareYates: chiSquare2x2(control, variant, { yates: true }),
    probabilityVariantBeatsControl: probabilityBBeatsA(
      { alpha: prior.alpha + control.conversions, beta: prior.beta + control.visitors - control.conversions },
      { alpha: prior.alpha + variant.conversions, beta: prior.beta + variant.visitors - variant.conversions },
    ),
    prior,
    alpha,
    significant: zTest.pValueTwoSided === null ? null : zTest.pValueTwoSided < alpha,
    peeking: peekingDue ? peekingWarning(Math.max(looks, 1), alpha) : null,
  };
}

/** Sample-size formulas for two proportions; the answer always names the one used. */
export type SampleSizeFormula = 'evan-miller' | 'pooled' | 'cohen-h';

/** Human-readable description of each formula, printed next to the number. */
export const SAMPLE_SIZE_FORMULAS: Readonly<Record<SampleSizeFormula, string>> = {
  'evan-miller':
    "Evan Miller's calculator (sample-size.js num_subjects): first SD from the baseline only, " +
    'n = (z₁₋α/₂·√(2p(1−p)) + z₁₋β·√(p(1−p)+(p+δ)(1−p−δ)))² / δ²',
  pooled:
    'textbook pooled (Fleiss): n = (z₁₋α/₂·√(2p̄(1−p̄)) + z₁₋β·√(p₁(1−p₁)+p₂(1−p₂)))² / δ², p̄ = (p₁+p₂)/2',
  'cohen-h': "Cohen's h (arcsine): n = 2·((z₁₋α/₂ + z₁₋β)/h)², h = 2·asin√p₂ − 2·asin√p₁",
};

/** Inputs of a sample-size calculation. */
export interface SampleSizeInput {
  /** Baseline conversion rate p (0 < p < 1). */
  readonly baseline: number;
  /** Absolute minimum detectable effect δ (p + δ must stay below 1); e.g. 0.05 for 5 percentage points. */
  readonly mdeAbsolute: number;
  /** Two-sided significance level; default 0.05. */
  readonly alpha?: number;
  /** Power 1 − β; default 0.8. */
  readonly power?: number;
  /** Default 'evan-miller'. */
  readonly formula?: SampleSizeFormula;
}

/** Result of a sample-size calculation. */
export interface SampleSizeResult {
  /** Unrounded visitors per arm from the formula (compare with published values). */
  readonly perArmExact: number;
  /** Visitors per arm to plan for (rounded up). */
  readonly perArm: number;
  readonly total: number;
  readonly formula: SampleSizeFormula;
  readonly formulaDescription: string;
  readonly baseline: number;
  readonly mdeAbsolute: number;
  readonly alpha: number;
  readonly power: number;
}

function sampleSizeRaw(
  p: number,
  delta: number,
  alpha: number,
  power: number,
  formula: SampleSizeFormula,
): number {
  const zAlpha = normalQuantile(1 - alpha / 2);
  const zBeta = normalQuantile(power);
  const p2 = p + delta;
  switch (formula) {
    case 'evan-miller': {
      const sd1 = Math.sqrt(2 * p * (1 - p));
      const sd2 = Math.sqrt(p * (1 - p) + p2 * (1 - p2));
      return (zAlpha * sd1 + zBeta * sd2) ** 2 / (delta * delta);
    }
    case 'pooled': {
      const mean = (p + p2) / 2;
      const sd1 = Math.sqrt(2 * mean * (1 - mean));
      const sd2 = Math.sqrt(p * (1 - p) + p2 * (1 - p2));
      return (zAlpha * sd1 + zBeta * sd2) ** 2 / (delta * delta);
    }
    case 'cohen-h': {
      const h = 2 * Math.asin(Math.sqrt(p2)) - 2 * Math.asin(Math.sqrt(p));
      return 2 * ((zAlpha + zBeta) / h) ** 2;
    }
    default: {
      const unknown: never = formula;
      throw new AppError('VALIDATION_FAILED', `unknown sample-size formula ${String(unknown)}`);
    }
  }
}

/** Defaults (α 0.05, power 0.8, Evan Miller) and validation shared by the sample-size and MDE solvers. */
function powerSettings(input: {
  readonly baseline: number;
  readonly alpha?: number;
  readonly power?: number;
  readonly formula?: string;
}): { alpha: number; power: number; formula: SampleSizeFormula } {
  const alpha = input.alpha ?? 0.05;
  const power = input.power ?? 0.8;
  const formula = input.formula ?? 'evan-miller';
  if (!Object.hasOwn(SAMPLE_SIZE_FORMULAS, formula)) {
    throw new AppError(
      'VALIDATION_FAILED',
      `formula must be one of ${Object.keys(SAMPLE_SIZE_FORMULAS).join(', ')}, got ${formula}`,
    );
  }
  assertProbability(input.baseline, 'baseline');
  assertProbability(alpha, 'alpha');
  assertProbability(power, 'power');
  return { alpha, power, formula: formula as SampleSizeFormula };
}

/** Visitors per arm needed to detect an absolute lift `mdeAbsolute` over `baseline` (two-sided test). */
export function sampleSizePerArm(input: SampleSizeInput): SampleSizeResult {
  const { alpha, power, formula } = powerSettings(input);
  const delta = input.mdeAbsolute;
  if (!Number.isFinite(delta) || delta === 0 || input.baseline + delta <= 0 || input.baseline + delta >= 1) {
    throw new AppError(
      'VALIDATION_FAILED',
      `mdeAbsolute must be non-zero with 0 < baseline + mde < 1, got baseline ${input.baseline}, mde ${delta}`,
      { details: { baseline: input.baseline, mdeAbsolute: delta } },
    );
  }
  const perArmExact = sampleSizeRaw(input.baseline, delta, alpha, power, formula);
  const perArm = Math.ceil(perArmExact - 1e-9);
  return {
    perArmExact,
    perArm,
    total: 2 * perArm,
    formula,
    formulaDescription: SAMPLE_SIZE_FORMULAS[formula],
    baseline: input.baseline,
    mdeAbsolute: delta,
    alpha,
    power,
  };
}

/**
 * Smallest absolute lift detectable with `visitorsPerArm` per arm: the exact inverse of the chosen
 * sample-size formula (bisection on δ > 0), and the usual approximation (z₁₋α/₂ + z₁₋β)·√(2p(1−p)/n).
 */
export function minimumDetectableEffect(input: {
  readonly baseline: number;
  readonly visitorsPerArm: number;
  readonly alpha?: number;
  readonly power?: number;
  readonly formula?: SampleSizeFormula;
}): { mdeAbsolute: number | null; mdeApproximate: number; formula: SampleSizeFormula } {
  const { alpha, power, formula } = powerSettings(input);
  const n = input.visitorsPerArm;
  if (!Number.isInteger(n) || n < 2) {
    throw new AppError('VALIDATION_FAILED', `visitorsPerArm must be an integer ≥ 2, got ${n}`);
  }
  const p = input.baseline;
  const approximate =
    (normalQuantile(1 - alpha / 2) + normalQuantile(power)) * Math.sqrt((2 * p * (1 - p)) / n);
  let low = 1e-12;
  let high = 1 - p - 1e-12;
  if (sampleSizeRaw(p, high, alpha, power, formula) > n)
    return { mdeAbsolute: null, mdeApproximate: approximate, formula };
  for (let iteration = 0; iteration < 200 && high - low > 1e-13; iteration += 1) {
    const middle = (low + high) / 2;
    if (sampleSizeRaw(p, middle, alpha, power, formula) > n) low = middle;
    else high = middle;
  }
  return { mdeAbsolute: high, mdeApproximate: approximate, formula };
}

/** Result of a sample-ratio-mismatch check. */
export interface SampleRatioCheck {
  readonly observed: readonly number[];
  readonly expected: readonly number[];
  readonly chiSquare: number;
  readonly degreesOfFreedom: number;
  readonly pValue: number;
  /** p below the threshold: the split is broken and the test results are not trustworthy. */
  readonly mismatch: boolean;
  readonly threshold: number;
}

/**
 * Sample-ratio-mismatch check: chi-square goodness of fit of observed visitors per arm against the
 * planned shares (default equal). The usual alarm threshold is p < 0.001.
 */
export function sampleRatioMismatch(
  observed: readonly number[],
  plannedShares?: readonly number[],
  threshold = 0.001,
): SampleRatioCheck {
  if (observed.length < 2 || observed.some((count) => !Number.isInteger(count) || count < 0)) {
    throw new AppError('VALIDATION_FAILED', 'observed visitors must be at least two non-negative integers');
  }
  const shares = plannedShares ?? observed.map(() => 1 / observed.length);
  if (shares.length !== observed.length || shares.some((share) => !(share > 0))) {
    throw new AppError('VALIDATION_FAILED', 'planned shares must be positive, one per arm');
  }
  const shareTotal = shares.reduce((sum, share) => sum + share, 0);
  const total = observed.reduce((sum, count) => sum + count, 0);
  if (total === 0) throw new AppError('VALIDATION_FAILED', 'no visitors observed');
  const expected = shares.map((share) => (total * share) / shareTotal);
  let chiSquare = 0;
  for (let arm = 0; arm < observed.length; arm += 1) {
    chiSquare += (observed[arm]! - expected[arm]!) ** 2 / expected[arm]!;
  }
  const degreesOfFreedom = observed.length - 1;
  const pValue = chiSquareSurvival(chiSquare, degreesOfFreedom);
  return { observed, expected, chiSquare, degreesOfFreedom, pValue, mismatch: pValue < threshold, threshold };
}
