#!/usr/bin/env node
/**
 * Mints a token, as your backend would: an HS256 JWT whose `sub` is the username, whose
 * `prs` lists the pull requests it may use, and whose `scope`, when given, says what it may
 * do: `chat` (the sockets), `publish` (the HTTP API's publish, which implies `read`), `read`,
 * `moderate` (deleting any message, which implies `read`).
 * Without `--scope` the token has no `scope` claim: a user's chat token.
 *
 *   npm run token -- --user johndoe --pr 123 [--pr 124] [--ttl 1h] [--iss URL] [--aud NAME]
 *   npm run token -- --user ci-bot --scope publish [--scope read]
 *
 * The secret comes from --secret, else the AUTH_SECRET environment variable, else AUTH_SECRET
 * in `.dev.vars` in the current directory (where `npm start`'s wrangler reads it).
 *
 * A backend does the same with any JWT library: sign { sub, prs, exp, iat, iss?, aud? }
 * with the shared secret, algorithm HS256, and hand the token to the page, which
 * connects with io(url, { transports: ["websocket"], auth: { token } }).
 *
 * Every refusal is one line on stderr and exit code 2.
 */
import { readFileSync } from "node:fs";
import { parseArgs, parseEnv } from "node:util";
import { sign } from "hono/jwt";

/** src/chat/identity.ts's SCOPE_GRANTS words (a test checks the two agree). */
const SCOPE_WORDS = ["chat", "publish", "read", "moderate"];
/** src/chat/config.ts's least AUTH_SECRET length: the server would not start with a shorter one. */
const MIN_SECRET_LENGTH = 32;
/** src/chat/identity.ts's MAX_TOKEN_PULL_REQUESTS. */
const MAX_PULL_REQUESTS = 100;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 };
const MAX_TTL_SECONDS = 365 * 86400;

const USAGE = `usage: npm run token -- --user NAME [--pr ID ...] [--scope WORD ...] [--ttl TTL] [--iss ISS] [--aud AUD] [--secret SECRET]

  --user NAME    the token's sub: the username it speaks as
  --pr ID        a pull request it may use (up to ${MAX_PULL_REQUESTS}); none: any
  --scope WORD   what it may do, repeatable or space-separated; scope words: ${SCOPE_WORDS.join(", ")}
                 (chat: sockets; publish: the HTTP API's publish and read; read: its read;
                 moderate: deleting any message, and read).
                 None: no scope claim, a user's chat token
  --ttl TTL      how long it lives: a whole number and a unit s, m, h or d (90s, 30m, 1h, 7d),
                 at least 1s, at most 365d; default 1h
  --iss, --aud   the iss and aud the Worker's AUTH_ISSUER and AUTH_AUDIENCE require, if set
  --secret       the signing secret (at least ${MIN_SECRET_LENGTH} characters); default: AUTH_SECRET from
                 the environment, else from .dev.vars in the current directory`;

/** A refusal: one line on stderr, exit code 2 (never a stack trace). */
class Refusal extends Error {}

function main() {
  const values = options(process.argv.slice(2));
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.user?.trim()) throw new Refusal("--user NAME is required (npm run token -- --help)");
  const secret = signingSecret(values.secret);
  const now = Math.floor(Date.now() / 1000);
  const payload = { sub: values.user, iat: now, exp: now + ttlSeconds(values.ttl) };
  if (values.pr) payload.prs = pullRequests(values.pr);
  if (values.iss) payload.iss = values.iss;
  if (values.aud) payload.aud = values.aud;
  if (values.scope) payload.scope = scope(values.scope);
  return sign(payload, secret, "HS256").then((token) => console.log(token));
}

function options(args) {
  try {
    return parseArgs({
      args,
      options: {
        help: { type: "boolean", short: "h" },
        user: { type: "string" },
        pr: { type: "string", multiple: true },
        ttl: { type: "string", default: "1h" },
        iss: { type: "string" },
        aud: { type: "string" },
        scope: { type: "string", multiple: true },
        secret: { type: "string" },
      },
    }).values;
  } catch (error) {
    // parseArgs's own message names the option ("Unknown option '--usr'"), over one line or more.
    throw new Refusal(`${error.message.split("\n").join(" ")} (npm run token -- --help)`);
  }
}

/** --secret, else AUTH_SECRET from the environment, else from ./.dev.vars; never echoed. */
function signingSecret(given) {
  const secret = given ?? (process.env.AUTH_SECRET || devVarsSecret());
  if (!secret) throw new Refusal("no secret: set AUTH_SECRET (in the environment or .dev.vars) or pass --secret");
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new Refusal(`the secret is ${secret.length} characters; the Worker needs at least ${MIN_SECRET_LENGTH} (openssl rand -hex 32 makes one)`);
  }
  return secret;
}

/** AUTH_SECRET in .dev.vars (dotenv syntax, as wrangler reads it), if that file is here. */
function devVarsSecret() {
  let text;
  try {
    text = readFileSync(".dev.vars", "utf8");
  } catch {
    return undefined;
  }
  return parseEnv(text).AUTH_SECRET;
}

/** "90s", "30m", "1h", "7d" → seconds: a whole number and a unit, from 1s to 365d. */
function ttlSeconds(ttl) {
  const match = /^(\d{1,9})([smhd])$/.exec(ttl);
  const seconds = match ? Number(match[1]) * UNIT_SECONDS[match[2]] : 0;
  if (seconds < 1 || seconds > MAX_TTL_SECONDS) {
    throw new Refusal(`--ttl must be a whole number and a unit s, m, h or d, from 1s to 365d (90s, 30m, 1h, 7d), not ${JSON.stringify(ttl)}`);
  }
  return seconds;
}

/** The --pr ids, each a positive decimal integer of at most 20 digits, as the Worker takes them. */
function pullRequests(ids) {
  if (ids.length > MAX_PULL_REQUESTS) throw new Refusal(`at most ${MAX_PULL_REQUESTS} --pr, not ${ids.length}; none means any pull request`);
  for (const id of ids) {
    if (!/^\d{1,20}$/.test(id) || /^0+$/.test(id)) throw new Refusal(`--pr must be a positive integer of at most 20 digits, not ${JSON.stringify(id)}`);
  }
  return ids;
}

/** `--scope publish --scope read` and `--scope "publish read"` both give "publish read"; every word must be known. */
function scope(given) {
  const words = given.flatMap((value) => value.split(/\s+/)).filter(Boolean);
  const unknown = words.find((word) => !SCOPE_WORDS.includes(word));
  if (unknown !== undefined) throw new Refusal(`unknown scope word ${JSON.stringify(unknown)}; scope words: ${SCOPE_WORDS.join(", ")}`);
  if (words.length === 0) throw new Refusal(`--scope needs a word: ${SCOPE_WORDS.join(", ")}`);
  return words.join(" ");
}

try {
  await main();
} catch (error) {
  if (!(error instanceof Refusal)) throw error;
  console.error(`token: ${error.message}`);
  process.exitCode = 2;
}
