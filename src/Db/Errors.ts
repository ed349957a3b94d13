/**
 * Driver errors translated at the repository boundary: never leaked to a
 * client, never swallowed. What is not a known, expected failure is a defect
 * (logged with its error id, answered as ERR_INTERNAL).
 */
import { SqlError } from "@effect/sql/SqlError"
import { Cause, Effect, Option, ParseResult } from "effect"
import { AlreadyExists, Conflict, DbUnavailable, NotFound } from "../Errors.js"

type Kind = "unique" | "foreign_key" | "conflict" | "unavailable" | "other"

const connectionCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH"])
const unavailableMessages = [
  "Connection terminated",
  "timeout exceeded when trying to connect",
  "Query read timeout",
  "Client has encountered a connection error",
  "Connection ended",
  "the database system is",
  "terminating connection",
  "Client was closed"
]

const codeOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "code" in u && typeof u.code === "string" ? u.code : undefined
const messageOf = (u: unknown): string =>
  typeof u === "object" && u !== null && "message" in u && typeof u.message === "string" ? u.message : String(u)

export const classify = (cause: unknown): Kind => {
  const code = codeOf(cause)
  if (code === "23505") return "unique"
  if (code === "23503") return "foreign_key"
  if (code === "40001" || code === "40P01" || code === "55P03") return "conflict"
  // 57014: statement timeout; 57P0x: shutdown; 08xxx: connection exceptions; 53xxx: resources.
  if (code !== undefined && (code === "57014" || code.startsWith("57P") || code.startsWith("08") || code.startsWith("53"))) {
    return "unavailable"
  }
  if (code !== undefined && connectionCodes.has(code)) return "unavailable"
  const message = messageOf(cause)
  if (unavailableMessages.some((m) => message.includes(m))) return "unavailable"
  const nested = typeof cause === "object" && cause !== null && "cause" in cause ? cause.cause : undefined
  return nested !== undefined && nested !== cause ? classify(nested) : "other"
}

const unavailable = (error: SqlError) =>
  Effect.logWarning("database unavailable").pipe(
    Effect.annotateLogs({ code: "ERR_DB_UNAVAILABLE", cause: messageOf(error.cause) }),
    Effect.zipRight(Effect.fail(new DbUnavailable()))
  )

/** Catches the SqlError of an effect's error union, leaving the rest of it as it is. */
const catchSql = <A, E, R, E2>(
  effect: Effect.Effect<A, E, R>,
  f: (error: SqlError) => Effect.Effect<never, E2>
): Effect.Effect<A, Exclude<E, SqlError> | E2, R> =>
  Effect.catchAll(effect, (e): Effect.Effect<never, Exclude<E, SqlError> | E2> =>
    e instanceof SqlError ? f(e) : Effect.fail(e as Exclude<E, SqlError>))

/**
 * `sql.withTransaction` dies when its COMMIT or ROLLBACK fails (@effect/sql runs them under
 * `Effect.orDie`): on a connection lost mid-transaction that is an outage, not a bug.
 */
const outageDefects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | DbUnavailable, R> =>
  Effect.catchSomeDefect(effect, (defect) =>
    defect instanceof SqlError && classify(defect.cause) === "unavailable" ? Option.some(unavailable(defect)) : Option.none())

/** Reads: only an unreachable database is expected. */
export const orUnavailable = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  catchSql(outageDefects(effect), (error) => classify(error.cause) === "unavailable" ? unavailable(error) : Effect.die(error))

/** Writes: unique and foreign-key violations and lost races are expected too. */
export const writeErrors = <A, E, R>(effect: Effect.Effect<A, E, R>, what = "resource") =>
  catchSql(outageDefects(effect), (error): Effect.Effect<never, DbUnavailable | AlreadyExists | Conflict | NotFound> => {
    switch (classify(error.cause)) {
      case "unique":
        return Effect.fail(new AlreadyExists({ message: `A ${what} with these values already exists.` }))
      case "foreign_key":
        return Effect.fail(new NotFound({ message: `A ${what} refers to something that does not exist.` }))
      case "conflict":
        return Effect.fail(new Conflict())
      case "unavailable":
        return unavailable(error)
      case "other":
        return Effect.die(error)
    }
  })

/** Rows that do not match their schema, or a missing row where one must be, are bugs. */
export const rowsOrDie = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, Exclude<E, ParseResult.ParseError | Cause.NoSuchElementException>, R> =>
  Effect.catchAll(effect, (e) =>
    ParseResult.isParseError(e) || Cause.isNoSuchElementException(e)
      ? Effect.die(e)
      : Effect.fail(e as Exclude<E, ParseResult.ParseError | Cause.NoSuchElementException>))
