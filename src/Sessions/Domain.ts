import { Schema } from "effect"
import { AgentId } from "../Agents/Domain.js"
import { DbTimestamp, snake, Timestamp } from "../Http/Schemas.js"
import { Metadata, SafeText, strict } from "./Values.js"

export const SessionId = Schema.UUID.pipe(Schema.brand("SessionId"))
export type SessionId = typeof SessionId.Type
export const MessageId = Schema.UUID.pipe(Schema.brand("MessageId"))
export type MessageId = typeof MessageId.Type

export const TITLE_MAX = 200
export const PREVIEW_CHARS = 120

export const Title = SafeText.pipe(Schema.maxLength(TITLE_MAX))

export const CreateSession = Schema.Struct({
  title: Schema.optionalWith(Schema.NullOr(Title), { default: () => null }),
  agentId: Schema.optionalWith(Schema.NullOr(AgentId), { default: () => null }).pipe(Schema.fromKey("agent_id")),
  metadata: Schema.optionalWith(Metadata, { default: () => ({}) })
}).annotations({ ...strict, identifier: "CreateSession" })
export type CreateSession = typeof CreateSession.Type

/** Absent: unchanged; `null` clears the title or the agent; `metadata` replaces the whole object. */
export const UpdateSession = Schema.Struct({
  title: Schema.optional(Schema.NullOr(Title)),
  agentId: Schema.optional(Schema.NullOr(AgentId)).pipe(Schema.fromKey("agent_id")),
  metadata: Schema.optional(Metadata)
}).annotations({ ...strict, identifier: "UpdateSession" })
export type UpdateSession = typeof UpdateSession.Type

/**
 * Optimistic concurrency for PATCH travels in the `If-Match` header (the
 * session's `version`, bare or quoted like an ETag), not in the body: the
 * body stays the resource's fields, and a client that does not care sends
 * no header. A mismatch is 409 ERR_CONFLICT.
 */
export const IfMatchVersion = Schema.transform(
  Schema.String.pipe(Schema.pattern(/^(W\/)?("[1-9][0-9]{0,8}"|[1-9][0-9]{0,8})$/, {
    message: () => "If-Match must be the session's version, e.g. \"3\""
  })),
  Schema.Int,
  { strict: true, decode: (s) => Number(s.replace(/^W\//, "").replace(/"/g, "")), encode: (n) => `"${n}"` }
)

export const SessionHeaders = Schema.Struct({ "if-match": Schema.optional(IfMatchVersion) })

const DbInt = Schema.Union(Schema.Number, Schema.NumberFromString)

/** A session with its message statistics, as the one view query returns it. */
export const SessionRow = Schema.Struct({
  id: SessionId,
  title: Schema.NullOr(Schema.String),
  agentId: Schema.NullOr(AgentId),
  metadata: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  version: Schema.Number,
  messageCount: DbInt,
  lastMessageAt: Schema.NullOr(DbTimestamp),
  lastMessagePreview: Schema.NullOr(Schema.String),
  createdAt: DbTimestamp,
  updatedAt: DbTimestamp,
  /** The list's sort key, exact to the microsecond (see Paging). */
  sortMicros: DbInt
})
export type SessionRow = typeof SessionRow.Type

export const Session = Schema.Struct({
  id: SessionId,
  title: Schema.NullOr(Schema.String),
  agentId: snake(Schema.NullOr(AgentId), "agent_id"),
  metadata: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  version: Schema.Int,
  messageCount: snake(Schema.Int, "message_count"),
  lastMessageAt: snake(Schema.NullOr(Timestamp), "last_message_at"),
  lastMessagePreview: snake(Schema.NullOr(Schema.String), "last_message_preview").annotations({
    description: `The first ${PREVIEW_CHARS} characters of the last message.`
  }),
  createdAt: snake(Timestamp, "created_at"),
  updatedAt: snake(Timestamp, "updated_at")
}).annotations({ identifier: "Session" })

export const Role = Schema.Literal("system", "user", "assistant")
export const MessageStatus = Schema.Literal("completed", "interrupted", "failed")
export const MemoryStatus = Schema.Literal("pending", "saved", "failed", "skipped")

export const MessageRow = Schema.Struct({
  id: MessageId,
  sessionId: SessionId,
  seq: Schema.Number,
  role: Role,
  content: Schema.String,
  status: MessageStatus,
  model: Schema.NullOr(Schema.String),
  inputTokens: Schema.NullOr(Schema.Number),
  outputTokens: Schema.NullOr(Schema.Number),
  finishReason: Schema.NullOr(Schema.String),
  memoryStatus: Schema.NullOr(MemoryStatus),
  errorCode: Schema.NullOr(Schema.String),
  createdAt: DbTimestamp
})
export type MessageRow = typeof MessageRow.Type

export const Usage = Schema.Struct({
  inputTokens: snake(Schema.Number, "input_tokens"),
  outputTokens: snake(Schema.Number, "output_tokens")
}).annotations({ identifier: "Usage" })

/** The assistant-only fields are absent on user and system messages. */
export const Message = Schema.Struct({
  id: MessageId,
  sessionId: snake(SessionId, "session_id"),
  seq: Schema.Int,
  role: Role,
  content: Schema.String,
  status: MessageStatus,
  createdAt: snake(Timestamp, "created_at"),
  model: Schema.optional(Schema.NullOr(Schema.String)),
  usage: Schema.optional(Schema.NullOr(Usage)),
  finishReason: Schema.optional(Schema.NullOr(Schema.String)).pipe(Schema.fromKey("finish_reason")),
  memoryStatus: Schema.optional(Schema.NullOr(MemoryStatus)).pipe(Schema.fromKey("memory_status")),
  errorCode: Schema.optional(Schema.NullOr(Schema.String)).pipe(Schema.fromKey("error_code"))
}).annotations({ identifier: "Message" })
export type Message = typeof Message.Type

/** A stored message as the API shows it (also for the chat pipeline's replies). */
export const toMessage = (row: MessageRow): Message => {
  const base = {
    id: row.id,
    sessionId: row.sessionId,
    seq: row.seq,
    role: row.role,
    content: row.content,
    status: row.status,
    createdAt: row.createdAt
  }
  if (row.role !== "assistant") return base
  const usage = row.inputTokens === null && row.outputTokens === null
    ? null
    : { inputTokens: row.inputTokens ?? 0, outputTokens: row.outputTokens ?? 0 }
  return {
    ...base,
    model: row.model,
    usage,
    finishReason: row.finishReason,
    memoryStatus: row.memoryStatus,
    errorCode: row.errorCode
  }
}
