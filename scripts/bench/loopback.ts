/**
 * Preload (`node --import tsx --import ./scripts/bench/loopback.ts …`) that
 * binds a server started without a host to 127.0.0.1 instead of every
 * interface. The Portkey gateway calls `server.listen(port, undefined, cb)`;
 * benchmarks must listen on loopback only.
 */
import net from "node:net"

const listen = net.Server.prototype.listen

net.Server.prototype.listen = function(this: net.Server, ...args: Array<unknown>) {
  // Only the (port, host?, …) form without a host: options objects and paths are left alone.
  if (typeof args[0] === "number" && (args[1] === undefined || typeof args[1] === "function")) {
    if (args[1] === undefined) args[1] = "127.0.0.1"
    else args.splice(1, 0, "127.0.0.1")
  }
  return Reflect.apply(listen, this, args)
}
