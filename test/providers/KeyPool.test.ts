import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Redacted, TestClock } from "effect"
import type { ProviderKey } from "../../src/Providers/Domain.js"
import * as KeyPool from "../../src/Providers/KeyPool.js"

const key = (id: string): ProviderKey => ({ id, value: Redacted.make(`sk-secret-${id}`) })
const keys = [key("openai#1"), key("openai#2"), key("openai#3")]

const take = (pool: KeyPool.KeyPool, n: number) =>
  Effect.forEach(Array.from({ length: n }), () => Effect.map(pool.next, (k) => k.id))

describe("KeyPool", () => {
  it.effect("rotates round-robin", () =>
    Effect.gen(function*() {
      const pool = yield* KeyPool.make("openai", keys)
      expect(yield* take(pool, 5)).toEqual(["openai#1", "openai#2", "openai#3", "openai#1", "openai#2"])
    }))

  it.effect("skips rejected keys and records why", () =>
    Effect.gen(function*() {
      const pool = yield* KeyPool.make("openai", keys)
      yield* pool.reportRejected("openai#2", "401 invalid_api_key")
      expect(yield* take(pool, 4)).toEqual(["openai#1", "openai#3", "openai#1", "openai#3"])
      const snapshot = yield* pool.snapshot
      expect(snapshot[1]).toEqual({ id: "openai#2", state: "rejected", reason: "401 invalid_api_key", since: 0 })
    }))

  it.effect("cools a rate-limited key down until the cooldown expires (TestClock)", () =>
    Effect.gen(function*() {
      const pool = yield* KeyPool.make("openai", keys.slice(0, 2))
      yield* pool.reportRateLimited("openai#1", "30 seconds")
      expect(yield* take(pool, 3)).toEqual(["openai#2", "openai#2", "openai#2"])
      expect((yield* pool.snapshot)[0]).toEqual({ id: "openai#1", state: "cooling_down", until: 30_000, remainingMs: 30_000 })

      yield* TestClock.adjust("29 seconds")
      expect(yield* take(pool, 1)).toEqual(["openai#2"])

      yield* TestClock.adjust("1 second")
      expect((yield* pool.snapshot)[0]).toEqual({ id: "openai#1", state: "active" })
      expect(yield* take(pool, 2)).toEqual(["openai#1", "openai#2"])
    }))

  it.effect("keeps the longer of two cooldowns", () =>
    Effect.gen(function*() {
      const pool = yield* KeyPool.make("openai", keys.slice(0, 1))
      yield* pool.reportRateLimited("openai#1", "60 seconds")
      yield* pool.reportRateLimited("openai#1", "5 seconds")
      yield* TestClock.adjust("10 seconds")
      const exit = yield* Effect.exit(pool.next)
      expect(exit).toEqual(Exit.fail(new KeyPool.NoUsableKey({ provider: "openai", rejected: 0, coolingDown: 1, retryAfterMs: 50_000 })))
    }))

  it.effect("all cooling → NoUsableKey with retryAfterMs of the soonest key", () =>
    Effect.gen(function*() {
      const pool = yield* KeyPool.make("openai", keys)
      yield* pool.reportRateLimited("openai#1", "20 seconds")
      yield* pool.reportRateLimited("openai#2", "5 seconds")
      yield* pool.reportRejected("openai#3")
      const error = yield* Effect.flip(pool.next)
      expect(error._tag).toBe("NoUsableKey")
      expect(error.rejected).toBe(1)
      expect(error.coolingDown).toBe(2)
      expect(error.retryAfterMs).toBe(5_000)
      yield* TestClock.adjust("5 seconds")
      expect(yield* take(pool, 2)).toEqual(["openai#2", "openai#2"])
    }))

  it.effect("all rejected → NoUsableKey without retryAfterMs; reinstate brings a key back", () =>
    Effect.gen(function*() {
      const pool = yield* KeyPool.make("anthropic", keys.slice(0, 2))
      yield* pool.reportRejected("openai#1")
      yield* pool.reportRejected("openai#2")
      // a rate limit on a rejected key does not un-reject it
      yield* pool.reportRateLimited("openai#2", "1 second")
      const error = yield* Effect.flip(pool.next)
      expect(error).toEqual(new KeyPool.NoUsableKey({ provider: "anthropic", rejected: 2, coolingDown: 0, retryAfterMs: null }))
      yield* pool.reinstate("openai#2")
      expect(yield* take(pool, 2)).toEqual(["openai#2", "openai#2"])
    }))

  it.effect("no keys → NoUsableKey; unknown key ids are ignored", () =>
    Effect.gen(function*() {
      const pool = yield* KeyPool.make("openai", [])
      yield* pool.reportRejected("nope")
      const error = yield* Effect.flip(pool.next)
      expect(error.rejected + error.coolingDown).toBe(0)
    }))

  it.effect("snapshots never contain key values", () =>
    Effect.gen(function*() {
      const pool = yield* KeyPool.make("openai", keys)
      yield* pool.reportRateLimited("openai#3", "1 minute")
      const text = JSON.stringify(yield* pool.snapshot)
      expect(text).not.toContain("sk-secret")
      expect(String(yield* pool.next)).not.toContain("sk-secret")
    }))

  it.effect("concurrent callers each get a key, spread evenly", () =>
    Effect.gen(function*() {
      const pool = yield* KeyPool.make("openai", keys)
      const ids = yield* Effect.forEach(Array.from({ length: 30 }), () => Effect.map(pool.next, (k) => k.id), { concurrency: "unbounded" })
      for (const k of keys) expect(ids.filter((id) => id === k.id)).toHaveLength(10)
    }))
})
