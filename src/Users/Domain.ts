import { Schema } from "effect"
import { ApiKeyId, DailyLimit, DbTimestamp, Email, snake, Timestamp, UserId } from "../Http/Schemas.js"
import { isStorableText } from "../Sessions/Values.js"

/** Text Postgres can store: refused here as a 422 naming the field, not by the database as a 500. */
const storable = <A extends string, I, R>(self: Schema.Schema<A, I, R>) =>
  self.pipe(Schema.filter(isStorableText, { message: () => "must not contain NUL characters or unpaired surrogates" }))

/** bigint columns arrive as strings from the driver. */
export const DbCount = Schema.Union(Schema.Number, Schema.NumberFromString)

export const UserRow = Schema.Struct({
  id: UserId,
  email: Schema.String,
  dailyRequestLimit: Schema.NullOr(DbCount),
  dailyTokenLimit: Schema.NullOr(DbCount),
  createdAt: DbTimestamp
})
export type UserRow = typeof UserRow.Type

export const User = Schema.Struct({
  id: UserId,
  email: Schema.String,
  dailyRequestLimit: snake(Schema.NullOr(Schema.Number), "daily_request_limit"),
  dailyTokenLimit: snake(Schema.NullOr(Schema.Number), "daily_token_limit"),
  createdAt: snake(Timestamp, "created_at")
}).annotations({ identifier: "User" })

export const CreateUser = Schema.Struct({
  email: storable(Email),
  dailyRequestLimit: Schema.optionalWith(DailyLimit, { default: () => null }).pipe(Schema.fromKey("daily_request_limit")),
  dailyTokenLimit: Schema.optionalWith(DailyLimit, { default: () => null }).pipe(Schema.fromKey("daily_token_limit"))
}).annotations({ identifier: "CreateUser" })
export type CreateUser = typeof CreateUser.Type

export const CreateKey = Schema.Struct({
  name: Schema.optional(storable(Schema.String.pipe(Schema.maxLength(100))))
}).annotations({ identifier: "CreateKey" })

export const IssuedKey = Schema.Struct({
  id: ApiKeyId,
  userId: snake(UserId, "user_id"),
  name: Schema.NullOr(Schema.String),
  key: Schema.String.annotations({ description: "The API key. Shown once; only its hash is stored." }),
  keyPrefix: snake(Schema.String, "key_prefix"),
  createdAt: snake(Timestamp, "created_at")
}).annotations({ identifier: "IssuedKey" })

export const Usage = Schema.Struct({
  day: Schema.String,
  requests: Schema.Number,
  inputTokens: snake(Schema.Number, "input_tokens"),
  outputTokens: snake(Schema.Number, "output_tokens"),
  resetsAt: snake(Timestamp, "resets_at")
})

export const Me = Schema.Struct({
  ...User.fields,
  usage: Usage
}).annotations({ identifier: "Me" })
