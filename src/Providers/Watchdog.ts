/**
 * The timeouts of one upstream attempt, enforced by ONE timer and no fiber.
 *
 * The attempt's request runs in `requestScope` (the platform HttpClient's
 * `withScope` aborts a request when its scope closes). Progress — headers, a
 * body chunk, a batch of SSE events — only moves the deadline: a clock read
 * and an assignment. When the timer fires it re-arms for the moved deadline,
 * or, if the deadline has passed, records the matching `AttemptTimeout` and
 * closes `requestScope`: the request is aborted, whatever was waiting on it
 * fails at once, and `guard` turns that failure into the timeout.
 *
 * This replaces `Effect.timeout` per step (two fibers forked and joined per
 * wait — costly in a request fiber that carries the whole server's context)
 * and `Stream.interruptWhen` (a fiber per pulled element).
 */
import { Effect, ExecutionStrategy, Exit, Runtime, Scope } from "effect"
import type { AttemptTimeout } from "./Errors.js"
import { type Attempt, deadlineOf, type Phase } from "./Transport.js"

export interface Watchdog {
  /** Where the attempt's request must run: closing it aborts the request. */
  readonly requestScope: Scope.Scope
  /** Something arrived: the next wait gets `phase`'s budget (always within the total timeout). */
  readonly progress: (phase: Phase) => void
  /** The reply is complete: a later expiry aborts what is left (draining) without a timeout error. */
  readonly finish: () => void
  /** The timeout that fired, if one did. */
  readonly fired: () => AttemptTimeout | undefined
  /** Any failure of `self` after the watchdog fired is that timeout. */
  readonly guard: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | AttemptTimeout, R>
}

/** A watchdog for attempt `a`, first waiting with `first`'s budget; its timer stops when the current scope closes. */
export const make = (a: Attempt, first: Phase): Effect.Effect<Watchdog, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const requestScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    const runtime = yield* Effect.runtime<never>()
    let deadline = deadlineOf(a, first, Date.now())
    let finished = false
    let fired: AttemptTimeout | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    const check = () => {
      const left = deadline.at - Date.now()
      if (left > 0) {
        timer = setTimeout(check, left)
        return
      }
      timer = undefined
      if (!finished) fired = deadline.timeout()
      Runtime.runFork(runtime)(Scope.close(requestScope, Exit.void))
    }
    timer = setTimeout(check, Math.max(0, deadline.at - Date.now()))
    yield* Effect.addFinalizer(() => Effect.sync(() => clearTimeout(timer)))
    return {
      requestScope,
      progress: (phase) => {
        deadline = deadlineOf(a, phase, Date.now())
      },
      finish: () => {
        finished = true
      },
      fired: () => fired,
      guard: (self) => Effect.catchAll(self, (e) => Effect.fail(fired ?? e))
    } satisfies Watchdog
  })
