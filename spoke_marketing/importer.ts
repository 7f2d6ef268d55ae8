// Imports marketing metrics and leads from CSV, JSON or JSON Lines: every row validated with zod, every error
// naming its line and field, and the whole file written in one transaction (one bad row imports nothing).
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { z } from 'zod';
import { parseCsv } from '../shared/csv.js';
import type { Database } from '../shared/db.js';
import { AppError } from '../shared/errors.js';
import {
  currencyFractionDigits,
  upsertLeads,
  upsertMetrics,
  type LeadInput,
  type MetricsInput,
} from './store.js';

/** What can be imported. */
export type ImportKind = 'metrics' | 'leads';

/** Input formats; `auto` picks by file extension, then by the first non-blank character. */
export type ImportFormat = 'csv' | 'json' | 'jsonl' | 'auto';

/** One validation problem, located. */
export interface ImportIssue {
  /** 1-based line in the file where the record starts. */
  readonly line: number;
  /** The column / property at fault (`(row)` for whole-row problems). */
  readonly field: string;
  readonly message: string;
}

/** The outcome of an import. */
export interface ImportResult {
  readonly kind: ImportKind;
  readonly source: string;
  /** Rows validated and written (inserted or replaced). */
  readonly rows: number;
}

/** Transactions are all an import needs from the database. */
export type ImportTarget = Pick<Database, 'transaction'>;

/** A record before validation: its line and its fields by column name. */
interface RawRecord {
  readonly line: number;
  readonly fields: Readonly<Record<string, unknown>>;
}

const MAX_REPORTED_ISSUES = 20;

// ---------------------------------------------------------------------------------------------------------
// Field rules shared by both kinds

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_TIMESTAMP =
  /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?)?$/i;
const DECIMAL = /^\d+(?:\.\d+)?$/;

const requiredText = (what = 'text') =>
  z
    .string({ required_error: 'is required', invalid_type_error: `must be ${what}` })
    .min(1, 'is required')
    .max(500);
const optionalText = z
  .string({ invalid_type_error: 'must be text' })
  .max(2000, 'is longer than 2000 characters')
  .optional();

const calendarDate = requiredText('a date').refine(
  (value) => ISO_DATE.test(value) && new Date(`${value}T00:00:00Z`).toISOString().slice(0, 10) === value,
  'must be a calendar date YYYY-MM-DD',
);

/** An ISO 8601 timestamp; a bare date is midnight UTC and a time without offset is UTC. Normalised to ISO. */
const timestamp = z.string({ invalid_type_error: 'must be a timestamp' }).transform((value, context) => {
  const match = ISO_TIMESTAMP.exec(value);
  const date = match?.[1];
  const validDate =
    date !== undefined && new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10) === date
      ? date
      : undefined;
  const parsed =
    match === null || validDate === undefined
      ? Number.NaN
      : Date.parse(`${validDate}T${match[2] ?? '00:00:00'}${match[3] ?? 'Z'}`);
  if (!Number.isFinite(parsed)) {
    context.addIssue({ code: 'custom', message: 'must be an ISO 8601 timestamp like 2024-10-01T12:00:00Z' });
    return z.NEVER;
  }
  return new Date(parsed).toISOString();
});

const count = z
  .string({ invalid_type_error: 'must be a whole number' })
  .regex(/^\d+$/, 'must be a whole number ≥ 0')
  .transform(Number)
  .refine(Number.isSafeInteger, 'is too large')
  .optional()
  .transform((value) => value ?? 0);

const decimalAmount = z
  .string({ invalid_type_error: 'must be a decimal amount' })
  .regex(DECIMAL, 'must be a decimal amount ≥ 0 like 12.34');

const currencyCode = z
  .string({ invalid_type_error: 'must be a currency code' })
  .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code like USD')
  .refine((code) => {
    try {
      currencyFractionDigits(code);
      return true;
    } catch {
      return false;
    }
  }, 'is not a known currency code')
  .optional()
  .transform((value) => value ?? 'USD');

/** Converts a decimal string in major units to exact integer minor units, or says why it cannot. */
function decimalToMinor(text: string, currency: string): number | string {
  const digits = currencyFractionDigits(currency);
  const [whole = '0', fraction = ''] = text.split('.');
  if (fraction.length > digits) return `has more decimal places than ${currency} allows (${digits})`;
  const minor = BigInt(whole) * 10n ** BigInt(digits) + BigInt(fraction.padEnd(digits, '0') || '0');
  if (minor > BigInt(Number.MAX_SAFE_INTEGER)) return 'is too large';
  return Number(minor);
}

/** A validated record with a money column `N` (major units) and `N_minor` (minor units). */
type MoneyColumns<N extends string> = { readonly currency: string } & Partial<Record<N, string>> &
  Partial<Record<`${N}_minor`, number>>;

/**
 * Resolves a money amount given either in major units (column `name`, e.g. spend = 12.34) or in minor units
 * (column `<name>_minor`, e.g. spend_minor = 1234); adds an issue and returns undefined when absent (if
 * required), ambiguous or inexact.
 */
function moneyField<N extends string>(
  context: z.RefinementCtx,
  record: MoneyColumns<N>,
  name: N,
  required: boolean,
): number | undefined {
  const minorName = `${name}_minor` as const;
  const majors: Partial<Record<N, string>> = record;
  const minors: Partial<Record<`${N}_minor`, number>> = record;
  const major = majors[name];
  const minor = minors[minorName];
  if (major !== undefined && minor !== undefined) {
    context.addIssue({
      code: 'custom',
      path: [minorName],
      message: `give ${name} or ${minorName}, not both`,
    });
    return undefined;
  }
  if (minor !== undefined) return minor;
  if (major === undefined) {
    if (required) context.addIssue({ code: 'custom', path: [name], message: 'is required' });
    return undefined;
  }
  const exact = decimalToMinor(major, record.currency);
  if (typeof exact === 'string') {
    context.addIssue({ code: 'custom', path: [name], message: exact });
    return undefined;
  }
  return exact;
}

// ---------------------------------------------------------------------------------------------------------
// Metrics

const optionalMinor = z
  .string({ invalid_type_error: 'must be a whole number of minor units' })
  .regex(/^\d+$/, 'must be a whole number of minor units ≥ 0')
  .transform(Number)
  .refine(Number.isSafeInteger, 'is too large')
  .optional();

const metricsRecordSchema = z
  .object({
    date: calendarDate,
    campaign: requiredText(),
    channel: requiredText(),
    source: optionalText,
    currency: currencyCode,
    spend: decimalAmount.optional(),
    spend_minor: optionalMinor,
    impressions: count,
    clicks: count,
    leads: count,
    conversions: z
      .string({ invalid_type_error: 'must be a number' })
      .regex(/^\d+(?:\.\d{1,4})?$/, 'must be a number ≥ 0 with at most 4 decimals')
      .transform(Number)
      .optional()
      .transform((value) => value ?? 0),
    revenue: decimalAmount.optional(),
    revenue_minor: optionalMinor,
    new_customers: count,
    margin: z
      .string({ invalid_type_error: 'must be a number' })
      .regex(
        /^(?:0(?:\.\d{1,6})?|1(?:\.0{1,6})?|\.\d{1,6})$/,
        'must be a fraction from 0 to 1 with at most 6 decimals',
      )
      .transform(Number)
      .optional(),
    cost_of_goods: decimalAmount.optional(),
    cost_of_goods_minor: optionalMinor,
  })
  .strict()
  .transform((record, context): MetricsInput => {
    const spendMinor = moneyField(context, record, 'spend', true);
    const revenueMinor = moneyField(context, record, 'revenue', false);
    const costOfGoodsMinor = moneyField(context, record, 'cost_of_goods', false);
    if (record.clicks > record.impressions && record.impressions > 0) {
      context.addIssue({ code: 'custom', path: ['clicks'], message: 'exceeds impressions' });
    }
    return {
      campaign: record.campaign,
      channel: record.channel,
      date: record.date,
      source: record.source ?? 'import',
      currency: record.currency,
      spendMinor: spendMinor ?? 0,
      impressions: record.impressions,
      clicks: record.clicks,
      leads: record.leads,
      conversions: record.conversions,
      revenueMinor: revenueMinor ?? 0,
      newCustomers: record.new_customers,
      margin: record.margin ?? null,
      costOfGoodsMinor: costOfGoodsMinor ?? null,
    };
  });

/** Columns a metrics file may have. */
export const METRICS_COLUMNS = Object.keys(metricsRecordSchema._def.schema.shape);

/** Validates metrics text; throws `VALIDATION_FAILED` listing every bad line and field, returns rows otherwise. */
export function parseMetrics(
  text: string,
  options: { source?: string; format?: ImportFormat } = {},
): MetricsInput[] {
  const source = options.source ?? 'metrics';
  const records = readRecords(text, source, options.format ?? 'auto');
  const rows = validateRecords(records, metricsRecordSchema, source);
  rejectDuplicates(
    records,
    rows,
    (row) => `${row.campaign}\u0000${row.channel}\u0000${row.date}\u0000${row.source ?? 'import'}`,
    'campaign, channel, date and source',
    source,
  );
  return rows;
}

// ---------------------------------------------------------------------------------------------------------
// Leads

const LEAD_STATUSES = ['new', 'qualified', 'customer', 'lost'] as const;
const ATTRIBUTE_PREFIX = 'attr_';

const leadRecordSchema = z
  .object({
    external_id: optionalText,
    created_at: timestamp,
    email: z
      .string({ invalid_type_error: 'must be text' })
      .email('must be an email address')
      .max(320)
      .optional(),
    phone: z
      .string({ invalid_type_error: 'must be text' })
      .regex(/^\+?[0-9 ().-]{5,30}$/, 'must be a phone number')
      .optional(),
    status: z
      .enum(LEAD_STATUSES, { errorMap: () => ({ message: `must be one of ${LEAD_STATUSES.join(', ')}` }) })
      .optional(),
    campaign: optionalText,
    channel: optionalText,
    utm_source: optionalText,
    utm_medium: optionalText,
    utm_campaign: optionalText,
    utm_term: optionalText,
    utm_content: optionalText,
    utm_id: optionalText,
    gclid: optionalText,
    gbraid: optionalText,
    wbraid: optionalText,
    fbclid: optionalText,
    ttclid: optionalText,
    msclkid: optionalText,
    landing_url: z
      .string({ invalid_type_error: 'must be text' })
      .url('must be an absolute URL')
      .max(4000)
      .optional(),
    referrer: optionalText,
    first_touch_channel: optionalText,
    first_touch_at: timestamp.optional(),
    last_touch_channel: optionalText,
    last_touch_at: timestamp.optional(),
    converted_at: timestamp.optional(),
    revenue: decimalAmount.optional(),
    revenue_minor: optionalMinor,
    currency: currencyCode,
    attributes: z.record(z.unknown(), { invalid_type_error: 'must be an object' }).optional(),
  })
  .strict()
  .transform((record, context): LeadInput => {
    const revenueMinor = moneyField(context, record, 'revenue', false);
    if (record.first_touch_at !== undefined && record.last_touch_at !== undefined) {
      if (record.first_touch_at > record.last_touch_at) {
        context.addIssue({ code: 'custom', path: ['last_touch_at'], message: 'is before first_touch_at' });
      }
    }
    const lead: Record<string, unknown> = {
      externalId: record.external_id,
      createdAt: record.created_at,
      email: record.email?.toLowerCase(),
      phone: record.phone,
      status: record.status,
      campaign: record.campaign,
      channel: record.channel,
      utmSource: record.utm_source,
      utmMedium: record.utm_medium,
      utmCampaign: record.utm_campaign,
      utmTerm: record.utm_term,
      utmContent: record.utm_content,
      utmId: record.utm_id,
      gclid: record.gclid,
      gbraid: record.gbraid,
      wbraid: record.wbraid,
      fbclid: record.fbclid,
      ttclid: record.ttclid,
      msclkid: record.msclkid,
      landingUrl: record.landing_url,
      referrer: record.referrer,
      firstTouchChannel: record.first_touch_channel,
      firstTouchAt: record.first_touch_at,
      lastTouchChannel: record.last_touch_channel,
      lastTouchAt: record.last_touch_at,
      convertedAt: record.converted_at,
      revenueMinor,
      currency: record.currency,
      attributes: record.attributes ?? {},
    };
    return Object.fromEntries(
      Object.entries(lead).filter(([, value]) => value !== undefined),
    ) as unknown as LeadInput;
  });

/** Columns a leads file may have, besides `attr_*` columns that become attributes (numbers when numeric). */
export const LEAD_COLUMNS = Object.keys(leadRecordSchema._def.schema.shape);

/** Moves CSV `attr_*` columns into `attributes` (numeric text becomes a number). */
function collectAttributes(record: RawRecord): RawRecord {
  const attributeEntries = Object.entries(record.fields).filter(([name]) =>
    name.startsWith(ATTRIBUTE_PREFIX),
  );
  if (attributeEntries.length === 0) return record;
  const fields: Record<string, unknown> = Object.fromEntries(
    Object.entries(record.fields).filter(([name]) => !name.startsWith(ATTRIBUTE_PREFIX)),
  );
  const attributes: Record<string, unknown> =
    typeof fields.attributes === 'object' && fields.attributes !== null ? { ...fields.attributes } : {};
  for (const [name, value] of attributeEntries) {
    if (value === undefined) continue;
    const key = name.slice(ATTRIBUTE_PREFIX.length);
    attributes[key] = typeof value === 'string' && /^-?\d+(?:\.\d+)?$/.test(value) ? Number(value) : value;
  }
  fields.attributes = attributes;
  return { line: record.line, fields };
}

/** Validates leads text; throws `VALIDATION_FAILED` listing every bad line and field, returns leads otherwise. */
export function parseLeads(
  text: string,
  options: { source?: string; format?: ImportFormat } = {},
): LeadInput[] {
  const source = options.source ?? 'leads';
  const records = readRecords(text, source, options.format ?? 'auto').map(collectAttributes);
  const leads = validateRecords(records, leadRecordSchema, source);
  rejectDuplicates(records, leads, (lead) => lead.externalId, 'external_id', source);
  return leads;
}

// ---------------------------------------------------------------------------------------------------------
// Import entry points

/** Validates then writes metrics in one transaction. */
export async function importMetrics(
  db: ImportTarget,
  text: string,
  options: { source?: string; format?: ImportFormat } = {},
): Promise<ImportResult> {
  const rows = parseMetrics(text, options);
  const written = await db.transaction((tx) => upsertMetrics(tx, rows));
  return { kind: 'metrics', source: options.source ?? 'metrics', rows: written };
}

/** Validates then writes leads in one transaction. */
export async function importLeads(
  db: ImportTarget,
  text: string,
  options: { source?: string; format?: ImportFormat } = {},
): Promise<ImportResult> {
  const leads = parseLeads(text, options);
  const ids = await db.transaction((tx) => upsertLeads(tx, leads));
  return { kind: 'leads', source: options.source ?? 'leads', rows: ids.length };
}

/** Reads `path` and imports it as `kind`; the format follows the extension (.csv, .json, .jsonl/.ndjson). */
export async function importFile(db: ImportTarget, kind: ImportKind, path: string): Promise<ImportResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new AppError('BAD_REQUEST', `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  const options = { source: basename(path), format: formatFromPath(path) };
  return kind === 'metrics' ? importMetrics(db, text, options) : importLeads(db, text, options);
}

function formatFromPath(path: string): ImportFormat {
  switch (extname(path).toLowerCase()) {
    case '.csv':
      return 'csv';
    case '.json':
      return 'json';
    case '.jsonl':
    case '.ndjson':
      return 'jsonl';
    default:
      return 'auto';
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading records with line numbers

function readRecords(text: string, source: string, format: ImportFormat): RawRecord[] {
  const resolved = format === 'auto' ? sniffFormat(text) : format;
  switch (resolved) {
    case 'csv':
      return csvRecords(text, source);
    case 'json':
      return jsonArrayRecords(text, source);
    case 'jsonl':
      return jsonLinesRecords(text, source);
  }
}

function sniffFormat(text: string): 'csv' | 'json' | 'jsonl' {
  const trimmed = text.replace(/^\uFEFF/, '').trimStart();
  if (trimmed.startsWith('[')) return 'json';
  if (trimmed.startsWith('{')) return 'jsonl';
  return 'csv';
}

function emptyToUndefined(value: string): string | undefined {
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function csvRecords(text: string, source: string): RawRecord[] {
  const table = parseCsv(text, { source });
  const header = table.header.map((name) => name.trim().toLowerCase());
  const seen = new Set<string>();
  for (const name of header) {
    if (seen.has(name)) {
      throw invalid(source, [{ line: 1, field: name, message: 'appears twice in the header' }]);
    }
    seen.add(name);
  }
  return table.records.map((record) => ({
    line: record.line,
    fields: Object.fromEntries(
      header
        .map((name, index) => [name, emptyToUndefined(record.values[index] ?? '')] as const)
        .filter(([, value]) => value !== undefined),
    ),
  }));
}

/** JSON values become the strings the CSV path would give, so one schema validates both. */
function normaliseJsonFields(object: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(object)) {
    if (value === null || value === undefined) continue;
    if (typeof value === 'string') {
      const text = emptyToUndefined(value);
      if (text !== undefined) fields[name] = text;
    } else if (typeof value === 'number' || typeof value === 'boolean') {
      fields[name] = String(value);
    } else {
      fields[name] = value;
    }
  }
  return fields;
}

function jsonObjectRecord(value: unknown, line: number, source: string): RawRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(source, [{ line, field: '(row)', message: 'must be a JSON object' }]);
  }
  return { line, fields: normaliseJsonFields(value as Record<string, unknown>) };
}

function jsonLinesRecords(text: string, source: string): RawRecord[] {
  const records: RawRecord[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((lineText, index) => {
      if (lineText.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(lineText);
      } catch (error) {
        throw invalid(source, [
          { line: index + 1, field: '(row)', message: `is not valid JSON: ${(error as Error).message}` },
        ]);
      }
      records.push(jsonObjectRecord(value, index + 1, source));
    });
  return records;
}

/** Parses a JSON array and finds the line where each top-level element starts. */
function jsonArrayRecords(text: string, source: string): RawRecord[] {
  const input = text.replace(/^\uFEFF/, '');
  let parsed: unknown;
  try {
    parsed = JSON.parse(input);
  } catch (error) {
    throw invalid(source, [
      {
        line: lineOfJsonError(input, error),
        field: '(file)',
        message: `is not valid JSON: ${(error as Error).message}`,
      },
    ]);
  }
  if (!Array.isArray(parsed)) {
    throw invalid(source, [{ line: 1, field: '(file)', message: 'must be a JSON array of objects' }]);
  }
  const lines = topLevelElementLines(input);
  return parsed.map((value, index) => jsonObjectRecord(value, lines[index] ?? 1, source));
}

function topLevelElementLines(input: string): number[] {
  const lines: number[] = [];
  let line = 1;
  let depth = 0;
  let inString = false;
  let expectingElement = false;
  for (let index = 0; index < input.length; index += 1) {
    const char = input[index]!;
    if (char === '\n') line += 1;
    if (inString) {
      if (char === '\\') index += 1;
      else if (char === '"') inString = false;
      continue;
    }
    if (/\s/.test(char)) continue;
    if (depth === 1 && expectingElement && char !== ']') {
      lines.push(line);
      expectingElement = false;
    }
    if (char === '"') inString = true;
    else if (char === '[' || char === '{') {
      depth += 1;
      if (depth === 1) expectingElement = true;
    } else if (char === ']' || char === '}') depth -= 1;
    else if (char === ',' && depth === 1) expectingElement = true;
  }
  return lines;
}

function lineOfJsonError(input: string, error: unknown): number {
  const position = /position (\d+)/.exec((error as Error).message)?.[1];
  if (position === undefined) return 1;
  return input.slice(0, Number(position)).split('\n').length;
}

// ---------------------------------------------------------------------------------------------------------
// Validation

function validateRecords<T>(
  records: readonly RawRecord[],
  schema: z.ZodType<T, z.ZodTypeDef, unknown>,
  source: string,
): T[] {
  const issues: ImportIssue[] = [];
  const rows: T[] = [];
  for (const record of records) {
    const result = schema.safeParse(record.fields);
    if (result.success) {
      rows.push(result.data);
      continue;
    }
    for (const issue of result.error.issues) {
      const unknownKeys = issue.code === 'unrecognized_keys' ? issue.keys : [];
      if (unknownKeys.length > 0) {
        for (const key of unknownKeys)
          issues.push({ line: record.line, field: key, message: 'is not a known column' });
      } else {
        issues.push({ line: record.line, field: String(issue.path[0] ?? '(row)'), message: issue.message });
      }
    }
  }
  if (issues.length > 0) throw invalid(source, issues);
  return rows;
}

function rejectDuplicates<T>(
  records: readonly RawRecord[],
  rows: readonly T[],
  keyOf: (row: T) => string | undefined,
  what: string,
  source: string,
): void {
  const firstLine = new Map<string, number>();
  const issues: ImportIssue[] = [];
  rows.forEach((row, index) => {
    const key = keyOf(row);
    const line = records[index]?.line ?? 0;
    if (key === undefined) return;
    const earlier = firstLine.get(key);
    if (earlier === undefined) firstLine.set(key, line);
    else
      issues.push({
        line,
        field: what.split(',')[0]!.trim(),
        message: `repeats the ${what} of line ${earlier}`,
      });
  });
  if (issues.length > 0) throw invalid(source, issues);
}

function invalid(source: string, issues: readonly ImportIssue[]): AppError {
  const shown = issues.slice(0, MAX_REPORTED_ISSUES);
  const lines = shown.map((issue) => `${source} line ${issue.line}, field ${issue.field}: ${issue.message}`);
  const more = issues.length > shown.length ? `\n(and ${issues.length - shown.length} more)` : '';
  const first = issues[0]!;
  return new AppError('VALIDATION_FAILED', `${lines.join('\n')}${more}\nnothing was imported`, {
    details: { line: first.line, field: first.field, issues: shown, issueCount: issues.length },
  });
}
