// A seeded generator of a realistic multi-channel campaign CSV: email, social, search and display, three
// campaigns each, daily rows over Q3 and Q4 of a year (Q3 is the previous period for change-vs-previous),
// with channel-typical CTR/CPC/CVR/AOV, Black-Friday and December seasonality. Same seed → same bytes.
import { csvField } from '../shared/csv.js';
import { AppError } from '../shared/errors.js';
import { dayToIsoDate, isoDateToDay } from './campaign_rows.js';
import { createRandom, type SeededRandom } from './random.js';

/** Channel profiles: daily impressions per campaign, CTR, CPC, lead rate and CVR per click, AOV, gross margin. */
interface ChannelProfile {
  readonly channel: string;
  readonly campaigns: readonly string[];
  readonly dailyImpressions: number;
  readonly ctr: number;
  readonly cpc: number;
  readonly leadRate: number;
  readonly cvr: number;
  readonly averageOrderValue: number;
  readonly margin: number;
  readonly newCustomerShare: number;
  /** Multiplier on weekend volume (search and email dip, social rises). */
  readonly weekend: number;
}

// Typical published ranges: search CTR 3–6 % and CVR 3–7 %, social CTR ~1 % and CVR 1–2 %, display CTR 0.3–0.6 %
// and CVR < 1 %, email click rate 2–3 % of delivered with low cost per click.
const PROFILES: readonly ChannelProfile[] = [
  {
    channel: 'email',
    campaigns: ['email_newsletter', 'email_winback', 'email_holiday_promo'],
    dailyImpressions: 18_000,
    ctr: 0.025,
    cpc: 0.12,
    leadRate: 0.12,
    cvr: 0.04,
    averageOrderValue: 75,
    margin: 0.45,
    newCustomerShare: 0.3,
    weekend: 0.8,
  },
  {
    channel: 'social',
    campaigns: ['social_prospecting', 'social_retargeting', 'social_video'],
    dailyImpressions: 55_000,
    ctr: 0.011,
    cpc: 0.85,
    leadRate: 0.08,
    cvr: 0.018,
    averageOrderValue: 68,
    margin: 0.42,
    newCustomerShare: 0.6,
    weekend: 1.15,
  },
  {
    channel: 'search',
    campaigns: ['search_brand', 'search_generic', 'search_shopping'],
    dailyImpressions: 14_000,
    ctr: 0.045,
    cpc: 1.6,
    leadRate: 0.1,
    cvr: 0.05,
    averageOrderValue: 95,
    margin: 0.4,
    newCustomerShare: 0.5,
    weekend: 0.85,
  },
  {
    channel: 'display',
    campaigns: ['display_prospecting', 'display_retargeting', 'display_awareness'],
    dailyImpressions: 90_000,
    ctr: 0.004,
    cpc: 0.55,
    leadRate: 0.05,
    cvr: 0.009,
    averageOrderValue: 70,
    margin: 0.42,
    newCustomerShare: 0.55,
    weekend: 1,
  },
];

/** Options of {@link generateSampleCampaignCsv}. */
export interface SampleCampaignOptions {
  /** PRNG seed. @defaultValue 42 */
  readonly seed?: number;
  /** Calendar year of the Q4 (and the Q3 before it). @defaultValue 2025 */
  readonly year?: number;
}

/** Header of the sample CSV. */
export const SAMPLE_CSV_HEADER = [
  'date',
  'campaign',
  'channel',
  'spend',
  'impressions',
  'clicks',
  'leads',
  'conversions',
  'revenue',
  'margin',
  'new_customers',
] as const;

function logNormal(random: SeededRandom, sigma: number): number {
  return Math.exp(sigma * random.normal() - (sigma * sigma) / 2);
}

/** Binomial(n, p) draw: Poisson by inversion for small means, normal approximation otherwise; within [0, n]. */
function binomial(random: SeededRandom, trials: number, probability: number): number {
  const mean = trials * probability;
  let draw: number;
  if (mean < 30) {
    const limit = Math.exp(-mean);
    let product = random.next();
    draw = 0;
    while (product > limit) {
      draw += 1;
      product *= random.next();
    }
  } else {
    draw = Math.round(mean + Math.sqrt(mean * (1 - probability)) * random.normal());
  }
  return Math.min(trials, Math.max(0, draw));
}

/** Seasonality of a day: Q3 flat, October slightly up, Black Friday week peaks, mid-December high, then a lull. */
function seasonality(iso: string, year: number): number {
  const month = Number(iso.slice(5, 7));
  const day = Number(iso.slice(8, 10));
  if (month < 10) return 1;
  if (month === 10) return 1.05;
  if (month === 11) {
    const novemberFirst = new Date(Date.UTC(year, 10, 1)).getUTCDay();
    const thanksgiving = 1 + ((4 - novemberFirst + 7) % 7) + 21;
    return day >= thanksgiving && day <= thanksgiving + 4 ? 1.9 : 1.25;
  }
  return day <= 20 ? 1.35 : 0.9;
}

function cents(amount: number): string {
  return (Math.round(amount * 100) / 100).toFixed(2);
}

/**
 * Generates a daily multi-channel campaign CSV for Q3 and Q4 of `year` (columns {@link SAMPLE_CSV_HEADER}).
 * Deterministic: the same options give the same text.
 */
export function generateSampleCampaignCsv(options: SampleCampaignOptions = {}): string {
  const seed = options.seed ?? 42;
  const year = options.year ?? 2025;
  if (!Number.isFinite(seed) || !Number.isInteger(year) || year < 1970 || year > 9999) {
    throw new AppError(
      'BAD_REQUEST',
      `sample data needs a finite seed and a year 1970–9999 (got ${seed}, ${year})`,
    );
  }
  const random = createRandom(seed);
  const campaigns = PROFILES.flatMap((profile) =>
    profile.campaigns.map((campaign) => ({
      campaign,
      profile,
      scale: logNormal(random, 0.35),
      ctrFactor: logNormal(random, 0.15),
      cvrFactor: logNormal(random, 0.15),
      margin: Math.round((profile.margin + 0.04 * random.normal()) * 100) / 100,
    })),
  );
  const firstDay = isoDateToDay(`${year}-07-01`)!;
  const lastDay = isoDateToDay(`${year}-12-31`)!;
  const lines = [SAMPLE_CSV_HEADER.join(',')];
  for (let day = firstDay; day <= lastDay; day += 1) {
    const date = dayToIsoDate(day);
    const weekday = new Date(day * 86_400_000).getUTCDay();
    const weekend = weekday === 0 || weekday === 6;
    const season = seasonality(date, year);
    for (const { campaign, profile, scale, ctrFactor, cvrFactor, margin } of campaigns) {
      const volume = season * scale * (weekend ? profile.weekend : 1) * logNormal(random, 0.12);
      const impressions = Math.round(profile.dailyImpressions * volume);
      const clicks = binomial(random, impressions, Math.min(0.5, profile.ctr * ctrFactor));
      const leads = binomial(random, clicks, profile.leadRate);
      // Holiday shoppers convert a little better and buy a little more.
      const conversions = binomial(
        random,
        clicks,
        Math.min(0.5, profile.cvr * cvrFactor * (season > 1.2 ? 1.1 : 1)),
      );
      const newCustomers = binomial(random, conversions, profile.newCustomerShare);
      const spend = clicks * profile.cpc * (season > 1.2 ? 1.15 : 1) * logNormal(random, 0.08);
      const orderValue = profile.averageOrderValue * (date.slice(5, 7) === '12' ? 1.1 : 1);
      const revenue = conversions * orderValue * logNormal(random, 0.1);
      const cells = [
        date,
        campaign,
        profile.channel,
        cents(spend),
        impressions,
        clicks,
        leads,
        conversions,
        cents(revenue),
        margin.toFixed(2),
        newCustomers,
      ];
      lines.push(cells.map((cell) => csvField(cell)).join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}
