import { describe, expect, it } from "@effect/vitest"
import { Clock, Data, Duration, Effect, Exit, Fiber, Option, Random, Ref, TestClock } from "effect"
import * as Deadline from "../../src/Resilience/Deadline.js"
import { DeadlineExceeded } from "../../src/Resilience/Errors.js"
import { type AttemptInfo, backoffDelay, retry } from "../../src/Resilience/Retry.js"

class Upstream extends Data.TaggedError("Upstream")<{
  readonly attempt: number
  readonly retryable: boolean
  readonly retryAfterMs?: number
}> {}

const policy = (deadline: Deadline.Deadline, overrides: { maxAttempts?: number } = {}) => ({
  maxAttempts: overrides.maxAttempts ?? 5,
  baseDelay: Duration.millis(100),
  maxDelay: Duration.seconds(1),
  isRetryable: (e: Upstream) => e.retryable,
  retryAfter: (e: Upstream) =>
    e.retryAfterMs === undefined ? Option.none() : Option.some(Duration.millis(e.retryAfterMs)),
  deadline
})

/** An attempt function that fails with `errors[n-1]` and then succeeds. */
const scripted = (calls: Ref.Ref<Array<number>>, failures: ReadonlyArray<(n: number) => Upstream>) =>
(n: number): Effect.Effect<string, Upstream> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.zipRight(
      Ref.update(calls, (xs) => [...xs, now]),
      Effect.suspend(() => {
        const failure = failures[n - 1]
        return failure === undefined ? Effect.succeed(`ok@${n}`) : Effect.fail(failure(n))
      })
    ))

const transient = (attempt: number) => new Upstream({ attempt, retryable: true })
const fatal = (attempt: number) => new Upstream({ attempt, retryable: false })

describe("backoffDelay", () => {
  it.effect("draws from [0, min(cap, base * 2^(n-1))]", () =>
    Effect.gen(function*() {
      const at = (r: number, n: number) =>
        backoffDelay(n, "100 millis", "1 second").pipe(
          Effect.map(Duration.toMillis),
          Effect.withRandom(Random.fixed([r]))
        )
      expect(yield* at(0, 1)).toBe(0)
      expect(yield* at(1, 1)).toBe(100)
      expect(yield* at(1, 2)).toBe(200)
      expect(yield* at(1, 3)).toBe(400)
      expect(yield* at(0.5, 3)).toBe(200)
      // Capped at maxDelay from attempt 5 on (100 * 16 > 1000), also for absurd attempt numbers.
      expect(yield* at(1, 5)).toBe(1000)
      expect(yield* at(1, 5000)).toBe(1000)
    }))

  it.effect("stays within bounds for a seeded Random", () =>
    Effect.gen(function*() {
      const draws: Array<[number, number]> = []
      for (let n = 1; n <= 8; n++) {
        for (let i = 0; i < 50; i++) {
          draws.push([n, Duration.toMillis(yield* backoffDelay(n, "100 millis", "1 second"))])
        }
      }
      for (const [n, d] of draws) {
        expect(d).toBeGreaterThanOrEqual(0)
        expect(d).toBeLessThanOrEqual(Math.min(1000, 100 * 2 ** (n - 1)))
        expect(Number.isInteger(d)).toBe(true)
      }
      // Actually jittered, not constant.
      expect(new Set(draws.map(([, d]) => d)).size).toBeGreaterThan(20)
    }).pipe(Effect.withRandom(Random.make("parley-seed"))))
})

describe("retry", () => {
  it.effect("retries transient errors with jittered backoff and succeeds", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make<Array<number>>([])
      const infos = yield* Ref.make<Array<AttemptInfo<Upstream>>>([])
      const deadline = yield* Deadline.make("30 seconds")
      const fiber = yield* retry(scripted(calls, [transient, transient]), {
        ...policy(deadline),
        onAttempt: (info) => Ref.update(infos, (xs) => [...xs, info])
      }).pipe(Effect.withRandom(Random.fixed([0.5])), Effect.fork)
      // Random 0.5: attempt 1 ceiling 100 -> 50ms, attempt 2 ceiling 200 -> 100ms.
      yield* TestClock.adjust("49 millis")
      expect((yield* Ref.get(calls)).length).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect((yield* Ref.get(calls)).length).toBe(2)
      yield* TestClock.adjust("100 millis")
      expect(yield* Fiber.join(fiber)).toBe("ok@3")
      expect(yield* Ref.get(calls)).toStrictEqual([0, 50, 150])
      const reported = (yield* Ref.get(infos)).map((i) => ({
        attempt: i.attempt,
        outcome: i.outcome,
        next: i.nextDelay === undefined ? undefined : Duration.toMillis(i.nextDelay)
      }))
      expect(reported).toStrictEqual([
        { attempt: 1, outcome: "failure", next: 50 },
        { attempt: 2, outcome: "failure", next: 100 },
        { attempt: 3, outcome: "success", next: undefined }
      ])
    }))

  it.effect("does not retry a non-retryable error", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make<Array<number>>([])
      const deadline = yield* Deadline.make("30 seconds")
      const exit = yield* Effect.exit(retry(scripted(calls, [fatal, transient]), policy(deadline)))
      expect(exit).toStrictEqual(Exit.fail(fatal(1)))
      expect((yield* Ref.get(calls)).length).toBe(1)
    }))

  it.effect("makes at most maxAttempts attempts and fails with the last error", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make<Array<number>>([])
      const deadline = yield* Deadline.make("30 seconds")
      const fiber = yield* retry(
        scripted(calls, Array.from({ length: 10 }, () => transient)),
        policy(deadline, { maxAttempts: 3 })
      ).pipe(Effect.withRandom(Random.fixed([1])), Effect.fork)
      yield* TestClock.adjust("10 seconds")
      const exit = yield* Fiber.await(fiber)
      expect(exit).toStrictEqual(Exit.fail(transient(3)))
      // Random 1 means the full ceiling: 100ms then 200ms.
      expect(yield* Ref.get(calls)).toStrictEqual([0, 100, 300])
    }))

  it.effect("honours Retry-After exactly instead of the jitter", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make<Array<number>>([])
      const deadline = yield* Deadline.make("30 seconds")
      const throttled = (attempt: number) => new Upstream({ attempt, retryable: true, retryAfterMs: 5000 })
      const fiber = yield* retry(scripted(calls, [throttled]), policy(deadline)).pipe(
        Effect.withRandom(Random.fixed([0])),
        Effect.fork
      )
      yield* TestClock.adjust("4999 millis")
      // Not before the server said so, even though the jitter would have been 0.
      expect((yield* Ref.get(calls)).length).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(fiber)).toBe("ok@2")
      expect(yield* Ref.get(calls)).toStrictEqual([0, 5000])
    }))

  it.effect("caps the backoff at maxDelay", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make<Array<number>>([])
      const deadline = yield* Deadline.make("1 minute")
      const fiber = yield* retry(scripted(calls, Array.from({ length: 6 }, () => transient)), {
        ...policy(deadline, { maxAttempts: 7 }),
        baseDelay: Duration.millis(300)
      }).pipe(Effect.withRandom(Random.fixed([1])), Effect.fork)
      yield* TestClock.adjust("1 minute")
      expect(yield* Fiber.join(fiber)).toBe("ok@7")
      const times = yield* Ref.get(calls)
      const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0))
      // 300, 600, then the 1s cap instead of 1200, 2400, ...
      expect(gaps).toStrictEqual([300, 600, 1000, 1000, 1000, 1000])
    }))

  it.effect("stops with the last real error when the next wait would pass the deadline", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make<Array<number>>([])
      const infos = yield* Ref.make<Array<AttemptInfo<Upstream>>>([])
      const deadline = yield* Deadline.make("3 seconds")
      const throttled = (attempt: number) => new Upstream({ attempt, retryable: true, retryAfterMs: 3000 })
      // No clock adjustment: giving up must not sleep first.
      const exit = yield* Effect.exit(
        retry(scripted(calls, [throttled]), {
          ...policy(deadline),
          onAttempt: (info) => Ref.update(infos, (xs) => [...xs, info])
        })
      )
      expect(exit).toStrictEqual(Exit.fail(throttled(1)))
      expect((yield* Ref.get(calls)).length).toBe(1)
      const [info] = yield* Ref.get(infos)
      expect(info?.outcome).toBe("failure")
      expect(info?.nextDelay).toBeUndefined()
      expect(info?.error).toStrictEqual(throttled(1))
    }))

  it.effect("the deadline covers the backoff sleeps across attempts", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make<Array<number>>([])
      const deadline = yield* Deadline.make("1 second")
      const fiber = yield* retry(
        scripted(calls, Array.from({ length: 10 }, () => transient)),
        { ...policy(deadline, { maxAttempts: 10 }), baseDelay: Duration.millis(400), maxDelay: Duration.seconds(10) }
      ).pipe(Effect.withRandom(Random.fixed([1])), Effect.fork)
      yield* TestClock.adjust("1 minute")
      // Waits 400 (ends at 400 < 1000), then 800 would end at 1200 > 1000: stop.
      expect(yield* Fiber.await(fiber)).toStrictEqual(Exit.fail(transient(2)))
      expect(yield* Ref.get(calls)).toStrictEqual([0, 400])
    }))

  it.effect("fails with DeadlineExceeded when the budget runs out during an attempt", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const infos = yield* Ref.make<Array<AttemptInfo<Upstream>>>([])
      const deadline = yield* Deadline.make("2 seconds")
      const fiber = yield* retry(
        (n) =>
          Effect.zipRight(
            Ref.update(attempts, (x) => x + 1),
            n === 1 ? Effect.fail(transient(n)) : Effect.never
          ),
        { ...policy(deadline), onAttempt: (info) => Ref.update(infos, (xs) => [...xs, info]) }
      ).pipe(Effect.withRandom(Random.fixed([1])), Effect.fork)
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.await(fiber)).toStrictEqual(Exit.fail(new DeadlineExceeded({ budgetMs: 2000 })))
      expect(yield* Ref.get(attempts)).toBe(2)
      expect((yield* Ref.get(infos)).map((i) => [i.attempt, i.outcome, i.error])).toStrictEqual([
        [1, "failure", transient(1)],
        [2, "failure", undefined]
      ])
    }))

  it.effect("does not retry defects", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const deadline = yield* Deadline.make("2 seconds")
      const exit = yield* Effect.exit(
        retry((_n) => Effect.zipRight(Ref.update(attempts, (x) => x + 1), Effect.die("boom")), policy(deadline))
      )
      expect(Exit.isFailure(exit) && exit.cause._tag === "Die").toBe(true)
      expect(yield* Ref.get(attempts)).toBe(1)
    }))
})
