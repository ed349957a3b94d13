/**
 * The Node HTTP server with a graceful drain: on shutdown it stops accepting,
 * lets in-flight requests finish for up to the drain time, then closes what
 * is left — before the pools behind it are closed.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Deferred, Duration, Effect, Layer } from "effect"
import { createServer, type Server } from "node:http"
import { ServerConfig } from "../Config.js"

const drain = (server: Server, within: Duration.Duration) =>
  Effect.gen(function*() {
    const closed = yield* Deferred.make<void>()
    yield* Effect.sync(() => {
      server.close(() => Deferred.unsafeDone(closed, Effect.void))
      server.closeIdleConnections()
    })
    yield* Effect.logInfo("draining in-flight requests").pipe(
      Effect.annotateLogs({ drain_ms: Duration.toMillis(within) })
    )
    const drained = yield* Deferred.await(closed).pipe(Effect.timeout(within), Effect.option)
    if (drained._tag === "None") {
      yield* Effect.logWarning("drain time over; closing remaining connections")
      server.closeAllConnections()
    }
  })

export const ServerLive = Layer.unwrapEffect(Effect.gen(function*() {
  const cfg = yield* ServerConfig
  return Layer.mergeAll(
    Layer.scoped(
      HttpServer.HttpServer,
      Effect.gen(function*() {
        const server = createServer({ requestTimeout: 300_000, headersTimeout: 30_000, keepAliveTimeout: 5_000 })
        const http = yield* NodeHttpServer.make(() => server, { port: cfg.port, host: cfg.host })
        // Added after the server's own finalizers, so it runs before them.
        yield* Effect.addFinalizer(() => drain(server, cfg.shutdownDrain))
        return http
      })
    ),
    NodeHttpServer.layerContext
  )
}))
