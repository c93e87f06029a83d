/**
 * The link between a gateway session and a room: one WebSocket per (client, room).
 * Gateway → room: the small JSON commands below. Room → gateway: finished Engine.IO
 * frames, which the gateway forwards to its client as they are.
 * Leaving is closing the link.
 */
import { z } from "zod";
import { ErrorBody } from "../events.js";

/** The client's ack id, when it asked for one; the room answers it directly. */
const AckId = z.number().int().nonnegative().optional();

export const LinkCommand = z.discriminatedUnion("t", [
  /** Join (again): answers the ack with the member count. */
  z.object({ t: z.literal("join"), ack: AckId }),
  z.object({ t: z.literal("msg"), ack: AckId, message: z.string() }),
  z.object({ t: z.literal("typing"), ack: AckId }),
  z.object({ t: z.literal("stop-typing"), ack: AckId }),
]);
export type LinkCommand = z.infer<typeof LinkCommand>;

/** Who opens the link; the room binds it to the socket as its attachment. */
export const LinkIdentity = z.object({
  sid: z.string().min(1).max(64),
  username: z.string().min(1).max(64),
});
export type LinkIdentity = z.infer<typeof LinkIdentity>;

/** Close codes on the link. */
export const LinkClose = {
  /** The member left, or its client went away. */
  leave: 1000,
} as const;

/** The room's answer when it will not take a link (HTTP 403 with this JSON body). */
export const LinkRefusal = ErrorBody;

export function linkUrl(roomKey: string, who: LinkIdentity): string {
  const params = new URLSearchParams({ room: roomKey, sid: who.sid, username: who.username });
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
