/**
 * Ordered fallback across equivalent targets (e.g. provider/model pairs).
 *
 * Moving on is opt-in per error: only errors the caller classifies as
 * "another target might do better" (retryable, circuit open, bulkhead full)
 * advance; anything else (a bad request, a policy refusal) would fail the
 * same way everywhere, so it is returned at once. Time is bounded by the
 * caller's Deadline, not here.
 */
import { Array as Arr, Effect } from "effect"

/**
 * Try `run(targets[0], 0)`, then the next target while `shouldFallback`
 * approves the error. When every target fails, the last error is returned
 * (it is the most recent picture of the world). Defects and interruption are
 * never treated as a reason to fall back.
 */
export const firstSuccess = <T, A, E, R>(
  targets: Arr.NonEmptyReadonlyArray<T>,
  run: (target: T, index: number) => Effect.Effect<A, E, R>,
  shouldFallback: (e: E) => boolean
): Effect.Effect<A, E, R> => {
  const go = (target: T, index: number, rest: ReadonlyArray<T>): Effect.Effect<A, E, R> =>
    Effect.catchAll(run(target, index), (error) =>
      Arr.isNonEmptyReadonlyArray(rest) && shouldFallback(error)
        ? Effect.zipRight(
          Effect.annotateCurrentSpan("fallback.index", index + 1),
          go(Arr.headNonEmpty(rest), index + 1, Arr.tailNonEmpty(rest))
        )
        : Effect.fail(error))
  return go(Arr.headNonEmpty(targets), 0, Arr.tailNonEmpty(targets))
}
