// Benchmark of campaign-ROI metrics: CSV parsing + validation, columnar conversion, and the aggregation hot path
// over 1,000,000 rows (BENCH_QUICK=1: 100,000), against a plain loop summing spend over the same columns.
// Run: npx tsx bench/roi.ts — the last line is one JSON object with units in its keys.
import { parseCampaignCsv, toCampaignTable, type CampaignTable } from '../spoke_marketing/campaign_rows.js';
import { computeCampaignRoi } from '../spoke_marketing/roi.js';
import { createRandom } from '../spoke_marketing/random.js';

const quick = process.env.BENCH_QUICK === '1';
const rowCount = quick ? 100_000 : 1_000_000;
// Parsing materialises one object per row plus the CSV text; 200k rows keep the memory modest on a shared box.
const parseRowCount = Math.min(rowCount, 200_000);
const runs = quick ? 3 : 5;

const CHANNELS = ['email', 'social', 'search', 'display'] as const;

function syntheticCsv(rows: number, seed: number): string {
  const random = createRandom(seed);
  const lines = [
    'campaign,channel,date,spend,impressions,clicks,leads,conversions,revenue,margin,new_customers',
  ];
  const firstDay = Date.UTC(2025, 6, 1) / 86_400_000;
  for (let index = 0; index < rows; index += 1) {
    const channel = CHANNELS[index % 4]!;
    const campaign = `${channel}_campaign_${(index >>> 2) % 10}`;
    const date = new Date((firstDay + ((index >>> 6) % 184)) * 86_400_000).toISOString().slice(0, 10);
    const impressions = 1000 + Math.floor(random.next() * 50_000);
    const clicks = Math.floor(impressions * (0.002 + random.next() * 0.05));
    const leads = Math.floor(clicks * random.next() * 0.15);
    const conversions = Math.floor(clicks * random.next() * 0.06);
    const spend = (clicks * (0.1 + random.next() * 2)).toFixed(2);
    const revenue = (conversions * (40 + random.next() * 80)).toFixed(2);
    const newCustomers = Math.floor(conversions * random.next());
    lines.push(
      `${campaign},${channel},${date},${spend},${impressions},${clicks},${leads},${conversions},${revenue},0.4,${newCustomers}`,
    );
  }
  return lines.join('\n');
}

/** Repeats a table's rows cyclically up to `rows` rows (same distribution, no per-row objects). */
function tile(table: CampaignTable, rows: number): CampaignTable {
  const repeat = <T extends Float64Array | Int32Array | Uint32Array>(
    column: T,
    make: (n: number) => T,
  ): T => {
    const out = make(rows);
    for (let offset = 0; offset < rows; offset += column.length) {
      out.set(column.subarray(0, Math.min(column.length, rows - offset)), offset);
    }
    return out;
  };
  const f64 = (column: Float64Array) => repeat(column, (n) => new Float64Array(n));
  return {
    ...table,
    length: rows,
    pair: repeat(table.pair, (n) => new Uint32Array(n)),
    fromDay: repeat(table.fromDay, (n) => new Int32Array(n)),
    toDay: repeat(table.toDay, (n) => new Int32Array(n)),
    spendMicros: f64(table.spendMicros),
    impressions: f64(table.impressions),
    clicks: f64(table.clicks),
    leads: f64(table.leads),
    conversions: f64(table.conversions),
    revenueMicros: f64(table.revenueMicros),
    margin: f64(table.margin),
    costOfGoodsMicros: f64(table.costOfGoodsMicros),
    newCustomers: f64(table.newCustomers),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function time(action: () => void): number {
  const start = performance.now();
  action();
  return performance.now() - start;
}

const csv = syntheticCsv(parseRowCount, 42);
let rows: ReturnType<typeof parseCampaignCsv> = [];
const parseMs = time(() => {
  rows = parseCampaignCsv(csv);
});
let small: CampaignTable | undefined;
const columnarMs = time(() => {
  small = toCampaignTable(rows);
});
rows = [];
const table = tile(small!, rowCount);

let checksum = 0;
const baselineSum = (): void => {
  const spend = table.spendMicros;
  let sum = 0;
  for (let i = 0; i < table.length; i += 1) sum += spend[i]!;
  checksum += sum;
};
const metrics = (): void => {
  const { metrics: result } = computeCampaignRoi(table, {
    label: '2025-Q4',
    from: '2025-10-01',
    to: '2025-12-31',
  });
  checksum += result.row_counts.analysed;
};
// Warm up both paths so the JIT has compiled them before timing.
baselineSum();
metrics();
const baselineTimes: number[] = [];
const metricsTimes: number[] = [];
for (let run = 0; run < runs; run += 1) {
  baselineTimes.push(time(baselineSum));
  metricsTimes.push(time(metrics));
}
const metricsMs = median(metricsTimes);
const baselineMs = median(baselineTimes);

const perSecond = (count: number, ms: number): number => Math.round((count / ms) * 1000);
console.log(`parse+validate ${parseRowCount} CSV rows: ${parseMs.toFixed(1)} ms`);
console.log(`columnar conversion of ${parseRowCount} rows: ${columnarMs.toFixed(1)} ms`);
console.log(
  `metrics (Q4 + Q3 windows, 160 campaign/channel pairs) over ${rowCount} rows: median ${metricsMs.toFixed(1)} ms of ${runs}`,
);
console.log(
  `baseline spend sum over ${rowCount} rows: median ${baselineMs.toFixed(2)} ms (checksum ${checksum > 0 ? 'ok' : 'zero'})`,
);
console.log(
  JSON.stringify({
    rows: rowCount,
    parse_rows: parseRowCount,
    parse_rows_per_s: perSecond(parseRowCount, parseMs),
    columnar_rows_per_s: perSecond(parseRowCount, columnarMs),
    metrics_rows_per_s: perSecond(rowCount, metricsMs),
    metrics_ms: Number(metricsMs.toFixed(2)),
    baseline_sum_rows_per_s: perSecond(rowCount, baselineMs),
    baseline_sum_ms: Number(baselineMs.toFixed(3)),
    runs,
    node: process.version,
  }),
);
