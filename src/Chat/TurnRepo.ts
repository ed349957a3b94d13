/**
 * The SQL of a chat turn: the session with its agent, the per-session lease
 * that serialises turns across instances, the user message (with two seqs
 * allocated at once, so an assistant reply always sits right after its
 * question), the bounded history, and the assistant message.
 */
import { SqlClient, SqlSchema } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Option, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { AgentParameters } from "../Agents/Domain.js"
import { JobsConfig } from "../Config.js"
import { orUnavailable, rowsOrDie } from "../Db/Errors.js"
import { jobRow } from "../Jobs/Jobs.js"
import { MEMORY_EXTRACT } from "../Memories/Extraction.js"
import { NotFound, SessionPersistFailed } from "../Errors.js"
import type { UserId } from "../Http/Schemas.js"
import { MessageRow, type SessionId } from "../Sessions/Domain.js"

export const TurnContext = Schema.Struct({
  sessionId: Schema.String,
  title: Schema.NullOr(Schema.String),
  agentId: Schema.NullOr(Schema.String),
  systemPrompt: Schema.NullOr(Schema.String),
  agentModel: Schema.NullOr(Schema.String),
  parameters: Schema.NullOr(AgentParameters),
  memoryEnabled: Schema.NullOr(Schema.Boolean)
})
export type TurnContext = typeof TurnContext.Type

export interface AssistantReply {
  readonly content: string
  readonly status: "completed" | "interrupted" | "failed"
  readonly model: string | null
  readonly inputTokens: number | null
  readonly outputTokens: number | null
  readonly finishReason: string | null
  readonly memoryStatus: "pending" | "saved" | "failed" | "skipped" | null
  readonly errorCode: string | null
}

const HistoryRow = Schema.Struct({ role: Schema.Literal("system", "user", "assistant"), content: Schema.String })

export class TurnRepo extends Effect.Service<TurnRepo>()("parley/TurnRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const jobs = yield* JobsConfig

    const context = (userId: UserId, sessionId: SessionId) =>
      SqlSchema.findOne({
        Request: Schema.Void,
        Result: TurnContext,
        execute: () => sql`
          SELECT s.id AS session_id, s.title, s.agent_id, a.system_prompt, a.model AS agent_model, a.parameters, a.memory_enabled
          FROM sessions s LEFT JOIN agents a ON a.id = s.agent_id
          WHERE s.id = ${sessionId} AND s.user_id = ${userId}`
      })(undefined).pipe(
        rowsOrDie,
        orUnavailable,
        Effect.flatMap(Option.match({
          onNone: () => Effect.fail(new NotFound({ message: "Session not found." })),
          onSome: Effect.succeed
        })),
        Effect.withSpan("TurnRepo.context", { captureStackTrace: false })
      )

    /** Takes the session's lease if it is free or expired; true when taken. */
    const tryLease = (sessionId: SessionId, owner: string, leaseMs: number) =>
      sql`UPDATE sessions SET turn_lease_owner = ${owner}, turn_lease_until = now() + ${leaseMs} * interval '1 millisecond'
          WHERE id = ${sessionId} AND (turn_lease_until IS NULL OR turn_lease_until < now() OR turn_lease_owner = ${owner})
          RETURNING id`.pipe(orUnavailable, Effect.map((rows) => rows.length === 1))

    /** Extends the lease `owner` holds; never takes a free or expired one. */
    const renewLease = (sessionId: SessionId, owner: string, leaseMs: number) =>
      sql`UPDATE sessions SET turn_lease_until = now() + ${leaseMs} * interval '1 millisecond'
          WHERE id = ${sessionId} AND turn_lease_owner = ${owner}`.pipe(Effect.asVoid, orUnavailable)

    const releaseLease = (sessionId: SessionId, owner: string) =>
      sql`UPDATE sessions SET turn_lease_owner = NULL, turn_lease_until = NULL WHERE id = ${sessionId} AND turn_lease_owner = ${owner}`.pipe(
        Effect.asVoid,
        orUnavailable
      )

    /** The user message at seq n, with n+1 reserved for the reply; the first one titles an untitled session. */
    // One statement (a data-modifying CTE), so one round trip and no BEGIN/COMMIT: both writes or neither.
    const appendUser = (userId: UserId, sessionId: SessionId, content: string) =>
      Effect.gen(function*() {
        const rows = yield* sql`
          WITH slot AS (
            UPDATE sessions SET next_seq = next_seq + 2, updated_at = now(),
              title = COALESCE(title, NULLIF(left(regexp_replace(${content}, '\\s+', ' ', 'g'), 80), ''))
            WHERE id = ${sessionId} AND user_id = ${userId}
            RETURNING next_seq - 2 AS seq
          )
          INSERT INTO messages (id, session_id, user_id, seq, role, content, status)
          SELECT ${randomUUID()}, ${sessionId}, ${userId}, slot.seq, 'user', ${content}, 'completed' FROM slot
          RETURNING *`
        if (rows[0] === undefined) return yield* Effect.fail(new NotFound({ message: "Session not found." }))
        return yield* Schema.decodeUnknown(MessageRow)(rows[0])
      }).pipe(rowsOrDie, orUnavailable, Effect.withSpan("TurnRepo.appendUser", { captureStackTrace: false }))

    /** Completed turns before `beforeSeq`, newest kept within `budgetChars`, oldest first. */
    const history = (sessionId: SessionId, beforeSeq: number, budgetChars: number) =>
      SqlSchema.findAll({
        Request: Schema.Void,
        Result: HistoryRow,
        execute: () => sql`
          SELECT role, content FROM (
            SELECT role, content, seq, sum(length(content)) OVER (ORDER BY seq DESC) AS running
            FROM messages
            WHERE session_id = ${sessionId} AND seq < ${beforeSeq} AND content <> ''
              AND (status = 'completed' OR (role = 'assistant' AND status = 'interrupted'))
            ORDER BY seq DESC LIMIT 500
          ) h WHERE running <= ${budgetChars} ORDER BY seq ASC`
      })(undefined).pipe(rowsOrDie, orUnavailable, Effect.withSpan("TurnRepo.history", { captureStackTrace: false }))

    /** The reply at its reserved seq; a failure to store it is never reported as success. */
    const appendAssistant = (userId: UserId, sessionId: SessionId, seq: number, reply: AssistantReply) =>
      Effect.gen(function*() {
        const messageId = randomUUID()
        // One statement: the reply, the session's updated_at and — when its memories are to be
        // extracted — the job, all or nothing (a reply is never stored without its job).
        const job = reply.memoryStatus === "pending"
          ? sql`, job AS (INSERT INTO jobs ${
            sql.insert(jobRow({
              kind: MEMORY_EXTRACT,
              userId,
              payload: { message_id: messageId, session_id: sessionId },
              maxAttempts: jobs.maxAttempts
            }))
          })`
          : sql``
        const rows = yield* sql`
          WITH m AS (INSERT INTO messages ${
          sql.insert({
            id: messageId,
            sessionId,
            userId,
            seq,
            role: "assistant",
            // Postgres text cannot hold NUL; a model's stray NUL must not cost the reply.
            content: reply.content.replaceAll("\u0000", "\uFFFD"),
            status: reply.status,
            model: reply.model,
            inputTokens: reply.inputTokens,
            outputTokens: reply.outputTokens,
            finishReason: reply.finishReason,
            memoryStatus: reply.memoryStatus,
            errorCode: reply.errorCode
          })
        } RETURNING *),
          touched AS (UPDATE sessions SET updated_at = now() WHERE id = ${sessionId})
          ${job}
          SELECT * FROM m`
        return yield* Schema.decodeUnknown(MessageRow)(rows[0])
      }).pipe(
        // withTransaction dies when its COMMIT or ROLLBACK fails (a connection lost mid-write): still a persist failure.
        Effect.catchSomeDefect((defect) => defect instanceof SqlError ? Option.some(Effect.fail(defect)) : Option.none()),
        Effect.catchAll((cause) => {
          const error = new SessionPersistFailed()
          return Effect.logError("assistant message not stored").pipe(
            Effect.annotateLogs({ code: "ERR_SESSION_PERSIST_FAILED", error_id: error.errorId, session_id: sessionId, cause: String(cause) }),
            Effect.zipRight(Effect.fail(error))
          )
        }),
        Effect.withSpan("TurnRepo.appendAssistant", { captureStackTrace: false })
      )

    return { context, tryLease, renewLease, releaseLease, appendUser, history, appendAssistant } as const
  })
}) {}
