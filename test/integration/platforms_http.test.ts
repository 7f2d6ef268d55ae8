// Rate limiting and retry plumbing: token bucket timing, full-jitter backoff, Retry-After parsing, redaction.
import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  DEFAULT_RETRY_POLICY,
  parseRetryAfterMs,
  redactRequest,
  TokenBucket,
  type Clock,
} from '../../spoke_marketing/platforms/http.js';

function manualClock(): Clock & { slept: number[]; advance(ms: number): void } {
  let now = 0;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  };
}

describe('TokenBucket', () => {
  it('allows a burst of capacity, then paces at the refill rate', async () => {
    const clock = manualClock();
    const bucket = new TokenBucket({ capacity: 3, refillPerSecond: 2, clock });
    for (let index = 0; index < 3; index += 1) await bucket.take();
    expect(clock.slept).toEqual([]);
    await bucket.take();
    await bucket.take();
    expect(clock.slept).toEqual([500, 500]);
    expect(clock.now()).toBe(1_000);
  });

  it('refills over idle time but never above capacity', async () => {
    const clock = manualClock();
    const bucket = new TokenBucket({ capacity: 2, refillPerSecond: 1, clock });
    await bucket.take();
    await bucket.take();
    clock.advance(10_000);
    expect(bucket.available()).toBe(2);
  });

  it('rejects a bucket that can never hand out a token', () => {
    expect(() => new TokenBucket({ capacity: 0, refillPerSecond: 1 })).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
  });
});

describe('backoff and Retry-After', () => {
  it('draws full jitter under an exponentially growing, capped ceiling', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 100, maxDelayMs: 1_000, random: () => 0.999 };
    expect([1, 2, 3, 4, 5, 6].map((attempt) => backoffDelayMs(attempt, policy))).toEqual([
      99, 199, 399, 799, 999, 999,
    ]);
    expect(backoffDelayMs(3, { ...policy, random: () => 0 })).toBe(0);
  });

  it('reads delta-seconds and HTTP dates', () => {
    const now = Date.UTC(2025, 0, 1, 0, 0, 0);
    expect(parseRetryAfterMs('120', now)).toBe(120_000);
    expect(parseRetryAfterMs('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfterMs('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfterMs('soon', now)).toBeUndefined();
    expect(parseRetryAfterMs(undefined, now)).toBeUndefined();
  });
});

describe('redactRequest', () => {
  it('removes secrets from URL, headers and nested body values', () => {
    const redacted = redactRequest(
      {
        method: 'POST',
        url: 'https://x.example/a?access_token=S3CRET',
        headers: { authorization: 'Bearer S3CRET' },
        body: { access_token: 'S3CRET', nested: [{ token: 'S3CRET' }], count: 2 },
      },
      ['S3CRET', ''],
    );
    expect(JSON.stringify(redacted)).not.toContain('S3CRET');
    expect(redacted.body).toEqual({
      access_token: '[REDACTED]',
      nested: [{ token: '[REDACTED]' }],
      count: 2,
    });
  });
});
