// Attribution on ChannelAttribution's PathData (10,000 paths, read in place from ../shared): totals preserved
// by every model, the exact P(conversion), and ChannelAttribution's counting conventions.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ATTRIBUTION_MODELS,
  attribute,
  markovAttribution,
  parsePathFile,
  type ConversionPath,
} from '../../spoke_marketing/attribution.js';
import { hasShared, sharedPath } from '../helpers/shared_data.js';

const PATH_DATA = 'data/channelattribution_PathData.csv';

describe.skipIf(!hasShared(PATH_DATA))('attribution on ChannelAttribution PathData', () => {
  let paths: ConversionPath[] = [];

  beforeAll(() => {
    paths = parsePathFile(readFileSync(sharedPath(PATH_DATA), 'utf8'), PATH_DATA);
  });

  it('reads the dataset facts: 10,000 paths, 12 channels, Σconv 19,785, Σvalue 74,802.97, Σnull 68,602', () => {
    expect(paths).toHaveLength(10_000);
    expect(new Set(paths.flatMap((path) => path.channels)).size).toBe(12);
    expect(paths.reduce((sum, path) => sum + path.conversions, 0)).toBe(19_785);
    expect(paths.reduce((sum, path) => sum + path.value, 0)).toBeCloseTo(74_802.97, 2);
    expect(paths.reduce((sum, path) => sum + path.nulls, 0)).toBe(68_602);
  });

  const models = ATTRIBUTION_MODELS.filter((model) => model !== 'time-decay');
  it.each(models)('%s attributes exactly Σ conversions and Σ value', (model) => {
    const result = attribute(paths, model);
    const credits = Object.values(result.byChannel);
    expect(credits).toHaveLength(12);
    expect(credits.reduce((sum, credit) => sum + credit.conversions, 0)).toBeCloseTo(19_785, 6);
    expect(credits.reduce((sum, credit) => sum + credit.value, 0)).toBeCloseTo(74_802.97, 2);
    expect(result.totalConversions).toBe(19_785);
    expect(credits.every((credit) => credit.conversions >= 0 && credit.value >= 0)).toBe(true);
  });

  it('refuses time-decay on PathData, which has no touch timestamps, instead of inventing them', () => {
    expect(() => attribute(paths, 'time-decay')).toThrow(
      expect.objectContaining({
        code: 'VALIDATION_FAILED',
        message: expect.stringContaining('touch timestamps'),
      }),
    );
  });

  it('solves P(conversion) from (start) exactly: 0.2238451356 = 19,785 / 88,387', () => {
    const details = markovAttribution(paths).details!;
    expect(details['conversionProbability']).toBeCloseTo(0.2238451356, 10);
    expect(details['conversionProbability']).toBeCloseTo(19_785 / 88_387, 12);
    expect(details['states']).toBe(13);
  });

  it('keeps P(conversion) in a second-order chain and still attributes every conversion', () => {
    const result = markovAttribution(paths, { order: 2 });
    expect(result.details!['conversionProbability']).toBeCloseTo(0.2238451356, 10);
    const sum = Object.values(result.byChannel).reduce((total, credit) => total + credit.conversions, 0);
    expect(sum).toBeCloseTo(19_785, 6);
  });

  it('counts repeated touches in linear like ChannelAttribution (per touch, not per unique channel)', () => {
    const linear = attribute(paths, 'linear');
    let alpha = 0;
    for (const path of paths) {
      const touches = path.channels.filter((channel) => channel === 'alpha').length;
      alpha += (touches / path.channels.length) * path.conversions;
    }
    expect(linear.byChannel['alpha']!.conversions).toBeCloseTo(alpha, 9);
    const shapley = attribute(paths, 'shapley');
    expect(Math.abs(shapley.byChannel['alpha']!.conversions - alpha)).toBeGreaterThan(1);
  });

  it('gives last-click the conversions of paths ending in each channel', () => {
    const lastClick = attribute(paths, 'last-click');
    const endingInIota = paths
      .filter((path) => path.channels.at(-1) === 'iota')
      .reduce((sum, path) => sum + path.conversions, 0);
    expect(lastClick.byChannel['iota']!.conversions).toBe(endingInIota);
  });
});
