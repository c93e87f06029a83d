/**
 * Types for socket.io-client, inferred from the chat's schemas (src/chat/events.ts), so a
 * client cannot drift from the server:
 *
 *   import { io, type Socket } from "socket.io-client";
 *   import type { ClientToServerEvents, ServerToClientEvents } from "pr-rooms/client";
 *   const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(url, { transports: ["websocket"] });
 *
 * Types, plus `connectToPullRequest` for the direct path. Every import of the server's code
 * here is `import type`, so nothing of zod reaches a bundle.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import type { z } from "zod";
import type { ClientEventName, ClientEvents, Refusal, ServerEventName, ServerEvents } from "./chat/events.js";

/** What a client sends with `event`: the schema's input (`pullRequestId` may be a number or a string). */
export type ClientPayload<E extends ClientEventName> = z.input<(typeof ClientEvents)[E]["payload"]>;

/** What `event`'s ack callback receives: the success answer, or a refusal. */
export type ClientAck<E extends ClientEventName> = z.output<(typeof ClientEvents)[E]["ack"]> | Refusal;

/** What a listener of a server `event` receives. */
export type ServerPayload<E extends ServerEventName> = z.output<(typeof ServerEvents)[E]>;

/**
 * Client → server. The server takes every event with or without an ack, but the ack is
 * required here, as socket.io's TypeScript guide writes it: socket.io-client derives
 * `emitWithAck` and `timeout().emit` from the last parameter, and an optional one turns
 * both untyped. Fire-and-forget: `socket.emit("typing", ref, () => {})`.
 */
export type ClientToServerEvents = {
  [E in ClientEventName]: (payload: ClientPayload<E>, ack: (answer: ClientAck<E>) => void) => void;
};

/** Room events: each carries the room's offset as a second argument with connection state recovery on. */
type RoomEventName = "pr-room-message" | "pr-room-message-edited" | "pr-room-message-deleted" | "pr-room-message-reactions";

/** Server → client. */
export type ServerToClientEvents = {
  [E in ServerEventName]: E extends RoomEventName ? (payload: ServerPayload<E>, offset?: string) => void : (payload: ServerPayload<E>) => void;
};

/** A socket.io-client socket typed with the chat's events. */
export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/**
 * Connects on the direct path: the URL names the pull request, so its room's object holds
 * the socket (one room per connection; joining another is refused `room_mismatch`). The
 * documented `io(url, { transports: ["websocket"] })` (the gateway path) works as well.
 */
export function connectToPullRequest(
  url: string,
  pullRequestId: number | string,
  options: Partial<ManagerOptions & SocketOptions> = {},
): ChatSocket {
  const query = { ...(options.query as Record<string, string> | undefined), pullRequestId: String(pullRequestId) };
  return io(url, { transports: ["websocket"], ...options, query });
}
