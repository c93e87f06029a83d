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
import { log } from "../log.js";
import { linkUrl, LinkRefusal, type LinkCommand, type LinkIdentity } from "../room/link.js";
import type { Identity } from "./identity.js";
import { closeQuietly, RoomLink, type LinkOpener } from "./room-link.js";
import { TokenBucket } from "./token-bucket.js";

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
  /** Joins, leaves and messages share one budget; typing has its own, dropped silently when spent. */
  private readonly actions: TokenBucket;
  private readonly typing: TokenBucket;
  private rateLoggedAt = 0;
  private expiryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly rooms: DurableObjectNamespace,
    private readonly config: Config,
    /** Set when AUTH_SECRET is: the token's username and pull requests. */
    readonly identity?: Identity,
  ) {
    const now = Date.now();
    this.actions = new TokenBucket(config.RATE_LIMIT_PER_SECOND, config.RATE_LIMIT_BURST, now);
    this.typing = new TokenBucket(config.RATE_LIMIT_PER_SECOND, config.RATE_LIMIT_BURST, now);
  }

  /**
   * Charges an event, valid or not, to this connection's budget before any other work,
   * so neither good nor bad events can flood. Excess typing is dropped silently.
   */
  admit(socket: ChatSocket, name: string, ack: AckCallback | undefined): boolean {
    const isTyping = name === ClientEvent.typing || name === ClientEvent.stopTyping;
    if ((isTyping ? this.typing : this.actions).take(Date.now())) return true;
    if (isTyping && !ack) return false;
    const limit = `${this.config.RATE_LIMIT_PER_SECOND}/s, bursts of ${this.config.RATE_LIMIT_BURST}`;
    refuse(socket, ack, name, undefined, "rate_limited", `too many events; the limit is ${limit}`, this.shouldLogRateLimit());
    return false;
  }

  /** Routes one validated event; `mayHold` is false when a held event is replayed. */
  dispatch(socket: ChatSocket, room: RoomEvent, mayHold = true): void {
    const { event, data, ack } = room;
    const { pullRequestId: key, username } = data;
    const fail = (code: ErrorCode, message: string) => refuse(socket, ack, event, key, code, message);

    if (data.message !== undefined && data.message.length > this.config.MAX_MESSAGE_LENGTH) {
      return fail("message_too_long", `message is ${data.message.length} characters; the limit is ${this.config.MAX_MESSAGE_LENGTH}`);
    }
    if (this.identity && username !== this.identity.username) {
      return fail("username_mismatch", `this connection's token is for ${JSON.stringify(this.identity.username)}`);
    }
    const link = this.links.get(key);
    if (link && link.username !== username) {
      return fail("username_mismatch", `joined ${roomName(key)} as ${JSON.stringify(link.username)}, not ${JSON.stringify(username)}`);
    }
    switch (event) {
      case ClientEvent.join: {
        if (link) return forward(link, { t: "join", ack: ack?.id }, fail);
        const refusal = this.joinRefusal(key);
        if (refusal) fail(...refusal);
        else this.join(socket, key, username, ack);
        // Events held for this room go through now, or are refused as not joined.
        return this.release(socket, key);
      }
      case ClientEvent.leave:
        if (link) {
          link.close();
          this.links.delete(key);
          log("leave", { sid: socket.id, pr: key, user: username });
        }
        this.release(socket, key);
        return ack?.({ ok: true, pullRequestId: publicPullRequestId(key) } satisfies LeaveAck);
    }
    if (!link) {
      if (mayHold && this.hold(socket, key, room)) return;
      return fail("not_joined", `join ${roomName(key)} with join-pr-room first`);
    }
    if (event === ClientEvent.send && data.message !== undefined) {
      return forward(link, { t: "msg", ack: ack?.id, message: data.message }, fail);
    }
    return forward(link, { t: event === ClientEvent.typing ? "typing" : "stop-typing", ack: ack?.id }, fail);
  }

  /** Leaves every room: the client is gone. */
  closeAll(socket: ChatSocket): void {
    for (const [key, link] of this.links) {
      link.close();
      log("leave", { sid: socket.id, pr: key, user: link.username, why: "disconnect" });
    }
    this.links.clear();
    for (const held of this.held.values()) clearTimeout(held.timer);
    this.held.clear();
    this.heldCount = 0;
    clearTimeout(this.expiryTimer);
  }

  /** With identity on, the connection ends when its token does: `exp` is not only checked at CONNECT. */
  endAtExpiry(socket: ChatSocket): void {
    if (!this.identity) return;
    // setTimeout holds at most 2^31-1 ms (~24 days); a longer token is re-checked then.
    const wait = Math.min(this.identity.expiresAt - Date.now(), 2 ** 31 - 1);
    this.expiryTimer = setTimeout(() => {
      if (Date.now() < this.identity!.expiresAt) return this.endAtExpiry(socket);
      log("disconnect", { sid: socket.id, reason: "token expired" });
      socket.disconnect();
    }, Math.max(0, wait));
  }

  /** Why this connection may not join `key`, if it may not. */
  private joinRefusal(key: string): [ErrorCode, string] | undefined {
    if (this.identity?.pullRequests && !this.identity.pullRequests.has(key)) {
      return ["forbidden", `this connection's token does not allow ${roomName(key)}`];
    }
    if (this.links.size >= this.config.MAX_ROOMS_PER_CONNECTION) {
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

  private join(socket: ChatSocket, key: string, username: string, ack: AckCallback | undefined): void {
    const who: LinkIdentity = { sid: socket.id, username };
    const link = new RoomLink(username, linkOpener(this.rooms, key, who), {
      frame: (frame) => socket.sendFrame(frame),
      unanswered: (ids, error) => {
        for (const id of ids) socket.ack(id, { ok: false, error } satisfies Refusal);
      },
      lost: (error, everOpened) => {
        if (this.links.get(key) !== link) return;
        this.links.delete(key);
        log(everOpened ? "room_link_lost" : "refused", { sid: socket.id, event: ClientEvent.join, pr: key, code: error.code });
        // A refused join with an ack was answered through it; anything else is news to the client.
        if (!everOpened && ack) return;
        socket.emit(ServerEvent.error, {
          event: ClientEvent.join,
          pullRequestId: publicPullRequestId(key),
          ...error,
        } satisfies PrRoomError);
      },
    });
    this.links.set(key, link);
    log("join", { sid: socket.id, pr: key, user: username });
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

/** How long one attempt to reach a room may take before it counts as failed. */
export const LINK_OPEN_TIMEOUT_MS = 5_000;

/** Opens a link to `pr:<key>`; the room's 403 is a final refusal, anything else is retried. */
function linkOpener(rooms: DurableObjectNamespace, key: string, who: LinkIdentity): LinkOpener {
  return async () => {
    const stub = rooms.getByName(roomName(key));
    const pending = stub.fetch(linkUrl(key, who), { headers: { Upgrade: "websocket" } });
    let timer: ReturnType<typeof setTimeout> | null = null;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), LINK_OPEN_TIMEOUT_MS)));
    const response = await Promise.race([pending, timedOut]).finally(() => clearTimeout(timer));
    if (response === "timeout") {
      // If the room answers after all, close what it accepted so it keeps no ghost member.
      pending.then((late) => late.webSocket && closeQuietly(late.webSocket, true), () => undefined);
      throw new Error(`room did not answer within ${LINK_OPEN_TIMEOUT_MS} ms`);
    }
    if (response.status === 101 && response.webSocket) return response.webSocket;
    const body = await response.text();
    if (response.status === 403) {
      const refusal = LinkRefusal.safeParse(safeJson(body));
      if (refusal.success) return { refused: refusal.data };
    }
    throw new Error(`room did not take the link: ${response.status} ${body.slice(0, 200)}`);
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
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
  if (logIt) log("refused", { sid: socket.id, event, pr: key, code });
  if (ack) return ack({ ok: false, error: { code, message } } satisfies Refusal);
  const body: PrRoomError = { event, code, message };
  if (key !== undefined) body.pullRequestId = publicPullRequestId(key);
  socket.emit(ServerEvent.error, body);
}
