import { describe, expect, it, layer } from "@effect/vitest"
import { Duration, Effect, Ref, TestClock } from "effect"
import { makeMonitor, type PoolHealthState, statusOf, step } from "../../src/Db/PoolHealth.js"
import { at, call, type Reply } from "../support/Http.js"
import * as TestServer from "../support/TestServer.js"

describe("pool health state machine", () => {
  it("status from consecutive failures and utilisation", () => {
    expect(statusOf(0, 0, 0.9)).toBe("ok")
    expect(statusOf(0, 0.9, 0.9)).toBe("ok")
    expect(statusOf(0, 0.91, 0.9)).toBe("degraded")
    expect(statusOf(1, 0, 0.9)).toBe("degraded")
    expect(statusOf(2, 0, 0.9)).toBe("degraded")
    expect(statusOf(3, 0, 0.9)).toBe("down")
    expect(statusOf(7, 1, 0.9)).toBe("down")
  })

  it("a success resets the failure count and the error", () => {
    const failed: PoolHealthState = {
      status: "down", consecutiveFailures: 3, utilisation: 0, lastCheckAt: 1, lastLatencyMs: 5, lastError: "boom"
    }
    expect(step(failed, { _tag: "Ok", latencyMs: 2 }, 0.1, 0.9, 2)).toEqual({
      status: "ok", consecutiveFailures: 0, utilisation: 0.1, lastCheckAt: 2, lastLatencyMs: 2, lastError: null
    })
  })

  it.scoped("the monitor on the clock: ok → degraded → down → ok, a full pool, a probe that hangs", () =>
    Effect.gen(function*() {
      type Script = "ok" | "fail" | "hang"
      const next = yield* Ref.make<Script>("ok")
      const probes = yield* Ref.make(0)
      const utilisation = yield* Ref.make(0)
      const probe = Effect.gen(function*() {
        yield* Ref.update(probes, (n) => n + 1)
        const what = yield* Ref.get(next)
        if (what === "fail") return yield* Effect.fail(new Error("connection refused"))
        if (what === "hang") return yield* Effect.never
      })
      const monitor = yield* makeMonitor({
        probe,
        utilisation: Ref.get(utilisation),
        sample: Effect.succeed({ total: 1, idle: 1, waiting: 0, max: 1 }),
        interval: Duration.seconds(5),
        timeout: Duration.seconds(2),
        degradedRatio: 0.9
      })
      const tick = (script: Script) =>
        Effect.gen(function*() {
          yield* Ref.set(next, script)
          yield* TestClock.adjust("5 seconds")
          return yield* monitor.current
        })

      const initial = yield* monitor.current
      expect(initial).toMatchObject({ status: "ok", consecutiveFailures: 0, lastCheckAt: null })
      // Nothing probes before the first interval is over.
      yield* TestClock.adjust("4999 millis")
      expect(yield* Ref.get(probes)).toBe(0)
      yield* TestClock.adjust("1 millis")
      expect(yield* Ref.get(probes)).toBe(1)
      expect(yield* monitor.current).toMatchObject({ status: "ok", consecutiveFailures: 0, lastCheckAt: 5_000, lastError: null })

      expect(yield* tick("fail")).toMatchObject({ status: "degraded", consecutiveFailures: 1, lastError: "connection refused" })
      expect(yield* tick("fail")).toMatchObject({ status: "degraded", consecutiveFailures: 2 })
      expect(yield* tick("fail")).toMatchObject({ status: "down", consecutiveFailures: 3 })
      expect(yield* tick("fail")).toMatchObject({ status: "down", consecutiveFailures: 4 })
      expect(yield* tick("ok")).toMatchObject({ status: "ok", consecutiveFailures: 0, lastError: null, lastCheckAt: 30_000 })

      // A pool busy above the threshold over the interval is degraded while the probes pass.
      yield* Ref.set(utilisation, 0.95)
      expect(yield* tick("ok")).toMatchObject({ status: "degraded", consecutiveFailures: 0, utilisation: 0.95 })
      yield* Ref.set(utilisation, 0.5)
      expect(yield* tick("ok")).toMatchObject({ status: "ok", utilisation: 0.5 })

      // A probe that never answers fails at the timeout, not later and not never.
      const before = yield* tick("hang")
      expect(before).toMatchObject({ status: "ok", lastCheckAt: 40_000 })
      yield* TestClock.adjust("1999 millis")
      expect((yield* monitor.current).lastCheckAt).toBe(40_000)
      yield* TestClock.adjust("1 millis")
      expect(yield* monitor.current).toMatchObject({
        status: "degraded",
        consecutiveFailures: 1,
        lastCheckAt: 47_000,
        lastLatencyMs: 2_000,
        lastError: "no answer within 2000 ms"
      })
    }))
})

const pollReady = (until: (r: Reply) => boolean, timeoutMs = 5_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const ready = yield* call("GET", "/ready")
      if (until(ready) || Date.now() > deadline) return ready
      yield* Effect.sleep("50 millis")
    }
  })

// Probes every 100 ms that give up after 300 ms: holding every connection of the pool starves them.
// Utilisation never degrades here (ratio 1): only probe outcomes move the state, whatever else uses the pool.
const env = {
  PARLEY_DB_POOL_MAX: "2",
  PARLEY_DB_HEALTH_INTERVAL_MS: "100",
  PARLEY_DB_HEALTH_TIMEOUT_MS: "300",
  PARLEY_DB_POOL_DEGRADED_RATIO: "1"
}

layer(TestServer.layer({ env }), { timeout: 60_000, excludeTestServices: true })("pool health over HTTP", (it) => {
  it.effect("/ready and /v1/admin/status show the pool's health", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const ready = yield* pollReady((r) =>
        typeof at(r.json, "checks", "database", "latency_ms") === "number" && at(r.json, "checks", "database", "status") === "ok")
      expect(ready.status).toBe(200)
      expect(at(ready.json, "status")).toBe("ready")
      expect(at(ready.json, "checks", "database", "status")).toBe("ok")
      expect(at(ready.json, "checks", "database", "consecutive_failures")).toBe(0)
      const utilisation = at(ready.json, "checks", "database", "utilisation")
      expect(typeof utilisation === "number" && utilisation >= 0 && utilisation <= 1).toBe(true)

      const status = yield* call("GET", "/v1/admin/status", { token: server.adminToken })
      expect(status.status).toBe(200)
      expect(at(status.json, "database", "status")).toBe("ok")
      expect(at(status.json, "database", "consecutive_failures")).toBe(0)
      const max = at(status.json, "database", "pool", "max")
      expect(max === 1 || max === 2).toBe(true) // the embedded database is always served by one connection
      expect(String(at(status.json, "database", "last_check_at"))).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/)
      expect(at(status.json, "database", "last_error")).toBe(null)
    }))

  it.effect("a starved pool goes degraded, then down (503), then ok again", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.TestServer
      const max = Number(at((yield* call("GET", "/v1/admin/status", { token: server.adminToken })).json, "database", "pool", "max"))
      expect(max).toBeGreaterThanOrEqual(1)
      // Hold every connection of the pool in a transaction, in the background.
      const holder = yield* Effect.fork(Effect.forEach(
        Array.from({ length: max }, () => server.sql.withTransaction(Effect.sleep("3 seconds"))),
        (hold) => hold,
        { concurrency: "unbounded", discard: true }
      ))

      const degraded = yield* pollReady((r) => at(r.json, "checks", "database", "status") !== "ok")
      expect(degraded.status).toBe(200)
      expect(at(degraded.json, "status")).toBe("ready")
      expect(at(degraded.json, "checks", "database", "status")).toBe("degraded")

      const down = yield* pollReady((r) => r.status === 503)
      expect(down.status).toBe(503)
      expect(at(down.json, "status")).toBe("not_ready")
      expect(at(down.json, "error", "code")).toBe("ERR_DB_UNAVAILABLE")
      expect(at(down.json, "checks", "database", "status")).toBe("down")
      expect(at(down.json, "checks", "database", "consecutive_failures")).toBeGreaterThanOrEqual(3)
      const admin = yield* call("GET", "/v1/admin/status", { token: server.adminToken })
      expect(at(admin.json, "database", "status")).toBe("down")
      expect(String(at(admin.json, "database", "last_error"))).toContain("no answer within 300 ms")

      yield* Effect.ignore(holder.await)
      const recovered = yield* pollReady((r) => at(r.json, "checks", "database", "status") === "ok", 10_000)
      expect(recovered.status).toBe(200)
      expect(at(recovered.json, "checks", "database", "consecutive_failures")).toBe(0)
    }))
})
