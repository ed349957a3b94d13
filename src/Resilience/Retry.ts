/**
 * Retry with full-jitter exponential backoff, bounded by a request Deadline.
 *
 * Written as an explicit loop instead of a `Schedule` because the decisions
 * depend on the error value (retryability, Retry-After) *and* on the shared
 * deadline, and because callers want a per-attempt report (`onAttempt`).
 */
import { Duration, Effect, Option, Random } from "effect"
import * as Deadline from "./Deadline.js"
import type { DeadlineExceeded } from "./Errors.js"

export interface AttemptInfo<E> {
  /** 1-based attempt number. */
  readonly attempt: number
  readonly outcome: "success" | "failure"
  /** The attempt's error; absent on success and when the deadline cut the attempt off. */
  readonly error?: E
  /** Present only when another attempt will follow after this wait. */
  readonly nextDelay?: Duration.Duration
}

export interface RetryOptions<E> {
  /** Total attempts including the first; values below 1 are treated as 1. */
  readonly maxAttempts: number
  readonly baseDelay: Duration.DurationInput
  /** Cap on the jittered backoff ceiling; must be finite. Does not cap Retry-After. */
  readonly maxDelay: Duration.DurationInput
  readonly isRetryable: (e: E) => boolean
  /** A server-specified wait (e.g. the Retry-After header) which replaces the jitter. */
  readonly retryAfter: (e: E) => Option.Option<Duration.Duration>
  readonly deadline: Deadline.Deadline
  readonly onAttempt?: (info: AttemptInfo<E>) => Effect.Effect<void>
}

/**
 * Full-jitter backoff: uniform whole millis in [0, min(cap, base * 2^(attempt-1))].
 *
 * Uses the `Random` service so tests can pin it. Full jitter (rather than
 * "equal" or none) spreads synchronized clients out the most after an outage.
 */
export const backoffDelay = (
  attempt: number,
  base: Duration.DurationInput,
  cap: Duration.DurationInput
): Effect.Effect<Duration.Duration> =>
  Effect.map(Random.next, (r) => {
    const exponent = Math.max(0, attempt - 1)
    // Clamp before multiplying out so huge attempt numbers cannot overflow to
    // Infinity (and Infinity * 0 to NaN).
    const ceiling = Math.min(
      Duration.toMillis(cap),
      Duration.toMillis(base) * Math.pow(2, Math.min(exponent, 1023)),
      Number.MAX_SAFE_INTEGER
    )
    const ceilingMs = Math.max(0, Math.floor(ceiling))
    // `Random.next` may return exactly 1 from a fixed Random, hence the min.
    return Duration.millis(Math.min(ceilingMs, Math.floor(r * (ceilingMs + 1))))
  })

const report = <E>(options: RetryOptions<E>, info: AttemptInfo<E>): Effect.Effect<void> =>
  options.onAttempt === undefined ? Effect.void : options.onAttempt(info)

/**
 * Run `attempt(1)`, `attempt(2)`, ... until one succeeds or retrying stops.
 *
 * Stops, failing with the attempt's own error, when: the error is not
 * retryable; `maxAttempts` is reached; or the next wait would end at or after
 * the deadline (an attempt starting at the deadline would have no budget, and
 * the real upstream error is more useful to the caller than a timeout).
 * Fails with `DeadlineExceeded` only when the budget runs out *during* an
 * attempt (the attempt is interrupted) or before the first one.
 * Defects are never retried.
 */
export const retry = <A, E, R>(
  attempt: (attemptNumber: number) => Effect.Effect<A, E, R>,
  options: RetryOptions<E>
): Effect.Effect<A, E | DeadlineExceeded, R> => {
  const maxAttempts = Math.max(1, Math.floor(options.maxAttempts))

  const loop = (n: number): Effect.Effect<A, E | DeadlineExceeded, R> =>
    Effect.matchEffect(Deadline.run(options.deadline, Effect.either(attempt(n))), {
      // Only DeadlineExceeded reaches here: the attempt's own errors were
      // moved into the success channel by `either` so the two stay apart.
      onFailure: (deadlineExceeded) =>
        Effect.zipRight(report(options, { attempt: n, outcome: "failure" }), Effect.fail(deadlineExceeded)),
      onSuccess: (result) => {
        if (result._tag === "Right") {
          return Effect.as(report(options, { attempt: n, outcome: "success" }), result.right)
        }
        const error = result.left
        const giveUp = Effect.zipRight(report(options, { attempt: n, outcome: "failure", error }), Effect.fail(error))
        if (n >= maxAttempts || !options.isRetryable(error)) {
          return giveUp
        }
        return Effect.gen(function*() {
          // The server's Retry-After is authoritative: waiting less is likely
          // to be refused again, and adding jitter on top only wastes budget.
          const delay = yield* Option.match(options.retryAfter(error), {
            onNone: () => backoffDelay(n, options.baseDelay, options.maxDelay),
            onSome: (d) => Effect.succeed(d)
          })
          const left = yield* Deadline.remainingMillis(options.deadline)
          if (Duration.toMillis(delay) >= left) {
            return yield* giveUp
          }
          yield* report(options, { attempt: n, outcome: "failure", error, nextDelay: delay })
          yield* Effect.sleep(delay)
          return yield* loop(n + 1)
        })
      }
    })

  return Effect.suspend(() => loop(1))
}
