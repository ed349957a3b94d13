/**
 * One admission step for every chat endpoint, in this order (authentication
 * and validation have already happened): rate limit → content filter →
 * quota. Nothing here reaches an upstream; each rejection is its catalog
 * error; the request is counted only when it will be dispatched.
 */
import { Effect } from "effect"
import type { UserPrincipal } from "../Auth/Policy.js"
import { ContentFilter } from "./ContentFilter.js"
import { Quota } from "./Quota.js"
import { RateLimit } from "./RateLimit.js"

export class Admission extends Effect.Service<Admission>()("parley/Admission", {
  effect: Effect.gen(function*() {
    const rateLimit = yield* RateLimit
    const filter = yield* ContentFilter
    const quota = yield* Quota
    return {
      admit: (principal: UserPrincipal, promptText: string) =>
        Effect.gen(function*() {
          const headers = yield* rateLimit.take(principal.keyId !== null ? `key:${principal.keyId}` : `user:${principal.userId}`)
          yield* filter.check(promptText)
          const reservation = yield* quota.count(principal.userId)
          return { reservation, headers }
        }),
      addTokens: quota.addTokens
    } as const
  }),
  dependencies: [RateLimit.Default, ContentFilter.Default, Quota.Default]
}) {}
