import { HttpApiBuilder, HttpServerRequest } from "@effect/platform"
import { Effect, Layer, Option, Redacted } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { Api } from "../Api.js"
import { ObservabilityConfig } from "../Config.js"
import { PoolHealth } from "../Db/PoolHealth.js"
import { Unauthenticated } from "../Errors.js"
import { MetricsAuthentication } from "./Api.js"
import { exposition } from "./Metrics.js"

const digest = (s: string) => createHash("sha256").update(s).digest()

/** Equal-length digests, so the comparison takes the same time whatever the token. */
const sameSecret = (given: string, expected: string) => timingSafeEqual(digest(given), digest(expected))

export const MetricsAuthenticationLive = Layer.effect(
  MetricsAuthentication,
  Effect.map(ObservabilityConfig, ({ metricsToken }) => ({
    bearer: (token) =>
      Option.match(metricsToken, {
        onNone: () => Effect.void,
        onSome: (expected) =>
          // The platform's bearer decoder drops the first 7 characters whatever they are: check the scheme.
          Effect.flatMap(HttpServerRequest.HttpServerRequest, (req) =>
            /^bearer /i.test(req.headers["authorization"] ?? "") &&
              sameSecret(Redacted.value(token).trim(), Redacted.value(expected))
              ? Effect.void
              : Effect.fail(new Unauthenticated({ message: "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>." })))
      })
  }))
)

export const MetricsHttp = HttpApiBuilder.group(Api, "metrics", (handlers) =>
  Effect.gen(function*() {
    const health = yield* PoolHealth
    // Pool counts are sampled at scrape time; everything else is already in the registry.
    return handlers.handle("metrics", () => Effect.zipRight(health.publishPoolGauges, exposition))
  })).pipe(Layer.provide(MetricsAuthenticationLive))
