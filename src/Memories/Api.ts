import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Auth/Domain.js"
import { AlreadyExists, Conflict, DbUnavailable, Forbidden, NotFound, ValidationFailed, wire } from "../Errors.js"
import { CreateMemory, ListMemoriesParams, Memory, MemoryId, MemoryPage } from "./Domain.js"

export class MemoriesGroup extends HttpApiGroup.make("memories")
  .add(
    HttpApiEndpoint.get("list", "/v1/memories")
      .setUrlParams(ListMemoriesParams)
      .addSuccess(MemoryPage)
      .annotate(OpenApi.Description, "The caller's memories, newest first; with `query`, full-text matches ranked by relevance and recency.")
  )
  .add(
    HttpApiEndpoint.post("create", "/v1/memories")
      .setPayload(CreateMemory)
      .addSuccess(Memory, { status: 201 })
      .addSuccess(Memory.annotations({ description: "The existing memory with the same content." }), { status: 200 })
      .annotate(OpenApi.Description, "201 with a new memory; 200 with the existing one when the same content (normalized) is already stored.")
  )
  .add(
    HttpApiEndpoint.del("remove", "/v1/memories/:id")
      .setPath(Schema.Struct({ id: MemoryId }))
      .addSuccess(Schema.Void, { status: 204 })
  )
  .addError(wire(NotFound))
  .addError(wire(ValidationFailed))
  .addError(wire(Forbidden))
  .addError(wire(AlreadyExists))
  .addError(wire(Conflict))
  .addError(wire(DbUnavailable))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The caller's memories.")
{}
