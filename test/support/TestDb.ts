/**
 * A database per test file: with TEST_DATABASE_URL, a fresh database on that
 * real server (dropped afterwards); without it, Parley's embedded PGlite in
 * memory.
 */
import { Effect, Option } from "effect"
import { randomBytes } from "node:crypto"
import pg from "pg"

export const realDatabaseUrl = (): string | undefined => {
  const url = process.env["TEST_DATABASE_URL"]
  return url !== undefined && url.trim() !== "" ? url : undefined
}

const withDatabase = (admin: string, sql: string) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: admin })
    await client.connect()
    try {
      await client.query(sql)
    } finally {
      await client.end()
    }
  })

/** Some(url of a fresh database) on the real server, None for the embedded one. */
export const freshDatabase: Effect.Effect<Option.Option<string>, never, import("effect").Scope.Scope> = Effect.suspend(() => {
  const admin = realDatabaseUrl()
  if (admin === undefined) return Effect.succeed(Option.none())
  const name = `parley_t_${randomBytes(6).toString("hex")}`
  const url = new URL(admin)
  url.pathname = `/${name}`
  return Effect.acquireRelease(
    withDatabase(admin, `CREATE DATABASE ${name}`).pipe(Effect.as(Option.some(url.toString()))),
    () => withDatabase(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.ignore)
  )
})
