/**
 * Timeouts for streamed responses (e.g. token streams from a model).
 *
 * A stream that has stalled still holds an upstream connection, so on
 * timeout these combinators interrupt the pending pull and fail the stream;
 * the scope that owns the upstream then closes, running its finalizers
 * (aborting the HTTP request, releasing a queue subscription, ...).
 *
 * Timing is per pull of a chunk: the elements of one chunk arrive together,
 * so the gap between chunks is the gap between elements.
 */
import { Chunk, Duration, Effect, Option, Ref, Stream } from "effect"

/**
 * Re-emit `stream`, applying `timeoutFor(firstSeen)` to each pull: `Some(d)`
 * bounds that pull by `d`, `None` leaves it unbounded. Pulls yielding an empty
 * chunk do not count as having seen an element.
 */
const withPullTimeout = <A, E, R, E2>(
  stream: Stream.Stream<A, E, R>,
  timeoutFor: (firstSeen: boolean) => Option.Option<Duration.Duration>,
  onTimeout: () => E2
): Stream.Stream<A, E | E2, R> =>
  Stream.unwrapScoped(
    Effect.gen(function*() {
      const pull = yield* Stream.toPull(stream)
      // Per materialisation of the stream, so re-running it starts afresh.
      const seen = yield* Ref.make(false)
      const timedPull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E | E2>, R> = Effect.gen(function*() {
        const firstSeen = yield* Ref.get(seen)
        const chunk = yield* Option.match(timeoutFor(firstSeen), {
          onNone: () => pull,
          onSome: (duration) =>
            Effect.timeoutFail(pull, { duration, onTimeout: () => Option.some<E | E2>(onTimeout()) })
        })
        if (!firstSeen && Chunk.isNonEmpty(chunk)) yield* Ref.set(seen, true)
        return chunk
      })
      return Stream.repeatEffectChunkOption(timedPull)
    })
  )

/**
 * Fail with `onTimeout()` if the first element does not arrive within
 * `duration`; after it, elements may take as long as they like (pair with
 * `idleTimeout` for that).
 */
export const firstItemTimeout = <A, E, R, E2>(
  stream: Stream.Stream<A, E, R>,
  duration: Duration.DurationInput,
  onTimeout: () => E2
): Stream.Stream<A, E | E2, R> => {
  const bound = Option.some(Duration.decode(duration))
  return withPullTimeout(stream, (firstSeen) => (firstSeen ? Option.none() : bound), onTimeout)
}

/**
 * Fail with `onTimeout()` if, once the first element has arrived, more than
 * `duration` passes without another element (or the end of the stream).
 * The wait for the first element is not bounded here: time-to-first-token is
 * a different budget, set with `firstItemTimeout`.
 */
export const idleTimeout = <A, E, R, E2>(
  stream: Stream.Stream<A, E, R>,
  duration: Duration.DurationInput,
  onTimeout: () => E2
): Stream.Stream<A, E | E2, R> => {
  const bound = Option.some(Duration.decode(duration))
  return withPullTimeout(stream, (firstSeen) => (firstSeen ? bound : Option.none()), onTimeout)
}
