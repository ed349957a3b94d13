/**
 * A count-based circuit breaker with resilience4j semantics.
 *
 * All state lives in one `Ref` and every decision (admit / reject / record /
 * transition) is a single pure `Ref.modify`, so any number of fibers may call
 * `run` concurrently without a lock and without lost updates. Side effects
 * (the transition callback) happen after the atomic update, so a slow
 * callback never holds up calls.
 */
import { Cause, Chunk, Clock, Duration, Effect, Exit, Ref } from "effect"
import { CircuitOpenError } from "./Errors.js"

export { CircuitOpenError } from "./Errors.js"

export type State = "CLOSED" | "OPEN" | "HALF_OPEN"

export interface Config {
  readonly name: string
  /** Count-based window: the outcomes of the last N recorded calls. */
  readonly slidingWindowSize: number
  /** No verdict until this many calls are in the window (capped at the window size). */
  readonly minimumNumberOfCalls: number
  /** Percent, 0..100; the breaker opens when the failure rate is at or above it. */
  readonly failureRateThreshold: number
  readonly waitDurationInOpenState: Duration.DurationInput
  readonly permittedNumberOfCallsInHalfOpenState: number
}

export interface Transition {
  readonly name: string
  readonly from: State
  readonly to: State
  /** Epoch millis from `Clock`. */
  readonly at: number
  /** Failure rate (percent) of the calls that caused the transition; 0 when none. */
  readonly failureRate: number
}

export interface Snapshot {
  readonly name: string
  readonly state: State
  /** Percent over `bufferedCalls` (the window; the probes when half-open). */
  readonly failureRate: number
  readonly bufferedCalls: number
  readonly failedCalls: number
  /** Calls refused with CircuitOpenError over the breaker's lifetime. */
  readonly rejectedCalls: number
  readonly transitions: number
  readonly lastTransitionAt: number | null
}

export interface CircuitBreaker {
  readonly name: string
  /**
   * Run `effect` through the breaker. A typed error counts as a failure only
   * when `isFailure` says so (client errors such as a 400 must not trip the
   * breaker); defects always count; interruption releases the permit and is
   * not recorded.
   */
  readonly run: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    isFailure: (e: E) => boolean
  ) => Effect.Effect<A, E | CircuitOpenError, R>
  readonly snapshot: Effect.Effect<Snapshot>
}

// Outcomes are booleans: true = failure. The window is oldest-first.
type Phase =
  | { readonly _tag: "CLOSED"; readonly window: ReadonlyArray<boolean> }
  | { readonly _tag: "OPEN"; readonly openedAt: number; readonly window: ReadonlyArray<boolean> }
  | {
    readonly _tag: "HALF_OPEN"
    /** Probes admitted and not released; finished probes stay counted. */
    readonly issued: number
    readonly outcomes: ReadonlyArray<boolean>
  }

interface BreakerState {
  readonly phase: Phase
  /**
   * Bumped on every transition. A call records its outcome only if the
   * epoch it was admitted in is still current, so a slow call admitted while
   * CLOSED cannot pollute the probes of a later HALF_OPEN (or a fresh window).
   */
  readonly epoch: number
  readonly rejected: number
  readonly transitions: number
  readonly lastTransitionAt: number | null
}

const failureRateOf = (outcomes: ReadonlyArray<boolean>): number => {
  if (outcomes.length === 0) return 0
  let failed = 0
  for (const o of outcomes) if (o) failed++
  return (failed / outcomes.length) * 100
}

const countFailures = (outcomes: ReadonlyArray<boolean>): number => outcomes.filter((o) => o).length

type Admission =
  | { readonly _tag: "Admitted"; readonly epoch: number }
  | { readonly _tag: "Rejected"; readonly retryInMs: number }

export const make = (
  config: Config,
  onTransition?: (t: Transition) => Effect.Effect<void>
): Effect.Effect<CircuitBreaker> =>
  Effect.gen(function*() {
    const windowSize = Math.max(1, Math.floor(config.slidingWindowSize))
    // As in resilience4j: a minimum above the window size could never be met.
    const minimumCalls = Math.max(1, Math.min(windowSize, Math.floor(config.minimumNumberOfCalls)))
    const permitted = Math.max(1, Math.floor(config.permittedNumberOfCallsInHalfOpenState))
    const waitMs = Duration.toMillis(config.waitDurationInOpenState)
    const threshold = config.failureRateThreshold

    const ref = yield* Ref.make<BreakerState>({
      phase: { _tag: "CLOSED", window: [] },
      epoch: 0,
      rejected: 0,
      transitions: 0,
      lastTransitionAt: null
    })

    const transition = (
      s: BreakerState,
      phase: Phase,
      now: number,
      failureRate: number,
      out: Array<Transition>
    ): BreakerState => {
      out.push({ name: config.name, from: s.phase._tag, to: phase._tag, at: now, failureRate })
      return {
        ...s,
        phase,
        epoch: s.epoch + 1,
        transitions: s.transitions + 1,
        lastTransitionAt: now
      }
    }

    const emit = (ts: ReadonlyArray<Transition>): Effect.Effect<void> =>
      onTransition === undefined || ts.length === 0
        ? Effect.void
        : Effect.forEach(ts, (t) =>
          // A broken observer must not break the breaker.
          Effect.catchAllCause(onTransition(t), (cause) =>
            Effect.logWarning("circuit breaker transition callback failed", cause)), { discard: true })

    const admit = (now: number) => (s: BreakerState): readonly [Admission, BreakerState, Array<Transition>] => {
      const out: Array<Transition> = []
      const phase = s.phase
      switch (phase._tag) {
        case "CLOSED":
          return [{ _tag: "Admitted", epoch: s.epoch }, s, out]
        case "OPEN": {
          const readyAt = phase.openedAt + waitMs
          if (now < readyAt) {
            return [{ _tag: "Rejected", retryInMs: readyAt - now }, { ...s, rejected: s.rejected + 1 }, out]
          }
          // The wait is over: this very call becomes the first probe.
          const next = transition(s, { _tag: "HALF_OPEN", issued: 1, outcomes: [] }, now, failureRateOf(phase.window), out)
          return [{ _tag: "Admitted", epoch: next.epoch }, next, out]
        }
        case "HALF_OPEN": {
          if (phase.issued >= permitted) {
            return [{ _tag: "Rejected", retryInMs: 0 }, { ...s, rejected: s.rejected + 1 }, out]
          }
          return [{ _tag: "Admitted", epoch: s.epoch }, { ...s, phase: { ...phase, issued: phase.issued + 1 } }, out]
        }
      }
    }

    const record = (epoch: number, failed: boolean, now: number) =>
    (s: BreakerState): readonly [ReadonlyArray<Transition>, BreakerState] => {
      const out: Array<Transition> = []
      if (epoch !== s.epoch) return [out, s]
      const phase = s.phase
      switch (phase._tag) {
        case "CLOSED": {
          const window = [...phase.window, failed].slice(-windowSize)
          const rate = failureRateOf(window)
          if (window.length >= minimumCalls && rate >= threshold) {
            return [out, transition(s, { _tag: "OPEN", openedAt: now, window }, now, rate, out)]
          }
          return [out, { ...s, phase: { _tag: "CLOSED", window } }]
        }
        case "OPEN":
          // Unreachable with epochs (OPEN admits nothing), kept for totality.
          return [out, s]
        case "HALF_OPEN": {
          const outcomes = [...phase.outcomes, failed]
          if (outcomes.length < permitted) {
            return [out, { ...s, phase: { ...phase, outcomes } }]
          }
          const rate = failureRateOf(outcomes)
          const next: Phase = rate >= threshold
            ? { _tag: "OPEN", openedAt: now, window: outcomes }
            : { _tag: "CLOSED", window: [] }
          return [out, transition(s, next, now, rate, out)]
        }
      }
    }

    // Interrupted calls give their half-open permit back and leave no trace.
    const release = (epoch: number) => (s: BreakerState): BreakerState =>
      epoch === s.epoch && s.phase._tag === "HALF_OPEN"
        ? { ...s, phase: { ...s.phase, issued: Math.max(0, s.phase.issued - 1) } }
        : s

    const complete = <A, E>(
      epoch: number,
      exit: Exit.Exit<A, E>,
      isFailure: (e: E) => boolean
    ): Effect.Effect<void> => {
      if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) {
        return Ref.update(ref, release(epoch))
      }
      const failed = Exit.match(exit, {
        onSuccess: () => false,
        onFailure: (cause) =>
          Cause.isDie(cause) || Chunk.some(Cause.failures(cause), isFailure)
      })
      return Clock.currentTimeMillis.pipe(
        Effect.flatMap((now) => Ref.modify(ref, record(epoch, failed, now))),
        Effect.flatMap(emit)
      )
    }

    const run = <A, E, R>(
      effect: Effect.Effect<A, E, R>,
      isFailure: (e: E) => boolean
    ): Effect.Effect<A, E | CircuitOpenError, R> =>
      // Uninterruptible bookkeeping around an interruptible call: once a
      // permit is taken, its outcome or release is always recorded.
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const [admission, transitions] = yield* Ref.modify(ref, (s) => {
            const [a, next, ts] = admit(now)(s)
            return [[a, ts] as const, next]
          })
          yield* emit(transitions)
          if (admission._tag === "Rejected") {
            return yield* new CircuitOpenError({ name: config.name, retryInMs: admission.retryInMs })
          }
          return yield* restore(effect).pipe(
            Effect.onExit((exit) => complete(admission.epoch, exit, isFailure))
          )
        })
      )

    const snapshot: Effect.Effect<Snapshot> = Effect.map(Ref.get(ref), (s) => {
      const outcomes = s.phase._tag === "HALF_OPEN" ? s.phase.outcomes : s.phase.window
      return {
        name: config.name,
        state: s.phase._tag,
        failureRate: failureRateOf(outcomes),
        bufferedCalls: outcomes.length,
        failedCalls: countFailures(outcomes),
        rejectedCalls: s.rejected,
        transitions: s.transitions,
        lastTransitionAt: s.lastTransitionAt
      }
    })

    return { name: config.name, run, snapshot }
  })
