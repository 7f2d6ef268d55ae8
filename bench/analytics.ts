// Benchmark of the marketing analytics: exact Markov attribution on ChannelAttribution's PathData, our
// HDBSCAN on 2,000 and 8,000 seeded blob points, and — where R's dbscan is installed — the same clustering
// timed by R in the same run and compared by ARI. Baselines in the same run: a linear scan over the paths
// (touch counting) and one pass over all point pairs (the distance work HDBSCAN cannot avoid).
// Run: npx tsx bench/analytics.ts (BENCH_QUICK=1: 500/2,000 points, one run) — the last line is one JSON
// object with units in its keys.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { markovAttribution, parsePathFile, type ConversionPath } from '../spoke_marketing/attribution.js';
import { adjustedRandIndex, hdbscan } from '../spoke_marketing/hdbscan.js';
import { createRandom } from '../spoke_marketing/random.js';

const run = promisify(execFile);
const quick = process.env.BENCH_QUICK === '1';
const runs = quick ? 1 : 3;
const sizes = quick ? [500, 2000] : [2000, 8000];
/** R's reference timing in the notes used minPts = 25 on 8,000 points; R's minPts sets both parameters. */
const MIN_POINTS = 25;
const pathDataFile = resolve(
  import.meta.dirname,
  '..',
  '..',
  'shared',
  'data',
  'channelattribution_PathData.csv',
);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function timeMs(action: () => void): number {
  const start = performance.now();
  action();
  return performance.now() - start;
}

function round(value: number, digits = 1): number {
  return Number(value.toFixed(digits));
}

/** Seeded 2-D Gaussian blobs (six centres, 5 % uniform background noise). */
function blobPoints(count: number, seed: number): number[][] {
  const random = createRandom(seed);
  const centres = [
    [0, 0],
    [8, 1],
    [3, 9],
    [12, 10],
    [-6, 7],
    [5, -8],
  ];
  const points: number[][] = [];
  for (let index = 0; index < count; index += 1) {
    if (index % 20 === 19) {
      points.push([random.next() * 30 - 12, random.next() * 30 - 12]);
      continue;
    }
    const [x, y] = centres[index % centres.length]!;
    const spread = 0.6 + (index % 3) * 0.3;
    points.push([x! + random.normal() * spread, y! + random.normal() * spread]);
  }
  return points;
}

/** Baseline: visit every pair once and compute its Euclidean distance. */
function pairwiseDistancePass(points: readonly number[][]): number {
  let checksum = 0;
  for (let a = 0; a < points.length; a += 1) {
    const [ax, ay] = points[a]!;
    for (let b = a + 1; b < points.length; b += 1) {
      const [bx, by] = points[b]!;
      checksum += Math.sqrt((ax! - bx!) ** 2 + (ay! - by!) ** 2);
    }
  }
  return checksum;
}

/** Baseline: one linear scan counting touches per channel. */
function countTouches(paths: readonly ConversionPath[]): number {
  const counts = new Map<string, number>();
  for (const path of paths)
    for (const channel of path.channels) counts.set(channel, (counts.get(channel) ?? 0) + path.conversions);
  return counts.size;
}

async function rAvailable(): Promise<boolean> {
  try {
    await run(
      'Rscript',
      ['-e', 'suppressMessages(library(dbscan)); cat(as.character(packageVersion("dbscan")))'],
      { timeout: 60_000 },
    );
    return true;
  } catch {
    return false;
  }
}

/** Runs R dbscan::hdbscan on the points; returns R's elapsed time (measured inside R) and its labels. */
async function runR(
  points: readonly number[][],
  directory: string,
): Promise<{ elapsedMs: number; labels: number[] }> {
  const input = join(directory, `points_${points.length}.csv`);
  const output = join(directory, `labels_${points.length}.csv`);
  await writeFile(
    input,
    `x,y\n${points.map(([x, y]) => `${x!.toPrecision(17)},${y!.toPrecision(17)}`).join('\n')}\n`,
  );
  const script = [
    'suppressMessages(library(dbscan))',
    `x <- as.matrix(read.csv("${input}"))`,
    `elapsed <- system.time(h <- hdbscan(x, minPts = ${MIN_POINTS}))[["elapsed"]]`,
    `write.csv(data.frame(cluster = h$cluster), "${output}", row.names = FALSE)`,
    'cat(elapsed)',
  ].join('; ');
  const { stdout } = await run('Rscript', ['-e', script], { timeout: 600_000 });
  const labels = (await readFile(output, 'utf8'))
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => Number(line) - 1);
  return { elapsedMs: Number(stdout.trim()) * 1000, labels };
}

async function main(): Promise<void> {
  const result: Record<string, number | string | null> = {};

  if (existsSync(pathDataFile)) {
    const text = readFileSync(pathDataFile, 'utf8');
    let paths: ConversionPath[] = [];
    result.pathdata_parse_ms = round(
      median(Array.from({ length: runs }, () => timeMs(() => (paths = parsePathFile(text, 'PathData'))))),
    );
    result.pathdata_paths = paths.length;
    result.baseline_touch_scan_pathdata_ms = round(
      median(Array.from({ length: runs }, () => timeMs(() => countTouches(paths)))),
      2,
    );
    let conversionProbability: unknown = null;
    result.markov_pathdata_ms = round(
      median(
        Array.from({ length: runs }, () =>
          timeMs(() => {
            conversionProbability = markovAttribution(paths).details?.['conversionProbability'] ?? null;
          }),
        ),
      ),
    );
    result.markov_conversion_probability =
      typeof conversionProbability === 'number' ? round(conversionProbability, 10) : null;
  } else {
    process.stderr.write(`skipping Markov: ${pathDataFile} is absent\n`);
    result.markov_pathdata_ms = null;
  }

  const withR = await rAvailable();
  const directory = await mkdtemp(join(tmpdir(), 'bench-analytics-'));
  try {
    for (const size of sizes) {
      const points = blobPoints(size, 20_240 + size);
      result[`baseline_pairwise_distances_${size}_ms`] = round(
        median(Array.from({ length: runs }, () => timeMs(() => pairwiseDistancePass(points)))),
      );
      let labels: Int32Array = new Int32Array(0);
      let clusters = 0;
      result[`hdbscan_${size}_ms`] = round(
        median(
          Array.from({ length: runs }, () =>
            timeMs(() => {
              const clustering = hdbscan(points, { minClusterSize: MIN_POINTS });
              labels = clustering.labels;
              clusters = clustering.clusterCount;
            }),
          ),
        ),
      );
      result[`hdbscan_${size}_clusters`] = clusters;
      if (withR) {
        const reference = await runR(points, directory);
        result[`r_dbscan_${size}_ms`] = round(reference.elapsedMs);
        result[`ari_vs_r_${size}`] = round(adjustedRandIndex(labels, reference.labels), 6);
      } else {
        result[`r_dbscan_${size}_ms`] = null;
        result[`ari_vs_r_${size}`] = null;
      }
      process.stderr.write(`hdbscan ${size}: ${result[`hdbscan_${size}_ms`]} ms, ${clusters} clusters\n`);
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  result.r_dbscan = withR ? 'Rscript + dbscan' : 'not installed';
  result.runs = runs;
  result.quick = quick ? 1 : 0;
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
