// Landing-page tracking: UTM and click-id parsing, channel inference (click id > UTM > referrer > direct),
// Meta `fbc` from fbclid, and conversion journeys from touchpoints under explicit lookback windows.
import { AppError } from '../shared/errors.js';
import type { ConversionPath } from './attribution.js';

/** UTM parameters, including GA4's utm_id, utm_source_platform, utm_creative_format, utm_marketing_tactic. */
export const UTM_KEYS = [
  'utm_source',
  'utm_medium',
  'utm_campaign',
  'utm_term',
  'utm_content',
  'utm_id',
  'utm_source_platform',
  'utm_creative_format',
  'utm_marketing_tactic',
] as const;
export type UtmKey = (typeof UTM_KEYS)[number];

/** Click ids, keys lowercased (Snap's `ScCid` is `sccid`). */
export const CLICK_ID_KEYS = [
  'gclid',
  'gbraid',
  'wbraid',
  'dclid',
  'fbclid',
  'ttclid',
  'msclkid',
  'li_fat_id',
  'twclid',
  'sccid',
  'epik',
] as const;
export type ClickIdKey = (typeof CLICK_ID_KEYS)[number];

/** What a landing URL says about where the visit came from. */
export interface LandingParams {
  /** The URL exactly as received. */
  raw: string;
  /** The parsed URL's href (WHATWG-normalised). */
  href: string;
  host: string;
  /** UTM values, decoded and trimmed, case preserved. */
  utm: Partial<Record<UtmKey, string>>;
  /** Click ids, decoded, case preserved (they are case-sensitive tokens). */
  clickIds: Partial<Record<ClickIdKey, string>>;
}

const UTM_SET: ReadonlySet<string> = new Set(UTM_KEYS);
const CLICK_ID_SET: ReadonlySet<string> = new Set(CLICK_ID_KEYS);

/**
 * Parses a landing URL with WHATWG `URL` (percent- and '+'-decoding). Parameter names match
 * case-insensitively; the first non-empty occurrence of a parameter wins. Relative URLs need `base`.
 */
export function parseLandingUrl(raw: string, options: { base?: string } = {}): LandingParams {
  let url: URL;
  try {
    url = new URL(raw.trim(), options.base);
  } catch (error) {
    throw new AppError('VALIDATION_FAILED', `landing URL is not a valid absolute URL`, {
      details: { url: raw },
      cause: error,
    });
  }
  const utm: Partial<Record<UtmKey, string>> = {};
  const clickIds: Partial<Record<ClickIdKey, string>> = {};
  for (const [name, rawValue] of url.searchParams) {
    const key = name.trim().toLowerCase();
    const value = rawValue.trim();
    if (value === '') continue;
    if (UTM_SET.has(key)) {
      utm[key as UtmKey] ??= value;
    } else if (CLICK_ID_SET.has(key)) {
      clickIds[key as ClickIdKey] ??= value;
    }
  }
  return { raw, href: url.href, host: url.hostname.toLowerCase(), utm, clickIds };
}

/** Channel groups, close to GA4's default channel grouping. */
export type MarketingChannel =
  | 'paid_search'
  | 'paid_social'
  | 'display'
  | 'video'
  | 'email'
  | 'sms'
  | 'affiliate'
  | 'organic_search'
  | 'organic_social'
  | 'referral'
  | 'direct'
  | 'other';

/** Which signal decided the channel. */
export type ChannelEvidence = 'click_id' | 'utm' | 'referrer' | 'direct';

/** Result of {@link inferChannel}. */
export interface ChannelInference {
  channel: MarketingChannel;
  evidence: ChannelEvidence;
  /** Ad platform or site family when known (google_ads, meta, tiktok, google, …). */
  platform?: string;
  /** The parameter or host that decided. */
  detail: string;
}

interface ClickIdRule {
  platform: string;
  channel: MarketingChannel;
  /** UTM channels that may refine the click id's default (e.g. a gclid on a display campaign). */
  refinements: readonly MarketingChannel[];
}

const CLICK_ID_RULES: Readonly<Record<ClickIdKey, ClickIdRule>> = {
  gclid: { platform: 'google_ads', channel: 'paid_search', refinements: ['display', 'video'] },
  gbraid: { platform: 'google_ads', channel: 'paid_search', refinements: ['display', 'video'] },
  wbraid: { platform: 'google_ads', channel: 'paid_search', refinements: ['display', 'video'] },
  dclid: { platform: 'google_marketing_platform', channel: 'display', refinements: ['video'] },
  // Meta appends fbclid to organic outbound links too, so it is paid only when UTM says so.
  fbclid: { platform: 'meta', channel: 'organic_social', refinements: ['paid_social'] },
  ttclid: { platform: 'tiktok', channel: 'paid_social', refinements: [] },
  msclkid: { platform: 'microsoft_ads', channel: 'paid_search', refinements: ['display'] },
  li_fat_id: { platform: 'linkedin', channel: 'paid_social', refinements: [] },
  twclid: { platform: 'x', channel: 'paid_social', refinements: [] },
  sccid: { platform: 'snapchat', channel: 'paid_social', refinements: [] },
  epik: { platform: 'pinterest', channel: 'paid_social', refinements: [] },
};

const SOCIAL_SOURCES = new Set([
  'facebook',
  'fb',
  'meta',
  'instagram',
  'ig',
  'tiktok',
  'linkedin',
  'twitter',
  'x',
  'pinterest',
  'snapchat',
  'reddit',
  'youtube',
  'nextdoor',
  'threads',
  'facebook.com',
  'instagram.com',
  'tiktok.com',
  'linkedin.com',
]);

/** Maps utm_medium (and utm_source for paid social) to a channel; `undefined` when UTM says nothing. */
function channelFromUtm(utm: LandingParams['utm']): MarketingChannel | undefined {
  const medium = utm.utm_medium?.toLowerCase();
  const source = utm.utm_source?.toLowerCase();
  const socialSource = source !== undefined && SOCIAL_SOURCES.has(source);
  if (medium === undefined) {
    if (source === undefined) return undefined;
    return socialSource ? 'organic_social' : 'other';
  }
  if (/^(display|banner|cpm|programmatic|expandable|interstitial)$/.test(medium)) return 'display';
  if (/^(video|cpv|preroll|pre-roll)$/.test(medium)) return 'video';
  if (/^(paid[-_ ]?social|social[-_ ]?paid)$/.test(medium)) return 'paid_social';
  if (/^(.*cp.*|ppc|sem|paid.*|retargeting)$/.test(medium))
    return socialSource ? 'paid_social' : 'paid_search';
  if (/^(social|social[-_ ]?network|social[-_ ]?media|sm|organic[-_ ]?social)$/.test(medium))
    return 'organic_social';
  if (/^(e[-_]?mail|newsletter)$/.test(medium)) return 'email';
  if (/^(sms|text)$/.test(medium)) return 'sms';
  if (/^(affiliates?|partners?)$/.test(medium)) return 'affiliate';
  if (medium === 'referral') return 'referral';
  if (medium === 'organic') return 'organic_search';
  return 'other';
}

const SEARCH_HOSTS = [
  /(^|\.)google\.[a-z.]+$/,
  /(^|\.)bing\.com$/,
  /(^|\.)yahoo\.[a-z.]+$/,
  /(^|\.)duckduckgo\.com$/,
  /(^|\.)baidu\.com$/,
  /(^|\.)yandex\.[a-z.]+$/,
  /(^|\.)ecosia\.org$/,
  /^search\.brave\.com$/,
];
const SOCIAL_HOSTS = [
  /(^|\.)facebook\.com$/,
  /(^|\.)instagram\.com$/,
  /^t\.co$/,
  /(^|\.)twitter\.com$/,
  /(^|\.)x\.com$/,
  /(^|\.)linkedin\.com$/,
  /^lnkd\.in$/,
  /(^|\.)tiktok\.com$/,
  /(^|\.)pinterest\.[a-z.]+$/,
  /(^|\.)reddit\.com$/,
  /(^|\.)youtube\.com$/,
  /(^|\.)snapchat\.com$/,
  /(^|\.)nextdoor\.com$/,
  /(^|\.)threads\.net$/,
];
const MAIL_HOSTS = [/^mail\.google\.com$/, /^outlook\.(live|office)\.com$/, /^mail\.yahoo\.com$/];

function channelFromReferrer(referrerHost: string): MarketingChannel {
  if (MAIL_HOSTS.some((pattern) => pattern.test(referrerHost))) return 'email';
  if (SEARCH_HOSTS.some((pattern) => pattern.test(referrerHost))) return 'organic_search';
  if (SOCIAL_HOSTS.some((pattern) => pattern.test(referrerHost))) return 'organic_social';
  return 'referral';
}

/**
 * Infers the channel of a visit. Precedence: click id > UTM mapping > referrer > direct. A referrer on the
 * landing host or one of `ownHosts` is internal navigation and counts as direct.
 */
export function inferChannel(
  landing: LandingParams,
  referrer?: string,
  options: { ownHosts?: readonly string[] } = {},
): ChannelInference {
  const utmChannel = channelFromUtm(landing.utm);
  for (const key of CLICK_ID_KEYS) {
    if (landing.clickIds[key] === undefined) continue;
    const rule = CLICK_ID_RULES[key];
    const channel =
      utmChannel !== undefined && rule.refinements.includes(utmChannel) ? utmChannel : rule.channel;
    return { channel, evidence: 'click_id', platform: rule.platform, detail: key };
  }
  if (utmChannel !== undefined) {
    const detail = landing.utm.utm_medium !== undefined ? 'utm_medium' : 'utm_source';
    return {
      channel: utmChannel,
      evidence: 'utm',
      detail,
      ...(landing.utm.utm_source ? { platform: landing.utm.utm_source.toLowerCase() } : {}),
    };
  }
  const referrerHost = hostOf(referrer);
  const ownHosts = new Set([landing.host, ...(options.ownHosts ?? []).map((host) => host.toLowerCase())]);
  if (referrerHost !== undefined && !ownHosts.has(referrerHost)) {
    return { channel: channelFromReferrer(referrerHost), evidence: 'referrer', detail: referrerHost };
  }
  return {
    channel: 'direct',
    evidence: 'direct',
    detail: referrerHost === undefined ? 'no referrer' : 'internal referrer',
  };
}

function hostOf(referrer: string | undefined): string | undefined {
  if (referrer === undefined || referrer.trim() === '') return undefined;
  try {
    return new URL(referrer.trim()).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * Meta's `fbc` click parameter: `fb.{subdomainIndex}.{creationTimeMs}.{fbclid}`. The fbclid is copied
 * byte for byte (it is case-sensitive). subdomainIndex: 0 for `com`, 1 for `example.com`, 2 for `www.example.com`.
 */
export function buildFbc(fbclid: string, creationTimeMs: number, subdomainIndex = 1): string {
  if (fbclid === '' || /\s/.test(fbclid)) {
    throw new AppError('VALIDATION_FAILED', 'fbclid must be a non-empty token without whitespace');
  }
  if (!Number.isSafeInteger(creationTimeMs) || creationTimeMs <= 0) {
    throw new AppError('VALIDATION_FAILED', 'fbc creation time must be positive epoch milliseconds', {
      details: { creationTimeMs },
    });
  }
  if (![0, 1, 2].includes(subdomainIndex)) {
    throw new AppError('VALIDATION_FAILED', 'fbc subdomain index must be 0, 1 or 2', {
      details: { subdomainIndex },
    });
  }
  return `fb.${subdomainIndex}.${creationTimeMs}.${fbclid}`;
}

/** One marketing touch of a user. */
export interface Touchpoint {
  userId: string;
  timeMs: number;
  channel: string;
  /** Clicks and views have different lookback windows; default click. */
  interaction?: 'click' | 'view';
}

/** One conversion of a user. */
export interface ConversionRecord {
  userId: string;
  timeMs: number;
  /** Value in major currency units. */
  value: number;
}

/** How far back before a conversion touches may get credit. */
export interface LookbackWindows {
  clickMs: number;
  viewMs: number;
}

/** 30-day click, 1-day view (a common default; Meta's default attribution setting is 7-day click, 1-day view). */
export const DEFAULT_LOOKBACK: LookbackWindows = Object.freeze({
  clickMs: 30 * 86_400_000,
  viewMs: 86_400_000,
});

/** Output of {@link buildJourneys}. */
export interface JourneyBuild {
  paths: ConversionPath[];
  /** Touches outside every lookback window (they credit nothing). */
  expiredTouches: number;
  /** Conversions with no touch inside the window (reported, not attributed). */
  unattributedConversions: number;
  unattributedValue: number;
}

/**
 * Builds conversion paths per user. Each touch credits at most one conversion: the first one at or after it,
 * and only when the conversion is within the touch's lookback window (click or view). Touches after a user's
 * last conversion form one non-converting path, windowed back from `asOfMs` (default: the latest time seen).
 */
export function buildJourneys(
  touchpoints: readonly Touchpoint[],
  conversions: readonly ConversionRecord[],
  options: { lookback: LookbackWindows; asOfMs?: number },
): JourneyBuild {
  const { clickMs, viewMs } = options.lookback;
  if (!(clickMs >= 0 && viewMs >= 0 && Number.isFinite(clickMs) && Number.isFinite(viewMs))) {
    throw new AppError('BAD_REQUEST', 'lookback windows must be finite and ≥ 0', {
      details: { clickMs, viewMs },
    });
  }
  const asOfMs =
    options.asOfMs ??
    Math.max(
      ...touchpoints.map((touch) => touch.timeMs),
      ...conversions.map((conversion) => conversion.timeMs),
      0,
    );
  const byUser = new Map<string, { touches: Touchpoint[]; conversions: ConversionRecord[] }>();
  const entry = (userId: string): { touches: Touchpoint[]; conversions: ConversionRecord[] } => {
    let found = byUser.get(userId);
    if (found === undefined) {
      found = { touches: [], conversions: [] };
      byUser.set(userId, found);
    }
    return found;
  };
  for (const touch of touchpoints) entry(touch.userId).touches.push(touch);
  for (const conversion of conversions) entry(conversion.userId).conversions.push(conversion);

  const result: JourneyBuild = {
    paths: [],
    expiredTouches: 0,
    unattributedConversions: 0,
    unattributedValue: 0,
  };
  const windowOf = (touch: Touchpoint): number => (touch.interaction === 'view' ? viewMs : clickMs);
  for (const { touches, conversions: userConversions } of byUser.values()) {
    const orderedTouches = [...touches].sort((a, b) => a.timeMs - b.timeMs);
    const orderedConversions = [...userConversions].sort((a, b) => a.timeMs - b.timeMs);
    let next = 0;
    for (const conversion of orderedConversions) {
      const eligible: Touchpoint[] = [];
      while (next < orderedTouches.length && orderedTouches[next]!.timeMs <= conversion.timeMs) {
        const touch = orderedTouches[next]!;
        if (conversion.timeMs - touch.timeMs <= windowOf(touch)) eligible.push(touch);
        else result.expiredTouches += 1;
        next += 1;
      }
      if (eligible.length === 0) {
        result.unattributedConversions += 1;
        result.unattributedValue += conversion.value;
        continue;
      }
      result.paths.push({
        channels: eligible.map((touch) => touch.channel),
        conversions: 1,
        value: conversion.value,
        nulls: 0,
        touchTimes: eligible.map((touch) => touch.timeMs),
        conversionTime: conversion.timeMs,
      });
    }
    const trailing = orderedTouches.slice(next);
    const open = trailing.filter((touch) => asOfMs - touch.timeMs <= windowOf(touch));
    result.expiredTouches += trailing.length - open.length;
    if (open.length > 0) {
      result.paths.push({
        channels: open.map((touch) => touch.channel),
        conversions: 0,
        value: 0,
        nulls: 1,
        touchTimes: open.map((touch) => touch.timeMs),
      });
    }
  }
  return result;
}
