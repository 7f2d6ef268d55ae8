// A/B statistics against the SciPy-computed vectors in ../shared/vectors/abtest_vectors.json, plus the
// special functions they rely on, the peeking table, the SRM check and input validation.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  chiSquare2x2,
  compareProportions,
  minimumDetectableEffect,
  peekingFalsePositiveRate,
  probabilityBBeatsA,
  sampleRatioMismatch,
  sampleSizePerArm,
  twoProportionZTest,
} from '../../spoke_marketing/abtest.js';
import {
  chiSquareSurvival,
  createRandom,
  erfc,
  logGamma,
  normalCdf,
  normalQuantile,
} from '../../spoke_marketing/random.js';
import { hasShared, sharedPath } from '../helpers/shared_data.js';

/** Half a unit in the last printed decimal of the reference value (vectors are rounded), plus 1e-12. */
function printedTolerance(reference: number): number {
  const text = String(reference);
  const exponent = /e-(\d+)$/.exec(text);
  const decimals = exponent
    ? Number(exponent[1]) + (text.split('e')[0]!.split('.')[1]?.length ?? 0)
    : (text.split('.')[1]?.length ?? 0);
  return 0.5 * 10 ** -decimals + 1e-12;
}

function expectMatchesPrinted(actual: number | null, reference: number): void {
  expect(actual).not.toBeNull();
  expect(Math.abs(actual! - reference)).toBeLessThanOrEqual(printedTolerance(reference));
}

interface SampleSizeVector {
  baseline: number;
  mde_abs: number;
  alpha_two_sided: number;
  power: number;
  evan_miller_per_arm: number;
  fleiss_pooled_per_arm: number;
  cohen_h_per_arm: number;
}

interface TwoProportionVector {
  control: { conversions: number; n: number };
  variant: { conversions: number; n: number };
  z_pooled: number;
  p_two_sided: number;
  p_one_sided: number;
  diff_ci95_unpooled: [number, number];
  relative_lift: number;
  chi2_no_correction: number;
  chi2_p: number;
  chi2_yates: number;
  chi2_yates_p: number;
  prob_variant_beats_control_beta11: number;
}

interface AbVectors {
  sample_size: SampleSizeVector[];
  two_proportion: TwoProportionVector[];
  peeking_false_positive_rate: { K: Record<string, number> };
}

const VECTORS = 'vectors/abtest_vectors.json';

describe.skipIf(!hasShared(VECTORS))('A/B vectors (abtest_vectors.json)', () => {
  const vectors = JSON.parse(readFileSync(sharedPath(VECTORS), 'utf8')) as AbVectors;

  describe('sample size per arm', () => {
    it.each(vectors.sample_size)(
      'baseline $baseline, MDE $mde_abs: Evan Miller $evan_miller_per_arm, pooled $fleiss_pooled_per_arm, Cohen h $cohen_h_per_arm',
      (row) => {
        const common = {
          baseline: row.baseline,
          mdeAbsolute: row.mde_abs,
          alpha: row.alpha_two_sided,
          power: row.power,
        };
        expectMatchesPrinted(
          sampleSizePerArm({ ...common, formula: 'evan-miller' }).perArmExact,
          row.evan_miller_per_arm,
        );
        expectMatchesPrinted(
          sampleSizePerArm({ ...common, formula: 'pooled' }).perArmExact,
          row.fleiss_pooled_per_arm,
        );
        expectMatchesPrinted(
          sampleSizePerArm({ ...common, formula: 'cohen-h' }).perArmExact,
          row.cohen_h_per_arm,
        );
        const planned = sampleSizePerArm(common);
        expect(planned.formula).toBe('evan-miller');
        expect(planned.perArm).toBe(Math.ceil(row.evan_miller_per_arm));
        expect(planned.formulaDescription).toMatch(/Evan Miller/);
      },
    );
  });

  describe('two-proportion comparisons', () => {
    it.each(vectors.two_proportion)(
      'control $control.conversions/$control.n vs variant $variant.conversions/$variant.n',
      (row) => {
        const control = { conversions: row.control.conversions, visitors: row.control.n };
        const variant = { conversions: row.variant.conversions, visitors: row.variant.n };
        const result = compareProportions(control, variant);
        expectMatchesPrinted(result.zTest.z, row.z_pooled);
        expectMatchesPrinted(result.zTest.pValueTwoSided, row.p_two_sided);
        expectMatchesPrinted(result.zTest.pValueOneSided, row.p_one_sided);
        expectMatchesPrinted(result.differenceInterval.low, row.diff_ci95_unpooled[0]);
        expectMatchesPrinted(result.differenceInterval.high, row.diff_ci95_unpooled[1]);
        expect(result.relativeLift).toBeCloseTo(row.relative_lift, 12);
        expectMatchesPrinted(result.chiSquare.statistic, row.chi2_no_correction);
        expectMatchesPrinted(result.chiSquare.pValue, row.chi2_p);
        expectMatchesPrinted(result.chiSquareYates.statistic, row.chi2_yates);
        expectMatchesPrinted(result.chiSquareYates.pValue, row.chi2_yates_p);
        expectMatchesPrinted(result.probabilityVariantBeatsControl, row.prob_variant_beats_control_beta11);
        // z² equals the uncorrected chi-square exactly (same test).
        expect(result.zTest.z! ** 2).toBeCloseTo(result.chiSquare.statistic!, 10);
        expect(result.peeking).toBeNull();
      },
    );
  });

  describe('peeking false-positive rate', () => {
    it.each(Object.entries(vectors.peeking_false_positive_rate.K))('K = %s looks → %f', (looks, rate) => {
      // Published to three decimals (Armitage, McPherson & Rowe 1969); our integration is exact to ~1e-6.
      expect(Math.abs(peekingFalsePositiveRate(Number(looks)) - rate)).toBeLessThanOrEqual(0.0005 + 1e-6);
    });
  });
});

describe('special functions', () => {
  it.each([
    [0, 0.5],
    [1.959963984540054, 0.975],
    [-1.959963984540054, 0.025],
    [-5, 2.866515718791939e-7],
    [-10, 7.619853024160527e-24],
    [3, 0.9986501019683699],
  ])('normalCdf(%f) = %f', (x, expected) => {
    expect(Math.abs(normalCdf(x) - expected) / expected).toBeLessThan(1e-13);
  });

  it('normalQuantile inverts normalCdf to double precision across the range', () => {
    for (const p of [1e-12, 1e-6, 0.001, 0.025, 0.2, 0.5, 0.8, 0.975, 0.999, 1 - 1e-9]) {
      const x = normalQuantile(p);
      expect(Math.abs(normalCdf(x) - p) / Math.min(p, 1 - p)).toBeLessThan(1e-9);
    }
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 14);
    expect(normalQuantile(0.8)).toBeCloseTo(0.8416212335729143, 14);
  });

  it('logGamma matches factorials and Γ(1/2) = √π', () => {
    expect(logGamma(1)).toBeCloseTo(0, 14);
    expect(logGamma(10)).toBeCloseTo(Math.log(362880), 12);
    expect(logGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 14);
    expect(logGamma(171.5)).toBeCloseTo(709.1431630309282, 9);
  });

  it('erfc and the chi-square survival agree with SciPy', () => {
    expect(erfc(0.3)).toBeCloseTo(0.6713732405408726, 15);
    expect(erfc(2.5)).toBeCloseTo(0.0004069520174449589, 17);
    // scipy.stats.chi2.sf(7.8, 3) = 0.050331097859853326; chi2.sf(20, 10) = 0.029252688076961124
    expect(chiSquareSurvival(7.8, 3)).toBeCloseTo(0.050331097859853326, 13);
    expect(chiSquareSurvival(20, 10)).toBeCloseTo(0.029252688076961124, 13);
  });
});

describe('Bayesian P(B > A)', () => {
  it('agrees with a seeded Monte Carlo estimate within its error', () => {
    const a = { alpha: 1 + 30, beta: 1 + 470 };
    const b = { alpha: 1 + 42, beta: 1 + 458 };
    const random = createRandom(7);
    const draws = 200_000;
    let wins = 0;
    for (let draw = 0; draw < draws; draw += 1)
      if (random.beta(b.alpha, b.beta) > random.beta(a.alpha, a.beta)) wins += 1;
    const exact = probabilityBBeatsA(a, b);
    expect(Math.abs(wins / draws - exact)).toBeLessThan(4 * Math.sqrt((exact * (1 - exact)) / draws));
  });

  it('is 1/2 for identical posteriors and complements when the arms swap', () => {
    expect(probabilityBBeatsA({ alpha: 5, beta: 9 }, { alpha: 5, beta: 9 })).toBeCloseTo(0.5, 12);
    const forward = probabilityBBeatsA({ alpha: 12, beta: 30 }, { alpha: 20, beta: 25 });
    const backward = probabilityBBeatsA({ alpha: 20, beta: 25 }, { alpha: 12, beta: 30 });
    expect(forward + backward).toBeCloseTo(1, 12);
  });

  it('refuses a non-integer alpha for B (the closed form needs it)', () => {
    expect(() => probabilityBBeatsA({ alpha: 2, beta: 2 }, { alpha: 2.5, beta: 2 })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });
});

describe('peeking warning in comparisons', () => {
  it('reports the inflated false-positive rate for interim looks and for more than one look', () => {
    const control = { conversions: 100, visitors: 1000 };
    const variant = { conversions: 120, visitors: 1000 };
    const fiveLooks = compareProportions(control, variant, { looks: 5 });
    expect(fiveLooks.peeking?.actualFalsePositiveRate).toBeCloseTo(0.142, 3);
    expect(fiveLooks.peeking?.message).toMatch(/14\.2%/);
    const interim = compareProportions(control, variant, { interim: true });
    expect(interim.peeking?.looks).toBe(1);
    expect(interim.peeking?.actualFalsePositiveRate).toBeCloseTo(0.05, 12);
  });

  it('uses the nominal level for other alphas and rejects absurd look counts', () => {
    expect(peekingFalsePositiveRate(1, 0.01)).toBe(0.01);
    expect(peekingFalsePositiveRate(5, 0.01)).toBeGreaterThan(0.01);
    expect(() => peekingFalsePositiveRate(0)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => peekingFalsePositiveRate(10_000)).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });
});

describe('MDE and SRM', () => {
  it('MDE is the exact inverse of the sample-size formula', () => {
    const mde = minimumDetectableEffect({ baseline: 0.2, visitorsPerArm: 1031 });
    expect(mde.mdeAbsolute).not.toBeNull();
    expect(mde.mdeAbsolute!).toBeLessThanOrEqual(0.05);
    expect(mde.mdeAbsolute!).toBeGreaterThan(0.0495);
    expect(sampleSizePerArm({ baseline: 0.2, mdeAbsolute: mde.mdeAbsolute! }).perArmExact).toBeCloseTo(
      1031,
      6,
    );
    expect(mde.mdeApproximate).toBeCloseTo(2.801585218 * Math.sqrt((2 * 0.2 * 0.8) / 1031), 8);
  });

  it('flags a broken 50/50 split and accepts a healthy one', () => {
    // scipy.stats.chisquare([5000, 5250]) → statistic 6.097560975609756, p 0.013536859346243508
    const mild = sampleRatioMismatch([5000, 5250]);
    expect(mild.chiSquare).toBeCloseTo(6.097560975609756, 12);
    expect(mild.pValue).toBeCloseTo(0.013536859346243508, 12);
    expect(mild.mismatch).toBe(false);
    expect(sampleRatioMismatch([50_000, 52_000]).mismatch).toBe(true);
    expect(sampleRatioMismatch([9000, 1000], [0.9, 0.1]).chiSquare).toBeCloseTo(0, 12);
  });
});

describe('validation and degenerate data', () => {
  it.each([
    [{ conversions: 5, visitors: 0 }],
    [{ conversions: -1, visitors: 10 }],
    [{ conversions: 11, visitors: 10 }],
    [{ conversions: 1.5, visitors: 10 }],
  ])('rejects arm %j with VALIDATION_FAILED', (arm) => {
    expect(() => compareProportions(arm, { conversions: 1, visitors: 10 })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });

  it('returns null statistics when nobody converted, never NaN', () => {
    const none = { conversions: 0, visitors: 100 };
    expect(twoProportionZTest(none, none)).toEqual({ z: null, pValueTwoSided: null, pValueOneSided: null });
    expect(chiSquare2x2(none, none)).toEqual({ statistic: null, pValue: null });
    const result = compareProportions(none, { conversions: 3, visitors: 100 });
    expect(result.relativeLift).toBeNull();
  });

  it('rejects impossible sample-size inputs', () => {
    expect(() => sampleSizePerArm({ baseline: 0.98, mdeAbsolute: 0.05 })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
    expect(() => sampleSizePerArm({ baseline: 0.2, mdeAbsolute: 0.05, power: 1 })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });
});
