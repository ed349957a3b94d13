import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Auth/Domain.js"
import { Forbidden, wire } from "../Errors.js"

export const AdminStatus = Schema.Struct({
  providers: Schema.Array(Schema.Unknown),
  database: Schema.Unknown,
  jobs: Schema.optional(Schema.Unknown)
}).annotations({ identifier: "AdminStatus", description: "Circuit breakers, retry counters, key health, in-flight calls, pool health, jobs." })

export class StatusGroup extends HttpApiGroup.make("status")
  .add(HttpApiEndpoint.get("status", "/v1/admin/status").addSuccess(AdminStatus))
  .addError(wire(Forbidden))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "Operational status; the admin token only.")
{}
