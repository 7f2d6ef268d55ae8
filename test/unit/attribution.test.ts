// Attribution models against the published small cases (shared/vectors/attribution_small_cases.json) and
// the path/journey readers' validation.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  attribute,
  coalitionWorthFromTable,
  collapseRepeats,
  markovAttribution,
  parseJourneyCsv,
  parsePathFile,
  pathCoalitionWorth,
  shapleyValues,
  type AttributionModel,
  type ConversionPath,
} from '../../spoke_marketing/attribution.js';
import { hasShared, sharedPath } from '../helpers/shared_data.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

interface CasePath {
  path: string;
  conv: number;
  null?: number;
}
interface CaseJourney extends CasePath {
  hours_before_conversion?: number[];
  days_before_conversion?: number[];
}
interface SmallCase {
  id: string;
  paths?: CasePath[];
  journeys?: CaseJourney[];
  journey?: CaseJourney;
  p_conversion?: number;
  transition_matrix?: Record<string, Record<string, number>>;
  markov_exact?: { removal_effect: Record<string, number>; conversions: Record<string, number> };
  heuristics_channelattribution_2_2_4?: Record<
    'first_touch' | 'last_touch' | 'linear_touch',
    Record<string, number>
  >;
  last_click?: Record<string, number>;
  first_click?: Record<string, number>;
  linear?: Record<string, number>;
  position_based_40_20_40?: Record<string, number>;
  time_decay?: Record<string, number>;
  v?: Record<string, number>;
  shapley?: Record<string, number>;
  property?: string;
}

function toPath(entry: CaseJourney): ConversionPath {
  const channels = entry.path.split('>').map((channel) => channel.trim());
  const offsets =
    entry.hours_before_conversion?.map((hours) => hours * HOUR) ??
    entry.days_before_conversion?.map((days) => days * DAY);
  const conversionTime = Date.UTC(2024, 0, 31);
  return {
    channels,
    conversions: entry.conv,
    value: 0,
    nulls: entry.null ?? 0,
    ...(offsets === undefined
      ? {}
      : { touchTimes: offsets.map((offset) => conversionTime - offset), conversionTime }),
  };
}

function expectCredit(
  paths: readonly ConversionPath[],
  model: AttributionModel,
  expected: Record<string, number>,
  options: { halfLifeMs?: number } = {},
): void {
  const result = attribute(paths, model, options);
  for (const [channel, conversions] of Object.entries(expected)) {
    expect(result.byChannel[channel]?.conversions, `${model} ${channel}`).toBeCloseTo(conversions, 9);
  }
  const others = Object.keys(result.byChannel).filter((channel) => !(channel in expected));
  for (const channel of others) expect(result.byChannel[channel]!.conversions, `${model} ${channel}`).toBe(0);
}

/** Runs every check a case carries; returns how many ran so a case with none fails loudly. */
function checkCase(testCase: SmallCase): number {
  let checks = 0;
  const paths = (testCase.paths ?? testCase.journeys ?? (testCase.journey ? [testCase.journey] : [])).map(
    toPath,
  );
  if (testCase.markov_exact) {
    const result = markovAttribution(paths);
    const details = result.details as {
      removalEffect: Record<string, number>;
      conversionProbability: number;
    };
    for (const [channel, effect] of Object.entries(testCase.markov_exact.removal_effect)) {
      expect(details.removalEffect[channel], `RE ${channel}`).toBeCloseTo(effect, 9);
    }
    for (const [channel, conversions] of Object.entries(testCase.markov_exact.conversions)) {
      expect(
        Math.abs(result.byChannel[channel]!.conversions - conversions),
        `markov ${channel}`,
      ).toBeLessThan(1e-9);
    }
    checks += 1;
  }
  if (testCase.p_conversion !== undefined) {
    const details = markovAttribution(paths).details as { conversionProbability: number };
    expect(details.conversionProbability).toBeCloseTo(testCase.p_conversion, 9);
    checks += 1;
  }
  if (testCase.transition_matrix) {
    const matrix = markovAttribution(paths).details!['transitionMatrix'] as Record<
      string,
      Record<string, number>
    >;
    for (const [from, row] of Object.entries(testCase.transition_matrix)) {
      expect(Object.keys(matrix[from]!).sort(), from).toEqual(Object.keys(row).sort());
      for (const [to, probability] of Object.entries(row))
        expect(matrix[from]![to]).toBeCloseTo(probability, 9);
    }
    checks += 1;
  }
  const heuristics = testCase.heuristics_channelattribution_2_2_4;
  if (heuristics) {
    expectCredit(paths, 'first-click', heuristics.first_touch);
    expectCredit(paths, 'last-click', heuristics.last_touch);
    expectCredit(paths, 'linear', heuristics.linear_touch);
    checks += 1;
  }
  const direct: [keyof SmallCase, AttributionModel][] = [
    ['last_click', 'last-click'],
    ['first_click', 'first-click'],
    ['linear', 'linear'],
    ['position_based_40_20_40', 'position-based'],
  ];
  for (const [key, model] of direct) {
    const expected = testCase[key] as Record<string, number> | undefined;
    if (expected === undefined) continue;
    const numeric = Object.fromEntries(
      Object.entries(expected).filter(([, value]) => typeof value === 'number'),
    );
    expectCredit(paths, model, numeric);
    checks += 1;
  }
  if (testCase.time_decay) {
    const halfLifeMs = testCase.id === 'dp6_time_decay' ? HOUR : 7 * DAY;
    expectCredit(paths, 'time-decay', testCase.time_decay, { halfLifeMs });
    checks += 1;
  }
  if (testCase.v && testCase.shapley) {
    const players = Object.keys(testCase.shapley);
    const values = shapleyValues(players, coalitionWorthFromTable(testCase.v));
    for (const [player, value] of Object.entries(testCase.shapley))
      expect(values[player]).toBeCloseTo(value, 9);
    checks += 1;
  }
  if (testCase.property === 'shapley_set_based == linear attribution over unique channels per path') {
    const demo: ConversionPath[] = [
      { channels: ['a', 'b', 'a', 'c'], conversions: 3, value: 30, nulls: 1 },
      { channels: ['b', 'b'], conversions: 2, value: 8, nulls: 0 },
      { channels: ['c', 'a'], conversions: 1, value: 5, nulls: 4 },
      { channels: ['d'], conversions: 0, value: 0, nulls: 2 },
    ];
    const general = shapleyValues(['a', 'b', 'c', 'd'], pathCoalitionWorth(demo));
    const simplified = attribute(demo, 'shapley');
    for (const channel of ['a', 'b', 'c', 'd']) {
      expect(simplified.byChannel[channel]!.conversions).toBeCloseTo(general[channel]!, 12);
    }
    expect(simplified.byChannel['a']!.conversions).toBeCloseTo(3 / 3 + 1 / 2, 12);
    checks += 1;
  }
  return checks;
}

describe.skipIf(!hasShared('vectors/attribution_small_cases.json'))(
  'attribution small published cases',
  () => {
    const file = JSON.parse(readFileSync(sharedPath('vectors/attribution_small_cases.json'), 'utf8')) as {
      cases: SmallCase[];
    };

    it.each(file.cases.map((testCase) => [testCase.id, testCase] as const))(
      'reproduces case %s exactly',
      (_id, testCase) => {
        expect(checkCase(testCase)).toBeGreaterThan(0);
      },
    );

    it('solves the pychattr A<->B loop exactly (A 2, B 1) where truncated simulation gives 2.0997/0.9003', () => {
      const paths = ['A>B>A>B>B>A', 'A>B>B>A>A', 'A>A'].map((path) => ({
        channels: path.split('>'),
        conversions: 1,
        value: 0,
        nulls: 0,
      }));
      const result = markovAttribution(paths);
      expect(Math.abs(result.byChannel['A']!.conversions - 2)).toBeLessThan(1e-9);
      expect(Math.abs(result.byChannel['B']!.conversions - 1)).toBeLessThan(1e-9);
    });
  },
);

describe('attribution models', () => {
  it('collapses consecutive repeats but keeps returns to a channel', () => {
    expect(collapseRepeats(['a', 'a', 'b', 'b', 'a'])).toEqual(['a', 'b', 'a']);
  });

  it('splits position-based credit 40/20/40 with the middle share spread over middle touches', () => {
    const result = attribute(
      [{ channels: ['a', 'b', 'c', 'd'], conversions: 10, value: 100, nulls: 0 }],
      'position-based',
    );
    expect(result.byChannel['a']).toEqual({ conversions: 4, value: 40 });
    expect(result.byChannel['b']!.conversions).toBeCloseTo(1, 12);
    expect(result.byChannel['c']!.value).toBeCloseTo(10, 12);
    expect(result.byChannel['d']).toEqual({ conversions: 4, value: 40 });
  });

  it('counts repeated touches in linear attribution (alpha > alpha > iota gives alpha 2/3)', () => {
    const result = attribute(
      [{ channels: ['alpha', 'alpha', 'iota'], conversions: 3, value: 6, nulls: 0 }],
      'linear',
    );
    expect(result.byChannel['alpha']!.conversions).toBeCloseTo(2, 12);
    expect(result.byChannel['alpha']!.value).toBeCloseTo(4, 12);
  });

  it('refuses time-decay on paths without touch times', () => {
    expect(() => attribute([{ channels: ['a'], conversions: 1, value: 0, nulls: 0 }], 'time-decay')).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });

  it('refuses a touch after the conversion and a non-positive half-life', () => {
    const late = {
      channels: ['a', 'b'],
      conversions: 1,
      value: 0,
      nulls: 0,
      touchTimes: [0, 10],
      conversionTime: 5,
    };
    expect(() => attribute([late], 'time-decay')).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
    expect(() => attribute([], 'time-decay', { halfLifeMs: 0 })).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
  });

  it('rejects paths without channels and negative counts', () => {
    expect(() => attribute([{ channels: [], conversions: 1, value: 0, nulls: 0 }], 'linear')).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
    expect(() => attribute([{ channels: ['a'], conversions: -1, value: 0, nulls: 0 }], 'markov')).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });

  it('attributes nothing and divides by nothing when no path converts', () => {
    const result = markovAttribution([{ channels: ['a', 'b'], conversions: 0, value: 0, nulls: 5 }]);
    expect(result.byChannel).toEqual({ a: { conversions: 0, value: 0 }, b: { conversions: 0, value: 0 } });
    expect(result.details!['conversionProbability']).toBe(0);
  });

  it('weights Markov value by removal effects of the value chain, or by conversion shares on request', () => {
    const paths: ConversionPath[] = [
      { channels: ['search'], conversions: 1, value: 90, nulls: 1 },
      { channels: ['email'], conversions: 1, value: 10, nulls: 1 },
    ];
    const weighted = markovAttribution(paths);
    expect(weighted.byChannel['search']!.conversions).toBeCloseTo(1, 12);
    expect(weighted.byChannel['search']!.value).toBeCloseTo(90, 9);
    const shared = markovAttribution(paths, { valueConvention: 'conversion-share' });
    expect(shared.byChannel['search']!.value).toBeCloseTo(50, 9);
  });

  it('keeps P(conversion) and attributes all conversions in a second-order chain', () => {
    const paths: ConversionPath[] = [
      { channels: ['a', 'b', 'c'], conversions: 2, value: 20, nulls: 1 },
      { channels: ['b', 'a', 'c'], conversions: 1, value: 5, nulls: 3 },
      { channels: ['c'], conversions: 0, value: 0, nulls: 2 },
    ];
    const first = markovAttribution(paths);
    const second = markovAttribution(paths, { order: 2 });
    expect(second.details!['conversionProbability']).toBeCloseTo(
      first.details!['conversionProbability'] as number,
      12,
    );
    const sum = Object.values(second.byChannel).reduce((total, credit) => total + credit.conversions, 0);
    expect(sum).toBeCloseTo(3, 12);
    expect(() => markovAttribution(paths, { order: 0 })).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
  });

  it('refuses a coalition table with a missing coalition', () => {
    const worth = coalitionWorthFromTable({ a: 1, b: 2 });
    expect(() => shapleyValues(['a', 'b'], worth)).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });
});

describe('path and journey readers', () => {
  it('reads ChannelAttribution path files with or without spaces around ">"', () => {
    const paths = parsePathFile(
      'path;total_conversions;total_conversion_value;total_null\na > b;2;3.5;1\nc>a;0;0;4\n',
    );
    expect(paths).toEqual([
      { channels: ['a', 'b'], conversions: 2, value: 3.5, nulls: 1 },
      { channels: ['c', 'a'], conversions: 0, value: 0, nulls: 4 },
    ]);
  });

  it.each([
    ['a > b;x;0;0', 'line 3: total_conversions'],
    ['a > > b;1;0;0', 'line 3: path "a > > b" has an empty channel name'],
    ['a;1;-2;0', 'line 3: total_conversion_value'],
    ['a;1;0', 'line 3: expected 4 fields'],
  ])('names the line of a bad path row %s', (row, message) => {
    const text = `path;total_conversions;total_conversion_value;total_null\nb;1;1;1\n${row}\n`;
    expect(() => parsePathFile(text, 'paths.csv')).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining(message) }),
    );
  });

  it('requires the path and total_conversions columns', () => {
    expect(() => parsePathFile('route;total_conversions\na;1\n')).toThrow(
      expect.objectContaining({
        code: 'VALIDATION_FAILED',
        message: expect.stringContaining('missing column(s) path'),
      }),
    );
  });

  it('groups journey rows by id, orders touches by time and splits at each conversion', () => {
    const text = [
      'journey_id,timestamp,channel,converted,value',
      'j1,2024-01-02T00:00:00Z,email,0,',
      'j1,2024-01-01T00:00:00Z,search,0,0',
      'j2,2024-01-01T12:00:00+02:00,social,1,250.5',
      'j1,2024-01-03T00:00:00Z,direct,1,100',
      'j1,2024-01-04T00:00:00Z,display,0,0',
    ].join('\n');
    expect(parseJourneyCsv(text)).toEqual([
      {
        channels: ['search', 'email', 'direct'],
        conversions: 1,
        value: 100,
        nulls: 0,
        touchTimes: [Date.UTC(2024, 0, 1), Date.UTC(2024, 0, 2), Date.UTC(2024, 0, 3)],
        conversionTime: Date.UTC(2024, 0, 3),
      },
      { channels: ['display'], conversions: 0, value: 0, nulls: 1, touchTimes: [Date.UTC(2024, 0, 4)] },
      {
        channels: ['social'],
        conversions: 1,
        value: 250.5,
        nulls: 0,
        touchTimes: [Date.UTC(2024, 0, 1, 10)],
        conversionTime: Date.UTC(2024, 0, 1, 10),
      },
    ]);
  });

  it.each([
    ['j1,2024-01-01 10:00,email,0,0', 'line 2: timestamp'],
    ['j1,2024-01-01T10:00:00Z,email,yes,0', 'line 2: converted must be 0 or 1'],
    ['j1,2024-01-01T10:00:00Z,email,0,12', 'line 2: value is set on a row that did not convert'],
    [',2024-01-01T10:00:00Z,email,0,0', 'line 2: journey_id is empty'],
  ])('names the line of a bad journey row %s', (row, message) => {
    const text = `journey_id,timestamp,channel,converted,value\n${row}\n`;
    expect(() => parseJourneyCsv(text)).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining(message) }),
    );
  });
});
