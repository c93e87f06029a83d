#!/usr/bin/env node
/**
 * Mints a chat token, as your backend would: an HS256 JWT whose `sub` is the
 * username and whose `prs` lists the pull requests it may join. `--scope` adds the
 * HTTP API's grants (`publish`, which implies `read`; or `read`), space-separated in
 * the `scope` claim.
 *
 *   AUTH_SECRET=... npm run token -- --user johndoe --pr 123 [--pr 124] [--ttl 1h] [--iss URL] [--aud NAME]
 *   AUTH_SECRET=... npm run token -- --user ci-bot --scope publish [--scope read]
 *
 * A backend does the same with any JWT library: sign { sub, prs, exp, iat, iss?, aud? }
 * with the shared secret, algorithm HS256, and hand the token to the page, which
 * connects with io(url, { transports: ["websocket"], auth: { token } }).
 */
import { parseArgs } from "node:util";
import { sign } from "hono/jwt";

const { values } = parseArgs({
  options: {
    user: { type: "string" },
    pr: { type: "string", multiple: true },
    ttl: { type: "string", default: "1h" },
    iss: { type: "string" },
    aud: { type: "string" },
    scope: { type: "string", multiple: true },
    secret: { type: "string" },
  },
});

const secret = values.secret ?? process.env.AUTH_SECRET;
if (!values.user || !secret) {
  console.error("usage: AUTH_SECRET=... npm run token -- --user NAME [--pr ID ...] [--ttl 1h|30m|3600s] [--iss ISS] [--aud AUD] [--scope publish|read ...]");
  process.exit(2);
}

/** "90s", "30m", "1h", "7d" → seconds. */
function seconds(ttl) {
  const match = /^(\d+)([smhd])$/.exec(ttl);
  if (!match) throw new Error(`--ttl must look like 90s, 30m, 1h or 7d, not ${ttl}`);
  return Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[match[2]];
}

const now = Math.floor(Date.now() / 1000);
const payload = { sub: values.user, iat: now, exp: now + seconds(values.ttl) };
if (values.pr) payload.prs = values.pr.map(String);
if (values.iss) payload.iss = values.iss;
if (values.aud) payload.aud = values.aud;
// `--scope publish --scope read` and `--scope "publish read"` both give "publish read".
if (values.scope) payload.scope = values.scope.flatMap((words) => words.split(/\s+/)).filter(Boolean).join(" ");
console.log(await sign(payload, secret, "HS256"));
