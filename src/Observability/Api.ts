/** GET /metrics: Prometheus text, behind `METRICS_TOKEN` when it is set. Not traced, not logged. */
import { HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity, OpenApi } from "@effect/platform"
import { Unauthenticated, wire } from "../Errors.js"
import { contentType } from "./Prometheus.js"

/** Checks the bearer token against METRICS_TOKEN; lets everyone through when none is configured. */
export class MetricsAuthentication extends HttpApiMiddleware.Tag<MetricsAuthentication>()("MetricsAuthentication", {
  failure: wire(Unauthenticated),
  security: { bearer: HttpApiSecurity.bearer }
}) {}

export class MetricsGroup extends HttpApiGroup.make("metrics")
  .add(HttpApiEndpoint.get("metrics", "/metrics").addSuccess(HttpApiSchema.Text({ contentType })))
  .middleware(MetricsAuthentication)
  .annotate(
    OpenApi.Description,
    "Prometheus text exposition of Parley's metrics. `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set; open otherwise."
  )
{}
