import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Auth/Domain.js"
import { Conflict, DbUnavailable, Forbidden, NotFound, wire } from "../Errors.js"
import { CreateSession, Message, Session, SessionHeaders, SessionId, UpdateSession } from "./Domain.js"
import { listParams, Page, SeqCursor, TimeCursor } from "./Paging.js"

const ById = Schema.Struct({ id: SessionId })

export class SessionsGroup extends HttpApiGroup.make("sessions")
  .add(
    HttpApiEndpoint.get("list", "/v1/sessions")
      .setUrlParams(listParams(TimeCursor))
      .addSuccess(Page(Session, "SessionPage"))
      .annotate(
        OpenApi.Description,
        "The caller's sessions, most recently updated first, with message_count, last_message_at and a preview; one query per page."
      )
  )
  .add(
    HttpApiEndpoint.post("create", "/v1/sessions")
      .setPayload(CreateSession)
      .addSuccess(Session, { status: 201 })
      .annotate(OpenApi.Description, "An `agent_id` that is not the caller's is 404.")
  )
  .add(HttpApiEndpoint.get("get", "/v1/sessions/:id").setPath(ById).addSuccess(Session))
  .add(
    HttpApiEndpoint.patch("update", "/v1/sessions/:id")
      .setPath(ById)
      .setHeaders(SessionHeaders)
      .setPayload(UpdateSession)
      .addSuccess(Session)
      .annotate(
        OpenApi.Description,
        "Absent fields are unchanged; null clears title or agent. With `If-Match: <version>`, a session changed since is 409 ERR_CONFLICT."
      )
  )
  .add(
    HttpApiEndpoint.del("remove", "/v1/sessions/:id")
      .setPath(ById)
      .addSuccess(Schema.Void, { status: 204 })
      .annotate(OpenApi.Description, "Deletes the session, its messages and their feedback, in one transaction.")
  )
  .add(
    HttpApiEndpoint.get("messages", "/v1/sessions/:id/messages")
      .setPath(ById)
      .setUrlParams(listParams(SeqCursor))
      .addSuccess(Page(Message, "MessagePage"))
      .annotate(OpenApi.Description, "The session's history in ascending seq.")
  )
  .addError(wire(NotFound))
  .addError(wire(Conflict))
  .addError(wire(Forbidden))
  .addError(wire(DbUnavailable))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "Sessions (conversations) and their message history.")
{}
