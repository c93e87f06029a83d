/**
 * The API's per-subject budget: the Workers Rate Limiting binding (`API_RATE_LIMITER` in
 * wrangler.toml, 120 requests a minute), keyed by the token's `sub`, so one backend cannot
 * flood a room whatever its number of connections or isolates. It counts per Cloudflare
 * location and is eventually consistent: a guard against floods, not exact accounting.
 */
import { createMiddleware } from "hono/factory";
import type { ApiEnv } from "./env.js";
import { ApiError } from "./errors.js";

/** Charges one request to the caller's subject; runs after `requireScope`. */
export const perSubjectBudget = createMiddleware<ApiEnv>(async (c, next) => {
  const { success } = await c.env.API_RATE_LIMITER.limit({ key: c.var.identity.username });
  if (!success) {
    throw ApiError.of(429, "rate_limited", "too many requests for this token's subject; slow down and retry within a minute");
  }
  await next();
});
