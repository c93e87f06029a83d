/**
 * One connection's chat: the rules every room event passes, whichever side holds the
 * connection. Rooms are reached through `RoomAccess`: links to room objects from the
 * gateway, or the room itself for a direct connection.
 *
 * Events for a room about to be joined are held briefly: socket.io-client flushes
 * emits buffered while offline *before* it runs `connect` handlers, so the documented
 * client (join in `connect`, send any time) sends its first messages ahead of its join
 * after every (re)connect. Such events wait up to JOIN_GRACE_MS for that join; without
 * one they are refused (not_joined).
 */
import type { Config } from "./config.js";
import {
  ClientEvent,
  ClientEvents,
  publicPullRequestId,
  roomName,
  ServerEvent,
  type ClientEventName,
  type ErrorCode,
  type LeaveAck,
  type PrRoomError,
  type Refusal,
} from "./events.js";
import { log } from "../util/log.js";
import type { LinkCommand } from "./link.js";
import type { AckCallback, Socket } from "../session/socket.js";
import { allowsRoom, type Identity } from "./identity.js";
import { TokenBucket } from "./token-bucket.js";

/** A room this connection is in, as the connection sees it. */
export interface JoinedRoom {
  readonly username: string;
  /** Hands a command to the room; false when it cannot take one now. */
  send(command: LinkCommand): boolean;
  /** Leaves the room on purpose: not recoverable. */
  leave(): void;
  /** The client went away (its transport ended): the room keeps it recoverable for the window. */
  depart(): void;
}

/** How a connection reaches rooms. */
export interface RoomAccess {
  /** A refusal particular to this path (a direct connection's other rooms), before the shared ones. */
  refuseJoin?(key: string): [ErrorCode, string] | undefined;
  /** Joins `key` as `username`; `first` is the join command, carrying the client's ack. Undefined: refused and answered already. */
  join(key: string, username: string, first: LinkCommand): JoinedRoom | undefined;
}

/** Deadlines without timers where the host must not keep them (a room uses its alarm). */
export interface Scheduler {
  after(ms: number, run: () => void): () => void;
}

export const timerScheduler: Scheduler = {
  after(ms, run) {
    const timer = setTimeout(run, ms);
    return () => clearTimeout(timer);
  },
};

type ChatSocket = Socket<unknown>;

/** A validated inbound event. Every event names a room. */
interface RoomEvent {
  event: ClientEventName;
  key: string;
  data: {
    username?: string;
    message?: string;
    clientMessageId?: string;
    /** A message's id (edits, deletes, reactions). */
    id?: string;
    emoji?: string;
    on?: boolean;
    before?: number;
    limit?: number;
  };
  ack: AckCallback | undefined;
}

/** Held events per connection, over all rooms; past this they are refused at once. */
export const MAX_HELD_EVENTS = 64;

interface Held {
  events: RoomEvent[];
  cancel: () => void;
}

export class ChatSession {
  /** Joined rooms by canonical pull request id. */
  readonly rooms = new Map<string, JoinedRoom>();
  private readonly held = new Map<string, Held>();
  private heldCount = 0;
  /** Room events (joins, leaves, messages and changes to them, history pages) share one budget; typing has its own, dropped silently when spent. */
  private readonly actions: TokenBucket;
  private readonly typing: TokenBucket;
  private rateLoggedAt = 0;
  private cancelExpiry: (() => void) | undefined;

  constructor(
    private readonly config: Config,
    private readonly access: RoomAccess,
    private readonly scheduler: Scheduler,
    /** Set when AUTH_SECRET is: the token's username and pull requests. */
    readonly identity?: Identity,
  ) {
    const now = Date.now();
    this.actions = new TokenBucket(config.RATE_LIMIT_PER_SECOND, config.RATE_LIMIT_BURST, now);
    this.typing = new TokenBucket(config.RATE_LIMIT_PER_SECOND, config.RATE_LIMIT_BURST, now);
  }

  /** One event from the client: charged, validated, then routed. */
  event(socket: ChatSocket, name: string, args: unknown[], ack: AckCallback | undefined): void {
    if (!this.admit(socket, name, ack)) return;
    if (!Object.hasOwn(ClientEvents, name)) {
      return refuse(socket, ack, name, undefined, "unknown_event", `unknown event ${JSON.stringify(name.slice(0, 64))}`);
    }
    const event = name as ClientEventName;
    const parsed = ClientEvents[event].payload.safeParse(args[0]);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
      return refuse(socket, ack, event, undefined, "invalid_payload", `${field}${issue.message}`);
    }
    const { pullRequestId: key, ...data } = parsed.data;
    this.dispatch(socket, { event, key, data, ack });
  }

  /** Leaves every room: the client is gone, `recoverable` for the window or for good. */
  closeAll(socket: ChatSocket, recoverable: boolean): void {
    for (const [key, room] of this.rooms) {
      if (recoverable) room.depart();
      else room.leave();
      log("leave", { sid: socket.sid, socketId: socket.id, pr: key, user: room.username, why: "disconnect" });
    }
    this.rooms.clear();
    for (const held of this.held.values()) held.cancel();
    this.held.clear();
    this.heldCount = 0;
    this.cancelExpiry?.();
  }

  /**
   * The connection is moving to another host: events still waiting for a join are refused
   * now (no join can come before the move: the client is switching transports), and the
   * token's expiry is set again there. The rooms stay joined.
   */
  settle(socket: ChatSocket): void {
    for (const key of [...this.held.keys()]) this.release(socket, key);
    this.cancelExpiry?.();
  }

  /** A room dropped this connection for good (its access says why to the client). */
  dropRoom(key: string, room: JoinedRoom): void {
    if (this.rooms.get(key) === room) this.rooms.delete(key);
  }

  /** Rooms joined elsewhere and brought back (recovery, a room restart, a host waking up). */
  adopt(key: string, room: JoinedRoom): void {
    this.rooms.set(key, room);
  }

  /** With identity on, the connection ends when its token does: `exp` is not only checked at CONNECT. */
  endAtExpiry(socket: ChatSocket): void {
    if (!this.identity) return;
    // Timers hold at most 2^31-1 ms (~24 days); a longer token is re-checked then.
    const wait = Math.min(this.identity.expiresAt - Date.now(), 2 ** 31 - 1);
    this.cancelExpiry = this.scheduler.after(Math.max(0, wait), () => {
      if (Date.now() < this.identity!.expiresAt) return this.endAtExpiry(socket);
      log("disconnect", { sid: socket.sid, socketId: socket.id, reason: "token expired" });
      socket.disconnect();
    });
  }

  /**
   * Charges an event, valid or not, to this connection's budget before any other work,
   * so neither good nor bad events can flood. Excess typing is dropped silently.
   */
  private admit(socket: ChatSocket, name: string, ack: AckCallback | undefined): boolean {
    const isTyping = name === ClientEvent.typing || name === ClientEvent.stopTyping;
    if ((isTyping ? this.typing : this.actions).take(Date.now())) return true;
    if (isTyping && !ack) return false;
    const limit = `${this.config.RATE_LIMIT_PER_SECOND}/s, bursts of ${this.config.RATE_LIMIT_BURST}`;
    refuse(socket, ack, name, undefined, "rate_limited", `too many events; the limit is ${limit}`, this.shouldLogRateLimit());
    return false;
  }

  /** Routes one validated event; `mayHold` is false when a held event is replayed. */
  private dispatch(socket: ChatSocket, room: RoomEvent, mayHold = true): void {
    const { event, key, data, ack } = room;
    const { username } = data;
    const fail = (code: ErrorCode, message: string) => refuse(socket, ack, event, key, code, message);

    if (data.message !== undefined && data.message.length > this.config.MAX_MESSAGE_LENGTH) {
      return fail("message_too_long", `message is ${data.message.length} characters; the limit is ${this.config.MAX_MESSAGE_LENGTH}`);
    }
    if (this.identity && username !== undefined && username !== this.identity.username) {
      return fail("username_mismatch", `this connection's token is for ${JSON.stringify(this.identity.username)}`);
    }
    const joined = this.rooms.get(key);
    if (joined && username !== undefined && joined.username !== username) {
      return fail("username_mismatch", `joined ${roomName(key)} as ${JSON.stringify(joined.username)}, not ${JSON.stringify(username)}`);
    }
    switch (event) {
      case ClientEvent.join: {
        if (joined) return forward(joined, { t: "join", ack: ack?.id }, fail);
        const refusal = this.joinRefusal(key);
        if (refusal) fail(...refusal);
        else {
          const room = this.access.join(key, username!, { t: "join", ack: ack?.id });
          if (room) this.rooms.set(key, room);
        }
        // Events held for this room go through now, or are refused as not joined.
        return this.release(socket, key);
      }
      case ClientEvent.leave:
        if (joined) {
          joined.leave();
          this.rooms.delete(key);
          log("leave", { sid: socket.sid, socketId: socket.id, pr: key, user: username });
        }
        this.release(socket, key);
        return ack?.({ ok: true, pullRequestId: publicPullRequestId(key) } satisfies LeaveAck);
    }
    if (!joined) {
      if (mayHold && this.hold(socket, key, room)) return;
      return fail("not_joined", `join ${roomName(key)} with join-pr-room first`);
    }
    switch (event) {
      case ClientEvent.send:
        return forward(joined, { t: "msg", ack: ack?.id, message: data.message!, cmid: data.clientMessageId }, fail);
      case ClientEvent.typing:
        return forward(joined, { t: "typing", ack: ack?.id }, fail);
      case ClientEvent.stopTyping:
        return forward(joined, { t: "stop-typing", ack: ack?.id }, fail);
      case ClientEvent.users:
        return forward(joined, { t: "users", ack: ack?.id }, fail);
      case ClientEvent.history:
        return forward(joined, { t: "history", ack: ack?.id, before: data.before, limit: data.limit! }, fail);
      case ClientEvent.edit:
        return forward(joined, { t: "edit", ack: ack?.id, id: data.id!, message: data.message! }, fail);
      case ClientEvent.delete:
        return forward(joined, { t: "delete", ack: ack?.id, id: data.id! }, fail);
      case ClientEvent.react:
        return forward(joined, { t: "react", ack: ack?.id, id: data.id!, emoji: data.emoji!, on: data.on! }, fail);
    }
  }

  /** Why this connection may not join `key`, if it may not. */
  private joinRefusal(key: string): [ErrorCode, string] | undefined {
    const particular = this.access.refuseJoin?.(key);
    if (particular) return particular;
    if (!allowsRoom(this.identity, key)) {
      return ["forbidden", `this connection's token does not allow ${roomName(key)}`];
    }
    if (this.rooms.size >= this.config.MAX_ROOMS_PER_CONNECTION) {
      return ["too_many_rooms", `a connection may be in ${this.config.MAX_ROOMS_PER_CONNECTION} rooms at once; leave one first`];
    }
    return undefined;
  }

  /** Rate-limit refusals are logged at most once a second per connection. */
  private shouldLogRateLimit(): boolean {
    const now = Date.now();
    if (now - this.rateLoggedAt < 1000) return false;
    this.rateLoggedAt = now;
    return true;
  }

  private hold(socket: ChatSocket, key: string, room: RoomEvent): boolean {
    if (this.heldCount >= MAX_HELD_EVENTS || this.config.JOIN_GRACE_MS === 0) return false;
    let held = this.held.get(key);
    if (!held) {
      held = { events: [], cancel: this.scheduler.after(this.config.JOIN_GRACE_MS, () => this.release(socket, key)) };
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
    held.cancel();
    this.held.delete(key);
    this.heldCount -= held.events.length;
    for (const room of held.events) this.dispatch(socket, room, false);
  }
}

/** A connection opened for one pull request (`?pullRequestId=`) joins no other. */
export function roomMismatch(only: string, key: string): [ErrorCode, string] | undefined {
  if (key === only) return undefined;
  return [
    "room_mismatch",
    `this connection was opened for ${roomName(only)}; join ${roomName(key)} on a connection without pullRequestId, or one opened for it`,
  ];
}

function forward(room: JoinedRoom, command: LinkCommand, fail: (code: ErrorCode, message: string) => void): void {
  if (!room.send(command)) fail("room_unavailable", "the room is not reachable right now; try again");
}

/** A refused event: its ack gets the error, or, with no ack, the client gets `pr-room-error`. */
export function refuse(
  socket: ChatSocket,
  ack: AckCallback | undefined,
  name: string,
  key: string | undefined,
  code: ErrorCode,
  message: string,
  logIt = true,
): void {
  // The event name is the client's: echo at most a short prefix of it.
  const event = name.slice(0, 64);
  if (logIt) log("refused", { sid: socket.sid, socketId: socket.id, event, pr: key, code });
  if (ack) return ack({ ok: false, error: { code, message } } satisfies Refusal);
  const body: PrRoomError = { event, code, message };
  if (key !== undefined) body.pullRequestId = publicPullRequestId(key);
  socket.emit(ServerEvent.error, body);
}
