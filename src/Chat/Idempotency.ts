/**
 * Idempotency-Key on POST chat endpoints: a repeat with the same key and body
 * replays the stored result (or waits for the one in flight) and is not
 * counted again; the same key with another body is 409. A request that fails
 * or is cut off releases its key, so a retry runs afresh.
 */
import { HttpServerResponse } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Duration, Effect, Exit, Option, Ref, Schema, Stream } from "effect"
import { createHash } from "node:crypto"
import { LimitsConfig } from "../Config.js"
import { orUnavailable } from "../Db/Errors.js"
import { Conflict, type DbUnavailable } from "../Errors.js"
import type { UserId } from "../Http/Schemas.js"

/** What a chat endpoint produces, in a form that can be stored and replayed. */
export type Outcome =
  | { readonly _tag: "Json"; readonly status: number; readonly headers: Record<string, string>; readonly body: string }
  | { readonly _tag: "Sse"; readonly headers: Record<string, string>; readonly events: Stream.Stream<string> }

const sseHeaders = { "cache-control": "no-cache", "x-accel-buffering": "no" }

export const toResponse = (o: Outcome): HttpServerResponse.HttpServerResponse =>
  o._tag === "Json"
    ? HttpServerResponse.text(o.body, { status: o.status, contentType: "application/json", headers: o.headers })
    : HttpServerResponse.stream(Stream.encodeText(o.events), {
      contentType: "text/event-stream",
      headers: { ...sseHeaders, ...o.headers }
    })

const Stored = Schema.Struct({
  requestHash: Schema.String,
  state: Schema.Literal("in_flight", "done"),
  status: Schema.NullOr(Schema.Number),
  contentType: Schema.NullOr(Schema.String),
  headers: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.String })),
  body: Schema.NullOr(Schema.String)
})

export const requestHash = (payload: unknown): string => createHash("sha256").update(JSON.stringify(payload)).digest("hex")

export class Idempotency extends Effect.Service<Idempotency>()("parley/Idempotency", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const cfg = yield* LimitsConfig
    const ttlMs = Duration.toMillis(cfg.idempotencyTtl)

    const claim = (userId: UserId, endpoint: string, key: string, hash: string) =>
      Effect.gen(function*() {
        yield* sql`DELETE FROM idempotency_keys WHERE user_id = ${userId} AND endpoint = ${endpoint} AND key = ${key} AND expires_at < now()`
        const rows = yield* sql`
          INSERT INTO idempotency_keys (user_id, endpoint, key, request_hash, state, expires_at)
          VALUES (${userId}, ${endpoint}, ${key}, ${hash}, 'in_flight', now() + ${ttlMs} * interval '1 millisecond')
          ON CONFLICT DO NOTHING RETURNING key`
        return rows.length === 1
      }).pipe(orUnavailable)

    const load = (userId: UserId, endpoint: string, key: string) =>
      sql`SELECT request_hash, state, status, content_type, headers, body FROM idempotency_keys
          WHERE user_id = ${userId} AND endpoint = ${endpoint} AND key = ${key}`.pipe(
        orUnavailable,
        Effect.flatMap((rows) => rows[0] === undefined ? Effect.succeedNone : Effect.asSome(Schema.decodeUnknown(Stored)(rows[0]).pipe(Effect.orDie)))
      )

    const release = (userId: UserId, endpoint: string, key: string) =>
      sql`DELETE FROM idempotency_keys WHERE user_id = ${userId} AND endpoint = ${endpoint} AND key = ${key} AND state = 'in_flight'`.pipe(
        Effect.ignoreLogged
      )

    const store = (userId: UserId, endpoint: string, key: string, status: number, contentType: string, headers: Record<string, string>, body: string) =>
      sql`UPDATE idempotency_keys SET state = 'done', status = ${status}, content_type = ${contentType},
            headers = ${JSON.stringify(headers)}::jsonb, body = ${body}
          WHERE user_id = ${userId} AND endpoint = ${endpoint} AND key = ${key}`.pipe(
        Effect.tapError((e) => Effect.logWarning("idempotent result not stored").pipe(Effect.annotateLogs({ cause: e.message }))),
        Effect.ignore
      )

    const replay = (s: typeof Stored.Type): HttpServerResponse.HttpServerResponse =>
      HttpServerResponse.text(s.body ?? "", {
        status: s.status ?? 200,
        contentType: s.contentType ?? "application/json",
        headers: { ...(s.headers ?? {}), "idempotent-replayed": "true" }
      })

    /** Runs `run` once per (user, endpoint, key); repeats replay it. */
    const wrap = <E, R>(
      userId: UserId,
      endpoint: string,
      key: Option.Option<string>,
      payload: unknown,
      run: Effect.Effect<Outcome, E, R>
    ): Effect.Effect<HttpServerResponse.HttpServerResponse, E | Conflict | DbUnavailable, R> => {
      if (Option.isNone(key)) return Effect.map(run, toResponse)
      const k = key.value
      const hash = requestHash(payload)
      const attempt = (waited: number): Effect.Effect<HttpServerResponse.HttpServerResponse, E | Conflict | DbUnavailable, R> =>
        Effect.gen(function*() {
          if (yield* claim(userId, endpoint, k, hash)) return yield* withStore(k, run)
          const existing = yield* load(userId, endpoint, k)
          if (Option.isNone(existing)) return yield* attempt(waited)
          if (existing.value.requestHash !== hash) {
            return yield* Effect.fail(new Conflict({ message: "This Idempotency-Key was used with a different request body.", param: "idempotency-key" }))
          }
          if (existing.value.state === "done") return replay(existing.value)
          if (waited > 120_000) return yield* Effect.fail(new Conflict({ message: "A request with this Idempotency-Key is still in flight." }))
          yield* Effect.sleep("200 millis")
          return yield* attempt(waited + 200)
        })
      const withStore = (k2: string, r: Effect.Effect<Outcome, E, R>) =>
        r.pipe(
          Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : release(userId, endpoint, k2)),
          Effect.flatMap((outcome) => {
            if (outcome._tag === "Json") {
              return store(userId, endpoint, k2, outcome.status, "application/json", outcome.headers, outcome.body).pipe(
                Effect.as(toResponse(outcome))
              )
            }
            return Effect.gen(function*() {
              const buffer = yield* Ref.make<Array<string>>([])
              const events = outcome.events.pipe(
                Stream.tap((e) => Ref.update(buffer, (b) => (b.push(e), b))),
                Stream.onDone(() =>
                  Effect.flatMap(Ref.get(buffer), (b) => store(userId, endpoint, k2, 200, "text/event-stream", { ...sseHeaders, ...outcome.headers }, b.join("")))),
                Stream.ensuring(release(userId, endpoint, k2))
              )
              return toResponse({ ...outcome, events })
            })
          })
        )
      return attempt(0)
    }

    return { wrap } as const
  })
}) {}
