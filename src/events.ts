/**
 * The chat's public contract, defined once: event names, zod schemas for every
 * inbound and outbound payload, error codes. Types are inferred from the schemas.
 */
import { z } from "zod";

/** The namespace the chat lives on; the documented client connects to "/". */
export const CHAT_NAMESPACE = "/";

export const ClientEvent = {
  join: "join-pr-room",
  send: "send-message-to-pr-room",
  leave: "leave-pr-room",
  typing: "typing",
  stopTyping: "stop-typing",
} as const;
export type ClientEventName = (typeof ClientEvent)[keyof typeof ClientEvent];

export const ServerEvent = {
  message: "pr-room-message",
  typing: "typing",
  stopTyping: "stop-typing",
  error: "pr-room-error",
} as const;

export const ErrorCode = z.enum([
  "invalid_payload",
  "unknown_event",
  "not_joined",
  "username_mismatch",
  "message_too_long",
  "room_unavailable",
  "room_full",
  "too_many_rooms",
  "rate_limited",
  "forbidden",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** Digits with no sign, no leading zeros once normalised; 20 digits covers any 64-bit id. */
const ID_DIGITS = /^\d{1,20}$/;

/**
 * A positive integer or a string of decimal digits: 123 and "123" (and "0123") are
 * the same room. Parsed to the canonical digit string used in the room name.
 */
export const PullRequestId = z
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
  });

/** The canonical id as clients see it in payloads: a number when it fits one exactly. */
export function publicPullRequestId(key: string): number | string {
  const n = Number(key);
  return Number.isSafeInteger(n) ? n : key;
}

export function roomName(key: string): string {
  return `pr:${key}`;
}

// Control characters (C0, DEL, C1) have no place in a display name.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export const Username = z
  .string({ error: "username must be a string" })
  .trim()
  .min(1, { error: "username must not be empty" })
  .max(64, { error: "username must be at most 64 characters" })
  .refine((name) => !CONTROL.test(name), { error: "username must not contain control characters" });

/** Emptiness is checked here; the length limit is configuration (MAX_MESSAGE_LENGTH). */
export const MessageText = z
  .string({ error: "message must be a string" })
  .refine((text) => text.trim().length > 0, { error: "message must not be empty or only white space" });

export const RoomRef = z.object({ pullRequestId: PullRequestId, username: Username });
export const MessageIn = RoomRef.extend({ message: MessageText });

export const InboundSchemas = {
  [ClientEvent.join]: RoomRef,
  [ClientEvent.send]: MessageIn,
  [ClientEvent.leave]: RoomRef,
  [ClientEvent.typing]: RoomRef,
  [ClientEvent.stopTyping]: RoomRef,
} satisfies Record<ClientEventName, z.ZodType>;

export type RoomRef = z.infer<typeof RoomRef>;
export type MessageIn = z.infer<typeof MessageIn>;

// Outbound payloads: what clients receive. The room builds them; tests check them.
const OutboundId = z.union([z.number(), z.string()]);

export const PrRoomMessage = z.object({
  pullRequestId: OutboundId,
  username: z.string(),
  message: z.string(),
  /** Unique per message, for de-duplication and keys in UIs. */
  id: z.string(),
  /** Server time of the broadcast, milliseconds since the epoch. */
  sentAt: z.number(),
});
export type PrRoomMessage = z.infer<typeof PrRoomMessage>;

export const TypingNotice = z.object({ pullRequestId: OutboundId, username: z.string() });
export type TypingNotice = z.infer<typeof TypingNotice>;

export const ErrorBody = z.object({ code: ErrorCode, message: z.string() });
export type ErrorBody = z.infer<typeof ErrorBody>;

export const PrRoomError = ErrorBody.extend({
  event: z.string(),
  pullRequestId: OutboundId.optional(),
});
export type PrRoomError = z.infer<typeof PrRoomError>;

export const Refusal = z.object({ ok: z.literal(false), error: ErrorBody });
export const JoinAck = z.object({ ok: z.literal(true), pullRequestId: OutboundId, members: z.number().int() });
export const SendAck = z.object({ ok: z.literal(true), id: z.string() });
export const LeaveAck = z.object({ ok: z.literal(true), pullRequestId: OutboundId });
export const TypingAck = z.object({ ok: z.literal(true) });

export type Refusal = z.infer<typeof Refusal>;
export type JoinAck = z.infer<typeof JoinAck>;
export type SendAck = z.infer<typeof SendAck>;
export type LeaveAck = z.infer<typeof LeaveAck>;
export type TypingAck = z.infer<typeof TypingAck>;
