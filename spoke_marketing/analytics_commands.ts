// `agenthub analyze clusters | abtest | ltv | compliance`: CLI front ends of HDBSCAN, the A/B statistics,
// the BG/NBD + Gamma-Gamma customer-value fit and the Fair Housing check. Exit codes: 0 success,
// 1 unreadable or invalid input, 2 usage error; compliance also returns 3 for a non-compliant text.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CliCommand, CliIo } from '../shared/cli/io.js';
import { parseCsv } from '../shared/csv.js';
import { errorMessage, isAppError } from '../shared/errors.js';
import {
  compareProportions,
  MAX_LOOKS,
  sampleRatioMismatch,
  sampleSizePerArm,
  SAMPLE_SIZE_FORMULAS,
  type SampleSizeFormula,
} from './abtest.js';
import { checkCompliance, EXTRA_CLASSES, type ExtraClass } from './compliance.js';
import { hdbscan } from './hdbscan.js';
import {
  bgNbdConditionalExpectedPurchases,
  bgNbdProbabilityAlive,
  customerLifetimeValue,
  fitBgNbd,
  fitGammaGamma,
  gammaGammaExpectedAverageValue,
  parseCustomerSummaryCsv,
} from './ltv.js';

class UsageError extends Error {}

/** Parsed `--name value` / `--name=value` options and boolean flags. */
interface ParsedArgs {
  readonly values: ReadonlyMap<string, string>;
  readonly flags: ReadonlySet<string>;
  readonly help: boolean;
}

function parseOptions(
  argv: readonly string[],
  valued: readonly string[],
  flags: readonly string[],
): ParsedArgs {
  const values = new Map<string, string>();
  const seenFlags = new Set<string>();
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index]!;
    if (argument === '--help' || argument === '-h') return { values, flags: seenFlags, help: true };
    if (flags.includes(argument)) {
      seenFlags.add(argument);
      continue;
    }
    const equals = argument.indexOf('=');
    const name = equals > 0 ? argument.slice(0, equals) : argument;
    if (!valued.includes(name)) throw new UsageError(`unknown argument "${argument}"`);
    if (values.has(name)) throw new UsageError(`${name} given twice`);
    const value = equals > 0 ? argument.slice(equals + 1) : argv[++index];
    if (value === undefined || (equals < 0 && value.startsWith('--')))
      throw new UsageError(`${name} needs a value`);
    values.set(name, value);
  }
  return { values, flags: seenFlags, help: false };
}

function required(args: ParsedArgs, name: string): string {
  const value = args.values.get(name);
  if (value === undefined || value === '') throw new UsageError(`${name} is required`);
  return value;
}

function integerOption(args: ParsedArgs, name: string, options: { min: number; fallback?: number }): number {
  const text = args.values.get(name);
  if (text === undefined) {
    if (options.fallback === undefined) throw new UsageError(`${name} is required`);
    return options.fallback;
  }
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < options.min) {
    throw new UsageError(`${name} must be an integer ≥ ${options.min}, got "${text}"`);
  }
  return value;
}

function numberOption(
  args: ParsedArgs,
  name: string,
  fallback: number,
  check: (value: number) => boolean,
  rule: string,
): number {
  const text = args.values.get(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || !check(value))
    throw new UsageError(`${name} must be ${rule}, got "${text}"`);
  return value;
}

/** Runs a command body with the shared usage/error handling. */
async function run(io: CliIo, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`error: ${error.message}\n${usage}`);
      return 2;
    }
    const message = errorMessage(error);
    io.stderr(`error: ${isAppError(error) ? `${error.code}: ${message}` : message}\n`);
    return 1;
  }
}

async function readInput(io: CliIo, path: string): Promise<string> {
  return readFile(resolve(io.cwd, path), { encoding: 'utf8', signal: io.signal });
}

function fixed(value: number | null, digits: number): string {
  return value === null ? 'n/a' : value.toFixed(digits);
}

// ---------------------------------------------------------------------------------------------------
// analyze clusters

const CLUSTERS_USAGE = `usage: agenthub analyze clusters --input FILE.csv --min-cluster-size N [--min-samples N] [--method eom|leaf] [--columns a,b,…] [--json]
  --input             CSV with a header; every column whose values are all numbers is a feature
                      (or only the columns named in --columns)
  --min-cluster-size  smallest cluster (≥ 2); --min-samples defaults to it (core distance counts the point)
  --json              print {labels, probabilities, clusterCount, features} instead of one label per row
Prints one label per data row in file order; -1 marks noise.
`;

/** `agenthub analyze clusters`: HDBSCAN labels for the rows of a CSV. */
export const analyzeClustersCommand: CliCommand = async (io) =>
  run(io, CLUSTERS_USAGE, async () => {
    const args = parseOptions(
      io.argv,
      ['--input', '--min-cluster-size', '--min-samples', '--method', '--columns'],
      ['--json'],
    );
    if (args.help) {
      io.stdout(CLUSTERS_USAGE);
      return 0;
    }
    const input = required(args, '--input');
    const minClusterSize = integerOption(args, '--min-cluster-size', { min: 2 });
    const minSamples = integerOption(args, '--min-samples', { min: 1, fallback: minClusterSize });
    const method = args.values.get('--method') ?? 'eom';
    if (method !== 'eom' && method !== 'leaf')
      throw new UsageError(`--method must be eom or leaf, got "${method}"`);
    const requested = args.values
      .get('--columns')
      ?.split(',')
      .map((name) => name.trim())
      .filter((name) => name !== '');
    const table = parseCsv(await readInput(io, input), { source: input });
    if (table.records.length === 0) throw new Error(`${input}: no data rows`);
    const isNumeric = (column: number): boolean =>
      table.records.every(
        (record) => record.values[column]!.trim() !== '' && Number.isFinite(Number(record.values[column])),
      );
    let features: number[];
    if (requested !== undefined) {
      features = requested.map((name) => {
        const column = table.header.indexOf(name);
        if (column < 0)
          throw new Error(`${input}: no column "${name}" (columns: ${table.header.join(', ')})`);
        const bad = table.records.find(
          (record) => !Number.isFinite(Number(record.values[column])) || record.values[column]!.trim() === '',
        );
        if (bad !== undefined)
          throw new Error(
            `${input} line ${bad.line}: column "${name}" is not numeric: "${bad.values[column]}"`,
          );
        return column;
      });
    } else {
      features = table.header.map((_, column) => column).filter(isNumeric);
      if (features.length === 0)
        throw new Error(`${input}: no numeric columns to cluster on (columns: ${table.header.join(', ')})`);
    }
    const points = table.records.map((record) => features.map((column) => Number(record.values[column])));
    const result = hdbscan(points, { minClusterSize, minSamples, method });
    const names = features.map((column) => table.header[column]!);
    const noise = result.labels.filter((label) => label < 0).length;
    if (args.flags.has('--json')) {
      io.stdout(
        `${JSON.stringify({
          labels: Array.from(result.labels),
          probabilities: Array.from(result.probabilities),
          clusterCount: result.clusterCount,
          noise,
          features: names,
          minClusterSize,
          minSamples,
          method,
        })}\n`,
      );
    } else {
      io.stdout(`${Array.from(result.labels).join('\n')}\n`);
      io.stderr(
        `${result.clusterCount} cluster(s), ${noise} noise point(s) from ${points.length} rows; features: ${names.join(', ')}\n`,
      );
    }
    return 0;
  });

// ---------------------------------------------------------------------------------------------------
// analyze abtest

const ABTEST_USAGE = `usage: agenthub analyze abtest --control-conversions N --control-visitors N --variant-conversions N --variant-visitors N
                              [--looks K] [--interim] [--alpha A] [--planned-split C:V] [--json]
       agenthub analyze abtest sample-size --baseline P --mde D [--alpha A] [--power B] [--formula NAME] [--json]
  --looks          how many times the results have been looked at (peeking inflates false positives; 1–${MAX_LOOKS})
  --interim        this is an interim look at a running test
  --planned-split  planned traffic ratio control:variant for the sample-ratio-mismatch check (default 1:1)
  --mde            absolute minimum detectable effect (0.05 = 5 percentage points)
  --formula        ${Object.keys(SAMPLE_SIZE_FORMULAS).join(' | ')} (default evan-miller)
`;

/** `agenthub analyze abtest`: comparison of two arms, or `sample-size` planning. */
export const analyzeAbtestCommand: CliCommand = async (io) =>
  run(io, ABTEST_USAGE, async () => {
    if (io.argv[0] === 'sample-size') return sampleSizeCommand(io, io.argv.slice(1));
    const args = parseOptions(
      io.argv,
      [
        '--control-conversions',
        '--control-visitors',
        '--variant-conversions',
        '--variant-visitors',
        '--looks',
        '--alpha',
        '--planned-split',
      ],
      ['--json', '--interim'],
    );
    if (args.help) {
      io.stdout(ABTEST_USAGE);
      return 0;
    }
    const control = {
      conversions: integerOption(args, '--control-conversions', { min: 0 }),
      visitors: integerOption(args, '--control-visitors', { min: 1 }),
    };
    const variant = {
      conversions: integerOption(args, '--variant-conversions', { min: 0 }),
      visitors: integerOption(args, '--variant-visitors', { min: 1 }),
    };
    const looks = integerOption(args, '--looks', { min: 1, fallback: 1 });
    const alpha = numberOption(args, '--alpha', 0.05, (value) => value > 0 && value < 1, 'between 0 and 1');
    const splitText = args.values.get('--planned-split') ?? '1:1';
    const split = splitText.split(':').map(Number);
    if (split.length !== 2 || split.some((value) => !(value > 0)))
      throw new UsageError(`--planned-split must look like 50:50, got "${splitText}"`);
    const comparison = compareProportions(control, variant, {
      looks,
      alpha,
      interim: args.flags.has('--interim'),
    });
    const srm = sampleRatioMismatch([control.visitors, variant.visitors], split);
    if (args.flags.has('--json')) {
      io.stdout(`${JSON.stringify({ ...comparison, sampleRatioMismatch: srm }, null, 2)}\n`);
      return 0;
    }
    const lines = [
      `control ${control.conversions}/${control.visitors} = ${(comparison.control.rate * 100).toFixed(3)}%   variant ${variant.conversions}/${variant.visitors} = ${(comparison.variant.rate * 100).toFixed(3)}%`,
      `difference ${(comparison.absoluteDifference * 100).toFixed(3)} pp, relative lift ${comparison.relativeLift === null ? 'n/a' : `${(comparison.relativeLift * 100).toFixed(2)}%`}, ` +
        `${(comparison.differenceInterval.confidence * 100).toFixed(0)}% CI [${(comparison.differenceInterval.low * 100).toFixed(3)}, ${(comparison.differenceInterval.high * 100).toFixed(3)}] pp`,
      `z (pooled) ${fixed(comparison.zTest.z, 6)}, p two-sided ${fixed(comparison.zTest.pValueTwoSided, 8)}, p one-sided ${fixed(comparison.zTest.pValueOneSided, 8)}`,
      `chi-square ${fixed(comparison.chiSquare.statistic, 6)} (p ${fixed(comparison.chiSquare.pValue, 8)}), Yates ${fixed(comparison.chiSquareYates.statistic, 6)} (p ${fixed(comparison.chiSquareYates.pValue, 8)})`,
      `P(variant > control) = ${comparison.probabilityVariantBeatsControl.toFixed(6)} (Beta(1,1) prior)`,
      `significant at alpha ${alpha}: ${comparison.significant === null ? 'n/a' : comparison.significant ? 'yes' : 'no'}`,
      `sample ratio ${control.visitors}:${variant.visitors} vs planned ${splitText}: chi-square ${srm.chiSquare.toFixed(4)}, p ${srm.pValue.toPrecision(4)}${srm.mismatch ? ' — SAMPLE RATIO MISMATCH: do not trust this test' : ''}`,
    ];
    if (comparison.peeking !== null) lines.push(`WARNING: ${comparison.peeking.message}`);
    io.stdout(`${lines.join('\n')}\n`);
    return 0;
  });

async function sampleSizeCommand(io: CliIo, argv: readonly string[]): Promise<number> {
  const args = parseOptions(argv, ['--baseline', '--mde', '--alpha', '--power', '--formula'], ['--json']);
  if (args.help) {
    io.stdout(ABTEST_USAGE);
    return 0;
  }
  const baseline = numberOption(
    args,
    '--baseline',
    NaN,
    (value) => value > 0 && value < 1,
    'a rate between 0 and 1',
  );
  if (Number.isNaN(baseline)) throw new UsageError('--baseline is required');
  const mde = numberOption(
    args,
    '--mde',
    NaN,
    (value) => value !== 0 && Math.abs(value) < 1,
    'a non-zero absolute difference',
  );
  if (Number.isNaN(mde)) throw new UsageError('--mde is required');
  const alpha = numberOption(args, '--alpha', 0.05, (value) => value > 0 && value < 1, 'between 0 and 1');
  const power = numberOption(args, '--power', 0.8, (value) => value > 0 && value < 1, 'between 0 and 1');
  const formula = args.values.get('--formula') ?? 'evan-miller';
  if (!Object.hasOwn(SAMPLE_SIZE_FORMULAS, formula)) {
    throw new UsageError(
      `--formula must be one of ${Object.keys(SAMPLE_SIZE_FORMULAS).join(', ')}, got "${formula}"`,
    );
  }
  const result = sampleSizePerArm({
    baseline,
    mdeAbsolute: mde,
    alpha,
    power,
    formula: formula as SampleSizeFormula,
  });
  if (args.flags.has('--json')) {
    io.stdout(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  }
  io.stdout(
    `${result.perArm} visitors per arm (${result.total} total; exact ${result.perArmExact.toFixed(4)}) to detect ` +
      `${baseline} → ${baseline + mde} at alpha ${alpha} (two-sided), power ${power}\nformula: ${result.formulaDescription}\n`,
  );
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// analyze ltv

const LTV_USAGE = `usage: agenthub analyze ltv --input FILE [--time-unit NAME] [--horizon T] [--periods N] [--units-per-period U]
                           [--discount-rate D] [--json]
  --input             CSV with frequency (or x), recency (or t_x), T, optional monetary_value (or zbar), optional id
  --time-unit         name of the unit of recency and T (default week); only used in the output
  --horizon           prediction horizon in time units (default 52)
  --periods           CLV discounting periods (default 12)
  --units-per-period  time units per discounting period (default 4.345 = weeks per month)
  --discount-rate     discount rate per period (default 0.01)
Fits BG/NBD (and Gamma-Gamma when monetary values are present) by maximum likelihood and prints the
parameters and one prediction row per customer.
`;

/** `agenthub analyze ltv`: BG/NBD (+ Gamma-Gamma) fit and per-customer predictions. */
export const analyzeLtvCommand: CliCommand = async (io) =>
  run(io, LTV_USAGE, async () => {
    const args = parseOptions(
      io.argv,
      ['--input', '--time-unit', '--horizon', '--periods', '--units-per-period', '--discount-rate'],
      ['--json'],
    );
    if (args.help) {
      io.stdout(LTV_USAGE);
      return 0;
    }
    const input = required(args, '--input');
    const timeUnit = args.values.get('--time-unit') ?? 'week';
    const horizon = numberOption(args, '--horizon', 52, (value) => value > 0, 'a positive number');
    const periods = integerOption(args, '--periods', { min: 1, fallback: 12 });
    const unitsPerPeriod = numberOption(
      args,
      '--units-per-period',
      4.345,
      (value) => value > 0,
      'a positive number',
    );
    const discountRate = numberOption(
      args,
      '--discount-rate',
      0.01,
      (value) => value >= 0,
      'a non-negative number',
    );
    const { customers, hasMonetaryValue } = parseCustomerSummaryCsv(
      parseCsv(await readInput(io, input), { source: input }),
      input,
    );
    const purchase = fitBgNbd(customers, { timeUnit });
    const spend =
      hasMonetaryValue && customers.some((customer) => customer.frequency > 0)
        ? fitGammaGamma(customers)
        : null;
    const rows = customers.map((customer) => {
      const expectedValue =
        spend === null ? null : gammaGammaExpectedAverageValue(spend.parameters, customer);
      return {
        id: customer.id,
        probabilityAlive: bgNbdProbabilityAlive(purchase.parameters, customer),
        expectedPurchases: bgNbdConditionalExpectedPurchases(purchase.parameters, customer, horizon),
        expectedAverageValue: expectedValue,
        clv:
          spend === null
            ? null
            : customerLifetimeValue(purchase.parameters, spend.parameters, customer, {
                periods,
                timeUnitsPerPeriod: unitsPerPeriod,
                discountRatePerPeriod: discountRate,
              }),
      };
    });
    const units = {
      timeUnit,
      horizonTimeUnits: horizon,
      clvPeriods: periods,
      timeUnitsPerPeriod: unitsPerPeriod,
      discountRatePerPeriod: discountRate,
      money: 'same unit as the monetary_value column',
    };
    if (args.flags.has('--json')) {
      io.stdout(`${JSON.stringify({ units, bgNbd: purchase, gammaGamma: spend, customers: rows })}\n`);
      return 0;
    }
    const { r, alpha, a, b } = purchase.parameters;
    const lines = [
      `BG/NBD on ${purchase.customers} customers (time unit: ${timeUnit}): r ${r.toFixed(6)}, alpha ${alpha.toFixed(6)} ${timeUnit}s, a ${a.toFixed(6)}, b ${b.toFixed(6)}; log-likelihood ${purchase.logLikelihood.toFixed(4)}`,
      spend === null
        ? 'Gamma-Gamma: not fitted (no monetary_value column or no repeat buyers)'
        : `Gamma-Gamma on ${spend.customers} repeat buyers: p ${spend.parameters.p.toFixed(6)}, q ${spend.parameters.q.toFixed(6)}, v ${spend.parameters.v.toFixed(6)}; log-likelihood ${spend.logLikelihood.toFixed(4)}`,
      `id,p_alive,expected_purchases_next_${horizon}_${timeUnit}s,expected_average_value,clv_${periods}x${unitsPerPeriod}_${timeUnit}s_discount_${discountRate}`,
      ...rows.map(
        (row) =>
          `${row.id},${row.probabilityAlive.toFixed(6)},${row.expectedPurchases.toFixed(6)},${fixed(row.expectedAverageValue, 4)},${fixed(row.clv, 4)}`,
      ),
    ];
    io.stdout(`${lines.join('\n')}\n`);
    return 0;
  });

// ---------------------------------------------------------------------------------------------------
// analyze compliance

const COMPLIANCE_USAGE = `usage: agenthub analyze compliance (--text "…" | --input FILE) [--extra-classes a,b] [--json]
  --extra-classes  state/local protected classes to check too: ${EXTRA_CLASSES.join(', ')}
Exit code: 0 compliant, 3 non-compliant, 1 bad input, 2 usage error.
`;

/** `agenthub analyze compliance`: Fair Housing rules + toxicity screen; exit 3 when non-compliant. */
export const analyzeComplianceCommand: CliCommand = async (io) =>
  run(io, COMPLIANCE_USAGE, async () => {
    const args = parseOptions(io.argv, ['--text', '--input', '--extra-classes'], ['--json']);
    if (args.help) {
      io.stdout(COMPLIANCE_USAGE);
      return 0;
    }
    const inline = args.values.get('--text');
    const file = args.values.get('--input');
    if ((inline === undefined) === (file === undefined))
      throw new UsageError('give exactly one of --text or --input');
    const extras = (args.values.get('--extra-classes') ?? '')
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name !== '');
    for (const extra of extras) {
      if (!(EXTRA_CLASSES as readonly string[]).includes(extra)) {
        throw new UsageError(
          `unknown class "${extra}" in --extra-classes (known: ${EXTRA_CLASSES.join(', ')})`,
        );
      }
    }
    const text = inline ?? (await readInput(io, file!));
    if (text.trim() === '') throw new UsageError('the text to check is empty');
    const report = checkCompliance(text, { extraClasses: extras as ExtraClass[] });
    if (args.flags.has('--json')) {
      io.stdout(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      const lines = [
        report.compliant ? 'COMPLIANT' : 'NON-COMPLIANT',
        ...report.findings.map(
          (finding) =>
            `${finding.severity === 'violation' ? 'violation' : 'review   '} ${finding.ruleId} [${finding.protectedClass}] "${finding.matchedText}" at ${finding.offset}: ${finding.message} (${finding.citation})`,
        ),
        ...report.toxicity.matches.map(
          (match) => `toxicity  ${match.category} "${match.term}" at ${match.offset}`,
        ),
      ];
      if (report.needsReview) lines.push('Some wording needs a human decision (review findings above).');
      io.stdout(`${lines.join('\n')}\n`);
    }
    return report.compliant ? 0 : 3;
  });
