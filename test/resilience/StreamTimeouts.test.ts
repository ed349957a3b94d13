import { describe, expect, it } from "@effect/vitest"
import { Chunk, Data, Effect, Exit, Fiber, Queue, Ref, Stream, TestClock } from "effect"
import { firstItemTimeout, idleTimeout } from "../../src/Resilience/StreamTimeouts.js"

class StreamStalled extends Data.TaggedError("StreamStalled")<{ readonly phase: "first" | "idle" }> {}

const waitUntil = (cond: Effect.Effect<boolean>): Effect.Effect<void> =>
  Effect.flatMap(cond, (done) => (done ? Effect.void : Effect.zipRight(Effect.yieldNow(), waitUntil(cond))))

/**
 * A token stream fed through a queue, standing in for an upstream HTTP body.
 * The stream records when its resource is released, and a producer fiber
 * scoped to the stream records when it is interrupted.
 */
const upstream = Effect.gen(function*() {
  const queue = yield* Queue.unbounded<string>()
  const released = yield* Ref.make(false)
  const producerInterrupted = yield* Ref.make(false)
  const stream = Stream.unwrapScoped(
    Effect.as(
      // Keeps running for as long as the stream is consumed.
      Effect.forkScoped(Effect.onInterrupt(Effect.never, () => Ref.set(producerInterrupted, true))),
      Stream.fromQueue(queue)
    )
  ).pipe(Stream.ensuring(Ref.set(released, true)))
  return { queue, released, producerInterrupted, stream }
})

/** Consume in the background, keeping every element seen. */
const consume = <E>(stream: Stream.Stream<string, E>) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make<Array<string>>([])
    const fiber = yield* Effect.fork(Stream.runForEach(stream, (s) => Ref.update(seen, (xs) => [...xs, s])))
    return { seen, fiber }
  })

const stalled = (phase: "first" | "idle") => () => new StreamStalled({ phase })

describe("firstItemTimeout", () => {
  it.effect("fails and releases the upstream when no element arrives in time", () =>
    Effect.gen(function*() {
      const up = yield* upstream
      const { fiber } = yield* consume(firstItemTimeout(up.stream, "5 seconds", stalled("first")))
      yield* TestClock.adjust("4999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.await(fiber)).toStrictEqual(Exit.fail(new StreamStalled({ phase: "first" })))
      expect(yield* Ref.get(up.released)).toBe(true)
      expect(yield* Ref.get(up.producerInterrupted)).toBe(true)
    }))

  it.effect("does not bound the gaps after the first element", () =>
    Effect.gen(function*() {
      const up = yield* upstream
      const { fiber, seen } = yield* consume(
        firstItemTimeout(up.stream, "5 seconds", stalled("first")).pipe(Stream.take(3))
      )
      yield* TestClock.adjust("4 seconds")
      yield* Queue.offer(up.queue, "a")
      yield* waitUntil(Effect.map(Ref.get(seen), (xs) => xs.length === 1))
      yield* TestClock.adjust("1 minute")
      yield* Queue.offerAll(up.queue, ["b", "c"])
      yield* Fiber.join(fiber)
      expect(yield* Ref.get(seen)).toStrictEqual(["a", "b", "c"])
      expect(yield* Ref.get(up.released)).toBe(true)
    }))

  it.effect("each run of the stream gets its own first-item budget", () =>
    Effect.gen(function*() {
      const guarded = firstItemTimeout(Stream.make("x"), "1 second", stalled("first"))
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(guarded))).toStrictEqual(["x"])
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(guarded))).toStrictEqual(["x"])
    }))
})

describe("idleTimeout", () => {
  it.effect("fails when the gap between elements exceeds the limit, after delivering the earlier ones", () =>
    Effect.gen(function*() {
      const up = yield* upstream
      const { fiber, seen } = yield* consume(idleTimeout(up.stream, "2 seconds", stalled("idle")))
      yield* Queue.offer(up.queue, "a")
      yield* waitUntil(Effect.map(Ref.get(seen), (xs) => xs.length === 1))
      yield* TestClock.adjust("1500 millis")
      yield* Queue.offer(up.queue, "b")
      yield* waitUntil(Effect.map(Ref.get(seen), (xs) => xs.length === 2))
      // The gap restarts at every element: 1.5s + 1.5s in total is fine.
      yield* TestClock.adjust("1999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.await(fiber)).toStrictEqual(Exit.fail(new StreamStalled({ phase: "idle" })))
      expect(yield* Ref.get(seen)).toStrictEqual(["a", "b"])
      expect(yield* Ref.get(up.released)).toBe(true)
      expect(yield* Ref.get(up.producerInterrupted)).toBe(true)
    }))

  it.effect("does not bound the wait for the first element", () =>
    Effect.gen(function*() {
      const up = yield* upstream
      const { fiber, seen } = yield* consume(idleTimeout(up.stream, "2 seconds", stalled("idle")).pipe(Stream.take(2)))
      yield* TestClock.adjust("1 minute")
      expect(fiber.unsafePoll()).toBeNull()
      yield* Queue.offerAll(up.queue, ["a", "b"])
      yield* Fiber.join(fiber)
      expect(yield* Ref.get(seen)).toStrictEqual(["a", "b"])
    }))

  it.effect("combines with firstItemTimeout for time-to-first-token plus inter-token limits", () =>
    Effect.gen(function*() {
      const up = yield* upstream
      const guarded = up.stream.pipe(
        (s) => firstItemTimeout(s, "10 seconds", stalled("first")),
        (s) => idleTimeout(s, "1 second", stalled("idle"))
      )
      const { fiber, seen } = yield* consume(guarded)
      yield* TestClock.adjust("9 seconds")
      yield* Queue.offer(up.queue, "a")
      yield* waitUntil(Effect.map(Ref.get(seen), (xs) => xs.length === 1))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.await(fiber)).toStrictEqual(Exit.fail(new StreamStalled({ phase: "idle" })))
      expect(yield* Ref.get(up.released)).toBe(true)
    }))

  it.effect("passes upstream errors through unchanged", () =>
    Effect.gen(function*() {
      const failing = Stream.concat(Stream.make("a"), Stream.fail("upstream broke" as const))
      const exit = yield* Effect.exit(Stream.runCollect(idleTimeout(failing, "1 second", stalled("idle"))))
      expect(exit).toStrictEqual(Exit.fail("upstream broke"))
    }))
})
