import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE agents (
      id uuid PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      name text NOT NULL,
      system_prompt text NOT NULL DEFAULT '',
      model text,
      parameters jsonb NOT NULL DEFAULT '{}',
      memory_enabled boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT agents_user_name_key UNIQUE (user_id, name)
    )`
  // The list: the caller's agents, newest first.
  yield* sql`CREATE INDEX agents_user_created_idx ON agents (user_id, created_at, id)`

  yield* sql`
    CREATE TABLE sessions (
      id uuid PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      agent_id uuid REFERENCES agents(id) ON DELETE SET NULL,
      title text,
      metadata jsonb NOT NULL DEFAULT '{}',
      next_seq integer NOT NULL DEFAULT 1,
      version integer NOT NULL DEFAULT 1,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
  // The list's keyset order (scanned backwards for DESC); a page is an index range.
  yield* sql`CREATE INDEX sessions_user_updated_idx ON sessions (user_id, updated_at, id)`
  // Deleting an agent sets its sessions' agent_id to null: find them without a scan.
  yield* sql`CREATE INDEX sessions_agent_idx ON sessions (agent_id) WHERE agent_id IS NOT NULL`

  yield* sql`
    CREATE TABLE messages (
      id uuid PRIMARY KEY,
      session_id uuid NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
      user_id uuid NOT NULL,
      seq integer NOT NULL,
      role text NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
      content text NOT NULL,
      status text NOT NULL CHECK (status IN ('completed', 'interrupted', 'failed')),
      model text,
      input_tokens integer,
      output_tokens integer,
      finish_reason text,
      memory_status text CHECK (memory_status IN ('pending', 'saved', 'failed', 'skipped')),
      error_code text,
      created_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT messages_session_seq_key UNIQUE (session_id, seq)
    )`
  // (session_id, seq) serves history pages, the last message and the count; user_id serves user deletion.
  yield* sql`CREATE INDEX messages_user_idx ON messages (user_id)`

  yield* sql`
    CREATE TABLE feedback (
      id uuid PRIMARY KEY,
      message_id uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
      user_id uuid NOT NULL,
      rating text NOT NULL CHECK (rating IN ('up', 'down')),
      comment text CHECK (char_length(comment) <= 2000),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT feedback_message_user_key UNIQUE (message_id, user_id)
    )`
  yield* sql`CREATE INDEX feedback_user_idx ON feedback (user_id)`
})
