/**
 * The chat's public contract, defined once: event names, zod schemas for every
 * inbound and outbound payload and every ack, error codes. Types are inferred from the
 * schemas, here and in the typed client (`src/client.ts`). The schemas are built on first
 * use (`lazySchema`), mostly after a client's first frame: building them all at module scope
 * cost every isolate's start-up about 5 ms of CPU, a tenth of it (scripts/cold-start.mjs).
 */
import { z } from "zod";
import { lazySchema } from "../util/lazy-schema.js";
import { isEmoji, MAX_EMOJI_BYTES } from "./emoji.js";

/** The namespace the chat lives on; the documented client connects to "/". */
export const CHAT_NAMESPACE = "/";

export const ErrorCode = z.enum([
  "invalid_payload",
  "unknown_event",
  "not_joined",
  "username_mismatch",
  "message_too_long",
  "room_unavailable",
  "room_full",
  "too_many_rooms",
  "too_many_connections",
  "room_mismatch",
  "rate_limited",
  "forbidden",
  "messages_lost",
  "not_found",
  "not_author",
  "too_many_reactions",
  "history_disabled",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** Digits with no sign, no leading zeros once normalised; 20 digits covers any 64-bit id. */
const ID_DIGITS = /^\d{1,20}$/;

/**
 * A positive integer or a string of decimal digits: 123 and "123" (and "0123") are
 * the same room. Parsed to the canonical digit string used in the room name.
 */
export const PullRequestId = lazySchema(() =>
  z
    .union([z.number().int().positive().max(Number.MAX_SAFE_INTEGER), z.string().regex(ID_DIGITS)], {
      error: "pullRequestId must be a positive integer or a string of decimal digits",
    })
    .transform((value, ctx) => {
      const digits = String(value).replace(/^0+/, "");
      if (digits === "") {
        ctx.addIssue({ code: "custom", message: "pullRequestId must be positive" });
        return z.NEVER;
      }
      return digits;
    }),
);

/** The canonical id as clients see it in payloads: a number when it fits one exactly. */
export function publicPullRequestId(key: string): number | string {
  const n = Number(key);
  return Number.isSafeInteger(n) ? n : key;
}

export function roomName(key: string): string {
  return `pr:${key}`;
}

/**
 * What a display name may not contain: controls (Cc), format characters (Cf: zero-width
 * and bidirectional controls among them), line and paragraph separators (Zl, Zp). With
 * them, `admin\u200B` would look like `admin`.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/** A display name, NFC-normalised so that one name has one spelling. */
export const Username = lazySchema(() =>
  z
    .string({ error: "username must be a string" })
    .transform((name) => name.normalize("NFC").trim())
    .pipe(
      z
        .string()
        .min(1, { error: "username must not be empty" })
        .max(64, { error: "username must be at most 64 characters" })
        .refine((name) => !INVISIBLE.test(name), {
          error: "username must not contain control, format (zero-width, bidirectional) or separator characters",
        }),
    ),
);

/** Emptiness is checked here; the length limit is configuration (MAX_MESSAGE_LENGTH). */
export const MessageText = lazySchema(() =>
  z
    .string({ error: "message must be a string" })
    .refine((text) => text.trim().length > 0, { error: "message must not be empty or only white space" }),
);

/** The sender's id for a message, so a resend (after a lost ack) is not delivered twice. */
export const ClientMessageId = lazySchema(() =>
  z
    .string({ error: "clientMessageId must be a string" })
    .min(1, { error: "clientMessageId must not be empty" })
    .max(64, { error: "clientMessageId must be at most 64 characters" }),
);

export const RoomRef = lazySchema(() => z.object({ pullRequestId: PullRequestId, username: Username }));
export const RoomOnly = lazySchema(() => z.object({ pullRequestId: PullRequestId }));
export const MessageIn = lazySchema(() => RoomRef.unwrap().extend({ message: MessageText, clientMessageId: ClientMessageId.optional() }));

/** A message's id, as `pr-room-message` gave it. */
export const MessageId = lazySchema(() =>
  z.string({ error: "id must be a string" }).min(1, { error: "id must not be empty" }).max(64, { error: "id must be at most 64 characters" }),
);

/** Most messages one history page holds. */
export const MAX_HISTORY_PAGE = 100;

export const HistoryIn = lazySchema(() =>
  RoomOnly.unwrap().extend({
    /** The page ends just before this seq (the oldest one the client has); the latest messages without it. */
    before: z.number({ error: "before must be a seq (a positive integer)" }).int({ error: "before must be a whole number" }).positive({ error: "before must be positive" }).optional(),
    limit: z
      .number({ error: "limit must be a number" })
      .int({ error: "limit must be a whole number" })
      .min(1, { error: "limit must be at least 1" })
      .max(MAX_HISTORY_PAGE, { error: `limit must be at most ${MAX_HISTORY_PAGE}` })
      .default(50),
  }),
);
export const EditIn = lazySchema(() => RoomOnly.unwrap().extend({ id: MessageId, message: MessageText }));
export const DeleteIn = lazySchema(() => RoomOnly.unwrap().extend({ id: MessageId }));
export const ReactIn = lazySchema(() =>
  RoomOnly.unwrap().extend({
    id: MessageId,
    emoji: z
      .string({ error: "emoji must be a string" })
      .refine(isEmoji, { error: `emoji must be one emoji (one grapheme, at most ${MAX_EMOJI_BYTES} bytes)` }),
    /** false takes the reaction back. */
    on: z.boolean({ error: "on must be true or false" }).default(true),
  }),
);

export type RoomRef = z.infer<typeof RoomRef>;
export type MessageIn = z.infer<typeof MessageIn>;

// ---- outbound: what clients receive ---------------------------------------------------

const OutboundId = lazySchema(() => z.union([z.number(), z.string()]));

export const PrRoomMessage = lazySchema(() =>
  z.object({
    pullRequestId: OutboundId,
    username: z.string(),
    message: z.string(),
    /** Unique per message, for de-duplication and keys in UIs. */
    id: z.string(),
    /**
     * The room's sequence number: every room event (a message, and each edit, delete or
     * change of reactions) takes the next, 1, 2, 3, … with no gaps, never reused.
     */
    seq: z.number().int().positive(),
    /** Server time of the broadcast, milliseconds since the epoch. */
    sentAt: z.number(),
    /** The names the message addresses as `@name`, each once, in order (src/chat/mentions.ts). */
    mentions: z.array(z.string()),
    /** Present once edited: 2 after the first edit (the original is 1), and when the last edit was made. */
    version: z.number().int().positive().optional(),
    editedAt: z.number().optional(),
  }),
);
export type PrRoomMessage = z.infer<typeof PrRoomMessage>;

/** Who reacted with what: emoji → usernames (each once, however many tabs). */
export const Reactions = lazySchema(() => z.record(z.string(), z.array(z.string())));

export const MessageEdited = lazySchema(() =>
  z.object({
    pullRequestId: OutboundId,
    id: z.string(),
    /** The edit's own seq (a room event). */
    seq: z.number().int().positive(),
    username: z.string(),
    message: z.string(),
    version: z.number().int().positive(),
    editedAt: z.number(),
    mentions: z.array(z.string()),
  }),
);
export type MessageEdited = z.infer<typeof MessageEdited>;

export const MessageDeleted = lazySchema(() => z.object({ pullRequestId: OutboundId, id: z.string(), seq: z.number().int().positive() }));
export type MessageDeleted = z.infer<typeof MessageDeleted>;

export const MessageReactions = lazySchema(() =>
  z.object({
    pullRequestId: OutboundId,
    id: z.string(),
    /** The change's own seq (a room event), so a client can order reaction states. */
    seq: z.number().int().positive(),
    reactions: Reactions,
  }),
);
export type MessageReactions = z.infer<typeof MessageReactions>;

/** A message in a history page: as it is now, with its reactions; a deleted one only says so. */
export const HistoryItem = lazySchema(() =>
  z.union([PrRoomMessage.unwrap().extend({ reactions: Reactions.optional() }), z.object({ id: z.string(), seq: z.number().int().positive(), deleted: z.literal(true) })]),
);
export type HistoryItem = z.infer<typeof HistoryItem>;

export const TypingNotice = lazySchema(() => z.object({ pullRequestId: OutboundId, username: z.string() }));
export type TypingNotice = z.infer<typeof TypingNotice>;

export const PresenceNotice = lazySchema(() => z.object({ pullRequestId: OutboundId, username: z.string() }));
export type PresenceNotice = z.infer<typeof PresenceNotice>;

export const ErrorBody = lazySchema(() => z.object({ code: ErrorCode, message: z.string() }));
export type ErrorBody = z.infer<typeof ErrorBody>;

export const PrRoomError = lazySchema(() =>
  ErrorBody.unwrap().extend({
    event: z.string(),
    pullRequestId: OutboundId.optional(),
    /** With `messages_lost`: how many room events (messages and changes to them) the client will never get, where known. */
    lost: z.number().int().nonnegative().optional(),
  }),
);
export type PrRoomError = z.infer<typeof PrRoomError>;

export const Refusal = lazySchema(() => z.object({ ok: z.literal(false), error: ErrorBody }));
export const JoinAck = lazySchema(() =>
  z.object({
    ok: z.literal(true),
    pullRequestId: OutboundId,
    /** Distinct usernames in the room now. */
    members: z.number().int(),
    /** Those usernames, sorted. */
    users: z.array(z.string()),
    /** The room's latest room event's `seq` (0 before the first): a client that rejoins can tell what it missed. */
    seq: z.number().int().nonnegative(),
  }),
);
export const SendAck = lazySchema(() => z.object({ ok: z.literal(true), id: z.string(), seq: z.number().int().positive() }));
export const LeaveAck = lazySchema(() => z.object({ ok: z.literal(true), pullRequestId: OutboundId }));
export const TypingAck = lazySchema(() => z.object({ ok: z.literal(true) }));
export const UsersAck = lazySchema(() => z.object({ ok: z.literal(true), pullRequestId: OutboundId, users: z.array(z.string()) }));

export const HistoryAck = lazySchema(() => z.object({ ok: z.literal(true), messages: z.array(HistoryItem), hasMore: z.boolean() }));
export const EditAck = lazySchema(() => z.object({ ok: z.literal(true), version: z.number().int().positive() }));
export const DeleteAck = lazySchema(() => z.object({ ok: z.literal(true), id: z.string(), seq: z.number().int().positive() }));
export const ReactAck = lazySchema(() => z.object({ ok: z.literal(true), reactions: Reactions }));

export type Refusal = z.infer<typeof Refusal>;
export type HistoryAck = z.infer<typeof HistoryAck>;
export type EditAck = z.infer<typeof EditAck>;
export type DeleteAck = z.infer<typeof DeleteAck>;
export type ReactAck = z.infer<typeof ReactAck>;
export type JoinAck = z.infer<typeof JoinAck>;
export type SendAck = z.infer<typeof SendAck>;
export type LeaveAck = z.infer<typeof LeaveAck>;
export type TypingAck = z.infer<typeof TypingAck>;
export type UsersAck = z.infer<typeof UsersAck>;

// ---- the event maps -------------------------------------------------------------------

/** Client → server: each event's payload schema and what its ack answers on success. */
export const ClientEvents = {
  "join-pr-room": { payload: RoomRef, ack: JoinAck },
  "send-message-to-pr-room": { payload: MessageIn, ack: SendAck },
  "leave-pr-room": { payload: RoomRef, ack: LeaveAck },
  typing: { payload: RoomRef, ack: TypingAck },
  "stop-typing": { payload: RoomRef, ack: TypingAck },
  "get-pr-room-users": { payload: RoomOnly, ack: UsersAck },
  "get-pr-room-history": { payload: HistoryIn, ack: HistoryAck },
  "edit-pr-room-message": { payload: EditIn, ack: EditAck },
  "delete-pr-room-message": { payload: DeleteIn, ack: DeleteAck },
  "react-to-pr-room-message": { payload: ReactIn, ack: ReactAck },
} as const satisfies Record<string, { payload: z.ZodType; ack: z.ZodType }>;

export type ClientEventName = keyof typeof ClientEvents;

/** Server → client: each event's payload schema. */
export const ServerEvents = {
  "pr-room-message": PrRoomMessage,
  typing: TypingNotice,
  "stop-typing": TypingNotice,
  "pr-room-user-joined": PresenceNotice,
  "pr-room-user-left": PresenceNotice,
  "pr-room-error": PrRoomError,
  "pr-room-message-edited": MessageEdited,
  "pr-room-message-deleted": MessageDeleted,
  "pr-room-message-reactions": MessageReactions,
} as const satisfies Record<string, z.ZodType>;

export type ServerEventName = keyof typeof ServerEvents;

/** Event names by role, for code that emits or routes them. */
export const ClientEvent = {
  join: "join-pr-room",
  send: "send-message-to-pr-room",
  leave: "leave-pr-room",
  typing: "typing",
  stopTyping: "stop-typing",
  users: "get-pr-room-users",
  history: "get-pr-room-history",
  edit: "edit-pr-room-message",
  delete: "delete-pr-room-message",
  react: "react-to-pr-room-message",
} as const satisfies Record<string, ClientEventName>;

export const ServerEvent = {
  message: "pr-room-message",
  typing: "typing",
  stopTyping: "stop-typing",
  userJoined: "pr-room-user-joined",
  userLeft: "pr-room-user-left",
  error: "pr-room-error",
  edited: "pr-room-message-edited",
  deleted: "pr-room-message-deleted",
  reactions: "pr-room-message-reactions",
} as const satisfies Record<string, ServerEventName>;
