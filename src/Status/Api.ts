import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Auth/Domain.js"
import { Forbidden, NotFound, wire } from "../Errors.js"

export const AdminStatus = Schema.Struct({
  providers: Schema.Array(Schema.Unknown),
  database: Schema.Unknown,
  jobs: Schema.optional(Schema.Unknown)
}).annotations({ identifier: "AdminStatus", description: "Circuit breakers, retry counters, key health, in-flight calls, pool health, jobs." })

/** A provider's key, by the 1-based position it has in OPENAI_API_KEYS / ANTHROPIC_API_KEYS (its id is `openai#1`…). */
export const KeyPath = Schema.Struct({
  provider: Schema.Literal("openai", "anthropic"),
  index: Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1_000))
})

export const ProviderKeys = Schema.Struct({
  provider: Schema.String,
  keys: Schema.Array(Schema.Unknown)
}).annotations({ identifier: "ProviderKeys", description: "The provider's keys (ids and states, never values)." })

export class StatusGroup extends HttpApiGroup.make("status")
  .add(HttpApiEndpoint.get("status", "/v1/admin/status").addSuccess(AdminStatus))
  .add(
    HttpApiEndpoint.post("reinstateKey", "/v1/admin/providers/:provider/keys/:index/reinstate")
      .setPath(KeyPath)
      .addSuccess(ProviderKeys)
      .addError(wire(NotFound))
      .annotate(OpenApi.Description, "Puts a key the upstream refused (401/403) back into rotation, and ends a rate-limit cool-down.")
  )
  .addError(wire(Forbidden))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "Operational status; the admin token only.")
{}
