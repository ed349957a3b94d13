import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Ref, TestClock } from "effect"
import * as Bulkhead from "../../src/Resilience/Bulkhead.js"
import { BulkheadFullError } from "../../src/Resilience/Errors.js"

const waitUntil = (cond: Effect.Effect<boolean>): Effect.Effect<void> =>
  Effect.flatMap(cond, (done) => (done ? Effect.void : Effect.zipRight(Effect.yieldNow(), waitUntil(cond))))

const config: Bulkhead.Config = { name: "anthropic", maxConcurrent: 2, maxWait: "1 second" }

/** Tracks current and peak concurrency of the calls it wraps. */
const tracker = Effect.gen(function*() {
  const current = yield* Ref.make(0)
  const peak = yield* Ref.make(0)
  const track = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.acquireUseRelease(
      Effect.flatMap(Ref.updateAndGet(current, (n) => n + 1), (n) => Ref.update(peak, (p) => Math.max(p, n))),
      () => effect,
      () => Ref.update(current, (n) => n - 1)
    )
  return { current, peak, track }
})

describe("Bulkhead", () => {
  it.effect("never runs more than maxConcurrent calls; the rest queue and then proceed", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ ...config, maxWait: "1 minute" })
      const { current, peak, track } = yield* tracker
      const gate = yield* Deferred.make<void>()
      const order = yield* Ref.make<Array<number>>([])
      const fiber = yield* Effect.fork(
        Effect.forEach(
          [1, 2, 3, 4, 5],
          (i) =>
            bulkhead.run(
              track(Effect.zipRight(Ref.update(order, (xs) => [...xs, i]), Deferred.await(gate)))
            ),
          { concurrency: "unbounded" }
        )
      )
      yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.waiting === 3))
      expect(yield* bulkhead.snapshot).toMatchObject({ inFlight: 2, waiting: 3, rejected: 0 })
      expect(yield* Ref.get(current)).toBe(2)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(fiber)
      expect(yield* Ref.get(peak)).toBe(2)
      expect([...(yield* Ref.get(order))].sort()).toStrictEqual([1, 2, 3, 4, 5])
      expect(yield* bulkhead.snapshot).toMatchObject({ inFlight: 0, waiting: 0, rejected: 0 })
    }))

  it.effect("hands permits to waiters first-in, first-out", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ ...config, maxConcurrent: 1, maxWait: "1 minute" })
      const gate = yield* Deferred.make<void>()
      const order = yield* Ref.make<Array<number>>([])
      const holder = yield* Effect.fork(bulkhead.run(Deferred.await(gate)))
      yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.inFlight === 1))
      const waiters: Array<Fiber.RuntimeFiber<void, BulkheadFullError>> = []
      for (const i of [1, 2, 3, 4]) {
        waiters.push(yield* Effect.fork(bulkhead.run(Ref.update(order, (xs) => [...xs, i]))))
        // Queue them in a known order.
        yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.waiting === i))
      }
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      yield* Fiber.joinAll(waiters)
      expect(yield* Ref.get(order)).toStrictEqual([1, 2, 3, 4])
    }))

  it.effect("fails an excess caller with BulkheadFullError after maxWait, without running it", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make(config)
      const gate = yield* Deferred.make<void>()
      const holders = yield* Effect.fork(
        Effect.all([bulkhead.run(Deferred.await(gate)), bulkhead.run(Deferred.await(gate))], {
          concurrency: "unbounded"
        })
      )
      yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.inFlight === 2))
      const ran = yield* Ref.make(false)
      const excess = yield* Effect.fork(bulkhead.run(Ref.set(ran, true)))
      yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.waiting === 1))
      yield* TestClock.adjust("999 millis")
      expect(excess.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.await(excess)).toStrictEqual(
        Exit.fail(new BulkheadFullError({ name: "anthropic", maxConcurrent: 2, maxWaitMs: 1000 }))
      )
      expect(yield* Ref.get(ran)).toBe(false)
      expect(yield* bulkhead.snapshot).toMatchObject({ inFlight: 2, waiting: 0, rejected: 1 })
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holders)
      expect((yield* bulkhead.snapshot).inFlight).toBe(0)
    }))

  it.effect("a waiter gets a permit freed within maxWait", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ ...config, maxConcurrent: 1 })
      const holder = yield* Effect.fork(bulkhead.run(Effect.sleep("500 millis")))
      yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.inFlight === 1))
      const waiter = yield* Effect.fork(bulkhead.run(Effect.succeed("got in")))
      yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.waiting === 1))
      yield* TestClock.adjust("500 millis")
      yield* Fiber.join(holder)
      expect(yield* Fiber.join(waiter)).toBe("got in")
      expect(yield* bulkhead.snapshot).toMatchObject({ inFlight: 0, waiting: 0, rejected: 0 })
    }))

  it.effect("releases the permit when the call fails or dies", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ ...config, maxConcurrent: 1, maxWait: "0 millis" })
      expect(yield* Effect.exit(bulkhead.run(Effect.fail("nope")))).toStrictEqual(Exit.fail("nope"))
      expect((yield* bulkhead.snapshot).inFlight).toBe(0)
      const died = yield* Effect.exit(bulkhead.run(Effect.die("boom")))
      expect(Exit.isFailure(died)).toBe(true)
      // With maxWait 0 a leaked permit would make this fail immediately.
      expect(yield* bulkhead.run(Effect.succeed(1))).toBe(1)
      expect(yield* bulkhead.snapshot).toMatchObject({ inFlight: 0, rejected: 0 })
    }))

  it.effect("releases the permit when a running call is interrupted", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ ...config, maxConcurrent: 1, maxWait: "0 millis" })
      const running = yield* Effect.fork(bulkhead.run(Effect.never))
      yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.inFlight === 1))
      yield* Fiber.interrupt(running)
      expect((yield* bulkhead.snapshot).inFlight).toBe(0)
      expect(yield* bulkhead.run(Effect.succeed("free"))).toBe("free")
    }))

  it.effect("an interrupted waiter leaves the queue and takes no permit", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ ...config, maxConcurrent: 1 })
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(bulkhead.run(Deferred.await(gate)))
      yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.inFlight === 1))
      const waiter = yield* Effect.fork(bulkhead.run(Effect.void))
      yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.waiting === 1))
      yield* Fiber.interrupt(waiter)
      expect(yield* bulkhead.snapshot).toMatchObject({ inFlight: 1, waiting: 0, rejected: 0 })
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      expect((yield* bulkhead.snapshot).inFlight).toBe(0)
    }))

  it.effect("keeps exact counts under 100 concurrent callers", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ name: "load", maxConcurrent: 7, maxWait: "1 minute" })
      const { peak, track } = yield* tracker
      const results = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          (i) => bulkhead.run(track(Effect.as(Effect.sleep(`${(i % 5) + 1} millis`), i))),
          { concurrency: "unbounded" }
        )
      )
      yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.inFlight + s.waiting === 100))
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(results)).length).toBe(100)
      expect(yield* Ref.get(peak)).toBe(7)
      expect(yield* bulkhead.snapshot).toMatchObject({ inFlight: 0, waiting: 0, rejected: 0 })
    }))

  it.effect("no permit leaks when a release and a waiter's timeout fall on the same instant", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ ...config, maxConcurrent: 1 })
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(bulkhead.run(Deferred.await(gate)))
      yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.inFlight === 1))
      const waiter = yield* Effect.fork(Effect.exit(bulkhead.run(Effect.succeed("in"))))
      yield* waitUntil(Effect.map(bulkhead.snapshot, (s) => s.waiting === 1))
      // Scheduled after the waiter's timer, for the same instant.
      yield* Effect.fork(Effect.zipRight(Effect.sleep("1 second"), Deferred.succeed(gate, undefined)))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(holder)
      // Whichever way the race went, the permit is back in the pool.
      const outcome = yield* Fiber.join(waiter)
      expect(Exit.isSuccess(outcome) || Exit.isFailure(outcome)).toBe(true)
      expect(yield* bulkhead.snapshot).toMatchObject({ inFlight: 0, waiting: 0 })
      expect(yield* bulkhead.run(Effect.succeed("after"))).toBe("after")
    }))
})
