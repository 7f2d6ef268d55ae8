// The grounding check: every number an LLM narrative quotes must match a number the code computed, within the
// rounding its display implies (0.052 ↔ "5.2 %", 1234.5 ↔ "$1,234.50" ↔ "$1.2k", 4.21 ↔ "4.2x"). Also the
// generate → check → regenerate-once-with-feedback → flag loop both spokes use for their narratives.
import { AppError } from './errors.js';
import type { JsonSchema, LlmClient, LlmUsage } from './llm_client.js';

/** How a quoted number was written. */
export type QuotedNumberKind = 'percent' | 'currency' | 'multiplier' | 'plain';

/** A number found in narrative text. */
export interface QuotedNumber {
  /** The text as written, e.g. `$1.2k`, `5.2%`, `4.2x`. */
  readonly text: string;
  /** Its value in base units: percentages as fractions (5.2 % → 0.052), suffixes expanded ($1.2k → 1200). */
  readonly value: number;
  readonly kind: QuotedNumberKind;
  /** Half a unit of the last digit shown, in base units: the rounding the display allows. */
  readonly tolerance: number;
  /** Offset of the number in the text. */
  readonly index: number;
}

const SCALE_EXPONENTS: Readonly<Record<string, number>> = {
  k: 3,
  thousand: 3,
  m: 6,
  mn: 6,
  mm: 6,
  million: 6,
  b: 9,
  bn: 9,
  billion: 9,
};

// Tokens that contain digits but are not quantities: ISO dates, months, period labels, ordinals, times.
const NON_QUANTITY =
  /\b\d{4}-\d{2}-\d{2}\b|\b\d{4}-\d{2}\b|\b\d{4}[-\s]?Q[1-4]\b|\bQ[1-4](?:[-\s]?\d{4})?\b|\b\d+(?:st|nd|rd|th)\b|\b\d{1,2}:\d{2}\b/gi;

// An optional sign and currency symbol, digits with optional thousands separators and fraction, and an optional
// unit: %, percent, pp (percentage points), x/× (multiple), k/m/bn/million… (scale).
const NUMBER =
  /(?<![\w.,])([-−])?\s?([$€£])?\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?:\s?(%|percent\b|percentage points?\b|pp\b|[x×](?![a-z])|(?:thousand|million|billion|mn|mm|bn|[kmb])\b))?/gi;

/**
 * Finds the numbers a text quotes. Not counted as quantities: dates, months and period labels (`2025-10-01`,
 * `2025-Q4`, `Q4 2025`), ordinals (`3rd`), clock times, digits inside words (`Channel0`), bare four-digit years
 * 1900–2100, and bare whole numbers 0–10 (enumerations such as "3 campaigns", "top 2").
 */
export function extractNumbers(text: string): QuotedNumber[] {
  const masked = text.replace(NON_QUANTITY, (token) => ' '.repeat(token.length));
  const found: QuotedNumber[] = [];
  for (const match of masked.matchAll(NUMBER)) {
    const [whole, sign, currency, integerPart, fraction, rawUnit] = match;
    const unit = rawUnit?.toLowerCase().replace(/\s+/g, ' ');
    const digits = integerPart!.replaceAll(',', '');
    const decimals = fraction?.length ?? 0;
    const numberText = fraction === undefined ? digits : `${digits}.${fraction}`;
    // Scaling through the exponent keeps decimal values exact-as-typed (Number('5.2e-2') is 0.052).
    let exponent = 0;
    let kind: QuotedNumberKind = currency !== undefined ? 'currency' : 'plain';
    if (unit === '%' || unit === 'percent' || unit === 'pp' || unit?.startsWith('percentage point')) {
      kind = 'percent';
      exponent = -2;
    } else if (unit === 'x' || unit === '×') {
      kind = 'multiplier';
    } else if (unit !== undefined) {
      exponent = SCALE_EXPONENTS[unit]!;
    }
    let value = Number(`${numberText}e${exponent}`);
    const tolerance = Number(`5e${exponent - decimals - 1}`);
    if (kind === 'plain' && unit === undefined && fraction === undefined && !integerPart!.includes(',')) {
      const integer = Number(digits);
      if (integer <= 10 || (digits.length === 4 && integer >= 1900 && integer <= 2100)) continue;
    }
    if (sign !== undefined) value = -value;
    found.push({ text: whole.trim(), value, kind, tolerance, index: match.index + whole.search(/\S/) });
  }
  return found;
}

/** The computed numbers a narrative may quote, indexed for tolerance lookups. */
export class FactSet {
  private readonly sorted: Float64Array;

  constructor(values: Iterable<number>) {
    const finite: number[] = [];
    for (const value of values) if (Number.isFinite(value)) finite.push(Math.abs(value));
    this.sorted = Float64Array.from(finite).sort();
  }

  /** Number of facts. */
  get size(): number {
    return this.sorted.length;
  }

  /** True when some fact lies within `tolerance` of `|value|` (plus a 1e-9 relative allowance for float noise). */
  has(value: number, tolerance: number): boolean {
    const target = Math.abs(value);
    const slack = tolerance + Math.max(1e-12, target * 1e-9);
    let low = 0;
    let high = this.sorted.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.sorted[middle]! < target - slack) low = middle + 1;
      else high = middle;
    }
    return low < this.sorted.length && this.sorted[low]! <= target + slack;
  }
}

/**
 * Collects every number in a JSON value as a fact: numbers, and strings that are plain decimals (money amounts
 * such as `"1234.50"`). Keys are not facts.
 */
export function collectFacts(value: unknown, into: number[] = []): number[] {
  if (typeof value === 'number') {
    if (Number.isFinite(value)) into.push(value);
  } else if (typeof value === 'string') {
    if (/^-?\d+(?:\.\d+)?$/.test(value)) into.push(Number(value));
  } else if (Array.isArray(value)) {
    for (const item of value) collectFacts(item, into);
  } else if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) collectFacts(item, into);
  }
  return into;
}

/** A quoted number that matches no computed value. */
export interface UngroundedStatement {
  /** Top-level section of the narrative, e.g. `roi_analysis`. */
  readonly section: string;
  /** The sentence that quotes it (at most 240 characters). */
  readonly text: string;
  /** The number as written. */
  readonly number: string;
}

/** Result of checking a narrative: how many numbers were checked, how many matched, and which did not. */
export interface GroundingReport {
  readonly checked: number;
  readonly grounded: number;
  readonly ungrounded: readonly UngroundedStatement[];
}

function sentenceAround(text: string, index: number): string {
  // A sentence ends at . ! ? followed by whitespace, or at a newline; a decimal point is not an end.
  let start = 0;
  for (const boundary of text.slice(0, index).matchAll(/[.!?](?=\s)|\n/g)) start = boundary.index + 1;
  const endMatch = /[.!?](?=\s|$)|\n/.exec(text.slice(index));
  const end = endMatch === null ? text.length : index + endMatch.index + 1;
  const sentence = text.slice(start, end).trim();
  return sentence.length > 240 ? `${sentence.slice(0, 237)}...` : sentence;
}

function* stringsIn(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (Array.isArray(value)) for (const item of value) yield* stringsIn(item);
  else if (value !== null && typeof value === 'object')
    for (const item of Object.values(value)) yield* stringsIn(item);
}

/**
 * Checks every string of a narrative (an object whose top-level keys are its sections; nested strings count
 * for their top-level section) against the facts.
 */
export function checkGrounding(
  narrative: Readonly<Record<string, unknown>>,
  facts: FactSet,
): GroundingReport {
  let checked = 0;
  let grounded = 0;
  const ungrounded: UngroundedStatement[] = [];
  for (const [section, content] of Object.entries(narrative)) {
    for (const text of stringsIn(content)) {
      for (const quoted of extractNumbers(text)) {
        checked += 1;
        // A quoted number is grounded when a fact lies within the rounding its display implies.
        if (facts.has(quoted.value, quoted.tolerance)) grounded += 1;
        else ungrounded.push({ section, text: sentenceAround(text, quoted.index), number: quoted.text });
      }
    }
  }
  return { checked, grounded, ungrounded };
}

/** Share of checked numbers that were grounded (1 when none was quoted). */
export function groundedShare(report: GroundingReport): number {
  return report.checked === 0 ? 1 : report.grounded / report.checked;
}

/** What {@link generateGroundedNarrative} needs. */
export interface GroundedNarrativeRequest<T> {
  readonly llm: LlmClient;
  readonly system: string;
  readonly prompt: string;
  readonly schema: JsonSchema;
  readonly validate: (value: unknown) => T;
  /** The computed numbers the narrative may quote. */
  readonly facts: FactSet;
  /** The sections to check (default: the value itself, which must be an object). */
  readonly sectionsOf?: (value: T) => Readonly<Record<string, unknown>>;
  readonly maxTokens?: number;
  readonly signal?: AbortSignal;
}

/** A checked narrative. `grounding.ungrounded` is non-empty when the regenerated answer still misquotes. */
export interface GroundedNarrative<T> {
  readonly value: T;
  readonly grounding: GroundingReport;
  /** 1 when the first narrative was grounded, 2 when it was regenerated with feedback. */
  readonly generations: number;
  /** Numbers the first narrative got wrong (empty when it was grounded). */
  readonly firstAttemptUngrounded: readonly UngroundedStatement[];
  /** Usage of each generation, in order. */
  readonly usage: readonly LlmUsage[];
}

/** The feedback appended to the prompt when a narrative quoted numbers the code did not compute. */
function groundingFeedback(ungrounded: readonly UngroundedStatement[]): string {
  const listed = ungrounded
    .slice(0, 12)
    .map((item) => `- ${item.number} in ${item.section}: "${item.text}"`)
    .join('\n');
  return [
    'Your previous answer quoted numbers that are not in the computed data:',
    listed,
    'Rewrite the answer. Quote only numbers that appear in the data above (rounded as shown, percentages of the',
    'fractions, money with its currency sign), or leave the number out. Do not calculate new numbers.',
  ].join('\n');
}

/**
 * Generates a structured narrative, checks its numbers, and when any is ungrounded regenerates once with
 * feedback naming them. A second failure is returned flagged (never passed silently).
 */
export async function generateGroundedNarrative<T>(
  request: GroundedNarrativeRequest<T>,
): Promise<GroundedNarrative<T>> {
  const sectionsOf = request.sectionsOf ?? ((value: T) => value as Readonly<Record<string, unknown>>);
  const generate = (prompt: string) =>
    request.llm.generateStructured({
      system: request.system,
      prompt,
      schema: request.schema,
      validate: request.validate,
      ...(request.maxTokens === undefined ? {} : { maxTokens: request.maxTokens }),
      ...(request.signal === undefined ? {} : { signal: request.signal }),
    });
  const first = await generate(request.prompt);
  const firstReport = checkGrounding(sectionsOf(first.value), request.facts);
  if (firstReport.ungrounded.length === 0) {
    return {
      value: first.value,
      grounding: firstReport,
      generations: 1,
      firstAttemptUngrounded: [],
      usage: [first.usage],
    };
  }
  if (request.signal?.aborted === true) {
    throw new AppError('CANCELED', 'narrative generation was canceled', { cause: request.signal.reason });
  }
  const second = await generate(`${request.prompt}\n\n${groundingFeedback(firstReport.ungrounded)}`);
  return {
    value: second.value,
    grounding: checkGrounding(sectionsOf(second.value), request.facts),
    generations: 2,
    firstAttemptUngrounded: firstReport.ungrounded,
    usage: [first.usage, second.usage],
  };
}
