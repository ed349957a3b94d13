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
import { readdirSync } from "node:fs"
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

export const MigratorLive = PgMigrator.layer({ loader, table: "parley_migrations" }).pipe(
  Layer.provide(NodeContext.layer)
)
