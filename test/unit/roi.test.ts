// Campaign-ROI aggregation: period choice, change against the previous period, row counts, and the confidence
// score's components and weights.
import { describe, expect, it } from 'vitest';
import { parseCampaignRecords, parsePeriodLabel } from '../../spoke_marketing/campaign_rows.js';
import { CONFIDENCE_WEIGHTS, computeCampaignRoi, computeConfidence } from '../../spoke_marketing/roi.js';

const rows = parseCampaignRecords([
  {
    campaign: 'c1',
    channel: 'search',
    date: '2025-09-15',
    spend: '100',
    impressions: 1000,
    clicks: 100,
    leads: 20,
    conversions: 10,
    revenue: '300',
  },
  {
    campaign: 'c1',
    channel: 'search',
    date: '2025-11-15',
    spend: '150',
    impressions: 1500,
    clicks: 120,
    leads: 30,
    conversions: 15,
    revenue: '600',
  },
  {
    campaign: 'c2',
    channel: 'display',
    period: '2025-12',
    spend: '50',
    impressions: 9000,
    clicks: 20,
    leads: 1,
    conversions: 0,
    revenue: '0',
  },
  {
    campaign: 'c2',
    channel: 'display',
    period: '2025-Q2',
    spend: '70',
    impressions: 9000,
    clicks: 20,
    leads: 1,
    conversions: 1,
    revenue: '30',
  },
]);

describe('computeCampaignRoi', () => {
  it('analyses the latest quarter and compares it with the one before', () => {
    const { metrics } = computeCampaignRoi(rows);
    expect(metrics.period).toEqual({
      label: '2025-Q4',
      from: '2025-10-01',
      to: '2025-12-31',
      data_from: '2025-11-15',
      data_to: '2025-12-31',
    });
    expect(metrics.previous_period).toMatchObject({
      label: '2025-Q3',
      data_from: '2025-09-15',
      data_to: '2025-09-15',
    });
    expect(metrics.row_counts).toEqual({ total: 4, analysed: 2, previous: 1, outside: 1 });
    expect(metrics.overall.spend).toBe('200.00');
    const change = metrics.overall.change_vs_previous!;
    expect(change.revenue).toEqual({ previous: 300, current: 600, change: 300, relative_change: 1 });
    expect(change.roas).toMatchObject({ previous: 3, current: 3, change: 0, relative_change: 0 });
    expect(metrics.channels.find((channel) => channel.channel === 'display')!.change_vs_previous).toBeNull();
    expect(
      metrics.channels.map((channel) => [channel.channel, channel.share_of_spend, channel.share_of_revenue]),
    ).toEqual([
      ['search', 0.75, 1],
      ['display', 0.25, 0],
    ]);
  });

  it('has no previous period when the data holds none', () => {
    const { metrics } = computeCampaignRoi(rows, parsePeriodLabel('2025-Q2')!);
    expect(metrics.previous_period).toBeNull();
    expect(metrics.overall.change_vs_previous).toBeNull();
  });

  it('analyses every row with "all"', () => {
    const { metrics } = computeCampaignRoi(rows, 'all');
    expect(metrics.period).toMatchObject({ from: '2025-04-01', to: '2025-12-31' });
    expect(metrics.row_counts.analysed).toBe(4);
    expect(metrics.overall.spend).toBe('370.00');
  });

  it.each([['a period without rows', parsePeriodLabel('2024-Q4')!]])(
    'refuses %s with VALIDATION_FAILED naming the period',
    (_name, period) => {
      expect(() => computeCampaignRoi(rows, period)).toThrow(
        expect.objectContaining({
          code: 'VALIDATION_FAILED',
          details: { field: 'period', value: '2024-Q4' },
        }),
      );
    },
  );

  it('refuses an empty input', () => {
    expect(() => computeCampaignRoi([])).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});

describe('computeConfidence', () => {
  it('combines sample size, completeness and grounding with the documented weights', () => {
    const computation = computeCampaignRoi(rows);
    const withNarrative = computeConfidence(computation, { groundedShare: 0.5 });
    const { sample_size: sample, completeness } = withNarrative.components;
    expect(withNarrative.weights).toEqual(CONFIDENCE_WEIGHTS);
    expect(withNarrative.score).toBeCloseTo(0.5 * sample + 0.3 * completeness + 0.2 * 0.5, 3);
    // No narrative: grounding is neutral, its weight spread over the other two.
    const without = computeConfidence(computation, { groundedShare: null });
    expect(without.components.grounding).toBeNull();
    expect(without.score).toBeCloseTo((0.5 * sample + 0.3 * completeness) / 0.8, 3);
  });

  it('scores sample size from the Wilson half-width of CVR, spend-weighted (zero conversions → 0)', () => {
    const computation = computeCampaignRoi(rows);
    // search: 15 of 120 clicks; display: 0 of 20 → precision 0. Weights 150 and 50 (in micro-units + 1).
    const p = 15 / 120;
    const z = 1.96;
    const half = (z * Math.sqrt((p * (1 - p)) / 120 + (z * z) / (4 * 120 * 120))) / (1 + (z * z) / 120);
    const expected = ((1 - half / p) * 150) / 200;
    expect(computeConfidence(computation, { groundedShare: 1 }).components.sample_size).toBeCloseTo(
      expected,
      3,
    );
  });

  it('lowers completeness when measured and optional fields are missing', () => {
    const sparse = parseCampaignRecords([
      { campaign: 'a', channel: 'x', date: '2025-10-01', spend: '10', clicks: 5 },
    ]);
    const { components } = computeConfidence(computeCampaignRoi(sparse), { groundedShare: null });
    expect(components.completeness).toBeCloseTo(0.8 * (1 / 5), 6);
    expect(components.sample_size).toBe(0);
  });
});
