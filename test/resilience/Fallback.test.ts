import { describe, expect, it } from "@effect/vitest"
import { Data, Effect, Exit, Ref } from "effect"
import { CircuitOpenError } from "../../src/Resilience/Errors.js"
import { firstSuccess } from "../../src/Resilience/Fallback.js"

class Upstream extends Data.TaggedError("Upstream")<{ readonly target: string; readonly retryable: boolean }> {}

type CallError = Upstream | CircuitOpenError

const shouldFallback = (e: CallError) => e._tag === "CircuitOpenError" || e.retryable

/** Targets whose behaviour is scripted by name; records every call. */
const harness = (behaviour: Record<string, "ok" | "retryable" | "fatal" | "open">) =>
  Effect.gen(function*() {
    const calls = yield* Ref.make<Array<[string, number]>>([])
    const run = (target: string, index: number): Effect.Effect<string, CallError> =>
      Effect.zipRight(
        Ref.update(calls, (xs): Array<[string, number]> => [...xs, [target, index]]),
        Effect.suspend((): Effect.Effect<string, CallError> => {
          switch (behaviour[target]) {
            case "ok":
              return Effect.succeed(`answer from ${target}`)
            case "retryable":
              return Effect.fail(new Upstream({ target, retryable: true }))
            case "open":
              return Effect.fail(new CircuitOpenError({ name: target, retryInMs: 1000 }))
            default:
              return Effect.fail(new Upstream({ target, retryable: false }))
          }
        })
      )
    return { calls, run }
  })

describe("firstSuccess", () => {
  it.effect("uses only the first target when it succeeds", () =>
    Effect.gen(function*() {
      const { calls, run } = yield* harness({ a: "ok", b: "ok" })
      expect(yield* firstSuccess(["a", "b"], run, shouldFallback)).toBe("answer from a")
      expect(yield* Ref.get(calls)).toStrictEqual([["a", 0]])
    }))

  it.effect("falls back to the second target on a retryable error", () =>
    Effect.gen(function*() {
      const { calls, run } = yield* harness({ a: "retryable", b: "ok" })
      expect(yield* firstSuccess(["a", "b"], run, shouldFallback)).toBe("answer from b")
      expect(yield* Ref.get(calls)).toStrictEqual([["a", 0], ["b", 1]])
    }))

  it.effect("falls back when the first target's circuit is open", () =>
    Effect.gen(function*() {
      const { run } = yield* harness({ a: "open", b: "ok" })
      expect(yield* firstSuccess(["a", "b"], run, shouldFallback)).toBe("answer from b")
    }))

  it.effect("does not fall back on a non-retryable error", () =>
    Effect.gen(function*() {
      const { calls, run } = yield* harness({ a: "fatal", b: "ok" })
      const exit = yield* Effect.exit(firstSuccess(["a", "b"], run, shouldFallback))
      expect(exit).toStrictEqual(Exit.fail(new Upstream({ target: "a", retryable: false })))
      expect(yield* Ref.get(calls)).toStrictEqual([["a", 0]])
    }))

  it.effect("stops at the first non-retryable error further down the list", () =>
    Effect.gen(function*() {
      const { calls, run } = yield* harness({ a: "retryable", b: "fatal", c: "ok" })
      const exit = yield* Effect.exit(firstSuccess(["a", "b", "c"], run, shouldFallback))
      expect(exit).toStrictEqual(Exit.fail(new Upstream({ target: "b", retryable: false })))
      expect((yield* Ref.get(calls)).map(([t]) => t)).toStrictEqual(["a", "b"])
    }))

  it.effect("fails with the last error when every target fails", () =>
    Effect.gen(function*() {
      const { calls, run } = yield* harness({ a: "retryable", b: "open", c: "retryable" })
      const exit = yield* Effect.exit(firstSuccess(["a", "b", "c"], run, shouldFallback))
      expect(exit).toStrictEqual(Exit.fail(new Upstream({ target: "c", retryable: true })))
      expect(yield* Ref.get(calls)).toStrictEqual([["a", 0], ["b", 1], ["c", 2]])
    }))

  it.effect("does not treat defects as a reason to fall back", () =>
    Effect.gen(function*() {
      const tried = yield* Ref.make<Array<number>>([])
      const exit = yield* Effect.exit(
        firstSuccess(
          [0, 1],
          (t) => Effect.zipRight(Ref.update(tried, (xs) => [...xs, t]), Effect.die("bug")),
          () => true
        )
      )
      expect(Exit.isFailure(exit)).toBe(true)
      expect(yield* Ref.get(tried)).toStrictEqual([0])
    }))
})
