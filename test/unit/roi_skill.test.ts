// The campaign-roi-analysis skill end to end with fakes: rows from data parts, CSV text or stored rows by
// period; the no-LLM answer; a scripted LLM that misquotes once (regenerated) or always (flagged); cancel.
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { LlmUsage } from '../../shared/llm_client.js';
import type { SkillContext, SkillInput } from '../../shared/skill.js';
import { parseCampaignCsv } from '../../spoke_marketing/campaign_rows.js';
import { ROI_NARRATIVE_SCHEMA, validateRoiNarrative } from '../../spoke_marketing/roi_narrative.js';
import { createCampaignRoiSkill, type CampaignRoiAnswer } from '../../spoke_marketing/roi_skill.js';
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
  promptTokens: 120,
  reusedPrefixTokens: 80,
  completionTokens: 60,
  timeToFirstTokenMs: 5,
  totalMs: 50,
  generationTokensPerSecond: 12,
  attempts: 1,
};

function narrative(summary: string) {
  return {
    performance_summary: summary,
    channel_analysis: [{ channel: 'search', assessment: 'Search led on ROAS.' }],
    audience_insights: null,
    roi_analysis: 'ROI is stated on the margin-adjusted basis.',
    optimisation_recommendations: ['Shift budget from display to search.'],
  };
}

/** The scripted LLM of these tests, answering as `scripted-mistral`. */
function script(outputs: unknown[]): ScriptedLlm {
  return scriptedLlm(outputs, 'scripted-mistral', usage);
}

function input(text: string, data: unknown[] = []): SkillInput {
  return { text, data, contextId: 'ctx-1', taskId: 'task-1', metadata: {} };
}

function context(
  signal: AbortSignal = new AbortController().signal,
): SkillContext & { progressed: string[] } {
  const progressed: string[] = [];
  return {
    signal,
    log: pino({ level: 'silent' }),
    progressed,
    progress: (message) => progressed.push(message),
    callPeer: () => Promise.reject(new Error('no peers in this test')),
  };
}

describe('campaign-roi-analysis skill', () => {
  it('answers from a CSV data part without an LLM: metrics, null narrative with a reason, confidence', async () => {
    const skill = createCampaignRoiSkill({ llm: null });
    const result = await skill.handler(
      input('Analyse Q4 2025 campaign performance', [{ csv: CSV }]),
      context(),
    );
    const answer = result.data as CampaignRoiAnswer;
    expect(answer.analysis_type).toBe('campaign_roi');
    expect(answer.llm_analysis).toBeNull();
    expect(answer.llm_unavailable_reason).toMatch(/no language model/);
    expect(answer.collaboration_ready).toBe(true);
    expect(answer.confidence_score).toBeGreaterThan(0);
    expect(answer.confidence_score).toBeLessThanOrEqual(1);
    expect(answer.confidence.components.grounding).toBeNull();
    const metrics = answer.marketing_metrics;
    expect(metrics.period).toMatchObject({ label: '2025-Q4', from: '2025-10-01', to: '2025-12-31' });
    expect(metrics.row_counts).toEqual({ total: 6, analysed: 4, previous: 2, outside: 0 });
    expect(metrics.overall.spend).toBe('1400.00');
    expect(metrics.overall.revenue).toBe('6670.00');
    expect(metrics.overall.roas).toBeCloseTo(6670 / 1400, 6);
    // every row carries a margin → margin-adjusted ROI: (6670 × 0.4 − 1400) / 1400
    expect(metrics.overall.roi).toMatchObject({
      basis: 'margin_adjusted',
      value: expect.closeTo((6670 * 0.4 - 1400) / 1400, 6),
    });
    expect(metrics.overall.change_vs_previous!.spend).toEqual({
      previous: 450,
      current: 1400,
      change: 950,
      relative_change: expect.closeTo(950 / 450, 6),
    });
    const display = metrics.channels.find((channel) => channel.channel === 'display')!;
    expect(display.change_vs_previous).toBeNull();
    expect(metrics.campaigns.map((campaign) => campaign.campaign).sort()).toEqual([
      'brand_search',
      'retarget',
      'winter_news',
    ]);
    expect(result.text).toContain('Campaign ROI for 2025-Q4');
    expect(result.metadata).toMatchObject({ rows_source: 'request', rows: 6, llm: null });
  });

  it('reads rows from a rows data part and CSV pasted into the text alike', async () => {
    const skill = createCampaignRoiSkill({ llm: null });
    const rows = CSV.split('\n')
      .slice(1)
      .map((line) => {
        const [campaign, channel, date, spend, impressions, clicks, leads, conversions, revenue] =
          line.split(',');
        return {
          campaign,
          channel,
          date,
          spend,
          impressions: Number(impressions),
          clicks: Number(clicks),
          leads,
          conversions,
          revenue,
        };
      });
    const fromRows = (await skill.handler(input('', [{ rows, period: '2025-Q4' }]), context()))
      .data as CampaignRoiAnswer;
    const fromText = (await skill.handler(input(`Q4 2025 please\n${CSV}`), context()))
      .data as CampaignRoiAnswer;
    expect(fromRows.marketing_metrics.overall.spend).toBe('1400.00');
    expect(fromText.marketing_metrics.overall.spend).toBe('1400.00');
    expect(fromRows.marketing_metrics.overall.roi.basis).toBe('ad_spend_only');
  });

  it('loads stored rows for a named period, including the previous quarter for the comparison', async () => {
    const loadStoredRows = vi.fn(async () => parseCampaignCsv(CSV));
    const skill = createCampaignRoiSkill({ llm: null, loadStoredRows });
    const result = await skill.handler(input('How did Q4 2025 go for ROI?'), context());
    expect(loadStoredRows).toHaveBeenCalledWith({ from: '2025-07-01', to: '2025-12-31' });
    expect((result.data as CampaignRoiAnswer).marketing_metrics.period.label).toBe('2025-Q4');
    expect(result.metadata).toMatchObject({ rows_source: 'stored' });
  });

  it.each([
    [
      '"Q4" without a year',
      'How did our Q4 campaigns do?',
      '2026-01-15',
      { from: '2025-07-01', to: '2025-12-31' },
    ],
    [
      '"Q4" while this year\'s Q4 has data',
      'How did our Q4 campaigns do?',
      '2025-12-31',
      { from: '2025-07-01', to: '2025-12-31' },
    ],
    [
      '"Q4" before this year\'s Q4 started',
      'How was q4?',
      '2026-09-30',
      { from: '2025-07-01', to: '2025-12-31' },
    ],
    ['"last quarter"', 'ROI for last quarter please', '2025-11-10', { from: '2025-07-01', to: '2025-12-31' }],
  ])('resolves %s against the latest stored date', async (_name, text, latest, range) => {
    const loadStoredRows = vi.fn(async () => parseCampaignCsv(CSV));
    const skill = createCampaignRoiSkill({ llm: null, loadStoredRows, latestStoredDate: async () => latest });
    await skill.handler(input(text), context());
    expect(loadStoredRows).toHaveBeenCalledWith(range);
  });

  it('answers a follow-up that names no period about the period its conversation last asked about', async () => {
    const loadStoredRows = vi.fn(async () => parseCampaignCsv(CSV));
    const skill = createCampaignRoiSkill({ llm: null, loadStoredRows });
    await skill.handler(input('How did Q4 2025 go for ROI?'), context());
    const followUp = await skill.handler(input('and which channel did best?'), context());
    expect(loadStoredRows).toHaveBeenNthCalledWith(2, { from: '2025-07-01', to: '2025-12-31' });
    expect((followUp.data as CampaignRoiAnswer).marketing_metrics.period.label).toBe('2025-Q4');
    // A follow-up about another period it cannot read is refused rather than answered about this one.
    await expect(skill.handler(input('and the quarter of the launch?'), context())).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    // Another conversation has asked about no period yet.
    await expect(
      skill.handler({ ...input('and which channel did best?'), contextId: 'ctx-2' }, context()),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(loadStoredRows).toHaveBeenCalledTimes(2);
  });

  it('reads a month named in the question, with its year or without', async () => {
    const loadStoredRows = vi.fn(async () => parseCampaignCsv(CSV));
    const skill = createCampaignRoiSkill({
      llm: null,
      loadStoredRows,
      latestStoredDate: async () => '2025-12-01',
    });
    const withYear = await skill.handler(input('What was our ROI in October 2025?'), context());
    expect((withYear.data as CampaignRoiAnswer).marketing_metrics.period.label).toBe('2025-10');
    expect(loadStoredRows).toHaveBeenNthCalledWith(1, { from: '2025-09-01', to: '2025-10-31' });
    await skill.handler(input('and how did November go?'), context());
    expect(loadStoredRows).toHaveBeenNthCalledWith(2, { from: '2025-10-01', to: '2025-11-30' });
    // Rows sent with the question are analysed for the month it names.
    const sent = await skill.handler(input('ROI for 2025-11 please', [{ csv: CSV }]), context());
    expect((sent.data as CampaignRoiAnswer).marketing_metrics.period.label).toBe('2025-11');
  });

  it('refuses a follow-up naming a month it cannot place rather than answering about the last period', async () => {
    const loadStoredRows = vi.fn(async () => parseCampaignCsv(CSV));
    const skill = createCampaignRoiSkill({ llm: null, loadStoredRows });
    await skill.handler(input('How did Q4 2025 go for ROI?'), context());
    await expect(skill.handler(input('and in October?'), context())).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    expect(loadStoredRows).toHaveBeenCalledTimes(1);
  });

  it('answers a follow-up about a period named relative to the one its conversation is about', async () => {
    const loadStoredRows = vi.fn(async () => parseCampaignCsv(CSV));
    const skill = createCampaignRoiSkill({ llm: null, loadStoredRows });
    await skill.handler(input('How did Q4 2025 go for ROI?'), context());
    const before = await skill.handler(input('and the quarter before?'), context());
    expect((before.data as CampaignRoiAnswer).marketing_metrics.period.label).toBe('2025-Q3');
    // The rows loaded cover the period and the one before it (the comparison).
    expect(loadStoredRows).toHaveBeenNthCalledWith(2, { from: '2025-04-01', to: '2025-09-30' });
    // The conversation is now about 2025-Q3: "the one after that" counts from it.
    const chained = await skill.handler(input('and the one after that?'), context());
    expect((chained.data as CampaignRoiAnswer).marketing_metrics.period.label).toBe('2025-Q4');
    // Months do not count from a quarter: refused, naming the period it would count from.
    await expect(skill.handler(input('and the month before?'), context())).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'period', value: 'month before', from: '2025-Q4' },
    });
    // A conversation that has asked about no period has nothing to count from.
    await expect(
      skill.handler({ ...input('and the quarter before?'), contextId: 'ctx-3' }, context()),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'period', value: 'quarter before' },
    });
    expect(loadStoredRows).toHaveBeenCalledTimes(3);
  });

  it.each([
    [
      '2025-12-01',
      /no stored campaign rows for 2024-Q4 or the period before it \(the latest stored data is from 2025-12-01\)/,
    ],
    [
      null,
      /no stored campaign rows for 2024-Q4 or the period before it \(import some with `agenthub import metrics FILE`\)/,
    ],
  ])('names the period when nothing is stored for it (latest stored date %s)', async (latest, message) => {
    const skill = createCampaignRoiSkill({
      llm: null,
      loadStoredRows: async () => [],
      latestStoredDate: async () => latest,
    });
    const refusal = skill.handler(input('How did Q4 2024 go?'), context());
    await expect(refusal).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'period', value: '2024-Q4', latestStoredDate: latest },
    });
    await expect(refusal).rejects.toThrow(message);
  });

  it('refuses a year-less quarter when nothing is stored, saying how to name a period', async () => {
    const skill = createCampaignRoiSkill({
      llm: null,
      loadStoredRows: async () => [],
      latestStoredDate: async () => null,
    });
    await expect(skill.handler(input('How did our Q4 campaigns do?'), context())).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
  });

  it.each([
    ['no rows and no period', input('How are we doing?'), {}],
    ['a period but no stored data configured', input('', [{ period: '2025-Q4' }]), {}],
  ])('refuses %s with VALIDATION_FAILED', async (_name, request) => {
    const skill = createCampaignRoiSkill({ llm: null });
    await expect(skill.handler(request, context())).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('names the row and field of a bad row', async () => {
    const skill = createCampaignRoiSkill({ llm: null });
    const rows = [
      { campaign: 'a', channel: 'search', date: '2025-10-01', spend: '10', impressions: 100, clicks: 5 },
      { campaign: 'a', channel: 'search', date: '2025-10-02', spend: '10', impressions: 100, clicks: 500 },
    ];
    await expect(skill.handler(input('', [{ rows }]), context())).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { row: 2, field: 'clicks', value: 500 },
    });
  });

  it('regenerates a narrative that quotes a wrong number and returns the grounded one', async () => {
    const llm = script([
      narrative('Q4 revenue was $9,999 at a ROAS of 7.1x.'),
      narrative('Q4 revenue was $6,670 at a ROAS of 4.76x, with spend of $1.4k.'),
    ]);
    const skill = createCampaignRoiSkill({ llm });
    const result = await skill.handler(input('Q4 2025 ROI', [{ csv: CSV }]), context());
    const answer = result.data as CampaignRoiAnswer;
    expect(answer.llm_analysis!.generations).toBe(2);
    expect(answer.llm_analysis!.first_attempt_ungrounded.map((item) => item.number)).toEqual([
      '$9,999',
      '7.1x',
    ]);
    expect(answer.llm_analysis!.grounding).toEqual({ checked: 3, grounded: 3, ungrounded: [] });
    expect(answer.collaboration_ready).toBe(true);
    expect(answer.confidence.components.grounding).toBe(1);
    expect(llm.prompts[1]).toContain('$9,999');
    expect(result.metadata).toMatchObject({
      llm: { model: 'scripted-mistral', generations: 2, prompt_tokens: 240, completion_tokens: 120 },
    });
    expect(result.text).toContain('$6,670');
  });

  it('flags a narrative that keeps lying and marks the answer not ready for collaboration', async () => {
    const llm = script([narrative('ROAS was 9.1x.'), narrative('ROAS was 8.2x and CTR 93.3%.')]);
    const skill = createCampaignRoiSkill({ llm });
    const answer = (await skill.handler(input('', [{ csv: CSV }]), context())).data as CampaignRoiAnswer;
    expect(answer.llm_analysis!.grounding.ungrounded).toEqual([
      { section: 'performance_summary', text: 'ROAS was 8.2x and CTR 93.3%.', number: '8.2x' },
      { section: 'performance_summary', text: 'ROAS was 8.2x and CTR 93.3%.', number: '93.3%' },
    ]);
    expect(answer.collaboration_ready).toBe(false);
    expect(answer.confidence.components.grounding).toBe(0);
  });

  it('keeps the metrics and says why when the model output is invalid', async () => {
    const llm = script([{ performance_summary: 'x'.repeat(5000) }]);
    const skill = createCampaignRoiSkill({ llm });
    const answer = (await skill.handler(input('', [{ csv: CSV }]), context())).data as CampaignRoiAnswer;
    expect(answer.llm_analysis).toBeNull();
    expect(answer.llm_unavailable_reason).toMatch(/produced no usable narrative/);
    expect(answer.marketing_metrics.overall.spend).toBe('1400.00');
  });

  it('stops with CANCELED when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const skill = createCampaignRoiSkill({ llm: null });
    await expect(skill.handler(input('', [{ csv: CSV }]), context(controller.signal))).rejects.toMatchObject({
      code: 'CANCELED',
    });
  });
});

describe('ROI narrative schema', () => {
  function unbounded(schema: unknown, path: string): string[] {
    if (schema === null || typeof schema !== 'object') return [];
    const node = schema as Record<string, unknown>;
    const problems: string[] = [];
    if (node.type === 'string' && typeof node.maxLength !== 'number')
      problems.push(`${path} has no maxLength`);
    if (node.type === 'array' && typeof node.maxItems !== 'number') problems.push(`${path} has no maxItems`);
    if (Array.isArray(node.type)) problems.push(`${path} uses a type array (use oneOf)`);
    if (node.type === 'number' || node.type === 'integer')
      problems.push(`${path} asks the model for a number`);
    for (const [key, value] of Object.entries(node)) {
      if (Array.isArray(value))
        value.forEach((item, index) => problems.push(...unbounded(item, `${path}.${key}[${index}]`)));
      else if (typeof value === 'object') problems.push(...unbounded(value, `${path}.${key}`));
    }
    return problems;
  }

  it('bounds every string and array, uses oneOf for the nullable string, and asks for no numbers', () => {
    expect(unbounded(ROI_NARRATIVE_SCHEMA, '$')).toEqual([]);
  });

  it('rejects over-long or extra fields with LLM_OUTPUT_INVALID', () => {
    expect(() => validateRoiNarrative({ ...narrative('ok'), roi_analysis: 'x'.repeat(501) })).toThrow(
      expect.objectContaining({ code: 'LLM_OUTPUT_INVALID' }),
    );
    expect(() => validateRoiNarrative({ ...narrative('ok'), roi_percent: 12 })).toThrow(
      expect.objectContaining({ code: 'LLM_OUTPUT_INVALID' }),
    );
    expect(validateRoiNarrative(narrative('ok')).performance_summary).toBe('ok');
  });
});
