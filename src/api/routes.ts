/**
 * The API's routes as data: path, method, security, request schemas and every answer
 * with its status. The handlers (app.ts) are typed by these, and the OpenAPI document is
 * generated from them, so the two cannot drift apart. Built on first use, with the API app
 * (app.ts): their schemas stay off the start-up path.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { once } from "../util/once.js";
import { cappedBody } from "./body.js";
import { requireScope } from "./auth.js";
import { errorBody, type ErrorStatus } from "./errors.js";
import { perSubjectBudget } from "./rate-limit.js";
import { apiSchemas } from "./schemas.js";

const WHY: Record<ErrorStatus, string> = {
  400: "Invalid input: the body is not JSON (or not UTF-8), a field is missing or wrong (`invalid_payload`), or the message is longer than MAX_MESSAGE_LENGTH (`message_too_long`)",
  401: "No bearer token (`auth_required`), or one that is invalid (`token_invalid`) or expired (`token_expired`)",
  403: "The token's scope does not grant this operation, or its `prs` claim does not list this pull request",
  404: "No such API route, or (`not_found`) no such message in the room: unknown, deleted, or no longer kept",
  409: "The server keeps no history (`history_disabled`: HISTORY_RETENTION_DAYS is 0)",
  413: "The body is larger than MAX_PAYLOAD_BYTES (declared in Content-Length, or as read)",
  415: "The body is not `application/json`",
  429: "The token's subject has used its request budget (API_RATE_LIMITER); retry within a minute",
  500: "An unexpected error (also a misconfigured Worker)",
  501: "The HTTP API is disabled because AUTH_SECRET is not set",
  503: "The room could not be reached; a publish may or may not have been delivered, so retry with the same clientMessageId",
};

/** The documented answers for these error statuses, each with exactly its codes. */
function errors<const S extends readonly ErrorStatus[]>(...statuses: S) {
  return Object.fromEntries(
    statuses.map((status) => [status, { description: WHY[status], content: { "application/json": { schema: errorBody(status) } } }]),
  ) as unknown as { [K in S[number]]: { description: string; content: { "application/json": { schema: ReturnType<typeof errorBody<K>> } } } };
}

const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

export const apiRoutes = once(() => {
  const { PublishBody, Published, RoomInfoBody, RoomParams, HistoryQuery, HistoryPage, MessageParams, Deleted } = apiSchemas();

  const publishMessage = createRoute({
    method: "post",
    path: "/pull-requests/{id}/messages",
    operationId: "publishMessage",
    summary: "Publish a message to a pull request's room",
    description:
      "Members receive it as an ordinary `pr-room-message` whose `username` is the token's `sub`. " +
      "The same validation and limits apply as to a socket's `send-message-to-pr-room`. Requires scope `publish`.",
    security: [{ bearerAuth: ["publish"] }],
    middleware: [requireScope("publish"), perSubjectBudget, cappedBody] as const,
    request: {
      params: RoomParams,
      // required: without it a body-less request would skip validation.
      body: { required: true, content: { "application/json": { schema: PublishBody } } },
    },
    responses: {
      201: json(Published, "Delivered to the room's members (or, for a repeated clientMessageId, the first delivery's id and seq)"),
      ...errors(400, 401, 403, 413, 415, 429, 500, 501, 503),
    },
  });

  const roomInfo = createRoute({
    method: "get",
    path: "/pull-requests/{id}",
    operationId: "getRoom",
    summary: "Who is in a pull request's room now",
    description: "Distinct usernames present in the room. Requires scope `read` (or `publish`, `moderate`).",
    security: [{ bearerAuth: ["read"] }],
    middleware: [requireScope("read"), perSubjectBudget] as const,
    request: { params: RoomParams },
    responses: {
      200: json(RoomInfoBody, "The room's members now"),
      ...errors(400, 401, 403, 429, 500, 501, 503),
    },
  });

  const messageHistory = createRoute({
    method: "get",
    path: "/pull-requests/{id}/messages",
    operationId: "getMessages",
    summary: "A page of a pull request's history",
    description:
      "At most `limit` messages just before the seq `before` (the latest without it), oldest first, each as it is now " +
      "(a deleted one as `{ id, seq, deleted: true }`), as `get-pr-room-history` answers. Needs HISTORY_RETENTION_DAYS " +
      "above 0. Requires scope `read` (or `publish`, `moderate`).",
    security: [{ bearerAuth: ["read"] }],
    middleware: [requireScope("read"), perSubjectBudget] as const,
    request: { params: RoomParams, query: HistoryQuery },
    responses: {
      200: json(HistoryPage, "The page, and whether older messages exist"),
      ...errors(400, 401, 403, 409, 429, 500, 501, 503),
    },
  });

  const deleteMessage = createRoute({
    method: "delete",
    path: "/pull-requests/{id}/messages/{messageId}",
    operationId: "deleteMessage",
    summary: "Delete any message of a pull request's room (moderation)",
    description:
      "Members receive `pr-room-message-deleted`, and the message's text is removed from storage. Requires scope `moderate`.",
    security: [{ bearerAuth: ["moderate"] }],
    middleware: [requireScope("moderate"), perSubjectBudget] as const,
    request: { params: MessageParams },
    responses: {
      200: json(Deleted, "Deleted: the message's id and the delete's own seq"),
      ...errors(400, 401, 403, 404, 429, 500, 501, 503),
    },
  });

  const openApiDocument = createRoute({
    method: "get",
    path: "/openapi.json",
    operationId: "getOpenApiDocument",
    summary: "This API's OpenAPI 3.1 document",
    description: "Generated from the schemas that validate the requests. Needs no token, and is served even when the API is disabled.",
    responses: {
      200: json(z.looseObject({ openapi: z.string() }), "The OpenAPI document"),
    },
  });

  return { publishMessage, roomInfo, messageHistory, deleteMessage, openApiDocument };
});
