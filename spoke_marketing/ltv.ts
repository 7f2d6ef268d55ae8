// Customer value: simple and discounted LTV, churn, the BG/NBD purchase model and the Gamma-Gamma spend
// model fitted by maximum likelihood (Nelder–Mead in log space), and discounted CLV per customer.
// Time is in the caller's unit (CDNOW: weeks); monetary values stay in the unit they were given in.
import { AppError } from '../shared/errors.js';
import { logGamma } from './random.js';

// ---------------------------------------------------------------------------------------------------
// Simple LTV

/** Share of customers lost in a period; null when there were no customers at the start. */
export function churnRate(input: {
  readonly customersAtStart: number;
  readonly customersLost: number;
}): number | null {
  const { customersAtStart, customersLost } = input;
  if (!Number.isInteger(customersAtStart) || customersAtStart < 0) {
    throw new AppError(
      'VALIDATION_FAILED',
      `customersAtStart must be a non-negative integer, got ${customersAtStart}`,
    );
  }
  if (!Number.isInteger(customersLost) || customersLost < 0 || customersLost > customersAtStart) {
    throw new AppError(
      'VALIDATION_FAILED',
      `customersLost must be an integer between 0 and customersAtStart, got ${customersLost}`,
    );
  }
  return customersAtStart === 0 ? null : customersLost / customersAtStart;
}

/** Inputs of {@link simpleLtv}; money in integer minor units (cents). */
export interface SimpleLtvInput {
  readonly averageOrderValueMinor: number;
  /** Purchases per customer per period (e.g. per month). */
  readonly purchasesPerPeriod: number;
  /** Gross margin as a fraction (0.3 = 30 %). */
  readonly grossMargin: number;
  /** Churn per period (same period as purchasesPerPeriod), 0 < churn ≤ 1. */
  readonly churnRatePerPeriod: number;
}

/** Simple LTV = AOV × purchases per period × gross margin / churn (geometric lifetime 1/churn periods). */
export function simpleLtv(input: SimpleLtvInput): {
  marginPerPeriodMinor: number;
  expectedLifetimePeriods: number | null;
  ltvMinor: number | null;
} {
  const { averageOrderValueMinor, purchasesPerPeriod, grossMargin, churnRatePerPeriod } = input;
  requireFinite({ averageOrderValueMinor, purchasesPerPeriod, grossMargin, churnRatePerPeriod });
  if (averageOrderValueMinor < 0 || purchasesPerPeriod < 0) {
    throw new AppError('VALIDATION_FAILED', 'averageOrderValueMinor and purchasesPerPeriod must be ≥ 0');
  }
  if (grossMargin < -1 || grossMargin > 1)
    throw new AppError('VALIDATION_FAILED', `grossMargin must be in [−1, 1], got ${grossMargin}`);
  if (churnRatePerPeriod < 0 || churnRatePerPeriod > 1) {
    throw new AppError(
      'VALIDATION_FAILED',
      `churnRatePerPeriod must be in [0, 1], got ${churnRatePerPeriod}`,
    );
  }
  const margin = averageOrderValueMinor * purchasesPerPeriod * grossMargin;
  if (churnRatePerPeriod === 0) {
    return { marginPerPeriodMinor: Math.round(margin), expectedLifetimePeriods: null, ltvMinor: null };
  }
  return {
    marginPerPeriodMinor: Math.round(margin),
    expectedLifetimePeriods: 1 / churnRatePerPeriod,
    ltvMinor: Math.round(margin / churnRatePerPeriod),
  };
}

/**
 * Discounted LTV with constant retention: Σ_{t≥0} m·r^t/(1+d)^t = m(1+d)/(1+d−r), margin m received at
 * the start of each period. Null when the sum diverges (r = 1 and d = 0).
 */
export function discountedLtv(input: {
  readonly marginPerPeriodMinor: number;
  readonly retentionRate: number;
  readonly discountRate: number;
}): number | null {
  const { marginPerPeriodMinor, retentionRate, discountRate } = input;
  requireFinite({ marginPerPeriodMinor, retentionRate, discountRate });
  if (retentionRate < 0 || retentionRate > 1)
    throw new AppError('VALIDATION_FAILED', `retentionRate must be in [0, 1], got ${retentionRate}`);
  if (discountRate < 0)
    throw new AppError('VALIDATION_FAILED', `discountRate must be ≥ 0, got ${discountRate}`);
  const denominator = 1 + discountRate - retentionRate;
  if (denominator === 0) return null;
  return Math.round((marginPerPeriodMinor * (1 + discountRate)) / denominator);
}

function requireFinite(values: Record<string, number>): void {
  for (const [name, value] of Object.entries(values)) {
    if (!Number.isFinite(value))
      throw new AppError('VALIDATION_FAILED', `${name} must be a finite number, got ${value}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Numerical helpers

/**
 * Gauss hypergeometric ₂F₁(a, b; c; z) by its power series, for 0 ≤ z < 1 and c > 0 (the BG/NBD case,
 * z = t/(α+T+t)). Converges geometrically in z.
 */
export function hypergeometric2F1(a: number, b: number, c: number, z: number): number {
  if (!(z >= 0 && z < 1) || !(c > 0)) {
    throw new AppError(
      'BAD_REQUEST',
      `hypergeometric2F1 series needs 0 ≤ z < 1 and c > 0, got z=${z}, c=${c}`,
    );
  }
  let term = 1;
  let sum = 1;
  for (let j = 0; j < 1_000_000; j += 1) {
    term *= (((a + j) * (b + j)) / ((c + j) * (j + 1))) * z;
    sum += term;
    if (Math.abs(term) <= 1e-17 * Math.abs(sum)) return sum;
  }
  throw new AppError('INTERNAL', `hypergeometric2F1(${a}, ${b}; ${c}; ${z}) did not converge`);
}

/** Result of {@link minimizeNelderMead}. */
export interface MinimizeResult {
  readonly point: number[];
  readonly value: number;
  readonly iterations: number;
  readonly converged: boolean;
}

/**
 * Nelder–Mead simplex minimisation with the dimension-adaptive coefficients of Gao & Han (2012),
 * restarted from the best point until a restart no longer improves the value (guards against the
 * simplex collapsing early).
 */
export function minimizeNelderMead(
  objective: (point: readonly number[]) => number,
  start: readonly number[],
  options: { step?: number; tolerance?: number; maxIterations?: number } = {},
): MinimizeResult {
  const dimension = start.length;
  const step = options.step ?? 0.1;
  const tolerance = options.tolerance ?? 1e-15;
  const maxIterations = options.maxIterations ?? 20_000;
  const reflection = 1;
  const expansion = 1 + 2 / dimension;
  const contraction = 0.75 - 1 / (2 * dimension);
  const shrink = 1 - 1 / dimension;
  let iterations = 0;
  let best = { point: [...start], value: objective(start) };
  let converged = false;

  for (let restart = 0; restart < 50 && iterations < maxIterations; restart += 1) {
    const simplex: number[][] = [best.point];
    for (let axis = 0; axis < dimension; axis += 1) {
      const vertex = [...best.point];
      vertex[axis] = vertex[axis]! + step;
      simplex.push(vertex);
    }
    let values = simplex.map((vertex) => objective(vertex));
    while (iterations < maxIterations) {
      iterations += 1;
      const order = values.map((_, index) => index).sort((a, b) => values[a]! - values[b]!);
      const sortedSimplex = order.map((index) => simplex[index]!);
      values = order.map((index) => values[index]!);
      simplex.splice(0, simplex.length, ...sortedSimplex);
      const spread = Math.abs(values[dimension]! - values[0]!);
      let size = 0;
      for (let vertex = 1; vertex <= dimension; vertex += 1) {
        for (let axis = 0; axis < dimension; axis += 1) {
          size = Math.max(size, Math.abs(simplex[vertex]![axis]! - simplex[0]![axis]!));
        }
      }
      if (spread <= tolerance * (Math.abs(values[0]!) + tolerance) && size <= 1e-10) break;
      const centroid = new Array<number>(dimension).fill(0);
      for (let vertex = 0; vertex < dimension; vertex += 1) {
        for (let axis = 0; axis < dimension; axis += 1)
          centroid[axis] = centroid[axis]! + simplex[vertex]![axis]! / dimension;
      }
      const worst = simplex[dimension]!;
      const along = (factor: number): number[] =>
        centroid.map((value, axis) => value + factor * (value - worst[axis]!));
      const reflected = along(reflection);
      const reflectedValue = objective(reflected);
      if (reflectedValue < values[0]!) {
        const expanded = along(reflection * expansion);
        const expandedValue = objective(expanded);
        if (expandedValue < reflectedValue) {
          simplex[dimension] = expanded;
          values[dimension] = expandedValue;
        } else {
          simplex[dimension] = reflected;
          values[dimension] = reflectedValue;
        }
        continue;
      }
      if (reflectedValue < values[dimension - 1]!) {
        simplex[dimension] = reflected;
        values[dimension] = reflectedValue;
        continue;
      }
      const outside = reflectedValue < values[dimension]!;
      const contracted = along(outside ? contraction * reflection : -contraction);
      const contractedValue = objective(contracted);
      if (contractedValue < (outside ? reflectedValue : values[dimension]!)) {
        simplex[dimension] = contracted;
        values[dimension] = contractedValue;
        continue;
      }
      for (let vertex = 1; vertex <= dimension; vertex += 1) {
        simplex[vertex] = simplex[vertex]!.map(
          (value, axis) => simplex[0]![axis]! + shrink * (value - simplex[0]![axis]!),
        );
        values[vertex] = objective(simplex[vertex]!);
      }
    }
    const bestIndex = values.indexOf(Math.min(...values));
    const candidate = { point: simplex[bestIndex]!, value: values[bestIndex]! };
    const improvement = best.value - candidate.value;
    if (candidate.value <= best.value) best = candidate;
    if (restart > 0 && improvement <= tolerance * (Math.abs(best.value) + tolerance)) {
      converged = true;
      break;
    }
  }
  return { point: best.point, value: best.value, iterations, converged };
}

/**
 * Newton refinement of a minimum found by Nelder–Mead, with central-difference gradient and Hessian.
 * Near a flat optimum the simplex stops where function differences reach rounding noise; the gradient
 * still carries information there, so a few Newton steps pin the parameters down much further.
 * A step is kept only when it is small and does not make the objective worse beyond rounding noise.
 */
export function newtonPolish(
  objective: (point: readonly number[]) => number,
  start: readonly number[],
  options: { step?: number; iterations?: number } = {},
): number[] {
  const h = options.step ?? 1e-4;
  const dimension = start.length;
  let point = [...start];
  let value = objective(point);
  const shifted = (base: readonly number[], moves: readonly [number, number][]): number[] => {
    const next = [...base];
    for (const [axis, delta] of moves) next[axis] = next[axis]! + delta;
    return next;
  };
  for (let iteration = 0; iteration < (options.iterations ?? 6); iteration += 1) {
    const gradient = new Array<number>(dimension).fill(0);
    const hessian = Array.from({ length: dimension }, () => new Array<number>(dimension).fill(0));
    for (let i = 0; i < dimension; i += 1) {
      const plus = objective(shifted(point, [[i, h]]));
      const minus = objective(shifted(point, [[i, -h]]));
      gradient[i] = (plus - minus) / (2 * h);
      hessian[i]![i] = (plus - 2 * value + minus) / (h * h);
      for (let j = 0; j < i; j += 1) {
        const pp = objective(
          shifted(point, [
            [i, h],
            [j, h],
          ]),
        );
        const pm = objective(
          shifted(point, [
            [i, h],
            [j, -h],
          ]),
        );
        const mp = objective(
          shifted(point, [
            [i, -h],
            [j, h],
          ]),
        );
        const mm = objective(
          shifted(point, [
            [i, -h],
            [j, -h],
          ]),
        );
        hessian[i]![j] = hessian[j]![i] = (pp - pm - mp + mm) / (4 * h * h);
      }
    }
    const delta = solveLinearSystem(hessian, gradient);
    if (delta === null) break;
    if (Math.max(...delta.map(Math.abs)) > 0.1) break;
    const candidate = point.map((coordinate, axis) => coordinate - delta[axis]!);
    const candidateValue = objective(candidate);
    // Differences below ~1e-13·|f| are rounding noise of the summed likelihood: accept such steps.
    if (!(candidateValue <= value + 1e-13 * Math.abs(value))) break;
    point = candidate;
    value = candidateValue;
    if (Math.max(...delta.map(Math.abs)) < 1e-12) break;
  }
  return point;
}

/** Solves A·x = b by Gaussian elimination with partial pivoting; null when A is singular. */
function solveLinearSystem(
  matrix: readonly (readonly number[])[],
  vector: readonly number[],
): number[] | null {
  const size = vector.length;
  const rows = matrix.map((row, index) => [...row, vector[index]!]);
  for (let column = 0; column < size; column += 1) {
    let pivot = column;
    for (let row = column + 1; row < size; row += 1) {
      if (Math.abs(rows[row]![column]!) > Math.abs(rows[pivot]![column]!)) pivot = row;
    }
    if (!(Math.abs(rows[pivot]![column]!) > 1e-300)) return null;
    [rows[column], rows[pivot]] = [rows[pivot]!, rows[column]!];
    for (let row = column + 1; row < size; row += 1) {
      const factor = rows[row]![column]! / rows[column]![column]!;
      for (let k = column; k <= size; k += 1) rows[row]![k] = rows[row]![k]! - factor * rows[column]![k]!;
    }
  }
  const solution = new Array<number>(size).fill(0);
  for (let row = size - 1; row >= 0; row -= 1) {
    let sum = rows[row]![size]!;
    for (let k = row + 1; k < size; k += 1) sum -= rows[row]![k]! * solution[k]!;
    solution[row] = sum / rows[row]![row]!;
  }
  return solution;
}

// ---------------------------------------------------------------------------------------------------
// BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way")

/** One customer's RFM summary in the caller's time unit. */
export interface CustomerSummary {
  /** Repeat purchases in the observation window (x), integer ≥ 0. */
  readonly frequency: number;
  /** Time from first to last purchase (t_x); 0 when frequency is 0. */
  readonly recency: number;
  /** Time from first purchase to the end of observation (T) ≥ recency. */
  readonly T: number;
  /** Average value per repeat purchase (for Gamma-Gamma); ignored when frequency is 0. */
  readonly monetaryValue?: number;
}

/** BG/NBD parameters: purchase rate λ ~ Gamma(r, α) (α in time units), dropout p ~ Beta(a, b). */
export interface BgNbdParameters {
  readonly r: number;
  readonly alpha: number;
  readonly a: number;
  readonly b: number;
}

function validateCustomers(customers: readonly CustomerSummary[]): void {
  if (customers.length === 0) throw new AppError('VALIDATION_FAILED', 'no customers to fit');
  customers.forEach((customer, index) => {
    const { frequency, recency, T } = customer;
    if (!Number.isInteger(frequency) || frequency < 0) {
      throw new AppError(
        'VALIDATION_FAILED',
        `customer ${index}: frequency must be a non-negative integer, got ${frequency}`,
        {
          details: { index, field: 'frequency' },
        },
      );
    }
    if (!(Number.isFinite(recency) && Number.isFinite(T) && recency >= 0 && T > 0 && recency <= T + 1e-9)) {
      throw new AppError(
        'VALIDATION_FAILED',
        `customer ${index}: need 0 ≤ recency ≤ T and T > 0, got recency ${recency}, T ${T}`,
        {
          details: { index, field: 'recency' },
        },
      );
    }
    if (frequency === 0 && recency !== 0) {
      throw new AppError('VALIDATION_FAILED', `customer ${index}: recency must be 0 when frequency is 0`, {
        details: { index, field: 'recency' },
      });
    }
  });
}

/** Sum of the BG/NBD log-likelihood over customers (lgamma terms cached per distinct frequency). */
export function bgNbdLogLikelihood(
  parameters: BgNbdParameters,
  customers: readonly CustomerSummary[],
): number {
  const { r, alpha, a, b } = parameters;
  const perFrequency = new Map<number, number>();
  const constantTerm = (x: number): number => {
    let value = perFrequency.get(x);
    if (value === undefined) {
      value =
        logGamma(r + x) -
        logGamma(r) +
        r * Math.log(alpha) +
        logGamma(a + b) +
        logGamma(b + x) -
        logGamma(b) -
        logGamma(a + b + x);
      perFrequency.set(x, value);
    }
    return value;
  };
  let total = 0;
  for (const { frequency: x, recency, T } of customers) {
    const aliveTerm = -(r + x) * Math.log(alpha + T);
    let mixture = aliveTerm;
    if (x > 0) {
      const dropTerm = Math.log(a) - Math.log(b + x - 1) - (r + x) * Math.log(alpha + recency);
      const high = Math.max(aliveTerm, dropTerm);
      mixture = high + Math.log(Math.exp(aliveTerm - high) + Math.exp(dropTerm - high));
    }
    total += constantTerm(x) + mixture;
  }
  return total;
}

/** A fitted BG/NBD model. */
export interface BgNbdFit {
  readonly parameters: BgNbdParameters;
  readonly logLikelihood: number;
  readonly customers: number;
  readonly iterations: number;
  readonly converged: boolean;
  /** The time unit of recency, T and α, as the caller named it (e.g. 'week'). */
  readonly timeUnit: string;
}

/** Fits BG/NBD by maximum likelihood: Nelder–Mead on log(r, α, a, b). */
export function fitBgNbd(
  customers: readonly CustomerSummary[],
  options: { readonly timeUnit?: string; readonly initial?: BgNbdParameters } = {},
): BgNbdFit {
  validateCustomers(customers);
  const initial = options.initial ?? { r: 1, alpha: 1, a: 1, b: 1 };
  const objective = (point: readonly number[]): number => {
    const [r, alpha, a, b] = point.map(Math.exp) as [number, number, number, number];
    const value = -bgNbdLogLikelihood({ r, alpha, a, b }, customers);
    return Number.isFinite(value) ? value : Number.MAX_VALUE;
  };
  const result = minimizeNelderMead(
    objective,
    [initial.r, initial.alpha, initial.a, initial.b].map(Math.log),
    {
      step: 0.5,
    },
  );
  const polished = newtonPolish(objective, result.point);
  const [r, alpha, a, b] = polished.map(Math.exp) as [number, number, number, number];
  return {
    parameters: { r, alpha, a, b },
    logLikelihood: -objective(polished),
    customers: customers.length,
    iterations: result.iterations,
    converged: result.converged,
    timeUnit: options.timeUnit ?? 'period',
  };
}

/** P(customer still alive at T | x, t_x, T). */
export function bgNbdProbabilityAlive(parameters: BgNbdParameters, customer: CustomerSummary): number {
  const { r, alpha, a, b } = parameters;
  const { frequency: x, recency, T } = customer;
  if (x === 0) return 1;
  const logRatio =
    Math.log(a) - Math.log(b + x - 1) + (r + x) * (Math.log(alpha + T) - Math.log(alpha + recency));
  return 1 / (1 + Math.exp(logRatio));
}

/** E[X(t)]: expected purchases of a new customer in (0, t]. */
export function bgNbdExpectedPurchasesNewCustomer(parameters: BgNbdParameters, t: number): number {
  const { r, alpha, a, b } = parameters;
  if (t === 0) return 0;
  const z = t / (alpha + t);
  const hyper = hypergeometric2F1(r, b, a + b - 1, z);
  return ((a + b - 1) / (a - 1)) * (1 - Math.exp(r * Math.log(alpha / (alpha + t))) * hyper);
}

/** E[Y(t) | x, t_x, T]: expected purchases in the next t time units for a customer with this history. */
export function bgNbdConditionalExpectedPurchases(
  parameters: BgNbdParameters,
  customer: CustomerSummary,
  t: number,
): number {
  const { r, alpha, a, b } = parameters;
  const { frequency: x, recency, T } = customer;
  if (!(t >= 0) || !Number.isFinite(t))
    throw new AppError('VALIDATION_FAILED', `horizon t must be ≥ 0, got ${t}`);
  if (t === 0) return 0;
  const z = t / (alpha + T + t);
  const hyper = hypergeometric2F1(r + x, b + x, a + b + x - 1, z);
  const numerator =
    ((a + b + x - 1) / (a - 1)) * (1 - Math.exp((r + x) * Math.log((alpha + T) / (alpha + T + t))) * hyper);
  const dropout =
    x > 0
      ? Math.exp(
          Math.log(a) - Math.log(b + x - 1) + (r + x) * (Math.log(alpha + T) - Math.log(alpha + recency)),
        )
      : 0;
  return numerator / (1 + dropout);
}

// ---------------------------------------------------------------------------------------------------
// Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie note on Gamma-Gamma)

/** Gamma-Gamma parameters: transaction value ~ Gamma(p, ν), ν ~ Gamma(q, v). */
export interface GammaGammaParameters {
  readonly p: number;
  readonly q: number;
  readonly v: number;
}

function repeatBuyers(customers: readonly CustomerSummary[]): { x: number; m: number }[] {
  const buyers: { x: number; m: number }[] = [];
  customers.forEach((customer, index) => {
    if (customer.frequency === 0) return;
    const m = customer.monetaryValue;
    if (m === undefined || !Number.isFinite(m) || m <= 0) {
      throw new AppError(
        'VALIDATION_FAILED',
        `customer ${index}: repeat buyers need a positive monetaryValue, got ${m}`,
        {
          details: { index, field: 'monetaryValue' },
        },
      );
    }
    buyers.push({ x: customer.frequency, m });
  });
  if (buyers.length === 0)
    throw new AppError('VALIDATION_FAILED', 'Gamma-Gamma needs at least one repeat buyer');
  return buyers;
}

/** Gamma-Gamma log-likelihood summed over repeat buyers (customers with frequency 0 are skipped). */
export function gammaGammaLogLikelihood(
  parameters: GammaGammaParameters,
  customers: readonly CustomerSummary[],
): number {
  const { p, q, v } = parameters;
  let total = 0;
  for (const { x, m } of repeatBuyers(customers)) {
    total +=
      logGamma(p * x + q) -
      logGamma(p * x) -
      logGamma(q) +
      q * Math.log(v) +
      (p * x - 1) * Math.log(m) +
      p * x * Math.log(x) -
      (p * x + q) * Math.log(x * m + v);
  }
  return total;
}

/** A fitted Gamma-Gamma model. */
export interface GammaGammaFit {
  readonly parameters: GammaGammaParameters;
  readonly logLikelihood: number;
  /** Repeat buyers used in the fit. */
  readonly customers: number;
  readonly iterations: number;
  readonly converged: boolean;
}

/** Fits Gamma-Gamma by maximum likelihood on repeat buyers (Nelder–Mead on log(p, q, v)). */
export function fitGammaGamma(customers: readonly CustomerSummary[]): GammaGammaFit {
  validateCustomers(customers);
  const buyers = repeatBuyers(customers);
  const asSummaries = buyers.map(({ x, m }) => ({ frequency: x, recency: 0, T: 1, monetaryValue: m }));
  const objective = (point: readonly number[]): number => {
    const [p, q, v] = point.map(Math.exp) as [number, number, number];
    const value = -gammaGammaLogLikelihood({ p, q, v }, asSummaries);
    return Number.isFinite(value) ? value : Number.MAX_VALUE;
  };
  const result = minimizeNelderMead(objective, [0, 0, 0], { step: 0.5 });
  const polished = newtonPolish(objective, result.point);
  const [p, q, v] = polished.map(Math.exp) as [number, number, number];
  return {
    parameters: { p, q, v },
    logLikelihood: -objective(polished),
    customers: buyers.length,
    iterations: result.iterations,
    converged: result.converged,
  };
}

/**
 * E[average transaction value | x, m̄] = p(v + x·m̄)/(p·x + q − 1): a weighted mean of the population mean
 * p·v/(q−1) and the customer's own mean. Customers without repeat purchases get the population mean.
 * Null when q ≤ 1 (the population mean does not exist).
 */
export function gammaGammaExpectedAverageValue(
  parameters: GammaGammaParameters,
  customer: CustomerSummary,
): number | null {
  const { p, q, v } = parameters;
  if (q <= 1) return null;
  const x = customer.frequency;
  const m = customer.monetaryValue ?? 0;
  if (x === 0) return (p * v) / (q - 1);
  return (p * (v + x * m)) / (p * x + q - 1);
}

// ---------------------------------------------------------------------------------------------------
// CLV

/** Horizon and discounting of {@link customerLifetimeValue}, with the time unit made explicit. */
export interface ClvOptions {
  /** Number of discounting periods (e.g. 12 months). */
  readonly periods: number;
  /** Model time units per discounting period (CDNOW weeks per month: 4.345; days per month: 30). */
  readonly timeUnitsPerPeriod: number;
  /** Discount rate per period (0.01 = 1 % per month). */
  readonly discountRatePerPeriod: number;
}

/**
 * Discounted CLV over the horizon: Σ_{i=1..periods} E[value] · (E[Y(i·u)] − E[Y((i−1)·u)]) / (1+d)^i,
 * u = timeUnitsPerPeriod (the lifetimes `customer_lifetime_value` scheme, with units stated).
 * Returned in the monetary unit of the Gamma-Gamma inputs.
 */
export function customerLifetimeValue(
  purchaseModel: BgNbdParameters,
  spendModel: GammaGammaParameters,
  customer: CustomerSummary,
  options: ClvOptions,
): number | null {
  const { periods, timeUnitsPerPeriod, discountRatePerPeriod } = options;
  if (!Number.isInteger(periods) || periods < 1)
    throw new AppError('VALIDATION_FAILED', `periods must be a positive integer, got ${periods}`);
  if (!(timeUnitsPerPeriod > 0))
    throw new AppError('VALIDATION_FAILED', `timeUnitsPerPeriod must be > 0, got ${timeUnitsPerPeriod}`);
  if (!(discountRatePerPeriod >= 0))
    throw new AppError(
      'VALIDATION_FAILED',
      `discountRatePerPeriod must be ≥ 0, got ${discountRatePerPeriod}`,
    );
  const value = gammaGammaExpectedAverageValue(spendModel, customer);
  if (value === null) return null;
  let total = 0;
  let previous = 0;
  for (let period = 1; period <= periods; period += 1) {
    const cumulative = bgNbdConditionalExpectedPurchases(
      purchaseModel,
      customer,
      period * timeUnitsPerPeriod,
    );
    total += (value * (cumulative - previous)) / (1 + discountRatePerPeriod) ** period;
    previous = cumulative;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------------
// Input

/** Column names accepted for each field (lifetimes names first, then Fader & Hardie's CDNOW names). */
export const CUSTOMER_SUMMARY_COLUMNS = {
  id: ['id', 'customer_id', 'ID'],
  frequency: ['frequency', 'x'],
  recency: ['recency', 't_x'],
  T: ['T'],
  monetaryValue: ['monetary_value', 'zbar'],
} as const;

/** One customer row read from a summary file, with its id (or row number) and source line. */
export interface CustomerSummaryRow extends CustomerSummary {
  readonly id: string;
  readonly line: number;
}

/**
 * Reads an RFM summary CSV (columns frequency/x, recency/t_x, T, optional monetary_value/zbar, optional
 * id). Throws AppError `VALIDATION_FAILED` naming the line and column of the first bad value.
 */
export function parseCustomerSummaryCsv(
  table: {
    readonly header: readonly string[];
    readonly records: readonly { readonly line: number; readonly values: readonly string[] }[];
  },
  source = 'input',
): { customers: CustomerSummaryRow[]; hasMonetaryValue: boolean } {
  const find = (names: readonly string[]): number => table.header.findIndex((name) => names.includes(name));
  const idColumn = find(CUSTOMER_SUMMARY_COLUMNS.id);
  const frequencyColumn = find(CUSTOMER_SUMMARY_COLUMNS.frequency);
  const recencyColumn = find(CUSTOMER_SUMMARY_COLUMNS.recency);
  const ageColumn = find(CUSTOMER_SUMMARY_COLUMNS.T);
  const monetaryColumn = find(CUSTOMER_SUMMARY_COLUMNS.monetaryValue);
  const missing = [
    frequencyColumn < 0 ? 'frequency' : null,
    recencyColumn < 0 ? 'recency' : null,
    ageColumn < 0 ? 'T' : null,
  ].filter((name): name is string => name !== null);
  if (missing.length > 0) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${source}: missing column(s) ${missing.join(', ')}; expected frequency, recency, T [, monetary_value] (found ${table.header.join(', ')})`,
      { details: { missing, line: 1 } },
    );
  }
  const number = (
    record: { line: number; values: readonly string[] },
    column: number,
    name: string,
  ): number => {
    const text = record.values[column]!.trim();
    const value = Number(text);
    if (text === '' || !Number.isFinite(value)) {
      throw new AppError(
        'VALIDATION_FAILED',
        `${source} line ${record.line}: ${name} is not a number: "${text}"`,
        {
          details: { line: record.line, column: name },
        },
      );
    }
    return value;
  };
  const customers = table.records.map((record, index) => {
    const frequency = number(record, frequencyColumn, 'frequency');
    const recency = number(record, recencyColumn, 'recency');
    const T = number(record, ageColumn, 'T');
    const monetaryValue = monetaryColumn >= 0 ? number(record, monetaryColumn, 'monetary_value') : undefined;
    try {
      validateCustomers([{ frequency, recency, T }]);
    } catch (error) {
      throw new AppError(
        'VALIDATION_FAILED',
        `${source} line ${record.line}: ${(error as Error).message.replace(/^customer 0: /, '')}`,
        {
          details: { line: record.line },
          cause: error,
        },
      );
    }
    return {
      id: idColumn >= 0 ? record.values[idColumn]!.trim() : String(index + 1),
      line: record.line,
      frequency,
      recency,
      T,
      ...(monetaryValue === undefined ? {} : { monetaryValue }),
    };
  });
  if (customers.length === 0) throw new AppError('VALIDATION_FAILED', `${source}: no customer rows`);
  return { customers, hasMonetaryValue: monetaryColumn >= 0 };
}
