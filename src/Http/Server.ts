/**
 * The Node HTTP server with a graceful drain: on shutdown it stops accepting,
 * lets in-flight requests finish for up to the drain time, then closes what
 * is left — before the pools behind it are closed.
 */
import { randomUUID } from "node:crypto"
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Deferred, Duration, Effect, Layer } from "effect"
import { createServer, type Server } from "node:http"
import type { Duplex } from "node:stream"
import { ServerConfig } from "../Config.js"
import { BadRequest, PayloadTooLarge, toBody } from "../Errors.js"

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
  // Requests Node rejects before Parley sees them (oversized or malformed headers) still get the catalog body.
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A client too slow to send its headers gets no answer: it is cut off.
    if (!socket.writable || err.code === "ERR_HTTP_REQUEST_TIMEOUT") return socket.destroy()
    const tooLarge = err.code === "HPE_HEADER_OVERFLOW"
    const error = tooLarge
      ? new PayloadTooLarge({ message: "The request headers are larger than the limit." })
      : new BadRequest({ message: "The request is not valid HTTP." })
    const body = JSON.stringify(toBody(error))
    // Like every other response, it carries a request id (the request's own could not be read).
    const requestId = `req_${randomUUID()}`
    socket.end(
      `HTTP/1.1 ${tooLarge ? "431 Request Header Fields Too Large" : "400 Bad Request"}\r\n` +
        `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\n` +
        `connection: close\r\n\r\n${body}`
    )
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
