/**
 * Who may call the API: a bearer JWT verified exactly as a socket's token is
 * (`verifyToken`: HS256 only, iss/aud, exp with CLOCK_SKEW_SECONDS), whose space-separated
 * `scope` grants `publish` or `moderate` (each implies `read`) or `read` (the words and their grants are
 * identity.ts's SCOPE_GRANTS, shared with the sockets; an unknown word makes the token
 * invalid, 401 token_invalid, as everywhere). Its optional `prs` limits
 * the rooms. Without AUTH_SECRET nobody can be authenticated, so the API is off: it
 * never publishes for an unauthenticated caller.
 */
import { createMiddleware } from "hono/factory";
import { allowsRoom, grants, verifyToken, type Grant, type Identity } from "../chat/identity.js";
import { configOf } from "../chat/config.js";
import { roomName } from "../chat/events.js";
import type { ApiEnv } from "./env.js";
import { ApiError } from "./errors.js";

/** What an API route may require of a token's scope: an operation of the API, not the chat. */
export type Scope = Exclude<Grant, "chat">;

const REALM = 'Bearer realm="pr-rooms"';

/** Verifies the bearer token and that it grants `scope`; the identity goes to `c.var.identity`. */
export function requireScope(scope: Scope) {
  return createMiddleware<ApiEnv>(async (c, next) => {
    const config = configOf(c.env);
    if (config.AUTH_SECRET === undefined) {
      throw ApiError.of(501, "api_disabled", "the HTTP API is disabled: set AUTH_SECRET (see the README, HTTP API)");
    }
    const token = bearerToken(c.req.header("Authorization"));
    if (token === undefined) {
      throw ApiError.of(401, "auth_required", "send the token as Authorization: Bearer <token>", { "WWW-Authenticate": REALM });
    }
    const verified = await verifyToken(token, config.AUTH_SECRET, config);
    if (!verified.ok) {
      throw ApiError.of(401, verified.code, verified.message, { "WWW-Authenticate": `${REALM}, error="invalid_token"` });
    }
    c.set("identity", verified.identity);
    if (!grants(verified.identity, scope)) {
      throw ApiError.of(403, "forbidden", `this token's scope does not grant ${scope}`, {
        "WWW-Authenticate": `${REALM}, error="insufficient_scope", scope="${scope}"`,
      });
    }
    await next();
  });
}

/** Refuses a room outside the token's `prs` (a token without `prs` may use any). */
export function requireRoom(identity: Identity, key: string): void {
  if (!allowsRoom(identity, key)) {
    throw ApiError.of(403, "forbidden", `this token does not allow ${roomName(key)}`);
  }
}

/** The token of `Authorization: Bearer <token>`; undefined for no header or another scheme. */
function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1];
}
