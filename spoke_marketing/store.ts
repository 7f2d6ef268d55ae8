// The marketing spoke's SQL (named constants) and repository functions over a Queryable: metrics, leads,
// personas, creatives, the conversion-upload log and job-run bookkeeping. Money is integer minor units here.
import type { Queryable } from '../shared/db.js';
import { AppError } from '../shared/errors.js';

// ---------------------------------------------------------------------------------------------------------
// Money

/** Digits after the decimal point of `currency`'s minor unit (USD 2, JPY 0, KWD 3). */
export function currencyFractionDigits(currency: string): number {
  try {
    return (
      new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ??
      2
    );
  } catch (error) {
    throw new AppError('VALIDATION_FAILED', `unknown currency code ${JSON.stringify(currency)}`, {
      cause: error,
      details: { field: 'currency', value: currency },
    });
  }
}

/** Converts integer minor units to a major-unit number (12345 USD cents → 123.45). */
export function minorToMajor(minor: number, currency: string): number {
  const digits = currencyFractionDigits(currency);
  return Number((minor / 10 ** digits).toFixed(digits));
}

function toSafeInteger(value: unknown, column: string): number {
  const number = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(number)) {
    throw new AppError('INTERNAL', `column ${column} holds ${String(value)}, beyond exact integer range`);
  }
  return number;
}

function toNumber(value: unknown): number {
  return typeof value === 'number' ? value : Number(value);
}

function toNullableInteger(value: unknown, column: string): number | null {
  return value === null || value === undefined ? null : toSafeInteger(value, column);
}

// ---------------------------------------------------------------------------------------------------------
// Metrics

/** One day of one campaign on one channel, as written. */
export interface MetricsInput {
  readonly campaign: string;
  readonly channel: string;
  /** `YYYY-MM-DD`. */
  readonly date: string;
  /** Where the row came from (`import`, `meta`, `google`…); one row per (campaign, channel, date, source). */
  readonly source?: string;
  /** ISO 4217 code. @defaultValue 'USD' */
  readonly currency?: string;
  readonly spendMinor: number;
  readonly impressions: number;
  readonly clicks: number;
  readonly leads: number;
  /** May be fractional (modelled conversions). */
  readonly conversions: number;
  readonly revenueMinor: number;
  readonly newCustomers?: number;
  /** Gross margin as a fraction of revenue in [0, 1]; null or absent when not reported. */
  readonly margin?: number | null;
  /** Cost of goods sold in minor units; null or absent when not reported. */
  readonly costOfGoodsMinor?: number | null;
}

/** One day of one campaign on one channel, as read; `spend`/`revenue` in major units, `*Minor` exact. */
export interface MetricsRow {
  readonly campaign: string;
  readonly channel: string;
  readonly date: string;
  readonly source: string;
  readonly currency: string;
  readonly spend: number;
  readonly spendMinor: number;
  readonly impressions: number;
  readonly clicks: number;
  readonly leads: number;
  readonly conversions: number;
  readonly revenue: number;
  readonly revenueMinor: number;
  readonly newCustomers: number;
  /** Gross margin as a fraction of revenue, or null when not reported. */
  readonly margin: number | null;
  /** Cost of goods sold in major units, or null when not reported. */
  readonly costOfGoods: number | null;
  readonly costOfGoodsMinor: number | null;
}

/** Upserts metric rows (arrays per column, one statement per batch); a re-import of a day replaces it. */
export const UPSERT_METRICS = `
INSERT INTO marketing_metrics AS m
  (campaign, channel, date, source, currency, spend_minor, impressions, clicks, leads, conversions, revenue_minor, new_customers,
   margin, cost_of_goods_minor)
SELECT * FROM unnest(
  $1::text[], $2::text[], $3::date[], $4::text[], $5::char(3)[], $6::bigint[],
  $7::bigint[], $8::bigint[], $9::bigint[], $10::numeric[], $11::bigint[], $12::bigint[],
  $13::numeric[], $14::bigint[])
ON CONFLICT (campaign, channel, date, source) DO UPDATE SET
  currency = EXCLUDED.currency,
  spend_minor = EXCLUDED.spend_minor,
  impressions = EXCLUDED.impressions,
  clicks = EXCLUDED.clicks,
  leads = EXCLUDED.leads,
  conversions = EXCLUDED.conversions,
  revenue_minor = EXCLUDED.revenue_minor,
  new_customers = EXCLUDED.new_customers,
  margin = EXCLUDED.margin,
  cost_of_goods_minor = EXCLUDED.cost_of_goods_minor,
  updated_at = now()`;

/** Metric rows whose date lies in [$1, $2], optionally one campaign ($3) and/or channel ($4). */
export const SELECT_METRICS_BY_PERIOD = `
SELECT campaign, channel, date::text AS date, source, currency, spend_minor, impressions, clicks, leads,
       conversions, revenue_minor, new_customers, margin, cost_of_goods_minor
FROM marketing_metrics
WHERE date BETWEEN $1::date AND $2::date
  AND ($3::text IS NULL OR campaign = $3)
  AND ($4::text IS NULL OR channel = $4)
ORDER BY date, campaign, channel, source`;

const METRICS_BATCH = 500;

/** Writes metric rows; returns how many were inserted or replaced. */
export async function upsertMetrics(db: Queryable, rows: readonly MetricsInput[]): Promise<number> {
  let written = 0;
  for (let start = 0; start < rows.length; start += METRICS_BATCH) {
    const batch = rows.slice(start, start + METRICS_BATCH);
    const result = await db.query(UPSERT_METRICS, [
      batch.map((row) => row.campaign),
      batch.map((row) => row.channel),
      batch.map((row) => row.date),
      batch.map((row) => row.source ?? 'import'),
      batch.map((row) => row.currency ?? 'USD'),
      batch.map((row) => row.spendMinor),
      batch.map((row) => row.impressions),
      batch.map((row) => row.clicks),
      batch.map((row) => row.leads),
      batch.map((row) => String(row.conversions)),
      batch.map((row) => row.revenueMinor),
      batch.map((row) => row.newCustomers ?? 0),
      batch.map((row) => (row.margin === undefined || row.margin === null ? null : String(row.margin))),
      batch.map((row) => row.costOfGoodsMinor ?? null),
    ]);
    written += result.rowCount ?? 0;
  }
  return written;
}

/** Filter of {@link selectMetricsByPeriod}; dates are inclusive `YYYY-MM-DD`. */
export interface MetricsPeriod {
  readonly from: string;
  readonly to: string;
  readonly campaign?: string;
  readonly channel?: string;
}

/** The latest date that has metric rows (ISO), or null when there are none. */
export const SELECT_LATEST_METRICS_DATE = `SELECT max(date)::text AS latest FROM marketing_metrics`;

/** The latest date with stored metrics, or null when the table is empty. */
export async function selectLatestMetricsDate(db: Queryable): Promise<string | null> {
  const result = await db.query<{ latest: string | null }>(SELECT_LATEST_METRICS_DATE);
  return result.rows[0]?.latest ?? null;
}

/** Metric rows of a period, ordered by date, campaign, channel. */
export async function selectMetricsByPeriod(db: Queryable, period: MetricsPeriod): Promise<MetricsRow[]> {
  const result = await db.query<Record<string, unknown>>(SELECT_METRICS_BY_PERIOD, [
    period.from,
    period.to,
    period.campaign ?? null,
    period.channel ?? null,
  ]);
  return result.rows.map((row) => {
    const currency = String(row.currency);
    const spendMinor = toSafeInteger(row.spend_minor, 'spend_minor');
    const revenueMinor = toSafeInteger(row.revenue_minor, 'revenue_minor');
    const costOfGoodsMinor =
      row.cost_of_goods_minor === null ? null : toSafeInteger(row.cost_of_goods_minor, 'cost_of_goods_minor');
    return {
      campaign: String(row.campaign),
      channel: String(row.channel),
      date: String(row.date),
      source: String(row.source),
      currency,
      spend: minorToMajor(spendMinor, currency),
      spendMinor,
      impressions: toSafeInteger(row.impressions, 'impressions'),
      clicks: toSafeInteger(row.clicks, 'clicks'),
      leads: toSafeInteger(row.leads, 'leads'),
      conversions: toNumber(row.conversions),
      revenue: minorToMajor(revenueMinor, currency),
      revenueMinor,
      newCustomers: toSafeInteger(row.new_customers, 'new_customers'),
      margin: row.margin === null ? null : toNumber(row.margin),
      costOfGoods: costOfGoodsMinor === null ? null : minorToMajor(costOfGoodsMinor, currency),
      costOfGoodsMinor,
    };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Leads

/** A lead as written: attribution fields flat, timestamps ISO 8601. */
export interface LeadInput {
  /** CRM id; a re-import of the same id updates the lead instead of duplicating it. */
  readonly externalId?: string;
  readonly createdAt: string;
  readonly email?: string;
  readonly phone?: string;
  readonly status?: 'new' | 'qualified' | 'customer' | 'lost';
  readonly campaign?: string;
  readonly channel?: string;
  readonly utmSource?: string;
  readonly utmMedium?: string;
  readonly utmCampaign?: string;
  readonly utmTerm?: string;
  readonly utmContent?: string;
  readonly utmId?: string;
  readonly gclid?: string;
  readonly gbraid?: string;
  readonly wbraid?: string;
  readonly fbclid?: string;
  readonly ttclid?: string;
  readonly msclkid?: string;
  readonly landingUrl?: string;
  readonly referrer?: string;
  readonly firstTouchChannel?: string;
  readonly firstTouchAt?: string;
  readonly lastTouchChannel?: string;
  readonly lastTouchAt?: string;
  readonly personaId?: number;
  /** Features used for persona clustering (budget, location, urgency…). */
  readonly attributes?: Readonly<Record<string, unknown>>;
  readonly convertedAt?: string;
  readonly revenueMinor?: number;
  readonly currency?: string;
}

/** A stored lead. */
export interface LeadRow extends Omit<LeadInput, 'externalId' | 'personaId' | 'revenueMinor' | 'status'> {
  readonly id: number;
  readonly externalId: string | null;
  readonly status: 'new' | 'qualified' | 'customer' | 'lost';
  readonly personaId: number | null;
  readonly revenueMinor: number | null;
  readonly currency: string;
  readonly attributes: Readonly<Record<string, unknown>>;
}

/** Lead columns in the order of {@link UPSERT_LEADS}'s arrays, with how each LeadInput field maps to SQL. */
const LEAD_COLUMNS = [
  ['external_id', 'text', 'externalId'],
  ['created_at', 'timestamptz', 'createdAt'],
  ['email', 'text', 'email'],
  ['phone', 'text', 'phone'],
  ['status', 'text', 'status'],
  ['campaign', 'text', 'campaign'],
  ['channel', 'text', 'channel'],
  ['utm_source', 'text', 'utmSource'],
  ['utm_medium', 'text', 'utmMedium'],
  ['utm_campaign', 'text', 'utmCampaign'],
  ['utm_term', 'text', 'utmTerm'],
  ['utm_content', 'text', 'utmContent'],
  ['utm_id', 'text', 'utmId'],
  ['gclid', 'text', 'gclid'],
  ['gbraid', 'text', 'gbraid'],
  ['wbraid', 'text', 'wbraid'],
  ['fbclid', 'text', 'fbclid'],
  ['ttclid', 'text', 'ttclid'],
  ['msclkid', 'text', 'msclkid'],
  ['landing_url', 'text', 'landingUrl'],
  ['referrer', 'text', 'referrer'],
  ['first_touch_channel', 'text', 'firstTouchChannel'],
  ['first_touch_at', 'timestamptz', 'firstTouchAt'],
  ['last_touch_channel', 'text', 'lastTouchChannel'],
  ['last_touch_at', 'timestamptz', 'lastTouchAt'],
  ['persona_id', 'bigint', 'personaId'],
  ['attributes', 'jsonb', 'attributes'],
  ['converted_at', 'timestamptz', 'convertedAt'],
  ['revenue_minor', 'bigint', 'revenueMinor'],
  ['currency', 'char(3)', 'currency'],
] as const satisfies readonly (readonly [string, string, keyof LeadInput])[];

/** Column defaults applied when an input array element is null (unnest cannot say DEFAULT). */
const LEAD_COLUMN_DEFAULTS: Readonly<Record<string, string>> = {
  status: `'new'`,
  attributes: `'{}'::jsonb`,
  currency: `'USD'`,
};

/**
 * Inserts leads (arrays per column); a lead whose external_id already exists is updated in place. Leads
 * without an external_id are always new rows.
 */
export const UPSERT_LEADS = `
INSERT INTO leads (${LEAD_COLUMNS.map(([column]) => column).join(', ')})
SELECT ${LEAD_COLUMNS.map(([column]) => {
  const fallback = LEAD_COLUMN_DEFAULTS[column];
  return fallback === undefined ? column : `coalesce(${column}, ${fallback})`;
}).join(', ')}
FROM unnest(${LEAD_COLUMNS.map(([, type], index) => `$${index + 1}::${type}[]`).join(', ')})
  AS input(${LEAD_COLUMNS.map(([column]) => column).join(', ')})
ON CONFLICT (external_id) DO UPDATE SET
${LEAD_COLUMNS.filter(([column]) => column !== 'external_id')
  .map(([column]) => `  ${column} = EXCLUDED.${column}`)
  .join(',\n')}
RETURNING id`;

/** Leads created in [$1, $2), newest last, at most $3. */
export const SELECT_LEADS_BY_PERIOD = `
SELECT * FROM leads
WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz
ORDER BY created_at, id
LIMIT $3`;

/** Sets the persona of each lead ($1 lead ids, $2 persona ids, pairwise). */
export const ASSIGN_LEAD_PERSONAS = `
UPDATE leads SET persona_id = input.persona_id
FROM unnest($1::bigint[], $2::bigint[]) AS input(lead_id, persona_id)
WHERE leads.id = input.lead_id`;

const LEADS_BATCH = 500;

/** Writes leads; returns the ids written (new or updated). */
export async function upsertLeads(db: Queryable, leads: readonly LeadInput[]): Promise<number[]> {
  const ids: number[] = [];
  for (let start = 0; start < leads.length; start += LEADS_BATCH) {
    const batch = leads.slice(start, start + LEADS_BATCH);
    const params = LEAD_COLUMNS.map(([, type, field]) =>
      batch.map((lead) => {
        const value = lead[field];
        if (value === undefined) return null;
        return type === 'jsonb' ? JSON.stringify(value) : value;
      }),
    );
    const result = await db.query<{ id: string }>(UPSERT_LEADS, params);
    ids.push(...result.rows.map((row) => toSafeInteger(row.id, 'id')));
  }
  return ids;
}

/** Leads created in [from, to), oldest first. */
export async function selectLeadsByPeriod(
  db: Queryable,
  period: { readonly from: string; readonly to: string; readonly limit?: number },
): Promise<LeadRow[]> {
  const result = await db.query<Record<string, unknown>>(SELECT_LEADS_BY_PERIOD, [
    period.from,
    period.to,
    period.limit ?? 100_000,
  ]);
  return result.rows.map(leadFromRow);
}

/** Assigns personas to leads. */
export async function assignLeadPersonas(
  db: Queryable,
  assignments: readonly { readonly leadId: number; readonly personaId: number }[],
): Promise<void> {
  if (assignments.length === 0) return;
  await db.query(ASSIGN_LEAD_PERSONAS, [
    assignments.map((assignment) => assignment.leadId),
    assignments.map((assignment) => assignment.personaId),
  ]);
}

function isoOrUndefined(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  return value instanceof Date ? value.toISOString() : String(value);
}

function textOrUndefined(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

function leadFromRow(row: Record<string, unknown>): LeadRow {
  const optional = (entries: Record<string, string | undefined>): Record<string, string> =>
    Object.fromEntries(
      Object.entries(entries).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
  return {
    id: toSafeInteger(row.id, 'id'),
    externalId: row.external_id === null ? null : String(row.external_id),
    createdAt: isoOrUndefined(row.created_at) ?? '',
    status: String(row.status) as LeadRow['status'],
    personaId: toNullableInteger(row.persona_id, 'persona_id'),
    revenueMinor: toNullableInteger(row.revenue_minor, 'revenue_minor'),
    currency: String(row.currency),
    attributes: (row.attributes ?? {}) as Record<string, unknown>,
    ...optional({
      email: textOrUndefined(row.email),
      phone: textOrUndefined(row.phone),
      campaign: textOrUndefined(row.campaign),
      channel: textOrUndefined(row.channel),
      utmSource: textOrUndefined(row.utm_source),
      utmMedium: textOrUndefined(row.utm_medium),
      utmCampaign: textOrUndefined(row.utm_campaign),
      utmTerm: textOrUndefined(row.utm_term),
      utmContent: textOrUndefined(row.utm_content),
      utmId: textOrUndefined(row.utm_id),
      gclid: textOrUndefined(row.gclid),
      gbraid: textOrUndefined(row.gbraid),
      wbraid: textOrUndefined(row.wbraid),
      fbclid: textOrUndefined(row.fbclid),
      ttclid: textOrUndefined(row.ttclid),
      msclkid: textOrUndefined(row.msclkid),
      landingUrl: textOrUndefined(row.landing_url),
      referrer: textOrUndefined(row.referrer),
      firstTouchChannel: textOrUndefined(row.first_touch_channel),
      firstTouchAt: isoOrUndefined(row.first_touch_at),
      lastTouchChannel: textOrUndefined(row.last_touch_channel),
      lastTouchAt: isoOrUndefined(row.last_touch_at),
      convertedAt: isoOrUndefined(row.converted_at),
    }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Personas

/** A persona produced by one discovery run. */
export interface PersonaInput {
  readonly name: string;
  readonly description?: string;
  readonly clusterLabel?: number;
  readonly size: number;
  /** Cluster summary computed in code (median budget, location mix…). */
  readonly summary?: Readonly<Record<string, unknown>>;
}

/** A stored persona. */
export interface PersonaRow {
  readonly id: number;
  readonly name: string;
  readonly description: string | null;
  readonly clusterLabel: number | null;
  readonly size: number;
  readonly summary: Readonly<Record<string, unknown>>;
  readonly discoveryRunKey: string | null;
  readonly active: boolean;
  readonly createdAt: string;
}

export const DEACTIVATE_PERSONAS = `UPDATE personas SET active = false WHERE active`;
export const INSERT_PERSONA = `
INSERT INTO personas (name, description, cluster_label, size, summary, discovery_run_key)
VALUES ($1, $2, $3, $4, $5::jsonb, $6)
RETURNING id`;
export const SELECT_ACTIVE_PERSONAS = `SELECT * FROM personas WHERE active ORDER BY size DESC, id`;

/** Replaces the active persona set with `personas` (older ones stay, inactive); returns the new ids in order. */
export async function replaceActivePersonas(
  db: Queryable,
  runKey: string,
  personas: readonly PersonaInput[],
): Promise<number[]> {
  await db.query(DEACTIVATE_PERSONAS);
  const ids: number[] = [];
  for (const persona of personas) {
    const result = await db.query<{ id: string }>(INSERT_PERSONA, [
      persona.name,
      persona.description ?? null,
      persona.clusterLabel ?? null,
      persona.size,
      JSON.stringify(persona.summary ?? {}),
      runKey,
    ]);
    ids.push(toSafeInteger(result.rows[0]?.id, 'id'));
  }
  return ids;
}

/** The active personas, largest first. */
export async function selectActivePersonas(db: Queryable): Promise<PersonaRow[]> {
  const result = await db.query<Record<string, unknown>>(SELECT_ACTIVE_PERSONAS);
  return result.rows.map((row) => ({
    id: toSafeInteger(row.id, 'id'),
    name: String(row.name),
    description: row.description === null ? null : String(row.description),
    clusterLabel: toNullableInteger(row.cluster_label, 'cluster_label'),
    size: toSafeInteger(row.size, 'size'),
    summary: (row.summary ?? {}) as Record<string, unknown>,
    discoveryRunKey: row.discovery_run_key === null ? null : String(row.discovery_run_key),
    active: row.active === true,
    createdAt: isoOrUndefined(row.created_at) ?? '',
  }));
}

// ---------------------------------------------------------------------------------------------------------
// Creatives

/** A generated creative with its compliance report. */
export interface CreativeInput {
  readonly campaignId?: string;
  readonly personaId?: number;
  readonly channel?: string;
  readonly headline: string;
  readonly body: string;
  readonly callToAction?: string;
  /** Fair Housing / toxicity findings, as produced by the compliance checker. */
  readonly complianceReport: Readonly<Record<string, unknown>>;
  readonly model?: string;
}

/** A stored creative. */
export interface CreativeRow extends Omit<CreativeInput, 'campaignId' | 'personaId' | 'channel'> {
  readonly id: number;
  readonly campaignId: string | null;
  readonly personaId: number | null;
  readonly channel: string | null;
  readonly approved: boolean;
  readonly approvedAt: string | null;
  readonly createdAt: string;
}

export const INSERT_CREATIVE = `
INSERT INTO creatives (campaign_id, persona_id, channel, headline, body, call_to_action, compliance_report, model)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
RETURNING id`;
export const APPROVE_CREATIVE = `
UPDATE creatives SET approved = true, approved_at = now() WHERE id = $1 AND NOT approved RETURNING id`;
export const SELECT_CREATIVES = `
SELECT * FROM creatives
WHERE ($1::text IS NULL OR campaign_id = $1) AND ($2::boolean IS NULL OR approved = $2)
ORDER BY id`;

/** Stores a creative (unapproved); returns its id. */
export async function insertCreative(db: Queryable, creative: CreativeInput): Promise<number> {
  const result = await db.query<{ id: string }>(INSERT_CREATIVE, [
    creative.campaignId ?? null,
    creative.personaId ?? null,
    creative.channel ?? null,
    creative.headline,
    creative.body,
    creative.callToAction ?? null,
    JSON.stringify(creative.complianceReport),
    creative.model ?? null,
  ]);
  return toSafeInteger(result.rows[0]?.id, 'id');
}

/** Marks a creative approved; false when it does not exist or was already approved. */
export async function approveCreative(db: Queryable, id: number): Promise<boolean> {
  const result = await db.query(APPROVE_CREATIVE, [id]);
  return (result.rowCount ?? 0) > 0;
}

/** Creatives, optionally of one campaign and/or approval state. */
export async function selectCreatives(
  db: Queryable,
  filter: { readonly campaignId?: string; readonly approved?: boolean } = {},
): Promise<CreativeRow[]> {
  const result = await db.query<Record<string, unknown>>(SELECT_CREATIVES, [
    filter.campaignId ?? null,
    filter.approved ?? null,
  ]);
  return result.rows.map((row) => ({
    id: toSafeInteger(row.id, 'id'),
    campaignId: row.campaign_id === null ? null : String(row.campaign_id),
    personaId: toNullableInteger(row.persona_id, 'persona_id'),
    channel: row.channel === null ? null : String(row.channel),
    headline: String(row.headline),
    body: String(row.body),
    ...(row.call_to_action === null ? {} : { callToAction: String(row.call_to_action) }),
    complianceReport: (row.compliance_report ?? {}) as Record<string, unknown>,
    ...(row.model === null ? {} : { model: String(row.model) }),
    approved: row.approved === true,
    approvedAt: isoOrUndefined(row.approved_at) ?? null,
    createdAt: isoOrUndefined(row.created_at) ?? '',
  }));
}

// ---------------------------------------------------------------------------------------------------------
// Conversion uploads

/** Lifecycle of one offline-conversion upload. */
export type ConversionUploadStatus = 'pending' | 'dry_run' | 'sent' | 'failed';

/** A logged conversion upload. */
export interface ConversionUploadRow {
  readonly id: number;
  readonly platform: string;
  readonly dedupeKey: string;
  readonly leadId: number | null;
  readonly eventName: string | null;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly status: ConversionUploadStatus;
  readonly attempts: number;
  readonly response: unknown;
  readonly error: string | null;
  readonly createdAt: string;
}

export const UPDATE_CONVERSION_UPLOAD = `
UPDATE conversion_uploads
SET status = $3, response = $4::jsonb, error = $5, attempts = attempts + 1, updated_at = now()
WHERE platform = $1 AND dedupe_key = $2`;
export const SELECT_CONVERSION_UPLOADS = `
SELECT * FROM conversion_uploads
WHERE ($1::text IS NULL OR platform = $1) AND ($2::text IS NULL OR status = $2)
ORDER BY created_at, id
LIMIT $3`;

/** Records the outcome of sending a logged upload (counts an attempt). */
export async function updateConversionUploadStatus(
  db: Queryable,
  update: {
    readonly platform: string;
    readonly dedupeKey: string;
    readonly status: ConversionUploadStatus;
    readonly response?: unknown;
    readonly error?: string;
  },
): Promise<boolean> {
  const result = await db.query(UPDATE_CONVERSION_UPLOAD, [
    update.platform,
    update.dedupeKey,
    update.status,
    update.response === undefined ? null : JSON.stringify(update.response),
    update.error ?? null,
  ]);
  return (result.rowCount ?? 0) > 0;
}

/** Logged uploads, optionally of one platform and/or status, oldest first. */
export async function selectConversionUploads(
  db: Queryable,
  filter: {
    readonly platform?: string;
    readonly status?: ConversionUploadStatus;
    readonly limit?: number;
  } = {},
): Promise<ConversionUploadRow[]> {
  const result = await db.query<Record<string, unknown>>(SELECT_CONVERSION_UPLOADS, [
    filter.platform ?? null,
    filter.status ?? null,
    filter.limit ?? 1000,
  ]);
  return result.rows.map((row) => ({
    id: toSafeInteger(row.id, 'id'),
    platform: String(row.platform),
    dedupeKey: String(row.dedupe_key),
    leadId: toNullableInteger(row.lead_id, 'lead_id'),
    eventName: row.event_name === null ? null : String(row.event_name),
    payload: (row.payload ?? {}) as Record<string, unknown>,
    status: String(row.status) as ConversionUploadStatus,
    attempts: toSafeInteger(row.attempts, 'attempts'),
    response: row.response,
    error: row.error === null ? null : String(row.error),
    createdAt: isoOrUndefined(row.created_at) ?? '',
  }));
}

// ---------------------------------------------------------------------------------------------------------
// Job runs and budget allocations

/** A job run whose effects were applied. */
export interface JobRunRow {
  readonly runKey: string;
  readonly jobName: string;
  readonly jobId: string | null;
  readonly attempt: number;
  readonly summary: Readonly<Record<string, unknown>>;
  readonly appliedAt: string;
}

export const CLAIM_JOB_RUN = `
INSERT INTO job_runs (run_key, job_name, job_id, attempt, summary)
VALUES ($1, $2, $3, $4, $5::jsonb)
ON CONFLICT (run_key) DO NOTHING
RETURNING run_key`;
export const SELECT_JOB_RUN = `SELECT * FROM job_runs WHERE run_key = $1`;

/**
 * Records that a run's effects are being applied. Call it inside the transaction that applies them: true
 * means this run is new (apply, then commit); false means the run was applied before (a retried or
 * duplicated job) and nothing must be applied again.
 */
export async function claimJobRun(
  db: Queryable,
  run: {
    readonly runKey: string;
    readonly jobName: string;
    readonly jobId?: string;
    readonly attempt: number;
    readonly summary?: Readonly<Record<string, unknown>>;
  },
): Promise<boolean> {
  const result = await db.query(CLAIM_JOB_RUN, [
    run.runKey,
    run.jobName,
    run.jobId ?? null,
    run.attempt,
    JSON.stringify(run.summary ?? {}),
  ]);
  return (result.rowCount ?? 0) > 0;
}

function jobRunFromRow(row: Record<string, unknown>): JobRunRow {
  return {
    runKey: String(row.run_key),
    jobName: String(row.job_name),
    jobId: row.job_id === null ? null : String(row.job_id),
    attempt: toSafeInteger(row.attempt, 'attempt'),
    summary: (row.summary ?? {}) as Record<string, unknown>,
    appliedAt: isoOrUndefined(row.applied_at) ?? '',
  };
}

/** The applied run with this key, if any. */
export async function selectJobRun(db: Queryable, runKey: string): Promise<JobRunRow | undefined> {
  const result = await db.query<Record<string, unknown>>(SELECT_JOB_RUN, [runKey]);
  const row = result.rows[0];
  return row === undefined ? undefined : jobRunFromRow(row);
}

/** One campaign/channel budget chosen by an optimisation run. */
export interface BudgetAllocationInput {
  readonly campaign: string;
  readonly channel: string;
  readonly dailyBudgetMinor: number;
  readonly currency?: string;
  /** Fraction of the total budget, 0–1. */
  readonly share?: number;
  readonly rationale?: Readonly<Record<string, unknown>>;
}

/** A stored allocation. */
export interface BudgetAllocationRow extends Required<Omit<BudgetAllocationInput, 'share'>> {
  readonly runKey: string;
  readonly share: number | null;
  readonly createdAt: string;
}

export const INSERT_BUDGET_ALLOCATIONS = `
INSERT INTO budget_allocations (run_key, campaign, channel, daily_budget_minor, currency, share, rationale)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::char(3)[], $6::numeric[], $7::jsonb[])`;
export const SELECT_LATEST_BUDGET_ALLOCATIONS = `
SELECT a.* FROM budget_allocations a
WHERE a.run_key = (SELECT run_key FROM budget_allocations ORDER BY created_at DESC, id DESC LIMIT 1)
ORDER BY a.campaign, a.channel`;

/** Writes the allocations of one run (the run must be claimed in the same transaction). */
export async function insertBudgetAllocations(
  db: Queryable,
  runKey: string,
  allocations: readonly BudgetAllocationInput[],
): Promise<number> {
  if (allocations.length === 0) return 0;
  const result = await db.query(INSERT_BUDGET_ALLOCATIONS, [
    runKey,
    allocations.map((allocation) => allocation.campaign),
    allocations.map((allocation) => allocation.channel),
    allocations.map((allocation) => allocation.dailyBudgetMinor),
    allocations.map((allocation) => allocation.currency ?? 'USD'),
    allocations.map((allocation) => (allocation.share === undefined ? null : String(allocation.share))),
    allocations.map((allocation) => JSON.stringify(allocation.rationale ?? {})),
  ]);
  return result.rowCount ?? 0;
}

/** The allocations of the most recent optimisation run. */
export async function selectLatestBudgetAllocations(db: Queryable): Promise<BudgetAllocationRow[]> {
  const result = await db.query<Record<string, unknown>>(SELECT_LATEST_BUDGET_ALLOCATIONS);
  return result.rows.map((row) => ({
    runKey: String(row.run_key),
    campaign: String(row.campaign),
    channel: String(row.channel),
    dailyBudgetMinor: toSafeInteger(row.daily_budget_minor, 'daily_budget_minor'),
    currency: String(row.currency),
    share: row.share === null ? null : toNumber(row.share),
    rationale: (row.rationale ?? {}) as Record<string, unknown>,
    createdAt: isoOrUndefined(row.created_at) ?? '',
  }));
}
