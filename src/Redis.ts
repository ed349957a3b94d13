/**
 * The Redis client (REDIS_URL) for the response cache and readiness. When
 * Redis is configured it is required: commands fail fast while it is down
 * (no offline queue), callers answer ERR_REDIS_UNAVAILABLE, and the client
 * reconnects by itself when Redis returns.
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { Redis as IoRedis } from "ioredis"
import { RedisConfig } from "./Config.js"

/** ioredis options from a redis:// URL; commands fail fast instead of queueing while Redis is down. */
export const redisOptions = (url: Redacted.Redacted<string>) => {
  const u = new URL(Redacted.value(url))
  return {
    host: u.hostname,
    port: u.port === "" ? 6379 : Number(u.port),
    ...(u.password !== "" ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username !== "" ? { username: decodeURIComponent(u.username) } : {}),
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 1_000,
    commandTimeout: 1_000,
    retryStrategy: (times: number) => Math.min(times * 100, 1_000)
  }
}

export class Redis extends Context.Tag("parley/Redis")<Redis, Option.Option<IoRedis>>() {}

export const RedisLive = Layer.scoped(
  Redis,
  Effect.gen(function*() {
    const cfg = yield* RedisConfig
    if (Option.isNone(cfg.url)) return Option.none()
    const url = cfg.url.value
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const c = new IoRedis(redisOptions(url))
        // Connection errors surface on commands; the event only needs a listener.
        c.on("error", () => {})
        return c
      }),
      (c) => Effect.promise(() => c.quit().catch(() => "closed"))
    )
    return Option.some(client)
  })
)
