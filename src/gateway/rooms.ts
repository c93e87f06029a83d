/**
 * How a gateway connection reaches its rooms: one RoomLink per joined room. It forwards
 * the rooms' frames to the client, keeps the connection's offset (its position in each
 * room) for recovery, and keeps the connection's recovery record up to date on join and
 * leave. Before the client has its CONNECT answer (a recovery in progress), frames wait.
 */
import type { Config } from "../chat/config.js";
import { ClientEvent, publicPullRequestId, roomName, ServerEvent, type ErrorBody, type ErrorCode, type PrRoomError, type Refusal } from "../chat/events.js";
import { log } from "../util/log.js";
import { formatOffset, replaceOffset } from "../chat/offset.js";
import type { RecordedRoom } from "./record.js";
import { ackFrame, eventFrame } from "../chat/frames.js";
import { HEAD_HEADER, linkUrl, LinkClose, LinkRefusal, type LinkCommand } from "../chat/link.js";
import { settleBy } from "../util/deadline.js";
import type { Socket } from "../session/socket.js";
import { closeQuietly, FinalLinkError, type LinkOpener } from "./link-socket.js";
import { RoomLink } from "./room-link.js";
import { refuse, roomMismatch, type ChatSession, type JoinedRoom, type RoomAccess } from "../chat/chat.js";

/** What the connection's record DO offers (a typed stub). */
export interface RecordStub {
  save(holder: string, socketId: string, subject: string | null, rooms: RecordedRoom[]): Promise<void>;
  detach(holder: string, at: number): Promise<void>;
  forget(holder?: string): Promise<void>;
}

export interface GatewayIdentity {
  /** The Engine.IO session id: logs, and the record's holder. */
  sid: string;
  /** The Socket.IO id: the member's identity in every room. */
  socketId: string;
  /** The token subject, with identity on. */
  subject: string | null;
}

/** How long one attempt to reach a room may take before it counts as failed. */
export const LINK_OPEN_TIMEOUT_MS = 5_000;

/**
 * Links a connection may hold beyond MAX_ROOMS_PER_CONNECTION: rooms it left whose close the
 * room has not completed yet (at most LINK_TIMING.commandTimeoutMs each). A join past this is
 * refused `too_many_rooms`, so a join/leave loop cannot pile up links in the isolate.
 */
export const MAX_CLOSING_LINKS = 32;

/** How long frames wait for a join's record save before they go anyway (the record is then stale). */
export const RECORD_SAVE_TIMEOUT_MS = 5_000;

/** Where a connection is in one room: what a hand-over carries to resume it elsewhere. */
export interface RoomPosition {
  key: string;
  username: string;
  /** The seq of the last message forwarded to the client; absent when none since the join. */
  position?: number;
}

/** The answer to a command the room had not answered when the connection moved (past the hand-over's wait). */
export const MOVED: ErrorBody = {
  code: "room_unavailable",
  message: "the connection moved to WebSocket before the room answered; it may or may not have been delivered",
};

export class GatewayRooms implements RoomAccess {
  private socket: Socket<unknown> | undefined;
  /**
   * Frames that wait, in order: for the client's CONNECT answer (a recovery in progress), and
   * for a join's record save, so the client hears of its join (the room's ack, the first
   * messages) only once a server restart cannot make the server forget it. Bounded in time
   * (RECORD_SAVE_TIMEOUT_MS), so by the rooms' rate limits.
   */
  private readonly waiting: Array<{ frame: string; bytes: number | undefined }> = [];
  /** Record saves for a join still on their way. */
  private saving = 0;
  private readonly links = new Map<string, RoomLink>();
  private chat: ChatSession | undefined;
  /** Every link not finished yet, left ones included (their answers may still be due). */
  private readonly tracked = new Set<RoomLink>();
  /** Set once another connection recovered this one: it ends, leaving the rooms to its successor. */
  superseded = false;
  /** Set once the connection moved to another host: nothing more goes to the client from here. */
  private moved = false;
  /** A hand-over waiting for every link to settle. */
  private settling: (() => void) | undefined;
  /** The record was forgotten: the connection is ending for good. */
  private forgotten = false;
  /** Durable Object requests this connection caused: links opened, commands down them, record calls. */
  readonly usage = { roomFetches: 0, roomMessages: 0, recordCalls: 0 };

  constructor(
    private readonly rooms: DurableObjectNamespace,
    private readonly config: Config,
    readonly who: GatewayIdentity,
    readonly record: RecordStub | undefined,
    /** The one room this connection may join, when it was opened for one (`?pullRequestId=`). */
    readonly only?: string,
  ) {}

  /** A connection opened for one pull request joins no other (as on the direct path); nor one still closing many links. */
  refuseJoin(key: string): [ErrorCode, string] | undefined {
    const mismatch = this.only === undefined ? undefined : roomMismatch(this.only, key);
    if (mismatch) return mismatch;
    if (this.tracked.size - this.links.size >= MAX_CLOSING_LINKS) {
      return ["too_many_rooms", `${MAX_CLOSING_LINKS} rooms this connection left are still closing; try again in a few seconds`];
    }
    return undefined;
  }

  /**
   * Fault injection: every open link is replaced as its watchdog would replace it. Links are
   * I/O of the connection's own request, so this must run there (see `faultPending`).
   */
  replaceLinks(): number {
    let replaced = 0;
    for (const link of this.links.values()) if (link.replace()) replaced++;
    return replaced;
  }

  /** Fault injection asked for replaceLinks: done at the connection's next event, in its own context. */
  faultPending = false;

  /**
   * The connection moves to another host (a polling session upgrading): waits until every
   * link has its answers (no later than `deadline`), so they reach the client from here,
   * then says where it is in each room and lets go of the links (closed as `gone`: the rooms
   * keep the member recoverable, and the new host resumes it from these positions). Answers
   * still due at the deadline are answered MOVED; a join still on its way is given up.
   */
  async handOver(deadline: number): Promise<RoomPosition[]> {
    if (!this.allSettled()) {
      await settleBy(new Promise<void>((resolve) => (this.settling = resolve)), deadline);
      this.settling = undefined;
    }
    // The positions below count what waited as delivered: it goes out with the rest.
    this.saving = 0;
    this.release();
    const positions: RoomPosition[] = [];
    for (const link of this.tracked) link.giveUpAnswers(MOVED);
    for (const [key, link] of this.links) {
      if (!link.inRoom) continue;
      positions.push(link.position === undefined ? { key, username: link.username } : { key, username: link.username, position: link.position });
    }
    this.moved = true;
    for (const link of this.tracked) link.depart();
    this.tracked.clear();
    this.links.clear();
    return positions;
  }

  private allSettled(): boolean {
    if (this.saving > 0) return false;
    for (const link of this.tracked) {
      if (link.finished) this.tracked.delete(link);
      else if (!link.settled) return false;
    }
    return true;
  }

  /** Something changed on a link: a waiting hand-over looks again. */
  private changed(): void {
    if (this.settling && this.allSettled()) this.settling();
  }

  /** The chat these rooms serve: told when a room drops the connection. */
  bind(chat: ChatSession): void {
    this.chat = chat;
  }

  /** The client has its CONNECT answer: what waited goes out, in order, and the rest goes straight. */
  attach(socket: Socket<unknown>): void {
    this.socket = socket;
    this.release();
  }

  join(key: string, username: string, first: LinkCommand): JoinedRoom {
    const link = this.link(key, username, first.ack);
    link.send(first);
    void link.open();
    return link;
  }

  /**
   * Takes the connection back into a room it was in (recovery, a hand-over): the link once the
   * room replayed and took it. `share` of MAX_REPLAY_BYTES is what this room's replay may take.
   */
  async resume(key: string, username: string, from: number | undefined, share = 1): Promise<RoomLink | undefined> {
    const budget = { bytes: Math.floor(this.config.MAX_REPLAY_BYTES * share) };
    const link = this.link(key, username, undefined, budget);
    link.position = from;
    const opened = await link.open(from === undefined ? "" : String(from));
    // Later re-opens (a room restart) replay one room only: the whole budget.
    budget.bytes = this.config.MAX_REPLAY_BYTES;
    return opened ? link : undefined;
  }

  /** The client is gone: the record says until when it may come back. */
  detach(): void {
    this.write((record) => record.detach(this.who.sid, Date.now()));
  }

  /** A recovery that cannot be completed: out of every room it got back into, and no record. */
  abandon(): void {
    for (const link of this.links.values()) link.depart();
    this.links.clear();
    this.forget();
  }

  /**
   * The connection ended for good (a namespace disconnect): its record goes, if it still holds
   * it, and nothing is written to it after (the leaves that follow must not bring it back).
   */
  forget(): void {
    this.write((record) => record.forget(this.who.sid));
    this.forgotten = true;
  }

  private link(key: string, username: string, joinAck: number | undefined, budget = { bytes: this.config.MAX_REPLAY_BYTES }): RoomLink {
    let saved = false;
    const link = new RoomLink(username, this.opener(key, username, budget), {
      frame: (frame, seq) => {
        this.forward(frame, seq);
        this.changed();
      },
      unanswered: (ids, error) => {
        if (!this.moved) for (const id of ids) this.ack(id, { ok: false, error } satisfies Refusal);
        this.changed();
      },
      opened: () => {
        if (!saved && !this.moved) {
          saved = true;
          this.saveRecord(true);
        }
        this.changed();
      },
      gap: (lost) => this.gap(key, lost),
      transmitted: () => this.usage.roomMessages++,
      finished: () => {
        this.tracked.delete(link);
        this.changed();
      },
      failed: (error, everOpened) => {
        this.failed(key, link, error, everOpened, joinAck !== undefined);
        this.changed();
      },
      left: () => this.left(key, link),
    }, this.config.RECOVERY_WINDOW_MS > 0);
    this.links.set(key, link);
    this.tracked.add(link);
    return link;
  }

  /** Answers a client's ack id; before the client has its CONNECT answer, in turn with the frames waiting. */
  private ack(id: number, payload: Refusal): void {
    this.deliver(ackFrame(id, payload), undefined);
  }

  private forward(frame: string, seq: number | undefined): void {
    if (this.moved) return;
    // With one room the frame already says where the connection is; with more, the offset names
    // them all: each link's position (its last message forwarded, or the room's head at its join).
    if (seq !== undefined && this.links.size > 1) frame = replaceOffset(frame, formatOffset(this.positions()));
    this.deliver(frame, undefined);
  }

  /** The connection's position in each room it is in, as its offset names them. */
  private positions(): Map<string, number> {
    const positions = new Map<string, number>();
    for (const [key, link] of this.links) if (link.position !== undefined) positions.set(key, link.position);
    return positions;
  }

  /** To the client, in turn with what waits (see `waiting`). */
  private deliver(frame: string, bytes: number | undefined): void {
    if (!this.socket || this.saving > 0) this.waiting.push({ frame, bytes });
    else this.socket.sendFrame(frame, bytes);
  }

  /** The room took the connection back fresh: the client hears how many messages it will never get. */
  private gap(key: string, lost: number | undefined): void {
    if (this.moved) return;
    log("messages_lost", { sid: this.who.sid, socketId: this.who.socketId, pr: key, lost });
    const counted = lost === undefined ? "some messages or changes" : `${lost} message${lost === 1 ? "" : "s"} or change${lost === 1 ? "" : "s"}`;
    const error: PrRoomError = {
      event: ClientEvent.join,
      pullRequestId: publicPullRequestId(key),
      code: "messages_lost",
      message: `${roomName(key)} could not replay what this connection missed: ${counted} will not arrive; newer ones do`,
    };
    if (lost !== undefined) error.lost = lost;
    this.deliver(eventFrame(ServerEvent.error, error), undefined);
  }

  private left(key: string, link: RoomLink): void {
    if (this.moved || this.links.get(key) !== link) return;
    this.links.delete(key);
    this.saveRecord();
  }

  private failed(key: string, link: RoomLink, error: ErrorBody, everOpened: boolean, joinHadAck: boolean): void {
    if (this.moved || this.links.get(key) !== link) return;
    this.links.delete(key);
    this.chat?.dropRoom(key, link);
    const socket = this.socket;
    if (!socket) return;
    log(everOpened ? "room_link_lost" : "refused", { sid: this.who.sid, socketId: this.who.socketId, event: ClientEvent.join, pr: key, code: error.code });
    if (link.superseded) {
      // This connection was recovered by another one: it must not go on as well, nor take
      // the rooms from its successor (its other links close as gone, not as leave).
      this.superseded = true;
      socket.disconnect();
      return;
    }
    this.saveRecord();
    // A refused join with an ack was answered through it; anything else is news to the client.
    if (!everOpened && joinHadAck) return;
    refuse(socket, undefined, ClientEvent.join, key, error.code, error.message, false);
  }

  /** Writes the rooms to the record; for a join, what comes after waits for it (`waiting`). */
  private saveRecord(join = false): void {
    const rooms = Array.from(this.links, ([key, link]) => ({ key, username: link.username }));
    const saved = this.write((record) => record.save(this.who.sid, this.who.socketId, this.who.subject, rooms));
    if (!join || !saved) return;
    this.saving++;
    void settleBy(saved, Date.now() + RECORD_SAVE_TIMEOUT_MS).then(() => {
      if (this.saving === 0 || --this.saving > 0) return;
      this.release();
      this.changed();
    });
  }

  /** What waited goes out, once nothing holds it any more. */
  private release(): void {
    if (!this.socket || this.saving > 0) return;
    for (const { frame, bytes } of this.waiting.splice(0)) this.socket.sendFrame(frame, bytes);
  }

  /**
   * Sends a change to the record at once: calls on one stub arrive in the order they were made
   * (E-order), and a change sent now still goes out when the client's socket closes right after
   * (a change chained behind another one's answer would die with the socket's request).
   */
  private write(change: (record: RecordStub) => Promise<void>): Promise<void> | undefined {
    const record = this.record;
    if (!record || this.moved || this.forgotten) return undefined;
    this.usage.recordCalls++;
    return change(record).catch((error) => log("handler_error", { sid: this.who.sid, socketId: this.who.socketId, where: "recovery record", error: String(error) }));
  }

  /** Opens a link to `pr:<key>`; the room's 403 is a final refusal, a 400 a bug (final), anything else is retried. */
  private opener(key: string, username: string, budget: { bytes: number }): LinkOpener {
    const { sid, socketId } = this.who;
    return async (resume) => {
      const stub = this.rooms.getByName(roomName(key));
      this.usage.roomFetches++;
      const who = resume === undefined ? { sid, socketId, username } : { sid, socketId, username, resume, budget: budget.bytes };
      const pending = stub.fetch(linkUrl(key, who), { headers: { Upgrade: "websocket" } });
      const response = await settleBy(pending, Date.now() + LINK_OPEN_TIMEOUT_MS);
      if (response === undefined) {
        // If the room answers after all, close what it accepted so it keeps no ghost member.
        pending.then((late) => late.webSocket && closeQuietly(late.webSocket, true, LinkClose.gone), () => undefined);
        throw new Error(`room did not answer within ${LINK_OPEN_TIMEOUT_MS} ms`);
      }
      if (response.status === 101 && response.webSocket) {
        const head = response.headers.get(HEAD_HEADER);
        return { ws: response.webSocket, head: head === null ? undefined : Number(head) };
      }
      const body = await response.text();
      if (response.status === 403) {
        const refusal = LinkRefusal.safeParse(safeJson(body));
        if (refusal.success) return { refused: refusal.data };
      }
      const error = `room did not take the link: ${response.status} ${body.slice(0, 200)}`;
      throw response.status >= 400 && response.status < 500 ? new FinalLinkError(error) : new Error(error);
    };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
