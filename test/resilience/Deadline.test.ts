import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Option, Ref, TestClock } from "effect"
import * as Deadline from "../../src/Resilience/Deadline.js"
import { DeadlineExceeded } from "../../src/Resilience/Errors.js"

describe("Deadline", () => {
  it.effect("captures expiry from the Clock and counts down", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("1 second")
      const deadline = yield* Deadline.make("5 seconds")
      expect(deadline.budgetMs).toBe(5000)
      expect(deadline.expiresAt).toBe(6000)
      expect(Duration.toMillis(yield* Deadline.remaining(deadline))).toBe(5000)
      yield* TestClock.adjust("2 seconds")
      expect(Duration.toMillis(yield* Deadline.remaining(deadline))).toBe(3000)
      yield* TestClock.adjust("10 seconds")
      // Never negative.
      expect(Duration.toMillis(yield* Deadline.remaining(deadline))).toBe(0)
    }))

  it.effect("lets an effect that finishes in time through", () =>
    Effect.gen(function*() {
      const deadline = yield* Deadline.make("1 second")
      const fiber = yield* Effect.fork(Deadline.run(deadline, Effect.as(Effect.sleep("900 millis"), "done")))
      yield* TestClock.adjust("900 millis")
      expect(yield* Fiber.join(fiber)).toBe("done")
    }))

  it.effect("interrupts a hanging effect exactly at the budget and runs its finalizer", () =>
    Effect.gen(function*() {
      const finalized = yield* Ref.make(false)
      const started = yield* Deferred.make<void>()
      const hanging = Deferred.succeed(started, undefined).pipe(
        Effect.zipRight(Effect.never),
        Effect.ensuring(Ref.set(finalized, true))
      )
      const deadline = yield* Deadline.make("2 seconds")
      const fiber = yield* Effect.fork(Deadline.run(deadline, hanging))
      yield* Deferred.await(started)

      yield* TestClock.adjust("1999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      expect(yield* Ref.get(finalized)).toBe(false)

      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(fiber)
      expect(exit).toStrictEqual(Exit.fail(new DeadlineExceeded({ budgetMs: 2000 })))
      // timeoutFail awaits the interrupted effect, so cleanup is done by now.
      expect(yield* Ref.get(finalized)).toBe(true)
    }))

  it.effect("fails without starting the effect when the budget is already spent", () =>
    Effect.gen(function*() {
      const ran = yield* Ref.make(false)
      const deadline = yield* Deadline.make("100 millis")
      yield* TestClock.adjust("100 millis")
      const exit = yield* Effect.exit(Deadline.run(deadline, Ref.set(ran, true)))
      expect(exit).toStrictEqual(Exit.fail(new DeadlineExceeded({ budgetMs: 100 })))
      expect(yield* Ref.get(ran)).toBe(false)
    }))

  it.effect("exposes the budget to deep code through CurrentDeadline", () =>
    Effect.gen(function*() {
      expect(yield* Deadline.current).toStrictEqual(Option.none())
      const deadline = yield* Deadline.make("3 seconds")
      const seen = yield* Deadline.run(
        deadline,
        Effect.zipRight(Effect.sleep("1 second"), Deadline.currentRemaining)
      ).pipe(Effect.fork, Effect.tap(() => TestClock.adjust("1 second")), Effect.flatMap(Fiber.join))
      expect(Option.map(seen, Duration.toMillis)).toStrictEqual(Option.some(2000))
    }))

  it.effect("nested runs expose the tighter deadline", () =>
    Effect.gen(function*() {
      const outer = yield* Deadline.make("1 second")
      const inner = yield* Deadline.make("10 seconds")
      const seen = yield* Deadline.run(outer, Deadline.run(inner, Deadline.current))
      expect(seen).toStrictEqual(Option.some(outer))
      const tighter = yield* Deadline.make("500 millis")
      const seen2 = yield* Deadline.run(outer, Deadline.run(tighter, Deadline.current))
      expect(seen2).toStrictEqual(Option.some(tighter))
    }))
})
