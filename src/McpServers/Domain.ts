/** The MCP server registry: where a user's MCP servers are and how to reach them. */
import { Schema } from "effect"
import { DbTimestamp, snake, Timestamp, UserId } from "../Http/Schemas.js"
import { noNul } from "../Memories/Domain.js"
import { EpochMicros, listParams, Page, TimeCursor } from "../Sessions/Paging.js"

export const McpServerId = Schema.UUID.pipe(Schema.brand("McpServerId"))
export type McpServerId = typeof McpServerId.Type

export const McpTransport = Schema.Literal("streamable_http", "sse")
export type McpTransport = typeof McpTransport.Type

export const CheckStatus = Schema.Literal("ok", "unreachable", "error", "timeout")
export type CheckStatus = typeof CheckStatus.Type

export const MAX_HEADERS = 20
const MAX_HEADER_VALUE_CHARS = 4096

const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/
/** Visible ASCII, space and tab: what fetch accepts in a header value, without CR/LF injection. */
const headerValue = /^[\t\x20-\x7e]*$/
/** Headers the transport sets itself; a stored one would break the protocol, not configure it. */
const reservedHeaders = new Set([
  "accept", "connection", "content-length", "content-type", "host", "keep-alive", "transfer-encoding", "upgrade",
  "mcp-session-id", "mcp-protocol-version", "last-event-id"
])

/** Generated headers keep the first spelling of a name that differs only in case. */
const oneSpellingPerName = (headers: Record<string, string>): Record<string, string> => {
  const out: Record<string, string> = {}
  const seen = new Set<string>()
  for (const [name, value] of Object.entries(headers)) {
    if (seen.has(name.toLowerCase())) continue
    seen.add(name.toLowerCase())
    out[name] = value
  }
  return out
}

/**
 * Secret request headers (e.g. Authorization): at most 20, names valid HTTP
 * tokens, unique ignoring case. Values are write-only: reads show names.
 */
export const McpHeaders = Schema.Record({ key: Schema.String, value: Schema.String }).annotations({
  // The default messages quote the input: a secret value must not come back in an error body.
  message: () => ({ message: "headers must be an object of string values", override: true })
}).pipe(
  Schema.filter((headers) => {
    const names = Object.keys(headers)
    if (names.length > MAX_HEADERS) return `at most ${MAX_HEADERS} headers`
    const seen = new Set<string>()
    for (const name of names) {
      const lower = name.toLowerCase()
      const value = headers[name] ?? ""
      if (!headerName.test(name)) return { path: [name], message: "not a valid HTTP header name" }
      if (reservedHeaders.has(lower)) return { path: [name], message: "this header is set by the MCP transport" }
      if (seen.has(lower)) return { path: [name], message: "duplicate header name (names ignore case)" }
      if (value.length > MAX_HEADER_VALUE_CHARS || !headerValue.test(value)) {
        return { path: [name], message: `header values are printable ASCII, at most ${MAX_HEADER_VALUE_CHARS} characters` }
      }
      seen.add(lower)
    }
    return true
  }, {
    arbitrary: () => (fc) =>
      fc.dictionary(
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/).filter((n) => !reservedHeaders.has(n.toLowerCase())),
        fc.stringMatching(/^[\x20-\x7e]{0,40}$/),
        { maxKeys: MAX_HEADERS }
      ).map(oneSpellingPerName)
  })
).annotations({ identifier: "McpHeaders", description: "Request headers sent to the server; write-only." })

const isHttpUrl = (s: string): boolean => {
  if (!URL.canParse(s)) return false
  const url = new URL(s)
  return (url.protocol === "http:" || url.protocol === "https:") && url.username === "" && url.password === ""
}

export const McpUrl = Schema.String.pipe(
  noNul,
  Schema.maxLength(2000),
  Schema.filter(isHttpUrl, {
    message: () => "must be an http: or https: URL without credentials (put secrets in headers)",
    arbitrary: () => (fc) => fc.webUrl({ validSchemes: ["http", "https"], withQueryParameters: true })
  })
)

export const McpName = Schema.Trim.pipe(noNul, Schema.minLength(1), Schema.maxLength(100))

/** Unknown fields are rejected: a misspelt field must not look like a successful update. */
const strict = { parseOptions: { onExcessProperty: "error" } } as const

export const CreateMcpServer = Schema.Struct({
  name: McpName,
  url: McpUrl,
  transport: Schema.optionalWith(McpTransport, { default: () => "streamable_http" as const }),
  // exact: no `undefined` alternative, whose message would quote the value
  headers: Schema.optionalWith(McpHeaders, { default: () => ({}), exact: true }),
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true })
}).annotations({ identifier: "CreateMcpServer", ...strict })
export type CreateMcpServer = typeof CreateMcpServer.Type

/** `headers`, when given, replaces the whole set. */
export const UpdateMcpServer = Schema.Struct({
  name: Schema.optional(McpName),
  url: Schema.optional(McpUrl),
  transport: Schema.optional(McpTransport),
  headers: Schema.optionalWith(McpHeaders, { exact: true }),
  enabled: Schema.optional(Schema.Boolean)
}).annotations({ identifier: "UpdateMcpServer", ...strict })
export type UpdateMcpServer = typeof UpdateMcpServer.Type

export const McpServer = Schema.Struct({
  id: McpServerId,
  name: Schema.String,
  url: Schema.String,
  transport: McpTransport,
  headerNames: snake(Schema.Array(Schema.String), "header_names"),
  enabled: Schema.Boolean,
  lastCheckedAt: snake(Schema.NullOr(Timestamp), "last_checked_at"),
  lastStatus: snake(Schema.NullOr(CheckStatus), "last_status"),
  lastError: snake(Schema.NullOr(Schema.String), "last_error"),
  toolCount: snake(Schema.NullOr(Schema.Number), "tool_count"),
  createdAt: snake(Timestamp, "created_at"),
  updatedAt: snake(Timestamp, "updated_at")
}).annotations({ identifier: "McpServer" })

export const ListMcpServersParams = listParams(TimeCursor).annotations({ identifier: "ListMcpServersParams" })
export const McpServerPage = Page(McpServer, "McpServerPage")

/** A row as reads see it: header names, never their values. */
export const McpServerRow = Schema.Struct({
  id: McpServerId,
  userId: UserId,
  name: Schema.String,
  url: Schema.String,
  transport: McpTransport,
  headerNames: Schema.Array(Schema.String),
  enabled: Schema.Boolean,
  lastCheckedAt: Schema.NullOr(DbTimestamp),
  lastStatus: Schema.NullOr(CheckStatus),
  lastError: Schema.NullOr(Schema.String),
  toolCount: Schema.NullOr(Schema.Number),
  createdAt: DbTimestamp,
  updatedAt: DbTimestamp,
  /** The list's sort key: created_at in exact microseconds (int8 arrives as a string). */
  sortMicros: Schema.compose(Schema.NumberFromString, EpochMicros)
})
export type McpServerRow = typeof McpServerRow.Type

export const toMcpServer = ({ sortMicros: _, userId: __, ...server }: McpServerRow): typeof McpServer.Type => server

/** What a check needs: where, how, and the secret headers (Redacted, so no log shows them). */
export const McpTargetRow = Schema.Struct({
  url: Schema.String,
  transport: McpTransport,
  headers: Schema.Record({ key: Schema.String, value: Schema.Redacted(Schema.String) })
})
export type McpTargetRow = typeof McpTargetRow.Type

export interface CheckResult {
  readonly status: CheckStatus
  readonly toolCount: number | null
  /** Short and safe: built from status codes and error codes, never from a server's text. */
  readonly error: string | null
}
