/**
 * The Node HTTP server with a graceful drain: on shutdown it stops accepting,
 * lets in-flight requests finish for up to the drain time, then closes what
 * is left — before the pools behind it are closed.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Deferred, Duration, Effect, Layer } from "effect"
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

/** The Node server under the HttpServer, for the drain. */
export class NodeServer extends Context.Tag("parley/NodeServer")<NodeServer, Server>() {}

export const ServerLive = Layer.unwrapEffect(Effect.gen(function*() {
  const cfg = yield* ServerConfig
  const headersTimeout = Duration.toMillis(cfg.headersTimeout)
  const server = createServer({
    requestTimeout: Math.max(300_000, headersTimeout),
    headersTimeout,
    keepAliveTimeout: 5_000,
    // How often Node checks those timeouts (30 s by default would let a slow client outstay a short limit).
    connectionsCheckingInterval: Math.max(250, Math.min(30_000, Math.floor(headersTimeout / 4)))
  })
  return Layer.mergeAll(
    Layer.scoped(HttpServer.HttpServer, NodeHttpServer.make(() => server, { port: cfg.port, host: cfg.host })),
    Layer.succeed(NodeServer, server),
    NodeHttpServer.layerContext
  )
}))

/**
 * Built on top of the served app, so on shutdown it runs first: the server
 * stops accepting and in-flight requests finish (up to the drain time)
 * before the app's request fibers are interrupted and its pools closed.
 */
export const DrainLive = Layer.scopedDiscard(Effect.gen(function*() {
  const cfg = yield* ServerConfig
  const server = yield* NodeServer
  yield* Effect.addFinalizer(() => drain(server, cfg.shutdownDrain))
}))
