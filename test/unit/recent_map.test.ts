// RecentMap: bounded to about its most recent keys, with whole-generation eviction.
import { describe, expect, it } from 'vitest';
import { RecentMap } from '../../shared/recent_map.js';

describe('RecentMap', () => {
  it('keeps at least the last limit/2 keys and at most limit keys', () => {
    const map = new RecentMap<number, string>(10);
    for (let key = 0; key < 1000; key += 1) {
      map.set(key, `v${key}`);
      expect(map.size).toBeLessThanOrEqual(10);
      for (let recent = Math.max(0, key - 4); recent <= key; recent += 1)
        expect(map.get(recent)).toBe(`v${recent}`);
    }
    expect(map.get(0)).toBeUndefined();
    expect(map.size).toBeGreaterThanOrEqual(5);
  });

  it('updates a key in place, refreshes a key of the previous generation, and deletes from both', () => {
    const map = new RecentMap<string, number>(4);
    map.set('a', 1);
    map.set('b', 2);
    map.set('c', 3); // a and b are now the previous generation
    map.set('a', 10); // refreshed into the current one
    map.set('c', 30);
    expect([map.get('a'), map.get('b'), map.get('c')]).toEqual([10, 2, 30]);
    map.set('d', 4); // current (c, a) was full: it becomes previous, b is dropped
    expect([map.get('a'), map.get('b'), map.get('c'), map.get('d')]).toEqual([10, undefined, 30, 4]);
    map.delete('c');
    expect(map.get('c')).toBeUndefined();
    expect(map.size).toBe(2);
  });

  it('refuses a limit below 2', () => {
    expect(() => new RecentMap(1)).toThrow(RangeError);
  });
});
