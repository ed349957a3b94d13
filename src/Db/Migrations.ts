/**
 * Numbered migrations (`migrations/NNNN_name.ts`) found in their folder by the
 * @effect/sql Migrator: adding a file is the whole change, no list to keep.
 * The loader lives here (not in node_modules) so the dynamic import goes
 * through the same TypeScript loader as the rest of the code (tsx, vitest).
 */
import { NodeContext } from "@effect/platform-node"
import { Migrator } from "@effect/sql"
import { PgMigrator } from "@effect/sql-pg"
import { Effect, Layer } from "effect"
import { DbPool } from "./Pool.js"
import { readdirSync } from "node:fs"
import pg from "pg"
import { fileURLToPath } from "node:url"

const directory = new URL("./migrations/", import.meta.url)

const loader: Migrator.Loader = Effect.try({
  try: () =>
    readdirSync(fileURLToPath(directory))
      .flatMap((file): Array<Migrator.ResolvedMigration> => {
        const match = file.match(/^(\d+)_([^.]+)\.(js|ts)$/)
        if (match === null || match[1] === undefined || match[2] === undefined) return []
        return [[Number(match[1]), match[2], Effect.promise(() => import(new URL(file, directory).href))]]
      })
      .sort(([a], [b]) => a - b),
  catch: (error) => new Migrator.MigrationError({ reason: "failed", message: String(error) })
})

/**
 * Several instances may start at once on a fresh database: the first takes a
 * Postgres advisory lock on a connection of its own (outside the pool) and migrates; the others
 * wait for it, then find nothing to do. (The embedded database has one
 * process and one connection, so it needs no lock.)
 */
export const MigratorLive = Layer.effectDiscard(Effect.gen(function*() {
  const { embedded, pool } = yield* DbPool
  const migrate = PgMigrator.run({ loader, table: "parley_migrations" }).pipe(Effect.provide(NodeContext.layer))
  if (embedded) return yield* migrate
  // The lock's connection is not the pool's: with PARLEY_DB_POOL_MAX=1 the migrator needs the
  // pool's only connection while the lock is held (a pooled lock connection deadlocked startup).
  yield* Effect.acquireUseRelease(
    Effect.tryPromise(async () => {
      const client = new pg.Client(pool.options)
      client.on("error", () => {})
      try {
        await client.connect()
        await client.query("SELECT pg_advisory_lock(7270127)")
        return client
      } catch (e) {
        await client.end().catch(() => undefined)
        throw e
      }
    }),
    () => migrate,
    (client) => Effect.promise(() => client.query("SELECT pg_advisory_unlock(7270127)").catch(() => undefined).finally(() => client.end()))
  ).pipe(Effect.mapError((e) => e instanceof Migrator.MigrationError ? e : new Migrator.MigrationError({ reason: "failed", message: String(e) })))
}))
