/**
 * The API keys of one provider, rotated round-robin.
 *
 * - `reportRejected` (the upstream said 401/403) takes a key out of rotation
 *   for good — until an operator `reinstate`s it — and records why.
 * - `reportRateLimited` (429 with Retry-After) cools a key down until
 *   now + cooldown, by the Effect `Clock` (so `TestClock` drives it).
 * - `next` hands out the next usable key after the last one handed out, or
 *   fails with `NoUsableKey`.
 * - `snapshot` shows ids and states, never key values.
 *
 * State lives in one `Ref`, so concurrent callers see a consistent rotation.
 */
import { Clock, Duration, Effect, Either, Ref } from "effect"
import type { ProviderKey } from "./Domain.js"
import { NoUsableKey } from "./Errors.js"

export { NoUsableKey } from "./Errors.js"

type Status =
  | { readonly _tag: "Active" }
  | { readonly _tag: "Rejected"; readonly reason: string; readonly since: number }
  | { readonly _tag: "Cooling"; readonly until: number }

interface Entry {
  readonly key: ProviderKey
  readonly status: Status
}

interface State {
  /** Index to start the next search from: one past the key handed out last. */
  readonly cursor: number
  readonly entries: ReadonlyArray<Entry>
}

export type KeySnapshot =
  | { readonly id: string; readonly state: "active" }
  | { readonly id: string; readonly state: "rejected"; readonly reason: string; readonly since: number }
  | { readonly id: string; readonly state: "cooling_down"; readonly until: number; readonly remainingMs: number }

export interface KeyPool {
  readonly provider: string
  /** The next usable key, round-robin. */
  readonly next: Effect.Effect<ProviderKey, NoUsableKey>
  /** The upstream refused the key (401/403): out of rotation until reinstated. Unknown ids are ignored. */
  readonly reportRejected: (keyId: string, reason?: string) => Effect.Effect<void>
  /** The key hit a rate limit: skipped until now + cooldown (a longer running cooldown is kept). */
  readonly reportRateLimited: (keyId: string, cooldown: Duration.DurationInput) => Effect.Effect<void>
  /** Puts a key back into rotation (operator action). */
  readonly reinstate: (keyId: string) => Effect.Effect<void>
  readonly snapshot: Effect.Effect<ReadonlyArray<KeySnapshot>>
}

const active: Status = { _tag: "Active" }

const usable = (status: Status, now: number): boolean =>
  status._tag === "Active" || (status._tag === "Cooling" && status.until <= now)

const update = (state: State, keyId: string, f: (status: Status) => Status): State => ({
  cursor: state.cursor,
  entries: state.entries.map((e) => (e.key.id === keyId ? { key: e.key, status: f(e.status) } : e))
})

/** A pool over `keys` (order = rotation order). With no keys, `next` always fails. */
export const make = (provider: string, keys: ReadonlyArray<ProviderKey>): Effect.Effect<KeyPool> =>
  Effect.map(Ref.make<State>({ cursor: 0, entries: keys.map((key) => ({ key, status: active })) }), (ref) => {
    const next = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Ref.modify(ref, (state): readonly [Either.Either<ProviderKey, NoUsableKey>, State] => {
        const n = state.entries.length
        for (let i = 0; i < n; i++) {
          const index = (state.cursor + i) % n
          const entry = state.entries[index]
          if (entry !== undefined && usable(entry.status, now)) {
            return [Either.right(entry.key), { cursor: (index + 1) % n, entries: state.entries }]
          }
        }
        let rejected = 0
        let coolingDown = 0
        let soonest = Number.POSITIVE_INFINITY
        for (const { status } of state.entries) {
          if (status._tag === "Rejected") rejected++
          else if (status._tag === "Cooling") {
            coolingDown++
            soonest = Math.min(soonest, status.until)
          }
        }
        const retryAfterMs = coolingDown > 0 ? Math.max(0, soonest - now) : null
        return [Either.left(new NoUsableKey({ provider, rejected, coolingDown, retryAfterMs })), state]
      })
    ).pipe(Effect.flatMap((result) => result))

    const reportRejected = (keyId: string, reason = "rejected by upstream") =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.update(ref, (state) =>
          update(state, keyId, (status) => (status._tag === "Rejected" ? status : { _tag: "Rejected", reason, since: now }))))

    const reportRateLimited = (keyId: string, cooldown: Duration.DurationInput) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const until = now + Duration.toMillis(cooldown)
        return Ref.update(ref, (state) =>
          update(state, keyId, (status) => {
            switch (status._tag) {
              case "Rejected":
                return status
              case "Cooling":
                return status.until >= until ? status : { _tag: "Cooling", until }
              case "Active":
                return { _tag: "Cooling", until }
            }
          }))
      })

    const reinstate = (keyId: string) => Ref.update(ref, (state) => update(state, keyId, () => active))

    const snapshot = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.map(Ref.get(ref), (state) =>
        state.entries.map(({ key, status }): KeySnapshot => {
          if (status._tag === "Rejected") return { id: key.id, state: "rejected", reason: status.reason, since: status.since }
          if (status._tag === "Cooling" && status.until > now) {
            return { id: key.id, state: "cooling_down", until: status.until, remainingMs: status.until - now }
          }
          return { id: key.id, state: "active" }
        })))

    return { provider, next, reportRejected, reportRateLimited, reinstate, snapshot }
  })
