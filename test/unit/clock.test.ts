// isoTime: the same text as Date#toISOString for every millisecond, repeated or not.
import { describe, expect, it } from 'vitest';
import { isoTime } from '../../shared/clock.js';

describe('isoTime', () => {
  it('formats like toISOString, for repeated, increasing and earlier milliseconds', () => {
    const base = Date.UTC(2026, 11, 5, 17, 59, 59, 998);
    for (const ms of [base, base, base + 1, base + 2, base + 2, base - 86_400_000, 0, base]) {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
  });
});
