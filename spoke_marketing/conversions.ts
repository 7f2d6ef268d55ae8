// Offline-conversion payloads for Meta Conversions API, Google Ads UploadClickConversions and TikTok Events
// API 2.0 (customer data hashed per platform), their dedupe keys, and the idempotent upload log.
import { AppError } from '../shared/errors.js';
import { hashField, normalizeCountry } from './hashing.js';

/** Ad platforms that receive conversions and campaigns. */
export type AdPlatformName = 'meta' | 'google_ads' | 'tiktok';

/** Customer data of one conversion, raw (hashed here) or already SHA-256 hex (passed through). */
export interface ConversionUser {
  emails?: readonly string[];
  phones?: readonly string[];
  firstName?: string;
  lastName?: string;
  /** Date of birth, e.g. 1990-01-15 or 01/15/1990. */
  dateOfBirth?: string;
  gender?: string;
  city?: string;
  state?: string;
  postalCode?: string;
  /** ISO 3166-1 alpha-2 code or English name. */
  country?: string;
  streetAddress?: string;
  /** CRM ids; hashed. */
  externalIds?: readonly string[];
  /** Never hashed (platform rule). */
  clientIpAddress?: string;
  /** Never hashed (platform rule). */
  clientUserAgent?: string;
}

/** Click and browser ids captured at the landing page (see tracking.ts). Never hashed. */
export interface ConversionClickIds {
  gclid?: string;
  gbraid?: string;
  wbraid?: string;
  /** Meta `fbc` (`fb.1.<ms>.<fbclid>`), built from fbclid by tracking.ts `buildFbc`. */
  fbc?: string;
  /** Meta `_fbp` cookie. */
  fbp?: string;
  ttclid?: string;
  /** TikTok `_ttp` cookie. */
  ttp?: string;
}

/** One conversion in platform-neutral form. */
export interface ConversionEvent {
  /** Stable id of this conversion; the platforms deduplicate on it (Meta/TikTok `event_id`). */
  eventId: string;
  /** Platform event name, e.g. Meta `Lead`/`Purchase`, TikTok `SubmitForm`/`CompletePayment`. */
  eventName: string;
  /** When the conversion happened, epoch milliseconds. */
  eventTimeMs: number;
  orderId?: string;
  /** Conversion value in integer minor units of `currency` (cents for USD). */
  valueMinor?: number;
  /** ISO 4217 code; required with `valueMinor`. */
  currency?: string;
  user: ConversionUser;
  clickIds?: ConversionClickIds;
  eventSourceUrl?: string;
  referrerUrl?: string;
  /** Meta lead-ads / TikTok lead id for CRM events. */
  leadId?: string;
}

/** Meta: at most 1,000 events per request. */
export const META_MAX_EVENTS_PER_REQUEST = 1000;
/** Meta rejects the whole request when any event_time is older than 7 days. */
export const META_MAX_EVENT_AGE_MS = 7 * 24 * 60 * 60 * 1000;
/** Google Ads: at most 2,000 conversions per UploadClickConversions request. */
export const GOOGLE_MAX_CONVERSIONS_PER_REQUEST = 2000;
/** Google Ads: at most 5 user identifiers per conversion. */
export const GOOGLE_MAX_USER_IDENTIFIERS = 5;
/** TikTok Events API 2.0: at most 1,000 events per request. */
export const TIKTOK_MAX_EVENTS_PER_REQUEST = 1000;

function validationError(message: string, details: Record<string, unknown>): AppError {
  return new AppError('VALIDATION_FAILED', message, { details });
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let index = 0; index < items.length; index += size) chunks.push(items.slice(index, index + size));
  return chunks;
}

/** Converts integer minor units to the major-unit number the ad APIs expect, using ISO 4217 digits. */
export function minorToMajor(amountMinor: number, currency: string): number {
  if (!Number.isSafeInteger(amountMinor)) {
    throw validationError(`value must be an integer number of minor units`, { amountMinor });
  }
  return amountMinor / 10 ** currencyDigits(currency);
}

/** ISO 4217 minor-unit digits (USD 2, JPY 0, KWD 3). */
export function currencyDigits(currency: string): number {
  const code = currency.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(code)) throw validationError(`currency must be an ISO 4217 code`, { currency });
  return (
    new Intl.NumberFormat('en', { style: 'currency', currency: code }).resolvedOptions()
      .maximumFractionDigits ?? 2
  );
}

function eventValue(event: ConversionEvent): { value: number; currency: string } | undefined {
  if (event.valueMinor === undefined) return undefined;
  if (event.currency === undefined) {
    throw validationError(`event ${event.eventId}: value needs a currency`, { eventId: event.eventId });
  }
  return {
    value: minorToMajor(event.valueMinor, event.currency),
    currency: event.currency.trim().toUpperCase(),
  };
}

function requireEventBasics(event: ConversionEvent): void {
  const problems: string[] = [];
  if (event.eventId.trim() === '') problems.push('eventId is empty');
  if (event.eventName.trim() === '') problems.push('eventName is empty');
  if (!Number.isFinite(event.eventTimeMs)) problems.push('eventTimeMs is not a number');
  if (problems.length > 0) {
    throw validationError(`conversion ${event.eventId || '(no id)'}: ${problems.join('; ')}`, {
      eventId: event.eventId,
      problems,
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Meta Conversions API

/** Meta `action_source` values. */
export type MetaActionSource =
  | 'website'
  | 'app'
  | 'email'
  | 'phone_call'
  | 'chat'
  | 'physical_store'
  | 'system_generated'
  | 'business_messaging'
  | 'other';

/** Meta `user_data`: hashed keys are SHA-256 hex; ip, user agent, fbc, fbp and lead_id are sent as is. */
export interface MetaUserData {
  em?: string[];
  ph?: string[];
  fn?: string;
  ln?: string;
  db?: string;
  ge?: string;
  ct?: string;
  st?: string;
  zp?: string;
  country?: string;
  external_id?: string[];
  client_ip_address?: string;
  client_user_agent?: string;
  fbc?: string;
  fbp?: string;
  lead_id?: string;
}

/** One Meta server event. */
export interface MetaServerEvent {
  event_name: string;
  /** Unix seconds. */
  event_time: number;
  action_source: MetaActionSource;
  event_id: string;
  event_source_url?: string;
  user_data: MetaUserData;
  custom_data?: { value?: number; currency?: string; order_id?: string };
}

/** Body of `POST /{API_VERSION}/{DATASET_ID}/events` (the access token travels separately). */
export interface MetaEventsBody {
  data: MetaServerEvent[];
  test_event_code?: string;
}

/** Options of the Meta builders. */
export interface MetaEventsOptions {
  actionSource: MetaActionSource;
  /** Sending time, epoch ms: events older than 7 days before it are refused. */
  nowMs: number;
  testEventCode?: string;
}

function metaUserData(event: ConversionEvent): MetaUserData {
  const user = event.user;
  const data: MetaUserData = {};
  if (user.emails?.length) data.em = user.emails.map((email) => hashField('meta', 'em', email));
  if (user.phones?.length) data.ph = user.phones.map((phone) => hashField('meta', 'ph', phone));
  if (user.firstName !== undefined) data.fn = hashField('meta', 'fn', user.firstName);
  if (user.lastName !== undefined) data.ln = hashField('meta', 'ln', user.lastName);
  if (user.dateOfBirth !== undefined) data.db = hashField('meta', 'db', user.dateOfBirth);
  if (user.gender !== undefined) data.ge = hashField('meta', 'ge', user.gender);
  if (user.city !== undefined) data.ct = hashField('meta', 'ct', user.city);
  if (user.state !== undefined) data.st = hashField('meta', 'st', user.state);
  if (user.postalCode !== undefined) data.zp = hashField('meta', 'zp', user.postalCode);
  if (user.country !== undefined) data.country = hashField('meta', 'country', user.country);
  if (user.externalIds?.length)
    data.external_id = user.externalIds.map((id) => hashField('meta', 'external_id', id));
  if (user.clientIpAddress !== undefined) data.client_ip_address = user.clientIpAddress;
  if (user.clientUserAgent !== undefined) data.client_user_agent = user.clientUserAgent;
  if (event.clickIds?.fbc !== undefined) data.fbc = event.clickIds.fbc;
  if (event.clickIds?.fbp !== undefined) data.fbp = event.clickIds.fbp;
  if (event.leadId !== undefined) data.lead_id = event.leadId;
  return data;
}

/** Builds one Meta server event; refuses website events without URL and user agent, and empty user data. */
export function buildMetaServerEvent(event: ConversionEvent, options: MetaEventsOptions): MetaServerEvent {
  requireEventBasics(event);
  const userData = metaUserData(event);
  if (Object.keys(userData).length === 0) {
    throw validationError(`event ${event.eventId}: Meta needs at least one user_data parameter`, {
      eventId: event.eventId,
    });
  }
  if (options.actionSource === 'website' && (!event.eventSourceUrl || !userData.client_user_agent)) {
    throw validationError(
      `event ${event.eventId}: website events need event_source_url and client_user_agent`,
      {
        eventId: event.eventId,
      },
    );
  }
  const value = eventValue(event);
  const customData = {
    ...(value === undefined ? {} : value),
    ...(event.orderId === undefined ? {} : { order_id: event.orderId }),
  };
  return {
    event_name: event.eventName,
    event_time: Math.floor(event.eventTimeMs / 1000),
    action_source: options.actionSource,
    event_id: event.eventId,
    ...(event.eventSourceUrl === undefined ? {} : { event_source_url: event.eventSourceUrl }),
    user_data: userData,
    ...(Object.keys(customData).length === 0 ? {} : { custom_data: customData }),
  };
}

/**
 * Meta request bodies of at most 1,000 events each. Refuses the lot, naming every offending event, when any
 * event is older than 7 days (Meta would reject the whole request).
 */
export function buildMetaEventBatches(
  events: readonly ConversionEvent[],
  options: MetaEventsOptions,
): MetaEventsBody[] {
  const tooOld = events.filter((event) => options.nowMs - event.eventTimeMs > META_MAX_EVENT_AGE_MS);
  if (tooOld.length > 0) {
    throw validationError(
      `Meta rejects events older than 7 days: ${tooOld.map((event) => event.eventId).join(', ')}`,
      { eventIds: tooOld.map((event) => event.eventId) },
    );
  }
  const built = events.map((event) => buildMetaServerEvent(event, options));
  return chunk(built, META_MAX_EVENTS_PER_REQUEST).map((data) => ({
    data,
    ...(options.testEventCode === undefined ? {} : { test_event_code: options.testEventCode }),
  }));
}

// ---------------------------------------------------------------------------------------------------------
// Google Ads UploadClickConversions (REST JSON uses the proto fields' lowerCamelCase names)

/** A Google Ads `UserIdentifier`: exactly one of its fields is set. */
export type GoogleUserIdentifier =
  | { hashedEmail: string }
  | { hashedPhoneNumber: string }
  | {
      addressInfo: {
        hashedFirstName?: string;
        hashedLastName?: string;
        hashedStreetAddress?: string;
        city?: string;
        state?: string;
        countryCode?: string;
        postalCode?: string;
      };
    };

/** A Google Ads `ClickConversion`. */
export interface GoogleClickConversion {
  gclid?: string;
  gbraid?: string;
  wbraid?: string;
  /** `customers/{customer_id}/conversionActions/{id}`. */
  conversionAction: string;
  /** `yyyy-mm-dd hh:mm:ss+hh:mm` in the account's time zone. */
  conversionDateTime: string;
  conversionValue?: number;
  currencyCode?: string;
  orderId?: string;
  userIdentifiers?: GoogleUserIdentifier[];
  consent?: { adUserData: 'GRANTED' | 'DENIED' };
}

/** Body of `POST /v{N}/customers/{customer_id}:uploadClickConversions`. */
export interface GoogleUploadClickConversionsBody {
  conversions: GoogleClickConversion[];
  /** Google requires true. */
  partialFailure: true;
  validateOnly?: boolean;
}

/** Options of the Google builders. */
export interface GoogleConversionOptions {
  /** Ads customer id, with or without dashes. */
  customerId: string;
  conversionActionId: string;
  /** IANA time zone used for `conversionDateTime`, normally the account's. */
  timeZone: string;
  adUserDataConsent?: 'GRANTED' | 'DENIED';
  validateOnly?: boolean;
}

/** Google Ads customer id as 10 digits (dashes removed). */
export function googleCustomerId(customerId: string): string {
  const digits = customerId.replace(/-/g, '').trim();
  if (!/^\d{10}$/.test(digits))
    throw validationError(`Google Ads customer id must be 10 digits`, { customerId });
  return digits;
}

/** `customers/{customer_id}/conversionActions/{id}`. */
export function googleConversionActionResource(customerId: string, conversionActionId: string): string {
  if (!/^\d+$/.test(conversionActionId)) {
    throw validationError(`conversion action id must be numeric`, { conversionActionId });
  }
  return `customers/${googleCustomerId(customerId)}/conversionActions/${conversionActionId}`;
}

/** Formats epoch ms as Google's `yyyy-mm-dd hh:mm:ss+|-hh:mm` in `timeZone` (offset from the zone's rules). */
export function formatGoogleDateTime(epochMs: number, timeZone: string): string {
  let formatter: Intl.DateTimeFormat;
  try {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
  } catch (error) {
    throw new AppError('VALIDATION_FAILED', `unknown time zone "${timeZone}"`, {
      details: { timeZone },
      cause: error,
    });
  }
  const seconds = Math.floor(epochMs / 1000) * 1000;
  const parts = Object.fromEntries(formatter.formatToParts(seconds).map((part) => [part.type, part.value]));
  const [year, month, day, hour, minute, second] = ['year', 'month', 'day', 'hour', 'minute', 'second'].map(
    (type) => Number(parts[type]),
  ) as [number, number, number, number, number, number];
  const offsetMinutes = Math.round((Date.UTC(year, month - 1, day, hour, minute, second) - seconds) / 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const absolute = Math.abs(offsetMinutes);
  const two = (value: number): string => String(value).padStart(2, '0');
  return `${year}-${two(month)}-${two(day)} ${two(hour)}:${two(minute)}:${two(second)}${sign}${two(Math.floor(absolute / 60))}:${two(absolute % 60)}`;
}

function googleUserIdentifiers(user: ConversionUser): GoogleUserIdentifier[] {
  const identifiers: GoogleUserIdentifier[] = [];
  for (const email of user.emails ?? [])
    identifiers.push({ hashedEmail: hashField('google_ads', 'hashed_email', email) });
  for (const phone of user.phones ?? []) {
    identifiers.push({ hashedPhoneNumber: hashField('google_ads', 'hashed_phone_number', phone) });
  }
  const hasAddress =
    user.firstName !== undefined || user.lastName !== undefined || user.streetAddress !== undefined;
  if (hasAddress) {
    identifiers.push({
      addressInfo: {
        ...(user.firstName === undefined
          ? {}
          : { hashedFirstName: hashField('google_ads', 'hashed_first_name', user.firstName) }),
        ...(user.lastName === undefined
          ? {}
          : { hashedLastName: hashField('google_ads', 'hashed_last_name', user.lastName) }),
        ...(user.streetAddress === undefined
          ? {}
          : { hashedStreetAddress: hashField('google_ads', 'hashed_street_address', user.streetAddress) }),
        ...(user.city === undefined ? {} : { city: user.city.trim() }),
        ...(user.state === undefined ? {} : { state: user.state.trim() }),
        ...(user.country === undefined
          ? {}
          : { countryCode: normalizeCountry(user.country, 'google_ads', 'country_code').toUpperCase() }),
        ...(user.postalCode === undefined ? {} : { postalCode: user.postalCode.trim() }),
      },
    });
  }
  return identifiers;
}

/**
 * One ClickConversion: at most one of gclid/gbraid/wbraid, and a click id or at least one user identifier;
 * identifiers (each a one-of: email, phone or address) are capped at 5.
 */
export function buildGoogleClickConversion(
  event: ConversionEvent,
  options: GoogleConversionOptions,
): GoogleClickConversion {
  requireEventBasics(event);
  const clickIds = (['gclid', 'gbraid', 'wbraid'] as const).filter(
    (key) => event.clickIds?.[key] !== undefined,
  );
  const identifiers = googleUserIdentifiers(event.user);
  const problems: string[] = [];
  if (clickIds.length > 1)
    problems.push(`set only one of gclid, gbraid, wbraid (got ${clickIds.join(', ')})`);
  if (clickIds.length === 0 && identifiers.length === 0)
    problems.push('needs gclid, gbraid, wbraid or user identifiers');
  if (identifiers.length > GOOGLE_MAX_USER_IDENTIFIERS) {
    problems.push(
      `has ${identifiers.length} user identifiers; Google accepts at most ${GOOGLE_MAX_USER_IDENTIFIERS}`,
    );
  }
  if (problems.length > 0) {
    throw validationError(`conversion ${event.eventId}: ${problems.join('; ')}`, {
      eventId: event.eventId,
      problems,
    });
  }
  const value = eventValue(event);
  const clickId = clickIds[0];
  return {
    ...(clickId === undefined ? {} : { [clickId]: event.clickIds![clickId]! }),
    conversionAction: googleConversionActionResource(options.customerId, options.conversionActionId),
    conversionDateTime: formatGoogleDateTime(event.eventTimeMs, options.timeZone),
    ...(value === undefined ? {} : { conversionValue: value.value, currencyCode: value.currency }),
    ...(event.orderId === undefined ? {} : { orderId: event.orderId }),
    ...(identifiers.length === 0 ? {} : { userIdentifiers: identifiers }),
    ...(options.adUserDataConsent === undefined
      ? {}
      : { consent: { adUserData: options.adUserDataConsent } }),
  };
}

/** UploadClickConversions bodies of at most 2,000 conversions, `partialFailure: true` as Google requires. */
export function buildGoogleUploadBodies(
  events: readonly ConversionEvent[],
  options: GoogleConversionOptions,
): GoogleUploadClickConversionsBody[] {
  const conversions = events.map((event) => buildGoogleClickConversion(event, options));
  return chunk(conversions, GOOGLE_MAX_CONVERSIONS_PER_REQUEST).map((batch) => ({
    conversions: batch,
    partialFailure: true as const,
    ...(options.validateOnly === undefined ? {} : { validateOnly: options.validateOnly }),
  }));
}

// ---------------------------------------------------------------------------------------------------------
// TikTok Events API 2.0

/** TikTok `event_source`. */
export type TikTokEventSource = 'web' | 'app' | 'offline' | 'crm';

/** One TikTok event in a `/event/track/` body. */
export interface TikTokEvent {
  event: string;
  /** Unix seconds. */
  event_time: number;
  event_id: string;
  user: {
    email?: string[];
    phone?: string[];
    external_id?: string[];
    ttclid?: string;
    ttp?: string;
    ip?: string;
    user_agent?: string;
  };
  properties?: { value?: number; currency?: string; order_id?: string };
  page?: { url?: string; referrer?: string };
  lead?: { lead_id: string };
}

/** Body of `POST /open_api/v1.3/event/track/`. */
export interface TikTokEventsBody {
  event_source: TikTokEventSource;
  event_source_id: string;
  test_event_code?: string;
  data: TikTokEvent[];
}

/** Options of the TikTok builders. */
export interface TikTokEventsOptions {
  eventSource: TikTokEventSource;
  /** Pixel code or event set id. */
  eventSourceId: string;
  testEventCode?: string;
}

/** Builds one TikTok event with email, phone (E.164 with '+') and external_id hashed. */
export function buildTikTokEvent(event: ConversionEvent, options: TikTokEventsOptions): TikTokEvent {
  requireEventBasics(event);
  const user = event.user;
  const tiktokUser: TikTokEvent['user'] = {
    ...(user.emails?.length
      ? { email: user.emails.map((email) => hashField('tiktok', 'email', email)) }
      : {}),
    ...(user.phones?.length
      ? { phone: user.phones.map((phone) => hashField('tiktok', 'phone', phone)) }
      : {}),
    ...(user.externalIds?.length
      ? { external_id: user.externalIds.map((id) => hashField('tiktok', 'external_id', id)) }
      : {}),
    ...(event.clickIds?.ttclid === undefined ? {} : { ttclid: event.clickIds.ttclid }),
    ...(event.clickIds?.ttp === undefined ? {} : { ttp: event.clickIds.ttp }),
    ...(user.clientIpAddress === undefined ? {} : { ip: user.clientIpAddress }),
    ...(user.clientUserAgent === undefined ? {} : { user_agent: user.clientUserAgent }),
  };
  if (Object.keys(tiktokUser).length === 0) {
    throw validationError(`event ${event.eventId}: TikTok needs at least one user parameter`, {
      eventId: event.eventId,
    });
  }
  if (options.eventSource === 'crm' && event.leadId === undefined) {
    throw validationError(`event ${event.eventId}: crm events need a lead id`, { eventId: event.eventId });
  }
  const value = eventValue(event);
  const properties = {
    ...(value === undefined ? {} : value),
    ...(event.orderId === undefined ? {} : { order_id: event.orderId }),
  };
  const page = {
    ...(event.eventSourceUrl === undefined ? {} : { url: event.eventSourceUrl }),
    ...(event.referrerUrl === undefined ? {} : { referrer: event.referrerUrl }),
  };
  return {
    event: event.eventName,
    event_time: Math.floor(event.eventTimeMs / 1000),
    event_id: event.eventId,
    user: tiktokUser,
    ...(Object.keys(properties).length === 0 ? {} : { properties }),
    ...(Object.keys(page).length === 0 ? {} : { page }),
    ...(options.eventSource === 'crm' && event.leadId !== undefined
      ? { lead: { lead_id: event.leadId } }
      : {}),
  };
}

/** TikTok `/event/track/` bodies of at most 1,000 events each. */
export function buildTikTokEventsBodies(
  events: readonly ConversionEvent[],
  options: TikTokEventsOptions,
): TikTokEventsBody[] {
  const built = events.map((event) => buildTikTokEvent(event, options));
  return chunk(built, TIKTOK_MAX_EVENTS_PER_REQUEST).map((data) => ({
    event_source: options.eventSource,
    event_source_id: options.eventSourceId,
    ...(options.testEventCode === undefined ? {} : { test_event_code: options.testEventCode }),
    data,
  }));
}

// ---------------------------------------------------------------------------------------------------------
// Idempotent upload log

/**
 * The key a conversion is deduplicated on within one platform: Meta and TikTok deduplicate on event name +
 * event id; Google on the conversion action + order id (or our event id when there is no order id).
 */
export function conversionDedupeKey(
  platform: AdPlatformName,
  event: Pick<ConversionEvent, 'eventId' | 'eventName' | 'orderId'>,
  googleConversionAction?: string,
): string {
  switch (platform) {
    case 'meta':
    case 'tiktok':
      return `${event.eventName}:${event.eventId}`;
    case 'google_ads': {
      if (googleConversionAction === undefined) {
        throw new AppError('BAD_REQUEST', 'a Google dedupe key needs the conversion action resource name');
      }
      return event.orderId === undefined
        ? `${googleConversionAction}:event:${event.eventId}`
        : `${googleConversionAction}:order:${event.orderId}`;
    }
  }
}

/**
 * Where an upload stands. `pending`: recorded, being sent (a crash leaves it pending, which blocks a re-send:
 * the platform may have received it). `dry_run` and `failed` entries may be recorded again.
 */
export type ConversionUploadStatus = 'pending' | 'sent' | 'failed' | 'dry_run';

/**
 * One uploaded conversion. Stored in table `conversion_uploads`: platform, dedupe_key, payload (jsonb),
 * status, created_at; unique on (platform, dedupe_key).
 */
export interface ConversionUploadEntry {
  platform: AdPlatformName;
  dedupeKey: string;
  /** The platform payload as sent: hashed customer data only, never raw PII. */
  payload: unknown;
  status: ConversionUploadStatus;
  createdAt: Date;
}

/** Filter of {@link ConversionUploadLog.list}. */
export interface ConversionUploadFilter {
  platform?: AdPlatformName;
  status?: ConversionUploadStatus;
  /** Newest first; default all. */
  limit?: number;
}

/**
 * Makes conversion uploads idempotent. `record` returns `duplicate` when (platform, dedupeKey) is already
 * pending or sent, and `new` otherwise (replacing a `failed` or `dry_run` entry). SQL equivalent:
 * `INSERT … ON CONFLICT (platform, dedupe_key) DO UPDATE SET payload = excluded.payload, status =
 * excluded.status, created_at = excluded.created_at WHERE conversion_uploads.status IN ('failed', 'dry_run')
 * RETURNING 1` — a returned row means `new`.
 */
export interface ConversionUploadLog {
  record(entry: ConversionUploadEntry): Promise<'new' | 'duplicate'>;
  setStatus(platform: AdPlatformName, dedupeKey: string, status: ConversionUploadStatus): Promise<void>;
  list(filter?: ConversionUploadFilter): Promise<ConversionUploadEntry[]>;
}

const REPLACEABLE_STATUSES: ReadonlySet<ConversionUploadStatus> = new Set(['failed', 'dry_run']);

/** In-process {@link ConversionUploadLog} for tests and single-process runs. */
export class InMemoryConversionUploadLog implements ConversionUploadLog {
  readonly #entries = new Map<string, ConversionUploadEntry>();

  async record(entry: ConversionUploadEntry): Promise<'new' | 'duplicate'> {
    const key = JSON.stringify([entry.platform, entry.dedupeKey]);
    const existing = this.#entries.get(key);
    if (existing !== undefined && !REPLACEABLE_STATUSES.has(existing.status)) return 'duplicate';
    this.#entries.delete(key);
    this.#entries.set(key, structuredClone(entry));
    return 'new';
  }

  async setStatus(
    platform: AdPlatformName,
    dedupeKey: string,
    status: ConversionUploadStatus,
  ): Promise<void> {
    const entry = this.#entries.get(JSON.stringify([platform, dedupeKey]));
    if (entry === undefined) {
      throw new AppError('NOT_FOUND', `no upload ${platform} ${dedupeKey}`, {
        details: { platform, dedupeKey },
      });
    }
    entry.status = status;
  }

  async list(filter: ConversionUploadFilter = {}): Promise<ConversionUploadEntry[]> {
    const matching = [...this.#entries.values()]
      .filter((entry) => filter.platform === undefined || entry.platform === filter.platform)
      .filter((entry) => filter.status === undefined || entry.status === filter.status)
      .reverse()
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    return structuredClone(filter.limit === undefined ? matching : matching.slice(0, filter.limit));
  }
}
