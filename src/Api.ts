/** The HttpApi: one group per feature, nothing else. */
import { HttpApi, OpenApi } from "@effect/platform"
import { wire, InternalError, PayloadTooLarge, BadRequest, ValidationFailed, NotFound } from "./Errors.js"
import { HealthGroup } from "./Health/Api.js"
import { AdminGroup, KeysGroup, MeGroup } from "./Users/Api.js"

export class Api extends HttpApi.make("parley")
  .add(HealthGroup)
  .add(AdminGroup)
  .add(KeysGroup)
  .add(MeGroup)
  .addError(wire(ValidationFailed))
  .addError(wire(BadRequest))
  .addError(wire(PayloadTooLarge))
  .addError(wire(NotFound))
  .addError(wire(InternalError))
  .annotate(OpenApi.Title, "Parley")
  .annotate(OpenApi.Description, "An AI chat backend: sessions, agents, memories, resilient providers, exact quotas.")
{}
