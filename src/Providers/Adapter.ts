/**
 * The provider-neutral adapter interface, its constructors, and the pooled
 * HTTP client the adapters run on.
 *
 * An adapter performs exactly one attempt per call, with per-attempt
 * timeouts and a typed `ProviderError` for every failure. Retries, circuit
 * breakers, overall deadlines and routing are layered on top
 * (src/Resilience/).
 */
import { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import * as Undici from "@effect/platform-node/Undici"
import { Duration, Effect, Layer, type Stream } from "effect"
import * as Anthropic from "./Anthropic.js"
import type { ChatChunk, ChatRequest, ChatResponse, ProviderKey, ProviderKind } from "./Domain.js"
import type { ProviderError } from "./Errors.js"
import * as OpenAiCompat from "./OpenAiCompat.js"
import type { AttemptOptions } from "./Transport.js"

export type { AttemptOptions } from "./Transport.js"
export type { ProviderKind } from "./Domain.js"

export interface ProviderAdapter {
  readonly kind: ProviderKind
  /** Label carried by errors and spans (defaults to `kind`). */
  readonly name: string
  readonly baseUrl: string
  /** One non-streaming attempt. Interrupting it aborts the HTTP request. */
  readonly complete: (req: ChatRequest, key: ProviderKey, opts: AttemptOptions) => Effect.Effect<ChatResponse, ProviderError>
  /**
   * One streaming attempt: zero or more `Delta`s, then exactly one `Finish`
   * (or a failure). Interrupting/abandoning the stream aborts the request.
   */
  readonly stream: (req: ChatRequest, key: ProviderKey, opts: AttemptOptions) => Stream.Stream<ChatChunk, ProviderError>
}

export interface MakeOptions {
  readonly name?: string
}

/** An adapter for `kind` at `baseUrl` (OpenAI-compatible: `…/v1`; Anthropic: the origin). */
export const make = (
  kind: ProviderKind,
  baseUrl: string,
  options: MakeOptions = {}
): Effect.Effect<ProviderAdapter, never, HttpClient.HttpClient> =>
  kind === "openai" ? OpenAiCompat.make(baseUrl, options) : Anthropic.make(baseUrl, options)

export const makeOpenAi = OpenAiCompat.make
export const makeAnthropic = Anthropic.make

export interface HttpClientOptions {
  /** TCP/TLS connect timeout of every pooled connection (default 10 s). */
  readonly connectTimeout?: Duration.DurationInput
  /** How long an idle keep-alive connection stays pooled (default 30 s). */
  readonly keepAliveTimeout?: Duration.DurationInput
  /** Max connections per origin (default unlimited, like undici). */
  readonly connections?: number
}

/**
 * The HTTP client for adapters: `@effect/platform-node`'s undici client on a
 * dedicated, pooled `undici.Agent` (keep-alive per origin), destroyed when
 * the layer's scope closes.
 *
 * Why undici rather than `node:http` (`NodeHttpClient.layer`): it pools and
 * pipelines connections per origin out of the box, its connect timeout is a
 * first-class option that surfaces as `UND_ERR_CONNECT_TIMEOUT` (so a
 * black-holed host is reported as `AttemptTimeout{kind:"connect"}`, not as a
 * slow first byte), and it honours the AbortSignal the platform client wires
 * to fiber interruption, destroying the socket immediately.
 *
 * undici's connect timeout is per dispatcher, not per request; set it here
 * from the same configuration as `AttemptOptions.connectTimeout`. Per attempt,
 * the response headers must arrive within connectTimeout + firstByteTimeout.
 */
export const layerHttpClient = (options: HttpClientOptions = {}): Layer.Layer<HttpClient.HttpClient> =>
  NodeHttpClient.layerUndiciWithoutDispatcher.pipe(
    Layer.provide(
      Layer.scoped(
        NodeHttpClient.Dispatcher,
        Effect.acquireRelease(
          Effect.sync(() =>
            new Undici.Agent({
              connect: { timeout: Duration.toMillis(options.connectTimeout ?? Duration.seconds(10)) },
              keepAliveTimeout: Duration.toMillis(options.keepAliveTimeout ?? Duration.seconds(30)),
              ...(options.connections === undefined ? {} : { connections: options.connections })
            })
          ),
          (agent) => Effect.promise(() => agent.destroy())
        )
      )
    )
  )
