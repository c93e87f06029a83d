/**
 * The direct path's host: client sockets the room holds itself (clients that name their pull
 * request in the connection URL). The shared session runs on each (DirectSessions), the
 * shared chat rules (ChatSession) with this room as the only room, and a member that joins
 * comes in through Membership like a link's. A connection that comes back with its pid is
 * decided here, at CONNECT, by the one recovery decision both paths use.
 */
import { ChatSession, refuse, roomMismatch, type JoinedRoom } from "../chat/chat.js";
import { deadPeerMs, directEngineOptions, type Config } from "../chat/config.js";
import { CHAT_NAMESPACE, ClientEvent, roomName, type ErrorBody } from "../chat/events.js";
import { identityAtConnect, loadIdentity, storeIdentity, type Identity, type StoredIdentity } from "../chat/identity.js";
import { LinkClose, type LinkCommand } from "../chat/link.js";
import { isPid, newPid, pidHash } from "../chat/pid.js";
import { decideRecovery, isRecoverable } from "../chat/recovery.js";
import type { DirectConnection } from "../session/direct-connection.js";
import { DirectSessions } from "../session/direct.js";
import { Namespaces, type NamespaceHandler } from "../session/namespaces.js";
import type { Socket } from "../session/socket.js";
import { randomId } from "../util/ids.js";
import { log } from "../util/log.js";
import type { Alarm } from "./alarm.js";
import type { Connections } from "./connections.js";
import type { Member, Participant } from "./member.js";
import type { Membership, Replayed } from "./membership.js";
import type { RoomTimers } from "./timers.js";

/** What a direct connection keeps in its attachment besides its session. */
interface DirectApp {
  identity?: StoredIdentity;
  member?: Member;
}

type Direct = DirectConnection<DirectApp>;
type ChatSocket = Socket<ChatSession>;

/** A recovery decided at CONNECT, carried out once the client has its CONNECT answer. */
interface DirectResume {
  member?: Member;
  replay: Replayed[];
}

export class DirectHost {
  /** Client sockets held here, in the room or not yet. */
  readonly sessions: DirectSessions<DirectApp>;
  private readonly resumes = new WeakMap<Direct, DirectResume>();
  private readonly participants = new WeakMap<Direct, DirectParticipant>();

  constructor(
    ctx: DurableObjectState,
    private readonly key: string,
    private readonly config: Config,
    private readonly membership: Membership,
    private readonly connections: Connections,
    private readonly timers: RoomTimers,
    alarms: Alarm,
  ) {
    this.sessions = new DirectSessions(ctx, directEngineOptions(config), new Namespaces().of(CHAT_NAMESPACE, this.chat()), {
      wake: (at) => alarms.wake(at),
    });
  }

  /** A client's `/socket.io/` upgrade; 503 when the room holds as many sockets as it may. */
  accept(request: Request): Response {
    // A full room answers the join (room_full), as on the gateway; this only bounds sockets that never join.
    if (this.sessions.size >= directSocketCap(this.config)) {
      return Response.json({ code: 3, message: `Bad request: ${roomName(this.key)} has too many open connections` }, { status: 503 });
    }
    return this.sessions.accept(request);
  }

  /** Rebuilds a direct socket after the room slept; undefined when `ws` is no direct socket. */
  restore(ws: WebSocket): Participant | undefined {
    const direct = this.sessions.restore(ws);
    if (!direct) return undefined;
    // Deadlines kept in memory died with the old instance: the token's expiry is set again.
    const socket = direct.layer.socket(CHAT_NAMESPACE) as ChatSocket | undefined;
    socket?.data.endAtExpiry(socket);
    return this.participant(direct);
  }

  /** The Socket.IO ids of the connections held here. */
  socketIds(): string[] {
    const ids: string[] = [];
    for (const direct of this.sessions.values()) {
      const socketId = direct.layer.socket(CHAT_NAMESPACE)?.id;
      if (socketId) ids.push(socketId);
    }
    return ids;
  }

  /** The chat on a direct connection: the shared rules, with this room as its only room. */
  private chat(): NamespaceHandler<ChatSession> {
    const host = this;
    const { config, connections, key } = this;
    return {
      async connect({ auth, sid }) {
        const direct = host.sessions.bySessionId(sid);
        if (!direct) return { ok: false, error: { message: "connection closed" } };
        const verified = await identityAtConnect(auth, config);
        if (!verified.ok) return verified;
        const identity = verified.identity;
        if (identity) direct.app = { ...direct.app, identity: storeIdentity(identity) };
        const chat = host.chatFor(direct, identity);
        if (!connections.keeps) return { ok: true, data: chat };
        const subject = identity?.username ?? null;
        const claimed = isPid(auth.pid) ? await pidHash(auth.pid) : undefined;
        // From here on nothing awaits, so no message can slip between the replay and going live.
        const resume = claimed ? host.planResume(direct, claimed, identity, auth.offset) : undefined;
        if (resume) {
          host.resumes.set(direct, resume.plan);
          return { ok: true, data: chat, id: resume.socketId, pid: auth.pid as string };
        }
        const pid = newPid();
        const id = randomId();
        connections.connected(id, await pidHash(pid), subject);
        return { ok: true, data: chat, id, pid };
      },

      connected(socket) {
        const direct = host.sessions.bySessionId(socket.sid)!;
        const resume = host.resumes.get(direct);
        host.resumes.delete(direct);
        if (resume?.member) {
          host.membership.enter(host.participant(direct), resume.member, { replay: resume.replay, resumed: true });
          socket.data.adopt(key, host.joined(direct, resume.member.username));
        } else if (resume) {
          // Taken back before it ever joined: here again, so recoverable again later.
          connections.resumed(socket.id);
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
        if (recoverable) connections.departed(socket.id, Date.now());
        else connections.forget(socket.id);
      },

      restore(_state, sid) {
        const direct = host.sessions.bySessionId(sid)!;
        const stored = direct.app?.identity;
        const chat = host.chatFor(direct, stored && loadIdentity(stored));
        const member = direct.app?.member;
        if (member) chat.adopt(key, host.joined(direct, member.username));
        return chat;
      },
    };
  }

  private chatFor(direct: Direct, identity: Identity | undefined): ChatSession {
    return new ChatSession(
      this.config,
      {
        refuseJoin: (key) => roomMismatch(this.key, key),
        join: (_key, username, first) => this.join(direct, username, first),
      },
      this.timers,
      identity,
    );
  }

  /** A direct connection joins this room: refused at once (and told), or in. */
  private join(direct: Direct, username: string, first: LinkCommand): JoinedRoom | undefined {
    const socket = direct.layer.socket(CHAT_NAMESPACE)!;
    const member: Member = { sid: direct.engine.sid, socketId: socket.id, username, typingUntil: 0 };
    const plan = this.membership.planJoin(member);
    if ("refused" in plan) {
      const { code, message } = plan.refused as ErrorBody;
      refuse(socket, socket.ackFor(first.ack), ClientEvent.join, this.key, code, message);
      return undefined;
    }
    const participant = this.participant(direct);
    this.membership.enter(participant, member, plan);
    this.membership.command(participant, first);
    return this.joined(direct, username);
  }

  /** The one participant object of a direct connection (the fan-out set compares them). */
  private participant(direct: Direct): DirectParticipant {
    let participant = this.participants.get(direct);
    if (!participant) this.participants.set(direct, (participant = new DirectParticipant(direct, this.sessions)));
    return participant;
  }

  /** The room as the connection's chat sees it once joined. */
  private joined(direct: Direct, username: string): JoinedRoom {
    const participant = this.participant(direct);
    return {
      username,
      send: (command) => {
        if (!participant.member) return false;
        this.membership.command(participant, command);
        return true;
      },
      leave: () => this.membership.exit(participant, "left"),
      depart: () => this.membership.exit(participant, "gone"),
    };
  }

  /** Decides, without awaiting, whether a direct CONNECT with this pid takes its connection back. */
  private planResume(direct: Direct, hash: string, identity: Identity | undefined, offset: unknown): { socketId: string; plan: DirectResume } | undefined {
    const now = Date.now();
    const row = this.connections.findByPid(hash, now);
    if (!row) return undefined;
    const candidate = { departedAt: row.departedAt, subject: row.subject, rooms: row.username === null ? [] : [this.key] };
    const timing = { RECOVERY_WINDOW_MS: this.config.RECOVERY_WINDOW_MS, silenceMs: deadPeerMs(this.config, "direct") };
    const decided = decideRecovery(candidate, { identity, only: this.key, offset }, now, timing);
    if (!decided.ok) {
      log("not_recovered", { sid: direct.engine.sid, pr: this.key, why: decided.why });
      return undefined;
    }
    // An old socket of the same connection that is still open but not in the room goes now.
    const stale = this.sessions.bySocketId(row.socketId);
    if (stale && stale !== direct && !stale.app?.member) this.sessions.close(stale, LinkClose.superseded, "resumed elsewhere");
    if (row.username === null) return { socketId: row.socketId, plan: { replay: [] } };
    const member: Member = { sid: direct.engine.sid, socketId: row.socketId, username: row.username, typingUntil: 0 };
    const plan = this.membership.planResume(member, decided.positions.get(this.key));
    if ("refused" in plan) return undefined;
    return { socketId: row.socketId, plan: { member, replay: plan.replay } };
  }
}

/** A direct connection as a member: frames go through its session (which counts them for the slow-reader cap). */
class DirectParticipant implements Participant {
  constructor(
    private readonly direct: Direct,
    private readonly sessions: DirectSessions<DirectApp>,
  ) {}

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

  end(code: number, reason: string): void {
    this.sessions.close(this.direct, code, reason);
  }
}

/** Client sockets one room holds, joined or not: room for every member twice over, under the runtime's 32,768. */
function directSocketCap(config: Config): number {
  return Math.min(32_000, 2 * config.MAX_MEMBERS_PER_ROOM + 100);
}
