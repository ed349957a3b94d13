/**
 * Numbered migrations (`migrations/NNNN_name.ts`) loaded from the folder by
 * the @effect/sql Migrator: adding a file is the whole change, no list to keep.
 */
import { NodeContext } from "@effect/platform-node"
import { fromFileSystem } from "@effect/sql/Migrator/FileSystem"
import { PgMigrator } from "@effect/sql-pg"
import { Layer } from "effect"
import { fileURLToPath } from "node:url"

const directory = fileURLToPath(new URL("./migrations", import.meta.url))

export const MigratorLive = PgMigrator.layer({
  loader: fromFileSystem(directory),
  table: "parley_migrations"
}).pipe(Layer.provide(NodeContext.layer))
