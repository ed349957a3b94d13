/**
 * A real MCP server for tests, built with the official SDK on node:http at
 * 127.0.0.1 on a random port:
 * - `/mcp`: Streamable HTTP (stateless), with the given tools;
 * - `/sse` + `/messages`: the older HTTP+SSE transport, same tools;
 * - `/hang`: accepts the request and never answers (counts open requests);
 * - `/html`: a 200 that is not MCP.
 * With `requireHeader`, the MCP routes answer 401 without that header value.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { Effect } from "effect"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { Server } from "node:net"

export interface McpTestServerOptions {
  readonly tools?: ReadonlyArray<string>
  readonly requireHeader?: { readonly name: string; readonly value: string }
}

export interface McpTestServerInfo {
  readonly base: string
  readonly mcpUrl: string
  readonly sseUrl: string
  readonly hangUrl: string
  readonly htmlUrl: string
  readonly tools: ReadonlyArray<string>
  /** Requests to /hang whose client has not gone away yet. */
  readonly openHangs: () => number
  /** How many requests reached /hang. */
  readonly hangRequests: () => number
  /** Values of `requireHeader` seen on MCP requests. */
  readonly seenHeaderValues: () => ReadonlyArray<string>
}

const portOf = (server: Server): number => {
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("expected a TCP address")
  return address.port
}

const makeMcp = (tools: ReadonlyArray<string>) => {
  const server = new McpServer({ name: "parley-test-mcp", version: "1.0.0" })
  for (const name of tools) {
    server.registerTool(name, { description: `test tool ${name}` }, () => ({ content: [{ type: "text", text: name }] }))
  }
  return server
}

export const start = (options: McpTestServerOptions = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const tools = options.tools ?? ["echo", "add", "time"]
      let openHangs = 0
      let hangRequests = 0
      const seen: Array<string> = []
      const sseSessions = new Map<string, SSEServerTransport>()

      const authorized = (req: IncomingMessage): boolean => {
        if (options.requireHeader === undefined) return true
        const value = req.headers[options.requireHeader.name.toLowerCase()]
        if (typeof value === "string") seen.push(value)
        return value === options.requireHeader.value
      }

      const handle = async (req: IncomingMessage, res: ServerResponse) => {
        const path = (req.url ?? "/").split("?")[0]
        if (path === "/hang") {
          hangRequests++
          openHangs++
          res.on("close", () => openHangs--)
          return
        }
        if (path === "/html") {
          res.writeHead(200, { "content-type": "text/html" }).end("<html><body>not MCP</body></html>")
          return
        }
        if ((path === "/mcp" || path === "/sse" || path === "/messages") && !authorized(req)) {
          res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: "unauthorized" }))
          return
        }
        if (path === "/mcp") {
          // Stateless: a server and transport per request, closed with it.
          const mcp = makeMcp(tools)
          const transport = new StreamableHTTPServerTransport({})
          res.on("close", () => {
            void transport.close()
            void mcp.close()
          })
          await mcp.connect(transport)
          await transport.handleRequest(req, res)
          return
        }
        if (path === "/sse" && req.method === "GET") {
          const transport = new SSEServerTransport("/messages", res)
          sseSessions.set(transport.sessionId, transport)
          res.on("close", () => sseSessions.delete(transport.sessionId))
          await makeMcp(tools).connect(transport)
          return
        }
        if (path === "/messages" && req.method === "POST") {
          const id = new URL(req.url ?? "/", "http://localhost").searchParams.get("sessionId") ?? ""
          const transport = sseSessions.get(id)
          if (transport === undefined) {
            res.writeHead(404).end()
            return
          }
          await transport.handlePostMessage(req, res)
          return
        }
        res.writeHead(404, { "content-type": "text/plain" }).end("not found")
      }

      const server = createServer((req, res) => {
        handle(req, res).catch(() => {
          if (!res.headersSent) res.writeHead(500).end()
        })
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const port = portOf(server)
      const base = `http://127.0.0.1:${port}`
      const info: McpTestServerInfo = {
        base,
        mcpUrl: `${base}/mcp`,
        sseUrl: `${base}/sse`,
        hangUrl: `${base}/hang`,
        htmlUrl: `${base}/html`,
        tools,
        openHangs: () => openHangs,
        hangRequests: () => hangRequests,
        seenHeaderValues: () => [...seen]
      }
      return { server, info }
    }),
    ({ server }) =>
      Effect.promise(() =>
        new Promise<void>((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        })
      )
  ).pipe(Effect.map(({ info }) => info))

/** A loopback port with nothing listening: bind one, note it, close it. */
export const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = portOf(server)
      server.close(() => resolve(port))
    })
  })
)
