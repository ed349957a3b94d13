/**
 * Checks an MCP server: connect with the official SDK, list its tools, within
 * one deadline. Every outcome is a result (ok, unreachable, timeout, error),
 * never a failure; the client is closed on every exit, interruption included.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { SseError, SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js"
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { McpError } from "@modelcontextprotocol/sdk/types.js"
import { Config, Data, Duration, Effect, Redacted } from "effect"
import type { CheckResult, McpTargetRow } from "./Domain.js"

/** Read here until the lead moves it into src/Config.ts. */
export const McpCheckConfig = Config.integer("PARLEY_MCP_CHECK_TIMEOUT_MS").pipe(
  Config.withDefault(5_000),
  Config.validate({ message: "PARLEY_MCP_CHECK_TIMEOUT_MS must be a positive integer", validation: (n) => n > 0 }),
  Config.map(Duration.millis)
)

/** Tool lists are paged; a server that never stops paging is not a healthy one. */
const MAX_TOOL_PAGES = 50

interface ToolPages {
  readonly count: number
  readonly cursor: string | undefined
  readonly pages: number
  readonly done: boolean
}

const firstPage: ToolPages = { count: 0, cursor: undefined, pages: 0, done: false }

class ProbeFailure extends Data.TaggedError("ProbeFailure")<{ readonly cause: unknown }> {}

const networkCodes = new Set([
  "ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EPIPE",
  "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_SOCKET", "UND_ERR_CLOSED"
])

/** Every error in a cause chain (Error.cause, AggregateError.errors), bounded. */
const chain = (u: unknown): ReadonlyArray<unknown> => {
  const out: Array<unknown> = []
  const queue: Array<unknown> = [u]
  while (queue.length > 0 && out.length < 20) {
    const e = queue.shift()
    if (e === undefined || e === null || out.includes(e)) continue
    out.push(e)
    if (typeof e === "object") {
      if ("cause" in e) queue.push(e.cause)
      if ("errors" in e && Array.isArray(e.errors)) queue.push(...e.errors)
    }
  }
  return out
}

const codeOf = (u: unknown): unknown => typeof u === "object" && u !== null && "code" in u ? u.code : undefined

/**
 * A result whose `error` is built only from codes and statuses: a server's
 * own text could carry anything (even reflected secrets), so it never is stored.
 */
export const classify = (cause: unknown): CheckResult => {
  const errors = chain(cause)
  const network = errors.map(codeOf).find((c): c is string => typeof c === "string" && networkCodes.has(c))
  if (network !== undefined) return { status: "unreachable", toolCount: null, error: `could not connect (${network})` }
  const tls = errors.map(codeOf).find((c): c is string =>
    typeof c === "string" && /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/.test(c))
  if (tls !== undefined) return { status: "error", toolCount: null, error: `TLS failure (${tls})` }
  for (const e of errors) {
    if (e instanceof StreamableHTTPError || e instanceof SseError) {
      if (typeof e.code === "number" && e.code >= 100 && e.code <= 599) {
        return { status: "error", toolCount: null, error: `HTTP ${e.code} from the server` }
      }
      // An event stream that failed before any HTTP status: the server could not be reached.
      if (e instanceof SseError) return { status: "unreachable", toolCount: null, error: "could not open the event stream" }
    }
    if (e instanceof McpError) return { status: "error", toolCount: null, error: `MCP error ${e.code}` }
  }
  if (errors.some((e) => e instanceof TypeError && e.message === "fetch failed")) {
    return { status: "unreachable", toolCount: null, error: "could not connect" }
  }
  return { status: "error", toolCount: null, error: "the server's answer is not valid MCP" }
}

const transportFor = (target: McpTargetRow) => {
  const headers = Object.fromEntries(Object.entries(target.headers).map(([k, v]) => [k, Redacted.value(v)]))
  const url = new URL(target.url)
  // Redirects to another origin are refused: stored headers must not follow them elsewhere.
  return target.transport === "sse"
    ? new SSEClientTransport(url, { requestInit: { headers }, redirectPolicy: "same-origin" })
    : new StreamableHTTPClientTransport(url, { requestInit: { headers }, redirectPolicy: "same-origin" })
}

export class McpProbe extends Effect.Service<McpProbe>()("parley/McpProbe", {
  effect: Effect.gen(function*() {
    const timeout = yield* McpCheckConfig
    const timeoutMs = Duration.toMillis(timeout)

    /** The client lives in a scope: closing it aborts whatever request is in flight. */
    const connected = (target: McpTargetRow) =>
      Effect.acquireRelease(
        Effect.try({
          try: () => ({ client: new Client({ name: "parley", version: "1.0.0" }), transport: transportFor(target) }),
          catch: (cause) => new ProbeFailure({ cause })
        }),
        ({ client, transport }) =>
          Effect.tryPromise(() => client.close()).pipe(
            Effect.zipRight(Effect.tryPromise(() => transport.close())),
            Effect.timeout("1 second"),
            Effect.ignore
          )
      ).pipe(
        Effect.tap(({ client, transport }) =>
          Effect.tryPromise({
            try: (signal) => client.connect(transport, { signal, timeout: timeoutMs }),
            catch: (cause) => new ProbeFailure({ cause })
          })
        )
      )

    const countTools = (client: Client) =>
      Effect.iterate(firstPage, {
        while: (s) => !s.done,
        body: (s): Effect.Effect<ToolPages, ProbeFailure> =>
          Effect.tryPromise({
            try: (signal) =>
              client.listTools(s.cursor !== undefined ? { cursor: s.cursor } : {}, { signal, timeout: timeoutMs }),
            catch: (cause) => new ProbeFailure({ cause })
          }).pipe(Effect.map((page) => ({
            count: s.count + page.tools.length,
            cursor: page.nextCursor,
            pages: s.pages + 1,
            done: page.nextCursor === undefined || s.pages + 1 >= MAX_TOOL_PAGES
          })))
      }).pipe(Effect.map((s) => s.count))

    const check = (target: McpTargetRow): Effect.Effect<CheckResult> =>
      connected(target).pipe(
        Effect.flatMap(({ client }) => countTools(client)),
        Effect.scoped,
        Effect.timeoutFail({ duration: timeout, onTimeout: () => "timeout" as const }),
        Effect.match({
          onSuccess: (toolCount): CheckResult => ({ status: "ok", toolCount, error: null }),
          onFailure: (e): CheckResult =>
            e === "timeout"
              ? { status: "timeout", toolCount: null, error: `no answer within ${timeoutMs} ms` }
              : classify(e.cause)
        }),
        Effect.withSpan("McpServers.probe", { captureStackTrace: false, attributes: { "mcp.transport": target.transport } })
      )

    return { check, timeout } as const
  })
}) {}
