import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE memories (
      id uuid PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      content text NOT NULL CHECK (char_length(content) BETWEEN 1 AND 2000),
      content_hash text NOT NULL,
      source_message_id uuid REFERENCES messages(id) ON DELETE SET NULL,
      search tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
      created_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT memories_user_hash_key UNIQUE (user_id, content_hash)
    )`
  yield* sql`CREATE INDEX memories_search_idx ON memories USING gin (search)`
  // The list's keyset order, newest first; also serves user deletion.
  yield* sql`CREATE INDEX memories_user_created_idx ON memories (user_id, created_at DESC, id DESC)`
  // Deleting messages sets their memories' source to null: find them without a scan.
  yield* sql`CREATE INDEX memories_source_message_idx ON memories (source_message_id) WHERE source_message_id IS NOT NULL`

  yield* sql`
    CREATE TABLE mcp_servers (
      id uuid PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
      url text NOT NULL CHECK (char_length(url) <= 2000),
      transport text NOT NULL DEFAULT 'streamable_http' CHECK (transport IN ('streamable_http', 'sse')),
      headers jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
      enabled boolean NOT NULL DEFAULT true,
      last_checked_at timestamptz,
      last_status text CHECK (last_status IN ('ok', 'unreachable', 'error', 'timeout')),
      last_error text CHECK (char_length(last_error) <= 500),
      tool_count integer CHECK (tool_count >= 0),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT mcp_servers_user_name_key UNIQUE (user_id, name)
    )`
  yield* sql`CREATE INDEX mcp_servers_user_created_idx ON mcp_servers (user_id, created_at DESC, id DESC)`
})
