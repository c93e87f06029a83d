/**
 * The chat on a gateway connection (the documented client: rooms are named by
 * `join-pr-room` after connecting): the shared rules, rooms reached over links, and
 * connection state recovery backed by the connection's record and the rooms' logs.
 */
import type { Config } from "../config.js";
import { log } from "../log.js";
import { parseOffset } from "../recovery/offset.js";
import { isPid, newPid, pidHash } from "../recovery/pid.js";
import { recordName } from "../recovery/record.js";
import { randomId } from "../session/ids.js";
import type { NamespaceHandler } from "../session/namespaces.js";
import { ClientEvent, publicPullRequestId, PullRequestId, ServerEvent, type ErrorBody, type PrRoomError } from "../events.js";
import { GatewayRooms, type GatewayIdentity, type RoomPosition } from "./gateway-rooms.js";
import { verifyIdentity, type Identity } from "./identity.js";
import { ChatSession, timerScheduler } from "./session.js";

export interface GatewayConnection {
  chat: ChatSession;
  rooms: GatewayRooms;
  /** Rooms a moved connection could not be resumed in: the client hears room_unavailable for each. */
  unresumed?: string[];
}

/** What a gateway connection carries when it moves (a polling session upgrading to WebSocket). */
export interface ChatHandOver {
  socketId: string;
  subject: string | null;
  identity?: { username: string; pullRequests?: string[]; expiresAt: number; scopes: string[] };
  /** The pull request the connection was opened for (`?pullRequestId=`), if any. */
  only?: string;
  rooms: RoomPosition[];
}

const UNRESUMED: ErrorBody = { code: "room_unavailable", message: "the room could not be reached after the upgrade to WebSocket; join it again" };

export interface GatewayBindings {
  PR_ROOM: DurableObjectNamespace;
  CONNECTION_RECORD: Env["CONNECTION_RECORD"];
}

export function gatewayChat(env: GatewayBindings, config: Config): NamespaceHandler<GatewayConnection> {
  const recovery = config.RECOVERY_WINDOW_MS > 0;

  const connection = (who: GatewayIdentity, identity: Identity | undefined, record: GatewayRooms["record"], only?: string): GatewayConnection => {
    const rooms = new GatewayRooms(env.PR_ROOM, config, who, record, only);
    const chat = new ChatSession(config, rooms, timerScheduler, identity);
    rooms.bind(chat);
    return { chat, rooms };
  };

  /** Takes a connection back with every room it was in and what it missed there, or nothing at all. */
  async function recover(pid: string, offset: unknown, sid: string, identity: Identity | undefined, only: string | undefined) {
    const subject = identity?.username ?? null;
    const record = env.CONNECTION_RECORD.getByName(recordName(await pidHash(pid)));
    const claimed = await record.claim(sid, subject, Date.now()).catch(() => null);
    if (!claimed) return undefined;
    const positions = offset === undefined ? new Map<string, number>() : parseOffset(offset);
    const allowed = claimed.rooms.every(({ key }) => !identity?.pullRequests || identity.pullRequests.has(key));
    const recovered = connection({ sid, socketId: claimed.socketId, subject }, identity, record, only);
    if (positions && allowed) {
      const links = await Promise.all(claimed.rooms.map(({ key, username }) => recovered.rooms.resume(key, username, positions.get(key))));
      if (links.every(Boolean)) {
        claimed.rooms.forEach(({ key }, index) => recovered.chat.adopt(key, links[index]!));
        log("recovered", { sid, socketId: claimed.socketId, rooms: claimed.rooms.length });
        return { connection: recovered, socketId: claimed.socketId };
      }
    }
    // Never half-recovered: out of whatever rooms it got back into, and the client starts anew.
    recovered.rooms.abandon();
    log("not_recovered", { sid, rooms: claimed.rooms.length, offset: positions ? "ok" : "malformed" });
    return undefined;
  }

  return {
    async connect({ auth, sid, handshake }) {
      // A polling client may name its pull request, as the direct path's clients do: then it joins no other.
      let only: string | undefined;
      const named = handshake.query.pullRequestId;
      if (named !== undefined) {
        const key = PullRequestId.safeParse(named);
        if (!key.success) return { ok: false, error: { message: "pullRequestId must be a positive integer", data: { code: "invalid_payload" } } };
        only = key.data;
      }
      let identity: Identity | undefined;
      if (config.AUTH_SECRET !== undefined) {
        const verified = await verifyIdentity(auth, config.AUTH_SECRET, config);
        if (!verified.ok) return { ok: false, error: { message: verified.message, data: { code: verified.code } } };
        identity = verified.identity;
      }
      if (recovery && isPid(auth.pid)) {
        const recovered = await recover(auth.pid, auth.offset, sid, identity, only);
        if (recovered) return { ok: true, data: recovered.connection, id: recovered.socketId, pid: auth.pid };
      }
      const socketId = randomId();
      const who = { sid, socketId, subject: identity?.username ?? null };
      if (!recovery) return { ok: true, data: connection(who, identity, undefined, only), id: socketId };
      const pid = newPid();
      const record = env.CONNECTION_RECORD.getByName(recordName(await pidHash(pid)));
      return { ok: true, data: connection(who, identity, record, only), id: socketId, pid };
    },

    connected(socket) {
      socket.data.rooms.attach(socket);
      socket.data.chat.endAtExpiry(socket);
    },

    event(socket, name, args, ack) {
      socket.data.chat.event(socket, name, args, ack);
    },

    disconnect(socket) {
      socket.data.chat.closeAll(socket);
      socket.data.rooms.detach();
    },

    async handOver(socket, deadline) {
      const { chat, rooms } = socket.data;
      chat.settle(socket);
      const positions = await rooms.handOver(deadline);
      const identity = chat.identity && {
        username: chat.identity.username,
        pullRequests: chat.identity.pullRequests && [...chat.identity.pullRequests],
        expiresAt: chat.identity.expiresAt,
        scopes: [...chat.identity.scopes],
      };
      const snapshot: ChatHandOver = { socketId: socket.id, subject: rooms.who.subject, rooms: positions };
      if (identity) snapshot.identity = identity;
      if (rooms.only !== undefined) snapshot.only = rooms.only;
      return snapshot;
    },

    /** Back in every room at the position handed over: each replays what came after it, then goes live. */
    async takeOver(state, snapshot, sid) {
      const moved = snapshot as ChatHandOver;
      const identity: Identity | undefined = moved.identity && {
        username: moved.identity.username,
        pullRequests: moved.identity.pullRequests && new Set(moved.identity.pullRequests),
        expiresAt: moved.identity.expiresAt,
        scopes: new Set(moved.identity.scopes),
      };
      const record = recovery && state.pid ? env.CONNECTION_RECORD.getByName(recordName(await pidHash(state.pid))) : undefined;
      const taken = connection({ sid, socketId: moved.socketId, subject: moved.subject }, identity, record, moved.only);
      const links = await Promise.all(moved.rooms.map(({ key, username, position }) => taken.rooms.resume(key, username, position)));
      taken.unresumed = [];
      moved.rooms.forEach(({ key }, index) => {
        const link = links[index];
        if (link) taken.chat.adopt(key, link);
        else taken.unresumed!.push(key);
      });
      return taken;
    },

    takenOver(socket) {
      socket.data.rooms.attach(socket);
      for (const key of socket.data.unresumed ?? []) {
        socket.emit(ServerEvent.error, { event: ClientEvent.join, pullRequestId: publicPullRequestId(key), ...UNRESUMED } satisfies PrRoomError);
      }
      socket.data.chat.endAtExpiry(socket);
    },
  };
}
