import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Auth/Domain.js"
import { AlreadyExists, Conflict, DbUnavailable, Forbidden, NotFound, wire } from "../Errors.js"
import { listParams, Page, TimeCursor } from "../Sessions/Paging.js"
import { Agent, AgentId, CreateAgent, UpdateAgent } from "./Domain.js"

const ById = Schema.Struct({ id: AgentId })

export class AgentsGroup extends HttpApiGroup.make("agents")
  .add(
    HttpApiEndpoint.get("list", "/v1/agents")
      .setUrlParams(listParams(TimeCursor))
      .addSuccess(Page(Agent, "AgentPage"))
      .annotate(OpenApi.Description, "The caller's agents, newest first.")
  )
  .add(
    HttpApiEndpoint.post("create", "/v1/agents")
      .setPayload(CreateAgent)
      .addSuccess(Agent, { status: 201 })
      .annotate(OpenApi.Description, "Names are unique per user (409 ERR_ALREADY_EXISTS).")
  )
  .add(HttpApiEndpoint.get("get", "/v1/agents/:id").setPath(ById).addSuccess(Agent))
  .add(
    HttpApiEndpoint.patch("update", "/v1/agents/:id")
      .setPath(ById)
      .setPayload(UpdateAgent)
      .addSuccess(Agent)
      .annotate(OpenApi.Description, "Absent fields are unchanged; `parameters` replaces the whole object.")
  )
  .add(
    HttpApiEndpoint.del("remove", "/v1/agents/:id")
      .setPath(ById)
      .addSuccess(Schema.Void, { status: 204 })
      .annotate(OpenApi.Description, "Sessions that used the agent remain, with `agent_id` null.")
  )
  .addError(wire(NotFound))
  .addError(wire(AlreadyExists))
  .addError(wire(Conflict))
  .addError(wire(Forbidden))
  .addError(wire(DbUnavailable))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "Agents: name, system prompt, model, sampling parameters, memory on/off.")
{}
