// e2e proof of the finance → marketing collaboration with every process on real ports: roi-review on the finance
// tenant through the hub, finance asking marketing through the hub, finance's numbers equal to hand calculations
// from the same CSV, both hops on the hub task, the trace id in all three logs, and an unattested marketing spoke.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSampleCampaignCsv } from '../../spoke_marketing/sample_data.js';
import { flipByte, startSystem, waitFor, type RunningSystem } from '../helpers/system.js';
import { tinyModelPath } from '../helpers/tiny_model.js';

const SEED = 7;
const CSV = generateSampleCampaignCsv({ seed: SEED });
/** Assumptions sent with the request (finance reads them from the data part). */
const CHURN = 0.05;
const OTHER_ACQUISITION_COSTS = 25_000;
/** Finance's defaults (spoke_finance/config.ts): 10 % a year, at most ±20 % of a channel's spend moves. */
const ANNUAL_DISCOUNT = 0.1;
const MAX_SHIFT = 0.2;

// ---------------------------------------------------------------------------------------------------------
// Hand calculation, written from MARKETING.md §1 and the conventions stated in spoke_finance/finance.ts, on
// the raw CSV. Money is summed in integer cents; gross profit in exact 1/10 000 units (revenue cents × margin
// hundredths) and rounded to cents half-to-even like marketing's money strings.

interface Totals {
  spendCents: number;
  revenueCents: number;
  grossProfit4: number;
  newCustomers: number;
  conversions: number;
}

function emptyTotals(): Totals {
  return { spendCents: 0, revenueCents: 0, grossProfit4: 0, newCustomers: 0, conversions: 0 };
}

function cents(text: string): number {
  const [whole, fraction = ''] = text.split('.');
  return Number(whole) * 100 + Number(fraction.padEnd(2, '0').slice(0, 2));
}

/** Sums Q4 2025 (analysed) and Q3 2025 (previous) per channel and overall, from the CSV text. */
function sumCsv(csv: string): {
  q4: Totals;
  q4ByChannel: Map<string, Totals>;
  q3ByChannel: Map<string, Totals>;
} {
  const [header, ...lines] = csv.trim().split('\n');
  const columns = header!.split(',');
  const at = (name: string): number => {
    const index = columns.indexOf(name);
    if (index < 0) throw new Error(`sample CSV has no ${name} column`);
    return index;
  };
  const [date, channel, spend, revenue, margin, newCustomers, conversions] = [
    'date',
    'channel',
    'spend',
    'revenue',
    'margin',
    'new_customers',
    'conversions',
  ].map(at) as [number, number, number, number, number, number, number];
  const q4 = emptyTotals();
  const q4ByChannel = new Map<string, Totals>();
  const q3ByChannel = new Map<string, Totals>();
  for (const line of lines) {
    const cells = line.split(',');
    const day = cells[date]!;
    const inQ4 = day >= '2025-10-01' && day <= '2025-12-31';
    const inQ3 = day >= '2025-07-01' && day <= '2025-09-30';
    if (!inQ4 && !inQ3) continue;
    const byChannel = inQ4 ? q4ByChannel : q3ByChannel;
    const name = cells[channel]!;
    if (!byChannel.has(name)) byChannel.set(name, emptyTotals());
    for (const totals of inQ4 ? [q4, byChannel.get(name)!] : [byChannel.get(name)!]) {
      const revenueCents = cents(cells[revenue]!);
      totals.spendCents += cents(cells[spend]!);
      totals.revenueCents += revenueCents;
      totals.grossProfit4 += revenueCents * cents(cells[margin]!);
      totals.newCustomers += Number(cells[newCustomers]);
      totals.conversions += Number(cells[conversions]);
    }
  }
  return { q4, q4ByChannel, q3ByChannel };
}

/** Rounds exact 1/10 000 units to cents, half to even. */
function fourthsToCents(value: number): number {
  const whole = Math.floor(value / 100);
  const remainder = value - whole * 100;
  return remainder > 50 || (remainder === 50 && whole % 2 === 1) ? whole + 1 : whole;
}

function roundTo(value: number, decimals: number): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}

function money(centsValue: number): string {
  const sign = centsValue < 0 ? '-' : '';
  const magnitude = Math.abs(centsValue);
  return `${sign}${Math.floor(magnitude / 100)}.${String(magnitude % 100).padStart(2, '0')}`;
}

interface Expected {
  spend: number;
  grossProfitCents: number;
  grossMarginRate: number;
  customers: number;
  monthlyMargin: number;
  cacPaid: number;
  cacBlended: number;
  paybackSimple: number;
  paybackWithChurn: number;
  ltvSimple: number;
  ltvDiscounted: number;
  ltvToCac: number;
  npv: number;
  mroas: Map<string, number>;
  proposed: Map<string, number>;
  moves: { from: string; to: string; amount: string }[];
  totalCents: number;
  deltaRevenue: string;
  deltaMargin: string;
}

function handCalculation(csv: string): Expected {
  const { q4, q4ByChannel, q3ByChannel } = sumCsv(csv);
  // Q4 is 92 days; finance counts whole months of 365.25 / 12 days: 92 / 30.4375 ≈ 3.02 → 3.
  const months = Math.round(92 / (365.25 / 12));
  const spend = q4.spendCents / 100;
  const revenue = q4.revenueCents / 100;
  const grossProfitCents = fourthsToCents(q4.grossProfit4);
  const grossProfit = grossProfitCents / 100;
  const customers = q4.newCustomers;
  // Finance rounds ratios to 4 decimals and builds on the rounded figures it reports.
  const monthlyMargin = roundTo(grossProfit / customers / months, 4);
  const cacPaid = roundTo(spend / customers, 4);
  const cacBlended = roundTo((spend + OTHER_ACQUISITION_COSTS) / customers, 4);
  const paybackSimple = roundTo(cacPaid / monthlyMargin, 4);
  const retention = 1 - CHURN;
  let paybackWithChurn = 0;
  for (let month = 1, cumulative = 0; month <= 60; month += 1) {
    cumulative += monthlyMargin * retention ** (month - 1);
    if (cumulative >= cacPaid) {
      paybackWithChurn = month;
      break;
    }
  }
  const monthlyDiscount = (1 + ANNUAL_DISCOUNT) ** (1 / 12) - 1;
  const ltvSimple = roundTo(monthlyMargin / CHURN, 4);
  const ltvDiscounted = roundTo(
    (monthlyMargin * (1 + monthlyDiscount)) / (1 + monthlyDiscount - retention),
    4,
  );
  const ltvToCac = roundTo(ltvDiscounted / cacPaid, 4);
  let npv = 0;
  for (let month = 0; month < months; month += 1) {
    npv -= spend / months / (1 + monthlyDiscount) ** month;
    npv += grossProfit / months / (1 + monthlyDiscount) ** (month + 1);
  }

  // Marginal ROAS: Δrevenue / Δspend against Q3 (every channel's spend moved by more than 5 % here).
  const mroas = new Map<string, number>();
  for (const [name, now] of q4ByChannel) {
    const before = q3ByChannel.get(name)!;
    const deltaSpend = now.spendCents - before.spendCents;
    if (Math.abs(deltaSpend) < 0.05 * before.spendCents) {
      throw new Error(
        `seed ${SEED}: ${name}'s spend moved by less than 5 %; pick a seed where every channel moved`,
      );
    }
    mroas.set(name, roundTo((now.revenueCents - before.revenueCents) / 100 / (deltaSpend / 100), 6));
  }
  // Reallocation: the lowest-mROAS channel gives to the highest while its mROAS is lower, each channel
  // changing by at most ⌊20 % of its spend⌋ in cents.
  const ascending = [...mroas.entries()].sort((a, b) => a[1] - b[1]).map(([name]) => name);
  const room = new Map(
    ascending.map((name) => [name, Math.floor(q4ByChannel.get(name)!.spendCents * MAX_SHIFT)]),
  );
  const change = new Map(ascending.map((name) => [name, 0]));
  const moves: { from: string; to: string; amount: string }[] = [];
  let low = 0;
  let high = ascending.length - 1;
  while (low < high && mroas.get(ascending[low]!)! < mroas.get(ascending[high]!)!) {
    const from = ascending[low]!;
    const to = ascending[high]!;
    const amount = Math.min(room.get(from)!, room.get(to)!);
    if (amount > 0) {
      moves.push({ from, to, amount: money(amount) });
      room.set(from, room.get(from)! - amount);
      room.set(to, room.get(to)! - amount);
      change.set(from, change.get(from)! - amount);
      change.set(to, change.get(to)! + amount);
    }
    if (room.get(from) === 0) low += 1;
    if (room.get(to) === 0) high -= 1;
  }
  let deltaRevenue = 0;
  for (const [name, delta] of change) if (delta !== 0) deltaRevenue += (delta / 100) * mroas.get(name)!;
  const deltaRevenueCents = Math.round(deltaRevenue * 100);
  const grossMarginRate = roundTo(grossProfit / revenue, 6);
  return {
    spend,
    grossProfitCents,
    grossMarginRate,
    customers,
    monthlyMargin,
    cacPaid,
    cacBlended,
    paybackSimple,
    paybackWithChurn,
    ltvSimple,
    ltvDiscounted,
    ltvToCac,
    npv: roundTo(npv, 2),
    mroas,
    proposed: new Map([...change].map(([name, delta]) => [name, q4ByChannel.get(name)!.spendCents + delta])),
    moves,
    totalCents: q4.spendCents,
    deltaRevenue: money(deltaRevenueCents),
    deltaMargin: money(Math.round(deltaRevenueCents * grossMarginRate)),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The system and the request

interface A2aTask {
  id: string;
  status: { state: string; message?: { parts: { text?: string }[] } };
  artifacts?: { parts: { text?: string; data?: unknown }[] }[];
  metadata?: Record<string, unknown>;
}

interface Review {
  task: A2aTask;
  text: string;
  data: Record<string, unknown>;
  traceId: string;
}

let system: RunningSystem;

beforeAll(async () => {
  system = await startSystem({ marketingModel: await tinyModelPath() });
}, 150_000);

afterAll(async () => {
  await system?.close();
});

/** roi-review on the finance tenant through the hub, with a traceparent of our own. */
async function askForReview(): Promise<Review> {
  const traceId = randomBytes(16).toString('hex');
  const traceparent = `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
  const answer = await system.a2a('SendMessage', {
    tenant: 'finance',
    message: {
      messageId: randomUUID(),
      role: 'ROLE_USER',
      parts: [
        { text: 'Review Q4 2025 marketing ROI: payback, CAC and where to move budget' },
        {
          data: {
            csv: CSV,
            assumptions: { monthly_churn: CHURN, other_acquisition_costs: String(OTHER_ACQUISITION_COSTS) },
          },
        },
      ],
    },
    metadata: { 'agenthub/skill': 'roi-review', traceparent },
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  const task = (answer.body as { result: { task: A2aTask } }).result.task;
  const parts = (task.artifacts ?? []).flatMap((artifact) => artifact.parts);
  const data = parts.find((part) => part.data !== undefined)?.data as Record<string, unknown> | undefined;
  expect(data, `no data part in ${JSON.stringify(task).slice(0, 2000)}`).toBeDefined();
  return {
    task,
    text: parts.map((part) => part.text ?? '').join('\n'),
    data: data!,
    traceId,
  };
}

let reviewed: Promise<Review> | undefined;
/** The one review the first tests share (asked once, lazily). */
function review(): Promise<Review> {
  reviewed ??= askForReview();
  return reviewed;
}

interface Hop {
  taskId: string;
  from: string;
  to: string;
  attestation: { status: string; attestedAt: string | null; policyId: string };
  dispatchedAt: string;
  firstEventAt: string | null;
  finishedAt: string | null;
  outcome: string | null;
}

interface HubTaskView {
  id: string;
  target: string;
  traceparent: string;
  parentTaskId: string | null;
  state: string;
  hops: Hop[];
}

describe('roi-review through the hub (finance asks marketing through the hub)', () => {
  const expected = handCalculation(CSV);

  it('answers with payback, CAC, LTV:CAC, NPV and the reallocation equal to a hand calculation from the CSV', async () => {
    const { task, data, text } = await review();
    expect(task.status.state).toBe('TASK_STATE_COMPLETED');
    expect(data.analysis_type).toBe('roi_review');
    expect(data.marketing_status).toEqual({ status: 'ok', collaboration_ready: expect.any(Boolean) });
    const metrics = data.finance_metrics as {
      period: { label: string; months: number };
      gross_margin: { rate: number; source: string; gross_profit: string };
      monthly_margin_per_customer: { value: number };
      cac: {
        customers: number;
        customers_basis: string;
        paid_media: { value: number };
        blended: { value: number };
      };
      payback: { simple_months: { value: number }; with_churn_months: { value: number } };
      ltv: { simple: { value: number }; discounted: { value: number } };
      ltv_to_cac: { value: number };
      npv: { value: number };
      marginal_roas_order: { channel: string; value: number; basis: string }[];
      reallocation: {
        channels: { channel: string; current: string; proposed: string }[];
        moves: { from: string; to: string; amount: string }[];
        total: string;
        expected_effect: { delta_revenue: string; delta_margin: string | null; label: string };
      };
    };
    expect(metrics.period).toMatchObject({ label: '2025-Q4', months: 3 });
    expect(metrics.gross_margin).toEqual({
      rate: expected.grossMarginRate,
      source: 'marketing_gross_profit',
      gross_profit: money(expected.grossProfitCents),
    });
    expect(metrics.cac.customers).toBe(expected.customers);
    expect(metrics.cac.customers_basis).toBe('new_customers');
    expect(metrics.monthly_margin_per_customer.value).toBe(expected.monthlyMargin);
    expect(metrics.cac.paid_media.value).toBe(expected.cacPaid);
    expect(metrics.cac.blended.value).toBe(expected.cacBlended);
    expect(metrics.payback.simple_months.value).toBe(expected.paybackSimple);
    expect(metrics.payback.with_churn_months.value).toBe(expected.paybackWithChurn);
    expect(metrics.ltv.simple.value).toBe(expected.ltvSimple);
    expect(metrics.ltv.discounted.value).toBe(expected.ltvDiscounted);
    expect(metrics.ltv_to_cac.value).toBe(expected.ltvToCac);
    expect(metrics.npv.value).toBe(expected.npv);
    expect(
      Object.fromEntries(metrics.marginal_roas_order.map((item) => [item.channel, [item.value, item.basis]])),
    ).toEqual(
      Object.fromEntries(
        [...expected.mroas].map(([channel, value]) => [channel, [value, 'period_over_period']]),
      ),
    );
    const reallocation = metrics.reallocation;
    expect(reallocation.moves).toEqual(expected.moves);
    expect(
      Object.fromEntries(reallocation.channels.map((channel) => [channel.channel, channel.proposed])),
    ).toEqual(
      Object.fromEntries([...expected.proposed].map(([channel, proposed]) => [channel, money(proposed)])),
    );
    expect(reallocation.total).toBe(money(expected.totalCents));
    expect(reallocation.channels.reduce((sum, channel) => sum + cents(channel.proposed), 0)).toBe(
      expected.totalCents,
    );
    expect(reallocation.expected_effect).toMatchObject({
      delta_revenue: expected.deltaRevenue,
      delta_margin: expected.deltaMargin,
      label: 'estimate',
    });
    // The plain-text answer quotes the same computed figures.
    expect(text).toContain(`paid-media CAC ${expected.cacPaid}`);
    expect(text).toContain(`payback ${expected.paybackSimple} months`);
    expect(text).toContain(`LTV:CAC ${expected.ltvToCac}`);
    expect(text).toContain(`NPV ${expected.npv}`);
    for (const move of expected.moves)
      expect(text).toContain(`${move.amount} from ${move.from} to ${move.to}`);
  }, 120_000);

  it("records both hops on the hub task — finance, then marketing as a child of finance's request — with timings and attestation", async () => {
    const { task, data } = await review();
    const record = await system.hub(`/v1/tasks/${task.id}`);
    expect(record.status).toBe(200);
    const view = record.body as HubTaskView;
    expect(view).toMatchObject({
      id: task.id,
      target: 'finance',
      parentTaskId: null,
      state: 'TASK_STATE_COMPLETED',
    });
    expect(view.hops.map((hop) => [hop.from, hop.to, hop.outcome])).toEqual([
      ['client', 'finance', 'TASK_STATE_COMPLETED'],
      ['finance', 'marketing', 'TASK_STATE_COMPLETED'],
    ]);
    const [financeHop, marketingHop] = view.hops as [Hop, Hop];
    expect(financeHop.taskId).toBe(task.id);
    expect(marketingHop.taskId).toBe(data.marketing_task_id);
    const policies = new Map(
      (await system.spokes()).map((row) => [row.spoke, (row as unknown as { policyId: string }).policyId]),
    );
    for (const hop of view.hops) {
      expect(hop.attestation.status).toBe('affirming');
      expect(hop.attestation.attestedAt).not.toBeNull();
      expect(hop.attestation.policyId).toBe(policies.get(hop.to));
      expect(hop.firstEventAt).not.toBeNull();
      expect(hop.finishedAt).not.toBeNull();
    }
    // Timings nest: marketing's hop runs inside finance's.
    const time = (iso: string | null): number => Date.parse(iso ?? 'invalid');
    expect(time(financeHop.dispatchedAt)).toBeLessThanOrEqual(time(marketingHop.dispatchedAt));
    expect(time(marketingHop.dispatchedAt)).toBeLessThanOrEqual(time(marketingHop.finishedAt));
    expect(time(marketingHop.finishedAt)).toBeLessThanOrEqual(time(financeHop.finishedAt));

    const child = await system.hub(`/v1/tasks/${marketingHop.taskId}`);
    expect(child.status).toBe(200);
    const childView = child.body as HubTaskView;
    expect(childView).toMatchObject({
      target: 'marketing',
      parentTaskId: task.id,
      state: 'TASK_STATE_COMPLETED',
    });
    expect(childView.traceparent.split('-')[1]).toBe(view.traceparent.split('-')[1]);
  });

  it("carries the caller's W3C trace id on the hub task and logs it in the hub's, finance's and marketing's log files", async () => {
    const { task, traceId } = await review();
    const view = (await system.hub(`/v1/tasks/${task.id}`)).body as HubTaskView;
    expect(view.traceparent.split('-')[1]).toBe(traceId);
    const missing = (): Promise<string[]> =>
      Promise.all(
        (['hub', 'finance', 'marketing'] as const).map(async (name) =>
          (await system.readLog(name)).includes(traceId) ? '' : name,
        ),
      ).then((names) => names.filter((name) => name !== ''));
    let last: string[] = [];
    await waitFor(
      async () => {
        last = await missing();
        return last.length === 0 ? true : undefined;
      },
      `trace id ${traceId} in every log`,
      {
        timeoutMs: 5_000,
        describe: () => `absent from ${last.join(', ')} (${Object.values(system.logFiles).join(', ')})`,
      },
    );
  });
});

describe('roi-review when marketing is not attested or not running', () => {
  const expected = handCalculation(CSV);

  /** Figures only marketing's data can give: none may appear in an answer without it. */
  const marketingFigures = [
    money(expected.totalCents),
    money(expected.grossProfitCents),
    String(expected.cacPaid),
    String(expected.monthlyMargin),
    String(expected.npv),
  ];

  function expectNoMarketingNumbers(review: Review, code: string): void {
    expect(review.task.status.state).toBe('TASK_STATE_COMPLETED');
    expect(review.data).toMatchObject({
      analysis_type: 'roi_review',
      marketing_task_id: null,
      marketing_status: { status: 'unavailable', code },
      finance_metrics: null,
      llm_analysis: null,
      confidence_score: 0,
      sources: [],
    });
    expect(review.text).toMatch(/marketing.*unavailable/i);
    expect(review.text).toContain(code);
    const everything = `${review.text}\n${JSON.stringify(review.data)}`;
    for (const figure of marketingFigures) expect(everything).not.toContain(figure);
  }

  it('says marketing is unattested (SPOKE_UNATTESTED) and quotes no marketing numbers once its model byte changed', async () => {
    await review(); // the healthy review first, so the shared tests above are not affected by the order
    const model = system.modelPaths.marketing;
    expect(model).not.toBeNull();
    await flipByte(model!, 4096);
    const row = await system.waitForSpoke('marketing', 'contraindicated', 30_000);
    expect(row.reasons).toContain('meas.model.mismatch');
    expectNoMarketingNumbers(await askForReview(), 'SPOKE_UNATTESTED');
  });

  it('says marketing is unavailable (SPOKE_UNAVAILABLE) and quotes no marketing numbers once marketing stopped', async () => {
    await system.stop('marketing');
    await system.waitForSpoke('marketing', 'disconnected', 30_000);
    expectNoMarketingNumbers(await askForReview(), 'SPOKE_UNAVAILABLE');
  });
});
