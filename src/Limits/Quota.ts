/**
 * Daily quotas, exact under concurrency: a request is counted by ONE atomic
 * statement on the user's row for the UTC day before anything is dispatched,
 * and stays counted whatever the upstream does. Tokens are added afterwards.
 */
import { SqlClient } from "@effect/sql"
import { DateTime, Effect, Metric } from "effect"
import { orUnavailable } from "../Db/Errors.js"
import { QuotaExceeded } from "../Errors.js"
import type { UserId } from "../Http/Schemas.js"

export const quotaRejections = Metric.counter("parley_quota_rejections_total", { description: "Requests refused by the daily quota" })

export interface Reservation {
  readonly userId: UserId
  /** The UTC day the request was counted on (tokens are added to the same row). */
  readonly day: string
  readonly requestsToday: number
}

export class Quota extends Effect.Service<Quota>()("parley/Quota", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const count = (userId: UserId) =>
      Effect.gen(function*() {
        const now = yield* DateTime.now
        const day = DateTime.formatIsoDateUtc(now)
        // Row lock of ON CONFLICT DO UPDATE + the limit check on the locked row = no free requests.
        const rows = yield* sql<{ requests: number }>`
          WITH u AS (SELECT daily_request_limit AS rl, daily_token_limit AS tl FROM users WHERE id = ${userId})
          INSERT INTO usage_daily AS d (user_id, day, requests)
          SELECT ${userId}, ${day}::date, 1 FROM u
          WHERE (u.rl IS NULL OR u.rl >= 1) AND (u.tl IS NULL OR u.tl > 0)
          ON CONFLICT (user_id, day) DO UPDATE SET requests = d.requests + 1
          WHERE ((SELECT rl FROM u) IS NULL OR d.requests < (SELECT rl FROM u))
            AND ((SELECT tl FROM u) IS NULL OR d.input_tokens + d.output_tokens < (SELECT tl FROM u))
          RETURNING d.requests`.pipe(orUnavailable)
        const row = rows[0]
        if (row === undefined) {
          const resetsAt = DateTime.add(DateTime.startOf(now, "day"), { days: 1 })
          const seconds = Math.max(1, Math.ceil(DateTime.distance(now, resetsAt) / 1000))
          yield* Metric.increment(quotaRejections)
          return yield* Effect.fail(new QuotaExceeded({
            message: `Daily quota used up; it resets at ${DateTime.formatIso(resetsAt)}.`,
            headers: { "retry-after": String(seconds), "x-parley-quota-reset": DateTime.formatIso(resetsAt) }
          }))
        }
        return { userId, day, requestsToday: Number(row.requests) } satisfies Reservation
      }).pipe(Effect.withSpan("Quota.count", { captureStackTrace: false }))

    const addTokens = (reservation: Reservation, inputTokens: number, outputTokens: number) =>
      sql`UPDATE usage_daily SET input_tokens = input_tokens + ${inputTokens}, output_tokens = output_tokens + ${outputTokens}
          WHERE user_id = ${reservation.userId} AND day = ${reservation.day}::date`.pipe(
        orUnavailable,
        Effect.asVoid,
        Effect.withSpan("Quota.addTokens", { captureStackTrace: false })
      )

    return { count, addTokens } as const
  })
}) {}
