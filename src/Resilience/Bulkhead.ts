/**
 * A bulkhead: at most `maxConcurrent` calls in flight, callers queue for at
 * most `maxWait`, then give up with `BulkheadFullError`.
 *
 * This is a small FIFO semaphore of its own rather than `Effect.Semaphore`
 * plus a timeout, for two reasons: the snapshot needs exact `inFlight` and
 * `waiting` figures, and a timeout racing a permit grant must never leak the
 * permit. Permits are handed directly from a finishing call to the oldest
 * waiter inside one atomic `Ref.modify`, so a waiter that times out or is
 * interrupted can tell, atomically, whether it already owns a permit and
 * must pass it on.
 */
import { Deferred, Duration, Effect, Option, Ref } from "effect"
import { BulkheadFullError } from "./Errors.js"

export { BulkheadFullError } from "./Errors.js"

export interface Config {
  readonly name: string
  readonly maxConcurrent: number
  readonly maxWait: Duration.DurationInput
}

export interface Snapshot {
  readonly name: string
  readonly maxConcurrent: number
  readonly inFlight: number
  readonly waiting: number
  /** Calls that gave up with BulkheadFullError over the bulkhead's lifetime. */
  readonly rejected: number
}

export interface Bulkhead {
  readonly name: string
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | BulkheadFullError, R>
  readonly snapshot: Effect.Effect<Snapshot>
}

interface State {
  readonly inFlight: number
  /** FIFO of parked callers; a waiter leaves it only by being granted or by giving up. */
  readonly waiters: ReadonlyArray<Deferred.Deferred<void>>
  readonly rejected: number
}

export const make = (config: Config): Effect.Effect<Bulkhead> =>
  Effect.gen(function*() {
    const maxConcurrent = Math.max(1, Math.floor(config.maxConcurrent))
    const maxWait = Duration.decode(config.maxWait)
    const ref = yield* Ref.make<State>({ inFlight: 0, waiters: [], rejected: 0 })

    // Give a permit back: hand it to the oldest waiter if there is one
    // (inFlight unchanged), otherwise return it to the pool.
    const release: Effect.Effect<void> = Effect.flatMap(
      Ref.modify(ref, (s): readonly [Option.Option<Deferred.Deferred<void>>, State] => {
        const [next, ...rest] = s.waiters
        return next === undefined
          ? [Option.none(), { ...s, inFlight: s.inFlight - 1 }]
          : [Option.some(next), { ...s, waiters: rest }]
      }),
      Option.match({ onNone: () => Effect.void, onSome: (d) => Deferred.succeed(d, undefined) })
    )

    // A waiter that stopped waiting (timeout or interruption). If it is still
    // queued it owns nothing; if it has already been dequeued the permit was
    // handed to it and must be passed on. Returns whether it owned one.
    const abandon = (d: Deferred.Deferred<void>): Effect.Effect<boolean> =>
      Effect.flatMap(
        Ref.modify(ref, (s): readonly [boolean, State] =>
          s.waiters.includes(d)
            ? [false, { ...s, waiters: s.waiters.filter((w) => w !== d) }]
            : [true, s]),
        (owned) => (owned ? Effect.as(release, true) : Effect.succeed(false))
      )

    const fullError = new BulkheadFullError({
      name: config.name,
      maxConcurrent,
      maxWaitMs: Duration.toMillis(maxWait)
    })

    const acquire = (
      restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>
    ): Effect.Effect<void, BulkheadFullError> =>
      Effect.gen(function*() {
        // The common case takes a permit without allocating a waiter.
        const free = yield* Ref.modify(ref, (s): readonly [boolean, State] =>
          s.inFlight < maxConcurrent ? [true, { ...s, inFlight: s.inFlight + 1 }] : [false, s])
        if (free) return
        const parked = yield* Deferred.make<void>()
        const immediate = yield* Ref.modify(ref, (s): readonly [boolean, State] =>
          s.inFlight < maxConcurrent
            ? [true, { ...s, inFlight: s.inFlight + 1 }]
            : [false, { ...s, waiters: [...s.waiters, parked] }])
        if (immediate) return
        const granted = yield* restore(Deferred.await(parked)).pipe(
          Effect.timeoutOption(maxWait),
          Effect.onInterrupt(() => abandon(parked))
        )
        if (Option.isSome(granted)) return
        // Timed out, but a grant may have raced the timer: keep it if so.
        const owned = yield* Ref.modify(ref, (s): readonly [boolean, State] =>
          s.waiters.includes(parked)
            ? [false, { ...s, waiters: s.waiters.filter((w) => w !== parked), rejected: s.rejected + 1 }]
            : [true, s])
        if (!owned) return yield* fullError
      })

    const run = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | BulkheadFullError, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(acquire(restore), Effect.ensuring(restore(effect), release))
      )

    const snapshot: Effect.Effect<Snapshot> = Effect.map(Ref.get(ref), (s) => ({
      name: config.name,
      maxConcurrent,
      inFlight: s.inFlight,
      waiting: s.waiters.length,
      rejected: s.rejected
    }))

    return { name: config.name, run, snapshot }
  })
