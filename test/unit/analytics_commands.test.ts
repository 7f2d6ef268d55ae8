// CLI front ends: `analyze clusters | abtest | ltv | compliance` called as plain functions with a fake io —
// outputs, JSON forms, exit codes (0 / 1 / 2, and 3 for non-compliant text) and clear error messages.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  analyzeAbtestCommand,
  analyzeClustersCommand,
  analyzeComplianceCommand,
  analyzeLtvCommand,
} from '../../spoke_marketing/analytics_commands.js';
import { captureIo } from '../helpers/cli_io.js';
import { hasShared, sharedPath } from '../helpers/shared_data.js';

let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'analytics-cli-'));
  const rows = ['name,x,y'];
  for (let index = 0; index < 40; index += 1) {
    const centre = index < 20 ? 0 : 10;
    rows.push(`p${index},${centre + (index % 5) * 0.1},${centre + Math.floor(index / 5) * 0.1}`);
  }
  rows.push('far,100,-100');
  await writeFile(join(workDir, 'points.csv'), `${rows.join('\n')}\n`);
  await writeFile(join(workDir, 'bad.csv'), 'x,y\n1,2\n3\n');
  await writeFile(join(workDir, 'words.csv'), 'a,b\nx,y\n');
  await writeFile(join(workDir, 'ad.txt'), 'Sunny two bedroom with family room and a great view.');
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

describe('analyze clusters', () => {
  it('prints one label per row, -1 for noise, using the numeric columns only', async () => {
    const io = captureIo(['--input', 'points.csv', '--min-cluster-size', '5'], workDir);
    expect(await analyzeClustersCommand(io)).toBe(0);
    const labels = io.out.join('').trim().split('\n').map(Number);
    expect(labels).toHaveLength(41);
    expect(new Set(labels.slice(0, 20)).size).toBe(1);
    expect(new Set(labels.slice(20, 40)).size).toBe(1);
    expect(labels[0]).not.toBe(labels[20]);
    expect(labels[40]).toBe(-1);
    expect(io.err.join('')).toMatch(/2 cluster\(s\), 1 noise point\(s\) from 41 rows; features: x, y/);
  });

  it.skipIf(!hasShared('data/hdbscan_iris.csv'))(
    'reproduces the R iris clustering through the CLI (JSON)',
    async () => {
      const io = captureIo(
        ['--input', sharedPath('data/hdbscan_iris.csv'), '--min-cluster-size=5', '--json'],
        workDir,
      );
      expect(await analyzeClustersCommand(io)).toBe(0);
      const result = JSON.parse(io.out.join('')) as {
        clusterCount: number;
        noise: number;
        features: string[];
        labels: number[];
      };
      expect(result.clusterCount).toBe(2);
      expect(result.noise).toBe(0);
      expect(result.features).toEqual(['Sepal.Length', 'Sepal.Width', 'Petal.Length', 'Petal.Width']);
    },
  );

  it.each([
    [['--min-cluster-size', '5'], 2, /--input is required/],
    [['--input', 'points.csv', '--min-cluster-size', '1'], 2, /--min-cluster-size must be an integer ≥ 2/],
    [['--input', 'points.csv', '--min-cluster-size', '5', '--bogus'], 2, /unknown argument "--bogus"/],
    [['--input', 'missing.csv', '--min-cluster-size', '5'], 1, /ENOENT/],
    [['--input', 'bad.csv', '--min-cluster-size', '5'], 1, /VALIDATION_FAILED: bad\.csv line 3/],
    [['--input', 'words.csv', '--min-cluster-size', '2'], 1, /no numeric columns/],
    [['--input', 'points.csv', '--min-cluster-size', '5', '--columns', 'x,z'], 1, /no column "z"/],
  ] as const)('argv %j exits %i with a clear message', async (argv, code, message) => {
    const io = captureIo(argv, workDir);
    expect(await analyzeClustersCommand(io)).toBe(code);
    expect(io.err.join('')).toMatch(message);
  });
});

describe('analyze abtest', () => {
  const compare = [
    '--control-conversions',
    '200',
    '--control-visitors',
    '1000',
    '--variant-conversions',
    '250',
    '--variant-visitors',
    '1000',
  ];

  it('prints the vector values for 200/1000 vs 250/1000', async () => {
    const io = captureIo(compare, workDir);
    expect(await analyzeAbtestCommand(io)).toBe(0);
    const text = io.out.join('');
    expect(text).toContain('z (pooled) 2.677398');
    expect(text).toContain('p two-sided 0.00741965');
    expect(text).toContain('Yates 6.884588');
    expect(text).toContain('P(variant > control) = 0.996283');
    expect(text).not.toContain('WARNING');
  });

  it('warns about peeking when there were several looks and returns JSON on request', async () => {
    const io = captureIo([...compare, '--looks', '5', '--json'], workDir);
    expect(await analyzeAbtestCommand(io)).toBe(0);
    const result = JSON.parse(io.out.join('')) as {
      peeking: { actualFalsePositiveRate: number };
      sampleRatioMismatch: { mismatch: boolean };
    };
    expect(result.peeking.actualFalsePositiveRate).toBeCloseTo(0.142, 3);
    expect(result.sampleRatioMismatch.mismatch).toBe(false);
    const text = captureIo([...compare, '--interim'], workDir);
    await analyzeAbtestCommand(text);
    expect(text.out.join('')).toMatch(/WARNING: Interim look/);
  });

  it('flags a sample ratio mismatch', async () => {
    const io = captureIo(
      [
        '--control-conversions',
        '500',
        '--control-visitors',
        '50000',
        '--variant-conversions',
        '520',
        '--variant-visitors',
        '52000',
      ],
      workDir,
    );
    expect(await analyzeAbtestCommand(io)).toBe(0);
    expect(io.out.join('')).toMatch(/SAMPLE RATIO MISMATCH/);
  });

  it('plans a sample size with the formula named', async () => {
    const io = captureIo(['sample-size', '--baseline', '0.2', '--mde', '0.05'], workDir);
    expect(await analyzeAbtestCommand(io)).toBe(0);
    expect(io.out.join('')).toMatch(/^1031 visitors per arm \(2062 total; exact 1030\.2193\)/);
    expect(io.out.join('')).toMatch(/formula: Evan Miller/);
    const pooled = captureIo(
      ['sample-size', '--baseline', '0.2', '--mde', '0.05', '--formula', 'pooled', '--json'],
      workDir,
    );
    expect(await analyzeAbtestCommand(pooled)).toBe(0);
    expect((JSON.parse(pooled.out.join('')) as { perArmExact: number }).perArmExact).toBeCloseTo(1093.739, 3);
  });

  it.each([
    [['--control-conversions', '5'], 2, /--control-visitors is required/],
    [
      [
        '--control-conversions',
        '50',
        '--control-visitors',
        '10',
        '--variant-conversions',
        '1',
        '--variant-visitors',
        '10',
      ],
      1,
      /VALIDATION_FAILED/,
    ],
    [['sample-size', '--baseline', '2', '--mde', '0.1'], 2, /--baseline must be a rate/],
    [
      ['sample-size', '--baseline', '0.2', '--mde', '0.05', '--formula', 'magic'],
      2,
      /--formula must be one of/,
    ],
    [[...compare, '--looks', '0'], 2, /--looks must be an integer ≥ 1/],
  ] as const)('argv %j exits %i', async (argv, code, message) => {
    const io = captureIo(argv, workDir);
    expect(await analyzeAbtestCommand(io)).toBe(code);
    expect(io.err.join('')).toMatch(message);
  });
});

describe.skipIf(!hasShared('data/lifetimes_cdnow_customers_summary_with_transactions.csv'))(
  'analyze ltv',
  () => {
    it('fits BG/NBD and Gamma-Gamma on CDNOW and prints one row per customer with units', async () => {
      const io = captureIo(
        [
          '--input',
          sharedPath('data/lifetimes_cdnow_customers_summary_with_transactions.csv'),
          '--horizon',
          '1',
        ],
        workDir,
      );
      expect(await analyzeLtvCommand(io)).toBe(0);
      const lines = io.out.join('').trim().split('\n');
      expect(lines[0]).toMatch(
        /^BG\/NBD on 2357 customers \(time unit: week\): r 0\.2425\d+, alpha 4\.4135\d+ weeks, a 0\.7928\d+, b 2\.4257\d+/,
      );
      expect(lines[1]).toMatch(
        /^Gamma-Gamma on 946 repeat buyers: p 6\.2488\d+, q 3\.7445\d+, v 15\.4477\d+/,
      );
      expect(lines[2]).toBe(
        'id,p_alive,expected_purchases_next_1_weeks,expected_average_value,clv_12x4.345_weeks_discount_0.01',
      );
      expect(lines).toHaveLength(3 + 2357);
      expect(lines[3]).toMatch(/^1,0\.\d{6},0\.\d{6},24\.6586,\d+\.\d{4}$/);
    });

    it('works without monetary values and rejects bad rows with the line number', async () => {
      const noMoney = join(workDir, 'rfm.csv');
      await writeFile(noMoney, 'frequency,recency,T\n0,0,10\n2,5,10\n1,1,8\n0,0,9\n3,9,10\n');
      const io = captureIo(['--input', noMoney, '--json'], workDir);
      expect(await analyzeLtvCommand(io)).toBe(0);
      const result = JSON.parse(io.out.join('')) as { gammaGamma: null; customers: { clv: null }[] };
      expect(result.gammaGamma).toBeNull();
      expect(result.customers[0]!.clv).toBeNull();
      await writeFile(noMoney, 'frequency,recency,T\n1,12,10\n');
      const bad = captureIo(['--input', noMoney], workDir);
      expect(await analyzeLtvCommand(bad)).toBe(1);
      expect(bad.err.join('')).toMatch(/VALIDATION_FAILED: .*rfm\.csv line 2/);
    });
  },
);

describe('analyze compliance', () => {
  it('exits 0 for compliant text and 3 with the findings for non-compliant text', async () => {
    const clean = captureIo(['--input', 'ad.txt'], workDir);
    expect(await analyzeComplianceCommand(clean)).toBe(0);
    expect(clean.out.join('')).toMatch(/^COMPLIANT/);
    const flagged = captureIo(['--text', 'Adults only, no kids. Christian home.'], workDir);
    expect(await analyzeComplianceCommand(flagged)).toBe(3);
    const text = flagged.out.join('');
    expect(text).toMatch(/^NON-COMPLIANT/);
    expect(text).toContain('familial.exclusion [familial_status] "Adults only" at 0');
    expect(text).toContain('religion.people [religion] "Christian home"');
  });

  it('prints JSON and checks extra classes on request', async () => {
    const io = captureIo(
      ['--text', 'No Section 8', '--extra-classes', 'source_of_income', '--json'],
      workDir,
    );
    expect(await analyzeComplianceCommand(io)).toBe(3);
    const report = JSON.parse(io.out.join('')) as {
      compliant: boolean;
      findings: { protectedClass: string }[];
    };
    expect(report.compliant).toBe(false);
    expect(report.findings[0]!.protectedClass).toBe('source_of_income');
  });

  it.each([
    [[], 2, /exactly one of --text or --input/],
    [['--text', 'a', '--input', 'ad.txt'], 2, /exactly one/],
    [['--text', '   '], 2, /empty/],
    [['--text', 'x', '--extra-classes', 'height'], 2, /unknown class "height"/],
    [['--input', 'nope.txt'], 1, /ENOENT/],
  ] as const)('argv %j exits %i', async (argv, code, message) => {
    const io = captureIo(argv, workDir);
    expect(await analyzeComplianceCommand(io)).toBe(code);
    expect(io.err.join('')).toMatch(message);
  });
});
