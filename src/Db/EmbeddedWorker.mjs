// The embedded database's thread: PGlite (Postgres compiled to WASM) and its
// loopback socket server run here, so Postgres' CPU work runs on a core of its
// own instead of on Parley's event loop. Plain JavaScript: a worker thread is
// loaded by Node itself, under `tsx` and under vitest alike.
//
// Protocol (parentPort): in  { type: "start", dataDir?: string } | { type: "stop" }
//                        out { type: "started", conn } | { type: "stopped" } | { type: "failed", message }
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { parentPort } from "node:worker_threads"

let db
let server
const post = (message) => parentPort.postMessage(message)
const describe = (cause) => (cause instanceof Error ? cause.message : String(cause))

parentPort.on("message", async (message) => {
  if (message.type === "start") {
    try {
      db = await PGlite.create(message.dataDir !== undefined ? { dataDir: message.dataDir } : {})
      // pglite-socket serialises queries and keeps a transaction on the connection that opened it.
      server = new PGLiteSocketServer({ db, port: 0, host: "127.0.0.1", maxConnections: 4 })
      await server.start()
      post({ type: "started", conn: server.getServerConn() })
    } catch (cause) {
      post({ type: "failed", message: describe(cause) })
    }
  } else if (message.type === "stop") {
    try {
      if (server !== undefined) await server.stop()
      if (db !== undefined) await db.close()
      post({ type: "stopped" })
    } catch (cause) {
      post({ type: "failed", message: describe(cause) })
    }
    parentPort.close()
  }
})
