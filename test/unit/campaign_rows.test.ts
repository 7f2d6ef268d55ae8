// Campaign rows at the boundary: row-numbered validation errors, exact money parsing, periods and calendars.
import { describe, expect, it } from 'vitest';
import {
  findMonthInText,
  findQuarterInText,
  findRelativePeriod,
  findYearlessMonth,
  findYearlessPeriod,
  parseCampaignCsv,
  parseCampaignRecords,
  parseMoneyMicros,
  parsePeriodLabel,
  previousPeriod,
  toCampaignTable,
  findYearlessQuarter,
  resolveYearlessMonth,
  resolveYearlessQuarter,
  shiftPeriod,
} from '../../spoke_marketing/campaign_rows.js';

const HEADER = 'campaign,channel,date,spend,impressions,clicks,leads,conversions,revenue';

describe('parseMoneyMicros', () => {
  it.each([
    ['0', 0],
    ['12', 12_000_000],
    ['1234.5', 1_234_500_000],
    ['$1,234.50', 1_234_500_000],
    ['0.000001', 1],
    ['2058.0608', 2_058_060_800],
    ['0.0000005', 0], // half a micro rounds to even
    ['0.0000015', 2],
    ['0.00000051', 1],
  ])('%s → %i micros', (text, micros) => {
    expect(parseMoneyMicros(text)).toBe(micros);
  });

  it.each([['1e5'], ['-3'], ['12,34'], ['abc'], ['1.2.3'], ['99999999999999']])('refuses %s', (text) => {
    expect(parseMoneyMicros(text)).toBeNull();
  });
});

describe('parseCampaignCsv', () => {
  it('reads rows with header aliases, blanks as unreported and money exactly', () => {
    const rows = parseCampaignCsv(
      ['Campaign,Channel,Period,Cost,Clicks,Conversion Value,COGS', 'a,search,2025-Q4,"1,000.10",10,,5'].join(
        '\n',
      ),
    );
    expect(rows[0]).toMatchObject({
      source: { kind: 'line', number: 2 },
      period: { label: '2025-Q4', from: '2025-10-01', to: '2025-12-31' },
      spendMicros: 1_000_100_000,
      clicks: 10,
      impressions: null,
      revenueMicros: null,
      costOfGoodsMicros: 5_000_000,
    });
  });

  it.each([
    ['a negative spend', 'a,search,2025-10-01,-5,100,10,1,1,10', 'spend', '-5'],
    ['a non-numeric impression count', 'a,search,2025-10-01,5,lots,10,1,1,10', 'impressions', 'lots'],
    ['fractional clicks', 'a,search,2025-10-01,5,100,10.5,1,1,10', 'clicks', '10.5'],
    ['more clicks than impressions', 'a,search,2025-10-01,5,100,101,1,1,10', 'clicks', 101],
    ['an impossible date', 'a,search,2025-02-30,5,100,10,1,1,10', 'date', '2025-02-30'],
    ['a missing campaign', ',search,2025-10-01,5,100,10,1,1,10', 'campaign', ''],
    ['a missing spend', 'a,search,2025-10-01,,100,10,1,1,10', 'spend', ''],
    ['an exponent', 'a,search,2025-10-01,5,100,10,1,1,1e9', 'revenue', '1e9'],
  ])('names the line and field of %s', (_name, line, field, value) => {
    const csv = [HEADER, 'ok,search,2025-10-01,5,100,10,1,1,10', line].join('\n');
    expect(() => parseCampaignCsv(csv, { source: 'q4.csv' })).toThrow(
      expect.objectContaining({
        code: 'VALIDATION_FAILED',
        details: { line: 3, field, value },
        message: expect.stringContaining('q4.csv line 3'),
      }),
    );
  });

  it('refuses a header without spend or a date/period column', () => {
    expect(() => parseCampaignCsv('campaign,channel,date\na,b,2025-10-01')).toThrow(
      expect.objectContaining({
        code: 'VALIDATION_FAILED',
        details: expect.objectContaining({ line: 1, field: 'spend' }),
      }),
    );
    expect(() => parseCampaignCsv('campaign,channel,spend\na,b,1')).toThrow(
      expect.objectContaining({
        code: 'VALIDATION_FAILED',
        details: expect.objectContaining({ line: 1, field: 'date' }),
      }),
    );
  });

  it('accepts conversions with fractions (data-driven attribution) and margins as percentages', () => {
    const rows = parseCampaignRecords([
      { campaign: 'a', channel: 's', date: '2025-10-01', spend: 5, conversions: 2.5, margin: '35%' },
    ]);
    expect(rows[0]).toMatchObject({ conversions: 2.5, margin: 0.35, spendMicros: 5_000_000 });
  });

  it.each([
    [{ campaign: 'a', channel: 's', date: '2025-10-01', spend: 5, margin: 1.5 }, 'margin'],
    [{ campaign: 'a', channel: 's', date: '2025-10-01', spend: 5, clicks: { n: 1 } }, 'clicks'],
    [{ campaign: 'a', channel: 's', period: '2025-13', spend: 5 }, 'period'],
    [{ campaign: 'a', channel: 's', date: '2025-10-01', spend: Number.POSITIVE_INFINITY }, 'spend'],
  ])('names the row of a bad JSON row %#', (row, field) => {
    expect(() =>
      parseCampaignRecords([{ campaign: 'ok', channel: 's', date: '2025-10-01', spend: 1 }, row]),
    ).toThrow(
      expect.objectContaining({
        code: 'VALIDATION_FAILED',
        details: expect.objectContaining({ row: 2, field }),
      }),
    );
  });
});

describe('periods', () => {
  it.each([
    ['2025-Q4', { label: '2025-Q4', from: '2025-10-01', to: '2025-12-31' }],
    ['Q1 2024', { label: '2024-Q1', from: '2024-01-01', to: '2024-03-31' }],
    ['2024-02', { label: '2024-02', from: '2024-02-01', to: '2024-02-29' }],
    ['2025-10-03', { label: '2025-10-03', from: '2025-10-03', to: '2025-10-03' }],
    ['next week', null],
  ])('parses %s', (text, expected) => {
    expect(parsePeriodLabel(text)).toEqual(expected);
  });

  it.each([
    ['2025-Q1', '2024-Q4'],
    ['2025-Q4', '2025-Q3'],
    ['2025-01', '2024-12'],
  ])('the period before %s is %s', (label, previous) => {
    expect(previousPeriod(parsePeriodLabel(label)!).label).toBe(previous);
  });

  it('the period before a date range is the same number of days just before it', () => {
    expect(previousPeriod({ label: 'x', from: '2025-03-01', to: '2025-03-10' })).toEqual({
      label: '2025-02-19..2025-02-28',
      from: '2025-02-19',
      to: '2025-02-28',
    });
  });

  it('finds a quarter in free text', () => {
    expect(findQuarterInText('finance asks for Q4 2025 campaign performance')?.label).toBe('2025-Q4');
    expect(findQuarterInText('numbers for 2024 Q2 please')?.label).toBe('2024-Q2');
    expect(findQuarterInText('last quarter')).toBeNull();
  });
});

describe('months in free text', () => {
  it.each([
    ['What was our ROI in October 2025?', '2025-10'],
    ['Oct. 2024 numbers', '2024-10'],
    ['numbers for 2025-11 please', '2025-11'],
    ['how was may 2025', '2025-05'],
    ['Sept 2025 spend', '2025-09'],
    ['the week of 2025-11-03', null],
    ['2025-Q4 please', null],
    ['a decrease 2025 on 2024', null],
  ])('finds the month with its year in "%s": %s', (text, label) => {
    expect(findMonthInText(text)?.label ?? null).toBe(label);
  });

  it.each([
    ['how did October go?', 10],
    ['what happened in May?', 5],
    ['may I see the channels?', null],
    ['ROI for last month', 'latest'],
    ['October 2025 please', null],
    ['and the month before?', null],
  ])('finds the year-less month in "%s": %s', (text, month) => {
    expect(findYearlessMonth(text)).toBe(month);
  });

  it.each([
    [10, '2025-12-31', '2025-10'],
    [12, '2025-11-10', '2024-12'],
    [11, '2025-11-01', '2025-11'],
    ['latest', '2025-11-10', '2025-11'],
  ] as const)('resolves month %s against %s as %s', (month, latest, label) => {
    expect(resolveYearlessMonth(month, latest).label).toBe(label);
  });

  it('resolves a year-less quarter before a year-less month', () => {
    expect(findYearlessPeriod('Q3 in October')?.('2025-12-31').label).toBe('2025-Q3');
    expect(findYearlessPeriod('how did October go?')?.('2025-12-31')).toEqual({
      label: '2025-10',
      from: '2025-10-01',
      to: '2025-10-31',
    });
    expect(findYearlessPeriod('and which channel did best?')).toBeNull();
  });
});

describe('periods named relative to another', () => {
  it.each([
    ['and the quarter before?', '2025-Q4', '2025-Q3'],
    ['what about the previous quarter', '2025-Q1', '2024-Q4'],
    ['and the quarter after that?', '2025-Q4', '2026-Q1'],
    ['and the quarter before last?', '2025-Q4', '2025-Q2'],
    ['the month after next', '2025-11', '2026-01'],
    ['the next quarter', '2024-Q4', '2025-Q1'],
    ['two quarters earlier?', '2025-Q2', '2024-Q4'],
    ['one quarter later', '2025-Q3', '2025-Q4'],
    ['the same quarter a year earlier', '2025-Q4', '2024-Q4'],
    ['same quarter last year?', '2025-Q1', '2024-Q1'],
    ['and a year before?', '2025-03', '2024-03'],
    ['the month before', '2025-01', '2024-12'],
    ['the following month', '2025-12', '2026-01'],
    ['12 months earlier', '2025-06', '2024-06'],
    ['and the one before that?', '2025-Q1', '2024-Q4'],
    ['the one before', '2025-01', '2024-12'],
    ['the previous period', '2025-10-03', '2025-10-02'],
  ])('"%s" counted from %s is %s', (text, base, expected) => {
    const relative = findRelativePeriod(text);
    expect(relative).not.toBeNull();
    expect(shiftPeriod(parsePeriodLabel(base)!, relative!).label).toBe(expected);
  });

  it('shifts a date range by its own length', () => {
    const range = { label: '2025-03-01..2025-03-10', from: '2025-03-01', to: '2025-03-10' };
    expect(shiftPeriod(range, findRelativePeriod('the period after')!)).toEqual({
      label: '2025-03-11..2025-03-20',
      from: '2025-03-11',
      to: '2025-03-20',
    });
  });

  it.each([
    ['and which channel did best?'],
    ['how did last quarter go?'],
    ['a quarter ago'],
    ['Q3 2025 before the launch'],
    ['someone before us'],
  ])('finds none in "%s"', (text) => {
    expect(findRelativePeriod(text)).toBeNull();
  });

  it.each([
    ['the month before', '2025-Q4', 'months'],
    ['the quarter before', '2025-11', 'quarters'],
    ['a year earlier', '2025-10-03', 'years of a quarter or a month'],
  ])('refuses "%s" counted from %s, saying what it counts', (text, base, counts) => {
    let caught: unknown;
    try {
      shiftPeriod(parsePeriodLabel(base)!, findRelativePeriod(text)!);
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'period', from: base },
    });
    expect((caught as Error).message).toContain(`counts ${counts}`);
  });
});

describe('toCampaignTable', () => {
  it('stores missing cells as NaN and groups rows by (campaign, channel)', () => {
    const table = toCampaignTable(
      parseCampaignRecords([
        { campaign: 'a', channel: 'search', date: '2025-10-01', spend: 1, clicks: 3 },
        { campaign: 'a', channel: 'email', date: '2025-10-01', spend: 2 },
        { campaign: 'a', channel: 'search', date: '2025-10-02', spend: 3 },
      ]),
    );
    expect([...table.pair]).toEqual([0, 1, 0]);
    expect(table.channels).toEqual(['search', 'email']);
    expect(table.campaigns).toEqual(['a']);
    expect(table.clicks[0]).toBe(3);
    expect(Number.isNaN(table.clicks[1])).toBe(true);
  });
});

describe('year-less quarters', () => {
  it.each([
    ['How did our Q4 campaigns do?', 4],
    ['q2 results', 2],
    ['ROI for last quarter', 'latest'],
    ['what happened this quarter', 'latest'],
    ['Q4 2025 please', null],
    ['How are we doing?', null],
  ] as const)('reads %j as %j', (text, expected) => {
    expect(findYearlessQuarter(text)).toBe(expected);
  });

  it.each([
    [4, '2026-01-15', '2025-Q4'],
    [4, '2025-10-01', '2025-Q4'],
    [4, '2025-09-30', '2024-Q4'],
    [1, '2025-03-31', '2025-Q1'],
    ['latest', '2025-11-10', '2025-Q4'],
  ] as const)('resolves %j against latest data %s as %s', (quarter, latest, label) => {
    expect(resolveYearlessQuarter(quarter, latest).label).toBe(label);
  });
});
