/**
 * A real Parley on a random loopback port, on a fresh database, with the
 * given settings. `it.layer(TestServer.layer(...))` or `TestServer.start`.
 */
import { HttpServer } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { ConfigProvider, Context, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AppLive } from "../../src/App.js"
import { freshDatabase } from "./TestDb.js"

export const ADMIN_TOKEN = "adm_test_token_0123456789"

export interface TestServerInfo {
  readonly url: string
  readonly adminToken: string
  readonly dataDir: string
  /** The server's own SQL client, for assertions and fault injection. */
  readonly sql: SqlClient.SqlClient
  /** Runs an effect against the server's own services (e.g. to plant a cache entry). */
  readonly run: <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<typeof AppLive>>) => Effect.Effect<A, E>
}

export class TestServer extends Context.Tag("test/TestServer")<TestServer, TestServerInfo>() {}

export interface TestServerOptions {
  /** Extra settings (environment variable names). */
  readonly env?: Record<string, string>
  /** Use this database instead of a fresh one. */
  readonly databaseUrl?: string
  readonly logLevel?: LogLevel.LogLevel
}

export const makeEnv = (options: TestServerOptions, dbUrl: Option.Option<string>) => {
  const dataDir = mkdtempSync(join(tmpdir(), "parley-test-"))
  const env: Record<string, string> = {
    PORT: "0",
    HOST: "127.0.0.1",
    ADMIN_TOKEN,
    PARLEY_DATA_DIR: dataDir,
    PARLEY_DB_IN_MEMORY: "true",
    PARLEY_SHUTDOWN_DRAIN_MS: "1000",
    ...(Option.isSome(dbUrl) ? { DATABASE_URL: dbUrl.value } : {}),
    ...(options.databaseUrl !== undefined ? { DATABASE_URL: options.databaseUrl } : {}),
    ...options.env
  }
  return { env, dataDir }
}

/** The app's layer with settings from a map (no process environment). */
export const appWithEnv = (env: Record<string, string>, logLevel: LogLevel.LogLevel = LogLevel.None) =>
  AppLive.pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))),
    Layer.provide(Logger.minimumLogLevel(logLevel))
  )

export const layer = (options: TestServerOptions = {}) =>
  Layer.scoped(
    TestServer,
    Effect.gen(function*() {
      const dbUrl = options.databaseUrl !== undefined ? Option.none() : yield* freshDatabase
      const { dataDir, env } = makeEnv(options, dbUrl)
      const ctx = yield* Layer.build(appWithEnv(env, options.logLevel))
      const server = Context.get(ctx, HttpServer.HttpServer)
      const address = server.address
      if (address._tag !== "TcpAddress") return yield* Effect.die("expected a TCP address")
      const sql = Context.get(ctx, SqlClient.SqlClient)
      const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<typeof AppLive>>) => Effect.provide(effect, ctx)
      return { url: `http://127.0.0.1:${address.port}`, adminToken: ADMIN_TOKEN, dataDir, sql, run }
    })
  )


/** The upstream simulator, started before the server that points at it. */
export class Sim extends Context.Tag("test/Sim")<Sim, import("./Simulator.js").Simulator>() {}

/** A simulator plus a Parley whose providers point at it. */
export const withSimulator = (
  env: (simUrl: string) => Record<string, string> = (url) => ({
    OPENAI_API_KEY: "sk-sim-1",
    OPENAI_BASE_URL: `${url}/v1`,
    ANTHROPIC_API_KEY: "sk-ant-sim-1",
    ANTHROPIC_BASE_URL: url,
    PARLEY_DEFAULT_PROVIDER: "openai"
  }),
  options: Omit<TestServerOptions, "env"> = {}
) =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const { SimulatorResource } = yield* Effect.promise(() => import("./Simulator.js"))
    const sim = yield* SimulatorResource({ port: 0 })
    return Layer.merge(layer({ ...options, env: env(sim.url) }), Layer.succeed(Sim, sim))
  }))
