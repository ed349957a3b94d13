/**
 * Memory extraction, as a background job per assistant reply in a session
 * with memory on: the provider (through the same resilient gateway) is asked
 * for durable facts about the user as JSON, which is Schema-validated; new
 * facts are stored without duplicates. The message's memory_status goes
 * pending → saved | failed; a failure is logged with ERR_MEMORY_EXTRACT_FAILED
 * and its error id, and is visible on the message.
 */
import { SqlClient } from "@effect/sql"
import { Duration, Effect, Option, Schema } from "effect"
import { JobsConfig, ProvidersConfig } from "../Config.js"
import { catalog, EventCodes, newErrorId } from "../Errors.js"
import { UserId } from "../Http/Schemas.js"
import { JobFailure, type Job, type JobKind } from "../Jobs/Jobs.js"
import { Gateway } from "../Providers/Gateway.js"
import { Memories } from "./Service.js"

export const MEMORY_EXTRACT = "memory.extract"

const Payload = Schema.Struct({ message_id: Schema.UUID, session_id: Schema.UUID })

const Facts = Schema.parseJson(Schema.Struct({
  facts: Schema.Array(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(2000))).pipe(Schema.maxItems(20))
}))

const instructions = [
  "You extract durable facts about the USER from one conversation turn, for long-term memory.",
  "Keep only facts about the user that stay true across conversations (name, preferences, projects, background).",
  "Reply with JSON only, exactly: {\"facts\": [\"...\"]}. Use an empty list when there is nothing durable. At most 5 facts, each under 200 characters."
].join(" ")

/** The first JSON object in a reply (models sometimes wrap it in prose or code fences). */
const jsonObjectIn = (text: string): string => {
  const start = text.indexOf("{")
  const end = text.lastIndexOf("}")
  return start >= 0 && end > start ? text.slice(start, end + 1) : text
}

const transient = new Set(["ProviderUnavailable", "ProviderTimeout", "ProviderRateLimited", "DbUnavailable"])

export const memoryExtractKind = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const gateway = yield* Gateway
  const memories = yield* Memories
  const cfg = yield* JobsConfig
  const providers = yield* ProvidersConfig
  const timeout = Option.getOrElse(cfg.memoryExtractTimeout, () => cfg.defaultTimeout)

  const run = (job: Job) =>
    Effect.gen(function*() {
      const payload = yield* Schema.decodeUnknown(Payload)(job.payload).pipe(
        Effect.mapError(() => new JobFailure({ code: EventCodes.memoryExtractFailed, message: "bad job payload", retryable: false }))
      )
      const userId = yield* Schema.decodeUnknown(UserId)(job.userId).pipe(
        Effect.mapError(() => new JobFailure({ code: EventCodes.memoryExtractFailed, message: "job without a user", retryable: false }))
      )
      const turn = yield* sql<{ role: string; content: string }>`
        SELECT m.role, m.content FROM messages a
        JOIN messages m ON m.session_id = a.session_id AND m.seq IN (a.seq - 1, a.seq)
        WHERE a.id = ${payload.message_id} AND a.user_id = ${userId} ORDER BY m.seq`.pipe(
        Effect.mapError((e) => new JobFailure({ code: "ERR_DB_UNAVAILABLE", message: e.message, retryable: true }))
      )
      if (turn.length === 0) return // the message (or its session) was deleted: nothing to remember
      const model = Option.orElse(cfg.memoryModel, () => providers.defaultModel)
      if (Option.isNone(model)) {
        return yield* Effect.fail(new JobFailure({ code: EventCodes.memoryExtractFailed, message: "no model for memory extraction", retryable: false }))
      }
      const served = yield* gateway.complete(model.value, {
        messages: [
          { role: "system", content: instructions },
          { role: "user", content: turn.map((m) => `${m.role === "user" ? "User" : "Assistant"}: ${m.content}`).join("\n\n") }
        ],
        temperature: 0
        // The job's own time limit ends a hung call (ERR_TASK_TIMEOUT); the gateway's is a backstop.
      }, { timeout: Duration.sum(timeout, Duration.seconds(1)) }).pipe(
        Effect.mapError((e) => new JobFailure({ code: catalog[e._tag].code, message: e.message, retryable: transient.has(e._tag) }))
      )
      const facts = yield* Schema.decodeUnknown(Facts)(jsonObjectIn(served.response.content)).pipe(
        Effect.mapError(() => new JobFailure({ code: EventCodes.memoryExtractFailed, message: "the model did not answer with {\"facts\": [...]}", retryable: false }))
      )
      for (const fact of facts.facts) {
        yield* memories.add(userId, fact.trim(), payload.message_id).pipe(
          Effect.catchTag("ValidationFailed", () => Effect.void),
          Effect.mapError((e) => new JobFailure({ code: catalog[e._tag].code, message: e.message, retryable: e._tag === "DbUnavailable" }))
        )
      }
      yield* sql`UPDATE messages SET memory_status = 'saved' WHERE id = ${payload.message_id}`.pipe(
        Effect.mapError((e) => new JobFailure({ code: "ERR_DB_UNAVAILABLE", message: e.message, retryable: true }))
      )
    }).pipe(Effect.withSpan("Memories.extract", { captureStackTrace: false }))

  const onDead = (job: Job, failure: JobFailure) =>
    Effect.gen(function*() {
      const errorId = newErrorId()
      const messageId = yield* Schema.decodeUnknown(Payload)(job.payload).pipe(Effect.map((p) => p.message_id), Effect.option)
      if (Option.isSome(messageId)) {
        yield* sql`UPDATE messages SET memory_status = 'failed' WHERE id = ${messageId.value}`.pipe(Effect.ignoreLogged)
      }
      yield* Effect.logError("memory extraction failed").pipe(Effect.annotateLogs({
        code: EventCodes.memoryExtractFailed,
        error_id: errorId,
        cause_code: failure.code,
        cause: failure.message.slice(0, 300),
        job_id: job.id,
        message_id: Option.getOrNull(messageId)
      }))
    })

  return {
    kind: MEMORY_EXTRACT,
    timeout,
    concurrency: cfg.concurrency,
    run,
    onDead
  } satisfies JobKind<never>
})
