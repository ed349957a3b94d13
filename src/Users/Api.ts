import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Auth/Domain.js"
import { AlreadyExists, Conflict, DbUnavailable, Forbidden, NotFound, wire } from "../Errors.js"
import { ApiKeyId, UserId } from "../Http/Schemas.js"
import { CreateKey, CreateUser, IssuedKey, Me, User } from "./Domain.js"

export class AdminGroup extends HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.post("createUser", "/v1/admin/users")
      .setPayload(CreateUser)
      .addSuccess(User, { status: 201 })
  )
  .add(
    HttpApiEndpoint.del("deleteUser", "/v1/admin/users/:id")
      .setPath(Schema.Struct({ id: UserId }))
      .addSuccess(Schema.Void, { status: 204 })
      .addError(wire(NotFound))
  )
  .add(
    HttpApiEndpoint.post("issueKey", "/v1/admin/users/:id/keys")
      .setPath(Schema.Struct({ id: UserId }))
      .setPayload(CreateKey)
      .addSuccess(IssuedKey, { status: 201 })
      .addError(wire(NotFound))
  )
  .addError(wire(Forbidden))
  .addError(wire(AlreadyExists))
  .addError(wire(Conflict))
  .addError(wire(DbUnavailable))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "Users and keys; the admin token only.")
{}

export class KeysGroup extends HttpApiGroup.make("keys")
  .add(
    HttpApiEndpoint.del("revokeKey", "/v1/keys/:id")
      .setPath(Schema.Struct({ id: ApiKeyId }))
      .addSuccess(Schema.Void, { status: 204 })
      .addError(wire(NotFound))
  )
  .addError(wire(DbUnavailable))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "Revoke an API key: its owner or the admin.")
{}

export class MeGroup extends HttpApiGroup.make("me")
  .add(HttpApiEndpoint.get("me", "/v1/me").addSuccess(Me))
  .addError(wire(Forbidden))
  .addError(wire(NotFound))
  .addError(wire(DbUnavailable))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The caller, its quota plan and today's usage.")
{}
