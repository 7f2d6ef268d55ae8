// spoke_marketing/creatives.ts with a scripted model and an in-memory creatives table: discriminatory copy is
// stored unapproved with its findings even after the one regeneration, clean copy is approved with its
// report, an LLM review can only withhold approval, and without a model no copy is invented.
import { describe, expect, it } from 'vitest';
import type { Database, Queryable } from '../../shared/db.js';
import { isAppError } from '../../shared/errors.js';
import type { LlmClient, LlmUsage, StructuredRequest, StructuredResult } from '../../shared/llm_client.js';
import { silentLogger } from '../../shared/log.js';
import { LLM_REVIEW_SCHEMA } from '../../spoke_marketing/compliance.js';
import {
  creativeCopySchema,
  generateCreatives,
  type CreativeCopy,
  type GuidelineSearch,
} from '../../spoke_marketing/creatives.js';
import { APPROVE_CREATIVE, INSERT_CREATIVE, type PersonaRow } from '../../spoke_marketing/store.js';

const USAGE: LlmUsage = {
  promptTokens: 10,
  reusedPrefixTokens: 0,
  completionTokens: 10,
  timeToFirstTokenMs: 1,
  totalMs: 2,
  generationTokensPerSecond: null,
  attempts: 1,
};

const PERSONA: PersonaRow = {
  id: 7,
  name: 'Downtown condo seekers',
  description: 'Mid-budget condo buyers looking downtown within three months',
  clusterLabel: 0,
  size: 42,
  summary: { averageBudgetMinor: 45_000_000, propertyTypes: [{ value: 'condo', share: 0.9 }] },
  discoveryRunKey: 'run-1',
  active: true,
  createdAt: '2025-01-01T00:00:00.000Z',
};

const DISCRIMINATORY: CreativeCopy = {
  headline: 'Perfect for young couples, no kids',
  body: 'Sunny two-bedroom condo downtown with a rooftop deck.',
  cta: 'Book a tour',
};
const CLEAN: CreativeCopy = {
  headline: 'Sunny two-bedroom condo downtown',
  body: 'Open kitchen, walk-in closets and a rooftop deck on a quiet street near the park.',
  cta: 'Schedule a tour',
};

interface ScriptedLlm extends LlmClient {
  readonly copyPrompts: string[];
  readonly reviewedTexts: string[];
}

/** A model that answers copy requests from `drafts` (one list per call) and reviews with `review`. */
function scriptedLlm(
  drafts: CreativeCopy[][],
  review: (text: string) => unknown = () => ({ compliant: true, concerns: [] }),
): ScriptedLlm {
  const copyPrompts: string[] = [];
  const reviewedTexts: string[] = [];
  return {
    modelName: 'scripted-copywriter',
    copyPrompts,
    reviewedTexts,
    async generateStructured<T>(request: StructuredRequest<T>): Promise<StructuredResult<T>> {
      let value: unknown;
      if (request.schema === LLM_REVIEW_SCHEMA) {
        const text = /"""\n([\s\S]*)\n"""/.exec(request.prompt)?.[1] ?? '';
        reviewedTexts.push(text);
        value = review(text);
      } else {
        copyPrompts.push(request.prompt);
        const next = drafts.shift();
        if (next === undefined) throw new Error('copy script exhausted');
        value = { variants: next };
      }
      return { value: request.validate(value), rawText: JSON.stringify(value), usage: USAGE };
    },
    async generateText() {
      throw new Error('not scripted');
    },
    async embed() {
      throw new Error('not scripted');
    },
    async close() {},
  };
}

interface StoredCreative {
  id: number;
  personaId: unknown;
  channel: unknown;
  headline: string;
  body: string;
  report: Record<string, unknown>;
  approved: boolean;
}

/** The creatives table in memory: the two statements the generator issues. */
function memoryCreatives(): Queryable & Pick<Database, 'transaction'> & { rows: StoredCreative[] } {
  const rows: StoredCreative[] = [];
  const db = {
    rows,
    async query<R>(text: string, params: readonly unknown[] = []) {
      if (text === INSERT_CREATIVE) {
        const id = rows.length + 1;
        rows.push({
          id,
          personaId: params[1],
          channel: params[2],
          headline: String(params[3]),
          body: String(params[4]),
          report: JSON.parse(String(params[6])) as Record<string, unknown>,
          approved: false,
        });
        return { rows: [{ id: String(id) }] as R[], rowCount: 1 };
      }
      if (text === APPROVE_CREATIVE) {
        const row = rows.find((candidate) => candidate.id === params[0]);
        if (row === undefined || row.approved) return { rows: [] as R[], rowCount: 0 };
        row.approved = true;
        return { rows: [{ id: String(row.id) }] as R[], rowCount: 1 };
      }
      throw new Error(`unexpected SQL: ${text}`);
    },
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      return fn(db);
    },
  };
  return db;
}

function generator(llm: LlmClient | null, retrieval?: GuidelineSearch) {
  const db = memoryCreatives();
  return {
    db,
    run: (count: number) =>
      generateCreatives(
        { db, llm, log: silentLogger(), ...(retrieval === undefined ? {} : { retrieval }) },
        { persona: PERSONA, format: 'social_post', count },
      ),
  };
}

describe('creative generation with layered Fair Housing compliance', () => {
  it('stores "perfect for young couples, no kids" unapproved with the familial-status finding, even after the regeneration also fails', async () => {
    const llm = scriptedLlm([[DISCRIMINATORY], [DISCRIMINATORY]]);
    const { db, run } = generator(llm);
    const result = await run(1);

    expect(result.creatives).toHaveLength(2);
    expect(result.approvedIds).toEqual([]);
    expect(result.regenerated).toBe(1);
    for (const creative of result.creatives) {
      expect(creative.approved).toBe(false);
      expect(creative.compliance.approved).toBe(false);
      expect(creative.compliance.layers.rules.clean).toBe(false);
      expect(creative.compliance.report.compliant).toBe(false);
      const classes = creative.compliance.layers.rules.findings.map((finding) => finding.protectedClass);
      expect(classes).toContain('familial_status');
    }
    const [first, second] = result.creatives;
    expect(second!.compliance.attempt).toBe(2);
    expect(second!.compliance.replaces).toBe(first!.id);
    // Both drafts are in the table, unapproved, with the full report.
    expect(db.rows.map((row) => row.approved)).toEqual([false, false]);
    expect(JSON.stringify(db.rows[0]!.report)).toContain('familial_status');
    expect(db.rows[0]!.personaId).toBe(PERSONA.id);
    // The regeneration was told why the first draft failed.
    expect(llm.copyPrompts).toHaveLength(2);
    expect(llm.copyPrompts[1]).toMatch(/rejected by the Fair Housing review/);
    expect(llm.copyPrompts[1]).toContain('no kids');
    // The persona went into the prompt with the property-not-people rule.
    expect(llm.copyPrompts[0]).toContain(PERSONA.name);
    expect(llm.copyPrompts[0]).toMatch(/not describe the people/);
  });

  it('approves clean copy and stores it with every layer of the report', async () => {
    const llm = scriptedLlm([[CLEAN, { ...CLEAN, headline: 'Rooftop deck condo downtown' }]]);
    const { db, run } = generator(llm);
    const result = await run(2);

    expect(result.creatives.map((creative) => creative.variant)).toEqual(['A', 'B']);
    expect(result.approvedIds).toEqual([1, 2]);
    expect(result.regenerated).toBe(0);
    const creative = result.creatives[0]!;
    expect(creative.approved).toBe(true);
    expect(creative.compliance.reasons).toEqual([]);
    expect(creative.compliance.layers).toMatchObject({
      rules: { clean: true, findings: [] },
      toxicity: { clean: true, matches: 0 },
      llmReview: { status: 'clean' },
    });
    expect(creative.compliance.report.compliant).toBe(true);
    expect(db.rows.every((row) => row.approved)).toBe(true);
    expect(db.rows[0]!.channel).toBe('social');
    expect(llm.reviewedTexts[0]).toBe(`${CLEAN.headline}\n${CLEAN.body}\n${CLEAN.cta}`);
  });

  it('withholds approval when the LLM review flags copy the rules passed', async () => {
    const llm = scriptedLlm([[CLEAN], [CLEAN]], () => ({
      compliant: false,
      concerns: ['"quiet street" may signal a preference against households with children'],
    }));
    const { db, run } = generator(llm);
    const result = await run(1);

    expect(result.approvedIds).toEqual([]);
    for (const creative of result.creatives) {
      expect(creative.approved).toBe(false);
      expect(creative.compliance.layers.rules.clean).toBe(true);
      expect(creative.compliance.layers.llmReview.status).toBe('flagged');
      expect(creative.compliance.report.compliant).toBe(false);
      expect(creative.compliance.report.findings.some((finding) => finding.source === 'llm')).toBe(true);
    }
    expect(db.rows.some((row) => row.approved)).toBe(false);
  });

  it('approves the regenerated copy while the rejected draft stays unapproved', async () => {
    const llm = scriptedLlm([[DISCRIMINATORY], [CLEAN]]);
    const { db, run } = generator(llm);
    const result = await run(1);

    expect(result.creatives.map((creative) => creative.approved)).toEqual([false, true]);
    expect(result.approvedIds).toEqual([2]);
    expect(result.creatives[1]!.compliance.replaces).toBe(1);
    expect(db.rows.map((row) => row.approved)).toEqual([false, true]);
  });

  it('does not count a failed LLM review as clean', async () => {
    const llm = scriptedLlm([[CLEAN], [CLEAN]], () => ({ compliant: 'maybe' }));
    const { run } = generator(llm);
    const result = await run(1);

    expect(result.approvedIds).toEqual([]);
    expect(result.creatives[0]!.compliance.layers.llmReview.status).toBe('failed');
  });

  it('puts retrieved brand guidelines in the prompt and cites their chunk ids', async () => {
    const llm = scriptedLlm([[CLEAN]]);
    const retrieval: GuidelineSearch = {
      async search() {
        return [
          {
            content: 'Always mention the rooftop amenities.',
            source: 'brand.md',
            chunkIndex: 3,
            similarity: 0.9,
          },
        ];
      },
    };
    const { db, run } = generator(llm, retrieval);
    const result = await run(1);

    expect(llm.copyPrompts[0]).toContain('[brand.md#3] Always mention the rooftop amenities.');
    expect(result.guidelines).toEqual({ used: true, chunkIds: ['brand.md#3'] });
    expect(db.rows[0]!.report.guidelineChunkIds).toEqual(['brand.md#3']);
  });

  it('refuses to write copy without a model (MODEL_NOT_FOUND), inventing nothing', async () => {
    const { db, run } = generator(null);
    const error = await run(1).catch((caught: unknown) => caught);
    expect(isAppError(error, 'MODEL_NOT_FOUND')).toBe(true);
    expect(db.rows).toHaveLength(0);
  });

  it('bounds every string and the variant count in the output schema', () => {
    const schema = creativeCopySchema('search_ad', 3) as {
      properties: {
        variants: {
          minItems: number;
          maxItems: number;
          items: { properties: Record<string, { maxLength: number }> };
        };
      };
    };
    expect(schema.properties.variants.minItems).toBe(3);
    expect(schema.properties.variants.maxItems).toBe(3);
    expect(schema.properties.variants.items.properties.headline!.maxLength).toBe(30);
    expect(schema.properties.variants.items.properties.body!.maxLength).toBe(90);
    expect(schema.properties.variants.items.properties.cta!.maxLength).toBe(30);
  });
});
