/**
 * Webhooks: the contract between a room that emits events and the Worker's queue consumer
 * that delivers them (docs/webhooks.md). A room writes each event to its outbox
 * (room/outbox.ts), which hands it to a Cloudflare Queue once the write has committed; the
 * consumer (gateway/webhooks.ts) POSTs it to WEBHOOK_URL, signed per the Standard Webhooks
 * specification, and the queue retries it with backoff, then dead-letters it.
 *
 * Every attempt of one event carries the same `webhook-id` (the queue message's `id`, chosen
 * by the room when the event happened and stored with it), so a receiver deduplicates by it.
 * Plain types and small helpers; zod only for the two settings, which come from outside.
 */
import { z } from "zod";

/** The events a backend can receive. */
export const WEBHOOK_TYPES = ["message.created", "message.edited", "message.deleted", "room.occupied", "room.vacated"] as const;
export type WebhookType = (typeof WEBHOOK_TYPES)[number];

/** Message events (`message.*`): what a backend needs to notify the people a message mentions. */
export interface MessageEventData {
  /** As clients see it: a number when it fits one exactly. */
  pullRequestId: number | string;
  /** The message's id (the same in every event about it). */
  id: string;
  /** The seq of this event in the room's log (a created message's own seq, an edit's or a delete's). */
  seq: number;
  /** Who sent the message. */
  username: string;
  /** The text as it is now; absent from message.deleted. */
  message?: string;
  /** The names the text mentions (`@name`); for message.deleted, those of the deleted text. */
  mentions: string[];
  /** 1 for the original, +1 per edit (message.edited). */
  version?: number;
  /** When it was last edited, ms since the epoch (message.edited). */
  editedAt?: number;
  /** When it was first sent, ms since the epoch (as `sentAt` in `pr-room-message`). */
  sentAt?: number;
}

/** Room events (`room.*`): who arrived first in an empty room, or who left it empty last. */
export interface RoomEventData {
  pullRequestId: number | string;
  username: string;
}

export interface WebhookDataOf {
  "message.created": MessageEventData;
  "message.edited": MessageEventData;
  "message.deleted": MessageEventData;
  "room.occupied": RoomEventData;
  "room.vacated": RoomEventData;
}

/** The body a receiver gets, per the Standard Webhooks payload structure. */
export type WebhookBody<T extends WebhookType = WebhookType> = {
  [K in T]: {
    type: K;
    /** When the event happened, ISO 8601 (UTC). Each attempt's own time is the `webhook-timestamp` header. */
    timestamp: string;
    data: WebhookDataOf[K];
  };
}[T];

/** One queue message: the event and its `webhook-id`, fixed when the room emitted it. */
export interface WebhookMessage {
  /** The `webhook-id`: the same on every attempt and every resend of this event. */
  id: string;
  body: WebhookBody;
}

/**
 * A webhook-id: letters, digits, `_` and `-` only. The signature covers `{id}.{timestamp}.{body}`,
 * so an id must never hold a `.` (Standard Webhooks). The room's are `evt_<pullRequestId>_<seq>`
 * for events of its log and `evt_<pullRequestId>_room_<n>` for arrivals and departures.
 */
export const WEBHOOK_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** The id of the event a room logged as `seq` (a message, an edit, a delete). */
export const logEventId = (key: string, seq: number): string => `evt_${key}_${seq}`;

/** The id of the room's `n`th room event (room.occupied, room.vacated): `n` from a counter the room keeps. */
export const roomEventId = (key: string, n: number): string => `evt_${key}_room_${n}`;

/** A body for an event that happened at `at` (ms since the epoch). */
export function webhookBody<T extends WebhookType>(type: T, data: WebhookDataOf[T], at: number): WebhookBody<T> {
  return { type, timestamp: new Date(at).toISOString(), data } as WebhookBody<T>;
}

// ---- settings ------------------------------------------------------------------------------

/** What the consumer needs to deliver; undefined (webhooks off) when WEBHOOK_URL is unset. */
export interface WebhookSettings {
  url: string;
  /** `whsec_<base64>`, as Standard Webhooks libraries take it. */
  secret: string;
}

/** One thing wrong with the two settings, shaped as chat/config.ts's ConfigProblem. */
export interface WebhookProblem {
  variable: "WEBHOOK_URL" | "WEBHOOK_SECRET";
  rule: string;
  got?: string;
}

export class WebhookConfigError extends Error {
  override name = "WebhookConfigError";

  constructor(readonly problems: readonly WebhookProblem[]) {
    super(`Invalid configuration: ${problems.map(({ variable, rule, got }) => `${variable}: ${rule}${got === undefined ? "" : ` (got ${got})`}`).join("; ")}`);
  }
}

/** Hosts a plain-http WEBHOOK_URL may name: a receiver on this machine, for `wrangler dev`. */
const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

const URL_RULE = "must be an https:// URL (http:// only for localhost, 127.0.0.1 or [::1])";
const SECRET_RULE = 'must be "whsec_" followed by the base64 of 24 to 64 random bytes (for example "whsec_$(openssl rand -base64 32)")';
export const SECRET_MISSING_RULE = "must be set when WEBHOOK_URL is (the key every webhook is signed with)";

/** Whether `url` may receive webhooks: https anywhere, plain http only on this machine. */
export function isWebhookUrl(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const { protocol, hostname, username, password } = new URL(url);
  if (username || password) return false;
  return protocol === "https:" || (protocol === "http:" && LOOPBACK.has(hostname));
}

/** The secret's key bytes, when it is `whsec_` and padded standard base64 of 24 to 64 bytes. */
export function isWebhookSecret(secret: string): boolean {
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret);
  if (!match || match[1]!.length % 4 !== 0) return false;
  try {
    const bytes = atob(match[1]!).length;
    return bytes >= 24 && bytes <= 64;
  } catch {
    return false;
  }
}

/**
 * The two settings as zod fields, for chat/config.ts's ConfigSchema (blank values arrive as
 * undefined there). Built on first use, as the other schemas are, not at module scope.
 */
let fields: { WEBHOOK_URL: z.ZodOptional<z.ZodString>; WEBHOOK_SECRET: z.ZodOptional<z.ZodString> } | undefined;
export function webhookFields() {
  return (fields ??= {
    /** Where webhooks go; unset turns them off (no outbox, no queue messages). */
    WEBHOOK_URL: z.string({ error: URL_RULE }).refine(isWebhookUrl, { error: URL_RULE }).optional(),
    /** The signing key, `whsec_<base64>`; a secret (`wrangler secret put WEBHOOK_SECRET`, or `.dev.vars`). */
    WEBHOOK_SECRET: z.string({ error: SECRET_RULE }).refine(isWebhookSecret, { error: SECRET_RULE }).optional(),
  });
}

/** The rule across the two: a URL needs a secret. For ConfigSchema's `.superRefine`. */
export function requireWebhookSecret(vars: { WEBHOOK_URL?: string | undefined; WEBHOOK_SECRET?: string | undefined }, ctx: z.RefinementCtx): void {
  if (vars.WEBHOOK_URL !== undefined && vars.WEBHOOK_SECRET === undefined) {
    ctx.addIssue({ code: "custom", path: ["WEBHOOK_SECRET"], message: SECRET_MISSING_RULE });
  }
}

const blank = (value: unknown) => (typeof value === "string" && value.trim() === "" ? undefined : value);

/** What is wrong with the two settings in `env` (empty: nothing). A secret's value is never quoted. */
export function webhookProblems(env: object): WebhookProblem[] {
  const vars = { WEBHOOK_URL: blank((env as Record<string, unknown>).WEBHOOK_URL), WEBHOOK_SECRET: blank((env as Record<string, unknown>).WEBHOOK_SECRET) };
  const parsed = z.object(webhookFields()).superRefine(requireWebhookSecret).safeParse(vars);
  if (parsed.success) return [];
  return parsed.error.issues.map((issue) => {
    const variable = String(issue.path[0]) as WebhookProblem["variable"];
    const problem: WebhookProblem = { variable, rule: issue.message };
    if (variable === "WEBHOOK_URL") problem.got = JSON.stringify(vars.WEBHOOK_URL);
    return problem;
  });
}

/**
 * Whether rooms emit events: WEBHOOK_URL is set. Rooms look at nothing else, so that a bad
 * secret (which the consumer reports, retrying) loses no event once it is fixed.
 */
export function webhooksOn(env: object): boolean {
  return blank((env as Record<string, unknown>).WEBHOOK_URL) !== undefined;
}

const settingsCache = new WeakMap<object, { settings: WebhookSettings | undefined }>();

/**
 * The webhook settings of the Worker's env, once per env object: undefined when WEBHOOK_URL
 * is unset (webhooks off), else the URL and the secret. Throws a WebhookConfigError naming
 * the variable when WEBHOOK_URL is set without WEBHOOK_SECRET, or either is malformed.
 */
export function webhookSettings(env: object): WebhookSettings | undefined {
  let cached = settingsCache.get(env);
  if (!cached) {
    const problems = webhookProblems(env);
    if (problems.length > 0) throw new WebhookConfigError(problems);
    const url = blank((env as Record<string, unknown>).WEBHOOK_URL) as string | undefined;
    const secret = (env as Record<string, unknown>).WEBHOOK_SECRET as string | undefined;
    cached = { settings: url === undefined ? undefined : { url, secret: secret! } };
    settingsCache.set(env, cached);
  }
  return cached.settings;
}
