import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Auth/Domain.js"
import { AlreadyExists, Conflict, DbUnavailable, Forbidden, NotFound, wire } from "../Errors.js"
import { CreateMcpServer, ListMcpServersParams, McpServer, McpServerId, McpServerPage, UpdateMcpServer } from "./Domain.js"

const ById = Schema.Struct({ id: McpServerId })

export class McpServersGroup extends HttpApiGroup.make("mcpServers")
  .add(
    HttpApiEndpoint.get("list", "/v1/mcp-servers")
      .setUrlParams(ListMcpServersParams)
      .addSuccess(McpServerPage)
  )
  .add(
    HttpApiEndpoint.post("create", "/v1/mcp-servers")
      .setPayload(CreateMcpServer)
      .addSuccess(McpServer, { status: 201 })
  )
  .add(HttpApiEndpoint.get("get", "/v1/mcp-servers/:id").setPath(ById).addSuccess(McpServer))
  .add(
    HttpApiEndpoint.patch("update", "/v1/mcp-servers/:id")
      .setPath(ById)
      .setPayload(UpdateMcpServer)
      .addSuccess(McpServer)
  )
  .add(HttpApiEndpoint.del("remove", "/v1/mcp-servers/:id").setPath(ById).addSuccess(Schema.Void, { status: 204 }))
  .add(
    HttpApiEndpoint.post("check", "/v1/mcp-servers/:id/check")
      .setPath(ById)
      .addSuccess(McpServer)
      .annotate(
        OpenApi.Description,
        "Connects, lists the tools and stores status, tool count and time. Always 200 with the server: " +
          "last_status is ok, unreachable, timeout or error."
      )
  )
  .addError(wire(NotFound))
  .addError(wire(AlreadyExists))
  .addError(wire(Conflict))
  .addError(wire(Forbidden))
  .addError(wire(DbUnavailable))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The caller's MCP servers. Header values are write-only: reads show header_names.")
{}
