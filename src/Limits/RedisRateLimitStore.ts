/**
 * The rate limiter's Redis store on Parley's own Redis client (src/Redis.ts).
 *
 * @effect/experimental's `RateLimiter/Redis` store opens a client of its own
 * with no error listener: while Redis is down, ioredis prints an "Unhandled
 * error event" to stderr on every reconnect attempt, outside Parley's logs,
 * and the connection is a second one to manage. This store runs the same
 * atomic Lua scripts (copied from @effect/experimental 0.61, MIT) with
 * `EVAL` on the shared client, whose errors are handled: a Redis that does
 * not answer is a `RateLimitStoreError`, which the limiter turns into 503
 * ERR_REDIS_UNAVAILABLE — never a silent bypass.
 */
import { RateLimiter } from "@effect/experimental"
import { Duration, Effect, Layer, Option } from "effect"
import type { Redis as IoRedis } from "ioredis"
import { Redis } from "../Redis.js"

const fixedWindowScript = `
local key = KEYS[1]
local tokens = tonumber(ARGV[1])
local refillms = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local current = tonumber(redis.call("GET", key))

if not current then
  local nextpttl = refillms * tokens
  redis.call("SET", key, tokens, "PX", nextpttl)
  return { tokens, nextpttl }
end

local currentpttl = tonumber(redis.call("PTTL", key) or "0")
local next = current + tokens
if limit and next > limit then
  return { next, currentpttl }
end

local nextpttl = currentpttl + (refillms * tokens)
redis.call("SET", key, next, "PX", nextpttl)
return { next, nextpttl }
`

const tokenBucketScript = `
local key = KEYS[1]
local last_refill_key = key .. ":refill"
local tokens = tonumber(ARGV[1])
local refill_ms = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local overflow = ARGV[5] == "1"
local current = tonumber(redis.call("GET", key))
local last_refill = tonumber(redis.call("GET", last_refill_key))

if not current then
  current = limit
  last_refill = now
  redis.call("SET", key, current)
  redis.call("SET", last_refill_key, last_refill)
end

local elapsed = now - last_refill
local refill_amount = math.floor(elapsed / refill_ms)
if refill_amount > 0 then
  current = math.min(current + refill_amount, limit)
  last_refill = last_refill + (refill_amount * refill_ms)
  redis.call("SET", last_refill_key, last_refill)
end

local next = current - tokens
if next < 0 and not overflow then
  redis.call("SET", key, current)
  return next
end

redis.call("SET", key, next)
return next
`

const storeError = (message: string, cause?: unknown) =>
  new RateLimiter.RateLimitStoreError({ message, ...(cause !== undefined ? { cause } : {}) })

export const make = (redis: IoRedis, prefix: string): RateLimiter.RateLimiterStore["Type"] => ({
  fixedWindow: (options) =>
    Effect.tryPromise({
      try: () =>
        redis.eval(
          fixedWindowScript,
          1,
          `${prefix}${options.key}`,
          options.tokens,
          Duration.toMillis(options.refillRate),
          options.limit === undefined ? "" : options.limit
        ),
      catch: (cause) => storeError("Failed to execute fixedWindow rate limiting command", cause)
    }).pipe(Effect.flatMap((reply) =>
      Array.isArray(reply) && typeof reply[0] === "number" && typeof reply[1] === "number"
        ? Effect.succeed([reply[0], reply[1]] as const)
        : Effect.fail(storeError("Unexpected reply to the fixedWindow rate limiting command"))
    )),
  tokenBucket: (options) =>
    Effect.clockWith((clock) =>
      Effect.tryPromise({
        try: () =>
          redis.eval(
            tokenBucketScript,
            1,
            `${prefix}${options.key}`,
            options.tokens,
            Duration.toMillis(options.refillRate),
            options.limit,
            clock.unsafeCurrentTimeMillis(),
            options.allowOverflow ? 1 : 0
          ),
        catch: (cause) => storeError("Failed to execute tokenBucket rate limiting command", cause)
      })
    ).pipe(Effect.flatMap((reply) =>
      typeof reply === "number"
        ? Effect.succeed(reply)
        : Effect.fail(storeError("Unexpected reply to the tokenBucket rate limiting command"))
    ))
})

/** Redis when REDIS_URL is set (through the shared client), else the in-memory store. */
export const layer = (prefix: string): Layer.Layer<RateLimiter.RateLimiterStore, never, Redis> =>
  Layer.unwrapEffect(Effect.map(Redis, Option.match({
    onNone: () => RateLimiter.layerStoreMemory,
    onSome: (client) => Layer.succeed(RateLimiter.RateLimiterStore, make(client, prefix))
  })))
