/**
 * Reads a request body with a cap (MAX_PAYLOAD_BYTES, as for a socket frame): a declared
 * Content-Length over it is refused unread, and a body is read chunk by chunk and dropped
 * the moment it passes the cap, so no request is ever buffered unbounded, whatever it
 * declares. What is read replaces the request's body for the validators after this.
 */
import { createMiddleware } from "hono/factory";
import { configOf } from "../chat/config.js";
import { readAtMost } from "../util/read-capped.js";
import type { ApiEnv } from "./env.js";
import { ApiError } from "./errors.js";

export const cappedBody = createMiddleware<ApiEnv>(async (c, next) => {
  const max = configOf(c.env).MAX_PAYLOAD_BYTES;
  const tooLarge = () => ApiError.of(413, "payload_too_large", `the body is larger than ${max} bytes (MAX_PAYLOAD_BYTES)`);
  const declared = Number(c.req.header("Content-Length"));
  if (declared > max) throw tooLarge();
  const bytes = await readAtMost(c.req.raw.body, max);
  if (bytes === undefined) throw tooLarge();
  if (!isUtf8(bytes)) throw ApiError.of(400, "invalid_payload", "the body is not UTF-8 text");
  c.req.raw = new Request(c.req.raw, { body: bytes });
  await next();
});

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

function isUtf8(bytes: Uint8Array): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}
