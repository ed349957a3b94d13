import { Schema } from "effect"
import { DbTimestamp, snake, Timestamp } from "../Http/Schemas.js"
import { MessageId } from "../Sessions/Domain.js"
import { SafeText, strict } from "../Sessions/Values.js"

export const FeedbackId = Schema.UUID.pipe(Schema.brand("FeedbackId"))
export type FeedbackId = typeof FeedbackId.Type

export const Rating = Schema.Literal("up", "down")
export const COMMENT_MAX = 2000

/** Posting again replaces the caller's feedback on that message: an absent comment clears it. */
export const PostFeedback = Schema.Struct({
  rating: Rating,
  comment: Schema.optionalWith(Schema.NullOr(SafeText.pipe(Schema.maxLength(COMMENT_MAX))), { default: () => null })
}).annotations({ ...strict, identifier: "PostFeedback" })
export type PostFeedback = typeof PostFeedback.Type

export const FeedbackRow = Schema.Struct({
  id: FeedbackId,
  messageId: MessageId,
  rating: Rating,
  comment: Schema.NullOr(Schema.String),
  createdAt: DbTimestamp,
  updatedAt: DbTimestamp,
  /** Whether the upsert inserted the row or replaced the caller's earlier feedback. */
  outcome: Schema.Literal("created", "updated")
})
export type FeedbackRow = typeof FeedbackRow.Type

export const Feedback = Schema.Struct({
  id: FeedbackId,
  messageId: snake(MessageId, "message_id"),
  rating: Rating,
  comment: Schema.NullOr(Schema.String),
  createdAt: snake(Timestamp, "created_at"),
  updatedAt: snake(Timestamp, "updated_at")
}).annotations({ identifier: "Feedback" })

/**
 * The same body either way; the upsert's `outcome` (never on the wire) picks
 * the success schema, hence the status: new feedback is 201, replaced 200.
 * A literal discriminates the union when encoding; two look-alike classes
 * would not (encoding is structural, so the first would always win).
 */
export const FeedbackCreated = Feedback.pipe(Schema.attachPropertySignature("outcome", "created"))
export const FeedbackUpdated = Feedback.pipe(Schema.attachPropertySignature("outcome", "updated"))
