/** Composes the server from feature layers and infrastructure. */
import { HttpApiBuilder, HttpApiScalar, HttpMiddleware } from "@effect/platform"
import { Effect, Layer } from "effect"
import { Api } from "./Api.js"
import { AuthenticationLive } from "./Auth/Http.js"
import { AuthService } from "./Auth/AuthService.js"
import { ServerConfig } from "./Config.js"
import { SqlLive } from "./Db/Sql.js"
import { PoolHealth } from "./Db/PoolHealth.js"
import { MetricsHttp } from "./Observability/Http.js"
import * as Routes from "./Observability/Routes.js"
import { TracingLive } from "./Observability/Tracing.js"
import { Idempotency } from "./Chat/Idempotency.js"
import { OpenAiHttp } from "./Chat/OpenAiHttp.js"
import { SessionChat } from "./Chat/SessionChat.js"
import { SessionChatHttp } from "./Chat/SessionChatHttp.js"
import { SessionLock } from "./Chat/SessionLock.js"
import { TurnRepo } from "./Chat/TurnRepo.js"
import { HealthHttp } from "./Health/Http.js"
import { ResponseCache } from "./Cache/ResponseCache.js"
import { RedisLive } from "./Redis.js"
import { JobsLive } from "./Jobs/Live.js"
import { StatusHttp } from "./Status/Http.js"
import { catalogErrors } from "./Http/ErrorHandling.js"
import { Admission } from "./Limits/Admission.js"
import { RateLimiterStoreLive } from "./Limits/RateLimit.js"
import { GatewayLive } from "./Providers/Gateway.js"
import { requestContext } from "./Http/RequestContext.js"
import { DrainLive, ServerLive } from "./Http/Server.js"
import { McpServersHttp } from "./McpServers/Http.js"
import { McpProbe } from "./McpServers/Probe.js"
import { McpServersRepo } from "./McpServers/Repo.js"
import { MemoriesHttp } from "./Memories/Http.js"
import { Memories } from "./Memories/Service.js"
import { AdminHttp, KeysHttp, MeHttp } from "./Users/Http.js"
import { UsersRepo } from "./Users/Repo.js"
import { SessionsHttp } from "./Sessions/Http.js"
import { SessionsRepo } from "./Sessions/Repo.js"
import { AgentsHttp } from "./Agents/Http.js"
import { AgentsRepo } from "./Agents/Repo.js"
import { FeedbackHttp } from "./Feedback/Http.js"
import { FeedbackRepo } from "./Feedback/Repo.js"

const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([HealthHttp, AdminHttp, KeysHttp, MeHttp, MemoriesHttp, McpServersHttp, OpenAiHttp, SessionChatHttp, StatusHttp]),
  Layer.provide([SessionsHttp, AgentsHttp, FeedbackHttp]),
  Layer.provide(MetricsHttp),
  Layer.provide(AuthenticationLive)
)

const DataPlane = Layer.mergeAll(SessionsRepo.Default, AgentsRepo.Default, FeedbackRepo.Default)

const Core = Layer.mergeAll(
  GatewayLive,
  Admission.Default.pipe(Layer.provide(RateLimiterStoreLive)),
  Idempotency.Default,
  TurnRepo.Default,
  ResponseCache.Default,
  AuthService.Default,
  Memories.Default,
  McpServersRepo.Default,
  McpProbe.Default
).pipe(Layer.provideMerge(UsersRepo.Default), Layer.provideMerge(RedisLive))

/** Services, with the background job workers running beside them. */
const Services = JobsLive.pipe(
  Layer.provideMerge(SessionChat.Default.pipe(Layer.provide(SessionLock.Default), Layer.provideMerge(Core)))
)

const HttpLive = Layer.unwrapEffect(Effect.map(ServerConfig, (cfg) =>
  HttpApiBuilder.serve(requestContext(cfg.maxBodyBytes, Routes.fromApi(Api, [["GET", "/docs"], ["GET", "/openapi.json"]]))).pipe(
    // requestContext opens the server span itself (it ends in error on 5xx), so the platform's is off.
    HttpMiddleware.withTracerDisabledWhen(() => true),
    Layer.provide(HttpApiScalar.layer({ path: "/docs" })),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(HttpApiBuilder.middleware(catalogErrors)),
    Layer.provide(ApiLive)
  )
))

/**
 * The whole server; needs only configuration (and a logger). It also exposes
 * the HTTP server, the SQL client and the pool, for tests and tools.
 */
export const AppLive = DrainLive.pipe(
  Layer.provideMerge(HttpLive),
  Layer.provideMerge(ServerLive),
  Layer.provideMerge(Services),
  Layer.provideMerge(DataPlane),
  Layer.provideMerge(PoolHealth.Default),
  Layer.provideMerge(SqlLive),
  Layer.provide(TracingLive)
)
