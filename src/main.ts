import { NodeRuntime } from "@effect/platform-node"
import { Layer } from "effect"
import { AppLive } from "./App.js"
import { LoggingLive } from "./Observability/Logging.js"

NodeRuntime.runMain(Layer.launch(AppLive.pipe(Layer.provide(LoggingLive))), { disablePrettyLogger: true })
