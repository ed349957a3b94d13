/** The HttpApi: one group per feature, nothing else. */
import { HttpApi, OpenApi } from "@effect/platform"
import { wire, InternalError, PayloadTooLarge, BadRequest, ValidationFailed, NotFound } from "./Errors.js"
import { OpenAiGroup } from "./Chat/OpenAiApi.js"
import { SessionChatGroup } from "./Chat/SessionChatApi.js"
import { HealthGroup } from "./Health/Api.js"
import { MetricsGroup } from "./Observability/Api.js"
import { StatusGroup } from "./Status/Api.js"
import { McpServersGroup } from "./McpServers/Api.js"
import { MemoriesGroup } from "./Memories/Api.js"
import { AdminGroup, KeysGroup, MeGroup } from "./Users/Api.js"
import { SessionsGroup } from "./Sessions/Api.js"
import { AgentsGroup } from "./Agents/Api.js"
import { FeedbackGroup } from "./Feedback/Api.js"

export class Api extends HttpApi.make("parley")
  .add(HealthGroup)
  .add(AdminGroup)
  .add(KeysGroup)
  .add(MeGroup)
  .add(SessionsGroup)
  .add(AgentsGroup)
  .add(FeedbackGroup)
  .add(OpenAiGroup)
  .add(SessionChatGroup)
  .add(StatusGroup)
  .add(MemoriesGroup)
  .add(McpServersGroup)
  .add(MetricsGroup)
  .addError(wire(ValidationFailed))
  .addError(wire(BadRequest))
  .addError(wire(PayloadTooLarge))
  .addError(wire(NotFound))
  .addError(wire(InternalError))
  .annotate(OpenApi.Title, "Parley")
  .annotate(OpenApi.Description, "An AI chat backend: sessions, agents, memories, resilient providers, exact quotas.")
{}
