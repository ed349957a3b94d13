import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { ErrorBody } from "../Errors.js"

export const DependencyStatus = Schema.Struct({
  status: Schema.Literal("ok", "degraded", "down", "not_configured"),
  detail: Schema.optional(Schema.String),
  latency_ms: Schema.optional(Schema.Number),
  consecutive_failures: Schema.optional(Schema.Number),
  utilisation: Schema.optional(Schema.Number)
})

export const Readiness = Schema.Struct({
  status: Schema.Literal("ready", "not_ready"),
  checks: Schema.Record({ key: Schema.String, value: DependencyStatus })
}).annotations({ identifier: "Readiness" })

export class HealthGroup extends HttpApiGroup.make("health")
  .add(HttpApiEndpoint.get("health", "/health").addSuccess(Schema.Struct({ status: Schema.Literal("ok") })))
  .add(
    HttpApiEndpoint.get("ready", "/ready")
      .addSuccess(Readiness)
      .addError(Schema.extend(ErrorBody, Readiness).annotations({ identifier: "NotReady" }), { status: 503 })
  )
  .annotate(OpenApi.Description, "Liveness and readiness; not authenticated, not traced.")
{}
