// Offline-conversion payload builders (golden shapes with hashed fields) and the idempotent upload log.
import { describe, expect, it } from 'vitest';
import {
  buildGoogleClickConversion,
  buildGoogleUploadBodies,
  buildMetaEventBatches,
  buildTikTokEventsBodies,
  conversionDedupeKey,
  formatGoogleDateTime,
  InMemoryConversionUploadLog,
  minorToMajor,
  type ConversionEvent,
} from '../../spoke_marketing/conversions.js';
import { sha256Hex } from '../../spoke_marketing/hashing.js';

const NOW = Date.UTC(2025, 2, 10, 12, 0, 0);
const EMAIL_HASH = '836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f'; // john.doe@example.com
const META_PHONE_HASH = 'd6736136ea896c1bfdc553e0e86e702c70d060d805696ca3e4e9e0961353860a'; // 15551234567

const lead: ConversionEvent = {
  eventId: 'lead-1001',
  eventName: 'Lead',
  eventTimeMs: NOW - 2 * 3_600_000 + 500,
  orderId: 'crm-1001',
  valueMinor: 250_000,
  currency: 'usd',
  user: {
    emails: ['  John.Doe@Example.COM  '],
    phones: ['+1 (555) 123-4567'],
    firstName: 'John',
    lastName: 'Smith',
    city: 'New York',
    state: 'New York',
    postalCode: '10001-1234',
    country: 'United States',
    clientIpAddress: '203.0.113.7',
    clientUserAgent: 'Mozilla/5.0',
  },
  clickIds: { gclid: 'Cj0KCQ-AbC', fbc: 'fb.1.1554763741205.AbCdEf', ttclid: 'E.C.P.xyz' },
  eventSourceUrl: 'https://homes.example.com/listing/42',
  leadId: '998877',
};

describe('Meta Conversions API payload', () => {
  it('builds the documented event shape with hashed user_data and unhashed ip, user agent and fbc', () => {
    const [body, ...rest] = buildMetaEventBatches([lead], {
      actionSource: 'website',
      nowMs: NOW,
      testEventCode: 'TEST1',
    });
    expect(rest).toEqual([]);
    expect(body).toEqual({
      data: [
        {
          event_name: 'Lead',
          event_time: Math.floor((NOW - 2 * 3_600_000) / 1000),
          action_source: 'website',
          event_id: 'lead-1001',
          event_source_url: 'https://homes.example.com/listing/42',
          user_data: {
            em: [EMAIL_HASH],
            ph: [META_PHONE_HASH],
            fn: sha256Hex('john'),
            ln: sha256Hex('smith'),
            ct: sha256Hex('newyork'),
            st: sha256Hex('ny'),
            zp: sha256Hex('10001'),
            country: sha256Hex('us'),
            client_ip_address: '203.0.113.7',
            client_user_agent: 'Mozilla/5.0',
            fbc: 'fb.1.1554763741205.AbCdEf',
            lead_id: '998877',
          },
          custom_data: { value: 2500, currency: 'USD', order_id: 'crm-1001' },
        },
      ],
      test_event_code: 'TEST1',
    });
  });

  it('splits more than 1,000 events into requests of at most 1,000', () => {
    const events = Array.from({ length: 2_345 }, (_, index) => ({ ...lead, eventId: `e${index}` }));
    const bodies = buildMetaEventBatches(events, { actionSource: 'system_generated', nowMs: NOW });
    expect(bodies.map((body) => body.data.length)).toEqual([1000, 1000, 345]);
  });

  it('refuses the whole batch when any event is older than 7 days, naming each', () => {
    const old = { ...lead, eventId: 'stale-1', eventTimeMs: NOW - 7 * 86_400_000 - 1 };
    expect(() => buildMetaEventBatches([lead, old], { actionSource: 'physical_store', nowMs: NOW })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED', details: { eventIds: ['stale-1'] } }),
    );
  });

  it('refuses website events without a user agent', () => {
    const bare = { ...lead, user: { emails: ['a@b.co'] } };
    expect(() => buildMetaEventBatches([bare], { actionSource: 'website', nowMs: NOW })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });
});

describe('Google Ads ClickConversion payload', () => {
  const options = {
    customerId: '123-456-7890',
    conversionActionId: '987654',
    timeZone: 'America/Los_Angeles',
  };

  it('formats conversion_date_time with the zone offset, as in Google’s example', () => {
    expect(formatGoogleDateTime(Date.UTC(2019, 0, 1, 20, 32, 45), 'America/Los_Angeles')).toBe(
      '2019-01-01 12:32:45-08:00',
    );
    expect(formatGoogleDateTime(Date.UTC(2024, 6, 1, 3, 4, 5, 999), 'Asia/Kolkata')).toBe(
      '2024-07-01 08:34:05+05:30',
    );
    expect(() => formatGoogleDateTime(0, 'Mars/Olympus')).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });

  it('builds the REST ClickConversion with one-of user identifiers, E.164 phone hash and partialFailure', () => {
    const [body] = buildGoogleUploadBodies([lead], { ...options, adUserDataConsent: 'GRANTED' });
    expect(body).toEqual({
      conversions: [
        {
          gclid: 'Cj0KCQ-AbC',
          conversionAction: 'customers/1234567890/conversionActions/987654',
          conversionDateTime: '2025-03-10 03:00:00-07:00',
          conversionValue: 2500,
          currencyCode: 'USD',
          orderId: 'crm-1001',
          userIdentifiers: [
            { hashedEmail: EMAIL_HASH },
            { hashedPhoneNumber: sha256Hex('+15551234567') },
            {
              addressInfo: {
                hashedFirstName: sha256Hex('john'),
                hashedLastName: sha256Hex('smith'),
                city: 'New York',
                state: 'New York',
                countryCode: 'US',
                postalCode: '10001-1234',
              },
            },
          ],
          consent: { adUserData: 'GRANTED' },
        },
      ],
      partialFailure: true,
    });
    for (const identifier of body!.conversions[0]!.userIdentifiers!)
      expect(Object.keys(identifier)).toHaveLength(1);
  });

  it('removes gmail dots in the hashed email', () => {
    const conversion = buildGoogleClickConversion(
      { ...lead, user: { emails: ['First.Last@Gmail.com'] } },
      options,
    );
    expect(conversion.userIdentifiers).toEqual([
      { hashedEmail: 'ed6c35e905a6daa500da471136a733ccccf446b294e80ae03a1d5d865fe1044c' },
    ]);
  });

  it.each([
    [
      'two click ids',
      { ...lead, clickIds: { gclid: 'a', wbraid: 'b' } },
      'set only one of gclid, gbraid, wbraid',
    ],
    [
      'no click id or identifier',
      { ...lead, clickIds: {}, user: {} },
      'needs gclid, gbraid, wbraid or user identifiers',
    ],
    [
      'six identifiers',
      {
        ...lead,
        user: {
          emails: ['a@x.co', 'b@x.co', 'c@x.co'],
          phones: ['+15550000001', '+15550000002', '+15550000003'],
        },
      },
      'at most 5',
    ],
  ])('refuses %s', (_name, event, message) => {
    expect(() => buildGoogleClickConversion(event, options)).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining(message) }),
    );
  });
});

describe('TikTok Events API 2.0 payload', () => {
  it('builds the body with hashed email, E.164 phone and external id, ttclid unhashed, lead for crm', () => {
    const event = { ...lead, eventName: 'SubmitForm', user: { ...lead.user, externalIds: [' CRM-1001 '] } };
    const [body] = buildTikTokEventsBodies([event], {
      eventSource: 'crm',
      eventSourceId: 'CRM123',
      testEventCode: 'T1',
    });
    expect(body).toEqual({
      event_source: 'crm',
      event_source_id: 'CRM123',
      test_event_code: 'T1',
      data: [
        {
          event: 'SubmitForm',
          event_time: Math.floor(lead.eventTimeMs / 1000),
          event_id: 'lead-1001',
          user: {
            email: [EMAIL_HASH],
            phone: [sha256Hex('+15551234567')],
            external_id: [sha256Hex('crm-1001')],
            ttclid: 'E.C.P.xyz',
            ip: '203.0.113.7',
            user_agent: 'Mozilla/5.0',
          },
          properties: { value: 2500, currency: 'USD', order_id: 'crm-1001' },
          page: { url: 'https://homes.example.com/listing/42' },
          lead: { lead_id: '998877' },
        },
      ],
    });
  });

  it('hashes phones exactly like the Segment vector', () => {
    const [body] = buildTikTokEventsBodies([{ ...lead, user: { phones: ['12345678901234'] } }], {
      eventSource: 'web',
      eventSourceId: 'PIXEL',
    });
    expect(body!.data[0]!.user.phone).toEqual([
      '00a63bd0437d6ca0fa7b95c00ab2e7c020faa71440e5246750d6b517689e6777',
    ]);
  });
});

describe('money and dedupe', () => {
  it('converts minor units with ISO 4217 digits', () => {
    expect(minorToMajor(1234, 'USD')).toBe(12.34);
    expect(minorToMajor(1234, 'JPY')).toBe(1234);
    expect(minorToMajor(1234, 'KWD')).toBe(1.234);
    expect(() => minorToMajor(12.5, 'USD')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => minorToMajor(1, 'dollars')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('keys Meta and TikTok on event name + id, Google on action + order id', () => {
    expect(conversionDedupeKey('meta', lead)).toBe('Lead:lead-1001');
    expect(conversionDedupeKey('google_ads', lead, 'customers/1/conversionActions/2')).toBe(
      'customers/1/conversionActions/2:order:crm-1001',
    );
    const { orderId: _orderId, ...withoutOrder } = lead;
    expect(conversionDedupeKey('google_ads', withoutOrder, 'customers/1/conversionActions/2')).toBe(
      'customers/1/conversionActions/2:event:lead-1001',
    );
  });

  it('returns duplicate on re-upload, but lets failed and dry-run entries be recorded again', async () => {
    const log = new InMemoryConversionUploadLog();
    const entry = {
      platform: 'meta' as const,
      dedupeKey: 'Lead:1',
      payload: { a: 1 },
      status: 'pending' as const,
      createdAt: new Date(NOW),
    };
    expect(await log.record(entry)).toBe('new');
    expect(await log.record({ ...entry, payload: { a: 2 } })).toBe('duplicate');
    expect(await log.record({ ...entry, platform: 'tiktok' })).toBe('new');
    await log.setStatus('meta', 'Lead:1', 'failed');
    expect(await log.record({ ...entry, createdAt: new Date(NOW + 1) })).toBe('new');
    await log.setStatus('meta', 'Lead:1', 'sent');
    expect(await log.record(entry)).toBe('duplicate');
    const dry = { ...entry, dedupeKey: 'Lead:2', status: 'dry_run' as const };
    expect(await log.record(dry)).toBe('new');
    expect(await log.record(dry)).toBe('new');
    expect((await log.list({ platform: 'meta' })).map((item) => [item.dedupeKey, item.status])).toEqual([
      ['Lead:1', 'sent'],
      ['Lead:2', 'dry_run'],
    ]);
    expect(await log.list({ status: 'pending' })).toHaveLength(1);
    await expect(log.setStatus('google_ads', 'nope', 'sent')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
