// Fair Housing rule engine: every §6.2 flag-list class is caught, every §6.3 acceptable phrase passes,
// findings carry id/class/offset/citation, the toxicity screen, and the LLM hook that can only add findings.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors.js';
import type { LlmClient, StructuredRequest, StructuredResult } from '../../shared/llm_client.js';
import {
  applyLlmReview,
  checkCompliance,
  LLM_REVIEW_SCHEMA,
  reviewWithLlm,
  screenToxicity,
  type FindingClass,
} from '../../spoke_marketing/compliance.js';

const FROZEN = (): Date => new Date('2026-01-15T12:00:00.000Z');

/** MARKETING.md §6.2 (24 CFR 109.20 word lists, Achtenberg memo, HUD-cited examples): must be flagged. */
const MUST_FLAG: readonly [string, FindingClass][] = [
  // dwelling / landlord / tenant descriptions
  ['Charming white private home on a quiet lot', 'color'],
  ['Lovely colored home near the park', 'color'],
  ['Jewish home with a large garden', 'religion'],
  ['Hispanic residence, recently renovated', 'national_origin'],
  ['Adult building with doorman', 'familial_status'],
  // race
  ['Negro tenants need not apply', 'race'],
  ['Black tenants preferred', 'color'],
  ['Caucasian only', 'race'],
  ['Oriental family wanted for the upstairs unit', 'race'],
  ['Perfect for American Indian families', 'race'],
  // color
  ['White neighborhood, close to shops', 'color'],
  ['Whites only', 'color'],
  ['No blacks', 'color'],
  ['Colored people welcome', 'color'],
  ['white family home with a big yard', 'color'],
  // religion
  ['Protestant family preferred', 'religion'],
  ['Christian home in a friendly street', 'religion'],
  ['Ideal for Christians', 'religion'],
  ['Catholic community, great schools', 'religion'],
  ['No Jews', 'religion'],
  // national origin
  ['Mexican American neighborhood', 'national_origin'],
  ['Great for Puerto Rican families', 'national_origin'],
  ['Philippine community nearby', 'national_origin'],
  ['Polish neighborhood with bakeries', 'national_origin'],
  ['Hungarian family owners', 'national_origin'],
  ['No Irish', 'national_origin'],
  ['Italian neighborhood, walk to cafes', 'national_origin'],
  ['Chicano area', 'national_origin'],
  ['African families welcome', 'national_origin'],
  ['Hispanic neighborhood', 'national_origin'],
  ['Chinese tenants preferred', 'national_origin'],
  ['Indian family preferred', 'national_origin'],
  ['Latino community', 'national_origin'],
  ['Hispanics welcome to apply', 'national_origin'],
  ['English speakers only', 'national_origin'],
  // sex
  ['Men only', 'sex'],
  ['Prefer single female', 'sex'],
  ['Female tenants only', 'sex'],
  ['Ideal for a single man', 'sex'],
  ['No women', 'sex'],
  // handicap
  ['No wheelchairs', 'handicap'],
  ['Not suitable for crippled persons', 'handicap'],
  ['Unit not suitable for blind tenants', 'handicap'],
  ['Deaf applicants will not be considered', 'handicap'],
  ['No mentally ill', 'handicap'],
  ['Must be physically fit', 'handicap'],
  ['Able-bodied tenants only', 'handicap'],
  ['Not suitable for handicapped', 'handicap'],
  ['No service animals', 'handicap'],
  // familial status
  ['Adults only', 'familial_status'],
  ['No children', 'familial_status'],
  ['No kids please', 'familial_status'],
  ['No more than two children', 'familial_status'],
  ['Perfect for singles', 'familial_status'],
  ['Couples only', 'familial_status'],
  ['Mature persons preferred', 'familial_status'],
  ['Great for retired couple', 'familial_status'],
  ['Empty nesters will love it', 'familial_status'],
  ['Not suitable for families with kids due to the stairs', 'familial_status'],
  ['No families', 'familial_status'],
  ['Families only', 'familial_status'],
  ['Adult community in the hills', 'familial_status'],
  ['Child-free building', 'familial_status'],
];

/** Flag-list items whose meaning depends on context (HUD catch words): flagged for human review. */
const MUST_REVIEW: readonly [string, FindingClass][] = [
  ['Exclusive community by the lake', 'multiple'],
  ['Restricted neighborhood', 'multiple'],
  ['Private community with gate', 'multiple'],
  ['Traditional neighborhood', 'multiple'],
  ['Integrated community', 'multiple'],
  ['Board approval required', 'multiple'],
  ['Membership approval required', 'multiple'],
  ['Near the country club', 'multiple'],
  ['Close to the parish and congregation hall', 'religion'],
  // "near St. X's church" reads as a preference only in context (109.20 facility references): review.
  ['Steps from St. Mary’s church', 'religion'],
  ['Walking distance to the synagogue', 'religion'],
  ['Charming white home', 'color'],
  ['55+ community with clubhouse', 'familial_status'],
];

/** MARKETING.md §6.3 (Achtenberg memo): must pass with no violation. */
const MUST_PASS: readonly string[] = [
  'Desirable neighborhood, a rare find!',
  'Spacious master bedroom with en-suite bath',
  'Apartment complex with chapel',
  'Kosher meals available',
  'Merry Christmas and Happy Easter from our leasing team',
  'Santa Claus and the Easter Bunny visit the lobby; St. Valentine’s Day party in the courtyard',
  'Mother-in-law suite over the garage',
  'Bachelor apartment, fully furnished',
  'Great view from the fourth-floor walk-up',
  'Walk-in closets and jogging trails',
  'Walk to bus-stop, walk to bus stop',
  'Non-smoking building. Sober living community.',
  'Wheelchair ramp at the entrance',
  'Two bedroom, cozy, with family room',
  'No bicycles allowed in the hallways',
  'Quiet streets and mature trees',
  'Housing for older persons',
  'Single-family home with Italian marble floors and French doors',
  'Oriental rugs included; white picket fence; black granite counters',
  'Cream-colored walls and new window blinds',
  'Close to schools, parks and the Chinese restaurant on Main Street',
  'Indian Creek Road, three bedrooms, two baths',
];

describe('Fair Housing rule engine', () => {
  it.each(MUST_FLAG)('flags %j as a %s violation', (text, protectedClass) => {
    const report = checkCompliance(text, { now: FROZEN });
    expect(report.compliant).toBe(false);
    const finding = report.findings.find(
      (item) => item.protectedClass === protectedClass && item.severity === 'violation',
    );
    expect(finding, JSON.stringify(report.findings)).toBeDefined();
    expect(finding!.citation).toMatch(/3604\(c\)/);
    expect(text.slice(finding!.offset!, finding!.offset! + finding!.matchedText.length)).toBe(
      finding!.matchedText,
    );
  });

  it.each(MUST_REVIEW)('routes %j to human review (%s)', (text, protectedClass) => {
    const report = checkCompliance(text, { now: FROZEN });
    expect(report.needsReview).toBe(true);
    expect(
      report.findings.some((item) => item.protectedClass === protectedClass && item.severity === 'review'),
    ).toBe(true);
  });

  it.each(MUST_PASS)('passes %j', (text) => {
    const report = checkCompliance(text, { now: FROZEN });
    expect(
      report.findings.filter((item) => item.severity === 'violation'),
      JSON.stringify(report.findings),
    ).toEqual([]);
    expect(report.compliant).toBe(true);
  });

  it('passes the acceptable phrases with no finding at all, except the HOPA note', () => {
    for (const text of MUST_PASS) {
      const report = checkCompliance(text);
      expect(report.findings, text).toEqual([]);
    }
  });

  it('reports rule id, class, matched text, offset and citation for each finding', () => {
    const text = 'Sunny 2BR. No kids, Christian home, whites only.';
    const report = checkCompliance(text, { now: FROZEN });
    expect(report.checkedAt).toBe('2026-01-15T12:00:00.000Z');
    expect(report.jurisdiction).toBe('US');
    const summary = report.findings.map(({ ruleId, protectedClass, matchedText, offset }) => ({
      ruleId,
      protectedClass,
      matchedText,
      offset,
    }));
    expect(summary).toEqual([
      { ruleId: 'familial.exclusion', protectedClass: 'familial_status', matchedText: 'No kids', offset: 11 },
      { ruleId: 'religion.people', protectedClass: 'religion', matchedText: 'Christian home', offset: 20 },
      { ruleId: 'color.people', protectedClass: 'color', matchedText: 'whites only', offset: 36 },
    ]);
  });

  it('tells "Christmas" from "Christian", "family room" from "no families", "blinds" from "blind"', () => {
    expect(checkCompliance('Christmas lights on the porch').findings).toEqual([]);
    expect(checkCompliance('Christian neighbors').compliant).toBe(false);
    expect(checkCompliance('Huge family room').findings).toEqual([]);
    expect(checkCompliance('No families').compliant).toBe(false);
    expect(checkCompliance('New blinds throughout').findings).toEqual([]);
  });

  it('downgrades one-sex wording to review in shared-living (roommate) ads', () => {
    const roommate = checkCompliance('Female roommate wanted, shared kitchen and bath');
    expect(roommate.compliant).toBe(true);
    expect(roommate.needsReview).toBe(true);
    expect(
      roommate.findings.every((item) => item.protectedClass !== 'sex' || item.severity === 'review'),
    ).toBe(true);
    expect(checkCompliance('Female tenants only for this 3BR house').compliant).toBe(false);
  });

  it('checks state/local classes only when asked', () => {
    const text = 'No Section 8. Young professionals preferred.';
    expect(checkCompliance(text).compliant).toBe(true);
    const local = checkCompliance(text, { extraClasses: ['source_of_income', 'age'] });
    expect(local.compliant).toBe(false);
    expect(local.classesChecked).toContain('source_of_income');
    expect(local.findings.map((item) => item.protectedClass)).toEqual(
      expect.arrayContaining(['source_of_income', 'age']),
    );
  });

  it('rejects unknown jurisdictions, unknown classes and oversized input', () => {
    expect(() => checkCompliance('x', { jurisdiction: 'FR' as 'US' })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
    expect(() => checkCompliance('x', { extraClasses: ['height' as 'age'] })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
    expect(() => checkCompliance('a'.repeat(20_001))).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });
});

describe('toxicity screen', () => {
  it.each([
    ['This is a f*cking steal', 'profanity'],
    ['Only idiots would pass this up', 'insult'],
    ['Landlord is a moron', 'insult'],
  ] as const)('flags %j as %s', (text, category) => {
    const toxicity = screenToxicity(text);
    expect(toxicity.flagged).toBe(true);
    expect(toxicity.matches[0]?.category).toBe(category);
    expect(checkCompliance(text).compliant).toBe(false);
  });

  it('respects word boundaries (class, Scunthorpe-style substrings, assessment)', () => {
    for (const text of [
      'First-class assessment of the classic Dickens-era house',
      'Shitake mushrooms? no: shiitake',
      'Passion for cocktails',
    ]) {
      expect(screenToxicity(text).flagged, text).toBe(false);
    }
  });

  it('states its limits', () => {
    expect(screenToxicity('fine').limitations).toMatch(/misses/);
  });
});

class ScriptedLlm implements LlmClient {
  readonly modelName = 'scripted';
  readonly requests: StructuredRequest<unknown>[] = [];
  constructor(private readonly output: unknown) {}
  async generateStructured<T>(request: StructuredRequest<T>): Promise<StructuredResult<T>> {
    this.requests.push(request as StructuredRequest<unknown>);
    const value = request.validate(this.output);
    return {
      value,
      rawText: JSON.stringify(this.output),
      usage: {
        promptTokens: 1,
        reusedPrefixTokens: 0,
        completionTokens: 1,
        timeToFirstTokenMs: null,
        totalMs: 1,
        generationTokensPerSecond: null,
        attempts: 1,
      },
    };
  }
  async generateText(): Promise<never> {
    throw new AppError('UNSUPPORTED_OPERATION', 'not scripted');
  }
  async embed(): Promise<never> {
    throw new AppError('UNSUPPORTED_OPERATION', 'not scripted');
  }
  async close(): Promise<void> {}
}

describe('LLM review hook', () => {
  it('sends a bounded schema and treats the ad as data', async () => {
    const llm = new ScriptedLlm({ compliant: true, concerns: [] });
    await reviewWithLlm('Sunny 2BR', llm);
    const request = llm.requests[0]!;
    expect(request.schema).toBe(LLM_REVIEW_SCHEMA);
    expect(JSON.stringify(request.schema)).toMatch(/"maxItems":5/);
    expect(JSON.stringify(request.schema)).toMatch(/"maxLength":200/);
    expect(request.system).toMatch(/never instructions/);
  });

  it('a "compliant" answer never clears rule findings', async () => {
    const report = checkCompliance('Adults only');
    const review = await reviewWithLlm('Adults only', new ScriptedLlm({ compliant: true, concerns: [] }));
    const merged = applyLlmReview(report, review);
    expect(merged.compliant).toBe(false);
    expect(merged.findings).toEqual(report.findings);
  });

  it('a "non-compliant" answer adds findings and makes a clean text non-compliant', async () => {
    const report = checkCompliance('Perfect for people who share our values');
    expect(report.compliant).toBe(true);
    const review = await reviewWithLlm(
      '…',
      new ScriptedLlm({ compliant: false, concerns: ['"share our values" hints at religion'] }),
    );
    const merged = applyLlmReview(report, review);
    expect(merged.compliant).toBe(false);
    expect(merged.findings.at(-1)).toMatchObject({
      ruleId: 'llm.review',
      source: 'llm',
      severity: 'violation',
      offset: null,
    });
  });

  it('rejects unbounded model output with LLM_OUTPUT_INVALID', async () => {
    const tooMany = { compliant: false, concerns: ['a', 'b', 'c', 'd', 'e', 'f'] };
    await expect(reviewWithLlm('x', new ScriptedLlm(tooMany))).rejects.toMatchObject({
      code: 'LLM_OUTPUT_INVALID',
    });
    const tooLong = { compliant: false, concerns: ['x'.repeat(201)] };
    await expect(reviewWithLlm('x', new ScriptedLlm(tooLong))).rejects.toMatchObject({
      code: 'LLM_OUTPUT_INVALID',
    });
    await expect(
      reviewWithLlm('x', new ScriptedLlm({ compliant: 'yes', concerns: [] })),
    ).rejects.toMatchObject({
      code: 'LLM_OUTPUT_INVALID',
    });
  });
});
