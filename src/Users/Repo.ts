/** Users, their API keys and daily usage rows. Only domain errors leave here. */
import { SqlClient, SqlSchema } from "@effect/sql"
import { DateTime, Effect, Option, Schema } from "effect"
import { createHash, randomBytes, randomUUID } from "node:crypto"
import { orUnavailable, rowsOrDie, writeErrors } from "../Db/Errors.js"
import { NotFound } from "../Errors.js"
import { ApiKeyId, DbTimestamp, UserId } from "../Http/Schemas.js"
import { type CreateUser, DbCount, UserRow } from "./Domain.js"

export const hashKey = (key: string): string => createHash("sha256").update(key).digest("hex")

const KeyRow = Schema.Struct({
  id: ApiKeyId,
  userId: UserId,
  name: Schema.NullOr(Schema.String),
  keyPrefix: Schema.String,
  createdAt: DbTimestamp
})

const AuthRow = Schema.Struct({ keyId: ApiKeyId, userId: UserId, keyPrefix: Schema.String })

const UsageRow = Schema.Struct({
  day: Schema.String,
  requests: DbCount,
  inputTokens: DbCount,
  outputTokens: DbCount
})

export class UsersRepo extends Effect.Service<UsersRepo>()("parley/UsersRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const insertUser = SqlSchema.single({
      Request: Schema.Struct({ id: UserId, email: Schema.String, dailyRequestLimit: Schema.NullOr(Schema.Number), dailyTokenLimit: Schema.NullOr(Schema.Number) }),
      Result: UserRow,
      execute: (u) => sql`INSERT INTO users ${sql.insert(u)} RETURNING id, email, daily_request_limit, daily_token_limit, created_at`
    })

    const findUser = SqlSchema.findOne({
      Request: UserId,
      Result: UserRow,
      execute: (id) => sql`SELECT id, email, daily_request_limit, daily_token_limit, created_at FROM users WHERE id = ${id}`
    })

    const create = (input: CreateUser) =>
      insertUser({ id: UserId.make(randomUUID()), ...input }).pipe(
        rowsOrDie,
        (e) => writeErrors(e, "user"),
        Effect.withSpan("UsersRepo.create", { captureStackTrace: false })
      )

    const findById = (id: UserId) =>
      findUser(id).pipe(rowsOrDie, orUnavailable, Effect.withSpan("UsersRepo.findById", { captureStackTrace: false }))

    /** Everything the user owns goes in one transaction; a failure leaves all of it in place. */
    const remove = (id: UserId) =>
      sql.withTransaction(Effect.gen(function*() {
        const found = yield* sql`SELECT id FROM users WHERE id = ${id} FOR UPDATE`
        if (found.length === 0) return false
        for (const statement of ownedRowsDeletes(id)) yield* statement
        yield* sql`DELETE FROM users WHERE id = ${id}`
        return true
      })).pipe(
        (e) => writeErrors(e, "user"),
        Effect.flatMap((deleted) => deleted ? Effect.void : Effect.fail(new NotFound({ message: "User not found." }))),
        Effect.withSpan("UsersRepo.remove", { captureStackTrace: false })
      )

    /** Children first; later features add their tables here, in dependency order. */
    const ownedRowsDeletes = (id: UserId) => [
      // memories before messages: their source_message_id would otherwise be set to null first, for nothing
      sql`DELETE FROM memories WHERE user_id = ${id}`,
      sql`DELETE FROM mcp_servers WHERE user_id = ${id}`,
      sql`DELETE FROM feedback WHERE user_id = ${id}`,
      sql`DELETE FROM messages WHERE user_id = ${id}`,
      sql`DELETE FROM sessions WHERE user_id = ${id}`,
      sql`DELETE FROM agents WHERE user_id = ${id}`,
      sql`DELETE FROM api_keys WHERE user_id = ${id}`,
      sql`DELETE FROM usage_daily WHERE user_id = ${id}`
    ]

    const issueKey = (userId: UserId, name: string | null) =>
      Effect.gen(function*() {
        const key = `pk_${randomBytes(32).toString("base64url")}`
        const row = yield* SqlSchema.single({
          Request: Schema.Void,
          Result: KeyRow,
          execute: () =>
            sql`INSERT INTO api_keys ${
              sql.insert({ id: randomUUID(), userId, name, keyHash: hashKey(key), keyPrefix: key.slice(0, 10) })
            } RETURNING id, user_id, name, key_prefix, created_at`
        })(undefined).pipe(rowsOrDie)
        return { ...row, key }
      }).pipe((e) => writeErrors(e, "key"), Effect.withSpan("UsersRepo.issueKey", { captureStackTrace: false }))

    /** Revokes a key; with `owner`, only that user's key (another's is not found). */
    const revokeKey = (keyId: ApiKeyId, owner: Option.Option<UserId>) =>
      Effect.gen(function*() {
        const rows = Option.isSome(owner)
          ? yield* sql`UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = ${keyId} AND user_id = ${owner.value} RETURNING id`
          : yield* sql`UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = ${keyId} RETURNING id`
        if (rows.length === 0) return yield* Effect.fail(new NotFound({ message: "Key not found." }))
      }).pipe(orUnavailable, Effect.withSpan("UsersRepo.revokeKey", { captureStackTrace: false }))

    /** One round trip: the live key's owner, touching last_used_at at most once a minute. */
    const authenticateKey = SqlSchema.findOne({
      Request: Schema.String,
      Result: AuthRow,
      execute: (hash) => sql`
        WITH k AS (
          SELECT id, user_id, key_prefix FROM api_keys WHERE key_hash = ${hash} AND revoked_at IS NULL
        ), touched AS (
          UPDATE api_keys SET last_used_at = now()
          WHERE id IN (SELECT id FROM k) AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
        )
        SELECT id AS key_id, user_id, key_prefix FROM k`
    })

    const usageToday = (userId: UserId) =>
      Effect.gen(function*() {
        const now = yield* DateTime.now
        const day = DateTime.formatIsoDateUtc(now)
        const rows = yield* SqlSchema.findAll({
          Request: Schema.Void,
          Result: UsageRow,
          execute: () => sql`SELECT day::text AS day, requests, input_tokens, output_tokens FROM usage_daily WHERE user_id = ${userId} AND day = ${day}::date`
        })(undefined).pipe(rowsOrDie)
        const row = rows[0]
        return {
          day,
          requests: row?.requests ?? 0,
          inputTokens: row?.inputTokens ?? 0,
          outputTokens: row?.outputTokens ?? 0,
          resetsAt: DateTime.add(DateTime.startOf(now, "day"), { days: 1 })
        }
      }).pipe(orUnavailable, Effect.withSpan("UsersRepo.usageToday", { captureStackTrace: false }))

    return {
      create,
      findById,
      remove,
      issueKey,
      revokeKey,
      authenticateKey: (hash: string) =>
        authenticateKey(hash).pipe(rowsOrDie, orUnavailable),
      usageToday
    } as const
  })
}) {}
