/**
 * The HTTP API for backends (CI bots, review tools): publish to a pull request's room and
 * see who is there, with a bearer token. Each request passes, in order: the token and its
 * scope, the subject's budget, the body cap, the schemas, the token's rooms, then the
 * room's RPC. Every refusal is `{ ok: false, error: { code, message } }`.
 *
 * The app (its routes, their schemas, the OpenAPI registry) is built on the first API
 * request, not at module scope: sockets and rooms never need it, and building it cost every
 * isolate's start-up about 5 ms of CPU, a tenth of the whole (scripts/cold-start.mjs).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import type { Context } from "hono";
import { ConfigError, configOf } from "../chat/config.js";
import { roomName, type ErrorBody } from "../chat/events.js";
import { log } from "../util/log.js";
import { once } from "../util/once.js";
import { requireRoom } from "./auth.js";
import type { ApiEnv } from "./env.js";
import { ApiError, statusOf } from "./errors.js";
import { apiRoutes } from "./routes.js";

/** The API, mounted under /api by the edge app (src/index.ts); built once per isolate, on first use. */
export const apiApp = once(() => {
  const { publishMessage, roomInfo, messageHistory, deleteMessage, openApiDocument } = apiRoutes();

  const api = new OpenAPIHono<ApiEnv>({
    // Schema failures (path, body) answer as a socket's invalid payload does: the first issue, with its field.
    defaultHook: (result) => {
      if (result.success) return;
      const issue = result.error.issues[0]!;
      const field = issue.path.length > 0 ? issue.path.join(".") : result.target === "json" ? "body" : result.target;
      throw ApiError.of(400, "invalid_payload", `${field}: ${issue.message}`);
    },
  }).basePath("/api");

  api.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description:
      "An HS256 JWT signed with AUTH_SECRET: `sub` speaks, `scope` (space-separated) grants `publish`, `read` and/or `moderate`, optional `prs` limits the pull requests",
  });

  api.openapi(publishMessage, async (c) => {
    const { id: key } = c.req.valid("param");
    const { message, clientMessageId } = c.req.valid("json");
    const identity = c.var.identity;
    requireRoom(identity, key);
    const max = configOf(c.env).MAX_MESSAGE_LENGTH;
    if (message.length > max) {
      throw ApiError.of(400, "message_too_long", `message is ${message.length} characters; the limit is ${max}`);
    }
    const result = await reach(c, key, (room) => room.publish({ username: identity.username, message, clientMessageId }));
    if (!result.ok) throw roomRefusal(result.error);
    // A repeated clientMessageId gets the same 201 and body as the first: a retry cannot tell them apart, nor need to.
    return c.json({ ok: true, id: result.id, seq: result.seq }, 201);
  });

  api.openapi(roomInfo, async (c) => {
    const { id: key } = c.req.valid("param");
    requireRoom(c.var.identity, key);
    const info = await reach(c, key, (room) => room.info());
    return c.json(info, 200);
  });

  api.openapi(messageHistory, async (c) => {
    const { id: key } = c.req.valid("param");
    const { before, limit } = c.req.valid("query");
    requireRoom(c.var.identity, key);
    const page = await reach(c, key, (room) => room.history(before, limit));
    if (!page.ok) throw roomRefusal(page.error);
    return c.json(page, 200);
  });

  api.openapi(deleteMessage, async (c) => {
    const { id: key, messageId } = c.req.valid("param");
    const identity = c.var.identity;
    requireRoom(identity, key);
    const deleted = await reach(c, key, (room) => room.moderate(messageId, identity.username));
    if (!deleted.ok) throw roomRefusal(deleted.error);
    return c.json(deleted, 200);
  });

  let document: ReturnType<typeof api.getOpenAPI31Document> | undefined;
  api.openapi(openApiDocument, (c) => {
    // Generated once per isolate: the routes do not change while it runs.
    document ??= api.getOpenAPI31Document({
      openapi: "3.1.0",
      info: {
        title: "PR rooms HTTP API",
        version: "1.0.0",
        description: "Publish to pull-request chat rooms and see who is in them. Errors are `{ ok: false, error: { code, message } }`.",
      },
    });
    return c.json(document, 200);
  });

  api.all("/*", (c) => {
    throw ApiError.of(404, "not_found", `no API route ${c.req.method} ${c.req.path}; see /api/openapi.json`);
  });

  api.onError((error, c) => {
    const refusal = asApiError(error, c);
    if (refusal.code === "internal_error") log("handler_error", { path: c.req.path, error: String(error) });
    else if (refusal.code === "server_misconfigured") log("config_error", { error: error.message });
    else if (refusal.code !== "rate_limited" || rateLogDue()) {
      // Never the token or the body: who, where, and why.
      log("refused", { api: c.req.method, pr: c.req.param("id")?.slice(0, 32), user: c.get("identity")?.username, code: refusal.code });
    }
    return refusal.response();
  });

  return api;
});

/** Anything thrown, as the API answers it. */
function asApiError(error: Error, c: Context<ApiEnv>): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof HTTPException && error.status === 415) {
    return ApiError.of(415, "invalid_payload", `send the body as JSON with Content-Type: application/json (got ${JSON.stringify(c.req.header("Content-Type")?.slice(0, 100) ?? "none")})`);
  }
  if (error instanceof HTTPException && error.status === 400) return ApiError.of(400, "invalid_payload", "the body is not valid JSON");
  // The details of a bad configuration go to the logs, not to whoever asked.
  if (error instanceof ConfigError) return ApiError.of(500, "server_misconfigured", "server misconfigured; see the logs");
  return ApiError.of(500, "internal_error", "internal error");
}

type RoomStub = ReturnType<Env["PR_ROOM"]["getByName"]>;

/** Calls the room; a room that cannot be reached (the RPC threw) is `room_unavailable`. */
async function reach<R>(c: Context<ApiEnv>, key: string, call: (room: RoomStub) => R): Promise<Awaited<R>> {
  try {
    return await call(c.env.PR_ROOM.getByName(roomName(key)));
  } catch (error) {
    log("room_link_lost", { api: c.req.method, pr: key, error: error instanceof Error ? error.name : "unknown" });
    throw ApiError.of(503, "room_unavailable", `${roomName(key)} could not be reached; try again (with the same clientMessageId, a retry is not delivered twice)`);
  }
}

/**
 * A refusal from the room itself (its publish may refuse as a socket send would), with the
 * status its code has here; one the API does not know is the room's trouble: 503.
 */
function roomRefusal(error: ErrorBody): ApiError {
  const status = statusOf(error.code);
  // statusOf found the code among that status's own codes.
  return status === undefined ? ApiError.of(503, "room_unavailable", error.message) : ApiError.of(status, error.code as never, error.message);
}

/** Rate-limit refusals are logged at most once a second per isolate: a flood must not flood the logs. */
let rateLoggedAt = 0;
function rateLogDue(): boolean {
  const now = Date.now();
  if (now - rateLoggedAt < 1000) return false;
  rateLoggedAt = now;
  return true;
}
