/**
 * The memories service: what the HTTP handlers and the chat pipeline call.
 * Content is deduplicated per user by the hash of its normalized form.
 */
import { Effect, Schema } from "effect"
import { createHash } from "node:crypto"
import { ValidationFailed } from "../Errors.js"
import type { UserId } from "../Http/Schemas.js"
import { type TimeKey, TimeCursor, toPage } from "../Sessions/Paging.js"
import {
  type ListedMemoryRow,
  type ListMemoriesParams,
  MemoryContent,
  MemoryCursor,
  type MemoryId,
  type MemoryRow,
  type RankKey,
  toMemory
} from "./Domain.js"
import { MemoriesRepo } from "./Repo.js"

/** Trimmed, lower-cased, whitespace collapsed: "I like  Tea" and "i like tea" are one memory. */
export const normalizeContent = (content: string): string => content.trim().toLowerCase().replace(/\s+/g, " ")

export const contentHash = (content: string): string =>
  createHash("sha256").update(normalizeContent(content)).digest("hex")

const MAX_QUERY_WORDS = 64
const MAX_WORD_CHARS = 64
export const MAX_RELEVANT = 100

/**
 * A prompt as an OR-query of its words, for `to_tsquery`: a prompt is a
 * sentence, and requiring every word (websearch semantics) would match almost
 * nothing; ts_rank still puts memories sharing more words first. Only letters
 * and digits pass, so nothing in the query is tsquery syntax.
 */
export const promptQuery = (text: string): string | null => {
  const words = new Set<string>()
  for (const match of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    if (match[0].length <= MAX_WORD_CHARS) words.add(match[0])
    if (words.size >= MAX_QUERY_WORDS) break
  }
  return words.size === 0 ? null : [...words].join(" | ")
}

const encodeTimeCursor = Schema.encodeSync(TimeCursor)
const encodeMemoryCursor = Schema.encodeSync(MemoryCursor)

const keyOf = (ranked: boolean) => (row: ListedMemoryRow): string =>
  ranked && row.score !== null
    ? encodeMemoryCursor({ score: row.score, id: row.id })
    : encodeTimeCursor({ t: row.sortMicros, id: row.id })

const none: ReadonlyArray<MemoryRow> = []

const wrongCursor = new ValidationFailed({
  message: "cursor does not belong to this list (with or without query); start again without it",
  param: "cursor"
})

export class Memories extends Effect.Service<Memories>()("parley/Memories", {
  dependencies: [MemoriesRepo.Default],
  effect: Effect.gen(function*() {
    const repo = yield* MemoriesRepo

    /** A duplicate (same normalized content) is not an error: the existing memory, `created: false`. */
    const add = Effect.fn("Memories.add", { captureStackTrace: false })(function*(userId: UserId, content: string, sourceMessageId: string | null = null) {
      const text = yield* Schema.decodeUnknown(MemoryContent)(content).pipe(
        Effect.mapError((e) => new ValidationFailed({ message: `content: ${e.message}`, param: "content" }))
      )
      const row = yield* repo.add({ userId, content: text, contentHash: contentHash(text), sourceMessageId })
      const { created, ...memory } = row
      return { memory, created }
    })

    const list = Effect.fn("Memories.list", { captureStackTrace: false })(function*(userId: UserId, params: ListMemoriesParams) {
      const query = params.query?.trim() ?? ""
      const ranked = query !== ""
      const after: TimeKey | RankKey | null = params.cursor ?? null
      if (after !== null && ("score" in after) !== ranked) return yield* Effect.fail(wrongCursor)
      const rows = yield* repo.list(userId, { query: ranked ? query : null, limit: params.limit + 1, after })
      return toPage(rows, params.limit, toMemory, keyOf(ranked))
    })

    const remove = Effect.fn("Memories.remove", { captureStackTrace: false })(function*(userId: UserId, id: MemoryId) {
      yield* repo.remove(userId, id)
    })

    /**
     * The top `k` memories for a prompt: full-text matches ranked with
     * recency; when nothing matches, the `k` most recent. Every chat turn asks.
     */
    const relevant = Effect.fn("Memories.relevant", { captureStackTrace: false })(function*(userId: UserId, text: string, k: number) {
      const limit = Math.min(Math.floor(k), MAX_RELEVANT)
      if (!(limit > 0)) return none
      const rows = yield* repo.relevant(userId, promptQuery(text), limit)
      return rows.map(({ ord: _, ...memory }): MemoryRow => memory)
    })

    return { add, list, remove, relevant } as const
  })
}) {}
