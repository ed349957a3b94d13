import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Auth/Domain.js"
import { Conflict, DbUnavailable, Forbidden, NotFound, wire } from "../Errors.js"
import { MessageId } from "../Sessions/Domain.js"
import { FeedbackCreated, FeedbackUpdated, PostFeedback } from "./Domain.js"

export class FeedbackGroup extends HttpApiGroup.make("feedback")
  .add(
    HttpApiEndpoint.post("post", "/v1/messages/:id/feedback")
      .setPath(Schema.Struct({ id: MessageId }))
      .setPayload(PostFeedback)
      .addSuccess(FeedbackCreated, { status: 201 })
      .addSuccess(FeedbackUpdated, { status: 200 })
      .annotate(
        OpenApi.Description,
        "Rate one of the caller's messages. 201 the first time; posting again replaces the rating and comment (200)."
      )
  )
  .addError(wire(NotFound))
  .addError(wire(Conflict))
  .addError(wire(Forbidden))
  .addError(wire(DbUnavailable))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "Feedback on messages: up/down and a comment.")
{}
