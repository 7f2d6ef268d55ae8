// Campaign rows at the trust boundary: validates CSV text or JSON rows into typed rows (money as exact integer
// micro-units), with row-numbered errors, and turns them into the columnar table the metrics loop reads.
// Also owns the calendar: ISO dates, quarter/month period labels, quarters and months named in questions (with
// or without their year), the period before a given one, and periods named relative to another ("the quarter
// before", "the same month a year earlier").
import { AppError } from '../shared/errors.js';
import { parseCsv } from '../shared/csv.js';

/** Money is held as integer micro-units (1e-6 of the currency unit, like Google Ads `cost_micros`). */
export const MICROS_PER_UNIT = 1_000_000;

/** A closed range of calendar days with a label (`2025-Q4`, `2025-10`, `2025-10-03`, or `from..to`). */
export interface PeriodSpan {
  readonly label: string;
  /** First day, ISO `YYYY-MM-DD`. */
  readonly from: string;
  /** Last day (inclusive), ISO `YYYY-MM-DD`. */
  readonly to: string;
}

/** One validated campaign row. Counts are plain numbers; money is integer micro-units; `null` = not reported. */
export interface CampaignRow {
  /** Where the row came from: the CSV line number, or the 1-based index of a JSON row. */
  readonly source: { readonly kind: 'line' | 'row'; readonly number: number };
  readonly campaign: string;
  readonly channel: string;
  /** The day (a `date` cell) or the period (a `period` cell) the row covers. */
  readonly period: PeriodSpan;
  readonly spendMicros: number;
  readonly impressions: number | null;
  readonly clicks: number | null;
  readonly leads: number | null;
  /** May be fractional: data-driven attribution credits fractions of a conversion. */
  readonly conversions: number | null;
  readonly revenueMicros: number | null;
  /** Gross margin as a fraction of revenue, in [0, 1]. */
  readonly margin: number | null;
  readonly costOfGoodsMicros: number | null;
  readonly newCustomers: number | null;
}

/** The measured fields whose presence makes up data completeness (identity fields and spend are mandatory). */
export const MEASURED_FIELDS = ['impressions', 'clicks', 'leads', 'conversions', 'revenue'] as const;
/** Optional fields that refine ROI (cost basis) and CAC. */
export const OPTIONAL_FIELDS = ['margin', 'cost_of_goods', 'new_customers'] as const;

type FieldName =
  | 'campaign'
  | 'channel'
  | 'date'
  | 'period'
  | 'spend'
  | (typeof MEASURED_FIELDS)[number]
  | (typeof OPTIONAL_FIELDS)[number];

const FIELD_ALIASES: Readonly<Record<string, FieldName>> = {
  campaign: 'campaign',
  campaign_name: 'campaign',
  channel: 'channel',
  date: 'date',
  day: 'date',
  period: 'period',
  spend: 'spend',
  cost: 'spend',
  ad_spend: 'spend',
  impressions: 'impressions',
  clicks: 'clicks',
  leads: 'leads',
  conversions: 'conversions',
  revenue: 'revenue',
  conversion_value: 'revenue',
  margin: 'margin',
  gross_margin: 'margin',
  cost_of_goods: 'cost_of_goods',
  cogs: 'cost_of_goods',
  new_customers: 'new_customers',
};

function canonicalFieldName(name: string): FieldName | undefined {
  const key = name
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
  return FIELD_ALIASES[key];
}

// ---------------------------------------------------------------------------------------------------------
// Calendar

const DAY_MS = 86_400_000;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Days since 1970-01-01 of an ISO date, or `null` when it is not a real calendar date. */
export function isoDateToDay(iso: string): number | null {
  const match = ISO_DATE.exec(iso);
  if (match === null) return null;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  const time = Date.UTC(year, month - 1, day);
  const check = new Date(time);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) {
    return null;
  }
  return time / DAY_MS;
}

/** The ISO date of a day number. */
export function dayToIsoDate(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

function lastDayOfMonth(year: number, month: number): string {
  return dayToIsoDate(Date.UTC(year, month, 0) / DAY_MS);
}

function pad2(value: number): string {
  return String(value).padStart(2, '0');
}

function quarterSpan(year: number, quarter: number): PeriodSpan {
  const firstMonth = (quarter - 1) * 3 + 1;
  return {
    label: `${year}-Q${quarter}`,
    from: `${year}-${pad2(firstMonth)}-01`,
    to: lastDayOfMonth(year, firstMonth + 2),
  };
}

function monthSpan(year: number, month: number): PeriodSpan {
  return {
    label: `${year}-${pad2(month)}`,
    from: `${year}-${pad2(month)}-01`,
    to: lastDayOfMonth(year, month),
  };
}

/**
 * Parses a period label: `YYYY-Qn`, `YYYY-MM`, `YYYY-MM-DD`, or free forms such as `Q4 2025` / `2025 Q4`.
 * Returns `null` when the text is not a period.
 */
export function parsePeriodLabel(text: string): PeriodSpan | null {
  const trimmed = text.trim();
  let match = /^(\d{4})[-\s]?Q([1-4])$/i.exec(trimmed) ?? null;
  if (match !== null) return quarterSpan(Number(match[1]), Number(match[2]));
  match = /^Q([1-4])[-\s]?(\d{4})$/i.exec(trimmed);
  if (match !== null) return quarterSpan(Number(match[2]), Number(match[1]));
  match = /^(\d{4})-(\d{2})$/.exec(trimmed);
  if (match !== null) {
    const month = Number(match[2]);
    return month >= 1 && month <= 12 ? monthSpan(Number(match[1]), month) : null;
  }
  if (isoDateToDay(trimmed) !== null) return { label: trimmed, from: trimmed, to: trimmed };
  return null;
}

/** Finds the first quarter named in free text ("Q4 2025", "2025-Q4", "2025 Q4"); `null` when none. */
export function findQuarterInText(text: string): PeriodSpan | null {
  const match = /\bQ([1-4])[\s-]*(\d{4})\b|\b(\d{4})[\s-]*Q([1-4])\b/i.exec(text);
  if (match === null) return null;
  return match[1] !== undefined
    ? quarterSpan(Number(match[2]), Number(match[1]))
    : quarterSpan(Number(match[3]), Number(match[4]));
}

/**
 * A quarter named without a year ("Q4", "our q2 campaigns") or the latest quarter ("last quarter", "latest
 * quarter", "this quarter"): the quarter number, or 'latest'; null when the text names neither (or names a
 * quarter with its year, which {@link findQuarterInText} handles).
 */
export function findYearlessQuarter(text: string): number | 'latest' | null {
  if (findQuarterInText(text) !== null) return null;
  const named = /\bQ([1-4])\b/i.exec(text);
  if (named !== null) return Number(named[1]);
  return /\b(?:last|latest|most recent|this|current)\s+quarter\b/i.test(text) ? 'latest' : null;
}

/**
 * Resolves a year-less quarter against the latest date that has data: `Qn` is the most recent quarter n that
 * started on or before it, 'latest' the quarter containing it.
 */
export function resolveYearlessQuarter(quarter: number | 'latest', latestIsoDate: string): PeriodSpan {
  if (quarter === 'latest') return quarterContaining(latestIsoDate);
  const year = Number(latestIsoDate.slice(0, 4));
  const candidate = quarterSpan(year, quarter);
  return candidate.from <= latestIsoDate ? candidate : quarterSpan(year - 1, quarter);
}

/** Month names, lower case, January first. */
const MONTH_NAMES = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];
/** Month names and their abbreviations as written in questions, lower case, to the month number. */
const MONTH_WORDS: Readonly<Record<string, number>> = {
  ...Object.fromEntries(MONTH_NAMES.map((name, index) => [name, index + 1])),
  jan: 1,
  feb: 2,
  mar: 3,
  apr: 4,
  jun: 6,
  jul: 7,
  aug: 8,
  sep: 9,
  sept: 9,
  oct: 10,
  nov: 11,
  dec: 12,
};
const MONTH_WORD = Object.keys(MONTH_WORDS).join('|');
/** "October 2025", "Oct. 2025", "2025-10" (not an ISO date "2025-10-03"). */
const MONTH_WITH_YEAR = new RegExp(
  `\\b(${MONTH_WORD})\\.?\\s+(\\d{4})\\b|\\b(\\d{4})-(0[1-9]|1[0-2])\\b(?!-\\d)`,
  'i',
);
/** "May" is a month only after in/for/of/during/since/from, where it cannot be the verb ("may I see…"). */
const MAY_AS_MONTH = String.raw`\b(?:in|for|of|during|since|from)\s+(may)\b`;
const notMay = (word: string): boolean => word !== 'may';
/** A month's full name without a year ("in October"). */
const YEARLESS_MONTH = new RegExp(
  String.raw`\b(${MONTH_NAMES.filter(notMay).join('|')})\b|${MAY_AS_MONTH}`,
  'i',
);
/** Words that refer to a period: quarter/month/year words, Qn, years, YTD/MTD, and months' names. */
const MENTIONS_PERIOD = new RegExp(
  String.raw`\b(?:quarters?|months?|years?|weeks?|periods?|q[1-4]|(?:19|20)\d{2}|ytd|mtd|` +
    String.raw`${Object.keys(MONTH_WORDS).filter(notMay).join('|')})\b|${MAY_AS_MONTH}`,
  'i',
);

/** True when `text` refers to a period in any way this module knows, whether or not it can read which one. */
export function mentionsPeriod(text: string): boolean {
  return MENTIONS_PERIOD.test(text);
}

/** Finds the first month named with its year in free text ("October 2025", "Oct 2025", "2025-10"); null when none. */
export function findMonthInText(text: string): PeriodSpan | null {
  const match = MONTH_WITH_YEAR.exec(text);
  if (match === null) return null;
  return match[1] !== undefined
    ? monthSpan(Number(match[2]), MONTH_WORDS[match[1].toLowerCase()]!)
    : monthSpan(Number(match[3]), Number(match[4]));
}

/**
 * A month named without a year ("how did October go?") or the latest month ("last month", "this month"): the
 * month number, or 'latest'; null when the text names neither (or names a month with its year, which
 * {@link findMonthInText} handles).
 */
export function findYearlessMonth(text: string): number | 'latest' | null {
  if (findMonthInText(text) !== null) return null;
  const named = YEARLESS_MONTH.exec(text);
  if (named !== null) return MONTH_WORDS[(named[1] ?? named[2])!.toLowerCase()]!;
  return /\b(?:last|latest|most recent|this|current)\s+month\b/i.test(text) ? 'latest' : null;
}

/**
 * Resolves a year-less month against the latest date that has data: month n is the most recent month n that
 * started on or before it, 'latest' the month containing it.
 */
export function resolveYearlessMonth(month: number | 'latest', latestIsoDate: string): PeriodSpan {
  const year = Number(latestIsoDate.slice(0, 4));
  if (month === 'latest') return monthSpan(year, Number(latestIsoDate.slice(5, 7)));
  const candidate = monthSpan(year, month);
  return candidate.from <= latestIsoDate ? candidate : monthSpan(year - 1, month);
}

/**
 * A quarter or a month named without its year ("Q4", "last quarter", "October", "last month"), as the function
 * that resolves it against the latest date with data; null when the text names neither. Quarters first.
 */
export function findYearlessPeriod(text: string): ((latestIsoDate: string) => PeriodSpan) | null {
  const quarter = findYearlessQuarter(text);
  if (quarter !== null) return (latest) => resolveYearlessQuarter(quarter, latest);
  const month = findYearlessMonth(text);
  return month === null ? null : (latest) => resolveYearlessMonth(month, latest);
}

/** The quarter that contains an ISO date. */
export function quarterContaining(iso: string): PeriodSpan {
  const year = Number(iso.slice(0, 4));
  const month = Number(iso.slice(5, 7));
  return quarterSpan(year, Math.floor((month - 1) / 3) + 1);
}

/**
 * The period just before `period` with the same shape: the previous quarter or month for those labels,
 * otherwise the same number of days ending the day before `from`.
 */
export function previousPeriod(period: PeriodSpan): PeriodSpan {
  return periodsAway(period, -1);
}

const QUARTER_LABEL = /^(\d{4})-Q([1-4])$/;
const MONTH_LABEL = /^(\d{4})-(\d{2})$/;

/** The period `steps` periods of `period`'s own shape away (negative: earlier): quarters, months, or days. */
function periodsAway(period: PeriodSpan, steps: number): PeriodSpan {
  const quarter = QUARTER_LABEL.exec(period.label);
  if (quarter !== null) return quartersAway(Number(quarter[1]), Number(quarter[2]), steps);
  const month = MONTH_LABEL.exec(period.label);
  if (month !== null) return monthsAway(Number(month[1]), Number(month[2]), steps);
  const fromDay = isoDateToDay(period.from)!;
  const length = isoDateToDay(period.to)! - fromDay + 1;
  const from = dayToIsoDate(fromDay + steps * length);
  const to = dayToIsoDate(fromDay + steps * length + length - 1);
  return { label: from === to ? from : `${from}..${to}`, from, to };
}

function quartersAway(year: number, quarter: number, steps: number): PeriodSpan {
  const index = year * 4 + (quarter - 1) + steps;
  return quarterSpan(Math.floor(index / 4), (index % 4) + 1);
}

function monthsAway(year: number, month: number, steps: number): PeriodSpan {
  const index = year * 12 + (month - 1) + steps;
  return monthSpan(Math.floor(index / 12), (index % 12) + 1);
}

/**
 * A period named relative to the one a conversation is about: "the quarter before", "the next month",
 * "two quarters earlier", "the same quarter a year earlier", "the one before that".
 */
export interface RelativePeriod {
  /**
   * What is counted: quarters or months (the period counted from must be one), years (of a quarter or a month:
   * the same quarter or month that many years away), or periods of the counted-from period's own shape.
   */
  readonly unit: 'quarter' | 'month' | 'year' | 'period';
  /** How many units later; negative: earlier. Never 0. */
  readonly steps: number;
  /** The words that named it, for messages. */
  readonly phrase: string;
}

const COUNT_WORDS: Readonly<Record<string, number>> = { a: 1, an: 1, one: 1, two: 2, three: 3, four: 4 };
const EARLIER = new Set(['before', 'earlier', 'previous', 'prior', 'preceding']);
const UNIT_WORDS: Readonly<Record<string, RelativePeriod['unit']>> = {
  quarter: 'quarter',
  month: 'month',
  period: 'period',
  one: 'period',
};

/** "the same quarter a year earlier", "same month last year", "a year before". */
const YEAR_APART =
  /\b(?:(?:the\s+)?same\s+(?:quarter|month|period)\s+(?:(?:a|one)\s+year\s+(?:before|earlier|ago)|last\s+year|the\s+(?:previous|prior)\s+year|the\s+year\s+before)|(?:a|one)\s+year\s+(?:before|earlier))\b/i;
/**
 * "the quarter before", "two months later", "the one after that", "the quarter before last" (two before). Not
 * "a quarter ago": that counts from today, not from the conversation's period.
 */
const COUNTED =
  /\b(?:(a|an|one|two|three|four|\d{1,2})\s+)?(quarter|month|period|one)s?\s+(before|earlier|after|later)(\s+(?:last|next))?\b/i;
/** "the previous quarter", "next month", "the following period". */
const ADJECTIVE = /\b(previous|prior|preceding|next|following|subsequent)\s+(quarter|month|period)\b/i;

/** Finds a period named relative to another in free text; null when the text names none. */
export function findRelativePeriod(text: string): RelativePeriod | null {
  const yearApart = YEAR_APART.exec(text);
  if (yearApart !== null) return { unit: 'year', steps: -1, phrase: yearApart[0] };
  const counted = COUNTED.exec(text);
  if (counted !== null) {
    const countWord = counted[1]?.toLowerCase();
    const count = countWord === undefined ? 1 : (COUNT_WORDS[countWord] ?? Number(countWord));
    // "the one before" counts periods; "one quarter before" has "one" as its count, not its unit.
    const unit = UNIT_WORDS[counted[2]!.toLowerCase()]!;
    const direction = EARLIER.has(counted[3]!.toLowerCase()) ? -1 : 1;
    const beyond = counted[4] === undefined ? 0 : 1;
    if (count > 0) return { unit, steps: direction * (count + beyond), phrase: counted[0] };
  }
  const adjective = ADJECTIVE.exec(text);
  if (adjective !== null) {
    const direction = EARLIER.has(adjective[1]!.toLowerCase()) ? -1 : 1;
    return { unit: UNIT_WORDS[adjective[2]!.toLowerCase()]!, steps: direction, phrase: adjective[0] };
  }
  return null;
}

/**
 * The period `relative` names, counted from `base`. Quarters count only from a quarter and months only from a
 * month; anything else is refused with VALIDATION_FAILED rather than guessed.
 */
export function shiftPeriod(base: PeriodSpan, relative: RelativePeriod): PeriodSpan {
  const quarter = QUARTER_LABEL.exec(base.label);
  const month = MONTH_LABEL.exec(base.label);
  switch (relative.unit) {
    case 'period':
      return periodsAway(base, relative.steps);
    case 'quarter':
      if (quarter !== null) return quartersAway(Number(quarter[1]), Number(quarter[2]), relative.steps);
      break;
    case 'month':
      if (month !== null) return monthsAway(Number(month[1]), Number(month[2]), relative.steps);
      break;
    case 'year':
      if (quarter !== null) return quartersAway(Number(quarter[1]), Number(quarter[2]), 4 * relative.steps);
      if (month !== null) return monthsAway(Number(month[1]), Number(month[2]), 12 * relative.steps);
      break;
  }
  throw new AppError(
    'VALIDATION_FAILED',
    `"${relative.phrase}" counts ${relative.unit === 'year' ? 'years of a quarter or a month' : `${relative.unit}s`}, ` +
      `but the period it counts from, ${base.label}, is not ${relative.unit === 'year' ? 'one' : `a ${relative.unit}`}: ` +
      'name the period instead, such as "Q3 2025" or "2025-09"',
    { details: { field: 'period', value: relative.phrase, from: base.label } },
  );
}

/** Number of calendar days in a period (inclusive). */
export function periodDays(period: PeriodSpan): number {
  return isoDateToDay(period.to)! - isoDateToDay(period.from)! + 1;
}

// ---------------------------------------------------------------------------------------------------------
// Cell parsing

interface Where {
  readonly kind: 'line' | 'row';
  readonly number: number;
  readonly source: string;
}

function invalid(where: Where, field: string, value: unknown, problem: string): AppError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new AppError(
    'VALIDATION_FAILED',
    `${where.source} ${where.kind} ${where.number}: ${field} ${problem} (got ${shown})`,
    { details: { [where.kind]: where.number, field, value } },
  );
}

// Digits with optional thousands separators ("1,234,567") and an optional fraction; no exponent, no sign.
const DECIMAL = /^(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?$/;

function cellText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return String(value);
    // A JSON number: fixed notation avoids exponents ("1e-7"); 6 decimals is the money resolution.
    return Number.isInteger(value) ? String(value) : value.toFixed(6);
  }
  if (typeof value === 'string') {
    const trimmed = value.trim();
    return trimmed === '' ? null : trimmed;
  }
  return String(value);
}

/**
 * Parses a non-negative decimal amount ("1234.5", "$1,234.50") into integer micro-units, exactly: no binary
 * floating point touches the digits. Digits past the sixth decimal are rounded half to even.
 */
export function parseMoneyMicros(text: string): number | null {
  const unsigned = text.startsWith('$') ? text.slice(1) : text;
  const match = DECIMAL.exec(unsigned);
  if (match === null) return null;
  const whole = Number(match[1]!.replaceAll(',', ''));
  const fraction = match[2] ?? '';
  let micros = Number((fraction.slice(0, 6) + '000000').slice(0, 6));
  const rest = fraction.slice(6);
  if (rest !== '') {
    const first = rest.charCodeAt(0) - 48;
    const beyondHalf = first > 5 || (first === 5 && /[1-9]/.test(rest.slice(1)));
    const exactlyHalf = first === 5 && !beyondHalf;
    if (beyondHalf || (exactlyHalf && micros % 2 === 1)) micros += 1;
  }
  const total = whole * MICROS_PER_UNIT + micros;
  return Number.isSafeInteger(total) ? total : null;
}

function parseAmount(text: string): number | null {
  const match = DECIMAL.exec(text);
  if (match === null) return null;
  const value = Number(text.replaceAll(',', ''));
  return Number.isFinite(value) ? value : null;
}

// ---------------------------------------------------------------------------------------------------------
// Row validation

type CellValues = readonly unknown[];

/** Field ordinals: cells of a row are passed as an array indexed by these. */
const FIELD_ORDER = [
  'campaign',
  'channel',
  'date',
  'period',
  'spend',
  'impressions',
  'clicks',
  'leads',
  'conversions',
  'revenue',
  'margin',
  'cost_of_goods',
  'new_customers',
] as const satisfies readonly FieldName[];
const FIELD_INDEX = new Map<FieldName, number>(FIELD_ORDER.map((field, index) => [field, index]));

/** Per-call state: a cache of validated date and period labels (they repeat across rows). */
interface ReadContext {
  readonly periods: Map<string, PeriodSpan | null>;
}

// Fast paths for the common plain forms ("1234", "1234.56"); anything else goes through the regex parsers.
function plainMoneyMicros(text: string): number {
  let whole = 0;
  let index = 0;
  const length = text.length;
  for (; index < length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === 46) break;
    if (code < 48 || code > 57) return -1;
    whole = whole * 10 + (code - 48);
  }
  if (index === 0) return -1;
  let micros = 0;
  if (index < length) {
    const digits = length - index - 1;
    if (digits < 1 || digits > 6) return -1;
    for (index += 1; index < length; index += 1) {
      const code = text.charCodeAt(index);
      if (code < 48 || code > 57) return -1;
      micros = micros * 10 + (code - 48);
    }
    micros *= 10 ** (6 - digits);
  }
  const total = whole * MICROS_PER_UNIT + micros;
  return Number.isSafeInteger(total) ? total : -1;
}

function plainInteger(text: string): number {
  const length = text.length;
  if (length === 0 || length > 15) return -1;
  let value = 0;
  for (let index = 0; index < length; index += 1) {
    const code = text.charCodeAt(index);
    if (code < 48 || code > 57) return -1;
    value = value * 10 + (code - 48);
  }
  return value;
}

function readText(cells: CellValues, field: number): string | null {
  return cellText(cells[field]);
}

function readMoney(cells: CellValues, field: number, where: Where): number | null {
  const value = readText(cells, field);
  if (value === null) return null;
  const fast = plainMoneyMicros(value);
  if (fast >= 0) return fast;
  if (value.startsWith('-')) throw invalid(where, FIELD_ORDER[field]!, value, 'must not be negative');
  const micros = parseMoneyMicros(value);
  if (micros === null) throw invalid(where, FIELD_ORDER[field]!, value, 'is not a decimal amount');
  return micros;
}

function readCount(cells: CellValues, field: number, where: Where, wholeNumber: boolean): number | null {
  const raw = cells[field];
  if (typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0) return raw;
  const value = cellText(raw);
  if (value === null) return null;
  const fast = plainInteger(value);
  if (fast >= 0) return fast;
  const name = FIELD_ORDER[field]!;
  if (value.startsWith('-')) throw invalid(where, name, value, 'must not be negative');
  const parsed = parseAmount(value);
  if (parsed === null) throw invalid(where, name, value, 'is not a number');
  if (wholeNumber && !Number.isSafeInteger(parsed))
    throw invalid(where, name, value, 'must be a whole number');
  return parsed;
}

function readPeriod(cells: CellValues, where: Where, context: ReadContext): PeriodSpan {
  const dateText = readText(cells, 2);
  const periodText = dateText === null ? readText(cells, 3) : null;
  const label = dateText ?? periodText;
  if (label === null) throw invalid(where, 'date', '', 'is required (or a period YYYY-Qn / YYYY-MM)');
  const key = dateText === null ? `p:${label}` : label;
  let span = context.periods.get(key);
  if (span === undefined) {
    if (dateText !== null) {
      span = isoDateToDay(dateText) === null ? null : { label: dateText, from: dateText, to: dateText };
    } else {
      span = /^\d{4}-(Q[1-4]|\d{2})$/i.test(label) ? parsePeriodLabel(label) : null;
    }
    context.periods.set(key, span);
  }
  if (span === null) {
    throw dateText !== null
      ? invalid(where, 'date', dateText, 'is not an ISO date YYYY-MM-DD')
      : invalid(where, 'period', label, 'is not a period YYYY-Qn or YYYY-MM');
  }
  return span;
}

function readName(cells: CellValues, field: 0 | 1, where: Where): string {
  const value = readText(cells, field);
  const name = FIELD_ORDER[field];
  if (value === null) throw invalid(where, name, cells[field] ?? '', 'is required');
  if (value.length > 200) throw invalid(where, name, value.slice(0, 40), 'is longer than 200 characters');
  return value;
}

function readMargin(cells: CellValues, where: Where): number | null {
  const raw = cells[10];
  if (typeof raw === 'number' && raw >= 0 && raw <= 1) return raw;
  const text = cellText(raw);
  if (text === null) return null;
  if (text.startsWith('-')) throw invalid(where, 'margin', text, 'must not be negative');
  const percent = text.endsWith('%');
  const parsed = parseAmount(percent ? text.slice(0, -1).trim() : text);
  if (parsed === null) throw invalid(where, 'margin', text, 'is not a fraction or percentage');
  const margin = percent ? parsed / 100 : parsed;
  // A gross-margin fraction cannot exceed 1 (that would need negative cost of goods).
  if (margin > 1) throw invalid(where, 'margin', text, 'must be a fraction between 0 and 1');
  return margin;
}

function readRow(cells: CellValues, where: Where, context: ReadContext): CampaignRow {
  const campaign = readName(cells, 0, where);
  const channel = readName(cells, 1, where);
  const period = readPeriod(cells, where, context);
  const spendMicros = readMoney(cells, 4, where);
  if (spendMicros === null) throw invalid(where, 'spend', '', 'is required');
  const impressions = readCount(cells, 5, where, true);
  const clicks = readCount(cells, 6, where, true);
  // The one funnel invariant enforced per row: a counted ad click needs a served impression, so a row with
  // more clicks than impressions is a swapped or corrupt column. Leads and conversions are NOT bounded by
  // clicks (view-through conversions, phone/offline leads, several conversions per click).
  if (impressions !== null && clicks !== null && clicks > impressions) {
    throw invalid(where, 'clicks', clicks, `exceeds impressions (${impressions})`);
  }
  return {
    source: { kind: where.kind, number: where.number },
    campaign,
    channel,
    period,
    spendMicros,
    impressions,
    clicks,
    leads: readCount(cells, 7, where, true),
    // Conversions may be fractional (data-driven attribution).
    conversions: readCount(cells, 8, where, false),
    revenueMicros: readMoney(cells, 9, where),
    margin: readMargin(cells, where),
    costOfGoodsMicros: readMoney(cells, 11, where),
    newCustomers: readCount(cells, 12, where, true),
  };
}

/** Options of the row readers. */
export interface ReadRowsOptions {
  /** Name used in error messages, e.g. the file name. */
  readonly source?: string;
  /** Upper bound on rows accepted (default 5,000,000). */
  readonly maxRows?: number;
}

const DEFAULT_MAX_ROWS = 5_000_000;

function checkRowCount(count: number, source: string, options: ReadRowsOptions): void {
  const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
  if (count > maxRows) {
    throw new AppError('VALIDATION_FAILED', `${source}: ${count} rows exceed the limit ${maxRows}`, {
      details: { field: 'rows', value: count, limit: maxRows },
    });
  }
}

/**
 * Validates campaign CSV text (header names are case-insensitive; `cost`, `cogs`, `conversion_value` … are
 * accepted aliases). Throws AppError `VALIDATION_FAILED` with details `{line, field, value}`.
 */
export function parseCampaignCsv(text: string, options: ReadRowsOptions = {}): CampaignRow[] {
  const source = options.source ?? 'CSV';
  const table = parseCsv(text, { source });
  // columnOf[fieldOrdinal] = CSV column index, or -1 when the file has no such column.
  const columnOf = new Int32Array(FIELD_ORDER.length).fill(-1);
  table.header.forEach((name, index) => {
    const field = canonicalFieldName(name);
    const ordinal = field === undefined ? undefined : FIELD_INDEX.get(field);
    if (ordinal !== undefined && columnOf[ordinal] === -1) columnOf[ordinal] = index;
  });
  const missing = (['campaign', 'channel', 'spend'] as const).find(
    (field) => columnOf[FIELD_INDEX.get(field)!] === -1,
  );
  if (missing !== undefined) {
    throw new AppError('VALIDATION_FAILED', `${source} line 1: missing column "${missing}"`, {
      details: { line: 1, field: missing, value: table.header.join(',') },
    });
  }
  if (columnOf[2] === -1 && columnOf[3] === -1) {
    throw new AppError('VALIDATION_FAILED', `${source} line 1: missing column "date" or "period"`, {
      details: { line: 1, field: 'date', value: table.header.join(',') },
    });
  }
  checkRowCount(table.records.length, source, options);
  const context: ReadContext = { periods: new Map() };
  const rows: CampaignRow[] = new Array(table.records.length);
  const cells: unknown[] = new Array(FIELD_ORDER.length);
  for (let index = 0; index < table.records.length; index += 1) {
    const record = table.records[index]!;
    for (let field = 0; field < FIELD_ORDER.length; field += 1) {
      const column = columnOf[field]!;
      cells[field] = column === -1 ? undefined : record.values[column];
    }
    rows[index] = readRow(cells, { kind: 'line', number: record.line, source }, context);
  }
  return rows;
}

/**
 * Validates JSON rows (`[{campaign, channel, date|period, spend, …}]`, numbers or decimal strings).
 * Throws AppError `VALIDATION_FAILED` with details `{row, field, value}` (row is 1-based).
 */
export function parseCampaignRecords(
  records: readonly unknown[],
  options: ReadRowsOptions = {},
): CampaignRow[] {
  const source = options.source ?? 'rows';
  checkRowCount(records.length, source, options);
  const context: ReadContext = { periods: new Map() };
  return records.map((record, index) => {
    const where: Where = { kind: 'row', number: index + 1, source };
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      throw invalid(where, 'row', record, 'is not an object');
    }
    const cells: unknown[] = new Array(FIELD_ORDER.length);
    for (const [key, value] of Object.entries(record)) {
      const field = canonicalFieldName(key);
      const ordinal = field === undefined ? undefined : FIELD_INDEX.get(field);
      if (ordinal === undefined || cells[ordinal] !== undefined) continue;
      if (value !== null && value !== undefined && typeof value !== 'string' && typeof value !== 'number') {
        throw invalid(where, field!, JSON.stringify(value), 'must be a string or a number');
      }
      cells[ordinal] = value;
    }
    return readRow(cells, where, context);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Columnar table

/**
 * Campaign rows as columns for the metrics loop. Row `i`'s cells sit at index `i` of every column; missing
 * measured values are `NaN`. Rows are grouped by (campaign, channel) pair ids so one row updates one group.
 */
export interface CampaignTable {
  readonly length: number;
  readonly channels: readonly string[];
  readonly campaigns: readonly string[];
  /** Per pair id: index into `channels`. */
  readonly pairChannel: Uint32Array;
  /** Per pair id: index into `campaigns`. */
  readonly pairCampaign: Uint32Array;
  /** Per row: its (campaign, channel) pair id. */
  readonly pair: Uint32Array;
  /** Per row: first and last covered day (days since 1970-01-01). */
  readonly fromDay: Int32Array;
  readonly toDay: Int32Array;
  readonly spendMicros: Float64Array;
  readonly impressions: Float64Array;
  readonly clicks: Float64Array;
  readonly leads: Float64Array;
  readonly conversions: Float64Array;
  readonly revenueMicros: Float64Array;
  readonly margin: Float64Array;
  readonly costOfGoodsMicros: Float64Array;
  readonly newCustomers: Float64Array;
}

/** Turns validated rows into a {@link CampaignTable}. */
export function toCampaignTable(rows: readonly CampaignRow[]): CampaignTable {
  const length = rows.length;
  const channelIds = new Map<string, number>();
  const campaignIds = new Map<string, number>();
  const pairIds = new Map<number, number>();
  const pairChannel: number[] = [];
  const pairCampaign: number[] = [];
  const pair = new Uint32Array(length);
  const fromDay = new Int32Array(length);
  const toDay = new Int32Array(length);
  const spendMicros = new Float64Array(length);
  const impressions = new Float64Array(length);
  const clicks = new Float64Array(length);
  const leads = new Float64Array(length);
  const conversions = new Float64Array(length);
  const revenueMicros = new Float64Array(length);
  const margin = new Float64Array(length);
  const costOfGoodsMicros = new Float64Array(length);
  const newCustomers = new Float64Array(length);
  const dayCache = new Map<string, number>();
  const day = (iso: string): number => {
    let value = dayCache.get(iso);
    if (value === undefined) {
      value = isoDateToDay(iso)!;
      dayCache.set(iso, value);
    }
    return value;
  };
  for (let index = 0; index < length; index += 1) {
    const row = rows[index]!;
    let channelId = channelIds.get(row.channel);
    if (channelId === undefined) {
      channelId = channelIds.size;
      channelIds.set(row.channel, channelId);
    }
    let campaignId = campaignIds.get(row.campaign);
    if (campaignId === undefined) {
      campaignId = campaignIds.size;
      campaignIds.set(row.campaign, campaignId);
    }
    // A numeric key (no string per row): ids are below the 5,000,000-row limit < 2^23, so keys stay exact.
    const pairKey = campaignId * 8_388_608 + channelId;
    let pairId = pairIds.get(pairKey);
    if (pairId === undefined) {
      pairId = pairIds.size;
      pairIds.set(pairKey, pairId);
      pairChannel.push(channelId);
      pairCampaign.push(campaignId);
    }
    pair[index] = pairId;
    fromDay[index] = day(row.period.from);
    toDay[index] = day(row.period.to);
    spendMicros[index] = row.spendMicros;
    impressions[index] = row.impressions ?? NaN;
    clicks[index] = row.clicks ?? NaN;
    leads[index] = row.leads ?? NaN;
    conversions[index] = row.conversions ?? NaN;
    revenueMicros[index] = row.revenueMicros ?? NaN;
    margin[index] = row.margin ?? NaN;
    costOfGoodsMicros[index] = row.costOfGoodsMicros ?? NaN;
    newCustomers[index] = row.newCustomers ?? NaN;
  }
  return {
    length,
    channels: [...channelIds.keys()],
    campaigns: [...campaignIds.keys()],
    pairChannel: Uint32Array.from(pairChannel),
    pairCampaign: Uint32Array.from(pairCampaign),
    pair,
    fromDay,
    toDay,
    spendMicros,
    impressions,
    clicks,
    leads,
    conversions,
    revenueMicros,
    margin,
    costOfGoodsMicros,
    newCustomers,
  };
}
