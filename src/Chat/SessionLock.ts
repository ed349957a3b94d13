/**
 * Turns in one session run one at a time. Inside an instance a semaphore per
 * session queues them without touching the database; across instances a
 * lease on the session row (renewed while the turn runs, expiring if its
 * instance dies) does the same without holding a connection.
 */
import { Duration, Effect, Fiber, Schedule, Scope } from "effect"
import { randomUUID } from "node:crypto"
import { ChatConfig } from "../Config.js"
import { Conflict } from "../Errors.js"
import type { SessionId } from "../Sessions/Domain.js"
import { TurnRepo } from "./TurnRepo.js"

interface Local {
  readonly semaphore: Effect.Semaphore
  users: number
}

export class SessionLock extends Effect.Service<SessionLock>()("parley/SessionLock", {
  scoped: Effect.gen(function*() {
    const repo = yield* TurnRepo
    // Background lease releases live as long as the service, not the turn that started them.
    const background = yield* Effect.scope
    const cfg = yield* ChatConfig
    const leaseMs = Duration.toMillis(cfg.turnLease)
    const locals = new Map<string, Local>()

    const local = (sessionId: string) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const entry = locals.get(sessionId) ?? { semaphore: Effect.unsafeMakeSemaphore(1), users: 0 }
          entry.users++
          locals.set(sessionId, entry)
          return entry
        }),
        (entry) => Effect.sync(() => {
          entry.users--
          if (entry.users === 0) locals.delete(sessionId)
        })
      )

    /**
     * Gives the lease back. One lost to a database outage would leave the session busy until the
     * lease expires (every later turn waiting): it is retried in the background while the lease lives.
     */
    const release = (sessionId: SessionId, owner: string) =>
      repo.releaseLease(sessionId, owner).pipe(
        Effect.catchAll(() =>
          repo.releaseLease(sessionId, owner).pipe(
            Effect.retry(Schedule.spaced("250 millis").pipe(Schedule.upTo(Duration.millis(leaseMs)))),
            Effect.ignoreLogged,
            Effect.forkIn(background),
            Effect.asVoid
          )
        )
      )

    /**
     * Holds the session until `scope` closes; waits while another turn holds it,
     * at most `wait` (the turn's own budget): then 409 ERR_CONFLICT, the session
     * being busy — never a request that hangs behind a long turn.
     */
    const hold = (sessionId: SessionId, scope: Scope.Scope, wait: Duration.Duration) =>
      Effect.gen(function*() {
        const entry = yield* local(sessionId)
        const owner = randomUUID()
        const acquire = Effect.gen(function*() {
          // Both waits are interruptible (the timeout below ends them); what was taken is given back.
          yield* Effect.acquireRelease(Effect.interruptible(entry.semaphore.take(1)), () => entry.semaphore.release(1))
          yield* Effect.acquireRelease(
            Effect.interruptible(repo.tryLease(sessionId, owner, leaseMs).pipe(
              Effect.filterOrFail((taken) => taken, () => "busy" as const),
              Effect.retry({ schedule: Schedule.exponential("20 millis", 1.5).pipe(Schedule.union(Schedule.spaced("250 millis"))), while: (e) => e === "busy" }),
              Effect.catchIf((e) => e === "busy", () => Effect.dieMessage("unreachable: lease retry stopped while busy"))
            )).pipe(
              // a failed or interrupted attempt may have taken the lease on the server (its answer lost)
              Effect.onError(() => release(sessionId, owner))
            ),
            () => release(sessionId, owner)
          )
        })
        yield* acquire.pipe(
          Effect.timeoutFail({
            duration: wait,
            onTimeout: () => new Conflict({ message: "The session is busy with another turn; try again when it has finished." })
          })
        )
        // Renewing only extends this owner's lease: a renewal landing after the release cannot take it again.
        const renew = yield* repo.renewLease(sessionId, owner, leaseMs).pipe(
          Effect.ignoreLogged,
          Effect.repeat(Schedule.spaced(Duration.millis(Math.max(100, Math.floor(leaseMs / 3))))),
          Effect.forkDaemon
        )
        yield* Effect.addFinalizer(() => Fiber.interrupt(renew))
      }).pipe(Scope.extend(scope), Effect.withSpan("SessionLock.hold", { captureStackTrace: false }))

    return { hold } as const
  })
}) {}
