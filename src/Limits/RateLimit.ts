/**
 * Request rate per API key (per user for JWTs) with @effect/experimental's
 * RateLimiter: an in-memory store alone, Redis when REDIS_URL is set — then
 * Redis is required, and a Redis that does not answer is a 503, never a
 * silent bypass.
 */
import { RateLimiter } from "@effect/experimental"
import { Duration, Effect, Metric } from "effect"
import { LimitsConfig } from "../Config.js"
import { RateLimited, RedisUnavailable } from "../Errors.js"
import * as RedisRateLimitStore from "./RedisRateLimitStore.js"

export const rateLimitRejections = Metric.counter("parley_rate_limit_rejections_total", { description: "Requests refused by the rate limiter" })

/** The limiter's store: in memory, or Redis (shared by every instance) through Parley's own client. */
export const RateLimiterStoreLive = RedisRateLimitStore.layer("parley:rl:")

export class RateLimit extends Effect.Service<RateLimit>()("parley/RateLimit", {
  effect: Effect.gen(function*() {
    const cfg = yield* LimitsConfig
    const limiter = yield* RateLimiter.make
    const window = Duration.minutes(1)

    /** Takes one request from `key`'s budget; the headers describe what is left. */
    const take = (key: string) =>
      cfg.rateLimitPerMinute === 0
        ? Effect.succeed<Record<string, string>>({})
        : limiter.consume({ key, limit: cfg.rateLimitPerMinute, window, algorithm: "fixed-window", onExceeded: "fail" }).pipe(
          Effect.map((r) => ({
            "ratelimit-limit": String(r.limit),
            "ratelimit-remaining": String(Math.max(0, r.remaining)),
            "ratelimit-reset": String(Math.ceil(Duration.toMillis(r.resetAfter) / 1000))
          })),
          Effect.catchTag("RateLimiterError", (e): Effect.Effect<never, RateLimited | RedisUnavailable> => {
            if (e.reason === "Exceeded") {
              const seconds = String(Math.max(1, Math.ceil(Duration.toMillis(e.retryAfter) / 1000)))
              return Metric.increment(rateLimitRejections).pipe(Effect.zipRight(Effect.fail(new RateLimited({
                message: `Rate limit of ${e.limit} requests per minute reached.`,
                headers: { "retry-after": seconds, "ratelimit-limit": String(e.limit), "ratelimit-remaining": "0", "ratelimit-reset": seconds }
              }))))
            }
            return Effect.logWarning("rate limiter store unavailable").pipe(
              Effect.annotateLogs({ code: "ERR_REDIS_UNAVAILABLE", cause: e.message }),
              Effect.zipRight(Effect.fail(new RedisUnavailable()))
            )
          }),
          Effect.withSpan("RateLimit.take", { captureStackTrace: false })
        )

    return { take } as const
  })
}) {}
