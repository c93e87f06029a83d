/**
 * PrRoom: one Durable Object per pull request, named `pr:<id>`. Its members are gateway
 * links (one per client connection that joined) and direct client sockets; both are
 * hibernatable WebSockets whose attachments say who they are, so the room sleeps between
 * messages and loses nothing. It numbers and logs messages, keeps presence and typing per
 * person, takes back connections that come back within the recovery window, and sends
 * each frame, encoded once, through one fan-out path.
 */
import { DurableObject } from "cloudflare:workers";
import { identityAtConnect, loadIdentity, storeIdentity, type Identity, type StoredIdentity } from "../chat/identity.js";
import { ChatSession, refuse, roomMismatch, type JoinedRoom, type Scheduler } from "../chat/session.js";
import { TokenBucket } from "../chat/token-bucket.js";
import { configOf, engineOptions, type Config } from "../config.js";
import {
  CHAT_NAMESPACE,
  ClientEvent,
  publicPullRequestId,
  roomName,
  ServerEvent,
  type ErrorBody,
  type ErrorCode,
  type JoinAck,
  type PresenceNotice,
  type PrRoomMessage,
  type Refusal,
  type SendAck,
  type TypingAck,
  type TypingNotice,
  type UsersAck,
} from "../events.js";
import { log } from "../log.js";
import { isRecoverable, recoveryRefusal } from "../recovery/decision.js";
import { parseOffset } from "../recovery/offset.js";
import { isPid, newPid, pidHash } from "../recovery/pid.js";
import { utf8Length } from "../session/backlog.js";
import { DirectSessions, type DirectConnection } from "../session/direct.js";
import { randomId } from "../session/ids.js";
import { Namespaces, type NamespaceHandler } from "../session/namespaces.js";
import type { Socket } from "../session/socket.js";
import { CloseCode } from "../session/types.js";
import { Alarm, earliest } from "./alarm.js";
import { Connections } from "./connections.js";
import { ackFrame, eventFrame, messageFrame } from "./frames.js";
import { decodeCommand, HEAD_HEADER, LinkClose, LinkIdentity, type LinkCommand, type LinkRefusal } from "./link.js";
import { RoomLog, type LogEntry } from "./log.js";
import type { Member, Participant } from "./member.js";
import { Presence } from "./presence.js";
import { Typing } from "./typing.js";

/** A gateway link's attachment. */
interface LinkAttachment {
  kind: "link";
  member: Member;
}

/** What a direct connection keeps in its attachment besides its session. */
interface DirectApp {
  identity?: StoredIdentity;
  member?: Member;
}

type Direct = DirectConnection<DirectApp>;
type ChatSocket = Socket<ChatSession>;

/** What a backend publishes over the HTTP API. */
export interface PublishRequest {
  username: string;
  message: string;
  clientMessageId?: string;
}

export type PublishResult = { ok: true; id: string; seq: number } | { ok: false; error: ErrorBody };

export interface RoomInfo {
  pullRequestId: number | string;
  members: number;
  users: string[];
}

/** A recovery decided at CONNECT, carried out once the client has its CONNECT answer. */
interface DirectResume {
  member?: Member;
  replay: Replayed[];
}

/** One frame of a resume's replay (what the member missed, in order), with its UTF-8 size. */
interface Replayed {
  frame: string;
  bytes: number;
}

const STATS_EVERY_MS = 10_000;

/** Deadlines up to this long keep the room awake until they run (see RoomTimers). */
const KEEP_AWAKE_MS = 10_000;

/** Close codes the platform reports when no close frame came (abnormal, TLS): never answered. 1005 is a frame without a code. */
const NO_CLOSE_FRAME = new Set([1006, 1015]);

export class PrRoom extends DurableObject<Env> {
  private readonly config: Config;
  private readonly key: string;
  private readonly pullRequestId: number | string;
  private readonly log: RoomLog;
  private readonly connections: Connections;
  private readonly presence: Presence;
  private readonly typing = new Typing();
  private readonly alarms: Alarm;
  private readonly timers: RoomTimers;
  /** Everyone in the room: the one fan-out set. */
  private readonly members = new Map<WebSocket, Participant>();
  private readonly links = new Map<WebSocket, LinkParticipant>();
  /** Client sockets held here (the direct path), in the room or not yet. */
  private readonly directs: DirectSessions<DirectApp>;
  private readonly resumes = new WeakMap<Direct, DirectResume>();
  private readonly participants = new WeakMap<Direct, DirectParticipant>();
  /** Resumes per connection in the last minute (MAX_RESUMES_PER_MINUTE). */
  private readonly resumeBudget: ResumeBudget;
  /** Typing budgets per user: many tabs of one user type as one user. */
  private readonly typingBudgets = new Map<string, TokenBucket>();
  /** Messages and storage rows since the last `room_stats` line. */
  private readonly stats = { messages: 0, rows: 0, loggedAt: 0 };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.config = configOf(env);
    this.key = (ctx.id.name ?? "").replace(/^pr:/, "");
    this.pullRequestId = publicPullRequestId(this.key);
    const sql = ctx.storage.sql;
    this.log = new RoomLog(sql, { windowMs: this.config.RECOVERY_WINDOW_MS, maxEntries: this.config.RECOVERY_MAX_MESSAGES });
    this.connections = new Connections(sql, this.config.RECOVERY_WINDOW_MS);
    this.presence = new Presence(sql, this.config.PRESENCE_GRACE_MS);
    this.alarms = new Alarm(ctx.storage);
    this.timers = new RoomTimers(this.alarms);
    this.resumeBudget = new ResumeBudget(this.config.MAX_RESUMES_PER_MINUTE);
    this.directs = new DirectSessions(ctx, engineOptions(this.config), new Namespaces().of(CHAT_NAMESPACE, this.directChat()), {
      wake: (at) => this.alarms.wake(at),
    });

    for (const ws of ctx.getWebSockets()) this.rebuild(ws);
    ctx.blockConcurrencyWhile(async () => {
      await this.alarms.load();
      this.reconcile();
    });
  }

  // ---- entry points -----------------------------------------------------------------------

  /** A gateway link (`/link?…`) or a client's own socket (`/socket.io/…`, the direct path). */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    if (!this.key) return new Response("rooms are reached by name (pr:<id>)", { status: 400 });
    const url = new URL(request.url);
    if (url.pathname === "/link") return this.acceptLink(url);
    if (url.pathname.startsWith("/socket.io/")) return this.acceptDirect(request);
    return new Response("not found", { status: 404 });
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const direct = this.directs.get(ws);
    if (direct) return direct.engine.receive(data);
    const link = this.links.get(ws);
    const command = typeof data === "string" ? decodeCommand(data) : undefined;
    if (!link?.member || !command) {
      // Only our gateway opens links, so this is a bug there: drop the link, not the room.
      try {
        ws.close(CloseCode.protocolError, "bad link command");
      } catch {
        // Closed already.
      }
      return;
    }
    this.command(link, command);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.gone(ws, "transport close", code);
    // Every close frame is answered, as a socket.io server does: with its code, or none for
    // a frame that had none (1005), so the client's close completes at once. A close no frame
    // carried (1006, 1015) has nobody to answer.
    if (NO_CLOSE_FRAME.has(code)) return;
    try {
      if (code === 1005) ws.close();
      else ws.close(code, reason);
    } catch {
      // Already closed (the runtime answers close frames itself).
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.gone(ws, "transport error");
  }

  override async alarm(): Promise<void> {
    this.alarms.fired();
    const now = Date.now();
    this.directs.heartbeat(now);
    for (const member of this.typing.expired(now)) {
      const participant = this.participantOf(member);
      if (participant) this.stopTyping(participant, member);
      else this.typing.stop(member);
    }
    for (const username of this.presence.expire(now)) {
      this.typingBudgets.delete(username);
      this.announce(ServerEvent.userLeft, username);
    }
    this.log.prune(now);
    this.connections.prune(now);
    this.timers.runDue(now);
    this.scheduleNext(now);
  }

  // ---- RPC for the HTTP API ---------------------------------------------------------------

  /** Publishes a message as `username` (a backend's token subject), as a member's send would. */
  async publish(request: PublishRequest): Promise<PublishResult> {
    return { ok: true, ...this.post(request.username, request.message, request.clientMessageId) };
  }

  /** Fault injection (FAULT_INJECTION=on only): "restart" resets the object as a crash would. */
  async fault(kind: "restart"): Promise<void> {
    if (this.config.FAULT_INJECTION !== "on") throw new Error("fault injection is off");
    log("fault", { pr: this.key, kind });
    this.ctx.abort(`fault injection: ${kind}`);
  }

  /** Who is here now. */
  async info(): Promise<RoomInfo> {
    const users = this.presence.list();
    return { pullRequestId: this.pullRequestId, members: users.length, users };
  }

  // ---- links from gateway sessions ----------------------------------------------------------

  private acceptLink(url: URL): Response {
    const parsed = LinkIdentity.safeParse(Object.fromEntries(url.searchParams));
    if (!parsed.success) return new Response("bad link identity", { status: 400 });
    const { sid, socketId, username, resume, budget } = parsed.data;
    const member: Member = { sid, socketId, username, typingUntil: 0 };
    const plan = resume === undefined ? this.planJoin(member) : this.planResume(member, resume === "" ? undefined : Number(resume), budget);
    if ("refused" in plan) return Response.json(plan.refused satisfies LinkRefusal, { status: 403 });

    const { 0: gatewaySide, 1: roomSide } = new WebSocketPair();
    this.ctx.acceptWebSocket(roomSide, ["link"]);
    const link = new LinkParticipant(roomSide, member);
    this.links.set(roomSide, link);
    this.enter(link, member, plan);
    return new Response(null, { status: 101, webSocket: gatewaySide, headers: { [HEAD_HEADER]: String(this.log.headSeq) } });
  }

  // ---- direct client sockets ----------------------------------------------------------------

  private acceptDirect(request: Request): Response {
    // A full room answers the join (room_full), as on the gateway; this only bounds sockets that never join.
    if (this.directs.size >= directSocketCap(this.config)) {
      return Response.json({ code: 3, message: `Bad request: ${roomName(this.key)} has too many open connections` }, { status: 503 });
    }
    const response = this.directs.accept(request);
    this.scheduleNext(Date.now());
    return response;
  }

  /** The chat on a direct connection: the shared rules, with this room as its only room. */
  private directChat(): NamespaceHandler<ChatSession> {
    const room = this;
    const config = this.config;
    return {
      async connect({ auth, sid }) {
        const direct = room.directs.bySessionId(sid);
        if (!direct) return { ok: false, error: { message: "connection closed" } };
        const verified = await identityAtConnect(auth, config);
        if (!verified.ok) return verified;
        const identity = verified.identity;
        if (identity) direct.app = { ...direct.app, identity: storeIdentity(identity) };
        const chat = room.chatFor(direct, identity);
        if (!room.connections.keeps) return { ok: true, data: chat };
        const subject = identity?.username ?? null;
        const claimed = isPid(auth.pid) ? await pidHash(auth.pid) : undefined;
        // From here on nothing awaits, so no message can slip between the replay and going live.
        const resume = claimed ? room.planDirectResume(direct, claimed, identity, auth.offset) : undefined;
        if (resume) {
          room.resumes.set(direct, resume.plan);
          return { ok: true, data: chat, id: resume.socketId, pid: auth.pid as string };
        }
        const pid = newPid();
        const id = randomId();
        room.connections.connected(id, await pidHash(pid), subject);
        return { ok: true, data: chat, id, pid };
      },

      connected(socket) {
        const direct = room.directs.bySessionId(socket.sid)!;
        const resume = room.resumes.get(direct);
        room.resumes.delete(direct);
        if (resume?.member) {
          room.enter(room.participant(direct), resume.member, { replay: resume.replay, resumed: true });
          socket.data.adopt(room.key, room.directRoom(direct, resume.member.username));
        } else if (resume) {
          // Taken back before it ever joined: here again, so recoverable again later.
          room.connections.resumed(socket.id);
        }
        socket.data.endAtExpiry(socket);
      },

      event(socket, name, args, ack) {
        socket.data.event(socket, name, args, ack);
      },

      disconnect(socket, reason) {
        // Taken over by a recovery ("forced close"): the new connection holds the row and the membership now.
        const recoverable = isRecoverable(reason) || reason === "forced close";
        socket.data.closeAll(socket, recoverable);
        if (reason === "forced close") return;
        if (recoverable) room.connections.departed(socket.id, Date.now());
        else room.connections.forget(socket.id);
      },

      restore(_state, sid) {
        const direct = room.directs.bySessionId(sid)!;
        const stored = direct.app?.identity;
        const chat = room.chatFor(direct, stored && loadIdentity(stored));
        const member = direct.app?.member;
        if (member) chat.adopt(room.key, room.directRoom(direct, member.username));
        return chat;
      },
    };
  }

  private chatFor(direct: Direct, identity: Identity | undefined): ChatSession {
    return new ChatSession(
      this.config,
      {
        refuseJoin: (key) => roomMismatch(this.key, key),
        join: (_key, username, first) => this.joinDirect(direct, username, first),
      },
      this.timers,
      identity,
    );
  }

  /** A direct connection joins this room: refused at once (and told), or in. */
  private joinDirect(direct: Direct, username: string, first: LinkCommand): JoinedRoom | undefined {
    const socket = direct.layer.socket(CHAT_NAMESPACE)!;
    const member: Member = { sid: direct.engine.sid, socketId: socket.id, username, typingUntil: 0 };
    const plan = this.planJoin(member);
    if ("refused" in plan) {
      const { code, message } = plan.refused as ErrorBody;
      refuse(socket, socket.ackFor(first.ack), ClientEvent.join, this.key, code, message);
      return undefined;
    }
    const participant = this.participant(direct);
    this.enter(participant, member, plan);
    this.command(participant, first);
    return this.directRoom(direct, username);
  }

  /** The one participant object of a direct connection (the fan-out set compares them). */
  private participant(direct: Direct): DirectParticipant {
    let participant = this.participants.get(direct);
    if (!participant) this.participants.set(direct, (participant = new DirectParticipant(direct)));
    return participant;
  }

  private directRoom(direct: Direct, username: string): JoinedRoom {
    const participant = this.participant(direct);
    return {
      username,
      send: (command) => {
        if (!participant.member) return false;
        this.command(participant, command);
        return true;
      },
      leave: (gone) => this.exit(participant, gone ? "gone" : "left"),
    };
  }

  /** Decides, without awaiting, whether a direct CONNECT with this pid takes its connection back. */
  private planDirectResume(
    direct: Direct,
    hash: string,
    identity: Identity | undefined,
    offset: unknown,
  ): { socketId: string; plan: DirectResume } | undefined {
    const now = Date.now();
    const row = this.connections.findByPid(hash, now);
    if (!row) return undefined;
    const candidate = { departedAt: row.departedAt, subject: row.subject, rooms: row.username === null ? [] : [this.key] };
    const why = recoveryRefusal(candidate, { identity, only: this.key }, now, this.config);
    if (why !== undefined) {
      log("not_recovered", { sid: direct.engine.sid, pr: this.key, why });
      return undefined;
    }
    // An old socket of the same connection that is still open but not in the room goes now.
    const stale = this.directs.bySocketId(row.socketId);
    if (stale && stale !== direct && !stale.app?.member) this.directs.close(stale, LinkClose.superseded, "resumed elsewhere");
    if (row.username === null) return { socketId: row.socketId, plan: { replay: [] } };
    const positions = offset === undefined ? new Map<string, number>() : parseOffset(offset);
    if (!positions) return undefined;
    const member: Member = { sid: direct.engine.sid, socketId: row.socketId, username: row.username, typingUntil: 0 };
    const plan = this.planResume(member, positions.get(this.key));
    if ("refused" in plan) return undefined;
    return { socketId: row.socketId, plan: { member, replay: plan.replay } };
  }

  // ---- the room: entering, commands, leaving -------------------------------------------------

  /** Why `member` may not come in now, if it may not. A member taking its own place back always may. */
  private entryRefusal(member: Member, resuming: boolean): LinkRefusal | undefined {
    if (resuming && this.holderOf(member.socketId)) return undefined;
    if (this.members.size >= this.config.MAX_MEMBERS_PER_ROOM) {
      return { code: "room_full", message: `${roomName(this.key)} is full (${this.config.MAX_MEMBERS_PER_ROOM} connections)` };
    }
    if (this.presence.connections(member.username) >= this.config.MAX_CONNECTIONS_PER_USER) {
      return {
        code: "too_many_connections",
        message: `${JSON.stringify(member.username)} already has ${this.config.MAX_CONNECTIONS_PER_USER} connections in ${roomName(this.key)}; close one first`,
      };
    }
    return undefined;
  }

  private planJoin(member: Member): { replay: Replayed[]; resumed: false } | { refused: LinkRefusal } {
    const refused = this.entryRefusal(member, false);
    return refused ? { refused } : { replay: [], resumed: false };
  }

  /**
   * Whether a member that went (or whose old connection is half-dead) can come back with
   * everything after `from` (its last seq; undefined: since it joined). Never before its join.
   */
  private planResume(
    member: Member,
    from: number | undefined,
    budget = this.config.MAX_REPLAY_BYTES,
  ): { replay: Replayed[]; resumed: true } | { refused: LinkRefusal } {
    const notRecoverable = (why: string) => ({ refused: { code: "not_recoverable" as const, message: why } });
    const now = Date.now();
    const row = this.connections.find(member.socketId, now);
    if (!row || row.username !== member.username) return notRecoverable("unknown or expired connection");
    if (from !== undefined && from > this.log.headSeq) return notRecoverable("offset beyond the room's last message");
    if (!this.resumeBudget.take(member.socketId, now)) {
      return notRecoverable(`resumed more than ${this.config.MAX_RESUMES_PER_MINUTE} times in a minute`);
    }
    const replay = this.replayAfter(Math.max(from ?? row.joinedSeq, row.joinedSeq), Math.min(budget, this.config.MAX_REPLAY_BYTES));
    if (typeof replay === "string") return notRecoverable(replay);
    const refused = this.entryRefusal(member, true);
    return refused ? { refused } : { replay, resumed: true };
  }

  /** The frames of every message after `seq`, or why they cannot be replayed (pruned, or more than `budget` bytes). */
  private replayAfter(seq: number, budget: number): Replayed[] | string {
    const entries = this.log.after(seq);
    if (!entries) return "the log no longer reaches back that far";
    const replay: Replayed[] = [];
    let total = 0;
    for (const entry of entries) {
      const frame = this.frameOf(entry);
      const bytes = utf8Length(frame);
      total += bytes;
      if (total > budget) return `${entries.length} missed messages exceed the replay budget of ${budget} bytes (MAX_REPLAY_BYTES)`;
      replay.push({ frame, bytes });
    }
    return replay;
  }

  /**
   * Lets a member in: replays what it missed (a resume), then adds it to the fan-out, in one
   * turn, so nothing newer can come first. A resumed member whose old connection is still
   * here takes its place, and the others notice nothing.
   */
  private enter(participant: Participant, member: Member, plan: { replay: Replayed[]; resumed: boolean }): void {
    const old = plan.resumed ? this.holderOf(member.socketId) : undefined;
    if (old && old.ws !== participant.ws) this.supersede(old);
    // Counted like any frame: a reader is judged by its progress, and a replay is bounded (MAX_REPLAY_BYTES).
    for (const { frame, bytes } of plan.replay) participant.send(frame, bytes);
    participant.member = member;
    participant.save();
    this.members.set(participant.ws, participant);
    const fields = { sid: member.sid, socketId: member.socketId, pr: this.key, user: member.username };
    if (old) return log("resume", { ...fields, replayed: plan.replay.length, superseded: true });
    if (plan.resumed) this.connections.resumed(member.socketId);
    else this.connections.joined(member.socketId, member.username, this.log.headSeq);
    if (this.presence.arrive(member.username)) this.announce(ServerEvent.userJoined, member.username, participant.ws);
    log(plan.resumed ? "resume" : "join", plan.resumed ? { ...fields, replayed: plan.replay.length } : fields);
  }

  /** Takes a member out: "left" on purpose (not recoverable), or "gone" (recoverable for the window). */
  private exit(participant: Participant, why: "left" | "gone"): void {
    const member = participant.member;
    if (!member || this.members.get(participant.ws) !== participant) return;
    this.members.delete(participant.ws);
    participant.member = undefined;
    participant.save();
    this.endTyping(member);
    const now = Date.now();
    if (why === "left") this.connections.left(member.socketId);
    else this.connections.departed(member.socketId, now);
    if (this.presence.depart(member.username, now)) {
      this.typingBudgets.delete(member.username);
      this.announce(ServerEvent.userLeft, member.username);
    }
    this.scheduleNext(now);
  }

  /** A socket closed: a direct connection's session ends; a link's member left, or went (recoverably). */
  private gone(ws: WebSocket, reason: "transport close" | "transport error", code?: number): void {
    if (this.directs.lost(ws, reason, code)) return;
    const link = this.links.get(ws);
    if (!link) return;
    this.links.delete(ws);
    this.exit(link, code === LinkClose.leave ? "left" : "gone");
  }

  /** One command from a member, from its link or its direct session. */
  private command(participant: Participant, command: LinkCommand): void {
    const member = participant.member;
    if (!member) return;
    const answer = (payload: unknown) => {
      if (command.ack === undefined) return;
      const frame = ackFrame(command.ack, payload);
      participant.send(frame, utf8Length(frame));
    };
    switch (command.t) {
      case "join": {
        const users = this.presence.list();
        return answer({ ok: true, pullRequestId: this.pullRequestId, members: users.length, users, seq: this.log.headSeq } satisfies JoinAck);
      }
      case "users":
        return answer({ ok: true, pullRequestId: this.pullRequestId, users: this.presence.list() } satisfies UsersAck);
      case "msg":
        // A message ends its sender's typing; the attachment is written only when that changes.
        if (member.typingUntil !== 0) this.stopTyping(participant, member);
        return answer({ ok: true, ...this.post(member.username, command.message, command.cmid) } satisfies SendAck);
      case "typing": {
        if (!this.typingBudget(member.username).take(Date.now())) {
          return answer(refusal("rate_limited", `${JSON.stringify(member.username)} is typing too often`));
        }
        const until = Date.now() + this.config.TYPING_TIMEOUT_MS;
        this.typing.start(member, until);
        participant.save();
        // Renewals are relayed too; never to the typist's own other tabs.
        this.broadcast(eventFrame(ServerEvent.typing, this.notice(member)), member.username);
        this.alarms.wake(until);
        return answer({ ok: true } satisfies TypingAck);
      }
      case "stop-typing":
        if (member.typingUntil !== 0) this.stopTyping(participant, member);
        return answer({ ok: true } satisfies TypingAck);
    }
  }

  /** Numbers, logs and broadcasts a message; a repeated client id gets the first answer, and no broadcast. */
  private post(username: string, message: string, clientMessageId?: string): { id: string; seq: number } {
    if (clientMessageId !== undefined) {
      const first = this.log.byClientId(username, clientMessageId);
      if (first) return first;
    }
    const at = Date.now();
    const id = crypto.randomUUID();
    const seq = this.log.append({ at, id, username, message }, clientMessageId);
    this.broadcast(this.frameOf({ seq, at, id, username, message }));
    this.alarms.wake(this.log.nextPruneAt(at));
    this.countMessage(at);
    return { id, seq };
  }

  /** At most one `room_stats` line per STATS_EVERY_MS while messages flow: storage rows written per message, for operators and the bench. */
  private countMessage(now: number): void {
    this.stats.messages++;
    if (now - this.stats.loggedAt < STATS_EVERY_MS) return;
    const rows = this.log.rowsWritten;
    log("room_stats", { pr: this.key, messages: this.stats.messages, rowsWritten: rows - this.stats.rows, seq: this.log.headSeq });
    Object.assign(this.stats, { messages: 0, rows, loggedAt: now });
  }

  private frameOf(entry: LogEntry): string {
    const payload: PrRoomMessage = {
      pullRequestId: this.pullRequestId,
      username: entry.username,
      message: entry.message,
      id: entry.id,
      seq: entry.seq,
      sentAt: entry.at,
    };
    return messageFrame(this.key, payload, this.log.keeps);
  }

  private stopTyping(participant: Participant, member: Member): void {
    this.endTyping(member);
    participant.save();
  }

  /** One connection stops typing; the others hear `stop-typing` once none of its user's connections types. */
  private endTyping(member: Member): void {
    if (this.typing.stop(member)) this.broadcast(eventFrame(ServerEvent.stopTyping, this.notice(member)), member.username);
  }

  /** The one fan-out path: the same frame to every member but `without` (a socket, or all of a user's). */
  private broadcast(frame: string, without?: WebSocket | string): void {
    const bytes = utf8Length(frame);
    for (const [ws, participant] of this.members) {
      if (ws === without || participant.member!.username === without) continue;
      participant.send(frame, bytes);
    }
  }

  private announce(event: typeof ServerEvent.userJoined | typeof ServerEvent.userLeft, username: string, without?: WebSocket): void {
    this.broadcast(eventFrame(event, { pullRequestId: this.pullRequestId, username } satisfies PresenceNotice), without);
  }

  private notice(member: Member): TypingNotice {
    return { pullRequestId: this.pullRequestId, username: member.username };
  }

  private typingBudget(username: string): TokenBucket {
    let budget = this.typingBudgets.get(username);
    if (!budget) {
      budget = new TokenBucket(this.config.RATE_LIMIT_PER_SECOND, this.config.RATE_LIMIT_BURST, Date.now());
      this.typingBudgets.set(username, budget);
    }
    return budget;
  }

  // ---- membership bookkeeping -----------------------------------------------------------------

  private holderOf(socketId: string): Participant | undefined {
    for (const participant of this.members.values()) if (participant.member!.socketId === socketId) return participant;
    return undefined;
  }

  private participantOf(member: Member): Participant | undefined {
    for (const participant of this.members.values()) if (participant.member === member) return participant;
    return undefined;
  }

  /** Another connection resumed this member: the old one goes without a word to the others. */
  private supersede(old: Participant): void {
    this.members.delete(old.ws);
    const member = old.member!;
    old.member = undefined;
    this.typing.stop(member);
    log("superseded", { sid: member.sid, socketId: member.socketId, pr: this.key });
    const direct = this.directs.get(old.ws);
    if (direct) return this.directs.close(direct, LinkClose.superseded, "resumed elsewhere");
    this.links.delete(old.ws);
    try {
      old.ws.close(LinkClose.superseded, "resumed elsewhere");
    } catch {
      // Already closed.
    }
  }

  /** Rebuilds a socket's place after the room slept: no member pays for this per message. */
  private rebuild(ws: WebSocket): void {
    let participant: Participant;
    const direct = this.directs.restore(ws);
    if (direct) {
      // Deadlines kept in memory died with the old instance: the token's expiry is set again.
      const socket = direct.layer.socket(CHAT_NAMESPACE) as ChatSocket | undefined;
      socket?.data.endAtExpiry(socket);
      participant = this.participant(direct);
    } else {
      const attachment = ws.deserializeAttachment() as LinkAttachment | null;
      if (attachment?.kind !== "link") return;
      participant = new LinkParticipant(ws, attachment.member);
      this.links.set(ws, participant as LinkParticipant);
    }
    const member = participant.member;
    if (!member) return;
    this.members.set(ws, participant);
    this.presence.count(member.username);
    this.typing.restore(member);
  }

  /** After a restart (not a hibernation): what storage says is here but no socket is, has gone. */
  private reconcile(): void {
    const now = Date.now();
    this.presence.reconcile(now);
    const here = new Set(Array.from(this.members.values(), (participant) => participant.member!.socketId));
    for (const direct of this.directs.values()) {
      const socketId = direct.layer.socket(CHAT_NAMESPACE)?.id;
      if (socketId) here.add(socketId);
    }
    this.connections.reconcile(here, now);
    this.scheduleNext(now);
  }

  private scheduleNext(now: number): void {
    this.alarms.wake(
      earliest(
        this.directs.nextHeartbeatAt(now),
        this.typing.nextExpiryAt(),
        this.presence.nextExpiryAt(),
        this.log.nextPruneAt(now),
        this.connections.nextPruneAt(),
        this.timers.next(),
      ),
    );
  }
}

/** A gateway link as a member: frames go down the link, and the gateway forwards them. */
class LinkParticipant implements Participant {
  constructor(
    readonly ws: WebSocket,
    public member: Member | undefined,
  ) {}

  send(frame: string): void {
    try {
      this.ws.send(frame);
    } catch {
      // Closed under us: its close event takes it out of the room.
    }
  }

  save(): void {
    if (this.member) this.ws.serializeAttachment({ kind: "link", member: this.member } satisfies LinkAttachment);
  }
}

/** A direct connection as a member: frames go through its session (which counts them for the slow-reader cap). */
class DirectParticipant implements Participant {
  constructor(private readonly direct: Direct) {}

  get ws(): WebSocket {
    return this.direct.ws;
  }

  get member(): Member | undefined {
    return this.direct.app?.member;
  }

  set member(member: Member | undefined) {
    const { member: _, ...rest } = this.direct.app ?? {};
    this.direct.app = member ? { ...rest, member } : rest;
  }

  send(frame: string, bytes: number): void {
    this.direct.engine.send(frame, bytes);
  }

  save(): void {
    this.direct.save();
  }
}

/**
 * In-memory deadlines (held events, token expiry) on the room's alarm. A short one (held
 * events wait JOIN_GRACE_MS, at most 10 s) also gets a timer: a pending timer keeps the
 * object from hibernating, which would drop what is held in memory unanswered. Long ones
 * (token expiry) are set again when the room wakes, so they need not keep it awake.
 */
export class RoomTimers implements Scheduler {
  private readonly pending = new Set<{ at: number; run: () => void }>();

  constructor(private readonly alarms: Alarm) {}

  after(ms: number, run: () => void): () => void {
    const timer = { at: Date.now() + ms, run };
    this.pending.add(timer);
    this.alarms.wake(timer.at);
    const awake = ms <= KEEP_AWAKE_MS ? setTimeout(() => this.runDue(Date.now()), ms) : undefined;
    return () => {
      if (awake !== undefined) clearTimeout(awake);
      this.pending.delete(timer);
    };
  }

  runDue(now: number): void {
    for (const timer of [...this.pending]) {
      if (timer.at > now) continue;
      this.pending.delete(timer);
      timer.run();
    }
  }

  next(): number | undefined {
    return earliest(...Array.from(this.pending, (timer) => timer.at));
  }
}

/**
 * Resumes per connection over the last minute: a client that keeps dropping and resuming
 * replays at most this often. Kept in memory (a restart forgets it, which only resets the
 * count); connections with no resume in the last minute are dropped at most a minute later,
 * so it holds only the connections that resumed in the last two minutes.
 */
class ResumeBudget {
  private readonly times = new Map<string, number[]>();

  constructor(private readonly perMinute: number) {}

  private prunedAt = 0;

  take(socketId: string, now: number): boolean {
    if (now - this.prunedAt >= 60_000) {
      this.prunedAt = now;
      for (const [id, times] of this.times) if (now - times.at(-1)! >= 60_000) this.times.delete(id);
    }
    const times = this.times.get(socketId) ?? [];
    while (times.length > 0 && now - times[0]! >= 60_000) times.shift();
    if (times.length >= this.perMinute) return false;
    times.push(now);
    this.times.set(socketId, times);
    return true;
  }
}

/** Client sockets one room holds, joined or not: room for every member twice over, under the runtime's 32,768. */
function directSocketCap(config: Config): number {
  return Math.min(32_000, 2 * config.MAX_MEMBERS_PER_ROOM + 100);
}

function refusal(code: ErrorCode, message: string): Refusal {
  return { ok: false, error: { code, message } };
}
