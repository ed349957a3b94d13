/**
 * Response cache for deterministic requests (temperature 0, or asked for with
 * `x-parley-cache: use`), keyed by a hash of the normalized request and its
 * model route: an in-memory LRU alone, Redis (shared by every instance) when
 * REDIS_URL is set. An entry that fails to decode is logged with
 * ERR_CACHE_PARSE_FAILED, deleted and counted — never served, never a 500.
 */
import { Duration, Effect, Metric, Option, Schema } from "effect"
import { createHash } from "node:crypto"
import { CacheConfig } from "../Config.js"
import { EventCodes, RedisUnavailable } from "../Errors.js"
import { Usage } from "../Providers/Domain.js"
import { Redis } from "../Redis.js"
import { Lru } from "./Lru.js"

export const CachedReply = Schema.Struct({
  v: Schema.Literal(1),
  content: Schema.String,
  finishReason: Schema.String,
  usage: Usage,
  provider: Schema.String,
  model: Schema.String
})
export type CachedReply = typeof CachedReply.Type

const decode = Schema.decodeUnknownOption(Schema.parseJson(CachedReply))

export const cacheHits = Metric.counter("parley_cache_hits_total", { description: "Replies served from the response cache" })
export const cacheMisses = Metric.counter("parley_cache_misses_total", { description: "Cacheable requests not in the cache" })
export const cacheCorruptions = Metric.counter("parley_cache_corruptions_total", { description: "Cache entries that failed to decode (deleted)" })

/** A stable key: same model name and same sampling-relevant request → same key. */
export const cacheKey = (model: string, request: unknown): string => {
  const canonical = (u: unknown): unknown =>
    Array.isArray(u)
      ? u.map(canonical)
      : u !== null && typeof u === "object"
      ? Object.fromEntries(Object.entries(u).filter(([k]) => k !== "stream" && k !== "stream_options").sort(([a], [b]) => a < b ? -1 : 1).map(([k, v]) => [k, canonical(v)]))
      : u
  return createHash("sha256").update(JSON.stringify([model, canonical(request)])).digest("hex")
}

export class ResponseCache extends Effect.Service<ResponseCache>()("parley/ResponseCache", {
  effect: Effect.gen(function*() {
    const cfg = yield* CacheConfig
    const redis = yield* Redis
    const lru = new Lru<string>(cfg.maxEntries)
    const ttlMs = Duration.toMillis(cfg.ttl)
    const prefix = "parley:cache:"

    const unavailable = (cause: unknown) =>
      Effect.logWarning("response cache unavailable").pipe(
        Effect.annotateLogs({ code: "ERR_REDIS_UNAVAILABLE", cause: String(cause) }),
        Effect.zipRight(Effect.fail(new RedisUnavailable()))
      )

    const rawGet = (key: string): Effect.Effect<Option.Option<string>, RedisUnavailable> =>
      Option.match(redis, {
        onNone: () => Effect.sync(() => Option.fromNullable(lru.get(key, Date.now()))),
        onSome: (client) =>
          Effect.tryPromise({ try: () => client.get(prefix + key), catch: (e) => e }).pipe(
            Effect.map(Option.fromNullable),
            Effect.catchAll(unavailable)
          )
      })

    const rawDelete = (key: string) =>
      Option.match(redis, {
        onNone: () => Effect.sync(() => lru.delete(key)),
        onSome: (client) => Effect.tryPromise(() => client.del(prefix + key)).pipe(Effect.ignore)
      })

    /** Also used by tests to plant an entry (valid or not) in whichever store is active. */
    const rawSet = (key: string, value: string): Effect.Effect<void, RedisUnavailable> =>
      Option.match(redis, {
        onNone: () => Effect.sync(() => lru.set(key, value, Date.now() + ttlMs)),
        onSome: (client) =>
          Effect.tryPromise({ try: () => client.set(prefix + key, value, "PX", ttlMs), catch: (e) => e }).pipe(
            Effect.asVoid,
            Effect.catchAll(unavailable)
          )
      })

    const get = (key: string) =>
      Effect.gen(function*() {
        if (!cfg.enabled) return Option.none<CachedReply>()
        const raw = yield* rawGet(key)
        if (Option.isNone(raw)) {
          yield* Metric.increment(cacheMisses)
          return Option.none<CachedReply>()
        }
        const reply = decode(raw.value)
        if (Option.isNone(reply)) {
          yield* rawDelete(key)
          yield* Metric.increment(cacheCorruptions)
          yield* Effect.logWarning("corrupt cache entry deleted").pipe(
            Effect.annotateLogs({ code: EventCodes.cacheParseFailed, cache_key: key.slice(0, 16) })
          )
          return Option.none<CachedReply>()
        }
        yield* Metric.increment(cacheHits)
        return reply
      }).pipe(Effect.withSpan("Cache.get", { captureStackTrace: false }))

    const set = (key: string, reply: Omit<CachedReply, "v">) =>
      !cfg.enabled || reply.content.length > cfg.maxEntryChars
        ? Effect.void
        : rawSet(key, JSON.stringify({ v: 1, ...reply })).pipe(
          // The reply was already given; a cache that cannot store it is only logged.
          Effect.catchAll((e) =>
            Effect.logWarning("reply not cached").pipe(Effect.annotateLogs({ cache_key: key.slice(0, 16), cause: String(e) }))
          ),
          Effect.withSpan("Cache.set", { captureStackTrace: false })
        )

    return { get, set, rawSet, shared: Option.isSome(redis) } as const
  })
}) {}
