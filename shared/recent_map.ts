// A map bounded to about its most recent keys, with O(1) eviction, for per-message bookkeeping (dedupe keys,
// sticky contexts) that must stay bounded on a long-running hub.

/**
 * Keeps at least the last `limit / 2` and at most `limit` keys set: new keys go to a current generation; when
 * it holds `limit / 2`, it becomes the previous generation and the one before is dropped whole. Evicting the
 * oldest key of one big Map instead (`keys().next()` then `delete`) walks over the holes earlier deletes
 * left at the front of V8's hash table, about 7 µs per eviction at 10,000 keys.
 */
export class RecentMap<K, V> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();
  private readonly generationSize: number;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 2) throw new RangeError('limit must be an integer ≥ 2');
    this.generationSize = Math.floor(limit / 2);
  }

  get(key: K): V | undefined {
    return this.current.get(key) ?? this.previous.get(key);
  }

  set(key: K, value: V): void {
    // A key refreshed from the previous generation stays there too until that generation is dropped: `get`
    // looks in the current one first, and one hash operation per set is what this map is for.
    if (this.current.size >= this.generationSize && !this.current.has(key)) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }

  delete(key: K): void {
    this.current.delete(key);
    this.previous.delete(key);
  }

  /** Entries held now, at most `limit` (a key refreshed from the previous generation counts twice until it goes). */
  get size(): number {
    return this.current.size + this.previous.size;
  }
}
