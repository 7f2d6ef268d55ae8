// Finance formulas against hand calculations: payback (simple, with churn, never), CAC bases, LTV (simple and
// discounted), LTV:CAC, marginal-ROAS ordering with its fallback, NPV conventions and the bounded reallocation.
import { describe, expect, it } from 'vitest';
import {
  campaignNpv,
  centsToDecimal,
  customerAcquisitionCost,
  decimalToCents,
  lifetimeValue,
  ltvToCac,
  marginalRoasOrder,
  monthlyRate,
  paybackPeriod,
  reallocateBudget,
} from '../../spoke_finance/finance.js';

describe('paybackPeriod', () => {
  it.each([
    // cac, margin, churn, simple, with churn
    [300, 50, null, 6, null],
    [300, 50, 0, 6, 6],
    // 50 + 47.5 + 45.125 + … first reaches 300 in month 7 (301.66)
    [300, 50, 0.05, 6, 7],
    [100, 30, 0.1, 3.3333, 4],
  ])('CAC %d, margin %d, churn %s → %s / %s months', (cac, margin, churn, simple, withChurn) => {
    const result = paybackPeriod(cac, margin, churn);
    expect(result.simple_months.value).toBeCloseTo(simple, 4);
    expect(result.with_churn_months.value).toBe(withChurn);
  });

  it.each([
    ['CAC missing', null, 50, 0.05, /CAC is unavailable/, /CAC is unavailable/],
    [
      'margin missing',
      300,
      null,
      0.05,
      /margin per customer is unavailable/,
      /margin per customer is unavailable/,
    ],
    ['zero margin', 300, 0, 0.05, /not positive/, /not positive/],
    ['no churn given', 300, 50, null, null, /no monthly churn/],
    // lifetime margin 10 / 0.05 = 200 < 300
    [
      'lifetime margin below CAC',
      300,
      10,
      0.05,
      null,
      /never paid back: lifetime margin .* 200 is below CAC 300/,
    ],
    // cumulative margin reaches 1,000 only in month 106
    ['payback beyond the horizon', 1000, 10, 0.001, null, /not paid back within the 60-month horizon/],
  ])('null with a reason when %s', (_name, cac, margin, churn, simpleReason, churnReason) => {
    const result = paybackPeriod(cac, margin, churn);
    if (simpleReason === null) expect(result.simple_months.value).not.toBeNull();
    else expect(result.simple_months).toEqual({ value: null, reason: expect.stringMatching(simpleReason) });
    expect(result.with_churn_months).toEqual({ value: null, reason: expect.stringMatching(churnReason) });
  });
});

describe('customerAcquisitionCost', () => {
  it('states both bases', () => {
    const result = customerAcquisitionCost(1000, 500, 20, 'new_customers');
    expect(result.paid_media.value).toBe(50);
    expect(result.blended.value).toBe(75);
    expect(result.included_costs.paid_media).toMatch(/ad spend/);
    expect(result.customers_basis).toBe('new_customers');
  });

  it.each([
    ['no other costs', 1000, null, 20, 50, null],
    ['no customers', 1000, 500, 0, null, null],
    ['unknown customers', 1000, 500, null, null, null],
  ])('%s', (_name, spend, other, customers, paid, blended) => {
    const result = customerAcquisitionCost(
      spend,
      other,
      customers,
      customers === null ? null : 'conversions_proxy',
    );
    expect(result.paid_media.value).toBe(paid);
    expect(result.blended.value).toBe(blended);
    if (blended === null) expect(result.blended.reason).toEqual(expect.any(String));
  });
});

describe('lifetimeValue and LTV:CAC', () => {
  it.each([
    // margin, churn, monthly discount, simple, discounted = m(1+d)/(1+d−r)
    [50, 0.05, 0.01, 1000, 841.6667],
    [50, 0.05, 0, 1000, 1000],
    [50, 0, 0.01, null, 5050],
    [50, 0, 0, null, null],
    [null, 0.05, 0.01, null, null],
    [50, null, 0.01, null, null],
  ])('m=%s churn=%s d=%s → simple %s, discounted %s', (margin, churn, rate, simple, discounted) => {
    const result = lifetimeValue(margin, churn, rate);
    expect(result.simple.value).toBe(simple);
    expect(result.discounted.value).toBe(discounted);
    if (simple === null) expect(result.simple.reason).toEqual(expect.any(String));
  });

  it('divides discounted LTV by paid-media CAC', () => {
    const ltv = lifetimeValue(50, 0.05, 0.01);
    const ratio = ltvToCac(ltv, customerAcquisitionCost(1000, null, 20, 'new_customers'));
    expect(ratio).toEqual({ value: 16.8333, basis: 'discounted LTV / paid-media CAC' });
    expect(ltvToCac(ltv, customerAcquisitionCost(1000, null, 0, 'new_customers')).value).toBeNull();
  });
});

describe('marginalRoasOrder', () => {
  it('uses Δrevenue/Δspend where both periods exist and ROAS as a labelled fallback', () => {
    const order = marginalRoasOrder([
      { channel: 'social', spend: 500, revenue: 1000, previousSpend: 490, previousRevenue: 990 },
      { channel: 'search', spend: 1200, revenue: 3000, previousSpend: 1000, previousRevenue: 2400 },
      { channel: 'none', spend: 0, revenue: null, previousSpend: null, previousRevenue: null },
      { channel: 'display', spend: 800, revenue: 1000, previousSpend: null, previousRevenue: null },
    ]);
    expect(order.map((item) => [item.channel, item.value, item.basis])).toEqual([
      ['search', 3, 'period_over_period'],
      ['social', 2, 'average_roas_fallback'],
      ['display', 1.25, 'average_roas_fallback'],
      ['none', null, 'average_roas_fallback'],
    ]);
    expect(order[1]!.reason).toMatch(/less than 5%/);
    expect(order[2]!.reason).toMatch(/no previous period/);
  });
});

describe('campaignNpv', () => {
  it('discounts monthly: spend at month starts, margin at month ends', () => {
    expect(monthlyRate(0.12)).toBeCloseTo(0.009488793, 9);
    const npv = campaignNpv(3000, 3600, 3, 0.12);
    expect(npv.value).toBe(560.86);
    expect(npv.convention).toMatch(/start of each month/);
  });

  it('equals margin minus spend at a zero rate, and is null without margin', () => {
    expect(campaignNpv(3000, 3600, 3, 0).value).toBe(600);
    expect(campaignNpv(3000, null, 3, 0.1)).toMatchObject({
      value: null,
      reason: expect.stringMatching(/gross margin/),
    });
  });
});

describe('reallocateBudget', () => {
  const channels = [
    { channel: 'search', spendCents: 100_000, marginalRoas: 3 },
    { channel: 'social', spendCents: 50_000, marginalRoas: 1 },
    { channel: 'display', spendCents: 30_000, marginalRoas: 0.5 },
    { channel: 'email', spendCents: 20_000, marginalRoas: null },
  ];

  it('moves budget from the lowest to the highest mROAS within ±20 % and keeps the total', () => {
    const result = reallocateBudget(channels, 0.2, 0.4);
    expect(result.moves).toEqual([
      { from: 'display', to: 'search', amount: '60.00' },
      { from: 'social', to: 'search', amount: '100.00' },
    ]);
    expect(result.channels.map((channel) => [channel.channel, channel.proposed, channel.change])).toEqual([
      ['search', '1160.00', '160.00'],
      ['social', '400.00', '-100.00'],
      ['display', '240.00', '-60.00'],
      ['email', '200.00', '0.00'],
    ]);
    expect(result.total).toBe('2000.00');
    // 160 × 3 − 100 × 1 − 60 × 0.5 = 350; × 0.4 margin = 140
    expect(result.expected_effect).toMatchObject({
      delta_revenue: '350.00',
      delta_margin: '140.00',
      label: 'estimate',
    });
  });

  it('keeps whole cents and the exact total under odd amounts', () => {
    const odd = [
      { channel: 'a', spendCents: 333, marginalRoas: 0.2 },
      { channel: 'b', spendCents: 1001, marginalRoas: 0.9 },
      { channel: 'c', spendCents: 77, marginalRoas: 4 },
    ];
    const result = reallocateBudget(odd, 0.2, null);
    const proposed = result.channels.map((channel) => decimalToCents(channel.proposed));
    expect(proposed.reduce((sum, cents) => sum + cents, 0)).toBe(333 + 1001 + 77);
    result.channels.forEach((channel, index) => {
      expect(Math.abs(decimalToCents(channel.change))).toBeLessThanOrEqual(
        Math.floor(odd[index]!.spendCents * 0.2),
      );
    });
    expect(result.expected_effect.delta_margin).toBeNull();
  });

  it.each([
    [
      'equal mROAS',
      [
        { channel: 'a', spendCents: 100, marginalRoas: 2 },
        { channel: 'b', spendCents: 100, marginalRoas: 2 },
      ],
      /same marginal ROAS/,
    ],
    [
      'one channel with mROAS',
      [
        { channel: 'a', spendCents: 100, marginalRoas: 2 },
        { channel: 'b', spendCents: 100, marginalRoas: null },
      ],
      /fewer than two/,
    ],
  ])('moves nothing with %s and says why', (_name, input, reason) => {
    const result = reallocateBudget(input, 0.2, 0.5);
    expect(result.moves).toEqual([]);
    expect(result.reason).toMatch(reason);
    expect(result.expected_effect.delta_revenue).toBe('0.00');
  });

  it('refuses a shift outside [0, 1]', () => {
    expect(() => reallocateBudget(channels, 1.5, null)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});

describe('money at the edges', () => {
  it.each([
    ['1234.56', 123_456],
    ['0.005', 1],
    ['0.0049', 0],
    ['-2.50', -250],
    ['7', 700],
  ])('%s → %i cents', (text, cents) => {
    expect(decimalToCents(text)).toBe(cents);
  });

  it('formats cents', () => {
    expect(centsToDecimal(-5)).toBe('-0.05');
    expect(centsToDecimal(123_456)).toBe('1234.56');
  });
});
