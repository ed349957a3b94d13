import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/** Durable background jobs, claimed with FOR UPDATE SKIP LOCKED. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE jobs (
      id uuid PRIMARY KEY,
      kind text NOT NULL,
      user_id uuid REFERENCES users(id) ON DELETE CASCADE,
      payload jsonb NOT NULL DEFAULT '{}',
      state text NOT NULL CHECK (state IN ('pending', 'running', 'done', 'dead')),
      attempts integer NOT NULL DEFAULT 0,
      max_attempts integer NOT NULL,
      run_at timestamptz NOT NULL DEFAULT now(),
      locked_by text,
      locked_until timestamptz,
      last_error_code text,
      last_error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
  // What a worker claims: due pending jobs and running jobs whose lease ran out (their instance died).
  yield* sql`CREATE INDEX jobs_claim_idx ON jobs (kind, run_at) WHERE state IN ('pending', 'running')`
  yield* sql`CREATE INDEX jobs_user_idx ON jobs (user_id)`
  yield* sql`CREATE INDEX jobs_state_idx ON jobs (state, kind)`
})
