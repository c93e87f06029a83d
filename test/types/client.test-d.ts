/**
 * The typed client, checked by `tsc -p tsconfig.node.json` (part of `npm test`): every
 * event emits, acks and listens with the types inferred from src/chat/events.ts, and each
 * `@ts-expect-error` line must fail to compile, or tsc fails. Never run, only compiled.
 */
import { io, type Socket } from "socket.io-client";
import { expectTypeOf } from "vitest";
import { connectToPullRequest, type ChatSocket, type ClientAck, type ClientToServerEvents, type ServerToClientEvents } from "pr-rooms/client";

type ErrorCode = "invalid_payload" | "unknown_event" | "not_joined" | "username_mismatch" | "message_too_long"
  | "room_unavailable" | "room_full" | "too_many_rooms" | "too_many_connections" | "room_mismatch" | "rate_limited" | "forbidden"
  | "messages_lost" | "not_found" | "not_author" | "too_many_reactions" | "history_disabled";
type Refusal = { ok: false; error: { code: ErrorCode; message: string } };

// socket.io-client's io() takes no type arguments: the annotation types the socket.
const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io("http://127.0.0.1:8787", { transports: ["websocket"] });
const room = { pullRequestId: 123, username: "johndoe" };

export async function emits(): Promise<void> {
  // pullRequestId goes in as a number or a string (the schema's input) ...
  socket.emit("join-pr-room", { pullRequestId: "0123", username: "johndoe" }, (ack) => {
    expectTypeOf(ack).toEqualTypeOf<{ ok: true; pullRequestId: string | number; members: number; users: string[]; seq: number } | Refusal>();
    if (ack.ok) expectTypeOf(ack.users).toEqualTypeOf<string[]>();
    else expectTypeOf(ack.error.code).toEqualTypeOf<ErrorCode>();
  });
  // ... and every event's ack is the schema's output, or a refusal.
  expectTypeOf(await socket.emitWithAck("send-message-to-pr-room", { ...room, message: "LGTM", clientMessageId: "c1" })).toEqualTypeOf<
    { ok: true; id: string; seq: number } | Refusal
  >();
  expectTypeOf(await socket.emitWithAck("leave-pr-room", room)).toEqualTypeOf<{ ok: true; pullRequestId: string | number } | Refusal>();
  expectTypeOf(await socket.emitWithAck("typing", room)).toEqualTypeOf<{ ok: true } | Refusal>();
  expectTypeOf(await socket.emitWithAck("stop-typing", room)).toEqualTypeOf<{ ok: true } | Refusal>();
  expectTypeOf(await socket.emitWithAck("get-pr-room-users", { pullRequestId: 123 })).toEqualTypeOf<
    { ok: true; pullRequestId: string | number; users: string[] } | Refusal
  >();
  expectTypeOf(await socket.emitWithAck("join-pr-room", room)).toEqualTypeOf<ClientAck<"join-pr-room">>();
  // With a timeout the callback gets the error first, as socket.io-client decorates it.
  socket.timeout(5000).emit("send-message-to-pr-room", { ...room, message: "hi" }, (error, ack) => {
    expectTypeOf(error).toEqualTypeOf<Error>();
    expectTypeOf(ack).toEqualTypeOf<ClientAck<"send-message-to-pr-room">>();
  });
  socket.emit("typing", room, () => {});
  socket.emit("get-pr-room-history", { pullRequestId: 123, before: 40, limit: 20 }, (page) => {
    if (page.ok) expectTypeOf(page.hasMore).toEqualTypeOf<boolean>();
  });
  socket.emit("edit-pr-room-message", { pullRequestId: 123, id: "m1", message: "fixed" }, (ack) => ack.ok && expectTypeOf(ack.version).toEqualTypeOf<number>());
  socket.emit("delete-pr-room-message", { pullRequestId: 123, id: "m1" }, () => {});
  socket.emit("react-to-pr-room-message", { pullRequestId: 123, id: "m1", emoji: "👍", on: false }, () => {});
  // @ts-expect-error a reaction names its message
  socket.emit("react-to-pr-room-message", { pullRequestId: 123, emoji: "👍" }, () => {});

  // @ts-expect-error a payload without its username
  socket.emit("join-pr-room", { pullRequestId: 123 }, () => {});
  // @ts-expect-error a message must be a string
  await socket.emitWithAck("send-message-to-pr-room", { ...room, message: 42 });
  // @ts-expect-error pullRequestId is a number or a string, nothing else
  await socket.emitWithAck("typing", { pullRequestId: [123], username: "johndoe" });
  // @ts-expect-error an event the server does not know
  socket.emit("send-message", { ...room, message: "hi" }, () => {});
  // @ts-expect-error the join ack has no id
  socket.emit("join-pr-room", room, (ack) => ack.ok && ack.id);
}

export function listens(): void {
  socket.on("pr-room-message", (message, offset) => {
    expectTypeOf(message).toEqualTypeOf<{
      pullRequestId: string | number;
      username: string;
      message: string;
      id: string;
      seq: number;
      sentAt: number;
      mentions: string[];
      version?: number | undefined;
      editedAt?: number | undefined;
    }>();
    expectTypeOf(offset).toEqualTypeOf<string | undefined>();
  });
  socket.on("pr-room-message-edited", (edited, offset) => {
    expectTypeOf(edited.version).toEqualTypeOf<number>();
    expectTypeOf(edited.mentions).toEqualTypeOf<string[]>();
    expectTypeOf(offset).toEqualTypeOf<string | undefined>();
  });
  socket.on("pr-room-message-deleted", (deleted) => expectTypeOf(deleted).toEqualTypeOf<{ pullRequestId: string | number; id: string; seq: number }>());
  socket.on("pr-room-message-reactions", (changed) => expectTypeOf(changed.reactions).toEqualTypeOf<Record<string, string[]>>());
  socket.on("typing", (notice) => expectTypeOf(notice).toEqualTypeOf<{ pullRequestId: string | number; username: string }>());
  socket.on("stop-typing", (notice) => expectTypeOf(notice.username).toEqualTypeOf<string>());
  socket.on("pr-room-user-joined", (notice) => expectTypeOf(notice.username).toEqualTypeOf<string>());
  socket.on("pr-room-user-left", (notice) => expectTypeOf(notice.username).toEqualTypeOf<string>());
  socket.on("pr-room-error", (error) => {
    expectTypeOf(error.code).toEqualTypeOf<ErrorCode>();
    expectTypeOf(error.event).toEqualTypeOf<string>();
    expectTypeOf(error.pullRequestId).toEqualTypeOf<string | number | undefined>();
    expectTypeOf(error.lost).toEqualTypeOf<number | undefined>();
  });
  // socket.io's own events stay typed too.
  socket.on("connect_error", (error) => expectTypeOf(error.message).toEqualTypeOf<string>());

  // @ts-expect-error a listener expecting another shape
  socket.on("pr-room-message", (message: { text: string }) => message.text);
  // @ts-expect-error an event the server never sends
  socket.on("pr-room-history", () => {});
}

export function directPath(): void {
  // The direct path is offered typed too: the room in the URL, the same events.
  const direct = connectToPullRequest("http://127.0.0.1:8787", 123, { auth: { token: "t" } });
  expectTypeOf(direct).toEqualTypeOf<ChatSocket>();
  direct.emit("join-pr-room", room, () => {});
  // @ts-expect-error a pull request id is a number or a string of digits, not an object
  connectToPullRequest("http://127.0.0.1:8787", { id: 123 });
}
