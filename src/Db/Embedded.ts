/**
 * The embedded database: PGlite (real Postgres compiled to WASM) behind a
 * loopback pglite-socket server, so the same `@effect/sql-pg` client and the
 * same SQL serve both the embedded and the external database.
 */
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { Effect, Redacted } from "effect"
import { mkdirSync } from "node:fs"
import { join } from "node:path"

export class EmbeddedStartError extends Error {}

export const startEmbedded = (options: { readonly dataDir: string; readonly inMemory: boolean }) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        let dir: string | undefined
        if (!options.inMemory) {
          dir = join(options.dataDir, "pg")
          mkdirSync(dir, { recursive: true })
        }
        const db = await PGlite.create(dir !== undefined ? { dataDir: dir } : {})
        // pglite-socket serialises queries and keeps a transaction on the connection that opened it.
        const server = new PGLiteSocketServer({ db, port: 0, host: "127.0.0.1", maxConnections: 4 })
        await server.start()
        return { db, server, dir }
      },
      catch: (cause) => new EmbeddedStartError(`embedded database failed to start: ${String(cause)}`)
    }),
    ({ db, server }) => Effect.promise(async () => {
      await server.stop()
      await db.close()
    })
  ).pipe(
    Effect.tap(({ dir }) =>
      Effect.logInfo("embedded database started").pipe(
        Effect.annotateLogs({ data_dir: dir ?? "(memory)" })
      )
    ),
    Effect.map(({ server }) =>
      Redacted.make(`postgres://postgres:postgres@${server.getServerConn()}/postgres?sslmode=disable`)
    )
  )
