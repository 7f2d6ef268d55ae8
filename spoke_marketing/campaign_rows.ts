// Campaign rows at the trust boundary: validates CSV text or JSON rows into typed rows (money as exact integer
// micro-units), with row-numbered errors, and turns them into the columnar table the metrics loop reads.
// Also owns the calendar: ISO dates, quarter/month period labels and the period before a given one.
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
  const quarter = /^(\d{4})-Q([1-4])$/.exec(period.label);
  if (quarter !== null) {
    const year = Number(quarter[1]);
    const q = Number(quarter[2]);
    return q === 1 ? quarterSpan(year - 1, 4) : quarterSpan(year, q - 1);
  }
  const month = /^(\d{4})-(\d{2})$/.exec(period.label);
  if (month !== null) {
    const year = Number(month[1]);
    const m = Number(month[2]);
    return m === 1 ? monthSpan(year - 1, 12) : monthSpan(year, m - 1);
  }
  const fromDay = isoDateToDay(period.from)!;
  const toDay = isoDateToDay(period.to)!;
  const length = toDay - fromDay + 1;
  const from = dayToIsoDate(fromDay - length);
  const to = dayToIsoDate(fromDay - 1);
  return { label: from === to ? from : `${from}..${to}`, from, to };
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

type CellReader = (field: FieldName) => unknown;

function readRow(read: CellReader, where: Where): CampaignRow {
  const text = (field: FieldName): string | null => cellText(read(field));
  const requiredText = (field: 'campaign' | 'channel'): string => {
    const value = text(field);
    if (value === null) throw invalid(where, field, read(field) ?? '', 'is required');
    if (value.length > 200) throw invalid(where, field, value.slice(0, 40), 'is longer than 200 characters');
    return value;
  };
  const campaign = requiredText('campaign');
  const channel = requiredText('channel');

  const dateText = text('date');
  const periodText = text('period');
  let period: PeriodSpan;
  if (dateText !== null) {
    if (isoDateToDay(dateText) === null)
      throw invalid(where, 'date', dateText, 'is not an ISO date YYYY-MM-DD');
    period = { label: dateText, from: dateText, to: dateText };
  } else if (periodText !== null) {
    const parsed = /^\d{4}-(Q[1-4]|\d{2})$/i.test(periodText) ? parsePeriodLabel(periodText) : null;
    if (parsed === null) throw invalid(where, 'period', periodText, 'is not a period YYYY-Qn or YYYY-MM');
    period = parsed;
  } else {
    throw invalid(where, 'date', '', 'is required (or a period YYYY-Qn / YYYY-MM)');
  }

  const money = (field: 'spend' | 'revenue' | 'cost_of_goods'): number | null => {
    const value = text(field);
    if (value === null) return null;
    if (value.startsWith('-')) throw invalid(where, field, value, 'must not be negative');
    const micros = parseMoneyMicros(value);
    if (micros === null) throw invalid(where, field, value, 'is not a decimal amount');
    return micros;
  };
  const count = (
    field: 'impressions' | 'clicks' | 'leads' | 'new_customers' | 'conversions',
  ): number | null => {
    const value = text(field);
    if (value === null) return null;
    if (value.startsWith('-')) throw invalid(where, field, value, 'must not be negative');
    const parsed = parseAmount(value);
    if (parsed === null) throw invalid(where, field, value, 'is not a number');
    if (field !== 'conversions' && !Number.isSafeInteger(parsed)) {
      throw invalid(where, field, value, 'must be a whole number');
    }
    return parsed;
  };

  const spendMicros = money('spend');
  if (spendMicros === null) throw invalid(where, 'spend', '', 'is required');
  const impressions = count('impressions');
  const clicks = count('clicks');
  // The one funnel invariant enforced per row: a counted ad click needs a served impression, so a row with
  // more clicks than impressions is a swapped or corrupt column. Leads and conversions are NOT bounded by
  // clicks (view-through conversions, phone/offline leads, several conversions per click).
  if (impressions !== null && clicks !== null && clicks > impressions) {
    throw invalid(where, 'clicks', clicks, `exceeds impressions (${impressions})`);
  }

  let margin: number | null = null;
  const marginText = text('margin');
  if (marginText !== null) {
    if (marginText.startsWith('-')) throw invalid(where, 'margin', marginText, 'must not be negative');
    const percent = marginText.endsWith('%');
    const parsed = parseAmount(percent ? marginText.slice(0, -1).trim() : marginText);
    if (parsed === null) throw invalid(where, 'margin', marginText, 'is not a fraction or percentage');
    margin = percent ? parsed / 100 : parsed;
    // A gross-margin fraction cannot exceed 1 (that would need negative cost of goods).
    if (margin > 1) throw invalid(where, 'margin', marginText, 'must be a fraction between 0 and 1');
  }

  return {
    source: { kind: where.kind, number: where.number },
    campaign,
    channel,
    period,
    spendMicros,
    impressions,
    clicks,
    leads: count('leads'),
    conversions: count('conversions'),
    revenueMicros: money('revenue'),
    margin,
    costOfGoodsMicros: money('cost_of_goods'),
    newCustomers: count('new_customers'),
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

/**
 * Validates campaign CSV text (header names are case-insensitive; `cost`, `cogs`, `conversion_value` … are
 * accepted aliases). Throws AppError `VALIDATION_FAILED` with details `{line, field, value}`.
 */
export function parseCampaignCsv(text: string, options: ReadRowsOptions = {}): CampaignRow[] {
  const source = options.source ?? 'CSV';
  const table = parseCsv(text, { source });
  const columns = new Map<FieldName, number>();
  table.header.forEach((name, index) => {
    const field = canonicalFieldName(name);
    if (field !== undefined && !columns.has(field)) columns.set(field, index);
  });
  for (const field of ['campaign', 'channel', 'spend'] as const) {
    if (!columns.has(field)) {
      throw new AppError('VALIDATION_FAILED', `${source} line 1: missing column "${field}"`, {
        details: { line: 1, field, value: table.header.join(',') },
      });
    }
  }
  if (!columns.has('date') && !columns.has('period')) {
    throw new AppError('VALIDATION_FAILED', `${source} line 1: missing column "date" or "period"`, {
      details: { line: 1, field: 'date', value: table.header.join(',') },
    });
  }
  const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
  if (table.records.length > maxRows) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${source}: ${table.records.length} rows exceed the limit ${maxRows}`,
      {
        details: { field: 'rows', value: table.records.length, limit: maxRows },
      },
    );
  }
  const rows: CampaignRow[] = new Array(table.records.length);
  for (let index = 0; index < table.records.length; index += 1) {
    const record = table.records[index]!;
    const read: CellReader = (field) => {
      const column = columns.get(field);
      return column === undefined ? undefined : record.values[column];
    };
    rows[index] = readRow(read, { kind: 'line', number: record.line, source });
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
  const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
  if (records.length > maxRows) {
    throw new AppError('VALIDATION_FAILED', `${source}: ${records.length} rows exceed the limit ${maxRows}`, {
      details: { field: 'rows', value: records.length, limit: maxRows },
    });
  }
  return records.map((record, index) => {
    const where: Where = { kind: 'row', number: index + 1, source };
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      throw invalid(where, 'row', record, 'is not an object');
    }
    const cells = new Map<FieldName, unknown>();
    for (const [key, value] of Object.entries(record)) {
      const field = canonicalFieldName(key);
      if (field !== undefined && !cells.has(field)) cells.set(field, value);
    }
    for (const [field, value] of cells) {
      if (value !== null && value !== undefined && typeof value !== 'string' && typeof value !== 'number') {
        throw invalid(where, field, JSON.stringify(value), 'must be a string or a number');
      }
    }
    return readRow((field) => cells.get(field), where);
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
  const pairIds = new Map<string, number>();
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
    const pairKey = `${channelId}:${campaignId}`;
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
