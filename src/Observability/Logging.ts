/**
 * One JSON object per line on stdout: time, level, message, and the
 * annotations in scope (request_id, user_id, key_prefix, code, error_id, …),
 * plus trace_id/span_id when a span is current.
 */
import { Cause, Context, FiberRefs, HashMap, Layer, List, Logger, LogLevel, Tracer } from "effect"
import { Effect, FiberRef } from "effect"
import { LogConfig } from "../Config.js"

const spanOf = (fiberRefs: FiberRefs.FiberRefs): Tracer.AnySpan | undefined => {
  const ctx = FiberRefs.getOrDefault(fiberRefs, FiberRef.currentContext)
  const span = Context.getOption(ctx, Tracer.ParentSpan)
  return span._tag === "Some" ? span.value : undefined
}

const render = (message: unknown): string => {
  if (Array.isArray(message)) return message.map(render).join(" ")
  return typeof message === "string" ? message : JSON.stringify(message)
}

/** One log line as an object: what `jsonLogger` writes (tests read it too). */
export const jsonLine = (
  { annotations, cause, context, date, logLevel, message, spans }: Logger.Logger.Options<unknown>
): Record<string, unknown> => {
  const line: Record<string, unknown> = {
    time: date.toISOString(),
    level: logLevel.label.toLowerCase(),
    message: render(message)
  }
  for (const [key, value] of HashMap.toEntries(annotations)) line[key] = value
  const span = spanOf(context)
  if (span !== undefined) {
    line["trace_id"] = span.traceId
    line["span_id"] = span.spanId
  }
  if (!List.isNil(spans)) line["timings"] = Object.fromEntries(List.toArray(spans).map((s) => [s.label, date.getTime() - s.startTime]))
  if (!Cause.isEmpty(cause)) line["cause"] = Cause.pretty(cause, { renderErrorCause: true })
  return line
}

export const jsonLogger = Logger.make((options) => {
  process.stdout.write(JSON.stringify(jsonLine(options)) + "\n")
})

export const LoggingLive = Layer.unwrapEffect(
  Effect.map(LogConfig, (cfg) =>
    Layer.merge(Logger.replace(Logger.defaultLogger, jsonLogger), Logger.minimumLogLevel(cfg.level))
  )
)

/** Tests and tools that want silence. */
export const LoggingSilent = Logger.minimumLogLevel(LogLevel.None)
