// The sample Q4 campaign generator: deterministic per seed, valid under the row validator, and plausible
// (channel-typical CTR/CVR/CPC, Q3 present as the previous period, a Q4 lift).
import { describe, expect, it } from 'vitest';
import { parseCampaignCsv } from '../../spoke_marketing/campaign_rows.js';
import { computeCampaignRoi } from '../../spoke_marketing/roi.js';
import { SAMPLE_CSV_HEADER, generateSampleCampaignCsv } from '../../spoke_marketing/sample_data.js';

describe('generateSampleCampaignCsv', () => {
  const csv = generateSampleCampaignCsv({ seed: 7, year: 2025 });

  it('is deterministic for a seed and differs across seeds', () => {
    expect(generateSampleCampaignCsv({ seed: 7, year: 2025 })).toBe(csv);
    expect(generateSampleCampaignCsv({ seed: 8, year: 2025 })).not.toBe(csv);
  });

  it('has daily rows for 12 campaigns over Q3 and Q4 that pass validation', () => {
    expect(csv.split('\n')[0]).toBe(SAMPLE_CSV_HEADER.join(','));
    const rows = parseCampaignCsv(csv);
    expect(rows).toHaveLength(12 * 184);
    expect(new Set(rows.map((row) => row.channel))).toEqual(
      new Set(['email', 'social', 'search', 'display']),
    );
    expect(rows[0]!.period.from).toBe('2025-07-01');
    expect(rows.at(-1)!.period.to).toBe('2025-12-31');
  });

  it.each([
    // channel, CTR range, CVR range, CPC range
    ['email', [0.015, 0.04], [0.025, 0.06], [0.08, 0.2]],
    ['social', [0.006, 0.02], [0.01, 0.03], [0.6, 1.3]],
    ['search', [0.03, 0.07], [0.03, 0.07], [1.2, 2.3]],
    ['display', [0.002, 0.007], [0.005, 0.015], [0.4, 0.8]],
  ])('gives %s plausible rates', (channel, ctrRange, cvrRange, cpcRange) => {
    const { metrics } = computeCampaignRoi(parseCampaignCsv(csv));
    const found = metrics.channels.find((item) => item.channel === channel)!;
    expect(found.ctr).toBeGreaterThan(ctrRange[0]!);
    expect(found.ctr).toBeLessThan(ctrRange[1]!);
    expect(found.cvr).toBeGreaterThan(cvrRange[0]!);
    expect(found.cvr).toBeLessThan(cvrRange[1]!);
    expect(found.cpc).toBeGreaterThan(cpcRange[0]!);
    expect(found.cpc).toBeLessThan(cpcRange[1]!);
  });

  it('defaults to the latest quarter, compares with Q3 and shows the holiday lift', () => {
    const { metrics } = computeCampaignRoi(parseCampaignCsv(csv));
    expect(metrics.period.label).toBe('2025-Q4');
    expect(metrics.previous_period?.label).toBe('2025-Q3');
    expect(metrics.overall.change_vs_previous!.revenue.relative_change).toBeGreaterThan(0.1);
    expect(metrics.overall.roi.basis).toBe('margin_adjusted');
    expect(metrics.overall.roas).toBeGreaterThan(1);
  });

  it('rejects a year out of range', () => {
    expect(() => generateSampleCampaignCsv({ year: 20_000 })).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
  });
});
