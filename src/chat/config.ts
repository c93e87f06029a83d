/**
 * Configuration: wrangler `vars` (or `--var KEY:VALUE`) parsed once, at the edge,
 * into a typed object. A bad value fails with the variable's name in the message.
 * `npm start` checks the same schema before wrangler starts (scripts/check-config.mjs).
 */
import { z } from "zod";
import type { EngineOptions } from "../session/types.js";
import { requireWebhookSecret, webhookFields } from "./webhooks.js";

/** Vars arrive as strings from `--var` and `.dev.vars`, as numbers from wrangler.toml. */
const integer = (fallback: number, min: number, max: number) =>
  z.coerce
    .number({ error: "must be a number" })
    .int({ error: "must be a whole number" })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` })
    .default(fallback);

export const ConfigSchema = z.object({
  /** How often the server pings each client (Engine.IO heartbeat). */
  PING_INTERVAL_MS: integer(25_000, 50, 3_600_000),
  /** How long a ping may go unanswered before the connection is closed. */
  PING_TIMEOUT_MS: integer(20_000, 50, 3_600_000),
  /**
   * The direct path's heartbeat: each round wakes the room (an alarm invocation and a row
   * written, see docs/cost.md), so it pings less often than the gateway, whose pings cost
   * the Worker a little CPU and the room nothing. 45 s stays under the idle timeouts of
   * common proxies (55–60 s) with room for a late alarm; a dead client is noticed at the
   * round after its unanswered ping, within two intervals.
   */
  DIRECT_PING_INTERVAL_MS: integer(45_000, 50, 3_600_000),
  /**
   * Largest frame a client may send. A chat message of MAX_MESSAGE_LENGTH (4000) UTF-16
   * units is at most 12 KB as UTF-8, 24 KB if every character needs a JSON escape; 64 KiB
   * holds that with its envelope and still bounds what one frame can cost us.
   */
  MAX_PAYLOAD_BYTES: integer(65_536, 1_024, 16_777_216),
  /** How long a new connection may take to CONNECT to a namespace. */
  CONNECT_TIMEOUT_MS: integer(45_000, 100, 3_600_000),
  /** A `typing` not renewed or stopped within this expires (the room emits `stop-typing`). */
  TYPING_TIMEOUT_MS: integer(5_000, 100, 600_000),
  /** Longest chat message, in characters (UTF-16 code units, as JavaScript counts). */
  MAX_MESSAGE_LENGTH: integer(4_000, 1, 100_000),
  /**
   * How long an event for a room the connection has not joined waits for that join
   * before it is refused: socket.io-client sends emits buffered while offline ahead
   * of the join in its `connect` handler. 0 refuses at once.
   */
  JOIN_GRACE_MS: integer(1_000, 0, 10_000),
  /** Rooms one connection may be in at once. */
  MAX_ROOMS_PER_CONNECTION: integer(20, 1, 1_000),
  /** Links (connections) one room accepts; the room refuses more with room_full. */
  MAX_MEMBERS_PER_ROOM: integer(1_000, 1, 32_000),
  /** Connections one username may have in one room (tabs, devices); the room refuses more with too_many_connections. */
  MAX_CONNECTIONS_PER_USER: integer(5, 1, 1_000),
  /** Sustained rate of room events per connection (joins, leaves, messages, edits, deletes, reactions, history pages: a token bucket's refill per second). */
  RATE_LIMIT_PER_SECOND: integer(10, 1, 100_000),
  /** Burst those may reach before `rate_limited` (token bucket size). Typing has a bucket of its own. */
  RATE_LIMIT_BURST: integer(20, 1, 100_000),
  /**
   * How long a room keeps its messages, and a connection that went, for connection state
   * recovery and idempotent sends. 0 turns recovery off: rooms then store no messages.
   */
  RECOVERY_WINDOW_MS: integer(120_000, 0, 86_400_000),
  /**
   * How many days rooms keep their messages to be read as history (`get-pr-room-history`,
   * `GET /api/pull-requests/:id/messages`); 0 keeps none, as the API document has it. Apart
   * from RECOVERY_WINDOW_MS, which is how long a reconnecting client can catch up.
   */
  HISTORY_RETENTION_DAYS: integer(0, 0, 3650),
  /** Most room events a room keeps for recovery, older ones first; with history on, its retention rules instead. */
  RECOVERY_MAX_MESSAGES: integer(1_000, 1, 100_000),
  /**
   * Most bytes of missed messages one recovery replays (shared by the rooms of a gateway
   * connection); a client that missed more is not recovered (a link is re-joined and told
   * `messages_lost`). Bounds what a recovery costs the room, the Worker and the client.
   */
  MAX_REPLAY_BYTES: integer(4_194_304, 1_024, 268_435_456),
  /** Resumes one connection may make in one room per minute; more are refused (as not recoverable). */
  MAX_RESUMES_PER_MINUTE: integer(10, 1, 10_000),
  /** How long a user whose last connection went still counts as present (a reload, a blip). */
  PRESENCE_GRACE_MS: integer(5_000, 0, 3_600_000),
  /**
   * Bytes sent to a client that it has not yet shown it read (by answering a ping sent
   * after them); past this the connection is closed, and the client reconnects and recovers.
   * 0 turns the cap off.
   */
  MAX_BACKLOG_BYTES: integer(1_048_576, 0, 1_073_741_824),
  /**
   * How long a client that owes more than MAX_BACKLOG_BYTES may go without showing it read
   * more (a pong to a later ping) before it is cut off (close 1013; it recovers). A client
   * that keeps reading is not cut for the size of a burst, only past 16 × MAX_BACKLOG_BYTES.
   */
  SLOW_READER_TIMEOUT_MS: integer(10_000, 100, 3_600_000),
  /** Leeway for token times (`iat`, `nbf`, `exp`) between our clock and the issuer's. */
  CLOCK_SKEW_SECONDS: integer(60, 0, 3_600),
  /**
   * Turns identity on: connections must present an HS256 JWT signed with this secret
   * (`io(url, { auth: { token } })`). Set it as a secret (`wrangler secret put AUTH_SECRET`).
   */
  AUTH_SECRET: z.string({ error: "must be a string" }).min(32, { error: "must be at least 32 characters" }).optional(),
  /** With AUTH_SECRET: the `iss` tokens must carry, when set. */
  AUTH_ISSUER: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }).optional(),
  /** With AUTH_SECRET: the `aud` tokens must carry, when set. */
  AUTH_AUDIENCE: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }).optional(),
  /**
   * "on" opens `/__faults/…` for the fault harness and tests: restart a room's object, replace
   * a connection's room links as their watchdog would. Never in production.
   */
  FAULT_INJECTION: z.enum(["on", "off"], { error: 'must be "on" or "off"' }).default("off"),
  /** Comma-separated exact origins a browser may connect from; unset allows any (development). */
  ALLOWED_ORIGINS: z
    .string({ error: "must be a comma-separated list of origins like https://app.example.com" })
    .optional()
    .transform((list) => (list === undefined ? undefined : list.split(",").map((origin) => origin.trim()).filter(Boolean)))
    .pipe(
      z
        .array(
          z
            .url({ error: "must be a comma-separated list of origins like https://app.example.com" })
            // Only http(s) origins: others serialise as "null", which would let sandboxed pages in.
            .refine((origin) => !URL.canParse(origin) || new URL(origin).origin !== "null", { error: "must be http(s) origins" }),
        )
        .optional(),
    )
    .transform((origins) => origins?.map((origin) => new URL(origin).origin)),
  /** Webhooks (docs/webhooks.md): WEBHOOK_URL turns them on, and needs WEBHOOK_SECRET. */
  ...webhookFields(),
}).superRefine(requireWebhookSecret);

export type Config = z.infer<typeof ConfigSchema>;

/** One thing wrong with the configuration: the variable, and the rule its value breaks. */
export interface ConfigProblem {
  variable: string;
  /** What the value must be, as a sentence that follows the variable's name ("must be at least 32 characters"). */
  rule: string;
  /** The value, quoted, for a variable that is no secret (a secret's value is never echoed, not even a wrong one). */
  got?: string;
}

/** `AUTH_SECRET must be at least 32 characters`, `PING_INTERVAL_MS must be a number (got "abc")`. */
export function describeProblem({ variable, rule, got }: ConfigProblem): string {
  return `${variable} ${rule}${gotText(got)}`;
}

const gotText = (got: string | undefined) => (got === undefined ? "" : ` (got ${got})`);

export class ConfigError extends Error {
  override name = "ConfigError";

  constructor(readonly problems: readonly ConfigProblem[]) {
    super(`Invalid configuration: ${problems.map(({ variable, rule, got }) => `${variable}: ${rule}${gotText(got)}`).join("; ")}`);
  }
}

/** Whether a variable holds a secret, whose value no message may show. */
export const isSecret = (variable: string): boolean => variable.includes("SECRET");

/**
 * What is wrong with the Worker's env (empty: nothing). Each problem names the variable
 * and its rule; `npm start` (scripts/check-config.mjs) checks the same way before wrangler starts.
 */
export function configProblems(env: Record<string, unknown>): ConfigProblem[] {
  const vars = varsOf(env);
  const parsed = ConfigSchema.safeParse(vars);
  return parsed.success ? [] : problemsOf(parsed.error, vars);
}

/** Parses the Worker's env; throws a ConfigError naming every bad variable. */
export function parseConfig(env: Record<string, unknown>): Config {
  const vars = varsOf(env);
  const parsed = ConfigSchema.safeParse(vars);
  if (parsed.success) return parsed.data;
  throw new ConfigError(problemsOf(parsed.error, vars));
}

/** The settings the schema knows, blank ones as unset. */
function varsOf(env: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(ConfigSchema.shape).map((key) => [key, blankToUndefined(env[key])]));
}

function problemsOf(error: z.ZodError, vars: Record<string, unknown>): ConfigProblem[] {
  return error.issues.map((issue) => {
    const variable = String(issue.path[0]);
    const problem: ConfigProblem = { variable, rule: issue.message };
    const got = isSecret(variable) ? undefined : JSON.stringify(vars[variable]);
    if (got !== undefined) problem.got = got;
    return problem;
  });
}

const cache = new WeakMap<object, Config>();

/** parseConfig, once per env object (an isolate reuses its env across requests). */
export function configOf(env: object): Config {
  let config = cache.get(env);
  if (!config) {
    config = parseConfig(env as Record<string, unknown>);
    cache.set(env, config);
  }
  return config;
}

function blankToUndefined(value: unknown): unknown {
  return typeof value === "string" && value.trim() === "" ? undefined : value;
}

/** The Engine.IO settings of the direct path: the gateway's, with the direct heartbeat. */
export function directEngineOptions(config: Config): EngineOptions {
  return { ...engineOptions(config), pingInterval: config.DIRECT_PING_INTERVAL_MS };
}

/**
 * Longest a dead client can go unnoticed: on the gateway its ping's timeout runs out after
 * pingInterval + pingTimeout of silence; on the direct path the first round at least
 * pingTimeout after the unanswered ping judges it (with the defaults, two intervals of silence).
 */
export function deadPeerMs(config: Config, path: "gateway" | "direct"): number {
  if (path === "gateway") return config.PING_INTERVAL_MS + config.PING_TIMEOUT_MS;
  const interval = config.DIRECT_PING_INTERVAL_MS;
  return interval * (1 + Math.ceil(config.PING_TIMEOUT_MS / interval));
}

/** The Engine.IO settings every session host uses. */
export function engineOptions(config: Config): EngineOptions {
  return {
    pingInterval: config.PING_INTERVAL_MS,
    pingTimeout: config.PING_TIMEOUT_MS,
    maxPayload: config.MAX_PAYLOAD_BYTES,
    connectTimeout: config.CONNECT_TIMEOUT_MS,
    maxBacklog: config.MAX_BACKLOG_BYTES,
    slowReaderTimeout: config.SLOW_READER_TIMEOUT_MS,
    allowedOrigins: config.ALLOWED_ORIGINS,
  };
}
