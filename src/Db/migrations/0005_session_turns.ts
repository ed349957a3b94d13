import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/** A lease that serialises the turns of one session across instances without holding a connection. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE sessions ADD COLUMN turn_lease_owner text, ADD COLUMN turn_lease_until timestamptz`
})
