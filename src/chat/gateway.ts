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
import { GatewayRooms, type GatewayIdentity } from "./gateway-rooms.js";
import { verifyIdentity, type Identity } from "./identity.js";
import { ChatSession, timerScheduler } from "./session.js";

export interface GatewayConnection {
  chat: ChatSession;
  rooms: GatewayRooms;
}

export interface GatewayBindings {
  PR_ROOM: DurableObjectNamespace;
  CONNECTION_RECORD: Env["CONNECTION_RECORD"];
}

export function gatewayChat(env: GatewayBindings, config: Config): NamespaceHandler<GatewayConnection> {
  const recovery = config.RECOVERY_WINDOW_MS > 0;

  const connection = (who: GatewayIdentity, identity: Identity | undefined, record: GatewayRooms["record"]): GatewayConnection => {
    const rooms = new GatewayRooms(env.PR_ROOM, config, who, record);
    const chat = new ChatSession(config, rooms, timerScheduler, identity);
    rooms.bind(chat);
    return { chat, rooms };
  };

  /** Takes a connection back with every room it was in and what it missed there, or nothing at all. */
  async function recover(pid: string, offset: unknown, sid: string, identity: Identity | undefined) {
    const subject = identity?.username ?? null;
    const record = env.CONNECTION_RECORD.getByName(recordName(await pidHash(pid)));
    const claimed = await record.claim(sid, subject, Date.now()).catch(() => null);
    if (!claimed) return undefined;
    const positions = offset === undefined ? new Map<string, number>() : parseOffset(offset);
    const allowed = claimed.rooms.every(({ key }) => !identity?.pullRequests || identity.pullRequests.has(key));
    const recovered = connection({ sid, socketId: claimed.socketId, subject }, identity, record);
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
    async connect({ auth, sid }) {
      let identity: Identity | undefined;
      if (config.AUTH_SECRET !== undefined) {
        const verified = await verifyIdentity(auth, config.AUTH_SECRET, config);
        if (!verified.ok) return { ok: false, error: { message: verified.message, data: { code: verified.code } } };
        identity = verified.identity;
      }
      if (recovery && isPid(auth.pid)) {
        const recovered = await recover(auth.pid, auth.offset, sid, identity);
        if (recovered) return { ok: true, data: recovered.connection, id: recovered.socketId, pid: auth.pid };
      }
      const socketId = randomId();
      const who = { sid, socketId, subject: identity?.username ?? null };
      if (!recovery) return { ok: true, data: connection(who, identity, undefined), id: socketId };
      const pid = newPid();
      const record = env.CONNECTION_RECORD.getByName(recordName(await pidHash(pid)));
      return { ok: true, data: connection(who, identity, record), id: socketId, pid };
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
  };
}
