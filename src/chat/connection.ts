/**
 * One client connection's chat state: a link per joined room, and the events
 * briefly held for a room the client is about to join.
 *
 * Why hold: socket.io-client flushes emits buffered while offline *before* it runs
 * `connect` handlers, so the documented client (join in `connect`, send any time)
 * sends its first messages ahead of its join after every (re)connect. Such events
 * wait up to JOIN_GRACE_MS for that join; without one they are refused (not_joined).
 */
import type { Config } from "../config.js";
import {
  ClientEvent,
  publicPullRequestId,
  roomName,
  ServerEvent,
  type ClientEventName,
  type ErrorCode,
  type LeaveAck,
  type MessageIn,
  type PrRoomError,
  type Refusal,
  type RoomRef,
} from "../events.js";
import type { AckCallback, Socket } from "../gateway/socket.js";
import { linkUrl, type LinkCommand, type LinkIdentity } from "../room/link.js";
import { RoomLink } from "./room-link.js";

/** A validated inbound event. Every event names a room; only a send carries a message. */
export interface RoomEvent {
  event: ClientEventName;
  data: RoomRef & Partial<MessageIn>;
  ack: AckCallback | undefined;
}

type ChatSocket = Socket<ChatConnection>;

/** Held events per connection, over all rooms; past this they are refused at once. */
export const MAX_HELD_EVENTS = 64;

interface Held {
  events: RoomEvent[];
  timer: ReturnType<typeof setTimeout>;
}

export class ChatConnection {
  /** Joined rooms by canonical pull request id. */
  readonly links = new Map<string, RoomLink>();
  private readonly held = new Map<string, Held>();
  private heldCount = 0;

  constructor(
    private readonly rooms: DurableObjectNamespace,
    private readonly config: Config,
  ) {}

  dispatch(socket: ChatSocket, room: RoomEvent, mayHold = true): void {
    const { event, data, ack } = room;
    const { pullRequestId: key, username } = data;
    const link = this.links.get(key);
    const fail = (code: ErrorCode, message: string) => refuse(socket, ack, event, key, code, message);

    if (link && link.username !== username) {
      return fail("username_mismatch", `joined ${roomName(key)} as ${JSON.stringify(link.username)}, not ${JSON.stringify(username)}`);
    }
    switch (event) {
      case ClientEvent.join:
        if (link) return forward(link, { t: "join", ack: ack?.id }, fail);
        this.join(socket, key, username, ack);
        return this.release(socket, key);
      case ClientEvent.leave:
        if (link) {
          link.close();
          this.links.delete(key);
        }
        this.release(socket, key);
        return ack?.({ ok: true, pullRequestId: publicPullRequestId(key) } satisfies LeaveAck);
    }
    if (!link) {
      if (mayHold && this.hold(socket, key, room)) return;
      return fail("not_joined", `join ${roomName(key)} with join-pr-room first`);
    }
    if (event === ClientEvent.send && data.message !== undefined) {
      const { message } = data;
      if (message.length > this.config.MAX_MESSAGE_LENGTH) {
        return fail("message_too_long", `message is ${message.length} characters; the limit is ${this.config.MAX_MESSAGE_LENGTH}`);
      }
      return forward(link, { t: "msg", ack: ack?.id, message }, fail);
    }
    return forward(link, { t: event === ClientEvent.typing ? "typing" : "stop-typing", ack: ack?.id }, fail);
  }

  /** Leaves every room: the client is gone. */
  closeAll(): void {
    for (const link of this.links.values()) link.close();
    this.links.clear();
    for (const held of this.held.values()) clearTimeout(held.timer);
    this.held.clear();
    this.heldCount = 0;
  }

  private join(socket: ChatSocket, key: string, username: string, ack: AckCallback | undefined): void {
    const who: LinkIdentity = { sid: socket.id, username };
    const link = new RoomLink(username, () => openLink(this.rooms, key, who), {
      frame: (frame) => socket.sendFrame(frame),
      unanswered: (ids) => {
        for (const id of ids) {
          socket.ack(id, {
            ok: false,
            error: { code: "room_unavailable", message: "the room restarted before confirming; it may not have been delivered" },
          } satisfies Refusal);
        }
      },
      lost: () => {
        if (this.links.get(key) !== link) return;
        this.links.delete(key);
        socket.emit(ServerEvent.error, {
          event: ClientEvent.join,
          pullRequestId: publicPullRequestId(key),
          code: "room_unavailable",
          message: `${roomName(key)} is unavailable; join it again`,
        } satisfies PrRoomError);
      },
    });
    this.links.set(key, link);
    link.send({ t: "join", ack: ack?.id });
    void link.open();
  }

  private hold(socket: ChatSocket, key: string, room: RoomEvent): boolean {
    if (this.heldCount >= MAX_HELD_EVENTS || this.config.JOIN_GRACE_MS === 0) return false;
    let held = this.held.get(key);
    if (!held) {
      const timer = setTimeout(() => this.release(socket, key), this.config.JOIN_GRACE_MS);
      held = { events: [], timer };
      this.held.set(key, held);
    }
    held.events.push(room);
    this.heldCount++;
    return true;
  }

  /** Runs the events held for `key` now, in order: after a join they go through, else they are refused. */
  private release(socket: ChatSocket, key: string): void {
    const held = this.held.get(key);
    if (!held) return;
    clearTimeout(held.timer);
    this.held.delete(key);
    this.heldCount -= held.events.length;
    for (const room of held.events) this.dispatch(socket, room, false);
  }
}

function forward(link: RoomLink, command: LinkCommand, fail: (code: ErrorCode, message: string) => void): void {
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
export function refuse(
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
