/**
 * Membership and fan-out: who is in the room, and the one path every frame leaves by. It
 * decides who may come in (a join, or a resume that replays what was missed), runs a
 * member's commands (send, typing, who is here), numbers and logs messages, and keeps
 * presence and typing per person. Both hosts (links, direct sockets) bring their members
 * here as Participants; nothing here knows which kind a member is.
 */
import type { Config } from "../chat/config.js";
import {
  roomName,
  ServerEvent,
  type ErrorCode,
  type JoinAck,
  type PresenceNotice,
  type Refusal,
  type SendAck,
  type TypingAck,
  type TypingNotice,
  type UsersAck,
} from "../chat/events.js";
import { ackFrame, eventFrame } from "../chat/frames.js";
import { LinkClose, type LinkCommand, type LinkRefusal } from "../chat/link.js";
import { mentionsOf } from "../chat/mentions.js";
import { TokenBucket } from "../chat/token-bucket.js";
import { logEventId, roomEventId } from "../chat/webhooks.js";
import { utf8Length } from "../session/backlog.js";
import { log } from "../util/log.js";
import type { ObjectMeter } from "../util/meter.js";
import type { Alarm } from "./alarm.js";
import type { Connections } from "./connections.js";
import type { LogEntry, RoomLog } from "./log.js";
import { LogWriter, MAX_WAITING_MESSAGES } from "./log-writer.js";
import { Discussion } from "./discussion.js";
import type { Member, Participant } from "./member.js";
import type { WebhookOutbox } from "./outbox.js";
import type { Presence } from "./presence.js";
import { ResumeBudget } from "./resume-budget.js";
import type { Typing } from "./typing.js";

/** One frame of a resume's replay (what the member missed, in order), with its UTF-8 size. */
export interface Replayed {
  frame: string;
  bytes: number;
}

/** How a member comes in: fresh (a join), or back with what it missed (a resume). */
export type EntryPlan = { replay: Replayed[]; resumed: boolean };

/** What the room's state is kept in: the object's storage and caches, owned by the object. */
export interface RoomState {
  key: string;
  pullRequestId: number | string;
  config: Config;
  log: RoomLog;
  connections: Connections;
  presence: Presence;
  typing: Typing;
  /** Typing budgets per user: many tabs of one user type as one user. */
  typingBudgets: Map<string, TokenBucket>;
  alarms: Alarm;
  /** Webhook events (off unless WEBHOOK_URL is set). */
  outbox: WebhookOutbox;
  /** What the room is billed for (messages are tallied with it). */
  meter: ObjectMeter;
  /** Resolves once every storage write so far is durable. */
  sync(): Promise<void>;
  /** Restarts the room as a crash would (its storage failed). */
  abort(reason: string): void;
}

export class Membership {
  /** Everyone in the room: the one fan-out set. */
  private readonly members = new Map<WebSocket, Participant>();
  /** Resumes per connection in the last minute (MAX_RESUMES_PER_MINUTE). */
  private readonly resumeBudget: ResumeBudget;
  /** Messages on their way into the log: written per burst, broadcast once written. */
  private readonly writer: LogWriter;
  /** Edits, deletes, reactions, history, and every room event's frame. */
  readonly discussion: Discussion;

  constructor(
    private readonly room: RoomState,
    /** Sets the alarm for the room's next deadline (after a member went). */
    private readonly schedule: (now: number) => void,
  ) {
    this.resumeBudget = new ResumeBudget(room.config.MAX_RESUMES_PER_MINUTE);
    this.discussion = new Discussion(room, {
      broadcast: (frame) => this.broadcast(frame),
      changed: (kind, message, seq, at) => {
        if (kind !== "reactions") this.messageEvent(kind === "edit" ? "message.edited" : "message.deleted", message, seq, at);
      },
    });
    this.writer = new LogWriter(room.log, {
      sync: () => room.sync(),
      logged: (entry) => {
        this.broadcast(this.discussion.messageFrame(entry));
        room.alarms.wake(room.log.nextPruneAt(entry.at));
        room.meter.tally("messages");
        this.messageEvent("message.created", entry, entry.seq, entry.at);
      },
      failed: (error) => {
        log("handler_error", { pr: room.key, where: "log write", error: String(error) });
        room.abort(`log write failed: ${String(error)}`);
      },
    });
  }

  get size(): number {
    return this.members.size;
  }

  /** The Socket.IO ids of everyone in the room. */
  socketIds(): string[] {
    return Array.from(this.members.values(), (participant) => participant.member!.socketId);
  }

  // ---- coming in ----------------------------------------------------------------------------

  planJoin(member: Member): { replay: Replayed[]; resumed: false } | { refused: LinkRefusal } {
    const refused = this.entryRefusal(member, false);
    return refused ? { refused } : { replay: [], resumed: false };
  }

  /**
   * Whether a member that went (or whose old connection is half-dead) can come back with
   * everything after `from` (its last seq; undefined: since it joined). Never before its join.
   */
  planResume(member: Member, from: number | undefined, budget = this.room.config.MAX_REPLAY_BYTES): { replay: Replayed[]; resumed: true } | { refused: LinkRefusal } {
    const { config, connections, log } = this.room;
    const notRecoverable = (why: string) => ({ refused: { code: "not_recoverable" as const, message: why } });
    const now = Date.now();
    const row = connections.find(member.socketId, now);
    if (!row || row.username !== member.username) return notRecoverable("unknown or expired connection");
    if (from !== undefined && from > log.headSeq) return notRecoverable("offset beyond the room's last message");
    if (!this.resumeBudget.take(member.socketId, now)) {
      return notRecoverable(`resumed more than ${config.MAX_RESUMES_PER_MINUTE} times in a minute`);
    }
    const replay = this.replayAfter(Math.max(from ?? row.joinedSeq, row.joinedSeq), Math.min(budget, config.MAX_REPLAY_BYTES));
    if (typeof replay === "string") return notRecoverable(replay);
    const refused = this.entryRefusal(member, true);
    return refused ? { refused } : { replay, resumed: true };
  }

  /** Why `member` may not come in now, if it may not. A member taking its own place back always may. */
  private entryRefusal(member: Member, resuming: boolean): LinkRefusal | undefined {
    const { config, key, presence } = this.room;
    if (resuming && this.holderOf(member.socketId)) return undefined;
    if (this.members.size >= config.MAX_MEMBERS_PER_ROOM) {
      return { code: "room_full", message: `${roomName(key)} is full (${config.MAX_MEMBERS_PER_ROOM} connections)` };
    }
    if (presence.connections(member.username) >= config.MAX_CONNECTIONS_PER_USER) {
      return {
        code: "too_many_connections",
        message: `${JSON.stringify(member.username)} already has ${config.MAX_CONNECTIONS_PER_USER} connections in ${roomName(key)}; close one first`,
      };
    }
    return undefined;
  }

  /** The frames of every message after `seq`, or why they cannot be replayed (pruned, or more than `budget` bytes). */
  private replayAfter(seq: number, budget: number): Replayed[] | string {
    const events = this.room.log.after(seq);
    if (!events) return "the log no longer reaches back that far";
    const replay: Replayed[] = [];
    let total = 0;
    for (const event of events) {
      const frame = this.discussion.replayFrame(event);
      if (frame === undefined) continue;
      const bytes = utf8Length(frame);
      total += bytes;
      if (total > budget) return `${events.length} missed room events exceed the replay budget of ${budget} bytes (MAX_REPLAY_BYTES)`;
      replay.push({ frame, bytes });
    }
    return replay;
  }

  /**
   * Lets a member in: replays what it missed (a resume), then adds it to the fan-out, in one
   * turn, so nothing newer can come first. A resumed member whose old connection is still
   * here takes its place, and the others notice nothing.
   */
  enter(participant: Participant, member: Member, plan: EntryPlan): void {
    const { connections, presence, log: roomLog, key } = this.room;
    const old = plan.resumed ? this.holderOf(member.socketId) : undefined;
    if (old && old.ws !== participant.ws) this.supersede(old);
    // Counted like any frame: a reader is judged by its progress, and a replay is bounded (MAX_REPLAY_BYTES).
    for (const { frame, bytes } of plan.replay) participant.send(frame, bytes);
    participant.member = member;
    participant.save();
    this.members.set(participant.ws, participant);
    const fields = { sid: member.sid, socketId: member.socketId, pr: key, user: member.username };
    if (old) return log("resume", { ...fields, replayed: plan.replay.length, superseded: true });
    if (plan.resumed) connections.resumed(member.socketId);
    else connections.joined(member.socketId, member.username, roomLog.headSeq);
    if (presence.arrive(member.username)) {
      this.announce(ServerEvent.userJoined, member.username, participant.ws);
      // The first person in a room nobody was in (not even within their grace).
      if (presence.size === 1) this.roomEvent("room.occupied", member.username);
    }
    log(plan.resumed ? "resume" : "join", plan.resumed ? { ...fields, replayed: plan.replay.length } : fields);
  }

  /** A member whose socket was rebuilt after the room slept: back in the fan-out, nobody told. */
  restore(participant: Participant): void {
    const member = participant.member;
    if (!member) return;
    this.members.set(participant.ws, participant);
    this.room.presence.count(member.username);
    this.room.typing.restore(member);
  }

  // ---- going out ----------------------------------------------------------------------------

  /** Takes a member out: "left" on purpose (not recoverable), or "gone" (recoverable for the window). */
  exit(participant: Participant, why: "left" | "gone"): void {
    const { connections, presence } = this.room;
    const member = participant.member;
    if (!member || this.members.get(participant.ws) !== participant) return;
    this.members.delete(participant.ws);
    participant.member = undefined;
    participant.save();
    this.endTyping(member);
    const now = Date.now();
    if (why === "left") connections.left(member.socketId);
    else connections.departed(member.socketId, now);
    if (presence.depart(member.username, now)) {
      this.departed(member.username);
      this.vacated(member.username);
    }
    this.schedule(now);
  }

  /** Another connection resumed this member: the old one goes without a word to the others. */
  private supersede(old: Participant): void {
    this.members.delete(old.ws);
    const member = old.member!;
    old.member = undefined;
    this.room.typing.stop(member);
    log("superseded", { sid: member.sid, socketId: member.socketId, pr: this.room.key });
    old.end(LinkClose.superseded, "resumed elsewhere");
  }

  /** The room's alarm: typing that ran out, and people whose presence grace ran out. */
  expire(now: number): void {
    for (const member of this.room.typing.expired(now)) {
      const participant = this.participantOf(member);
      if (participant) this.stopTyping(participant, member);
      else this.room.typing.stop(member);
    }
    const gone = this.room.presence.expire(now);
    for (const username of gone) this.departed(username);
    if (gone.length > 0) this.vacated(gone[gone.length - 1]!);
  }

  /** Somebody left past their grace: if nobody is left, the room is empty now (`username` went last). */
  private vacated(username: string): void {
    if (this.room.presence.size === 0) this.roomEvent("room.vacated", username);
  }

  /**
   * A message's webhook event (when webhooks are on): `seq` is the event's own. A delete's
   * mentions are those of the text it deleted, so whoever was notified can be told.
   */
  private messageEvent(type: "message.created" | "message.edited" | "message.deleted", message: LogEntry & { version?: number; editedAt?: number | null }, seq: number, at: number): void {
    const { outbox, key, pullRequestId } = this.room;
    if (!outbox.enabled) return;
    const data = { pullRequestId, id: message.id, seq, username: message.username, mentions: mentionsOf(message.message), sentAt: message.at };
    const id = logEventId(key, seq);
    if (type === "message.deleted") return outbox.emit(id, type, data, at);
    if (type === "message.created") return outbox.emit(id, type, { ...data, message: message.message }, at);
    outbox.emit(id, type, { ...data, message: message.message, version: message.version, editedAt: message.editedAt! }, at);
  }

  private roomEvent(type: "room.occupied" | "room.vacated", username: string): void {
    const { outbox, key, pullRequestId } = this.room;
    if (outbox.enabled) outbox.emit(roomEventId(key, outbox.serial()), type, { pullRequestId, username });
  }

  /** A person has no connection here any more, past the grace: the others hear they left. */
  private departed(username: string): void {
    this.room.typingBudgets.delete(username);
    this.announce(ServerEvent.userLeft, username);
  }

  // ---- commands -----------------------------------------------------------------------------

  /** One command from a member, from its link or its direct session. */
  command(participant: Participant, command: LinkCommand): void {
    const { config, presence, pullRequestId, log: roomLog, typing, alarms } = this.room;
    const member = participant.member;
    if (!member) return;
    const answer = (payload: unknown) => {
      if (command.ack === undefined) return;
      const frame = ackFrame(command.ack, payload);
      participant.send(frame, utf8Length(frame));
    };
    switch (command.t) {
      case "join": {
        const users = presence.list();
        return answer({ ok: true, pullRequestId, members: users.length, users, seq: roomLog.headSeq } satisfies JoinAck);
      }
      case "users":
        return answer({ ok: true, pullRequestId, users: presence.list() } satisfies UsersAck);
      case "msg":
        // A message ends its sender's typing; the attachment is written only when that changes.
        if (member.typingUntil !== 0) this.stopTyping(participant, member);
        return this.post(member.username, command.message, command.cmid, answer);
      case "typing": {
        if (!this.typingBudget(member.username).take(Date.now())) {
          return answer(refusal("rate_limited", `${JSON.stringify(member.username)} is typing too often`));
        }
        const until = Date.now() + config.TYPING_TIMEOUT_MS;
        typing.start(member, until);
        participant.save();
        // Renewals are relayed too; never to the typist's own other tabs.
        this.broadcast(eventFrame(ServerEvent.typing, this.notice(member)), member.username);
        alarms.wake(until);
        return answer({ ok: true } satisfies TypingAck);
      }
      case "stop-typing":
        if (member.typingUntil !== 0) this.stopTyping(participant, member);
        return answer({ ok: true } satisfies TypingAck);
      case "history":
        return answer(this.discussion.history(command.before, command.limit));
      case "edit":
        return answer(this.discussion.edit(member.username, command.id, command.message));
      case "delete":
        return answer(this.discussion.remove(member.username, command.id));
      case "react":
        return answer(this.discussion.react(member.username, command.id, command.emoji, command.on));
    }
  }

  /**
   * Numbers, logs and broadcasts a message, then `answer`s with its id and seq (see LogWriter:
   * possibly in a later turn); a repeated client id gets the first answer, and no broadcast.
   * Refused `room_unavailable` while the room's storage has too many messages waiting.
   */
  post(username: string, message: string, clientMessageId: string | undefined, answer: (result: SendAck | Refusal) => void): void {
    if (clientMessageId !== undefined) {
      const first = this.room.log.byClientId(username, clientMessageId);
      if (first) return answer({ ok: true, ...first });
    }
    const taken = this.writer.post({ username, message, clientId: clientMessageId }, (posted) => answer({ ok: true, ...posted }));
    if (!taken) answer(refusal("room_unavailable", `${MAX_WAITING_MESSAGES} messages are waiting for the room's storage; send again shortly`));
  }

  private stopTyping(participant: Participant, member: Member): void {
    this.endTyping(member);
    participant.save();
  }

  /** One connection stops typing; the others hear `stop-typing` once none of its user's connections types. */
  private endTyping(member: Member): void {
    if (this.room.typing.stop(member)) this.broadcast(eventFrame(ServerEvent.stopTyping, this.notice(member)), member.username);
  }

  // ---- fan-out ------------------------------------------------------------------------------

  /** The one fan-out path: the same frame to every member but `without` (a socket, or all of a user's). */
  private broadcast(frame: string, without?: WebSocket | string): void {
    const bytes = utf8Length(frame);
    for (const [ws, participant] of this.members) {
      if (ws === without || participant.member!.username === without) continue;
      participant.send(frame, bytes);
    }
  }

  private announce(event: typeof ServerEvent.userJoined | typeof ServerEvent.userLeft, username: string, without?: WebSocket): void {
    this.broadcast(eventFrame(event, { pullRequestId: this.room.pullRequestId, username } satisfies PresenceNotice), without);
  }

  private notice(member: Member): TypingNotice {
    return { pullRequestId: this.room.pullRequestId, username: member.username };
  }

  private typingBudget(username: string): TokenBucket {
    const { config, typingBudgets } = this.room;
    let budget = typingBudgets.get(username);
    if (!budget) {
      budget = new TokenBucket(config.RATE_LIMIT_PER_SECOND, config.RATE_LIMIT_BURST, Date.now());
      typingBudgets.set(username, budget);
    }
    return budget;
  }

  /** The member in the room now with this Socket.IO id, if any. */
  holderOf(socketId: string): Participant | undefined {
    for (const participant of this.members.values()) if (participant.member!.socketId === socketId) return participant;
    return undefined;
  }

  private participantOf(member: Member): Participant | undefined {
    for (const participant of this.members.values()) if (participant.member === member) return participant;
    return undefined;
  }
}

function refusal(code: ErrorCode, message: string): Refusal {
  return { ok: false, error: { code, message } };
}
