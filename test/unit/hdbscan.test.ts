// HDBSCAN against R dbscan 1.1-11 reference labels (iris), known structure (moons, three blobs),
// invariants of labels/probabilities, the adjusted Rand index, and input validation.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../shared/csv.js';
import { adjustedRandIndex, hdbscan } from '../../spoke_marketing/hdbscan.js';
import { createRandom } from '../../spoke_marketing/random.js';
import { hasShared, sharedPath } from '../helpers/shared_data.js';

function readNumericColumns(relative: string, columns: number): number[][] {
  const table = parseCsv(readFileSync(sharedPath(relative), 'utf8'), { source: relative });
  return table.records.map((record) => record.values.slice(0, columns).map(Number));
}

function clusterSizes(labels: Int32Array): number[] {
  const sizes = new Map<number, number>();
  for (const label of labels) if (label >= 0) sizes.set(label, (sizes.get(label) ?? 0) + 1);
  return [...sizes.values()].sort((a, b) => a - b);
}

describe.skipIf(!hasShared('data/hdbscan_iris_labels_R_dbscan_1.1-11.csv'))(
  'hdbscan on iris vs R dbscan',
  () => {
    const points = readNumericColumns('data/hdbscan_iris.csv', 4);
    const reference = parseCsv(
      readFileSync(sharedPath('data/hdbscan_iris_labels_R_dbscan_1.1-11.csv'), 'utf8'),
    );

    it.each([
      { minPts: 5, column: 1 },
      { minPts: 10, column: 2 },
    ])('reproduces the R labels for minPts $minPts (ARI ≥ 0.99, same noise set)', ({ minPts, column }) => {
      // R: 0 = noise, clusters 1…k; ours: −1 = noise, clusters 0…k−1.
      const rLabels = reference.records.map((record) => Number(record.values[column]) - 1);
      const result = hdbscan(points, { minClusterSize: minPts });
      expect(result.labels).toHaveLength(150);
      expect(adjustedRandIndex(result.labels, rLabels)).toBeGreaterThanOrEqual(0.99);
      const ourNoise = [...result.labels.keys()].filter((index) => result.labels[index]! < 0);
      const rNoise = rLabels.flatMap((label, index) => (label < 0 ? [index] : []));
      expect(ourNoise).toEqual(rNoise);
      expect(clusterSizes(result.labels)).toEqual([50, 100]);
    });
  },
);

describe.skipIf(!hasShared('data/hdbscan_moons.csv'))('hdbscan on the moons data', () => {
  const points = readNumericColumns('data/hdbscan_moons.csv', 2);

  it('finds the three groups R documents for minPts 5 (25, 25, 50; no noise)', () => {
    const result = hdbscan(points, { minClusterSize: 5 });
    expect(result.clusterCount).toBe(3);
    expect(clusterSizes(result.labels)).toEqual([25, 25, 50]);
    expect(result.labels.every((label) => label >= 0)).toBe(true);
  });

  it('keeps the two 25-point groups apart and splits the large arc when minPts is 10 (as R does)', () => {
    // R dbscan 1.1-11, hdbscan(moons, minPts = 10): clusters of 25, 25, 13, 11 and 26 noise points.
    const result = hdbscan(points, { minClusterSize: 10 });
    expect(clusterSizes(result.labels)).toEqual([11, 13, 25, 25]);
    expect(result.labels.filter((label) => label < 0)).toHaveLength(26);
  });
});

describe.skipIf(!hasShared('data/hdbscan_blobs3.csv'))('hdbscan on three Gaussian blobs', () => {
  const table = parseCsv(readFileSync(sharedPath('data/hdbscan_blobs3.csv'), 'utf8'));
  const points = table.records.map((record) => [Number(record.values[0]), Number(record.values[1])]);
  const truth = table.records.map((record) => Number(record.values[2]));

  it.each([5, 10, 15])(
    'recovers the generating blobs with minClusterSize %i (ARI ≥ 0.95)',
    (minClusterSize) => {
      const result = hdbscan(points, { minClusterSize });
      expect(result.clusterCount).toBe(3);
      expect(adjustedRandIndex(result.labels, truth)).toBeGreaterThanOrEqual(0.95);
    },
  );

  it('leaf selection also finds three clusters on well-separated blobs', () => {
    const result = hdbscan(points, { minClusterSize: 15, method: 'leaf' });
    expect(result.clusterCount).toBeGreaterThanOrEqual(3);
    expect(adjustedRandIndex(result.labels, truth)).toBeGreaterThan(0.8);
  });
});

describe('hdbscan invariants', () => {
  const random = createRandom(42);
  const points: number[][] = [];
  for (let index = 0; index < 300; index += 1) {
    const centre = index % 3;
    points.push([centre * 6 + random.normal(), (centre === 1 ? 5 : 0) + random.normal()]);
  }
  for (let index = 0; index < 15; index += 1) points.push([random.next() * 40 - 10, random.next() * 40 - 10]);

  it('labels every point, numbers clusters 0…k−1, and gives noise probability 0', () => {
    const result = hdbscan(points, { minClusterSize: 10 });
    expect(result.labels).toHaveLength(points.length);
    const used = new Set(result.labels);
    used.delete(-1);
    expect([...used].sort((a, b) => a - b)).toEqual([...Array(result.clusterCount).keys()]);
    for (let index = 0; index < points.length; index += 1) {
      const probability = result.probabilities[index]!;
      if (result.labels[index]! < 0) expect(probability).toBe(0);
      else {
        expect(probability).toBeGreaterThan(0);
        expect(probability).toBeLessThanOrEqual(1);
      }
    }
    expect(result.clusterCount).toBe(3);
    expect(result.labels.slice(300).filter((label) => label < 0).length).toBeGreaterThan(5);
  });

  it('is deterministic and accepts Float64Array rows', () => {
    const first = hdbscan(points, { minClusterSize: 10, minSamples: 5 });
    const second = hdbscan(
      points.map((point) => Float64Array.from(point)),
      { minClusterSize: 10, minSamples: 5 },
    );
    expect(Array.from(second.labels)).toEqual(Array.from(first.labels));
    expect(Array.from(second.probabilities)).toEqual(Array.from(first.probabilities));
  });

  it('is invariant to translation and to a common scale of all coordinates', () => {
    const base = hdbscan(points, { minClusterSize: 10 });
    const moved = hdbscan(
      points.map(([x, y]) => [x! * 3 + 100, y! * 3 - 50]),
      { minClusterSize: 10 },
    );
    expect(adjustedRandIndex(base.labels, moved.labels)).toBe(1);
  });

  it('returns all noise when no split reaches minClusterSize, and handles tiny inputs', () => {
    expect(hdbscan([], { minClusterSize: 5 }).clusterCount).toBe(0);
    expect(Array.from(hdbscan([[1, 2]], { minClusterSize: 2, minSamples: 1 }).labels)).toEqual([-1]);
    const single = hdbscan(points.slice(0, 20), { minClusterSize: 15 });
    expect(single.clusterCount).toBe(0);
    expect(single.labels.every((label) => label === -1)).toBe(true);
  });

  it('treats duplicate points without producing NaN', () => {
    const duplicated = [...Array(12).fill([0, 0]), ...Array(12).fill([5, 5])] as number[][];
    const result = hdbscan(duplicated, { minClusterSize: 5, minSamples: 3 });
    expect(result.clusterCount).toBe(2);
    expect(Array.from(result.probabilities).every((value) => Number.isFinite(value))).toBe(true);
  });

  it.each([
    [{ minClusterSize: 1 }, 'minClusterSize'],
    [{ minClusterSize: 2.5 }, 'minClusterSize'],
    [{ minClusterSize: 5, minSamples: 0 }, 'minSamples'],
    [{ minClusterSize: 5, minSamples: 1000 }, 'exceeds'],
  ])('rejects options %j with VALIDATION_FAILED', (options, message) => {
    expect(() => hdbscan(points, options)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => hdbscan(points, options)).toThrow(message);
  });

  it('rejects ragged and non-finite points', () => {
    expect(() => hdbscan([[1, 2], [3]], { minClusterSize: 2, minSamples: 1 })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
    expect(() =>
      hdbscan(
        [
          [1, NaN],
          [3, 4],
        ],
        { minClusterSize: 2, minSamples: 1 },
      ),
    ).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});

describe('adjustedRandIndex', () => {
  it('is 1 for identical partitions up to renaming and symmetric', () => {
    expect(adjustedRandIndex([0, 0, 1, 1, 2], [5, 5, 7, 7, -1])).toBe(1);
    const a = [0, 0, 1, 1, 1, 2, 2];
    const b = [0, 1, 1, 1, 2, 2, 2];
    expect(adjustedRandIndex(a, b)).toBeCloseTo(adjustedRandIndex(b, a), 15);
  });

  it('matches the value sklearn.metrics.adjusted_rand_score gives for a textbook case', () => {
    // adjusted_rand_score([0, 0, 1, 1], [0, 0, 1, 2]) = 0.5714285714285715
    expect(adjustedRandIndex([0, 0, 1, 1], [0, 0, 1, 2])).toBeCloseTo(0.5714285714285715, 14);
    // adjusted_rand_score([0, 0, 1, 2], [0, 0, 1, 1]) is the same; a partition against all-singletons is 0.
    expect(adjustedRandIndex([0, 0, 0, 0], [0, 1, 2, 3])).toBe(0);
  });

  it('rejects labelings of different lengths', () => {
    expect(() => adjustedRandIndex([0, 1], [0])).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });
});
