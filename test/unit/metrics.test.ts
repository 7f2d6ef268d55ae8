// KPI formulas against hand-computed values (MARKETING.md §1), Google's ROI example, Wilson intervals, money
// formatting, and aggregation of the Meridian geo data against the published spend/revenue totals (§3.2).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../shared/csv.js';
import { parseCampaignRecords, toCampaignTable } from '../../spoke_marketing/campaign_rows.js';
import {
  accumulateWindows,
  cpa,
  cpc,
  cpl,
  cpm,
  ctr,
  cvr,
  metricsOfBlock,
  microsToDecimal,
  ratio,
  roas,
  roiAdSpendOnly,
  roiAdSpendPlusCogs,
  roiMarginAdjusted,
  rollUp,
  wilsonInterval,
} from '../../spoke_marketing/metrics.js';
import { computeCampaignRoi } from '../../spoke_marketing/roi.js';
import { hasShared, sharedPath } from '../helpers/shared_data.js';

describe('KPI formulas', () => {
  it.each([
    ['CTR', ctr(50, 1000), 0.05],
    ['CTR with zero impressions', ctr(0, 0), null],
    ['CPC', cpc(120, 60), 2],
    ['CPC with zero clicks', cpc(120, 0), null],
    ['CPM', cpm(25, 10_000), 2.5],
    ['CPM with zero impressions', cpm(25, 0), null],
    ['CVR (Google: 50 of 1,000 interactions)', cvr(50, 1000), 0.05],
    ['CVR with zero clicks', cvr(3, 0), null],
    ['CPL', cpl(300, 12), 25],
    ['CPL with zero leads', cpl(300, 0), null],
    ['CPA', cpa(500, 20), 25],
    ['CPA with zero conversions', cpa(500, 0), null],
    ['ROAS', roas(4200, 1000), 4.2],
    ['ROAS with zero spend', roas(4200, 0), null],
    ['ratio with a missing side', ratio(null, 3), null],
    ['ROI on ad spend only', roiAdSpendOnly(1500, 1000), 0.5],
    ['ROI on ad spend only with zero spend', roiAdSpendOnly(1500, 0), null],
    ['ROI margin-adjusted: (10,000 × 0.4 − 2,000) / 2,000', roiMarginAdjusted(10_000 * 0.4, 2000), 1],
    ['ROI margin-adjusted with zero spend', roiMarginAdjusted(100, 0), null],
  ])('%s', (_name, actual, expected) => {
    if (expected === null) expect(actual).toBeNull();
    else expect(actual).toBeCloseTo(expected, 12);
  });

  it("reproduces Google's ROI example: unit cost $100, price $200, 6 sold, ad cost $200 → 50 %", () => {
    const revenue = 6 * 200;
    const costOfGoods = 6 * 100;
    expect(roiAdSpendPlusCogs(revenue, costOfGoods, 200)).toBeCloseTo(0.5, 12);
  });

  it('never returns NaN or Infinity', () => {
    for (const value of [ctr(0, 0), cpc(0, 0), cpm(0, 0), roas(0, 0), roiAdSpendPlusCogs(0, 0, 0)]) {
      expect(value).toBeNull();
    }
  });
});

describe('Wilson interval', () => {
  it.each([
    // successes, trials, estimate, low, high (Wilson's closed form with z = 1.96, evaluated independently in Python)
    [50, 1000, 0.05, 0.03813, 0.065314],
    [0, 10, 0, 0, 0.27754],
    [10, 10, 1, 0.72246, 1],
  ])('%i of %i', (successes, trials, estimate, low, high) => {
    const interval = wilsonInterval(successes, trials)!;
    expect(interval.estimate).toBeCloseTo(estimate, 6);
    expect(interval.low).toBeCloseTo(low, 5);
    expect(interval.high).toBeCloseTo(high, 5);
  });

  it('is null without trials', () => {
    expect(wilsonInterval(0, 0)).toBeNull();
  });
});

describe('money formatting', () => {
  it.each([
    [0, '0.00'],
    [1_234_567_890, '1234.57'],
    [1_234_565_000, '1234.56'], // exactly half a cent rounds to even
    [1_234_575_000, '1234.58'],
    [10_000, '0.01'],
    [4_999, '0.00'],
    [-2_500_000, '-2.50'],
  ])('%i micros → %s', (micros, text) => {
    expect(microsToDecimal(micros)).toBe(text);
  });

  it('refuses totals beyond the exact range', () => {
    expect(() => microsToDecimal(2 ** 60)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});

describe('aggregation of a small table', () => {
  const rows = parseCampaignRecords([
    {
      campaign: 'a',
      channel: 'search',
      date: '2025-10-01',
      spend: '100.00',
      impressions: 1000,
      clicks: 50,
      leads: 10,
      conversions: 5,
      revenue: '400.00',
    },
    {
      campaign: 'a',
      channel: 'search',
      date: '2025-10-02',
      spend: '50.50',
      impressions: 1000,
      clicks: 30,
      leads: 5,
      conversions: 2,
      revenue: '150.25',
    },
    {
      campaign: 'b',
      channel: 'display',
      date: '2025-10-01',
      spend: '20.00',
      impressions: 8000,
      clicks: 0,
      leads: 0,
      conversions: 0,
      revenue: '0',
    },
  ]);
  const table = toCampaignTable(rows);
  const all = accumulateWindows(table, { fromDay: 0, toDay: 100_000 }, null);

  it('sums money exactly and derives every ratio by hand', () => {
    const overall = metricsOfBlock(rollUp(all, [0, 1], 0));
    expect(overall.spend).toBe('170.50');
    expect(overall.revenue).toBe('550.25');
    expect(overall.impressions).toBe(10_000);
    expect(overall.clicks).toBe(80);
    expect(overall.ctr).toBeCloseTo(80 / 10_000, 6);
    expect(overall.cpc).toBeCloseTo(170.5 / 80, 6);
    expect(overall.cpm).toBeCloseTo((170.5 / 10_000) * 1000, 6);
    expect(overall.cvr).toBeCloseTo(7 / 80, 6);
    expect(overall.cpl).toBeCloseTo(170.5 / 15, 6);
    expect(overall.cpa).toBeCloseTo(170.5 / 7, 6);
    expect(overall.roas).toBeCloseTo(550.25 / 170.5, 6);
    expect(overall.roi).toEqual({
      value: expect.closeTo((550.25 - 170.5) / 170.5, 6),
      basis: 'ad_spend_only',
      formula: '(revenue - spend) / spend',
    });
    expect(overall.funnel.steps.map((step) => step.rate)).toEqual([
      expect.closeTo(0.008, 6),
      expect.closeTo(15 / 80, 6),
      expect.closeTo(7 / 15, 6),
    ]);
  });

  it('gives null, not NaN, for a group whose denominators are zero', () => {
    const display = metricsOfBlock(rollUp(all, [1], 0));
    expect(display.cpc).toBeNull();
    expect(display.cvr).toBeNull();
    expect(display.cpa).toBeNull();
    expect(display.cpl).toBeNull();
    expect(display.roas).toBe(0);
    expect(display.roi.value).toBe(-1);
    expect(JSON.stringify(display)).not.toMatch(/NaN|Infinity/);
  });

  it('uses the cost-of-goods basis when every revenue row has it, and margin when each has either', () => {
    const withCogs = parseCampaignRecords([
      {
        campaign: 'g',
        channel: 'search',
        date: '2025-10-01',
        spend: '200',
        revenue: '1200',
        cost_of_goods: '600',
      },
    ]);
    const cogsRoi = metricsOfBlock(
      rollUp(accumulateWindows(toCampaignTable(withCogs), { fromDay: 0, toDay: 1e5 }, null), [0], 0),
    );
    expect(cogsRoi.roi).toMatchObject({ value: 0.5, basis: 'ad_spend_plus_cogs' });
    expect(cogsRoi.gross_profit).toBe('600.00');

    const mixed = parseCampaignRecords([
      {
        campaign: 'g',
        channel: 'search',
        date: '2025-10-01',
        spend: '200',
        revenue: '1200',
        cost_of_goods: '600',
      },
      { campaign: 'g', channel: 'search', date: '2025-10-02', spend: '100', revenue: '500', margin: '40%' },
    ]);
    const mixedRoi = metricsOfBlock(
      rollUp(accumulateWindows(toCampaignTable(mixed), { fromDay: 0, toDay: 1e5 }, null), [0], 0),
    );
    // gross profit 600 + 200 = 800; (800 − 300) / 300
    expect(mixedRoi.roi.basis).toBe('margin_adjusted');
    expect(mixedRoi.roi.value).toBeCloseTo(500 / 300, 6);
  });

  it('computes ratios only over rows that report both sides, and reports coverage', () => {
    const partial = parseCampaignRecords([
      { campaign: 'p', channel: 'email', date: '2025-10-01', spend: '10', impressions: 1000, clicks: 20 },
      { campaign: 'p', channel: 'email', date: '2025-10-02', spend: '30', clicks: 10 },
    ]);
    const block = metricsOfBlock(
      rollUp(accumulateWindows(toCampaignTable(partial), { fromDay: 0, toDay: 1e5 }, null), [0], 0),
    );
    expect(block.ctr).toBeCloseTo(20 / 1000, 6);
    expect(block.cpm).toBeCloseTo((10 / 1000) * 1000, 6);
    expect(block.cpc).toBeCloseTo(40 / 30, 6);
    expect(block.coverage).toMatchObject({ impressions: 0.5, clicks: 1, revenue: 0 });
    expect(block.revenue).toBeNull();
    expect(block.roas).toBeNull();
  });
});

/** Exact product of two non-negative decimal strings, as a decimal string. */
function multiplyDecimals(left: string, right: string): string {
  const scale = (text: string): [bigint, number] => {
    const [whole, fraction = ''] = text.split('.');
    return [BigInt(`${whole}${fraction}`), fraction.length];
  };
  const [a, aScale] = scale(left);
  const [b, bScale] = scale(right);
  const digits = (a * b).toString().padStart(aScale + bScale + 1, '0');
  const point = digits.length - (aScale + bScale);
  return `${digits.slice(0, point)}.${digits.slice(point)}`;
}

describe.skipIf(!hasShared('data/meridian_geo_all_channels.csv'))(
  'Meridian geo_all_channels aggregates',
  () => {
    it('reproduces the published spend per channel and the total revenue (MARKETING.md §3.2)', () => {
      const table = parseCsv(readFileSync(sharedPath('data/meridian_geo_all_channels.csv'), 'utf8'));
      const column = (name: string): number => table.header.indexOf(name);
      const records: Record<string, string>[] = [];
      // Meridian is wide: one row per geo-week with ChannelN_spend / ChannelN_impression columns, and one outcome
      // (conversions × revenue_per_conversion) not split by channel. Each channel becomes a row; the outcome is
      // an "unattributed" row with zero spend.
      for (const record of table.records) {
        const cell = (name: string): string => record.values[column(name)]!;
        for (let channel = 0; channel < 5; channel += 1) {
          records.push({
            campaign: `Channel${channel}`,
            channel: `Channel${channel}`,
            date: cell('time'),
            spend: cell(`Channel${channel}_spend`),
            impressions: cell(`Channel${channel}_impression`),
          });
        }
        records.push({
          campaign: 'outcome',
          channel: 'unattributed',
          date: cell('time'),
          spend: '0',
          revenue: multiplyDecimals(cell('conversions'), cell('revenue_per_conversion')),
        });
      }
      const { metrics } = computeCampaignRoi(parseCampaignRecords(records), 'all');
      const spendByChannel = Object.fromEntries(
        metrics.channels.map((channel) => [channel.channel, channel.spend]),
      );
      expect(spendByChannel).toEqual({
        Channel0: '40501713.08',
        Channel1: '31320298.20',
        Channel2: '12079349.34',
        Channel3: '87860358.25',
        Channel4: '47730683.48',
        unattributed: '0.00',
      });
      expect(metrics.overall.revenue).toBe('1318699437.74');
      expect(metrics.period).toMatchObject({ data_from: '2021-01-25', data_to: '2024-01-15' });
      // % of spend to 2 decimals as printed by Meridian
      const shares = metrics.channels
        .slice(0, 5)
        .map((channel) => Math.round(channel.share_of_spend! * 10_000) / 100);
      expect(shares).toEqual([18.45, 14.27, 5.5, 40.03, 21.75]);
    });
  },
);
