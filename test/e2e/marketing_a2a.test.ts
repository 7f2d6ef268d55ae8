// e2e proof of the marketing spoke behind the hub with the tiny GGUF as MODEL_PATH: an A2A campaign-roi-analysis
// request through the hub returns a data part valid against the skill's outputSchema from the hub's agent card, with
// metrics equal to sums of the CSV and a narrative whose grounding report is consistent with collaboration_ready.
import { randomUUID } from 'node:crypto';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSampleCampaignCsv } from '../../spoke_marketing/sample_data.js';
import { startSystem, waitFor, type RunningSystem } from '../helpers/system.js';
import { tinyModelPath } from '../helpers/tiny_model.js';

const CSV = generateSampleCampaignCsv({ seed: 3 });

let system: RunningSystem;

beforeAll(async () => {
  system = await startSystem({ marketingModel: await tinyModelPath() });
}, 150_000);

afterAll(async () => {
  await system?.close();
});

interface A2aTask {
  id: string;
  status: { state: string };
  artifacts?: { parts: { text?: string; data?: unknown }[] }[];
  metadata?: Record<string, unknown>;
}

interface Grounding {
  checked: number;
  grounded: number;
  ungrounded: { number: string; statement?: string }[];
}

interface RoiAnswer {
  analysis_type: string;
  marketing_metrics: {
    period: { label: string };
    overall: { spend: string; revenue: string | null };
  };
  llm_analysis:
    ({ grounding: Grounding; generations: number; model: string } & Record<string, unknown>) | null;
  llm_unavailable_reason?: string;
  collaboration_ready: boolean;
  confidence_score: number;
  confidence: { components: { grounding: number | null } };
}

async function analyse(): Promise<{ task: A2aTask; text: string; data: RoiAnswer }> {
  const answer = await system.a2a('SendMessage', {
    tenant: 'marketing',
    message: {
      messageId: randomUUID(),
      role: 'ROLE_USER',
      parts: [
        { text: 'Analyse Q4 2025 campaign performance for an ROI calculation' },
        { data: { csv: CSV, period: '2025-Q4' } },
      ],
    },
    metadata: { 'agenthub/skill': 'campaign-roi-analysis' },
  });
  expect(answer.status, JSON.stringify(answer.body).slice(0, 2000)).toBe(200);
  const task = (answer.body as { result: { task: A2aTask } }).result.task;
  expect(task.status.state, JSON.stringify(task.status)).toBe('TASK_STATE_COMPLETED');
  const parts = (task.artifacts ?? []).flatMap((artifact) => artifact.parts);
  const data = parts.find((part) => part.data !== undefined)?.data;
  expect(data, 'a data part').toBeDefined();
  return { task, text: parts.map((part) => part.text ?? '').join('\n'), data: data as RoiAnswer };
}

let first: ReturnType<typeof analyse> | undefined;
function analysed(): ReturnType<typeof analyse> {
  first ??= analyse();
  return first;
}

function q4Sum(column: string): string {
  const [header, ...lines] = CSV.trim().split('\n');
  const index = header!.split(',').indexOf(column);
  let cents = 0;
  for (const line of lines) {
    const cells = line.split(',');
    if (cells[0]! < '2025-10-01' || cells[0]! > '2025-12-31') continue;
    const [whole, fraction = ''] = cells[index]!.split('.');
    cents += Number(whole) * 100 + Number(fraction.padEnd(2, '0'));
  }
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

describe('marketing campaign-roi-analysis through the hub (tiny model)', () => {
  it("returns a data part valid against the skill's outputSchema from the hub's agent card", async () => {
    // The hub fetches each spoke's card after the link is up (retrying while the spoke is busy starting).
    const outputSchema = await waitFor(
      async () => {
        const card = await system.hub('/.well-known/agent-card.json');
        expect(card.status).toBe(200);
        const extensions = (
          card.body as { capabilities: { extensions: { uri: string; params?: Record<string, unknown> }[] } }
        ).capabilities.extensions;
        const schemas = extensions.find((extension) => extension.uri.includes('skill-schemas'))?.params as
          { tenants: Record<string, Record<string, { outputSchema?: object }>> } | undefined;
        return schemas?.tenants.marketing?.['campaign-roi-analysis']?.outputSchema;
      },
      'the outputSchema of marketing/campaign-roi-analysis on the hub card',
      { timeoutMs: 40_000, extra: () => system.logTails() },
    );
    const validate = new Ajv({ strict: false, allErrors: true }).compile(outputSchema);

    const { data } = await analysed();
    expect(validate(data), JSON.stringify(validate.errors)).toBe(true);
    // And the schema rejects what is not such an answer, so the check above can fail.
    expect(validate({ ...data, analysis_type: 'roi_review' })).toBe(false);
    expect(data.marketing_metrics.period.label).toBe('2025-Q4');
    expect(data.marketing_metrics.overall.spend).toBe(q4Sum('spend'));
    expect(data.marketing_metrics.overall.revenue).toBe(q4Sum('revenue'));
  }, 120_000);

  it('narrates with the model and reports a consistent grounding check that collaboration_ready follows', async () => {
    const { data, text, task } = await analysed();
    expect(data.llm_unavailable_reason, 'the tiny model should have produced a narrative').toBeUndefined();
    expect(data.llm_analysis).not.toBeNull();
    const analysis = data.llm_analysis!;
    const grounding = analysis.grounding;
    expect(Number.isInteger(grounding.checked) && grounding.checked >= 0).toBe(true);
    expect(grounding.checked).toBe(grounding.grounded + grounding.ungrounded.length);
    expect([1, 2]).toContain(analysis.generations);
    expect(data.collaboration_ready).toBe(grounding.ungrounded.length === 0);
    expect(data.confidence.components.grounding).toBe(
      grounding.checked === 0 ? 1 : Math.round((grounding.grounded / grounding.checked) * 1e4) / 1e4,
    );
    expect((task.metadata?.grounding ?? null) === null || typeof task.metadata?.grounding === 'object').toBe(
      true,
    );
    if (grounding.ungrounded.length === 0) {
      // Passed: the summary repeats the narrative.
      expect(text).toContain(String(analysis.performance_summary));
    } else {
      // Failed: the answer is flagged and the misquoted numbers are named, not repeated as the summary.
      expect(text).toContain('flagged');
      for (const item of grounding.ungrounded) expect(text).toContain(item.number);
    }
    console.info(
      `grounding of the tiny model's narrative: checked ${grounding.checked}, grounded ${grounding.grounded}, ` +
        `ungrounded ${JSON.stringify(grounding.ungrounded.map((item) => item.number))}, generations ${analysis.generations}, ` +
        `collaboration_ready ${data.collaboration_ready}; summary ${JSON.stringify(String(analysis.performance_summary).slice(0, 200))}`,
    );
  });

  it('gives the same narrative and grounding for the same request (the tiny model is deterministic)', async () => {
    const { data } = await analysed();
    const again = await analyse();
    expect(again.data.llm_analysis).toEqual(data.llm_analysis);
    expect(again.data.collaboration_ready).toBe(data.collaboration_ready);
  }, 120_000);
});
