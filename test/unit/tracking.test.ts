// Landing-URL parsing (UTM, click ids), channel inference precedence, fbc and lookback-windowed journeys.
import { describe, expect, it } from 'vitest';
import {
  buildFbc,
  buildJourneys,
  DEFAULT_LOOKBACK,
  inferChannel,
  parseLandingUrl,
} from '../../spoke_marketing/tracking.js';

const DAY = 86_400_000;

describe('parseLandingUrl', () => {
  it('reads every UTM key and click id, lowercasing keys and preserving value case', () => {
    const raw =
      'https://homes.example.com/l/42?UTM_Source=Facebook&utm_medium=paid_social&utm_campaign=Spring+Open%20House' +
      '&utm_term=3br&utm_content=carousel&utm_id=cmp-9&utm_source_platform=Google%20Ads&utm_creative_format=video' +
      '&utm_marketing_tactic=prospecting&fbclid=IwAR2AbC-xYz&ScCid=SnAp-1&GCLID=Cj0KCQ_AbC&gbraid=0AAAA&wbraid=CjkB' +
      '&dclid=CJD&ttclid=E.C.P.AbC&msclkid=8e2F&li_fat_id=LiFat&twclid=2-AbC&epik=dj0yJnU9';
    const landing = parseLandingUrl(raw);
    expect(landing.raw).toBe(raw);
    expect(landing.host).toBe('homes.example.com');
    expect(landing.utm).toEqual({
      utm_source: 'Facebook',
      utm_medium: 'paid_social',
      utm_campaign: 'Spring Open House',
      utm_term: '3br',
      utm_content: 'carousel',
      utm_id: 'cmp-9',
      utm_source_platform: 'Google Ads',
      utm_creative_format: 'video',
      utm_marketing_tactic: 'prospecting',
    });
    expect(landing.clickIds).toEqual({
      fbclid: 'IwAR2AbC-xYz',
      sccid: 'SnAp-1',
      gclid: 'Cj0KCQ_AbC',
      gbraid: '0AAAA',
      wbraid: 'CjkB',
      dclid: 'CJD',
      ttclid: 'E.C.P.AbC',
      msclkid: '8e2F',
      li_fat_id: 'LiFat',
      twclid: '2-AbC',
      epik: 'dj0yJnU9',
    });
  });

  it('lets the first non-empty occurrence win', () => {
    const landing = parseLandingUrl(
      'https://a.example/?utm_source=&utm_source=first&utm_source=second&gclid=A&gclid=B',
    );
    expect(landing.utm.utm_source).toBe('first');
    expect(landing.clickIds.gclid).toBe('A');
  });

  it('resolves relative URLs only against a base, and rejects junk', () => {
    expect(parseLandingUrl('/listing?utm_medium=email', { base: 'https://homes.example.com' }).utm).toEqual({
      utm_medium: 'email',
    });
    expect(() => parseLandingUrl('/listing?utm_medium=email')).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });
});

describe('inferChannel', () => {
  const infer = (url: string, referrer?: string) => inferChannel(parseLandingUrl(url), referrer);

  it.each([
    ['https://h.example/?gclid=X&utm_medium=email', undefined, 'paid_search', 'click_id', 'google_ads'],
    ['https://h.example/?gclid=X&utm_medium=display', undefined, 'display', 'click_id', 'google_ads'],
    ['https://h.example/?fbclid=X', 'https://l.facebook.com/', 'organic_social', 'click_id', 'meta'],
    [
      'https://h.example/?fbclid=X&utm_source=facebook&utm_medium=cpc',
      undefined,
      'paid_social',
      'click_id',
      'meta',
    ],
    ['https://h.example/?ttclid=X', undefined, 'paid_social', 'click_id', 'tiktok'],
    ['https://h.example/?msclkid=X', 'https://www.bing.com/', 'paid_search', 'click_id', 'microsoft_ads'],
    ['https://h.example/?utm_source=newsletter&utm_medium=email', undefined, 'email', 'utm', 'newsletter'],
    ['https://h.example/?utm_source=google&utm_medium=cpc', undefined, 'paid_search', 'utm', 'google'],
    ['https://h.example/?utm_source=instagram&utm_medium=paid', undefined, 'paid_social', 'utm', 'instagram'],
    ['https://h.example/?utm_source=zillow&utm_medium=referral', undefined, 'referral', 'utm', 'zillow'],
    ['https://h.example/?utm_source=x&utm_medium=social', undefined, 'organic_social', 'utm', 'x'],
    ['https://h.example/?utm_medium=cpm', undefined, 'display', 'utm', undefined],
    [
      'https://h.example/',
      'https://www.google.co.uk/search?q=homes',
      'organic_search',
      'referrer',
      undefined,
    ],
    ['https://h.example/', 'https://t.co/abc', 'organic_social', 'referrer', undefined],
    ['https://h.example/', 'https://mail.google.com/mail/u/0', 'email', 'referrer', undefined],
    ['https://h.example/', 'https://www.realtor-blog.example/post', 'referral', 'referrer', undefined],
    ['https://h.example/', 'https://h.example/other', 'direct', 'direct', undefined],
    ['https://h.example/', undefined, 'direct', 'direct', undefined],
  ])('%s (referrer %s) → %s via %s', (url, referrer, channel, evidence, platform) => {
    const inference = infer(url, referrer);
    expect(inference.channel).toBe(channel);
    expect(inference.evidence).toBe(evidence);
    expect(inference.platform).toBe(platform);
  });

  it('treats the site’s own hosts as internal navigation', () => {
    const inference = inferChannel(parseLandingUrl('https://www.h.example/'), 'https://blog.h.example/post', {
      ownHosts: ['blog.h.example'],
    });
    expect(inference.channel).toBe('direct');
  });
});

describe('buildFbc', () => {
  it('builds fb.1.<ms>.<fbclid> without touching the fbclid’s case', () => {
    expect(buildFbc('AbCdEfGhIjKlMnOp', 1554763741205)).toBe('fb.1.1554763741205.AbCdEfGhIjKlMnOp');
    expect(buildFbc('IwAR2x', 1554763741205, 2)).toBe('fb.2.1554763741205.IwAR2x');
  });

  it.each([
    ['', 1554763741205, 1],
    ['a b', 1554763741205, 1],
    ['AbC', 1.5, 1],
    ['AbC', 1554763741205, 3],
  ])('rejects fbclid %j at %s index %s', (fbclid, time, index) => {
    expect(() => buildFbc(fbclid, time, index)).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });
});

describe('buildJourneys', () => {
  const t0 = Date.UTC(2024, 0, 1);

  it('credits touches inside the click and view windows to the first conversion after them', () => {
    const result = buildJourneys(
      [
        { userId: 'u1', timeMs: t0, channel: 'display', interaction: 'view' },
        { userId: 'u1', timeMs: t0 + 2 * DAY, channel: 'search' },
        { userId: 'u1', timeMs: t0 + 9.5 * DAY, channel: 'social', interaction: 'view' },
        { userId: 'u1', timeMs: t0 + 10 * DAY, channel: 'email' },
        { userId: 'u1', timeMs: t0 + 12 * DAY, channel: 'search' },
        { userId: 'u2', timeMs: t0, channel: 'search' },
      ],
      [
        { userId: 'u1', timeMs: t0 + 10 * DAY, value: 300 },
        { userId: 'u2', timeMs: t0 + 45 * DAY, value: 50 },
      ],
      { lookback: DEFAULT_LOOKBACK },
    );
    expect(result.paths).toEqual([
      {
        channels: ['search', 'social', 'email'],
        conversions: 1,
        value: 300,
        nulls: 0,
        touchTimes: [t0 + 2 * DAY, t0 + 9.5 * DAY, t0 + 10 * DAY],
        conversionTime: t0 + 10 * DAY,
      },
    ]);
    expect(result.expiredTouches).toBe(3);
    expect(result.unattributedConversions).toBe(1);
    expect(result.unattributedValue).toBe(50);
  });

  it('keeps touches after the last conversion as a non-converting path within the window of asOf', () => {
    const result = buildJourneys(
      [
        { userId: 'u1', timeMs: t0, channel: 'search' },
        { userId: 'u1', timeMs: t0 + 20 * DAY, channel: 'email' },
      ],
      [],
      { lookback: { clickMs: 7 * DAY, viewMs: DAY }, asOfMs: t0 + 21 * DAY },
    );
    expect(result.paths).toEqual([
      { channels: ['email'], conversions: 0, value: 0, nulls: 1, touchTimes: [t0 + 20 * DAY] },
    ]);
    expect(result.expiredTouches).toBe(1);
  });

  it('rejects negative windows', () => {
    expect(() => buildJourneys([], [], { lookback: { clickMs: -1, viewMs: 0 } })).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
  });
});
