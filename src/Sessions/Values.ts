/**
 * Input values every data-plane body shares: text Postgres can store, and a
 * bounded JSON object for free-form metadata. What Postgres would refuse is
 * refused here first, as a 422 naming the field, never a driver error.
 */
import { Schema } from "effect"

const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** `text` columns reject NUL; jsonb and UTF-8 cannot carry unpaired surrogates. */
export const isStorableText = (s: string): boolean => !s.includes("\u0000") && !loneSurrogate.test(s)

export const SafeText = Schema.String.pipe(
  Schema.filter(isStorableText, { message: () => "must not contain NUL characters or unpaired surrogates" })
)

/**
 * Request bodies are strict: an unknown key is a 422, not silently ignored
 * (a misspelt `titel` must not look like success). Applies to nested values.
 */
export const strict = { parseOptions: { onExcessProperty: "error" } } as const

export const METADATA_MAX_KEYS = 50
export const METADATA_MAX_BYTES = 16 * 1024
/** Deep enough for any sensible document; shallow enough for Postgres' recursive JSON parser. */
export const METADATA_MAX_DEPTH = 20

const jsonSafe = (u: unknown, depth: number): boolean => {
  if (depth > METADATA_MAX_DEPTH) return false
  if (u === null || typeof u === "boolean") return true
  if (typeof u === "number") return Number.isFinite(u)
  if (typeof u === "string") return isStorableText(u)
  if (Array.isArray(u)) return u.every((x) => jsonSafe(x, depth + 1))
  if (typeof u === "object") return Object.entries(u).every(([k, v]) => isStorableText(k) && jsonSafe(v, depth + 1))
  return false
}

/**
 * `__proto__` is refused as a key: decoding into a fresh object would turn it
 * into the prototype and drop it silently. With `strict`, a refused key is a 422.
 */
const MetadataKey = SafeText.pipe(Schema.filter((k) => k !== "__proto__", { message: () => "reserved key" }))

/** A JSON object of at most 50 keys and 16 KiB serialized. */
export const Metadata = Schema.Record({ key: MetadataKey, value: Schema.Unknown }).pipe(
  Schema.filter((m) => Object.keys(m).length <= METADATA_MAX_KEYS, {
    message: () => `metadata may have at most ${METADATA_MAX_KEYS} keys`
  }),
  Schema.filter((m) => jsonSafe(m, 0), {
    message: () => `metadata must be plain JSON, nested at most ${METADATA_MAX_DEPTH} deep, with storable strings`
  }),
  Schema.filter((m) => Buffer.byteLength(JSON.stringify(m)) <= METADATA_MAX_BYTES, {
    message: () => `metadata may be at most ${METADATA_MAX_BYTES} bytes as JSON`
  })
).annotations({
  identifier: "Metadata",
  description: `A JSON object: at most ${METADATA_MAX_KEYS} keys, ${METADATA_MAX_BYTES} bytes serialized.`,
  // Values are JSON, not any JS value: property tests send what they generate.
  arbitrary: () => (fc) =>
    fc.dictionary(
      fc.string({ maxLength: 20 }).filter((k) => k !== "__proto__"),
      fc.jsonValue({ maxDepth: 2 }),
      { maxKeys: 8 }
    )
})
export type Metadata = typeof Metadata.Type
