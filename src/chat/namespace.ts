/**
 * The chat application on the "/" namespace: validates each documented event,
 * keeps this connection's links (one per joined room) and routes events to them.
 * Rooms answer acks and broadcast by themselves; this module never touches their frames.
 */
import type { Config } from "../config.js";
import {
  ClientEvent,
  InboundSchemas,
  publicPullRequestId,
  roomName,
  ServerEvent,
  type ClientEventName,
  type ErrorCode,
  type LeaveAck,
  type MessageIn,
  type RoomRef,
  type PrRoomError,
  type Refusal,
} from "../events.js";
import type { AckCallback, Socket } from "../gateway/socket.js";
import type { NamespaceHandler } from "../gateway/types.js";
import { linkUrl, type LinkIdentity } from "../room/link.js";
import { RoomLink } from "./room-link.js";

export interface ChatConnection {
  /** Joined rooms by canonical pull request id. */
  links: Map<string, RoomLink>;
}

type ChatSocket = Socket<ChatConnection>;

export function chatNamespace(rooms: DurableObjectNamespace, config: Config): NamespaceHandler<ChatConnection> {
  return {
    connect: () => ({ ok: true, data: { links: new Map() } }),

    event(socket, name, args, ack) {
      if (!Object.hasOwn(InboundSchemas, name)) {
        return refuse(socket, ack, name, undefined, "unknown_event", `unknown event ${JSON.stringify(name)}`);
      }
      const event = name as ClientEventName;
      const parsed = InboundSchemas[event].safeParse(args[0]);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const field = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
        return refuse(socket, ack, event, undefined, "invalid_payload", `${field}${issue.message}`);
      }
      // Every event names a room; only send-message-to-pr-room carries a message.
      const data: RoomRef & Partial<MessageIn> = parsed.data;
      const { pullRequestId: key, username } = data;
      const link = socket.data.links.get(key);
      const fail = (code: ErrorCode, message: string) => refuse(socket, ack, event, key, code, message);

      if (link && link.username !== username) {
        return fail("username_mismatch", `joined ${roomName(key)} as ${JSON.stringify(link.username)}, not ${JSON.stringify(username)}`);
      }
      switch (event) {
        case ClientEvent.join:
          if (link) return forward(link, { t: "join", ack: ack?.id }, fail);
          return join(socket, rooms, key, username, ack);
        case ClientEvent.leave:
          if (link) {
            link.close();
            socket.data.links.delete(key);
          }
          return ack?.({ ok: true, pullRequestId: publicPullRequestId(key) } satisfies LeaveAck);
      }
      if (!link) return fail("not_joined", `join ${roomName(key)} with join-pr-room first`);
      if (event === ClientEvent.send && data.message !== undefined) {
        const { message } = data;
        if (message.length > config.MAX_MESSAGE_LENGTH) {
          return fail("message_too_long", `message is ${message.length} characters; the limit is ${config.MAX_MESSAGE_LENGTH}`);
        }
        return forward(link, { t: "msg", ack: ack?.id, message }, fail);
      }
      return forward(link, { t: event as "typing" | "stop-typing", ack: ack?.id }, fail);
    },

    disconnect(socket) {
      for (const link of socket.data.links.values()) link.close();
      socket.data.links.clear();
    },
  };
}

function join(socket: ChatSocket, rooms: DurableObjectNamespace, key: string, username: string, ack?: AckCallback): void {
  const who: LinkIdentity = { sid: socket.id, username };
  const refuseAck = (id: number, message: string) =>
    socket.ack(id, { ok: false, error: { code: "room_unavailable", message } } satisfies Refusal);
  const link = new RoomLink(username, () => openLink(rooms, key, who), {
    frame: (frame) => socket.sendFrame(frame),
    unanswered: (ids) => ids.forEach((id) => refuseAck(id, "the room restarted before confirming; it may not have been delivered")),
    lost: () => {
      if (socket.data.links.get(key) !== link) return;
      socket.data.links.delete(key);
      socket.emit(ServerEvent.error, {
        event: ClientEvent.join,
        pullRequestId: publicPullRequestId(key),
        code: "room_unavailable",
        message: `${roomName(key)} is unavailable; join it again`,
      } satisfies PrRoomError);
    },
  });
  socket.data.links.set(key, link);
  link.send({ t: "join", ack: ack?.id });
  void link.open();
}

function forward(
  link: RoomLink,
  command: Parameters<RoomLink["send"]>[0],
  fail: (code: ErrorCode, message: string) => void,
): void {
  if (!link.send(command)) fail("room_unavailable", "the room is not reachable right now; try again");
}

async function openLink(rooms: DurableObjectNamespace, key: string, who: LinkIdentity): Promise<WebSocket> {
  const stub = rooms.getByName(roomName(key));
  const response = await stub.fetch(linkUrl(key, who), { headers: { Upgrade: "websocket" } });
  if (response.status !== 101 || !response.webSocket) {
    throw new Error(`room refused the link: ${response.status} ${await response.text()}`);
  }
  return response.webSocket;
}

/** A refused event: its ack gets the error, or, with no ack, the client gets `pr-room-error`. */
function refuse(
  socket: ChatSocket,
  ack: AckCallback | undefined,
  event: string,
  key: string | undefined,
  code: ErrorCode,
  message: string,
): void {
  if (ack) return ack({ ok: false, error: { code, message } } satisfies Refusal);
  const body: PrRoomError = { event, code, message };
  if (key !== undefined) body.pullRequestId = publicPullRequestId(key);
  socket.emit(ServerEvent.error, body);
}
