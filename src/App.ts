/** Composes the server from feature layers and infrastructure. */
import { HttpApiBuilder, HttpApiScalar } from "@effect/platform"
import { Effect, Layer } from "effect"
import { Api } from "./Api.js"
import { AuthenticationLive } from "./Auth/Http.js"
import { AuthService } from "./Auth/AuthService.js"
import { ServerConfig } from "./Config.js"
import { SqlLive } from "./Db/Sql.js"
import { HealthHttp } from "./Health/Http.js"
import { catalogErrors } from "./Http/ErrorHandling.js"
import { requestContext } from "./Http/RequestContext.js"
import { ServerLive } from "./Http/Server.js"
import { AdminHttp, KeysHttp, MeHttp } from "./Users/Http.js"
import { UsersRepo } from "./Users/Repo.js"

const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([HealthHttp, AdminHttp, KeysHttp, MeHttp]),
  Layer.provide(AuthenticationLive)
)

const Services = AuthService.Default.pipe(Layer.provideMerge(UsersRepo.Default))

const HttpLive = Layer.unwrapEffect(Effect.map(ServerConfig, (cfg) =>
  HttpApiBuilder.serve(requestContext(cfg.maxBodyBytes)).pipe(
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
export const AppLive = HttpLive.pipe(
  Layer.provideMerge(ServerLive),
  Layer.provideMerge(Services),
  Layer.provideMerge(SqlLive)
)
