import { describe, expect, it } from "@effect/vitest"
import { Data, Deferred, Effect, Either, Exit, Fiber, Ref, TestClock } from "effect"
import * as CircuitBreaker from "../../src/Resilience/CircuitBreaker.js"
import { CircuitOpenError } from "../../src/Resilience/Errors.js"

class Upstream extends Data.TaggedError("Upstream")<{ readonly status: number }> {}

const isServerError = (e: Upstream) => e.status >= 500

const config: CircuitBreaker.Config = {
  name: "openai",
  slidingWindowSize: 10,
  minimumNumberOfCalls: 5,
  failureRateThreshold: 50,
  waitDurationInOpenState: "30 seconds",
  permittedNumberOfCallsInHalfOpenState: 2
}

const ok = Effect.succeed("ok")
const serverError = Effect.fail(new Upstream({ status: 503 }))
const clientError = Effect.fail(new Upstream({ status: 400 }))

/** A breaker plus a transition log. */
const makeLogged = (cfg: CircuitBreaker.Config = config) =>
  Effect.gen(function*() {
    const log = yield* Ref.make<Array<CircuitBreaker.Transition>>([])
    const breaker = yield* CircuitBreaker.make(cfg, (t) => Ref.update(log, (xs) => [...xs, t]))
    return { breaker, log }
  })

const callN = (breaker: CircuitBreaker.CircuitBreaker, n: number, effect: Effect.Effect<string, Upstream>) =>
  Effect.replicateEffect(Effect.either(breaker.run(effect, isServerError)), n)

/** Yield until `cond` holds, so every forked caller has reached the breaker. */
const waitUntil = (cond: Effect.Effect<boolean>): Effect.Effect<void> =>
  Effect.flatMap(cond, (done) => (done ? Effect.void : Effect.zipRight(Effect.yieldNow(), waitUntil(cond))))

/** Drive a fresh breaker to OPEN with five server errors. */
const opened = Effect.gen(function*() {
  const logged = yield* makeLogged()
  yield* callN(logged.breaker, 5, serverError)
  expect((yield* logged.breaker.snapshot).state).toBe("OPEN")
  return logged
})

describe("CircuitBreaker", () => {
  it.effect("stays CLOSED below minimumNumberOfCalls even at 100% failures", () =>
    Effect.gen(function*() {
      const { breaker, log } = yield* makeLogged()
      yield* callN(breaker, 4, serverError)
      const snap = yield* breaker.snapshot
      expect(snap).toMatchObject({ state: "CLOSED", bufferedCalls: 4, failedCalls: 4, failureRate: 100 })
      expect(yield* Ref.get(log)).toStrictEqual([])
    }))

  it.effect("opens when the failure rate reaches the threshold", () =>
    Effect.gen(function*() {
      const { breaker, log } = yield* makeLogged()
      yield* callN(breaker, 3, ok)
      yield* callN(breaker, 2, serverError)
      // 2/5 = 40% < 50%.
      expect((yield* breaker.snapshot).state).toBe("CLOSED")
      yield* TestClock.adjust("1 second")
      yield* callN(breaker, 1, serverError)
      // 3/6 = 50%: at the threshold counts.
      const snap = yield* breaker.snapshot
      expect(snap).toMatchObject({ state: "OPEN", transitions: 1, lastTransitionAt: 1000 })
      expect(yield* Ref.get(log)).toStrictEqual([
        { name: "openai", from: "CLOSED", to: "OPEN", at: 1000, failureRate: 50 }
      ])
    }))

  it.effect("counts only the last slidingWindowSize calls", () =>
    Effect.gen(function*() {
      const { breaker } = yield* makeLogged({
        ...config,
        slidingWindowSize: 4,
        minimumNumberOfCalls: 4,
        failureRateThreshold: 75
      })
      yield* callN(breaker, 2, serverError)
      yield* callN(breaker, 2, ok)
      yield* callN(breaker, 2, serverError)
      // Window [ok, ok, F, F] = 50%; over all six calls it would be 67%.
      expect(yield* breaker.snapshot).toMatchObject({ state: "CLOSED", bufferedCalls: 4, failedCalls: 2 })
      yield* callN(breaker, 1, serverError)
      // Window [ok, F, F, F] = 75% -> open (all seven would be 71%, below it).
      expect((yield* breaker.snapshot).state).toBe("OPEN")
    }))

  it.effect("does not count client errors (isFailure false) as failures", () =>
    Effect.gen(function*() {
      const { breaker } = yield* makeLogged()
      const results = yield* callN(breaker, 10, clientError)
      // The caller still sees its error.
      expect(results.every((r) => Either.isLeft(r) && r.left._tag === "Upstream")).toBe(true)
      expect(yield* breaker.snapshot).toMatchObject({
        state: "CLOSED",
        bufferedCalls: 10,
        failedCalls: 0,
        failureRate: 0
      })
    }))

  it.effect("counts defects as failures", () =>
    Effect.gen(function*() {
      const { breaker } = yield* makeLogged()
      yield* Effect.replicateEffect(Effect.exit(breaker.run(Effect.die("boom"), isServerError)), 5)
      expect((yield* breaker.snapshot).state).toBe("OPEN")
    }))

  it.effect("OPEN rejects immediately without running the effect", () =>
    Effect.gen(function*() {
      const { breaker } = yield* opened
      const runs = yield* Ref.make(0)
      yield* TestClock.adjust("10 seconds")
      const exit = yield* Effect.exit(breaker.run(Ref.update(runs, (n) => n + 1), () => true))
      expect(exit).toStrictEqual(Exit.fail(new CircuitOpenError({ name: "openai", retryInMs: 20_000 })))
      expect(yield* Ref.get(runs)).toBe(0)
      yield* TestClock.adjust("19999 millis")
      yield* Effect.exit(breaker.run(Ref.update(runs, (n) => n + 1), () => true))
      expect(yield* Ref.get(runs)).toBe(0)
      expect(yield* breaker.snapshot).toMatchObject({ state: "OPEN", rejectedCalls: 2 })
    }))

  it.effect("after the wait the next call is a HALF_OPEN probe, and probes are limited", () =>
    Effect.gen(function*() {
      const { breaker, log } = yield* opened
      yield* TestClock.adjust("30 seconds")
      // Time alone does not transition; the next call does.
      expect((yield* breaker.snapshot).state).toBe("OPEN")
      const gate = yield* Deferred.make<void>()
      const started = yield* Ref.make(0)
      const held = Effect.zipRight(Ref.update(started, (n) => n + 1), Effect.as(Deferred.await(gate), "probe"))
      const p1 = yield* Effect.fork(breaker.run(held, isServerError))
      const p2 = yield* Effect.fork(breaker.run(held, isServerError))
      yield* waitUntil(Effect.map(Ref.get(started), (n) => n === 2))
      expect((yield* breaker.snapshot).state).toBe("HALF_OPEN")
      const runs = yield* Ref.make(0)
      const third = yield* Effect.exit(breaker.run(Ref.update(runs, (n) => n + 1), isServerError))
      expect(third).toStrictEqual(Exit.fail(new CircuitOpenError({ name: "openai", retryInMs: 0 })))
      expect(yield* Ref.get(runs)).toBe(0)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(p1)).toBe("probe")
      expect(yield* Fiber.join(p2)).toBe("probe")
      // Both probes succeeded: CLOSED with a fresh window.
      expect(yield* breaker.snapshot).toMatchObject({ state: "CLOSED", bufferedCalls: 0, failedCalls: 0 })
      expect((yield* Ref.get(log)).map((t) => [t.from, t.to, t.at])).toStrictEqual([
        ["CLOSED", "OPEN", 0],
        ["OPEN", "HALF_OPEN", 30_000],
        ["HALF_OPEN", "CLOSED", 30_000]
      ])
      // The fresh window needs the minimum again before it can open.
      yield* callN(breaker, 4, serverError)
      expect((yield* breaker.snapshot).state).toBe("CLOSED")
    }))

  it.effect("a failing probe (rate at threshold) re-opens with a new wait", () =>
    Effect.gen(function*() {
      const { breaker, log } = yield* opened
      yield* TestClock.adjust("30 seconds")
      yield* callN(breaker, 1, ok)
      expect((yield* breaker.snapshot).state).toBe("HALF_OPEN")
      yield* TestClock.adjust("1 second")
      yield* callN(breaker, 1, serverError)
      expect(yield* breaker.snapshot).toMatchObject({ state: "OPEN", lastTransitionAt: 31_000 })
      expect((yield* Ref.get(log)).at(-1)).toStrictEqual({
        name: "openai",
        from: "HALF_OPEN",
        to: "OPEN",
        at: 31_000,
        failureRate: 50
      })
      const rejected = yield* Effect.exit(breaker.run(ok, isServerError))
      expect(rejected).toStrictEqual(Exit.fail(new CircuitOpenError({ name: "openai", retryInMs: 30_000 })))
    }))

  it.effect("an interrupted probe releases its permit and is not recorded", () =>
    Effect.gen(function*() {
      const { breaker } = yield* opened
      yield* TestClock.adjust("30 seconds")
      const started = yield* Ref.make(0)
      const hang = Effect.zipRight(Ref.update(started, (n) => n + 1), Effect.never)
      const p1 = yield* Effect.fork(breaker.run(hang, isServerError))
      const p2 = yield* Effect.fork(breaker.run(hang, isServerError))
      yield* waitUntil(Effect.map(Ref.get(started), (n) => n === 2))
      expect(Either.isLeft(yield* Effect.either(breaker.run(ok, isServerError)))).toBe(true)
      yield* Fiber.interrupt(p1)
      expect(yield* breaker.snapshot).toMatchObject({ state: "HALF_OPEN", bufferedCalls: 0 })
      // The freed permit admits a new probe.
      expect(yield* breaker.run(ok, isServerError)).toBe("ok")
      yield* Fiber.interrupt(p2)
      expect(yield* breaker.run(ok, isServerError)).toBe("ok")
      expect((yield* breaker.snapshot).state).toBe("CLOSED")
    }))

  it.effect("100 concurrent calls keep exact counters", () =>
    Effect.gen(function*() {
      const { breaker } = yield* makeLogged({ ...config, slidingWindowSize: 200, minimumNumberOfCalls: 200 })
      const gate = yield* Deferred.make<void>()
      const started = yield* Ref.make(0)
      const fiber = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          (i) =>
            Effect.either(
              breaker.run(
                Ref.update(started, (n) => n + 1).pipe(
                  Effect.zipRight(Deferred.await(gate)),
                  Effect.zipRight(i % 10 < 3 ? serverError : ok)
                ),
                isServerError
              )
            ),
          { concurrency: "unbounded" }
        )
      )
      yield* waitUntil(Effect.map(Ref.get(started), (n) => n === 100))
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Fiber.join(fiber)
      expect(results.filter(Either.isLeft).length).toBe(30)
      expect(yield* breaker.snapshot).toMatchObject({
        state: "CLOSED",
        bufferedCalls: 100,
        failedCalls: 30,
        failureRate: 30,
        rejectedCalls: 0
      })
    }))

  it.effect("100 concurrent failures open the breaker exactly once", () =>
    Effect.gen(function*() {
      const { breaker, log } = yield* makeLogged({ ...config, slidingWindowSize: 10, minimumNumberOfCalls: 10 })
      const gate = yield* Deferred.make<void>()
      const started = yield* Ref.make(0)
      const call = Ref.update(started, (n) => n + 1).pipe(
        Effect.zipRight(Deferred.await(gate)),
        Effect.zipRight(serverError)
      )
      const fiber = yield* Effect.fork(
        Effect.all(
          Array.from({ length: 100 }, () => Effect.either(breaker.run(call, isServerError))),
          { concurrency: "unbounded" }
        )
      )
      // All 100 admitted while CLOSED before any completes.
      yield* waitUntil(Effect.map(Ref.get(started), (n) => n === 100))
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(fiber)
      // Calls admitted while CLOSED but finishing after it opened are stale:
      // they do not refill the window or cause extra transitions.
      expect((yield* Ref.get(log)).map((t) => t.to)).toStrictEqual(["OPEN"])
      expect(yield* breaker.snapshot).toMatchObject({ state: "OPEN", transitions: 1, bufferedCalls: 10 })
    }))

  it.effect("HALF_OPEN admits exactly the permitted probes out of 100 concurrent callers", () =>
    Effect.gen(function*() {
      const { breaker } = yield* makeLogged({ ...config, permittedNumberOfCallsInHalfOpenState: 5 })
      yield* callN(breaker, 5, serverError)
      yield* TestClock.adjust("30 seconds")
      const gate = yield* Deferred.make<void>()
      const runs = yield* Ref.make(0)
      const fiber = yield* Effect.fork(
        Effect.all(
          Array.from({ length: 100 }, () =>
            Effect.either(
              breaker.run(
                Effect.zipRight(Ref.update(runs, (n) => n + 1), Effect.as(Deferred.await(gate), "ok")),
                isServerError
              )
            )),
          { concurrency: "unbounded" }
        )
      )
      // Every caller has been either admitted or rejected before probes finish.
      yield* waitUntil(
        Effect.zipWith(Ref.get(runs), breaker.snapshot, (r, snap) => r + snap.rejectedCalls === 100)
      )
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Fiber.join(fiber)
      expect(yield* Ref.get(runs)).toBe(5)
      expect(results.filter(Either.isRight).length).toBe(5)
      expect(results.filter(Either.isLeft).every((r) => r.left._tag === "CircuitOpenError")).toBe(true)
      expect(yield* breaker.snapshot).toMatchObject({ state: "CLOSED", rejectedCalls: 95, transitions: 3 })
    }))

  it.effect("a failing transition callback does not break the breaker", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make(config, () => Effect.die("observer bug"))
      yield* callN(breaker, 5, serverError)
      expect((yield* breaker.snapshot).state).toBe("OPEN")
    }))

  it.effect("a slow call admitted before the breaker opened is not counted as a probe", () =>
    Effect.gen(function*() {
      const { breaker } = yield* makeLogged()
      const gate = yield* Deferred.make<void>()
      const started = yield* Ref.make(false)
      const slow = yield* Effect.fork(
        Effect.either(
          breaker.run(
            Ref.set(started, true).pipe(Effect.zipRight(Deferred.await(gate)), Effect.zipRight(serverError)),
            isServerError
          )
        )
      )
      yield* waitUntil(Ref.get(started))
      yield* callN(breaker, 5, serverError)
      yield* TestClock.adjust("30 seconds")
      yield* callN(breaker, 1, ok)
      expect((yield* breaker.snapshot).state).toBe("HALF_OPEN")
      // The stale failure lands while HALF_OPEN and must be ignored...
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(slow)
      expect(yield* breaker.snapshot).toMatchObject({ state: "HALF_OPEN", bufferedCalls: 1, failedCalls: 0 })
      // ...so the second successful probe closes the breaker.
      yield* callN(breaker, 1, ok)
      expect((yield* breaker.snapshot).state).toBe("CLOSED")
    }))
})
