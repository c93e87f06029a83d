/**
 * The chat on a gateway connection (the documented client: rooms are named by
 * `join-pr-room` after connecting): the shared rules, rooms reached over links, and
 * connection state recovery backed by the connection's record and the rooms' logs.
 */
import type { Config } from "../chat/config.js";
import { log } from "../util/log.js";
import { isRecoverable } from "../chat/recovery.js";
import { isPid, newPid, pidHash } from "../chat/pid.js";
import { recordName } from "./record.js";
import { randomId } from "../util/ids.js";
import type { NamespaceHandler } from "../session/namespaces.js";
import type { Socket } from "../session/socket.js";
import { ClientEvent, PullRequestId, type ErrorBody } from "../chat/events.js";
import { GatewayRooms, type GatewayIdentity, type RoomPosition } from "./rooms.js";
import { identityAtConnect, loadIdentity, storeIdentity, type Identity, type StoredIdentity } from "../chat/identity.js";
import { ChatSession, refuse, timerScheduler } from "../chat/chat.js";
import { logConnectionUsage } from "./usage.js";

export interface GatewayConnection {
  chat: ChatSession;
  rooms: GatewayRooms;
  /** How the client reached this host: "websocket", or "polling" (a PollingSession). */
  transport: string;
  /** Rooms a moved connection could not be resumed in: the client hears room_unavailable for each. */
  unresumed?: string[];
}

/** What a gateway connection carries when it moves (a polling session upgrading to WebSocket). */
export interface ChatHandOver {
  socketId: string;
  subject: string | null;
  identity?: StoredIdentity;
  /** The pull request the connection was opened for (`?pullRequestId=`), if any. */
  only?: string;
  rooms: RoomPosition[];
}

/** With FAULT_INJECTION on: this isolate's live gateway connections by Socket.IO id, for `/__faults`. */
export const faultTargets = new Map<string, GatewayRooms>();

/** The connection is live here (`on`) or no longer: kept in faultTargets when fault injection is on. */
function targetable(socket: Socket<GatewayConnection>, on: boolean, config: Config): void {
  if (on && config.FAULT_INJECTION === "on") faultTargets.set(socket.id, socket.data.rooms);
  else if (!on && faultTargets.get(socket.id) === socket.data.rooms) faultTargets.delete(socket.id);
}

const UNRESUMED: ErrorBody = { code: "room_unavailable", message: "the room could not be reached after the upgrade to WebSocket; join it again" };

export interface GatewayBindings {
  PR_ROOM: DurableObjectNamespace;
  CONNECTION_RECORD: Env["CONNECTION_RECORD"];
}

export function gatewayChat(env: GatewayBindings, config: Config): NamespaceHandler<GatewayConnection> {
  const recovery = config.RECOVERY_WINDOW_MS > 0;

  const connection = (who: GatewayIdentity, identity: Identity | undefined, record: GatewayRooms["record"], only?: string, transport = "websocket"): GatewayConnection => {
    const rooms = new GatewayRooms(env.PR_ROOM, config, who, record, only);
    const chat = new ChatSession(config, rooms, timerScheduler, identity);
    rooms.bind(chat);
    return { chat, rooms, transport };
  };

  /** The connection's bill, once it ends here (see usage.ts). */
  const logUsage = (socket: Socket<GatewayConnection>) => {
    const { rooms, transport } = socket.data;
    logConnectionUsage({ sid: socket.sid, socketId: socket.id }, transport, socket.traffic, rooms.usage);
  };

  /** The recovery record of the connection whose pid this is. */
  const recordFor = async (pid: string) => env.CONNECTION_RECORD.getByName(recordName(await pidHash(pid)));

  /** Takes a connection back with every room it was in and what it missed there, or nothing at all. */
  async function recover(pid: string, offset: unknown, sid: string, identity: Identity | undefined, only: string | undefined, transport: string) {
    const subject = identity?.username ?? null;
    const record = await recordFor(pid);
    const claimant = { ...(identity && { identity: storeIdentity(identity) }), ...(only !== undefined && { only }), ...(offset !== undefined && { offset }) };
    const claimed = await record.claim(sid, claimant).catch((error) => ({ ok: false as const, why: String(error) }));
    if (!claimed.ok) {
      log("not_recovered", { sid, why: claimed.why });
      return undefined;
    }
    const positions = new Map(Object.entries(claimed.positions));
    const recovered = connection({ sid, socketId: claimed.socketId, subject }, identity, record, only, transport);
    recovered.rooms.usage.recordCalls++; // the claim
    const share = 1 / Math.max(1, claimed.rooms.length);
    const links = await Promise.all(claimed.rooms.map(({ key, username }) => recovered.rooms.resume(key, username, positions.get(key), share)));
    if (links.every(Boolean)) {
      claimed.rooms.forEach(({ key }, index) => recovered.chat.adopt(key, links[index]!));
      log("recovered", { sid, socketId: claimed.socketId, rooms: claimed.rooms.length });
      return { connection: recovered, socketId: claimed.socketId };
    }
    // Never half-recovered: out of whatever rooms it got back into, and the client starts anew.
    recovered.rooms.abandon();
    log("not_recovered", { sid, rooms: claimed.rooms.length, why: "a room could not replay what was missed" });
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
      const verified = await identityAtConnect(auth, config);
      if (!verified.ok) return verified;
      const identity = verified.identity;
      const transport = handshake.query.transport === "polling" ? "polling" : "websocket";
      const claimed = recovery && isPid(auth.pid);
      if (claimed) {
        const recovered = await recover(auth.pid as string, auth.offset, sid, identity, only, transport);
        if (recovered) return { ok: true, data: recovered.connection, id: recovered.socketId, pid: auth.pid as string };
      }
      const socketId = randomId();
      const who = { sid, socketId, subject: identity?.username ?? null };
      if (!recovery) return { ok: true, data: connection(who, identity, undefined, only, transport), id: socketId };
      const pid = newPid();
      const fresh = connection(who, identity, await recordFor(pid), only, transport);
      if (claimed) fresh.rooms.usage.recordCalls++; // the claim that found nothing to take back
      return { ok: true, data: fresh, id: socketId, pid };
    },

    connected(socket) {
      socket.data.rooms.attach(socket);
      targetable(socket, true, config);
      socket.data.chat.endAtExpiry(socket);
    },

    event(socket, name, args, ack) {
      if (socket.data.rooms.faultPending) {
        socket.data.rooms.faultPending = false;
        socket.data.rooms.replaceLinks();
      }
      socket.data.chat.event(socket, name, args, ack);
    },

    disconnect(socket, reason) {
      targetable(socket, false, config);
      const recoverable = isRecoverable(reason) || socket.data.rooms.superseded;
      // The record first: were a restart to cut this short, a leave's save must not have gone
      // out before the forget (the record would be recoverable, with no rooms).
      if (recoverable) socket.data.rooms.detach();
      else socket.data.rooms.forget();
      socket.data.chat.closeAll(socket, recoverable);
      logUsage(socket);
    },

    async handOver(socket, deadline) {
      const { chat, rooms } = socket.data;
      targetable(socket, false, config);
      chat.settle(socket);
      const positions = await rooms.handOver(deadline);
      logUsage(socket);
      const snapshot: ChatHandOver = { socketId: socket.id, subject: rooms.who.subject, rooms: positions };
      if (chat.identity) snapshot.identity = storeIdentity(chat.identity);
      if (rooms.only !== undefined) snapshot.only = rooms.only;
      return snapshot;
    },

    /** Back in every room at the position handed over: each replays what came after it, then goes live. */
    async takeOver(state, snapshot, sid) {
      const moved = snapshot as ChatHandOver;
      const identity = moved.identity && loadIdentity(moved.identity);
      const record = recovery && state.pid ? await recordFor(state.pid) : undefined;
      const taken = connection({ sid, socketId: moved.socketId, subject: moved.subject }, identity, record, moved.only, "websocket");
      const share = 1 / Math.max(1, moved.rooms.length);
      const links = await Promise.all(moved.rooms.map(({ key, username, position }) => taken.rooms.resume(key, username, position, share)));
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
      targetable(socket, true, config);
      for (const key of socket.data.unresumed ?? []) refuse(socket, undefined, ClientEvent.join, key, UNRESUMED.code, UNRESUMED.message, false);
      socket.data.chat.endAtExpiry(socket);
    },
  };
}
