/**
 * A request-wide time budget.
 *
 * One `Deadline` is created when a request arrives and is shared by every
 * attempt, backoff sleep, Retry-After wait and fallback made on its behalf,
 * so retries can never stretch a request past what the client was promised.
 * The expiry is an absolute instant read from Effect's `Clock`, which makes
 * the whole thing deterministic under `TestClock`.
 */
import { Clock, Context, Duration, Effect, Option } from "effect"
import { DeadlineExceeded } from "./Errors.js"

export { DeadlineExceeded } from "./Errors.js"

export interface Deadline {
  /** The budget the deadline was created with (kept for error messages). */
  readonly budgetMs: number
  /** Absolute expiry in epoch millis, as seen by `Clock`. */
  readonly expiresAt: number
}

/**
 * The deadline governing the current fiber, if any.
 *
 * Chosen as a Context tag rather than a FiberRef so that it is visible in
 * signatures when someone *requires* it, while deep code that merely wants to
 * respect a budget reads it with `current` / `currentRemaining`, which use
 * `Effect.serviceOption` and therefore add no requirement. `run` provides it.
 */
export class CurrentDeadline extends Context.Tag("Parley/Resilience/CurrentDeadline")<
  CurrentDeadline,
  Deadline
>() {}

/** Start a budget of `duration` from now. */
export const make = (duration: Duration.DurationInput): Effect.Effect<Deadline> =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const budgetMs = Math.max(0, Duration.toMillis(duration))
    return { budgetMs, expiresAt: now + budgetMs }
  })

/** Time left before `deadline` expires (never negative). */
export const remaining = (deadline: Deadline): Effect.Effect<Duration.Duration> =>
  Effect.map(Clock.currentTimeMillis, (now) => Duration.millis(Math.max(0, deadline.expiresAt - now)))

/** Millis left, for arithmetic in the other primitives. */
export const remainingMillis = (deadline: Deadline): Effect.Effect<number> =>
  Effect.map(Clock.currentTimeMillis, (now) => Math.max(0, deadline.expiresAt - now))

/** The earlier-expiring of two deadlines: nested budgets can only shrink. */
export const earliest = (a: Deadline, b: Deadline): Deadline => (b.expiresAt < a.expiresAt ? b : a)

/** The deadline in scope, if any; never requires the service. */
export const current: Effect.Effect<Option.Option<Deadline>> = Effect.serviceOption(CurrentDeadline)

/** Remaining budget of the deadline in scope, if any. */
export const currentRemaining: Effect.Effect<Option.Option<Duration.Duration>> = Effect.flatMap(
  current,
  Option.match({
    onNone: () => Effect.succeedNone,
    onSome: (deadline) => Effect.asSome(remaining(deadline))
  })
)

/**
 * Run `effect` within `deadline`.
 *
 * When the budget runs out the effect is interrupted (its finalizers run
 * before this returns, because `timeoutFail` awaits the loser) and the result
 * is `DeadlineExceeded`. An already-exhausted budget fails without starting
 * the effect at all. Inside, `CurrentDeadline` is the tighter of `deadline`
 * and any enclosing one.
 *
 * Nested inside a run whose deadline expires no later (a retry loop inside a
 * request's budget, say), no second timer is started: the enclosing one
 * already interrupts the effect at that instant, with the same error.
 */
export const run = <A, E, R>(
  deadline: Deadline,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | DeadlineExceeded, R> =>
  Effect.gen(function*() {
    const outer = yield* current
    const effective = Option.match(outer, { onNone: () => deadline, onSome: (o) => earliest(o, deadline) })
    const left = yield* remainingMillis(deadline)
    if (left <= 0) {
      return yield* new DeadlineExceeded({ budgetMs: deadline.budgetMs })
    }
    if (Option.isSome(outer) && outer.value.expiresAt <= deadline.expiresAt) {
      return yield* Effect.provideService(effect, CurrentDeadline, effective)
    }
    return yield* effect.pipe(
      Effect.provideService(CurrentDeadline, effective),
      Effect.timeoutFail({
        duration: Duration.millis(left),
        onTimeout: () => new DeadlineExceeded({ budgetMs: deadline.budgetMs })
      })
    )
  })
