// The roi-review skill with a fake hub: a canned marketing answer built by the real campaign-ROI code on a small
// dataset (so the numbers chain), marketing failures (unattested, unavailable, timeout), and a grounded narrative.
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { AppError } from '../../shared/errors.js';
import type { LlmUsage } from '../../shared/llm_client.js';
import type { PeerRequest, PeerResponse, SkillContext, SkillInput } from '../../shared/skill.js';
import {
  createRoiReviewSkill,
  monthlyChurnInText,
  type RoiReviewAnswer,
} from '../../spoke_finance/roi_review_skill.js';
import { parseCampaignCsv } from '../../spoke_marketing/campaign_rows.js';
import { analyzeCampaignRoi } from '../../spoke_marketing/roi_skill.js';
import { scriptedLlm, type ScriptedLlm } from '../helpers/scripted_llm.js';

const CSV = [
  'campaign,channel,date,spend,impressions,clicks,leads,conversions,revenue,margin,new_customers',
  'brand_search,search,2025-08-10,400.00,10000,400,60,20,1600.00,0.4,12',
  'spring_promo,email,2025-08-10,50.00,20000,500,40,10,600.00,0.4,6',
  'brand_search,search,2025-10-10,500.00,12000,600,90,30,2500.00,0.4,18',
  'brand_search,search,2025-11-10,500.00,12000,540,80,27,2250.00,0.4,15',
  'winter_news,email,2025-10-12,100.00,40000,1000,80,25,1500.00,0.4,14',
  'retarget,display,2025-12-01,300.00,100000,300,10,6,420.00,0.4,3',
].join('\n');

const usage: LlmUsage = {
  promptTokens: 100,
  reusedPrefixTokens: 0,
  completionTokens: 40,
  timeToFirstTokenMs: 3,
  totalMs: 30,
  generationTokensPerSecond: 10,
  attempts: 1,
};

/** The scripted LLM of these tests, answering as `scripted-finance`. */
function script(outputs: unknown[]): ScriptedLlm {
  return scriptedLlm(outputs, 'scripted-finance', usage);
}

async function marketingAnswer(): Promise<PeerResponse> {
  const { answer } = await analyzeCampaignRoi(parseCampaignCsv(CSV), { llm: null });
  return { taskId: 'marketing-task-1', text: 'campaign roi', data: answer, metadata: {} };
}

function context(callPeer: (request: PeerRequest) => Promise<PeerResponse>): SkillContext {
  return {
    signal: new AbortController().signal,
    log: pino({ level: 'silent' }),
    progress: () => undefined,
    callPeer,
  };
}

function input(data: unknown[]): SkillInput {
  return { text: 'Review Q4 2025 marketing ROI', data, contextId: 'c', taskId: 't', metadata: {} };
}

const settings = { discountRateAnnual: 0.1, reallocationMaxShift: 0.2 };

describe('roi-review skill', () => {
  it('asks marketing through the hub and chains its metrics into the finance numbers', async () => {
    const callPeer = vi.fn(async () => marketingAnswer());
    const skill = createRoiReviewSkill({ llm: null, ...settings });
    const result = await skill.handler(
      input([{ csv: CSV, assumptions: { monthly_churn: 0.05, other_acquisition_costs: '600.00' } }]),
      context(callPeer),
    );
    expect(callPeer).toHaveBeenCalledWith({
      tenant: 'marketing',
      skill: 'campaign-roi-analysis',
      text: 'Review Q4 2025 marketing ROI',
      data: { csv: CSV },
      contextId: 'c',
      timeoutMs: 300_000,
    });
    const answer = result.data as RoiReviewAnswer;
    expect(answer.analysis_type).toBe('roi_review');
    expect(answer.marketing_task_id).toBe('marketing-task-1');
    expect(answer.marketing_status).toEqual({ status: 'ok', collaboration_ready: true });
    const metrics = answer.finance_metrics!;
    // Q4: spend 1,400, new customers 18 + 15 + 14 + 3 = 50, gross profit 6,670 × 0.4 = 2,668 over 3 months.
    expect(metrics.period).toEqual({ label: '2025-Q4', from: '2025-10-01', to: '2025-12-31', months: 3 });
    expect(metrics.cac.paid_media.value).toBe(28);
    expect(metrics.cac.blended.value).toBe(40);
    expect(metrics.gross_margin).toEqual({
      rate: 0.4,
      source: 'marketing_gross_profit',
      gross_profit: '2668.00',
    });
    expect(metrics.monthly_margin_per_customer.value).toBeCloseTo(2668 / 50 / 3, 4);
    expect(metrics.payback.simple_months.value).toBeCloseTo(28 / (2668 / 50 / 3), 3);
    expect(metrics.payback.with_churn_months.value).toBe(2);
    // email (1,500 − 600) / (100 − 50) = 18; search (4,750 − 1,600) / (1,000 − 400) = 5.25; display: ROAS fallback.
    expect(metrics.marginal_roas_order.map((item) => [item.channel, item.value, item.basis])).toEqual([
      ['email', 18, 'period_over_period'],
      ['search', 5.25, 'period_over_period'],
      ['display', 1.4, 'average_roas_fallback'],
    ]);
    // display gives 20.00 to email (email's +20 % bound) and 40.00 to search (display's −20 % bound).
    expect(metrics.reallocation.moves).toEqual([
      { from: 'display', to: 'email', amount: '20.00' },
      { from: 'display', to: 'search', amount: '40.00' },
    ]);
    // 20 × 18 + 40 × 5.25 − 60 × 1.4 = 486; × 0.4 = 194.40
    expect(metrics.reallocation.expected_effect).toMatchObject({
      delta_revenue: '486.00',
      delta_margin: '194.40',
    });
    // NPV at (1.1)^(1/12) − 1 a month: 1,400 paid in thirds at t = 0, 1, 2 and 2,668 received in thirds at t = 1, 2, 3.
    const v = 1 / 1.1 ** (1 / 12);
    expect(metrics.npv.value).toBeCloseTo(
      (-1400 / 3) * (1 + v + v ** 2) + (2668 / 3) * (v + v ** 2 + v ** 3),
      1,
    );
    expect(answer.sources).toEqual([
      {
        agent: 'marketing',
        skill: 'campaign-roi-analysis',
        task_id: 'marketing-task-1',
        period: '2025-Q4',
        confidence_score: expect.any(Number),
        collaboration_ready: true,
      },
    ]);
    expect(answer.llm_analysis).toBeNull();
    expect(answer.confidence_score).toBeGreaterThan(0);
    expect(answer.confidence_score).toBeLessThanOrEqual(1);
    expect(result.text).toContain('ROI review for 2025-Q4');
  });

  it.each([
    ['SPOKE_UNATTESTED', 'marketing failed attestation'],
    ['SPOKE_UNAVAILABLE', 'no marketing replica is connected'],
    ['DEADLINE_EXCEEDED', 'marketing did not answer in 300000 ms'],
  ] as const)('says so clearly and invents nothing when marketing fails with %s', async (code, message) => {
    const skill = createRoiReviewSkill({ llm: script([]), ...settings });
    const result = await skill.handler(
      input([{ period: '2025-Q4' }]),
      context(() => Promise.reject(new AppError(code, message))),
    );
    const answer = result.data as RoiReviewAnswer;
    expect(answer.marketing_status).toEqual({ status: 'unavailable', code, message });
    expect(answer.finance_metrics).toBeNull();
    expect(answer.llm_analysis).toBeNull();
    expect(answer.marketing_task_id).toBeNull();
    expect(answer.confidence_score).toBe(0);
    expect(result.text).toContain(`unavailable (${code}`);
    expect(result.text).toMatch(/No finance metrics were computed/);
  });

  it('passes marketing validation errors on to the caller', async () => {
    const skill = createRoiReviewSkill({ llm: null, ...settings });
    const failure = new AppError('VALIDATION_FAILED', 'CSV line 3: spend is not a decimal amount', {
      details: { line: 3 },
    });
    await expect(
      skill.handler(
        input([{ csv: 'x' }]),
        context(() => Promise.reject(failure)),
      ),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
  });

  it('reports a malformed marketing answer without computing anything from it', async () => {
    const skill = createRoiReviewSkill({ llm: null, ...settings });
    const result = await skill.handler(
      input([]),
      context(async () => ({
        taskId: 'm-2',
        text: '',
        data: { analysis_type: 'campaign_roi' },
        metadata: {},
      })),
    );
    const answer = result.data as RoiReviewAnswer;
    expect(answer.marketing_status).toMatchObject({ status: 'invalid_answer', code: 'UPSTREAM_ERROR' });
    expect(answer.finance_metrics).toBeNull();
    expect(answer.marketing_task_id).toBe('m-2');
  });

  it('narrates with grounding: a wrong number is regenerated, the answer keeps the grounded text', async () => {
    const wrong = {
      summary: 'Paid-media CAC was $35 with payback in 1.6 months.',
      payback_and_cac: 'Payback is quick.',
      ltv_and_efficiency: 'LTV is healthy.',
      budget_recommendation: 'Move budget from display to email and search (an estimate).',
      risks_and_caveats: 'Display has no previous period.',
    };
    const right = { ...wrong, summary: 'Paid-media CAC was $28 with payback in 1.6 months.' };
    const skill = createRoiReviewSkill({ llm: script([wrong, right]), ...settings });
    const result = await skill.handler(
      input([{ csv: CSV }]),
      context(() => marketingAnswer()),
    );
    const answer = result.data as RoiReviewAnswer;
    expect(answer.llm_analysis!.generations).toBe(2);
    expect(answer.llm_analysis!.first_attempt_ungrounded.map((item) => item.number)).toEqual(['$35']);
    expect(answer.llm_analysis!.grounding.ungrounded).toEqual([]);
    expect(answer.confidence.components.grounding).toBe(1);
    expect(result.metadata).toMatchObject({ llm: { model: 'scripted-finance', generations: 2 } });
  });

  it('uses a monthly churn rate stated in the question, and forwards the question to marketing as asked', async () => {
    const callPeer = vi.fn(async () => marketingAnswer());
    const skill = createRoiReviewSkill({ llm: null, ...settings });
    const result = await skill.handler(
      { ...input([{ csv: CSV }]), text: 'What if monthly churn is 3%?' },
      context(callPeer),
    );
    expect(callPeer).toHaveBeenCalledWith(expect.objectContaining({ text: 'What if monthly churn is 3%?' }));
    const metrics = (result.data as RoiReviewAnswer).finance_metrics!;
    expect(metrics.ltv.monthly_churn).toBe(0.03);
    // LTV = monthly margin per customer / churn, rounded to cents.
    expect(metrics.ltv.simple.value).toBeCloseTo(2668 / 50 / 3 / 0.03, 2);
  });

  it.each([
    ['What if monthly churn is 3%?', 0.03],
    ['churn of 2.5% a month', 0.025],
    ['churn rate: 4 percent per month', 0.04],
    ['assume 3% monthly churn', 0.03],
    ['with 1.5% churn per month', 0.015],
    ['payback for Q4 2025', undefined],
  ])('reads the monthly churn in "%s": %s', (text, churn) => {
    expect(monthlyChurnInText(text)).toBe(churn);
  });

  it.each([
    ['churn is 3%', /say that the churn rate is monthly \("monthly churn 3%"\)/],
    ['annual churn 30%', /say that the churn rate is monthly/],
    ['monthly churn 300%', /a churn rate is at most 100%/],
  ])('refuses "%s" with VALIDATION_FAILED, saying why', async (text, message) => {
    const skill = createRoiReviewSkill({ llm: null, ...settings });
    const refusal = skill.handler(
      { ...input([{ csv: CSV }]), text },
      context(() => marketingAnswer()),
    );
    await expect(refusal).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'assumptions.monthly_churn' },
    });
    await expect(refusal).rejects.toThrow(message);
  });

  it('refuses a monthly churn given twice with different values', async () => {
    const skill = createRoiReviewSkill({ llm: null, ...settings });
    await expect(
      skill.handler(
        {
          ...input([{ csv: CSV, assumptions: { monthly_churn: 0.05 } }]),
          text: 'what if monthly churn is 3%?',
        },
        context(() => marketingAnswer()),
      ),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'assumptions.monthly_churn', value: [0.05, 0.03] },
    });
  });

  it('refuses bad assumptions with VALIDATION_FAILED', async () => {
    const skill = createRoiReviewSkill({ llm: null, ...settings });
    await expect(
      skill.handler(
        input([{ assumptions: { monthly_churn: 2 } }]),
        context(() => marketingAnswer()),
      ),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', details: { field: 'assumptions.monthly_churn' } });
  });
});
