/**
 * SqlLive: Postgres from DATABASE_URL, else the embedded PGlite. Startup
 * retries the first connection on a Schedule, then fails with a clear message.
 * Every statement runs under a timeout, so a hung database is an error, never
 * a hung request. Migrations run at boot.
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Option, Redacted, Schedule, String as Str } from "effect"
import pg from "pg"
import { DbConfig } from "../Config.js"
import { startEmbedded } from "./Embedded.js"
import { MigratorLive } from "./Migrations.js"
import { DbPool } from "./Pool.js"

export class DbStartupError extends Error {}

const makePool = (url: Redacted.Redacted<string>, cfg: DbConfig, embedded: boolean) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const pool = new pg.Pool({
        connectionString: Redacted.value(url),
        // PGlite is one backend: several client connections interleave statements of different
        // transactions (seen as wrong results under load), so the embedded database gets one.
        max: embedded ? 1 : cfg.poolMax,
        // Embedded: one connection, so waiting for it is queueing, not a sign of a dead database.
        connectionTimeoutMillis: embedded ? Math.max(Duration.toMillis(cfg.connectTimeout), 30_000) : Duration.toMillis(cfg.connectTimeout),
        idleTimeoutMillis: 30_000,
        // Client-side: works for the embedded server too; the server-side one frees the backend.
        query_timeout: Duration.toMillis(cfg.statementTimeout),
        ...(embedded ? {} : { statement_timeout: Duration.toMillis(cfg.statementTimeout) }),
        application_name: "parley"
      })
      // An idle client losing its connection must not crash the process; the pool drops it.
      pool.on("error", () => {})
      return pool
    }),
    (pool) => Effect.promise(() => pool.end()).pipe(Effect.timeout("5 seconds"), Effect.ignore)
  )

const checkConnection = (pool: pg.Pool) =>
  Effect.tryPromise({
    try: async () => {
      const client = await pool.connect()
      try {
        await client.query("select 1")
      } finally {
        client.release()
      }
    },
    catch: (cause) => cause
  })

const poolLayer = Layer.scoped(
  DbPool,
  Effect.gen(function*() {
    const cfg = yield* DbConfig
    const embedded = Option.isNone(cfg.url)
    const url = Option.isSome(cfg.url)
      ? cfg.url.value
      : yield* startEmbedded({ dataDir: cfg.dataDir, inMemory: cfg.inMemory })
    const pool = yield* makePool(url, cfg, embedded)
    yield* checkConnection(pool).pipe(
      Effect.tapError((cause) =>
        Effect.logWarning("database not reachable yet; retrying").pipe(Effect.annotateLogs({ cause: String(cause) }))
      ),
      Effect.retry({
        schedule: Schedule.exponential("200 millis", 1.5).pipe(Schedule.upTo(cfg.startupRetry))
      }),
      Effect.mapError((cause) =>
        new DbStartupError(
          `could not connect to the database (${embedded ? "embedded" : "DATABASE_URL"}) within ` +
            `${Duration.format(cfg.startupRetry)}: ${String(cause)}`
        )
      )
    )
    return { pool, embedded }
  })
)

const clientLayer = Layer.unwrapEffect(
  Effect.map(DbPool, ({ pool }) =>
    PgClient.layerFromPool({
      acquire: Effect.succeed(pool),
      transformQueryNames: Str.camelToSnake,
      transformResultNames: Str.snakeToCamel,
      // JSON columns keep their keys as stored (user metadata, agent parameters).
      transformJson: false
    })
  )
)

/** SqlClient + PgClient + DbPool, migrated. */
export const SqlLive = MigratorLive.pipe(
  Layer.provideMerge(clientLayer),
  Layer.provideMerge(poolLayer)
)
