/**
 * A size-bounded LRU with TTL: O(1) get and set on a Map, whose insertion
 * order is the recency order (a hit is re-inserted at the end).
 */
export class Lru<V> {
  private readonly map = new Map<string, { readonly value: V; readonly expiresAt: number }>()
  constructor(private readonly maxEntries: number) {}

  get(key: string, now: number): V | undefined {
    const entry = this.map.get(key)
    if (entry === undefined) return undefined
    this.map.delete(key)
    if (entry.expiresAt <= now) return undefined
    this.map.set(key, entry)
    return entry.value
  }

  set(key: string, value: V, expiresAt: number): void {
    this.map.delete(key)
    this.map.set(key, { value, expiresAt })
    if (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next()
      if (oldest.done !== true) this.map.delete(oldest.value)
    }
  }

  delete(key: string): void {
    this.map.delete(key)
  }

  get size(): number {
    return this.map.size
  }
}
