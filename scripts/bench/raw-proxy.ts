/**
 * The ceiling for a Node gateway: a raw `node:http` pass-through proxy with
 * keep-alive upstream connections and no auth, limits or persistence.
 *
 *   tsx scripts/bench/raw-proxy.ts --upstream http://127.0.0.1:PORT [--port N]
 *
 * Prints one JSON line `{"url":"http://127.0.0.1:PORT"}` once listening.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { parseArgs } from "node:util"

const { values } = parseArgs({ options: { upstream: { type: "string" }, port: { type: "string" } } })
if (values.upstream === undefined) {
  process.stderr.write("usage: tsx scripts/bench/raw-proxy.ts --upstream URL [--port N]\n")
  process.exit(2)
}
const upstream = new URL(values.upstream)
const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 })

// Hop-by-hop headers belong to one connection; Node writes its own.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"])
const endToEnd = (headers: http.IncomingHttpHeaders) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)))

const forward = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, mayRetry: boolean): void => {
  const up = http.request(
    {
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: { ...endToEnd(req.headers), host: upstream.host },
      agent
    },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, endToEnd(upRes.headers))
      upRes.pipe(res)
    }
  )
  up.on("error", (error) => {
    // A pooled socket the upstream closed while idle: retried once, as Node's documentation advises.
    if (mayRetry && up.reusedSocket && Reflect.get(error, "code") === "ECONNRESET") return forward(req, res, body, false)
    if (res.headersSent) res.destroy()
    else res.writeHead(502).end()
  })
  // A client gone mid-response aborts the upstream request; a finished one leaves the socket pooled.
  res.on("close", () => {
    if (!res.writableFinished) up.destroy()
  })
  up.end(body)
}

// Request bodies are small JSON: buffered, so that a retry can resend them.
const server = http.createServer((req, res) => {
  const chunks: Array<Buffer> = []
  req.on("data", (chunk: Buffer) => chunks.push(chunk))
  req.on("end", () => forward(req, res, Buffer.concat(chunks), true))
})

server.listen(Number(values.port ?? 0), "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`)
})

const stop = () => server.close(() => process.exit(0))
process.once("SIGTERM", stop)
process.once("SIGINT", stop)
