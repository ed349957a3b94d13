/** POST /v1/sessions/{id}/messages: a chat turn, JSON or SSE. */
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Auth/Domain.js"
import { NotFound, SessionPersistFailed, wire } from "../Errors.js"
import { Message, SessionId } from "../Sessions/Domain.js"
import { SafeText } from "../Sessions/Values.js"
import { ChatErrors, ChatHeaders, ModelName } from "./OpenAiApi.js"

export const TurnRequest = Schema.Struct({
  content: SafeText.pipe(Schema.minLength(1), Schema.maxLength(1_000_000)),
  stream: Schema.optional(Schema.Boolean),
  // stored on the assistant message: a NUL here would fail that write after the upstream call
  model: Schema.optional(ModelName)
}).annotations({ identifier: "TurnRequest" })

export const TurnResponse = Schema.Struct({
  user_message: Message,
  assistant_message: Message,
  warnings: Schema.Array(Schema.Struct({ code: Schema.String, message: Schema.String }))
}).annotations({
  identifier: "TurnResponse",
  description: "With `stream: true`, a text/event-stream: message.created → warning* → message.delta* → message.completed → done (error then done after a failure)."
})

export class SessionChatGroup extends HttpApiGroup.make("sessionChat")
  .add(
    HttpApiEndpoint.post("turn", "/v1/sessions/:id/messages")
      .setPath(Schema.Struct({ id: SessionId }))
      .setPayload(TurnRequest)
      .setHeaders(ChatHeaders)
      .addSuccess(TurnResponse)
  )
  .addError(ChatErrors)
  .addError(wire(NotFound))
  .addError(wire(SessionPersistFailed))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "Chat in a session: the turn is stored, serialised with other turns of the session.")
{}
