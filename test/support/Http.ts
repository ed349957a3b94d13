/** A small HTTP client for tests: real requests over loopback with fetch. */
import { Effect } from "effect"
import { TestServer, type TestServerInfo } from "./TestServer.js"

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: unknown
}

export interface RequestOptions {
  readonly token?: string | undefined
  readonly body?: unknown
  readonly rawBody?: string
  readonly headers?: Record<string, string>
}

export const send = (base: string, method: string, path: string, options: RequestOptions = {}) =>
  Effect.promise(async (): Promise<Reply> => {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
    let body: string | undefined
    if (options.rawBody !== undefined) body = options.rawBody
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body)
      headers["content-type"] ??= "application/json"
    }
    const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body } : {}) })
    const text = await res.text()
    let json: unknown = undefined
    try {
      json = text === "" ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: res.status, headers: res.headers, text, json }
  })

export const call = (method: string, path: string, options: RequestOptions = {}) =>
  Effect.flatMap(TestServer, (s) => send(s.url, method, path, options))

/** Field access on decoded JSON in tests, without casts at every use. */
export const at = (u: unknown, ...path: Array<string | number>): unknown => {
  let cur = u
  for (const key of path) {
    if (cur === null || typeof cur !== "object") return undefined
    cur = (cur as Record<string | number, unknown>)[key]
  }
  return cur
}

export const str = (u: unknown, ...path: Array<string | number>): string => {
  const v = at(u, ...path)
  if (typeof v !== "string") throw new Error(`expected a string at ${path.join(".")}, got ${JSON.stringify(v)}`)
  return v
}

/** A user with an API key, made through the admin API. */
export const createUser = (
  server: TestServerInfo,
  options: { email?: string; daily_request_limit?: number | null; daily_token_limit?: number | null } = {}
) =>
  Effect.gen(function*() {
    const email = options.email ?? `u${Math.random().toString(36).slice(2)}@example.com`
    const user = yield* send(server.url, "POST", "/v1/admin/users", {
      token: server.adminToken,
      body: { ...options, email }
    })
    if (user.status !== 201) throw new Error(`create user: ${user.status} ${user.text}`)
    const id = str(user.json, "id")
    const key = yield* send(server.url, "POST", `/v1/admin/users/${id}/keys`, { token: server.adminToken, body: {} })
    if (key.status !== 201) throw new Error(`issue key: ${key.status} ${key.text}`)
    return { id, email, key: str(key.json, "key"), keyId: str(key.json, "id") }
  })

/** The error body every error response must have. */
export const expectCatalogError = (reply: Reply, status: number, code: string) => {
  const problems: Array<string> = []
  if (reply.status !== status) problems.push(`status ${reply.status} != ${status}`)
  const error = at(reply.json, "error")
  if (typeof error !== "object" || error === null) problems.push("no error object")
  else {
    if (at(error, "code") !== code) problems.push(`code ${String(at(error, "code"))} != ${code}`)
    if (typeof at(error, "message") !== "string") problems.push("no message")
    if (typeof at(error, "type") !== "string") problems.push("no type")
    if (!("param" in error)) problems.push("no param")
    if (!/^err_[0-9a-f]{32}$/.test(String(at(error, "error_id")))) problems.push("bad error_id")
  }
  if (reply.headers.get("x-request-id") === null) problems.push("no x-request-id header")
  if (/\bat \S+ \(|node_modules|SqlError|stack/i.test(reply.text)) problems.push("internals leaked")
  if (problems.length > 0) throw new Error(`${problems.join("; ")}\nbody: ${reply.text}`)
}
