// The grounding check: number extraction in its written forms, matching within display rounding, and the
// regenerate-once-then-flag loop with a scripted LLM.
import { describe, expect, it } from 'vitest';
import {
  FactSet,
  checkGrounding,
  collectFacts,
  extractNumbers,
  generateGroundedNarrative,
  groundedShare,
} from '../../shared/grounding.js';
import type { LlmUsage } from '../../shared/llm_client.js';
import { scriptedLlm, type ScriptedLlm } from '../helpers/scripted_llm.js';

const usage: LlmUsage = {
  promptTokens: 10,
  reusedPrefixTokens: 0,
  completionTokens: 5,
  timeToFirstTokenMs: 1,
  totalMs: 2,
  generationTokensPerSecond: 100,
  attempts: 1,
};

/** The scripted LLM of these tests, answering as `scripted`. */
function script(outputs: unknown[]): ScriptedLlm {
  return scriptedLlm(outputs, 'scripted', usage);
}

describe('extractNumbers', () => {
  it.each([
    ['CTR was 5.2%', [{ text: '5.2%', value: 0.052, kind: 'percent' }]],
    ['spend of $1,234.50', [{ text: '$1,234.50', value: 1234.5, kind: 'currency' }]],
    ['revenue reached $1.2k', [{ text: '$1.2k', value: 1200, kind: 'currency' }]],
    ['ROAS of 4.2x', [{ text: '4.2x', value: 4.2, kind: 'multiplier' }]],
    ['ROAS of 4.2×', [{ text: '4.2×', value: 4.2, kind: 'multiplier' }]],
    ['12,345 clicks', [{ text: '12,345', value: 12345, kind: 'plain' }]],
    ['$3.5 million in revenue', [{ text: '$3.5 million', value: 3_500_000, kind: 'currency' }]],
    ['fell -12.5 %', [{ text: '-12.5 %', value: -0.125, kind: 'percent' }]],
    ['up 0.3 pp', [{ text: '0.3 pp', value: 0.003, kind: 'percent' }]],
  ])('reads %j', (text, expected) => {
    expect(extractNumbers(text)).toMatchObject(expected);
  });

  it.each([
    'In Q4 2025 the 4 channels and 3 campaigns ran',
    'data from 2025-10-01 to 2025-12-31 (2025-Q4, vs 2025-07)',
    'Channel0 and search_brand_2 led in 2024',
    'the 3rd week at 10:30',
  ])('ignores labels, dates, years and enumerations in %j', (text) => {
    expect(extractNumbers(text)).toEqual([]);
  });

  it('derives the tolerance from the digits shown', () => {
    const [percent, money, scaled] = extractNumbers('5.2% and $1,234 and $1.2k');
    expect(percent!.tolerance).toBeCloseTo(0.0005, 12);
    expect(money!.tolerance).toBeCloseTo(0.5, 12);
    expect(scaled!.tolerance).toBeCloseTo(50, 9);
  });
});

describe('checkGrounding', () => {
  const facts = new FactSet(
    collectFacts({ ctr: 0.0523, spend: '1234.50', roas: 4.2134, change: { relative: -0.125 } }),
  );

  it.each([
    ['5.2%'],
    ['5%'],
    ['$1,234.50'],
    ['$1,235'],
    ['$1.2k'],
    ['1234.5'],
    ['4.2x'],
    ['421%'],
    ['12.5%'],
  ])('accepts %s as a rounding of a computed value', (quoted) => {
    const report = checkGrounding({ summary: `The figure was ${quoted} this quarter.` }, facts);
    expect(report).toEqual({ checked: 1, grounded: 1, ungrounded: [] });
  });

  it.each([['6.1%'], ['$1,300'], ['4.5x'], ['$2k'], ['5.25%']])('flags %s', (quoted) => {
    const report = checkGrounding(
      { roi: [`First sentence. The figure was ${quoted} this quarter. Last.`] },
      facts,
    );
    expect(report.grounded).toBe(0);
    expect(report.ungrounded).toEqual([
      { section: 'roi', text: `The figure was ${quoted} this quarter.`, number: quoted },
    ]);
  });

  it('reports the grounded share', () => {
    const report = checkGrounding({ a: 'CTR 5.2% and ROAS 9.9x', b: null }, facts);
    expect(report.checked).toBe(2);
    expect(groundedShare(report)).toBe(0.5);
    expect(groundedShare({ checked: 0, grounded: 0, ungrounded: [] })).toBe(1);
  });
});

describe('generateGroundedNarrative', () => {
  const facts = new FactSet([0.0523, 4.2134]);
  const request = {
    system: 'narrate',
    prompt: 'DATA',
    schema: { type: 'object' },
    validate: (value: unknown) => value as { summary: string },
    facts,
  };

  it('regenerates once with feedback naming the wrong number, and keeps the corrected narrative', async () => {
    const llm = script([{ summary: 'ROAS was 7.5x.' }, { summary: 'ROAS was 4.2x.' }]);
    const result = await generateGroundedNarrative({ ...request, llm });
    expect(result.generations).toBe(2);
    expect(result.value.summary).toBe('ROAS was 4.2x.');
    expect(result.grounding).toEqual({ checked: 1, grounded: 1, ungrounded: [] });
    expect(result.firstAttemptUngrounded).toEqual([
      { section: 'summary', text: 'ROAS was 7.5x.', number: '7.5x' },
    ]);
    expect(llm.prompts[1]).toContain('7.5x');
    expect(result.usage).toHaveLength(2);
  });

  it('flags the numbers when the regenerated narrative still lies', async () => {
    const llm = script([{ summary: 'CTR was 9%.' }, { summary: 'CTR was 8%.' }]);
    const result = await generateGroundedNarrative({ ...request, llm });
    expect(result.grounding.ungrounded).toEqual([{ section: 'summary', text: 'CTR was 8%.', number: '8%' }]);
  });

  it('does not regenerate a grounded narrative', async () => {
    const llm = script([{ summary: 'CTR was 5.2%.' }]);
    const result = await generateGroundedNarrative({ ...request, llm });
    expect(result.generations).toBe(1);
    expect(llm.prompts).toHaveLength(1);
  });
});
