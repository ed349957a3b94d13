/** Feedback on messages: one per (message, user), scoped to the message's owner. */
import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { rowsOrDie, writeErrors } from "../Db/Errors.js"
import { NotFound } from "../Errors.js"
import type { UserId } from "../Http/Schemas.js"
import type { MessageId } from "../Sessions/Domain.js"
import { FeedbackId, FeedbackRow, type PostFeedback } from "./Domain.js"

export class FeedbackRepo extends Effect.Service<FeedbackRepo>()("parley/FeedbackRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    /**
     * One statement: the message must be the caller's (else no row: 404), and
     * a second post updates the first (`xmax = 0` only on a fresh insert).
     * A message deleted meanwhile is a foreign-key violation, also 404.
     */
    const upsert = Effect.fn("FeedbackRepo.upsert", { captureStackTrace: false })(
      function*(userId: UserId, messageId: MessageId, input: PostFeedback) {
        const found = yield* SqlSchema.findOne({
          Request: Schema.Void,
          Result: FeedbackRow,
          execute: () =>
            sql`
              INSERT INTO feedback (id, message_id, user_id, rating, comment)
              SELECT ${FeedbackId.make(randomUUID())}, m.id, m.user_id, ${input.rating}, ${input.comment}
              FROM messages m WHERE m.id = ${messageId} AND m.user_id = ${userId}
              ON CONFLICT (message_id, user_id) DO UPDATE
                SET rating = excluded.rating, comment = excluded.comment, updated_at = now()
              RETURNING id, message_id, rating, comment, created_at, updated_at,
                        CASE WHEN xmax = 0 THEN 'created' ELSE 'updated' END AS outcome`
        })(undefined)
        return yield* Option.match(found, {
          onNone: () => Effect.fail(new NotFound({ message: "Message not found." })),
          onSome: Effect.succeed
        })
      },
      rowsOrDie,
      (e) => writeErrors(e, "message"),
      // The upsert absorbs the only unique key; a duplicate id would be a bug.
      Effect.catchTag("AlreadyExists", (e) => Effect.die(e))
    )

    return { upsert } as const
  })
}) {}
