/**
 * A real OTLP/HTTP trace receiver on loopback: accepts `POST /v1/traces`
 * with the JSON encoding (what @opentelemetry/exporter-trace-otlp-http
 * sends), decodes it with Schema, and records every span flat, with its
 * resource attributes. Anything else is answered 415/404 and counted.
 */
import { Context, Effect, Schedule, Schema } from "effect"
import * as http from "node:http"

export interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  /** Empty for a root span. */
  readonly parentSpanId: string
  readonly name: string
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  readonly kind: number
  readonly attributes: Readonly<Record<string, unknown>>
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly status: { readonly code: number; readonly message: string }
  readonly events: ReadonlyArray<{ readonly name: string; readonly attributes: Readonly<Record<string, unknown>> }>
  readonly resource: Readonly<Record<string, unknown>>
}

export interface OtlpReceiver {
  /** The base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string
  readonly spans: ReadonlyArray<ReceivedSpan>
  /** Content types of the export requests received. */
  readonly contentTypes: ReadonlyArray<string>
  readonly rejected: number
  waitFor(pred: (spans: ReadonlyArray<ReceivedSpan>) => boolean, timeoutMs?: number): Effect.Effect<ReadonlyArray<ReceivedSpan>>
}

export class Otlp extends Context.Tag("test/Otlp")<Otlp, OtlpReceiver>() {}

const AnyValue = Schema.Struct({
  stringValue: Schema.optional(Schema.String),
  boolValue: Schema.optional(Schema.Boolean),
  intValue: Schema.optional(Schema.Union(Schema.Number, Schema.String)),
  doubleValue: Schema.optional(Schema.Number),
  arrayValue: Schema.optional(Schema.Struct({ values: Schema.optional(Schema.Array(Schema.Unknown)) }))
})
const KeyValue = Schema.Struct({ key: Schema.String, value: AnyValue })
const Attributes = Schema.optionalWith(Schema.Array(KeyValue), { default: () => [] })

const Span = Schema.Struct({
  traceId: Schema.String,
  spanId: Schema.String,
  parentSpanId: Schema.optionalWith(Schema.String, { default: () => "" }),
  name: Schema.String,
  kind: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  attributes: Attributes,
  status: Schema.optionalWith(
    Schema.Struct({
      code: Schema.optionalWith(Schema.Number, { default: () => 0 }),
      message: Schema.optionalWith(Schema.String, { default: () => "" })
    }),
    { default: () => ({ code: 0, message: "" }) }
  ),
  events: Schema.optionalWith(Schema.Array(Schema.Struct({ name: Schema.String, attributes: Attributes })), { default: () => [] })
})

const ExportRequest = Schema.Struct({
  resourceSpans: Schema.Array(Schema.Struct({
    resource: Schema.optionalWith(Schema.Struct({ attributes: Attributes }), { default: () => ({ attributes: [] }) }),
    scopeSpans: Schema.Array(Schema.Struct({ spans: Schema.optionalWith(Schema.Array(Span), { default: () => [] }) }))
  }))
})

const valueOf = (v: typeof AnyValue.Type): unknown => {
  if (v.stringValue !== undefined) return v.stringValue
  if (v.boolValue !== undefined) return v.boolValue
  if (v.intValue !== undefined) return Number(v.intValue)
  if (v.doubleValue !== undefined) return v.doubleValue
  if (v.arrayValue !== undefined) return v.arrayValue.values ?? []
  return undefined
}

const toRecord = (kvs: ReadonlyArray<typeof KeyValue.Type>): Record<string, unknown> =>
  Object.fromEntries(kvs.map((kv) => [kv.key, valueOf(kv.value)]))

const decodeExport = Schema.decodeUnknownSync(Schema.parseJson(ExportRequest))

const flatten = (body: string): Array<ReceivedSpan> =>
  decodeExport(body).resourceSpans.flatMap((rs) => {
    const resource = toRecord(rs.resource.attributes)
    return rs.scopeSpans.flatMap((ss) =>
      ss.spans.map((s): ReceivedSpan => ({
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId,
        name: s.name,
        kind: s.kind,
        attributes: toRecord(s.attributes),
        status: s.status,
        events: s.events.map((e) => ({ name: e.name, attributes: toRecord(e.attributes) })),
        resource
      }))
    )
  })

/** The receiver, listening until the scope closes. */
export const OtlpReceiverResource = Effect.acquireRelease(
  Effect.async<{ server: http.Server; receiver: OtlpReceiver }>((resume) => {
    const spans: Array<ReceivedSpan> = []
    const contentTypes: Array<string> = []
    let rejected = 0
    const server = http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        const contentType = req.headers["content-type"] ?? ""
        contentTypes.push(contentType)
        if (req.method !== "POST" || req.url !== "/v1/traces") {
          rejected++
          res.writeHead(404).end()
          return
        }
        if (!contentType.includes("application/json")) {
          rejected++
          res.writeHead(415).end()
          return
        }
        try {
          spans.push(...flatten(Buffer.concat(chunks).toString("utf8")))
          res.writeHead(200, { "content-type": "application/json" }).end("{}")
        } catch {
          rejected++
          res.writeHead(400).end()
        }
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const receiver: OtlpReceiver = {
        url: `http://127.0.0.1:${port}`,
        get spans() {
          return spans
        },
        get contentTypes() {
          return contentTypes
        },
        get rejected() {
          return rejected
        },
        waitFor: (pred, timeoutMs = 10_000) =>
          Effect.suspend(() => pred(spans) ? Effect.succeed([...spans]) : Effect.fail("not yet" as const)).pipe(
            Effect.retry(Schedule.spaced("25 millis")),
            Effect.timeoutFail({
              duration: timeoutMs,
              onTimeout: () => new Error(`spans did not arrive within ${timeoutMs} ms; have: ${spans.map((s) => s.name).join(", ")}`)
            }),
            Effect.orDie
          )
      }
      resume(Effect.succeed({ server, receiver }))
    })
  }),
  ({ server }) => Effect.async<void>((resume) => {
    server.closeAllConnections()
    server.close(() => resume(Effect.void))
  })
).pipe(Effect.map(({ receiver }) => receiver))
