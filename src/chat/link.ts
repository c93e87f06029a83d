/**
 * The link between a gateway session and a room: one WebSocket per (client, room).
 * Gateway → room: the small JSON commands below. Room → gateway: finished Engine.IO
 * frames, which the gateway forwards to its client as they are. Leaving is closing
 * the link. A direct connection in the room uses the same commands, without the wire.
 */
import { z } from "zod";
import { lazySchema } from "../util/lazy-schema.js";
import { ClientMessageId, ErrorCode } from "./events.js";

// The schemas are built on first use (`lazySchema`), as the chat's are (events.ts).

export const LinkCommand = lazySchema(() => {
  /** The client's ack id, when it asked for one; the room answers it directly. */
  const AckId = z.number().int().nonnegative().optional();
  return z.discriminatedUnion("t", [
    /** Join (again): answers the ack with who is here. */
    z.object({ t: z.literal("join"), ack: AckId }),
    z.object({ t: z.literal("msg"), ack: AckId, message: z.string(), cmid: ClientMessageId.optional() }),
    z.object({ t: z.literal("typing"), ack: AckId }),
    z.object({ t: z.literal("stop-typing"), ack: AckId }),
    z.object({ t: z.literal("users"), ack: AckId }),
    z.object({ t: z.literal("history"), ack: AckId, before: z.number().int().positive().optional(), limit: z.number().int().positive() }),
    z.object({ t: z.literal("edit"), ack: AckId, id: z.string(), message: z.string() }),
    z.object({ t: z.literal("delete"), ack: AckId, id: z.string() }),
    z.object({ t: z.literal("react"), ack: AckId, id: z.string(), emoji: z.string(), on: z.boolean() }),
  ]);
});
export type LinkCommand = z.infer<typeof LinkCommand>;

/** Who opens the link; the room binds it to the socket as its attachment. */
export const LinkIdentity = lazySchema(() =>
  z.object({
    /** The Engine.IO session id, for logs. */
    sid: z.string().min(1).max(64),
    /** The Socket.IO id: the member's identity in the room, kept across recovery. */
    socketId: z.string().min(1).max(64),
    username: z.string().min(1).max(64),
    /**
     * Present when the member comes back (recovery, a room restart, a polling upgrade):
     * the last seq the client has, or "" for "since it joined". The room replays what is
     * missing, or refuses `not_recoverable` when its log no longer reaches back.
     */
    resume: z.union([z.literal(""), z.string().regex(/^\d{1,15}$/)]).optional(),
    /** With `resume`: most bytes the replay may take (a recovery shares MAX_REPLAY_BYTES among its rooms). */
    budget: z.coerce.number().int().positive().optional(),
  }),
);
export type LinkIdentity = z.infer<typeof LinkIdentity>;

/** Close codes on the link. */
export const LinkClose = {
  /** The member left the room (leave-pr-room): nothing to recover. */
  leave: 1000,
  /** The member's client connection ended: the room keeps it recoverable for the window. */
  gone: 4000,
  /** Another connection resumed this member: the old link must not come back. */
  superseded: 4001,
} as const;

/** On every link's 101: the room's latest seq when it took the link (after the replay, the client is there). */
export const HEAD_HEADER = "X-Head";

/** The room's answer when it will not take a link (HTTP 403 with this JSON body). */
export const LinkRefusal = lazySchema(() =>
  z.object({
    code: z.union([ErrorCode, z.literal("not_recoverable")]),
    message: z.string(),
  }),
);
export type LinkRefusal = z.infer<typeof LinkRefusal>;

export function linkUrl(roomKey: string, who: LinkIdentity): string {
  const params = new URLSearchParams({ room: roomKey, sid: who.sid, socketId: who.socketId, username: who.username });
  if (who.resume !== undefined) params.set("resume", who.resume);
  if (who.budget !== undefined) params.set("budget", String(who.budget));
  return `https://pr-room/link?${params}`;
}

export function encodeCommand(command: LinkCommand): string {
  return JSON.stringify(command);
}

export function decodeCommand(text: string): LinkCommand | undefined {
  try {
    const parsed = LinkCommand.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
