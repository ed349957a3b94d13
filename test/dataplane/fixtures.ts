/**
 * Data-plane test data. The chat pipeline is what appends messages in the
 * product; until then tests insert them directly, allocating seqs from the
 * session's `next_seq` the same way.
 */
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { type Reply, send, str } from "../support/Http.js"
import type { TestServerInfo } from "../support/TestServer.js"

export interface NewMessage {
  readonly role: "system" | "user" | "assistant"
  readonly content: string
  readonly status?: "completed" | "interrupted" | "failed"
  readonly model?: string | null
  readonly inputTokens?: number | null
  readonly outputTokens?: number | null
  readonly finishReason?: string | null
  readonly memoryStatus?: "pending" | "saved" | "failed" | "skipped" | null
  readonly errorCode?: string | null
}

/** Appends messages to a session; returns their ids in order. */
export const insertMessages = (sql: SqlClient.SqlClient, sessionId: string, messages: ReadonlyArray<NewMessage>) =>
  sql.withTransaction(Effect.gen(function*() {
    const [session] = yield* sql<{ userId: string; nextSeq: number }>`
      SELECT user_id, next_seq FROM sessions WHERE id = ${sessionId} FOR UPDATE`
    if (session === undefined) return yield* Effect.die(`no session ${sessionId}`)
    const rows = messages.map((m, i) => ({
      id: randomUUID(),
      sessionId,
      userId: session.userId,
      seq: session.nextSeq + i,
      role: m.role,
      content: m.content,
      status: m.status ?? "completed",
      model: m.model ?? null,
      inputTokens: m.inputTokens ?? null,
      outputTokens: m.outputTokens ?? null,
      finishReason: m.finishReason ?? null,
      memoryStatus: m.memoryStatus ?? null,
      errorCode: m.errorCode ?? null
    }))
    if (rows.length > 0) yield* sql`INSERT INTO messages ${sql.insert(rows)}`
    yield* sql`UPDATE sessions SET next_seq = next_seq + ${rows.length} WHERE id = ${sessionId}`
    return rows.map((r) => r.id)
  })).pipe(Effect.orDie)

const expectStatus = (what: string, reply: Reply, status: number) => {
  if (reply.status !== status) throw new Error(`${what}: ${reply.status} ${reply.text}`)
  return reply
}

/** A session made over HTTP; returns its id. */
export const createSession = (server: TestServerInfo, token: string, body: Record<string, unknown> = {}) =>
  Effect.map(send(server.url, "POST", "/v1/sessions", { token, body }), (r) =>
    str(expectStatus("create session", r, 201).json, "id"))

/** An agent made over HTTP; returns its id. */
export const createAgent = (server: TestServerInfo, token: string, body: Record<string, unknown> = {}) =>
  Effect.map(
    send(server.url, "POST", "/v1/agents", { token, body: { name: `agent ${randomUUID()}`, ...body } }),
    (r) => str(expectStatus("create agent", r, 201).json, "id")
  )

/**
 * `n` sessions with `perSession` messages each for one user, with
 * generate_series, a thousand sessions per statement (each statement stays
 * far below the statement timeout, even on a loaded machine).
 */
export const bulkSessions = (sql: SqlClient.SqlClient, userId: string, n: number, perSession: number) =>
  Effect.gen(function*() {
    for (let from = 1; from <= n; from += 1000) {
      const to = Math.min(n, from + 999)
      // updated_at one second apart plus a microsecond: keys that a millisecond cursor would get wrong
      yield* sql`
        WITH s AS (
          INSERT INTO sessions (id, user_id, title, metadata, next_seq, created_at, updated_at)
          SELECT gen_random_uuid(), ${userId}, 'bulk ' || i, jsonb_build_object('i', i), ${perSession + 1},
                 now() - i * interval '1 second', now() - i * interval '1 second' + interval '1 microsecond'
          FROM generate_series(${from}::int, ${to}::int) AS i
          RETURNING id, user_id, title
        )
        INSERT INTO messages (id, session_id, user_id, seq, role, content, status)
        SELECT gen_random_uuid(), s.id, s.user_id, k,
               CASE WHEN k % 2 = 1 THEN 'user' ELSE 'assistant' END,
               'message ' || k || ' of ' || s.title, 'completed'
        FROM s CROSS JOIN generate_series(1, ${perSession}::int) AS k`
    }
  }).pipe(Effect.orDie)

/** Decoded list page. */
export const pageOf = (reply: Reply): { data: Array<Record<string, unknown>>; next: string | null } => {
  const json = reply.json
  if (typeof json !== "object" || json === null || !("data" in json) || !Array.isArray(json.data)) {
    throw new Error(`not a page: ${reply.status} ${reply.text}`)
  }
  const next = "next_cursor" in json ? json.next_cursor : undefined
  if (next !== null && typeof next !== "string") throw new Error(`bad next_cursor: ${reply.text}`)
  return { data: json.data, next }
}
