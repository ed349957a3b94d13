/**
 * Keyset pagination shared by the data-plane lists: `?limit=` (1..100,
 * default 20) and `?cursor=` (opaque: base64url of the last row's sort key,
 * as JSON). A malformed cursor fails the url-params decode, so it is a 422
 * naming `cursor` before any handler runs.
 */
import { Schema } from "effect"
import { snake } from "../Http/Schemas.js"

export const DEFAULT_LIMIT = 20
export const MAX_LIMIT = 100

export const Limit = Schema.NumberFromString.pipe(
  Schema.int(),
  Schema.between(1, MAX_LIMIT, { message: () => `limit must be an integer between 1 and ${MAX_LIMIT}` })
)

/** An opaque cursor carrying `Key` as base64url JSON. */
export const cursorOf = <A, I>(key: Schema.Schema<A, I>) =>
  Schema.compose(Schema.StringFromBase64Url, Schema.parseJson(key)).annotations({
    message: () => ({ message: "cursor must be a next_cursor returned by a previous page", override: true })
  })

/** `?limit&cursor` for a list whose cursor decodes to `A`. */
export const listParams = <A>(cursor: Schema.Schema<A, string>) =>
  Schema.Struct({
    limit: Schema.optionalWith(Limit, { default: () => DEFAULT_LIMIT }),
    cursor: Schema.optional(cursor)
  })

export const Page = <S extends Schema.Schema.Any>(item: S, identifier: string) =>
  Schema.Struct({
    data: Schema.Array(item),
    nextCursor: snake(Schema.NullOr(Schema.String), "next_cursor")
  }).annotations({ identifier })

/**
 * Timestamps in cursors are whole microseconds since the epoch, read from
 * Postgres as exact numbers (`extract(epoch …)` is numeric since PG 14): a
 * JS Date keeps only milliseconds, and a key rounded to milliseconds would
 * repeat or skip rows within the same millisecond. Safe integers only
 * (±2^53 µs is years 1685..2255, well inside Postgres' range).
 */
export const EpochMicros = Schema.Int.pipe(Schema.between(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER))

/** A `(timestamp DESC, id DESC)` key: the newest first, ties broken by id. */
export const TimeKey = Schema.Struct({ t: EpochMicros, id: Schema.UUID })
export type TimeKey = typeof TimeKey.Type
export const TimeCursor = cursorOf(TimeKey)

/** An ascending `seq` key; bounded to Postgres' integer so a forged cursor is a 422, not a driver error. */
export const SeqKey = Schema.Struct({ seq: Schema.Int.pipe(Schema.between(0, 2_147_483_647)) })
export type SeqKey = typeof SeqKey.Type
export const SeqCursor = cursorOf(SeqKey)

/**
 * Fetch `limit + 1` rows; the extra one only says whether there is a next
 * page, whose cursor is the key of the last row returned.
 */
export const toPage = <Row, Item>(
  rows: ReadonlyArray<Row>,
  limit: number,
  toItem: (row: Row) => Item,
  keyOf: (row: Row) => string
): { readonly data: ReadonlyArray<Item>; readonly nextCursor: string | null } => {
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return {
    data: page.map(toItem),
    nextCursor: rows.length > limit && last !== undefined ? keyOf(last) : null
  }
}
