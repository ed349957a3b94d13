/** Schemas shared by every feature's contract: ids, timestamps, snake_case fields. */
import { Schema } from "effect"

const uuid = Schema.UUID
export const UserId = uuid.pipe(Schema.brand("UserId"))
export type UserId = typeof UserId.Type
export const ApiKeyId = uuid.pipe(Schema.brand("ApiKeyId"))
export type ApiKeyId = typeof ApiKeyId.Type

/** RFC 3339 in UTC on the wire; a `DateTime.Utc` in code; decoded strictly. */
export const Timestamp = Schema.DateTimeUtc
/** Timestamps read from the database arrive as `Date`. */
export const DbTimestamp = Schema.DateTimeUtcFromDate

/** A camelCase field read from / written to a snake_case wire key. */
export const snake = <S extends Schema.Schema.Any>(schema: S, key: string) =>
  Schema.propertySignature(schema).pipe(Schema.fromKey(key))

export const Email = Schema.Trim.pipe(
  Schema.maxLength(254),
  Schema.pattern(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { message: () => "must be an email address" })
)

/** Daily limits: null (or absent) means unlimited. */
export const DailyLimit = Schema.NullOr(Schema.Int.pipe(Schema.between(0, 1_000_000_000)))
