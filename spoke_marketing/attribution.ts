// Multi-touch attribution over conversion paths: heuristic models, the exact Markov removal effect, Shapley
// values, and the readers for ChannelAttribution path files and per-touch journey CSVs.
import { parseCsv } from '../shared/csv.js';
import { AppError, assertNever } from '../shared/errors.js';

/** One observed conversion path, possibly aggregated over many users (ChannelAttribution's row shape). */
export interface ConversionPath {
  /** Touch sequence, first touch first. Repeated touches are kept; models decide how to count them. */
  channels: string[];
  /** Conversions that ended this path. */
  conversions: number;
  /** Conversion value (revenue) of those conversions, in major currency units. */
  value: number;
  /** Journeys that followed this path and did not convert. */
  nulls: number;
  /** Touch times in epoch milliseconds, aligned with `channels`; needed by time-decay. */
  touchTimes?: number[];
  /** Conversion time in epoch milliseconds; time-decay uses the last touch time when absent. */
  conversionTime?: number;
}

/** The attribution models this module computes. */
export type AttributionModel =
  'last-click' | 'first-click' | 'linear' | 'time-decay' | 'position-based' | 'markov' | 'shapley';

/** Every model name, in the order reports list them. */
export const ATTRIBUTION_MODELS: readonly AttributionModel[] = [
  'last-click',
  'first-click',
  'linear',
  'time-decay',
  'position-based',
  'markov',
  'shapley',
];

/** Credit given to each channel by one model. Σ byChannel equals the totals (up to float rounding). */
export interface AttributionResult {
  model: AttributionModel;
  byChannel: Record<string, { conversions: number; value: number }>;
  totalConversions: number;
  totalValue: number;
  /** Model internals worth reporting, e.g. Markov removal effects and P(conversion). */
  details?: Record<string, unknown>;
}

/** Options of {@link attribute}. */
export interface AttributeOptions {
  /** Time-decay half-life in milliseconds; default 7 days (Google Ads' legacy time-decay model). */
  halfLifeMs?: number;
  /** Markov chain order (states are the last `markovOrder` channels); default 1. */
  markovOrder?: number;
}

/** How Markov attribution splits conversion value over channels. */
export type MarkovValueConvention = 'value-weighted' | 'conversion-share';

/** Options of {@link markovAttribution}. */
export interface MarkovOptions {
  /** Chain order: a state is the tuple of the last `order` channels (shorter at the start of a path). Default 1. */
  order?: number;
  /**
   * `value-weighted` (default, ChannelAttribution's convention): value credit is proportional to the
   * value removal effect, computed exactly from a chain whose conversion reward in each state is the mean
   * value of the conversions observed from that state. `conversion-share`: value is split with the same
   * shares as conversions.
   */
  valueConvention?: MarkovValueConvention;
}

/** Default time-decay half-life: 7 days. */
export const DEFAULT_HALF_LIFE_MS = 7 * 24 * 60 * 60 * 1000;

/** Largest transient-state count the dense Markov solver accepts (memory ≈ 8·n² bytes per solve). */
export const MAX_MARKOV_STATES = 2000;

/** Largest number of players for the exact coalition Shapley value (2^n coalitions). */
export const MAX_SHAPLEY_PLAYERS = 20;

const START_STATE = '(start)';

/** Attributes the conversions and value of `paths` to channels with `model`. */
export function attribute(
  paths: readonly ConversionPath[],
  model: AttributionModel,
  options: AttributeOptions = {},
): AttributionResult {
  validatePaths(paths);
  switch (model) {
    case 'last-click':
      return creditByWeights(paths, model, (path) => oneHot(path.channels.length, path.channels.length - 1));
    case 'first-click':
      return creditByWeights(paths, model, (path) => oneHot(path.channels.length, 0));
    case 'linear':
      return creditByWeights(paths, model, (path) => path.channels.map(() => 1 / path.channels.length));
    case 'position-based':
      return creditByWeights(paths, model, (path) => positionBasedWeights(path.channels.length));
    case 'time-decay': {
      const halfLifeMs = options.halfLifeMs ?? DEFAULT_HALF_LIFE_MS;
      if (!Number.isFinite(halfLifeMs) || halfLifeMs <= 0) {
        throw new AppError('BAD_REQUEST', `time-decay half-life must be a positive number of milliseconds`, {
          details: { halfLifeMs },
        });
      }
      const result = creditByWeights(paths, model, (path, index) =>
        timeDecayWeights(path, index, halfLifeMs),
      );
      return { ...result, details: { halfLifeMs } };
    }
    case 'markov':
      return markovAttribution(paths, { order: options.markovOrder ?? 1 });
    case 'shapley':
      return setShapleyAttribution(paths);
    default:
      return assertNever(model, 'attribution model');
  }
}

function validatePaths(paths: readonly ConversionPath[]): void {
  paths.forEach((path, index) => {
    const problems: string[] = [];
    if (path.channels.length === 0) problems.push('has no channels');
    if (path.channels.some((channel) => channel.length === 0)) problems.push('has an empty channel name');
    for (const field of ['conversions', 'value', 'nulls'] as const) {
      if (!Number.isFinite(path[field]) || path[field] < 0)
        problems.push(`${field} must be a finite number ≥ 0`);
    }
    if (path.touchTimes !== undefined && path.touchTimes.length !== path.channels.length) {
      problems.push(`touchTimes has ${path.touchTimes.length} entries for ${path.channels.length} channels`);
    }
    if (problems.length > 0) {
      throw new AppError('VALIDATION_FAILED', `path ${index + 1} ${problems.join('; ')}`, {
        details: { path: index + 1, problems },
      });
    }
  });
}

function emptyCredit(
  paths: readonly ConversionPath[],
): Record<string, { conversions: number; value: number }> {
  const channels = [...new Set(paths.flatMap((path) => path.channels))].sort();
  return Object.fromEntries(channels.map((channel) => [channel, { conversions: 0, value: 0 }]));
}

function totals(paths: readonly ConversionPath[]): { totalConversions: number; totalValue: number } {
  let totalConversions = 0;
  let totalValue = 0;
  for (const path of paths) {
    totalConversions += path.conversions;
    totalValue += path.value;
  }
  return { totalConversions, totalValue };
}

/** Gives each converting path's conversions and value to its touches in proportion to `weightsOf`. */
function creditByWeights(
  paths: readonly ConversionPath[],
  model: AttributionModel,
  weightsOf: (path: ConversionPath, index: number) => number[],
): AttributionResult {
  const byChannel = emptyCredit(paths);
  paths.forEach((path, index) => {
    if (path.conversions === 0 && path.value === 0) return;
    const weights = weightsOf(path, index);
    path.channels.forEach((channel, touch) => {
      const credit = byChannel[channel]!;
      const weight = weights[touch]!;
      credit.conversions += weight * path.conversions;
      credit.value += weight * path.value;
    });
  });
  return { model, byChannel, ...totals(paths) };
}

function oneHot(length: number, position: number): number[] {
  return Array.from({ length }, (_, index) => (index === position ? 1 : 0));
}

/** U-shaped weights: 40/20/40 for three or more touches, 50/50 for two, 100 % for one. */
function positionBasedWeights(length: number): number[] {
  if (length === 1) return [1];
  if (length === 2) return [0.5, 0.5];
  const middle = 0.2 / (length - 2);
  return Array.from({ length }, (_, index) => (index === 0 || index === length - 1 ? 0.4 : middle));
}

/** wᵢ = 0.5^((conversion time − touch time) / half-life), normalised to sum 1. */
function timeDecayWeights(path: ConversionPath, index: number, halfLifeMs: number): number[] {
  const times = path.touchTimes;
  if (times === undefined) {
    throw new AppError(
      'VALIDATION_FAILED',
      `time-decay needs touch timestamps: path ${index + 1} (${path.channels.join(' > ')}) has none; use a journey CSV`,
      { details: { path: index + 1 } },
    );
  }
  if (times.some((time) => !Number.isFinite(time))) {
    throw new AppError(
      'VALIDATION_FAILED',
      `path ${index + 1} has a touch time that is not a finite number`,
      {
        details: { path: index + 1 },
      },
    );
  }
  const conversionTime = path.conversionTime ?? Math.max(...times);
  const late = times.findIndex((time) => time > conversionTime);
  if (late >= 0) {
    throw new AppError(
      'VALIDATION_FAILED',
      `path ${index + 1} touch ${late + 1} is after the conversion time`,
      {
        details: { path: index + 1, touch: late + 1 },
      },
    );
  }
  const raw = times.map((time) => 0.5 ** ((conversionTime - time) / halfLifeMs));
  const sum = raw.reduce((total, weight) => total + weight, 0);
  return raw.map((weight) => weight / sum);
}

/** Removes consecutive repeats (`a > a > b` → `a > b`), as ChannelAttribution does before building the chain. */
export function collapseRepeats(channels: readonly string[]): string[] {
  return channels.filter((channel, index) => index === 0 || channels[index - 1] !== channel);
}

interface MarkovChain {
  /** Transient states: index 0 is (start); others are channel tuples. */
  readonly states: readonly (readonly string[])[];
  /** Transition probabilities between transient states, row-sparse. */
  readonly transitions: readonly Map<number, number>[];
  /** P(state → conversion). */
  readonly conversionProbability: readonly number[];
  /** P(state → null): journeys that ended in this state without converting. */
  readonly nullProbability: readonly number[];
  /** P(state → conversion) × mean value of conversions from that state. */
  readonly valueReward: readonly number[];
}

function buildMarkovChain(paths: readonly ConversionPath[], order: number): MarkovChain {
  const stateIndex = new Map<string, number>([[JSON.stringify([START_STATE]), 0]]);
  const states: string[][] = [[START_STATE]];
  const counts: Map<number, number>[] = [new Map()];
  const conversionCounts: number[] = [0];
  const nullCounts: number[] = [0];
  const valueSums: number[] = [0];

  const indexOf = (tuple: string[]): number => {
    const key = JSON.stringify(tuple);
    let index = stateIndex.get(key);
    if (index === undefined) {
      index = states.length;
      stateIndex.set(key, index);
      states.push(tuple);
      counts.push(new Map());
      conversionCounts.push(0);
      nullCounts.push(0);
      valueSums.push(0);
    }
    return index;
  };

  for (const path of paths) {
    const weight = path.conversions + path.nulls;
    if (weight === 0) continue;
    const sequence = collapseRepeats(path.channels);
    let from = 0;
    sequence.forEach((_, position) => {
      const to = indexOf(sequence.slice(Math.max(0, position + 1 - order), position + 1));
      const row = counts[from]!;
      row.set(to, (row.get(to) ?? 0) + weight);
      from = to;
    });
    conversionCounts[from]! += path.conversions;
    nullCounts[from]! += path.nulls;
    valueSums[from]! += path.value;
  }

  const transitions: Map<number, number>[] = [];
  const conversionProbability: number[] = [];
  const nullProbability: number[] = [];
  const valueReward: number[] = [];
  states.forEach((_, index) => {
    const row = counts[index]!;
    let out = conversionCounts[index]! + nullCounts[index]!;
    for (const count of row.values()) out += count;
    const probabilities = new Map<number, number>();
    for (const [to, count] of row) probabilities.set(to, count / out);
    transitions.push(probabilities);
    conversionProbability.push(out === 0 ? 0 : conversionCounts[index]! / out);
    nullProbability.push(out === 0 ? 0 : nullCounts[index]! / out);
    valueReward.push(out === 0 ? 0 : valueSums[index]! / out);
  });
  return { states, transitions, conversionProbability, nullProbability, valueReward };
}

/**
 * Absorption reward from (start) when only the transient states in `kept` are reachable: every transition
 * into a dropped state goes to (null). Solves (I − Q)x = r exactly by Gaussian elimination with partial
 * pivoting, for two right-hand sides at once (conversion probability and expected value).
 */
function absorbFromStart(chain: MarkovChain, kept: readonly number[]): { conversion: number; value: number } {
  const size = kept.length;
  const position = new Map(kept.map((state, index) => [state, index]));
  const width = size + 2;
  const matrix = Array.from({ length: size }, () => new Float64Array(width));
  kept.forEach((state, row) => {
    const line = matrix[row]!;
    line[row] = 1;
    for (const [to, probability] of chain.transitions[state]!) {
      const column = position.get(to);
      if (column !== undefined) line[column]! -= probability;
    }
    line[size] = chain.conversionProbability[state]!;
    line[size + 1] = chain.valueReward[state]!;
  });
  for (let pivot = 0; pivot < size; pivot += 1) {
    let best = pivot;
    for (let row = pivot + 1; row < size; row += 1) {
      if (Math.abs(matrix[row]![pivot]!) > Math.abs(matrix[best]![pivot]!)) best = row;
    }
    if (best !== pivot) [matrix[pivot], matrix[best]] = [matrix[best]!, matrix[pivot]!];
    const pivotRow = matrix[pivot]!;
    const diagonal = pivotRow[pivot]!;
    if (Math.abs(diagonal) < 1e-300) {
      throw new AppError('INTERNAL', 'Markov chain has a closed set of transient states (singular I − Q)');
    }
    for (let row = pivot + 1; row < size; row += 1) {
      const line = matrix[row]!;
      const factor = line[pivot]! / diagonal;
      if (factor === 0) continue;
      for (let column = pivot; column < width; column += 1) line[column]! -= factor * pivotRow[column]!;
    }
  }
  const conversion = new Float64Array(size);
  const value = new Float64Array(size);
  for (let row = size - 1; row >= 0; row -= 1) {
    const line = matrix[row]!;
    let sumConversion = line[size]!;
    let sumValue = line[size + 1]!;
    for (let column = row + 1; column < size; column += 1) {
      sumConversion -= line[column]! * conversion[column]!;
      sumValue -= line[column]! * value[column]!;
    }
    conversion[row] = sumConversion / line[row]!;
    value[row] = sumValue / line[row]!;
  }
  const start = position.get(0)!;
  return { conversion: conversion[start]!, value: value[start]! };
}

/**
 * Markov removal-effect attribution, solved exactly (no simulation). Consecutive repeats are collapsed;
 * the removal effect of channel c is RE_c = 1 − P(conv | c removed) / P(conv), where removing c sends every
 * transition into a state containing c to (null); conversions are split by RE_c / Σ RE. Value follows
 * {@link MarkovOptions.valueConvention}. `details` carries P(conv), removal effects and the state count.
 */
export function markovAttribution(
  paths: readonly ConversionPath[],
  options: MarkovOptions = {},
): AttributionResult {
  validatePaths(paths);
  const order = options.order ?? 1;
  const valueConvention = options.valueConvention ?? 'value-weighted';
  if (!Number.isInteger(order) || order < 1) {
    throw new AppError('BAD_REQUEST', `Markov order must be a positive integer, got ${order}`, {
      details: { order },
    });
  }
  const chain = buildMarkovChain(paths, order);
  if (chain.states.length > MAX_MARKOV_STATES) {
    throw new AppError(
      'VALIDATION_FAILED',
      `order-${order} Markov chain has ${chain.states.length} states, above the exact solver's limit of ${MAX_MARKOV_STATES}`,
      { details: { states: chain.states.length, limit: MAX_MARKOV_STATES } },
    );
  }
  const all = chain.states.map((_, index) => index);
  const base = absorbFromStart(chain, all);
  const byChannel = emptyCredit(paths);
  const channels = Object.keys(byChannel);
  const removalEffect: Record<string, number> = {};
  const valueRemovalEffect: Record<string, number> = {};
  for (const channel of channels) {
    const kept = all.filter((index) => !chain.states[index]!.includes(channel) || index === 0);
    const removed = absorbFromStart(chain, kept);
    removalEffect[channel] = base.conversion > 0 ? 1 - removed.conversion / base.conversion : 0;
    valueRemovalEffect[channel] = base.value > 0 ? 1 - removed.value / base.value : 0;
  }
  const { totalConversions, totalValue } = totals(paths);
  const sumEffect = channels.reduce((sum, channel) => sum + removalEffect[channel]!, 0);
  const valueEffects = valueConvention === 'value-weighted' ? valueRemovalEffect : removalEffect;
  const sumValueEffect = channels.reduce((sum, channel) => sum + valueEffects[channel]!, 0);
  for (const channel of channels) {
    const credit = byChannel[channel]!;
    credit.conversions = sumEffect > 0 ? (removalEffect[channel]! / sumEffect) * totalConversions : 0;
    credit.value = sumValueEffect > 0 ? (valueEffects[channel]! / sumValueEffect) * totalValue : 0;
  }
  return {
    model: 'markov',
    byChannel,
    totalConversions,
    totalValue,
    details: {
      order,
      states: chain.states.length,
      conversionProbability: base.conversion,
      expectedValuePerPath: base.value,
      removalEffect,
      valueRemovalEffect,
      valueConvention,
      transitionMatrix: transitionMatrix(chain),
    },
  };
}

/** The chain as published tables show it: from-state → to-state → probability, with (conversion)/(null). */
function transitionMatrix(chain: MarkovChain): Record<string, Record<string, number>> {
  const label = (index: number): string => chain.states[index]!.join(' > ');
  const matrix: Record<string, Record<string, number>> = {};
  chain.states.forEach((_, index) => {
    const row: Record<string, number> = {};
    for (const [to, probability] of chain.transitions[index]!) row[label(to)] = probability;
    const conversion = chain.conversionProbability[index]!;
    const toNull = chain.nullProbability[index]!;
    if (conversion > 0) row['(conversion)'] = conversion;
    if (toNull > 0) row['(null)'] = toNull;
    matrix[label(index)] = row;
  });
  return matrix;
}

/**
 * Set-based Shapley attribution (Zhao et al. 2018, arXiv:1804.05327): with v(S) = conversions of paths
 * whose channel set is a subset of S, the Shapley value splits each path's conversions (and value) equally
 * over its unique channels. Exact, O(total touches).
 */
function setShapleyAttribution(paths: readonly ConversionPath[]): AttributionResult {
  const result = creditByWeights(paths, 'shapley', (path) => {
    const unique = new Set(path.channels);
    const seen = new Set<string>();
    return path.channels.map((channel) => {
      if (seen.has(channel)) return 0;
      seen.add(channel);
      return 1 / unique.size;
    });
  });
  return { ...result, details: { form: 'set-based (Zhao et al. 2018): equal split over unique channels' } };
}

/**
 * Exact Shapley values of a coalition game: φᵢ = Σ_{S ∌ i} |S|!(n−|S|−1)!/n! · (v(S ∪ {i}) − v(S)).
 * `worth` is called once per coalition (2^n calls, players ≤ {@link MAX_SHAPLEY_PLAYERS}); v(∅) is taken
 * from `worth` too, so pass 0 for the usual normalisation.
 */
export function shapleyValues(
  players: readonly string[],
  worth: (coalition: readonly string[]) => number,
): Record<string, number> {
  const count = players.length;
  if (new Set(players).size !== count) {
    throw new AppError('BAD_REQUEST', 'Shapley players must be distinct');
  }
  if (count > MAX_SHAPLEY_PLAYERS) {
    throw new AppError(
      'VALIDATION_FAILED',
      `exact Shapley needs 2^n coalitions; ${count} players exceed the limit of ${MAX_SHAPLEY_PLAYERS}`,
      { details: { players: count, limit: MAX_SHAPLEY_PLAYERS } },
    );
  }
  const coalitions = 1 << count;
  const values = new Float64Array(coalitions);
  for (let mask = 0; mask < coalitions; mask += 1) {
    values[mask] = worth(players.filter((_, index) => (mask & (1 << index)) !== 0));
  }
  const factorial = [1];
  for (let n = 1; n <= count; n += 1) factorial.push(factorial[n - 1]! * n);
  const weightBySize = Array.from(
    { length: count },
    (_, size) => (factorial[size]! * factorial[count - size - 1]!) / factorial[count]!,
  );
  const result: Record<string, number> = {};
  players.forEach((player, index) => {
    const bit = 1 << index;
    let total = 0;
    for (let mask = 0; mask < coalitions; mask += 1) {
      if ((mask & bit) !== 0) continue;
      total += weightBySize[popCount(mask)]! * (values[mask | bit]! - values[mask]!);
    }
    result[player] = total;
  });
  return result;
}

function popCount(mask: number): number {
  let bits = 0;
  for (let rest = mask; rest !== 0; rest &= rest - 1) bits += 1;
  return bits;
}

/**
 * A characteristic function from a table keyed by coalition, e.g. `{ 'O': 7, 'O,F': 15 }` (members in any
 * order, joined by `separator`). The empty coalition is worth 0; any other coalition missing from the table
 * is an error, so a typo cannot silently count as zero.
 */
export function coalitionWorthFromTable(
  table: Readonly<Record<string, number>>,
  separator = ',',
): (coalition: readonly string[]) => number {
  const canonical = (members: readonly string[]): string =>
    [...members]
      .map((member) => member.trim())
      .sort()
      .join('\u0000');
  const worthByKey = new Map<string, number>();
  for (const [key, value] of Object.entries(table)) {
    worthByKey.set(canonical(key.split(separator)), value);
  }
  return (coalition) => {
    if (coalition.length === 0) return 0;
    const value = worthByKey.get(canonical(coalition));
    if (value === undefined) {
      throw new AppError(
        'VALIDATION_FAILED',
        `coalition {${coalition.join(', ')}} has no value in the table`,
        {
          details: { coalition: [...coalition] },
        },
      );
    }
    return value;
  };
}

/**
 * The set-based characteristic function of Zhao et al. 2018 over `paths`: v(S) = Σ conversions of paths
 * whose channel set is a subset of S.
 */
export function pathCoalitionWorth(
  paths: readonly ConversionPath[],
): (coalition: readonly string[]) => number {
  const conversionsBySet = new Map<string, { channels: string[]; conversions: number }>();
  for (const path of paths) {
    const channels = [...new Set(path.channels)].sort();
    const key = JSON.stringify(channels);
    const entry = conversionsBySet.get(key) ?? { channels, conversions: 0 };
    entry.conversions += path.conversions;
    conversionsBySet.set(key, entry);
  }
  const channelSets = [...conversionsBySet.values()];
  return (coalition) => {
    const members = new Set(coalition);
    let total = 0;
    for (const { channels, conversions } of channelSets) {
      if (channels.every((channel) => members.has(channel))) total += conversions;
    }
    return total;
  };
}

const NUMBER_PATTERN = /^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function parseCount(text: string, column: string, line: number, source: string): number {
  const trimmed = text.trim();
  if (!NUMBER_PATTERN.test(trimmed)) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${source} line ${line}: ${column} must be a number ≥ 0, found "${text}"`,
      { details: { line, column } },
    );
  }
  return Number(trimmed);
}

function splitChannels(text: string, line: number, source: string): string[] {
  const channels = text.split('>').map((channel) => channel.trim());
  if (channels.some((channel) => channel.length === 0)) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${source} line ${line}: path "${text}" has an empty channel name`,
      {
        details: { line, column: 'path' },
      },
    );
  }
  return channels;
}

function requireColumns(
  header: readonly string[],
  required: readonly string[],
  source: string,
): Record<string, number> {
  const lower = header.map((name) => name.toLowerCase());
  const missing = required.filter((name) => !lower.includes(name));
  if (missing.length > 0) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${source} line 1: missing column(s) ${missing.join(', ')} (header: ${header.join(', ')})`,
      { details: { line: 1, missing } },
    );
  }
  return Object.fromEntries(lower.map((name, index) => [name, index]));
}

/**
 * Reads a ChannelAttribution path file: `path;total_conversions;total_conversion_value;total_null`,
 * channels joined by `>` (spaces around it optional). The delimiter is `;` when the header has one, else
 * `,`; the value and null columns are optional (0). Errors name the line.
 */
export function parsePathFile(text: string, source = 'path file'): ConversionPath[] {
  const firstLine = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  const table = parseCsv(text, { delimiter: firstLine.includes(';') ? ';' : ',', source });
  const columns = requireColumns(table.header, ['path', 'total_conversions'], source);
  const valueColumn = columns['total_conversion_value'];
  const nullColumn = columns['total_null'];
  return table.records.map((record) => {
    const cell = (index: number | undefined): string | undefined =>
      index === undefined ? undefined : record.values[index];
    const optional = (index: number | undefined, name: string): number => {
      const text = cell(index);
      return text === undefined || text.trim() === '' ? 0 : parseCount(text, name, record.line, source);
    };
    return {
      channels: splitChannels(cell(columns['path'])!, record.line, source),
      conversions: parseCount(cell(columns['total_conversions'])!, 'total_conversions', record.line, source),
      value: optional(valueColumn, 'total_conversion_value'),
      nulls: optional(nullColumn, 'total_null'),
    };
  });
}

const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Reads one row per touchpoint (`journey_id,timestamp,channel,converted,value`; value optional) into
 * paths. Timestamps are ISO 8601 dates or date-times with `Z` or an offset (no local-time ambiguity).
 * Rows of a journey are ordered by time (file order breaks ties); a row with converted = 1 ends a
 * converting path at that touch (value = that row's value, conversionTime = its timestamp) and later touches
 * start a new path; touches after the journey's last conversion form one non-converting path.
 */
export function parseJourneyCsv(text: string, source = 'journey CSV'): ConversionPath[] {
  const table = parseCsv(text, { source });
  const columns = requireColumns(table.header, ['journey_id', 'timestamp', 'channel', 'converted'], source);
  const valueColumn = columns['value'];
  interface Touch {
    channel: string;
    time: number;
    converted: boolean;
    value: number;
  }
  const journeys = new Map<string, Touch[]>();
  for (const record of table.records) {
    const line = record.line;
    const journeyId = record.values[columns['journey_id']!]!.trim();
    const timestamp = record.values[columns['timestamp']!]!.trim();
    const channel = record.values[columns['channel']!]!.trim();
    const convertedText = record.values[columns['converted']!]!.trim();
    const valueText = valueColumn === undefined ? '' : record.values[valueColumn]!.trim();
    if (journeyId === '') fail(source, line, 'journey_id', 'journey_id is empty');
    if (channel === '') fail(source, line, 'channel', 'channel is empty');
    const time = Date.parse(timestamp);
    if (!ISO_TIMESTAMP.test(timestamp) || Number.isNaN(time)) {
      fail(source, line, 'timestamp', `timestamp "${timestamp}" is not ISO 8601 with Z or an offset`);
    }
    if (convertedText !== '0' && convertedText !== '1') {
      fail(source, line, 'converted', `converted must be 0 or 1, found "${convertedText}"`);
    }
    const converted = convertedText === '1';
    const value = valueText === '' ? 0 : parseCount(valueText, 'value', line, source);
    if (!converted && value !== 0) fail(source, line, 'value', 'value is set on a row that did not convert');
    const touches = journeys.get(journeyId) ?? [];
    touches.push({ channel, time, converted, value });
    journeys.set(journeyId, touches);
  }
  const paths: ConversionPath[] = [];
  for (const touches of journeys.values()) {
    const ordered = touches.map((touch, index) => ({ touch, index }));
    ordered.sort((a, b) => a.touch.time - b.touch.time || a.index - b.index);
    let pending: Touch[] = [];
    for (const { touch } of ordered) {
      pending.push(touch);
      if (touch.converted) {
        paths.push(pathFromTouches(pending, 1, touch.value, touch.time));
        pending = [];
      }
    }
    if (pending.length > 0) paths.push(pathFromTouches(pending, 0, 0, undefined));
  }
  return paths;
}

function pathFromTouches(
  touches: readonly { channel: string; time: number }[],
  conversions: number,
  value: number,
  conversionTime: number | undefined,
): ConversionPath {
  return {
    channels: touches.map((touch) => touch.channel),
    conversions,
    value,
    nulls: conversions === 0 ? 1 : 0,
    touchTimes: touches.map((touch) => touch.time),
    ...(conversionTime === undefined ? {} : { conversionTime }),
  };
}

function fail(source: string, line: number, column: string, message: string): never {
  throw new AppError('VALIDATION_FAILED', `${source} line ${line}: ${message}`, {
    details: { line, column },
  });
}
