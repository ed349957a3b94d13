/** Memories: short facts about a user that the chat pipeline brings into prompts. */
import { Schema } from "effect"
import { DbTimestamp, snake, Timestamp, UserId } from "../Http/Schemas.js"
import { cursorOf, EpochMicros, listParams, Page, TimeKey } from "../Sessions/Paging.js"

export const MemoryId = Schema.UUID.pipe(Schema.brand("MemoryId"))
export type MemoryId = typeof MemoryId.Type

export const MAX_CONTENT_CHARS = 2000

/** Postgres text cannot hold NUL: refused here as a 422, not by the database as a 500. */
export const noNul = <A extends string, I, R>(self: Schema.Schema<A, I, R>) =>
  self.pipe(Schema.filter((s) => !s.includes("\u0000"), { message: () => "must not contain NUL (\\u0000) characters" }))

export const MemoryContent = Schema.Trim.pipe(
  noNul,
  Schema.minLength(1, { message: () => "content must not be empty" }),
  Schema.maxLength(MAX_CONTENT_CHARS, { message: () => `content must be at most ${MAX_CONTENT_CHARS} characters` })
)

export const Memory = Schema.Struct({
  id: MemoryId,
  content: Schema.String,
  sourceMessageId: snake(Schema.NullOr(Schema.UUID), "source_message_id"),
  createdAt: snake(Timestamp, "created_at")
}).annotations({ identifier: "Memory" })
export type Memory = typeof Memory.Type

export const CreateMemory = Schema.Struct({ content: MemoryContent }).annotations({
  identifier: "CreateMemory",
  parseOptions: { onExcessProperty: "error" }
})
export type CreateMemory = typeof CreateMemory.Type

/** A full-text page is ordered by score (relevance with recency), the plain list by time. */
export const RankKey = Schema.Struct({ score: Schema.Finite, id: Schema.UUID })
export type RankKey = typeof RankKey.Type
export const MemoryCursor = cursorOf(Schema.Union(TimeKey, RankKey))

export const ListMemoriesParams = Schema.Struct({
  ...listParams(MemoryCursor).fields,
  query: Schema.optional(Schema.String.pipe(noNul, Schema.maxLength(500)))
}).annotations({ identifier: "ListMemoriesParams" })
export type ListMemoriesParams = typeof ListMemoriesParams.Type

export const MemoryPage = Page(Memory, "MemoryPage")

export const MemoryRow = Schema.Struct({
  id: MemoryId,
  userId: UserId,
  content: Schema.String,
  sourceMessageId: Schema.NullOr(Schema.UUID),
  createdAt: DbTimestamp
})
export type MemoryRow = typeof MemoryRow.Type

/** A listed row carries its sort key: exact microseconds (int8 arrives as a string) and the score. */
export const ListedMemoryRow = Schema.Struct({
  ...MemoryRow.fields,
  sortMicros: Schema.compose(Schema.NumberFromString, EpochMicros),
  score: Schema.NullOr(Schema.Number)
})
export type ListedMemoryRow = typeof ListedMemoryRow.Type

export const toMemory = (row: MemoryRow): Memory => ({
  id: row.id,
  content: row.content,
  sourceMessageId: row.sourceMessageId,
  createdAt: row.createdAt
})
