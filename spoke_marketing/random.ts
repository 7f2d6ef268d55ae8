// Probability toolkit of the marketing analytics: a seeded PRNG with Normal/Gamma/Beta samplers, and the
// special functions (log-gamma, erfc, normal CDF and quantile, regularized incomplete gamma) they rest on.
import { AppError } from '../shared/errors.js';

/** A deterministic random source: same seed, same sequence, on every platform. */
export interface SeededRandom {
  /** Uniform double in [0, 1) with 53 random bits. */
  next(): number;
  /** Standard normal draw. */
  normal(): number;
  /** Gamma(shape, scale = 1) draw; shape > 0. */
  gamma(shape: number): number;
  /** Beta(alpha, beta) draw; alpha, beta > 0. */
  beta(alpha: number, beta: number): number;
}

/** SplitMix32 step, used only to spread a user seed over the generator state. */
function splitMix32(state: { value: number }): number {
  state.value = (state.value + 0x9e3779b9) | 0;
  let z = state.value;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Creates a xoshiro128** generator (Blackman & Vigna 2018) seeded through SplitMix32. The seed is any
 * finite number; its integer part (mod 2^32) selects the stream.
 */
export function createRandom(seed: number): SeededRandom {
  if (!Number.isFinite(seed)) {
    throw new AppError('BAD_REQUEST', `random seed must be a finite number, got ${seed}`);
  }
  const mix = { value: Math.trunc(seed) | 0 };
  let s0 = splitMix32(mix);
  let s1 = splitMix32(mix);
  let s2 = splitMix32(mix);
  let s3 = splitMix32(mix);
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;

  const nextUint32 = (): number => {
    const product = Math.imul(s1, 5);
    const result = Math.imul((product << 7) | (product >>> 25), 9) >>> 0;
    const shifted = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= shifted;
    s3 = (s3 << 11) | (s3 >>> 21);
    return result;
  };

  const next = (): number => {
    const high = nextUint32() >>> 5; // 27 bits
    const low = nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  };

  let spareNormal: number | null = null;
  const normal = (): number => {
    if (spareNormal !== null) {
      const value = spareNormal;
      spareNormal = null;
      return value;
    }
    // Marsaglia polar method: two independent normals per accepted pair.
    for (;;) {
      const u = 2 * next() - 1;
      const v = 2 * next() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const factor = Math.sqrt((-2 * Math.log(s)) / s);
        spareNormal = v * factor;
        return u * factor;
      }
    }
  };

  const gamma = (shape: number): number => {
    if (!(shape > 0) || !Number.isFinite(shape)) {
      throw new AppError('BAD_REQUEST', `gamma shape must be a positive finite number, got ${shape}`);
    }
    if (shape < 1) {
      // Boost: Gamma(a) = Gamma(a + 1) · U^(1/a), in log space so tiny shapes do not underflow to 0 early.
      const boosted = gamma(shape + 1);
      let u = next();
      while (u === 0) u = next();
      return Math.exp(Math.log(boosted) + Math.log(u) / shape);
    }
    // Marsaglia & Tsang (2000).
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = next();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (u > 0 && Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  };

  const beta = (alpha: number, betaParameter: number): number => {
    const x = gamma(alpha);
    const y = gamma(betaParameter);
    const total = x + y;
    // Both draws can underflow to 0 for tiny shapes; fall back to the Bernoulli limit by the mean.
    return total > 0 ? x / total : next() < alpha / (alpha + betaParameter) ? 1 : 0;
  };

  return { next, normal, gamma, beta };
}

const LANCZOS_G = 7;
const LANCZOS_COEFFICIENTS = [
  0.9999999999998099, 676.5203681218851, -1259.1392167224028, 771.3234287776531, -176.6150291621406,
  12.507343278686905, -0.13857109526572012, 0.000009984369578019572, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error about 1e-15). */
export function logGamma(x: number): number {
  if (!(x > 0)) {
    if (x === 0) return Infinity;
    throw new AppError('BAD_REQUEST', `logGamma is defined here for x > 0 only, got ${x}`);
  }
  if (x < 0.5) {
    // Reflection keeps the Lanczos sum in its accurate range.
    return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  }
  const shifted = x - 1;
  let sum = LANCZOS_COEFFICIENTS[0]!;
  for (let index = 1; index < LANCZOS_G + 2; index += 1) {
    sum += LANCZOS_COEFFICIENTS[index]! / (shifted + index);
  }
  const t = shifted + LANCZOS_G + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (shifted + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b). */
export function logBeta(a: number, b: number): number {
  return logGamma(a) + logGamma(b) - logGamma(a + b);
}

/**
 * Complementary error function, W. J. Cody's rational Chebyshev approximations (Math. Comp. 1969),
 * relative error below 1e-15 over the whole real line.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  let result: number;
  if (ax < 0.5) {
    const t = x * x;
    const top =
      (((0.18577770618460315 * t + 3.1611237438705655) * t + 113.86415415105016) * t + 377.485237685302) * t +
      3209.3775891384694;
    const bottom =
      (((t + 23.601290952344122) * t + 244.02463793444417) * t + 1282.6165260773723) * t + 2844.236833439171;
    return 1 - (x * top) / bottom;
  }
  if (ax < 4) {
    const top =
      (((((((2.1531153547440383e-8 * ax + 0.5641884969886701) * ax + 8.883149794388377) * ax +
        66.11919063714163) *
        ax +
        298.6351381974001) *
        ax +
        881.952221241769) *
        ax +
        1712.0476126340707) *
        ax +
        2051.0783778260716) *
        ax +
      1230.3393547979972;
    const bottom =
      (((((((ax + 15.744926110709835) * ax + 117.6939508913125) * ax + 537.1811018620099) * ax +
        1621.3895745666903) *
        ax +
        3290.7992357334597) *
        ax +
        4362.619090143247) *
        ax +
        3439.3676741437216) *
        ax +
      1230.3393548037495;
    result = (expSquaredNegative(ax) * top) / bottom;
  } else if (ax < 27) {
    const z = 1 / (ax * ax);
    const top =
      ((((0.016315387137302097 * z + 0.30532663496123236) * z + 0.36034489994980445) * z +
        0.12578172611122926) *
        z +
        0.016083785148742275) *
        z +
      0.0006587491615298378;
    const bottom =
      ((((z + 2.568520192289822) * z + 1.8729528499234673) * z + 0.5279051029514285) * z +
        0.06051834131244132) *
        z +
      0.0023352049762686918;
    const correction = (z * top) / bottom;
    result = (expSquaredNegative(ax) / ax) * (1 / Math.sqrt(Math.PI) - correction);
  } else {
    result = 0;
  }
  return x < 0 ? 2 - result : result;
}

/** exp(−x²) computed as exp(−xs²)·exp(−(x−xs)(x+xs)) with xs = x rounded to 1/16, avoiding cancellation. */
function expSquaredNegative(x: number): number {
  const rounded = Math.trunc(x * 16) / 16;
  const delta = (x - rounded) * (x + rounded);
  return Math.exp(-rounded * rounded) * Math.exp(-delta);
}

/** Standard normal CDF Φ(x), accurate in both tails (via erfc). */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** Standard normal upper tail 1 − Φ(x), without cancellation for large x. */
export function normalSurvival(x: number): number {
  return 0.5 * erfc(x / Math.SQRT2);
}

/** Standard normal density φ(x). */
export function normalPdf(x: number): number {
  return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
}

/**
 * Standard normal quantile Φ⁻¹(p) for 0 < p < 1: P. J. Acklam's rational approximation (relative error
 * 1.15e-9) refined by one Halley step against {@link normalCdf}, which brings it to double precision.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    throw new AppError('BAD_REQUEST', `normal quantile needs 0 < p < 1, got ${p}`);
  }
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  let x: number;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    x =
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p <= 1 - low) {
    const q = p - 0.5;
    const r = q * q;
    x =
      ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
      (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x =
      -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  // Halley refinement; the error term uses the tail that does not cancel.
  const error = x < 0 ? normalCdf(x) - p : 1 - p - normalSurvival(x);
  const u = error * Math.sqrt(2 * Math.PI) * Math.exp(0.5 * x * x);
  return x - u / (1 + (x * u) / 2);
}

/**
 * Regularized upper incomplete gamma Q(a, x) = Γ(a, x)/Γ(a) (series for x < a + 1, Lentz continued
 * fraction otherwise; Numerical Recipes §6.2). The chi-square survival function is Q(df/2, χ²/2).
 */
export function regularizedGammaQ(a: number, x: number): number {
  if (!(a > 0) || !(x >= 0)) {
    throw new AppError('BAD_REQUEST', `regularizedGammaQ needs a > 0 and x ≥ 0, got a=${a}, x=${x}`);
  }
  if (x === 0) return 1;
  const logPrefactor = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 10_000; n += 1) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-17) break;
    }
    return 1 - sum * Math.exp(logPrefactor);
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let n = 1; n < 10_000; n += 1) {
    const an = -n * (n - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(logPrefactor) * h;
}

/** Chi-square survival function P(X² ≥ statistic) with `degreesOfFreedom` degrees of freedom. */
export function chiSquareSurvival(statistic: number, degreesOfFreedom: number): number {
  if (degreesOfFreedom === 1) return erfc(Math.sqrt(statistic / 2));
  return regularizedGammaQ(degreesOfFreedom / 2, statistic / 2);
}
